//! Getting a token, and giving it back.
//!
//! A configured token (`token` method) is used as it is and never revoked:
//! it is not ours. A token we obtain by logging in is ours: it is revoked
//! (`auth/token/revoke-self`) when the call is over, so agents calling us
//! every few minutes do not pile up live tokens, unless `token_cache_file`
//! is set, in which case it is kept in that file (mode 0600) and reused by
//! later calls while `auth/token/lookup-self` says it has time left.
//!
//! Calls that share a cache file share one login: the login happens under
//! an exclusive lock on a sibling file (`<cache>.lock`, `flock`), waited for
//! at most half of the call's remaining time; whoever gets the lock first
//! reads the cache again (another call may just have filled it), and logs
//! in only if it is still empty or stale. A call that cannot get the lock
//! in time logs in on its own and revokes its token after the call, as
//! without a cache, so no token is ever left alive outside the cache file.
//!
//! Every token and login credential is [`backend_core::secret::hold`]: the
//! runner refuses to hand out any value that is or contains one.

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use backend_core::config::read_credential;
use backend_core::secret::hold;
use backend_core::{Context, HandleError, Secret};
use reqwest::{Method, StatusCode};
use serde_json::Value;
use zeroize::Zeroizing;

use crate::config::{Credentials, Login};
use crate::http::{Api, Failure};

/// A cached token is reused only with at least this much time to live.
const MIN_CACHED_TTL: Duration = Duration::from_secs(60);

/// The token a call uses.
#[derive(Debug)]
pub struct Session {
    /// The token.
    pub token: Secret,
    /// Whether [`revoke`] should be called when the call is over.
    pub revoke: bool,
}

/// Where the login goes, for messages: `approle at auth/approle`.
pub fn describe(login: &Login) -> String {
    format!("{} at auth/{}", login.method.name(), login.mount.join("/"))
}

/// The token for this call: the configured one, a cached one, or a new login.
pub async fn session(
    api: &Api,
    credentials: &Credentials,
    cache: Option<&Path>,
    ctx: &Context,
) -> Result<Session, HandleError> {
    let login = match credentials {
        Credentials::Token(t) => {
            return Ok(Session {
                token: t.clone(),
                revoke: false,
            });
        }
        Credentials::Login(login) => login,
    };
    let Some(file) = cache else {
        let token = log_in(api, login, ctx).await?;
        return Ok(Session {
            token,
            revoke: true,
        });
    };
    let reuse = |token| Session {
        token,
        revoke: false,
    };
    if let Some(token) = cached(api, file, ctx).await {
        return Ok(reuse(token));
    }
    let lock = CacheLock::acquire(file, ctx).await;
    if lock.is_some()
        && let Some(token) = cached(api, file, ctx).await
    {
        return Ok(reuse(token));
    }
    let token = log_in(api, login, ctx).await?;
    // Only the lock holder writes the cache: a token stored by a call that
    // did not hold it could replace (and orphan) the holder's.
    let kept = lock.is_some() && store(file, &token);
    drop(lock);
    Ok(Session {
        token,
        revoke: !kept,
    })
}

/// An exclusive `flock` on `<cache>.lock`, released when dropped (or when
/// the process ends, however it ends).
#[derive(Debug)]
struct CacheLock {
    _held: File,
}

/// Pause between two attempts to take the cache lock.
const LOCK_POLL: Duration = Duration::from_millis(20);

impl CacheLock {
    /// Takes the lock, waiting at most half of the call's remaining time;
    /// `None` when it could not be had (the reason is logged).
    async fn acquire(cache: &Path, ctx: &Context) -> Option<Self> {
        let path = sibling(cache, "lock")?;
        let file = match open_lock_file(&path) {
            Ok(f) => f,
            Err(e) => {
                tracing::warn!(
                    "cannot open the token cache lock {}: {e}; this call's token will be revoked",
                    path.display()
                );
                return None;
            }
        };
        let give_up = tokio::time::Instant::now() + ctx.remaining() / 2;
        loop {
            match file.try_lock() {
                Ok(()) => return Some(Self { _held: file }),
                Err(std::fs::TryLockError::WouldBlock) => {}
                Err(std::fs::TryLockError::Error(e)) => {
                    tracing::warn!(
                        "cannot lock {}: {e}; this call's token will be revoked",
                        path.display()
                    );
                    return None;
                }
            }
            let pause = LOCK_POLL + LOCK_POLL.mul_f64(fastrand::f64());
            if tokio::time::Instant::now() + pause >= give_up {
                tracing::info!(
                    "another call holds the token cache lock {}; logging in without the cache",
                    path.display()
                );
                return None;
            }
            tokio::time::sleep(pause).await;
        }
    }
}

/// Opens (creating it 0600) the lock file: never through a symlink, never
/// waiting on a FIFO, and only if it is a regular file.
fn open_lock_file(path: &Path) -> std::io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true).write(true).create(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let file = options.open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// `<dir>/<name>.<suffix>` next to `file`.
fn sibling(file: &Path, suffix: &str) -> Option<PathBuf> {
    let name = file.file_name()?;
    let mut sibling = name.to_os_string();
    sibling.push(".");
    sibling.push(suffix);
    Some(file.with_file_name(sibling))
}

async fn log_in(api: &Api, login: &Login, ctx: &Context) -> Result<Secret, HandleError> {
    let what = describe(login);
    let failed = |cause: String| format!("login failed ({what}): {cause}");
    let mut segments: Vec<&str> = vec!["auth"];
    segments.extend(login.mount.iter().map(String::as_str));
    segments.push("login");
    if let Some(user) = &login.user {
        segments.push(user);
    }
    // The aws method signs a fresh request at each login.
    let signed = match &login.aws {
        Some(aws) => aws
            .fields(ctx)
            .await
            .map_err(|e| HandleError::new(e.kind(), failed(e.to_string())))?,
        None => Vec::new(),
    };
    let body: std::collections::BTreeMap<&str, &str> = login
        .body
        .iter()
        .chain(&signed)
        .map(|(k, v)| (*k, v.expose()))
        .collect();
    let body = Zeroizing::new(
        serde_json::to_vec(&body).map_err(|e| HandleError::other(failed(e.to_string())))?,
    );
    let resp = api
        .send(
            Method::POST,
            api.url(&segments, None),
            None,
            Some(&body),
            ctx,
        )
        .await
        .map_err(|f| match f {
            Failure::Unreachable(cause) | Failure::Permanent(cause) => {
                HandleError::unavailable(failed(cause))
            }
            Failure::TooLarge => HandleError::other(failed("response too large".into())),
        })?;
    let status = resp.status;
    if !status.is_success() {
        return Err(match status {
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
                HandleError::unavailable(failed(format!(
                    "server unavailable or sealed (HTTP {})",
                    status.as_u16()
                )))
            }
            s if s.is_server_error() => {
                HandleError::unavailable(failed(format!("server error (HTTP {})", s.as_u16())))
            }
            StatusCode::NOT_FOUND => HandleError::permission_denied(failed(
                "no such auth method at that mount (HTTP 404)".into(),
            )),
            s => HandleError::permission_denied(failed(format!(
                "credentials refused (HTTP {})",
                s.as_u16()
            ))),
        });
    }
    resp.body
        .as_ref()
        .and_then(|b| b.pointer("/auth/client_token"))
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty())
        .map(|t| Secret::credential(t.to_owned()))
        .ok_or_else(|| HandleError::other(failed("the server sent no token".into())))
}

/// Revokes the session's token if it is ours. Failures are logged only: the
/// reply is already written.
pub async fn revoke(api: &Api, session: &Session, ctx: &Context) {
    if !session.revoke {
        return;
    }
    let url = api.url(&["auth", "token", "revoke-self"], None);
    match api
        .send(Method::POST, url, Some(&session.token), None, ctx)
        .await
    {
        Ok(r) if r.status.is_success() => tracing::debug!("login token revoked"),
        Ok(r) => tracing::warn!(
            "could not revoke the login token (HTTP {}); it lives until its TTL ends",
            r.status.as_u16()
        ),
        Err(Failure::Unreachable(cause) | Failure::Permanent(cause)) => tracing::warn!(
            "could not revoke the login token ({cause}); it lives until its TTL ends"
        ),
        Err(Failure::TooLarge) => {}
    }
}

/// Holds the token in the cache file, if it holds one, sending nothing
/// ([`backend_core::Provider::hold_credentials`]).
pub fn hold_cached(file: &Path) {
    if file.symlink_metadata().is_ok()
        && let Ok(token) = read_credential(file, "token_cache_file")
    {
        hold(&token);
    }
}

/// The cached token, if the file holds one the server still honours with
/// enough time left.
async fn cached(api: &Api, file: &Path, ctx: &Context) -> Option<Secret> {
    if file.symlink_metadata().is_err() {
        return None;
    }
    let token = match read_credential(file, "token_cache_file") {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("ignoring the token cache: {e}");
            return None;
        }
    };
    hold(&token);
    let url = api.url(&["auth", "token", "lookup-self"], None);
    let resp = api
        .send(Method::GET, url, Some(&token), None, ctx)
        .await
        .ok()?;
    if !resp.status.is_success() {
        tracing::info!(
            "cached token refused (HTTP {}); logging in again",
            resp.status.as_u16()
        );
        return None;
    }
    let data = resp.body.as_ref()?.get("data")?;
    let ttl = data.get("ttl").and_then(Value::as_u64)?;
    // ttl 0 is a token without expiry (a root token, a periodic one at 0).
    let lasting = ttl == 0 && data.get("expire_time").is_none_or(Value::is_null);
    (lasting || Duration::from_secs(ttl) >= MIN_CACHED_TTL).then_some(token)
}

/// Writes the token to the cache file ([`backend_core::fs::write_private`]:
/// atomically, mode 0600). Returns whether it was kept (if not, the caller
/// revokes it as usual).
fn store(file: &Path, token: &Secret) -> bool {
    // Never replace what is not a cache file: a FIFO, a device or a
    // directory someone put there stays, and the token is revoked instead.
    match backend_core::fs::write_private(file, token.expose().as_bytes()) {
        Ok(()) => true,
        Err(e @ backend_core::fs::WriteError::NotRegular) => {
            tracing::warn!(
                "token_cache_file {} {e}, the token will be revoked",
                file.display()
            );
            false
        }
        Err(e) => {
            tracing::warn!(
                "cannot write the token cache {}: {e}; the token will be revoked",
                file.display()
            );
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    #[test]
    fn cache_file_is_private_and_replaced() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("token");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(store(&f, &Secret::from("new-token")));
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new-token");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(!store(
            &d.path().join("missing-dir/token"),
            &Secret::from("x")
        ));
    }
}
