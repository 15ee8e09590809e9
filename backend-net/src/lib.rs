//! What every networked store shares: [`http`] (the client, retries under
//! the deadline, bounded bodies, failures in words) and [`tls`] (one client
//! configuration for every store's TLS settings). Every store links the
//! same rustls with ring, so the multi binary carries one TLS stack.
//!
//! [`SystemRoots`] is the platform verifier with the system's roots, built
//! at the first certificate it is asked to check: reading the system store
//! (about 150 files on a Debian host, 3-4 ms) is wasted on an `http://`
//! address, and a store that cannot be read fails the handshake, so the
//! request says why. [`system_roots_config`] is a whole client
//! configuration on it, for a backend that has no TLS settings of its own.
//!
//! The platform verifier reads `SSL_CERT_FILE` and the files of
//! `SSL_CERT_DIR` with blocking reads: a FIFO planted at either would hold
//! the handshake until the deadline. [`check_root_paths`] refuses them first
//! (a `stat`, which never blocks), as the core refuses every other special
//! file we are pointed at.

pub mod http;
#[cfg(feature = "sigv4")]
pub mod sigv4;
pub mod tls;

pub use http::{Failure, Http, Response};

use std::sync::{Arc, OnceLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, SignatureScheme};

/// A client configuration on ring that verifies servers against the
/// system roots (read at the first handshake), with no client certificate.
/// There is no way to turn verification off through it.
pub fn system_roots_config() -> Result<ClientConfig, rustls::Error> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    Ok(ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()?
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(SystemRoots::new(provider)))
        .with_no_client_auth())
}

/// Most files of `SSL_CERT_DIR` looked at.
const MAX_DIR_ENTRIES: usize = 10_000;

/// Refuses an `SSL_CERT_FILE`, or a file in `SSL_CERT_DIR`, that exists and
/// is not a regular file (a FIFO, socket or device), before anything opens
/// it; `env` reads a variable. Missing paths are left to the verifier.
pub fn check_root_paths(env: &dyn Fn(&str) -> Option<std::ffi::OsString>) -> Result<(), String> {
    let special =
        |path: &std::path::Path| std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    if let Some(file) = env("SSL_CERT_FILE").filter(|f| !f.is_empty()) {
        let file = std::path::PathBuf::from(file);
        if special(&file) || file.is_dir() {
            return Err(format!(
                "system TLS roots: SSL_CERT_FILE {} is not a regular file (a FIFO, socket or device is never read)",
                file.display()
            ));
        }
    }
    let dirs = env("SSL_CERT_DIR").unwrap_or_default();
    for dir in std::env::split_paths(&dirs).filter(|d| !d.as_os_str().is_empty()) {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten().take(MAX_DIR_ENTRIES) {
            if special(&entry.path()) {
                return Err(format!(
                    "system TLS roots: {} in SSL_CERT_DIR is not a regular file (a FIFO, socket or device is never read)",
                    entry.path().display()
                ));
            }
        }
    }
    Ok(())
}

/// Accepts any server certificate, still checking handshake signatures:
/// what an operator's explicit `skip_verify` (vault) or
/// `insecure_skip_tls_verify` (k8s) asks for, and nothing else may use.
#[derive(Debug)]
pub struct AcceptAny(Arc<CryptoProvider>);

impl AcceptAny {
    /// The verifier, with `provider`'s signature algorithms.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self(provider)
    }
}

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12(&self.0, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(&self.0, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// Whether `e` is a rustls error: a refused handshake, which a retry would
/// only repeat. Found bare or inside `io::Error`s, however deeply nested
/// (hyper-rustls wraps tokio-rustls's `io::Error` in another): an
/// `io::Error`'s `source()` skips the error it wraps, so `get_ref` it is.
pub fn is_tls_error(e: &(dyn std::error::Error + 'static)) -> bool {
    let mut e = e;
    loop {
        if e.is::<rustls::Error>() {
            return true;
        }
        match e
            .downcast_ref::<std::io::Error>()
            .and_then(std::io::Error::get_ref)
        {
            Some(inner) => e = inner,
            None => return false,
        }
    }
}

/// The platform verifier with the system roots, built when the first
/// certificate arrives.
#[derive(Debug)]
pub struct SystemRoots {
    provider: Arc<CryptoProvider>,
    verifier: OnceLock<Result<rustls_platform_verifier::Verifier, String>>,
}

impl SystemRoots {
    /// A verifier using `provider`'s algorithms; reads nothing yet.
    pub fn new(provider: Arc<CryptoProvider>) -> Self {
        Self {
            provider,
            verifier: OnceLock::new(),
        }
    }
}

impl ServerCertVerifier for SystemRoots {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let verifier = self.verifier.get_or_init(|| {
            check_root_paths(&|name| std::env::var_os(name))?;
            rustls_platform_verifier::Verifier::new(self.provider.clone())
                .map_err(|e| format!("system TLS roots: {e}"))
        });
        match verifier {
            Ok(v) => {
                v.verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
            }
            Err(e) => Err(rustls::Error::General(e.clone())),
        }
    }

    // Handshake signatures need no roots: the provider's algorithms, as
    // the platform verifier itself uses them.
    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12(&self.provider, message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13(&self.provider, message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider
            .signature_verification_algorithms
            .supported_schemes()
    }
}

/// Checks a TLS 1.2 handshake signature with `provider`'s algorithms.
pub fn verify_tls12(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls12_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

/// Checks a TLS 1.3 handshake signature with `provider`'s algorithms.
pub fn verify_tls13(
    provider: &CryptoProvider,
    message: &[u8],
    cert: &CertificateDer<'_>,
    dss: &DigitallySignedStruct,
) -> Result<HandshakeSignatureValid, rustls::Error> {
    rustls::crypto::verify_tls13_signature(
        message,
        cert,
        dss,
        &provider.signature_verification_algorithms,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_reads_no_roots_until_a_handshake() {
        let config = system_roots_config().unwrap();
        assert!(config.alpn_protocols.is_empty());
        let roots = SystemRoots::new(Arc::new(rustls::crypto::ring::default_provider()));
        assert!(roots.verifier.get().is_none());
        assert!(!roots.supported_verify_schemes().is_empty());
    }

    #[test]
    fn special_root_files_are_refused_without_opening_them() {
        let d = std::env::temp_dir().join(format!("tls-roots-{}", std::process::id()));
        std::fs::create_dir_all(&d).unwrap();
        let fifo = d.join("fifo.pem");
        let _ = std::fs::remove_file(&fifo);
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        let file = fifo.clone().into_os_string();
        let dir = d.clone().into_os_string();
        let e = check_root_paths(&|n| (n == "SSL_CERT_FILE").then(|| file.clone())).unwrap_err();
        assert!(
            e.contains("SSL_CERT_FILE") && e.contains("not a regular file"),
            "{e}"
        );
        let e = check_root_paths(&|n| (n == "SSL_CERT_DIR").then(|| dir.clone())).unwrap_err();
        assert!(e.contains("in SSL_CERT_DIR"), "{e}");
        let zero = std::ffi::OsString::from("/dev/zero");
        assert!(check_root_paths(&|n| (n == "SSL_CERT_FILE").then(|| zero.clone())).is_err());
        std::fs::remove_file(&fifo).unwrap();
        assert!(check_root_paths(&|n| (n == "SSL_CERT_DIR").then(|| dir.clone())).is_ok());
        assert!(check_root_paths(&|_| None).is_ok());
        let _ = std::fs::remove_dir(&d);
    }

    #[test]
    fn rustls_errors_are_found_bare_and_wrapped() {
        let bare = rustls::Error::General("x".into());
        assert!(is_tls_error(&bare));
        let wrapped = std::io::Error::other(rustls::Error::General("x".into()));
        assert!(is_tls_error(&wrapped));
        let twice =
            std::io::Error::other(std::io::Error::other(rustls::Error::General("x".into())));
        assert!(is_tls_error(&twice));
        assert!(!is_tls_error(&std::io::Error::other("refused")));
    }
}
