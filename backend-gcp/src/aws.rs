//! The subject token of workload identity federation from AWS
//! (`external_account` with `credential_source.environment_id: aws1`).
//!
//! Google's STS takes, as proof of an AWS identity, a signed
//! `sts:GetCallerIdentity` request that it sends to AWS itself: we sign
//! it (AWS Signature Version 4, HMAC-SHA256 from ring) and hand it over,
//! URL-encoded JSON of its URL, method and headers, without ever calling
//! AWS STS. The signed headers include `x-goog-cloud-target-resource`, the
//! pool provider's audience, so the proof is good for that provider only.
//!
//! The AWS credentials and region come as Google's libraries find them:
//! `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY`(/`AWS_SESSION_TOKEN`) and
//! `AWS_REGION`/`AWS_DEFAULT_REGION` from the environment, else the EC2
//! instance metadata service at the file's `url` (role credentials) and
//! `region_url` (availability zone), with an IMDSv2 session token from
//! `imdsv2_session_token_url` when the file names one.

use backend_core::{Context, Secret};
use ring::{digest, hmac};
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
    let signed = sign(
        &url,
        &region,
        audience,
        &creds,
        &amz_date(crate::credentials::now()),
    )?;
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
        if role.is_empty() || !role.bytes().all(|b| b.is_ascii_graphic() && b != b'/') {
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

/// `YYYYMMDDTHHMMSSZ` of `secs` since the epoch.
pub fn amz_date(secs: u64) -> String {
    let days = secs / 86_400;
    let rem = secs % 86_400;
    // Howard Hinnant's civil_from_days.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn hmac(key: &[u8], data: &str) -> hmac::Tag {
    hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), data.as_bytes())
}

/// The `GetCallerIdentity` request signed with SigV4 at `date`, as the
/// JSON Google's STS expects: `{url, method, headers: [{key, value}]}`.
pub fn sign(
    url: &str,
    region: &str,
    audience: &str,
    creds: &AwsCredentials,
    date: &str,
) -> Result<Value, String> {
    let parsed =
        reqwest::Url::parse(url).map_err(|_| "regional_cred_verification_url is not a URL")?;
    let host = parsed
        .host_str()
        .ok_or("regional_cred_verification_url has no host")?
        .to_owned();
    let mut query: Vec<(String, String)> = parsed
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    query.sort();
    let canonical_query = query
        .iter()
        .map(|(k, v)| format!("{}={}", uri_encode(k), uri_encode(v)))
        .collect::<Vec<_>>()
        .join("&");
    let mut headers: Vec<(&str, String)> = vec![
        ("host", host),
        ("x-amz-date", date.to_owned()),
        ("x-goog-cloud-target-resource", audience.to_owned()),
    ];
    if let Some(t) = &creds.session_token {
        headers.push(("x-amz-security-token", t.expose().to_owned()));
    }
    headers.sort();
    let canonical_headers: String = headers
        .iter()
        .map(|(k, v)| format!("{k}:{}\n", v.trim()))
        .collect();
    let signed_headers = headers
        .iter()
        .map(|(k, _)| *k)
        .collect::<Vec<_>>()
        .join(";");
    let empty_hash = hex(digest::digest(&digest::SHA256, b"").as_ref());
    let path = if parsed.path().is_empty() {
        "/"
    } else {
        parsed.path()
    };
    let canonical = format!(
        "POST\n{path}\n{canonical_query}\n{canonical_headers}\n{signed_headers}\n{empty_hash}"
    );
    let day = date.get(..8).ok_or("bad date")?;
    let scope = format!("{day}/{region}/sts/aws4_request");
    let to_sign = format!(
        "AWS4-HMAC-SHA256\n{date}\n{scope}\n{}",
        hex(digest::digest(&digest::SHA256, canonical.as_bytes()).as_ref())
    );
    let secret = zeroize::Zeroizing::new(format!("AWS4{}", creds.secret_access_key.expose()));
    let k_date = hmac(secret.as_bytes(), day);
    let k_region = hmac(k_date.as_ref(), region);
    let k_service = hmac(k_region.as_ref(), "sts");
    let k_signing = hmac(k_service.as_ref(), "aws4_request");
    let signature = hex(hmac(k_signing.as_ref(), &to_sign).as_ref());
    let authorization = format!(
        "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
        creds.access_key_id
    );
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
    fn dates() {
        assert_eq!(amz_date(0), "19700101T000000Z");
        assert_eq!(amz_date(1_440_938_160), "20150830T123600Z");
        assert_eq!(amz_date(951_782_400), "20000229T000000Z");
        assert_eq!(amz_date(4_102_444_799), "20991231T235959Z");
    }

    /// The signing key and signature chain of AWS's SigV4 documentation
    /// example (secret `wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY`,
    /// 20150830, us-east-1, iam): the derived signing key is
    /// c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9.
    #[test]
    fn the_signing_key_matches_aws_documentation() {
        let secret = "AWS4wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
        let k = hmac(secret.as_bytes(), "20150830");
        let k = hmac(k.as_ref(), "us-east-1");
        let k = hmac(k.as_ref(), "iam");
        let k = hmac(k.as_ref(), "aws4_request");
        assert_eq!(
            hex(k.as_ref()),
            "c4afb1cc5771d871763a393e44b703571b55cc28424d1a5e86da6ed3c154a4b9"
        );
    }

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
            "20250102T030405Z",
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
        let auth = get("Authorization");
        assert!(
            auth.starts_with(
                "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20250102/eu-west-1/sts/aws4_request, SignedHeaders=host;x-amz-date;x-amz-security-token;x-goog-cloud-target-resource, Signature="
            ),
            "{auth}"
        );
        assert!(!auth.contains("wJalr"));
        assert_eq!(
            format!("{creds:?}"),
            "AwsCredentials { access_key_id: \"AKIDEXAMPLE\", .. }"
        );
    }
}
