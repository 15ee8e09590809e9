//! The rustls client configuration: the files of the TLS settings read
//! here, the rules ([`backend_net::tls`]) shared with every store.
//!
//! - `ca_cert` / `ca_path` given: only those CAs are trusted (as the vault
//!   CLI does); otherwise the platform's verifier and roots, loaded at the
//!   first TLS handshake.
//! - `tls_server_name`: the certificate must be valid for that name (the
//!   SNI sent is still the address's host).
//! - `client_cert` + `client_key`: presented when the server asks (mutual
//!   TLS, cert auth).
//! - `skip_verify`: no verification at all (warned about at startup).

use std::path::Path;

use backend_core::ConfigError;
use backend_core::config::{read_credential, read_guarded};
use backend_net::tls::{Options, pem_certs, pem_key};
use rustls::ClientConfig;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsSettings;

/// Largest PEM file we read.
const MAX_PEM: u64 = 1024 * 1024;
/// Most files read from a CA directory.
const MAX_CA_FILES: usize = 1000;
/// Most directory entries looked at in a CA directory.
const MAX_CA_ENTRIES: usize = 10 * MAX_CA_FILES;

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

/// Builds the client TLS configuration from `tls`.
pub fn client_config(tls: &TlsSettings) -> Result<ClientConfig, ConfigError> {
    let mut roots = Vec::new();
    if !tls.skip_verify {
        if let Some(file) = &tls.ca_cert {
            roots.extend(certs(file, "ca_cert")?);
        }
        if let Some(dir) = &tls.ca_path {
            for file in ca_dir(dir)? {
                // Other files (READMEs, keys) may sit in a CA directory: skip them.
                if let Ok(found) = certs(&file, "ca_path file") {
                    roots.extend(found);
                }
            }
        }
        if (tls.ca_cert.is_some() || tls.ca_path.is_some()) && roots.is_empty() {
            return Err(bad("ca_cert / ca_path hold no certificates"));
        }
    }
    let client = match &tls.client {
        None => None,
        Some((cert, key)) => Some((certs(cert, "client_cert")?, private_key(key)?)),
    };
    backend_net::tls::client_config(Options {
        roots,
        server_name: tls.server_name.clone(),
        client,
        skip_verify: tls.skip_verify,
    })
    .map_err(|e| bad(e.replace("TLS server name", "tls_server_name")))
}

fn ca_dir(dir: &Path) -> Result<Vec<std::path::PathBuf>, ConfigError> {
    let entries =
        std::fs::read_dir(dir).map_err(|e| bad(format!("ca_path {}: {e}", dir.display())))?;
    // Only regular files (a FIFO or device there is skipped, and each file
    // is opened without blocking anyway), bounded however big the directory.
    let mut files: Vec<_> = entries
        .take(MAX_CA_ENTRIES)
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.is_file())
        .take(MAX_CA_FILES)
        .collect();
    files.sort();
    Ok(files)
}

fn certs(file: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let text = read_guarded(file, what, MAX_PEM)?;
    pem_certs(text.as_bytes(), &format!("{what} {}", file.display())).map_err(bad)
}

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_credential(file, "client_key")?;
    backend_core::secret::hold(&pem);
    pem_key(&pem, &format!("client_key {}", file.display())).map_err(bad)
}
