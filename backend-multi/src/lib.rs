//! `secret-backend`: one executable for many stores.
//!
//! An agent takes exactly one `secret_backend_command`; an operator whose API
//! key lives in AWS and whose database passwords live in Vault needs one
//! executable that serves both. The config names backends, each of one
//! store type with exactly that store's own config keys:
//!
//! ```yaml
//! backends:
//!   vault: { type: vault, address: "https://vault:8200", auth: { method: approle, role_id_file: /etc/sb/role_id, secret_id_file: /etc/sb/secret_id } }
//!   aws:   { type: aws, region: eu-west-1 }
//!   files: { type: file, dir: /run/secrets }
//! default: aws
//! ```
//!
//! A handle `<name>:<rest>` goes to backend `<name>` as `<rest>` (split at the
//! first `:`); a handle whose prefix names no backend goes whole to the
//! default (so ARNs work through a default aws backend), else it gets the
//! error `no backend named '<name>'`. Only the backends a call's handles
//! reference are built; they resolve concurrently under the one deadline, so
//! a slow or broken backend costs only its own handles.
//!
//! When the request itself carries `type` and `config` (Datadog 7.70+,
//! Vector's exec protocol v1.1), that one backend is served from them instead
//! and no config file is needed: see [`connectors`].

pub mod connectors;
pub mod helper;
pub mod stores;

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};

use backend_core::protocol::Request;
use backend_core::{
    ConfigError, Context, Fetched, HandleError, NoArgs, Outcome, Provider, Resolver, fan_out, group,
};
use futures_util::future::join_all;
use serde::Deserialize;
use serde_json::Value;

/// The multi binary's config file.
#[derive(Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MultiConfig {
    /// Names that stand for handles ([`backend_core::alias`]): targets are
    /// handles of this binary, `<backend>:<handle>` or, unprefixed, the
    /// default backend's.
    #[serde(default)]
    pub aliases: backend_core::Aliases,
    /// Backend name -> `{type: <store>, <that store's config keys>...}`.
    #[serde(default)]
    pub backends: BTreeMap<String, Value>,
    /// The backend for handles without a known `<name>:` prefix.
    #[serde(default)]
    pub default: Option<String>,
    /// Whether a request's own `type` and `config` may replace this file's
    /// backends (see [`CallerConfig`]).
    #[serde(default)]
    pub caller_config: CallerConfig,
    /// Where the helper's `file@/path` handles may read ([`helper`]).
    #[serde(default)]
    pub file_roots: Option<Vec<std::path::PathBuf>>,
}

/// What a request carrying `type` and `config` (Datadog's
/// `secret_backend_type`/`secret_backend_config`, Vector's exec protocol
/// v1.1) does when the operator also gave `--config`.
///
/// Both come from whoever configures the agent, but they are two places:
/// an operator who ships a config file to every host may want it to be the
/// only one. `allow` (the default, as before) serves the request's store and
/// says so in a debug line; `deny` ignores the request's `type` and
/// `config`, serves the file's backends, and warns once per call.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CallerConfig {
    /// The request's `type`/`config` replace the file's backends.
    #[default]
    Allow,
    /// The request's `type`/`config` are ignored.
    Deny,
}

impl std::fmt::Debug for MultiConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Backend configs may hold credentials: show names and types only.
        let backends: BTreeMap<&str, &str> = self
            .backends
            .iter()
            .map(|(name, v)| {
                (
                    name.as_str(),
                    v.get("type").and_then(Value::as_str).unwrap_or("?"),
                )
            })
            .collect();
        f.debug_struct("MultiConfig")
            .field("backends", &backends)
            .field("default", &self.default)
            .field("caller_config", &self.caller_config)
            .field("aliases", &self.aliases)
            .field("file_roots", &self.file_roots)
            .finish()
    }
}

/// A backend as configured: validated at start, built on first use.
struct Slot {
    kind: String,
    config: Value,
    built: Mutex<Option<Arc<dyn Resolver>>>,
}

impl std::fmt::Debug for Slot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The config may hold credentials: show only the type.
        f.debug_struct("Slot")
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Rewrites a caller's handle into the served store's grammar.
pub type HandleMap = fn(&str) -> String;

/// The multi-store provider.
#[derive(Debug)]
pub struct MultiProvider {
    slots: BTreeMap<String, Slot>,
    default: Option<String>,
    /// For a caller-configured single backend: how its handles map to ours.
    rewrite: Option<HandleMap>,
    /// The slot serving the helper's `k8s_secret@` handles.
    helper_k8s: String,
    /// Where the helper's `file@` handles may read.
    file_roots: Vec<std::path::PathBuf>,
}

impl MultiProvider {
    /// Validates every backend's config (so a typo stops the run with exit
    /// code 2) without building any of them.
    pub fn new(config: MultiConfig) -> Result<Self, ConfigError> {
        if config.backends.is_empty() {
            return Err(ConfigError::new(
                "no backends configured: give --config FILE with a 'backends:' map, \
                 or call with a request that carries 'type' and 'config'",
            ));
        }
        Self::with_helpers(config)
    }

    /// The config's backends (none at all is fine) and the built-in stores
    /// of the helper's handles ([`helper`]).
    pub fn with_helpers(config: MultiConfig) -> Result<Self, ConfigError> {
        let file_roots = helper::roots(config.file_roots.as_deref())?;
        let mut slots = BTreeMap::new();
        for (name, value) in config.backends {
            if name.is_empty() || name.contains(':') {
                return Err(ConfigError::new(format!(
                    "backend name '{}' must be non-empty and hold no ':'",
                    name.escape_debug()
                )));
            }
            let (kind, rest) = stores::split_type(value)
                .map_err(|e| ConfigError::new(format!("backends.{name}: {e}")))?;
            stores::validate(&kind, rest.clone())
                .map_err(|e| ConfigError::new(format!("backends.{name}: {e}")))?;
            slots.insert(
                name,
                Slot {
                    kind,
                    config: rest,
                    built: Mutex::new(None),
                },
            );
        }
        if let Some(d) = config.default.as_ref().filter(|d| !slots.contains_key(*d)) {
            return Err(ConfigError::new(format!(
                "default: no backend named '{}'",
                d.escape_debug()
            )));
        }
        for root in &file_roots {
            slots.insert(
                helper::file_slot(root),
                Slot {
                    kind: "file".into(),
                    config: helper::file_config(root),
                    built: Mutex::new(None),
                },
            );
        }
        let configured_k8s = slots.iter().find(|(_, s)| s.kind == "k8s");
        let helper_k8s = match configured_k8s {
            Some((name, _)) => name.clone(),
            None => {
                let slot = Slot {
                    kind: "k8s".into(),
                    config: Value::Object(serde_json::Map::new()),
                    built: Mutex::new(None),
                };
                slots.insert(helper::K8S_SLOT.into(), slot);
                helper::K8S_SLOT.into()
            }
        };
        Ok(Self {
            slots,
            default: config.default,
            rewrite: None,
            helper_k8s,
            file_roots,
        })
    }

    /// Serves one store built from a caller's `type` and `config`.
    pub fn from_caller(backend_type: &str, config: Option<&Value>) -> Result<Self, ConfigError> {
        let empty = Value::Object(serde_json::Map::new());
        let config = match config {
            None | Some(Value::Null) => &empty,
            Some(c @ Value::Object(_)) => c,
            // Not quoted: a config error shows no value.
            Some(_) => {
                return Err(ConfigError::new(
                    "the request's 'config' must be an object of the store's keys",
                ));
            }
        };
        let (kind, ours, rewrite) = connectors::translate(backend_type, config)?;
        // A request may choose where to read from, never where we write: a
        // token cache is a file we overwrite, so only --config names one.
        if ours.get("token_cache_file").is_some_and(|v| !v.is_null()) {
            return Err(ConfigError::new(
                "token_cache_file cannot come from the request's config (it names a file the backend writes): set it in the --config file",
            ));
        }
        stores::validate(&kind, ours.clone())?;
        let name = "caller".to_owned();
        let slot = Slot {
            kind,
            config: ours,
            built: Mutex::new(None),
        };
        Ok(Self {
            slots: BTreeMap::from([(name.clone(), slot)]),
            default: Some(name),
            rewrite,
            helper_k8s: String::new(),
            file_roots: Vec::new(),
        })
    }

    /// Which backend serves `handle`, and the handle it gets there.
    fn route<'h>(&self, handle: &'h str) -> Result<(&str, std::borrow::Cow<'h, str>), HandleError> {
        if let Some(rewrite) = self.rewrite {
            let name = self.default.as_deref().unwrap_or_default();
            return Ok((name, rewrite(handle).into()));
        }
        if let Some(routed) = helper::route(handle, &self.helper_k8s, &self.file_roots) {
            let (slot, sub) = routed?;
            let name = self
                .slots
                .get_key_value(&slot)
                .map(|(name, _)| name.as_str())
                .ok_or_else(|| HandleError::other("internal error: no store for this handle"))?;
            return Ok((name, sub.into()));
        }
        if let Some((name, rest)) = handle
            .split_once(':')
            .and_then(|(prefix, rest)| Some((self.slots.get_key_value(prefix)?.0, rest)))
        {
            return Ok((name.as_str(), rest.into()));
        }
        match &self.default {
            Some(d) => Ok((d.as_str(), handle.into())),
            None => Err(HandleError::invalid_handle(match handle.split_once(':') {
                Some((prefix, _)) => format!(
                    "no backend named '{}'",
                    backend_core::runner::shorten(prefix)
                ),
                None => "no '<backend>:' prefix and no default backend".to_owned(),
            })),
        }
    }

    fn provider(&self, name: &str) -> Result<Arc<dyn Resolver>, HandleError> {
        let slot = self
            .slots
            .get(name)
            .ok_or_else(|| HandleError::other(format!("no backend named '{name}'")))?;
        let mut built = slot
            .built
            .lock()
            .map_err(|_| HandleError::other("internal error: poisoned lock"))?;
        if let Some(p) = built.as_ref() {
            return Ok(Arc::clone(p));
        }
        let p: Arc<dyn Resolver> = stores::build(&slot.kind, slot.config.clone())
            .map_err(|e| HandleError::other(format!("backend '{name}': {e}")))?
            .into();
        *built = Some(Arc::clone(&p));
        Ok(p)
    }

    /// Asks each backend for its distinct handles, all backends at once
    /// under the one deadline; the answers in the order of `pairs`.
    async fn ask(&self, pairs: Vec<(&str, &str)>, ctx: &Context) -> Vec<Outcome> {
        let (names, of_pair) = group(pairs.iter().map(|(name, _)| *name));
        let mut asked: Vec<Vec<String>> = names.iter().map(|_| Vec::new()).collect();
        for ((_, sub), &b) in pairs.iter().zip(&of_pair) {
            if let Some(subs) = asked.get_mut(b) {
                subs.push((*sub).to_owned());
            }
        }
        drop(pairs);
        let calls = names.iter().zip(&asked).map(|(name, subs)| async move {
            match self.provider(name) {
                Ok(p) => p.resolve_boxed(subs, ctx).await,
                Err(e) => subs.iter().map(|_| Err(e.clone())).collect(),
            }
        });
        let answered = join_all(calls).await;
        drop(asked);
        // Each backend answered its handles in the order they were pushed,
        // which is the order of `pairs`.
        let mut answers: Vec<_> = answered.into_iter().map(Vec::into_iter).collect();
        of_pair
            .into_iter()
            .map(|b| {
                answers
                    .get_mut(b)
                    .and_then(Iterator::next)
                    .unwrap_or_else(|| Err(ctx.timed_out()))
            })
            .collect()
    }

    fn built(&self) -> Vec<Arc<dyn Resolver>> {
        self.slots
            .values()
            .filter_map(|s| s.built.lock().ok().and_then(|b| b.as_ref().map(Arc::clone)))
            .collect()
    }
}

impl Provider for MultiProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend",
        "Secret backend for many stores: routes '<backend>:<handle>' to the store (vault, aws, file, k8s, gcp, azure, dummy) of the backend named in the config, and the helper's k8s_secret@ and file@ handles."
    );
    type Config = MultiConfig;
    type Args = NoArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        self.hold_credentials();
        // Each handle routed to (backend, its handle there), borrowing the
        // handle where no rewrite applies; a handle no backend takes keeps
        // its error. Equal (backend, handle) pairs are asked once.
        let routed: Vec<Result<(&str, Cow<'_, str>), HandleError>> =
            handles.iter().map(|h| self.route(h)).collect();
        fan_out(
            &routed,
            |(name, sub)| (*name, sub.as_ref()),
            |pairs| self.ask(pairs, ctx),
            // A value asked for by one handle moves to it; only one asked
            // for by several is copied.
            |_, answer| answer.map(Fetched::take).map_err(Clone::clone),
        )
        .await
    }

    /// Every configured store (built now if no handle names it; one that
    /// cannot be built is skipped) holds the credentials it would use
    /// before any store answers: a handle of one store (`file@`, a file
    /// backend's directory) may name another's token file, and no reply may
    /// carry it whether or not that other store is asked in this call.
    fn hold_credentials(&self) {
        for name in self.slots.keys() {
            if let Ok(store) = self.provider(name) {
                store.hold_all();
            }
        }
    }

    async fn close(&self, ctx: &Context) {
        let built = self.built();
        join_all(built.iter().map(|p| p.close_boxed(ctx))).await;
    }

    /// The backends' configs are untyped values here (each store reads its
    /// own from them), so the event reader gives the same result as
    /// serde-saphyr, in a smaller binary.
    ///
    /// Each backend's config is deserialized here as its store reads it,
    /// errors aside (the build reports them): so the credentials it holds
    /// inline are counted as read ([`backend_core::Credential`]), and a
    /// config file others can read is warned about.
    fn load_config(path: &std::path::Path) -> Result<MultiConfig, ConfigError> {
        let config: MultiConfig = backend_core::config::load_flat(path)?;
        for value in config.backends.values() {
            if let Ok((kind, rest)) = stores::split_type(value.clone()) {
                let _ = stores::validate(&kind, rest);
            }
        }
        Ok(config)
    }

    fn aliases(config: &MultiConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    /// Each target routed as a request's handle would be, then held to the
    /// handle check of the store it reaches (each store's config read once
    /// for all its targets). A config the run will refuse anyway checks
    /// nothing here.
    fn check_aliases(
        config: &MultiConfig,
        _: &NoArgs,
        aliases: &backend_core::Aliases,
    ) -> Result<(), ConfigError> {
        if aliases.is_empty() {
            return Ok(());
        }
        let Ok(provider) = MultiProvider::new(config.clone()) else {
            return Ok(());
        };
        let mut checkers: HashMap<&str, stores::Checker> = HashMap::new();
        aliases.check_targets(|target| {
            let (name, sub) = provider.route(target)?;
            let Some(slot) = provider.slots.get(name) else {
                return Ok(());
            };
            let check = checkers
                .entry(name)
                .or_insert_with(|| stores::checker(&slot.kind, &slot.config));
            check(&sub)
        })
    }

    fn build(
        config: MultiConfig,
        _: NoArgs,
        request: &Request,
    ) -> Result<MultiProvider, ConfigError> {
        match (request.backend_type.as_deref(), config.caller_config) {
            // The caller chose the store (Datadog's secret_backend_type,
            // Vector's backend_type): it wins over the config file unless
            // the file says otherwise.
            (Some(t), CallerConfig::Allow) => {
                if !config.backends.is_empty() {
                    tracing::debug!(
                        "the request's type '{}' and config replace the config file's backends (caller_config: allow)",
                        backend_core::runner::shorten(t)
                    );
                }
                MultiProvider::from_caller(t, request.backend_config.as_ref())
            }
            (Some(t), CallerConfig::Deny) => {
                tracing::warn!(
                    "the request's type '{}' and config are ignored (caller_config: deny); serving the config file's backends",
                    backend_core::runner::shorten(t)
                );
                MultiProvider::new(config)
            }
            // The helper's handles need no config file.
            (None, _)
                if config.backends.is_empty()
                    && request.secrets.iter().any(|h| helper::is_helper(h)) =>
            {
                MultiProvider::with_helpers(config)
            }
            (None, _) => MultiProvider::new(config),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// Handles across two backends, repeated and unroutable ones among
    /// them: each answered in its place.
    #[tokio::test]
    async fn answers_keep_the_handles_order_across_backends() {
        let config: MultiConfig = serde_json::from_value(serde_json::json!({
            "backends": { "a": { "type": "dummy" }, "b": { "type": "dummy" } }
        }))
        .unwrap();
        let multi = MultiProvider::new(config).unwrap();
        let handles: Vec<String> = ["a:x", "b:y", "a:x", "zz:q", "b:y", "a:z", "b:x"]
            .map(String::from)
            .to_vec();
        let ctx = Context::with_budget(std::time::Duration::from_secs(5));
        let shown: Vec<String> = multi
            .resolve(&handles, &ctx)
            .await
            .into_iter()
            .map(|o| match o {
                Ok(v) => v.expose().to_owned(),
                Err(e) => format!("error: {e}"),
            })
            .collect();
        assert_eq!(
            shown,
            [
                "decrypted_x",
                "decrypted_y",
                "decrypted_x",
                "error: no backend named 'zz'",
                "decrypted_y",
                "decrypted_z",
                "decrypted_x",
            ]
        );
    }
}
