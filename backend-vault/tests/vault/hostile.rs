//! The hostile run of issue 13, repeated against the real binary and a real
//! OpenBao dev server, one class per test, several shapes each:
//!
//! - handles that reach the backend's own token or other non-secret APIs
//!   (`auth/`, `sys/`, `identity/`, `cubbyhole/response`), in the root
//!   namespace, in namespaces written into the path and in a configured
//!   namespace; `allowed_paths` narrowing and never widening; the
//!   credentials the backend holds never coming back as values, whatever
//!   path leads to them;
//! - addresses and proxies with a password in their userinfo, of every
//!   malformed shape, never printed (stderr, the log file, the reply);
//! - a FIFO at every path the backend reads: refused at once, never waited on;
//! - twenty calls at once sharing a token cache: one login, one live token;
//! - the login token revoked when stdout is closed and on SIGTERM, also
//!   while the login itself is under way.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::common::{
    BIN, approle, approle_yaml, cmd, kv_put, login_tokens, run_with, self_signed, server,
    token_alive, unique,
};
use backend_tests::fault::{Fault, FaultProxy};
use backend_tests::files::private_file;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{Done, assert_no_leak, free_port, payload};
use serde_json::json;

/// Generous bound for "does not hang" (the machine is shared and slow).
const NO_HANG: Duration = Duration::from_secs(60);

/// Creates a token with this id and `policies`; returns the id.
fn token_with(bao: &OpenBao, id: &str, policies: &[&str]) -> String {
    bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": id, "policies": policies, "ttl": "1h"})),
    );
    id.to_owned()
}

/// Asserts that `handle` was refused as one of the server's own APIs.
fn assert_refused(done: &Done, handle: &str) {
    let e = done.error(handle);
    assert!(
        e.contains("refused: not a secret"),
        "{handle:?}: {e}\n{done}"
    );
}

/// The paths of the requests the server received with `token`.
fn paths_sent_with(bao: &OpenBao, token: &str) -> Vec<String> {
    bao.audit_requests()
        .iter()
        .filter(|v| v["auth"]["client_token"] == token)
        .filter_map(|v| {
            let ns = v["request"]["namespace"]["path"].as_str().unwrap_or("");
            let path = v["request"]["path"].as_str()?;
            Some(format!("{ns}{path}"))
        })
        .collect()
}

/// Creates namespace `ns` and `ns/sub`, each with a KV v2 `secret/` mount.
fn namespaces(bao: &OpenBao, ns: &str) {
    bao.api_ok("POST", &format!("sys/namespaces/{ns}"), None);
    bao.api_ok("POST", &format!("{ns}/sys/namespaces/sub"), None);
    for n in [ns.to_owned(), format!("{ns}/sub")] {
        bao.api_ok(
            "POST",
            &format!("{n}/sys/mounts/secret"),
            Some(json!({"type": "kv", "options": {"version": "2"}})),
        );
    }
}

#[test]
fn the_servers_own_apis_are_refused_in_every_namespace() {
    let bao = server();
    let ns = unique("hns");
    namespaces(&bao, &ns);
    // A root token with an id that a leak scan can find: it may read
    // everything, so only our refusal stands between a handle and it.
    let token = token_with(&bao, &unique("hostile-root-token-7f3a9c-"), &["root"]);
    let kv = format!("secret/{}", unique("auth-lookalike"));
    kv_put(
        &bao,
        &format!("{kv}/auth"),
        json!({"v": "kv-value-under-auth"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let file = private_file(dir.path(), "token", &token);
    let config = format!("auth:\n  token_file: {}\n", file.display());
    let refused: Vec<String> = [
        "auth/token/lookup-self;id",
        "auth/token/lookup-self;/policies",
        "auth/token/lookup-self",
        "auth/token/lookup-self?version=1;id",
        "auth/token/accessors",
        "auth/approle/role/agent/role-id;role_id",
        "sys/wrapping/lookup",
        "sys/internal/ui/mounts/secret",
        "sys/policy/default;rules",
        "identity/oidc/token/agent;token",
        "identity/entity/id",
        "cubbyhole/response",
        "cubbyhole/response/x",
        "{ns}/auth/token/lookup-self;id",
        "{ns}/auth/token/lookup-self;/id",
        "{ns}/sys/policy/default",
        "{ns}/sys/mounts",
        "{ns}/identity/entity/id",
        "{ns}/cubbyhole/response",
        "{ns}/sub/auth/token/lookup-self;id",
        "{ns}/sub/sys/namespaces",
    ]
    .iter()
    .map(|h| h.replace("{ns}", &ns))
    .collect();
    let good = format!("{kv}/auth;v");
    let mut handles: Vec<&str> = refused.iter().map(String::as_str).collect();
    handles.push(&good);
    let done = run_with(&bao.addr, dir.path(), &config, &[], &handles);
    for h in &refused {
        assert_refused(&done, h);
    }
    // A secret that merely has `auth` in its path is a secret.
    assert_eq!(done.value(&good), "kv-value-under-auth");
    assert_no_leak("stdout", done.stdout_str(), &[&token]);
    assert_no_leak("stderr", &done.stderr, &[&token]);
    // What reached the server with our token: mount lookups and the one
    // secret, nothing else.
    for path in paths_sent_with(&bao, &token) {
        assert!(
            path.starts_with("sys/internal/ui/mounts/") || path.starts_with("secret/data/"),
            "the server saw {path}"
        );
    }

    // The namespace configured instead of written: the same refusals.
    let config = format!("namespace: {ns}\n{config}");
    let refused = [
        "auth/token/lookup-self;id",
        "sys/policy/default",
        "identity/entity/id",
        "cubbyhole/response",
        "sub/auth/token/lookup-self;id",
        "sub/sys/mounts",
    ];
    let done = run_with(&bao.addr, dir.path(), &config, &[], &refused);
    for h in refused {
        assert_refused(&done, h);
    }
    assert_no_leak("stdout", done.stdout_str(), &[&token]);
}

#[test]
fn credentials_the_backend_holds_never_come_back() {
    let bao = server();
    let (mount, role_id, secret_id) = approle(&bao);
    let p = format!("secret/{}", unique("held"));
    kv_put(&bao, &p, json!({"v": "an-ordinary-value"}));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token-cache");
    let config = approle_yaml(&mount, &role_id, &secret_id, Some(&cache));

    // Only refused handles: nothing is asked of the server, not even a login.
    let own = ["auth/token/lookup-self;id", "auth/token/lookup-self;/id"];
    let done = run_with(&bao.addr, dir.path(), &config, &[], &own);
    for h in own {
        assert_refused(&done, h);
    }
    assert!(
        login_tokens(&bao, &mount).is_empty(),
        "no login for refused handles"
    );

    // One good handle: one login, its token cached (and alive: it is kept).
    let good = format!("{p};v");
    let handles = [own[0], own[1], good.as_str()];
    let done = run_with(&bao.addr, dir.path(), &config, &[], &handles);
    assert_eq!(done.value(&good), "an-ordinary-value");
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1, "{done}");
    let login = &tokens[0];
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), *login);
    for h in own {
        assert_refused(&done, h);
    }

    // Whatever path leads to a credential we hold, the value is refused:
    // the cached login token, the role id, the secret id, each alone or
    // inside a longer value; a token given to the token method, too.
    let given = token_with(&bao, &unique("hostile-given-token-2b81e0-"), &["reader"]);
    let planted = format!("secret/{}", unique("planted"));
    kv_put(
        &bao,
        &planted,
        json!({
            "login": login,
            "role_id": role_id,
            "secret_id": secret_id,
            "inside": format!("user=agent token={login} end"),
            "given": given,
        }),
    );
    let keys = ["login", "role_id", "secret_id", "inside", "given"];
    let handles: Vec<String> = keys.iter().map(|k| format!("{planted};{k}")).collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    // `held`: the credentials of this run; the other values come back.
    let check = |done: &Done, held: &[&str]| {
        for (h, k) in handles.iter().zip(keys) {
            if held.contains(&k) {
                assert!(!done.error(h).is_empty(), "{h}: {done}");
            } else {
                assert!(!done.value(h).is_empty());
            }
        }
    };
    let done = run_with(&bao.addr, dir.path(), &config, &[], &refs);
    check(&done, &["login", "role_id", "secret_id", "inside"]);
    let held = [login.as_str(), &role_id, &secret_id];
    assert_no_leak("stdout", done.stdout_str(), &held);
    assert_no_leak("stderr", &done.stderr, &held);
    let file = private_file(dir.path(), "given-token", &given);
    let config = format!("auth:\n  token_file: {}\n", file.display());
    let done = run_with(&bao.addr, dir.path(), &config, &[], &refs);
    check(&done, &["given"]);
    assert_no_leak("stdout", done.stdout_str(), &[&given]);
    // The same token through VAULT_TOKEN.
    let done = run_with(&bao.addr, dir.path(), "", &[("VAULT_TOKEN", &given)], &refs);
    check(&done, &["given"]);
    assert_no_leak("stdout", done.stdout_str(), &[&given]);
}

#[test]
fn allowed_paths_narrow_and_never_widen() {
    let bao = server();
    let app = unique("app");
    let other = unique("other");
    kv_put(
        &bao,
        &format!("secret/{app}/db"),
        json!({"v": "allowed-value"}),
    );
    kv_put(
        &bao,
        &format!("secret/{other}"),
        json!({"v": "other-value"}),
    );
    let dir = tempfile::tempdir().unwrap();
    let token = token_with(&bao, &unique("hostile-allowed-token-"), &["root"]);
    let root = format!("auth:\n  token: {token}\n");
    let run = |allowed: &str, handles: &[&str]| {
        run_with(
            &bao.addr,
            dir.path(),
            &format!("{root}allowed_paths: {allowed}\n"),
            &[],
            handles,
        )
    };
    let h = |s: &str| s.replace("{app}", &app).replace("{other}", &other);
    let ok = [h("secret/{app}/db;v"), h("secret/data/{app}/db;v")];
    let no = [
        h("secret/{other};v"),
        h("secret/{app}x;v"),
        h("kv1/{app};v"),
        "auth/token/lookup-self;id".to_owned(),
    ];
    for allowed in [h("[secret/{app}]"), h("[\"secret/data/{app}/\", kv9]")] {
        let all: Vec<&str> = ok.iter().chain(&no).map(String::as_str).collect();
        let done = run(&allowed, &all);
        for g in &ok {
            assert_eq!(done.value(g), "allowed-value", "{allowed}");
        }
        for n in &no[..3] {
            assert!(
                done.error(n).contains("not under allowed_paths"),
                "{allowed}: {n}: {done}"
            );
        }
        assert_refused(&done, &no[3]);
    }
    // Refused before anything was sent: not even a mount lookup.
    let sent = paths_sent_with(&bao, &token);
    assert!(
        sent.iter()
            .any(|p| p.ends_with(&format!("secret/data/{app}/db"))),
        "{sent:?}"
    );
    assert!(
        !sent
            .iter()
            .any(|p| p.contains(&other) || p.contains(&format!("{app}x"))),
        "a path outside allowed_paths reached the server: {sent:?}"
    );
    // An entry can only narrow: a namespace allowed whole still does not
    // open its token API.
    let ns = unique("alns");
    namespaces(&bao, &ns);
    let own = format!("{ns}/auth/token/lookup-self;id");
    let done = run(&format!("[{ns}]"), &[&own]);
    assert_refused(&done, &own);
    // Entries that can never match, or are no paths, stop the run.
    for (allowed, want) in [
        ("[auth/token]", "can never be read"),
        ("[sys]", "can never be read"),
        ("[cubbyhole/response]", "can never be read"),
        ("[]", "allowed_paths is empty"),
        ("[secret/../sys]", "is not a path"),
        ("[\"secret/a;b\"]", "without '?' or ';'"),
        ("secret/app", "sequence"),
    ] {
        let done = run(allowed, &["secret/x;v"]);
        done.expect_code(2);
        assert!(done.stderr.contains(want), "{allowed}: {done}");
    }
}

/// Runs the binary with `address` as `VAULT_ADDR` or in the config, with a
/// log file; returns the run and the log.
fn run_address(dir: &Path, address: &str, in_config: bool) -> (Done, String) {
    let log = dir.join("run.log");
    let _ = std::fs::remove_file(&log);
    // A JSON string is a YAML double-quoted scalar.
    let text = if in_config {
        format!("address: {}\n", serde_json::to_string(address).unwrap())
    } else {
        String::new()
    };
    let cfg = private_file(dir, "config.yaml", &text);
    let mut c = cmd(dir)
        .args(["--config", cfg.to_str().unwrap(), "--timeout", "10"])
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .env("VAULT_TOKEN", "hostile-token-not-used")
        .kill_after(NO_HANG)
        .stdin(payload(&["secret/a;x"]));
    if !in_config {
        c = c.env("VAULT_ADDR", address);
    }
    let done = c.run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (done, log)
}

#[test]
fn passwords_in_addresses_never_show() {
    let dir = tempfile::tempdir().unwrap();
    for address in [
        "http://user:S3CRET-pw@127.0.0.1:99999",
        "http://user:S3CRET-pw@[::1",
        "http://user:S3CRET-pw@[::1]:8200x",
        "http://user:S3CRET-pw@bad host:8200",
        "http://user:S3CRET pw@127.0.0.1:8200",
        "http://user:S3CRET@pw@127.0.0.1:8200",
        "http://user:S3CRET/pw@127.0.0.1:8200",
        "http://user/S3CRET@127.0.0.1:8200",
        "http://S3CRET-token@127.0.0.1:8200",
        "https://user:S3CRET-pw@vault.example:8200",
        "https://user:S3CRET-pw@vault.example:8200/prefix",
        "user:S3CRET-pw@127.0.0.1:8200",
        "http://user:S3CRET\n-pw@127.0.0.1:8200",
        " http://user:S3CRET-pw@127.0.0.1:8200 ",
    ] {
        for in_config in [false, true] {
            let (done, log) = run_address(dir.path(), address, in_config);
            done.expect_code(2);
            let shown = format!("{address:?} (in config: {in_config})");
            assert!(done.stderr.contains("address"), "{shown}: {done}");
            for (what, text) in [
                ("stderr", done.stderr.as_str()),
                ("the log file", log.as_str()),
                ("stdout", &String::from_utf8_lossy(&done.stdout)),
            ] {
                assert!(
                    !text.contains("S3CRET"),
                    "{shown}: leaked into {what}:\n{text}"
                );
            }
        }
    }
}

/// Accepts connections on a free port and records each request head;
/// answers nothing and closes.
fn recording_listener() -> (u16, std::sync::mpsc::Receiver<String>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for s in listener.incoming() {
            let Ok(mut s) = s else { continue };
            s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 4096];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                match s.read(&mut buf) {
                    Ok(n) if n > 0 => head.extend_from_slice(&buf[..n]),
                    _ => break,
                }
            }
            let _ = tx.send(String::from_utf8_lossy(&head).into_owned());
        }
    });
    (port, rx)
}

#[test]
fn a_cleartext_proxy_is_warned_about_and_its_password_never_shows() {
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    let (port, heads) = recording_listener();
    // A password, and a token in the query: neither is ever shown.
    let proxy = format!("http://puser:PROXY-S3CRET@127.0.0.1:{port}/?token=PROXY-S3CRET-Q");
    let shown = format!("http://***@127.0.0.1:{port}/?***");
    let log = dir.path().join("run.log");
    let run = |address: &str, env: &[(&str, &str)]| {
        let cfg = private_file(dir.path(), "config.yaml", &format!("address: {address}\n"));
        let mut c = cmd(dir.path())
            .args(["--config", cfg.to_str().unwrap(), "--timeout", "5"])
            .args(["--log-file", log.to_str().unwrap()])
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .kill_after(NO_HANG)
            .stdin(payload(&["secret/a;x"]));
        for (k, v) in env {
            c = c.env(k, v);
        }
        let done = c.run();
        let log = std::fs::read_to_string(&log).unwrap_or_default();
        for (what, text) in [
            ("stderr", done.stderr.as_str()),
            ("the log file", log.as_str()),
            ("stdout", done.stdout_str()),
        ] {
            assert!(
                !text.contains("PROXY-S3CRET"),
                "leaked into {what}:\n{text}"
            );
        }
        (done, log)
    };
    for var in ["HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy"] {
        let (done, log) = run(&bao.addr, &[(var, &proxy)]);
        let warning = format!("{var} sends its requests through the proxy {shown}:");
        assert!(done.stderr.contains(&warning), "{var}: {done}");
        assert!(log.contains(&warning), "{var}: {log}");
        // The warning is true: the request went to the proxy, in clear.
        let head = heads
            .recv_timeout(NO_HANG)
            .expect("the proxy saw a request");
        assert!(head.starts_with("GET http://127.0.0.1:"), "{var}: {head}");
        assert!(!done.error("secret/a;x").is_empty());
        while heads.try_recv().is_ok() {}
    }
    // No warning where no proxy applies: NO_PROXY names the host, or the
    // address is https (the proxy only sees a CONNECT tunnel then).
    let (port, heads) = recording_listener();
    let bypassed = format!("http://puser:PROXY-S3CRET@127.0.0.1:{port}");
    let (done, _) = run(
        &bao.addr,
        &[("HTTP_PROXY", &bypassed), ("NO_PROXY", "127.0.0.1")],
    );
    assert!(!done.stderr.contains("plain http"), "{done}");
    assert!(heads.try_recv().is_err(), "NO_PROXY was not honoured");
    let https = format!("https://127.0.0.1:{}", free_port());
    let (done, _) = run(&https, &[("HTTPS_PROXY", &proxy), ("HTTP_PROXY", &proxy)]);
    assert!(!done.stderr.contains("plain http"), "{done}");
}

/// A config, its environment, and what the error names.
type FifoCase<'a> = (String, Vec<(&'a str, String)>, &'a str);

fn mkfifo(path: &Path) {
    let status = Command::new("mkfifo").arg(path).status().unwrap();
    assert!(status.success(), "mkfifo {}", path.display());
}

#[test]
fn a_fifo_at_any_path_read_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let fifo = d.join("fifo");
    mkfifo(&fifo);
    let f = fifo.display().to_string();
    let (cert, key) = self_signed(d, "client", "agent", &[]);
    let (cert, key) = (cert.display().to_string(), key.display().to_string());
    let fifo_dir = d.join("ca-dir");
    std::fs::create_dir(&fifo_dir).unwrap();
    mkfifo(&fifo_dir.join("ca.pem"));
    let home = d.join("home");
    std::fs::create_dir(&home).unwrap();
    mkfifo(&home.join(".vault-token"));
    let cases: Vec<FifoCase> = vec![
        (
            format!("auth:\n  token_file: {f}\n"),
            vec![],
            "auth.token_file",
        ),
        (
            String::new(),
            vec![("HOME", home.display().to_string())],
            ".vault-token",
        ),
        (
            format!("auth:\n  method: approle\n  role_id_file: {f}\n"),
            vec![],
            "auth.role_id_file",
        ),
        (
            format!("auth:\n  method: approle\n  role_id: r\n  secret_id_file: {f}\n"),
            vec![],
            "auth.secret_id_file",
        ),
        (
            format!("auth:\n  method: userpass\n  username: u\n  password_file: {f}\n"),
            vec![],
            "auth.password_file",
        ),
        (
            format!("auth:\n  method: ldap\n  username: u\n  password_file: {f}\n"),
            vec![],
            "auth.password_file",
        ),
        (
            format!("auth:\n  method: jwt\n  jwt_file: {f}\n"),
            vec![],
            "auth.jwt_file",
        ),
        (
            format!("auth:\n  method: kubernetes\n  role: r\n  jwt_file: {f}\n"),
            vec![],
            "auth.jwt_file",
        ),
        (
            format!("ca_cert: {f}\n"),
            vec![("VAULT_TOKEN", "t".into())],
            "ca_cert",
        ),
        (
            String::new(),
            vec![("VAULT_TOKEN", "t".into()), ("VAULT_CACERT", f.clone())],
            "ca_cert",
        ),
        (
            format!("client_cert: {f}\nclient_key: {key}\n"),
            vec![("VAULT_TOKEN", "t".into())],
            "client_cert",
        ),
        (
            format!("client_cert: {cert}\nclient_key: {f}\n"),
            vec![("VAULT_TOKEN", "t".into())],
            "client_key",
        ),
        (
            format!("auth:\n  method: cert\nclient_cert: {cert}\nclient_key: {f}\n"),
            vec![],
            "client_key",
        ),
    ];
    for (config, env, what) in &cases {
        let cfg = private_file(
            d,
            "config.yaml",
            &format!("address: http://127.0.0.1:1\n{config}"),
        );
        let mut c = cmd(d)
            .args(["--config", cfg.to_str().unwrap(), "--timeout", "30"])
            .kill_after(NO_HANG)
            .stdin(payload(&["secret/a;x"]));
        for (k, v) in env {
            c = c.env(k, v);
        }
        let done = c.run();
        done.expect_code(2);
        assert!(
            done.stderr.contains(what) && done.stderr.contains("not a regular file"),
            "{config} {env:?}: {done}"
        );
    }
    // A CA directory holding only a FIFO: skipped, so no CA at all.
    let cfg = private_file(
        d,
        "config.yaml",
        &format!(
            "address: https://127.0.0.1:1\nca_path: {}\n",
            fifo_dir.display()
        ),
    );
    let done = cmd(d)
        .args(["--config", cfg.to_str().unwrap()])
        .env("VAULT_TOKEN", "t")
        .kill_after(NO_HANG)
        .stdin(payload(&["secret/a;x"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("hold no certificates"), "{done}");
    // The config file itself.
    let done = cmd(d)
        .args(["--config", &f])
        .env("VAULT_TOKEN", "t")
        .kill_after(NO_HANG)
        .stdin(payload(&["secret/a;x"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("not a regular file"), "{done}");
}

#[test]
fn a_fifo_as_token_cache_or_its_lock_is_left_alone_and_the_token_revoked() {
    let bao = server();
    let p = format!("secret/{}", unique("fifo-cache"));
    kv_put(&bao, &p, json!({"v": "fifo-cache-value"}));
    let h = format!("{p};v");
    for lock in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("token-cache");
        let fifo = if lock {
            dir.path().join("token-cache.lock")
        } else {
            cache.clone()
        };
        mkfifo(&fifo);
        let (cfg, mount, secret_id) = approle_config(&bao, dir.path(), &bao.addr, Some(&cache));
        let done = cmd(dir.path())
            .args(["--config", cfg.to_str().unwrap(), "--timeout", "20"])
            .kill_after(NO_HANG)
            .stdin(payload(&[&h]))
            .run();
        assert_eq!(done.value(&h), "fifo-cache-value");
        assert!(done.stderr.contains("not a regular file"), "{done}");
        let kind = std::fs::symlink_metadata(&fifo).unwrap().file_type();
        assert!(kind.is_fifo(), "the FIFO was replaced");
        if lock {
            assert!(!cache.exists(), "stored without holding the lock");
        }
        // Not cached, so revoked like any login token.
        assert_revoked(&bao, &mount, &done.stderr, &secret_id);
    }
}

/// The login tokens of `mount` that are still alive, by the server's
/// accessor list (every live token, whoever holds it).
fn live_login_tokens(bao: &OpenBao, mount: &str) -> usize {
    let keys = bao.api_ok("LIST", "auth/token/accessors", None)["data"]["keys"].clone();
    keys.as_array()
        .unwrap()
        .iter()
        .filter(|accessor| {
            let (status, v) = bao.api(
                "POST",
                "auth/token/lookup-accessor",
                Some(json!({ "accessor": accessor })),
            );
            status == 200
                && v["data"]["path"]
                    .as_str()
                    .is_some_and(|p| p.starts_with(&format!("auth/{mount}/login")))
        })
        .count()
}

#[test]
fn twenty_calls_sharing_a_token_cache_share_one_login() {
    let bao = server();
    let p = format!("secret/{}", unique("crowd"));
    kv_put(&bao, &p, json!({"v": "crowd-value"}));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token-cache");
    let (cfg, mount, _) = approle_config(&bao, dir.path(), &bao.addr, Some(&cache));
    let h = format!("{p};v");
    let call = cmd(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "--timeout", "30"])
        .kill_after(NO_HANG)
        .stdin(payload(&[&h]));
    let runs: Vec<_> = (0..20)
        .map(|_| {
            let call = call.clone();
            std::thread::spawn(move || call.run())
        })
        .collect();
    for r in runs {
        assert_eq!(r.join().unwrap().value(&h), "crowd-value");
    }
    let logins = login_tokens(&bao, &mount);
    assert_eq!(logins.len(), 1, "twenty calls, one login");
    assert_eq!(live_login_tokens(&bao, &mount), 1, "one live token");
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), logins[0]);
    assert!(token_alive(&bao, &logins[0]));
}

/// Starts the binary as the agent would, with `stdout`; the request is
/// written and stdin closed. Only HOME and PATH come from outside.
fn spawn(dir: &Path, config: &Path, handles: &[&str], stdout: Stdio) -> Child {
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--timeout", "60"])
        .env_clear()
        .env("HOME", dir)
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .stdin(Stdio::piped())
        .stdout(stdout)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(&payload(handles)).unwrap();
    drop(stdin);
    child
}

/// Waits for `child` at most [`NO_HANG`]; returns its status and stderr.
fn wait(mut child: Child) -> (ExitStatus, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > NO_HANG {
            let _ = child.kill();
            panic!("still running after {NO_HANG:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    (status, stderr)
}

/// Polls `ready` until it holds, at most [`NO_HANG`].
fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let started = Instant::now();
    while !ready() {
        assert!(started.elapsed() < NO_HANG, "never happened: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A config file in `dir` for a fresh AppRole at `address`, its token kept
/// in `cache` if given; returns (config file, mount, secret_id).
fn approle_config(
    bao: &OpenBao,
    dir: &Path,
    address: &str,
    cache: Option<&Path>,
) -> (PathBuf, String, String) {
    let (mount, role_id, secret_id) = approle(bao);
    let yaml = approle_yaml(&mount, &role_id, &secret_id, cache);
    let cfg = private_file(dir, "config.yaml", &format!("address: {address}\n{yaml}"));
    (cfg, mount, secret_id)
}

/// The one login token of `mount` was revoked, and `stderr` shows nothing secret.
fn assert_revoked(bao: &OpenBao, mount: &str, stderr: &str, secret_id: &str) {
    let tokens = login_tokens(bao, mount);
    assert_eq!(tokens.len(), 1, "one login: {stderr}");
    assert!(
        !token_alive(bao, &tokens[0]),
        "the login token is alive: {stderr}"
    );
    assert_no_leak("stderr", stderr, &[&tokens[0], secret_id]);
}

#[test]
fn a_closed_stdout_still_revokes_the_login_token() {
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mount, secret_id) = approle_config(&bao, dir.path(), &bao.addr, None);
    let p = format!("secret/{}", unique("closed"));
    kv_put(&bao, &p, json!({"v": "closed-stdout-value"}));
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let child = spawn(dir.path(), &cfg, &[&format!("{p};v")], writer.into());
    let (status, stderr) = wait(child);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed: {status}: {stderr}"));
    assert_ne!(code, 101, "panicked: {stderr}");
    assert_ne!(code, 0, "a reply nobody read is no success: {stderr}");
    assert_revoked(&bao, &mount, &stderr, &secret_id);
    assert_no_leak("stderr", &stderr, &["closed-stdout-value"]);
}

fn sigterm(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// SIGTERM once `ready` says so, with every request delayed 2 s (once per
/// kind) by a proxy: the process ends by itself, and the login token is
/// revoked.
fn sigterm_when(ready: impl Fn(&OpenBao, &FaultProxy, &str) -> bool) {
    let bao = server();
    let proxy = FaultProxy::before(Fault::Delay(Duration::from_secs(2)), 1, &bao.addr);
    let dir = tempfile::tempdir().unwrap();
    let (cfg, mount, secret_id) = approle_config(&bao, dir.path(), &proxy.url(), None);
    let p = format!("secret/{}", unique("term"));
    kv_put(&bao, &p, json!({"v": "sigterm-value"}));
    let child = spawn(dir.path(), &cfg, &[&format!("{p};v")], Stdio::piped());
    until("the call got to the moment of the signal", || {
        ready(&bao, &proxy, &mount)
    });
    sigterm(&child);
    let (status, stderr) = wait(child);
    let code = status
        .code()
        .unwrap_or_else(|| panic!("killed: {status}: {stderr}"));
    assert_ne!(code, 101, "panicked: {stderr}");
    assert_revoked(&bao, &mount, &stderr, &secret_id);
}

#[test]
fn sigterm_during_a_slow_read_revokes_the_login_token() {
    // The login is answered; the mount lookup or the read is being delayed.
    sigterm_when(|bao, _, mount| !login_tokens(bao, mount).is_empty());
}

#[test]
fn sigterm_during_the_login_revokes_the_token_it_brings() {
    // The login request is held by the proxy: no token exists yet. The
    // process must wait for it (within its deadline) and revoke it.
    sigterm_when(|_, proxy, _| {
        proxy
            .seen()
            .iter()
            .any(|s| s.method == "POST" && s.target.ends_with("/login"))
    });
}

#[test]
fn value_lookalikes_still_resolve() {
    // Not over-refusing: secrets named like the APIs, in a KV v1 mount and
    // in the token's own cubbyhole, are secrets.
    let bao = server();
    let p = format!("kv1/{}", unique("sys"));
    bao.api_ok(
        "POST",
        &format!("{p}/auth"),
        Some(json!({"v": "kv1-auth-value"})),
    );
    let c = format!("cubbyhole/{}", unique("mine"));
    bao.api_ok("POST", &c, Some(json!({"v": "cubby-own-value"})));
    let dir = tempfile::tempdir().unwrap();
    let (a, b) = (format!("{p}/auth;v"), format!("{c};v"));
    let done = run_with(
        &bao.addr,
        dir.path(),
        "",
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        &[&a, &b],
    );
    assert_eq!(done.value(&a), "kv1-auth-value");
    assert_eq!(done.value(&b), "cubby-own-value");
}
