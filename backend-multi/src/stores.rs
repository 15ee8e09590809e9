//! The stores `secret-backend` serves: one table, [`STORES`].
//!
//! Each entry is a store's [`Provider`] type, its type name and the
//! payload type names of the Datadog connector that it serves. Everything
//! else is derived from the table: the type names a config accepts, the
//! build, the handle check, the connector names a request may carry, the
//! messages that list them. Each entry deserializes exactly that store's
//! own config type (the one its single-store binary reads from
//! `--config`), so a store has one schema wherever it is used. Adding a
//! store is one line in [`STORES`] (and, only where the connector's keys
//! differ from the store's, a translation in [`crate::connectors`]).

use backend_core::{ConfigError, HandleError, Provider, Resolver};
use serde_json::Value;

/// A store's build: its config deserialized and, when asked, the store.
type Build = fn(Value, bool) -> Result<Option<Box<dyn Resolver>>, ConfigError>;

/// One store the binary serves.
#[derive(Debug)]
pub struct Store {
    /// Our type name, after `type:` in the config (and a request's `type`).
    pub name: &'static str,
    /// The connector's type names a request's `type` may carry for it.
    pub connectors: &'static [&'static str],
    /// Deserializes the store's config and, when asked, builds it.
    build: Build,
    /// The store's handle check, its config read once.
    checker: fn(&Value) -> Checker,
}

/// The entry of store `P`.
const fn store<P: Provider>(name: &'static str, connectors: &'static [&'static str]) -> Store {
    Store {
        name,
        connectors,
        build: typed::<P>,
        checker: checker_of::<P>,
    }
}

/// Every store, in the order `--help` and messages list them.
pub const STORES: &[Store] = &[
    store::<backend_vault::VaultProvider>("vault", &["hashicorp.vault"]),
    store::<backend_aws::AwsProvider>("aws", &["aws.secrets", "aws.ssm"]),
    store::<backend_file::FileProvider>(
        "file",
        &[
            "file.json",
            "file.yaml",
            "file.text",
            "docker.secrets",
            "k8s.file",
        ],
    ),
    store::<backend_k8s::K8sProvider>("k8s", &["k8s.secrets"]),
    store::<backend_gcp::GcpProvider>("gcp", &["gcp.secretmanager"]),
    store::<backend_azure::AzureProvider>("azure", &["azure.keyvault"]),
    store::<backend_dummy::Dummy>("dummy", &[]),
];

/// The store named `name`.
pub fn find(name: &str) -> Option<&'static Store> {
    STORES.iter().find(|s| s.name == name)
}

/// The store that serves the connector type `name`.
pub fn by_connector(name: &str) -> Option<&'static Store> {
    STORES.iter().find(|s| s.connectors.contains(&name))
}

/// Our type names, comma-separated, for messages.
pub fn names() -> String {
    let names: Vec<&str> = STORES.iter().map(|s| s.name).collect();
    names.join(", ")
}

/// The connector type names, comma-separated, for messages.
pub fn connector_names() -> String {
    let names: Vec<&str> = STORES.iter().flat_map(|s| s.connectors).copied().collect();
    names.join(", ")
}

/// Takes `type` out of a backend's config map.
pub fn split_type(value: Value) -> Result<(String, Value), ConfigError> {
    let Value::Object(mut map) = value else {
        return Err(ConfigError::new("must be a map with a 'type' key"));
    };
    match map.remove("type") {
        Some(Value::String(t)) => Ok((t, Value::Object(map))),
        Some(_) => Err(ConfigError::new("'type' must be a string")),
        None => Err(ConfigError::new(format!("no 'type' (one of: {})", names()))),
    }
}

/// Builds a provider of store `kind` from its config. Providers touch no
/// network here (logins happen on their first call), but may read their
/// credential files.
pub fn build(kind: &str, config: Value) -> Result<Box<dyn Resolver>, ConfigError> {
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
/// ([`Provider::check_handle`]), its config read once. A config that does
/// not deserialize checks nothing (it is refused elsewhere).
pub fn checker(kind: &str, config: &Value) -> Checker {
    match find(kind) {
        Some(store) => (store.checker)(config),
        None => Box::new(|_| Ok(())),
    }
}

fn checker_of<P: Provider>(config: &Value) -> Checker {
    match backend_core::lenient::from_value::<P::Config>(config.clone()) {
        Ok(config) => Box::new(move |handle| P::check_handle(&config, handle)),
        Err(_) => Box::new(|_| Ok(())),
    }
}

fn dispatch(
    kind: &str,
    config: Value,
    build: bool,
) -> Result<Option<Box<dyn Resolver>>, ConfigError> {
    match find(kind) {
        Some(store) => (store.build)(config, build),
        // Not quoted: a config error shows no value, whatever it holds.
        None => Err(ConfigError::new(format!(
            "unknown type (expected one of: {})",
            names()
        ))),
    }
}

/// Deserializes `P`'s config from `config` and, if `build`, builds `P`
/// with its default flags.
fn typed<P: Provider>(
    config: Value,
    build: bool,
) -> Result<Option<Box<dyn Resolver>>, ConfigError> {
    // Strings take scalars as their text, as in the store's own binary.
    let config: P::Config = backend_core::lenient::from_value(config)
        .map_err(|e| ConfigError::new(backend_core::config::describe_error(&e)))?;
    if !build {
        return Ok(None);
    }
    let request = backend_core::protocol::Request::default();
    Ok(Some(Box::new(P::build(
        config,
        P::Args::default(),
        &request,
    )?)))
}
