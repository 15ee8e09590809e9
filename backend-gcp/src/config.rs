//! The configuration.
//!
//! [`GcpConfig`] is the YAML file of `secret-backend-gcp --config` and the
//! `config` object of a `gcp.secretmanager` request alike (unknown keys are
//! errors): the Datadog connector's `gcp_session.project_id` and our own
//! keys, so a config moves between the payload and a file unchanged.
//! [`GcpConfig::validate`] checks it once and reads no file: credentials
//! are found at every call ([`crate::credentials`]).

use std::path::PathBuf;

use backend_core::ConfigError;
use serde::Deserialize;

use crate::handle::{is_location, is_project};

/// The global endpoint.
pub const GLOBAL_ENDPOINT: &str = "https://secretmanager.googleapis.com";
/// Default number of secret versions read at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Upper bound for `concurrency`.
pub const MAX_CONCURRENCY: usize = 256;

/// The Datadog connector's session block.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpSession {
    /// The project of handles that name none.
    pub project_id: Option<String>,
}

/// The YAML config of `secret-backend-gcp` (and of a `gcp` or
/// `gcp.secretmanager` store in `secret-backend`). It holds no credential:
/// those are files, or the metadata server.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct GcpConfig {
    /// The connector's key: `gcp_session: {project_id: ...}`.
    pub gcp_session: Option<GcpSession>,
    /// The project of handles that name none (same as
    /// `gcp_session.project_id`); default `$GOOGLE_CLOUD_PROJECT`, else the
    /// service account file's, else the metadata server's.
    pub project_id: Option<String>,
    /// A region: regional secrets through
    /// `https://secretmanager.<location>.rep.googleapis.com`.
    pub location: Option<String>,
    /// The API's URL, overriding the one `location` picks (private service
    /// connect, an emulator).
    pub endpoint: Option<String>,
    /// A credentials JSON file (service account key, authorized user,
    /// external account); default `$GOOGLE_APPLICATION_CREDENTIALS`, then
    /// gcloud's ADC file, then the metadata server.
    pub credentials_file: Option<PathBuf>,
    /// Secret versions read at once (default 16).
    pub concurrency: Option<usize>,
    /// Keep access tokens in this file (0600) and reuse them across calls
    /// while they live ([`crate::cache`]); default: a token per call.
    pub token_cache_file: Option<PathBuf>,
    /// Names that stand for handles ([`backend_core::alias`]).
    pub aliases: backend_core::Aliases,
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The configured (or `$GOOGLE_CLOUD_PROJECT`) project.
    pub project: Option<String>,
    /// The configured location.
    pub location: Option<String>,
    /// The API's base URL, without a trailing slash.
    pub endpoint: String,
    /// The configured credentials file.
    pub credentials_file: Option<PathBuf>,
    /// Versions read at once.
    pub concurrency: usize,
    /// The token cache file, if any.
    pub token_cache_file: Option<PathBuf>,
}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

impl GcpConfig {
    /// Checks the config; `env` reads `GOOGLE_CLOUD_PROJECT`.
    pub fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(bad(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        let session = self.gcp_session.and_then(|s| s.project_id);
        let project = match (self.project_id, session) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(
                    "project_id and gcp_session.project_id differ: set one of them",
                ));
            }
            (Some(p), _) | (None, Some(p)) => Some(p),
            (None, None) => env("GOOGLE_CLOUD_PROJECT").filter(|p| !p.trim().is_empty()),
        };
        // Values are not quoted: a misplaced credential may be one.
        if project.as_ref().is_some_and(|p| !is_project(p)) {
            return Err(bad(
                "the project is not a project id or number (lowercase letters, digits, '-', '.' and ':')",
            ));
        }
        if self.location.as_ref().is_some_and(|l| !is_location(l)) {
            return Err(bad(
                "location is not a region name (lowercase letters, digits and '-', e.g. europe-west4)",
            ));
        }
        let endpoint = match (&self.endpoint, &self.location) {
            (Some(e), _) => endpoint_url(e)?,
            (None, Some(l)) => format!("https://secretmanager.{l}.rep.googleapis.com"),
            (None, None) => GLOBAL_ENDPOINT.to_owned(),
        };
        // An emulator on this host is plain http by nature.
        let loopback = ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|l| {
                endpoint == *l
                    || endpoint.starts_with(&format!("{l}:"))
                    || endpoint.starts_with(&format!("{l}/"))
            });
        if endpoint.starts_with("http://") && !loopback {
            tracing::warn!(
                "the endpoint {endpoint} is plain http: the access token and every secret cross the network in clear"
            );
        }
        Ok(Settings {
            project,
            location: self.location,
            endpoint,
            credentials_file: self.credentials_file,
            concurrency,
            token_cache_file: self.token_cache_file,
        })
    }
}

/// An endpoint URL as it may be used: http(s), a host, no userinfo, query
/// or fragment; without a trailing slash (a path prefix is kept). Errors
/// do not quote it: a misplaced credential may be one.
pub fn endpoint_url(raw: &str) -> Result<String, ConfigError> {
    if raw.contains('@') {
        return Err(bad("endpoint must not carry credentials (user:password@)"));
    }
    let url = reqwest::Url::parse(raw.trim()).map_err(|e| bad(format!("endpoint: {e}")))?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.query().is_some()
        || url.fragment().is_some()
    {
        return Err(bad(
            "endpoint must be an https:// (or http://) URL without query or fragment",
        ));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> GcpConfig {
        backend_core::config::from_yaml(text).unwrap()
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn connector_and_own_keys() {
        let s = yaml("gcp_session:\n  project_id: my-proj\n")
            .validate(&no_env)
            .unwrap();
        assert_eq!(s.project.as_deref(), Some("my-proj"));
        assert_eq!(s.endpoint, GLOBAL_ENDPOINT);
        let s = yaml("project_id: my-proj\ngcp_session: {project_id: my-proj}\n")
            .validate(&no_env)
            .unwrap();
        assert_eq!(s.project.as_deref(), Some("my-proj"));
        assert!(
            yaml("project_id: a-proj\ngcp_session: {project_id: b-proj}\n")
                .validate(&no_env)
                .is_err()
        );
        let s = yaml("location: europe-west4\n").validate(&no_env).unwrap();
        assert_eq!(
            s.endpoint,
            "https://secretmanager.europe-west4.rep.googleapis.com"
        );
        let s = yaml("location: europe-west4\nendpoint: http://127.0.0.1:8080/\n")
            .validate(&no_env)
            .unwrap();
        assert_eq!(s.endpoint, "http://127.0.0.1:8080");
        let s = GcpConfig::default()
            .validate(&|k| (k == "GOOGLE_CLOUD_PROJECT").then(|| "env-proj".to_owned()))
            .unwrap();
        assert_eq!(s.project.as_deref(), Some("env-proj"));
        assert_eq!(s.concurrency, DEFAULT_CONCURRENCY);
    }

    #[test]
    fn bad_values_are_refused_without_quoting_credentials() {
        assert!(backend_core::config::from_yaml::<GcpConfig>("projectid: x\n").is_err());
        assert!(
            backend_core::config::from_yaml::<GcpConfig>("gcp_session: {region: x}\n").is_err()
        );
        for text in [
            "concurrency: 0\n",
            "project_id: My_Proj\n",
            "location: 'eu west'\n",
            "endpoint: ftp://h\n",
            "endpoint: https://h/?q=1\n",
            "endpoint: https://u:PW-1@h\n",
        ] {
            let e = yaml(text).validate(&no_env).unwrap_err().to_string();
            assert!(!e.contains("PW-1"), "{e}");
        }
    }
}
