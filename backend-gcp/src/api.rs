//! The one request, `GET {endpoint}/v1/{name}:access` where `name` is
//! `projects/<p>[/locations/<l>]/secrets/<s>/versions/<v>`, and what its
//! answers mean for a handle.
//!
//! A 200 carries `payload.data` (base64) and, from the real service,
//! `payload.dataCrc32c` (the CRC32C of the data as a decimal int64): it is
//! checked when present, and a mismatch is the handle's error, the value
//! never returned (a payload damaged on the way, or a proxy that rewrote
//! it). CRC32C (Castagnoli) comes from the `crc` crate's table: a small,
//! dependency-free, widely used crate rather than our own table.
//!
//! Messages read `projects/p/secrets/s/versions/v: <cause>`. From an error
//! body only the Google error's `status` word is taken, and whether it
//! says a version is `DISABLED` or `DESTROYED`; nothing of a body is
//! quoted.

use backend_core::{Context, HandleError};
use base64::Engine as _;
use reqwest::StatusCode;
use reqwest::header::ACCEPT;
use serde_json::Value;
use zeroize::Zeroizing;

use crate::credentials::{Token, error_code};
use crate::http::{Failure, Http};

/// Largest answer read: a payload holds at most 64 KiB, 4/3 of it in
/// base64, plus the name and checksum.
pub const MAX_BODY: usize = 256 * 1024;
/// The IAM permission an access needs.
pub const PERMISSION: &str = "secretmanager.versions.access";
/// The role that grants it.
pub const ROLE: &str = "roles/secretmanager.secretAccessor";

const CASTAGNOLI: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// One secret version: what a call fetches once, however many handles
/// name it. Borrowed from the handles and the config: a request of
/// 200,000 handles holds no copy of their names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct VersionName<'a> {
    /// The project.
    pub project: &'a str,
    /// The location of a regional secret.
    pub location: Option<&'a str>,
    /// The secret id.
    pub secret: &'a str,
    /// The version.
    pub version: &'a str,
}

impl std::fmt::Display for VersionName<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "projects/{}/", self.project)?;
        if let Some(l) = self.location {
            write!(f, "locations/{l}/")?;
        }
        write!(f, "secrets/{}/versions/{}", self.secret, self.version)
    }
}

/// A payload's bytes, zeroized on drop.
#[derive(Debug)]
pub struct Payload(pub Zeroizing<Vec<u8>>);

/// Accesses `name` with `token`; the error names it.
pub async fn access(
    http: &Http,
    endpoint: &str,
    token: &Token,
    name: &VersionName<'_>,
    ctx: &Context,
) -> Result<Payload, HandleError> {
    // Every part of the name was validated by the handle grammar: no
    // character in it needs escaping in a path.
    let url = format!("{endpoint}/v1/{name}:access");
    let resp = http
        .send(ctx, MAX_BODY, |c| {
            let req = c
                .get(&url)
                .header(ACCEPT, "application/json")
                .header(reqwest::header::AUTHORIZATION, token.header.clone());
            match &token.quota_project {
                Some(p) => req.header("x-goog-user-project", p),
                None => req,
            }
        })
        .await
        .map_err(|e| match e {
            Failure::TooLarge => HandleError::too_large(format!(
                "{name}: the answer is larger than {MAX_BODY} bytes"
            )),
            // Named by the caller, which names the versions the deadline
            // cut before their request started too.
            Failure::TimedOut => ctx.timed_out(),
            Failure::Transport(cause) => HandleError::unavailable(format!(
                "{name}: cannot reach Secret Manager at {endpoint}: {cause}"
            )),
        })?;
    if resp.status == StatusCode::OK {
        return payload(&resp.body).map_err(|why| why.context(name));
    }
    if resp.status == StatusCode::UNAUTHORIZED {
        token
            .rejected
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }
    Err(status_error(resp.status, &resp.body, name))
}

/// The payload of an access answer, its CRC32C checked.
fn payload(body: &[u8]) -> Result<Payload, HandleError> {
    let mut v: Value = serde_json::from_slice(body).map_err(|_| {
        HandleError::other("the answer is not a Secret Manager access response (not JSON)")
    })?;
    let result = (|| {
        let p = v
            .get("payload")
            .ok_or_else(|| HandleError::other("the answer holds no payload"))?;
        let data = match p.get("data") {
            Some(Value::String(s)) => s.as_str(),
            // proto3 JSON leaves an empty payload out.
            None => "",
            Some(_) => return Err(HandleError::other("payload.data is not a string")),
        };
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(data)
            .map(Zeroizing::new)
            .map_err(|_| HandleError::other("payload.data is not valid base64"))?;
        if let Some(sent) = p.get("dataCrc32c") {
            let want = match sent {
                Value::String(s) => s.parse::<u64>().ok(),
                Value::Number(n) => n.as_u64(),
                _ => None,
            }
            .ok_or_else(|| HandleError::other("payload.dataCrc32c is not a number"))?;
            let got = u64::from(CASTAGNOLI.checksum(&bytes));
            if got != want {
                return Err(HandleError::other(
                    "the payload does not match its CRC32C checksum (payload.dataCrc32c): damaged on the way; value withheld",
                ));
            }
        }
        Ok(Payload(bytes))
    })();
    backend_core::key::wipe(&mut v);
    result
}

/// An error status as the handle's error.
pub fn status_error(status: StatusCode, body: &[u8], name: &VersionName<'_>) -> HandleError {
    let code = status.as_u16();
    let word = error_code(body);
    let shown = word.as_deref().map(|w| format!(" {w}")).unwrap_or_default();
    match status {
        StatusCode::NOT_FOUND => HandleError::not_found(format!(
            "{name}: not found (HTTP 404{shown}): no such secret, or no such version"
        )),
        StatusCode::FORBIDDEN => HandleError::permission_denied(format!(
            "{name}: permission denied (HTTP 403{shown}): the credentials lack {PERMISSION} on this secret (grant {ROLE}), or the secret does not exist"
        )),
        StatusCode::UNAUTHORIZED => HandleError::permission_denied(format!(
            "{name}: the access token was refused (HTTP 401{shown}): expired or revoked credentials"
        )),
        StatusCode::BAD_REQUEST if word.as_deref() == Some("FAILED_PRECONDITION") => {
            let state = version_state(body);
            HandleError::not_found(format!(
                "{name}: the version is {} (HTTP 400 FAILED_PRECONDITION): enable it, or name another version",
                state.unwrap_or("disabled or destroyed")
            ))
        }
        StatusCode::TOO_MANY_REQUESTS => HandleError::unavailable(format!(
            "{name}: quota exceeded (HTTP 429{shown}), still so after retrying within the deadline"
        )),
        s if s.is_server_error() => HandleError::unavailable(format!(
            "{name}: Secret Manager answered HTTP {code}{shown}"
        )),
        _ => HandleError::other(format!(
            "{name}: unexpected answer from Secret Manager (HTTP {code}{shown})"
        )),
    }
}

/// `disabled` or `destroyed`, when a FAILED_PRECONDITION's message says.
fn version_state(body: &[u8]) -> Option<&'static str> {
    let mut v: Value = serde_json::from_slice(body).ok()?;
    let message = v
        .pointer("/error/message")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let state = if message.contains("DESTROYED") {
        Some("destroyed")
    } else if message.contains("DISABLED") {
        Some("disabled")
    } else {
        None
    };
    backend_core::key::wipe(&mut v);
    state
}

#[cfg(test)]
mod tests {
    use super::*;
    use backend_core::ErrorKind;

    fn name() -> VersionName<'static> {
        VersionName {
            project: "p",
            location: None,
            secret: "db",
            version: "latest",
        }
    }

    fn google(code: u16, status: &str, message: &str) -> Vec<u8> {
        serde_json::json!({"error": {"code": code, "status": status, "message": message}})
            .to_string()
            .into_bytes()
    }

    fn err(code: u16, body: &[u8]) -> HandleError {
        status_error(StatusCode::from_u16(code).unwrap(), body, &name())
    }

    #[test]
    fn names() {
        assert_eq!(name().to_string(), "projects/p/secrets/db/versions/latest");
        let n = VersionName {
            location: Some("europe-west4"),
            ..name()
        };
        assert_eq!(
            n.to_string(),
            "projects/p/locations/europe-west4/secrets/db/versions/latest"
        );
    }

    #[test]
    fn statuses_become_handle_errors_without_bodies() {
        let e = err(
            404,
            &google(404, "NOT_FOUND", "Secret [BODY-MARKER] not found."),
        );
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.message()
                .starts_with("projects/p/secrets/db/versions/latest: not found")
        );
        let e = err(403, &google(403, "PERMISSION_DENIED", "BODY-MARKER"));
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        assert!(
            e.message().contains(PERMISSION) && e.message().contains(ROLE),
            "{e}"
        );
        let e = err(
            400,
            &google(
                400,
                "FAILED_PRECONDITION",
                "Secret Version [x] is in DESTROYED state.",
            ),
        );
        assert!(e.message().contains("is destroyed"), "{e}");
        let e = err(
            400,
            &google(
                400,
                "FAILED_PRECONDITION",
                "Cannot access secret version in state DISABLED.",
            ),
        );
        assert!(e.message().contains("is disabled"), "{e}");
        let e = err(429, &google(429, "RESOURCE_EXHAUSTED", "BODY-MARKER"));
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        assert!(e.message().contains("quota"), "{e}");
        let e = err(503, b"<html>BODY-MARKER</html>");
        assert_eq!(e.kind(), ErrorKind::Unavailable);
        for code in [400, 401, 403, 404, 418, 429, 500, 503] {
            let e = err(code, &google(code, "X", "BODY-MARKER"));
            assert!(!e.message().contains("BODY-MARKER"), "{e}");
        }
    }

    #[test]
    fn payloads_and_their_checksums() {
        let body = |data: &str, crc: Option<Value>| {
            let mut p = serde_json::json!({"data": data});
            if let Some(c) = crc {
                p["dataCrc32c"] = c;
            }
            serde_json::json!({"name": "projects/1/secrets/db/versions/1", "payload": p})
                .to_string()
                .into_bytes()
        };
        // "hello" and its CRC32C (RFC 3720 polynomial).
        let hello = "aGVsbG8=";
        let crc = u64::from(CASTAGNOLI.checksum(b"hello"));
        assert_eq!(CASTAGNOLI.checksum(b"123456789"), 0xE306_9283);
        let p = payload(&body(hello, Some(crc.to_string().into()))).unwrap();
        assert_eq!(&p.0[..], b"hello");
        assert!(payload(&body(hello, Some(crc.into()))).is_ok());
        assert!(payload(&body(hello, None)).is_ok());
        let e = payload(&body(hello, Some((crc + 1).to_string().into()))).unwrap_err();
        assert!(e.message().contains("CRC32C"), "{e}");
        assert!(payload(&body(hello, Some("x".into()))).is_err());
        assert!(payload(&body("!!", None)).is_err());
        assert!(payload(br#"{"name":"x"}"#).is_err());
        assert!(payload(b"<html>").is_err());
        let empty = payload(br#"{"name":"x","payload":{}}"#).unwrap();
        assert!(empty.0.is_empty());
    }
}
