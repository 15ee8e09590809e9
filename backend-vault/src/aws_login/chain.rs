//! The AWS credentials the `aws` login signs with: the links of the SDK's
//! default chain, in its order, each the way `secret-backend-aws` (the SDK)
//! reads it, over the reqwest client this backend already links.
//!
//! Why not the SDK's chain itself (`aws-config`, as `secret-backend-aws`
//! uses): it brings the SDK's runtime and an STS client, 1.4 MB of the
//! stripped vault binary (measured: 3.07 MB to 4.48 MB, over its 3.5 MB
//! target), where this chain and the SDK's signer crate cost about 0.2 MB.
//!
//! 1. **environment**: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
//!    `AWS_SESSION_TOKEN`;
//! 2. **profile** `AWS_PROFILE` (default `default`) of the shared
//!    credentials file (`AWS_SHARED_CREDENTIALS_FILE`, `~/.aws/credentials`)
//!    and config file (`AWS_CONFIG_FILE`, `~/.aws/config`): static keys, or
//!    `role_arn` with `web_identity_token_file`. Profiles that assume a role
//!    from another profile, run a `credential_process` or use SSO are
//!    refused by name (not supported here; `secret-backend-aws` has them);
//! 3. **web identity** (EKS IRSA): `AWS_WEB_IDENTITY_TOKEN_FILE` and
//!    `AWS_ROLE_ARN` (`AWS_ROLE_SESSION_NAME`), exchanged with
//!    `AssumeRoleWithWebIdentity` at STS (`AWS_ENDPOINT_URL_STS`,
//!    `AWS_ENDPOINT_URL`, else the region's endpoint);
//! 4. **ECS container credentials**: `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`
//!    (at `169.254.170.2`) or `AWS_CONTAINER_CREDENTIALS_FULL_URI` (https,
//!    or http to a loopback or the ECS/EKS pod identity agent address), with
//!    `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` / `_TOKEN`;
//! 5. **instance metadata** (IMDSv2, `AWS_EC2_METADATA_SERVICE_ENDPOINT`,
//!    off with `AWS_EC2_METADATA_DISABLED=true`).
//!
//! A link that is not configured passes to the next; one that is
//! configured and fails ends the chain with its error. Failing fast: the
//! metadata and container endpoints get a 1 s connect and 2 s total
//! timeout, no proxy and no retry, so a host without credentials gets, well
//! within the deadline, one error naming each source and what it said.
//!
//! Every file is read through [`backend_core::fs`] (regular files only,
//! opened without blocking, bounded, refused when group or others can write
//! it), and every credential met (secret keys, session tokens, the web
//! identity and container tokens, the metadata session token) is
//! [held](backend_core::secret::hold). Answers are read up to 64 KiB and
//! never shown: messages carry statuses and AWS error codes.

use std::collections::BTreeMap;
use std::io::ErrorKind as IoKind;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backend_core::fs::{ReadError, Rules};
use backend_core::{HandleError, Secret};
use reqwest::header::HeaderValue;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::Env;

/// Largest shared config or credentials file read.
pub const MAX_PROFILE_BYTES: u64 = 256 * 1024;
/// Largest answer read from STS, the container or the metadata endpoint.
const MAX_ANSWER: usize = 64 * 1024;
/// Connect and total timeouts of the metadata and container endpoints.
const LOCAL_CONNECT: Duration = Duration::from_secs(1);
const LOCAL_TIMEOUT: Duration = Duration::from_secs(2);
/// The instance metadata service.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The ECS container credentials endpoint of relative URIs.
const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// The session name of a web identity role when none is set.
pub const SESSION_NAME: &str = "secret-backend-vault";

/// The variables the chain reads.
pub const VARS: [&str; 21] = [
    "HOME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_PROFILE",
    "AWS_REGION",
    "AWS_DEFAULT_REGION",
    "AWS_CONFIG_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_ROLE_ARN",
    "AWS_ROLE_SESSION_NAME",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_STS",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
    "AWS_EC2_METADATA_DISABLED",
    "AWS_EC2_METADATA_SERVICE_ENDPOINT",
    "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
];

/// Variables whose values are credentials.
const CREDENTIAL_VARS: [&str; 3] = [
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_CONTAINER_AUTHORIZATION_TOKEN",
];

/// Profile keys whose values are credentials.
const CREDENTIAL_KEYS: [&str; 2] = ["aws_secret_access_key", "aws_session_token"];

/// Profile keys of the kinds of profile this chain does not follow.
const UNSUPPORTED_KEYS: [(&str, &str); 5] = [
    ("source_profile", "assumes a role from another profile"),
    ("credential_source", "assumes a role from another source"),
    ("credential_process", "runs a credential_process"),
    ("sso_session", "uses AWS IAM Identity Center (SSO)"),
    ("sso_start_url", "uses AWS IAM Identity Center (SSO)"),
];

/// An AWS identity; the secret parts held.
#[derive(Debug)]
pub struct AwsCredentials {
    /// The access key id (not secret; shown in the signed request).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: Secret,
    /// The session token of temporary credentials.
    pub session_token: Option<Secret>,
}

impl AwsCredentials {
    /// Credentials, the secret key and token [held](backend_core::secret::hold).
    pub fn new(access_key_id: String, secret: String, token: Option<String>) -> Self {
        Self {
            access_key_id,
            secret_access_key: Secret::credential(secret),
            session_token: token.filter(|t| !t.is_empty()).map(Secret::credential),
        }
    }
}

/// The environment and the shared files, read once per login.
#[derive(Debug)]
pub struct Sources {
    vars: BTreeMap<&'static str, String>,
    /// The profile's name, and whether `AWS_PROFILE` named it.
    profile: String,
    named: bool,
    /// The profile's properties: the credentials file's first, then the
    /// config file's (the credentials file wins, as in the SDK).
    properties: Vec<(String, Secret)>,
    /// The files read, for messages.
    files: String,
}

/// What a link found.
enum Link {
    Found(AwsCredentials),
    /// Not configured, or nothing there: why, for the final message.
    Absent(String),
}

impl Sources {
    /// Reads the variables and the shared config and credentials files.
    pub fn read(env: &dyn Env) -> Result<Self, HandleError> {
        let vars: BTreeMap<&'static str, String> = VARS
            .iter()
            .filter_map(|k| Some((*k, env.var(k)?)))
            .collect();
        for k in CREDENTIAL_VARS {
            if let Some(v) = vars.get(k) {
                backend_core::secret::hold(&Secret::from(v.as_str()));
            }
        }
        let home = vars.get("HOME").map(String::as_str);
        let path = |var: &str, default: &str| -> Option<PathBuf> {
            match vars.get(var) {
                Some(p) => Some(expand_home(p, home)),
                None => home.map(|h| expand_home(default, Some(h))),
            }
        };
        let (named, profile) = match vars.get("AWS_PROFILE") {
            Some(p) => (true, p.trim().to_owned()),
            None => (false, "default".to_owned()),
        };
        let credentials_file = path("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
        let config_file = path("AWS_CONFIG_FILE", "~/.aws/config");
        let mut properties = Vec::new();
        let mut files = Vec::new();
        for (file, what, config) in [
            (&credentials_file, "AWS shared credentials file", false),
            (&config_file, "AWS config file", true),
        ] {
            let Some(file) = file else { continue };
            files.push(file.display().to_string());
            let text = read_profile_file(file, what)?;
            let before = properties.len();
            properties.extend(section(&text, &profile, config));
            if properties[before..]
                .iter()
                .any(|(k, _)| CREDENTIAL_KEYS.contains(&k.as_str()))
            {
                backend_core::config::warn_if_readable_by_others(
                    file,
                    &format!("{what} holding keys"),
                );
            }
        }
        Ok(Self {
            vars,
            profile,
            named,
            properties,
            files: if files.is_empty() {
                "no HOME, no AWS_CONFIG_FILE".into()
            } else {
                files.join(", ")
            },
        })
    }

    fn var(&self, name: &str) -> Option<&str> {
        self.vars.get(name).map(String::as_str)
    }

    fn prop(&self, key: &str) -> Option<&str> {
        self.properties
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.expose())
    }

    /// The SDK's region chain, the metadata service aside: `AWS_REGION`,
    /// `AWS_DEFAULT_REGION`, the profile's `region`.
    pub fn region(&self) -> Option<String> {
        self.var("AWS_REGION")
            .or_else(|| self.var("AWS_DEFAULT_REGION"))
            .or_else(|| self.prop("region"))
            .map(|r| r.trim().to_owned())
            .filter(|r| !r.is_empty())
    }

    /// What the chain tries, for a message that has nothing more to say.
    pub fn tried(&self) -> String {
        format!(
            "environment AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, profile '{}' in the shared \
             config and credentials files, web identity token (AWS_WEB_IDENTITY_TOKEN_FILE), \
             ECS container credentials, instance metadata",
            self.profile
        )
    }

    /// The first credentials of the chain (see the module docs).
    pub async fn credentials(&self) -> Result<AwsCredentials, HandleError> {
        let mut absent = Vec::new();
        for step in 0..5 {
            let link = match step {
                0 => self.environment()?,
                1 => self.profile().await?,
                2 => self.web_identity_from_env().await?,
                3 => self.container().await?,
                _ => self.instance_metadata().await?,
            };
            match link {
                Link::Found(c) => return Ok(c),
                Link::Absent(why) => absent.push(why),
            }
        }
        Err(HandleError::permission_denied(format!(
            "no AWS credentials found (tried: {})",
            absent.join("; ")
        )))
    }

    fn environment(&self) -> Result<Link, HandleError> {
        match (
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            (Some(id), Some(secret)) => Ok(Link::Found(AwsCredentials::new(
                id.trim().to_owned(),
                secret.trim().to_owned(),
                self.var("AWS_SESSION_TOKEN").map(|t| t.trim().to_owned()),
            ))),
            (None, None) => Ok(Link::Absent(
                "environment: AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY not set".into(),
            )),
            _ => Err(HandleError::permission_denied(
                "AWS credentials in the environment: AWS_ACCESS_KEY_ID and \
                 AWS_SECRET_ACCESS_KEY go together, one of them is not set",
            )),
        }
    }

    async fn profile(&self) -> Result<Link, HandleError> {
        let name = &self.profile;
        if self.properties.is_empty() {
            if self.named {
                return Err(HandleError::permission_denied(format!(
                    "AWS_PROFILE names profile '{name}', which is not in {}",
                    self.files
                )));
            }
            return Ok(Link::Absent(format!(
                "profile '{name}': not in {}",
                self.files
            )));
        }
        if let (Some(id), Some(secret)) = (
            self.prop("aws_access_key_id"),
            self.prop("aws_secret_access_key"),
        ) {
            return Ok(Link::Found(AwsCredentials::new(
                id.to_owned(),
                secret.to_owned(),
                self.prop("aws_session_token").map(str::to_owned),
            )));
        }
        if let (Some(role), Some(token_file)) =
            (self.prop("role_arn"), self.prop("web_identity_token_file"))
        {
            let session = self.prop("role_session_name").unwrap_or(SESSION_NAME);
            return self.web_identity(token_file, role, session).await;
        }
        if let Some((_, what)) = UNSUPPORTED_KEYS
            .iter()
            .find(|(k, _)| self.prop(k).is_some())
        {
            return Err(HandleError::permission_denied(format!(
                "AWS profile '{name}' {what}, which the vault backend's AWS login does not \
                 support (it takes static keys, web identity, ECS container or instance \
                 credentials)"
            )));
        }
        Ok(Link::Absent(format!(
            "profile '{name}': no credentials in it"
        )))
    }

    async fn web_identity_from_env(&self) -> Result<Link, HandleError> {
        match (
            self.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.var("AWS_ROLE_ARN"),
        ) {
            (Some(file), Some(role)) => {
                let session = self.var("AWS_ROLE_SESSION_NAME").unwrap_or(SESSION_NAME);
                self.web_identity(file, role, session).await
            }
            (None, None) => Ok(Link::Absent(
                "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN not set".into(),
            )),
            _ => Err(HandleError::permission_denied(
                "web identity: AWS_WEB_IDENTITY_TOKEN_FILE and AWS_ROLE_ARN go together, one \
                 of them is not set",
            )),
        }
    }

    /// Where `AssumeRoleWithWebIdentity` goes, as the SDK decides.
    fn sts_endpoint(&self) -> String {
        let configured = match self.var("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS") {
            Some(v) if v.eq_ignore_ascii_case("true") => None,
            _ => self
                .var("AWS_ENDPOINT_URL_STS")
                .or_else(|| self.var("AWS_ENDPOINT_URL")),
        };
        match (configured, self.region()) {
            (Some(url), _) => url.trim().to_owned(),
            (None, Some(r)) if r.starts_with("cn-") => format!("https://sts.{r}.amazonaws.com.cn"),
            (None, Some(r)) => format!("https://sts.{r}.amazonaws.com"),
            (None, None) => "https://sts.amazonaws.com".into(),
        }
    }

    async fn web_identity(
        &self,
        token_file: &str,
        role_arn: &str,
        session: &str,
    ) -> Result<Link, HandleError> {
        let what = "web identity token file";
        let path = expand_home(token_file, self.var("HOME"));
        let token = match read_file(&path, what, backend_core::config::MAX_CREDENTIAL_BYTES)? {
            Some(t) => t,
            None => {
                return Err(HandleError::permission_denied(format!(
                    "{what} {}: not found",
                    path.display()
                )));
            }
        };
        let endpoint = self.sts_endpoint();
        let shown = backend_core::redact::url(&endpoint).into_owned();
        let body = Zeroizing::new(
            form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssumeRoleWithWebIdentity")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", role_arn)
                .append_pair("RoleSessionName", session)
                .append_pair("WebIdentityToken", token.expose())
                .finish(),
        );
        let request = client(false)?
            .post(&endpoint)
            .header(
                reqwest::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .body(body.as_bytes().to_vec());
        let failed = |cause: String| {
            HandleError::unavailable(format!(
                "web identity: AssumeRoleWithWebIdentity at {shown} failed: {cause}"
            ))
        };
        let answer = call(request).await.map_err(failed)?;
        let text = std::str::from_utf8(&answer.body).unwrap_or_default();
        if !answer.status.is_success() {
            return Err(HandleError::permission_denied(format!(
                "web identity: STS at {shown} refused AssumeRoleWithWebIdentity for {role_arn}: \
                 {} (HTTP {})",
                xml_text(text, "Code")
                    .filter(|c| c.len() <= 64 && c.bytes().all(|b| b.is_ascii_alphanumeric()))
                    .unwrap_or("no error code"),
                answer.status.as_u16()
            )));
        }
        match (
            xml_text(text, "AccessKeyId"),
            xml_text(text, "SecretAccessKey"),
            xml_text(text, "SessionToken"),
        ) {
            (Some(id), Some(secret), token) => Ok(Link::Found(AwsCredentials::new(
                id.to_owned(),
                unescape(secret),
                token.map(unescape),
            ))),
            _ => Err(failed("the answer holds no credentials".into())),
        }
    }

    async fn container(&self) -> Result<Link, HandleError> {
        let (url, local) = match (
            self.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(rel), _) if rel.starts_with('/') => (format!("{ECS_ENDPOINT}{rel}"), true),
            (Some(_), _) => {
                return Err(HandleError::permission_denied(
                    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI must start with '/'",
                ));
            }
            (None, Some(full)) => (full.trim().to_owned(), container_host_allowed(full)?),
            (None, None) => {
                return Ok(Link::Absent(
                    "ECS container credentials: AWS_CONTAINER_CREDENTIALS_RELATIVE_URI and \
                     _FULL_URI not set"
                        .into(),
                ));
            }
        };
        let token = match self.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(file) => read_file(
                &expand_home(file, self.var("HOME")),
                "container authorization token file",
                backend_core::config::MAX_CREDENTIAL_BYTES,
            )?,
            None => self
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(|t| Secret::from(t.trim())),
        };
        let shown = backend_core::redact::url(&url).into_owned();
        let mut request = client(local)?.get(&url);
        if let Some(t) = &token {
            let mut v = HeaderValue::from_str(t.expose()).map_err(|_| {
                HandleError::permission_denied(
                    "the container authorization token holds characters a header cannot carry",
                )
            })?;
            v.set_sensitive(true);
            request = request.header(reqwest::header::AUTHORIZATION, v);
        }
        let answer = call(request).await.map_err(|cause| {
            HandleError::unavailable(format!("ECS container credentials at {shown}: {cause}"))
        })?;
        if !answer.status.is_success() {
            return Err(HandleError::permission_denied(format!(
                "ECS container credentials at {shown}: HTTP {}",
                answer.status.as_u16()
            )));
        }
        json_credentials(&answer.body)
            .map(Link::Found)
            .ok_or_else(|| {
                HandleError::other(format!(
                    "ECS container credentials at {shown}: the answer holds no credentials"
                ))
            })
    }

    async fn instance_metadata(&self) -> Result<Link, HandleError> {
        if self
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"))
        {
            return Ok(Link::Absent(
                "instance metadata: disabled by AWS_EC2_METADATA_DISABLED".into(),
            ));
        }
        let base = self
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or(IMDS_ENDPOINT)
            .trim()
            .trim_end_matches('/')
            .to_owned();
        let shown = backend_core::redact::url(&base).into_owned();
        let absent = |cause: String| {
            Ok(Link::Absent(format!(
                "instance metadata at {shown}: {cause}"
            )))
        };
        let client = client(true)?;
        let answer = call(
            client
                .put(format!("{base}/latest/api/token"))
                .header("x-aws-ec2-metadata-token-ttl-seconds", "21600"),
        )
        .await;
        let answer = match answer {
            Ok(a) if a.status.is_success() => a,
            Ok(a) => return absent(format!("HTTP {} for a session token", a.status.as_u16())),
            Err(cause) => return absent(cause),
        };
        let token = std::str::from_utf8(&answer.body)
            .ok()
            .and_then(|t| HeaderValue::from_str(t.trim()).ok())
            .map(|mut v| {
                backend_core::secret::hold(&Secret::from(v.to_str().unwrap_or_default()));
                v.set_sensitive(true);
                v
            });
        let Some(token) = token else {
            return absent("the session token is not text".into());
        };
        let get = |path: String| {
            call(
                client
                    .get(format!("{base}{path}"))
                    .header("x-aws-ec2-metadata-token", token.clone()),
            )
        };
        let failed = |cause: String| {
            HandleError::unavailable(format!("instance metadata at {shown}: {cause}"))
        };
        let list = get("/latest/meta-data/iam/security-credentials/".into())
            .await
            .map_err(failed)?;
        if list.status == reqwest::StatusCode::NOT_FOUND {
            return absent("no instance profile (IAM role) attached".into());
        }
        let role = std::str::from_utf8(&list.body)
            .ok()
            .and_then(|l| l.lines().map(str::trim).find(|l| !l.is_empty()))
            .filter(|r| {
                list.status.is_success()
                    && r.len() <= 128
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            })
            .ok_or_else(|| failed(format!("no role name (HTTP {})", list.status.as_u16())))?
            .to_owned();
        let creds = get(format!("/latest/meta-data/iam/security-credentials/{role}"))
            .await
            .map_err(failed)?;
        if !creds.status.is_success() {
            return Err(failed(format!(
                "HTTP {} for the credentials of role {role}",
                creds.status.as_u16()
            )));
        }
        json_credentials(&creds.body)
            .map(Link::Found)
            .ok_or_else(|| failed(format!("no credentials for role {role}")))
    }
}

/// Whether a `AWS_CONTAINER_CREDENTIALS_FULL_URI` may be asked, as the SDK
/// decides: https anywhere, http only to a loopback address or the ECS and
/// EKS pod identity agents. `Ok(true)` for a local endpoint (no proxy,
/// short timeouts).
fn container_host_allowed(full: &str) -> Result<bool, HandleError> {
    let refuse = || {
        HandleError::permission_denied(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address, \
             169.254.170.2, 169.254.170.23 or fd00:ec2::23 (and carry no user:password@)",
        )
    };
    let url = reqwest::Url::parse(full.trim()).map_err(|_| refuse())?;
    if !url.username().is_empty() || url.password().is_some() {
        return Err(refuse());
    }
    let host = url.host_str().unwrap_or_default();
    let local = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            ip.is_loopback() || [[169, 254, 170, 2], [169, 254, 170, 23]].contains(&ip.octets())
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            ip.is_loopback() || ip.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23]
        }
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    };
    match url.scheme() {
        "http" if local => Ok(true),
        "https" => Ok(local),
        _ => Err(refuse()),
    }
}

/// A bounded answer.
struct Answer {
    status: reqwest::StatusCode,
    body: Zeroizing<Vec<u8>>,
}

/// Sends a request and reads its answer, at most [`MAX_ANSWER`] bytes.
/// Errors name the cause, never the answer.
async fn call(request: reqwest::RequestBuilder) -> Result<Answer, String> {
    let cause = |e: reqwest::Error| crate::http::transport_cause(&e.without_url());
    let mut response = request.send().await.map_err(cause)?;
    let status = response.status();
    let too_large = || format!("the answer is larger than {MAX_ANSWER} bytes");
    if response
        .content_length()
        .is_some_and(|n| n > MAX_ANSWER as u64)
    {
        return Err(too_large());
    }
    let mut body = Zeroizing::new(Vec::new());
    while let Some(chunk) = response.chunk().await.map_err(cause)? {
        if body.len() + chunk.len() > MAX_ANSWER {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Answer { status, body })
}

/// A reqwest client on the system roots, no redirects; `local`: no proxy
/// and short timeouts (the metadata and container endpoints).
fn client(local: bool) -> Result<reqwest::Client, HandleError> {
    let tls = backend_net::system_roots_config()
        .map_err(|e| HandleError::other(format!("TLS setup: {e}")))?;
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("secret-backend-vault/", env!("CARGO_PKG_VERSION")));
    if local {
        builder = builder
            .no_proxy()
            .connect_timeout(LOCAL_CONNECT)
            .timeout(LOCAL_TIMEOUT);
    }
    builder.build().map_err(|_| {
        HandleError::other(
            "cannot build the HTTP client for AWS: a proxy setting (HTTPS_PROXY, HTTP_PROXY, \
             ALL_PROXY) is invalid",
        )
    })
}

/// `AccessKeyId`, `SecretAccessKey`, `Token` of a container or metadata answer.
fn json_credentials(body: &[u8]) -> Option<AwsCredentials> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let text = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    let found = match (text(&v, "AccessKeyId"), text(&v, "SecretAccessKey")) {
        (Some(id), Some(secret)) => Some(AwsCredentials::new(id, secret, text(&v, "Token"))),
        _ => None,
    };
    backend_core::key::wipe(&mut v);
    found
}

/// The text of the first `<tag>...</tag>`.
fn xml_text<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml.get(start..)?.find(&format!("</{tag}>"))?;
    xml.get(start..start + len).map(str::trim)
}

/// XML's five entities, resolved.
fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

/// `~` as the first component is the home directory, as the SDK reads it.
fn expand_home(path: &str, home: Option<&str>) -> PathBuf {
    match (path.strip_prefix('~'), home) {
        (Some(rest), Some(home)) if rest.is_empty() || rest.starts_with('/') => {
            Path::new(home).join(rest.trim_start_matches('/'))
        }
        _ => PathBuf::from(path),
    }
}

fn rules(max: u64) -> Rules {
    Rules {
        max,
        refuse_writable: true,
    }
}

fn refused(what: &str, path: &Path, e: ReadError) -> HandleError {
    HandleError::permission_denied(e.config(what, path).to_string())
}

/// A shared config or credentials file's text; empty when there is none.
fn read_profile_file(path: &Path, what: &str) -> Result<Zeroizing<String>, HandleError> {
    match backend_core::fs::read_regular_text(path, rules(MAX_PROFILE_BYTES)) {
        Ok(text) => Ok(text),
        Err(ReadError::Io(e)) if e.kind() == IoKind::NotFound => Ok(Zeroizing::default()),
        Err(e) => Err(refused(what, path, e)),
    }
}

/// A token file, trimmed and held; `None` when it does not exist.
fn read_file(path: &Path, what: &str, max: u64) -> Result<Option<Secret>, HandleError> {
    match backend_core::fs::read_regular_text(path, rules(max)) {
        Ok(text) if text.trim().is_empty() => Err(HandleError::permission_denied(format!(
            "{what} {} is empty",
            path.display()
        ))),
        Ok(text) => Ok(Some(Secret::credential(text.trim().to_owned()))),
        Err(ReadError::Io(e)) if e.kind() == IoKind::NotFound => Ok(None),
        Err(e) => Err(refused(what, path, e)),
    }
}

/// The properties of profile `name` in a profile file: `[name]` in the
/// credentials file, `[profile name]` (or `[default]`) in the config file.
/// Lines as the SDK's parser reads them: a property starts a line (not a
/// comment, section or indented continuation), a comment after whitespace
/// is cut, both sides are trimmed. Credentials among them are held.
fn section(text: &str, name: &str, config: bool) -> Vec<(String, Secret)> {
    const BLANK: &[char] = &[' ', '\t'];
    let mut inside = false;
    let mut found = Vec::new();
    for line in text.lines() {
        if let Some(header) = line.trim().strip_prefix('[') {
            let header = header.split(']').next().unwrap_or_default().trim();
            // The config file names profiles `[profile x]`, the default one
            // `[default]` too; the credentials file names them bare.
            let profile = match header.strip_prefix("profile") {
                Some(rest) if config && rest.starts_with(BLANK) => Some(rest.trim_matches(BLANK)),
                _ if config && header != "default" => None,
                _ => Some(header),
            };
            inside = profile == Some(name);
            continue;
        }
        if !inside || line.starts_with(['#', ';', ' ', '\t']) {
            continue;
        }
        let mut end = line.len();
        let mut after_blank = false;
        for (i, c) in line.char_indices() {
            if (c == '#' || c == ';') && after_blank {
                end = i;
                break;
            }
            after_blank = c.is_whitespace();
        }
        let Some((k, v)) = line.get(..end).and_then(|l| l.split_once('=')) else {
            continue;
        };
        let (k, v) = (
            k.trim_matches(BLANK).to_ascii_lowercase(),
            v.trim_matches(BLANK),
        );
        if k.is_empty() || v.is_empty() {
            continue;
        }
        let v = if CREDENTIAL_KEYS.contains(&k.as_str()) {
            Secret::credential(v.to_owned())
        } else {
            Secret::from(v)
        };
        found.push((k, v));
    }
    found
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn env(pairs: &[(&str, String)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn write(path: &Path, text: &str) {
        std::fs::write(path, text).unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }

    #[test]
    fn profiles_as_the_sdk_reads_them() {
        let text = "[default]\nregion = us-east-2\n[profile ops]\nregion=eu-west-1 # here\n\
                    aws_access_key_id = AKIAOPS\naws_secret_access_key = ops/secret-key-0001\n\
                    [ops]\nregion = wrong\n";
        let props = |name, config| {
            section(text, name, config)
                .into_iter()
                .map(|(k, v)| (k, v.expose().to_owned()))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            props("default", true),
            [("region".into(), "us-east-2".into())]
        );
        assert_eq!(props("ops", true).len(), 3);
        assert_eq!(props("ops", true)[0].1, "eu-west-1");
        assert_eq!(props("ops", false), [("region".into(), "wrong".into())]);
        assert!(backend_core::secret::reveals_credential(
            "ops/secret-key-0001"
        ));
    }

    #[tokio::test]
    async fn links_in_order_and_what_was_tried() {
        let d = tempfile::tempdir().unwrap();
        let home = d.path().display().to_string();
        let base = [
            ("HOME", home.clone()),
            ("AWS_EC2_METADATA_DISABLED", "true".to_owned()),
        ];
        let s = Sources::read(&env(&base)).unwrap();
        let e = s.credentials().await.unwrap_err().to_string();
        for want in [
            "no AWS credentials found",
            "AWS_ACCESS_KEY_ID",
            "profile 'default'",
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
            "disabled by AWS_EC2_METADATA_DISABLED",
        ] {
            assert!(e.contains(want), "{want}: {e}");
        }
        std::fs::create_dir(d.path().join(".aws")).unwrap();
        write(
            &d.path().join(".aws/credentials"),
            "[default]\naws_access_key_id = AKIAFILE\naws_secret_access_key = file-secret-0001\n",
        );
        write(
            &d.path().join(".aws/config"),
            "[default]\nregion = eu-north-1\n",
        );
        let s = Sources::read(&env(&base)).unwrap();
        assert_eq!(s.region().as_deref(), Some("eu-north-1"));
        assert_eq!(s.credentials().await.unwrap().access_key_id, "AKIAFILE");
        let mut with_env = base.to_vec();
        with_env.push(("AWS_ACCESS_KEY_ID", "AKIAENV".into()));
        with_env.push(("AWS_SECRET_ACCESS_KEY", "env-secret-0001".into()));
        with_env.push(("AWS_REGION", "ap-south-1".into()));
        let s = Sources::read(&env(&with_env)).unwrap();
        assert_eq!(s.region().as_deref(), Some("ap-south-1"));
        let c = s.credentials().await.unwrap();
        assert_eq!(c.access_key_id, "AKIAENV");
        assert!(backend_core::secret::reveals_credential("env-secret-0001"));
        assert!(!format!("{c:?}").contains("env-secret-0001"));
        // A named profile that is not there, and one this chain cannot follow.
        let mut named = base.to_vec();
        named.push(("AWS_PROFILE", "nope".into()));
        let e = Sources::read(&env(&named))
            .unwrap()
            .credentials()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("profile 'nope'"), "{e}");
        write(
            &d.path().join(".aws/config"),
            "[profile sso]\nsso_session = corp\n",
        );
        named[2].1 = "sso".into();
        let e = Sources::read(&env(&named))
            .unwrap()
            .credentials()
            .await
            .unwrap_err();
        assert!(e.to_string().contains("SSO"), "{e}");
    }

    #[test]
    fn files_are_refused_by_name() {
        let d = tempfile::tempdir().unwrap();
        let loose = d.path().join("loose");
        std::fs::write(&loose, "[default]\n").unwrap();
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o666)).unwrap();
        let vars = [("AWS_CONFIG_FILE", loose.display().to_string())];
        let e = Sources::read(&env(&vars)).unwrap_err().to_string();
        assert!(
            e.contains("writable by group or others") && e.contains("loose"),
            "{e}"
        );
        let vars = [("AWS_SHARED_CREDENTIALS_FILE", "/dev/zero".to_owned())];
        let e = Sources::read(&env(&vars)).unwrap_err().to_string();
        assert!(
            e.contains("/dev/zero") && e.contains("not a regular file"),
            "{e}"
        );
    }

    #[test]
    fn container_endpoints_as_the_sdk_allows() {
        assert!(container_host_allowed("http://127.0.0.1:8080/creds").unwrap());
        assert!(container_host_allowed("http://169.254.170.23/v1/credentials").unwrap());
        assert!(container_host_allowed("http://[fd00:ec2::23]/x").unwrap());
        assert!(!container_host_allowed("https://creds.example.com/x").unwrap());
        assert!(container_host_allowed("http://creds.example.com/x").is_err());
        let e = container_host_allowed("https://u:PW-7@h/")
            .unwrap_err()
            .to_string();
        assert!(!e.contains("PW-7"), "{e}");
    }

    #[test]
    fn xml_and_json_answers() {
        let xml = "<R><Credentials><AccessKeyId>ASIA1</AccessKeyId>\
                   <SecretAccessKey>a&amp;b</SecretAccessKey></Credentials></R>";
        assert_eq!(xml_text(xml, "AccessKeyId"), Some("ASIA1"));
        assert_eq!(unescape(xml_text(xml, "SecretAccessKey").unwrap()), "a&b");
        assert_eq!(xml_text(xml, "SessionToken"), None);
        let c = json_credentials(
            br#"{"Code":"Success","AccessKeyId":"ASIA2","SecretAccessKey":"json-secret-0001","Token":"tok-0001"}"#,
        )
        .unwrap();
        assert_eq!(c.access_key_id, "ASIA2");
        assert_eq!(c.session_token.unwrap().expose(), "tok-0001");
        assert!(json_credentials(b"{}").is_none());
        assert!(json_credentials(b"not json").is_none());
    }
}
