//! Aliases through `secret-backend`: names Vector can write standing for
//! `<backend>:<handle>` (or, unprefixed, the default backend's) handles,
//! against OpenBao, moto and files in one call; one read per secret
//! counted on the real servers; targets routed and checked by the store
//! they reach when the config is loaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use backend_tests::fault::{Fault, FaultProxy, moto_call};
use backend_tests::files::{private_file, write_private};
use backend_tests::moto::{Moto, REGION};
use backend_tests::multi::MultiConfig;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{Cmd, Done, assert_no_leak, payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

fn run(config: &Path, home: &Path, env: &[(&str, String)], handles: &[&str]) -> Done {
    let mut c = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--timeout", "20"])
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env("HOME", home.to_str().unwrap());
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.stdin(payload(handles)).run()
}

#[test]
fn aliases_across_stores_read_each_secret_once() {
    let bao = OpenBao::start();
    bao.api_ok(
        "POST",
        "secret/data/db",
        Some(json!({"data": {"user": "vu-51", "password": "vp-51"}})),
    );
    let moto = Moto::start();
    moto_call(
        &moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "prod/api", "SecretString": r#"{"key":"ak-52"}"#}),
    );
    let proxy = FaultProxy::before(Fault::Garbage, 0, &moto.endpoint());
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("db.json"), r#"{"pw":"fp-53"}"#);
    let token = private_file(dir.path(), "token", ROOT_TOKEN);
    let auth = format!("{{method: token, token_file: {}}}", token.display());
    let proxied = proxy.url();
    let aws = [
        ("region", REGION),
        ("endpoint_url", proxied.as_str()),
        ("batch_get", "false"),
    ];
    let config = MultiConfig::new()
        .store("vault", "vault", &[("address", &bao.addr), ("auth", &auth)])
        .store("aws", "aws", &aws)
        .files("files", &secrets)
        .dummy("dummy")
        .default("vault")
        .alias("db_password", "vault:secret/db;password")
        .alias("db.pw", "secret/db;password")
        .alias("db/user", "vault:secret/db;/user")
        .alias("api_key", "aws:prod/api;key")
        .alias("api.key", "aws:prod/api;/key")
        .alias("file_pw", "files:db.json;pw")
        .alias("d", "dummy:x;y")
        .write(dir.path(), "multi.yaml");
    let moto_env: Vec<(&str, String)> = moto.env();
    let handles = [
        "db_password",
        "db.pw",
        "vault:secret/db;password",
        "db/user",
        "api_key",
        "api.key",
        "file_pw",
        "d",
    ];
    let done = run(&config, dir.path(), &moto_env, &handles);
    assert_eq!(done.reply().len(), handles.len(), "{done}");
    for h in ["db_password", "db.pw", "vault:secret/db;password"] {
        assert_eq!(done.value(h), "vp-51", "{h}");
    }
    assert_eq!(done.value("db/user"), "vu-51");
    assert_eq!(done.value("api_key"), "ak-52");
    assert_eq!(done.value("api.key"), "ak-52");
    assert_eq!(done.value("file_pw"), "fp-53");
    assert_eq!(done.value("d"), "decrypted_x;y");
    assert_no_leak(
        "stderr",
        &done.stderr,
        &["vu-51", "vp-51", "ak-52", "fp-53", ROOT_TOKEN],
    );
    // Five handles of secret/db (three aliases, one prefixed, one through
    // the default): one read. Two aliases of prod/api: one request.
    assert_eq!(bao.count_requests("secret/data/db", "read"), 1);
    let seen = proxy.seen();
    let gets = seen
        .iter()
        .filter(|s| s.amz_target.as_deref() == Some("secretsmanager.GetSecretValue"))
        .count();
    assert_eq!(gets, 1, "{seen:?}");
    assert_eq!(seen.len(), 1, "{seen:?}");
}

#[test]
fn refused_alias_configs() {
    let dir = tempfile::tempdir().unwrap();
    let backends = "backends:\n  vault: {type: vault, address: \"http://127.0.0.1:9\"}\n  aws: {type: aws, region: us-east-1}\n";
    for (text, want) in [
        (
            format!("{backends}aliases:\n  db: \"nowhere:secret/db;pw\"\n"),
            "aliases: 'db': the target is not a handle this backend can resolve: no backend named 'nowhere'",
        ),
        (
            format!("{backends}aliases:\n  db: \"secret/db;pw\"\n"),
            "aliases: 'db': the target is not a handle this backend can resolve: no '<backend>:' prefix and no default backend",
        ),
        (
            format!("{backends}aliases:\n  db: \"vault:sys/seal-status\"\n"),
            "aliases: 'db': the target is not a handle this backend can resolve: sys/seal-status: ",
        ),
        (
            format!("{backends}aliases:\n  k: \"aws:has space\"\n"),
            "aliases: 'k': the target is not a handle this backend can resolve: has space: ",
        ),
        (
            format!("{backends}default: aws\naliases:\n  k: \"ssm:\"\n"),
            "aliases: 'k': the target is not a handle this backend can resolve: ",
        ),
        (
            format!("{backends}aliases:\n  \"vault:db\": \"vault:secret/db;pw\"\n"),
            "aliases: 'vault:db': ':' is not allowed in an alias name",
        ),
        (
            format!("{backends}aliases:\n  a: \"vault:secret/a;k\"\n  b: a\n"),
            "aliases: 'b': its target 'a' is itself an alias",
        ),
        (
            "backends:\n  vault:\n    type: vault\n    aliases: {db: \"secret/db;pw\"}\n"
                .to_owned(),
            "backends.vault: aliases: write them at the top level of this config",
        ),
    ] {
        let config = private_file(dir.path(), "multi.yaml", &text);
        let done = run(&config, dir.path(), &[], &["db"]);
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(want), "{text:?}: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
    }
}

#[test]
fn the_most_aliases_a_config_may_hold() {
    // The maximum, over four stores, each target routed and checked by its
    // store's parser when the config loads; one more is refused.
    let dir = tempfile::tempdir().unwrap();
    let mut text = "backends:\n  vault: {type: vault, address: \"http://127.0.0.1:9\"}\n  aws: {type: aws, region: us-east-1}\n  files: {type: file, dir: /tmp}\n  d: {type: dummy}\naliases:\n".to_owned();
    let max = backend_core::alias::MAX_ALIASES;
    for i in 0..max {
        let target = ["vault:secret/x", "aws:prod/x", "files:x", "d:x"][i % 4];
        text.push_str(&format!("  a{i}: \"{target}{i};key\"\n"));
    }
    let config = private_file(dir.path(), "multi.yaml", &text);
    let done = run(&config, dir.path(), &[], &["a3", "a4095"]);
    assert_eq!(done.value("a3"), "decrypted_x3;key");
    assert_eq!(done.value("a4095"), "decrypted_x4095;key");
    text.push_str("  one_more: \"d:x\"\n");
    let config = private_file(dir.path(), "multi.yaml", &text);
    let done = run(&config, dir.path(), &[], &["a3"]);
    done.expect_code(2);
    assert!(
        done.stderr.contains(&format!("more than {max} aliases")),
        "{done}"
    );
}
