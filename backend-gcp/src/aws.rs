//! The subject token of workload identity federation from AWS
//! (`external_account` with `credential_source.environment_id: aws1`).
//!
//! Google's STS takes, as proof of an AWS identity, a signed
//! `sts:GetCallerIdentity` request that it sends to AWS itself: we sign
//! it and hand it over, URL-encoded JSON of its URL, method and headers
//! (`Authorization`, then `host`, `x-amz-date`, `x-amz-security-token`
//! with temporary credentials, `x-goog-cloud-target-resource`), without
//! ever calling AWS STS. The signed headers include
//! `x-goog-cloud-target-resource`, the pool provider's audience, so the
//! proof is good for that provider only.
//!
//! The signature (AWS Signature Version 4) is made by the AWS SDK's signer
//! crate, `aws-sigv4`, as `secret-backend-vault` signs its own
//! `GetCallerIdentity`: a maintained implementation of the canonical
//! request, the key derivation and the header trimming rather than our
//! own. We give it the request (`POST`, the URL, `host` without a port as
//! Google's libraries sign it, the audience header, an empty body) and
//! take the headers it adds (`x-amz-date`, the session token,
//! `authorization`) into the list Google expects.
//!
//! The AWS credentials and region come as Google's libraries find them:
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`) and
//! `AWS_REGION`/`AWS_DEFAULT_REGION` from the environment, else the EC2
//! instance metadata service at the file's `url` (role credentials) and
//! `region_url` (availability zone), with an IMDSv2 session token from
//! `imdsv2_session_token_url` when the file names one.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use backend_core::{Context, Secret};
use backend_net::sigv4;
use serde_json::{Value, json};

use crate::http::{Failure, Http};

/// The request template Google's files name; `{region}` is filled in.
pub const DEFAULT_VERIFICATION_URL: &str =
    "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15";
const MAX_IMDS_BODY: usize = 64 * 1024;

/// AWS credentials, held.
pub struct AwsCredentials {
    /// The access key id (not secret).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("access_key_id", &self.access_key_id)
            .finish_non_exhaustive()
    }
}

/// Where the AWS side of the credential source points.
#[derive(Debug, Default, Clone)]
pub struct AwsSource<'a> {
    /// The role credentials URL of the instance metadata service.
    pub url: Option<&'a str>,
    /// The availability zone URL.
    pub region_url: Option<&'a str>,
    /// The `GetCallerIdentity` request template.
    pub verification_url: Option<&'a str>,
    /// The IMDSv2 session token URL.
    pub imdsv2_url: Option<&'a str>,
}

/// The subject token for `audience`: the signed request, URL-encoded JSON.
pub async fn subject_token(
    src: &AwsSource<'_>,
    audience: &str,
    env: &(dyn Fn(&str) -> Option<String> + Sync),
    ctx: &Context,
) -> Result<Secret, String> {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    let env_region = env("AWS_REGION").or_else(|| env("AWS_DEFAULT_REGION"));
    let env_creds = match (env("AWS_ACCESS_KEY_ID"), env("AWS_SECRET_ACCESS_KEY")) {
        (Some(id), Some(secret)) => Some(AwsCredentials {
            access_key_id: id,
            secret_access_key: Secret::credential(secret),
            session_token: env("AWS_SESSION_TOKEN").map(Secret::credential),
        }),
        _ => None,
    };
    // The metadata service is asked only for what the environment lacks.
    let imds = match (&env_region, &env_creds) {
        (Some(_), Some(_)) => None,
        _ => Some(Imds::new(src.imdsv2_url, ctx).await?),
    };
    let region = match (env_region, &imds) {
        (Some(r), _) => r,
        (None, Some(imds)) => {
            let url = src.region_url.ok_or(
                "no AWS region: AWS_REGION unset and the credential source has no region_url",
            )?;
            let zone = imds.get(url, ctx).await?;
            // An availability zone is its region and one letter.
            let zone = zone.trim();
            zone.get(..zone.len().saturating_sub(1))
                .filter(|r| !r.is_empty())
                .ok_or("the instance metadata gave no availability zone")?
                .to_owned()
        }
        (None, None) => return Err("no AWS region".into()),
    };
    if !region
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        return Err("the AWS region is not a region name".into());
    }
    let creds = match (env_creds, &imds) {
        (Some(c), _) => c,
        (None, Some(imds)) => {
            let url = src.url.ok_or(
                "no AWS credentials: AWS_ACCESS_KEY_ID unset and the credential source has no url",
            )?;
            imds.role_credentials(url, ctx).await?
        }
        (None, None) => return Err("no AWS credentials".into()),
    };
    let template = src.verification_url.unwrap_or(DEFAULT_VERIFICATION_URL);
    let url = template.replace("{region}", &region);
    let signed = sign(&url, &region, audience, &creds, SystemTime::now())?;
    Ok(Secret::credential(uri_encode(&signed.to_string())))
}

/// The instance metadata service, with its IMDSv2 session token if any.
struct Imds {
    http: Http,
    token: Option<Secret>,
}

impl Imds {
    async fn new(session_url: Option<&str>, ctx: &Context) -> Result<Self, String> {
        let http = Http::metadata()?;
        let Some(url) = session_url else {
            return Ok(Self { http, token: None });
        };
        let resp = http
            .send(ctx, MAX_IMDS_BODY, |c| {
                c.put(url)
                    .header("X-aws-ec2-metadata-token-ttl-seconds", "300")
            })
            .await
            .map_err(|e| unreachable("IMDSv2 session token URL", &e))?;
        if !resp.status.is_success() {
            return Err(format!(
                "the IMDSv2 session token URL answered HTTP {}",
                resp.status.as_u16()
            ));
        }
        let token = std::str::from_utf8(&resp.body)
            .map(|t| Secret::credential(t.trim().to_owned()))
            .map_err(|_| "the IMDSv2 session token is not text".to_owned())?;
        Ok(Self {
            http,
            token: Some(token),
        })
    }

    async fn get(&self, url: &str, ctx: &Context) -> Result<String, String> {
        let resp = self
            .http
            .send(ctx, MAX_IMDS_BODY, |c| {
                let req = c.get(url);
                match &self.token {
                    Some(t) => req.header("X-aws-ec2-metadata-token", t.expose()),
                    None => req,
                }
            })
            .await
            .map_err(|e| unreachable("the AWS instance metadata service", &e))?;
        if !resp.status.is_success() {
            return Err(format!(
                "the AWS instance metadata service answered HTTP {}",
                resp.status.as_u16()
            ));
        }
        String::from_utf8(resp.body.to_vec())
            .map_err(|_| "the AWS instance metadata service answered binary data".into())
    }

    /// The instance role's credentials: `url` names the role, `url/<role>`
    /// holds its keys.
    async fn role_credentials(&self, url: &str, ctx: &Context) -> Result<AwsCredentials, String> {
        let role = self.get(url, ctx).await?;
        let role = role.lines().next().unwrap_or_default().trim().to_owned();
        if !is_role_name(&role) {
            return Err("the instance metadata service names no IAM role".into());
        }
        let mut text = zeroize::Zeroizing::new(
            self.get(&format!("{}/{role}", url.trim_end_matches('/')), ctx)
                .await?,
        );
        let mut v: Value = serde_json::from_str(&text)
            .map_err(|_| "the role credentials are not JSON".to_owned())?;
        zeroize::Zeroize::zeroize(&mut *text);
        let field = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        let creds = match (field("AccessKeyId"), field("SecretAccessKey")) {
            (Some(id), Some(secret)) => Ok(AwsCredentials {
                access_key_id: id,
                secret_access_key: Secret::credential(secret),
                session_token: field("Token").map(Secret::credential),
            }),
            _ => Err("the role credentials lack AccessKeyId or SecretAccessKey".to_owned()),
        };
        backend_core::key::wipe(&mut v);
        creds
    }
}

fn unreachable(what: &str, f: &Failure) -> String {
    format!("{what} not reachable ({f})")
}

/// Whether the metadata service's answer is an IAM role name (letters,
/// digits and `+=,.@_-`, at most 64), so that `url/<role>` names that role
/// and no other path (`..`, `?`, `#` cannot reach it).
fn is_role_name(role: &str) -> bool {
    (1..=64).contains(&role.len())
        && role != "."
        && role != ".."
        && role
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
}

/// The `GetCallerIdentity` request signed with SigV4 at `now`, as the
/// JSON Google's STS expects: `{url, method, headers: [{key, value}]}`,
/// `Authorization` first, then the signed headers by name.
pub fn sign(
    url: &str,
    region: &str,
    audience: &str,
    creds: &AwsCredentials,
    now: SystemTime,
) -> Result<Value, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| "regional_cred_verification_url is not a URL")?;
    // The host without a port, as Google's own libraries sign it.
    let host = parsed
        .host_str()
        .ok_or("regional_cred_verification_url has no host")?
        .to_owned();
    let mut headers: Vec<(String, String)> = vec![
        ("host".into(), host),
        ("x-goog-cloud-target-resource".into(), audience.to_owned()),
    ];
    let credentials = Credentials::new(
        &creds.access_key_id,
        creds.secret_access_key.expose(),
        creds.session_token.as_ref().map(|t| t.expose().to_owned()),
        None,
        "gcp-aws1",
    );
    let to_sign: Vec<(&str, &str)> = headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    // x-amz-date, x-amz-security-token (with a session token), authorization.
    let signed = sigv4::sign_post(credentials, "sts", region, url, &to_sign, b"", now)
        .map_err(|e| format!("cannot sign the AWS request: {e}"))?;
    let mut authorization = None;
    for (name, value) in signed.headers {
        if name == "authorization" {
            authorization = Some(value.expose().to_owned());
        } else {
            headers.push((name, value.expose().to_owned()));
        }
    }
    let authorization = authorization.ok_or("the AWS signer gave no Authorization")?;
    headers.sort();
    let mut list = vec![json!({"key": "Authorization", "value": authorization})];
    list.extend(headers.iter().map(|(k, v)| json!({"key": k, "value": v})));
    Ok(json!({"url": url, "method": "POST", "headers": list}))
}

fn uri_encode(s: &str) -> String {
    let mut out = String::new();
    crate::credentials::percent_encode(s, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_are_iam_names_only() {
        for ok in ["agent-role", "a.b@c_d+e=f,g", "x"] {
            assert!(is_role_name(ok), "{ok}");
        }
        for bad in [
            "",
            ".",
            "..",
            "../x",
            "r?x=1",
            "r#f",
            "r/x",
            "r x",
            &"r".repeat(65),
        ] {
            assert!(!is_role_name(bad), "{bad}");
        }
    }

    /// A known answer: the signature of these fixed inputs as computed by a
    /// Python transcription (hmac, hashlib) of the steps of the hand-written
    /// signer this module had before it used `aws-sigv4`: the canonical
    /// request `POST`, `/`, the sorted query, the four headers, the hash of
    /// the empty body; the scope `<day>/<region>/sts/aws4_request`.
    const KNOWN_SIGNATURE: &str =
        "170ac9ab8fbb66f94f3d35b880a35d2f1ff86c4d82a7ef52fdbe589762e0b93c";

    #[test]
    fn the_signed_request() {
        let creds = AwsCredentials {
            access_key_id: "AKIDEXAMPLE".into(),
            secret_access_key: Secret::from("wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"),
            session_token: Some(Secret::from("session-TOKEN")),
        };
        let url = DEFAULT_VERIFICATION_URL.replace("{region}", "eu-west-1");
        let v = sign(
            &url,
            "eu-west-1",
            "//iam.googleapis.com/x",
            &creds,
            SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_735_787_045),
        )
        .unwrap();
        assert_eq!(v["method"], "POST");
        assert_eq!(v["url"], url);
        let headers = v["headers"].as_array().unwrap();
        let get = |k: &str| {
            headers
                .iter()
                .find(|h| h["key"] == k)
                .and_then(|h| h["value"].as_str())
                .unwrap()
                .to_owned()
        };
        assert_eq!(get("host"), "sts.eu-west-1.amazonaws.com");
        assert_eq!(
            get("x-goog-cloud-target-resource"),
            "//iam.googleapis.com/x"
        );
        assert_eq!(get("x-amz-security-token"), "session-TOKEN");
        assert_eq!(get("x-amz-date"), "20250102T030405Z");
        let auth = get("Authorization");
        assert_eq!(
            auth,
            format!(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250102/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature={KNOWN_SIGNATURE}"
            )
        );
        let keys: Vec<&str> = headers.iter().filter_map(|h| h["key"].as_str()).collect();
        assert_eq!(
            keys,
            [
                "Authorization",
                "host",
                "x-amz-date",
                "x-amz-security-token",
                "x-goog-cloud-target-resource"
            ]
        );
        assert!(!auth.contains("wJalr"));
        assert_eq!(
            format!("{creds:?}"),
            "AwsCredentials { access_key_id: \"AKIDEXAMPLE\", .. }"
        );
        // Without a session token, none is sent nor signed.
        let plain = AwsCredentials {
            session_token: None,
            ..creds
        };
        let v = sign(
            &url,
            "eu-west-1",
            "//iam.googleapis.com/x",
            &plain,
            SystemTime::now(),
        )
        .unwrap();
        let text = v.to_string();
        assert!(!text.contains("x-amz-security-token"), "{text}");
        assert!(
            text.contains("SignedHeaders=host;x-amz-date;x-goog-cloud-target-resource,"),
            "{text}"
        );
    }
}
