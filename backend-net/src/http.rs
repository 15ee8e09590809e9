//! HTTP for the networked stores: one client per call, retries under the
//! deadline, bounded bodies, failures in words that quote no body.
//!
//! We call the stores' HTTP APIs with reqwest directly (each provider's
//! module docs say why not the vendor's SDK). What every one of them needs
//! is here, so a new provider writes only its config, handle grammar, auth
//! and error mapping:
//!
//! - [`Http`]: a reqwest client on a rustls configuration of ours
//!   ([`crate::tls`]), built once per call. Redirects are never followed
//!   (a redirect to another host would carry our credential there);
//!   proxies come from the environment (`HTTPS_PROXY`, `NO_PROXY`) unless
//!   turned off (a link-local metadata server is never proxied); an
//!   optional connect timeout makes a host outside a cloud fail fast.
//! - [`Http::send`]: retries connection failures, 429 and 5xx with
//!   jittered exponential backoff, honouring `Retry-After` when it fits
//!   before the deadline (else our shorter backoff: the deadline is the
//!   caller's), as long as the next attempt can start before it; 4xx and
//!   refused TLS handshakes are answered at once. A request that cannot be
//!   retried (a body read from a stream) is never sent twice: every request
//!   is made afresh by the caller's closure.
//! - [`Response`]: the status, the headers and the body, read up to
//!   [`MAX_BODY`] into a buffer that is zeroized when dropped (bodies hold
//!   secret values and tokens).
//! - [`Failure`]: why no answer came, named by its innermost cause
//!   ("Connection refused", "invalid peer certificate: UnknownIssuer"),
//!   never by a body.

use std::time::Duration;

use backend_core::Context;
use reqwest::StatusCode;
use reqwest::header::HeaderMap;
use zeroize::Zeroizing;

/// Largest response body read.
pub const MAX_BODY: usize = 4 * 1024 * 1024;
/// Attempts per request by default (the first one included).
pub const DEFAULT_ATTEMPTS: u32 = 6;
/// First backoff; doubled per retry, capped at [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// The longest `Retry-After` honoured: a longer one is the deadline's to cut.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(30);
/// No attempt starts with less than this left before the deadline.
const LAST_START: Duration = Duration::from_millis(50);
/// How long past the deadline [`Http::send`] cuts an attempt itself: its
/// callers cut it at the deadline, in their own words, first.
const PAST_DEADLINE: Duration = Duration::from_millis(100);

pub use reqwest;

/// A client for one store, built once per call.
#[derive(Debug, Clone)]
pub struct Http {
    client: reqwest::Client,
    attempts: u32,
}

/// How to build an [`Http`]: [`Http::builder`].
#[derive(Debug)]
pub struct Builder {
    user_agent: String,
    tls: rustls::ClientConfig,
    connect_timeout: Option<Duration>,
    proxy: bool,
    attempts: u32,
}

impl Builder {
    /// Connections not made within `timeout` fail (a metadata server
    /// outside its cloud, say). Default: the call's deadline alone.
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = Some(timeout);
        self
    }

    /// Ignore the proxy variables: for link-local endpoints (instance
    /// metadata), which a proxy cannot reach and must not see.
    #[must_use]
    pub fn no_proxy(mut self) -> Self {
        self.proxy = false;
        self
    }

    /// Attempts per request, the first one included (at least 1).
    #[must_use]
    pub fn attempts(mut self, attempts: u32) -> Self {
        self.attempts = attempts.max(1);
        self
    }

    /// The client. Reads nothing and connects nowhere.
    pub fn build(self) -> Result<Http, String> {
        let mut b = reqwest::Client::builder()
            .use_preconfigured_tls(self.tls)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(self.user_agent);
        if let Some(t) = self.connect_timeout {
            b = b.connect_timeout(t);
        }
        if !self.proxy {
            b = b.no_proxy();
        }
        let client = b.build().map_err(|e| format!("HTTP client: {e}"))?;
        Ok(Http {
            client,
            attempts: self.attempts,
        })
    }
}

/// A server's answer.
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The headers.
    pub headers: HeaderMap,
    /// The body, zeroized on drop. Never put into messages: it may hold
    /// values and tokens.
    pub body: Zeroizing<Vec<u8>>,
}

impl std::fmt::Debug for Response {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Response")
            .field("status", &self.status)
            .field("body_len", &self.body.len())
            .finish_non_exhaustive()
    }
}

impl Response {
    /// The body parsed as JSON, if it is. serde_json's own error would
    /// quote the body, so there is none: the caller says what it expected.
    pub fn json<T: serde::de::DeserializeOwned>(&self) -> Option<T> {
        serde_json::from_slice(&self.body).ok()
    }
}

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// Connection or protocol failure (retried); the message names the cause.
    Unreachable(String),
    /// A failure a retry would repeat (a TLS handshake refused either way,
    /// a credential that cannot be a header).
    Permanent(String),
    /// The body was larger than [`MAX_BODY`].
    TooLarge,
}

impl Failure {
    /// The cause, in words.
    pub fn cause(&self) -> String {
        match self {
            Self::Unreachable(text) | Self::Permanent(text) => text.clone(),
            Self::TooLarge => format!("response larger than {MAX_BODY} bytes"),
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.cause())
    }
}

impl Http {
    /// A builder for a client on `tls`, sending `user_agent`.
    pub fn builder(user_agent: impl Into<String>, tls: rustls::ClientConfig) -> Builder {
        Builder {
            user_agent: user_agent.into(),
            tls,
            connect_timeout: None,
            proxy: true,
            attempts: DEFAULT_ATTEMPTS,
        }
    }

    /// Sends the request `make` builds, retrying transient failures inside
    /// `ctx`'s deadline; `make` is called once per attempt. No retry starts
    /// that cannot begin before the deadline. Callers run it inside
    /// [`Context::within`] or [`backend_core::bounded`], so that a handle
    /// says `timed out` in the store's words at the deadline; an attempt
    /// still under way a moment later is cut here all the same (a
    /// [`Failure::Unreachable`]), so no call waits past the deadline on a
    /// server that never answers, whoever calls.
    pub async fn send(
        &self,
        ctx: &Context,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, Failure> {
        self.send_retrying(ctx, make, |r| retried(r.status)).await
    }

    /// [`Http::send`], with the caller deciding which answers are worth
    /// another attempt (AWS says "throttled" with a 400 and an error code
    /// in the body, not with a 429). Transport failures are retried as by
    /// `send`.
    pub async fn send_retrying(
        &self,
        ctx: &Context,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
        retry_answer: impl Fn(&Response) -> bool,
    ) -> Result<Response, Failure> {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let exchange = async {
                match make(&self.client).send().await {
                    Ok(resp) => read(resp).await,
                    Err(e) => Err(transport_failure(&e)),
                }
            };
            let outcome = tokio::time::timeout_at(ctx.deadline() + PAST_DEADLINE, exchange)
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Unreachable(
                        "no answer before the deadline".to_owned(),
                    ))
                });
            let retry = match &outcome {
                Ok(r) => retry_answer(r),
                Err(Failure::Unreachable(_)) => true,
                Err(Failure::Permanent(_) | Failure::TooLarge) => false,
            };
            if !retry || attempt >= self.attempts {
                return outcome;
            }
            let asked = outcome.as_ref().ok().and_then(|r| retry_after(&r.headers));
            // The server's `Retry-After` when it fits before the deadline;
            // otherwise our own backoff: the deadline is the caller's, and
            // an attempt that may still succeed beats certain failure.
            let step = backoff(attempt);
            let pause = match asked {
                Some(a) if ctx.remaining() > a + LAST_START => a.max(step),
                _ => step,
            };
            // A retry that cannot start before the deadline is pointless:
            // report what we have while there is time to.
            if ctx.remaining() <= pause + LAST_START {
                return outcome;
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// Statuses worth another attempt: throttled, or the server's fault.
pub fn retried(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// A `Retry-After` of delay-seconds (the form the stores send), capped.
/// The HTTP-date form falls back to our own backoff.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let text = headers.get(reqwest::header::RETRY_AFTER)?.to_str().ok()?;
    let secs: u64 = text.trim().parse().ok()?;
    Some(Duration::from_secs(secs).min(MAX_RETRY_AFTER))
}

/// Jittered exponential backoff: between half and all of the step.
pub fn backoff(attempt: u32) -> Duration {
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
    let headers = std::mem::take(resp.headers_mut());
    let mut body = Zeroizing::new(Vec::new());
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() + chunk.len() > MAX_BODY {
                    return Err(Failure::TooLarge);
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => break,
            Err(e) => return Err(transport_failure(&e)),
        }
    }
    Ok(Response {
        status,
        headers,
        body,
    })
}

/// A transport error as a [`Failure`], named by its innermost cause: the
/// useful part, without reqwest's wrapping (which quotes the URL).
pub fn transport_failure(e: &reqwest::Error) -> Failure {
    let mut cause: &dyn std::error::Error = e;
    let mut tls = crate::is_tls_error(e);
    while let Some(next) = cause.source() {
        cause = next;
        tls |= crate::is_tls_error(cause);
    }
    let text = backend_core::redact::text(&cause.to_string()).into_owned();
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
    if tls {
        Failure::Permanent(text)
    } else {
        Failure::Unreachable(text)
    }
}

/// The proxy variables a plain-http request may go through, as reqwest
/// (hyper-util's matcher) reads them: of each pair the first one set.
const HTTP_PROXY_VARS: [[&str; 2]; 2] = [["HTTP_PROXY", "http_proxy"], ["ALL_PROXY", "all_proxy"]];

/// The environment variable and proxy (userinfo hidden) that a plain-http
/// `base` goes through, by reqwest's own rules (`NO_PROXY` included).
pub fn cleartext_proxy(base: &reqwest::Url) -> Option<(&'static str, String)> {
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

/// Warns when `base` is plain http and a proxy from the environment
/// applies to it: the proxy then sees `credential` and every secret in
/// clear. `store` names the address ("the Vault address").
pub fn warn_of_cleartext_proxy(base: &reqwest::Url, store: &str, credential: &str) {
    if let Some((var, proxy)) = cleartext_proxy(base) {
        tracing::warn!(
            "{store} is plain http and {var} sends its requests through the proxy \
             {proxy}: the proxy sees {credential} and every secret in clear; use an https \
             address, or name the host in NO_PROXY"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_and_is_capped() {
        for attempt in 1..20 {
            let b = backoff(attempt);
            assert!(b <= MAX_BACKOFF, "{attempt}: {b:?}");
            assert!(b >= FIRST_BACKOFF / 2, "{attempt}: {b:?}");
        }
        assert!(backoff(1) <= FIRST_BACKOFF);
    }

    #[test]
    fn retry_after_takes_seconds_and_is_capped() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(3)));
        h.insert("retry-after", "86400".parse().unwrap());
        assert_eq!(retry_after(&h), Some(MAX_RETRY_AFTER));
        h.insert(
            "retry-after",
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(retry_after(&h), None);
    }

    /// A server that accepts connections and never answers: `send` gives
    /// up just past the deadline though its caller set no timeout.
    #[tokio::test]
    async fn send_is_cut_just_past_the_deadline_by_itself() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let _server = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((conn, _)) = listener.accept().await {
                held.push(conn);
            }
        });
        let tls = crate::tls::client_config(crate::tls::Options::default()).unwrap();
        let http = Http::builder("test", tls).build().unwrap();
        let ctx = Context::with_budget(Duration::from_millis(300));
        let url = format!("http://{addr}/");
        // The outer timeout only stops a broken `send` from hanging the test.
        let outcome =
            tokio::time::timeout(Duration::from_secs(20), http.send(&ctx, |c| c.get(&url)))
                .await
                .expect("send waited far past the deadline");
        match outcome {
            Err(Failure::Unreachable(why)) => assert_eq!(why, "no answer before the deadline"),
            other => panic!("unexpected: {:?}", other.map(|r| r.status)),
        }
    }

    #[test]
    fn which_statuses_are_retried() {
        for s in [429, 500, 502, 503, 504, 408] {
            assert!(retried(StatusCode::from_u16(s).unwrap()), "{s}");
        }
        for s in [200, 400, 401, 403, 404, 409] {
            assert!(!retried(StatusCode::from_u16(s).unwrap()), "{s}");
        }
    }
}
