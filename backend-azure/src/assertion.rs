//! The client assertion of a certificate credential: a JWT signed RS256
//! with the certificate's key, as Entra ID takes it in place of a client
//! secret.
//!
//! Header `{"alg":"RS256","typ":"JWT","x5t#S256":<SHA-256 of the
//! certificate, base64url>}` (plus `x5c`, the chain in standard base64,
//! when `azure_client_send_certificate_chain` is set, for subject
//! name/issuer authentication); claims `aud` (the token endpoint), `iss` =
//! `sub` (the client id), a random `jti`, `nbf` = `iat` = now, `exp` ten
//! minutes later. Signed with ring, which rustls already links.
//!
//! The certificate file is PEM holding the certificate(s) and an RSA
//! private key (PKCS#8 or PKCS#1), as Azure's SDKs take it. The
//! certificate is the one whose public key is the private key's; the
//! others are its chain. PKCS#12 (`.pfx`) files and encrypted PEM keys are
//! not read: a pure-Rust PKCS#12 reader brings RC2, 3DES, PBES2 and their
//! KDFs (several crates and a good part of the size budget) for a format
//! that `openssl pkcs12 -in cert.pfx -nodes -out cert.pem` turns into PEM
//! once; the error says so.

use backend_core::Secret;
use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use ring::rand::SecureRandom as _;
use ring::signature::{KeyPair as _, RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::pem::{PemObject, SectionKind};
use serde_json::json;
use zeroize::Zeroizing;

/// Largest certificate file read (a key and a chain of a few certificates).
pub const MAX_CERT_FILE: u64 = 256 * 1024;
/// Lifetime of an assertion, seconds.
const LIFETIME: u64 = 600;

/// A certificate credential, read from its file.
#[derive(Debug)]
pub struct Certificate {
    key: RsaKeyPair,
    /// The DER certificates, the key's own first.
    chain: Vec<Vec<u8>>,
}

impl Certificate {
    /// Parses a PEM file's text; `password` is refused (see the module doc).
    pub fn from_pem(pem: &[u8], password: Option<&Secret>) -> Result<Self, String> {
        let mut certs: Vec<Vec<u8>> = Vec::new();
        let mut key_der: Option<(SectionKind, Zeroizing<Vec<u8>>)> = None;
        for item in <(SectionKind, Vec<u8>)>::pem_slice_iter(pem) {
            let (kind, der) = item.map_err(|_| "not a PEM file".to_owned())?;
            match kind {
                SectionKind::Certificate => certs.push(der),
                SectionKind::PrivateKey | SectionKind::RsaPrivateKey if key_der.is_none() => {
                    key_der = Some((kind, Zeroizing::new(der)));
                }
                SectionKind::EcPrivateKey => {
                    return Err(
                        "the private key is an EC key; Entra ID client assertions here are RS256, with an RSA key"
                            .into(),
                    );
                }
                _ => {
                    let mut der = der;
                    zeroize::Zeroize::zeroize(&mut der);
                }
            }
        }
        let encrypted = pem.windows(b"ENCRYPTED".len()).any(|w| w == b"ENCRYPTED");
        let Some((kind, der)) = key_der else {
            return Err(if encrypted || password.is_some() {
                "the private key is encrypted (or the file is PKCS#12); give a PEM file with an unencrypted key, e.g. openssl pkcs12 -in cert.pfx -nodes -out cert.pem, mode 0600".into()
            } else if pem.first() == Some(&0x30) {
                "the file is DER or PKCS#12, not PEM; convert it: openssl pkcs12 -in cert.pfx -nodes -out cert.pem".into()
            } else {
                "no private key in the file (PEM with the certificate and its key expected)".into()
            });
        };
        if password.is_some() {
            tracing::warn!(
                "azure_client_certificate_password is set but the key in the certificate file is not encrypted; the password is not used"
            );
        }
        let key = match kind {
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(&der),
            _ => RsaKeyPair::from_pkcs8(&der),
        }
        .map_err(|e| format!("the private key is not a usable RSA key ({e})"))?;
        let public = key.public_key().as_ref().to_vec();
        let Some(own) = certs.iter().position(|c| {
            !public.is_empty() && c.windows(public.len()).any(|w| w == public.as_slice())
        }) else {
            return Err(if certs.is_empty() {
                "no certificate in the file (PEM with the certificate and its key expected)".into()
            } else {
                "no certificate in the file holds the private key's public key".into()
            });
        };
        let leaf = certs.remove(own);
        certs.insert(0, leaf);
        Ok(Self { key, chain: certs })
    }

    /// `x5t#S256`: the certificate's SHA-256 thumbprint, base64url.
    pub fn thumbprint(&self) -> String {
        let der = self.chain.first().map(Vec::as_slice).unwrap_or_default();
        URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, der))
    }

    /// A signed assertion for `client_id` at `audience` (the token URL),
    /// held as a credential.
    pub fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        send_chain: bool,
        now: u64,
    ) -> Result<Secret, String> {
        let rng = ring::rand::SystemRandom::new();
        let mut jti = [0u8; 16];
        rng.fill(&mut jti).map_err(|_| "no randomness".to_owned())?;
        let mut header = json!({"alg": "RS256", "typ": "JWT", "x5t#S256": self.thumbprint()});
        if send_chain {
            header["x5c"] = self.chain.iter().map(|c| STANDARD.encode(c)).collect();
        }
        let claims = json!({
            "aud": audience,
            "iss": client_id,
            "sub": client_id,
            "jti": jti.iter().map(|b| format!("{b:02x}")).collect::<String>(),
            "nbf": now,
            "iat": now,
            "exp": now + LIFETIME,
        });
        let mut jwt = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let mut sig = vec![0u8; self.key.public().modulus_len()];
        self.key
            .sign(&RSA_PKCS1_SHA256, &rng, jwt.as_bytes(), &mut sig)
            .map_err(|_| "signing the assertion failed".to_owned())?;
        jwt.push('.');
        jwt.push_str(&URL_SAFE_NO_PAD.encode(&sig));
        Ok(Secret::credential(jwt))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_why() {
        let e = Certificate::from_pem(b"garbage", None).unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let e = Certificate::from_pem(
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nAAAA\n-----END ENCRYPTED PRIVATE KEY-----\n",
            None,
        )
        .unwrap_err();
        assert!(e.contains("encrypted"), "{e}");
        let e = Certificate::from_pem(&[0x30, 0x82, 1, 2], Some(&Secret::from("pw"))).unwrap_err();
        assert!(e.contains("PKCS#12") && e.contains("openssl"), "{e}");
    }
}
