//! `secret-backend-file` end to end: the real binary, run as the agent runs
//! it, over real files in temporary directories.

// The helpers below are test code too: a failed setup should stop the test.
#![allow(clippy::unwrap_used)]

use std::os::unix::fs::symlink;
use std::path::Path;
use std::process::Command;

use backend_tests::{Cmd, Done, assert_no_leak, payload};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-file");

/// Writes `bytes` at `path` under `root`, creating parent directories.
fn put(root: &Path, path: &str, bytes: impl AsRef<[u8]>) {
    let full = root.join(path);
    if let Some(parent) = full.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    std::fs::write(full, bytes).unwrap();
}

/// Runs the binary with `args` and asks for `handles`.
fn call(args: &[&str], handles: &[&str]) -> Done {
    Cmd::new(BIN).args(args).stdin(payload(handles)).run()
}

/// Runs the binary over the directory `root`.
fn call_dir(root: &Path, extra: &[&str], handles: &[&str]) -> Done {
    let root = root.to_str().unwrap();
    let mut args = vec!["--dir", root];
    args.extend_from_slice(extra);
    call(&args, handles)
}

fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}

#[test]
fn nested_paths_and_values_as_they_are() {
    let d = tempdir();
    put(d.path(), "db_password", "hunter2\n");
    put(d.path(), "prod/eu/api_key", "k-1");
    put(d.path(), "spaced name/ünï ☃", "  padded  ");
    let done = call_dir(
        d.path(),
        &[],
        &[
            "db_password",
            "prod/eu/api_key",
            "spaced name/ünï ☃",
            "./prod/eu/../eu/api_key",
        ],
    );
    assert_eq!(done.value("db_password"), "hunter2\n", "no trim by default");
    assert_eq!(done.value("prod/eu/api_key"), "k-1");
    assert_eq!(done.value("spaced name/ünï ☃"), "  padded  ");
    assert_eq!(done.value("./prod/eu/../eu/api_key"), "k-1");
    assert_eq!(
        done.stderr, "",
        "a successful call prints nothing on stderr"
    );
}

/// The layout the kubelet writes for a secret volume: each key a symlink
/// into `..data`, itself a symlink to a timestamped directory, swapped
/// atomically on update.
#[test]
fn kubernetes_secret_volume_layout() {
    let d = tempdir();
    let root = d.path();
    put(root, "..2024_01_01_00_00_00.123/password", "v1-pass\n");
    put(
        root,
        "..2024_01_01_00_00_00.123/config.yaml",
        "db:\n  user: app\n",
    );
    symlink("..2024_01_01_00_00_00.123", root.join("..data")).unwrap();
    symlink("..data/password", root.join("password")).unwrap();
    symlink("..data/config.yaml", root.join("config.yaml")).unwrap();
    let handles = ["password", "config.yaml;/db/user", "..data/password"];
    let done = call_dir(root, &["--trim-trailing-newline"], &handles);
    assert_eq!(done.value("password"), "v1-pass");
    assert_eq!(done.value("config.yaml;/db/user"), "app");
    assert_eq!(done.value("..data/password"), "v1-pass");

    // An update: a new timestamped directory, `..data` swapped to it.
    put(root, "..2024_02_02_00_00_00.456/password", "v2-pass\n");
    put(
        root,
        "..2024_02_02_00_00_00.456/config.yaml",
        "db:\n  user: app2\n",
    );
    symlink("..2024_02_02_00_00_00.456", root.join("..data_tmp")).unwrap();
    std::fs::rename(root.join("..data_tmp"), root.join("..data")).unwrap();
    let done = call_dir(root, &["--trim-trailing-newline"], &handles);
    assert_eq!(done.value("password"), "v2-pass");
    assert_eq!(done.value("config.yaml;/db/user"), "app2");
}

#[test]
fn escapes_are_refused_by_cause() {
    let outer = tempdir();
    put(outer.path(), "outside", "OUTSIDE-SECRET");
    let root = outer.path().join("root");
    put(&root, "inside", "in");
    put(&root, "sub/file", "sub");
    symlink("../outside", root.join("rel_out")).unwrap();
    symlink(outer.path().join("outside"), root.join("abs_out")).unwrap();
    symlink("..", root.join("parent")).unwrap();
    // Absolute targets are refused even when they point back inside.
    symlink(root.join("inside"), root.join("abs_in")).unwrap();
    symlink("sub/../inside", root.join("rel_in")).unwrap();
    symlink("loop_b", root.join("loop_a")).unwrap();
    symlink("loop_a", root.join("loop_b")).unwrap();
    let handles = [
        "rel_out",
        "abs_out",
        "abs_in",
        "parent/outside",
        "sub/../../outside",
        "../outside",
        "..",
        "/etc/hostname",
        "rel_in",
        "sub/../inside",
        "loop_a",
    ];
    let done = call_dir(&root, &[], &handles);
    let refused =
        "refused: the path leads outside the secrets directory (through '..' or a symlink)";
    assert_eq!(done.error("rel_out"), format!("rel_out: {refused}"));
    assert_eq!(done.error("abs_out"), format!("abs_out: {refused}"));
    assert_eq!(done.error("abs_in"), format!("abs_in: {refused}"));
    assert_eq!(
        done.error("parent/outside"),
        format!("parent/outside: {refused}")
    );
    assert_eq!(
        done.error("sub/../../outside"),
        "sub/../../outside: '..' leads outside the secrets directory"
    );
    assert_eq!(
        done.error("../outside"),
        "../outside: '..' leads outside the secrets directory"
    );
    assert!(
        done.error("..")
            .ends_with("'..' leads outside the secrets directory")
    );
    assert_eq!(
        done.error("/etc/hostname"),
        "/etc/hostname: absolute paths are refused; name the file relative to the secrets directory"
    );
    assert_eq!(
        done.value("rel_in"),
        "in",
        "a symlink that stays inside works"
    );
    assert_eq!(done.value("sub/../inside"), "in");
    assert_eq!(
        done.error("loop_a"),
        "loop_a: too many levels of symbolic links"
    );
    assert_no_leak("stdout", done.stdout_str(), &["OUTSIDE-SECRET"]);
    assert_no_leak("stderr", &done.stderr, &["OUTSIDE-SECRET"]);
}

#[test]
fn every_other_refusal_names_file_and_cause() {
    let d = tempdir();
    let root = d.path();
    put(root, "prod/x", "x");
    put(root, "empty", "");
    put(root, "only_newline", "\n");
    put(root, "binary", [0xde, 0xad, 0xbe, 0xef, 0xff, 0x00]);
    put(
        root,
        "db.json",
        r#"{"user":"admin","blank":"","nothing":null}"#,
    );
    put(root, "broken.json", r#"{"user": "BROKEN-SECRET"#);
    let fifo = root.join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success(), "mkfifo failed");
    let handles = [
        "prod",
        "prod/",
        "missing",
        "prod/x/deeper",
        "empty",
        "binary",
        "db.json;",
        ";user",
        "",
        "db.json;blank",
        "db.json;nothing",
        "db.json;absent",
        "broken.json;user",
        "fifo",
        "nul\0byte",
    ];
    let done = call_dir(root, &[], &handles);
    assert_eq!(done.error("prod"), "prod: is a directory, not a file");
    assert_eq!(done.error("prod/"), "prod/: is a directory, not a file");
    assert_eq!(done.error("missing"), "missing: no such file");
    assert!(
        done.error("prod/x/deeper")
            .starts_with("prod/x/deeper: no such file")
    );
    assert_eq!(done.error("empty"), "empty: the file is empty");
    assert_eq!(
        done.error("binary"),
        "binary: not UTF-8 text (binary files are not supported)"
    );
    assert_eq!(done.error("db.json;"), "db.json: empty key after ';'");
    assert_eq!(done.error(";user"), ";user: no file name before ';'");
    assert_eq!(
        done.error(""),
        "empty handle: name a file under the secrets directory"
    );
    assert_eq!(done.error("db.json;blank"), "db.json: key 'blank' is empty");
    assert_eq!(
        done.error("db.json;nothing"),
        "db.json: key 'nothing' is null"
    );
    assert_eq!(
        done.error("db.json;absent"),
        "db.json: no key 'absent' (fields: blank, nothing, user)"
    );
    assert_eq!(
        done.error("broken.json;user"),
        "broken.json: not a valid JSON document: unexpected end at line 1, column 23"
    );
    assert_eq!(done.error("fifo"), "fifo: not a regular file");
    assert_eq!(done.error("nul\0byte"), "nul\\0byte: NUL byte in the path");
    assert_no_leak("stdout", done.stdout_str(), &["BROKEN-SECRET", "admin"]);

    // Empty once the newline is gone is empty too, and says why.
    let done = call_dir(root, &["--trim-trailing-newline"], &["only_newline"]);
    assert_eq!(
        done.error("only_newline"),
        "only_newline: the file is empty (after removing the trailing newline)"
    );
}

#[test]
fn documents_by_extension_and_by_content() {
    let d = tempdir();
    let root = d.path();
    let json = r#"{"user":"admin","port":5432,"tls":true,"nested":{"password":"deep","list":["a","b"]},"a/b":"slash"}"#;
    put(root, "db.json", json);
    put(
        root,
        "db.yaml",
        "user: admin\nport: 5432\nnested:\n  password: deep\n  list: [a, b]\n",
    );
    put(root, "db.yml", "---\nuser: yml-admin\n");
    put(
        root,
        "app.env",
        "# comment\nexport DB_USER=admin\nDB_PASS=\"p a\\\"ss\"\nTOKEN='lit$eral' # c\n",
    );
    put(root, "sniffed_json", json);
    put(root, "sniffed_env", "A=1\nB=two\n");
    put(root, "sniffed_yaml", "nested:\n  password: yaml-deep\n");
    let handles = [
        "db.json;user",
        "db.json;port",
        "db.json;tls",
        "db.json;/nested/password",
        "db.json;/nested/list/1",
        "db.json;nested",
        "db.json;a/b",
        "db.json;/a~1b",
        "db.yaml;user",
        "db.yaml;port",
        "db.yaml;/nested/list/0",
        "db.yml;user",
        "app.env;DB_USER",
        "app.env;DB_PASS",
        "app.env;TOKEN",
        "sniffed_json;/nested/password",
        "sniffed_env;B",
        "sniffed_yaml;/nested/password",
        "db.json",
    ];
    let done = call_dir(root, &[], &handles);
    let want = [
        "admin",
        "5432",
        "true",
        "deep",
        "b",
        r#"{"list":["a","b"],"password":"deep"}"#,
        "slash",
        "slash",
        "admin",
        "5432",
        "a",
        "yml-admin",
        "admin",
        "p a\"ss",
        "lit$eral",
        "deep",
        "two",
        "yaml-deep",
        json,
    ];
    for (h, v) in handles.iter().zip(want) {
        assert_eq!(done.value(h), v, "{h}");
    }
    assert_eq!(done.stderr, "");
}

#[test]
fn the_size_limit_refuses_and_never_truncates() {
    let d = tempdir();
    let root = d.path();
    put(root, "at_default", "a".repeat(64 * 1024));
    put(root, "over_default", "a".repeat(64 * 1024 + 1));
    put(root, "ten", "0123456789");
    put(root, "eleven", "0123456789X");
    put(
        root,
        "big.json",
        format!(r#"{{"k":"v","pad":"{}"}}"#, "x".repeat(100)),
    );
    let done = call_dir(root, &[], &["at_default", "over_default"]);
    assert_eq!(done.value("at_default").len(), 64 * 1024);
    assert_eq!(
        done.error("over_default"),
        "over_default: file is larger than the limit of 65536 bytes (max_file_bytes)"
    );
    let done = call_dir(
        root,
        &["--max-file-bytes", "10"],
        &["ten", "eleven", "big.json;k"],
    );
    assert_eq!(done.value("ten"), "0123456789");
    assert!(
        done.error("eleven")
            .contains("larger than the limit of 10 bytes")
    );
    assert!(
        done.error("big.json;k")
            .starts_with("big.json: file is larger")
    );
    let done = call_dir(root, &["--max-file-bytes", "0"], &["ten"]);
    done.expect_code(2);
    assert!(done.stderr.contains("max_file_bytes"), "{}", done.stderr);
}

#[test]
fn content_is_text_but_any_text() {
    let d = tempdir();
    let root = d.path();
    put(root, "controls", "a\u{0}b\u{1b}[31mc\td\"e\\");
    put(root, "unicode", "pässwörd ☃ 🎉");
    put(root, "latin1", [b'p', 0xe4, b's', b's']);
    let done = call_dir(root, &[], &["controls", "unicode", "latin1"]);
    assert_eq!(done.value("controls"), "a\u{0}b\u{1b}[31mc\td\"e\\");
    assert_eq!(done.value("unicode"), "pässwörd ☃ 🎉");
    assert!(done.error("latin1").contains("not UTF-8"));
}

#[test]
fn trailing_newline_option_removes_exactly_one() {
    let d = tempdir();
    let root = d.path();
    put(root, "lf", "v\n");
    put(root, "crlf", "v\r\n");
    put(root, "two", "v\n\n");
    put(root, "two_crlf", "v\r\n\r\n");
    put(root, "cr", "v\r");
    put(root, "none", "v");
    put(root, "inner", "a\nb\n");
    let handles = ["lf", "crlf", "two", "two_crlf", "cr", "none", "inner"];
    let done = call_dir(root, &["--trim-trailing-newline"], &handles);
    let want = ["v", "v", "v\n", "v\r\n", "v\r", "v", "a\nb"];
    for (h, v) in handles.iter().zip(want) {
        assert_eq!(done.value(h), v, "{h}");
    }
    let done = call_dir(root, &[], &handles);
    assert_eq!(done.value("lf"), "v\n");
    assert_eq!(done.value("crlf"), "v\r\n");
}

#[test]
fn thousands_of_handles() {
    let d = tempdir();
    let root = d.path();
    let count = 3000;
    for i in 0..count {
        put(
            root,
            &format!("d{}/secret_{i}", i % 30),
            format!("value-{i}"),
        );
    }
    put(root, "shared.json", r#"{"k0":"zero","k1":"one"}"#);
    let mut handles: Vec<String> = (0..count)
        .map(|i| format!("d{}/secret_{i}", i % 30))
        .collect();
    handles.push("shared.json;k0".into());
    handles.push("shared.json;k1".into());
    handles.push("absent".into());
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = Cmd::new(BIN)
        .args(["--dir", root.to_str().unwrap(), "--timeout", "60"])
        .stdin(payload(&refs))
        .run();
    let reply = done.reply();
    assert_eq!(reply.len(), count + 3);
    for i in 0..count {
        let h = format!("d{}/secret_{i}", i % 30);
        assert_eq!(
            reply[&h]["value"],
            Value::String(format!("value-{i}")),
            "{h}"
        );
    }
    assert_eq!(reply["shared.json;k0"]["value"], "zero");
    assert_eq!(reply["shared.json;k1"]["value"], "one");
    assert_eq!(reply["absent"]["error"], "absent: no such file");
    assert_eq!(done.stderr, "");
}

#[test]
fn a_missing_root_answers_every_handle() {
    let d = tempdir();
    let absent = d.path().join("not-mounted");
    let done = call_dir(&absent, &[], &["a", "b.json;k"]);
    done.expect_code(0);
    let shown = absent.display();
    assert_eq!(
        done.error("a"),
        format!("a: the secrets directory {shown} does not exist")
    );
    assert_eq!(
        done.error("b.json;k"),
        format!("b.json: the secrets directory {shown} does not exist")
    );
    // The default root, /run/secrets, is absent on a test machine: the same.
    if !Path::new("/run/secrets").exists() {
        let done = call(&[], &["x"]);
        assert_eq!(
            done.error("x"),
            "x: the secrets directory /run/secrets does not exist"
        );
    }
}

#[test]
fn document_mode() {
    let d = tempdir();
    let root = d.path();
    put(
        root,
        "secrets.yaml",
        "password: s3cr3t\ndb:\n  user: admin\n  port: 5432\nempty: ''\n",
    );
    put(root, "secrets.env", "TOKEN=t-1\n");
    put(root, "plain", r#"{"a":"sniffed"}"#);
    let doc = root.join("secrets.yaml");
    let doc = doc.to_str().unwrap();
    let done = call(
        &["--document", doc],
        &[
            "password", "/db/user", "/db/port", "db", "missing", "empty", "",
        ],
    );
    assert_eq!(done.value("password"), "s3cr3t");
    assert_eq!(done.value("/db/user"), "admin");
    assert_eq!(done.value("/db/port"), "5432");
    assert_eq!(done.value("db"), r#"{"port":5432,"user":"admin"}"#);
    assert_eq!(
        done.error("missing"),
        format!("{doc}: no key 'missing' (fields: db, empty, password)")
    );
    assert_eq!(done.error("empty"), format!("{doc}: key 'empty' is empty"));
    assert_eq!(
        done.error(""),
        format!("{doc}: empty handle: name a key of the document")
    );

    let long = "k".repeat(2000);
    let done = call(&["--document", doc], &[&long]);
    assert_eq!(
        done.error(&long),
        format!("{doc}: key longer than 1024 bytes")
    );

    let env = root.join("secrets.env");
    let done = call(&["--document", env.to_str().unwrap()], &["TOKEN"]);
    assert_eq!(done.value("TOKEN"), "t-1");
    let plain = root.join("plain");
    let done = call(&["--document", plain.to_str().unwrap()], &["a"]);
    assert_eq!(done.value("a"), "sniffed");

    // A missing document fails every handle, exit 0.
    let absent = root.join("absent.json");
    let absent = absent.to_str().unwrap();
    let done = call(&["--document", absent], &["a", "b"]);
    assert_eq!(done.error("a"), format!("{absent}: no such file"));
    assert_eq!(done.error("b"), format!("{absent}: no such file"));
    // A document over the limit.
    let done = call(&["--document", doc, "--max-file-bytes", "5"], &["password"]);
    assert!(
        done.error("password")
            .contains("larger than the limit of 5 bytes")
    );
    // Both modes on the command line: a usage error.
    let done = call(&["--document", doc, "--dir", "/tmp"], &["a"]);
    done.expect_code(2);
}

/// A config file written with mode 0600 (the core refuses looser ones).
fn config_file(dir: &Path, text: &str) -> String {
    let path = backend_tests::files::private_file(dir, "backend.yaml", text);
    path.to_str().unwrap().to_owned()
}

#[test]
fn config_file_keys_and_flag_overrides() {
    let d = tempdir();
    let secrets = d.path().join("secrets");
    put(&secrets, "pw", "0123456789\n");
    put(&secrets, "doc.json", r#"{"k":"from-doc"}"#);
    let conf_dir = tempdir();
    let conf = config_file(
        conf_dir.path(),
        &format!(
            "dir: {}\ntrim_trailing_newline: true\nmax_file_bytes: 100\n",
            secrets.display()
        ),
    );
    let done = call(&["--config", &conf], &["pw"]);
    assert_eq!(done.value("pw"), "0123456789");
    // A flag overrides its key.
    let done = call(&["--config", &conf, "--max-file-bytes", "5"], &["pw"]);
    assert!(
        done.error("pw")
            .contains("larger than the limit of 5 bytes")
    );
    // A mode flag replaces the config's mode.
    let doc = secrets.join("doc.json");
    let done = call(
        &["--config", &conf, "--document", doc.to_str().unwrap()],
        &["k"],
    );
    assert_eq!(done.value("k"), "from-doc");

    // Document mode from the config.
    let conf = config_file(conf_dir.path(), &format!("document: {}\n", doc.display()));
    assert_eq!(call(&["--config", &conf], &["k"]).value("k"), "from-doc");
}

#[test]
fn bad_config_files_exit_2() {
    let d = tempdir();
    for (text, needle) in [
        ("dir: /x\ndirectory: /y\n", "directory"),
        ("dir: /x\ndocument: /y.json\n", "exclusive"),
        ("max_file_bytes: 0\n", "max_file_bytes"),
        // The core's YAML errors give the position, not the key, of a bad value.
        ("max_file_bytes: lots\n", "line 1"),
        ("trim_trailing_newline: maybe\n", "line 1"),
    ] {
        let conf = config_file(d.path(), text);
        let done = call(&["--config", &conf], &["a"]);
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(needle), "{text}: {done}");
    }
}

#[test]
fn the_get_command_for_operators() {
    let d = tempdir();
    put(d.path(), "pw", "v");
    let done = Cmd::new(BIN)
        .args(["--dir", d.path().to_str().unwrap(), "get", "pw", "nope"])
        .run();
    done.expect_code(0);
    let reply: Value = serde_json::from_str(done.stdout_str().trim_end()).unwrap();
    assert_eq!(reply["pw"]["value"], "v");
    assert_eq!(reply["nope"]["error"], "nope: no such file");
}

#[test]
fn values_never_reach_stderr_even_at_trace_level() {
    let d = tempdir();
    let root = d.path();
    put(root, "pw", "PLAIN-SECRET-1");
    put(root, "db.json", r#"{"user":"JSON-SECRET-2","bad":""}"#);
    put(root, "broken.yaml", "pw: [YAML-SECRET-3\n");
    put(root, "big", format!("BIG-SECRET-4{}", "x".repeat(100)));
    put(root, "latin1", b"LATIN-SECRET-5\xe4");
    let done = Cmd::new(BIN)
        .args(["--dir", root.to_str().unwrap(), "--log-level", "trace"])
        .args(["--max-file-bytes", "50"])
        .stdin(payload(&[
            "pw",
            "db.json;user",
            "db.json;bad",
            "db.json;none",
            "broken.yaml;pw",
            "big",
            "latin1",
        ]))
        .run();
    assert_eq!(done.value("pw"), "PLAIN-SECRET-1");
    assert_eq!(done.value("db.json;user"), "JSON-SECRET-2");
    assert!(!done.stderr.is_empty(), "trace logging is on: {done}");
    let planted = [
        "PLAIN-SECRET-1",
        "JSON-SECRET-2",
        "YAML-SECRET-3",
        "BIG-SECRET-4",
        "LATIN-SECRET-5",
    ];
    assert_no_leak("stderr", &done.stderr, &planted);
    let reply = done.reply();
    for h in [
        "db.json;bad",
        "db.json;none",
        "broken.yaml;pw",
        "big",
        "latin1",
    ] {
        let error = reply[h]["error"].as_str().unwrap();
        assert_no_leak(h, error, &planted);
    }
}
