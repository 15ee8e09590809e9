//! The one Key Vault request, `GET {vault}/secrets/{name}[/{version}]?api-version=7.5`
//! with the bearer token, and what its answers mean for a handle.
//!
//! A 200 is a secret bundle: `value`, `id`, `attributes` (`enabled`,
//! `nbf`, `exp` in Unix seconds, ...). A secret whose `exp` has passed is
//! an error unless `allow_expired` is set, one whose `nbf` is still to
//! come is one always. Errors are Key Vault's `{"error":{"code","message",
//! "innererror":{"code"}}}`: we read the two codes, fixed identifiers, to
//! say what is wrong (no such secret; disabled; an access policy or an RBAC
//! role missing; the vault's firewall; a refused token, with the tenant
//! and resource of the 401's `WWW-Authenticate` challenge), and never show
//! `message` (it holds object ids and addresses, and is no help beyond the
//! codes) or anything else of a body.

use std::time::{SystemTime, UNIX_EPOCH};

use backend_core::{Context, HandleError, Secret};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, HeaderValue, WWW_AUTHENTICATE};
use serde_json::Value;

use backend_net::{Failure, Http, Response};

/// The Key Vault REST API version.
pub const API_VERSION: &str = "7.5";

/// One call's view of the vault.
#[derive(Debug)]
pub struct Vault<'a> {
    http: &'a Http,
    url: &'a str,
    name: &'a str,
    bearer: HeaderValue,
    identity: String,
    allow_expired: bool,
    /// Whether Key Vault answered 401 to the token.
    refused: std::sync::atomic::AtomicBool,
}

/// A secret's value and validity.
#[derive(Debug)]
pub struct Bundle {
    /// The value.
    pub value: Secret,
}

impl<'a> Vault<'a> {
    /// The vault at `url` (named `name` in messages) with `token`, obtained
    /// for `identity` (described in messages).
    pub fn new(
        http: &'a Http,
        url: &'a str,
        name: &'a str,
        token: &Secret,
        identity: String,
        allow_expired: bool,
    ) -> Result<Self, String> {
        let mut bearer = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
            .map_err(|_| "the token holds characters a header cannot carry".to_owned())?;
        bearer.set_sensitive(true);
        Ok(Self {
            http,
            url,
            name,
            bearer,
            identity,
            allow_expired,
            refused: false.into(),
        })
    }

    /// Whether Key Vault refused the token (HTTP 401) in any answer so far.
    pub fn refused(&self) -> bool {
        self.refused.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// `<vault>/<name>` (and `/<version>`), for messages.
    pub fn location(&self, name: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/{name}/{v}", self.name),
            None => format!("{}/{name}", self.name),
        }
    }

    /// Reads secret `name` (validated), `version` or the latest.
    pub async fn secret(
        &self,
        name: &str,
        version: Option<&str>,
        ctx: &Context,
    ) -> Result<Bundle, HandleError> {
        let loc = self.location(name, version);
        let url = match version {
            Some(v) => format!("{}/secrets/{name}/{v}?api-version={API_VERSION}", self.url),
            None => format!("{}/secrets/{name}?api-version={API_VERSION}", self.url),
        };
        let resp = self
            .http
            .send(ctx, |c| {
                c.get(&url)
                    .header(AUTHORIZATION, self.bearer.clone())
                    .header(reqwest::header::ACCEPT, "application/json")
            })
            .await
            .map_err(|e| match e {
                Failure::TooLarge => HandleError::too_large(format!(
                    "{loc}: Key Vault's answer is larger than {} bytes",
                    backend_net::http::MAX_BODY
                )),
                Failure::Unreachable(cause) | Failure::Permanent(cause) => {
                    HandleError::unavailable(format!(
                        "{loc}: cannot reach Key Vault at {}: {cause}",
                        self.url
                    ))
                }
            })?;
        if resp.status == StatusCode::UNAUTHORIZED {
            self.refused
                .store(true, std::sync::atomic::Ordering::Relaxed);
        }
        if resp.status == StatusCode::OK {
            return bundle(&resp.body, self.allow_expired, now())
                .map_err(|e| HandleError::new(e.0, format!("{loc}: {}", e.1)));
        }
        Err(status_error(&resp, &loc, &self.identity))
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// A secret bundle's value, checked against its attributes.
fn bundle(
    body: &[u8],
    allow_expired: bool,
    now: i64,
) -> Result<Bundle, (backend_core::ErrorKind, String)> {
    use backend_core::ErrorKind;
    let not_bundle = || {
        (
            ErrorKind::Other,
            "Key Vault's answer is not a secret bundle".to_owned(),
        )
    };
    let mut v: Value = serde_json::from_slice(body).map_err(|_| not_bundle())?;
    let attrs = v.get("attributes");
    let enabled = attrs
        .and_then(|a| a.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true);
    let exp = attrs.and_then(|a| a.get("exp")).and_then(Value::as_i64);
    let nbf = attrs.and_then(|a| a.get("nbf")).and_then(Value::as_i64);
    let value = v.get_mut("value").map(Value::take);
    backend_core::key::wipe(&mut v);
    let value = match value {
        Some(Value::String(s)) => Secret::new(s),
        Some(mut other) => {
            backend_core::key::wipe(&mut other);
            return Err(not_bundle());
        }
        None => return Err(not_bundle()),
    };
    if !enabled {
        return Err((ErrorKind::PermissionDenied, "the secret is disabled".into()));
    }
    if let Some(nbf) = nbf.filter(|n| *n > now) {
        return Err((
            ErrorKind::PermissionDenied,
            format!(
                "the secret is not valid before {} (its activation date, nbf)",
                date(nbf)
            ),
        ));
    }
    if let Some(exp) = exp.filter(|e| *e <= now) {
        if allow_expired {
            tracing::warn!(
                "a secret expired at {} is returned (allow_expired)",
                date(exp)
            );
        } else {
            return Err((
                ErrorKind::PermissionDenied,
                format!(
                    "the secret expired at {} (its expiration date, exp); renew it, or set allow_expired: true to use it anyway",
                    date(exp)
                ),
            ));
        }
    }
    Ok(Bundle { value })
}

/// Key Vault's error codes: (`error.code`, `error.innererror.code`), each
/// a short word that is no credential we hold.
fn codes(body: &[u8]) -> (Option<String>, Option<String>) {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return (None, None);
    };
    let word = |x: Option<&Value>| {
        x.and_then(Value::as_str)
            .filter(|c| (1..=64).contains(&c.len()) && c.bytes().all(|b| b.is_ascii_alphanumeric()))
            .filter(|c| !backend_core::secret::reveals_credential(c))
            .map(str::to_owned)
    };
    let err = v.get("error");
    let code = word(err.and_then(|e| e.get("code")));
    let inner = word(
        err.and_then(|e| e.get("innererror").or_else(|| e.get("innerError")))
            .and_then(|i| i.get("code")),
    );
    backend_core::key::wipe(&mut v);
    (code, inner)
}

/// `authorization="..."` and `resource="..."` of a Bearer challenge, when
/// they are plain URLs.
fn challenge(resp: &Response) -> Option<String> {
    let header = resp.headers.get(WWW_AUTHENTICATE)?.to_str().ok()?;
    let rest = header.trim().strip_prefix("Bearer ")?;
    let mut parts = Vec::new();
    for item in rest.split(',') {
        let Some((k, v)) = item.trim().split_once('=') else {
            continue;
        };
        let v = v.trim().trim_matches('"');
        let plain = v.len() <= 200
            && v.starts_with("https://")
            && v.bytes()
                .all(|c| c.is_ascii_alphanumeric() || b":/.-_".contains(&c));
        if matches!(
            k.trim(),
            "authorization" | "authorization_uri" | "resource" | "scope"
        ) && plain
        {
            parts.push(format!("{}={v}", k.trim()));
        }
    }
    (!parts.is_empty()).then(|| parts.join(", "))
}

/// An error answer as the handle's error.
fn status_error(resp: &Response, loc: &str, identity: &str) -> HandleError {
    let code = resp.status.as_u16();
    let (outer, inner) = codes(&resp.body);
    let shown = match (&outer, &inner) {
        (Some(o), Some(i)) => format!("HTTP {code} {o}/{i}"),
        (Some(o), None) => format!("HTTP {code} {o}"),
        _ => format!("HTTP {code}"),
    };
    match resp.status {
        StatusCode::NOT_FOUND if outer.as_deref() == Some("SecretNotFound") => {
            HandleError::not_found(format!("{loc}: no such secret in the vault ({shown})"))
        }
        StatusCode::NOT_FOUND if outer.is_some() => {
            HandleError::not_found(format!("{loc}: not found ({shown})"))
        }
        StatusCode::NOT_FOUND => HandleError::unavailable(format!(
            "{loc}: the server answered HTTP 404 without a Key Vault error: is keyvaulturl the vault's URL?"
        )),
        StatusCode::FORBIDDEN => {
            let why = match inner.as_deref() {
                Some("SecretDisabled") => "the secret is disabled".to_owned(),
                Some("ForbiddenByRbac") => format!(
                    "{identity} has no role on this vault or secret that allows reading secrets: assign it 'Key Vault Secrets User' (the vault uses Azure RBAC)"
                ),
                Some("AccessDenied" | "ForbiddenByPolicy") => format!(
                    "the vault's access policy does not give {identity} the Get permission on secrets: add it to an access policy (the vault uses access policies, not RBAC)"
                ),
                Some("ForbiddenByFirewall") | Some("ForbiddenByConnection") => {
                    "the vault's firewall or private endpoint refuses this host's address: add it to the vault's networking rules".to_owned()
                }
                _ => "access refused".to_owned(),
            };
            HandleError::permission_denied(format!("{loc}: {why} ({shown})"))
        }
        StatusCode::UNAUTHORIZED => {
            let ch = challenge(resp)
                .map(|c| format!("; the vault asks for a token of {c}"))
                .unwrap_or_default();
            HandleError::permission_denied(format!(
                "{loc}: Key Vault refused the token of {identity} ({shown}): issued for another tenant or resource, or expired{ch}"
            ))
        }
        s if s.is_server_error() || s == StatusCode::TOO_MANY_REQUESTS => {
            HandleError::unavailable(format!("{loc}: Key Vault answered {shown}"))
        }
        _ => HandleError::other(format!("{loc}: unexpected answer from Key Vault ({shown})")),
    }
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SSZ`.
pub fn date(t: i64) -> String {
    format!("{}Z", backend_core::error::utc(t))
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_core::ErrorKind;

    fn resp(status: u16, body: &str, challenge: Option<&str>) -> Response {
        let mut headers = reqwest::header::HeaderMap::new();
        if let Some(c) = challenge {
            headers.insert(WWW_AUTHENTICATE, c.parse().unwrap());
        }
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers,
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    fn kv_error(code: &str, inner: Option<&str>) -> String {
        let mut e =
            serde_json::json!({"error": {"code": code, "message": "MESSAGE-TEXT 00000000-oid"}});
        if let Some(i) = inner {
            e["error"]["innererror"] = serde_json::json!({"code": i});
        }
        e.to_string()
    }

    fn err(status: u16, body: &str) -> HandleError {
        status_error(&resp(status, body, None), "kv/db", "ID")
    }

    #[test]
    fn errors_are_told_from_the_codes() {
        let e = err(404, &kv_error("SecretNotFound", None));
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert_eq!(
            e.message(),
            "kv/db: no such secret in the vault (HTTP 404 SecretNotFound)"
        );
        assert_eq!(err(404, "not json").kind(), ErrorKind::Unavailable);
        let e = err(403, &kv_error("Forbidden", Some("ForbiddenByRbac")));
        assert!(
            e.message().contains("Key Vault Secrets User") && e.message().contains("RBAC"),
            "{e}"
        );
        let e = err(403, &kv_error("Forbidden", Some("AccessDenied")));
        assert!(
            e.message().contains("access policy") && e.message().contains("Get"),
            "{e}"
        );
        let e = err(403, &kv_error("Forbidden", Some("SecretDisabled")));
        assert!(
            e.message().starts_with("kv/db: the secret is disabled"),
            "{e}"
        );
        let e = err(403, &kv_error("Forbidden", Some("ForbiddenByFirewall")));
        assert!(e.message().contains("firewall"), "{e}");
        let e = err(429, &kv_error("Throttled", None));
        assert_eq!(
            (e.kind(), e.to_string().as_str()),
            (
                ErrorKind::Unavailable,
                "kv/db: Key Vault answered HTTP 429 Throttled"
            )
        );
        for code in [403, 404, 429, 500] {
            let e = err(code, &kv_error("Forbidden", Some("ForbiddenByRbac")));
            assert!(
                !e.message().contains("MESSAGE-TEXT") && !e.message().contains("oid"),
                "{e}"
            );
        }
        let e = status_error(
            &resp(
                401,
                &kv_error("Unauthorized", Some("TokenExpired")),
                Some(
                    r#"Bearer authorization="https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47", resource="https://vault.azure.net""#,
                ),
            ),
            "kv/db",
            "ID",
        );
        assert!(
            e.message()
                .contains("authorization=https://login.microsoftonline.com/72f988bf")
                && e.message().contains("resource=https://vault.azure.net")
                && e.message().contains("TokenExpired"),
            "{e}"
        );
    }

    #[test]
    fn bundles_and_their_dates() {
        let b = bundle(
            br#"{"value":"v1","id":"x","attributes":{"enabled":true}}"#,
            false,
            100,
        )
        .unwrap();
        assert_eq!(b.value.expose(), "v1");
        let e = bundle(
            br#"{"value":"v","attributes":{"enabled":true,"exp":50}}"#,
            false,
            100,
        )
        .unwrap_err();
        assert!(
            e.1.contains("expired at 1970-01-01T00:00:50Z") && e.1.contains("allow_expired"),
            "{e:?}"
        );
        assert!(bundle(br#"{"value":"v","attributes":{"exp":50}}"#, true, 100).is_ok());
        let e = bundle(br#"{"value":"v","attributes":{"nbf":150}}"#, true, 100).unwrap_err();
        assert!(e.1.contains("not valid before"), "{e:?}");
        let e = bundle(
            br#"{"value":"v","attributes":{"enabled":false}}"#,
            true,
            100,
        )
        .unwrap_err();
        assert!(e.1.contains("disabled"));
        assert!(bundle(br#"{"value":5}"#, false, 0).is_err());
        assert!(bundle(b"<html>", false, 0).is_err());
        assert_eq!(date(1_767_225_600), "2026-01-01T00:00:00Z");
        assert_eq!(date(951_782_400), "2000-02-29T00:00:00Z");
    }
}
