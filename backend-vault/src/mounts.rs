//! The mount lookup the vault CLI does (`sys/internal/ui/mounts/<path>`):
//! which secrets engine a path lives in (KV v1 or v2, or something the
//! policy refuses), and where its mount sits in the path. [`parse`] reads
//! the answer, a pure function; [`Mounts`] asks once per mount per call.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use backend_core::{Context, HandleError};
use reqwest::{Method, StatusCode};
use serde_json::Value;

use crate::auth::Session;
use crate::errors::{failure, status_error};
use crate::http::Api;
use crate::policy::MountKind;

/// A mount a path lives in.
#[derive(Debug, Clone)]
pub struct Mount {
    /// Where it sits in the handle's path (namespace segments included).
    pub segments: Vec<String>,
    /// A KV v2 engine.
    pub kv2: bool,
    /// Its type, for the policy.
    pub kind: MountKind,
}

/// What the mount lookup says about a path.
#[derive(Debug)]
pub enum Lookup {
    /// Nothing usable (a server without the endpoint): the path is read as
    /// it is, and [`policy`] refuses whatever could be the server's API.
    Unknown,
    /// The mount's kind, but not where it sits in the path.
    Unlocated(MountKind),
    /// The mount, located.
    Located(Mount),
}

/// Mounts looked up during one call. Lookups of paths that share a first
/// segment are serialized, so paths under one mount cause one lookup (a
/// mount path always starts with its paths' first segment); others run
/// concurrently.
#[derive(Debug, Default)]
pub struct Mounts {
    known: Mutex<Vec<Mount>>,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl Mounts {
    fn known(&self, segments: &[String]) -> Option<Mount> {
        let known = self.known.lock().ok()?;
        known
            .iter()
            .find(|m| segments.starts_with(&m.segments))
            .cloned()
    }

    /// What the server says about the mount of `segments`.
    pub async fn lookup(
        &self,
        api: &Api,
        segments: &[String],
        session: &Session,
        ctx: &Context,
    ) -> Result<Lookup, HandleError> {
        if let Some(m) = self.known(segments) {
            return Ok(Lookup::Located(m));
        }
        let first = segments.first().cloned().unwrap_or_default();
        let lock = match self.locks.lock() {
            Ok(mut locks) => locks.entry(first).or_default().clone(),
            Err(_) => return Err(HandleError::other("internal error: mount cache poisoned")),
        };
        let _serialized = lock.lock().await;
        if let Some(m) = self.known(segments) {
            return Ok(Lookup::Located(m));
        }
        let mut path = vec!["sys", "internal", "ui", "mounts"];
        path.extend(segments.iter().map(String::as_str));
        let resp = api
            .send(
                Method::GET,
                api.url(&path, None),
                Some(&session.token),
                None,
                ctx,
            )
            .await
            .map_err(failure)?;
        match resp.status {
            StatusCode::OK => {}
            StatusCode::NOT_FOUND => return Ok(Lookup::Unknown),
            // The server answers 403 both when the token may not use the
            // path and when no engine is mounted there.
            StatusCode::FORBIDDEN => {
                return Err(HandleError::permission_denied(
                    "permission denied, or no secrets engine mounted there (HTTP 403)",
                ));
            }
            s => return Err(status_error(s, "no secrets engine mounted there")),
        }
        let lookup = parse(segments, resp.body.as_ref());
        if let Lookup::Located(mount) = &lookup
            && let Ok(mut known) = self.known.lock()
        {
            known.push(mount.clone());
        }
        Ok(lookup)
    }
}

/// What the mount lookup's answer (`sys/internal/ui/mounts/<path>`, a 200)
/// says about the mount of `segments`: its type (an auth mount by its
/// accessor), where it sits in the path (the server names it relative to
/// the namespace, so a handle's leading namespace segments are skipped),
/// and whether it is KV v2.
pub fn parse(segments: &[String], body: Option<&Value>) -> Lookup {
    let data = body.and_then(|b| b.get("data"));
    let field = |name: &str| data.and_then(|d| d.get(name)).and_then(Value::as_str);
    let Some(kind) = field("type") else {
        tracing::debug!("mount lookup gave no mount type; reading the path as is");
        return Lookup::Unknown;
    };
    let kind = MountKind {
        kind: kind.to_owned(),
        // Auth method mounts' accessors are `auth_<type>_<id>`.
        auth: field("accessor").is_some_and(|a| a.starts_with("auth_")),
    };
    let mount_path = data
        .and_then(|d| d.get("path"))
        .and_then(Value::as_str)
        .unwrap_or_default();
    let mount_segments: Vec<String> = mount_path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect();
    // The server names the mount relative to the namespace; a handle may
    // carry (child) namespaces in its path (`team/secret/db`), so the
    // mount is where that name sits in our path.
    let offset = (0..segments.len()).find(|&k| {
        segments
            .get(k..)
            .is_some_and(|rest| rest.starts_with(&mount_segments))
    });
    let mount_segments = match offset {
        Some(k) if !mount_segments.is_empty() => segments
            .get(..k + mount_segments.len())
            .unwrap_or_default()
            .to_vec(),
        _ => {
            tracing::debug!("mount lookup gave no usable mount path; reading the path as is");
            return Lookup::Unlocated(kind);
        }
    };
    let kv2 = kind.kind == "kv"
        && data
            .and_then(|d| d.pointer("/options/version"))
            .and_then(Value::as_str)
            == Some("2");
    Lookup::Located(Mount {
        segments: mount_segments,
        kv2,
        kind,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn segs(p: &str) -> Vec<String> {
        p.split('/').map(str::to_owned).collect()
    }

    #[test]
    fn kv2_is_located_under_namespaces() {
        let body = json!({"data": {"type": "kv", "path": "secret/", "accessor": "kv_1", "options": {"version": "2"}}});
        match parse(&segs("team/secret/db"), Some(&body)) {
            Lookup::Located(m) => {
                assert_eq!(m.segments, segs("team/secret"));
                assert!(m.kv2);
                assert!(!m.kind.auth);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kv1_auth_mounts_and_odd_answers() {
        let kv1 =
            json!({"data": {"type": "kv", "path": "kv/", "accessor": "kv_2", "options": null}});
        assert!(matches!(parse(&segs("kv/a"), Some(&kv1)), Lookup::Located(m) if !m.kv2));
        let auth =
            json!({"data": {"type": "approle", "path": "approle/", "accessor": "auth_approle_1"}});
        assert!(
            matches!(parse(&segs("approle/x"), Some(&auth)), Lookup::Located(m) if m.kind.auth)
        );
        let elsewhere = json!({"data": {"type": "kv", "path": "other/"}});
        assert!(matches!(
            parse(&segs("kv/a"), Some(&elsewhere)),
            Lookup::Unlocated(_)
        ));
        assert!(matches!(
            parse(&segs("kv/a"), Some(&json!({"data": {}}))),
            Lookup::Unknown
        ));
        assert!(matches!(parse(&segs("kv/a"), None), Lookup::Unknown));
    }
}
