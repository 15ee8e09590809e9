//! The handle grammar.
//!
//! | handle | reads |
//! |---|---|
//! | `<namespace>/<name>;<key>` | key `<key>` of secret `<name>` in `<namespace>` (the Datadog connector's form) |
//! | `<namespace>/<name>` | the only key of a secret that has exactly one |
//! | `<name>;<key>`, `<name>` | the same, in the default namespace |
//! | `...;<key>/<json pointer>` | the key's value parsed as JSON, and the pointer followed into it |
//!
//! The handle is split at its first `;`, the part before at its `/`. The
//! namespace must be a DNS-1123 label and the name a DNS-1123 subdomain, as
//! the API server demands of them; a key must be a Secret key
//! (`[-._a-zA-Z0-9]+`, at most 253 characters, not `.`, `..` or `..`-prefixed).
//! A Secret key can never hold `/`, so the first `/` after the key starts a
//! JSON Pointer (RFC 6901): `ns/app;config.json/db/password`. Everything is
//! checked here, before anything is sent: a handle that passes is made of
//! characters that need no escaping in a URL path.

use backend_core::HandleError;
use backend_core::key::split_key;

/// Longest name, key or subdomain (DNS-1123 subdomain, Secret key).
pub const MAX_NAME: usize = 253;
/// Longest namespace (DNS-1123 label).
pub const MAX_LABEL: usize = 63;
/// Longest JSON Pointer accepted after a key.
pub const MAX_POINTER: usize = 1024;

/// A parsed handle, borrowing the handle text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Handle<'a> {
    /// The namespace, when the handle names one.
    pub namespace: Option<&'a str>,
    /// The secret's name.
    pub name: &'a str,
    /// The key in the secret's `data`.
    pub key: Option<&'a str>,
    /// A JSON Pointer into the key's value (starts with `/`).
    pub pointer: Option<&'a str>,
}

const EXPECTED: &str = "expected <namespace>/<name>;<key>, <namespace>/<name>, or <name>;<key> in the default namespace";

fn invalid(why: &str) -> HandleError {
    HandleError::invalid_handle(format!("invalid handle: {why} ({EXPECTED})"))
}

/// Parses a handle; the error explains the rule broken without repeating
/// the handle (the reply is keyed by it already).
pub fn parse(handle: &str) -> Result<Handle<'_>, HandleError> {
    let (secret, key) = split_key(handle);
    let (namespace, name) = match secret.split_once('/') {
        Some((ns, name)) => (Some(ns), name),
        None => (None, secret),
    };
    if namespace.is_some_and(|ns| !is_label(ns)) {
        return Err(invalid(
            "the namespace is not a DNS-1123 label (lowercase letters, digits and '-', at most 63, starting and ending with a letter or digit)",
        ));
    }
    if name.contains('/') {
        return Err(invalid("a secret name holds no '/'"));
    }
    if !is_subdomain(name) {
        return Err(invalid(
            "the secret name is not a DNS-1123 subdomain (lowercase letters, digits, '-' and '.', at most 253)",
        ));
    }
    let (key, pointer) = match key {
        None => (None, None),
        Some(k) => {
            let (key, pointer) = match k.find('/') {
                Some(i) => (&k[..i], Some(&k[i..])),
                None => (k, None),
            };
            if !is_key(key) {
                return Err(invalid(
                    "the key is not a Secret key (letters, digits, '-', '_' and '.', at most 253, not '.' or '..')",
                ));
            }
            if pointer.is_some_and(|p| p.len() > MAX_POINTER || p.chars().any(char::is_control)) {
                return Err(invalid(
                    "the JSON Pointer after the key is too long or holds control characters",
                ));
            }
            (Some(key), pointer)
        }
    };
    Ok(Handle {
        namespace,
        name,
        key,
        pointer,
    })
}

/// A DNS-1123 label: `[a-z0-9]([-a-z0-9]*[a-z0-9])?`, at most 63.
pub fn is_label(s: &str) -> bool {
    let b = s.as_bytes();
    let edge = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    !b.is_empty()
        && b.len() <= MAX_LABEL
        && b.first().is_some_and(edge)
        && b.last().is_some_and(edge)
        && b.iter().all(|c| edge(c) || *c == b'-')
}

/// A DNS-1123 subdomain: labels joined by `.`, at most 253 in all.
pub fn is_subdomain(s: &str) -> bool {
    s.len() <= MAX_NAME && s.split('.').all(is_label)
}

/// A Secret or ConfigMap key: `[-._a-zA-Z0-9]+`, at most 253, not `.`,
/// `..` or starting with `..`.
pub fn is_key(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_NAME
        && s != "."
        && !s.starts_with("..")
        && s.bytes()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, b'-' | b'_' | b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(h: &str) -> (Option<&str>, &str, Option<&str>, Option<&str>) {
        let p = parse(h).unwrap_or_else(|e| panic!("{h}: {e}"));
        (p.namespace, p.name, p.key, p.pointer)
    }

    #[test]
    fn the_forms() {
        assert_eq!(
            ok("prod/db;password"),
            (Some("prod"), "db", Some("password"), None)
        );
        assert_eq!(ok("prod/db"), (Some("prod"), "db", None, None));
        assert_eq!(ok("db;user"), (None, "db", Some("user"), None));
        assert_eq!(ok("db"), (None, "db", None, None));
        assert_eq!(
            ok("prod/app.v1;config.json/db/password"),
            (
                Some("prod"),
                "app.v1",
                Some("config.json"),
                Some("/db/password")
            )
        );
        assert_eq!(ok("a/b;K_e-y.1"), (Some("a"), "b", Some("K_e-y.1"), None));
        assert_eq!(ok("a/b;.dotfile"), (Some("a"), "b", Some(".dotfile"), None));
    }

    #[test]
    fn invalid_names_are_refused() {
        for h in [
            "",
            "/db;k",
            "prod/;k",
            "Prod/db;k",
            "prod/DB;k",
            "prod/db/extra;k",
            "-prod/db;k",
            "prod-/db;k",
            "prod/db-;k",
            "prod/.db;k",
            "prod/db..x;k",
            "prod/db;",
            "prod/db;.",
            "prod/db;..",
            "prod/db;..x",
            "prod/db;k ey",
            "prod/db;k%2f",
            "prod/db;ключ",
            "../etc/passwd",
            "prod/%2e%2e;k",
            "prod/db?x=1;k",
            "prod/db#x;k",
            "prod/db\n;k",
            "prod/db;k/\u{0}",
            "ns_1/db;k",
        ] {
            let e = parse(h).expect_err(h);
            assert_eq!(e.kind(), backend_core::ErrorKind::InvalidHandle, "{h}");
        }
        let long_ns = format!("{}/db;k", "a".repeat(64));
        assert!(parse(&long_ns).is_err());
        let ok_ns = format!("{}/db;k", "a".repeat(63));
        assert!(parse(&ok_ns).is_ok());
        let long_name = format!("ns/{};k", vec!["a".repeat(63); 4].join("."));
        assert!(parse(&long_name).is_err());
        let long_key = format!("ns/db;{}", "k".repeat(254));
        assert!(parse(&long_key).is_err());
    }

    proptest::proptest! {
        /// Whatever passes is made of characters a URL path carries as they
        /// are: the request can name nothing but a secret.
        #[test]
        fn what_passes_needs_no_escaping(h in "[a-zA-Z0-9./;%?#:@ _-]{0,40}") {
            if let Ok(p) = parse(&h) {
                for part in p.namespace.into_iter().chain([p.name]) {
                    proptest::prop_assert!(part.bytes().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'-' || c == b'.'));
                    proptest::prop_assert!(part != "." && part != "..");
                }
            }
        }
    }
}
