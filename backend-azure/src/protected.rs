//! Password-protected keys: a PEM `ENCRYPTED PRIVATE KEY` (PKCS#8 with
//! PBES2) and PKCS#12 (`.pfx`/`.p12`) files as OpenSSL 3 writes them by
//! default; see [`crate::assertion`] for what is supported and why.
//!
//! Nothing here shows a password, a key or a decrypted byte in a message;
//! every decrypted buffer is zeroized.

use der::asn1::{ContextSpecific, OctetString};
use der::{Decode as _, Encode as _};
use pkcs8::EncryptedPrivateKeyInfo;
use zeroize::Zeroizing;

/// `id-data`.
const ID_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
/// `id-encryptedData`.
const ID_ENCRYPTED_DATA: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.6");
/// PBES2 (PKCS#5 v2).
const PBES2: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.5.13");
/// `x509Certificate` in a certificate bag.
const X509_CERTIFICATE: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.22.1");
const SHA256: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
const SHA512: der::oid::ObjectIdentifier =
    der::oid::ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.3");

/// Most PBKDF2 iterations and MAC iterations accepted (OpenSSL writes
/// 2,048; Azure's tooling up to a few hundred thousand): a planted file
/// must not keep us busy past the call's deadline.
const MAX_ITERATIONS: u32 = 2_000_000;

/// What the refusal of legacy PKCS#12 encryption says.
pub const LEGACY: &str = "the file uses legacy PKCS#12 encryption (RC2, 3DES or RC4 with SHA-1), which is not read; export it again with OpenSSL 3's defaults (AES-256-CBC, PBKDF2, HMAC-SHA256), without -legacy: openssl pkcs12 -in old.pfx -nodes | openssl pkcs12 -export -out new.pfx";

/// The PKCS#8 DER of an `EncryptedPrivateKeyInfo` (PBES2 only), decrypted.
pub fn decrypt_pkcs8(der: &[u8], password: &[u8]) -> Result<Zeroizing<Vec<u8>>, String> {
    let info = EncryptedPrivateKeyInfo::from_der(der)
        .map_err(|_| "the encrypted private key is not PKCS#8".to_owned())?;
    decrypt(
        &info.encryption_algorithm,
        info.encrypted_data,
        password,
        "private key",
    )
}

/// Decrypts `data` with a PBES2 `scheme`.
fn decrypt(
    scheme: &pkcs5::EncryptionScheme<'_>,
    data: &[u8],
    password: &[u8],
    what: &str,
) -> Result<Zeroizing<Vec<u8>>, String> {
    let pkcs5::EncryptionScheme::Pbes2(params) = scheme else {
        return Err(format!(
            "the {what} is encrypted with a PKCS#5 v1 scheme (DES or RC2 with MD5 or SHA-1), which is not read; encrypt it again with PBES2: openssl pkcs8 -topk8 -v2 aes-256-cbc"
        ));
    };
    if let pkcs5::pbes2::Kdf::Pbkdf2(p) = &params.kdf
        && p.iteration_count > MAX_ITERATIONS
    {
        return Err(format!(
            "the {what}'s key derivation asks for {} iterations (at most {MAX_ITERATIONS} are done)",
            p.iteration_count
        ));
    }
    // scrypt takes 128 * N * r bytes: N 2^16 and r 8 is 64 MiB, four times
    // what `openssl pkcs8 -scrypt` asks for by default (N 2^14); more would
    // let a key file make the process take gigabytes.
    if let pkcs5::pbes2::Kdf::Scrypt(p) = &params.kdf
        && (p.cost_parameter > 1 << 16 || p.block_size > 8 || p.parallelization > 1)
    {
        return Err(format!(
            "the {what}'s scrypt parameters are larger than done here (N 2^16, r 8, p 1)"
        ));
    }
    let mut buf = Zeroizing::new(data.to_vec());
    let len = scheme
        .decrypt_in_place(password, &mut buf)
        .map_err(|e| match e {
            pkcs5::Error::AlgorithmParametersInvalid { .. }
            | pkcs5::Error::UnsupportedAlgorithm { .. } => format!(
                "the {what} is encrypted with an algorithm not read here (PBES2 with PBKDF2 or scrypt and AES-CBC are)"
            ),
            _ => format!("cannot decrypt the {what}: wrong password"),
        })?
        .len();
    buf.truncate(len);
    Ok(buf)
}

/// A PKCS#12 file's private key (PKCS#8 DER) and certificates (DER, in the
/// file's order), with its MAC checked first.
pub(crate) struct Contents {
    /// The first private key.
    pub(crate) key: Option<Zeroizing<Vec<u8>>>,
    /// Every certificate.
    pub(crate) certs: Vec<Vec<u8>>,
}

/// Reads a PKCS#12 file (DER) with `password`.
pub(crate) fn read(file: &[u8], password: &str) -> Result<Contents, String> {
    let not_p12 = |_| "not a PKCS#12 file (nor PEM)".to_owned();
    let pfx = ::pkcs12::pfx::Pfx::from_der(file).map_err(not_p12)?;
    if pfx.auth_safe.content_type != ID_DATA {
        return Err(
            "the PKCS#12 file is signed with a public key (not password-protected), which is not read"
                .into(),
        );
    }
    let auth_safe = pfx
        .auth_safe
        .content
        .decode_as::<OctetString>()
        .map_err(not_p12)?;
    let auth_safe = auth_safe.as_bytes();
    match &pfx.mac_data {
        Some(mac) => check_mac(mac, auth_safe, password)?,
        None => {
            tracing::debug!("the PKCS#12 file has no MAC; its password is checked by decryption")
        }
    }
    let safes =
        ::pkcs12::authenticated_safe::AuthenticatedSafe::from_der(auth_safe).map_err(not_p12)?;
    let mut contents = Contents {
        key: None,
        certs: Vec::new(),
    };
    for safe in &safes {
        let bags: Zeroizing<Vec<u8>> = if safe.content_type == ID_DATA {
            let os = safe.content.decode_as::<OctetString>().map_err(not_p12)?;
            Zeroizing::new(os.as_bytes().to_vec())
        } else if safe.content_type == ID_ENCRYPTED_DATA {
            let data = safe
                .content
                .decode_as::<cms::encrypted_data::EncryptedData>()
                .map_err(not_p12)?;
            let info = &data.enc_content_info;
            let scheme = scheme(&info.content_enc_alg)?;
            let Some(ciphertext) = &info.encrypted_content else {
                continue;
            };
            decrypt(
                &scheme,
                ciphertext.as_bytes(),
                password.as_bytes(),
                "certificates",
            )?
        } else {
            return Err(
                "the PKCS#12 file holds enveloped (public-key encrypted) contents, which are not read"
                    .into(),
            );
        };
        let bags = ::pkcs12::safe_bag::SafeContents::from_der(&bags).map_err(not_p12)?;
        for bag in &bags {
            match bag.bag_id {
                ::pkcs12::PKCS_12_PKCS8_KEY_BAG_OID if contents.key.is_none() => {
                    // A legacy PBE's OID is not a scheme pkcs5 decodes.
                    let inner =
                        ContextSpecific::<EncryptedPrivateKeyInfo<'_>>::from_der(&bag.bag_value)
                            .map_err(|_| LEGACY.to_owned())?;
                    let info = inner.value;
                    if info.encryption_algorithm.oid() != PBES2 {
                        return Err(LEGACY.into());
                    }
                    contents.key = Some(decrypt(
                        &info.encryption_algorithm,
                        info.encrypted_data,
                        password.as_bytes(),
                        "private key",
                    )?);
                }
                ::pkcs12::PKCS_12_KEY_BAG_OID if contents.key.is_none() => {
                    let inner =
                        ContextSpecific::<der::Any>::from_der(&bag.bag_value).map_err(not_p12)?;
                    contents.key = Some(Zeroizing::new(inner.value.to_der().map_err(not_p12)?));
                }
                ::pkcs12::PKCS_12_CERT_BAG_OID => {
                    let inner =
                        ContextSpecific::<::pkcs12::cert_type::CertBag>::from_der(&bag.bag_value)
                            .map_err(not_p12)?;
                    if inner.value.cert_id == X509_CERTIFICATE {
                        contents
                            .certs
                            .push(inner.value.cert_value.as_bytes().to_vec());
                    }
                }
                _ => {}
            }
        }
    }
    Ok(contents)
}

/// The PBES2 scheme of an encrypted content's algorithm; anything else is
/// the legacy encryption.
fn scheme(alg: &spki::AlgorithmIdentifierOwned) -> Result<pkcs5::EncryptionScheme<'_>, String> {
    if alg.oid != PBES2 {
        return Err(LEGACY.into());
    }
    let params = alg
        .parameters
        .as_ref()
        .ok_or("the PKCS#12 file's PBES2 parameters are missing")?;
    let params = params
        .decode_as::<pkcs5::pbes2::Parameters<'_>>()
        .map_err(|_| "the PKCS#12 file's PBES2 parameters are not read here".to_owned())?;
    Ok(params.into())
}

/// Checks the file's MAC (HMAC-SHA256 or -SHA512, its key from the
/// password by PKCS#12's own derivation): a wrong password is told here.
fn check_mac(mac: &::pkcs12::mac_data::MacData, data: &[u8], password: &str) -> Result<(), String> {
    use ::pkcs12::kdf::{Pkcs12KeyType, derive_key_utf8};
    let rounds = mac.iterations;
    if !(1..=i32::try_from(MAX_ITERATIONS).unwrap_or(i32::MAX)).contains(&rounds) {
        return Err(format!(
            "the PKCS#12 file's MAC asks for {rounds} iterations (at most {MAX_ITERATIONS} are done)"
        ));
    }
    let salt = mac.mac_salt.as_bytes();
    let oid = mac.mac.algorithm.oid;
    let (alg, key) = if oid == SHA256 {
        (
            ring::hmac::HMAC_SHA256,
            derive_key_utf8::<sha2::Sha256>(password, salt, Pkcs12KeyType::Mac, rounds, 32),
        )
    } else if oid == SHA512 {
        (
            ring::hmac::HMAC_SHA512,
            derive_key_utf8::<sha2::Sha512>(password, salt, Pkcs12KeyType::Mac, rounds, 64),
        )
    } else {
        return Err(LEGACY.into());
    };
    let key = Zeroizing::new(key.map_err(|_| "the password is not text".to_owned())?);
    ring::hmac::verify(
        &ring::hmac::Key::new(alg, &key),
        data,
        mac.mac.digest.as_bytes(),
    )
    .map_err(|_| "wrong password (the PKCS#12 file's MAC does not verify)".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An `EncryptedPrivateKeyInfo` of `plain` with PBKDF2-SHA256 at
    /// `iterations` and AES-256-CBC.
    fn encrypted(plain: &[u8], password: &str, iterations: u32) -> Vec<u8> {
        let (salt, iv) = ([7u8; 16], [9u8; 16]);
        let params =
            pkcs5::pbes2::Parameters::pbkdf2_sha256_aes256cbc(iterations, &salt, &iv).unwrap();
        let scheme = pkcs5::EncryptionScheme::from(params);
        let data = scheme.encrypt(password, plain).unwrap();
        EncryptedPrivateKeyInfo {
            encryption_algorithm: scheme,
            encrypted_data: &data,
        }
        .to_der()
        .unwrap()
    }

    #[test]
    fn pbes2_keys_decrypt_and_a_wrong_password_is_said_without_it() {
        let plain = b"0\x03\x02\x01\x00 not really a key";
        let der = encrypted(plain, "right-PASSWORD", 2048);
        assert_eq!(
            decrypt_pkcs8(&der, b"right-PASSWORD").unwrap().as_slice(),
            plain
        );
        let e = decrypt_pkcs8(&der, b"wrong-PASSWORD").unwrap_err();
        assert!(
            e.contains("wrong password") && !e.contains("PASSWORD"),
            "{e}"
        );
        let e = decrypt_pkcs8(b"\x30\x00", b"x").unwrap_err();
        assert!(e.contains("not PKCS#8"), "{e}");
    }

    #[test]
    fn a_planted_iteration_count_is_refused_before_any_work() {
        let der = encrypted(b"key", "pw", 2048);
        // Re-encode with a huge count, without paying for it.
        let info = EncryptedPrivateKeyInfo::from_der(&der).unwrap();
        let pkcs5::EncryptionScheme::Pbes2(mut params) = info.encryption_algorithm else {
            panic!("PBES2")
        };
        if let pkcs5::pbes2::Kdf::Pbkdf2(p) = &mut params.kdf {
            p.iteration_count = u32::MAX;
        }
        let huge = EncryptedPrivateKeyInfo {
            encryption_algorithm: params.into(),
            encrypted_data: info.encrypted_data,
        }
        .to_der()
        .unwrap();
        let start = std::time::Instant::now();
        let e = decrypt_pkcs8(&huge, b"pw").unwrap_err();
        assert!(e.contains("iterations"), "{e}");
        assert!(start.elapsed() < std::time::Duration::from_secs(1));
    }

    #[test]
    fn what_is_not_pkcs12_says_so() {
        for file in [&b"\x30\x03\x02\x01\x03"[..], b""] {
            let Err(e) = read(file, "") else {
                panic!("read")
            };
            assert!(e.contains("not a PKCS#12"), "{e}");
        }
    }
}
