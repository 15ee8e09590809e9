//! backend-azure: secrets from Azure Key Vault.
//!
//! A handle is `<name>`, `<name>;<key>` or `<name>?version=<id>[;<key>]`
//! ([`handle`]). One call goes:
//!
//! 1. parse every handle; invalid names, versions and keys are answered
//!    before anything is sent;
//! 2. get one access token for the Key Vault resource from the identity
//!    chosen when the config was read ([`config`], [`token`]): a service
//!    principal's secret or certificate, workload identity, or a managed
//!    identity; files are read afresh, so a rotated federated token or
//!    certificate is used; a failure there is every handle's error, naming
//!    the identity tried; with `token_cache_file`, a live token of the same
//!    identity kept by an earlier call is used instead ([`cache`]), and
//!    forgotten if Key Vault refuses it;
//! 3. group the handles by (name, version) and `GET` each distinct secret
//!    once ([`api`]), at most `concurrency` at once, each bounded by the
//!    call's deadline;
//! 4. answer each handle from its secret: the value as it is, or with a
//!    key, the value read as JSON (a JSON string holding JSON is read
//!    once more, as the Datadog connector does) and the key looked up with
//!    the shared key rules ([`backend_core::key`]).
//!
//! All HTTP goes through the shared network layer ([`backend_net`], set
//! up in [`http`]).

pub mod api;
pub mod assertion;
pub mod cache;
pub mod config;
pub mod handle;
pub mod http;
pub mod protected;
pub mod token;

use backend_core::key::{extract, wipe};
use backend_core::protocol::Request;
use backend_core::{
    ConfigError, Context, ErrorKind, HandleError, NoArgs, Outcome, Provider, bounded, fan_out,
};
use serde_json::Value;

pub use config::{AzureConfig, Settings};

use crate::api::{Bundle, Vault};
use crate::handle::Handle;

/// The Azure Key Vault provider.
#[derive(Debug)]
pub struct AzureProvider {
    settings: Settings,
}

impl AzureProvider {
    /// Builds the provider from `config` and the process environment
    /// (`AZURE_*`, `IDENTITY_*`, `MSI_*`). Reads no file.
    pub fn new(config: AzureConfig) -> Result<Self, ConfigError> {
        Self::with_env(config, &|k| std::env::var(k).ok())
    }

    /// Builds the provider from `config` and the environment `env` reads
    /// (for tests and embedders that do not use the process's).
    pub fn with_env(
        config: AzureConfig,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let settings = config.validate(env)?;
        tracing::debug!("identity: {}", settings.identity.describe());
        Ok(Self { settings })
    }

    /// Every valid handle's error is `why` (prefixed by its location);
    /// invalid handles keep their own.
    fn all_fail(
        &self,
        parsed: Vec<Result<Handle<'_>, HandleError>>,
        kind: ErrorKind,
        why: &str,
    ) -> Vec<Outcome> {
        parsed
            .into_iter()
            .map(|p| {
                let h = p?;
                Err(HandleError::new(
                    kind,
                    format!("{}/{}: {why}", self.settings.vault_name, h.name),
                ))
            })
            .collect()
    }
}

/// The handle's value out of its secret.
fn value(bundle: &Bundle, h: &Handle<'_>, loc: &str) -> Outcome {
    let Some(key) = h.key else {
        return Ok(bundle.value.clone());
    };
    let not_json = || {
        HandleError::invalid_handle(format!(
            "{loc}: the secret's value is not a JSON object, so it has no key '{}'; drop ';{}' to read the whole value",
            key.escape_debug(),
            key.escape_debug()
        ))
    };
    let mut doc: Value = serde_json::from_str(bundle.value.expose()).map_err(|_| not_json())?;
    // A JSON object stored as an escaped JSON string (as some tools write
    // it) is read once more, as the Datadog connector does.
    if let Value::String(inner) = &doc
        && let Ok(again) = serde_json::from_str::<Value>(inner)
    {
        wipe(&mut doc);
        doc = again;
    }
    if !(doc.is_object() || doc.is_array() && key.starts_with('/')) {
        wipe(&mut doc);
        return Err(not_json());
    }
    let found = extract(&doc, key, loc);
    wipe(&mut doc);
    found
}

impl Provider for AzureProvider {
    const ABOUT: backend_core::About = backend_core::about!(
        "secret-backend-azure",
        "Secret backend for Azure Key Vault: handles are <name>, <name>;<key> or <name>?version=<id>."
    );
    type Config = AzureConfig;
    type Args = NoArgs;

    fn build(config: AzureConfig, _: NoArgs, _: &Request) -> Result<Self, ConfigError> {
        Self::new(config)
    }

    async fn resolve(&self, handles: &[String], ctx: &Context) -> Vec<Outcome> {
        let parsed: Vec<Result<Handle<'_>, HandleError>> =
            handles.iter().map(|h| handle::parse(h)).collect();
        if let Some(errors) = backend_core::none_parsed(&parsed) {
            return errors;
        }
        let s = &self.settings;
        let http = match http::client(s) {
            Ok(h) => h,
            Err(why) => return self.all_fail(parsed, ErrorKind::Other, &why),
        };
        let issued = match ctx
            .within(token::token(s, &http, &s.arc_token_dir, ctx))
            .await
        {
            Ok(Ok(t)) => t,
            Ok(Err(token::Failed(kind, why))) => return self.all_fail(parsed, kind, &why),
            Err(timed_out) => {
                let why = format!(
                    "{}: {} (getting a token)",
                    s.identity.describe(),
                    timed_out.message()
                );
                return self.all_fail(parsed, ErrorKind::TimedOut, &why);
            }
        };
        let vault = match Vault::new(
            &http,
            &s.vault_url,
            &s.vault_name,
            &issued.token,
            s.identity.describe(),
            s.allow_expired,
        ) {
            Ok(v) => v,
            Err(why) => return self.all_fail(parsed, ErrorKind::Other, &why),
        };
        let vault = &vault;
        let outcomes = fan_out(
            &parsed,
            |h| (h.name, h.version),
            |targets| async move {
                tracing::debug!("reading {} secret(s)", targets.len());
                bounded(&targets, s.concurrency, ctx, |(name, version)| {
                    vault.secret(name, *version, ctx)
                })
                .await
            },
            |h, bundle| match bundle {
                Ok(b) => value(&b, h, &vault.location(h.name, h.version)),
                Err(e) if e.kind() == ErrorKind::TimedOut => {
                    Err(e.clone().context(vault.location(h.name, h.version)))
                }
                Err(e) => Err(e.clone()),
            },
        )
        .await;
        if vault.refused()
            && let Some(file) = &s.token_cache_file
        {
            tracing::warn!(
                "Key Vault refused the {} access token; forgetting the token cache {}",
                if issued.cached { "cached" } else { "new" },
                file.display()
            );
            cache::forget(file);
        }
        outcomes
    }

    /// The workload identity's federated token file; the other
    /// credentials (client secret, certificate password, `IDENTITY_HEADER`,
    /// `MSI_SECRET`) are held from the build on.
    fn hold_credentials(&self) {
        token::hold(&self.settings);
    }

    fn aliases(config: &AzureConfig) -> Option<&backend_core::Aliases> {
        Some(&config.aliases)
    }

    fn check_handle(_: &AzureConfig, handle: &str) -> Result<(), HandleError> {
        handle::parse(handle).map(drop)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(value: &str, key: Option<&str>) -> Outcome {
        let b = Bundle {
            value: backend_core::Secret::from(value),
        };
        let h = Handle {
            name: "db",
            version: None,
            key,
        };
        value_of(&b, &h)
    }

    fn value_of(b: &Bundle, h: &Handle<'_>) -> Outcome {
        value(b, h, "kv/db")
    }

    #[test]
    fn keys_read_json_values() {
        assert_eq!(get("plain", None).unwrap().expose(), "plain");
        let doc = r#"{"user":"u1","port":5432,"nested":{"pw":"p1"}}"#;
        assert_eq!(get(doc, Some("user")).unwrap().expose(), "u1");
        assert_eq!(get(doc, Some("port")).unwrap().expose(), "5432");
        assert_eq!(get(doc, Some("/nested/pw")).unwrap().expose(), "p1");
        let e = get(doc, Some("nope")).unwrap_err();
        assert!(
            e.message().starts_with("kv/db: no key 'nope'") && !e.message().contains("u1"),
            "{e}"
        );
        let escaped = serde_json::to_string(doc).unwrap();
        assert_eq!(get(&escaped, Some("user")).unwrap().expose(), "u1");
        let e = get("not-json-s3cr3t", Some("user")).unwrap_err();
        assert!(
            e.message().contains("not a JSON object") && !e.message().contains("s3cr3t"),
            "{e}"
        );
        assert!(get("[1,2]", Some("k")).is_err());
        assert_eq!(get("[\"a\",\"b\"]", Some("/1")).unwrap().expose(), "b");
    }
}
