//! The one type that holds a secret value.
//!
//! A [`Secret`] cannot be printed by accident: it has no `Display`, its
//! `Debug` prints a fixed redaction, and its memory is zeroized on drop. The
//! only way to the text is [`Secret::expose`], which the reply serializer
//! calls where the value is written to stdout.
//!
//! A credential the backend itself uses (a Vault token, a login's token, a
//! password, an AWS key) is a [`Secret`] too, made with
//! [`Secret::credential`] or passed to [`hold`]: that records it for the
//! process, and the runner refuses to hand out any value that equals or
//! contains one ([`reveals_credential`]). That is the last line of
//! defence behind each store's own refusals (Vault's `auth/` paths, say):
//! whatever path a hostile handle finds to the backend's own identity, the
//! identity never leaves in a reply.

use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

use zeroize::Zeroizing;

/// A secret value, redacted in `Debug` and zeroized on drop. The default is
/// the empty value (what [`crate::provider::Fetched::take`] leaves behind).
#[derive(Clone, Default, PartialEq, Eq)]
pub struct Secret(Zeroizing<String>);

impl Secret {
    /// Wraps a value; the `String`'s buffer is zeroized when the secret drops.
    pub fn new(value: String) -> Self {
        Self(Zeroizing::new(value))
    }

    /// The value itself. Call it only where the value leaves the process as
    /// part of the reply, or where a provider derives another secret from it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length of the value in bytes (not secret: the agent's output cap needs it).
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// Whether the value is empty; the agent refuses empty values.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Secret {
    /// Wraps a credential the backend uses, and [`hold`]s it.
    pub fn credential(value: String) -> Self {
        let secret = Self::new(value);
        hold(&secret);
        secret
    }
}

/// The credentials this process holds, zeroized when they are replaced.
static HELD: Mutex<Vec<Secret>> = Mutex::new(Vec::new());

/// A credential shorter than this is matched only as a whole value, not
/// inside a longer one (a short password may well occur in other text).
pub const MIN_CONTAINED: usize = 12;

/// Records `credential` as one the backend holds: no reply may carry it.
/// Empty ones are ignored. A credential that JSON writes escaped (a PEM
/// key's newlines, a quote) is held in that form too: a file holding it as
/// a JSON string (a GCP service account key file, say) carries it so.
pub fn hold(credential: &Secret) {
    if credential.is_empty() {
        return;
    }
    let escaped = json_escaped(credential.expose());
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    for c in std::iter::once(credential).chain(escaped.as_ref()) {
        if !held.contains(c) {
            held.push(c.clone());
        }
    }
}

/// `text` as it stands inside a JSON string, when that differs from it.
fn json_escaped(text: &str) -> Option<Secret> {
    let quoted = Secret::new(serde_json::to_string(text).ok()?);
    let inner = quoted.expose().get(1..quoted.len().saturating_sub(1))?;
    (inner != text).then(|| Secret::new(inner.to_owned()))
}

/// Whether `value` is, or contains, a credential this process [`hold`]s.
pub fn reveals_credential(value: &str) -> bool {
    let held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    held.iter().any(|c| {
        let c = c.expose();
        value == c || (c.len() >= MIN_CONTAINED && value.contains(c))
    })
}

/// A credential a config holds inline (a token, a password, a secret id,
/// an AWS key): a [`Secret`] that is [`hold`]s as it is read, so no reply
/// may carry it, and that is counted ([`inline_credentials`]), so the
/// runner warns about a config file others can read that holds one.
///
/// It deserializes from any scalar, as YAML writes one: `password:
/// 987654321` and `token: true` are the texts `987654321` and `true`, in
/// every binary, and a sequence or mapping is refused with a message that
/// quotes nothing.
#[derive(Clone, PartialEq, Eq)]
pub struct Credential(Secret);

/// Credentials deserialized from configs so far.
static INLINE: AtomicUsize = AtomicUsize::new(0);

/// How many [`Credential`]s configs have held so far in this process.
pub fn inline_credentials() -> usize {
    INLINE.load(Ordering::Relaxed)
}

impl Credential {
    /// Wraps a credential the backend uses, and [`hold`]s it.
    pub fn new(value: String) -> Self {
        Self(Secret::credential(value))
    }

    /// The credential's text, for the request that presents it.
    pub fn expose(&self) -> &str {
        self.0.expose()
    }

    /// The credential as a [`Secret`].
    pub fn secret(&self) -> &Secret {
        &self.0
    }

    /// Whether it is empty.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl From<String> for Credential {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Credential {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl From<Credential> for Secret {
    fn from(c: Credential) -> Self {
        c.0
    }
}

impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Credential(<redacted>)")
    }
}

impl<'de> serde::Deserialize<'de> for Credential {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Scalar;
        impl serde::de::Visitor<'_> for Scalar {
            type Value = String;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a credential written as one scalar (a string)")
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<String, E> {
                Ok(v.to_owned())
            }
            fn visit_string<E: serde::de::Error>(self, v: String) -> Result<String, E> {
                Ok(v)
            }
            fn visit_bool<E: serde::de::Error>(self, v: bool) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_i128<E: serde::de::Error>(self, v: i128) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_u128<E: serde::de::Error>(self, v: u128) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_f64<E: serde::de::Error>(self, v: f64) -> Result<String, E> {
                Ok(v.to_string())
            }
            fn visit_bytes<E: serde::de::Error>(self, v: &[u8]) -> Result<String, E> {
                // Never `invalid_value(Unexpected::Bytes(v))`: it would quote them.
                std::str::from_utf8(v)
                    .map(str::to_owned)
                    .map_err(|_| E::custom("a credential must be UTF-8 text"))
            }
        }
        let text = d.deserialize_any(Scalar)?;
        INLINE.fetch_add(1, Ordering::Relaxed);
        Ok(Self::new(text))
    }
}

impl From<String> for Secret {
    fn from(value: String) -> Self {
        Self::new(value)
    }
}

impl From<&str> for Secret {
    fn from(value: &str) -> Self {
        Self::new(value.to_owned())
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_credential_is_also_held_as_json_writes_it() {
        let pem = "-----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEF\n-----END PRIVATE KEY-----\n";
        hold(&Secret::from(pem));
        // The key file: the key as a JSON string, newlines escaped.
        let file = format!(
            "{{\"type\": \"service_account\", \"private_key\": {}}}",
            serde_json::to_string(pem).unwrap()
        );
        assert!(reveals_credential(&file));
        assert!(reveals_credential(pem));
        assert!(!reveals_credential("MIIEvQIBADANBgkqhkiG9w0BAQEG"));
    }

    #[test]
    fn debug_is_redacted() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.len(), 7);
    }

    #[test]
    fn credentials_take_any_scalar_and_quote_none() {
        let before = inline_credentials();
        for (json, text) in [
            ("\"s3cr3t\"", "s3cr3t"),
            ("987654321", "987654321"),
            ("true", "true"),
            ("-12", "-12"),
            ("1.5", "1.5"),
        ] {
            let c: Credential = serde_json::from_str(json).unwrap();
            assert_eq!(c.expose(), text);
            assert_eq!(format!("{c:?}"), "Credential(<redacted>)");
            assert!(reveals_credential(text) || text.len() < MIN_CONTAINED);
        }
        assert!(inline_credentials() >= before + 5);
        for json in ["[\"987654321\"]", "{\"a\":\"987654321\"}"] {
            let e = serde_json::from_str::<Credential>(json)
                .unwrap_err()
                .to_string();
            assert!(!e.contains("987654321"), "{e}");
        }
    }

    #[test]
    fn held_credentials_are_recognised() {
        assert!(!reveals_credential("hvs.held-in-this-test-0123"));
        let token = Secret::credential("hvs.held-in-this-test-0123".into());
        hold(&Secret::from("pw-short"));
        assert!(reveals_credential(token.expose()));
        assert!(reveals_credential(
            "{\"id\":\"hvs.held-in-this-test-0123\",\"ttl\":3600}"
        ));
        assert!(reveals_credential("pw-short"));
        assert!(!reveals_credential("my pw-short and more"));
        assert!(!reveals_credential("hvs.held-in-this-test"));
        hold(&Secret::from(""));
        assert!(!reveals_credential(""));
    }
}
