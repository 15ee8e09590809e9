//! The opt-in token cache file (`token_cache_file:`).
//!
//! Without it an access token lives for one call: every call of the agent
//! exchanges a fresh one (a JWT assertion, a refresh token, an STS round
//! trip). With it, the token and its expiry are kept in that file, mode
//! 0600, and reused by the next calls while it has at least
//! [`MIN_LEFT_SECS`] to live; a token Secret Manager refuses (HTTP 401) is
//! forgotten at the end of the call.
//!
//! The entry is keyed by its source: the credentials file's path and the
//! SHA-256 of its content (a replaced key is a new source), or the
//! metadata server's host. It holds the token, the expiry, and the
//! project and quota project the credentials named; nothing else.
//!
//! The file is read like any credential file (bounded, refused when group
//! or others can write it) and replaced atomically (a new 0600 file in the
//! same directory, renamed over it: `backend_core::fs::write_private`,
//! shared with vault and azure); a FIFO, device, directory or symbolic link
//! at that path is never replaced. Calls running at once may each exchange a token
//! and the last one written wins: Google's tokens are not revoked, so
//! nothing is left alive that should not be. Any failure here is a
//! warning and the call goes on without the cache.

use std::path::Path;

use backend_core::Secret;
use reqwest::header::HeaderValue;
use serde_json::{Value, json};

use crate::credentials::Token;

/// A cached token is reused only with at least this much time to live.
pub const MIN_LEFT_SECS: u64 = 300;

/// The cached token for `key`, if the file holds one with time to live at
/// `now` (seconds since the epoch).
pub fn load(file: &Path, key: &str, now: u64) -> Option<Token> {
    let mut v = backend_core::fs::read_token_cache(file)?;
    let token = entry(&v, key, now);
    backend_core::key::wipe(&mut v);
    if token.is_some() {
        tracing::debug!("access token from the token cache {}", file.display());
    }
    token
}

fn entry(v: &Value, key: &str, now: u64) -> Option<Token> {
    if v.get("key").and_then(Value::as_str) != Some(key) {
        return None;
    }
    let expires_at = v.get("expires_at").and_then(Value::as_u64)?;
    if expires_at < now.saturating_add(MIN_LEFT_SECS) {
        return None;
    }
    let raw = v.get("access_token").and_then(Value::as_str)?;
    let secret = Secret::credential(raw.to_owned());
    let mut header = HeaderValue::from_str(&format!("Bearer {}", secret.expose())).ok()?;
    header.set_sensitive(true);
    let text = |k: &str| {
        v.get(k)
            .and_then(Value::as_str)
            .filter(|p| crate::handle::is_project(p))
            .map(str::to_owned)
    };
    Some(Token {
        header,
        source: format!(
            "{} (cached)",
            v.get("source").and_then(Value::as_str).unwrap_or(key)
        ),
        project: text("project"),
        quota_project: text("quota_project"),
        expires_at: Some(expires_at),
        cached: true,
        rejected: false.into(),
    })
}

/// Keeps `token` (whose text is `raw`) for `key`, if its issuer said when
/// it expires.
pub fn store(file: &Path, key: &str, token: &Token, raw: &Secret) {
    let Some(expires_at) = token.expires_at else {
        tracing::debug!("the token's lifetime is unknown: not cached");
        return;
    };
    backend_core::fs::write_token_cache(
        file,
        json!({
            "key": key,
            "source": token.source,
            "access_token": raw.expose(),
            "expires_at": expires_at,
            "project": token.project,
            "quota_project": token.quota_project,
        }),
    );
}

/// Forgets the cached token (Secret Manager refused it); anything but a
/// regular file at the path stays.
pub fn forget(file: &Path) {
    backend_core::fs::forget_token_cache(file);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn token(expires_at: Option<u64>) -> Token {
        Token {
            header: HeaderValue::from_static("Bearer t"),
            source: "credentials_file /x".into(),
            project: Some("proj-a".into()),
            quota_project: None,
            expires_at,
            cached: false,
            rejected: false.into(),
        }
    }

    #[test]
    fn tokens_are_kept_private_and_reused_while_they_live() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("cache.json");
        let raw = Secret::from("ya29.cached-token-VALUE");
        store(&file, "k1", &token(Some(10_000)), &raw);
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let t = load(&file, "k1", 5_000).unwrap();
        assert!(t.cached);
        assert_eq!(t.header.to_str().unwrap(), "Bearer ya29.cached-token-VALUE");
        assert!(t.header.is_sensitive());
        assert_eq!(t.project.as_deref(), Some("proj-a"));
        assert!(t.source.ends_with("(cached)"));
        // Another source, or too little time left: not reused.
        assert!(load(&file, "k2", 5_000).is_none());
        assert!(load(&file, "k1", 10_000 - MIN_LEFT_SECS + 1).is_none());
        // A lifetime nobody told is not cached.
        store(&file, "k3", &token(None), &raw);
        assert!(load(&file, "k3", 0).is_none());
        forget(&file);
        assert!(!file.exists());
        assert!(load(&file, "k1", 0).is_none());
    }

    #[test]
    fn what_is_not_a_cache_file_is_left_alone() {
        let d = tempfile::tempdir().unwrap();
        let dir = d.path().join("a-dir");
        std::fs::create_dir(&dir).unwrap();
        store(&dir, "k", &token(Some(10_000)), &Secret::from("t"));
        assert!(dir.is_dir());
        forget(&dir);
        assert!(dir.is_dir());
        let garbage = d.path().join("garbage");
        std::fs::write(&garbage, "not json").unwrap();
        std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(load(&garbage, "k", 0).is_none());
        let open = d.path().join("open");
        store(&open, "k", &token(Some(10_000)), &Secret::from("t"));
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(load(&open, "k", 0).is_none(), "a file others may write");
    }
}
