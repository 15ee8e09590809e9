//! The opt-in token cache file (`token_cache_file:`).
//!
//! Without it an access token lives for one call: every call of the agent
//! asks Entra ID (or the managed identity endpoint) for a fresh one. With
//! it, the token and its expiry are kept in that file, mode 0600, and
//! reused by the next calls while it has more than [`MIN_LEFT_SECS`] to
//! live; a token Key Vault refuses (HTTP 401) is forgotten at the end of
//! the call, so the next call asks for a new one.
//!
//! The entry is keyed by the identity ([`key`]): the kind of credential,
//! the tenant and client id, the authority and the Key Vault resource, and
//! for a certificate its `x5t#S256` thumbprint, for a client secret the
//! SHA-256 of the secret (never the secret): a rotated secret or
//! certificate, another application or another cloud is another key, and
//! a token of one is never sent for the other. The file holds the key, the
//! token and its expiry; nothing else.
//!
//! The file is read like any credential file (bounded, refused when group
//! or others can write it) and replaced atomically by
//! [`backend_core::fs::write_private`] (shared with vault and gcp); a FIFO,
//! device, directory or symbolic link at that path is never replaced nor
//! removed. Calls running at once may each get a token and the last one
//! written wins: Entra ID's tokens are not revoked, so nothing is left
//! alive that should not be. Any failure here is a warning and the call
//! goes on without the cache.

use std::path::Path;

use backend_core::Secret;
use serde_json::{Value, json};

use crate::config::{Identity, Settings};

/// A cached token is reused only with more than this much time to live.
pub const MIN_LEFT_SECS: u64 = 300;

/// The cache key of the configured identity; `thumbprint` is the
/// certificate's `x5t#S256` for a certificate identity.
pub fn key(settings: &Settings, thumbprint: Option<&str>) -> String {
    let at = format!(
        "authority={} resource={}",
        settings.authority,
        settings.cloud.resource()
    );
    match &settings.identity {
        Identity::ClientSecret {
            tenant,
            client_id,
            secret,
            ..
        } => {
            let digest = ring::digest::digest(&ring::digest::SHA256, secret.expose().as_bytes());
            let hex: String = digest.as_ref().iter().map(|b| format!("{b:02x}")).collect();
            format!("client_secret tenant={tenant} client={client_id} secret_sha256={hex} {at}")
        }
        Identity::ClientCertificate {
            tenant, client_id, ..
        } => format!(
            "client_certificate tenant={tenant} client={client_id} x5t#S256={} {at}",
            thumbprint.unwrap_or_default()
        ),
        Identity::Workload {
            tenant, client_id, ..
        } => format!("workload_identity tenant={tenant} client={client_id} {at}"),
        Identity::Managed { client_id, source } => format!(
            "managed_identity source={} client={} {at}",
            source.name(),
            client_id.as_deref().unwrap_or("system-assigned")
        ),
    }
}

/// The cached token for `key`, if the file holds one with more than
/// [`MIN_LEFT_SECS`] to live at `now` (seconds since the epoch).
pub fn load(file: &Path, key: &str, now: u64) -> Option<Secret> {
    let mut v = backend_core::fs::read_token_cache(file)?;
    let token = entry(&v, key, now);
    backend_core::key::wipe(&mut v);
    match &token {
        Some(_) => tracing::debug!("access token from the token cache {}", file.display()),
        None => tracing::debug!(
            "the token cache {} holds no live token of this identity",
            file.display()
        ),
    }
    token
}

fn entry(v: &Value, key: &str, now: u64) -> Option<Secret> {
    if v.get("key").and_then(Value::as_str) != Some(key) {
        return None;
    }
    let expires_at = v.get("expires_at").and_then(Value::as_u64)?;
    if expires_at <= now.saturating_add(MIN_LEFT_SECS) {
        return None;
    }
    v.get("access_token")
        .and_then(Value::as_str)
        .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic()))
        .map(|t| Secret::credential(t.to_owned()))
}

/// Keeps `token` for `key` until `expires_at`, if its issuer said when it
/// expires.
pub fn store(file: &Path, key: &str, token: &Secret, expires_at: Option<u64>) {
    let Some(expires_at) = expires_at else {
        tracing::debug!("the token's lifetime is unknown: not cached");
        return;
    };
    backend_core::fs::write_token_cache(
        file,
        json!({
            "key": key,
            "access_token": token.expose(),
            "expires_at": expires_at,
        }),
    );
}

/// Forgets the cached token (Key Vault refused it); anything but a
/// regular file at the path stays.
pub fn forget(file: &Path) {
    backend_core::fs::forget_token_cache(file);
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::AzureConfig;

    fn settings(yaml: &str) -> Settings {
        let config: AzureConfig = backend_core::config::from_yaml(yaml).unwrap();
        config.validate(&|_| None).unwrap()
    }

    #[test]
    fn tokens_are_kept_private_and_reused_while_they_live() {
        let d = tempfile::tempdir().unwrap();
        let file = d.path().join("cache.json");
        let raw = Secret::from("eyJ0eXAi.cached-token-VALUE");
        store(&file, "k1", &raw, Some(10_000));
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let t = load(&file, "k1", 5_000).unwrap();
        assert_eq!(t.expose(), "eyJ0eXAi.cached-token-VALUE");
        // Another identity, or too little time left: not reused.
        assert!(load(&file, "k2", 5_000).is_none());
        assert!(load(&file, "k1", 10_000 - MIN_LEFT_SECS).is_none());
        assert!(load(&file, "k1", 10_000 - MIN_LEFT_SECS - 1).is_some());
        // A lifetime nobody told is not cached.
        store(&file, "k3", &raw, None);
        assert!(load(&file, "k3", 0).is_none());
        forget(&file);
        assert!(!file.exists());
        assert!(load(&file, "k1", 0).is_none());
    }

    #[test]
    fn keys_tell_identities_apart_and_hold_no_secret() {
        let base =
            "keyvaulturl: https://kv.vault.azure.net\nazure_session:\n  azure_tenant_id: t1\n";
        let secret = |s: &str| {
            settings(&format!(
                "{base}  azure_client_id: c1\n  azure_client_secret: {s}\n"
            ))
        };
        let k1 = key(&secret("first-S3CRET"), None);
        assert!(!k1.contains("first-S3CRET"), "{k1}");
        assert!(k1.starts_with("client_secret tenant=t1 client=c1 "), "{k1}");
        assert_ne!(k1, key(&secret("second-S3CRET"), None));
        assert_eq!(k1, key(&secret("first-S3CRET"), None));
        let cert = settings(&format!(
            "{base}  azure_client_id: c1\n  azure_client_certificate_path: /x.pem\n"
        ));
        assert_ne!(key(&cert, Some("AAA")), key(&cert, Some("BBB")));
        assert!(key(&cert, Some("AAA")).starts_with("client_certificate "));
        let other_app = settings(&format!(
            "{base}  azure_client_id: c2\n  azure_client_secret: first-S3CRET\n"
        ));
        assert_ne!(k1, key(&other_app, None));
        let china = settings(
            "keyvaulturl: https://kv.vault.azure.cn\nazure_session:\n  azure_tenant_id: t1\n  azure_client_id: c1\n  azure_client_secret: first-S3CRET\n",
        );
        assert_ne!(k1, key(&china, None));
    }
}
