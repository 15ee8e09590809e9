//! The links of the default credentials chain and of the region chain,
//! in the SDK's order, each the way `aws-config` reads it; see
//! [`crate::credentials`] for why they are ours and what they cover.
//!
//! A link that is not configured (or, as with the SDK, finds nothing: no
//! profile, no IAM role on the instance, an instance metadata service that
//! does not answer) passes to the next ([`Miss::NotLoaded`]); one that is
//! configured and fails ends the chain with its cause ([`Miss::Failed`]),
//! one configured wrongly with the reason ([`Miss::Invalid`]).
//!
//! Nothing here reads a file: the shared files and every token file were
//! read by [`crate::files::SdkFiles`] first. HTTP goes through
//! [`backend_net::Http`]: STS through the environment's proxies, the
//! container and metadata endpoints never proxied, with short timeouts.

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use backend_core::{Context, Secret};
use backend_net::Http;
use reqwest::StatusCode;
use reqwest::header::{ACCEPT, AUTHORIZATION, HeaderValue};
use serde_json::Value;
use tokio::sync::OnceCell;

use crate::files::SdkFiles;
use crate::profile::{Base, NamedSource, Profiles, Unresolved};
use crate::sts::Sts;

/// The instance metadata service, IPv4 and IPv6.
const IMDS_V4: &str = "http://169.254.169.254";
const IMDS_V6: &str = "http://[fd00:ec2::254]";
/// The SDK's IMDS timeouts: 1 s to connect, 1 s to read (here: 2 s for a
/// whole request), and its attempts (on 5xx and 401 only: a timeout or a
/// refused connection is not retried).
const IMDS_CONNECT: Duration = Duration::from_secs(1);
const IMDS_REQUEST: Duration = Duration::from_secs(2);
const IMDS_ATTEMPTS: u32 = 4;
/// The ECS endpoint of `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI`, and the
/// SDK's container timeouts (2 s to connect, 5 s to read) and attempts.
const ECS_ENDPOINT: &str = "http://169.254.170.2";
const ECS_CONNECT: Duration = Duration::from_secs(2);
const ECS_REQUEST: Duration = Duration::from_secs(7);
const ECS_ATTEMPTS: u32 = 3;
/// Our user agent.
const USER_AGENT: &str = concat!("secret-backend-aws/", env!("CARGO_PKG_VERSION"));

/// Why a link gave no credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Miss {
    /// Not configured, or nothing there: the next link is tried.
    NotLoaded,
    /// Configured, tried, failed: the chain ends; why, in our words.
    Failed(String),
    /// Configured wrongly: the chain ends; the reason.
    Invalid(String),
}

/// The variables the chain reads, read once per load.
#[derive(Default, Clone)]
pub struct Env(Vec<(&'static str, String)>);

/// The names set, never the values (keys and tokens among them).
impl std::fmt::Debug for Env {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list()
            .entries(self.0.iter().map(|(n, _)| n))
            .finish()
    }
}

impl Env {
    /// The process's values of `names`.
    pub fn read(names: &[&'static str]) -> Self {
        Self(
            names
                .iter()
                .filter_map(|n| Some((*n, std::env::var(n).ok()?)))
                .collect(),
        )
    }

    /// Given values (tests).
    pub fn from_pairs(pairs: &[(&'static str, &str)]) -> Self {
        Self(pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect())
    }

    /// A variable's value.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// A variable's value, trimmed, unless empty.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.get(name).map(str::trim).filter(|v| !v.is_empty())
    }

    /// Whether a variable is `true` (any case).
    pub fn flag(&self, name: &str) -> bool {
        self.value(name)
            .is_some_and(|v| v.eq_ignore_ascii_case("true"))
    }
}

/// Everything one load reads: the environment, the files, the profiles.
#[derive(Debug)]
pub struct Sources<'a> {
    pub env: &'a Env,
    pub files: &'a SdkFiles,
    /// The merged profiles; `Err` when a file cannot be parsed (no region
    /// from it; the profile link says why).
    pub profiles: &'a Result<Profiles, crate::profile::ParseError>,
    /// The selected profile's name.
    pub profile: &'a str,
    /// The config's `endpoint_url`.
    pub endpoint_url: Option<&'a str>,
    /// The region found, for STS.
    pub region: Option<&'a str>,
    pub imds: &'a Imds,
}

impl Sources<'_> {
    /// A property of the selected profile.
    pub fn profile_value(&self, key: &str) -> Option<&str> {
        self.profiles.as_ref().ok()?.get(self.profile)?.value(key)
    }

    /// The selected profile's `endpoint_url`, unless configured endpoints
    /// are ignored.
    pub fn profile_endpoint(&self) -> Option<&str> {
        let ignore = self
            .setting("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS")
            .is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        if ignore {
            return None;
        }
        self.profile_value("endpoint_url")
    }

    /// Variable `var`, else the selected profile's setting standing for it
    /// ([`crate::api::PROFILE_KEYS`]).
    pub fn setting(&self, var: &str) -> Option<String> {
        crate::api::or_profile(
            self.env.get(var).map(str::to_owned),
            &self.profile_settings(),
            var,
        )
    }

    /// The selected profile's settings that stand for unset endpoint
    /// variables ([`crate::api::PROFILE_KEYS`]), by variable.
    pub fn profile_settings(&self) -> Vec<(&'static str, String)> {
        crate::api::PROFILE_KEYS
            .iter()
            .filter_map(|(var, key)| Some((*var, self.profile_value(key)?.to_owned())))
            .collect()
    }

    /// STS for this load.
    pub fn sts(&self) -> Result<Sts, Miss> {
        let env = |k: &str| self.setting(k);
        let endpoint = crate::sts::endpoint(
            self.endpoint_url,
            &env,
            self.profile_endpoint(),
            self.region,
        );
        let http = http(None, crate::api::ATTEMPTS, true)?;
        Ok(Sts {
            http,
            endpoint,
            region: self.region.unwrap_or("us-east-1").to_owned(),
        })
    }

    /// The default credentials chain: environment, profile, web identity,
    /// ECS container, instance metadata.
    pub async fn default_chain(&self, ctx: &Context) -> Result<Credentials, Miss> {
        for link in 0..5 {
            let found = match link {
                0 => self.environment(),
                1 => self.profile_chain(ctx).await,
                2 => self.web_identity_from_env(ctx).await,
                3 => self.container(ctx).await,
                _ => self.imds.credentials(ctx).await,
            };
            match found {
                Err(Miss::NotLoaded) => {}
                other => return other,
            }
        }
        Err(Miss::NotLoaded)
    }

    /// `AWS_ACCESS_KEY_ID` with `AWS_SECRET_ACCESS_KEY` (else
    /// `SECRET_ACCESS_KEY`), and `AWS_SESSION_TOKEN`: blank ones are unset.
    pub fn environment(&self) -> Result<Credentials, Miss> {
        let nonblank = |k| self.env.get(k).filter(|v| !v.trim().is_empty());
        let id = nonblank("AWS_ACCESS_KEY_ID").ok_or(Miss::NotLoaded)?;
        let secret = nonblank("AWS_SECRET_ACCESS_KEY")
            .or_else(|| nonblank("SECRET_ACCESS_KEY"))
            .ok_or(Miss::NotLoaded)?;
        let token = self.env.value("AWS_SESSION_TOKEN").map(str::to_owned);
        Ok(Credentials::new(id, secret, token, None, "Environment"))
    }

    /// The selected profile's chain (see [`crate::profile::resolve`]).
    async fn profile_chain(&self, ctx: &Context) -> Result<Credentials, Miss> {
        let profiles = match self.profiles {
            Ok(p) => p,
            Err(e) => return Err(Miss::Invalid(e.to_string())),
        };
        let chain = match crate::profile::resolve(profiles, self.profile) {
            Ok(chain) => chain,
            Err(Unresolved::Absent) => return Err(Miss::NotLoaded),
            Err(Unresolved::Invalid(why)) => return Err(Miss::Invalid(why)),
        };
        let mut credentials = match &chain.base {
            Base::Keys { id, secret, token } => {
                Credentials::new(id, secret, token.clone(), None, "Profile")
            }
            Base::WebIdentity {
                role_arn,
                token_file,
                session_name,
            } => {
                let session = session_name
                    .clone()
                    .unwrap_or_else(|| session("web-identity-token-profile"));
                self.web_identity(token_file, role_arn, &session, ctx)
                    .await?
            }
            // The named source's own link. Nothing there ends the chain, as
            // the SDK's profile provider ends it on any failure of its base
            // (a provider error): going on would use the next link's
            // identity without the profile's roles.
            Base::Source(named) => {
                let (found, name) = match named {
                    NamedSource::Environment => (self.environment(), "Environment"),
                    NamedSource::EcsContainer => (self.container(ctx).await, "EcsContainer"),
                    NamedSource::Ec2InstanceMetadata => {
                        (self.imds.credentials(ctx).await, "Ec2InstanceMetadata")
                    }
                };
                found.map_err(|miss| match miss {
                    Miss::NotLoaded => Miss::Failed(format!(
                        "profile '{}': credential_source {name} found no credentials",
                        self.profile
                    )),
                    other => other,
                })?
            }
        };
        crate::credentials::hold(&credentials);
        if chain.roles.is_empty() {
            return Ok(credentials);
        }
        let sts = self.sts()?;
        for role in &chain.roles {
            let name = role
                .session_name
                .clone()
                .unwrap_or_else(|| session("assume-role-from-profile"));
            credentials = sts
                .assume_role(
                    &credentials,
                    &role.role_arn,
                    &name,
                    role.external_id.as_deref(),
                    ctx,
                )
                .await
                .map_err(Miss::Failed)?;
        }
        Ok(credentials)
    }

    /// `AWS_WEB_IDENTITY_TOKEN_FILE` and `AWS_ROLE_ARN`
    /// (`AWS_ROLE_SESSION_NAME`): not loaded without the token file; the
    /// token file without the role is invalid, as with the SDK (the chain
    /// went on to the container's or the instance's identity).
    async fn web_identity_from_env(&self, ctx: &Context) -> Result<Credentials, Miss> {
        let file = self
            .env
            .get("AWS_WEB_IDENTITY_TOKEN_FILE")
            .ok_or(Miss::NotLoaded)?;
        let role = self.env.get("AWS_ROLE_ARN").ok_or_else(|| {
            Miss::Invalid(
                "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN, the role to assume with \
                 its token, is not"
                    .into(),
            )
        })?;
        let session = self
            .env
            .get("AWS_ROLE_SESSION_NAME")
            .map_or_else(|| session("web-identity-token"), str::to_owned);
        self.web_identity(file, role, &session, ctx).await
    }

    async fn web_identity(
        &self,
        file: &str,
        role: &str,
        session: &str,
        ctx: &Context,
    ) -> Result<Credentials, Miss> {
        let token = self.token(file, "web identity token file")?;
        self.sts()?
            .assume_role_with_web_identity(&token, role, session, ctx)
            .await
            .map_err(Miss::Failed)
    }

    /// A token file's text, trimmed, as [`SdkFiles`] read it.
    fn token(&self, path: &str, what: &str) -> Result<Secret, Miss> {
        let bytes = self
            .files
            .token(path)
            .ok_or_else(|| Miss::Failed(format!("the {what} {path} does not exist")))?;
        let text = std::str::from_utf8(bytes)
            .map_err(|_| Miss::Failed(format!("the {what} {path} is not UTF-8 text")))?;
        Ok(Secret::new(text.trim().to_owned()))
    }

    /// ECS (or EKS pod identity) container credentials.
    async fn container(&self, ctx: &Context) -> Result<Credentials, Miss> {
        let url = match (
            self.env.get("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"),
            self.env.get("AWS_CONTAINER_CREDENTIALS_FULL_URI"),
        ) {
            (Some(relative), _) => relative_uri(relative)?,
            (None, Some(full)) => full_uri(full).await?,
            (None, None) => return Err(Miss::NotLoaded),
        };
        let token = match (
            self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"),
            self.env.get("AWS_CONTAINER_AUTHORIZATION_TOKEN"),
        ) {
            (Some(file), _) => Some(self.token(file, "container authorization token file")?),
            (None, Some(token)) => Some(Secret::from(token.trim())),
            (None, None) => None,
        };
        let auth = token
            .map(|t| {
                backend_core::secret::hold(&t);
                HeaderValue::from_str(t.expose()).map(|mut v| {
                    v.set_sensitive(true);
                    v
                })
            })
            .transpose()
            .map_err(|_| {
                Miss::Invalid(
                    "the container authorization token holds characters an HTTP header cannot \
                     carry"
                        .into(),
                )
            })?;
        let failed = |why: String| Miss::Failed(format!("ECS container credentials: {why}"));
        let http = http(Some(ECS_CONNECT), ECS_ATTEMPTS, false)?;
        let answer = http
            .send(ctx, |c| {
                let r = c
                    .get(url.clone())
                    .timeout(ECS_REQUEST)
                    .header(ACCEPT, "application/json");
                match &auth {
                    Some(a) => r.header(AUTHORIZATION, a.clone()),
                    None => r,
                }
            })
            .await
            .map_err(|f| failed(f.cause()))?;
        if !answer.status.is_success() {
            return Err(failed(format!(
                "the endpoint answered HTTP {}",
                answer.status.as_u16()
            )));
        }
        match json_credentials(&answer.body, "EcsContainer") {
            Json::Found(c) => Ok(c),
            Json::Error(_) => Err(failed(
                "the endpoint answered an error instead of credentials".into(),
            )),
            Json::Unreadable => Err(failed("unreadable answer (no credentials in it)".into())),
        }
    }
}

/// A session name the SDK makes up: `<base>-<milliseconds>`.
fn session(base: &str) -> String {
    let ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    format!("{base}-{ms}")
}

/// A client for one kind of endpoint: `connect` set (a local endpoint):
/// never proxied.
fn http(connect: Option<Duration>, attempts: u32, proxied: bool) -> Result<Http, Miss> {
    let tls =
        backend_net::system_roots_config().map_err(|e| Miss::Failed(format!("TLS setup: {e}")))?;
    let mut builder = Http::builder(USER_AGENT, tls).attempts(attempts);
    if let Some(t) = connect {
        builder = builder.connect_timeout(t);
    }
    if !proxied {
        builder = builder.no_proxy();
    }
    // reqwest's own text could quote a proxy URL from the environment.
    builder.build().map_err(|_| {
        Miss::Failed(
            "cannot build the HTTP client: a proxy setting (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY) \
             is invalid"
                .into(),
        )
    })
}

/// `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` at the ECS endpoint.
fn relative_uri(relative: &str) -> Result<reqwest::Url, Miss> {
    let invalid = || {
        Miss::Invalid(
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI is not a path (like /v2/credentials/...)"
                .into(),
        )
    };
    let relative = relative.trim();
    if !relative.starts_with('/') || relative.starts_with("//") {
        return Err(invalid());
    }
    reqwest::Url::parse(&format!("{ECS_ENDPOINT}{relative}")).map_err(|_| invalid())
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI`, when the SDK would ask it: https
/// anywhere; http only to a loopback address, the ECS or EKS pod identity
/// agent's addresses, or a name all of whose addresses are those.
async fn full_uri(full: &str) -> Result<reqwest::Url, Miss> {
    let refuse = || {
        Miss::Invalid(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback address, \
             169.254.170.2, 169.254.170.23 or fd00:ec2::23"
                .into(),
        )
    };
    let url = reqwest::Url::parse(full.trim()).map_err(|_| refuse())?;
    match url.scheme() {
        "https" => return Ok(url),
        "http" => {}
        _ => return Err(refuse()),
    }
    let host = url.host_str().unwrap_or_default();
    let allowed = match host.trim_matches(['[', ']']).parse::<std::net::IpAddr>() {
        Ok(ip) => allowed_ip(ip),
        Err(_) if host.is_empty() => false,
        Err(_) => {
            let port = url.port_or_known_default().unwrap_or(80);
            match tokio::net::lookup_host((host, port)).await {
                Ok(addrs) => {
                    let addrs: Vec<_> = addrs.collect();
                    !addrs.is_empty() && addrs.iter().all(|a| allowed_ip(a.ip()))
                }
                Err(_) => {
                    return Err(Miss::Invalid(
                        "AWS_CONTAINER_CREDENTIALS_FULL_URI: its host name cannot be resolved"
                            .into(),
                    ));
                }
            }
        }
    };
    if allowed { Ok(url) } else { Err(refuse()) }
}

fn allowed_ip(ip: std::net::IpAddr) -> bool {
    use std::net::IpAddr;
    ip.is_loopback()
        || match ip {
            IpAddr::V4(v4) => [[169, 254, 170, 2], [169, 254, 170, 23]].contains(&v4.octets()),
            IpAddr::V6(v6) => v6.segments() == [0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23],
        }
}

/// A container or instance metadata answer.
#[derive(Debug)]
pub enum Json {
    Found(Credentials),
    /// `"Code"` other than `Success`: the code (shown only when known).
    Error(String),
    Unreadable,
}

/// The SDK's reading of a JSON credentials answer: keys in any case,
/// `Code` absent or `Success`, `AccessKeyId`, `SecretAccessKey`, `Token`
/// (or `SessionToken`) and `Expiration` (or `ExpiresAt`) all there. The
/// credentials found are held; the parsed document is wiped.
pub fn json_credentials(body: &[u8], provider: &'static str) -> Json {
    let Ok(mut doc) = serde_json::from_slice::<Value>(body) else {
        return Json::Unreadable;
    };
    let found = {
        let Some(map) = doc.as_object() else {
            return Json::Unreadable;
        };
        let field = |names: &[&str]| {
            map.iter()
                .find(|(k, _)| names.iter().any(|n| k.eq_ignore_ascii_case(n)))
                .and_then(|(_, v)| v.as_str())
        };
        match field(&["Code"]) {
            Some(code) if code != "Success" => Json::Error(code.to_owned()),
            _ => match (
                field(&["AccessKeyId"]),
                field(&["SecretAccessKey"]),
                field(&["Token", "SessionToken"]),
                field(&["Expiration", "ExpiresAt"]),
            ) {
                (Some(id), Some(secret), Some(token), Some(expiration)) => {
                    let expiry = aws_smithy_types::DateTime::from_str(
                        expiration,
                        aws_smithy_types::date_time::Format::DateTime,
                    )
                    .ok()
                    .and_then(|t| SystemTime::try_from(t).ok());
                    match expiry {
                        Some(expiry) => Json::Found(Credentials::new(
                            id,
                            secret,
                            Some(token.to_owned()),
                            Some(expiry),
                            provider,
                        )),
                        None => Json::Unreadable,
                    }
                }
                _ => Json::Unreadable,
            },
        }
    };
    backend_core::key::wipe(&mut doc);
    if let Json::Found(c) = &found {
        crate::credentials::hold(c);
    }
    found
}

/// The instance metadata service (IMDSv2) of one load: one session token,
/// asked for once, for the region and the credentials alike.
pub struct Imds {
    disabled: bool,
    /// The endpoint, or why there is none.
    base: Result<String, Miss>,
    token: OnceCell<Result<HeaderValue, Miss>>,
    /// Whether a request was sent (tests: "never asked").
    asked: std::sync::atomic::AtomicBool,
}

/// The endpoint without its userinfo; whether a token was got.
impl std::fmt::Debug for Imds {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imds")
            .field("disabled", &self.disabled)
            .field(
                "base",
                &self.base.as_deref().map(backend_core::redact::url).ok(),
            )
            .field("token", &self.token.get().map(Result::is_ok))
            .finish_non_exhaustive()
    }
}

impl Imds {
    /// From `AWS_EC2_METADATA_DISABLED`, `AWS_EC2_METADATA_SERVICE_ENDPOINT`
    /// (else the profile's `ec2_metadata_service_endpoint`), and the mode
    /// `AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE` (else the profile's
    /// `ec2_metadata_service_endpoint_mode`): `IPv4` or `IPv6`.
    pub fn new(env: &Env, profile: Option<&crate::profile::Profile>) -> Self {
        let from_profile = |k: &str| profile.and_then(|p| p.value(k));
        let base = match env
            .value("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .or_else(|| from_profile("ec2_metadata_service_endpoint"))
        {
            Some(url) => Ok(url.trim_end_matches('/').to_owned()),
            None => match env
                .value("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE")
                .or_else(|| from_profile("ec2_metadata_service_endpoint_mode"))
            {
                None => Ok(IMDS_V4.to_owned()),
                Some(m) if m.eq_ignore_ascii_case("ipv4") => Ok(IMDS_V4.to_owned()),
                Some(m) if m.eq_ignore_ascii_case("ipv6") => Ok(IMDS_V6.to_owned()),
                Some(_) => Err(Miss::Invalid(
                    "the instance metadata endpoint mode (AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE) \
                     must be IPv4 or IPv6"
                        .into(),
                )),
            },
        };
        Self {
            disabled: env.flag("AWS_EC2_METADATA_DISABLED"),
            base,
            token: OnceCell::new(),
            asked: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Whether anything was sent to it.
    pub fn asked(&self) -> bool {
        self.asked.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `GET path` with the session token, retried on 5xx and 401.
    async fn get(&self, path: &str, ctx: &Context) -> Result<backend_net::Response, Miss> {
        let token = self.token(ctx).await?;
        let base = self.base.clone()?;
        self.send(ctx, |c| {
            c.get(format!("{base}{path}"))
                .header("x-aws-ec2-metadata-token", token.clone())
        })
        .await
        .map_err(|cause| {
            Miss::Failed(format!(
                "cannot reach the instance metadata service (IMDS): {cause}"
            ))
        })
    }

    /// The session token: asked for once; a service that cannot be reached
    /// is "not loaded" (no instance here), as with the SDK.
    async fn token(&self, ctx: &Context) -> Result<HeaderValue, Miss> {
        self.token
            .get_or_init(|| async {
                let base = self.base.clone()?;
                let answer = self
                    .send(ctx, |c| {
                        c.put(format!("{base}/latest/api/token"))
                            .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    })
                    .await
                    .map_err(|_| Miss::NotLoaded)?;
                let why = match answer.status.as_u16() {
                    200 => None,
                    403 => Some(
                        "the instance metadata service (IMDS) answered HTTP 403 (disabled, or \
                         not for this caller)"
                            .to_owned(),
                    ),
                    s => Some(format!(
                        "the instance metadata service (IMDS) answered HTTP {s}"
                    )),
                };
                if let Some(why) = why {
                    return Err(Miss::Failed(format!(
                        "cannot get an IMDS session token: {why}"
                    )));
                }
                let token = std::str::from_utf8(&answer.body)
                    .ok()
                    .map(str::trim)
                    .filter(|t| !t.is_empty())
                    .and_then(|t| {
                        backend_core::secret::hold(&Secret::from(t));
                        HeaderValue::from_str(t).ok()
                    })
                    .map(|mut v| {
                        v.set_sensitive(true);
                        v
                    });
                token.ok_or_else(|| {
                    Miss::Failed(
                        "cannot get an IMDS session token: the answer is not a token".into(),
                    )
                })
            })
            .await
            .clone()
    }

    /// One request, made afresh per attempt; retried on 5xx and 401.
    async fn send(
        &self,
        ctx: &Context,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<backend_net::Response, String> {
        self.asked.store(true, std::sync::atomic::Ordering::Relaxed);
        let http = http(Some(IMDS_CONNECT), 1, false).map_err(|m| match m {
            Miss::Failed(w) | Miss::Invalid(w) => w,
            Miss::NotLoaded => String::new(),
        })?;
        let mut attempt = 1;
        loop {
            let outcome = http
                .send(ctx, |c| make(c).timeout(IMDS_REQUEST))
                .await
                .map_err(|f| f.cause());
            let again = matches!(&outcome, Ok(r) if r.status.is_server_error()
                || r.status == StatusCode::UNAUTHORIZED);
            let pause = backend_net::http::backoff(attempt);
            if !again || attempt >= IMDS_ATTEMPTS || ctx.remaining() <= pause {
                return outcome;
            }
            tokio::time::sleep(pause).await;
            attempt += 1;
        }
    }

    /// The region the instance is in (`placement/region`); none when the
    /// service is disabled, cannot be reached or says nothing usable.
    pub async fn region(&self, ctx: &Context) -> Option<String> {
        if self.disabled {
            return None;
        }
        let answer = self
            .get("/latest/meta-data/placement/region", ctx)
            .await
            .ok()?;
        if !answer.status.is_success() {
            return None;
        }
        let region = std::str::from_utf8(&answer.body).ok()?.trim();
        valid_region(region).then(|| region.to_owned())
    }

    /// The instance profile's credentials.
    pub async fn credentials(&self, ctx: &Context) -> Result<Credentials, Miss> {
        if self.disabled {
            return Err(Miss::NotLoaded);
        }
        let failed = |why: String| Miss::Failed(why);
        let list = self
            .get("/latest/meta-data/iam/security-credentials/", ctx)
            .await?;
        if list.status == StatusCode::NOT_FOUND {
            // No IAM role attached to the instance.
            return Err(Miss::NotLoaded);
        }
        if !list.status.is_success() {
            return Err(failed(format!(
                "the instance metadata service (IMDS) answered HTTP {} for the IAM role",
                list.status.as_u16()
            )));
        }
        let role = std::str::from_utf8(&list.body)
            .ok()
            .and_then(|l| l.lines().map(str::trim).find(|l| !l.is_empty()))
            // A path segment of its own: `.` and `..` would be resolved
            // away by the URL, asking another path.
            .filter(|r| {
                r.len() <= 128
                    && !matches!(*r, "." | "..")
                    && r.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"+=,.@_-".contains(&b))
            })
            .ok_or_else(|| {
                failed("the instance metadata service (IMDS) named no usable IAM role".into())
            })?
            .to_owned();
        let answer = self
            .get(
                &format!("/latest/meta-data/iam/security-credentials/{role}"),
                ctx,
            )
            .await?;
        if !answer.status.is_success() {
            return Err(failed(format!(
                "the instance metadata service (IMDS) answered HTTP {} for the credentials of \
                 role {role}",
                answer.status.as_u16()
            )));
        }
        match json_credentials(&answer.body, "IMDSv2") {
            Json::Found(c) => Ok(c),
            Json::Error(code) if code == "AssumeRoleUnauthorizedAccess" => {
                Err(Miss::Invalid(format!(
                    "EC2 cannot assume the instance profile's role {role} \
                     (AssumeRoleUnauthorizedAccess): check its trust relationship"
                )))
            }
            Json::Error(_) => Err(failed(
                "the instance metadata service (IMDS) answered an error instead of credentials"
                    .into(),
            )),
            Json::Unreadable => Err(failed(
                "unreadable answer from the instance metadata service (IMDS)".into(),
            )),
        }
    }
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: one DNS label (letters,
/// digits, inner dashes), as the SDK's endpoint rules require. A region
/// goes into endpoint host names: anything else (`evil.example/x#`, from a
/// handle's ARN, a variable or a file) would send a signed request, its
/// session token with it, to another host.
pub fn valid_region(r: &str) -> bool {
    (1..=63).contains(&r.len())
        && r.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !r.starts_with('-')
        && !r.ends_with('-')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn environment_keys_as_the_sdk_reads_them() {
        let files = SdkFiles::default();
        let profiles: Result<Profiles, crate::profile::ParseError> = Ok(Profiles::default());
        let imds = Imds::new(&Env::default(), None);
        let with = |pairs: &[(&'static str, &str)]| {
            let env = Env::from_pairs(pairs);
            let s = Sources {
                env: &env,
                files: &files,
                profiles: &profiles,
                profile: "default",
                endpoint_url: None,
                region: None,
                imds: &imds,
            };
            s.environment()
        };
        let c = with(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", "env-secret"),
            ("AWS_SESSION_TOKEN", " tok "),
        ])
        .unwrap();
        assert_eq!(
            (c.access_key_id(), c.secret_access_key(), c.session_token()),
            ("AKIAENV", "env-secret", Some("tok"))
        );
        let c = with(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV"),
            ("AWS_SECRET_ACCESS_KEY", " "),
            ("SECRET_ACCESS_KEY", "fallback"),
            ("AWS_SESSION_TOKEN", " "),
        ])
        .unwrap();
        assert_eq!(
            (c.secret_access_key(), c.session_token()),
            ("fallback", None)
        );
        assert_eq!(
            with(&[("AWS_ACCESS_KEY_ID", "AKIAENV")]).unwrap_err(),
            Miss::NotLoaded
        );
        assert_eq!(
            with(&[("AWS_SECRET_ACCESS_KEY", "s")]).unwrap_err(),
            Miss::NotLoaded
        );
    }

    #[test]
    fn json_answers() {
        let body =
            br#"{"Code":"Success","AccessKeyId":"ASIA2","secretaccesskey":"json-secret-0001",
                        "Token":"tok-0001","Expiration":"2099-01-01T00:00:00Z"}"#;
        let Json::Found(c) = json_credentials(body, "t") else {
            panic!()
        };
        assert_eq!(c.access_key_id(), "ASIA2");
        assert_eq!(c.session_token(), Some("tok-0001"));
        assert!(backend_core::secret::reveals_credential("json-secret-0001"));
        let pod = br#"{"AccessKeyId":"A","SecretAccessKey":"S","SessionToken":"T","ExpiresAt":"2099-01-01T00:00:00Z"}"#;
        assert!(matches!(json_credentials(pod, "t"), Json::Found(_)));
        assert!(matches!(
            json_credentials(br#"{"Code":"AssumeRoleUnauthorizedAccess","Message":"m"}"#, "t"),
            Json::Error(c) if c == "AssumeRoleUnauthorizedAccess"
        ));
        for bad in [
            &b"not json"[..],
            b"[]",
            br#"{"AccessKeyId":"A","SecretAccessKey":"S","Expiration":"2099-01-01T00:00:00Z"}"#,
            br#"{"AccessKeyId":"A","SecretAccessKey":"S","Token":"T","Expiration":"soon"}"#,
        ] {
            assert!(matches!(json_credentials(bad, "t"), Json::Unreadable));
        }
    }

    #[test]
    fn imds_endpoints() {
        let base = |pairs: &[(&'static str, &str)], profile: Option<&str>| {
            let profiles = Profiles::read(profile.unwrap_or_default(), "").unwrap();
            Imds::new(&Env::from_pairs(pairs), profiles.get("default")).base
        };
        assert_eq!(base(&[], None), Ok(IMDS_V4.into()));
        assert_eq!(
            base(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "IPv6")], None),
            Ok(IMDS_V6.into())
        );
        assert_eq!(
            base(
                &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:9/")],
                Some("[default]\nec2_metadata_service_endpoint = http://p\n")
            ),
            Ok("http://127.0.0.1:9".into())
        );
        assert_eq!(
            base(
                &[],
                Some("[default]\nec2_metadata_service_endpoint_mode = ipv6\n")
            ),
            Ok(IMDS_V6.into())
        );
        assert!(matches!(
            base(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE", "v5")], None),
            Err(Miss::Invalid(_))
        ));
    }

    #[tokio::test]
    async fn container_endpoints_as_the_sdk_allows_them() {
        for ok in [
            "http://127.0.0.1:8080/creds",
            "http://169.254.170.23/v1/credentials",
            "http://[fd00:ec2::23]/x",
            "http://[::1]:9/x",
            "http://localhost:9/x",
            "https://creds.example.com/x",
        ] {
            assert!(full_uri(ok).await.is_ok(), "{ok}");
        }
        for refused in [
            "http://10.0.0.1/x",
            "ftp://127.0.0.1/x",
            "not a url",
            "http://u:PW-7@10.0.0.1/",
        ] {
            let Err(Miss::Invalid(why)) = full_uri(refused).await else {
                panic!("{refused}")
            };
            assert!(!why.contains("PW-7"), "{why}");
        }
        assert_eq!(
            relative_uri("/v2/credentials/x").unwrap().as_str(),
            "http://169.254.170.2/v2/credentials/x"
        );
        assert!(relative_uri("v2").is_err());
        assert!(relative_uri("//evil.example/x").is_err());
    }

    /// A server answering its connections, one each, with `answers` in
    /// order (then closing); the requests it got, head and body.
    fn serve(answers: Vec<String>) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        std::thread::spawn(move || {
            for answer in answers {
                let Ok((mut s, _)) = listener.accept() else {
                    return;
                };
                let mut data = Vec::new();
                let mut buf = [0u8; 4096];
                loop {
                    if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&data[..end]).to_lowercase();
                        let len = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        if data.len() >= end + 4 + len {
                            break;
                        }
                    }
                    match s.read(&mut buf) {
                        Ok(0) | Err(_) => break,
                        Ok(n) => data.extend_from_slice(&buf[..n]),
                    }
                }
                log.lock()
                    .unwrap()
                    .push(String::from_utf8_lossy(&data).into_owned());
                let _ = s.write_all(answer.as_bytes());
            }
        });
        (url, seen)
    }

    fn answer(status: &str, body: &str) -> String {
        format!(
            "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
    }

    #[tokio::test]
    async fn imds_token_role_and_credentials() {
        let creds = r#"{"Code":"Success","AccessKeyId":"ASIAIMDS","SecretAccessKey":"imds-secret-0001","Token":"imds-session-0001","Expiration":"2099-01-01T00:00:00Z"}"#;
        let (url, seen) = serve(vec![
            answer("200 OK", "imds-token-0001"),
            answer("200 OK", "eu-north-1"),
            answer("200 OK", "my-role\n"),
            answer("200 OK", creds),
        ]);
        let imds = Imds::new(
            &Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]),
            None,
        );
        let ctx = Context::with_budget(Duration::from_secs(10));
        assert_eq!(imds.region(&ctx).await.as_deref(), Some("eu-north-1"));
        let c = imds.credentials(&ctx).await.unwrap();
        assert_eq!(c.access_key_id(), "ASIAIMDS");
        assert_eq!(c.session_token(), Some("imds-session-0001"));
        let seen = seen.lock().unwrap().clone();
        // One session token for the region and the credentials.
        assert_eq!(seen.len(), 4, "{seen:?}");
        assert!(seen[0].starts_with("PUT /latest/api/token "), "{}", seen[0]);
        assert!(
            seen[0]
                .to_lowercase()
                .contains("x-aws-ec2-metadata-token-ttl-seconds: 21600")
        );
        assert!(seen[1].starts_with("GET /latest/meta-data/placement/region "));
        assert!(seen[3].starts_with("GET /latest/meta-data/iam/security-credentials/my-role "));
        assert!(
            seen[3]
                .to_lowercase()
                .contains("x-aws-ec2-metadata-token: imds-token-0001")
        );
        for held in ["imds-token-0001", "imds-secret-0001", "imds-session-0001"] {
            assert!(backend_core::secret::reveals_credential(held), "{held}");
        }
    }

    #[tokio::test]
    async fn an_imds_role_name_that_would_change_the_path_is_refused() {
        for role in ["..", ".", "a/b", "a?b", "a#b", "a%2Fb"] {
            let (url, seen) = serve(vec![
                answer("200 OK", "imds-token-0003"),
                answer("200 OK", role),
                answer("200 OK", "{}"),
            ]);
            let imds = Imds::new(
                &Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]),
                None,
            );
            let ctx = Context::with_budget(Duration::from_secs(10));
            let Err(Miss::Failed(why)) = imds.credentials(&ctx).await else {
                panic!("{role}")
            };
            assert!(why.contains("named no usable IAM role"), "{role}: {why}");
            assert_eq!(seen.lock().unwrap().len(), 2, "{role}: asked further");
        }
    }

    #[tokio::test]
    async fn imds_without_a_role_or_an_answer_is_not_loaded() {
        let (url, _) = serve(vec![
            answer("200 OK", "imds-token-0002"),
            answer("404 Not Found", ""),
        ]);
        let imds = Imds::new(
            &Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &url)]),
            None,
        );
        let ctx = Context::with_budget(Duration::from_secs(10));
        assert_eq!(imds.credentials(&ctx).await.unwrap_err(), Miss::NotLoaded);
        // Nobody listening: no instance here.
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            format!("http://{}", l.local_addr().unwrap())
        };
        let imds = Imds::new(
            &Env::from_pairs(&[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &closed)]),
            None,
        );
        assert_eq!(imds.region(&ctx).await, None);
        assert_eq!(imds.credentials(&ctx).await.unwrap_err(), Miss::NotLoaded);
        let disabled = Imds::new(
            &Env::from_pairs(&[("AWS_EC2_METADATA_DISABLED", "TRUE")]),
            None,
        );
        assert_eq!(
            disabled.credentials(&ctx).await.unwrap_err(),
            Miss::NotLoaded
        );
        assert!(!disabled.asked());
    }

    #[tokio::test]
    async fn sts_assume_role_is_signed_and_throttling_is_retried() {
        let ok = "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                  <AccessKeyId>ASIAROLE</AccessKeyId><SecretAccessKey>role-secret-0001</SecretAccessKey>\
                  <SessionToken>role-token-0001</SessionToken></Credentials></AssumeRoleResult>\
                  </AssumeRoleResponse>";
        let throttled = "<ErrorResponse><Error><Code>Throttling</Code><Message>MARKER</Message>\
                         </Error></ErrorResponse>";
        let denied = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>MARKER</Message>\
                      </Error></ErrorResponse>";
        let (url, seen) = serve(vec![
            answer("400 Bad Request", throttled),
            answer("200 OK", ok),
            answer("403 Forbidden", denied),
        ]);
        let sts = Sts {
            http: http(None, crate::api::ATTEMPTS, false).unwrap(),
            endpoint: url,
            region: "eu-west-1".into(),
        };
        let base = Credentials::new("AKIABASE", "base-secret-0001", None, None, "t");
        let ctx = Context::with_budget(Duration::from_secs(10));
        let c = sts
            .assume_role(&base, "arn:aws:iam::1:role/r", "s", Some("ext-0001"), &ctx)
            .await
            .unwrap();
        assert_eq!(c.access_key_id(), "ASIAROLE");
        assert!(backend_core::secret::reveals_credential("role-secret-0001"));
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "one retry: {seen:?}");
        let request = seen[1].to_lowercase();
        assert!(request.starts_with("post / "), "{request}");
        assert!(
            request.contains("authorization: aws4-hmac-sha256 credential=akiabase/")
                && request.contains("/eu-west-1/sts/aws4_request"),
            "{request}"
        );
        assert!(seen[1].ends_with(
            "Action=AssumeRole&Version=2011-06-15&RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fr\
             &RoleSessionName=s&ExternalId=ext-0001"
        ));
        let e = sts
            .assume_role(&base, "arn:aws:iam::1:role/r", "s", None, &ctx)
            .await
            .unwrap_err();
        assert_eq!(e, "STS AssumeRole: access denied");
    }

    #[tokio::test]
    async fn profile_roles_are_assumed_in_order_through_sts() {
        let ok = |id: &str| {
            answer(
                "200 OK",
                &format!(
                    "<AssumeRoleResponse><AssumeRoleResult><Credentials>\
                     <AccessKeyId>{id}</AccessKeyId><SecretAccessKey>{id}-secret</SecretAccessKey>\
                     <SessionToken>{id}-token</SessionToken></Credentials></AssumeRoleResult>\
                     </AssumeRoleResponse>"
                ),
            )
        };
        let (url, seen) = serve(vec![ok("ASIAMID"), ok("ASIATOP")]);
        let env = Env::from_pairs(&[
            ("AWS_ENDPOINT_URL", &url),
            ("AWS_ACCESS_KEY_ID", "AKIAENVSRC"),
            ("AWS_SECRET_ACCESS_KEY", "env-src-secret"),
        ]);
        let profiles = Profiles::read(
            "[profile top]\nrole_arn = arn:aws:iam::1:role/top\nsource_profile = mid\n\
             role_session_name = top-session\n\
             [profile mid]\nrole_arn = arn:aws:iam::1:role/mid\n\
             credential_source = Environment\n",
            "",
        );
        let files = SdkFiles::default();
        let imds = Imds::new(&env, None);
        let sources = Sources {
            env: &env,
            files: &files,
            profiles: &profiles,
            profile: "top",
            endpoint_url: None,
            region: Some("eu-west-1"),
            imds: &imds,
        };
        let ctx = Context::with_budget(Duration::from_secs(10));
        // The environment link comes first: without its keys there, the
        // profile is what finds credentials (from the environment, through
        // its credential_source, then two roles).
        let c = sources.profile_chain(&ctx).await.unwrap();
        assert_eq!(c.access_key_id(), "ASIATOP");
        let seen = seen.lock().unwrap().clone();
        assert_eq!(seen.len(), 2, "{seen:?}");
        assert!(seen[0].contains("Credential=AKIAENVSRC/"), "{}", seen[0]);
        assert!(seen[0].contains("RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fmid"));
        assert!(seen[0].contains("RoleSessionName=assume-role-from-profile-"));
        assert!(seen[1].contains("Credential=ASIAMID/"), "{}", seen[1]);
        assert!(seen[1].contains("RoleSessionName=top-session"));
        // A credential_source with nothing there ends the chain, as the
        // SDK's profile provider does (it was "not loaded": the chain went
        // on to the next link's identity, without the profile's roles).
        let bare = Env::from_pairs(&[("AWS_ENDPOINT_URL", &url)]);
        let sources = Sources {
            env: &bare,
            ..sources
        };
        assert_eq!(
            sources.profile_chain(&ctx).await.unwrap_err(),
            Miss::Failed(
                "profile 'top': credential_source Environment found no credentials".into()
            )
        );
    }

    #[test]
    fn regions_are_names() {
        assert!(valid_region("eu-west-1"));
        assert!(!valid_region("eu west"));
        assert!(valid_region("x"));
        for bad in [
            "",
            "-a",
            "a-",
            "a.b",
            "evil.example/x#",
            "a b",
            "ü",
            &"a".repeat(64),
        ] {
            assert!(!valid_region(bad), "{bad}");
        }
    }
}
