//! Fault-injecting servers for the reliability suite (issue 7).
//!
//! Real OpenBao and moto produce the faults they can (a sealed server, a
//! revoked token, a TLS certificate nobody vouches for); the rest (a server
//! that hangs, stalls mid-body, answers late, fails a few times and then
//! recovers, or answers garbage) comes from a [`FaultProxy`]: a small HTTP/1.1
//! server on 127.0.0.1 that applies a [`Fault`] to the first `n` requests of
//! each kind and forwards the rest to a real upstream server. "Each kind" is
//! the request line plus `X-Amz-Target`, so every distinct request (a mount
//! lookup, a KV read, a BatchGetSecretValue) meets its faults before it
//! succeeds, whatever the order in which a backend sends them.
//!
//! The proxy also records every request it saw (method, target, AWS
//! target), so tests can prove where requests went, and can require a path
//! prefix (`/prefix/v1/...`): a request outside it is recorded and refused,
//! never forwarded.
//!
//! Every answer carries `Connection: close` and the connection is closed
//! after it, so a client never reuses a connection the proxy is about to
//! drop. Threads serving hanging connections live until the test process
//! ends; they hold nothing but a socket.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// What the proxy does to a request it faults.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Reads the request and never answers; the connection stays open.
    Hang,
    /// Sends a 200 status line and headers promising a body, a few bytes
    /// of it, then nothing more; the connection stays open.
    StallBody,
    /// Waits this long, then forwards the request (a late but real answer).
    Delay(Duration),
    /// Answers 200 with an HTML body, not JSON.
    Garbage,
    /// Answers this status with `body`, and `Retry-After: <secs>` if set.
    Status {
        /// The HTTP status.
        code: u16,
        /// `Retry-After` in seconds, when the server sends one.
        retry_after: Option<u64>,
        /// The body (JSON for the AWS APIs, so the SDK can read the error).
        body: String,
    },
}

impl Fault {
    /// A status answer with a small JSON body naming no secret.
    pub fn status(code: u16) -> Self {
        Self::Status {
            code,
            retry_after: None,
            body: format!(r#"{{"errors":["injected HTTP {code} FAULT-BODY-MARKER"]}}"#),
        }
    }

    /// A 429 with `Retry-After: secs`.
    pub fn throttled(retry_after: Option<u64>) -> Self {
        Self::Status {
            code: 429,
            retry_after,
            body: r#"{"errors":["injected throttling FAULT-BODY-MARKER"]}"#.into(),
        }
    }

    /// An AWS JSON-protocol error: `status` with `{"__type": code}`.
    pub fn aws(status: u16, code: &str, retry_after: Option<u64>) -> Self {
        Self::Status {
            code: status,
            retry_after,
            body: format!(r#"{{"__type":"{code}","message":"injected FAULT-BODY-MARKER"}}"#),
        }
    }
}

/// Text that injected bodies carry: it must never show in a reply or log.
pub const BODY_MARKER: &str = "FAULT-BODY-MARKER";

/// One request the proxy saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`, ...
    pub method: String,
    /// The request target as sent: path and query.
    pub target: String,
    /// The `X-Amz-Target` header (AWS JSON APIs), if any.
    pub amz_target: Option<String>,
    /// Whether the proxy faulted this request (else it forwarded or refused it).
    pub faulted: bool,
}

#[derive(Debug)]
struct Shared {
    fault: Fault,
    times: usize,
    upstream: Option<SocketAddr>,
    prefix: String,
    seen: Mutex<Vec<Seen>>,
    /// Per request kind, how many faults it has met.
    met: Mutex<Vec<(String, usize)>>,
    stop: AtomicBool,
}

/// A fault-injecting HTTP proxy in front of an optional upstream server.
#[derive(Debug)]
pub struct FaultProxy {
    addr: SocketAddr,
    shared: Arc<Shared>,
}

impl FaultProxy {
    /// Applies `fault` to every request; nothing is forwarded.
    pub fn always(fault: Fault) -> Self {
        Self::start(fault, usize::MAX, None, "")
    }

    /// Applies `fault` to the first `times` requests of each kind, then
    /// forwards to `upstream` (`http://127.0.0.1:PORT` or `127.0.0.1:PORT`).
    pub fn before(fault: Fault, times: usize, upstream: &str) -> Self {
        Self::start(fault, times, Some(upstream), "")
    }

    /// Forwards everything to `upstream`, recording requests, after
    /// checking that each target starts with `prefix` (e.g. `/vault/v1/`);
    /// the prefix is removed up to its `/v1/` part before forwarding
    /// (`/vault/v1/x` reaches the upstream as `/v1/x`). A request outside
    /// the prefix is answered 400 and never forwarded.
    pub fn recording(upstream: &str, prefix: &str) -> Self {
        Self::start(Fault::Garbage, 0, Some(upstream), prefix)
    }

    fn start(fault: Fault, times: usize, upstream: Option<&str>, prefix: &str) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fault proxy");
        let addr = listener.local_addr().expect("fault proxy address");
        let upstream = upstream.map(|u| {
            let hostport = u
                .trim_start_matches("http://")
                .trim_end_matches('/')
                .to_owned();
            hostport
                .parse()
                .unwrap_or_else(|e| panic!("upstream {u}: not 127.0.0.1:PORT ({e})"))
        });
        let shared = Arc::new(Shared {
            fault,
            times,
            upstream,
            prefix: prefix.to_owned(),
            seen: Mutex::new(Vec::new()),
            met: Mutex::new(Vec::new()),
            stop: AtomicBool::new(false),
        });
        accept_loop(listener, shared.clone(), |s| &s.stop, serve);
        Self { addr, shared }
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Every request seen so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.shared
            .seen
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many requests were faulted.
    pub fn faulted(&self) -> usize {
        self.seen().iter().filter(|s| s.faulted).count()
    }

    /// How many requests were forwarded to the upstream.
    pub fn forwarded(&self) -> usize {
        self.seen().iter().filter(|s| !s.faulted).count()
    }
}

/// Serves each connection of `listener` with `serve`, on a thread of its
/// own, until `stop` says so (the next connection wakes the loop to see it).
pub(crate) fn accept_loop<S: Send + Sync + 'static>(
    listener: TcpListener,
    state: Arc<S>,
    stop: fn(&S) -> &AtomicBool,
    serve: fn(TcpStream, &S),
) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if stop(&state).load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let s = state.clone();
            std::thread::spawn(move || serve(stream, &s));
        }
    });
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        // Wake the accept loop so it sees the flag and ends.
        self.shared.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

/// A request read off a connection.
pub(crate) struct Request {
    pub(crate) head: String,
    pub(crate) body: Vec<u8>,
}

impl Request {
    pub(crate) fn line(&self) -> &str {
        self.head.lines().next().unwrap_or_default()
    }

    pub(crate) fn header(&self, name: &str) -> Option<String> {
        self.head.lines().skip(1).find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.trim()
                .eq_ignore_ascii_case(name)
                .then(|| v.trim().to_owned())
        })
    }
}

/// Reads one request: the head, then a `Content-Length` or chunked body.
pub(crate) fn read_request(s: &mut TcpStream) -> Option<Request> {
    let mut data = Vec::new();
    let mut buf = [0u8; 8192];
    let end = loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break end;
        }
        let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
        data.extend_from_slice(&buf[..n]);
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut body = data[end + 4..].to_vec();
    let req = Request {
        head,
        body: Vec::new(),
    };
    let chunked = req
        .header("transfer-encoding")
        .is_some_and(|v| v.eq_ignore_ascii_case("chunked"));
    if chunked {
        while !body.ends_with(b"0\r\n\r\n") {
            let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
            body.extend_from_slice(&buf[..n]);
        }
    } else {
        let len: usize = req
            .header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while body.len() < len {
            let n = s.read(&mut buf).ok().filter(|&n| n > 0)?;
            body.extend_from_slice(&buf[..n]);
        }
    }
    Some(Request { body, ..req })
}

fn serve(mut client: TcpStream, shared: &Shared) {
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let mut parts = req.line().split_whitespace();
    let method = parts.next().unwrap_or_default().to_owned();
    let target = parts.next().unwrap_or_default().to_owned();
    let amz_target = req.header("x-amz-target");
    let kind = format!("{method} {target} {}", amz_target.as_deref().unwrap_or(""));
    let inside = target.starts_with(&shared.prefix);
    let fault = inside && {
        let mut met = shared.met.lock().unwrap_or_else(|e| e.into_inner());
        let i = match met.iter().position(|(k, _)| *k == kind) {
            Some(i) => i,
            None => {
                met.push((kind, 0));
                met.len() - 1
            }
        };
        let n = &mut met[i].1;
        let fault = *n < shared.times;
        if fault {
            *n += 1;
        }
        fault
    };
    shared
        .seen
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push(Seen {
            method,
            target: target.clone(),
            amz_target,
            faulted: fault,
        });
    if !inside {
        answer(&mut client, 400, None, "outside the allowed prefix");
        return;
    }
    if !fault {
        forward(client, &req, &target, shared);
        return;
    }
    match &shared.fault {
        Fault::Hang => hold(client, shared),
        Fault::StallBody => {
            let _ = client.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 4096\r\n\r\n{\"data\":{\"",
            );
            let _ = client.flush();
            hold(client, shared);
        }
        Fault::Delay(d) => {
            std::thread::sleep(*d);
            forward(client, &req, &target, shared);
        }
        Fault::Garbage => {
            let body = format!("<html><body>{BODY_MARKER}: not what you wanted</body></html>");
            let _ = write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
        Fault::Status {
            code,
            retry_after,
            body,
        } => answer(&mut client, *code, *retry_after, body),
    }
}

/// Keeps a connection open, unanswered, until the proxy is dropped (then a
/// while longer: the backend under test must not be the one to notice).
fn hold(client: TcpStream, shared: &Shared) {
    while !shared.stop.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(100));
    }
    std::thread::sleep(Duration::from_secs(30));
    drop(client);
}

pub(crate) fn answer(client: &mut TcpStream, code: u16, retry_after: Option<u64>, body: &str) {
    let retry = retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n"));
    let ctype = if body.starts_with("{\"__type\"") {
        "application/x-amz-json-1.1"
    } else {
        "application/json"
    };
    let _ = write!(
        client,
        "HTTP/1.1 {code} Injected\r\nContent-Type: {ctype}\r\n{retry}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// Sends `req` to the upstream with `Connection: close` and copies the
/// answer back, also marked `Connection: close`.
fn forward(mut client: TcpStream, req: &Request, target: &str, shared: &Shared) {
    let Some(upstream) = shared.upstream else {
        answer(&mut client, 502, None, "no upstream");
        return;
    };
    let target = match shared.prefix.find("/v1/") {
        Some(i) if !shared.prefix.is_empty() => &target[i..],
        _ => target,
    };
    relay(client, req, target, upstream);
}

/// Sends `req` to `upstream` for `target` with `Connection: close` and
/// copies the answer back, also marked `Connection: close`.
pub(crate) fn relay(mut client: TcpStream, req: &Request, target: &str, upstream: SocketAddr) {
    let method = req.line().split_whitespace().next().unwrap_or("GET");
    let mut head = format!("{method} {target} HTTP/1.1\r\n");
    for line in req.head.lines().skip(1) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            head.push_str(line);
            head.push_str("\r\n");
        }
    }
    head.push_str("Connection: close\r\n\r\n");
    let Ok(mut up) = TcpStream::connect(upstream) else {
        answer(&mut client, 502, None, "upstream down");
        return;
    };
    let mut response = Vec::new();
    let sent = up
        .write_all(head.as_bytes())
        .and_then(|()| up.write_all(&req.body))
        .and_then(|()| up.read_to_end(&mut response));
    if sent.is_err() {
        answer(&mut client, 502, None, "upstream failed");
        return;
    }
    let Some(end) = response.windows(4).position(|w| w == b"\r\n\r\n") else {
        let _ = client.write_all(&response);
        return;
    };
    let head = String::from_utf8_lossy(&response[..end]);
    let mut out: String = head
        .lines()
        .filter(|l| !l.to_ascii_lowercase().starts_with("connection:"))
        .map(|l| format!("{l}\r\n"))
        .collect();
    out.push_str("Connection: close\r\n\r\n");
    let _ = client
        .write_all(out.as_bytes())
        .and_then(|()| client.write_all(&response[end + 4..]))
        .and_then(|()| client.flush());
}

/// `cmd` without the developer's store and proxy settings (`VAULT_*`,
/// `AWS_PROFILE`, `*_PROXY`), so a fault test sees only what it sets.
pub fn isolated(mut cmd: crate::Cmd) -> crate::Cmd {
    for v in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
        "VAULT_CACERT",
        "VAULT_CAPATH",
        "VAULT_CLIENT_CERT",
        "VAULT_CLIENT_KEY",
        "VAULT_SKIP_VERIFY",
        "VAULT_TLS_SERVER_NAME",
        "AWS_PROFILE",
        "AWS_DEFAULT_REGION",
        "AWS_SESSION_TOKEN",
        "AWS_ENDPOINT_URL",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd = cmd.env_remove(v);
    }
    cmd
}

/// Runs `cmd` the way the fault cases do: the agent's request (protocol
/// 1.1) for `handles` with a `deadline_secs` timeout, trace logging to
/// stderr and to `dir/trace.log`. Returns the run and the log file's text,
/// for [`assert_kept`].
pub fn run_traced(
    cmd: crate::Cmd,
    dir: &std::path::Path,
    handles: &[&str],
    deadline_secs: u64,
) -> (crate::Done, String) {
    let log = dir.join("trace.log");
    let done = cmd
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(crate::go_payload(
            "1.1",
            handles,
            &[("secret_backend_timeout", serde_json::json!(deadline_secs))],
        ))
        .run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (done, log)
}

/// The promises a backend keeps under every fault: it answered before the
/// agent's `deadline`, exited 0 with a reply holding exactly `handles`,
/// each with a value or a non-empty error, and none of `values` or
/// `credentials` (nor an injected body) shows on stderr, in `log`, or in
/// stdout outside the quoted values.
pub fn assert_kept(
    done: &crate::Done,
    log: &str,
    handles: &[&str],
    deadline: Duration,
    values: &[&str],
    credentials: &[&str],
) {
    assert!(
        done.elapsed < deadline,
        "answered after the agent's deadline of {deadline:?}: {done}"
    );
    let reply = done.reply();
    for h in handles {
        let entry = &reply[*h];
        assert!(
            entry["value"].is_string() || entry["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{h:?}: neither a value nor an error: {done}"
        );
    }
    assert_eq!(reply.len(), handles.len(), "{done}");
    let mut planted = vec![BODY_MARKER];
    planted.extend(values);
    planted.extend(credentials);
    crate::assert_no_leak("stderr", &done.stderr, &planted);
    crate::assert_no_leak("the log file", log, &planted);
    let mut outside = done.stdout_str().to_owned();
    for v in values {
        outside = outside.replace(&format!("\"{v}\""), "");
    }
    crate::assert_no_leak("stdout outside the values", &outside, &planted);
}

/// One call of an AWS JSON-protocol API (`target` such as
/// `secretsmanager.CreateSecret`) on a moto server, which checks no
/// signature; fails the test unless moto answers 200. For seeding without
/// the SDK.
pub fn moto_call(moto: &crate::moto::Moto, service: &str, target: &str, body: &serde_json::Value) {
    use crate::moto::{ACCESS_KEY_ID, REGION};
    let body = body.to_string();
    let mut s = TcpStream::connect(("127.0.0.1", moto.port())).expect("connect to moto");
    s.set_read_timeout(Some(Duration::from_secs(30)))
        .expect("read timeout");
    write!(
        s,
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-amz-json-1.1\r\n\
         X-Amz-Target: {target}\r\nAuthorization: AWS4-HMAC-SHA256 \
         Credential={ACCESS_KEY_ID}/20260101/{REGION}/{service}/aws4_request, SignedHeaders=host, Signature=0\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .expect("send to moto");
    let mut out = String::new();
    s.read_to_string(&mut out).expect("read from moto");
    assert!(out.starts_with("HTTP/1.1 200"), "{target}: {out}");
}
