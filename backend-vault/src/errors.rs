//! Vault's answers as per-handle errors, in one place: transport
//! failures, statuses, and the read's document (KV v2 deletion metadata
//! included). Messages name the status and our words, never a body.

use backend_core::HandleError;
use reqwest::StatusCode;
use serde_json::Value;

use crate::http::{self, Failure, Response};

/// A transport failure as a handle error.
pub fn failure(f: Failure) -> HandleError {
    match f {
        Failure::Unreachable(cause) | Failure::Permanent(cause) => HandleError::unavailable(cause),
        Failure::TooLarge => HandleError::too_large(format!(
            "the server's response is larger than {} bytes",
            http::MAX_BODY
        )),
    }
}

/// An error status as a handle error; `what` names the missing thing for 404.
pub fn status_error(status: StatusCode, what: &str) -> HandleError {
    let code = status.as_u16();
    match status {
        StatusCode::FORBIDDEN | StatusCode::UNAUTHORIZED => {
            HandleError::permission_denied(format!("permission denied (HTTP {code})"))
        }
        StatusCode::NOT_FOUND | StatusCode::NO_CONTENT => HandleError::not_found(what.to_owned()),
        StatusCode::SERVICE_UNAVAILABLE => {
            HandleError::unavailable(format!("server sealed or unavailable (HTTP {code})"))
        }
        StatusCode::TOO_MANY_REQUESTS => {
            HandleError::unavailable(format!("rate limited (HTTP {code})"))
        }
        s if s.is_server_error() => HandleError::unavailable(format!("server error (HTTP {code})")),
        s if s.is_redirection() => HandleError::unavailable(format!(
            "redirected (HTTP {code}); point the address at the active node"
        )),
        _ => HandleError::other(format!("unexpected answer (HTTP {code})")),
    }
}

/// The document a read returned: `data.data` for KV v2, `data` otherwise.
pub fn document(resp: Response, kv2: bool, version: Option<u64>) -> Result<Value, HandleError> {
    let Response { status, body } = resp;
    if status == StatusCode::OK {
        if body.is_none() {
            return Err(HandleError::other(
                "the server's answer is not a Vault JSON response",
            ));
        }
        let data = body.and_then(|mut b| b.get_mut("data").map(Value::take));
        let doc = match (kv2, data) {
            (true, Some(mut d)) => d.get_mut("data").map(Value::take),
            (false, d) => d,
            (true, None) => None,
        };
        return doc
            .filter(|d| !d.is_null())
            .ok_or_else(|| HandleError::not_found("no secret at this path"));
    }
    if status == StatusCode::NOT_FOUND && kv2 {
        // KV v2 answers a deleted or destroyed version with 404 and its metadata.
        let meta = body.as_ref().and_then(|b| b.pointer("/data/metadata"));
        let shown = version.map_or("the latest version".to_owned(), |v| format!("version {v}"));
        if meta
            .and_then(|m| m.get("destroyed"))
            .and_then(Value::as_bool)
            == Some(true)
        {
            return Err(HandleError::not_found(format!("{shown} was destroyed")));
        }
        if meta
            .and_then(|m| m.get("deletion_time"))
            .and_then(Value::as_str)
            .is_some_and(|t| !t.is_empty())
        {
            return Err(HandleError::not_found(format!("{shown} was deleted")));
        }
        if version.is_some() && meta.is_none() && body.is_some() {
            return Err(HandleError::not_found(format!(
                "no secret at this path ({shown})"
            )));
        }
    }
    Err(status_error(status, "no secret at this path"))
}
