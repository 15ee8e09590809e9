//! The rustls client configuration.
//!
//! We build it ourselves and hand it to reqwest (`use_preconfigured_tls`)
//! because reqwest alone cannot check the server certificate against a
//! name other than the URL's host (`VAULT_TLS_SERVER_NAME`). One path for
//! every case keeps the rules in one place:
//!
//! - `ca_cert` / `ca_path` given: only those CAs are trusted (as the vault
//!   CLI does); otherwise the platform's verifier and roots, loaded at the
//!   first TLS handshake: reading the system store (about 150 files, 3-4 ms)
//!   is wasted on an `http://` address, and a store that cannot be read
//!   fails the handshake, so the handles say why.
//! - `tls_server_name`: the certificate must be valid for that name (the
//!   SNI sent is still the address's host).
//! - `client_cert` + `client_key`: presented when the server asks (mutual
//!   TLS, cert auth).
//! - `skip_verify`: no verification at all (warned about at startup).
//!
//! Proxies from `HTTPS_PROXY` / `NO_PROXY` are reqwest's business and use
//! the same TLS configuration for the tunnelled connection.

use std::path::Path;
use std::sync::Arc;

use backend_core::ConfigError;
use backend_core::config::{read_credential, read_guarded};
use backend_tls::SystemRoots;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

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
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .map_err(|e| bad(format!("TLS setup: {e}")))?;
    let mut verifier = verifier(tls, &provider)?;
    if let Some(name) = &tls.server_name {
        let name = ServerName::try_from(name.clone()).map_err(|_| {
            bad(format!(
                "tls_server_name '{}' is not a host name",
                name.escape_debug()
            ))
        })?;
        verifier = Arc::new(NameOverride {
            inner: verifier,
            name,
        });
    }
    let builder = builder
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match &tls.client {
        None => Ok(builder.with_no_client_auth()),
        Some((cert, key)) => {
            let chain = certs(cert, "client_cert")?;
            let key = private_key(key)?;
            builder
                .with_client_auth_cert(chain, key)
                .map_err(|e| bad(format!("client_cert/client_key: {e}")))
        }
    }
}

fn verifier(
    tls: &TlsSettings,
    provider: &Arc<CryptoProvider>,
) -> Result<Arc<dyn ServerCertVerifier>, ConfigError> {
    if tls.skip_verify {
        return Ok(Arc::new(backend_tls::AcceptAny::new(provider.clone())));
    }
    if tls.ca_cert.is_none() && tls.ca_path.is_none() {
        return Ok(Arc::new(SystemRoots::new(provider.clone())));
    }
    let mut roots = RootCertStore::empty();
    if let Some(file) = &tls.ca_cert {
        add_roots(&mut roots, certs(file, "ca_cert")?, file)?;
    }
    if let Some(dir) = &tls.ca_path {
        for file in ca_dir(dir)? {
            // Other files (READMEs, keys) may sit in a CA directory: skip them.
            if let Ok(found) = certs(&file, "ca_path file") {
                add_roots(&mut roots, found, &file)?;
            }
        }
    }
    if roots.is_empty() {
        return Err(bad("ca_cert / ca_path hold no certificates"));
    }
    WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .build()
        .map(|v| v as Arc<dyn ServerCertVerifier>)
        .map_err(|e| bad(format!("CA certificates: {e}")))
}

fn add_roots(
    roots: &mut RootCertStore,
    certs: Vec<CertificateDer<'static>>,
    file: &Path,
) -> Result<(), ConfigError> {
    for c in certs {
        roots
            .add(c)
            .map_err(|e| bad(format!("CA file {}: {e}", file.display())))?;
    }
    Ok(())
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
    let certs: Vec<_> = CertificateDer::pem_slice_iter(text.as_bytes())
        .collect::<Result<_, _>>()
        .map_err(|e| bad(format!("{what} {}: {e}", file.display())))?;
    if certs.is_empty() {
        return Err(bad(format!(
            "{what} {}: no PEM certificate in it",
            file.display()
        )));
    }
    Ok(certs)
}

fn private_key(file: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read_credential(file, "client_key")?;
    backend_core::secret::hold(&pem);
    // The parser's error names the PEM problem, never the key bytes.
    PrivateKeyDer::from_pem_slice(pem.expose().as_bytes())
        .map_err(|e| bad(format!("client_key {}: {e}", file.display())))
}

/// Checks the certificate against a configured name instead of the URL host.
#[derive(Debug)]
struct NameOverride {
    inner: Arc<dyn ServerCertVerifier>,
    name: ServerName<'static>,
}

impl ServerCertVerifier for NameOverride {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        self.inner
            .verify_server_cert(end_entity, intermediates, &self.name, ocsp_response, now)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}
