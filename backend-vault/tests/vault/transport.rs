//! The transport against real and faulty servers: a server down or
//! hanging answered in time, TLS verification and cert auth, system roots
//! loaded only for TLS, retries of server errors (not client errors), a
//! sealed server, a CONNECT proxy.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use crate::common::{
    cmd, faulty, kv_put, listen, login_tokens, read_head, run_root, run_with, self_signed, server,
};
use backend_tests::files::{file_with_mode, private_file};
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{free_port, payload};
use serde_json::json;

#[test]
fn server_down_answers_every_handle_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("http://127.0.0.1:{}", free_port());
    let cfg = private_file(dir.path(), "config.yaml", &format!("address: {addr}\n"));
    let done = cmd(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "--timeout", "3"])
        .env("VAULT_TOKEN", "t")
        .stdin(payload(&["secret/a;x", "secret/b;y"]))
        .run();
    assert!(done.elapsed < Duration::from_secs(4), "{done}");
    for h in ["secret/a;x", "secret/b;y"] {
        let e = done.error(h);
        assert!(
            e.contains("cannot connect") || e.contains("timed out"),
            "{e}"
        );
    }
}

#[test]
fn server_hanging_answers_every_handle_before_the_deadline() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", listener.local_addr().unwrap());
    // Accepts and never answers; keeps the connections open.
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming() {
            held.push(s);
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let cfg = private_file(dir.path(), "config.yaml", &format!("address: {addr}\n"));
    let done = cmd(dir.path())
        .args(["--config", cfg.to_str().unwrap(), "--timeout", "2"])
        .env("VAULT_TOKEN", "t")
        .stdin(payload(&["secret/a;x", "secret/b;y", "kv/c"]))
        .run();
    assert!(done.elapsed < Duration::from_secs(3), "{done}");
    for h in ["secret/a;x", "secret/b;y", "kv/c"] {
        let (path, _) = h.split_once(';').unwrap_or((h, ""));
        assert_eq!(done.error(h), format!("{path}: timed out after 2s"));
    }
}

#[test]
fn tls_verification_and_cert_auth() {
    let bao = OpenBao::start_tls();
    let ca = bao.ca_cert.clone().unwrap();
    bao.ok(&["kv", "put", "secret/tls", "v=tls-value"]);
    bao.ok_with(
        &["policy", "write", "reader", "-"],
        Some(r#"path "secret/data/*" { capabilities = ["read"] }"#),
    );
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let h = "secret/tls;v";
    let root = [("VAULT_TOKEN", ROOT_TOKEN)];
    let ca_line = format!("ca_cert: {}\n", ca.display());

    // The server's CA: through the config, VAULT_CACERT, or a CA directory.
    let done = run_with(&bao.addr, d, &ca_line, &root, &[h]);
    assert_eq!(done.value(h), "tls-value");
    let done = run_with(
        &bao.addr,
        d,
        "",
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("VAULT_CACERT", ca.to_str().unwrap()),
        ],
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");
    let ca_dir = d.join("cas");
    std::fs::create_dir(&ca_dir).unwrap();
    std::fs::copy(&ca, ca_dir.join("bao.pem")).unwrap();
    std::fs::write(ca_dir.join("README"), "not a certificate").unwrap();
    let done = run_with(
        &bao.addr,
        d,
        &format!("ca_path: {}\n", ca_dir.display()),
        &root,
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");

    // A wrong CA, or the system roots: refused, fails closed.
    let (other_ca, _) = self_signed(d, "other-ca", "Other CA", &[]);
    let done = run_with(
        &bao.addr,
        d,
        &format!("ca_cert: {}\n", other_ca.display()),
        &root,
        &[h],
    );
    let e = done.error(h);
    assert!(
        e.starts_with("secret/tls: ") && e.contains("certificate"),
        "{e}"
    );
    let done = run_with(&bao.addr, d, "", &root, &[h]);
    assert!(done.error(h).contains("certificate"), "{done}");

    // The name the certificate must carry: one it has, one it has not.
    let done = run_with(
        &bao.addr,
        d,
        &format!("{ca_line}tls_server_name: localhost\n"),
        &root,
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");
    let done = run_with(
        &bao.addr,
        d,
        &ca_line,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("VAULT_TLS_SERVER_NAME", "vault.example.com"),
        ],
        &[h],
    );
    assert!(done.error(h).contains("certificate"), "{done}");

    // skip_verify works, and says so on stderr.
    let done = run_with(
        &bao.addr,
        d,
        "",
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_SKIP_VERIFY", "true")],
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");
    assert!(done.stderr.contains("TLS verification is off"), "{done}");

    // Through an HTTPS proxy (CONNECT), still verified against our CA.
    let (proxy, tunnels) = connect_proxy();
    let done = run_with(
        &bao.addr,
        d,
        &ca_line,
        &[("VAULT_TOKEN", ROOT_TOKEN), ("HTTPS_PROXY", &proxy)],
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");
    assert!(
        tunnels.load(Ordering::SeqCst) >= 1,
        "went through the proxy"
    );
    let before = tunnels.load(Ordering::SeqCst);
    let done = run_with(
        &bao.addr,
        d,
        &ca_line,
        &[
            ("VAULT_TOKEN", ROOT_TOKEN),
            ("HTTPS_PROXY", &proxy),
            ("NO_PROXY", "127.0.0.1"),
        ],
        &[h],
    );
    assert_eq!(done.value(h), "tls-value");
    assert_eq!(tunnels.load(Ordering::SeqCst), before, "NO_PROXY honoured");
    // A refused certificate is final: one connection, no retries.
    let done = run_with(
        &bao.addr,
        d,
        &format!("ca_cert: {}\n", other_ca.display()),
        &[("VAULT_TOKEN", ROOT_TOKEN), ("HTTPS_PROXY", &proxy)],
        &[h],
    );
    assert!(done.error(h).contains("UnknownIssuer"), "{done}");
    assert_eq!(tunnels.load(Ordering::SeqCst), before + 1, "not retried");

    // cert auth: a client certificate registered with the cert method.
    let (client, client_key) = self_signed(
        d,
        "client",
        "agent",
        &["-addext", "extendedKeyUsage=clientAuth"],
    );
    bao.ok(&["auth", "enable", "cert"]);
    let cert_arg = format!("certificate=@{}", client.display());
    bao.ok(&[
        "write",
        "auth/cert/certs/agent",
        &cert_arg,
        "token_policies=reader",
    ]);
    let config = format!(
        "{ca_line}client_cert: {}\nclient_key: {}\nauth:\n  method: cert\n  role: agent\n",
        client.display(),
        client_key.display()
    );
    let done = run_with(&bao.addr, d, &config, &[], &[h]);
    assert_eq!(done.value(h), "tls-value");
    let tokens = login_tokens(&bao, "cert");
    assert_eq!(tokens.len(), 1, "one cert login");
    let lookup = bao.bao(&["token", "lookup", &tokens[0]]);
    assert!(!lookup.status.success(), "the cert login token was revoked");
    // Without the client certificate the login is refused.
    let config = format!("{ca_line}auth:\n  method: cert\n");
    let done = run_with(&bao.addr, d, &config, &[], &[h]);
    done.expect_code(2);
    assert!(done.stderr.contains("client_cert"), "{done}");
}

/// A local TCP service: `serve` gets each connection and the counter;
/// returns `http://<addr>` and the counter.
/// The system roots are read at the first TLS handshake, not before: an
/// `http://` address works with an unreadable system store, and an
/// `https://` one answers every handle with the reason.
#[test]
fn system_roots_are_loaded_only_for_tls() {
    let bao = server();
    kv_put(&bao, "secret/roots", json!({"v": "plain-value"}));
    let tls = OpenBao::start_tls();
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let empty = file_with_mode(d, "empty.pem", "", 0o644);
    let no_roots = [
        ("VAULT_TOKEN", ROOT_TOKEN),
        ("SSL_CERT_FILE", empty.to_str().unwrap()),
        ("SSL_CERT_DIR", d.to_str().unwrap()),
    ];
    let h = "secret/roots;v";
    let done = run_with(&bao.addr, d, "", &no_roots, &[h]);
    done.expect_code(0);
    assert_eq!(done.value(h), "plain-value", "{done}");
    let done = run_with(&tls.addr, d, "", &no_roots, &[h]);
    done.expect_code(0);
    assert!(
        done.error(h)
            .contains("No CA certificates were loaded from the system"),
        "{done}"
    );
}

#[test]
fn server_errors_are_retried_client_errors_are_not() {
    let dir = tempfile::tempdir().unwrap();
    let h = "secret/db;password";
    let token = [("VAULT_TOKEN", "t")];
    let (addr, count) = faulty(500, r#"{"errors":["internal BODY-TEXT"]}"#);
    let done = run_with(&addr, dir.path(), "", &token, &[h]);
    let e = done.error(h);
    assert_eq!(e, "secret/db: server error (HTTP 500)");
    assert!(count.load(Ordering::SeqCst) > 1, "retried");
    let (addr, count) = faulty(429, "{}");
    let done = run_with(&addr, dir.path(), "", &token, &[h]);
    assert_eq!(done.error(h), "secret/db: rate limited (HTTP 429)");
    assert!(count.load(Ordering::SeqCst) > 1, "retried");
    let (addr, count) = faulty(400, r#"{"errors":["BODY-TEXT"]}"#);
    let done = run_with(&addr, dir.path(), "", &token, &[h]);
    assert_eq!(done.error(h), "secret/db: unexpected answer (HTTP 400)");
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 4xx is final");
    // Garbage with 200: no document, no crash, no body in the message.
    let (addr, _) = faulty(200, "BODY-TEXT not json");
    let done = run_with(&addr, dir.path(), "", &token, &[h]);
    assert!(done.error(h).starts_with("secret/db: "), "{done}");
    assert!(
        done.error(h).contains("not a Vault JSON response"),
        "{done}"
    );
    assert!(!done.stdout_str().contains("BODY-TEXT") && !done.stderr.contains("BODY-TEXT"));
}

#[test]
fn sealed_server_is_unavailable() {
    let bao = OpenBao::start();
    kv_put(&bao, "secret/sealed", json!({"v": "x"}));
    bao.api_ok("PUT", "sys/seal", None);
    let done = run_root(&bao, &["secret/sealed;v"]);
    assert_eq!(
        done.error("secret/sealed;v"),
        "secret/sealed: server sealed or unavailable (HTTP 503)"
    );
}

/// A minimal HTTP CONNECT proxy; returns its URL and the number of tunnels.
fn connect_proxy() -> (String, Arc<AtomicUsize>) {
    use std::io::Write;
    listen(|mut client, seen| {
        let head = read_head(&mut client);
        let Some(target) = head
            .strip_prefix("CONNECT ")
            .and_then(|r| r.split_whitespace().next())
        else {
            return;
        };
        let Ok(upstream) = std::net::TcpStream::connect(target) else {
            return;
        };
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
        let (mut c2, mut u2) = (client.try_clone().unwrap(), upstream.try_clone().unwrap());
        let (mut c1, mut u1) = (client, upstream);
        std::thread::spawn(move || std::io::copy(&mut c1, &mut u1));
        std::thread::spawn(move || std::io::copy(&mut u2, &mut c2));
    })
}
