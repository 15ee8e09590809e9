//! Configuration files and credential files.
//!
//! A config file is YAML, deserialized straight into the provider's config
//! type, whose `#[serde(deny_unknown_fields)]` makes a typo an error instead
//! of a silent default. Files that hold configuration or credentials are
//! refused when group or others can write them: whoever can write them can
//! point us at their own server or swap our credentials.

use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::ConfigError;
use crate::secret::Secret;

/// Largest config file we read.
pub const MAX_CONFIG_BYTES: u64 = 1024 * 1024;
/// Largest credential file (token, secret id, password, JWT) we read.
pub const MAX_CREDENTIAL_BYTES: u64 = 64 * 1024;

/// Loads a YAML config file into `T`. An empty file is `T::default()`.
pub fn load<T: DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    let text = read_guarded(path, "config file", MAX_CONFIG_BYTES)?;
    from_yaml(&text).map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))
}

/// Loads a YAML config file whose fields are all at the top level (nested
/// values, if any, are untyped `serde_json::Value`s) with the event reader
/// of [`crate::yaml`] instead of serde-saphyr: the same values, duplicate
/// keys refused, errors with a position, and about 0.4 MB less in the
/// binary. A top-level string field takes a plain scalar's text
/// (`region: 2024` is "2024"); a string field of a nested struct would
/// not, which is why configs with nested typed sections use [`load`].
pub fn load_flat<T: DeserializeOwned + Default>(path: &Path) -> Result<T, ConfigError> {
    let text = read_guarded(path, "config file", MAX_CONFIG_BYTES)?;
    crate::yaml::from_yaml(&text)
        .map_err(|e| ConfigError::new(format!("config file {}: {e}", path.display())))
}

/// Parses YAML text into `T`; empty text is `T::default()`. The error is one
/// line and quotes no part of the document (which may hold credentials).
pub fn from_yaml<T: DeserializeOwned + Default>(text: &str) -> Result<T, String> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    check_budget(text)?;
    serde_saphyr::from_str(text).map_err(|e| yaml_error(&e))
}

/// Holds any YAML text to the budget of [`crate::yaml`] (depth, nodes,
/// aliases, and the size aliases may expand it to) before another parser
/// sees it, so every YAML we read has the same limits. Only a budget breach
/// is reported here; syntax is the other parser's to judge.
pub fn check_budget(text: &str) -> Result<(), String> {
    crate::yaml::check_budget(text).map_err(|e| e.without_text())
}

fn yaml_error(e: &serde_saphyr::Error) -> String {
    // The crate's rendering may quote the offending source line; keep only
    // the first line of the message, which names the problem and position.
    let full = e.to_string();
    let first = full
        .lines()
        .find(|l| !l.trim().is_empty())
        .unwrap_or("invalid YAML");
    describe_error(&first.trim())
}

/// A deserialization error as a config error may show it: on one line, with
/// every double-quoted run (serde quotes the offending *value* there, which
/// may be a credential) replaced by `"..."`. Field names, which serde puts
/// in backticks, stay.
pub fn describe_error(e: &dyn std::fmt::Display) -> String {
    let text = e.to_string();
    let mut out = String::with_capacity(text.len());
    let mut quoted = false;
    for c in text.chars() {
        match (c, quoted) {
            ('"', false) => {
                out.push_str("\"...\"");
                quoted = true;
            }
            ('"', true) => quoted = false,
            (_, true) => {}
            ('\n' | '\r', false) => out.push(' '),
            (c, false) => out.push(c),
        }
    }
    out
}

/// Reads a credential file (a token, secret id, password or JWT): refused
/// when group or others can write it, warned about when others can read it;
/// surrounding whitespace (the trailing newline of `echo`) is trimmed.
pub fn read_credential(path: &Path, what: &str) -> Result<Secret, ConfigError> {
    let mut text = read_guarded(path, what, MAX_CREDENTIAL_BYTES)?;
    warn_if_readable_by_others(path, what);
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(ConfigError::new(format!(
            "{what} {} is empty",
            path.display()
        )));
    }
    let secret = Secret::from(trimmed);
    zeroize::Zeroize::zeroize(&mut text);
    Ok(secret)
}

/// Logs a warning when others can read `path`, which should then hold no
/// credentials; once per path and process (`secret-backend` may read a
/// store's files twice in a call: to hold its credentials, then to use
/// them).
pub fn warn_if_readable_by_others(path: &Path, what: &str) {
    static WARNED: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());
    #[cfg(unix)]
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        let first = || {
            let mut warned = WARNED
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let first = !warned.iter().any(|p| p == path);
            if first {
                warned.push(path.to_owned());
            }
            first
        };
        if mode & 0o004 != 0 && first() {
            tracing::warn!(
                "{what} {} is readable by every user (mode {:04o}); make it 0600",
                path.display(),
                mode & 0o7777
            );
        }
    }
}

/// Opens `path` without blocking (a FIFO or device is refused at once, see
/// [`crate::fs`]), refuses it when group or others can write it, and reads
/// at most `max` bytes of UTF-8.
pub fn read_guarded(path: &Path, what: &str, max: u64) -> Result<String, ConfigError> {
    let rules = crate::fs::Rules {
        max,
        refuse_writable: true,
    };
    crate::fs::read_regular_text(path, rules)
        .map(|mut text| std::mem::take(&mut *text))
        .map_err(|e| e.config(what, path))
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use serde::Deserialize;

    use super::*;

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields)]
    struct Conf {
        address: Option<String>,
        #[serde(default)]
        retries: u32,
    }

    fn write(dir: &Path, name: &str, text: &str, mode: u32) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
        p
    }

    #[test]
    fn loads_refuses_unknown_keys_and_loose_modes() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "ok.yaml",
            "address: http://x\nretries: 3\n",
            0o600,
        );
        assert_eq!(
            load::<Conf>(&p).unwrap(),
            Conf {
                address: Some("http://x".into()),
                retries: 3
            }
        );
        let p = write(d.path(), "empty.yaml", "\n", 0o600);
        assert_eq!(load::<Conf>(&p).unwrap(), Conf::default());
        let p = write(d.path(), "typo.yaml", "adress: http://x\n", 0o600);
        let e = load::<Conf>(&p).unwrap_err().to_string();
        assert!(e.contains("adress"), "{e}");
        assert!(!e.contains('\n'), "{e}");
        let p = write(d.path(), "loose.yaml", "address: x\n", 0o666);
        assert!(
            load::<Conf>(&p)
                .unwrap_err()
                .to_string()
                .contains("writable by group or others")
        );
        let e = load::<Conf>(&d.path().join("missing.yaml"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("missing.yaml"), "{e}");
        assert!(load::<Conf>(d.path()).is_err());
    }

    #[test]
    fn yaml_errors_do_not_quote_the_document() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "bad.yaml",
            "address: [unclosed-SECRETVALUE\n",
            0o600,
        );
        let e = load::<Conf>(&p).unwrap_err().to_string();
        assert!(!e.contains("SECRETVALUE"), "{e}");
    }

    #[test]
    fn type_errors_do_not_show_the_value() {
        #[derive(Debug, Default, Deserialize)]
        #[allow(dead_code)]
        struct B {
            flag: bool,
        }
        let e = from_yaml::<B>("flag: hunter2-value\n").unwrap_err();
        assert!(!e.contains("hunter2"), "{e}");
        let e = serde_json::from_str::<B>(r#"{"flag":"hunter2"}"#).unwrap_err();
        let shown = describe_error(&e);
        assert!(
            !shown.contains("hunter2") && shown.contains("invalid type"),
            "{shown}"
        );
    }

    #[test]
    fn credentials_are_trimmed_and_guarded() {
        let d = tempfile::tempdir().unwrap();
        let p = write(d.path(), "token", "s.abc\n", 0o600);
        assert_eq!(read_credential(&p, "token file").unwrap().expose(), "s.abc");
        let p = write(d.path(), "empty", "\n", 0o600);
        assert!(read_credential(&p, "token file").is_err());
        let p = write(d.path(), "loose", "x", 0o620);
        assert!(read_credential(&p, "token file").is_err());
        let p = write(d.path(), "big", &"x".repeat(70_000), 0o600);
        assert!(
            read_credential(&p, "token file")
                .unwrap_err()
                .to_string()
                .contains("larger than")
        );
    }
}
