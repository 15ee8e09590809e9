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
//! Requests go through the shared network layer ([`backend_net::Http`]):
//! retries of connection errors, 429 and 5xx within the deadline, no
//! redirects (a redirect to another host would carry our token there),
//! bodies bounded. What is Vault's is here: the URL under `/v1/`, the
//! headers (token, namespace), and JSON bodies.

use backend_core::{ConfigError, Context, Secret};
pub use backend_net::Failure;
use backend_net::Http;
pub use backend_net::http::MAX_BODY;
use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode, Url};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::Settings;
use crate::tls;

/// A server answer: the status and the body, parsed when it is JSON.
#[derive(Debug)]
pub struct Response {
    /// The HTTP status.
    pub status: StatusCode,
    /// The JSON body, if any (never put into messages: it may hold values).
    pub body: Option<Value>,
}

/// The Vault HTTP API at one address.
#[derive(Debug, Clone)]
pub struct Api {
    http: Http,
    base: Url,
    namespace: Option<HeaderValue>,
}

impl Api {
    /// A client for `settings` (reads the TLS files; no network).
    pub fn new(settings: &Settings) -> Result<Self, ConfigError> {
        let tls = tls::client_config(&settings.tls)?;
        let http = Http::builder(
            concat!("secret-backend-vault/", env!("CARGO_PKG_VERSION")),
            tls,
        )
        .build()
        .map_err(ConfigError::new)?;
        let base = Url::parse(&format!("{}/v1/", settings.address))
            .map_err(|e| ConfigError::new(format!("address: {e}")))?;
        backend_net::http::warn_of_cleartext_proxy(&base, "the Vault address", "the Vault token");
        let namespace = settings
            .namespace
            .as_deref()
            .map(HeaderValue::from_str)
            .transpose()
            .map_err(|_| ConfigError::new("namespace holds characters a header cannot carry"))?;
        Ok(Self {
            http,
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
        let resp = self
            .http
            .send(ctx, |client| {
                let req = client
                    .request(method.clone(), url.clone())
                    .headers(headers.clone());
                match body {
                    Some(b) => req
                        .header(reqwest::header::CONTENT_TYPE, "application/json")
                        .body(b.to_vec()),
                    None => req,
                }
            })
            .await?;
        Ok(Response {
            status: resp.status,
            body: resp.json(),
        })
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
}
