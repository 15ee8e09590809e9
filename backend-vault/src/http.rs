//! The HTTP side: one reqwest client, URLs built from validated segments,
//! retries, bounded bodies.
//!
//! We call Vault's HTTP API with reqwest directly rather than through
//! vaultrs: vaultrs cannot check the certificate against
//! `VAULT_TLS_SERVER_NAME`, has no call for the mount lookup the CLI does
//! (`sys/internal/ui/mounts/<path>`), hides the HTTP status and KV v2
//! deletion metadata that per-handle errors need behind its own error type,
//! Debug-prints the token, and logs an ERROR for every 404. The handful of
//! endpoints we need (read, mount lookup, logins, lookup-self, revoke-self)
//! are plain JSON over HTTP.
//!
//! Every request is retried on connection errors, 429 and 5xx with jittered
//! exponential backoff, as long as the next attempt can start before the
//! call's deadline; 4xx and refused TLS handshakes are answered at once. Redirects are not followed: a
//! redirect to another host would carry our token there.

use std::time::Duration;

use backend_core::{ConfigError, Context, Secret};
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::tls;

/// Largest response body we read.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Attempts per request (the first one included).
const ATTEMPTS: u32 = 6;
/// First backoff; doubled per retry, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);

/// A server answer: the status and the body, parsed when it is JSON.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body, if any (never put into messages: it may hold values).
    pub body: Option<Value>,
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connection or protocol failure; the message names the cause.
    Unreachable(String),
    /// A failure a retry would repeat (a TLS handshake refused either way,
    /// a token that cannot be a header).
    Permanent(String),
    /// The body was larger than [`MAX_BODY`].
    TooLarge,
}

/// The Vault HTTP API at one address.
#[derive(Debug, Clone)]
pub struct Api {
    client: reqwest::Client,
    base: Url,
    namespace: Option<HeaderValue>,
}

impl Api {
    /// A client for `settings` (reads the TLS files; no network).
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let tls = tls::client_config(&settings.tls)?;
        let client = reqwest::Client::builder()
            .use_preconfigured_tls(tls)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("secret-backend-vault/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| ConfigError::new(format!("HTTP client: {e}")))?;
        let base = Url::parse(&format!("{}/v1/", settings.address))
            .map_err(|e| ConfigError::new(format!("address: {e}")))?;
        warn_of_cleartext_proxy(&base);
        let namespace = settings
            .namespace
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| ConfigError::new("namespace holds characters a header cannot carry"))?;
        Ok(Self {
            client,
            base,
            namespace,
        })
    }

    /// The URL of `segments` under `/v1/`, each segment percent-encoded, so
    /// no segment can reach outside the path.
    pub fn url<S: AsRef<str>>(&self, segments: &[S], query: Option<(&str, &str)>) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty();
            path.extend(segments.iter().map(AsRef::as_ref));
        }
        if let Some((k, v)) = query {
            url.query_pairs_mut().append_pair(k, v);
        }
        url
    }

    /// Sends a request, retrying transient failures inside `ctx`'s deadline.
    pub async fn send(
        &self,
        method: Method,
        url: Url,
        token: Option<&Secret>,
        body: Option<&Zeroizing<Vec<u8>>>,
        ctx: &Context,
    ) -> Result<Response, Failure> {
        let headers = self.headers(token)?;
        let mut attempt = 0;
        loop {
            attempt += 1;
            let mut req = self
                .client
                .request(method.clone(), url.clone())
                .headers(headers.clone());
            if let Some(b) = body {
                req = req
                    .header(reqwest::header::CONTENT_TYPE, "application/json")
                    .body(b.to_vec());
            }
            let outcome = match req.send().await {
                Ok(resp) => read(resp).await,
                Err(e) => Err(transport_failure(&e)),
            };
            let retry = match &outcome {
                Ok(r) => r.status.is_server_error() || r.status == StatusCode::TOO_MANY_REQUESTS,
                Err(Failure::Unreachable(_)) => true,
                Err(Failure::Permanent(_) | Failure::TooLarge) => false,
            };
            if !retry || attempt >= ATTEMPTS {
                return outcome;
            }
            let pause = backoff(attempt);
            // A retry that cannot finish before the deadline is pointless:
            // report what we have while there is time to.
            if ctx.remaining() <= pause + Duration::from_millis(50) {
                return outcome;
            }
            tokio::time::sleep(pause).await;
        }
    }

    fn headers(&self, token: Option<&Secret>) -> Result<HeaderMap, Failure> {
        let mut h = HeaderMap::new();
        // The CLI sends it; some proxies in front of Vault require it.
        h.insert("X-Vault-Request", HeaderValue::from_static("true"));
        if let Some(ns) = &self.namespace {
            h.insert("X-Vault-Namespace", ns.clone());
        }
        if let Some(t) = token {
            let mut v = HeaderValue::from_str(t.expose()).map_err(|_| {
                Failure::Permanent("the token holds characters a header cannot carry".into())
            })?;
            v.set_sensitive(true);
            h.insert("X-Vault-Token", v);
        }
        Ok(h)
    }
}

/// The proxy variables a plain-http request may go through, as reqwest
/// (hyper-util's matcher) reads them: of each pair the first one set.
const HTTP_PROXY_VARS: [[&str; 2]; 2] = [["HTTP_PROXY", "http_proxy"], ["ALL_PROXY", "all_proxy"]];

/// The environment variable and proxy (userinfo hidden) that a plain-http
/// `base` goes through, by reqwest's own rules (`NO_PROXY` included).
pub fn cleartext_proxy(base: &Url) -> Option<(&'static str, String)> {
    use hyper_util::client::proxy::matcher::Matcher;
    if base.scheme() != "http" {
        return None;
    }
    let uri: http::Uri = base.as_str().parse().ok()?;
    Matcher::from_env().intercept(&uri)?;
    // Which variable supplied it: the first set one of a pair that alone
    // would proxy us.
    HTTP_PROXY_VARS
        .into_iter()
        .filter_map(|pair| {
            pair.into_iter()
                .find_map(|v| std::env::var(v).ok().map(|value| (v, value)))
        })
        .find(|(_, value)| {
            Matcher::builder()
                .all(value.as_str())
                .build()
                .intercept(&uri)
                .is_some()
        })
        .map(|(var, value)| (var, backend_core::redact::url(value.trim()).into_owned()))
}

/// Warns when the address is plain http and a proxy from the environment
/// applies to it: the proxy then sees the token and every value in clear.
fn warn_of_cleartext_proxy(base: &Url) {
    if let Some((var, proxy)) = cleartext_proxy(base) {
        tracing::warn!(
            "the Vault address is plain http and {var} sends its requests through the proxy \
             {proxy}: the proxy sees the Vault token and every secret in clear; use an https \
             address, or name the Vault host in NO_PROXY"
        );
    }
}

/// Full-jitter-ish backoff: between half and all of the exponential step.
fn backoff(attempt: u32) -> Duration {
    let step = FIRST_BACKOFF
        .saturating_mul(1 << attempt.saturating_sub(1).min(10))
        .min(MAX_BACKOFF);
    let half = step / 2;
    half + half.mul_f64(fastrand::f64())
}

async fn read(mut resp: reqwest::Response) -> Result<Response, Failure> {
    let status = resp.status();
    if resp.content_length().is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Failure::TooLarge);
    }
    let mut bytes = Zeroizing::new(Vec::new());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if bytes.len() + chunk.len() > MAX_BODY {
                    return Err(Failure::TooLarge);
                }
                bytes.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_failure(&e)),
        }
    }
    let body = serde_json::from_slice(&bytes).ok();
    Ok(Response { status, body })
}

/// A transport error's cause in words, as [`transport_failure`] names it.
pub(crate) fn transport_cause(e: &reqwest::Error) -> String {
    match transport_failure(e) {
        Failure::Unreachable(text) | Failure::Permanent(text) => text,
        Failure::TooLarge => "response too large".into(),
    }
}

/// A transport error as a [`Failure`], named by its innermost cause
/// ("Connection refused", "invalid peer certificate: UnknownIssuer"): the
/// useful part, without reqwest's wrapping.
fn transport_failure(e: &reqwest::Error) -> Failure {
    let mut cause: &dyn std::error::Error = e;
    let mut tls = false;
    while let Some(next) = cause.source() {
        cause = next;
        tls |= backend_tls::is_tls_error(cause);
    }
    let text = cause.to_string();
    let kind = if e.is_connect() {
        "cannot connect"
    } else if e.is_timeout() {
        "timed out"
    } else {
        "request failed"
    };
    let text = if text.is_empty() || text == e.to_string() {
        kind.to_owned()
    } else {
        format!("{kind}: {text}")
    };
    if tls || backend_tls::is_tls_error(e) {
        Failure::Permanent(text)
    } else {
        Failure::Unreachable(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn api() -> Api {
        let config = crate::VaultConfig {
            address: Some("https://vault.example:8200/prefix".into()),
            ..crate::VaultConfig::default()
        };
        let env = |k: &str| (k == "VAULT_TOKEN").then(|| "t".to_owned());
        Api::new(&config.validate(&env).unwrap()).unwrap()
    }

    #[test]
    fn urls_stay_under_v1() {
        let api = api();
        let url = api.url(&["secret", "data", "a b", "ü"], Some(("version", "3")));
        assert_eq!(
            url.as_str(),
            "https://vault.example:8200/prefix/v1/secret/data/a%20b/%C3%BC?version=3"
        );
    }

    proptest::proptest! {
        /// Any segments a handle can hold keep the URL on the same host,
        /// under /v1/, with no query of their making.
        #[test]
        fn segments_cannot_leave_the_path(h in "[a-z./:@ ;=&é☃\"{}<>|^`'\\[\\]1-9]{1,30}") {
            if let Ok(p) = crate::handle::parse(&h) {
                let url = api().url(&p.segments, None);
                proptest::prop_assert_eq!(url.host_str(), Some("vault.example"));
                proptest::prop_assert!(url.path().starts_with("/prefix/v1/"));
                proptest::prop_assert_eq!(url.query(), None);
                proptest::prop_assert_eq!(url.fragment(), None);
                proptest::prop_assert_eq!(url.path_segments().map(Iterator::count), Some(p.segments.len() + 2));
            }
        }
    }

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let b = backoff(attempt);
            assert!(b <= MAX_BACKOFF, "{attempt}: {b:?}");
            assert!(b >= FIRST_BACKOFF / 2, "{attempt}: {b:?}");
        }
        assert!(backoff(1) <= FIRST_BACKOFF);
    }
}
