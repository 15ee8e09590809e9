//! The store types `secret-backend` can serve, by their type names.
//!
//! Each entry deserializes exactly that store's own config type (the one its
//! single-store binary reads from `--config`), so a store has one schema
//! wherever it is used. Adding a store is one line in [`build`].

use backend_core::runner::Backend;
use backend_core::{ConfigError, HandleError, Provider};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Our type names, as written after `type:` in the config.
pub const TYPES: &[&str] = &["vault", "aws", "file", "k8s", "dummy"];

/// Takes `type` out of a backend's config map.
pub fn split_type(value: Value) -> Result<(String, Value), ConfigError> {
    let Value::Object(mut map) = value else {
        return Err(ConfigError::new("must be a map with a 'type' key"));
    };
    match map.remove("type") {
        Some(Value::String(t)) => Ok((t, Value::Object(map))),
        Some(_) => Err(ConfigError::new("'type' must be a string")),
        None => Err(ConfigError::new(format!(
            "no 'type' (one of: {})",
            TYPES.join(", ")
        ))),
    }
}

/// Config keys that hold a credential inline, in any store.
const CREDENTIAL_KEYS: &[&str] = &[
    "token",
    "secret_id",
    "jwt",
    "password",
    "secret_access_key",
    "session_token",
];

/// Whether a backend's config holds a credential inline (at any depth).
pub fn holds_credentials(config: &Value) -> bool {
    match config {
        Value::Object(map) => map.iter().any(|(k, v)| {
            (CREDENTIAL_KEYS.contains(&k.as_str()) && !v.is_null()) || holds_credentials(v)
        }),
        _ => false,
    }
}

/// Builds a provider of store `kind` from its config. Providers touch no
/// network here (logins happen on their first call), but may read their
/// credential files.
pub fn build(kind: &str, config: Value) -> Result<Box<dyn Provider>, ConfigError> {
    dispatch(kind, config, true)?.ok_or_else(|| ConfigError::new("internal error: nothing built"))
}

/// Checks that `config` is a valid config of store `kind` (its schema only:
/// credential files are read when the store is first used, so a broken
/// store costs only its own handles).
pub fn validate(kind: &str, config: Value) -> Result<(), ConfigError> {
    if config.get("aliases").is_some() {
        // The store's own config takes them, but here a handle reaches a
        // store only through this binary's routing.
        return Err(ConfigError::new(
            "aliases: write them at the top level of this config, with targets '<backend>:<handle>'",
        ));
    }
    dispatch(kind, config, false).map(drop)
}

/// Tells whether a handle is one a store could resolve.
pub type Checker = Box<dyn Fn(&str) -> Result<(), HandleError>>;

/// The handle check of store `kind` with `config`: that store's own
/// ([`Backend::check_handle`]), its config read once. A config that does
/// not deserialize checks nothing (it is refused elsewhere).
pub fn checker(kind: &str, config: &Value) -> Checker {
    fn typed<B: Backend + 'static>(config: &Value) -> Checker {
        match serde_json::from_value::<B::Config>(config.clone()) {
            Ok(config) => Box::new(move |handle| B::check_handle(&config, handle)),
            Err(_) => Box::new(|_| Ok(())),
        }
    }
    match kind {
        "vault" => typed::<backend_vault::VaultProvider>(config),
        "aws" => typed::<backend_aws::AwsProvider>(config),
        "file" => typed::<backend_file::FileProvider>(config),
        "k8s" => typed::<backend_k8s::K8sProvider>(config),
        "dummy" => typed::<backend_dummy::Dummy>(config),
        _ => Box::new(|_| Ok(())),
    }
}

fn dispatch(
    kind: &str,
    config: Value,
    build: bool,
) -> Result<Option<Box<dyn Provider>>, ConfigError> {
    match kind {
        "vault" => typed(config, build, backend_vault::VaultProvider::new),
        "aws" => typed(config, build, backend_aws::AwsProvider::new),
        "file" => typed(config, build, backend_file::FileProvider::new),
        "k8s" => typed(config, build, backend_k8s::K8sProvider::new),
        "dummy" => typed(config, build, |_: backend_dummy::DummyConfig| {
            Ok(backend_dummy::Dummy::default())
        }),
        // Not quoted: a config error shows no value, whatever it holds.
        _ => Err(ConfigError::new(format!(
            "unknown type (expected one of: {})",
            TYPES.join(", ")
        ))),
    }
}

fn typed<C, P>(
    config: Value,
    build: bool,
    new: impl FnOnce(C) -> Result<P, ConfigError>,
) -> Result<Option<Box<dyn Provider>>, ConfigError>
where
    C: DeserializeOwned,
    P: Provider + 'static,
{
    let config: C = serde_json::from_value(config)
        .map_err(|e| ConfigError::new(backend_core::config::describe_error(&e)))?;
    if !build {
        return Ok(None);
    }
    Ok(Some(Box::new(new(config)?)))
}
