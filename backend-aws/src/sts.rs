//! The two STS calls the chain makes, over [`backend_net::Http`]:
//! `AssumeRole` (a `role_arn` of the config or of a profile, signed with
//! the credentials before it) and `AssumeRoleWithWebIdentity` (EKS IRSA
//! and web identity profiles, unsigned: the token is the proof).
//!
//! STS's Query protocol: a form body `Action=...&Version=2011-06-15&...`
//! POSTed to the endpoint, an XML answer (`<Op>Response/<Op>Result/
//! Credentials`), an XML error (`ErrorResponse/Error/Code`). `AssumeRole`
//! is signed with SigV4 by the SDK's signer crate (`aws-sigv4`, through
//! [`backend_net::sigv4::sign_post`]) for service `sts` in the call's
//! region (`us-east-1` without one).
//!
//! The endpoint ([`endpoint`]): the config's `endpoint_url` when set, else
//! `AWS_ENDPOINT_URL_STS`, else `AWS_ENDPOINT_URL`, else the profile's
//! `endpoint_url` (those three not when
//! `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), else the region's own
//! `https://sts.<region>.amazonaws.com` in the region's partition
//! (`.amazonaws.com.cn` in China, the ISO partitions' domains;
//! `https://sts.amazonaws.com` without a region), the SDK's regional
//! default, `sts-fips` with `AWS_USE_FIPS_ENDPOINT=true` (not in
//! GovCloud, whose `sts` is FIPS), `api.aws` with
//! `AWS_USE_DUALSTACK_ENDPOINT=true` (`env` gives, for either variable
//! unset, the profile's setting: [`crate::api::PROFILE_KEYS`]).
//!
//! Three attempts, as the SDK's standard retry: a transport failure, a
//! 5xx or 429, or a 400 whose code says throttled (AWS throttles with a
//! 400 and a code in the body) or, for web identity, that the identity
//! provider could not be reached (`IDPCommunicationError`), is tried again
//! within the deadline. Answers are never quoted: a refusal is its HTTP
//! status and, when it is one of [`crate::errors::KNOWN_CODES`], its code
//! ([`crate::errors::from_code`]); a transport failure is what
//! [`backend_net::Failure`] says of it.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use backend_core::{Context, Secret};
use backend_net::Http;
use reqwest::header::{CONTENT_TYPE, HOST, HeaderValue};

/// The STS API version of the Query protocol.
const VERSION: &str = "2011-06-15";
/// The body's media type.
const FORM: &str = "application/x-www-form-urlencoded; charset=utf-8";
/// What STS answers with a 4xx that is retried besides the codes every
/// AWS service retries ([`crate::api::RETRIED_CODES`]): the identity
/// provider behind AssumeRoleWithWebIdentity did not answer STS (the SDK's
/// STS client retries it).
const STS_RETRIED_CODE: &str = "IDPCommunicationError";

/// Where STS is, as the SDK decides (see the module docs). `configured`
/// is the config's `endpoint_url`; `env` reads a variable; `profile` is
/// the profile's `endpoint_url`.
pub fn endpoint(
    configured: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
    profile: Option<&str>,
    region: Option<&str>,
) -> String {
    if let Some(url) = configured {
        return url.trim().to_owned();
    }
    let ignore = env("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
        .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    if !ignore {
        let set = |v: Option<String>| v.filter(|v| !v.trim().is_empty());
        if let Some(url) = set(env("AWS_ENDPOINT_URL_STS"))
            .or_else(|| set(env("AWS_ENDPOINT_URL")))
            .or_else(|| set(profile.map(str::to_owned)))
        {
            return url.trim().to_owned();
        }
    }
    let Some(r) = region else {
        return "https://sts.amazonaws.com".to_owned();
    };
    // The SDK's STS rules: FIPS (`sts-fips`, but GovCloud's `sts` is FIPS
    // already) and dual-stack, in the region's partition.
    let on = |name: &str| env(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let (fips, dual_stack) = (
        on("AWS_USE_FIPS_ENDPOINT"),
        on("AWS_USE_DUALSTACK_ENDPOINT"),
    );
    let suffix = crate::api::dns_suffix(r, dual_stack);
    if fips && !dual_stack && r.starts_with("us-gov-") {
        return format!("https://sts.{r}.amazonaws.com");
    }
    let fips = if fips { "-fips" } else { "" };
    format!("https://sts{fips}.{r}.{suffix}")
}

/// One STS endpoint, for the calls of one load.
pub struct Sts {
    pub http: Http,
    /// The endpoint URL (may hold userinfo: never shown).
    pub endpoint: String,
    /// The signing region.
    pub region: String,
}

/// The endpoint without its userinfo.
impl std::fmt::Debug for Sts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sts")
            .field("endpoint", &backend_core::redact::url(&self.endpoint))
            .field("region", &self.region)
            .finish_non_exhaustive()
    }
}

/// Why a call gave no credentials: a message in our words, starting with
/// the operation's name.
pub type Refused = String;

impl Sts {
    /// `AssumeRole` of `role_arn` with `base`.
    pub async fn assume_role(
        &self,
        base: &Credentials,
        role_arn: &str,
        session_name: &str,
        external_id: Option<&str>,
        ctx: &Context,
    ) -> Result<Credentials, Refused> {
        let mut params = vec![
            ("Action", "AssumeRole"),
            ("Version", VERSION),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
        ];
        if let Some(id) = external_id {
            params.push(("ExternalId", id));
        }
        self.call("AssumeRole", &params, Some(base), ctx).await
    }

    /// `AssumeRoleWithWebIdentity` of `role_arn` with `token`.
    pub async fn assume_role_with_web_identity(
        &self,
        token: &Secret,
        role_arn: &str,
        session_name: &str,
        ctx: &Context,
    ) -> Result<Credentials, Refused> {
        let params = [
            ("Action", "AssumeRoleWithWebIdentity"),
            ("Version", VERSION),
            ("RoleArn", role_arn),
            ("RoleSessionName", session_name),
            ("WebIdentityToken", token.expose()),
        ];
        self.call("AssumeRoleWithWebIdentity", &params, None, ctx)
            .await
    }

    async fn call(
        &self,
        op: &str,
        params: &[(&str, &str)],
        signer: Option<&Credentials>,
        ctx: &Context,
    ) -> Result<Credentials, Refused> {
        let location = format!("STS {op}");
        let url = crate::api::endpoint_url(&self.endpoint).ok_or_else(|| {
            format!("{location}: the STS endpoint URL is invalid (check the endpoint URL)")
        })?;
        let body = Secret::new(form(params));
        let host = match url.port() {
            Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
            None => url.host_str().unwrap_or_default().to_owned(),
        };
        let mut headers: Vec<(String, Secret)> = vec![("content-type".into(), Secret::from(FORM))];
        if let Some(credentials) = signer {
            let signed = backend_net::sigv4::sign_post(
                credentials.clone(),
                "sts",
                &self.region,
                url.as_str(),
                &[("host", &host), ("content-type", FORM)],
                body.expose().as_bytes(),
                SystemTime::now(),
            )
            .map_err(|e| format!("{location}: cannot sign the request: {e}"))?;
            headers.extend(signed.headers);
        }
        let mut values = Vec::with_capacity(headers.len());
        for (name, value) in &headers {
            let mut v = HeaderValue::from_str(value.expose()).map_err(|_| {
                format!("{location}: a signed header cannot be sent (check the credentials)")
            })?;
            v.set_sensitive(true);
            values.push((name.clone(), v));
        }
        let answer = self
            .http
            .send_retrying(
                ctx,
                |c| {
                    let mut request = c.post(url.clone()).body(body.expose().as_bytes().to_vec());
                    for (name, value) in &values {
                        request = if name.eq_ignore_ascii_case("content-type") {
                            request.header(CONTENT_TYPE, value.clone())
                        } else {
                            request.header(name.as_str(), value.clone())
                        };
                    }
                    if let Ok(h) = HeaderValue::from_str(&host) {
                        request = request.header(HOST, h);
                    }
                    request
                },
                |r| {
                    backend_net::http::retried(r.status)
                        || error_code(&r.body).is_some_and(|c| {
                            c == STS_RETRIED_CODE || crate::api::RETRIED_CODES.contains(&c.as_str())
                        })
                },
            )
            .await
            .map_err(|f| format!("{location}: {}", f.cause()))?;
        let status = answer.status.as_u16();
        if !answer.status.is_success() {
            let e = match error_code(&answer.body) {
                Some(code) => crate::errors::from_code(&code, None, Some(status), &location),
                None => crate::errors::without_code(status, &location),
            };
            return Err(e.message().to_owned());
        }
        let text = std::str::from_utf8(&answer.body).unwrap_or_default();
        credentials(text, op).ok_or_else(|| {
            format!("{location}: unreadable answer from STS (HTTP {status}, no credentials in it)")
        })
    }
}

/// The form body of `params`, each value percent-encoded (every byte but
/// the unreserved ones, as SigV4 expects).
fn form(params: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in params.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        encode(k, &mut out);
        out.push('=');
        encode(v, &mut out);
    }
    out
}

fn encode(text: &str, out: &mut String) {
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
}

/// The credentials of a successful answer of `op`, held.
fn credentials(xml: &str, op: &str) -> Option<Credentials> {
    let response = format!("{op}Response");
    let result = format!("{op}Result");
    let field = |name: &str| xml_value(xml, &[&response, &result, "Credentials", name]);
    let id = field("AccessKeyId").filter(|v| !v.is_empty())?;
    let secret = field("SecretAccessKey").filter(|v| !v.is_empty())?;
    let token = field("SessionToken").filter(|v| !v.is_empty());
    let expiry = field("Expiration").and_then(|e| {
        let t = aws_smithy_types::DateTime::from_str(
            e.trim(),
            aws_smithy_types::date_time::Format::DateTime,
        )
        .ok()?;
        SystemTime::try_from(t).ok()
    });
    let credentials = Credentials::new(id, secret, token, expiry, "Sts");
    crate::credentials::hold(&credentials);
    Some(credentials)
}

/// The code of an STS error answer: `ErrorResponse/Error/Code`, exactly
/// there (as the SDK reads it).
fn error_code(body: &[u8]) -> Option<String> {
    let xml = std::str::from_utf8(body).ok()?;
    xml_value(xml, &["ErrorResponse", "Error", "Code"])
        .map(|c| c.trim().to_owned())
        .filter(|c| !c.is_empty())
}

/// The text of the element at `path` (names without namespace prefixes,
/// from the root): the first such element that holds text only. A
/// minimal reader for STS's answers, tolerant of declarations, comments
/// and attributes; `None` for anything it cannot follow.
fn xml_value(xml: &str, path: &[&str]) -> Option<String> {
    let mut stack: Vec<&str> = Vec::new();
    let mut rest = xml;
    loop {
        let lt = rest.find('<')?;
        rest = rest.get(lt + 1..)?;
        let skip_to =
            |rest: &str, end: &str| -> Option<usize> { Some(rest.find(end)? + end.len()) };
        if rest.starts_with('?') {
            rest = rest.get(skip_to(rest, "?>")?..)?;
            continue;
        }
        if rest.starts_with("!--") {
            rest = rest.get(skip_to(rest, "-->")?..)?;
            continue;
        }
        if rest.starts_with('!') {
            rest = rest.get(skip_to(rest, ">")?..)?;
            continue;
        }
        let gt = rest.find('>')?;
        let tag = rest.get(..gt)?;
        rest = rest.get(gt + 1..)?;
        if let Some(name) = tag.strip_prefix('/') {
            let name = local(name.trim());
            if stack.last() != Some(&name) {
                return None;
            }
            stack.pop();
            continue;
        }
        let self_closing = tag.ends_with('/');
        let name = local(tag.trim_end_matches('/').split_whitespace().next()?);
        if self_closing {
            continue;
        }
        stack.push(name);
        if stack.as_slice() == path {
            let end = rest.find('<')?;
            let text = rest.get(..end)?;
            if rest.get(end..)?.starts_with("</") {
                return Some(unescape(text));
            }
        }
    }
}

/// A name without its namespace prefix.
fn local(name: &str) -> &str {
    name.rsplit(':').next().unwrap_or(name)
}

/// XML's entities and character references, resolved (an unknown one is
/// kept as written).
fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(amp) = rest.find('&') {
        out.push_str(rest.get(..amp).unwrap_or_default());
        rest = rest.get(amp..).unwrap_or_default();
        // An entity's `;` within 12 bytes, looked for there only: a search
        // to the end of the text for each `&` made a text of many `&` and
        // no `;` quadratic.
        let Some(semi) = rest.bytes().take(13).position(|b| b == b';') else {
            out.push('&');
            rest = rest.get(1..).unwrap_or_default();
            continue;
        };
        let entity = rest.get(1..semi).unwrap_or_default();
        let c = match entity {
            "lt" => Some('<'),
            "gt" => Some('>'),
            "amp" => Some('&'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            _ => entity
                .strip_prefix("#x")
                .and_then(|h| u32::from_str_radix(h, 16).ok())
                .or_else(|| entity.strip_prefix('#').and_then(|d| d.parse().ok()))
                .and_then(char::from_u32),
        };
        match c {
            Some(c) => {
                out.push(c);
                rest = rest.get(semi + 1..).unwrap_or_default();
            }
            None => {
                out.push('&');
                rest = rest.get(1..).unwrap_or_default();
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_core::testkit::env_of as vars;

    #[test]
    fn endpoints_as_the_sdk_picks_them() {
        let none = vars(&[]);
        assert_eq!(
            endpoint(
                Some("http://cfg"),
                &vars(&[("AWS_ENDPOINT_URL", "http://env")]),
                None,
                None
            ),
            "http://cfg"
        );
        let both = vars(&[
            ("AWS_ENDPOINT_URL", "http://env"),
            ("AWS_ENDPOINT_URL_STS", "http://sts-env"),
        ]);
        assert_eq!(
            endpoint(None, &both, Some("http://p"), None),
            "http://sts-env"
        );
        let global = vars(&[("AWS_ENDPOINT_URL", "http://env")]);
        assert_eq!(
            endpoint(None, &global, Some("http://p"), None),
            "http://env"
        );
        assert_eq!(endpoint(None, &none, Some("http://p"), None), "http://p");
        let ignored = vars(&[
            ("AWS_ENDPOINT_URL", "http://env"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "TRUE"),
        ]);
        assert_eq!(
            endpoint(None, &ignored, Some("http://p"), Some("eu-west-1")),
            "https://sts.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            endpoint(Some("http://cfg"), &ignored, None, None),
            "http://cfg"
        );
        assert_eq!(
            endpoint(None, &none, None, Some("cn-north-1")),
            "https://sts.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            endpoint(None, &none, None, None),
            "https://sts.amazonaws.com"
        );
    }

    /// `AWS_USE_FIPS_ENDPOINT` and `AWS_USE_DUALSTACK_ENDPOINT` reach STS
    /// as they reach the services (the SDK's STS endpoint rules), and the
    /// ISO partitions have their own domains: STS went to the standard
    /// `sts.<region>.amazonaws.com` whatever they said (a FIPS-only host
    /// sent its web identity token to a non-FIPS endpoint).
    #[test]
    fn fips_dual_stack_and_partitions_reach_sts() {
        let fips = vars(&[("AWS_USE_FIPS_ENDPOINT", "true")]);
        let dual = vars(&[("AWS_USE_DUALSTACK_ENDPOINT", "TRUE")]);
        let both = vars(&[
            ("AWS_USE_FIPS_ENDPOINT", "true"),
            ("AWS_USE_DUALSTACK_ENDPOINT", "true"),
        ]);
        let none = vars(&[]);
        for (env, region, url) in [
            (
                &fips as &dyn Fn(&str) -> Option<String>,
                "us-east-1",
                "https://sts-fips.us-east-1.amazonaws.com",
            ),
            (
                &fips,
                "us-gov-west-1",
                "https://sts.us-gov-west-1.amazonaws.com",
            ),
            (
                &fips,
                "cn-north-1",
                "https://sts-fips.cn-north-1.amazonaws.com.cn",
            ),
            (&dual, "eu-west-1", "https://sts.eu-west-1.api.aws"),
            (&both, "us-east-2", "https://sts-fips.us-east-2.api.aws"),
            (
                &none,
                "us-iso-east-1",
                "https://sts.us-iso-east-1.c2s.ic.gov",
            ),
            (
                &none,
                "us-isob-east-1",
                "https://sts.us-isob-east-1.sc2s.sgov.gov",
            ),
        ] {
            assert_eq!(endpoint(None, env, None, Some(region)), url);
        }
        assert_eq!(
            endpoint(None, &fips, Some("http://p"), Some("us-east-1")),
            "http://p"
        );
    }

    #[test]
    fn form_bodies_are_percent_encoded() {
        assert_eq!(
            form(&[
                ("Action", "AssumeRole"),
                ("RoleArn", "arn:aws:iam::1:role/a b+c~")
            ]),
            "Action=AssumeRole&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%20b%2Bc~"
        );
    }

    #[test]
    fn answers_and_errors_as_sts_writes_them() {
        let ok = r#"<?xml version="1.0"?>
<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::1:assumed-role/r/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAXML</AccessKeyId>
      <SecretAccessKey>xml-secret&amp;key-0001</SecretAccessKey>
      <SessionToken>xml-token&#43;0001</SessionToken>
      <Expiration>2099-01-01T00:00:00Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
  <!-- <Credentials><AccessKeyId>NOT</AccessKeyId></Credentials> -->
</AssumeRoleResponse>"#;
        let c = credentials(ok, "AssumeRole").unwrap();
        assert_eq!(c.access_key_id(), "ASIAXML");
        assert_eq!(c.secret_access_key(), "xml-secret&key-0001");
        assert_eq!(c.session_token(), Some("xml-token+0001"));
        assert!(c.expiry().is_some());
        assert!(backend_core::secret::reveals_credential(
            "xml-secret&key-0001"
        ));
        // Another operation's answer, or none, is not read as this one's.
        assert!(credentials(ok, "AssumeRoleWithWebIdentity").is_none());
        assert!(credentials("not xml", "AssumeRole").is_none());
        assert!(credentials("<a><b>", "AssumeRole").is_none());
        let error = b"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code>\
                      <Message>x</Message></Error></ErrorResponse>";
        assert_eq!(error_code(error).as_deref(), Some("AccessDenied"));
        // moto nests the error one level deeper: no code, as the SDK reads it.
        let nested = b"<ErrorResponse><Errors><Error><Code>InvalidClientTokenId</Code>\
                       </Error></Errors></ErrorResponse>";
        assert_eq!(error_code(nested), None);
        assert_eq!(error_code(br#"{"__type":"AccessDenied"}"#), None);
    }

    /// An answer's text of many `&` and no `;` is read in linear time: each
    /// `&` looked for a `;` to the end of the text (an STS answer of 4 MiB
    /// of them: minutes of CPU, past any deadline).
    #[test]
    fn many_ampersands_are_read_in_linear_time() {
        let text = "&".repeat(256 * 1024);
        let started = std::time::Instant::now();
        assert_eq!(unescape(&text), text);
        let xml = format!(
            "<AssumeRoleResponse><AssumeRoleResult><Credentials><AccessKeyId>{text}</AccessKeyId>\
             </Credentials></AssumeRoleResult></AssumeRoleResponse>"
        );
        assert!(credentials(&xml, "AssumeRole").is_none());
        assert!(
            // A guard against the quadratic reading (seconds here), with a wide
            // margin over the linear one (milliseconds): not a speed figure.
            started.elapsed() < std::time::Duration::from_secs(2),
            "{:?}",
            started.elapsed()
        );
    }

    #[test]
    fn entities_resolve_and_unknown_ones_stay() {
        assert_eq!(unescape("a&lt;b&gt;&quot;&apos;&#65;&#x42;"), "a<b>\"'AB");
        assert_eq!(unescape("a & b &bogus; &"), "a & b &bogus; &");
    }
}
