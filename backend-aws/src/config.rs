//! The backend's configuration: the YAML schema, its flags, and validation.
//!
//! Everything is optional: with an empty config the SDK's own defaults apply
//! (the `AWS_*` environment variables, shared profiles, web identity, ECS,
//! instance metadata). The same [`AwsConfig`] is what a multi-store binary
//! would embed, so it is plain data with public fields, checked once by
//! [`AwsConfig::validate`] (no network, no async).

use std::fmt;

use backend_core::{ConfigError, Credential};
use serde::Deserialize;

/// Default number of requests in flight at once.
pub const DEFAULT_CONCURRENCY: usize = 8;
/// Most requests in flight at once that a config may ask for.
pub const MAX_CONCURRENCY: usize = 64;

/// The YAML config of `secret-backend-aws` (every key optional).
#[derive(Clone, Default, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct AwsConfig {
    /// AWS region (else `AWS_REGION`, `AWS_DEFAULT_REGION`, the profile,
    /// instance metadata).
    pub region: Option<String>,
    /// Shared-config profile (else `AWS_PROFILE`, else `default`).
    pub profile: Option<String>,
    /// Role to assume with STS, on top of the credentials found.
    pub role_arn: Option<String>,
    /// External id for the assumed role (treated as a credential).
    pub external_id: Option<Credential>,
    /// Session name for the assumed role (default `secret-backend-aws`).
    pub session_name: Option<String>,
    /// Endpoint for every service (else `AWS_ENDPOINT_URL`,
    /// `AWS_ENDPOINT_URL_SECRETS_MANAGER`, `AWS_ENDPOINT_URL_SSM`).
    pub endpoint_url: Option<String>,
    /// Requests in flight at once (default 8, at most 64).
    pub concurrency: Option<usize>,
    /// Use `BatchGetSecretValue` for current versions (default true). Set
    /// false when the policy does not allow it, to save the refused request.
    pub batch_get: Option<bool>,
    /// Static access key id (with `secret_access_key`), instead of the
    /// default chain. Prefer the chain: keys in a file are long-lived.
    pub access_key_id: Option<String>,
    /// Static secret access key (never logged).
    pub secret_access_key: Option<Credential>,
    /// Session token of temporary static keys (never logged).
    pub session_token: Option<Credential>,
    /// Ignore keys: every Secrets Manager handle gets the whole secret
    /// string (the Datadog `aws.secrets` connector's `force_string`).
    pub force_string: Option<bool>,
    /// A Secrets Manager handle with a key, on a secret that is not JSON,
    /// gets the whole string instead of an error (the Datadog
    /// `aws.secrets` connector's reading, which `secret-backend` applies
    /// when a caller chooses that connector).
    pub whole_if_not_json: Option<bool>,
    /// Names that stand for handles ([`backend_core::alias`]).
    #[serde(default)]
    pub aliases: backend_core::Aliases,
}

impl fmt::Debug for AwsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsConfig")
            .field("region", &self.region)
            .field("profile", &self.profile)
            .field("role_arn", &self.role_arn)
            .field("external_id", &self.external_id)
            .field("session_name", &self.session_name)
            .field(
                "endpoint_url",
                &self.endpoint_url.as_deref().map(backend_core::redact::url),
            )
            .field("concurrency", &self.concurrency)
            .field("batch_get", &self.batch_get)
            .field("access_key_id", &self.access_key_id)
            .field("secret_access_key", &self.secret_access_key)
            .field("session_token", &self.session_token)
            .field("force_string", &self.force_string)
            .field("whole_if_not_json", &self.whole_if_not_json)
            .field("aliases", &self.aliases)
            .finish()
    }
}

/// Flags of `secret-backend-aws`; each wins over the same config key.
#[derive(Debug, Default, clap::Args)]
pub struct AwsArgs {
    /// AWS region [config: region].
    #[arg(long, value_name = "REGION")]
    pub region: Option<String>,
    /// Shared-config profile [config: profile].
    #[arg(long, value_name = "NAME")]
    pub profile: Option<String>,
    /// Role to assume with STS [config: role_arn].
    #[arg(long, value_name = "ARN")]
    pub role_arn: Option<String>,
    /// Endpoint URL for Secrets Manager, SSM and STS [config: endpoint_url].
    #[arg(long, value_name = "URL")]
    pub endpoint_url: Option<String>,
}

impl AwsConfig {
    /// The config with the flags that were given laid over it.
    #[must_use]
    pub fn with_args(mut self, args: AwsArgs) -> Self {
        let AwsArgs {
            region,
            profile,
            role_arn,
            endpoint_url,
        } = args;
        self.region = region.or(self.region);
        self.profile = profile.or(self.profile);
        self.role_arn = role_arn.or(self.role_arn);
        self.endpoint_url = endpoint_url.or(self.endpoint_url);
        self
    }

    /// The credentials the config carries: the secret access key, the
    /// session token and the external id (the key id is not secret).
    pub fn credentials(&self) -> impl Iterator<Item = &str> {
        [
            &self.secret_access_key,
            &self.session_token,
            &self.external_id,
        ]
        .into_iter()
        .filter_map(|c| c.as_ref().map(Credential::expose))
    }

    /// Requests in flight at once.
    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY)
    }

    /// Checks every value without touching the network.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if let Some(r) = &self.region {
            check_token("region", r, 64)?;
        }
        if let Some(p) = &self.profile {
            check_token("profile", p, 256)?;
        }
        if let Some(arn) = &self.role_arn {
            check_token("role_arn", arn, 2048)?;
            if !arn.starts_with("arn:") || !arn.contains(":role/") {
                return Err(ConfigError::new(format!(
                    "role_arn '{arn}' is not a role ARN (arn:aws:iam::<account>:role/<name>)"
                )));
            }
        } else if self.external_id.is_some() || self.session_name.is_some() {
            return Err(ConfigError::new(
                "external_id and session_name need role_arn",
            ));
        }
        if let Some(id) = &self.external_id
            && !(2..=1224).contains(&id.expose().len())
        {
            return Err(ConfigError::new("external_id must be 2 to 1224 characters"));
        }
        if let Some(name) = &self.session_name {
            let ok = (2..=64).contains(&name.len())
                && name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "+=,.@-_".contains(c));
            if !ok {
                return Err(ConfigError::new(format!(
                    "session_name '{name}' must be 2 to 64 characters of letters, digits and +=,.@-_"
                )));
            }
        }
        if let Some(url) = &self.endpoint_url {
            check_token("endpoint_url", url, 2048)?;
            // AWS signs its requests: a password in the URL has no use, and
            // would travel in every error of a transport that quotes URLs.
            if url.contains('@') {
                return Err(ConfigError::new(format!(
                    "endpoint_url '{}' must not hold user:password@",
                    backend_core::redact::url(url)
                )));
            }
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(ConfigError::new(format!(
                    "endpoint_url '{}' must start with https:// (or http://)",
                    backend_core::redact::url(url)
                )));
            }
        }
        match (&self.access_key_id, &self.secret_access_key) {
            (Some(id), Some(_)) => check_token("access_key_id", id, 128)?,
            (None, None) if self.session_token.is_some() => {
                return Err(ConfigError::new(
                    "session_token needs access_key_id and secret_access_key",
                ));
            }
            (None, None) => {}
            _ => {
                return Err(ConfigError::new(
                    "access_key_id and secret_access_key go together",
                ));
            }
        }
        match self.concurrency {
            Some(n) if !(1..=MAX_CONCURRENCY).contains(&n) => Err(ConfigError::new(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}, not {n}"
            ))),
            _ => Ok(()),
        }
    }
}

fn check_token(name: &str, value: &str, max: usize) -> Result<(), ConfigError> {
    if value.is_empty() || value.len() > max {
        return Err(ConfigError::new(format!(
            "{name} must be 1 to {max} characters"
        )));
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(ConfigError::new(format!(
            "{name} must not contain spaces or control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Result<AwsConfig, String> {
        backend_core::yaml::from_yaml(text)
    }

    #[test]
    fn parses_every_key_and_refuses_typos() {
        let c = yaml(
            "region: eu-west-1\nprofile: p\nrole_arn: arn:aws:iam::1:role/r\n\
             external_id: ext-123\nsession_name: agent\nendpoint_url: http://localhost:1\n\
             concurrency: 4\nbatch_get: false\n",
        )
        .unwrap();
        assert_eq!(c.region.as_deref(), Some("eu-west-1"));
        assert_eq!(c.concurrency(), 4);
        assert_eq!(c.batch_get, Some(false));
        c.validate().unwrap();
        assert!(yaml("regoin: x\n").unwrap_err().contains("regoin"));
    }

    #[test]
    fn debug_redacts_the_external_id() {
        let c = AwsConfig {
            role_arn: Some("arn:aws:iam::1:role/r".into()),
            external_id: Some(Credential::new("very-secret-ext".into())),
            access_key_id: Some("AKIAEXAMPLE".into()),
            secret_access_key: Some(Credential::new("very-secret-key".into())),
            session_token: Some(Credential::new("very-secret-token".into())),
            ..AwsConfig::default()
        };
        let shown = format!("{c:?}");
        for s in ["very-secret-ext", "very-secret-key", "very-secret-token"] {
            assert!(!shown.contains(s), "{shown}");
        }
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn validation() {
        let bad = [
            AwsConfig {
                concurrency: Some(0),
                ..AwsConfig::default()
            },
            AwsConfig {
                concurrency: Some(1000),
                ..AwsConfig::default()
            },
            AwsConfig {
                endpoint_url: Some("localhost:4566".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                endpoint_url: Some("http://u:p@localhost:4566".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                role_arn: Some("my-role".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                external_id: Some(Credential::new("x1".into())),
                ..AwsConfig::default()
            },
            AwsConfig {
                role_arn: Some("arn:aws:iam::1:role/r".into()),
                session_name: Some("has space".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                region: Some("".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                access_key_id: Some("AKIA".into()),
                ..AwsConfig::default()
            },
            AwsConfig {
                session_token: Some(Credential::new("t".into())),
                ..AwsConfig::default()
            },
        ];
        for c in bad {
            assert!(c.validate().is_err(), "{c:?}");
        }
        AwsConfig::default().validate().unwrap();
    }

    #[test]
    fn flags_win() {
        let c = AwsConfig {
            region: Some("a".into()),
            profile: Some("p".into()),
            ..AwsConfig::default()
        }
        .with_args(AwsArgs {
            region: Some("b".into()),
            ..AwsArgs::default()
        });
        assert_eq!(c.region.as_deref(), Some("b"));
        assert_eq!(c.profile.as_deref(), Some("p"));
    }
}
