//! Configs for `secret-backend` (backend-multi), built a store at a time:
//! the `backends:` map, `default`, `caller_config`, other top-level keys
//! and `aliases`, written as YAML the way an operator would. For the tests
//! that route handles across stores; a test about how a malformed config is
//! refused writes its YAML by hand.
//!
//! ```
//! # use std::path::Path;
//! let yaml = backend_tests::multi::MultiConfig::new()
//!     .vault("vault", "http://127.0.0.1:8200", Path::new("/run/token"))
//!     .dummy("test")
//!     .default("vault")
//!     .alias("db_password", "vault:secret/db;password")
//!     .yaml();
//! assert_eq!(
//!     yaml,
//!     "backends:\n  vault:\n    type: vault\n    address: http://127.0.0.1:8200\n    \
//!      auth: {token_file: /run/token}\n  test:\n    type: dummy\ndefault: vault\n\
//!      aliases:\n  db_password: \"vault:secret/db;password\"\n"
//! );
//! ```

use std::path::{Path, PathBuf};

/// A `secret-backend` config under construction.
#[derive(Debug, Clone, Default)]
pub struct MultiConfig {
    backends: String,
    top: String,
    aliases: String,
}

impl MultiConfig {
    /// No stores yet.
    pub fn new() -> Self {
        <Self as Default>::default()
    }

    /// A store `name` of type `kind` with `fields`, each written as
    /// `key: value` (the value is YAML as given: a map in flow style).
    pub fn store(mut self, name: &str, kind: &str, fields: &[(&str, &str)]) -> Self {
        self.backends
            .push_str(&format!("  {name}:\n    type: {kind}\n"));
        for (key, value) in fields {
            self.backends.push_str(&format!("    {key}: {value}\n"));
        }
        self
    }

    /// A vault store at `address` logging in with the token in `token_file`.
    pub fn vault(self, name: &str, address: &str, token_file: &Path) -> Self {
        let auth = format!("{{token_file: {}}}", token_file.display());
        self.store(name, "vault", &[("address", address), ("auth", &auth)])
    }

    /// An aws store in `region` at `endpoint_url` (moto, or a proxy).
    pub fn aws(self, name: &str, region: &str, endpoint_url: &str) -> Self {
        self.store(
            name,
            "aws",
            &[("region", region), ("endpoint_url", endpoint_url)],
        )
    }

    /// A file store reading the files of `dir`.
    pub fn files(self, name: &str, dir: &Path) -> Self {
        self.store(name, "file", &[("dir", &dir.display().to_string())])
    }

    /// A dummy store (answers `decrypted_<handle>`).
    pub fn dummy(self, name: &str) -> Self {
        self.store(name, "dummy", &[])
    }

    /// The store of handles without a `<backend>:` prefix.
    pub fn default(self, name: &str) -> Self {
        self.top("default", name)
    }

    /// Whether a request's own config may replace this file (`allow`,
    /// `deny`).
    pub fn caller_config(self, policy: &str) -> Self {
        self.top("caller_config", policy)
    }

    /// Any other top-level `key: value` (YAML as given).
    pub fn top(mut self, key: &str, value: &str) -> Self {
        self.top.push_str(&format!("{key}: {value}\n"));
        self
    }

    /// An alias `name` for `target` (a handle, quoted).
    pub fn alias(mut self, name: &str, target: &str) -> Self {
        let quoted = serde_json::to_string(target).unwrap();
        self.aliases.push_str(&format!("  {name}: {quoted}\n"));
        self
    }

    /// The config's text.
    pub fn yaml(&self) -> String {
        let mut text = format!("backends:\n{}{}", self.backends, self.top);
        if !self.aliases.is_empty() {
            text.push_str("aliases:\n");
            text.push_str(&self.aliases);
        }
        text
    }

    /// Writes the config to `dir/name`, mode 0600; returns the path.
    pub fn write(&self, dir: &Path, name: &str) -> PathBuf {
        crate::files::private_file(dir, name, &self.yaml())
    }
}
