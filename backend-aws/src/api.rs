//! The two AWS APIs this backend calls, spoken directly: Secrets Manager
//! and SSM Parameter Store, both in AWS's JSON 1.1 protocol (a signed
//! `POST /` with `X-Amz-Target: <service>.<Operation>` and a JSON body).
//!
//! Why not the SDK's service crates (`aws-sdk-secretsmanager`,
//! `aws-sdk-ssm`): this backend makes three calls (`GetSecretValue`,
//! `BatchGetSecretValue`, `GetParameters`), and the crates link their whole
//! service models, every operation's serializers and SSM's 140 error types:
//! about 0.45 MB of `secret-backend-aws` and of `secret-backend` (measured
//! with `nm`), which kept both over their size targets. What the SDK did
//! for those calls is here, each piece from a crate:
//!
//! - signing: SigV4 by the SDK's own signer crate (`aws-sigv4`), through
//!   [`backend_net::sigv4`], per request;
//! - HTTP: [`backend_net::Http`] (reqwest on rustls with ring, the system
//!   roots read at the first TLS handshake only, proxies from the
//!   environment, no redirects, bodies bounded and zeroized);
//! - retries: the SDK's standard mode (3 attempts, the first included) for
//!   what it retries: connection failures, 5xx, 429, and the throttling and
//!   transient error codes AWS sends with a 400 ([`RETRIED_CODES`]), with
//!   jittered backoff and never an attempt that cannot start before the
//!   deadline;
//! - endpoints: the SDK's precedence ([`Endpoints`]): the config's
//!   `endpoint_url`, then `AWS_ENDPOINT_URL_<SERVICE>`, `AWS_ENDPOINT_URL`
//!   (both ignored with `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS=true`), then
//!   the profile's `endpoint_url`, else the region's endpoint in its
//!   partition (`amazonaws.com`, `amazonaws.com.cn`, the ISO partitions),
//!   FIPS with `AWS_USE_FIPS_ENDPOINT=true`, dual-stack with
//!   `AWS_USE_DUALSTACK_ENDPOINT=true` (unset: the profile's
//!   `use_fips_endpoint`, `use_dualstack_endpoint`, [`PROFILE_KEYS`]);
//! - errors: the code from `X-Amzn-ErrorType`, else the body's `__type` or
//!   `code` (namespace and URI suffix cut off, as the SDK does), the
//!   message only for matching ([`crate::errors`] words every message and
//!   never repeats a body).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use backend_core::Context;
use backend_net::Http;
use backend_net::http::{Failure, Response};
use serde_json::Value;

/// Attempts per request, the first included (the SDK's standard mode).
pub const ATTEMPTS: u32 = 3;

/// Error codes AWS answers with a 4xx that the SDK's standard retry mode
/// retries: throttling and transient errors.
pub const RETRIED_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
    "RequestTimeout",
    "RequestTimeoutException",
    "InternalError",
];

/// A service this backend calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Service {
    /// AWS Secrets Manager.
    SecretsManager,
    /// AWS Systems Manager (Parameter Store).
    Ssm,
}

impl Service {
    /// The name requests are signed for, and the endpoint's first label.
    fn name(self) -> &'static str {
        match self {
            Self::SecretsManager => "secretsmanager",
            Self::Ssm => "ssm",
        }
    }

    /// The `X-Amz-Target` prefix of its operations.
    fn target(self) -> &'static str {
        match self {
            Self::SecretsManager => "secretsmanager",
            Self::Ssm => "AmazonSSM",
        }
    }

    /// Its service-specific endpoint variable.
    fn endpoint_var(self) -> &'static str {
        match self {
            Self::SecretsManager => "AWS_ENDPOINT_URL_SECRETS_MANAGER",
            Self::Ssm => "AWS_ENDPOINT_URL_SSM",
        }
    }
}

/// Why a call got no answer to read. `Debug` shows a refusal's status and
/// code (the code only when [`crate::errors::KNOWN_CODES`] has it) and
/// never its message: both come from whatever answered.
#[derive(Clone)]
pub enum ApiError {
    /// AWS (or whatever answered) refused: an HTTP status outside 2xx.
    /// `message` is the service's text: matched, never shown.
    Refused {
        /// The HTTP status.
        status: u16,
        /// The error code, when the answer named one.
        code: Option<String>,
        /// The service's message, when there was one.
        message: Option<String>,
    },
    /// A 2xx whose body is not the service's JSON.
    Unreadable {
        /// The HTTP status.
        status: u16,
    },
    /// No answer: the transport's failure.
    Transport(Failure),
    /// The request could not be signed or built (the reason names no
    /// credential).
    Request(String),
}

impl std::fmt::Debug for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Refused { status, code, .. } => f
                .debug_struct("Refused")
                .field("status", status)
                .field("code", &code.as_deref().map(crate::errors::shown_code))
                .finish_non_exhaustive(),
            Self::Unreadable { status } => f
                .debug_struct("Unreadable")
                .field("status", status)
                .finish(),
            Self::Transport(failure) => f.debug_tuple("Transport").field(failure).finish(),
            Self::Request(why) => f.debug_tuple("Request").field(why).finish(),
        }
    }
}

impl ApiError {
    /// The error code of a refusal; when the answer named none, the code
    /// its HTTP status implies.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Refused { code: Some(c), .. } => Some(c),
            Self::Refused { status, .. } => crate::errors::implied_code(*status),
            _ => None,
        }
    }
}

/// The selected profile's keys that stand for an endpoint variable when
/// the variable is unset, as the SDK reads them.
pub const PROFILE_KEYS: [(&str, &str); 3] = [
    ("AWS_USE_FIPS_ENDPOINT", "use_fips_endpoint"),
    ("AWS_USE_DUALSTACK_ENDPOINT", "use_dualstack_endpoint"),
    (
        "AWS_IGNORE_CONFIGURED_ENDPOINT_URLS",
        "ignore_configured_endpoint_urls",
    ),
];

/// `value` (a variable's), else the profile's setting standing for
/// variable `name` in `settings` (pairs of a variable and the value of its
/// profile key, [`PROFILE_KEYS`]).
pub fn or_profile(
    value: Option<String>,
    settings: &[(&str, String)],
    name: &str,
) -> Option<String> {
    value.or_else(|| {
        settings
            .iter()
            .find(|(var, _)| *var == name)
            .map(|(_, v)| v.clone())
    })
}

/// Where each service's requests go (see the module docs for the order).
/// `Debug` shows the URLs with their userinfo and query hidden.
#[derive(Clone, Default)]
pub struct Endpoints {
    /// The config's `endpoint_url`: every service.
    pub configured: Option<String>,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`.
    pub secrets_manager: Option<String>,
    /// `AWS_ENDPOINT_URL_SSM`.
    pub ssm: Option<String>,
    /// `AWS_ENDPOINT_URL`.
    pub global: Option<String>,
    /// The profile's `endpoint_url`.
    pub profile: Option<String>,
    /// `AWS_USE_FIPS_ENDPOINT=true` (else the profile's
    /// `use_fips_endpoint`).
    pub fips: bool,
    /// `AWS_USE_DUALSTACK_ENDPOINT=true` (else the profile's
    /// `use_dualstack_endpoint`).
    pub dual_stack: bool,
}

impl std::fmt::Debug for Endpoints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        fn url(u: &Option<String>) -> Option<std::borrow::Cow<'_, str>> {
            u.as_deref().map(backend_core::redact::url)
        }
        f.debug_struct("Endpoints")
            .field("configured", &url(&self.configured))
            .field("secrets_manager", &url(&self.secrets_manager))
            .field("ssm", &url(&self.ssm))
            .field("global", &url(&self.global))
            .field("profile", &url(&self.profile))
            .field("fips", &self.fips)
            .field("dual_stack", &self.dual_stack)
            .finish()
    }
}

impl Endpoints {
    /// From the config's endpoint, the profile's, and `env`.
    pub fn from_env(
        configured: Option<String>,
        profile: Option<String>,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Self {
        let on = |name: &str| env(name).is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
        let ignore = on("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS");
        let var = |name: &str| {
            if ignore {
                None
            } else {
                env(name).filter(|v| !v.is_empty())
            }
        };
        Self {
            configured,
            secrets_manager: var(Service::SecretsManager.endpoint_var()),
            ssm: var(Service::Ssm.endpoint_var()),
            global: var("AWS_ENDPOINT_URL"),
            profile: if ignore { None } else { profile },
            fips: on("AWS_USE_FIPS_ENDPOINT"),
            dual_stack: on("AWS_USE_DUALSTACK_ENDPOINT"),
        }
    }

    /// The URL `service`'s requests in `region` are posted to.
    pub fn url(&self, service: Service, region: &str) -> String {
        let specific = match service {
            Service::SecretsManager => &self.secrets_manager,
            Service::Ssm => &self.ssm,
        };
        if let Some(url) = self
            .configured
            .as_ref()
            .or(specific.as_ref())
            .or(self.global.as_ref())
            .or(self.profile.as_ref())
        {
            return url.clone();
        }
        let fips = if self.fips { "-fips" } else { "" };
        format!(
            "https://{}{fips}.{region}.{}",
            service.name(),
            dns_suffix(region, self.dual_stack)
        )
    }
}

/// The DNS suffix of `region`'s partition (the SDK's partition table).
pub(crate) fn dns_suffix(region: &str, dual_stack: bool) -> &'static str {
    let prefixed = |p: &str| region.starts_with(p);
    match (dual_stack, region) {
        _ if prefixed("cn-") => {
            if dual_stack {
                "api.amazonwebservices.com.cn"
            } else {
                "amazonaws.com.cn"
            }
        }
        _ if prefixed("us-isob-") => "sc2s.sgov.gov",
        _ if prefixed("us-isof-") => "csp.hci.ic.gov",
        _ if prefixed("us-iso-") => "c2s.ic.gov",
        _ if prefixed("eu-isoe-") => "cloud.adc-e.uk",
        (true, _) => "api.aws",
        (false, _) => "amazonaws.com",
    }
}

/// The signed client of one call: credentials, endpoints and HTTP.
#[derive(Debug)]
pub struct Api {
    http: Http,
    credentials: Credentials,
    endpoints: Endpoints,
}

impl Api {
    /// A client signing with `credentials`. Reads no file, connects nowhere.
    pub fn new(credentials: Credentials, endpoints: Endpoints) -> Result<Self, String> {
        let tls = backend_net::system_roots_config().map_err(|e| format!("TLS setup: {e}"))?;
        let http = Http::builder(
            concat!("secret-backend-aws/", env!("CARGO_PKG_VERSION")),
            tls,
        )
        .attempts(ATTEMPTS)
        .build()?;
        Ok(Self {
            http,
            credentials,
            endpoints,
        })
    }

    /// Calls `operation` of `service` in `region` with `body`; the answer's
    /// JSON. Retried as the module docs say, inside `ctx`'s deadline.
    pub async fn call(
        &self,
        service: Service,
        region: &str,
        operation: &str,
        body: &Value,
        ctx: &Context,
    ) -> Result<Value, ApiError> {
        if !crate::chain::valid_region(region) {
            return Err(ApiError::Request(format!(
                "'{}' is not an AWS region (one DNS label, like eu-west-1)",
                shown(region)
            )));
        }
        let url = self.endpoints.url(service, region);
        let parsed = endpoint_url(&url)
            .ok_or_else(|| ApiError::Request("the endpoint is not an http(s) URL".into()))?;
        let host = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_owned(),
            (None, _) => return Err(ApiError::Request("the endpoint names no host".into())),
        };
        let target = format!("{}.{operation}", service.target());
        let payload = serde_json::to_vec(body)
            .map_err(|_| ApiError::Request("the request cannot be encoded".into()))?;
        let headers = [
            ("host", host.as_str()),
            ("content-type", "application/x-amz-json-1.1"),
            ("x-amz-target", target.as_str()),
        ];
        let signed = backend_net::sigv4::sign_post(
            self.credentials.clone(),
            service.name(),
            region,
            parsed.as_str(),
            &headers,
            &payload,
            SystemTime::now(),
        )
        .map_err(|why| ApiError::Request(format!("cannot sign the request: {why}")))?;
        let response = self
            .http
            .send_retrying(
                ctx,
                |client| {
                    let mut request = client
                        .post(parsed.clone())
                        .header("content-type", "application/x-amz-json-1.1")
                        .header("x-amz-target", &target)
                        .body(payload.clone());
                    for (name, value) in &signed.headers {
                        request = request.header(name.as_str(), value.expose());
                    }
                    request
                },
                retried,
            )
            .await
            .map_err(ApiError::Transport)?;
        read(&response)
    }
}

/// An endpoint URL as requests are sent to it: `http` or `https` with a
/// host, its userinfo dropped. AWS requests are signed; a `user:password@`
/// in `AWS_ENDPOINT_URL*` or a profile's `endpoint_url` has no use, and
/// reqwest would send it as Basic credentials beside the signature (the
/// SDK's client never sent it). The config's `endpoint_url` refuses one.
pub(crate) fn endpoint_url(text: &str) -> Option<reqwest::Url> {
    let mut url = reqwest::Url::parse(text.trim()).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
        return None;
    }
    url.set_username("").ok()?;
    url.set_password(None).ok()?;
    Some(url)
}

/// A region as a message may show it: escaped, at most 64 characters.
fn shown(region: &str) -> String {
    let escaped: String = region.escape_debug().collect();
    match escaped.char_indices().nth(64) {
        Some((at, _)) => format!("{}...", escaped.get(..at).unwrap_or_default()),
        None => escaped,
    }
}

/// Whether an answer is worth another attempt (the SDK's standard mode).
fn retried(response: &Response) -> bool {
    backend_net::http::retried(response.status)
        || (response.status.is_client_error()
            && error_code(response).is_some_and(|c| RETRIED_CODES.contains(&c.as_str())))
}

/// The answer's JSON, or why there is none.
fn read(response: &Response) -> Result<Value, ApiError> {
    let status = response.status.as_u16();
    if response.status.is_success() {
        return response
            .json::<Value>()
            .filter(Value::is_object)
            .ok_or(ApiError::Unreadable { status });
    }
    let body: Option<Value> = response.json();
    let message = body.as_ref().and_then(|b| {
        ["message", "Message"]
            .iter()
            .find_map(|k| b.get(k).and_then(Value::as_str))
            .map(str::to_owned)
    });
    Err(ApiError::Refused {
        status,
        code: error_code(response),
        message,
    })
}

/// The error code of an answer, as the SDK's JSON protocols find it: the
/// `X-Amzn-ErrorType` header, else the body's `__type`, else `code`.
fn error_code(response: &Response) -> Option<String> {
    let header = response
        .headers
        .get("x-amzn-errortype")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let code = header.or_else(|| {
        let body: Value = response.json()?;
        ["__type", "code"]
            .iter()
            .find_map(|k| body.get(k).and_then(Value::as_str))
            .map(str::to_owned)
    })?;
    let code = sanitize(&code);
    (!code.is_empty()).then(|| code.to_owned())
}

/// `aws.protocoltests#FooError:http://internal.amazon.com/...` -> `FooError`.
fn sanitize(code: &str) -> &str {
    let code = code.split(':').next().unwrap_or_default();
    code.rsplit('#').next().unwrap_or_default().trim()
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_core::testkit::env_of as env;

    #[test]
    fn an_errors_debug_shows_no_message_and_no_unknown_code() {
        let e = ApiError::Refused {
            status: 400,
            code: Some("CODE-MARKER".into()),
            message: Some("MSG-MARKER".into()),
        };
        let shown = format!("{e:?}");
        assert!(
            !shown.contains("MARKER") && shown.contains("400"),
            "{shown}"
        );
    }

    #[test]
    fn endpoints_debug_hides_passwords() {
        let e = Endpoints::from_env(
            Some("http://u:PW-1@h:1/".into()),
            Some("https://u:PW-2@p/?k=PW-3".into()),
            &env(&[("AWS_ENDPOINT_URL_SSM", "http://u:PW-4@s/")]),
        );
        let shown = format!("{e:?}");
        assert!(!shown.contains("PW-"), "{shown}");
        let api = Api::new(
            Credentials::new("AKID", "SECRET-5", Some("TOKEN-6".into()), None, "t"),
            e,
        )
        .unwrap();
        let shown = format!("{api:?}");
        assert!(
            !shown.contains("PW-") && !shown.contains("SECRET-5") && !shown.contains("TOKEN-6"),
            "{shown}"
        );
    }

    #[test]
    fn endpoints_in_the_sdks_order() {
        let none = Endpoints::from_env(None, None, &env(&[]));
        assert_eq!(
            none.url(Service::SecretsManager, "eu-west-1"),
            "https://secretsmanager.eu-west-1.amazonaws.com"
        );
        assert_eq!(
            none.url(Service::Ssm, "cn-north-1"),
            "https://ssm.cn-north-1.amazonaws.com.cn"
        );
        assert_eq!(
            none.url(Service::Ssm, "us-iso-east-1"),
            "https://ssm.us-iso-east-1.c2s.ic.gov"
        );
        let fips = Endpoints::from_env(
            None,
            None,
            &env(&[
                ("AWS_USE_FIPS_ENDPOINT", "true"),
                ("AWS_USE_DUALSTACK_ENDPOINT", "TRUE"),
            ]),
        );
        assert_eq!(
            fips.url(Service::SecretsManager, "us-east-1"),
            "https://secretsmanager-fips.us-east-1.api.aws"
        );
        let vars = env(&[
            ("AWS_ENDPOINT_URL", "http://global"),
            ("AWS_ENDPOINT_URL_SSM", "http://ssm"),
        ]);
        let e = Endpoints::from_env(None, Some("http://profile".into()), &vars);
        assert_eq!(e.url(Service::Ssm, "r"), "http://ssm");
        assert_eq!(e.url(Service::SecretsManager, "r"), "http://global");
        let e = Endpoints::from_env(Some("http://config".into()), None, &vars);
        assert_eq!(e.url(Service::Ssm, "r"), "http://config");
        let e = Endpoints::from_env(None, Some("http://profile".into()), &env(&[]));
        assert_eq!(e.url(Service::Ssm, "r"), "http://profile");
        let ignored = env(&[
            ("AWS_ENDPOINT_URL", "http://global"),
            ("AWS_IGNORE_CONFIGURED_ENDPOINT_URLS", "true"),
        ]);
        let e = Endpoints::from_env(None, Some("http://profile".into()), &ignored);
        assert_eq!(e.url(Service::Ssm, "r"), "https://ssm.r.amazonaws.com");
    }

    #[tokio::test]
    async fn a_region_that_is_not_one_label_is_never_sent() {
        let api = Api::new(
            Credentials::new("AKID", "SECRET", Some("TOKEN".into()), None, "test"),
            Endpoints::default(),
        )
        .unwrap();
        let ctx = Context::with_budget(std::time::Duration::from_secs(5));
        for region in ["evil.example/x#", "a.b", "", "eu-west-1.evil.example"] {
            match api
                .call(
                    Service::SecretsManager,
                    region,
                    "GetSecretValue",
                    &Value::Null,
                    &ctx,
                )
                .await
            {
                Err(ApiError::Request(why)) => {
                    assert!(why.contains("is not an AWS region"), "{why}");
                }
                other => panic!("{region}: {other:?}"),
            }
        }
        assert!(shown(&"x".repeat(100)).ends_with("..."));
    }

    /// An endpoint's userinfo is never sent (no `Basic` beside SigV4).
    #[tokio::test]
    async fn an_endpoints_userinfo_is_dropped() {
        use std::io::{Read, Write};
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let seen = std::thread::spawn(move || {
            let (mut s, _) = listener.accept().unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                let n = s.read(&mut buf).unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let body = "{}";
            let _ = write!(
                s,
                "HTTP/1.1 200 OK\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            String::from_utf8_lossy(&head).into_owned()
        });
        let endpoints = Endpoints {
            global: Some(format!("http://user:PW-9@127.0.0.1:{port}/")),
            ..Endpoints::default()
        };
        let api = Api::new(
            Credentials::new("AKID", "SECRET", None, None, "t"),
            endpoints,
        )
        .unwrap();
        let ctx = Context::with_budget(std::time::Duration::from_secs(5));
        let out = api
            .call(
                Service::Ssm,
                "eu-west-1",
                "GetParameters",
                &serde_json::json!({}),
                &ctx,
            )
            .await;
        assert!(out.is_ok(), "{out:?}");
        let head = seen.join().unwrap();
        assert!(head.contains("AWS4-HMAC-SHA256"), "{head}");
        assert!(!head.contains("Basic") && !head.contains("PW-9"), "{head}");
        assert!(head.contains(&format!("host: 127.0.0.1:{port}")), "{head}");
    }

    fn answer(status: u16, header: Option<&str>, body: &str) -> Response {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(h) = header {
            headers.insert("x-amzn-errortype", h.parse().unwrap());
        }
        Response {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            headers,
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn error_codes_as_the_sdk_reads_them() {
        let r = answer(
            400,
            Some("ResourceNotFoundException:http://internal.amazon.com/coral/x/"),
            r#"{"__type":"Other"}"#,
        );
        assert_eq!(error_code(&r).as_deref(), Some("ResourceNotFoundException"));
        let r = answer(
            400,
            None,
            r#"{"__type":"com.amazonaws.secretsmanager#ThrottlingException","message":"m"}"#,
        );
        assert_eq!(error_code(&r).as_deref(), Some("ThrottlingException"));
        assert!(retried(&r));
        match read(&r) {
            Err(ApiError::Refused {
                status: 400,
                code: Some(c),
                message: Some(m),
            }) => assert_eq!((c.as_str(), m.as_str()), ("ThrottlingException", "m")),
            other => panic!("{other:?}"),
        }
        let r = answer(400, None, r#"{"code":"AccessDeniedException"}"#);
        assert_eq!(error_code(&r).as_deref(), Some("AccessDeniedException"));
        assert!(!retried(&r));
        let r = answer(400, None, "<html>");
        assert_eq!(error_code(&r), None);
        assert!(retried(&answer(503, None, "")));
        assert!(matches!(
            read(&answer(200, None, "[1]")),
            Err(ApiError::Unreadable { status: 200 })
        ));
        assert!(read(&answer(200, None, r#"{"a":1}"#)).is_ok());
    }
}
