//! The SDK's HTTP client: reqwest on rustls with ring, the HTTP stack
//! backend-vault uses too, so the multi binary links one stack, not two.
//!
//! Why not the SDK's `default-https-client`: it links aws-lc, which makes
//! the binary about 1.5 MB larger than ring does. Why not the SDK's own
//! hyper client (`aws-smithy-http-client`) on ring: it brings a second
//! HTTP stack next to reqwest in the multi binary (hyper-util's legacy
//! client, hyper-rustls, h2, which it turns on, and its connector code),
//! and it parses the whole system CA store when a connector is built, even
//! for `http://` endpoints. Here, [`Reqwest`] implements the SDK's
//! `HttpClient` over a `reqwest::Client`:
//!
//! - TLS: [`backend_net::system_roots_config`], the verifier backend-vault
//!   uses: the platform's verifier and the system roots, read at the first
//!   TLS handshake, so a request to an `http://` endpoint (moto, a local
//!   proxy) reads no CA file. There is no way to turn verification off.
//! - Proxies: `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`, read by
//!   reqwest (what the SDK's default client does for behavior versions
//!   from 2025-08-07 on). A proxy reached over `https://` is verified like
//!   any server.
//! - Redirects are not followed, as with the SDK's client.
//! - HTTP/1.1 only: reqwest's `http2` feature stays off (no h2 linked).
//! - The connect and read timeouts of the SDK's `HttpConnectorSettings`
//!   (IMDS sets short ones) become the reqwest client's; one client per
//!   distinct pair, kept, so connections are reused across operations.
//! - Bodies: requests are the SDK's in-memory JSON bodies (a streaming body
//!   is refused); responses are read whole, at most [`MAX_BODY`] bytes.
//! - Errors: a timeout is `ConnectorError::timeout`; a refused TLS
//!   handshake is `other` (not retried: it would be refused again); any
//!   other transport failure (refused, reset, DNS) is `io`, which the SDK
//!   retries.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::{HttpRequest, HttpResponse};
use aws_smithy_runtime_api::client::result::ConnectorError;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;
use aws_smithy_runtime_api::http::{Headers, StatusCode};
use aws_smithy_types::body::SdkBody;
use rustls::ClientConfig;

/// Largest response body read (AWS answers here are a few KB).
pub const MAX_BODY: usize = 16 * 1024 * 1024;

/// Connect and read timeouts: the settings a client is built for.
type Timeouts = (Option<Duration>, Option<Duration>);

/// The HTTP client for every AWS request of a call: service clients, STS,
/// SSO, IMDS and container credentials alike. Reads no file and opens no
/// connection.
pub fn client() -> SharedHttpClient {
    // Cannot fail with ring's provider (it has suites for both TLS
    // versions); if it ever did, every request says why.
    let tls = backend_net::system_roots_config().map_err(|e| format!("TLS setup: {e}").into());
    SharedHttpClient::new(Reqwest {
        tls,
        clients: Mutex::new(HashMap::new()),
    })
}

/// The SDK's `HttpClient` over reqwest (see the module docs).
#[derive(Debug)]
struct Reqwest {
    tls: Result<ClientConfig, Arc<str>>,
    /// One reqwest client (and connection pool) per timeout setting.
    clients: Mutex<HashMap<Timeouts, Built>>,
}

/// A reqwest client, or why it could not be built.
type Built = Result<reqwest::Client, Arc<str>>;

impl HttpClient for Reqwest {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        _components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        let timeouts = (settings.connect_timeout(), settings.read_timeout());
        let mut clients = self.clients.lock().unwrap_or_else(PoisonError::into_inner);
        let client = clients
            .entry(timeouts)
            .or_insert_with(|| build(&self.tls, timeouts))
            .clone();
        SharedHttpConnector::new(Connector(client))
    }
}

fn build(tls: &Result<ClientConfig, Arc<str>>, (connect, read): Timeouts) -> Built {
    let mut builder = reqwest::Client::builder()
        .use_preconfigured_tls(tls.clone()?)
        .redirect(reqwest::redirect::Policy::none());
    if let Some(t) = connect {
        builder = builder.connect_timeout(t);
    }
    if let Some(t) = read {
        builder = builder.read_timeout(t);
    }
    // reqwest's own text could quote a proxy URL from the environment,
    // userinfo included: its kind only.
    builder.build().map_err(|e| {
        let why = if e.is_builder() {
            "a proxy setting (HTTPS_PROXY, HTTP_PROXY, ALL_PROXY) is invalid or TLS setup failed"
        } else {
            "unexpected error"
        };
        format!("cannot build the HTTP client: {why}").into()
    })
}

/// Sends one request with a built client.
#[derive(Debug)]
struct Connector(Built);

impl HttpConnector for Connector {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        let client = match &self.0 {
            Ok(client) => client.clone(),
            Err(e) => {
                let e = Said(e.to_string());
                return HttpConnectorFuture::ready(Err(ConnectorError::other(e.into(), None)));
            }
        };
        let request = match to_reqwest(request) {
            Ok(request) => request,
            Err(e) => return HttpConnectorFuture::ready(Err(e)),
        };
        HttpConnectorFuture::new(async move {
            let response = client.execute(request).await.map_err(connector_error)?;
            to_sdk(response).await
        })
    }
}

fn to_reqwest(request: HttpRequest) -> Result<reqwest::Request, ConnectorError> {
    let Some(body) = request.body().bytes().map(<[u8]>::to_vec) else {
        return Err(ConnectorError::other(
            Said(
                "the request has a streaming body; this client sends only in-memory bodies".into(),
            )
            .into(),
            None,
        ));
    };
    // What fails here is the URL the endpoint made (a bad port, a space):
    // said in our words, as the error's own text would quote the URL.
    fn invalid(_: impl std::fmt::Debug) -> ConnectorError {
        ConnectorError::user(
            Said("the request URL is invalid (check the endpoint URL)".into()).into(),
        )
    }
    let request = request.try_into_http1x().map_err(invalid)?;
    reqwest::Request::try_from(request.map(|_| body)).map_err(invalid)
}

/// The response, its body read whole (at most [`MAX_BODY`] bytes).
async fn to_sdk(mut response: reqwest::Response) -> Result<HttpResponse, ConnectorError> {
    let status = StatusCode::try_from(response.status().as_u16())
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    let headers = Headers::try_from(std::mem::take(response.headers_mut()))
        .map_err(|e| ConnectorError::other(e.into(), None))?;
    if response
        .content_length()
        .is_some_and(|n| n > MAX_BODY as u64)
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = response.chunk().await.map_err(connector_error)? {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    let mut sdk = HttpResponse::new(status, SdkBody::from(body));
    *sdk.headers_mut() = headers;
    Ok(sdk)
}

fn too_large() -> ConnectorError {
    ConnectorError::other(
        Said(format!("the response body is over {} MiB", MAX_BODY >> 20)).into(),
        None,
    )
}

/// An error in our own words, which messages may show as it is
/// ([`crate::errors::chain`] shows only text it vouches for).
#[derive(Debug)]
pub struct Said(pub String);

impl std::fmt::Display for Said {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Said {}

/// Classifies a reqwest error for the SDK's retry logic (see the module
/// docs). The error itself is kept as the source, without the request's
/// URL (which may hold userinfo); `errors::chain` describes it in its own
/// words.
fn connector_error(e: reqwest::Error) -> ConnectorError {
    let e = e.without_url();
    if e.is_timeout() {
        return ConnectorError::timeout(e.into());
    }
    if e.is_builder() {
        return ConnectorError::user(e.into());
    }
    let mut cause: Option<&(dyn std::error::Error + 'static)> = Some(&e);
    while let Some(c) = cause {
        if backend_net::is_tls_error(c) {
            return ConnectorError::other(Box::new(TlsRefused(e)), None);
        }
        cause = c.source();
    }
    ConnectorError::io(e.into())
}

/// A refused TLS handshake, said so in front of reqwest's chain (which
/// names the cause, e.g. `invalid peer certificate: UnknownIssuer`).
#[derive(Debug)]
pub struct TlsRefused(reqwest::Error);

impl std::fmt::Display for TlsRefused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TLS handshake refused")
    }
}

impl std::error::Error for TlsRefused {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};

    use super::*;

    fn connector() -> Connector {
        let tls = backend_net::system_roots_config().map_err(|e| e.to_string().into());
        Connector(build(&tls, (None, None)))
    }

    /// A server that answers one request with `head`, then closes.
    fn answering(head: &'static str) -> String {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            if let Ok((mut s, _)) = listener.accept() {
                let mut buf = [0u8; 4096];
                let _ = s.read(&mut buf);
                let _ = s.write_all(head.as_bytes());
            }
        });
        format!("http://{addr}/")
    }

    #[test]
    fn a_streaming_body_is_refused() {
        let mut request = HttpRequest::get("http://127.0.0.1:1/").unwrap();
        *request.body_mut() = SdkBody::taken();
        let e = to_reqwest(request).unwrap_err();
        assert!(crate::errors::chain(&e).contains("streaming body"), "{e}");
        assert!(e.is_other());
    }

    #[test]
    fn headers_and_body_are_sent() {
        let mut request = HttpRequest::get("http://127.0.0.1:1/x?y=1").unwrap();
        request
            .headers_mut()
            .insert("x-amz-target", "secretsmanager.X");
        *request.body_mut() = SdkBody::from("{}");
        let sent = to_reqwest(request).unwrap();
        assert_eq!(sent.url().as_str(), "http://127.0.0.1:1/x?y=1");
        assert_eq!(sent.headers()["x-amz-target"], "secretsmanager.X");
        assert_eq!(sent.body().and_then(|b| b.as_bytes()), Some(&b"{}"[..]));
    }

    #[tokio::test]
    async fn an_answer_over_the_bound_is_refused() {
        let url = answering("HTTP/1.1 200 OK\r\nContent-Length: 20000000\r\n\r\n");
        let e = connector()
            .call(HttpRequest::get(url).unwrap())
            .await
            .unwrap_err();
        assert!(crate::errors::chain(&e).contains("over 16 MiB"), "{e}");
    }

    #[tokio::test]
    async fn a_redirect_is_not_followed() {
        let url = answering(
            "HTTP/1.1 307 Temporary Redirect\r\nLocation: http://127.0.0.1:1/\r\n\
             Content-Length: 0\r\n\r\n",
        );
        let response = connector()
            .call(HttpRequest::get(url).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 307);
        assert_eq!(
            response.headers().get("location"),
            Some("http://127.0.0.1:1/")
        );
    }

    #[tokio::test]
    async fn a_refused_connection_is_io() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/", listener.local_addr().unwrap());
        drop(listener);
        let e = connector()
            .call(HttpRequest::get(url).unwrap())
            .await
            .unwrap_err();
        assert!(e.is_io(), "{e}");
    }
}
