//! The one type that holds a secret value.
//!
//! A [`Secret`] cannot be printed by accident: it has no `Display`, its
//! `Debug` prints a fixed redaction, and its memory is zeroized on drop. The
//! only way to the text is [`Secret::expose`], which the reply serializer
//! calls where the value is written to stdout.

use std::fmt;

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
}
