//! The `aws` auth method, IAM flavour: the login proves an AWS identity by
//! a signed `sts:GetCallerIdentity` request that Vault sends to STS itself.
//!
//! At login time ([`AwsLogin::fields`]) the host's AWS credentials are
//! found by `secret-backend-aws`'s own code ([`backend_aws::credentials`]:
//! the default chain, in the SDK's order, of environment, profile, web
//! identity for EKS IRSA, ECS
//! container credentials and IMDSv2, files read through
//! [`backend_core::fs`], every identity held, and its bounded, fast failure
//! with the same messages when there are none), the request `POST <sts>/`
//! with the body `Action=GetCallerIdentity&Version=2011-06-15` is signed
//! with SigV4 by the SDK's signer crate (`aws-sigv4`), and Vault's
//! documented login fields are made of it, each base64: `iam_request_url`,
//! `iam_request_body`, `iam_request_headers` (a JSON map of header name to
//! list of values, as Go's `http.Header` is), with
//! `iam_http_request_method: POST`. Vault replays the request to its own
//! configured STS endpoint with the signed `Host`, and binds the ARN STS
//! answers with to the role.
//!
//! The STS endpoint the request names: `sts_endpoint` when configured; else
//! `https://sts.<region>.amazonaws.com/` for a region other than
//! `us-east-1` (from `region`, else the region chain: `AWS_REGION`,
//! `AWS_DEFAULT_REGION`, the profile's `region`, instance metadata), signed
//! for that region;
//! else the global `https://sts.amazonaws.com/` signed for `us-east-1`,
//! which is what a Vault server with its defaults expects.
//!
//! `iam_server_id` is sent as the `X-Vault-AWS-IAM-Server-ID` header of the
//! signed request, and signed with it (Vault refuses it unsigned), so a
//! request signed for one Vault cannot be replayed to another.
//!
//! A signed request is itself a credential (whoever holds it can log in
//! with it for the 15 minutes STS accepts it), so the headers (signature,
//! session token) are held ([`backend_core::secret::hold`]) like the AWS
//! keys, and never logged.

use std::collections::BTreeMap;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use backend_aws::AwsConfig;
use backend_core::secret::hold;
use backend_core::{ConfigError, Context, HandleError, Secret};
use backend_net::sigv4;
use base64::Engine as _;
use reqwest::Url;
use zeroize::Zeroizing;

/// The environment variables the AWS chain reads (tests clear them).
pub use backend_aws::credentials::VARS;

/// The body of the signed request (what `aws sts get-caller-identity` sends).
pub const STS_BODY: &str = "Action=GetCallerIdentity&Version=2011-06-15";
/// The header naming the Vault server the request is meant for.
pub const SERVER_ID_HEADER: &str = "x-vault-aws-iam-server-id";
/// The region of the global STS endpoint, and the default.
pub const DEFAULT_REGION: &str = "us-east-1";
/// The global STS endpoint.
pub const GLOBAL_STS: &str = "https://sts.amazonaws.com/";
const CONTENT_TYPE: &str = "application/x-www-form-urlencoded; charset=utf-8";

/// The `aws` method's settings, validated.
#[derive(Debug, Clone)]
pub struct AwsLogin {
    region: Option<String>,
    iam_server_id: Option<String>,
    sts_endpoint: Option<Url>,
}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

impl AwsLogin {
    /// Checks `auth.region`, `auth.iam_server_id` and `auth.sts_endpoint`.
    pub fn new(
        region: Option<String>,
        iam_server_id: Option<String>,
        sts_endpoint: Option<String>,
    ) -> Result<Self, ConfigError> {
        let region = region.map(|r| r.trim().to_owned());
        if let Some(r) = &region
            && !backend_aws::chain::valid_region(r)
        {
            return Err(bad(format!(
                "auth.region '{}' is not an AWS region like 'eu-west-1'",
                r.escape_debug()
            )));
        }
        let iam_server_id = iam_server_id.map(|s| s.trim().to_owned());
        if let Some(id) = &iam_server_id
            && (id.is_empty() || id.len() > 256 || !id.bytes().all(|b| (0x21..0x7f).contains(&b)))
        {
            return Err(bad(
                "auth.iam_server_id must be printable ASCII without spaces, at most 256 bytes",
            ));
        }
        let sts_endpoint = sts_endpoint.map(|e| endpoint(&e)).transpose()?;
        Ok(Self {
            region,
            iam_server_id,
            sts_endpoint,
        })
    }

    /// The login fields of a freshly signed request, found credentials and
    /// all, within the call's deadline. Every field is a held credential.
    pub async fn fields(&self, ctx: &Context) -> Result<Vec<(&'static str, Secret)>, HandleError> {
        // With `auth.region` set, the chain looks for no region (nor asks
        // the instance metadata service for one).
        let aws = AwsConfig {
            region: self.region.clone(),
            ..AwsConfig::default()
        };
        let (credentials, region) = backend_aws::credentials::load(&aws, ctx).await?;
        let (url, region) = self.target(region.as_deref()).map_err(HandleError::other)?;
        tracing::debug!("signing sts:GetCallerIdentity for {url} (region {region})");
        signed_fields(
            &credentials,
            &url,
            &region,
            self.iam_server_id.as_deref(),
            SystemTime::now(),
        )
        .map_err(HandleError::other)
    }

    /// The URL the request names, and the region it is signed for.
    fn target(&self, region: Option<&str>) -> Result<(Url, String), String> {
        let region = region.unwrap_or(DEFAULT_REGION);
        let url = match &self.sts_endpoint {
            Some(url) => return Ok((url.clone(), region.to_owned())),
            None if region == DEFAULT_REGION => GLOBAL_STS.to_owned(),
            None if region.starts_with("cn-") => format!("https://sts.{region}.amazonaws.com.cn/"),
            None => format!("https://sts.{region}.amazonaws.com/"),
        };
        let url = Url::parse(&url).map_err(|e| format!("STS endpoint for region {region}: {e}"))?;
        Ok((url, region.to_owned()))
    }
}

/// `auth.sts_endpoint`: an http(s) URL of a host, nothing after it.
fn endpoint(raw: &str) -> Result<Url, ConfigError> {
    let raw = raw.trim();
    let shown = || backend_core::redact::url(raw).escape_debug().to_string();
    if raw.contains('@') {
        return Err(bad(format!(
            "auth.sts_endpoint '{}' must not carry credentials (user:password@)",
            shown()
        )));
    }
    let url = Url::parse(raw).map_err(|e| bad(format!("auth.sts_endpoint '{}': {e}", shown())))?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return Err(bad(
            "auth.sts_endpoint must be an http:// or https:// URL of a host",
        ));
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!(
            "auth.sts_endpoint '{}' must name a host only, without a path or query",
            shown()
        )));
    }
    Ok(url)
}

/// Go's canonical header name: `x-amz-date` is `X-Amz-Date`.
fn canonical(name: &str) -> String {
    let mut upper = true;
    name.chars()
        .map(|c| {
            let c = if upper {
                c.to_ascii_uppercase()
            } else {
                c.to_ascii_lowercase()
            };
            upper = c == '-';
            c
        })
        .collect()
}

/// Signs the GetCallerIdentity request for `url` and makes Vault's login
/// fields of it. Errors name no credential.
fn signed_fields(
    credentials: &Credentials,
    url: &Url,
    region: &str,
    server_id: Option<&str>,
    now: SystemTime,
) -> Result<Vec<(&'static str, Secret)>, String> {
    let host = match url.port() {
        Some(port) => format!("{}:{port}", url.host_str().unwrap_or_default()),
        None => url.host_str().unwrap_or_default().to_owned(),
    };
    let mut headers: Vec<(&str, &str)> = vec![("host", &host), ("content-type", CONTENT_TYPE)];
    if let Some(id) = server_id {
        headers.push((SERVER_ID_HEADER, id));
    }
    let signed = sigv4::sign_post(
        credentials.clone(),
        "sts",
        region,
        url.as_str(),
        &headers,
        STS_BODY.as_bytes(),
        now,
    )
    .map_err(|e| format!("cannot sign the STS request: {e}"))?;
    hold(&signed.signature);
    let mut all: BTreeMap<String, Vec<String>> = headers
        .iter()
        .map(|(k, v)| (canonical(k), vec![(*v).to_owned()]))
        .collect();
    for (name, value) in &signed.headers {
        all.insert(canonical(name), vec![value.expose().to_owned()]);
    }
    let json = Zeroizing::new(
        serde_json::to_vec(&all).map_err(|_| "cannot encode the signed headers".to_owned())?,
    );
    // The map held the signature and the session token: clear it.
    for values in all.values_mut() {
        values.iter_mut().for_each(zeroize::Zeroize::zeroize);
    }
    let b64 = |bytes: &[u8]| base64::engine::general_purpose::STANDARD.encode(bytes);
    Ok(vec![
        ("iam_http_request_method", Secret::from("POST")),
        ("iam_request_url", Secret::new(b64(url.as_str().as_bytes()))),
        ("iam_request_body", Secret::new(b64(STS_BODY.as_bytes()))),
        ("iam_request_headers", Secret::credential(b64(&json))),
    ])
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn creds(token: Option<&str>) -> Credentials {
        Credentials::new(
            "AKIDEXAMPLE",
            "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            token.map(str::to_owned),
            None,
            "test",
        )
    }

    fn decoded(fields: &[(&str, Secret)], name: &str) -> String {
        let (_, v) = fields.iter().find(|(k, _)| *k == name).unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(v.expose())
            .unwrap();
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn endpoints_by_region() {
        let l = AwsLogin::new(None, None, None).unwrap();
        let t = |r: Option<&str>| {
            let (u, r) = l.target(r).unwrap();
            (u.to_string(), r)
        };
        assert_eq!(t(None), (GLOBAL_STS.to_owned(), "us-east-1".to_owned()));
        assert_eq!(
            t(Some("us-east-1")),
            (GLOBAL_STS.to_owned(), "us-east-1".to_owned())
        );
        assert_eq!(
            t(Some("eu-west-1")),
            (
                "https://sts.eu-west-1.amazonaws.com/".to_owned(),
                "eu-west-1".to_owned()
            )
        );
        assert_eq!(
            t(Some("cn-north-1")).0,
            "https://sts.cn-north-1.amazonaws.com.cn/"
        );
        let l = AwsLogin::new(None, None, Some("http://127.0.0.1:5000".into())).unwrap();
        assert_eq!(
            l.target(Some("eu-west-2")).unwrap(),
            (
                "http://127.0.0.1:5000/".parse().unwrap(),
                "eu-west-2".into()
            )
        );
    }

    #[test]
    fn settings_are_checked_without_showing_userinfo() {
        assert!(AwsLogin::new(Some("EU WEST".into()), None, None).is_err());
        assert!(AwsLogin::new(None, Some("a b".into()), None).is_err());
        assert!(AwsLogin::new(None, Some("x\n".into()), None).is_ok());
        for e in [
            "ftp://sts",
            "https://sts/x",
            "https://sts/?a=b",
            "not a url",
            "http://u:PW-9@sts",
        ] {
            let err = AwsLogin::new(None, None, Some(e.into()))
                .unwrap_err()
                .to_string();
            assert!(err.contains("sts_endpoint"), "{e}: {err}");
            assert!(!err.contains("PW-9"), "{e}: {err}");
        }
    }

    #[test]
    fn signed_fields_are_vaults_and_sign_the_server_id() {
        let url: Url = "https://sts.eu-west-1.amazonaws.com/".parse().unwrap();
        let at = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_600);
        let f = signed_fields(
            &creds(Some("SESSION-TOKEN-42")),
            &url,
            "eu-west-1",
            Some("vault.example.com"),
            at,
        )
        .unwrap();
        assert_eq!(f[0].1.expose(), "POST");
        assert_eq!(decoded(&f, "iam_request_url"), url.as_str());
        assert_eq!(decoded(&f, "iam_request_body"), STS_BODY);
        let headers: BTreeMap<String, Vec<String>> =
            serde_json::from_str(&decoded(&f, "iam_request_headers")).unwrap();
        assert_eq!(headers["Host"], ["sts.eu-west-1.amazonaws.com"]);
        assert_eq!(headers["X-Vault-Aws-Iam-Server-Id"], ["vault.example.com"]);
        assert_eq!(headers["X-Amz-Security-Token"], ["SESSION-TOKEN-42"]);
        assert_eq!(headers["X-Amz-Date"], ["20260101T000000Z"]);
        let auth = &headers["Authorization"][0];
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20260101/eu-west-1/sts/aws4_request, \
                 SignedHeaders=content-type;host;x-amz-date;x-amz-security-token;x-vault-aws-iam-server-id, \
                 Signature="
            ),
            "{auth}"
        );
        // The headers blob carries the signature: it is held.
        assert!(backend_core::secret::reveals_credential(f[3].1.expose()));
        let sig = auth.rsplit('=').next().unwrap();
        assert!(backend_core::secret::reveals_credential(sig));
        // Without a server id and a session token, neither is sent.
        let f = signed_fields(&creds(None), &url, "eu-west-1", None, at).unwrap();
        let headers = decoded(&f, "iam_request_headers");
        assert!(!headers.contains("Security-Token") && !headers.contains("Server-Id"));
        assert!(!format!("{f:?}").contains("Signature"));
    }

    #[test]
    fn canonical_names() {
        assert_eq!(canonical("x-amz-date"), "X-Amz-Date");
        assert_eq!(canonical("HOST"), "Host");
    }
}
