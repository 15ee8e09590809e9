//! Reads against a real OpenBao dev server: KV v2 versions and keys, KV
//! v1 and other engines, one read per path and one mount lookup per
//! mount, namespaces, the conformance kit, hostile handles that never
//! reach the server.

use std::time::Duration;

use crate::common::{kv_put, run_root, run_with, server, unique};
use backend_tests::assert_no_leak;
use backend_tests::files::private_file;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
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
fn conformance_kit() {
    let bao = server();
    let p = format!("secret/{}", unique("kit"));
    kv_put(&bao, &p, json!({"user": "kit-user", "pass": "kit-pass"}));
    let dir = tempfile::tempdir().unwrap();
    let token = private_file(dir.path(), "token", ROOT_TOKEN);
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
