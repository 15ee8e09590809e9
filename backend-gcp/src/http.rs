//! The HTTP this crate uses, on the shared network crate
//! ([`backend_net::Http`]: TLS on ring with the system roots read lazily
//! and `SSL_CERT_FILE`/`SSL_CERT_DIR` honoured, proxies from the
//! environment, no redirects, retries of connection failures, 429 and 5xx
//! under the deadline, bodies read into zeroizing buffers).
//!
//! Two clients: one for Google's APIs and token endpoints, one for the
//! metadata server (no proxy: it is link-local and a proxy would hide it;
//! a short connect timeout and one retry, so a machine outside GCP fails
//! fast). What
//! this module adds: each request bounded by the call's deadline, and a
//! per-request bound on the body.

use std::time::Duration;

use backend_core::Context;
pub use backend_net::Response;

/// How long a connection to the metadata server may take.
pub const METADATA_CONNECT: Duration = Duration::from_secs(1);
/// Attempts per metadata request: one retry for a server starting up
/// (GKE's at pod start); more would only delay the answer outside GCP,
/// where the name does not resolve.
pub const METADATA_ATTEMPTS: u32 = 2;
const USER_AGENT: &str = concat!("secret-backend-gcp/", env!("CARGO_PKG_VERSION"));

/// An HTTP client.
#[derive(Debug, Clone)]
pub struct Http(backend_net::Http);

/// Why no answer came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    /// No connection, or it broke: the innermost cause, never a body.
    Transport(String),
    /// The body was over the bound.
    TooLarge,
    /// The call's deadline passed.
    TimedOut,
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Transport(cause) => f.write_str(cause),
            Self::TooLarge => f.write_str("the answer is too large"),
            Self::TimedOut => f.write_str("no answer before the deadline"),
        }
    }
}

impl Http {
    /// A client for Google's APIs and token endpoints.
    pub fn new() -> Result<Self, String> {
        Self::build(false)
    }

    /// A client for the metadata server: no proxy, short connect timeout.
    pub fn metadata() -> Result<Self, String> {
        Self::build(true)
    }

    fn build(metadata: bool) -> Result<Self, String> {
        let tls = backend_net::tls::client_config(backend_net::tls::Options::default())?;
        let mut b = backend_net::Http::builder(USER_AGENT, tls);
        if metadata {
            b = b
                .no_proxy()
                .connect_timeout(METADATA_CONNECT)
                .attempts(METADATA_ATTEMPTS);
        }
        b.build().map(Self)
    }

    /// Sends the request `make` builds (again for each retry) within the
    /// call's deadline, refusing an answer over `max_body` bytes.
    pub async fn send(
        &self,
        ctx: &Context,
        max_body: usize,
        make: impl Fn(&reqwest::Client) -> reqwest::RequestBuilder,
    ) -> Result<Response, Failure> {
        let resp = ctx
            .within(self.0.send(ctx, make))
            .await
            .map_err(|_| Failure::TimedOut)?
            .map_err(|e| match e {
                backend_net::Failure::TooLarge => Failure::TooLarge,
                other => Failure::Transport(other.cause()),
            })?;
        if resp.body.len() > max_body {
            return Err(Failure::TooLarge);
        }
        Ok(resp)
    }
}
