//! The handles of the agent image's helper, `/readsecret_multiple_providers.sh`:
//! `k8s_secret@<namespace>/<name>/<key>` and `file@/absolute/path`. They are
//! written in Helm values, DatadogAgent resources and pod annotations; an
//! operator who replaces the helper by `secret-backend` keeps every one of
//! them, with no config file at all.
//!
//! - `k8s_secret@ns/name/key` is `ns/name;key` of the config's first
//!   backend of type `k8s`, else of a built-in `k8s` store with the
//!   in-cluster defaults (the pod's service account).
//! - `file@/path` is read by a built-in `file` store rooted at the allowed
//!   root the path lies under (`file_roots:`, default [`DEFAULT_FILE_ROOTS`]),
//!   with the file store's escape-proof reader: `..` and symlinks cannot
//!   leave the root. A path under no root is refused; so is the root itself.
//!
//! The built-in stores are slots whose names hold `:`, which no configured
//! backend's name can, so they never shadow one.

use std::path::{Component, Path, PathBuf};

use backend_core::{ConfigError, HandleError};
use serde_json::{Value, json};

/// The helper's Kubernetes prefix.
pub const K8S: &str = "k8s_secret@";
/// The helper's file prefix.
pub const FILE: &str = "file@";
/// Where `file@` may read when the config names no `file_roots`.
pub const DEFAULT_FILE_ROOTS: &[&str] = &["/var/run/secrets", "/run/secrets", "/etc/secret-volume"];
/// The built-in `k8s` slot.
pub const K8S_SLOT: &str = "helper:k8s";

/// Whether `handle` is spelled the helper's way.
pub fn is_helper(handle: &str) -> bool {
    handle.starts_with(K8S) || handle.starts_with(FILE)
}

/// The built-in slot of `root`.
pub fn file_slot(root: &Path) -> String {
    format!("helper:file:{}", root.display())
}

/// The allowed roots: `configured`, else the defaults; each absolute and
/// without `.` or `..`.
pub fn roots(configured: Option<&[PathBuf]>) -> Result<Vec<PathBuf>, ConfigError> {
    let roots: Vec<PathBuf> = match configured {
        Some(r) => r.to_vec(),
        None => DEFAULT_FILE_ROOTS.iter().map(PathBuf::from).collect(),
    };
    for r in &roots {
        let plain = r
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)));
        if !r.is_absolute() || !plain || r == Path::new("/") {
            return Err(ConfigError::new(format!(
                "file_roots: '{}' must be an absolute directory other than /, without '.' or '..'",
                r.display()
            )));
        }
    }
    Ok(roots)
}

/// The config of the built-in file store of `root`.
pub fn file_config(root: &Path) -> Value {
    json!({ "dir": root })
}

/// The slot and the handle there of a helper-spelled `handle`; `None` for
/// any other handle. `k8s` is the slot serving `k8s_secret@`.
pub fn route(
    handle: &str,
    k8s: &str,
    roots: &[PathBuf],
) -> Option<Result<(String, String), HandleError>> {
    if let Some(rest) = handle.strip_prefix(K8S) {
        let parts: Vec<&str> = rest.split('/').collect();
        return Some(match parts.as_slice() {
            [ns, name, key] if !ns.is_empty() && !name.is_empty() && !key.is_empty() => {
                Ok((k8s.to_owned(), format!("{ns}/{name};{key}")))
            }
            _ => Err(HandleError::invalid_handle(
                "invalid handle: k8s_secret@ takes <namespace>/<name>/<key>",
            )),
        });
    }
    let path = Path::new(handle.strip_prefix(FILE)?);
    let found = roots.iter().find_map(|root| {
        let rest = path.strip_prefix(root).ok()?;
        let rest = rest.to_str()?;
        (!rest.is_empty()).then(|| (file_slot(root), rest.to_owned()))
    });
    Some(found.ok_or_else(|| {
        let list: Vec<String> = roots.iter().map(|r| r.display().to_string()).collect();
        HandleError::permission_denied(format!(
            "file@ reads only files under the allowed roots ({}; file_roots: in the config)",
            list.join(", ")
        ))
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn helper_handles_route_to_the_builtin_stores() {
        let roots = roots(None).unwrap();
        let r = |h: &str| route(h, K8S_SLOT, &roots).map(|r| r.map_err(|e| e.to_string()));
        assert_eq!(
            r("k8s_secret@prod/db/password"),
            Some(Ok((K8S_SLOT.into(), "prod/db;password".into())))
        );
        assert!(r("k8s_secret@prod/db").unwrap().is_err());
        assert!(r("k8s_secret@prod/db/a/b").unwrap().is_err());
        assert_eq!(
            r("file@/run/secrets/api/key"),
            Some(Ok(("helper:file:/run/secrets".into(), "api/key".into())))
        );
        assert_eq!(
            r("file@/var/run/secrets/kubernetes.io/serviceaccount/namespace"),
            Some(Ok((
                "helper:file:/var/run/secrets".into(),
                "kubernetes.io/serviceaccount/namespace".into()
            )))
        );
        for outside in [
            "file@/etc/passwd",
            "file@/run/secrets",
            "file@/run/secretsX/a",
            "file@run/secrets/a",
        ] {
            let e = r(outside).unwrap().unwrap_err();
            assert!(e.contains("allowed roots"), "{outside}: {e}");
        }
        assert_eq!(r("vault:secret/db;x"), None);
        assert!(super::roots(Some(&["relative".into()])).is_err());
        assert!(super::roots(Some(&["/a/../b".into()])).is_err());
        assert!(super::roots(Some(&["/".into()])).is_err());
    }
}
