//! Aliases through `secret-backend-file`: names Vector can write standing
//! for handles with `;key` and JSON Pointers, in both modes; targets
//! checked when the config is loaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use backend_tests::files::private_file;
use backend_tests::{Cmd, Done, assert_no_leak, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-file");

fn run(config: &Path, handles: &[&str]) -> Done {
    Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap(), "--log-level", "debug"])
        .stdin(payload(handles))
        .run()
}

#[test]
fn directory_mode_aliases() {
    let d = tempfile::tempdir().unwrap();
    let secrets = d.path().join("secrets");
    private_file(
        &secrets,
        "db.json",
        r#"{"user":"app","password":"pw-71","nested":{"k":"deep-72"}}"#,
    );
    private_file(&secrets, "prod/api_key", "key-73");
    let conf = private_file(
        d.path(),
        "file.yaml",
        &format!(
            "dir: {}\naliases:\n  db_password: \"db.json;password\"\n  db.pw: db.json;/password\n  deep: \"db.json;/nested/k\"\n  api/key: prod/api_key\n",
            secrets.display()
        ),
    );
    let handles = ["db_password", "db.pw", "deep", "api/key", "db.json;user"];
    let done = run(&conf, &handles);
    assert_eq!(done.reply().len(), handles.len(), "{done}");
    assert_eq!(done.value("db_password"), "pw-71");
    assert_eq!(done.value("db.pw"), "pw-71");
    assert_eq!(done.value("deep"), "deep-72");
    assert_eq!(done.value("api/key"), "key-73");
    assert_eq!(done.value("db.json;user"), "app");
    // Five handles, five targets: two aliases name different spellings of
    // one key, which the store reads from one file.
    assert!(
        done.stderr
            .contains("4 of 5 handle(s) are aliases; 5 distinct handle(s) asked of the store"),
        "{done}"
    );
    assert_no_leak("stderr", &done.stderr, &["pw-71", "deep-72", "key-73"]);
    // Two aliases of one handle, and the handle itself: asked once.
    let done = run(&conf, &["db_password", "db.json;password"]);
    assert_eq!(done.value("db.json;password"), "pw-71");
    assert!(
        done.stderr
            .contains("1 of 2 handle(s) are aliases; 1 distinct handle(s) asked of the store"),
        "{done}"
    );
    // A flag that names the directory keeps the config's aliases.
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .args(["--dir", secrets.to_str().unwrap()])
        .stdin(payload(&["deep"]))
        .run();
    assert_eq!(done.value("deep"), "deep-72");
}

#[test]
fn document_mode_aliases() {
    let d = tempfile::tempdir().unwrap();
    let doc = private_file(
        d.path(),
        "doc.yaml",
        "db:\n  password: pw-81\nweird key;x: v-82\n",
    );
    let conf = private_file(
        d.path(),
        "file.yaml",
        &format!(
            "document: {}\naliases:\n  db_password: /db/password\n  weird: \"weird key;x\"\n",
            doc.display()
        ),
    );
    let done = run(&conf, &["db_password", "weird", "/db/password"]);
    assert_eq!(done.value("db_password"), "pw-81");
    assert_eq!(done.value("/db/password"), "pw-81");
    assert_eq!(done.value("weird"), "v-82");
    // The mode may come from a flag: the targets are then document keys
    // (`/db/password` is no path under a directory), and checked as such.
    let conf = private_file(
        d.path(),
        "file.yaml",
        "aliases:\n  db_password: /db/password\n",
    );
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .args(["--document", doc.to_str().unwrap()])
        .stdin(payload(&["db_password"]))
        .run();
    assert_eq!(done.value("db_password"), "pw-81");
    let done = run(&conf, &["db_password"]);
    done.expect_code(2);
    assert!(
        done.stderr.contains("aliases: 'db_password': the target is not a handle this backend can resolve: /db/password: absolute paths are refused"),
        "{done}"
    );
}

#[test]
fn refused_alias_configs_name_the_alias() {
    let d = tempfile::tempdir().unwrap();
    let doc = private_file(d.path(), "doc.json", "{}");
    for (text, want) in [
        (
            "aliases:\n  db;pw: x\n".to_owned(),
            "aliases: 'db;pw': ';' is not allowed in an alias name",
        ),
        (
            "aliases:\n  \"db pw\": x\n".to_owned(),
            "aliases: 'db pw': ' ' is not allowed",
        ),
        (
            "aliases:\n  a: b\n  b: c\n".to_owned(),
            "aliases: 'a': its target 'b' is itself an alias",
        ),
        (
            "aliases:\n  a: 98765\n".to_owned(),
            "aliases: 'a': the target must be a string",
        ),
        (
            "aliases:\n  abs: /etc/passwd\n".to_owned(),
            "aliases: 'abs': the target is not a handle this backend can resolve: /etc/passwd: absolute paths are refused",
        ),
        (
            "aliases:\n  up: \"../x;k\"\n".to_owned(),
            "aliases: 'up': the target is not a handle this backend can resolve: ../x: '..' leads outside",
        ),
        (
            format!(
                "document: {}\naliases:\n  long: \"{}\"\n",
                doc.display(),
                "k".repeat(2000)
            ),
            "aliases: 'long': the target is not a handle this backend can resolve: ",
        ),
        (
            "aliases: [a, b]\n".to_owned(),
            "a map of alias names to handles",
        ),
    ] {
        let conf = private_file(d.path(), "file.yaml", &text);
        let done = run(&conf, &["a"]);
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(want), "{text:?}: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
    }
}
