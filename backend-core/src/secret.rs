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

use zeroize::Zeroizing;

/// A secret value, redacted in `Debug` and zeroized on drop.
#[derive(Clone, PartialEq, Eq)]
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
/// Empty ones are ignored.
pub fn hold(credential: &Secret) {
    if credential.is_empty() {
        return;
    }
    let mut held = HELD
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    if !held.contains(credential) {
        held.push(credential.clone());
    }
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
    fn debug_is_redacted() {
        let s = Secret::from("hunter2");
        assert_eq!(format!("{s:?}"), "Secret(<redacted>)");
        assert_eq!(format!("{:?}", Some(&s)), "Some(Secret(<redacted>))");
        assert_eq!(s.expose(), "hunter2");
        assert_eq!(s.len(), 7);
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
