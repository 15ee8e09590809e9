//! Google's application-default credentials, in their order:
//!
//! 1. `credentials_file:` of the config;
//! 2. else `$GOOGLE_APPLICATION_CREDENTIALS`;
//! 3. else gcloud's ADC file
//!    (`$CLOUDSDK_CONFIG/application_default_credentials.json`, default
//!    `~/.config/gcloud/`), written by `gcloud auth application-default login`;
//! 4. else the metadata server (GCE, GKE workload identity, Cloud Run), at
//!    `$GCE_METADATA_HOST` or `metadata.google.internal`, asked with
//!    `Metadata-Flavor: Google`, without a proxy and with a short connect
//!    timeout so a machine outside GCP fails fast.
//!
//! A credentials file is one of `service_account` (a key: an RS256 JWT
//! assertion, [`crate::jwt`], exchanged at the file's `token_uri`),
//! `authorized_user` (a refresh token), `external_account` (workload
//! identity federation: a subject token from a file or URL, or a signed
//! AWS request ([`crate::aws`]), exchanged at the STS `token_url`, then
//! optionally impersonation) or
//! `impersonated_service_account` (gcloud's ADC with
//! `--impersonate-service-account`). The file is read at every call,
//! bounded and refused when others can write it; the access token lives
//! for the call only and is held ([`backend_core::secret::hold`]), so no
//! reply can carry it. Nothing is written to disk unless `token_cache_file`
//! is configured ([`crate::cache`]).
//!
//! Every failure names the source tried (`GOOGLE_APPLICATION_CREDENTIALS
//! /path (service_account a@b): the token endpoint ... refused the
//! assertion (HTTP 400, invalid_grant)`); from a token endpoint's answer
//! only its `error` code word is shown, never a body or a token.

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use backend_core::config::{MAX_CREDENTIAL_BYTES, read_guarded};
use backend_core::{Context, ErrorKind, HandleError, Secret};
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, HeaderValue};
use serde::Deserialize;
use serde_json::Value;
use zeroize::{Zeroize, Zeroizing};

use crate::http::{Failure, Http};
use crate::jwt;

/// Google's OAuth token endpoint, the default `token_uri`.
pub const GOOGLE_TOKEN_URI: &str = "https://oauth2.googleapis.com/token";
/// The metadata server's name on GCE and GKE.
pub const METADATA_HOST: &str = "metadata.google.internal";
/// The token path of the metadata server.
pub const METADATA_TOKEN_PATH: &str = "/computeMetadata/v1/instance/service-accounts/default/token";
/// The project id path of the metadata server.
pub const METADATA_PROJECT_PATH: &str = "/computeMetadata/v1/project/project-id";
/// The gcloud ADC file, under gcloud's config directory.
pub const ADC_FILE: &str = "application_default_credentials.json";
/// The lifetime asked of impersonated tokens (IAM's default and maximum).
const IMPERSONATED_LIFETIME: u64 = 3600;
/// Largest token endpoint answer read.
const MAX_TOKEN_BODY: usize = 64 * 1024;
/// Longest access token accepted.
const MAX_TOKEN: usize = 8 * 1024;

const TOKEN_EXCHANGE: &str = "urn:ietf:params:oauth:grant-type:token-exchange";
const JWT_BEARER: &str = "urn:ietf:params:oauth:grant-type:jwt-bearer";
const ACCESS_TOKEN_TYPE: &str = "urn:ietf:params:oauth:token-type:access_token";

/// Where the environment is read from (the process's, or a test's).
pub type Env<'a> = &'a (dyn Fn(&str) -> Option<String> + Sync);

/// An access token for one call, and where it came from.
#[derive(Debug)]
pub struct Token {
    /// `Bearer <token>`, a sensitive header value.
    pub header: HeaderValue,
    /// The source, for messages (`metadata server metadata.google.internal`).
    pub source: String,
    /// The project the credentials name (a service account's), if any.
    pub project: Option<String>,
    /// The project billed for the calls (an authorized user's
    /// `quota_project_id`), sent as `x-goog-user-project` as Google's
    /// clients do.
    pub quota_project: Option<String>,
    /// When the token expires (seconds since the epoch), if its issuer said.
    pub expires_at: Option<u64>,
    /// Whether it came from the token cache file.
    pub cached: bool,
    /// Set when Secret Manager refused it (HTTP 401): a cached token is
    /// then forgotten.
    pub rejected: std::sync::atomic::AtomicBool,
}

/// A token as an issuer gave it, and its lifetime in seconds if said.
#[derive(Debug)]
struct Access {
    token: Secret,
    lifetime: Option<u64>,
}

/// Why no token came: the kind the handles' errors get (a refusal is
/// `permission denied`, an unreachable or failing endpoint `unavailable`,
/// a bad file `other`) and the message.
#[derive(Debug)]
struct Why {
    kind: ErrorKind,
    text: String,
}

impl From<String> for Why {
    fn from(text: String) -> Self {
        Self {
            kind: ErrorKind::Other,
            text,
        }
    }
}

impl From<&str> for Why {
    fn from(text: &str) -> Self {
        text.to_owned().into()
    }
}

impl Why {
    fn new(kind: ErrorKind, text: String) -> Self {
        Self { kind, text }
    }

    /// `what` could not be asked: unavailable, or timed out.
    fn unreached(what: String, f: &Failure) -> Self {
        let kind = match f {
            Failure::TimedOut => ErrorKind::TimedOut,
            _ => ErrorKind::Unavailable,
        };
        Self::new(kind, format!("{what} not reachable ({f})"))
    }

    /// An endpoint answered `status`: throttled or failing is unavailable,
    /// any other refusal permission denied.
    fn refused(status: reqwest::StatusCode, text: String) -> Self {
        let kind = if status.is_server_error() || status.as_u16() == 429 {
            ErrorKind::Unavailable
        } else {
            ErrorKind::PermissionDenied
        };
        Self::new(kind, text)
    }

    fn handle_error(self, context: &str) -> HandleError {
        HandleError::new(self.kind, format!("{context}: {}", self.text))
    }
}

/// Where the chain found credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A credentials file, and which step of the chain named it.
    File {
        /// The file.
        path: PathBuf,
        /// `credentials_file`, `GOOGLE_APPLICATION_CREDENTIALS` or `gcloud ADC file`.
        from: &'static str,
    },
    /// The metadata server at this host (`host[:port]`).
    Metadata {
        /// The host.
        host: String,
        /// What the earlier steps found (for the message when it fails too).
        tried: String,
    },
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::File { path, from } => write!(f, "{from} {}", path.display()),
            Self::Metadata { host, .. } => write!(f, "metadata server {host}"),
        }
    }
}

/// Steps 1 to 4 of the chain, told from the config and the environment;
/// reads no file but checks whether the ADC file exists.
pub fn source(configured: Option<&Path>, env: Env<'_>) -> Source {
    let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
    if let Some(path) = configured {
        return Source::File {
            path: path.to_owned(),
            from: "credentials_file",
        };
    }
    if let Some(path) = env("GOOGLE_APPLICATION_CREDENTIALS") {
        return Source::File {
            path: path.into(),
            from: "GOOGLE_APPLICATION_CREDENTIALS",
        };
    }
    let adc = adc_path(&env);
    if let Some(path) = adc.as_ref().filter(|p| p.exists()) {
        return Source::File {
            path: path.clone(),
            from: "gcloud ADC file",
        };
    }
    let tried = format!(
        "GOOGLE_APPLICATION_CREDENTIALS unset, no gcloud ADC file{}",
        adc.map(|p| format!(" ({})", p.display()))
            .unwrap_or_default()
    );
    Source::Metadata {
        host: env("GCE_METADATA_HOST").unwrap_or_else(|| METADATA_HOST.to_owned()),
        tried,
    }
}

/// gcloud's ADC file: `$CLOUDSDK_CONFIG/...`, else `$HOME/.config/gcloud/...`.
fn adc_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    if let Some(dir) = env("CLOUDSDK_CONFIG") {
        return Some(PathBuf::from(dir).join(ADC_FILE));
    }
    env("HOME").map(|h| PathBuf::from(h).join(".config/gcloud").join(ADC_FILE))
}

/// A credentials file, by its `type`.
#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum File {
    ServiceAccount(ServiceAccount),
    AuthorizedUser(AuthorizedUser),
    ExternalAccount(Box<ExternalAccount>),
    ImpersonatedServiceAccount(Impersonated),
}

impl std::fmt::Debug for File {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.kind())
    }
}

impl File {
    fn kind(&self) -> &'static str {
        match self {
            Self::ServiceAccount(_) => "service_account",
            Self::AuthorizedUser(_) => "authorized_user",
            Self::ExternalAccount(_) => "external_account",
            Self::ImpersonatedServiceAccount(_) => "impersonated_service_account",
        }
    }
}

/// Fields of secret text (a private key, a client secret, a refresh
/// token), zeroized on drop and held ([`backend_core::secret::hold`]) as
/// they are read: no reply may carry a credential of ours, even when a
/// secret's payload is one.
#[derive(Deserialize, Default)]
#[serde(from = "String")]
struct Hidden(Secret);

impl From<String> for Hidden {
    fn from(s: String) -> Self {
        Self(Secret::credential(s))
    }
}

#[derive(Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: Hidden,
    #[serde(default)]
    private_key_id: Option<String>,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    project_id: Option<String>,
}

#[derive(Deserialize)]
struct AuthorizedUser {
    client_id: String,
    client_secret: Hidden,
    refresh_token: Hidden,
    #[serde(default)]
    token_uri: Option<String>,
    #[serde(default)]
    quota_project_id: Option<String>,
}

#[derive(Deserialize)]
struct ExternalAccount {
    audience: String,
    subject_token_type: String,
    token_url: String,
    credential_source: CredentialSource,
    #[serde(default)]
    service_account_impersonation_url: Option<String>,
}

#[derive(Deserialize)]
struct CredentialSource {
    #[serde(default)]
    file: Option<PathBuf>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    format: Option<SubjectFormat>,
    #[serde(default)]
    environment_id: Option<String>,
    #[serde(default)]
    region_url: Option<String>,
    #[serde(default)]
    regional_cred_verification_url: Option<String>,
    #[serde(default)]
    imdsv2_session_token_url: Option<String>,
    #[serde(default)]
    executable: Option<Value>,
}

#[derive(Deserialize)]
struct SubjectFormat {
    #[serde(rename = "type", default)]
    kind: Option<String>,
    #[serde(default)]
    subject_token_field_name: Option<String>,
}

#[derive(Deserialize)]
struct Impersonated {
    service_account_impersonation_url: String,
    source_credentials: Box<File>,
}

/// The access token for this call, from the chain's first source, or
/// from the token cache file when one is configured and holds a token of
/// the same source (the same credentials file content) with at least five
/// minutes to live ([`crate::cache`]).
pub async fn token(
    configured: Option<&Path>,
    cache: Option<&Path>,
    env: Env<'_>,
    ctx: &Context,
) -> Result<Token, HandleError> {
    let src = source(configured, env);
    let (key, token) = match &src {
        Source::File { path, .. } => {
            let (file, digest) =
                read_file(path).map_err(|e| HandleError::other(format!("{src}: {e}")))?;
            let shown = match &file {
                File::ServiceAccount(sa) => format!("{src} (service_account {})", sa.client_email),
                other => format!("{src} ({})", other.kind()),
            };
            let key = format!("{src} sha256:{digest}");
            if let Some(t) = cache.and_then(|c| crate::cache::load(c, &key, now())) {
                return Ok(t);
            }
            // It goes into the request path: only a project id may, never
            // text that would make it name another secret (`/`, `?`, `#`).
            let project = match &file {
                File::ServiceAccount(sa) => sa
                    .project_id
                    .clone()
                    .filter(|p| crate::handle::is_project(p)),
                _ => None,
            };
            let quota_project = match &file {
                File::AuthorizedUser(u) => u
                    .quota_project_id
                    .clone()
                    .filter(|p| crate::handle::is_project(p)),
                _ => None,
            };
            let http = Http::new().map_err(|e| Why::from(e).handle_error(&shown))?;
            let access = from_file(&file, &http, env, ctx)
                .await
                .map_err(|e| e.handle_error(&shown))?;
            let token = Token {
                header: bearer(&access.token).map_err(|e| Why::from(e).handle_error(&shown))?,
                source: shown,
                project,
                quota_project,
                expires_at: access.lifetime.map(|l| now() + l),
                cached: false,
                rejected: false.into(),
            };
            (key, (token, access.token))
        }
        Source::Metadata { host, tried } => {
            let shown = src.to_string();
            if let Some(t) = cache.and_then(|c| crate::cache::load(c, &shown, now())) {
                return Ok(t);
            }
            let http = Http::metadata().map_err(|e| Why::from(e).handle_error(&shown))?;
            let access = metadata_token(&http, host, ctx).await.map_err(|e| match e {
                Unreached::NotThere(cause) => HandleError::new(
                    if cause == Failure::TimedOut {
                        ErrorKind::TimedOut
                    } else {
                        ErrorKind::Unavailable
                    },
                    format!(
                        "no credentials: {tried}, metadata server {host} not reachable ({cause}); set credentials_file or GOOGLE_APPLICATION_CREDENTIALS outside GCP"
                    ),
                ),
                Unreached::Refused(cause) => {
                    HandleError::permission_denied(format!("{shown}: {cause}"))
                }
            })?;
            let token = Token {
                header: bearer(&access.token).map_err(|e| Why::from(e).handle_error(&shown))?,
                source: shown.clone(),
                project: None,
                quota_project: None,
                expires_at: access.lifetime.map(|l| now() + l),
                cached: false,
                rejected: false.into(),
            };
            (shown, (token, access.token))
        }
    };
    let (token, raw) = token;
    if let Some(c) = cache {
        crate::cache::store(c, &key, &token, &raw);
    }
    Ok(token)
}

/// Reads the credentials file the chain would use, if any, and holds what
/// it holds (its private key, client secret, refresh token, and a subject
/// token read from a file), sending nothing; a file that cannot be read is
/// skipped. For a process serving this store beside others: a value equal
/// to one of them is then refused whether or not a handle of this store is
/// in the request.
pub fn hold(configured: Option<&Path>, env: Env<'_>) {
    let Source::File { path, .. } = source(configured, env) else {
        return;
    };
    let Ok((file, _)) = read_file(&path) else {
        return;
    };
    let File::ExternalAccount(x) = &file else {
        return;
    };
    hold_headers(&x.credential_source);
    if let Some(subject) = &x.credential_source.file
        && let Ok(mut text) = read_guarded(subject, "subject token file", MAX_CREDENTIAL_BYTES)
    {
        drop(Secret::credential(text.trim().to_owned()));
        text.zeroize();
    }
}

/// Holds the values of a URL-sourced subject token's `headers` that may be
/// credentials (an `Authorization` header's token): those of at least
/// [`backend_core::secret::MIN_CONTAINED`] characters. Shorter ones
/// (`Metadata: true`) are not held, or every secret equal to them would
/// be refused.
fn hold_headers(src: &CredentialSource) {
    for v in src.headers.values() {
        if v.trim().len() >= backend_core::secret::MIN_CONTAINED {
            backend_core::secret::hold(&Secret::from(v.trim()));
        }
    }
}

/// The metadata server's project id, for handles that name no project
/// when none is configured.
pub async fn metadata_project(host: &str, ctx: &Context) -> Result<String, String> {
    let http = Http::metadata()?;
    let url = format!("http://{host}{METADATA_PROJECT_PATH}");
    let resp = http
        .send(ctx, 1024, |c| {
            c.get(&url).header("Metadata-Flavor", "Google")
        })
        .await
        .map_err(|e| format!("metadata server {host} not reachable ({e})"))?;
    let text = std::str::from_utf8(&resp.body).unwrap_or_default().trim();
    if resp.status.is_success() && crate::handle::is_project(text) {
        Ok(text.to_owned())
    } else {
        Err(format!(
            "metadata server {host} gave no project id (HTTP {})",
            resp.status.as_u16()
        ))
    }
}

fn bearer(token: &Secret) -> Result<HeaderValue, String> {
    let mut v = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
        .map_err(|_| "the access token holds characters a header cannot carry".to_owned())?;
    v.set_sensitive(true);
    Ok(v)
}

/// Reads and parses a credentials file; errors name the problem, never a
/// value (serde's messages are stripped of quoted values).
/// Also returns the SHA-256 of the file (hex), which keys the token cache:
/// a replaced key file is a new source.
fn read_file(path: &Path) -> Result<(File, String), String> {
    let mut text =
        read_guarded(path, "credentials file", MAX_CREDENTIAL_BYTES).map_err(|e| e.to_string())?;
    backend_core::config::warn_if_readable_by_others(path, "credentials file");
    let digest: String = ring::digest::digest(&ring::digest::SHA256, text.as_bytes())
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let parsed = serde_json::from_str::<File>(&text)
        .map(|f| (f, digest))
        .map_err(|e| format!("not a Google credentials file: {}", json_error(&e)));
    text.zeroize();
    parsed
}

/// A credentials file's parse error without any value: serde quotes
/// values in its messages (in quotes or backticks), so only the kind of
/// problem, a missing field's name and the position are kept.
fn json_error(e: &serde_json::Error) -> String {
    let at = format!("line {}, column {}", e.line(), e.column());
    let text = e.to_string();
    match e.classify() {
        serde_json::error::Category::Data if text.starts_with("missing field `") => {
            let field: String = text["missing field `".len()..]
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                .collect();
            format!("field {field} is missing")
        }
        serde_json::error::Category::Data if text.starts_with("unknown variant") => {
            "its type is not service_account, authorized_user, external_account or impersonated_service_account".into()
        }
        serde_json::error::Category::Data if text.starts_with("missing field") => {
            format!("a field is missing ({at})")
        }
        serde_json::error::Category::Data => format!("a field has the wrong type ({at})"),
        _ => format!("not JSON ({at})"),
    }
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// A token endpoint's URL as it may be used: http(s), no userinfo.
fn endpoint(url: &str, what: &str) -> Result<reqwest::Url, String> {
    let u = reqwest::Url::parse(url).map_err(|_| format!("{what} is not a URL"))?;
    if !matches!(u.scheme(), "https" | "http") || !u.username().is_empty() || u.password().is_some()
    {
        return Err(format!(
            "{what} must be an https:// URL without credentials"
        ));
    }
    let host = u.host_str().unwrap_or_default();
    let loopback = host == "localhost"
        || host
            .trim_matches(['[', ']'])
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback());
    if u.scheme() == "http" && !loopback {
        tracing::warn!(
            "{what} {} is plain http: credentials and tokens cross the network in clear",
            shown(&u)
        );
    }
    Ok(u)
}

async fn from_file(file: &File, http: &Http, env: Env<'_>, ctx: &Context) -> Result<Access, Why> {
    match file {
        File::ServiceAccount(sa) => {
            let uri = sa.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
            let url = endpoint(uri, "token_uri")?;
            let assertion = jwt::assertion(
                sa.private_key.0.expose(),
                jwt::Claims {
                    issuer: &sa.client_email,
                    audience: uri,
                    key_id: sa.private_key_id.as_deref(),
                    now: now(),
                },
            )?;
            let form = form(&[
                ("grant_type", JWT_BEARER),
                ("assertion", assertion.expose()),
            ]);
            oauth(http, ctx, &url, form, "the assertion").await
        }
        File::AuthorizedUser(u) => {
            let uri = u.token_uri.as_deref().unwrap_or(GOOGLE_TOKEN_URI);
            let url = endpoint(uri, "token_uri")?;
            let form = form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &u.client_id),
                ("client_secret", u.client_secret.0.expose()),
                ("refresh_token", u.refresh_token.0.expose()),
            ]);
            oauth(http, ctx, &url, form, "the refresh token").await
        }
        File::ExternalAccount(x) => {
            let subject = subject_token(&x.credential_source, &x.audience, http, env, ctx).await?;
            let url = endpoint(&x.token_url, "token_url")?;
            let form = form(&[
                ("grant_type", TOKEN_EXCHANGE),
                ("audience", &x.audience),
                ("scope", jwt::SCOPE),
                ("requested_token_type", ACCESS_TOKEN_TYPE),
                ("subject_token", subject.expose()),
                ("subject_token_type", &x.subject_token_type),
            ]);
            let federated = oauth(http, ctx, &url, form, "the subject token").await?;
            match &x.service_account_impersonation_url {
                Some(imp) => impersonate(http, ctx, imp, &federated.token).await,
                None => Ok(federated),
            }
        }
        File::ImpersonatedServiceAccount(i) => {
            let source = match i.source_credentials.as_ref() {
                File::ServiceAccount(_) | File::AuthorizedUser(_) => {
                    Box::pin(from_file(&i.source_credentials, http, env, ctx)).await?
                }
                other => {
                    return Err(Why::from(format!(
                        "source_credentials of type {} cannot be impersonated from here (service_account or authorized_user)",
                        other.kind()
                    )));
                }
            };
            impersonate(
                http,
                ctx,
                &i.service_account_impersonation_url,
                &source.token,
            )
            .await
        }
    }
}

/// `application/x-www-form-urlencoded`, in a buffer zeroized on drop.
fn form(pairs: &[(&str, &str)]) -> Zeroizing<String> {
    let mut out = Zeroizing::new(String::new());
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push('&');
        }
        percent_encode(k, &mut out);
        out.push('=');
        percent_encode(v, &mut out);
    }
    out
}

/// RFC 3986 percent-encoding of all but the unreserved characters,
/// appended to `out`: what form bodies, SigV4's canonical query and
/// Google's AWS subject tokens take.
pub(crate) fn percent_encode(s: &str, out: &mut String) {
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char);
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
}

/// POSTs `form` to an OAuth token endpoint (Google's, or an STS) and
/// returns its `access_token`.
async fn oauth(
    http: &Http,
    ctx: &Context,
    url: &reqwest::Url,
    form: Zeroizing<String>,
    what: &str,
) -> Result<Access, Why> {
    let resp = http
        .send(ctx, MAX_TOKEN_BODY, |c| {
            c.post(url.clone())
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(form.as_bytes().to_vec())
        })
        .await
        .map_err(|e| Why::unreached(format!("token endpoint {}", shown(url)), &e))?;
    if !resp.status.is_success() {
        return Err(Why::refused(
            resp.status,
            format!(
                "token endpoint {} refused {what} (HTTP {}{})",
                shown(url),
                resp.status.as_u16(),
                error_code(&resp.body)
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default()
            ),
        ));
    }
    access_token(&resp.body, "access_token").ok_or_else(|| {
        Why::from(format!(
            "token endpoint {} answered without an access_token",
            shown(url)
        ))
    })
}

/// Exchanges `source` for a service account's token at an IAM
/// `generateAccessToken` URL.
async fn impersonate(
    http: &Http,
    ctx: &Context,
    url: &str,
    source: &Secret,
) -> Result<Access, Why> {
    let u = endpoint(url, "service_account_impersonation_url")?;
    let auth = bearer(source)?;
    let body =
        serde_json::json!({"scope": [jwt::SCOPE], "lifetime": format!("{IMPERSONATED_LIFETIME}s")})
            .to_string();
    let resp = http
        .send(ctx, MAX_TOKEN_BODY, |c| {
            c.post(u.clone())
                .header(AUTHORIZATION, auth.clone())
                .header(CONTENT_TYPE, "application/json")
                .body(body.clone())
        })
        .await
        .map_err(|e| Why::unreached(format!("impersonation endpoint {}", shown(&u)), &e))?;
    if !resp.status.is_success() {
        return Err(Why::refused(
            resp.status,
            format!(
                "impersonation endpoint {} refused (HTTP {}{}); the source credentials need roles/iam.serviceAccountTokenCreator on the service account",
                shown(&u),
                resp.status.as_u16(),
                error_code(&resp.body)
                    .map(|c| format!(", {c}"))
                    .unwrap_or_default()
            ),
        ));
    }
    access_token(&resp.body, "accessToken")
        .map(|a| Access {
            lifetime: Some(IMPERSONATED_LIFETIME),
            ..a
        })
        .ok_or_else(|| {
            Why::from(format!(
                "impersonation endpoint {} answered without an accessToken",
                shown(&u)
            ))
        })
}

/// The subject token of an external account: a file's or a URL's text,
/// or a field of its JSON.
async fn subject_token(
    src: &CredentialSource,
    audience: &str,
    http: &Http,
    env: Env<'_>,
    ctx: &Context,
) -> Result<Secret, Why> {
    if let Some(id) = &src.environment_id {
        if !id.starts_with("aws") {
            return Err(Why::from(format!(
                "external_account credential_source environment_id '{}' is not supported (aws1 is)",
                id.escape_debug()
            )));
        }
        let aws = crate::aws::AwsSource {
            url: src.url.as_deref(),
            region_url: src.region_url.as_deref(),
            verification_url: src.regional_cred_verification_url.as_deref(),
            imdsv2_url: src.imdsv2_session_token_url.as_deref(),
        };
        return crate::aws::subject_token(&aws, audience, env, ctx)
            .await
            .map_err(|e| Why::from(format!("AWS credential source: {e}")));
    }
    if src.executable.is_some() {
        return Err(
            "external_account credential_source executable is not supported; use a file or url source"
                .into(),
        );
    }
    let text: Zeroizing<String> = match (&src.file, &src.url) {
        (Some(path), None) => Zeroizing::new(
            read_guarded(path, "subject token file", MAX_CREDENTIAL_BYTES)
                .map_err(|e| e.to_string())?,
        ),
        (None, Some(url)) => {
            let u = endpoint(url, "credential_source.url")?;
            hold_headers(src);
            let mut headers = reqwest::header::HeaderMap::new();
            for (k, v) in &src.headers {
                let name = reqwest::header::HeaderName::from_bytes(k.as_bytes())
                    .map_err(|_| "credential_source.headers holds a bad header name".to_owned())?;
                let mut value = HeaderValue::from_str(v)
                    .map_err(|_| "credential_source.headers holds a bad header value".to_owned())?;
                value.set_sensitive(true);
                headers.insert(name, value);
            }
            let resp = http
                .send(ctx, MAX_CREDENTIAL_BYTES as usize, |c| {
                    c.get(u.clone()).headers(headers.clone())
                })
                .await
                .map_err(|e| Why::unreached(format!("subject token URL {}", shown(&u)), &e))?;
            if !resp.status.is_success() {
                return Err(Why::refused(
                    resp.status,
                    format!(
                        "subject token URL {} answered HTTP {}",
                        shown(&u),
                        resp.status.as_u16()
                    ),
                ));
            }
            let bytes = Zeroizing::new(resp.body.to_vec());
            backend_core::fs::utf8(bytes)
                .map_err(|_| "the subject token is not UTF-8 text".to_owned())?
        }
        _ => {
            return Err(
                "external_account credential_source needs exactly one of file and url".into(),
            );
        }
    };
    let json = src
        .format
        .as_ref()
        .is_some_and(|f| f.kind.as_deref() == Some("json"));
    let token = if json {
        let field = src
            .format
            .as_ref()
            .and_then(|f| f.subject_token_field_name.as_deref())
            .ok_or("credential_source.format json needs subject_token_field_name")?;
        access_token(text.as_bytes(), field)
            .map(|a| a.token)
            .ok_or_else(|| format!("the subject token has no string field '{field}'"))?
    } else {
        Secret::credential(text.trim().to_owned())
    };
    if token.is_empty() {
        return Err("the subject token is empty".into());
    }
    Ok(token)
}

/// Why the metadata server gave no token.
enum Unreached {
    /// No server there (outside GCP).
    NotThere(Failure),
    /// It answered, but no token.
    Refused(String),
}

async fn metadata_token(http: &Http, host: &str, ctx: &Context) -> Result<Access, Unreached> {
    let url = format!("http://{host}{METADATA_TOKEN_PATH}");
    let resp = http
        .send(ctx, MAX_TOKEN_BODY, |c| {
            c.get(&url).header("Metadata-Flavor", "Google")
        })
        .await
        .map_err(Unreached::NotThere)?;
    if !resp.status.is_success() {
        let hint = if resp.status == reqwest::StatusCode::NOT_FOUND {
            "; does the VM or node pool have a service account (GKE: workload identity bound to a Google service account)?"
        } else {
            ""
        };
        return Err(Unreached::Refused(format!(
            "no token (HTTP {}){hint}",
            resp.status.as_u16()
        )));
    }
    access_token(&resp.body, "access_token")
        .ok_or_else(|| Unreached::Refused("answered without an access_token".into()))
}

/// A string field of a JSON body as a held credential, with the body's
/// `expires_in` (seconds) if it has one.
fn access_token(body: &[u8], field: &str) -> Option<Access> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let lifetime = match v.get("expires_in") {
        Some(Value::Number(n)) => n.as_u64(),
        Some(Value::String(s)) => s.parse().ok(),
        _ => None,
    };
    let token = v
        .get(field)
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.len() <= MAX_TOKEN)
        .map(|t| Access {
            token: Secret::credential(t.to_owned()),
            lifetime,
        });
    backend_core::key::wipe(&mut v);
    token
}

/// An OAuth error's code word (`invalid_grant`), or a Google error's
/// status (`PERMISSION_DENIED`); nothing else of the body, and not even
/// that when it is a credential we hold (an endpoint echoing what we sent).
pub fn error_code(body: &[u8]) -> Option<String> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let code = match v.get("error") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Object(o)) => o.get("status").and_then(Value::as_str).map(str::to_owned),
        _ => None,
    }
    .filter(|c| {
        (1..=64).contains(&c.len())
            && c.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'.')
            && !backend_core::secret::reveals_credential(c)
    });
    backend_core::key::wipe(&mut v);
    code
}

/// A URL for messages: scheme, host, port and path.
fn shown(url: &reqwest::Url) -> String {
    let mut u = url.clone();
    u.set_query(None);
    u.set_fragment(None);
    u.as_str().to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_core::testkit::env_of;

    #[test]
    fn the_chain_order() {
        let e = env_of(&[
            ("GOOGLE_APPLICATION_CREDENTIALS", "/env.json"),
            ("HOME", "/nonexistent-home"),
        ]);
        assert_eq!(
            source(Some(Path::new("/conf.json")), &e),
            Source::File {
                path: "/conf.json".into(),
                from: "credentials_file"
            }
        );
        assert_eq!(
            source(None, &e),
            Source::File {
                path: "/env.json".into(),
                from: "GOOGLE_APPLICATION_CREDENTIALS"
            }
        );
        let d = tempfile::tempdir().unwrap();
        std::fs::write(d.path().join(ADC_FILE), "{}").unwrap();
        let dir = d.path().to_str().unwrap().to_owned();
        let e = move |k: &str| (k == "CLOUDSDK_CONFIG").then(|| dir.clone());
        assert_eq!(
            source(None, &e),
            Source::File {
                path: d.path().join(ADC_FILE),
                from: "gcloud ADC file"
            }
        );
        let e = env_of(&[
            ("HOME", "/nonexistent-home"),
            ("GCE_METADATA_HOST", "127.0.0.1:9"),
        ]);
        match source(None, &e) {
            Source::Metadata { host, tried } => {
                assert_eq!(host, "127.0.0.1:9");
                assert!(tried.contains("GOOGLE_APPLICATION_CREDENTIALS unset"));
                assert!(
                    tried.contains("/nonexistent-home/.config/gcloud"),
                    "{tried}"
                );
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn token_failures_carry_their_kind() {
        use reqwest::StatusCode;
        let kind = |code: u16| Why::refused(StatusCode::from_u16(code).unwrap(), "x".into()).kind;
        assert_eq!(kind(400), ErrorKind::PermissionDenied);
        assert_eq!(kind(403), ErrorKind::PermissionDenied);
        assert_eq!(kind(429), ErrorKind::Unavailable);
        assert_eq!(kind(503), ErrorKind::Unavailable);
        let e = Why::unreached("token endpoint t".into(), &Failure::TimedOut);
        assert_eq!(e.kind, ErrorKind::TimedOut);
        let e = Why::unreached(
            "token endpoint t".into(),
            &Failure::Transport("refused".into()),
        );
        assert_eq!(e.kind, ErrorKind::Unavailable);
        assert_eq!(
            e.handle_error("src").message(),
            "src: token endpoint t not reachable (refused)"
        );
        assert_eq!(Why::from("bad file").kind, ErrorKind::Other);
    }

    #[test]
    fn forms_are_encoded() {
        assert_eq!(
            form(&[("a", "x y&z=1"), ("b", "ü/")]).as_str(),
            "a=x%20y%26z%3D1&b=%C3%BC%2F"
        );
    }

    #[test]
    fn error_codes_show_only_a_word() {
        assert_eq!(
            error_code(br#"{"error":"invalid_grant","error_description":"Invalid JWT BODY"}"#),
            Some("invalid_grant".into())
        );
        assert_eq!(
            error_code(br#"{"error":{"code":403,"status":"PERMISSION_DENIED","message":"x"}}"#),
            Some("PERMISSION_DENIED".into())
        );
        assert_eq!(error_code(br#"{"error":"has spaces in it"}"#), None);
        assert_eq!(error_code(b"<html>"), None);
    }

    #[test]
    fn credential_files_never_show_their_secrets() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("c.json");
        for text in [
            r#"{"type":"service_account","client_email":"a@b","private_key":7777777}"#,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"SECRET-7777777"}"#,
            r#"{"type":"mystery","refresh_token":"SECRET-7777777"}"#,
            r#"not json SECRET-7777777"#,
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read_file(&p).unwrap_err();
            assert!(!e.contains("7777777"), "{e}");
            assert!(e.contains("credentials file"), "{e}");
        }
        for (text, want) in [
            (
                r#"{"type":"service_account","private_key":"k"}"#,
                "field client_email is missing",
            ),
            (r#"{"type":"mystery"}"#, "its type is not"),
            ("{", "not JSON"),
        ] {
            std::fs::write(&p, text).unwrap();
            let e = read_file(&p).unwrap_err();
            assert!(e.contains(want), "{e}");
        }
        std::fs::write(
            &p,
            r#"{"type":"authorized_user","client_id":"c","client_secret":"s","refresh_token":"r"}"#,
        )
        .unwrap();
        let (f, digest) = read_file(&p).unwrap();
        assert_eq!(digest.len(), 64);
        assert_eq!(format!("{f:?}"), "authorized_user");
    }
}
