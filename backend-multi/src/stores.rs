//! The store types `secret-backend` can serve, by their type names.
//!
//! Each entry deserializes exactly that store's own config type (the one its
//! single-store binary reads from `--config`), so a store has one schema
//! wherever it is used. Adding a store is one line in [`build`].

use backend_core::{ConfigError, Provider};
use serde::de::DeserializeOwned;
use serde_json::Value;

/// Our type names, as written after `type:` in the config.
pub const TYPES: &[&str] = &["vault", "aws", "file", "dummy"];

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

/// Builds a provider of store `kind` from its config. Providers touch no
/// network here: logins happen on their first call.
pub fn build(kind: &str, config: Value) -> Result<Box<dyn Provider>, ConfigError> {
    match kind {
        "vault" => typed(config, backend_vault::VaultProvider::new),
        "aws" => typed(config, backend_aws::AwsProvider::new),
        "file" => typed(config, backend_file::FileProvider::new),
        "dummy" => typed(config, |_: backend_dummy::DummyConfig| {
            Ok(backend_dummy::Dummy)
        }),
        other => Err(ConfigError::new(format!(
            "unknown type '{}' (one of: {})",
            other.escape_debug(),
            TYPES.join(", ")
        ))),
    }
}

/// Checks that `config` is a valid config of store `kind`.
pub fn validate(kind: &str, config: Value) -> Result<(), ConfigError> {
    build(kind, config).map(drop)
}

fn typed<C, P>(
    config: Value,
    new: impl FnOnce(C) -> Result<P, ConfigError>,
) -> Result<Box<dyn Provider>, ConfigError>
where
    C: DeserializeOwned,
    P: Provider + 'static,
{
    let config: C = serde_json::from_value(config)
        .map_err(|e| ConfigError::new(backend_core::config::describe_error(&e)))?;
    Ok(Box::new(new(config)?))
}
