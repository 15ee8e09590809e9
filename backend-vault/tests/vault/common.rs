//! What the end-to-end tests of `secret-backend-vault` share: the OpenBao
//! dev server of a test binary (started and seeded by the first test that
//! asks, [`Shared`]), running the binary with a config, and the AppRole
//! and token helpers.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use backend_tests::fault::isolated;
use backend_tests::files::{private_file, set_mode};
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{Cmd, Done, Shared, assert_no_leak, payload};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-vault");

static SHARED: Shared<OpenBao> = Shared::new();
static COUNTER: AtomicUsize = AtomicUsize::new(0);

/// The shared plain-HTTP server, started (and set up) when no running test
/// holds it; it stops when the last test holding it ends.
pub fn server() -> Arc<OpenBao> {
    SHARED.get(|| {
        let s = OpenBao::start();
        s.api_ok(
            "POST",
            "sys/mounts/kv1",
            Some(json!({"type": "kv", "options": {"version": "1"}})),
        );
        s.api_ok(
            "PUT",
            "sys/policies/acl/reader",
            Some(json!({"policy": r#"
            path "secret/data/*" { capabilities = ["read"] }
            path "kv1/*" { capabilities = ["read"] }
        "#})),
        );
        s
    })
}

/// A name no other test uses.
pub fn unique(prefix: &str) -> String {
    format!("{prefix}{}", COUNTER.fetch_add(1, Ordering::SeqCst))
}

/// The binary with a clean environment: no VAULT_* from the developer's
/// shell, HOME in a temp dir (no ~/.vault-token).
pub fn cmd(home: &Path) -> Cmd {
    isolated(Cmd::new(BIN)).env("HOME", home.to_str().unwrap())
}

/// Runs the binary with `config` (YAML) against `addr` with `handles`.
pub fn run_with(
    addr: &str,
    dir: &Path,
    config: &str,
    env: &[(&str, &str)],
    handles: &[&str],
) -> Done {
    let cfg = private_file(dir, "config.yaml", &format!("address: {addr}\n{config}"));
    let mut c = cmd(dir).args(["--config", cfg.to_str().unwrap(), "--timeout", "20"]);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.stdin(payload(handles)).run()
}

/// A login round trip through the binary: `handle` read with `config`
/// (YAML after `address:`, its `auth:` logging in at `mount`) comes back as
/// `value`, none of `secrets` shows on stderr, and exactly one login was
/// made at `mount`, its token revoked when the call ended. Returns the
/// reply, for what a test checks besides.
pub fn login_round_trip(
    bao: &OpenBao,
    dir: &Path,
    config: &str,
    mount: &str,
    (handle, value): (&str, &str),
    secrets: &[&str],
) -> Done {
    let done = run_with(&bao.addr, dir, config, &[], &[handle]);
    assert_eq!(done.value(handle), value, "{done}");
    assert_no_leak("stderr", &done.stderr, secrets);
    let tokens = login_tokens(bao, mount);
    assert_eq!(tokens.len(), 1, "one login at auth/{mount}: {done}");
    assert!(
        !token_alive(bao, &tokens[0]),
        "the login token at auth/{mount} was revoked"
    );
    done
}

/// Runs as root through VAULT_TOKEN.
pub fn run_root(bao: &OpenBao, handles: &[&str]) -> Done {
    let dir = tempfile::tempdir().unwrap();
    run_with(
        &bao.addr,
        dir.path(),
        "",
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        handles,
    )
}

pub fn kv_put(bao: &OpenBao, path: &str, data: Value) {
    let (mount, rest) = path.split_once('/').unwrap();
    bao.api_ok(
        "POST",
        &format!("{mount}/data/{rest}"),
        Some(json!({ "data": data })),
    );
}

/// Enables an auth method at a fresh mount; returns the mount.
pub fn enable_auth(bao: &OpenBao, kind: &str) -> String {
    let mount = unique(&format!("{kind}-"));
    bao.api_ok(
        "POST",
        &format!("sys/auth/{mount}"),
        Some(json!({"type": kind})),
    );
    mount
}

/// An AppRole at a fresh mount with the reader policy; returns (mount, role_id, secret_id).
pub fn approle(bao: &OpenBao) -> (String, String, String) {
    let mount = enable_auth(bao, "approle");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(json!({"secret_id_ttl": 0, "token_policies": ["reader"], "token_ttl": "10m"})),
    );
    let role_id =
        bao.api_ok("GET", &format!("auth/{mount}/role/agent/role-id"), None)["data"]["role_id"]
            .as_str()
            .unwrap()
            .to_owned();
    let secret_id = bao.api_ok("POST", &format!("auth/{mount}/role/agent/secret-id"), None)["data"]
        ["secret_id"]
        .as_str()
        .unwrap()
        .to_owned();
    (mount, role_id, secret_id)
}

/// The config lines (no address) of an AppRole login at `mount`, keeping
/// its token in `cache` if one is given.
pub fn approle_yaml(mount: &str, role_id: &str, secret_id: &str, cache: Option<&Path>) -> String {
    let mut yaml = format!(
        "auth:\n  method: approle\n  mount: {mount}\n  role_id: {role_id}\n  secret_id: {secret_id}\n"
    );
    if let Some(c) = cache {
        yaml.push_str(&format!("token_cache_file: {}\n", c.display()));
    }
    yaml
}

/// The tokens the audit log shows handed out by logins at `mount`.
pub fn login_tokens(bao: &OpenBao, mount: &str) -> Vec<String> {
    std::fs::read_to_string(&bao.audit_log)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .filter(|v| {
            v["type"] == "response"
                && v["request"]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("auth/{mount}/login")))
        })
        .filter_map(|v| {
            v["response"]["auth"]["client_token"]
                .as_str()
                .map(str::to_owned)
        })
        .collect()
}

pub fn token_alive(bao: &OpenBao, token: &str) -> bool {
    bao.api("POST", "auth/token/lookup", Some(json!({ "token": token })))
        .0
        == 200
}

pub fn openssl(args: &[&str], dir: &Path, stdin: Option<&[u8]>) -> Vec<u8> {
    use std::io::Write;
    let mut child = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl on PATH");
    let mut pipe = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        pipe.write_all(s).unwrap();
    }
    drop(pipe);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out.stdout
}

/// A self-signed certificate and its key, made by the openssl CLI.
pub fn self_signed(dir: &Path, name: &str, cn: &str, extra: &[&str]) -> (PathBuf, PathBuf) {
    let (cert, key) = (format!("{name}.pem"), format!("{name}-key.pem"));
    let mut args = vec![
        "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj",
    ];
    let subj = format!("/CN={cn}");
    args.push(&subj);
    args.extend(["-keyout", &key, "-out", &cert]);
    args.extend(extra);
    openssl(&args, dir, None);
    let key = dir.join(key);
    set_mode(&key, 0o600);
    (dir.join(cert), key)
}

pub fn listen(
    serve: impl Fn(std::net::TcpStream, &AtomicUsize) + Send + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            serve(stream, &seen);
        }
    });
    (addr, count)
}

/// Reads an HTTP request head (up to the blank line).
pub fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// Reads the body a request head announces (`Content-Length`). A server
/// that answers and closes with request bytes still unread makes the kernel
/// reset the connection, and the client may see the reset before the
/// answer (OpenBao's TokenReview then failed now and then: a 403).
pub fn read_body(stream: &mut std::net::TcpStream, head: &str) {
    use std::io::Read;
    let length = head
        .lines()
        .find_map(|l| {
            let (name, value) = l.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse::<u64>().ok())?
        })
        .unwrap_or(0);
    let _ = std::io::copy(&mut stream.take(length), &mut std::io::sink());
}

/// A fake server for faults OpenBao cannot produce on demand: answers every
/// request with `status` and `body`; returns its address and a request count.
pub fn faulty(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
    use std::io::Write;
    listen(move |mut s, seen| {
        let head = read_head(&mut s);
        read_body(&mut s, &head);
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
}
