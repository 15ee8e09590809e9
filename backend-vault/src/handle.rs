//! The handle grammar: `<path>[?version=N][;<key>]`.
//!
//! `<path>` is the logical path as `vault kv get` / `vault read` take it
//! (`secret/db`, `kv1/app`, `database/creds/readonly`). Parsing is a pure
//! function so it can be tested exhaustively; it is also where hostile input
//! stops: a handle is split into path segments that are later pushed onto
//! the server URL one by one (percent-encoded), so a handle can change the
//! URL's path under `/v1/` and nothing else. Segments that a URL parser or
//! the server would reinterpret (`..`, `.`, `%2e%2e`, `\`, `#`, `?`, empty
//! segments from `//` or a leading `/`, control characters) are refused.

use backend_core::HandleError;
use backend_core::key::split_key;

/// Longest path (before `?` and `;`) we accept, in bytes.
pub const MAX_PATH: usize = 1024;
/// Most segments a path may have.
pub const MAX_SEGMENTS: usize = 64;

/// A parsed handle, borrowing from the handle's text: a request of
/// 200,000 handles holds no copy of their paths and keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Handle<'a> {
    /// The path's segments, none empty, none `.` or `..`.
    pub segments: Vec<&'a str>,
    /// `?version=N`, for KV v2 secrets.
    pub version: Option<u64>,
    /// `;key`: a field name or a JSON Pointer.
    pub key: Option<&'a str>,
}

impl Handle<'_> {
    /// The path as the user wrote it (`secret/db`), for messages.
    pub fn path(&self) -> String {
        self.segments.join("/")
    }

    /// Where a message says the secret is: the path and, if set, the version.
    pub fn location(&self) -> String {
        match self.version {
            Some(v) => format!("{}?version={v}", self.path()),
            None => self.path(),
        }
    }

    /// What is fetched, borrowed: handles with the same target share one
    /// read.
    pub fn target_ref(&self) -> TargetRef<'_> {
        TargetRef {
            segments: &self.segments,
            version: self.version,
        }
    }
}

/// One read, borrowed from the handle that names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TargetRef<'a> {
    /// The path's segments.
    pub segments: &'a [&'a str],
    /// The KV v2 version asked for.
    pub version: Option<u64>,
}

/// Parses a handle; the error does not repeat the handle (the reply is keyed
/// by it already) except through the validated path.
pub fn parse(handle: &str) -> Result<Handle<'_>, HandleError> {
    let (doc, key) = split_key(handle);
    let (path, query) = match doc.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (doc, None),
    };
    let segments = segments(path)?;
    let version = query.map(version).transpose()?;
    let key = match key {
        Some("") => return Err(invalid("empty key after ';'")),
        Some(k) if k.chars().any(char::is_control) => {
            return Err(invalid("control character in the key"));
        }
        Some(k) => Some(k),
        None => None,
    };
    Ok(Handle {
        segments,
        version,
        key,
    })
}

fn invalid(why: &str) -> HandleError {
    HandleError::invalid_handle(format!(
        "invalid handle: {why} (expected <path>[?version=N][;<key>])"
    ))
}

/// A path's segments, by the rules above (also used for `allowed_paths`).
pub fn segments(path: &str) -> Result<Vec<&str>, HandleError> {
    if path.is_empty() {
        return Err(invalid("empty path"));
    }
    if path.len() > MAX_PATH {
        return Err(invalid(&format!("path longer than {MAX_PATH} bytes")));
    }
    if path.chars().any(char::is_control) {
        return Err(invalid("control character in the path"));
    }
    for (bad, why) in [
        ('#', "'#' in the path"),
        ('\\', "'\\' in the path"),
        ('%', "'%' in the path (write the path unencoded)"),
    ] {
        if path.contains(bad) {
            return Err(invalid(why));
        }
    }
    let parts: Vec<&str> = path.split('/').collect();
    if parts.len() > MAX_SEGMENTS {
        return Err(invalid(&format!("more than {MAX_SEGMENTS} path segments")));
    }
    parts
        .into_iter()
        .map(|s| match s {
            "" => Err(invalid(
                "empty path segment (leading, trailing or double '/')",
            )),
            "." | ".." => Err(invalid("'.' and '..' segments are not allowed")),
            s if s.trim().is_empty() => Err(invalid("blank path segment")),
            s => Ok(s),
        })
        .collect()
}

fn version(query: &str) -> Result<u64, HandleError> {
    let digits = query
        .strip_prefix("version=")
        .ok_or_else(|| invalid("the only query parameter is '?version=N'"))?;
    if digits.is_empty() || digits.len() > 19 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(invalid("the version must be a positive integer"));
    }
    match digits.parse::<u64>() {
        Ok(0) | Err(_) => Err(invalid("the version must be a positive integer")),
        Ok(v) => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;

    use super::*;

    fn ok(h: &str) -> Handle<'_> {
        parse(h).unwrap_or_else(|e| panic!("{h:?}: {e}"))
    }

    fn bad(h: &str) -> String {
        let e = parse(h).expect_err(h);
        assert_eq!(e.kind(), ErrorKind::InvalidHandle, "{h:?}");
        e.to_string()
    }

    #[test]
    fn plain_paths_versions_and_keys() {
        let h = ok("secret/db");
        assert_eq!(h.segments, ["secret", "db"]);
        assert_eq!((h.version, h.key), (None, None));
        let h = ok("secret/db?version=3;password");
        assert_eq!(h.version, Some(3));
        assert_eq!(h.key, Some("password"));
        assert_eq!(h.location(), "secret/db?version=3");
        let h = ok("database/creds/read-only;/nested/a;b");
        assert_eq!(h.path(), "database/creds/read-only");
        assert_eq!(h.key, Some("/nested/a;b"));
        // A '?' in the key is part of the key.
        assert_eq!(ok("kv/a;what?").key, Some("what?"));
        // Odd but harmless characters stay (they are percent-encoded later).
        assert_eq!(ok("kv/ünï cødé/☃").segments, ["kv", "ünï cødé", "☃"]);
        assert_eq!(ok("kv/a..b").segments, ["kv", "a..b"]);
    }

    #[test]
    fn same_target_for_every_key_of_a_path() {
        let (user, pass) = (ok("secret/db;user"), ok("secret/db;pass"));
        assert_eq!(user.target_ref(), pass.target_ref());
        let versioned = ok("secret/db?version=1;user");
        assert_ne!(user.target_ref(), versioned.target_ref());
    }

    #[test]
    fn hostile_handles_are_refused() {
        for h in [
            "",
            ";",
            ";;;",
            "?version=1",
            "../../../etc/passwd",
            "secret/../sys/seal",
            "secret/./db",
            "secret/%2e%2e/sys",
            "secret/%2E%2E",
            "/absolute",
            "secret/db/",
            "secret//db",
            "http://evil.example/v1/x",
            "secret/db#frag",
            "secret\\..\\sys",
            "secret/db?version=x",
            "secret/db?version=0",
            "secret/db?version=-1",
            "secret/db?version=",
            "secret/db?version=1&x=2",
            "secret/db?other=1",
            "secret/db?version=1?version=2",
            "secret/db?version=99999999999999999999",
            "nul\0byte",
            "line\nbreak",
            "secret/ /db",
            "secret/db;",
            "secret/db;a\u{7}",
        ] {
            bad(h);
        }
        assert!(bad(&"x".repeat(10 * 1024)).contains("longer than"));
        assert!(bad(&vec!["a"; 100].join("/")).contains("segments"));
    }

    proptest::proptest! {
        /// Whatever the input, parsing does not panic, and what it accepts
        /// is a list of plain segments.
        #[test]
        fn accepted_paths_are_plain_segments(h in "[a-z./%?#;=\\\\:@ \u{0}-\u{1f}é☃1-9]{0,40}") {
            if let Ok(p) = parse(&h) {
                proptest::prop_assert!(!p.segments.is_empty());
                for s in &p.segments {
                    proptest::prop_assert!(!s.is_empty() && *s != "." && *s != "..");
                    proptest::prop_assert!(!s.contains(['/', '%', '?', '#', '\\']));
                    proptest::prop_assert!(!s.chars().any(char::is_control));
                }
            }
        }
    }

    #[test]
    fn errors_do_not_echo_the_handle() {
        assert!(!bad("secret/db?version=SECRETISH").contains("SECRETISH"));
    }
}
