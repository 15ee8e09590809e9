//! Hostile handles for the file, vault and aws stores, as a table: each
//! handle with the outcome it must have, all in one call of
//! `secret-backend` (so each store sees exactly the text after its
//! `<name>:` prefix, as its own binary would). With the dummy's 80-case
//! payload corpus (`backend-dummy/tests/dummy/hostile.rs`) this makes the
//! project's corpus of malformed input.
//!
//! Files: path tricks must never read outside the root (a planted file
//! beside the root must never show). Vault: the store's address carries a
//! path prefix (`/vault`) and sits behind a recording [`FaultProxy`], and
//! every other host is routed to a second recorder through `HTTP_PROXY`:
//! no request may leave `/vault/v1/` on the configured host. AWS: odd ids
//! go to a real moto as JSON fields, never into a URL.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::symlink;

use backend_tests::fault::{Fault, FaultProxy, assert_kept, isolated, moto_call};
use backend_tests::files::write_private;
use backend_tests::moto::{self, Moto};
use backend_tests::multi::MultiConfig;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{Cmd, go_payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");
const OUTSIDE: &str = "OUTSIDE-THE-ROOT-5a5a";
const INSIDE: &str = "inside-value-6b6b";
const VAULT_VALUE: &str = "vault-good-7c7c";
const AWS_VALUE: &str = "aws-good-8d8d";

/// What a handle must give.
enum Want {
    /// This value.
    Value(&'static str),
    /// An error containing this text.
    Error(&'static str),
}

fn corpus() -> Vec<(String, Want)> {
    use Want::*;
    let long_name = format!("files:{}", "n".repeat(300));
    let long_path = format!("files:{}", "d/".repeat(3000));
    let long_vault = format!("vault:secret/{}", "v".repeat(2000));
    let deep_vault = format!("vault:{}", vec!["s"; 100].join("/"));
    let long_aws = format!("aws:{}", "i".repeat(5000));
    let mut c: Vec<(String, Want)> = vec![
        // Files: climbing out, absolute, symlinks, encodings, odd bytes.
        ("files:inside".into(), Value(INSIDE)),
        ("files:./inside".into(), Value(INSIDE)),
        ("files:sub/../inside".into(), Value(INSIDE)),
        ("files:../outside".into(), Error("'..' leads outside")),
        ("files:..".into(), Error("'..' leads outside")),
        (
            "files:sub/../../outside".into(),
            Error("'..' leads outside"),
        ),
        ("files:./../outside".into(), Error("'..' leads outside")),
        (
            "files:/etc/passwd".into(),
            Error("absolute paths are refused"),
        ),
        (
            "files://etc/passwd".into(),
            Error("absolute paths are refused"),
        ),
        (
            "files:rel_out".into(),
            Error("leads outside the secrets directory"),
        ),
        (
            "files:abs_out".into(),
            Error("leads outside the secrets directory"),
        ),
        (
            "files:parent/outside".into(),
            Error("leads outside the secrets directory"),
        ),
        ("files:a\0b".into(), Error("NUL byte in the path")),
        (long_name, Error("longer than 255 bytes")),
        (long_path, Error("longer than 4096 bytes")),
        // Encoded and look-alike dots are names, not parents.
        ("files:%2e%2e/outside".into(), Error("no such file")),
        ("files:..%2foutside".into(), Error("no such file")),
        ("files:..\\outside".into(), Error("no such file")),
        ("files:sub\\..\\..\\outside".into(), Error("no such file")),
        (
            "files:\u{ff0e}\u{ff0e}/outside".into(),
            Error("no such file"),
        ),
        ("files:\u{2025}/outside".into(), Error("no such file")),
        ("files:inside\n".into(), Error("no such file")),
        ("files:".into(), Error("empty handle")),
        ("files:;k".into(), Error("no file name before ';'")),
        // Vault: URL tricks are refused before any request.
        ("vault:secret/fm/a;k".into(), Value(VAULT_VALUE)),
        (
            "vault:secret/../sys/seal".into(),
            Error("invalid handle: '.' and '..'"),
        ),
        (
            "vault:../../sys/seal".into(),
            Error("invalid handle: '.' and '..'"),
        ),
        (
            "vault:secret/./fm/a".into(),
            Error("invalid handle: '.' and '..'"),
        ),
        (
            "vault:secret/%2e%2e/sys/seal".into(),
            Error("invalid handle: '%' in the path"),
        ),
        (
            "vault:secret/%2E%2E".into(),
            Error("invalid handle: '%' in the path"),
        ),
        (
            "vault:secret/fm/a?list=true".into(),
            Error("invalid handle: the only query parameter"),
        ),
        (
            "vault:secret/fm/a?version=1&list=true".into(),
            Error("invalid handle: the version"),
        ),
        (
            "vault:secret/fm/a#/k".into(),
            Error("invalid handle: '#' in the path"),
        ),
        (
            "vault:http://evil.example/v1/secret".into(),
            Error("invalid handle: empty path segment"),
        ),
        (
            "vault://evil.example/secret".into(),
            Error("invalid handle: empty path segment"),
        ),
        (
            "vault:/secret/fm/a".into(),
            Error("invalid handle: empty path segment"),
        ),
        (
            "vault:secret//fm/a".into(),
            Error("invalid handle: empty path segment"),
        ),
        (
            "vault:secret/fm/a\r\nX-Injected: 1".into(),
            Error("invalid handle: control character"),
        ),
        (
            "vault:secret\\..\\sys\\seal".into(),
            Error("invalid handle: '\\' in the path"),
        ),
        (long_vault, Error("invalid handle: path longer than")),
        (
            deep_vault,
            Error("invalid handle: more than 64 path segments"),
        ),
        // Look-alike dots and spaces are plain segments, percent-encoded.
        (
            "vault:secret/\u{ff0e}\u{ff0e}/sys/seal".into(),
            Error("no secret at this path"),
        ),
        (
            "vault:secret/\u{2024}\u{2024}/sys".into(),
            Error("no secret at this path"),
        ),
        ("vault:secret/a b;k".into(), Error("no secret at this path")),
        // AWS: odd ids.
        ("aws:fm/a;k".into(), Value(AWS_VALUE)),
        ("aws:a b".into(), Error("a secret name or ARN has only")),
        ("aws:%2e%2e".into(), Error("a secret name or ARN has only")),
        ("aws:a;b;c;d".into(), Error("at most two ';'")),
        (
            "aws:fm/a;k;not a label".into(),
            Error("a version has no spaces"),
        ),
        ("aws:ssm:".into(), Error("no parameter name")),
        ("aws:ssm:/a b".into(), Error("a parameter name has only")),
        ("aws:ssm:/p;k;v".into(), Error("they have no versions")),
        ("aws:a\u{0}b".into(), Error("control character")),
        (long_aws, Error("longer than 4096")),
        ("aws:../../etc/passwd".into(), Error("../../etc/passwd: ")),
        (
            "aws:http://evil.example/".into(),
            Error("http://evil.example/: "),
        ),
        (
            "aws:arn:aws:secretsmanager:us-east-1:123456789012:secret:nope".into(),
            Error("not found"),
        ),
    ];
    c.sort_by(|a, b| a.0.cmp(&b.0));
    c.dedup_by(|a, b| a.0 == b.0);
    c
}

#[test]
fn every_hostile_handle_has_its_expected_outcome() {
    let corpus = corpus();
    assert!(corpus.len() >= 50, "{} cases", corpus.len());
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().join("root");
    write_private(&dir.path().join("outside"), OUTSIDE);
    write_private(&root.join("inside"), INSIDE);
    std::fs::create_dir(root.join("sub")).unwrap();
    symlink("../outside", root.join("rel_out")).unwrap();
    symlink(dir.path().join("outside"), root.join("abs_out")).unwrap();
    symlink("..", root.join("parent")).unwrap();

    let bao = OpenBao::start();
    bao.api_ok(
        "POST",
        "secret/data/fm/a",
        Some(json!({"data": {"k": VAULT_VALUE}})),
    );
    let vault = FaultProxy::recording(&bao.addr, "/vault/v1/");
    let elsewhere = FaultProxy::always(Fault::status(502));
    let moto = Moto::start();
    moto_call(
        &moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "fm/a", "SecretString": json!({"k": AWS_VALUE}).to_string()}),
    );

    let token = dir.path().join("token");
    write_private(&token, ROOT_TOKEN);
    let config = MultiConfig::new()
        .files("files", &root)
        .vault("vault", &format!("{}/vault", vault.url()), &token)
        .aws("aws", moto::REGION, &moto.endpoint())
        .write(dir.path(), "multi.yaml");
    let handles: Vec<&str> = corpus.iter().map(|(h, _)| h.as_str()).collect();
    let log = dir.path().join("trace.log");
    let done = isolated(Cmd::new(BIN))
        .env("HOME", dir.path().to_str().unwrap())
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HTTP_PROXY", &elsewhere.url())
        .env("HTTPS_PROXY", &elsewhere.url())
        .env("NO_PROXY", "127.0.0.1")
        .args(["--config", config.to_str().unwrap()])
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(go_payload(
            "1.1",
            &handles,
            &[("secret_backend_timeout", json!(20))],
        ))
        .run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    assert_kept(
        &done,
        &log,
        &handles,
        std::time::Duration::from_secs(20),
        &[INSIDE, VAULT_VALUE, AWS_VALUE],
        &[OUTSIDE, moto::SECRET_ACCESS_KEY],
    );
    let reply = done.reply();
    let mut wrong = Vec::new();
    for (h, want) in &corpus {
        let entry = &reply[h.as_str()];
        let ok = match want {
            Want::Value(v) => entry["value"] == *v,
            Want::Error(frag) => {
                entry["value"].is_null()
                    && entry["error"].as_str().is_some_and(|e| e.contains(frag))
            }
        };
        if !ok {
            wrong.push(format!("{h:?} -> {entry}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected outcomes:\n{}",
        wrong.join("\n")
    );

    // Every vault request stayed under /vault/v1/ on the configured host,
    // and none named what a hostile handle aimed at.
    let seen = vault.seen();
    assert!(
        !seen.is_empty(),
        "the good vault handle went through the proxy"
    );
    for s in &seen {
        assert!(s.target.starts_with("/vault/v1/"), "left the prefix: {s:?}");
        assert!(
            !s.target.starts_with("/vault/v1/sys/seal") && !s.target.contains("evil"),
            "{s:?}"
        );
        assert!(!s.target.contains("..") && !s.target.contains('?'), "{s:?}");
    }
    assert_eq!(elsewhere.seen(), vec![], "a request went to another host");
}
