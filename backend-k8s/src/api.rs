//! The one request: `GET {server}/api/v1/namespaces/{ns}/secrets/{name}`,
//! and what its answers mean for a handle.
//!
//! The shared network layer ([`backend_net::Http`]) on the rustls
//! configuration of [`crate::connect`]: no redirects (one would carry the
//! token elsewhere); bodies bounded; connection failures, 429 and 5xx
//! retried with jittered backoff while the next try can still finish
//! before the call's deadline. 4xx and refused TLS handshakes are answered
//! at once.
//!
//! Messages name `namespace/name` and the cause. From a body that is not
//! a Secret we take only a Kubernetes `Status`'s `reason` (a CamelCase
//! word) and, for a 403, its `message` (kube-apiserver's text naming the
//! user and the refused verb), bounded, escaped, and dropped if it holds
//! a credential we carry. Nothing else of a body reaches a message.

use backend_core::{Context, HandleError};
use backend_net::{Failure, Http};
use reqwest::header::{AUTHORIZATION, HeaderValue};
use reqwest::{StatusCode, Url};
use serde_json::{Map, Value};

use crate::connect::{Endpoint, Identity};

/// Largest response body read: a Secret holds at most 1 MiB of data, 4/3
/// of that in base64, plus its metadata.
pub const MAX_BODY: usize = backend_net::http::MAX_BODY;
/// Longest Status message shown.
const MAX_MESSAGE: usize = 300;
/// Where the RBAC recipe is.
pub const RBAC_DOC: &str = concat!(
    "the RBAC recipe: ",
    env!("CARGO_PKG_REPOSITORY"),
    "/blob/main/backend-k8s/README.md#rbac"
);

/// The API server of one call.
#[derive(Debug)]
pub struct Api {
    http: Http,
    base: Url,
    token: Option<HeaderValue>,
    identity: Identity,
    /// The namespace of handles that name none, or why there is none.
    pub namespace: Result<String, String>,
}

/// A Secret's `data` (key -> base64), zeroized when dropped.
#[derive(Debug, Default)]
pub struct Data(pub Option<Map<String, Value>>);

impl Drop for Data {
    fn drop(&mut self) {
        if let Some(map) = self.0.take() {
            backend_core::key::wipe(&mut Value::Object(map));
        }
    }
}

impl Api {
    /// A client for `ep`; no network.
    pub fn new(ep: Endpoint) -> Result<Self, String> {
        let http = Http::builder(
            concat!("secret-backend-k8s/", env!("CARGO_PKG_VERSION")),
            ep.tls,
        )
        .build()?;
        let base = Url::parse(&ep.server).map_err(|e| format!("api server: {e}"))?;
        let token = match &ep.token {
            Some(t) => {
                let mut v = HeaderValue::from_str(&format!("Bearer {}", t.expose()))
                    .map_err(|_| "the token holds characters a header cannot carry".to_owned())?;
                v.set_sensitive(true);
                Some(v)
            }
            None => None,
        };
        Ok(Self {
            http,
            base,
            token,
            identity: ep.identity,
            namespace: ep.namespace,
        })
    }

    /// The URL of secret `ns/name` (both validated DNS-1123 names).
    pub fn url(&self, ns: &str, name: &str) -> Url {
        let mut url = self.base.clone();
        if let Ok(mut path) = url.path_segments_mut() {
            path.pop_if_empty()
                .extend(["api", "v1", "namespaces", ns, "secrets", name]);
        }
        url
    }

    /// Gets secret `ns/name`; the error names it.
    pub async fn secret(&self, ns: &str, name: &str, ctx: &Context) -> Result<Data, HandleError> {
        let url = self.url(ns, name);
        let resp = self
            .http
            .send(ctx, |client| {
                let req = client
                    .get(url.clone())
                    .header(reqwest::header::ACCEPT, "application/json");
                match &self.token {
                    Some(t) => req.header(AUTHORIZATION, t.clone()),
                    None => req,
                }
            })
            .await
            .map_err(|e| match e {
                Failure::TooLarge => HandleError::too_large(format!(
                    "{ns}/{name}: the API server's answer is larger than {MAX_BODY} bytes"
                )),
                Failure::Unreachable(cause) | Failure::Permanent(cause) => {
                    HandleError::unavailable(format!(
                        "{ns}/{name}: cannot reach the API server {}: {cause}",
                        self.base.as_str().trim_end_matches('/')
                    ))
                }
            })?;
        let (status, body) = (resp.status, &resp.body);
        if status == StatusCode::OK {
            return secret_data(body)
                .map_err(|why| HandleError::other(format!("{ns}/{name}: {why}")));
        }
        Err(status_error(status, body, ns, name, self.identity))
    }
}

/// The `data` of a Secret object.
fn secret_data(body: &[u8]) -> Result<Data, String> {
    let not_secret = "the API server's answer is not a Secret";
    let mut obj: Value = serde_json::from_slice(body).map_err(|_| not_secret.to_owned())?;
    if obj.get("kind").and_then(Value::as_str) != Some("Secret") {
        backend_core::key::wipe(&mut obj);
        return Err(not_secret.to_owned());
    }
    let data = match obj.get_mut("data").map(Value::take) {
        Some(Value::Object(map)) => Some(map),
        None | Some(Value::Null) => None,
        Some(mut other) => {
            backend_core::key::wipe(&mut other);
            backend_core::key::wipe(&mut obj);
            return Err("the Secret's data is not a map".to_owned());
        }
    };
    backend_core::key::wipe(&mut obj);
    Ok(Data(data))
}

/// What a Status object may show: its reason, and its message when `code`
/// is one whose message is the server's own fixed text.
fn status_parts(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let parts = if v.get("kind").and_then(Value::as_str) == Some("Status") {
        let reason = v
            .get("reason")
            .and_then(Value::as_str)
            .filter(|r| {
                !r.is_empty() && r.len() <= 64 && r.bytes().all(|c| c.is_ascii_alphabetic())
            })
            .map(str::to_owned);
        let message = v
            .get("message")
            .and_then(Value::as_str)
            .filter(|m| !backend_core::secret::reveals_credential(m))
            // Control characters are escaped where the HandleError is made.
            .map(|m| {
                let mut shown: String = m.chars().take(MAX_MESSAGE).collect();
                if m.chars().nth(MAX_MESSAGE).is_some() {
                    shown.push_str("...");
                }
                shown
            });
        (reason, message)
    } else {
        (None, None)
    };
    backend_core::key::wipe(&mut v);
    parts
}

/// An error status as the handle's error.
fn status_error(
    status: StatusCode,
    body: &[u8],
    ns: &str,
    name: &str,
    identity: Identity,
) -> HandleError {
    let code = status.as_u16();
    let (reason, message) = status_parts(body);
    let reason_shown = reason
        .as_deref()
        .map(|r| format!(", {r}"))
        .unwrap_or_default();
    match status {
        StatusCode::NOT_FOUND if reason.is_some() => {
            HandleError::not_found(format!("secret {ns}/{name} not found"))
        }
        StatusCode::NOT_FOUND => HandleError::unavailable(format!(
            "{ns}/{name}: the server answered HTTP 404 without a Kubernetes Status: is api_server the API server's URL?"
        )),
        StatusCode::FORBIDDEN => HandleError::permission_denied(format!(
            "{ns}/{name}: RBAC refused get secrets in namespace {ns} (HTTP 403{}); grant get on this secret with a Role and RoleBinding ({RBAC_DOC})",
            message.map(|m| format!(": {m}")).unwrap_or_default()
        )),
        StatusCode::UNAUTHORIZED => HandleError::permission_denied(format!(
            "{ns}/{name}: the API server refused {} (HTTP 401 Unauthorized)",
            match identity {
                Identity::ServiceAccount =>
                    "the service account token: it expired, was revoked, or was issued for another audience",
                Identity::KubeconfigToken =>
                    "the kubeconfig user's token: it expired, was revoked, or is wrong",
                Identity::ClientCertificate =>
                    "the client certificate: it expired, or the cluster's client CA did not sign it",
            }
        )),
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => HandleError::unavailable(
            format!("{ns}/{name}: the API server answered HTTP {code}{reason_shown}"),
        ),
        _ => HandleError::other(format!(
            "{ns}/{name}: unexpected answer from the API server (HTTP {code}{reason_shown})"
        )),
    }
}

/// `keys: a, b, ...`: the names of a Secret's keys (never values), escaped
/// and bounded, for messages.
pub fn key_names(map: &Map<String, Value>) -> String {
    const MAX_LISTED: usize = 20;
    let mut names: Vec<String> = map
        .keys()
        .map(|k| {
            let mut s: String = k.escape_debug().take(64).collect();
            if k.escape_debug().nth(64).is_some() {
                s.push_str("...");
            }
            s
        })
        .collect();
    names.sort();
    let more = names.len() > MAX_LISTED;
    names.truncate(MAX_LISTED);
    if more {
        names.push("...".into());
    }
    format!("keys: {}", names.join(", "))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use backend_core::Secret;

    fn status(code: u16, reason: &str, message: &str) -> Vec<u8> {
        json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
               "message": message, "reason": reason, "code": code})
        .to_string()
        .into_bytes()
    }

    fn err(code: u16, body: &[u8]) -> HandleError {
        status_error(
            StatusCode::from_u16(code).unwrap(),
            body,
            "ns",
            "db",
            Identity::ServiceAccount,
        )
    }

    #[test]
    fn statuses_become_handle_errors() {
        use backend_core::ErrorKind;
        let e = err(404, &status(404, "NotFound", "secrets \"db\" not found"));
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (ErrorKind::NotFound, "secret ns/db not found")
        );
        let e = err(404, b"404 page not found\n");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        let forbidden = "secrets \"db\" is forbidden: User \"system:serviceaccount:ns:sa\" cannot get resource \"secrets\" in API group \"\" in the namespace \"ns\"";
        let e = err(403, &status(403, "Forbidden", forbidden));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(e.message().contains("get secrets in namespace ns"), "{e}");
        assert!(e.message().contains("system:serviceaccount:ns:sa"), "{e}");
        assert!(e.message().contains("RBAC"), "{e}");
        let e = err(401, &status(401, "Unauthorized", "Unauthorized"));
        assert!(
            e.message().contains("token") && e.message().contains("401"),
            "{e}"
        );
        let e = err(
            500,
            &status(500, "InternalError", "Internal error: BODY-TEXT"),
        );
        assert_eq!(
            e.message(),
            "ns/db: the API server answered HTTP 500, InternalError"
        );
        let e = err(
            418,
            b"{\"kind\":\"Status\",\"reason\":\"Te a\\npot\",\"message\":\"x\"}",
        );
        assert_eq!(
            e.message(),
            "ns/db: unexpected answer from the API server (HTTP 418)"
        );
    }

    #[test]
    fn status_messages_are_bounded_escaped_and_never_carry_credentials() {
        let long = format!("line\nbreak {}", "x".repeat(5000));
        let e = err(403, &status(403, "Forbidden", &long));
        assert!(e.message().len() < 800, "{}", e.message().len());
        assert!(e.message().contains("line\\nbreak"));
        let held = Secret::new("held-token-in-a-status-message-77".to_owned());
        backend_core::secret::hold(&held);
        let e = err(
            403,
            &status(
                403,
                "Forbidden",
                "denied for held-token-in-a-status-message-77",
            ),
        );
        assert!(!e.message().contains("held-token"), "{e}");
    }

    #[test]
    fn secret_bodies() {
        let d = secret_data(br#"{"kind":"Secret","data":{"a":"MQ=="}}"#).unwrap();
        assert_eq!(d.0.as_ref().unwrap()["a"], "MQ==");
        assert!(secret_data(br#"{"kind":"Secret"}"#).unwrap().0.is_none());
        assert!(secret_data(br#"{"kind":"Status"}"#).is_err());
        assert!(secret_data(br#"{"kind":"Secret","data":[1]}"#).is_err());
        assert!(secret_data(b"<html>").is_err());
        let mut many = Map::new();
        for i in 0..30 {
            many.insert(format!("k{i:02}"), json!(""));
        }
        let names = key_names(&many);
        assert!(
            names.starts_with("keys: k00, k01") && names.ends_with(", ..."),
            "{names}"
        );
    }
}
