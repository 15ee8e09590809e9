//! The handle grammar.
//!
//! | handle | reads |
//! |---|---|
//! | `<name>` | the latest version of secret `<name>`, as it is |
//! | `<name>;<key>` | the latest version's value read as a JSON object, and its field `<key>` (the Datadog connector's form) |
//! | `<name>;/<json pointer>` | the same, followed by a JSON Pointer (RFC 6901) into the value |
//! | `<name>?version=<id>` | version `<id>` (32 hex digits) instead of the latest; a key may follow |
//!
//! The handle is split at its first `;` ([`backend_core::key::split_key`]),
//! the part before at `?version=`. A name is what Key Vault accepts,
//! `[0-9A-Za-z-]{1,127}`, and a version is Key Vault's 32-hex-digit id:
//! everything sent is checked here first, and a handle that passes is made
//! of characters a URL path carries as they are. Other vaults by full URL
//! are not taken: a handle reads from the configured vault only.

use backend_core::HandleError;
use backend_core::key::split_key;

/// Longest secret name Key Vault accepts.
pub const MAX_NAME: usize = 127;
/// Length of a version id.
pub const VERSION_LEN: usize = 32;
/// Longest key (field name or JSON Pointer) accepted.
pub const MAX_KEY: usize = 1024;

/// A parsed handle, borrowing the handle text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle<'a> {
    /// The secret's name.
    pub name: &'a str,
    /// A version id, when the handle names one.
    pub version: Option<&'a str>,
    /// A field name, or a JSON Pointer when it starts with `/`.
    pub key: Option<&'a str>,
}

impl Handle<'_> {
    /// What one request reads: the name and the version (`None`: latest).
    /// Handles with the same target share one request.
    pub fn target(&self) -> (&str, Option<&str>) {
        (self.name, self.version)
    }
}

const EXPECTED: &str = "expected <name>, <name>;<key> or <name>?version=<32 hex digits>[;<key>]";

fn invalid(why: &str) -> HandleError {
    HandleError::invalid_handle(format!("invalid handle: {why} ({EXPECTED})"))
}

/// Parses a handle; the error says which rule is broken without repeating
/// the handle (the reply is keyed by it already).
pub fn parse(handle: &str) -> Result<Handle<'_>, HandleError> {
    let (secret, key) = split_key(handle);
    let (name, version) = match secret.split_once('?') {
        None => (secret, None),
        Some((name, query)) => match query.strip_prefix("version=") {
            Some(v) if is_version(v) => (name, Some(v)),
            Some(_) => {
                return Err(invalid(
                    "a version is Key Vault's id of 32 hex digits (see the secret's versions in the portal or with az keyvault secret list-versions)",
                ));
            }
            None => return Err(invalid("the only query a handle takes is ?version=<id>")),
        },
    };
    if name.contains("://") || name.contains('/') {
        return Err(invalid(
            "a handle names a secret of the configured vault (keyvaulturl), not a URL or a path",
        ));
    }
    if !is_name(name) {
        return Err(invalid(
            "a secret name is 1 to 127 letters, digits and '-' (Key Vault's rule)",
        ));
    }
    if let Some(k) = key {
        if k.is_empty() {
            return Err(invalid("the key after ';' is empty"));
        }
        if k.len() > MAX_KEY || k.chars().any(char::is_control) {
            return Err(invalid(
                "the key after ';' is too long or holds control characters",
            ));
        }
    }
    Ok(Handle { name, version, key })
}

/// `[0-9A-Za-z-]{1,127}`: a Key Vault object name.
pub fn is_name(s: &str) -> bool {
    (1..=MAX_NAME).contains(&s.len()) && s.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
}

/// 32 hex digits: a Key Vault version id.
pub fn is_version(s: &str) -> bool {
    s.len() == VERSION_LEN && s.bytes().all(|c| c.is_ascii_hexdigit())
}

#[cfg(test)]
mod tests {
    use super::*;

    const V: &str = "0123456789abcdef0123456789ABCDEF";

    fn ok(h: &str) -> (&str, Option<&str>, Option<&str>) {
        let p = parse(h).unwrap_or_else(|e| panic!("{h}: {e}"));
        (p.name, p.version, p.key)
    }

    #[test]
    fn the_forms() {
        assert_eq!(ok("db-password"), ("db-password", None, None));
        assert_eq!(ok("db;password"), ("db", None, Some("password")));
        assert_eq!(ok("db;/nested/0/pw"), ("db", None, Some("/nested/0/pw")));
        let h = format!("db?version={V}");
        assert_eq!(ok(&h), ("db", Some(V), None));
        let h = format!("db?version={V};user");
        assert_eq!(ok(&h), ("db", Some(V), Some("user")));
        assert_eq!(
            ok("db;a key;with?odd=chars"),
            ("db", None, Some("a key;with?odd=chars"))
        );
        let long = "a".repeat(127);
        assert_eq!(parse(&long).unwrap().name, long);
    }

    #[test]
    fn invalid_handles_are_refused() {
        let long = "a".repeat(128);
        for h in [
            "",
            ";k",
            "db;",
            "db_1",
            "db.x",
            "db/extra",
            "../db",
            "https://other.vault.azure.net/secrets/db",
            "db?version=1234",
            "db?version=0123456789abcdef0123456789abcdeg",
            "db?ver=0123456789abcdef0123456789abcdef",
            "db?",
            "db#x",
            "db%2f",
            "ключ",
            "db\n",
            "db;k\u{0}",
            "db ;k",
            long.as_str(),
        ] {
            let e = parse(h).expect_err(h);
            assert_eq!(e.kind(), backend_core::ErrorKind::InvalidHandle, "{h}");
            assert!(e.message().starts_with("invalid handle: "), "{h}: {e}");
        }
        let long_key = format!("db;{}", "k".repeat(MAX_KEY + 1));
        assert!(parse(&long_key).is_err());
    }

    proptest::proptest! {
        /// Whatever passes names a secret with characters a URL path
        /// carries as they are, and a version of 32 hex digits.
        #[test]
        fn what_passes_needs_no_escaping(h in "[a-zA-Z0-9./;%?#:@=_ -]{0,48}") {
            if let Ok(p) = parse(&h) {
                proptest::prop_assert!(p.name.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-'));
                proptest::prop_assert!(!p.name.is_empty());
                if let Some(v) = p.version {
                    proptest::prop_assert!(is_version(v));
                }
            }
        }
    }
}
