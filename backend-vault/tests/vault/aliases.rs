//! Aliases through `secret-backend-vault` against a real OpenBao: names
//! Vector can write standing for `<path>[?version=N][;<key>]` handles, one
//! read per secret however many aliases name it (counted in the server's
//! audit log), and targets refused when the config is loaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use crate::common::{cmd, kv_put, run_with, server, unique};
use backend_tests::files::private_file;
use backend_tests::openbao::ROOT_TOKEN;
use backend_tests::{assert_no_leak, payload};
use serde_json::json;

#[test]
fn aliases_read_each_secret_once() {
    let bao = server();
    let (db, api) = (unique("secret/alias-db"), unique("secret/alias-api"));
    kv_put(&bao, &db, json!({"user": "u-61", "password": "p-61"}));
    kv_put(&bao, &db, json!({"user": "u-62", "password": "p-62"}));
    kv_put(&bao, &api, json!({"key": "k-63"}));
    let config = format!(
        "aliases:\n  db_password: \"{db};password\"\n  db.user: \"{db};/user\"\n  pw: \"{db};password\"\n  db/old: \"{db}?version=1;password\"\n  api_key: \"{api};key\"\n"
    );
    let handles = [
        "db_password",
        "db.user",
        "pw",
        &format!("{db};password"),
        "db/old",
        "api_key",
    ];
    let d = tempfile::tempdir().unwrap();
    let done = run_with(
        &bao.addr,
        d.path(),
        &config,
        &[("VAULT_TOKEN", ROOT_TOKEN)],
        &handles,
    );
    assert_eq!(done.reply().len(), handles.len(), "{done}");
    assert_eq!(done.value("db_password"), "p-62");
    assert_eq!(done.value("pw"), "p-62");
    assert_eq!(done.value(handles[3]), "p-62");
    assert_eq!(done.value("db.user"), "u-62");
    assert_eq!(done.value("db/old"), "p-61");
    assert_eq!(done.value("api_key"), "k-63");
    assert_no_leak(
        "stderr",
        &done.stderr,
        &["p-61", "p-62", "u-62", "k-63", ROOT_TOKEN],
    );
    let read = |p: &str| bao.count_requests(&p.replacen("secret/", "secret/data/", 1), "read");
    // The current version once for three aliases, the handle itself and a
    // pointer into it; version 1 once; the other secret once.
    assert_eq!(read(&db), 2, "one read per (path, version) of {db}");
    assert_eq!(read(&api), 1, "one read of {api}");
}

#[test]
fn refused_targets_and_names_stop_the_run() {
    let d = tempfile::tempdir().unwrap();
    for (config, want) in [
        (
            "aliases:\n  seal: sys/seal-status\n",
            "aliases: 'seal': the target is not a handle this backend can resolve: sys/seal-status: ",
        ),
        (
            "aliases:\n  me: auth/token/lookup-self\n",
            "aliases: 'me': the target is not a handle this backend can resolve: auth/token/lookup-self: ",
        ),
        (
            "aliases:\n  bad: \"secret//db;k\"\n",
            "aliases: 'bad': the target is not a handle this backend can resolve: invalid handle",
        ),
        (
            "aliases:\n  v: \"secret/db?version=x\"\n",
            "aliases: 'v': the target is not a handle this backend can resolve: ",
        ),
        (
            "aliases:\n  \"db?version=2\": secret/db\n",
            "aliases: 'db?version=2': '?' is not allowed in an alias name",
        ),
        (
            "aliases:\n  x: z\n  z: secret/db\n",
            "aliases: 'x': its target 'z' is itself an alias",
        ),
    ] {
        // No server: the config is refused before anything is sent.
        let done = run_with("http://127.0.0.1:9", d.path(), config, &[], &["x"]);
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(want), "{config:?}: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
    }
}

#[test]
fn a_failing_alias_says_where_its_target_looked() {
    // Keyed by the alias, the error names the target's path.
    let bao = server();
    let name = unique("alias-plain");
    let d = tempfile::tempdir().unwrap();
    let cfg = private_file(
        d.path(),
        "config.yaml",
        &format!("address: {}\naliases:\n  other: {name}\n", bao.addr),
    );
    let done = cmd(d.path())
        .env("VAULT_TOKEN", ROOT_TOKEN)
        .args(["--config", cfg.to_str().unwrap(), "--timeout", "20"])
        .stdin(payload(&["other"]))
        .run();
    let e = done.error("other");
    assert!(e.starts_with(&format!("{name}: ")), "{e}");
}
