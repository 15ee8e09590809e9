//! One rustls client configuration for every networked store.
//!
//! We build it ourselves and hand it to reqwest (`use_preconfigured_tls`)
//! because reqwest alone cannot check the server certificate against a
//! name other than the URL's host (`VAULT_TLS_SERVER_NAME`, a Kubernetes
//! `tls-server-name`), and so that every store has the same rules:
//!
//! - roots given ([`Options::roots`]): only those CAs are trusted;
//!   otherwise the platform's verifier and roots ([`crate::SystemRoots`],
//!   read at the first handshake, `SSL_CERT_FILE` and `SSL_CERT_DIR`
//!   honoured);
//! - a server name override: the certificate must be valid for that name
//!   (the SNI sent is still the address's host);
//! - a client certificate and key, presented when the server asks;
//! - skip-verify: no certificate verification, only when the operator
//!   asked for it by name ([`crate::AcceptAny`]).

use std::sync::Arc;

use backend_core::Secret;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};

/// What a store's TLS settings ask for.
#[derive(Debug, Default)]
pub struct Options {
    /// The only CAs trusted; empty: the system's.
    pub roots: Vec<CertificateDer<'static>>,
    /// The name the certificate must be valid for, instead of the host's.
    pub server_name: Option<String>,
    /// A client certificate chain and its key.
    pub client: Option<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>)>,
    /// No verification at all: only an operator's explicit setting.
    pub skip_verify: bool,
}

/// The client configuration on ring for `opts`. Errors name the setting,
/// never key material.
pub fn client_config(opts: Options) -> Result<ClientConfig, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut verifier: Arc<dyn ServerCertVerifier> = if opts.skip_verify {
        Arc::new(crate::AcceptAny::new(provider.clone()))
    } else if opts.roots.is_empty() {
        Arc::new(crate::SystemRoots::new(provider.clone()))
    } else {
        let mut store = RootCertStore::empty();
        for cert in opts.roots {
            store
                .add(cert)
                .map_err(|e| format!("CA certificate: {e}"))?;
        }
        WebPkiServerVerifier::builder_with_provider(Arc::new(store), provider.clone())
            .build()
            .map_err(|e| format!("CA certificates: {e}"))?
    };
    if let Some(name) = opts.server_name
        && !opts.skip_verify
    {
        let name = ServerName::try_from(name.clone()).map_err(|_| {
            format!(
                "TLS server name '{}' is not a host name",
                name.escape_debug()
            )
        })?;
        verifier = Arc::new(NameOverride {
            inner: verifier,
            name,
        });
    }
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS setup: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier);
    match opts.client {
        None => Ok(builder.with_no_client_auth()),
        Some((chain, key)) => builder
            .with_client_auth_cert(chain, key)
            .map_err(|e| format!("client certificate and key: {e}")),
    }
}

/// The certificates of PEM text; `from` names where it came from. None at
/// all is an error.
pub fn pem_certs(pem: &[u8], from: &str) -> Result<Vec<CertificateDer<'static>>, String> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| format!("{from}: {e}"))?;
    if certs.is_empty() {
        return Err(format!("{from}: no PEM certificate in it"));
    }
    Ok(certs)
}

/// The private key of PEM text. The parser's error names the PEM problem,
/// never the key bytes.
pub fn pem_key(pem: &Secret, from: &str) -> Result<PrivateKeyDer<'static>, String> {
    PrivateKeyDer::from_pem_slice(pem.expose().as_bytes()).map_err(|e| format!("{from}: {e}"))
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
