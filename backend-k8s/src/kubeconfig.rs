//! Reading a kubeconfig file, for an agent outside the cluster.
//!
//! What is used: the named context (else `current-context`), its cluster's
//! `server`, `certificate-authority` / `certificate-authority-data` (the
//! only roots trusted; without either, the system's),
//! `insecure-skip-tls-verify` (logged as a warning), its user's `token`,
//! `tokenFile`, `client-certificate(-data)` and `client-key(-data)`, and the
//! context's `namespace` (else `default`) for handles without one. Relative
//! paths are relative to the kubeconfig's directory, as kubectl reads them.
//!
//! Refused with an error that says so: `exec` credential plugins and
//! `auth-provider`s (out of scope: they run programs or speak to identity
//! providers), basic auth, `tls-server-name` and `proxy-url`. Other keys
//! are ignored, as kubectl ignores what it does not know. Several files in
//! `$KUBECONFIG` are not merged ([`crate::config`]).

use std::path::{Path, PathBuf};

use backend_core::config::{MAX_CONFIG_BYTES, from_yaml, read_guarded};
use backend_core::secret::hold;
use backend_core::{Secret, redact};
use base64::Engine as _;
use serde::Deserialize;
use serde::de::IgnoredAny;
use zeroize::{Zeroize, Zeroizing};

use crate::config::server_url;

/// What a context says: the server, how to trust it, who we are.
#[derive(Debug)]
pub struct Resolved {
    /// The server URL.
    pub server: String,
    /// PEM CA certificates and where they came from; `None`: system roots.
    pub ca: Option<(Vec<u8>, String)>,
    /// `insecure-skip-tls-verify`.
    pub insecure: bool,
    /// A bearer token (held).
    pub token: Option<Secret>,
    /// A client certificate chain (PEM) and its key (PEM, held).
    pub client: Option<(Vec<u8>, Secret)>,
    /// The context's namespace, `default` when it names none.
    pub namespace: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct File {
    clusters: Vec<Named<Cluster>>,
    users: Vec<Named<User>>,
    contexts: Vec<Named<Context>>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct Named<T> {
    name: String,
    #[serde(alias = "cluster", alias = "user", alias = "context")]
    value: Option<T>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Cluster {
    server: Option<String>,
    #[serde(rename = "certificate-authority")]
    ca: Option<PathBuf>,
    #[serde(rename = "certificate-authority-data")]
    ca_data: Option<String>,
    #[serde(rename = "insecure-skip-tls-verify")]
    insecure: bool,
    #[serde(rename = "tls-server-name")]
    tls_server_name: Option<IgnoredAny>,
    #[serde(rename = "proxy-url")]
    proxy_url: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    #[serde(rename = "client-certificate")]
    cert: Option<PathBuf>,
    #[serde(rename = "client-certificate-data")]
    cert_data: Option<String>,
    #[serde(rename = "client-key")]
    key: Option<PathBuf>,
    #[serde(rename = "client-key-data")]
    key_data: Option<String>,
    exec: Option<IgnoredAny>,
    #[serde(rename = "auth-provider")]
    auth_provider: Option<IgnoredAny>,
    username: Option<IgnoredAny>,
    password: Option<IgnoredAny>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Context {
    cluster: String,
    user: String,
    namespace: Option<String>,
}

/// Largest certificate or key file read.
const MAX_PEM: u64 = 1024 * 1024;

fn find<'a, T>(list: &'a [Named<T>], name: &str, what: &str) -> Result<&'a T, String> {
    list.iter()
        .find(|n| n.name == name)
        .and_then(|n| n.value.as_ref())
        .ok_or_else(|| format!("no {what} named '{}'", name.escape_debug()))
}

/// Reads `path` and resolves `context` (else the current one). Errors name
/// the file and the part at fault, never a credential.
pub fn load(path: &Path, context: Option<&str>) -> Result<Resolved, String> {
    let at = |e: String| format!("kubeconfig {}: {e}", path.display());
    let mut text = read_guarded(path, "kubeconfig", MAX_CONFIG_BYTES).map_err(|e| e.to_string())?;
    let parsed = from_yaml::<File>(&text);
    text.zeroize();
    let mut file = parsed.map_err(at)?;
    let resolved = pick(&file, context).and_then(|(cluster, user, ctx)| {
        resolve(cluster, user, ctx, path.parent().unwrap_or(Path::new(".")))
    });
    // The file's inline credentials were copied into held secrets, if used.
    for user in file.users.iter_mut().filter_map(|u| u.value.as_mut()) {
        user.token.zeroize();
        user.key_data.zeroize();
    }
    resolved.map_err(at)
}

/// The context, its cluster and its user.
fn pick<'a>(
    file: &'a File,
    context: Option<&str>,
) -> Result<(&'a Cluster, &'a User, &'a Context), String> {
    let name = match context.or(file.current_context.as_deref()) {
        Some(n) if !n.is_empty() => n,
        _ => return Err("no current-context, and no context configured".into()),
    };
    let ctx = find(&file.contexts, name, "context")?;
    let cluster = find(&file.clusters, &ctx.cluster, "cluster")?;
    let user = find(&file.users, &ctx.user, "user")?;
    Ok((cluster, user, ctx))
}

fn resolve(cluster: &Cluster, user: &User, ctx: &Context, base: &Path) -> Result<Resolved, String> {
    let cname = ctx.cluster.escape_debug();
    let uname = ctx.user.escape_debug();
    if cluster.tls_server_name.is_some() || cluster.proxy_url.is_some() {
        return Err(format!(
            "cluster '{cname}': tls-server-name and proxy-url are not supported"
        ));
    }
    if user.exec.is_some() || user.auth_provider.is_some() {
        return Err(format!(
            "user '{uname}': exec credential plugins and auth-providers are out of scope (they run programs); give the user a token, tokenFile or client certificate"
        ));
    }
    if user.username.is_some() || user.password.is_some() {
        return Err(format!(
            "user '{uname}': basic auth (username/password) is not supported"
        ));
    }
    let server = cluster
        .server
        .as_deref()
        .ok_or_else(|| format!("cluster '{cname}' has no server"))?;
    let server = server_url(server).map_err(|e| format!("cluster '{cname}': {e}"))?;
    let ca = match (&cluster.ca, &cluster.ca_data) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "cluster '{cname}': certificate-authority and certificate-authority-data exclude each other"
            ));
        }
        (Some(p), None) => {
            let p = base.join(p);
            let pem =
                read_guarded(&p, "certificate-authority", MAX_PEM).map_err(|e| e.to_string())?;
            Some((
                pem.into_bytes(),
                format!("certificate-authority {}", p.display()),
            ))
        }
        (None, Some(d)) => Some((
            decode(d)
                .map_err(|e| format!("cluster '{cname}': certificate-authority-data {e}"))?
                .to_vec(),
            format!("certificate-authority-data of cluster '{cname}'"),
        )),
        (None, None) => None,
    };
    let token = match (&user.token, &user.token_file) {
        (Some(_), Some(_)) => {
            return Err(format!(
                "user '{uname}': token and tokenFile exclude each other"
            ));
        }
        (Some(t), None) => Some(Secret::credential(t.trim().to_owned())),
        (None, Some(p)) => Some(crate::connect::read_token(&base.join(p), "tokenFile")?),
        (None, None) => None,
    };
    let cert = pem_source(&user.cert, &user.cert_data, base, "client-certificate")
        .map_err(|e| format!("user '{uname}': {e}"))?;
    let key = pem_source(&user.key, &user.key_data, base, "client-key")
        .map_err(|e| format!("user '{uname}': {e}"))?;
    // The key as the kubeconfig writes it (base64 of the PEM) is held too:
    // a file handle of another store naming the kubeconfig would otherwise
    // read it there.
    if let Some(data) = &user.key_data {
        hold(&Secret::new(data.trim().to_owned()));
    }
    let client = match (cert, key) {
        (Some(c), Some(k)) => {
            let key = Secret::new(String::from_utf8_lossy(&k).into_owned());
            hold(&key);
            Some((c.to_vec(), key))
        }
        (None, None) => None,
        _ => {
            return Err(format!(
                "user '{uname}': a client certificate and its key go together"
            ));
        }
    };
    if token.is_none() && client.is_none() {
        return Err(format!(
            "user '{uname}' has no token, tokenFile or client certificate"
        ));
    }
    let namespace = ctx.namespace.clone().unwrap_or_else(|| "default".into());
    if !crate::handle::is_label(&namespace) {
        return Err(format!(
            "context namespace '{}' is not a DNS-1123 label",
            redact::text(&namespace).escape_debug()
        ));
    }
    Ok(Resolved {
        server,
        ca,
        insecure: cluster.insecure,
        token,
        client,
        namespace,
    })
}

/// A PEM given as a file or as base64 data.
fn pem_source(
    file: &Option<PathBuf>,
    data: &Option<String>,
    base: &Path,
    what: &str,
) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
    match (file, data) {
        (Some(_), Some(_)) => Err(format!("{what} and {what}-data exclude each other")),
        (Some(p), None) => {
            let rules = backend_core::fs::Rules {
                max: MAX_PEM,
                refuse_writable: true,
            };
            let p = base.join(p);
            backend_core::fs::read_regular(&p, rules)
                .map(Some)
                .map_err(|e| format!("{what} {}: {e}", p.display()))
        }
        (None, Some(d)) => decode(d).map(Some).map_err(|e| format!("{what}-data {e}")),
        (None, None) => Ok(None),
    }
}

fn decode(data: &str) -> Result<Zeroizing<Vec<u8>>, String> {
    base64::engine::general_purpose::STANDARD
        .decode(data.trim())
        .map(Zeroizing::new)
        .map_err(|_| "is not valid base64".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        p
    }

    const BASE: &str = "apiVersion: v1\nkind: Config\ncurrent-context: dev\nclusters:\n- name: c\n  cluster:\n    server: https://kube.example:6443\n    certificate-authority-data: LS0tLQ==\n    extensions: []\ncontexts:\n- name: dev\n  context: {cluster: c, user: u, namespace: team}\n- name: other\n  context: {cluster: c, user: u}\npreferences: {}\nusers:\n- name: u\n  user:\n";

    #[test]
    fn contexts_clusters_and_users() {
        let d = tempfile::tempdir().unwrap();
        let p = write(
            d.path(),
            "config",
            &format!("{BASE}    token: TOKEN-IN-KUBECONFIG-1\n"),
        );
        let r = load(&p, None).unwrap();
        assert_eq!(r.server, "https://kube.example:6443");
        assert_eq!(r.namespace, "team");
        assert_eq!(r.ca.as_ref().unwrap().0, b"----");
        assert_eq!(r.token.as_ref().unwrap().expose(), "TOKEN-IN-KUBECONFIG-1");
        assert!(backend_core::secret::reveals_credential(
            "TOKEN-IN-KUBECONFIG-1"
        ));
        assert!(!format!("{r:?}").contains("TOKEN-IN-KUBECONFIG-1"));
        assert_eq!(load(&p, Some("other")).unwrap().namespace, "default");
        let e = load(&p, Some("nope")).unwrap_err();
        assert!(e.contains("no context named 'nope'"), "{e}");
    }

    #[test]
    fn the_client_key_is_held_as_written_and_decoded() {
        let d = tempfile::tempdir().unwrap();
        let pem = "-----BEGIN PRIVATE KEY-----\nKUBECONFIG-CLIENT-KEY-BYTES-7\n-----END PRIVATE KEY-----\n";
        let b64 = |t: &str| base64::engine::general_purpose::STANDARD.encode(t);
        let p = write(
            d.path(),
            "config",
            &format!(
                "{BASE}    client-certificate-data: {}\n    client-key-data: {}\n",
                b64("-----BEGIN CERTIFICATE-----\nCERT\n-----END CERTIFICATE-----\n"),
                b64(pem)
            ),
        );
        assert!(!backend_core::secret::reveals_credential(&b64(pem)));
        load(&p, None).unwrap();
        assert!(backend_core::secret::reveals_credential(pem));
        // The kubeconfig itself, read by another store's file handle.
        let text = std::fs::read_to_string(&p).unwrap();
        assert!(backend_core::secret::reveals_credential(&text));
    }

    #[test]
    fn refusals_name_the_cause_and_never_the_credential() {
        let d = tempfile::tempdir().unwrap();
        for (user, want) in [
            ("    exec:\n      command: aws\n", "exec credential plugins"),
            (
                "    auth-provider: {name: gcp}\n",
                "exec credential plugins",
            ),
            (
                "    username: admin\n    password: PASSWORD-9\n",
                "basic auth",
            ),
            (
                "    token: TOKEN-2\n    tokenFile: /t\n",
                "exclude each other",
            ),
            ("    client-certificate-data: LS0=\n", "go together"),
            ("    client-key-data: '!!!'\n", "base64"),
            ("    {}\n", "no token"),
        ] {
            let p = write(d.path(), "config", &format!("{BASE}{user}"));
            let e = load(&p, None).unwrap_err();
            assert!(e.contains(want), "{user}: {e}");
            assert!(!e.contains("PASSWORD-9") && !e.contains("TOKEN-2"), "{e}");
        }
        let p = write(d.path(), "bad", "clusters: [unclosed TOKEN-3\n");
        let e = load(&p, None).unwrap_err();
        assert!(!e.contains("TOKEN-3"), "{e}");
    }
}
