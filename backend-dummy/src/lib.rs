//! The dummy backend: every handle resolves to `decrypted_` + the handle.
//!
//! It is the example from StackState's secrets-management docs, and the
//! smallest complete provider: useful to check an agent's wiring (rights,
//! arguments, timeout) before a real store is involved, and as the floor in
//! benchmarks. Its config holds only `aliases:` ([`config`]): an alias
//! resolves to `decrypted_` + its target.

pub mod config;

use backend_core::{Aliases, ConfigError, Context, Outcome, Provider, Secret};
use serde::Deserialize;

/// The prefix every value gets.
pub const PREFIX: &str = "decrypted_";

/// The dummy provider.
#[derive(Debug, Default, Clone, Copy)]
pub struct Dummy {
    /// `--stall`: how long each call blocks its thread before answering.
    stall: Option<std::time::Duration>,
}

/// The dummy's config: aliases only.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DummyConfig {
    /// Names that stand for handles ([`backend_core::alias`]).
    #[serde(default)]
    pub aliases: Aliases,
}

/// The dummy's one flag.
#[derive(Debug, Default, clap::Args)]
pub struct DummyArgs {
    /// Block the whole process for SECONDS before answering, as a store
    /// that hangs would: to see what the agent logs when its backend times
    /// out (the reply then says "timed out" for every handle, at the
    /// deadline).
    #[arg(long, value_name = "SECONDS")]
    pub stall: Option<f64>,
}

impl Provider for Dummy {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-dummy",
        "Secret backend for tests: every handle resolves to \"decrypted_\" + handle."
    );
    const NETWORK: bool = false;
    type Config = DummyConfig;
    type Args = DummyArgs;

    async fn resolve(&self, handles: &[String], _ctx: &Context) -> Vec<Outcome> {
        if let Some(stall) = self.stall {
            // Deliberately blocking: no timer of the runtime can end it.
            std::thread::sleep(stall);
        }
        handles
            .iter()
            .map(|h| Ok(Secret::new(format!("{PREFIX}{h}"))))
            .collect()
    }

    /// The dummy's config holds only `aliases:`, read by [`config::parse`]
    /// rather than a YAML parser, which would grow the binary.
    fn load_config(path: &std::path::Path) -> Result<DummyConfig, ConfigError> {
        let text = backend_core::config::read_guarded(
            path,
            "config file",
            backend_core::config::MAX_CONFIG_BYTES,
        )?;
        config::parse(&text)
            .map(|aliases| DummyConfig { aliases })
            .map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))
    }

    fn aliases(config: &DummyConfig) -> Option<&Aliases> {
        Some(&config.aliases)
    }

    fn build(
        _: DummyConfig,
        args: DummyArgs,
        _: &backend_core::protocol::Request,
    ) -> Result<Dummy, ConfigError> {
        let stall = match args.stall {
            None => None,
            Some(s) if s.is_finite() && (0.0..=3600.0).contains(&s) => {
                Some(std::time::Duration::from_secs_f64(s))
            }
            Some(_) => {
                return Err(ConfigError::new(
                    "--stall must be between 0 and 3600 seconds",
                ));
            }
        };
        Ok(Dummy { stall })
    }
}

#[cfg(test)]
mod tests {
    use backend_core::testkit::{Cases, check};

    use super::*;

    #[tokio::test]
    async fn conformance() {
        // Every handle exists in the dummy's store, so there is nothing missing.
        let found = ["db_prod_user", "db_prod_password", "]]]", ""]
            .iter()
            .map(|h| (h.to_string(), format!("{PREFIX}{h}")))
            .collect();
        check(
            &Dummy::default(),
            &Cases {
                found,
                missing: vec![],
                budget: None,
            },
        )
        .await;
    }
}
