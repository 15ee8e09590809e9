//! A fake Kubernetes API server for the k8s backend's tests.
//!
//! No kube-apiserver can be installed here, so this one plays it, for the
//! one endpoint the backend calls: `GET /api/v1/namespaces/{ns}/secrets/{name}`.
//!
//! What it models, as the API reference and kube-apiserver do it:
//!
//! - **TLS with its own CA**, made at start ([`FakeKube::ca_file`]): the
//!   server certificate is valid for `localhost`, `127.0.0.1` and `::1`;
//!   client certificates issued by the same CA ([`FakeKube::client_cert`])
//!   authenticate their user, as `--client-ca-file` does.
//! - **Authentication**: a valid client certificate, else a bearer token
//!   ([`FakeKube::add_token`]). A token that is sent and unknown is a 401;
//!   nothing at all is the user `system:anonymous`.
//! - **RBAC** checked before existence, as the authorizer runs before the
//!   handler: a user may `get` secrets of a namespace, or only the named
//!   ones (`resourceNames`) ([`FakeKube::grant`]); otherwise a 403, even for
//!   a secret that does not exist.
//! - **`Status` objects** for 401, 403 and 404 exactly as kube-apiserver
//!   writes them (`kind: Status`, `apiVersion: v1`, `metadata: {}`,
//!   `status: Failure`, `message`, `reason`, `details`, `code`), and the
//!   plain-text `404 page not found` for a path no API serves.
//! - **Secrets** with base64 `data`; `data` is left out when a secret has
//!   no keys (as the server's JSON encoding omits an empty map).
//! - **A request log** ([`FakeKube::requests`]): method, path, the user,
//!   the status answered, so tests count requests.
//! - **Faults** per secret ([`FakeKube::fault`]): a status of our choosing
//!   with a Status body, a raw body, or a hang (the request is read and
//!   never answered; the connection closes when the client goes).
//!
//! What it does not model: HTTP/2 (ALPN offers only HTTP/1.1, which is all
//! the backend speaks), keep-alive (every answer closes its connection),
//! any other resource or verb, `list`/`watch`, admission, audiences and
//! expiry inside tokens (a token is valid until removed:
//! [`FakeKube::remove_token`] plays a rotation), groups and impersonation,
//! `resourceVersion` semantics, and the `stringData` field (write-only in
//! Kubernetes, never returned by a `get`).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use base64::Engine as _;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair,
};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde_json::{Value, json};

/// What the server does to the requests for one secret.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers this status with a kube-apiserver `Status` body.
    Status(u16),
    /// Answers this status with exactly this body (a misbehaving server).
    Raw(u16, String),
    /// Reads the request and never answers.
    Hang,
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, ...
    pub method: String,
    /// The request target, path and query.
    pub path: String,
    /// Who the request authenticated as (`None`: refused with 401).
    pub user: Option<String>,
    /// The status answered (0 for a hang).
    pub status: u16,
}

/// A secret's keys and values, by (namespace, name).
type Secrets = BTreeMap<(String, String), BTreeMap<String, Vec<u8>>>;

#[derive(Debug, Default)]
struct State {
    secrets: Mutex<Secrets>,
    tokens: Mutex<HashMap<String, String>>,
    certs: Mutex<Vec<(Vec<u8>, String)>>,
    /// (user, namespace, resourceNames: empty = all).
    grants: Mutex<Vec<(String, String, Vec<String>)>>,
    faults: Mutex<HashMap<(String, String), Fault>>,
    log: Mutex<Vec<Seen>>,
    stop: AtomicBool,
}

/// A running fake API server; stopped when dropped.
pub struct FakeKube {
    addr: SocketAddr,
    state: Arc<State>,
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for FakeKube {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeKube")
            .field("addr", &self.addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The user name of service account `sa` in namespace `ns`.
pub fn service_account(ns: &str, sa: &str) -> String {
    format!("system:serviceaccount:{ns}:{sa}")
}

impl FakeKube {
    /// Starts a server on 127.0.0.1 with a fresh CA.
    pub fn start() -> Self {
        Self::bind("127.0.0.1:0")
    }

    /// Starts a server on `[::1]`, or `None` where IPv6 loopback is missing.
    pub fn start_ipv6() -> Option<Self> {
        TcpListener::bind("[::1]:0").ok()?;
        Some(Self::bind("[::1]:0"))
    }

    fn bind(at: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "fake-kube-ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(vec![
            "localhost".to_owned(),
            "127.0.0.1".to_owned(),
            "::1".to_owned(),
        ])
        .unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, "kube-apiserver");
        let server = params.signed_by(&key, &ca).unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let mut roots = rustls::RootCertStore::empty();
        roots.add(ca.der().clone()).unwrap();
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots),
            provider.clone(),
        )
        .allow_unauthenticated()
        .build()
        .unwrap();
        let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_client_cert_verifier(verifier)
            .with_single_cert(vec![server.der().clone()], key_der)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind(at).unwrap();
        let addr = listener.local_addr().unwrap();
        let state = Arc::new(State::default());
        let s = state.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                if s.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                let (s, config) = (s.clone(), config.clone());
                std::thread::spawn(move || serve(stream, config, &s));
            }
        });
        Self {
            addr,
            state,
            dir,
            ca,
        }
    }

    /// `https://127.0.0.1:PORT` (or `https://[::1]:PORT`).
    pub fn url(&self) -> String {
        format!("https://{}", self.addr)
    }

    /// The host, as `KUBERNETES_SERVICE_HOST` holds it (no brackets).
    pub fn host(&self) -> String {
        self.addr.ip().to_string()
    }

    /// The port, as `KUBERNETES_SERVICE_PORT` holds it.
    pub fn port(&self) -> u16 {
        self.addr.port()
    }

    /// The CA certificate (PEM) that signed the server's certificate.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// The CA certificate as PEM text.
    pub fn ca_pem(&self) -> String {
        self.ca.pem()
    }

    /// Stores a secret (replacing one of that name).
    pub fn put_secret(&self, ns: &str, name: &str, data: &[(&str, &[u8])]) {
        let data = data
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.to_vec()))
            .collect();
        lock(&self.state.secrets).insert((ns.to_owned(), name.to_owned()), data);
    }

    /// Makes `token` authenticate `user`.
    pub fn add_token(&self, token: &str, user: &str) {
        lock(&self.state.tokens).insert(token.to_owned(), user.to_owned());
    }

    /// Makes `token` unknown (expired, rotated away).
    pub fn remove_token(&self, token: &str) {
        lock(&self.state.tokens).remove(token);
    }

    /// Lets `user` get the secrets `names` of `ns` (a Role with
    /// `resourceNames`), or every secret of `ns` when `names` is empty.
    pub fn grant(&self, user: &str, ns: &str, names: &[&str]) {
        lock(&self.state.grants).push((
            user.to_owned(),
            ns.to_owned(),
            names.iter().map(|n| (*n).to_owned()).collect(),
        ));
    }

    /// A client certificate and key (PEM files) for `user`, signed by the
    /// server's CA.
    pub fn client_cert(&self, user: &str) -> (PathBuf, PathBuf) {
        let key = KeyPair::generate().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.distinguished_name.push(DnType::CommonName, user);
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
        let cert = params.signed_by(&key, &self.ca).unwrap();
        lock(&self.state.certs).push((cert.der().to_vec(), user.to_owned()));
        let n = lock(&self.state.certs).len();
        let (c, k) = (
            self.dir.path().join(format!("client-{n}.crt")),
            self.dir.path().join(format!("client-{n}.key")),
        );
        std::fs::write(&c, cert.pem()).unwrap();
        crate::files::write_private(&k, &key.serialize_pem());
        (c, k)
    }

    /// Applies `fault` to every request for secret `ns/name`.
    pub fn fault(&self, ns: &str, name: &str, fault: Fault) {
        lock(&self.state.faults).insert((ns.to_owned(), name.to_owned()), fault);
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state.log).clone()
    }

    /// How many requests asked for secret `ns/name`.
    pub fn count(&self, ns: &str, name: &str) -> usize {
        let path = secret_path(ns, name);
        self.requests().iter().filter(|s| s.path == path).count()
    }
}

impl Drop for FakeKube {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// The path of secret `ns/name`.
pub fn secret_path(ns: &str, name: &str) -> String {
    format!("/api/v1/namespaces/{ns}/secrets/{name}")
}

/// A `Status` object as kube-apiserver writes it.
pub fn status(code: u16, reason: &str, message: &str, details: Option<Value>) -> String {
    let mut s = json!({
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    });
    if let Some(d) = details {
        s["details"] = d;
    }
    s["code"] = code.into();
    s.to_string()
}

fn serve(tcp: TcpStream, config: Arc<rustls::ServerConfig>, state: &State) {
    let _ = tcp.set_read_timeout(Some(Duration::from_secs(60)));
    let Ok(conn) = rustls::ServerConnection::new(config) else {
        return;
    };
    let mut tls = rustls::StreamOwned::new(conn, tcp);
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match tls.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
        if head.len() > 64 * 1024 {
            return;
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let mut lines = head.split("\r\n");
    let mut request = lines.next().unwrap_or_default().split(' ');
    let method = request.next().unwrap_or_default().to_owned();
    let path = request.next().unwrap_or_default().to_owned();
    let token = lines
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("authorization").then(|| v.trim())
        })
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_owned);
    let peer = tls
        .conn
        .peer_certificates()
        .and_then(|c| c.first())
        .map(|c: &CertificateDer<'_>| c.to_vec());
    let user = peer
        .and_then(|der| {
            lock(&state.certs)
                .iter()
                .find(|(d, _)| *d == der)
                .map(|(_, u)| u.clone())
        })
        .or_else(|| {
            token
                .as_ref()
                .and_then(|t| lock(&state.tokens).get(t).cloned())
        });
    let (user, code, body, ctype) = answer(state, &method, &path, token.is_some(), user);
    lock(&state.log).push(Seen {
        method,
        path,
        user,
        status: code,
    });
    if code == 0 {
        // A hang: wait for the client to go away.
        while matches!(tls.sock.read(&mut buf), Ok(n) if n > 0) {}
        return;
    }
    let reason = match code {
        200 => "OK",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        500 => "Internal Server Error",
        _ => "Status",
    };
    let reply = format!(
        "HTTP/1.1 {code} {reason}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let _ = tls.write_all(reply.as_bytes());
    let _ = tls.flush();
    tls.conn.send_close_notify();
    let _ = tls.conn.complete_io(&mut tls.sock);
}

/// (user, status, body, content type); status 0 is a hang.
fn answer(
    state: &State,
    method: &str,
    path: &str,
    sent_token: bool,
    user: Option<String>,
) -> (Option<String>, u16, String, &'static str) {
    const JSON: &str = "application/json";
    let route = path
        .split('?')
        .next()
        .unwrap_or_default()
        .strip_prefix("/api/v1/namespaces/")
        .and_then(|rest| {
            let mut parts = rest.split('/');
            match (parts.next(), parts.next(), parts.next(), parts.next()) {
                (Some(ns), Some("secrets"), Some(name), None) => {
                    Some((ns.to_owned(), name.to_owned()))
                }
                _ => None,
            }
        });
    let user = match user {
        Some(u) => u,
        None if sent_token => {
            let body = status(401, "Unauthorized", "Unauthorized", None);
            return (None, 401, body, JSON);
        }
        None => "system:anonymous".to_owned(),
    };
    let Some((ns, name)) = route.filter(|_| method == "GET") else {
        return (Some(user), 404, "404 page not found\n".into(), "text/plain");
    };
    let details = json!({"name": name, "kind": "secrets"});
    let allowed = lock(&state.grants)
        .iter()
        .any(|(u, n, names)| *u == user && *n == ns && (names.is_empty() || names.contains(&name)));
    if !allowed {
        let message = format!(
            "secrets \"{name}\" is forbidden: User \"{user}\" cannot get resource \"secrets\" in API group \"\" in the namespace \"{ns}\""
        );
        return (
            Some(user),
            403,
            status(403, "Forbidden", &message, Some(details)),
            JSON,
        );
    }
    let fault = lock(&state.faults)
        .get(&(ns.clone(), name.clone()))
        .cloned();
    match fault {
        Some(Fault::Hang) => return (Some(user), 0, String::new(), JSON),
        Some(Fault::Raw(code, body)) => return (Some(user), code, body, JSON),
        Some(Fault::Status(code)) => {
            let body = status(
                code,
                "InternalError",
                "Internal error occurred: injected fault",
                Some(json!({"causes": [{"message": "injected fault"}]})),
            );
            return (Some(user), code, body, JSON);
        }
        None => {}
    }
    let Some(data) = lock(&state.secrets)
        .get(&(ns.clone(), name.clone()))
        .cloned()
    else {
        let message = format!("secrets \"{name}\" not found");
        return (
            Some(user),
            404,
            status(404, "NotFound", &message, Some(details)),
            JSON,
        );
    };
    let mut secret = json!({
        "kind": "Secret",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": "6a1f0e4c-0000-4000-8000-000000000000",
            "resourceVersion": "4242",
            "creationTimestamp": "2026-01-01T00:00:00Z",
        },
        "type": "Opaque",
    });
    if !data.is_empty() {
        let encoded: serde_json::Map<String, Value> = data
            .iter()
            .map(|(k, v)| {
                (
                    k.clone(),
                    base64::engine::general_purpose::STANDARD.encode(v).into(),
                )
            })
            .collect();
        secret["data"] = Value::Object(encoded);
    }
    (Some(user), 200, secret.to_string(), JSON)
}
