//! The SDK's HTTP client: rustls with ring, and the system's root
//! certificates read only when a request actually needs TLS.
//!
//! Why not the SDK's `default-https-client`: it links aws-lc, which makes
//! the binary about 1.5 MB larger than ring does (and the multi binary links
//! both, since backend-vault uses ring). Why not plain
//! `Builder::tls_provider(..).build_https()` either: the SDK builds every
//! connector, and so parses every file of the system CA store (about 150 on
//! a Debian host, 3-4 ms), when the clients are built, even when every
//! request goes to an `http://` endpoint (moto in tests, a local proxy).
//!
//! So [`client`] returns a client that picks a connector per request:
//!
//! - an `https://` request (and anything that is not `http://`) goes
//!   through the TLS connector, with the native roots, built on its first
//!   use. It verifies the server like the SDK's default client: the same
//!   provider code, cipher suites and roots; there is no way to turn
//!   verification off.
//! - an `http://` request goes through a connector with an EMPTY trust
//!   store. It never needs a root, and because it trusts nothing, a TLS
//!   handshake through it (none is expected) fails closed: choosing it can
//!   never send anything unverified.
//!
//! The one case where an `http://` request needs TLS is a proxy reached
//! over `https://` (`HTTP_PROXY=https://..`): when any proxy variable that
//! can apply to `http://` requests is set to anything but an `http://`
//! URL, every request takes the TLS connector, so such a proxy keeps
//! working (with the roots loaded, as before).
//!
//! Both connectors read `HTTPS_PROXY`/`HTTP_PROXY`/`ALL_PROXY`/`NO_PROXY`
//! (`ProxyConfig::from_env`, what the SDK's default client does for
//! behavior versions from 2025-08-07 on); the SDK's `Builder` has no proxy
//! setter, hence `build_with_connector_fn`, as the SDK's own default client
//! is made.

use aws_smithy_http_client::proxy::ProxyConfig;
use aws_smithy_http_client::tls::{self, TlsContext, TrustStore, rustls_provider::CryptoMode};
use aws_smithy_http_client::{Builder, ConnectorBuilder};
use aws_smithy_runtime_api::client::connector_metadata::ConnectorMetadata;
use aws_smithy_runtime_api::client::http::{
    HttpClient, HttpConnector, HttpConnectorFuture, HttpConnectorSettings, SharedHttpClient,
    SharedHttpConnector,
};
use aws_smithy_runtime_api::client::orchestrator::HttpRequest;
use aws_smithy_runtime_api::client::runtime_components::RuntimeComponents;

/// Proxy variables whose value can apply to an `http://` request.
const HTTP_PROXY_VARS: [&str; 4] = ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"];

/// The HTTP client for every AWS request of a call: service clients, STS,
/// SSO, IMDS and container credentials alike.
pub fn client() -> SharedHttpClient {
    let proxies = HTTP_PROXY_VARS.map(|v| std::env::var(v).ok());
    SharedHttpClient::new(PerScheme {
        tls: connector_client(TrustStore::default()),
        plain: plain_is_enough(&proxies).then(|| connector_client(TrustStore::empty())),
    })
}

/// Whether `http://` requests can skip the root store: no proxy that
/// applies to them is reached over anything but plain HTTP. Unparsable or
/// scheme-less values count as "maybe TLS": the cost of being wrong that
/// way is only the roots being read.
fn plain_is_enough(proxies: &[Option<String>]) -> bool {
    proxies
        .iter()
        .flatten()
        .map(|v| v.trim())
        .all(|v| v.is_empty() || is_http(v))
}

/// `http://` in any case, the scheme a plain connection serves.
fn is_http(uri: &str) -> bool {
    uri.get(..7)
        .is_some_and(|scheme| scheme.eq_ignore_ascii_case("http://"))
}

/// A caching hyper client on rustls with ring, trusting `roots`, honouring
/// the proxy variables; its connectors are made on first use per timeout
/// setting (and with them the root store is read).
fn connector_client(roots: TrustStore) -> SharedHttpClient {
    let context = TlsContext::builder().with_trust_store(roots).build();
    Builder::new().build_with_connector_fn(move |settings, components| {
        let mut builder =
            ConnectorBuilder::default().tls_provider(tls::Provider::Rustls(CryptoMode::Ring));
        // Building a context cannot fail today; if it ever did, the default
        // context (the native roots) is the safe side: it still verifies.
        if let Ok(context) = &context {
            builder = builder.tls_context(context.clone());
        }
        builder.set_connector_settings(settings.cloned());
        if let Some(components) = components {
            builder.set_sleep_impl(components.sleep_impl());
        }
        builder.proxy_config(ProxyConfig::from_env()).build()
    })
}

/// Picks the connector by the request's scheme (see the module docs).
#[derive(Debug)]
struct PerScheme {
    tls: SharedHttpClient,
    /// `None` when a proxy may need TLS for `http://` requests too.
    plain: Option<SharedHttpClient>,
}

impl HttpClient for PerScheme {
    fn http_connector(
        &self,
        settings: &HttpConnectorSettings,
        components: &RuntimeComponents,
    ) -> SharedHttpConnector {
        match &self.plain {
            None => self.tls.http_connector(settings, components),
            Some(plain) => SharedHttpConnector::new(PerRequest {
                plain: plain.http_connector(settings, components),
                tls: self.tls.clone(),
                settings: settings.clone(),
                components: components.clone(),
            }),
        }
    }

    // `validate_base_client_config` keeps its default (nothing): the inner
    // clients' versions build a connector right away, which is exactly the
    // eager root loading this type exists to avoid.

    fn connector_metadata(&self) -> Option<ConnectorMetadata> {
        self.tls.connector_metadata()
    }
}

/// One operation's connector: `http://` to the plain connector, the rest to
/// the TLS one, asked for (and so built) only then.
#[derive(Debug)]
struct PerRequest {
    plain: SharedHttpConnector,
    tls: SharedHttpClient,
    settings: HttpConnectorSettings,
    components: RuntimeComponents,
}

impl HttpConnector for PerRequest {
    fn call(&self, request: HttpRequest) -> HttpConnectorFuture {
        if is_http(request.uri()) {
            self.plain.call(request)
        } else {
            self.tls
                .http_connector(&self.settings, &self.components)
                .call(request)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_http_uris_are_plain() {
        assert!(is_http("http://127.0.0.1:5000/"));
        assert!(is_http("HTTP://moto:5000"));
        assert!(!is_http("https://secretsmanager.eu-west-1.amazonaws.com/"));
        assert!(!is_http("http:/x"));
        assert!(!is_http("httpx://x"));
        assert!(!is_http(""));
        assert!(!is_http("hé"));
    }

    #[test]
    fn a_proxy_over_tls_for_http_requests_keeps_the_roots() {
        let some = |v: &str| Some(v.to_owned());
        assert!(plain_is_enough(&[None, None, None, None]));
        assert!(plain_is_enough(&[
            some("http://proxy:3128"),
            some(""),
            None,
            None
        ]));
        assert!(!plain_is_enough(&[
            some("https://proxy:3128"),
            None,
            None,
            None
        ]));
        assert!(!plain_is_enough(&[None, None, some("HTTPS://proxy"), None]));
        // hyper reads a scheme-less proxy as http, but "maybe TLS" is the
        // side that cannot break a connection.
        assert!(!plain_is_enough(&[some("proxy:3128"), None, None, None]));
    }
}
