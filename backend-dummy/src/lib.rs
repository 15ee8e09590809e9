//! The dummy backend: every handle resolves to `decrypted_` + the handle.
//!
//! It is the example from StackState's secrets-management docs, and the
//! smallest complete provider: useful to check an agent's wiring (rights,
//! arguments, timeout) before a real store is involved, and as the floor in
//! benchmarks. It has no configuration.

use backend_core::runner::Backend;
use backend_core::{BoxFuture, ConfigError, Context, Outcome, Provider, Secret};
use serde::Deserialize;

/// The prefix every value gets.
pub const PREFIX: &str = "decrypted_";

/// The dummy provider.
#[derive(Debug, Default, Clone, Copy)]
pub struct Dummy;

/// The dummy takes no configuration: a config file must be empty.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DummyConfig {}

/// The dummy has no flags of its own.
#[derive(Debug, clap::Args)]
pub struct DummyArgs {}

impl Provider for Dummy {
    fn resolve<'a>(
        &'a self,
        handles: &'a [String],
        _ctx: &'a Context,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        let values = handles
            .iter()
            .map(|h| Ok(Secret::new(format!("{PREFIX}{h}"))))
            .collect();
        Box::pin(std::future::ready(values))
    }
}

impl Backend for Dummy {
    const BINARY: &'static str = "secret-backend-dummy";
    const NETWORK: bool = false;
    const VERSION: &'static str = env!("CARGO_PKG_VERSION");
    const ABOUT: &'static str =
        "Secret backend for tests: every handle resolves to \"decrypted_\" + handle.";
    type Config = DummyConfig;
    type Args = DummyArgs;
    type Provider = Dummy;

    /// The dummy takes no configuration: the file may hold only blank lines
    /// and comments. Not parsing YAML keeps the parser out of the binary.
    fn load_config(path: &std::path::Path) -> Result<DummyConfig, ConfigError> {
        let text = backend_core::config::read_guarded(path, "config file", 64 * 1024)?;
        let empty = text
            .lines()
            .map(str::trim)
            .all(|l| l.is_empty() || l.starts_with('#') || l == "---");
        if empty {
            Ok(DummyConfig {})
        } else {
            Err(ConfigError::new(format!(
                "config file {}: the dummy backend takes no configuration",
                path.display()
            )))
        }
    }

    fn build(
        _: DummyConfig,
        _: DummyArgs,
        _: &backend_core::protocol::Request,
    ) -> Result<Dummy, ConfigError> {
        Ok(Dummy)
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
            &Dummy,
            &Cases {
                found,
                missing: vec![],
                budget: None,
            },
        )
        .await;
    }
}
