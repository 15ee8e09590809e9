//! A stand-in for Vault's `aws` auth method (IAM flavour) in front of a
//! real OpenBao, for the vault backend's AWS login tests.
//!
//! OpenBao ships the `aws` auth method only as an external plugin
//! (`bao auth enable aws` answers `plugin not found in the catalog: aws` in
//! 2.6.2 and 2.7.2), and no registry here carries it or HashiCorp's Vault.
//! So [`VaultAws`] listens on its own loopback port, takes only
//! `POST /v1/auth/<mount>/login`, and relays every other request to the
//! OpenBao server unchanged (through [`crate::fault::relay`]): secret
//! reads, mount lookups, `lookup-self` and `revoke-self` are OpenBao's own.
//!
//! What a login goes through, as in Vault's `pathLoginUpdateIam`:
//!
//! - the body's `iam_http_request_method` must be `POST`; `iam_request_url`,
//!   `iam_request_body` and `iam_request_headers` are base64, the headers a
//!   JSON map of name to a list of values (or a value);
//! - the request body may hold `Action=GetCallerIdentity` and `Version`
//!   only (Vault's `validateLoginIamRequestBody`), the URL no query;
//! - `X-Amz-*` headers outside Vault's default allowed list are refused;
//! - when the mount requires a server id ([`VaultAws::require_server_id`],
//!   Vault's `iam_server_id_header_value`), the `X-Vault-AWS-IAM-Server-ID`
//!   header must carry it and be among the `SignedHeaders` of the
//!   `Authorization` header;
//! - the signed request is replayed to the STS endpoint (the moto server,
//!   Vault's `sts_endpoint`) with the client's path, headers and body and
//!   the signed `Host`; moto checks the SigV4 signature once its auth is
//!   on ([`moto_auth`]), so a login passes only when
//!   the request is signed correctly with a key moto knows; STS's non-200
//!   answer is refused with its status and body in the error, as Vault does;
//! - the ARN STS answers with is made canonical (`assumed-role/R/S` is
//!   `arn:aws:iam::<account>:role/R`, a user's path is dropped) and must
//!   match one of the role's `bound_iam_principal_arn` (exactly, or a
//!   prefix ending in `*`); the role is the body's `role`, else the
//!   principal's name;
//! - on success a real OpenBao token is created (as root, orphan, in the
//!   login's namespace when it carried `X-Vault-Namespace`) with the role's
//!   policies, and answered in Vault's shape (`auth.client_token`,
//!   `accessor`, `policies`, `token_policies`, `metadata`,
//!   `lease_duration`, `renewable`); refusals are HTTP 400 with
//!   `{"errors": [...]}`.
//!
//! Not modelled: the `ec2` flavour; roles and the client config written
//! through the API (they are set with [`VaultAws::role`] and
//! [`VaultAws::require_server_id`]); `resolve_aws_unique_ids` and the IAM
//! lookups behind it (binding is by ARN only); `bound_account_id` and the
//! other bound_* keys; entity aliases; `sts_region` and STS role chaining
//! (`sts_role`); retries to STS; GET requests; renewal.

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};

use crate::fault::{Request, accept_loop, answer, read_request, relay};
use crate::openbao::OpenBao;

/// The header naming the Vault server a request is meant for.
pub const SERVER_ID_HEADER: &str = "X-Vault-AWS-IAM-Server-ID";

/// Vault's `defaultAllowedSTSRequestHeaders`: the `X-Amz-*` headers a
/// login may carry.
const ALLOWED_AMZ: [&str; 8] = [
    "x-amz-algorithm",
    "x-amz-content-sha256",
    "x-amz-credential",
    "x-amz-date",
    "x-amz-security-token",
    "x-amz-signature",
    "x-amz-signedheaders",
    "x-amz-user-agent",
];

/// A role of the stand-in: who may log in, and what the token gets.
#[derive(Debug, Clone)]
pub struct Role {
    /// `bound_iam_principal_arn`: ARNs, or prefixes ending in `*`.
    pub bound_iam_principal_arn: Vec<String>,
    /// The token's policies.
    pub policies: Vec<String>,
}

/// One login attempt, as the stand-in saw it.
#[derive(Debug, Clone)]
pub struct Attempt {
    /// The `X-Vault-Namespace` header of the login request.
    pub namespace: Option<String>,
    /// The caller's ARN as STS named it, once STS was asked and answered.
    pub arn: Option<String>,
    /// The `iam_request_headers` field as sent (base64), for leak scans.
    pub headers_field: String,
    /// The signed request's `Authorization` header, decoded.
    pub authorization: String,
    /// The token handed out, or why the login was refused.
    pub outcome: Result<String, String>,
}

#[derive(Debug)]
struct State {
    bao: Arc<OpenBao>,
    bao_addr: SocketAddr,
    sts: SocketAddr,
    mount: String,
    roles: Mutex<HashMap<String, Role>>,
    server_id: Mutex<Option<String>>,
    attempts: Mutex<Vec<Attempt>>,
    stop: AtomicBool,
}

/// The stand-in, listening on a loopback port; stops when dropped.
#[derive(Debug)]
pub struct VaultAws {
    addr: SocketAddr,
    state: Arc<State>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// `127.0.0.1:PORT` of an `http://127.0.0.1:PORT` address.
fn socket(addr: &str) -> SocketAddr {
    addr.trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .unwrap_or_else(|e| panic!("{addr}: not http://127.0.0.1:PORT ({e})"))
}

impl VaultAws {
    /// Serves the aws method at `mount` in front of `bao`, replaying logins
    /// to the STS endpoint `sts` (`http://127.0.0.1:PORT`, a moto server).
    pub fn start(bao: Arc<OpenBao>, sts: &str, mount: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the aws stand-in");
        let addr = listener.local_addr().expect("stand-in address");
        let state = Arc::new(State {
            bao_addr: socket(&bao.addr),
            bao,
            sts: socket(sts),
            mount: mount.trim_matches('/').to_owned(),
            roles: Mutex::new(HashMap::new()),
            server_id: Mutex::new(None),
            attempts: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        accept_loop(listener, state.clone(), |s| &s.stop, serve);
        Self { addr, state }
    }

    /// `http://127.0.0.1:PORT`: the address the backend is given.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Creates or replaces role `name`.
    pub fn role(&self, name: &str, bound: &[&str], policies: &[&str]) {
        let role = Role {
            bound_iam_principal_arn: bound.iter().map(|s| (*s).to_owned()).collect(),
            policies: policies.iter().map(|s| (*s).to_owned()).collect(),
        };
        lock(&self.state.roles).insert(name.to_owned(), role);
    }

    /// Requires (or, with `None`, stops requiring) the signed server id
    /// header with this value on every login.
    pub fn require_server_id(&self, value: Option<&str>) {
        *lock(&self.state.server_id) = value.map(str::to_owned);
    }

    /// Every login attempt so far, in order.
    pub fn attempts(&self) -> Vec<Attempt> {
        lock(&self.state.attempts).clone()
    }

    /// The tokens handed out so far.
    pub fn tokens(&self) -> Vec<String> {
        self.attempts()
            .into_iter()
            .filter_map(|a| a.outcome.ok())
            .collect()
    }
}

impl Drop for VaultAws {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn serve(mut client: TcpStream, state: &State) {
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let mut parts = req.line().split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    if method == "POST" && target == format!("/v1/auth/{}/login", state.mount) {
        let namespace = req.header("x-vault-namespace");
        let mut attempt = Attempt {
            namespace: namespace.clone(),
            arn: None,
            headers_field: String::new(),
            authorization: String::new(),
            outcome: Err(String::new()),
        };
        let answered = login(state, &req, namespace.as_deref(), &mut attempt);
        let (code, body) = match answered {
            Ok(body) => (200, body.to_string()),
            Err(why) => {
                attempt.outcome = Err(why.clone());
                (400, json!({ "errors": [why] }).to_string())
            }
        };
        lock(&state.attempts).push(attempt);
        answer(&mut client, code, None, &body);
        return;
    }
    relay(client, &req, &target, state.bao_addr);
}

/// A login, as Vault's aws method does it (see the module docs).
fn login(
    state: &State,
    req: &Request,
    namespace: Option<&str>,
    attempt: &mut Attempt,
) -> Result<Value, String> {
    let body: Value = serde_json::from_slice(&req.body).map_err(|_| "invalid JSON body")?;
    let field = |k: &str| {
        body.get(k)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    };
    let decoded = |k: &str| -> Result<String, String> {
        let raw = field(k).ok_or_else(|| format!("missing {k}"))?;
        let bytes = base64_decode(raw).ok_or_else(|| format!("failed to base64 decode {k}"))?;
        String::from_utf8(bytes).map_err(|_| format!("{k} is not UTF-8"))
    };
    if field("iam_http_request_method") != Some("POST") {
        return Err("invalid iam_http_request_method; only POST is supported".into());
    }
    attempt.headers_field = field("iam_request_headers").unwrap_or_default().to_owned();
    let url = decoded("iam_request_url")?;
    let sts_body = decoded("iam_request_body")?;
    let headers: Value = serde_json::from_str(&decoded("iam_request_headers")?)
        .map_err(|_| "iam_request_headers is not a JSON object")?;
    let headers: Vec<(String, String)> = headers
        .as_object()
        .ok_or("iam_request_headers is not a JSON object")?
        .iter()
        .flat_map(|(k, v)| {
            let values: Vec<String> = match v {
                Value::String(s) => vec![s.clone()],
                Value::Array(a) => a
                    .iter()
                    .filter_map(Value::as_str)
                    .map(str::to_owned)
                    .collect(),
                _ => Vec::new(),
            };
            values.into_iter().map(move |v| (k.clone(), v))
        })
        .collect();
    let header = |name: &str| {
        headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect::<Vec<_>>()
            .join(",")
    };
    attempt.authorization = header("authorization");
    for pair in sts_body.split('&') {
        match pair.split_once('=') {
            Some(("Action", "GetCallerIdentity")) | Some(("Version", _)) => {}
            _ => {
                return Err(
                    "error parsing iam_request_body: not a GetCallerIdentity request".into(),
                );
            }
        }
    }
    let (host, path) = split_url(&url).ok_or("error parsing iam_request_url")?;
    if path.contains('?') {
        return Err("iam_request_url must not carry a query".into());
    }
    if let Some((k, _)) = headers.iter().find(|(k, _)| {
        let k = k.to_ascii_lowercase();
        k.starts_with("x-amz-") && !ALLOWED_AMZ.contains(&k.as_str())
    }) {
        return Err(format!("invalid request header: {k}"));
    }
    if let Some(want) = lock(&state.server_id).clone() {
        let got = header(SERVER_ID_HEADER);
        if got.is_empty() {
            return Err(format!(
                "error validating {SERVER_ID_HEADER} header: missing header \"{SERVER_ID_HEADER}\""
            ));
        }
        if got != want {
            return Err(format!(
                "error validating {SERVER_ID_HEADER} header: expected \"{want}\" but got \"{got}\""
            ));
        }
        let signed = header("authorization")
            .split("SignedHeaders=")
            .nth(1)
            .map(|s| s.split(',').next().unwrap_or_default().to_owned())
            .unwrap_or_default();
        if !signed
            .split(';')
            .any(|h| h.eq_ignore_ascii_case(SERVER_ID_HEADER))
        {
            return Err(format!(
                "error validating {SERVER_ID_HEADER} header: vault header wasn't signed"
            ));
        }
    }
    let explicit_host = header("host");
    let host = if explicit_host.is_empty() {
        host
    } else {
        explicit_host
    };
    let (status, reply) = replay(state.sts, &host, &path, &headers, &sts_body)?;
    if status != 200 {
        return Err(format!(
            "error making upstream request: received error code {status} from STS: {reply}"
        ));
    }
    let arn = xml(&reply, "Arn").ok_or("no Arn in the STS answer")?;
    attempt.arn = Some(arn.clone());
    let canonical = canonical_arn(&arn);
    let role_name = match field("role") {
        Some(r) => r.to_owned(),
        None => canonical.rsplit('/').next().unwrap_or_default().to_owned(),
    };
    let role = lock(&state.roles)
        .get(&role_name)
        .cloned()
        .ok_or_else(|| format!("entry for role {role_name} not found"))?;
    let bound = role
        .bound_iam_principal_arn
        .iter()
        .any(|b| match b.strip_suffix('*') {
            Some(prefix) => canonical.starts_with(prefix) || arn.starts_with(prefix),
            None => *b == canonical,
        });
    if !bound {
        return Err(format!(
            "IAM Principal \"{arn}\" does not belong to the role \"{role_name}\""
        ));
    }
    let prefix = namespace.map_or(String::new(), |ns| format!("{}/", ns.trim_matches('/')));
    let (code, created) = state.bao.api(
        "POST",
        &format!("{prefix}auth/token/create"),
        Some(json!({
            "policies": role.policies,
            "no_parent": true,
            "ttl": "10m",
            "display_name": format!("aws-{role_name}"),
            "meta": {"canonical_arn": canonical, "client_arn": arn, "auth_type": "iam", "role": role_name},
        })),
    );
    let mut auth = created["auth"].clone();
    let token = auth["client_token"]
        .as_str()
        .filter(|_| code == 200)
        .ok_or_else(|| format!("internal error: cannot create the token (HTTP {code})"))?
        .to_owned();
    auth["metadata"] = json!({
        "account_id": canonical.split(':').nth(4).unwrap_or_default(),
        "auth_type": "iam",
        "canonical_arn": canonical,
        "client_arn": arn,
        "role": role_name,
    });
    auth["token_policies"] = auth["policies"].clone();
    attempt.outcome = Ok(token);
    Ok(json!({
        "request_id": "aws-stand-in",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": auth,
    }))
}

/// Turns moto's request authentication on or off (`POST /moto-api/reset-auth`
/// with the number of requests still let through unchecked: 0 checks every
/// one from now on; a large number turns checks off). Create the IAM users,
/// keys and roles with checks off, then turn them on: moto then checks the
/// SigV4 signature of every request against the keys it knows.
pub fn moto_auth(moto: &crate::moto::Moto, unchecked: u64) {
    let body = unchecked.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", moto.port())).expect("connect to moto");
    write!(
        s,
        "POST /moto-api/reset-auth HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send to moto");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read from moto");
    assert!(out.starts_with("HTTP/1.1 200"), "reset-auth: {out}");
}

/// Sends the signed request to STS with its own `Host`; the status and body.
fn replay(
    sts: SocketAddr,
    host: &str,
    path: &str,
    headers: &[(String, String)],
    body: &str,
) -> Result<(u16, String), String> {
    let mut s =
        TcpStream::connect(sts).map_err(|e| format!("error making upstream request: {e}"))?;
    let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
    let mut head = format!("POST {path} HTTP/1.1\r\nHost: {host}\r\n");
    for (k, v) in headers {
        if !["host", "content-length", "connection"].contains(&k.to_ascii_lowercase().as_str()) {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    ));
    let mut out = String::new();
    s.write_all(head.as_bytes())
        .and_then(|()| s.read_to_string(&mut out))
        .map_err(|e| format!("error making upstream request: {e}"))?;
    let status = out
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or("error making upstream request: no HTTP status")?;
    let reply = out.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, reply))
}

/// `host[:port]` and `path?query` of an absolute http(s) URL.
fn split_url(url: &str) -> Option<(String, String)> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    let (host, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, "/"),
    };
    (!host.is_empty()).then(|| (host.to_owned(), path.to_owned()))
}

/// Vault's canonical ARN: an assumed role's session is the role, a user's
/// path is dropped.
pub fn canonical_arn(arn: &str) -> String {
    let fields: Vec<&str> = arn.splitn(6, ':').collect();
    let [_, partition, _, _, account, resource] = fields[..] else {
        return arn.to_owned();
    };
    let parts: Vec<&str> = resource.split('/').collect();
    match parts[..] {
        ["assumed-role", role, ..] => format!("arn:{partition}:iam::{account}:role/{role}"),
        ["user", .., name] => format!("arn:{partition}:iam::{account}:user/{name}"),
        ["role", .., name] => format!("arn:{partition}:iam::{account}:role/{name}"),
        _ => arn.to_owned(),
    }
}

fn xml(text: &str, tag: &str) -> Option<String> {
    crate::moto::xml_field(text, tag).map(|s| s.trim().to_owned())
}

/// Standard base64 with padding; `None` for anything else.
fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let value = |c: u8| match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'+' => Some(62),
        b'/' => Some(63),
        _ => None,
    };
    let bytes = text.trim().as_bytes();
    if !bytes.len().is_multiple_of(4) {
        return None;
    }
    let mut out = Vec::with_capacity(bytes.len() / 4 * 3);
    for chunk in bytes.chunks(4) {
        let pad = chunk.iter().rev().take_while(|&&c| c == b'=').count();
        let mut n: u32 = 0;
        for &c in &chunk[..4 - pad] {
            n = (n << 6) | u32::from(value(c)?);
        }
        n <<= 6 * pad as u32;
        let got = [(n >> 16) as u8, (n >> 8) as u8, n as u8];
        out.extend_from_slice(&got[..3 - pad]);
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_are_made_canonical() {
        assert_eq!(
            canonical_arn("arn:aws:sts::123456789012:assumed-role/agent/i-0abc"),
            "arn:aws:iam::123456789012:role/agent"
        );
        assert_eq!(
            canonical_arn("arn:aws:iam::123456789012:user/ops/alice"),
            "arn:aws:iam::123456789012:user/alice"
        );
    }

    #[test]
    fn base64_as_go_writes_it() {
        assert_eq!(base64_decode("aGVsbG8=").unwrap(), b"hello");
        assert_eq!(base64_decode("aGk=").unwrap(), b"hi");
        assert_eq!(base64_decode("YWJj").unwrap(), b"abc");
        assert!(base64_decode("a?==").is_none());
        assert!(base64_decode("abc").is_none());
    }
}
