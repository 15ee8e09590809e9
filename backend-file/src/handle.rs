//! The handle grammar of directory mode: `path` or `path;key`.
//!
//! `path` is relative to the secrets directory (`prod/api_key`,
//! `..data/db.json`); `key` picks a value in the file parsed as a document
//! (see [`backend_core::key`]). Parsing is pure and checks only what can be
//! told from the text, so that the common mistakes get a clear message
//! before any file is touched: absolute paths, `..` climbing out of the
//! root, empty parts, NUL bytes and oversized names. It is not the safety
//! net: every open goes through cap-std, which resolves the path (symlinks
//! included) beneath the root and refuses whatever leaves it.

use backend_core::HandleError;
use backend_core::key::split_key;
use backend_core::runner::shorten;

/// Longest path a handle may name (Linux's `PATH_MAX`).
pub const MAX_PATH_BYTES: usize = 4096;
/// Longest single path component (Linux's `NAME_MAX`).
pub const MAX_NAME_BYTES: usize = 255;
/// Longest key after `;` (or handle of document mode): keys are field
/// names and short pointers, and an error message repeats the key.
pub const MAX_KEY_BYTES: usize = 1024;

/// A parsed directory-mode handle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Target<'a> {
    /// The file, relative to the secrets directory, as written in the handle.
    pub path: &'a str,
    /// The key into the file's document, when the handle has `;key`.
    pub key: Option<&'a str>,
}

/// Parses `handle` into the file it names and the optional key.
pub fn parse(handle: &str) -> Result<Target<'_>, HandleError> {
    if handle.is_empty() {
        return Err(HandleError::invalid_handle(
            "empty handle: name a file under the secrets directory",
        ));
    }
    let (path, key) = split_key(handle);
    let shown = shorten(path);
    if path.is_empty() {
        return Err(HandleError::invalid_handle(format!(
            "{}: no file name before ';'",
            shorten(handle)
        )));
    }
    if key == Some("") {
        return Err(HandleError::invalid_handle(format!(
            "{shown}: empty key after ';'"
        )));
    }
    if let Some(key) = key {
        check_key(key, &shown)?;
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(HandleError::invalid_handle(format!(
            "{shown}: path longer than {MAX_PATH_BYTES} bytes"
        )));
    }
    if path.contains('\0') {
        return Err(HandleError::invalid_handle(format!(
            "{shown}: NUL byte in the path"
        )));
    }
    if path.starts_with('/') {
        return Err(HandleError::permission_denied(format!(
            "{shown}: absolute paths are refused; name the file relative to the secrets directory"
        )));
    }
    check_components(path, &shown)?;
    Ok(Target { path, key })
}

/// Refuses a key too long to be a field name or a pointer to one.
pub fn check_key(key: &str, location: &str) -> Result<(), HandleError> {
    if key.len() > MAX_KEY_BYTES {
        return Err(HandleError::invalid_handle(format!(
            "{location}: key longer than {MAX_KEY_BYTES} bytes"
        )));
    }
    Ok(())
}

/// Refuses a `..` that climbs above the root when read as text, and
/// components longer than a file name can be.
fn check_components(path: &str, shown: &str) -> Result<(), HandleError> {
    let mut depth = 0usize;
    for component in path.split('/') {
        match component {
            "" | "." => {}
            ".." => {
                depth = depth.checked_sub(1).ok_or_else(|| {
                    HandleError::permission_denied(format!(
                        "{shown}: '..' leads outside the secrets directory"
                    ))
                })?;
            }
            name if name.len() > MAX_NAME_BYTES => {
                return Err(HandleError::invalid_handle(format!(
                    "{shown}: a path component is longer than {MAX_NAME_BYTES} bytes"
                )));
            }
            _ => depth += 1,
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;

    use super::*;

    fn err(handle: &str) -> (ErrorKind, String) {
        let e = parse(handle).unwrap_err();
        (e.kind(), e.to_string())
    }

    #[test]
    fn paths_and_keys() {
        assert_eq!(
            parse("prod/api_key").unwrap(),
            Target {
                path: "prod/api_key",
                key: None
            }
        );
        assert_eq!(
            parse("db.json;/nested/pw").unwrap(),
            Target {
                path: "db.json",
                key: Some("/nested/pw")
            }
        );
        assert_eq!(parse("a;b;c").unwrap().key, Some("b;c"));
        // Kubernetes' hidden entries are ordinary names.
        assert_eq!(parse("..data/key").unwrap().path, "..data/key");
        // A `..` that stays inside the root is left to the filesystem.
        assert_eq!(parse("a/../b").unwrap().path, "a/../b");
        assert_eq!(parse("./a").unwrap().path, "./a");
    }

    #[test]
    fn refusals() {
        assert_eq!(err("").0, ErrorKind::InvalidHandle);
        assert_eq!(
            err(";key"),
            (
                ErrorKind::InvalidHandle,
                ";key: no file name before ';'".into()
            )
        );
        assert_eq!(
            err("db.json;"),
            (
                ErrorKind::InvalidHandle,
                "db.json: empty key after ';'".into()
            )
        );
        assert_eq!(
            err("/etc/passwd").0,
            ErrorKind::PermissionDenied,
            "absolute path"
        );
        assert!(err("/etc/passwd").1.contains("absolute paths are refused"));
        for escape in ["..", "../x", "a/../../x", "./../x", "a/./../.."] {
            let (kind, msg) = err(escape);
            assert_eq!(kind, ErrorKind::PermissionDenied, "{escape}");
            assert!(msg.ends_with("'..' leads outside the secrets directory"));
        }
        let (kind, msg) = err(&format!("db.json;{}", "k".repeat(2000)));
        assert_eq!(kind, ErrorKind::InvalidHandle);
        assert_eq!(msg, "db.json: key longer than 1024 bytes");
        assert_eq!(err("a\0b").1, "a\\0b: NUL byte in the path");
        assert_eq!(err(&"x".repeat(300)).0, ErrorKind::InvalidHandle);
        let long = err(&"a/".repeat(3000)).1;
        assert!(long.contains("longer than 4096"), "{long}");
        assert!(long.len() < 300, "{long}");
    }
}
