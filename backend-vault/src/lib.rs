//! backend-vault: secrets from HashiCorp Vault and OpenBao.
//!
//! A handle is `<path>[?version=N][;<key>]` ([`handle`]), the logical path
//! as `vault kv get` / `vault read` take it. One call goes:
//!
//! 1. parse every handle and refuse the paths that are the server's own
//!    APIs or outside `allowed_paths` ([`policy`]); group the rest by
//!    (path, version), so every key of `secret/db` comes from one response
//!    (the user and password of a dynamic database credential belong
//!    together);
//! 2. get a token ([`auth`]): the configured one, or a login, once per
//!    call, lazily and inside the deadline. The login runs as a task of its
//!    own, so a token the server issues is known to [`Provider::close`]
//!    even when the call gave up waiting for it;
//! 3. read the distinct paths concurrently (at most `concurrency` at once,
//!    each bounded by the deadline). Before the read, the path's mount is
//!    looked up through `sys/internal/ui/mounts/<path>` as the vault CLI
//!    does, once per mount per call: a KV v2 mount is read at
//!    `<mount>/data/<rest>` (a path already holding `data/` after the
//!    mount is read as it is), every other engine with a plain read. The
//!    mount is also what tells a secret from the token's own API inside a
//!    namespace ([`policy`]);
//! 4. pick each handle's key from its path's document (core key rules);
//! 5. after the reply, or on any other way out the runner takes (a failed
//!    write, SIGTERM), revoke a token obtained by login ([`Provider::close`]),
//!    waiting (within what is left of the deadline) for a login still in
//!    flight.
//!
//! HTTP goes through reqwest directly, not vaultrs ([`http`] says why).

pub mod auth;
pub mod aws_login;
pub mod config;
pub mod errors;
pub mod handle;
pub mod http;
pub mod mounts;
pub mod policy;
pub mod tls;

use std::sync::{Arc, Mutex};

use backend_core::key::{extract, sole_value};
use backend_core::protocol::Request;
use backend_core::{
    ConfigError, Context, HandleError, NoArgs, Outcome, Provider, bounded, fan_out,
};
use reqwest::Method;
use serde_json::Value;

pub use config::{AuthConfig, Method as AuthMethod, VaultConfig};

use crate::auth::Session;
use crate::config::{Credentials, ProcessEnv};
use crate::errors::{document, failure};
use crate::handle::{Handle, TargetRef};
use crate::http::Api;
use crate::mounts::{Lookup, Mounts};
use crate::policy::Policy;

/// The Vault / OpenBao provider.
#[derive(Debug)]
pub struct VaultProvider {
    inner: Arc<Inner>,
    concurrency: usize,
    policy: Policy,
    /// The session task's answer, once it was started.
    session: Mutex<Option<SessionWatch>>,
}

/// What the session task needs; shared with it.
#[derive(Debug)]
struct Inner {
    api: Api,
    credentials: Credentials,
    token_cache_file: Option<std::path::PathBuf>,
}

/// A document read, cleared when it drops: the responses hold every value
/// read.
struct Wiped(Value);

impl Drop for Wiped {
    fn drop(&mut self) {
        backend_core::key::wipe(&mut self.0);
    }
}

/// The session task's result: `None` until it is over.
type SessionWatch = tokio::sync::watch::Receiver<Option<Result<Arc<Session>, HandleError>>>;

impl VaultProvider {
    /// Builds the provider from `config`, filled in from the vault CLI's
    /// environment variables. Reads credential and TLS files; no network.
    pub fn new(config: VaultConfig) -> Result<Self, ConfigError> {
        let settings = config.with_env(&ProcessEnv)?.validate(&ProcessEnv)?;
        let api = Api::new(&settings)?;
        Ok(Self {
            inner: Arc::new(Inner {
                api,
                credentials: settings.credentials,
                token_cache_file: settings.token_cache_file,
            }),
            concurrency: settings.concurrency,
            policy: settings.policy,
            session: Mutex::new(None),
        })
    }

    /// The call's session: the first caller starts the task that gets it
    /// (a login, maybe), every caller waits for its answer. The task is
    /// spawned rather than awaited in place so that a caller giving up at
    /// the deadline does not drop a login the server may already have
    /// answered with a token: [`Provider::close`] waits for it and revokes.
    async fn session(&self, ctx: &Context) -> Result<Arc<Session>, HandleError> {
        let mut watch = {
            let mut slot = self
                .session
                .lock()
                .map_err(|_| HandleError::other("internal error: session lock poisoned"))?;
            match slot.as_ref() {
                Some(w) => w.clone(),
                None => {
                    let (tx, rx) = tokio::sync::watch::channel(None);
                    let inner = Arc::clone(&self.inner);
                    let ctx = ctx.clone();
                    tokio::spawn(async move {
                        let got = auth::session(
                            &inner.api,
                            &inner.credentials,
                            inner.token_cache_file.as_deref(),
                            &ctx,
                        )
                        .await
                        .map(Arc::new);
                        let _ = tx.send(Some(got));
                    });
                    *slot = Some(rx.clone());
                    rx
                }
            }
        };
        let answer = watch.wait_for(Option::is_some).await;
        match answer.as_deref() {
            Ok(Some(got)) => got.clone(),
            _ => Err(HandleError::other("internal error: the login task ended")),
        }
    }

    /// Reads one target; errors carry the cause only (the caller adds the
    /// location).
    async fn fetch(
        &self,
        target: &TargetRef<'_>,
        session: &Session,
        mounts: &Mounts,
        ctx: &Context,
    ) -> Result<Value, HandleError> {
        let api = &self.inner.api;
        // Owned for this read only (the handles keep borrowed ones).
        let segments: Vec<String> = target.segments.iter().map(|s| (*s).to_owned()).collect();
        let segments = segments.as_slice();
        let lookup = mounts.lookup(api, segments, session, ctx).await?;
        let (kind, located) = match &lookup {
            Lookup::Unknown => (None, None),
            Lookup::Unlocated(kind) => (Some(kind), None),
            Lookup::Located(m) => (Some(&m.kind), Some(m)),
        };
        let kv2 = located.filter(|m| m.kv2);
        // `read`: the path sent; `logical`: without a KV v2 `data/`.
        let (read, logical): (Vec<String>, Vec<String>) = match kv2 {
            Some(m) => {
                // The mount is a prefix of the path (checked when it was found).
                let rest = segments.get(m.segments.len()..).unwrap_or(&[]);
                if rest.is_empty() {
                    return Err(HandleError::invalid_handle(
                        "names a KV v2 mount, not a secret in it",
                    ));
                }
                let rest = match rest.split_first() {
                    Some((first, after)) if first == "data" => after,
                    _ => rest,
                };
                let logical = [m.segments.as_slice(), rest].concat();
                let read = [m.segments.as_slice(), &["data".to_owned()], rest].concat();
                (read, logical)
            }
            None if target.version.is_some() => {
                return Err(HandleError::invalid_handle(
                    "'?version=' applies to KV v2 secrets only",
                ));
            }
            None => (segments.to_vec(), segments.to_vec()),
        };
        let mount = kind.map(|k| (k, located.map(|m| m.segments.len())));
        self.policy.check(segments, mount, &logical, &read)?;
        let version = target.version.map(|v| v.to_string());
        let url = api.url(&read, version.as_deref().map(|v| ("version", v)));
        let resp = api
            .send(Method::GET, url, Some(&session.token), None, ctx)
            .await
            .map_err(failure)?;
        document(resp, kv2.is_some(), target.version)
    }
}

impl Provider for VaultProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-vault",
        "Secret backend for HashiCorp Vault and OpenBao: handles are <path>[?version=N][;<key>]."
    );
    type Config = VaultConfig;
    type Args = NoArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        // Refused paths are answered before anything is sent (no login either).
        let parsed: Vec<Result<Handle<'_>, HandleError>> =
            handles.iter().map(|h| checked(&self.policy, h)).collect();
        // Grouped by reference: a request of 200,000 handles holds each
        // path once, in its parsed handle.
        fan_out(
            &parsed,
            Handle::target_ref,
            |targets| async move {
                match ctx.within(self.session(ctx)).await.and_then(|r| r) {
                    Ok(session) => {
                        let mounts = Mounts::default();
                        let (session, mounts) = (&session, &mounts);
                        bounded(&targets, self.concurrency, ctx, |t| async move {
                            self.fetch(t, session, mounts, ctx).await.map(Wiped)
                        })
                        .await
                    }
                    Err(e) => targets.iter().map(|_| Err(e.clone())).collect(),
                }
            },
            |h, doc| {
                let location = h.location();
                let doc = doc.map_err(|e| e.clone().context(&location))?;
                match &h.key {
                    Some(key) => extract(&doc.0, key, &location),
                    None => sole_value(&doc.0, &location),
                }
            },
        )
        .await
    }

    /// Revokes the login token, if there is one: waits (within `ctx`) for a
    /// session task still running, so a login the server answered after
    /// the call stopped waiting is revoked too.
    async fn close(&self, ctx: &Context) {
        {
            let watch = self.session.lock().ok().and_then(|mut s| s.take());
            let Some(mut watch) = watch else {
                return; // never started: nothing was asked of the server
            };
            let session = match ctx.within(watch.wait_for(Option::is_some)).await {
                Ok(Ok(answer)) => answer.as_ref().and_then(|got| got.as_ref().ok()).cloned(),
                Ok(Err(_)) => None,
                Err(_) => {
                    tracing::warn!(
                        "the login was still under way at exit; a token the server issues \
                         for it lives until its TTL ends"
                    );
                    None
                }
            };
            if let Some(s) = session {
                auth::revoke(&self.inner.api, &s, ctx).await;
            }
        }
    }

    /// The cached token, and for the aws login method the files of the
    /// AWS credential chain (backend-aws's, which holds what it reads);
    /// the configured token and login credentials are held from the build.
    fn hold_credentials(&self) {
        if let Some(file) = &self.inner.token_cache_file {
            auth::hold_cached(file);
        }
        if let Credentials::Login(login) = &self.inner.credentials
            && login.aws.is_some()
        {
            let _ = backend_aws::files::SdkFiles::read();
        }
    }

    fn aliases(config: &VaultConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    /// The handle grammar and the paths refused whatever the config
    /// (`allowed_paths` is applied when the handle is read).
    fn check_handle(_: &VaultConfig, handle: &str) -> Result<(), HandleError> {
        checked(&Policy::new(None), handle).map(drop)
    }

    fn build(config: VaultConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
        Self::new(config)
    }
}

/// A handle parsed, its path held to `policy` before anything is sent.
fn checked<'h>(policy: &Policy, handle: &'h str) -> Result<Handle<'h>, HandleError> {
    let h = handle::parse(handle)?;
    policy
        .precheck(&h.segments)
        .map_err(|e| e.context(h.path()))?;
    Ok(h)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::http::Response;

    fn resp(status: u16, body: Value) -> Response {
        Response {
            status: reqwest::StatusCode::from_u16(status).unwrap(),
            body: Some(body),
        }
    }

    #[test]
    fn debug_never_shows_the_token() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("token");
        std::fs::write(&f, "s.TOKEN-VALUE-42").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o600)).unwrap();
        let config = VaultConfig {
            address: Some("http://127.0.0.1:1".into()),
            auth: AuthConfig {
                token_file: Some(f),
                ..AuthConfig::default()
            },
            ..VaultConfig::default()
        };
        let p = VaultProvider::new(config).unwrap();
        let shown = format!("{p:?}");
        assert!(!shown.contains("TOKEN-VALUE-42"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }

    #[test]
    fn documents_and_statuses() {
        let d = document(
            resp(200, json!({"data": {"data": {"a": "1"}, "metadata": {}}})),
            true,
            None,
        );
        assert_eq!(d.unwrap(), json!({"a": "1"}));
        let d = document(resp(200, json!({"data": {"a": "1"}})), false, None);
        assert_eq!(d.unwrap(), json!({"a": "1"}));
        let deleted = json!({"data": {"data": null, "metadata": {"deletion_time": "2026-01-01T00:00:00Z", "destroyed": false}}});
        let e = document(resp(404, deleted), true, Some(1)).unwrap_err();
        assert_eq!(e.to_string(), "version 1 was deleted");
        let destroyed =
            json!({"data": {"data": null, "metadata": {"deletion_time": "", "destroyed": true}}});
        let e = document(resp(404, destroyed), true, Some(2)).unwrap_err();
        assert_eq!(e.to_string(), "version 2 was destroyed");
        let e = document(resp(404, json!({"errors": []})), true, None).unwrap_err();
        assert_eq!(e.kind(), backend_core::ErrorKind::NotFound);
        let e = document(
            resp(403, json!({"errors": ["permission denied SECRETBODY"]})),
            false,
            None,
        )
        .unwrap_err();
        assert_eq!(e.kind(), backend_core::ErrorKind::PermissionDenied);
        assert!(!e.to_string().contains("SECRETBODY"));
        let e = document(resp(503, json!({})), false, None).unwrap_err();
        assert_eq!(e.kind(), backend_core::ErrorKind::Unavailable);
        assert!(e.to_string().contains("sealed"));
    }
}
