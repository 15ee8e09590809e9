//! The configuration and where the API server is.
//!
//! [`K8sConfig`] is the YAML file (unknown keys are errors). Its keys
//! `api_server`, `token_path` and `ca_path` are the Datadog connector's
//! (`k8s.secrets`); the others are ours. [`K8sConfig::validate`] decides,
//! once, where the API server is ([`Source`]):
//!
//! 1. `kubeconfig:` set: that kubeconfig file;
//! 2. else `api_server:` set, or `KUBERNETES_SERVICE_HOST` in the
//!    environment: in-cluster, with the pod's service account;
//! 3. else `$KUBECONFIG` set: that kubeconfig file;
//! 4. else in-cluster anyway, whose every handle then says that no API
//!    server is known and what to set.
//!
//! Validation reads no file: the token, the CA and the kubeconfig are read
//! at every call ([`crate::connect`]), so a rotated token is picked up and
//! a missing one is an error on each handle rather than a dead executable.

use std::path::PathBuf;

use backend_core::{ConfigError, redact};
use serde::Deserialize;

use crate::handle::is_label;

/// The service account directory every pod gets.
pub const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Default `token_path`.
pub const DEFAULT_TOKEN_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";
/// Default `ca_path`.
pub const DEFAULT_CA_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/ca.crt";
/// Default `namespace_path`: the pod's own namespace.
pub const DEFAULT_NAMESPACE_PATH: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";
/// Default number of secrets read at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Upper bound for `concurrency`.
pub const MAX_CONCURRENCY: usize = 256;

/// The YAML config of `secret-backend-k8s` (and of a `k8s` store in
/// `secret-backend`). It holds no credential: the token and client key are
/// always files.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct K8sConfig {
    /// The API server's URL; default
    /// `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`.
    pub api_server: Option<String>,
    /// The service account token file, read at every call.
    pub token_path: Option<PathBuf>,
    /// The CA certificate(s) the API server's certificate must chain to:
    /// the only roots trusted.
    pub ca_path: Option<PathBuf>,
    /// The namespace of handles that name none; default: the pod's own
    /// (`namespace_path`), or the kubeconfig context's.
    pub namespace: Option<String>,
    /// The file holding the pod's namespace.
    pub namespace_path: Option<PathBuf>,
    /// A kubeconfig file, for an agent outside the cluster; default `$KUBECONFIG`.
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context; default its `current-context`.
    pub context: Option<String>,
    /// Accept any certificate from the API server (tests only; logged as a warning).
    pub insecure_skip_tls_verify: bool,
    /// Secrets read at once (default 16).
    pub concurrency: Option<usize>,
    /// Names that stand for handles ([`backend_core::alias`]).
    pub aliases: backend_core::Aliases,
}

/// Where the API server is and how we prove who we are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// Inside a pod: the service account's token and CA.
    InCluster {
        /// The server URL, or why none is known.
        server: Result<String, String>,
        /// The token file.
        token_path: PathBuf,
        /// The CA file.
        ca_path: PathBuf,
        /// The pod's namespace file.
        namespace_path: PathBuf,
    },
    /// A kubeconfig file and the context to use (`None`: its current one).
    Kubeconfig {
        /// The file.
        path: PathBuf,
        /// The context.
        context: Option<String>,
    },
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Where the server is.
    pub source: Source,
    /// The configured default namespace.
    pub namespace: Option<String>,
    /// TLS verification off.
    pub insecure: bool,
    /// Secrets read at once.
    pub concurrency: usize,
}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

impl K8sConfig {
    /// Checks the config; `env` reads `KUBERNETES_SERVICE_HOST`,
    /// `KUBERNETES_SERVICE_PORT` and `KUBECONFIG`.
    pub fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = |k: &str| env(k).filter(|v| !v.trim().is_empty());
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(bad(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        if let Some(ns) = self.namespace.as_ref().filter(|ns| !is_label(ns)) {
            return Err(bad(format!(
                "namespace '{}' is not a DNS-1123 label",
                ns.escape_debug()
            )));
        }
        let in_cluster_keys = [
            ("api_server", self.api_server.is_some()),
            ("token_path", self.token_path.is_some()),
            ("ca_path", self.ca_path.is_some()),
            ("namespace_path", self.namespace_path.is_some()),
        ];
        let set: Vec<&str> = in_cluster_keys
            .iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| *k)
            .collect();
        if self.kubeconfig.is_some() && !set.is_empty() {
            return Err(bad(format!(
                "kubeconfig excludes {}: the kubeconfig names the server and credentials",
                set.join(", ")
            )));
        }
        let from_env_kubeconfig = self.kubeconfig.is_none()
            && self.api_server.is_none()
            && env("KUBERNETES_SERVICE_HOST").is_none()
            && set.is_empty();
        let kubeconfig = match self.kubeconfig {
            Some(p) => Some(p),
            None if from_env_kubeconfig => env("KUBECONFIG")
                .map(|list| first_kubeconfig(&list))
                .transpose()?,
            None => None,
        };
        if self.context.is_some() && kubeconfig.is_none() {
            return Err(bad(
                "context applies to a kubeconfig (kubeconfig: or $KUBECONFIG), and none is used",
            ));
        }
        let source = match kubeconfig {
            Some(path) => Source::Kubeconfig {
                path,
                context: self.context,
            },
            None => Source::InCluster {
                server: match self.api_server {
                    Some(s) => Ok(server_url(&s)?),
                    None => service_env_url(&env),
                },
                token_path: self.token_path.unwrap_or_else(|| DEFAULT_TOKEN_PATH.into()),
                ca_path: self.ca_path.unwrap_or_else(|| DEFAULT_CA_PATH.into()),
                namespace_path: self
                    .namespace_path
                    .unwrap_or_else(|| DEFAULT_NAMESPACE_PATH.into()),
            },
        };
        if let Source::InCluster {
            server: Ok(url), ..
        } = &source
            && url.starts_with("http://")
        {
            tracing::warn!(
                "the API server address {url} is plain http: the token and every secret cross the network in clear"
            );
        }
        if self.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS verification of the Kubernetes API server is off (insecure_skip_tls_verify): anyone between us and it can read the token and every secret"
            );
        }
        Ok(Settings {
            source,
            namespace: self.namespace,
            insecure: self.insecure_skip_tls_verify,
            concurrency,
        })
    }
}

/// `$KUBECONFIG` may list files; we read one.
fn first_kubeconfig(list: &str) -> Result<PathBuf, ConfigError> {
    let paths: Vec<PathBuf> = std::env::split_paths(list)
        .filter(|p| !p.as_os_str().is_empty())
        .collect();
    match paths.as_slice() {
        [one] => Ok(one.clone()),
        _ => Err(bad(
            "KUBECONFIG lists several files; kubeconfigs are not merged here: name one with 'kubeconfig:'",
        )),
    }
}

/// The in-cluster URL from the service environment variables, or why not.
fn service_env_url(env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let not_in_pod = "no API server known: KUBERNETES_SERVICE_HOST is not set (not in a pod?); set api_server, or kubeconfig (or $KUBECONFIG) outside a cluster";
    let host = env("KUBERNETES_SERVICE_HOST").ok_or(not_in_pod)?;
    let host = host.trim();
    let port = env("KUBERNETES_SERVICE_PORT").unwrap_or_else(|| "443".into());
    let port = port.trim();
    if port.parse::<u16>().is_err() {
        return Err("KUBERNETES_SERVICE_PORT is not a port number".into());
    }
    // IPv6 hosts are bracketed in a URL.
    let url = if host.contains(':') && !host.starts_with('[') {
        format!("https://[{host}]:{port}")
    } else {
        format!("https://{host}:{port}")
    };
    server_url(&url).map_err(|e| format!("KUBERNETES_SERVICE_HOST/PORT: {e}"))
}

/// A server URL as it may be used: http(s), a host, no userinfo, query or
/// fragment; without a trailing slash (a path prefix is kept, as a proxy
/// in front of the API server may have one).
pub fn server_url(raw: &str) -> Result<String, ConfigError> {
    let shown = || redact::url(raw).escape_debug().to_string();
    if raw.contains('@') {
        return Err(bad(format!(
            "api server '{}' must not carry credentials (user:password@)",
            shown()
        )));
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| bad(format!("api server '{}': {e}", shown())))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!(
            "api server '{}' must start with https:// (or http://)",
            shown()
        )));
    }
    if url.host_str().is_none() || url.query().is_some() || url.fragment().is_some() {
        return Err(bad(format!(
            "api server '{}' must be a host and port, without query or fragment",
            shown()
        )));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn yaml(text: &str) -> K8sConfig {
        backend_core::config::from_yaml(text).unwrap()
    }

    fn server(s: &Settings) -> Result<String, String> {
        match &s.source {
            Source::InCluster { server, .. } => server.clone(),
            Source::Kubeconfig { path, .. } => Err(format!("kubeconfig {}", path.display())),
        }
    }

    #[test]
    fn in_cluster_from_the_service_environment() {
        let s = K8sConfig::default()
            .validate(&env(&[
                ("KUBERNETES_SERVICE_HOST", "10.0.0.1"),
                ("KUBERNETES_SERVICE_PORT", "6443"),
                ("KUBECONFIG", "/k"),
            ]))
            .unwrap();
        assert_eq!(server(&s).unwrap(), "https://10.0.0.1:6443");
        let s = K8sConfig::default()
            .validate(&env(&[
                ("KUBERNETES_SERVICE_HOST", "fd00::1"),
                ("KUBERNETES_SERVICE_PORT", "6443"),
            ]))
            .unwrap();
        assert_eq!(server(&s).unwrap(), "https://[fd00::1]:6443");
        let s = K8sConfig::default().validate(&env(&[])).unwrap();
        assert!(server(&s).unwrap_err().contains("KUBERNETES_SERVICE_HOST"));
        match s.source {
            Source::InCluster {
                token_path,
                ca_path,
                ..
            } => {
                assert_eq!(token_path, PathBuf::from(DEFAULT_TOKEN_PATH));
                assert_eq!(ca_path, PathBuf::from(DEFAULT_CA_PATH));
            }
            Source::Kubeconfig { .. } => panic!("kubeconfig"),
        }
        let s = K8sConfig::default()
            .validate(&env(&[
                ("KUBERNETES_SERVICE_HOST", "h"),
                ("KUBERNETES_SERVICE_PORT", "x"),
            ]))
            .unwrap();
        assert!(server(&s).is_err());
    }

    #[test]
    fn kubeconfig_from_config_or_env() {
        let s = K8sConfig::default()
            .validate(&env(&[("KUBECONFIG", "/home/u/.kube/config")]))
            .unwrap();
        assert_eq!(
            s.source,
            Source::Kubeconfig {
                path: "/home/u/.kube/config".into(),
                context: None
            }
        );
        assert!(
            K8sConfig::default()
                .validate(&env(&[("KUBECONFIG", "/a:/b")]))
                .is_err()
        );
        let c = yaml("kubeconfig: /k\ncontext: prod\n");
        let s = c
            .validate(&env(&[("KUBERNETES_SERVICE_HOST", "h")]))
            .unwrap();
        assert_eq!(
            s.source,
            Source::Kubeconfig {
                path: "/k".into(),
                context: Some("prod".into())
            }
        );
        let e = yaml("kubeconfig: /k\ntoken_path: /t\n")
            .validate(&env(&[]))
            .unwrap_err();
        assert!(e.to_string().contains("token_path"), "{e}");
        let e = yaml("context: prod\napi_server: https://h\n")
            .validate(&env(&[("KUBECONFIG", "/k")]))
            .unwrap_err();
        assert!(e.to_string().contains("context"), "{e}");
    }

    #[test]
    fn keys_and_values_are_checked() {
        assert!(backend_core::config::from_yaml::<K8sConfig>("tokenpath: /x\n").is_err());
        let e = env(&[]);
        assert!(yaml("namespace: Bad_NS\n").validate(&e).is_err());
        assert!(yaml("concurrency: 0\n").validate(&e).is_err());
        for bad in [
            "ftp://h",
            "https://u:PW-1@h:6443",
            "https://h/?q=1",
            "not a url",
        ] {
            let err = K8sConfig {
                api_server: Some(bad.into()),
                ..K8sConfig::default()
            }
            .validate(&e)
            .unwrap_err()
            .to_string();
            assert!(!err.contains("PW-1"), "{err}");
        }
        let s = yaml("api_server: https://kube.example:6443/\nnamespace: team\n")
            .validate(&e)
            .unwrap();
        assert_eq!(server(&s).unwrap(), "https://kube.example:6443");
        assert_eq!(s.namespace.as_deref(), Some("team"));
    }
}
