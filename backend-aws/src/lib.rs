//! Secret backend for AWS Secrets Manager and SSM Parameter Store.
//!
//! One call resolves a batch of handles ([`handle`] has the grammar):
//! handles are grouped by what they fetch (secret and version, or
//! parameter), each distinct target is fetched once ([`fetch`]: batched with
//! `BatchGetSecretValue` and `GetParameters`, concurrent, bounded), and keys
//! are taken from the fetched JSON by the core's key rules. Region and
//! credentials are loaded once per call, under the deadline
//! ([`credentials`], then the clients in [`client`]), so a host without
//! credentials answers every handle quickly with the reason instead of
//! hanging on the instance metadata service. [`credentials::load`] is that
//! same loading for other crates: `secret-backend-vault`'s `aws` login
//! signs with the credentials it finds.
//!
//! [`AwsProvider::new`] validates the config and touches nothing else; all
//! network work happens in `resolve`, bounded by the call's deadline.

pub mod api;
pub mod chain;
pub mod client;
pub mod config;
pub mod credentials;
pub mod errors;
pub mod fetch;
pub mod files;
pub mod handle;
pub mod profile;
pub mod sts;

use std::collections::HashMap;

use backend_core::protocol::Request;
use backend_core::{ConfigError, Context, HandleError, Outcome, Provider, Secret, fan_out};
use serde_json::Value;
use tokio::sync::OnceCell;

pub use crate::config::{AwsArgs, AwsConfig};
use crate::handle::{Handle, Target};

/// The AWS provider: Secrets Manager and SSM Parameter Store.
#[derive(Debug)]
pub struct AwsProvider {
    config: AwsConfig,
    /// Clients once loaded; a failed load is retried on the next call.
    clients: OnceCell<client::Clients>,
}

impl AwsProvider {
    /// Validates `config` and [holds](backend_core::secret::hold) the
    /// credentials it carries; no network, no async.
    pub fn new(config: AwsConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        Ok(Self {
            config,
            clients: OnceCell::new(),
        })
    }

    /// The validated configuration.
    pub fn config(&self) -> &AwsConfig {
        &self.config
    }

    /// Fetches each distinct target once, after loading the clients (once
    /// per provider; a failed load is every target's error).
    async fn fetch(&self, targets: &[&Target], ctx: &Context) -> Vec<fetch::Fetched> {
        if targets.is_empty() {
            return Vec::new();
        }
        let loaded = self
            .clients
            .get_or_try_init(|| client::load(&self.config, ctx))
            .await;
        match loaded {
            Ok(clients) => {
                fetch::fetch_all(
                    clients,
                    targets,
                    ctx,
                    self.config.concurrency(),
                    self.config.batch_get.unwrap_or(true),
                )
                .await
            }
            Err(e) => targets
                .iter()
                .map(|t| Err(e.clone().context(t.location())))
                .collect(),
        }
    }
}

/// With `force_string`, Secrets Manager handles ignore their key.
fn whole_if(force_string: bool, mut h: Handle) -> Handle {
    if force_string && matches!(h.target, Target::Secret { .. }) {
        h.key = None;
    }
    h
}

/// A key was asked of a value that is not JSON (the message never quotes it).
fn not_json(target: &Target, key: &str) -> HandleError {
    let what = match target {
        Target::Secret { .. } => "secret",
        Target::Parameter(_) => "parameter",
    };
    HandleError::not_found(format!(
        "{}: no key '{key}': the {what} is not JSON (drop ';{key}' for the whole value)",
        target.location()
    ))
}

impl Provider for AwsProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-aws",
        "Secret backend for AWS Secrets Manager and SSM Parameter Store."
    );
    type Config = AwsConfig;
    type Args = AwsArgs;

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        let force_string = self.config.force_string.unwrap_or(false);
        let whole_if_not_json = self.config.whole_if_not_json.unwrap_or(false);
        let parsed: Vec<Result<Handle, HandleError>> = handles
            .iter()
            .map(|h| handle::parse(h).map(|h| whole_if(force_string, h)))
            .collect();
        // Each value is parsed once, on the first handle asking a key of it:
        // the documents by the address of the value they were parsed from
        // (stable while the fetched values are fanned out), kept only for
        // values some handle asks a key of.
        let mut docs: HashMap<usize, Option<Value>> = HashMap::new();
        let outcomes = fan_out(
            &parsed,
            |h| &h.target,
            |targets| async move { self.fetch(&targets, ctx).await },
            |h, fetched| {
                let value = fetched.map_err(Clone::clone)?;
                let Some(key) = &h.key else {
                    return Ok(value.take());
                };
                let doc = docs
                    .entry(std::ptr::from_ref::<Secret>(&value) as usize)
                    .or_insert_with(|| serde_json::from_str(value.expose()).ok());
                match doc {
                    Some(doc) => backend_core::key::extract(doc, key, &h.target.location()),
                    None if whole_if_not_json && matches!(h.target, Target::Secret { .. }) => {
                        Ok(value.take())
                    }
                    None => Err(not_json(&h.target, key)),
                }
            },
        )
        .await;
        // The documents held the values: cleared before they drop.
        for doc in docs.values_mut().flatten() {
            backend_core::key::wipe(doc);
        }
        outcomes
    }

    /// The config is flat: the event reader (about 0.4 MB less than
    /// serde-saphyr in this binary).
    fn load_config(path: &std::path::Path) -> Result<AwsConfig, ConfigError> {
        backend_core::config::load_flat(path)
    }

    /// The shared config and credentials files and the token files of
    /// the credential chain ([`files::SdkFiles::read`] holds what it
    /// reads); the environment's keys are held there too.
    fn hold_credentials(&self) {
        let _ = files::SdkFiles::read();
    }

    fn aliases(config: &AwsConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    fn check_handle(_: &AwsConfig, handle: &str) -> Result<(), HandleError> {
        handle::parse(handle).map(drop)
    }

    fn build(config: AwsConfig, args: AwsArgs, _: &Request) -> Result<AwsProvider, ConfigError> {
        AwsProvider::new(config.with_args(args))
    }
}
