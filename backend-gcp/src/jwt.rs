//! RS256 JWT assertions for service account keys (RFC 7523), signed with
//! ring, which rustls links already: no JWT or RSA crate.
//!
//! A service account key file holds a PKCS#8 PEM RSA key; PKCS#1
//! (`BEGIN RSA PRIVATE KEY`) is accepted too. The key is parsed for each
//! assertion and dropped with it; errors name the PEM or key problem,
//! never a byte of the key.

use backend_core::Secret;
use base64::Engine as _;
use ring::rand::SystemRandom;
use ring::signature::{RSA_PKCS1_SHA256, RsaKeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::json;
use zeroize::Zeroizing;

/// The OAuth scope every token is asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime of an assertion (Google accepts at most one hour).
pub const LIFETIME_SECS: u64 = 3600;

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// What an assertion asserts.
#[derive(Debug, Clone, Copy)]
pub struct Claims<'a> {
    /// The service account's email (`iss`).
    pub issuer: &'a str,
    /// The token endpoint (`aud`).
    pub audience: &'a str,
    /// The key's id (`kid` of the header), when the file names it.
    pub key_id: Option<&'a str>,
    /// Seconds since the epoch (`iat`).
    pub now: u64,
}

/// The signed assertion `header.claims.signature`, held as a credential.
pub fn assertion(pem_key: &str, claims: Claims<'_>) -> Result<Secret, String> {
    let key = key_pair(pem_key)?;
    let mut header = json!({"alg": "RS256", "typ": "JWT"});
    if let Some(kid) = claims.key_id {
        header["kid"] = kid.into();
    }
    let body = json!({
        "iss": claims.issuer,
        "scope": SCOPE,
        "aud": claims.audience,
        "iat": claims.now,
        "exp": claims.now + LIFETIME_SECS,
    });
    let signing_input = format!(
        "{}.{}",
        b64(header.to_string().as_bytes()),
        b64(body.to_string().as_bytes())
    );
    let mut signature = Zeroizing::new(vec![0u8; key.public().modulus_len()]);
    key.sign(
        &RSA_PKCS1_SHA256,
        &SystemRandom::new(),
        signing_input.as_bytes(),
        &mut signature,
    )
    .map_err(|_| "signing the JWT assertion failed".to_owned())?;
    Ok(Secret::credential(format!(
        "{signing_input}.{}",
        b64(&signature)
    )))
}

fn key_pair(pem_key: &str) -> Result<RsaKeyPair, String> {
    let der = PrivateKeyDer::from_pem_slice(pem_key.as_bytes())
        .map_err(|e| format!("private_key is not a PEM private key ({e})"))?;
    let pair = match &der {
        PrivateKeyDer::Pkcs8(k) => RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()),
        PrivateKeyDer::Pkcs1(k) => RsaKeyPair::from_der(k.secret_pkcs1_der()),
        _ => return Err("private_key is not an RSA key".to_owned()),
    };
    pair.map_err(|e| format!("private_key is not a usable RSA key ({e})"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use ring::signature::{RSA_PKCS1_2048_8192_SHA256, UnparsedPublicKey};

    /// A 2048-bit test key made for these tests (openssl genpkey), used
    /// nowhere else.
    pub const TEST_KEY: &str = include_str!("../tests/data/test-sa-key.pem");

    #[test]
    fn assertions_verify_with_the_public_key() {
        let now = 1_700_000_000;
        let jwt = assertion(
            TEST_KEY,
            Claims {
                issuer: "sa@p.iam.gserviceaccount.com",
                audience: "https://oauth2.googleapis.com/token",
                key_id: Some("kid-1"),
                now,
            },
        )
        .unwrap();
        let parts: Vec<&str> = jwt.expose().split('.').collect();
        assert_eq!(parts.len(), 3);
        let dec = |s: &str| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(s)
                .unwrap()
        };
        let header: serde_json::Value = serde_json::from_slice(&dec(parts[0])).unwrap();
        assert_eq!(header["alg"], "RS256");
        assert_eq!(header["kid"], "kid-1");
        let claims: serde_json::Value = serde_json::from_slice(&dec(parts[1])).unwrap();
        assert_eq!(claims["iss"], "sa@p.iam.gserviceaccount.com");
        assert_eq!(claims["aud"], "https://oauth2.googleapis.com/token");
        assert_eq!(claims["scope"], SCOPE);
        assert_eq!(claims["exp"], now + 3600);
        let pair = key_pair(TEST_KEY).unwrap();
        let public = UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, pair.public().as_ref());
        let signed = format!("{}.{}", parts[0], parts[1]);
        public.verify(signed.as_bytes(), &dec(parts[2])).unwrap();
    }

    #[test]
    fn bad_keys_are_named_not_shown() {
        let claims = Claims {
            issuer: "i",
            audience: "a",
            key_id: None,
            now: 0,
        };
        let e = assertion("not a key MARKER-77", claims).unwrap_err();
        assert!(e.contains("private_key") && !e.contains("MARKER"), "{e}");
        let truncated: String = TEST_KEY.lines().take(5).collect::<Vec<_>>().join("\n");
        let e = assertion(&truncated, claims).unwrap_err();
        assert!(e.contains("private_key"), "{e}");
    }
}
