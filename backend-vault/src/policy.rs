//! Which paths a handle may read.
//!
//! A handle names a path under `/v1/`, and every Vault token may read a few
//! paths that are no secrets but the token's own identity:
//! `auth/token/lookup-self` answers with the token itself (its `id`), every
//! token's `default` policy allows that read, and the same API sits inside
//! each namespace (`ns1/auth/token/lookup-self`). A handle is written by
//! whoever writes the agent's check configs, who must never get the
//! backend's credentials, so these paths are refused whatever the token's
//! policies say:
//!
//! - `auth/...`: every auth method, the token store included (the token's
//!   lookup, an AppRole's `role-id`, logins);
//! - `sys/...`: the system API (response unwrapping `sys/wrapping/*`,
//!   policies, mounts, leases, `sys/internal/*`);
//! - `identity/...`: the identity store (`identity/oidc/token/<role>` signs
//!   an identity token for the caller);
//! - `cubbyhole/response`: where a wrapped response waits for its wrapping
//!   token. Other `cubbyhole/` paths stay readable: they are the token's own
//!   storage, which an operator may fill for a configured token.
//!
//! Namespace names and secrets engine mounts can never be `auth`, `sys`,
//! `identity` or `cubbyhole` (the server reserves them), so a handle whose
//! first segment is one of them is refused before anything is sent. Inside
//! a namespace (`team/auth/...`) only the server knows where the namespace
//! part of a path ends, so the mount lookup each read makes anyway decides:
//! a path whose mount is an auth method (its accessor starts with `auth_`)
//! or of type `token`, `system`, `identity` (or their `ns_` forms) is
//! refused, and so is `cubbyhole/response` of a cubbyhole mount. When the
//! server cannot say (no mount lookup endpoint), any segment `auth`, `sys`
//! or `identity`, and `cubbyhole/response` anywhere, is refused.
//!
//! On top of that, the operator may narrow what handles reach with
//! `allowed_paths` (prefixes, whole segments). It can only narrow: nothing
//! refused above can be allowed, by the config file or by a config that a
//! caller puts into its request.

use backend_core::HandleError;

/// First path segments that are the server's own APIs, never secrets.
pub const REFUSED_ROOTS: &[&str] = &["auth", "sys", "identity"];

/// Mount types that are the server's own APIs (and their namespace forms).
const REFUSED_TYPES: &[&str] = &[
    "token",
    "ns_token",
    "system",
    "ns_system",
    "identity",
    "ns_identity",
];

/// The types of the per-token storage.
const CUBBYHOLE_TYPES: &[&str] = &["cubbyhole", "ns_cubbyhole"];

/// What the mount lookup said about a path's mount.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MountKind {
    /// The mount's `type` (`kv`, `token`, `ns_system`, ...).
    pub kind: String,
    /// Whether it is an auth method (its accessor is `auth_<type>_...`).
    pub auth: bool,
}

impl MountKind {
    fn refused(&self) -> bool {
        self.auth || REFUSED_TYPES.contains(&self.kind.as_str())
    }

    fn cubbyhole(&self) -> bool {
        CUBBYHOLE_TYPES.contains(&self.kind.as_str())
    }
}

/// The operator's allowlist, on top of the fixed refusals.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// `allowed_paths`, each split into segments; `None`: every path that
    /// is not refused.
    allowed: Option<Vec<Vec<String>>>,
}

fn refused() -> HandleError {
    HandleError::permission_denied(
        "refused: not a secret (auth/, sys/, identity/ and cubbyhole/response are the \
         server's own APIs and are never read)",
    )
}

fn not_allowed() -> HandleError {
    HandleError::permission_denied("refused: not under allowed_paths")
}

/// Whether `segments` start with the reserved `cubbyhole/response`.
fn wrapped_response<S: AsRef<str>>(segments: &[S]) -> bool {
    segments.first().map(AsRef::as_ref) == Some("cubbyhole")
        && segments.get(1).map(AsRef::as_ref) == Some("response")
}

/// Whether a path (a handle's, or an `allowed_paths` entry) starts with a
/// refused root, before any namespace could precede it.
pub fn refused_root<S: AsRef<str>>(segments: &[S]) -> bool {
    segments
        .first()
        .is_some_and(|s| REFUSED_ROOTS.contains(&s.as_ref()))
        || wrapped_response(segments)
}

/// Whether `segments` could reach a refused API behind some namespace
/// prefix: the rule when the server cannot tell where the mount is.
fn refused_anywhere(segments: &[String]) -> bool {
    (0..segments.len()).any(|k| segments.get(k..).is_some_and(refused_root))
}

/// `segments` without any `data` segment.
fn without_data<S: AsRef<str>>(segments: &[S]) -> impl Iterator<Item = &str> {
    segments.iter().map(AsRef::as_ref).filter(|s| *s != "data")
}

impl Policy {
    /// A policy allowing every path under one of `allowed` (segments), or,
    /// with `None`, every path that is not refused.
    pub fn new(allowed: Option<Vec<Vec<String>>>) -> Self {
        Self { allowed }
    }

    fn allows(&self, path: &[String]) -> bool {
        self.allowed
            .as_ref()
            .is_none_or(|list| list.iter().any(|prefix| path.starts_with(prefix)))
    }

    /// The check made before anything is sent: refused roots, and paths no
    /// `allowed_paths` entry can cover whatever the mount turns out to be
    /// (a KV v2 path may be written with or without its `data/` segment,
    /// so that segment is ignored on both sides here).
    pub fn precheck<S: AsRef<str>>(&self, segments: &[S]) -> Result<(), HandleError> {
        if refused_root(segments) {
            return Err(refused());
        }
        let Some(list) = &self.allowed else {
            return Ok(());
        };
        let path: Vec<&str> = without_data(segments).collect();
        let possible = list.iter().any(|prefix| {
            let prefix: Vec<&str> = without_data(prefix).collect();
            path.starts_with(&prefix)
        });
        if possible { Ok(()) } else { Err(not_allowed()) }
    }

    /// The check made once the mount is known. `mount` is what the lookup
    /// said (`None`: the server could not say), with where the mount ends
    /// in `segments` when that could be located; `logical` is the path
    /// without a KV v2 `data/` segment and `read` the path actually read:
    /// an `allowed_paths` entry may name either.
    pub fn check(
        &self,
        segments: &[String],
        mount: Option<(&MountKind, Option<usize>)>,
        logical: &[String],
        read: &[String],
    ) -> Result<(), HandleError> {
        let refuse = match mount {
            None => refused_anywhere(segments),
            Some((kind, _)) if kind.refused() => true,
            Some((kind, end)) if kind.cubbyhole() => match end {
                // The segment after the mount; the mount is `cubbyhole`.
                Some(end) => segments.get(end).map(String::as_str) == Some("response"),
                None => segments.iter().any(|s| s == "response"),
            },
            Some(_) => false,
        };
        if refuse {
            return Err(refused());
        }
        if self.allows(logical) || self.allows(read) {
            Ok(())
        } else {
            Err(not_allowed())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(path: &str) -> Vec<String> {
        path.split('/').map(str::to_owned).collect()
    }

    fn kind(kind: &str, auth: bool) -> MountKind {
        MountKind {
            kind: kind.into(),
            auth,
        }
    }

    #[test]
    fn roots_are_refused_before_anything_is_sent() {
        let open = Policy::default();
        for p in [
            "auth/token/lookup-self",
            "auth/approle/role/agent/role-id",
            "sys/wrapping/unwrap",
            "sys/internal/ui/mounts/secret",
            "identity/oidc/token/agent",
            "cubbyhole/response",
            "cubbyhole/response/x",
        ] {
            assert!(open.precheck(&s(p)).is_err(), "{p}");
        }
        for p in [
            "secret/db",
            "secret/auth",
            "cubbyhole/mine",
            "ns1/auth/token/lookup-self",
        ] {
            // The last one is refused once the mount lookup has spoken.
            assert!(open.precheck(&s(p)).is_ok(), "{p}");
        }
    }

    #[test]
    fn the_mount_decides_inside_namespaces() {
        let open = Policy::default();
        let check = |path: &str, mount: Option<(&MountKind, Option<usize>)>| {
            let p = s(path);
            open.check(&p, mount, &p, &p)
        };
        let token = kind("ns_token", true);
        assert!(check("ns1/auth/token/lookup-self", Some((&token, Some(3)))).is_err());
        let approle = kind("approle", true);
        assert!(check("ns1/auth/ar/role/x/role-id", Some((&approle, None))).is_err());
        let sys = kind("ns_system", false);
        assert!(check("ns1/sys/policy/x", Some((&sys, Some(2)))).is_err());
        let ident = kind("identity", false);
        assert!(check("identity/oidc/token/x", Some((&ident, Some(1)))).is_err());
        let cubby = kind("ns_cubbyhole", false);
        assert!(check("ns1/cubbyhole/response", Some((&cubby, Some(2)))).is_err());
        assert!(check("ns1/cubbyhole/mine", Some((&cubby, Some(2)))).is_ok());
        // A secrets engine mounted at team/auth/kv is a secrets engine.
        let kv = kind("kv", false);
        assert!(check("team/auth/kv/db", Some((&kv, Some(3)))).is_ok());
        // The server could not say: refuse whatever could be an API.
        assert!(check("team/auth/kv/db", None).is_err());
        assert!(check("ns1/cubbyhole/response", None).is_err());
        assert!(check("secret/db", None).is_ok());
    }

    #[test]
    fn allowed_paths_only_narrow() {
        let p = Policy::new(Some(vec![s("secret/app"), s("kv1")]));
        assert!(p.precheck(&s("secret/app/db")).is_ok());
        assert!(p.precheck(&s("secret/data/app/db")).is_ok());
        assert!(p.precheck(&s("kv1/x")).is_ok());
        assert!(p.precheck(&s("secret/application")).is_err());
        assert!(p.precheck(&s("secret/other")).is_err());
        assert!(p.precheck(&s("auth/token/lookup-self")).is_err());
        let kv = kind("kv", false);
        let (logical, read) = (s("secret/app/db"), s("secret/data/app/db"));
        assert!(
            p.check(&read, Some((&kv, Some(1))), &logical, &read)
                .is_ok()
        );
        // An entry in the API's form covers the same secrets.
        let api = Policy::new(Some(vec![s("secret/data/app")]));
        assert!(api.precheck(&logical).is_ok());
        assert!(
            api.check(&logical, Some((&kv, Some(1))), &logical, &read)
                .is_ok()
        );
        // Allowed or not, the token's own API stays refused.
        let all = Policy::new(Some(vec![s("ns1")]));
        let token = kind("ns_token", true);
        let own = s("ns1/auth/token/lookup-self");
        assert!(
            all.check(&own, Some((&token, Some(3))), &own, &own)
                .is_err()
        );
    }
}
