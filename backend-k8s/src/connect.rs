//! What one call needs to talk to the API server, read fresh at every call:
//! the token (projected service account tokens rotate about hourly, and a
//! token file replaced between two calls must be picked up), the CA, the
//! kubeconfig, the default namespace.
//!
//! Every failure here is a message for each handle of the call, not a dead
//! executable: the agent then logs, per handle, that the token file is
//! missing or the kubeconfig names no such context.
//!
//! TLS: only the configured CA (`ca_path`, a kubeconfig's
//! `certificate-authority(-data)`) is trusted for the API server; the
//! system roots only for a kubeconfig cluster that names no CA, as kubectl
//! does. Verification is off only when the operator says
//! `insecure_skip_tls_verify: true` (or the kubeconfig's
//! `insecure-skip-tls-verify`), and that is logged as a warning.

use std::path::Path;

use backend_core::Secret;
use backend_core::config::{MAX_CREDENTIAL_BYTES, read_guarded};
use rustls::ClientConfig;
use zeroize::Zeroize;

use crate::config::{Settings, Source};
use crate::kubeconfig;

/// Largest CA file read.
const MAX_CA: u64 = 1024 * 1024;

/// How requests prove who we are, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Identity {
    /// The pod's service account token.
    ServiceAccount,
    /// A kubeconfig user's token.
    KubeconfigToken,
    /// A kubeconfig user's client certificate.
    ClientCertificate,
}

/// One call's connection settings.
#[derive(Debug)]
pub struct Endpoint {
    /// The server URL, no trailing slash.
    pub server: String,
    /// The TLS client configuration.
    pub tls: ClientConfig,
    /// The bearer token, if any (held).
    pub token: Option<Secret>,
    /// Who we are.
    pub identity: Identity,
    /// The namespace of handles that name none, or why there is none.
    pub namespace: Result<String, String>,
}

/// Reads the settings' files and builds the call's endpoint.
pub fn endpoint(settings: &Settings) -> Result<Endpoint, String> {
    match &settings.source {
        Source::InCluster {
            server,
            token_path,
            ca_path,
            namespace_path,
        } => {
            let server = server.clone()?;
            let token = read_token(token_path, "service account token")?;
            let ca =
                read_guarded(ca_path, "CA file (ca_path)", MAX_CA).map_err(|e| e.to_string())?;
            let tls = client_config(
                Some((ca.as_bytes(), &format!("CA file {}", ca_path.display()))),
                settings.insecure,
                None,
            )?;
            let namespace = match &settings.namespace {
                Some(ns) => Ok(ns.clone()),
                None => pod_namespace(namespace_path),
            };
            Ok(Endpoint {
                server,
                tls,
                token: Some(token),
                identity: Identity::ServiceAccount,
                namespace,
            })
        }
        Source::Kubeconfig { path, context } => {
            let r = kubeconfig::load(path, context.as_deref())?;
            let insecure = settings.insecure || r.insecure;
            if r.insecure && !settings.insecure {
                tracing::warn!(
                    "TLS verification of the Kubernetes API server is off (insecure-skip-tls-verify in kubeconfig {})",
                    path.display()
                );
            }
            let ca =
                r.ca.as_ref()
                    .map(|(pem, from)| (pem.as_slice(), from.as_str()));
            let identity = if r.token.is_some() {
                Identity::KubeconfigToken
            } else {
                Identity::ClientCertificate
            };
            let tls = client_config(ca, insecure, r.client.as_ref())?;
            Ok(Endpoint {
                server: r.server,
                tls,
                token: r.token,
                identity,
                namespace: Ok(settings.namespace.clone().unwrap_or(r.namespace)),
            })
        }
    }
}

/// Reads a token file: refused when group or others can write it, trailing
/// whitespace trimmed, held ([`backend_core::secret::hold`]). No warning
/// for a file others can read: Kubernetes mounts tokens 0644 by default.
pub fn read_token(path: &Path, what: &str) -> Result<Secret, String> {
    let hint = match what {
        "service account token" => {
            "; is the service account token mounted (automountServiceAccountToken)?"
        }
        _ => "",
    };
    let mut text =
        read_guarded(path, what, MAX_CREDENTIAL_BYTES).map_err(|e| format!("{e}{hint}"))?;
    let token = text.trim_end();
    let result = if token.is_empty() {
        Err(format!("{what} {} is empty", path.display()))
    } else {
        Ok(Secret::credential(token.to_owned()))
    };
    text.zeroize();
    result
}

/// The pod's namespace from the service account's `namespace` file.
fn pod_namespace(path: &Path) -> Result<String, String> {
    let text = read_guarded(path, "pod namespace file", 1024).map_err(|e| {
        format!("no namespace in the handle and none configured, and {e}; write <namespace>/<name>, or set namespace")
    })?;
    let ns = text.trim();
    if crate::handle::is_label(ns) {
        Ok(ns.to_owned())
    } else {
        Err(format!(
            "pod namespace file {} does not hold a namespace",
            path.display()
        ))
    }
}

/// A rustls configuration ([`backend_net::tls`]): `ca` (PEM and where it
/// came from) as the only roots, else the system's; no verification when
/// `insecure`; a client certificate (PEM chain, PEM key) when given.
fn client_config(
    ca: Option<(&[u8], &str)>,
    insecure: bool,
    client: Option<&(Vec<u8>, Secret)>,
) -> Result<ClientConfig, String> {
    let roots = match ca {
        Some((pem, from)) if !insecure => backend_net::tls::pem_certs(pem, from)?,
        _ => Vec::new(),
    };
    let client = match client {
        None => None,
        Some((cert, key)) => Some((
            backend_net::tls::pem_certs(cert, "client certificate")?,
            backend_net::tls::pem_key(key, "client key")?,
        )),
    };
    backend_net::tls::client_config(backend_net::tls::Options {
        roots,
        server_name: None,
        client,
        skip_verify: insecure,
    })
}
