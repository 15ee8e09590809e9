//! The configuration, and which identity proves who we are.
//!
//! [`AzureConfig`] is the YAML file (unknown keys are errors). Its keys
//! `keyvaulturl`, `azure_session.*` and the legacy `clientid` are the
//! Datadog connector's (`azure.keyvault`), so a config moves between a
//! payload and a file unchanged; the others are ours. [`AzureConfig::validate`]
//! decides once, from the config and the environment, which [`Identity`]
//! the calls use, in the order of the connector and of Azure's
//! `DefaultAzureCredential`:
//!
//! 1. `azure_tenant_id` + `azure_client_id` + `azure_client_secret`: a
//!    service principal with a client secret;
//! 2. `azure_tenant_id` + `azure_client_id` + `azure_client_certificate_path`:
//!    a service principal with a certificate;
//! 3. `azure_client_id` (or `clientid`) alone: that user-assigned identity,
//!    through workload identity when `AZURE_FEDERATED_TOKEN_FILE` is set
//!    (AKS), else through managed identity;
//! 4. nothing: the environment, as Azure's SDKs read it:
//!    `AZURE_CLIENT_SECRET`, then `AZURE_CLIENT_CERTIFICATE_PATH` (each with
//!    `AZURE_TENANT_ID` and `AZURE_CLIENT_ID`), then workload identity
//!    (`AZURE_FEDERATED_TOKEN_FILE`), then managed identity (user-assigned
//!    when `AZURE_CLIENT_ID` is set) from App Service (`IDENTITY_ENDPOINT` +
//!    `IDENTITY_HEADER`), Azure Arc (`IDENTITY_ENDPOINT` + `IMDS_ENDPOINT`),
//!    Azure ML (`MSI_ENDPOINT` + `MSI_SECRET`), Cloud Shell (`MSI_ENDPOINT`)
//!    or else IMDS (`169.254.169.254`, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`).
//!
//! Unlike `DefaultAzureCredential`, the choice is made once from what is
//! configured, not by trying each source at every call: the error of a
//! handle names the one source used, and a host outside Azure does not
//! wait on IMDS after a service principal failed. Files (certificate,
//! federated token) are read at every call, so a rotated one is used.

use std::path::PathBuf;

use backend_core::{ConfigError, Credential, Secret, redact};
use reqwest::Url;
use serde::Deserialize;

/// Default number of secrets read at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Upper bound for `concurrency`.
pub const MAX_CONCURRENCY: usize = 256;
/// Where IMDS answers on every Azure VM.
pub const IMDS_HOST: &str = "http://169.254.169.254";

/// The YAML config of `secret-backend-azure` (and of an `azure` store in
/// `secret-backend`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureConfig {
    /// The vault, `https://<name>.vault.azure.net` (required).
    #[serde(alias = "vault_url")]
    pub keyvaulturl: Option<String>,
    /// The connector's legacy spelling of `azure_session.azure_client_id`.
    pub clientid: Option<String>,
    /// The identity to use; empty for the default chain.
    pub azure_session: AzureSession,
    /// `public` (default), `china` or `usgovernment`: the authority host
    /// and the Key Vault resource tokens are asked for.
    pub cloud: Option<String>,
    /// The Entra ID authority host (default: the cloud's, or
    /// `AZURE_AUTHORITY_HOST`).
    pub authority_host: Option<String>,
    /// A PEM file of CA certificates trusted, besides the system's roots,
    /// for Key Vault and Entra ID (a TLS-inspecting proxy's CA, say).
    pub ca_file: Option<PathBuf>,
    /// Accept any certificate (tests only; logged as a warning).
    pub insecure_skip_tls_verify: bool,
    /// Return the value of a secret whose expiry (`exp`) has passed
    /// instead of an error.
    pub allow_expired: bool,
    /// Secrets read at once (default 16).
    pub concurrency: Option<usize>,
    /// Where the Azure Arc agent writes the key files its challenge names
    /// (default `/var/opt/azcmagent/tokens`); a challenge naming a file
    /// anywhere else is refused.
    pub arc_token_dir: Option<PathBuf>,
    /// Keep the access token (and its expiry) in this file, mode 0600, and
    /// reuse it across calls while it has more than 5 minutes to live
    /// ([`crate::cache`]); none by default (a token per call).
    pub token_cache_file: Option<PathBuf>,
    /// Names that stand for handles ([`backend_core::alias`]).
    pub aliases: backend_core::Aliases,
}

/// The connector's `azure_session` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AzureSession {
    /// The directory (tenant) id.
    pub azure_tenant_id: Option<String>,
    /// The application (client) id, or a user-assigned identity's.
    pub azure_client_id: Option<String>,
    /// A client secret of the application.
    pub azure_client_secret: Option<Credential>,
    /// A certificate of the application: PEM with its key.
    pub azure_client_certificate_path: Option<PathBuf>,
    /// The password of an encrypted certificate file.
    pub azure_client_certificate_password: Option<Credential>,
    /// Send the certificate chain (`x5c`), for subject name/issuer auth.
    pub azure_client_send_certificate_chain: bool,
}

/// A sovereign cloud: where its Entra ID and Key Vault are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Cloud {
    /// Azure public cloud.
    Public,
    /// Azure operated by 21Vianet (China).
    China,
    /// Azure US Government.
    UsGovernment,
}

impl Cloud {
    /// The Entra ID authority host.
    pub fn authority(self) -> &'static str {
        match self {
            Self::Public => "https://login.microsoftonline.com",
            Self::China => "https://login.chinacloudapi.cn",
            Self::UsGovernment => "https://login.microsoftonline.us",
        }
    }

    /// The Key Vault resource (a token's audience).
    pub fn resource(self) -> &'static str {
        match self {
            Self::Public => "https://vault.azure.net",
            Self::China => "https://vault.azure.cn",
            Self::UsGovernment => "https://vault.usgovcloudapi.net",
        }
    }

    /// The DNS suffix of the cloud's vaults.
    pub fn vault_suffix(self) -> &'static str {
        match self {
            Self::Public => ".vault.azure.net",
            Self::China => ".vault.azure.cn",
            Self::UsGovernment => ".vault.usgovcloudapi.net",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "public" | "azurepubliccloud" | "azurecloud" => Some(Self::Public),
            "china" | "azurechinacloud" => Some(Self::China),
            "usgovernment" | "azureusgovernment" | "azureusgovernmentcloud" => {
                Some(Self::UsGovernment)
            }
            _ => None,
        }
    }

    fn of_host(host: &str) -> Option<Self> {
        [Self::Public, Self::China, Self::UsGovernment]
            .into_iter()
            .find(|c| host.ends_with(c.vault_suffix()))
    }
}

/// Where a setting came from, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// The config (`azure_session`).
    Config,
    /// The `AZURE_*` environment variables.
    Environment,
}

/// A managed identity endpoint, as the host provides it.
#[derive(Debug, Clone)]
pub enum ManagedSource {
    /// App Service, Functions, Container Apps: `IDENTITY_ENDPOINT` with
    /// the `X-IDENTITY-HEADER` it expects.
    AppService {
        /// The endpoint URL.
        endpoint: String,
        /// `IDENTITY_HEADER` (held).
        header: Secret,
    },
    /// Azure Arc: `IDENTITY_ENDPOINT`, answering first with a challenge
    /// naming a key file to read.
    Arc {
        /// The endpoint URL.
        endpoint: String,
    },
    /// Azure Machine Learning: `MSI_ENDPOINT` with `MSI_SECRET`.
    AzureMl {
        /// The endpoint URL.
        endpoint: String,
        /// `MSI_SECRET` (held).
        secret: Secret,
    },
    /// Cloud Shell: `MSI_ENDPOINT` alone.
    CloudShell {
        /// The endpoint URL.
        endpoint: String,
    },
    /// The instance metadata service of VMs, scale sets and AKS nodes.
    Imds {
        /// `http://169.254.169.254`, or `AZURE_POD_IDENTITY_AUTHORITY_HOST`.
        host: String,
    },
}

impl ManagedSource {
    /// The source's name in messages.
    pub fn name(&self) -> &'static str {
        match self {
            Self::AppService { .. } => "managed identity (App Service, IDENTITY_ENDPOINT)",
            Self::Arc { .. } => "managed identity (Azure Arc, IDENTITY_ENDPOINT)",
            Self::AzureMl { .. } => "managed identity (Azure ML, MSI_ENDPOINT)",
            Self::CloudShell { .. } => "managed identity (Cloud Shell, MSI_ENDPOINT)",
            Self::Imds { .. } => "managed identity (IMDS)",
        }
    }
}

/// How tokens are obtained.
#[derive(Debug, Clone)]
pub enum Identity {
    /// A service principal with a client secret.
    ClientSecret {
        /// The tenant.
        tenant: String,
        /// The application id.
        client_id: String,
        /// The secret (held).
        secret: Secret,
        /// Where it was configured.
        origin: Origin,
    },
    /// A service principal with a certificate.
    ClientCertificate {
        /// The tenant.
        tenant: String,
        /// The application id.
        client_id: String,
        /// The PEM file (certificate and key), read at every call.
        path: PathBuf,
        /// Its password, if any (held).
        password: Option<Secret>,
        /// Whether to send the chain (`x5c`).
        send_chain: bool,
        /// Where it was configured.
        origin: Origin,
    },
    /// AKS workload identity: a federated token file as the assertion.
    Workload {
        /// The tenant.
        tenant: String,
        /// The application or user-assigned identity's client id.
        client_id: String,
        /// `AZURE_FEDERATED_TOKEN_FILE`, read at every call.
        token_file: PathBuf,
    },
    /// A managed identity: system-assigned, or user-assigned by client id.
    Managed {
        /// A user-assigned identity's client id.
        client_id: Option<String>,
        /// The host's endpoint.
        source: ManagedSource,
    },
}

impl Identity {
    /// The identity's name in messages: what was tried, never a credential.
    pub fn describe(&self) -> String {
        let origin = |o: &Origin, config: &str, env: &str| match o {
            Origin::Config => format!("azure_session.{config}"),
            Origin::Environment => env.to_owned(),
        };
        match self {
            Self::ClientSecret {
                client_id,
                origin: o,
                ..
            } => format!(
                "client secret of application {client_id} ({})",
                origin(o, "azure_client_secret", "AZURE_CLIENT_SECRET")
            ),
            Self::ClientCertificate {
                client_id,
                origin: o,
                ..
            } => format!(
                "client certificate of application {client_id} ({})",
                origin(
                    o,
                    "azure_client_certificate_path",
                    "AZURE_CLIENT_CERTIFICATE_PATH"
                )
            ),
            Self::Workload { client_id, .. } => {
                format!("workload identity {client_id} (AZURE_FEDERATED_TOKEN_FILE)")
            }
            Self::Managed { client_id, source } => match client_id {
                Some(id) => format!("{} of user-assigned identity {id}", source.name()),
                None => format!("{} (system-assigned)", source.name()),
            },
        }
    }
}

/// The validated configuration.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The vault's URL, no trailing slash.
    pub vault_url: String,
    /// The vault's name in messages (its first DNS label, or host:port).
    pub vault_name: String,
    /// The cloud.
    pub cloud: Cloud,
    /// The authority host, no trailing slash.
    pub authority: String,
    /// How tokens are obtained.
    pub identity: Identity,
    /// Extra CA file.
    pub ca_file: Option<PathBuf>,
    /// TLS verification off.
    pub insecure: bool,
    /// Expired secrets are returned.
    pub allow_expired: bool,
    /// Secrets read at once.
    pub concurrency: usize,
    /// Azure Arc's key file directory.
    pub arc_token_dir: PathBuf,
    /// The opt-in token cache file.
    pub token_cache_file: Option<PathBuf>,
}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

/// A GUID or a name Entra ID accepts as a tenant (`contoso.onmicrosoft.com`):
/// characters a URL path carries as they are, in non-empty dot-separated
/// labels, so never `.` or `..`, which would make the token URL another
/// path of the authority than the tenant's.
fn is_tenant(s: &str) -> bool {
    (1..=256).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
        && s.split('.').all(|label| !label.is_empty())
}

/// A client id: a GUID in practice; what a query carries without harm.
fn is_client_id(s: &str) -> bool {
    (1..=128).contains(&s.len())
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_'))
}

impl AzureConfig {
    /// Checks the config and picks the identity; `env` reads the process
    /// environment. Reads no file.
    pub fn validate(self, env: &dyn Fn(&str) -> Option<String>) -> Result<Settings, ConfigError> {
        let env = |k: &str| {
            env(k)
                .map(|v| v.trim().to_owned())
                .filter(|v| !v.is_empty())
        };
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(bad(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        let raw = self
            .keyvaulturl
            .as_deref()
            .map(str::trim)
            .filter(|u| !u.is_empty())
            .ok_or_else(|| {
                bad("keyvaulturl is required: the vault's URL, https://<name>.vault.azure.net")
            })?;
        let (vault_url, host) = https_url(raw, "keyvaulturl")?;
        let cloud = match self.cloud.as_deref() {
            Some(c) => Cloud::parse(c).ok_or_else(|| {
                bad(format!(
                    "cloud '{}' is not one of public, china, usgovernment",
                    c.escape_debug()
                ))
            })?,
            None => Cloud::of_host(&host).unwrap_or(Cloud::Public),
        };
        if let Some(other) = Cloud::of_host(&host).filter(|c| *c != cloud) {
            return Err(bad(format!(
                "keyvaulturl is a vault of the {other:?} cloud but cloud is {cloud:?}"
            )));
        }
        let vault_name = match host.strip_suffix(cloud.vault_suffix()) {
            Some(name) if !name.is_empty() => name.to_owned(),
            _ => vault_url
                .trim_start_matches("https://")
                .trim_start_matches("http://")
                .to_owned(),
        };
        let authority = match self
            .authority_host
            .clone()
            .or_else(|| env("AZURE_AUTHORITY_HOST"))
        {
            Some(a) => https_url(&a, "authority_host (AZURE_AUTHORITY_HOST)")?.0,
            None => cloud.authority().to_owned(),
        };
        let identity = self.identity(&env)?;
        if self.insecure_skip_tls_verify {
            tracing::warn!(
                "TLS verification of Key Vault and Entra ID is off (insecure_skip_tls_verify): anyone between us and them can read the credentials and every secret"
            );
        }
        Ok(Settings {
            vault_url,
            vault_name,
            cloud,
            authority,
            identity,
            ca_file: self.ca_file,
            insecure: self.insecure_skip_tls_verify,
            allow_expired: self.allow_expired,
            concurrency,
            arc_token_dir: self
                .arc_token_dir
                .unwrap_or_else(|| PathBuf::from(crate::token::ARC_TOKEN_DIR)),
            token_cache_file: self.token_cache_file,
        })
    }

    fn identity(&self, env: &dyn Fn(&str) -> Option<String>) -> Result<Identity, ConfigError> {
        let s = &self.azure_session;
        let nonempty = |v: &Option<String>| {
            v.as_deref()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let tenant = nonempty(&s.azure_tenant_id);
        let client = match (nonempty(&s.azure_client_id), nonempty(&self.clientid)) {
            (Some(a), Some(b)) if a != b => {
                return Err(bad(
                    "azure_session.azure_client_id and clientid name different clients; set one",
                ));
            }
            (a, b) => a.or(b),
        };
        if let Some(t) = tenant.as_ref().filter(|t| !is_tenant(t)) {
            return Err(bad(format!(
                "azure_tenant_id '{}' is not a tenant id or domain",
                t.escape_debug()
            )));
        }
        if let Some(c) = client.as_ref().filter(|c| !is_client_id(c)) {
            return Err(bad(format!(
                "azure_client_id '{}' is not a client id",
                c.escape_debug()
            )));
        }
        let secret = s.azure_client_secret.as_ref().filter(|v| !v.is_empty());
        let cert = s.azure_client_certificate_path.clone();
        if secret.is_some() || cert.is_some() {
            let what = if secret.is_some() {
                "azure_client_secret"
            } else {
                "azure_client_certificate_path"
            };
            let (Some(tenant), Some(client_id)) = (tenant, client) else {
                return Err(bad(format!(
                    "{what} needs azure_session.azure_tenant_id and azure_client_id"
                )));
            };
            return Ok(match secret {
                Some(secret) => Identity::ClientSecret {
                    tenant,
                    client_id,
                    secret: secret.secret().clone(),
                    origin: Origin::Config,
                },
                None => Identity::ClientCertificate {
                    tenant,
                    client_id,
                    path: cert.unwrap_or_default(),
                    password: s
                        .azure_client_certificate_password
                        .as_ref()
                        .filter(|p| !p.is_empty())
                        .map(|p| p.secret().clone()),
                    send_chain: s.azure_client_send_certificate_chain,
                    origin: Origin::Config,
                },
            });
        }
        if s.azure_client_certificate_password.is_some() {
            return Err(bad(
                "azure_client_certificate_password is set without azure_client_certificate_path",
            ));
        }
        let federated = env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from);
        let env_tenant = || tenant.clone().or_else(|| env("AZURE_TENANT_ID"));
        if let Some(client_id) = client {
            // The connector's user-assigned identity; on AKS, whose pods
            // reach Entra ID through workload identity, that identity's
            // federated credential.
            if let (Some(token_file), Some(tenant)) = (federated, env_tenant()) {
                return Ok(Identity::Workload {
                    tenant: checked_tenant(tenant)?,
                    client_id,
                    token_file,
                });
            }
            return Ok(Identity::Managed {
                client_id: Some(client_id),
                source: managed_source(env)?,
            });
        }
        // The default chain: the environment, as Azure's SDKs read it.
        let env_client = env("AZURE_CLIENT_ID");
        if let Some(c) = env_client.as_ref().filter(|c| !is_client_id(c)) {
            return Err(bad(format!(
                "AZURE_CLIENT_ID '{}' is not a client id",
                c.escape_debug()
            )));
        }
        if let (Some(tenant), Some(client_id)) = (env_tenant(), env_client.clone()) {
            let tenant = checked_tenant(tenant)?;
            if let Some(secret) = env("AZURE_CLIENT_SECRET") {
                return Ok(Identity::ClientSecret {
                    tenant,
                    client_id,
                    secret: Secret::credential(secret),
                    origin: Origin::Environment,
                });
            }
            if let Some(path) = env("AZURE_CLIENT_CERTIFICATE_PATH") {
                return Ok(Identity::ClientCertificate {
                    tenant,
                    client_id,
                    path: path.into(),
                    password: env("AZURE_CLIENT_CERTIFICATE_PASSWORD").map(Secret::credential),
                    send_chain: env("AZURE_CLIENT_SEND_CERTIFICATE_CHAIN")
                        .is_some_and(|v| v == "1" || v.eq_ignore_ascii_case("true")),
                    origin: Origin::Environment,
                });
            }
            if let Some(token_file) = federated {
                return Ok(Identity::Workload {
                    tenant,
                    client_id,
                    token_file,
                });
            }
        }
        Ok(Identity::Managed {
            client_id: env_client,
            source: managed_source(env)?,
        })
    }
}

fn checked_tenant(t: String) -> Result<String, ConfigError> {
    if is_tenant(&t) {
        Ok(t)
    } else {
        Err(bad(format!(
            "AZURE_TENANT_ID '{}' is not a tenant id or domain",
            t.escape_debug()
        )))
    }
}

/// The host's managed identity endpoint, from the variables each host sets.
fn managed_source(env: &dyn Fn(&str) -> Option<String>) -> Result<ManagedSource, ConfigError> {
    let endpoint = |k: &str| -> Result<Option<String>, ConfigError> {
        env(k).map(|v| http_url(&v, k)).transpose()
    };
    if let Some(endpoint) = endpoint("IDENTITY_ENDPOINT")? {
        if let Some(header) = env("IDENTITY_HEADER") {
            return Ok(ManagedSource::AppService {
                endpoint,
                header: Secret::credential(header),
            });
        }
        if env("IMDS_ENDPOINT").is_some() {
            return Ok(ManagedSource::Arc { endpoint });
        }
    }
    if let Some(endpoint) = endpoint("MSI_ENDPOINT")? {
        return Ok(match env("MSI_SECRET") {
            Some(secret) => ManagedSource::AzureMl {
                endpoint,
                secret: Secret::credential(secret),
            },
            None => ManagedSource::CloudShell { endpoint },
        });
    }
    let host = match env("AZURE_POD_IDENTITY_AUTHORITY_HOST") {
        Some(h) => http_url(&h, "AZURE_POD_IDENTITY_AUTHORITY_HOST")?,
        None => IMDS_HOST.to_owned(),
    };
    Ok(ManagedSource::Imds { host })
}

/// An `https://` URL without credentials, query or fragment: (the URL
/// without a trailing slash, its host).
fn https_url(raw: &str, what: &str) -> Result<(String, String), ConfigError> {
    let url = parse_url(raw, what)?;
    if url.scheme() != "https" {
        return Err(bad(format!("{what} must start with https://")));
    }
    let host = url.host_str().unwrap_or_default().to_ascii_lowercase();
    Ok((url.as_str().trim_end_matches('/').to_owned(), host))
}

/// An `http://` or `https://` URL (managed identity endpoints are local
/// plain HTTP), kept as given.
fn http_url(raw: &str, what: &str) -> Result<String, ConfigError> {
    let url = parse_url(raw, what)?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad(format!("{what} must start with http:// or https://")));
    }
    Ok(url.as_str().to_owned())
}

fn parse_url(raw: &str, what: &str) -> Result<Url, ConfigError> {
    let shown = || redact::url(raw).escape_debug().to_string();
    if raw.contains('@') {
        return Err(bad(format!(
            "{what} '{}' must not carry credentials (user:password@)",
            shown()
        )));
    }
    let url = Url::parse(raw.trim()).map_err(|e| bad(format!("{what} '{}': {e}", shown())))?;
    if url.host_str().is_none() || url.fragment().is_some() {
        return Err(bad(format!("{what} '{}' must name a host", shown())));
    }
    if url.query().is_some() && !matches!(what, "IDENTITY_ENDPOINT" | "MSI_ENDPOINT") {
        return Err(bad(format!("{what} '{}' must not have a query", shown())));
    }
    Ok(url)
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

    fn yaml(text: &str) -> AzureConfig {
        backend_core::config::from_yaml(text).unwrap()
    }

    const VAULT: &str = "keyvaulturl: https://myvault.vault.azure.net/\n";

    fn identity(text: &str, e: &[(&str, &str)]) -> Identity {
        yaml(&format!("{VAULT}{text}"))
            .validate(&env(e))
            .unwrap()
            .identity
    }

    #[test]
    fn vault_and_cloud() {
        let s = yaml(VAULT).validate(&env(&[])).unwrap();
        assert_eq!(s.vault_url, "https://myvault.vault.azure.net");
        assert_eq!(s.vault_name, "myvault");
        assert_eq!(s.cloud, Cloud::Public);
        assert_eq!(s.authority, "https://login.microsoftonline.com");
        let s = yaml("keyvaulturl: https://cn1.vault.azure.cn\n")
            .validate(&env(&[]))
            .unwrap();
        assert_eq!(s.cloud, Cloud::China);
        assert_eq!(s.authority, "https://login.chinacloudapi.cn");
        let s = yaml("keyvaulturl: https://g.vault.usgovcloudapi.net\ncloud: USGovernment\n")
            .validate(&env(&[("AZURE_AUTHORITY_HOST", "https://login.example/")]))
            .unwrap();
        assert_eq!(s.cloud.resource(), "https://vault.usgovcloudapi.net");
        assert_eq!(s.authority, "https://login.example");
        let s = yaml("keyvaulturl: https://127.0.0.1:8443\n")
            .validate(&env(&[]))
            .unwrap();
        assert_eq!(s.vault_name, "127.0.0.1:8443");
        for bad in [
            "",
            "keyvaulturl: http://myvault.vault.azure.net\n",
            "keyvaulturl: https://u:PW-1@myvault.vault.azure.net\n",
            "keyvaulturl: https://myvault.vault.azure.net/?x=1\n",
            "keyvaulturl: myvault\n",
            "keyvaulturl: https://cn.vault.azure.cn\ncloud: public\n",
            "keyvaulturl: https://v.vault.azure.net\ncloud: mars\n",
            "keyvaulturl: https://v.vault.azure.net\nconcurrency: 0\n",
        ] {
            let e = yaml(bad).validate(&env(&[])).unwrap_err().to_string();
            assert!(!e.contains("PW-1"), "{e}");
        }
        assert!(backend_core::config::from_yaml::<AzureConfig>("keyvault_url: x\n").is_err());
        assert!(
            backend_core::config::from_yaml::<AzureConfig>("azure_session: {tenant: x}\n").is_err()
        );
    }

    #[test]
    fn the_connector_order() {
        let sp = "azure_session:\n  azure_tenant_id: t1\n  azure_client_id: c1\n";
        let i = identity(
            &format!(
                "{sp}  azure_client_secret: s3cr3t-VALUE\n  azure_client_certificate_path: /c.pem\n"
            ),
            &[("AZURE_FEDERATED_TOKEN_FILE", "/f")],
        );
        assert!(
            matches!(&i, Identity::ClientSecret { tenant, client_id, origin: Origin::Config, .. } if tenant == "t1" && client_id == "c1"),
            "{i:?}"
        );
        assert!(!format!("{i:?}").contains("s3cr3t-VALUE"));
        assert!(!i.describe().contains("s3cr3t"));
        let i = identity(
            &format!(
                "{sp}  azure_client_certificate_path: /c.pem\n  azure_client_certificate_password: pw\n  azure_client_send_certificate_chain: true\n"
            ),
            &[],
        );
        assert!(
            matches!(
                &i,
                Identity::ClientCertificate {
                    send_chain: true,
                    password: Some(_),
                    ..
                }
            ),
            "{i:?}"
        );
        let i = identity("clientid: uami-1\n", &[]);
        assert!(
            matches!(&i, Identity::Managed { client_id: Some(c), source: ManagedSource::Imds { .. } } if c == "uami-1"),
            "{i:?}"
        );
        let i = identity(
            "clientid: uami-1\n",
            &[
                ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
                ("AZURE_TENANT_ID", "t9"),
            ],
        );
        assert!(
            matches!(&i, Identity::Workload { tenant, client_id, .. } if tenant == "t9" && client_id == "uami-1"),
            "{i:?}"
        );
        let e = yaml(&format!(
            "{VAULT}azure_session:\n  azure_client_secret: x\n"
        ))
        .validate(&env(&[]))
        .unwrap_err();
        assert!(e.to_string().contains("azure_tenant_id"), "{e}");
        let e = yaml(&format!(
            "{VAULT}clientid: a\nazure_session:\n  azure_client_id: b\n"
        ))
        .validate(&env(&[]))
        .unwrap_err();
        assert!(e.to_string().contains("clientid"), "{e}");
    }

    #[test]
    fn the_default_chain_from_the_environment() {
        let base = [("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_ID", "c")];
        let with = |more: &[(&'static str, &'static str)]| {
            let mut all = base.to_vec();
            all.extend_from_slice(more);
            identity("", &all)
        };
        let all = [
            ("AZURE_CLIENT_SECRET", "s"),
            ("AZURE_CLIENT_CERTIFICATE_PATH", "/c.pem"),
            ("AZURE_FEDERATED_TOKEN_FILE", "/f"),
            ("IDENTITY_ENDPOINT", "http://127.0.0.1:1/msi"),
            ("IDENTITY_HEADER", "h"),
        ];
        assert!(matches!(
            with(&all),
            Identity::ClientSecret {
                origin: Origin::Environment,
                ..
            }
        ));
        assert!(matches!(
            with(&all[1..]),
            Identity::ClientCertificate { .. }
        ));
        assert!(matches!(with(&all[2..]), Identity::Workload { .. }));
        assert!(matches!(
            with(&all[3..]),
            Identity::Managed {
                client_id: Some(_),
                source: ManagedSource::AppService { .. }
            }
        ));
        assert!(matches!(
            identity(
                "",
                &[
                    (
                        "IDENTITY_ENDPOINT",
                        "http://localhost:40342/metadata/identity/oauth2/token"
                    ),
                    ("IMDS_ENDPOINT", "http://localhost:40342")
                ]
            ),
            Identity::Managed {
                client_id: None,
                source: ManagedSource::Arc { .. }
            }
        ));
        assert!(matches!(
            identity(
                "",
                &[("MSI_ENDPOINT", "http://localhost:50342/oauth2/token")]
            ),
            Identity::Managed {
                source: ManagedSource::CloudShell { .. },
                ..
            }
        ));
        assert!(matches!(
            identity(
                "",
                &[
                    ("MSI_ENDPOINT", "http://127.0.0.1:1/msi"),
                    ("MSI_SECRET", "x")
                ]
            ),
            Identity::Managed {
                source: ManagedSource::AzureMl { .. },
                ..
            }
        ));
        match identity(
            "",
            &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://127.0.0.1:9/")],
        ) {
            Identity::Managed {
                client_id: None,
                source: ManagedSource::Imds { host },
            } => {
                assert_eq!(host, "http://127.0.0.1:9/");
            }
            other => panic!("{other:?}"),
        }
        // A tenant without a client id is no service principal.
        assert!(matches!(
            identity(
                "",
                &[("AZURE_TENANT_ID", "t"), ("AZURE_CLIENT_SECRET", "s")]
            ),
            Identity::Managed {
                client_id: None,
                ..
            }
        ));
    }
}
