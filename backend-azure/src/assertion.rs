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
//! The certificate file (`azure_client_certificate_path`) is either
//!
//! - **PEM** holding the certificate(s) and an RSA private key: PKCS#8
//!   (`PRIVATE KEY`), PKCS#1 (`RSA PRIVATE KEY`), or PKCS#8 encrypted
//!   (`ENCRYPTED PRIVATE KEY`) with PBES2, which is what
//!   `openssl pkcs8 -topk8 -v2 aes-256-cbc`, `openssl genpkey -aes256`
//!   and Azure's tooling write: PBKDF2 (HMAC-SHA1/-SHA224/-SHA256/-SHA384/
//!   -SHA512) or scrypt, and AES-128/192/256-CBC; or
//! - **PKCS#12** (`.pfx`/`.p12`, DER) as OpenSSL 3 writes it by default
//!   (`openssl pkcs12 -export`): the certificates in a PBES2 (PBKDF2-HMAC-
//!   SHA256, AES-256-CBC) `EncryptedData`, the key in a PBES2 shrouded key
//!   bag, and an HMAC-SHA256 (or -SHA512) MAC over it all, whose key comes
//!   from the password by PKCS#12's own derivation. The MAC is checked
//!   first, so a wrong password says so. A file without a password is read
//!   with the empty one.
//!
//! Both take `azure_client_certificate_password`. Not read, each with a
//! message saying how to convert: legacy PKCS#12 (RC2-40, 3DES or RC4
//! with SHA-1 and a SHA-1 MAC: OpenSSL 1.x's default, `-legacy` in 3),
//! PKCS#5 v1 (DES/RC2) encrypted PKCS#8 keys, OpenSSL's traditional
//! encrypted PEM (`Proc-Type: 4,ENCRYPTED`), EC keys (assertions are
//! RS256), and public-key-protected PKCS#12.
//!
//! The decryption is RustCrypto's ([`crate::protected`]): `pkcs8`'s
//! `EncryptedPrivateKeyInfo`, `pkcs5`'s PBES2 (PBKDF2, scrypt, AES-CBC),
//! `pkcs12`'s structures and MAC key derivation, `cms`'s `EncryptedData`,
//! all on `der`: pure Rust, no C library, maintained together, and only
//! the modern schemes (RC2, 3DES and SHA-1 PBEs stay out of the binary,
//! which keeps the size small: about 175 KB of the stripped binary for
//! all of it; the binary's size is in bench/RESULTS.md). The key itself
//! is used by ring (the signature), which rustls already links.
//! The certificate is the one whose public key is the private key's; the
//! others are its chain. No message carries the password or a key byte;
//! decrypted keys are zeroized.

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

/// OpenSSL's traditional encrypted PEM header.
const TRADITIONAL: &[u8] = b"Proc-Type: 4,ENCRYPTED";

impl Certificate {
    /// Parses a certificate file: PKCS#12 (DER) or PEM, encrypted with
    /// `password` or not (see the module docs).
    pub fn from_file(file: &[u8], password: Option<&Secret>) -> Result<Self, String> {
        if file.first() == Some(&0x30) {
            return Self::from_pkcs12(file, password);
        }
        Self::from_pem(file, password)
    }

    /// A PKCS#12 file, with `password` (or the empty one).
    fn from_pkcs12(file: &[u8], password: Option<&Secret>) -> Result<Self, String> {
        let contents = crate::protected::read(file, password.map_or("", Secret::expose))
            .map_err(|e| format!("{e} (PKCS#12)"))?;
        let key = contents.key.ok_or("no private key in the PKCS#12 file")?;
        Self::from_parts(SectionKind::PrivateKey, &key, contents.certs)
    }

    /// Parses a PEM file's text.
    pub fn from_pem(pem: &[u8], password: Option<&Secret>) -> Result<Self, String> {
        if find(pem, TRADITIONAL) {
            return Err(
                "the private key is encrypted the traditional OpenSSL way (Proc-Type: 4,ENCRYPTED), which is not read; convert it to PKCS#8: openssl pkcs8 -topk8 -v2 aes-256-cbc -in key.pem".into(),
            );
        }
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
        let encrypted = encrypted_key(pem)?;
        match (key_der, encrypted, password) {
            (Some(_), Some(_), _) => {
                Err("the file holds two private keys, one of them encrypted; keep one".into())
            }
            (Some((kind, der)), None, password) => {
                if password.is_some() {
                    tracing::warn!(
                        "azure_client_certificate_password is set but the key in the certificate file is not encrypted; the password is not used"
                    );
                }
                Self::from_parts(kind, &der, certs)
            }
            (None, Some(_), None) => Err(
                "the private key is encrypted: set azure_client_certificate_password".into(),
            ),
            (None, Some(encrypted), Some(password)) => {
                let der =
                    crate::protected::decrypt_pkcs8(&encrypted, password.expose().as_bytes())?;
                Self::from_parts(SectionKind::PrivateKey, &der, certs)
            }
            (None, None, _) => {
                Err("no private key in the file (PEM with the certificate and its key, or PKCS#12, expected)".into())
            }
        }
    }

    /// The certificate credential of a decoded key and certificates.
    fn from_parts(kind: SectionKind, der: &[u8], mut certs: Vec<Vec<u8>>) -> Result<Self, String> {
        let key = match kind {
            SectionKind::RsaPrivateKey => RsaKeyPair::from_der(der),
            _ => RsaKeyPair::from_pkcs8(der),
        }
        .map_err(|e| format!("the private key is not a usable RSA key ({e})"))?;
        let public = key.public_key().as_ref().to_vec();
        let Some(own) = certs.iter().position(|c| {
            !public.is_empty() && c.windows(public.len()).any(|w| w == public.as_slice())
        }) else {
            return Err(if certs.is_empty() {
                "no certificate in the file (the certificate and its key expected)".into()
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

fn find(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// The DER of the first `ENCRYPTED PRIVATE KEY` PEM section, if any.
fn encrypted_key(pem: &[u8]) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    const BEGIN: &str = "-----BEGIN ENCRYPTED PRIVATE KEY-----";
    const END: &str = "-----END ENCRYPTED PRIVATE KEY-----";
    let Ok(text) = std::str::from_utf8(pem) else {
        return Ok(None);
    };
    let Some(start) = text.find(BEGIN) else {
        return Ok(None);
    };
    let body = text.get(start + BEGIN.len()..).unwrap_or_default();
    let end = body
        .find(END)
        .ok_or("the encrypted private key's PEM section has no end")?;
    let b64: Zeroizing<String> = Zeroizing::new(
        body.get(..end)
            .unwrap_or_default()
            .chars()
            .filter(|c| !c.is_ascii_whitespace())
            .collect(),
    );
    STANDARD
        .decode(b64.as_bytes())
        .map(|d| Some(Zeroizing::new(d)))
        .map_err(|_| "the encrypted private key's PEM section is not base64".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_say_why() {
        let e = Certificate::from_file(b"garbage", None).unwrap_err();
        assert!(e.contains("no private key"), "{e}");
        let encrypted =
            b"-----BEGIN ENCRYPTED PRIVATE KEY-----\nMAA=\n-----END ENCRYPTED PRIVATE KEY-----\n";
        let e = Certificate::from_file(encrypted, None).unwrap_err();
        assert!(e.contains("azure_client_certificate_password"), "{e}");
        let e = Certificate::from_file(encrypted, Some(&Secret::from("pw-VALUE"))).unwrap_err();
        assert!(e.contains("not PKCS#8") && !e.contains("pw-VALUE"), "{e}");
        let e = Certificate::from_file(&[0x30, 0x82, 1, 2], Some(&Secret::from("pw"))).unwrap_err();
        assert!(e.contains("PKCS#12"), "{e}");
        let traditional = b"-----BEGIN RSA PRIVATE KEY-----\nProc-Type: 4,ENCRYPTED\nDEK-Info: AES-256-CBC,00\n\nAAAA\n-----END RSA PRIVATE KEY-----\n";
        let e = Certificate::from_file(traditional, None).unwrap_err();
        assert!(e.contains("openssl pkcs8 -topk8"), "{e}");
    }
}
