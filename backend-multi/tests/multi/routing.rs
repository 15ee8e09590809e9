//! `secret-backend` end to end with local stores: routing by prefix, the
//! default backend, unknown prefixes, config validation, and stores chosen
//! by the caller's `type` and `config` (file connector types).

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::os::unix::fs::PermissionsExt;

use backend_tests::files::write_private;
use backend_tests::multi::MultiConfig;
use backend_tests::{Cmd, go_payload, payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

/// A secrets dir with two files, a JSON document, and a config naming them
/// (plus the top-level keys `top`).
fn setup(top: &[(&str, &str)]) -> (tempfile::TempDir, String) {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("db_password"), "file-pw");
    write_private(&secrets.join("api:key"), "colon-file");
    write_private(
        &dir.path().join("doc.json"),
        r#"{"user":"doc-user","nested":{"port":5432}}"#,
    );
    let document = dir.path().join("doc.json").display().to_string();
    let mut config = MultiConfig::new()
        .files("files", &secrets)
        .store("doc", "file", &[("document", &document)])
        .dummy("test");
    for (key, value) in top {
        config = config.top(key, value);
    }
    let conf = config.write(dir.path(), "multi.yaml");
    let conf = conf.to_str().unwrap().to_owned();
    (dir, conf)
}

#[test]
fn handles_go_to_the_backend_their_prefix_names() {
    let (_dir, conf) = setup(&[]);
    let done = Cmd::new(BIN)
        .args(["--config", &conf])
        .stdin(payload(&[
            "files:db_password",
            "doc:user",
            "doc:/nested/port",
            "test:x:y",
            "files:api:key",
            "nope:x",
            "bare",
            "files:missing",
        ]))
        .run();
    assert_eq!(done.value("files:db_password"), "file-pw");
    assert_eq!(done.value("doc:user"), "doc-user");
    assert_eq!(done.value("doc:/nested/port"), "5432");
    // Split at the first ':' only.
    assert_eq!(done.value("test:x:y"), "decrypted_x:y");
    assert_eq!(done.value("files:api:key"), "colon-file");
    assert_eq!(done.error("nope:x"), "no backend named 'nope'");
    assert!(done.error("bare").contains("no default backend"), "{done}");
    assert!(done.error("files:missing").contains("missing"), "{done}");
    assert_eq!(done.reply().len(), 8);
    assert_eq!(done.stderr, "");
}

#[test]
fn unprefixed_handles_go_whole_to_the_default() {
    let (_dir, conf) = setup(&[("default", "test")]);
    let done = Cmd::new(BIN)
        .args(["--config", &conf])
        .stdin(payload(&[
            "arn:aws:secretsmanager:eu-west-1:1:secret:x",
            "plain",
            "files:db_password",
        ]))
        .run();
    assert_eq!(
        done.value("arn:aws:secretsmanager:eu-west-1:1:secret:x"),
        "decrypted_arn:aws:secretsmanager:eu-west-1:1:secret:x"
    );
    assert_eq!(done.value("plain"), "decrypted_plain");
    assert_eq!(done.value("files:db_password"), "file-pw");
}

#[test]
fn a_broken_backend_costs_only_its_own_handles() {
    let (dir, conf) = setup(&[]);
    // The file backend's root disappears: its handles fail, the others resolve.
    std::fs::remove_dir_all(dir.path().join("secrets")).unwrap();
    let done = Cmd::new(BIN)
        .args(["--config", &conf])
        .stdin(payload(&["files:db_password", "doc:user", "test:a"]))
        .run();
    assert!(
        done.error("files:db_password").contains("does not exist"),
        "{done}"
    );
    assert_eq!(done.value("doc:user"), "doc-user");
    assert_eq!(done.value("test:a"), "decrypted_a");
}

#[test]
fn config_mistakes_exit_2_naming_the_backend() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("multi.yaml");
    for (text, want) in [
        (
            "backends:\n  f:\n    type: file\n    dri: /x\n",
            "backends.f: unknown field `dri`",
        ),
        ("backends:\n  f:\n    dir: /x\n", "backends.f: no 'type'"),
        (
            "backends:\n  f:\n    type: ftp\n",
            "backends.f: unknown type (expected one of: vault, aws, file, k8s, gcp, azure, dummy)",
        ),
        (
            "backends:\n  f:\n    type: dummy\ndefault: g\n",
            "default: no backend named 'g'",
        ),
        (
            "backends:\n  'a:b':\n    type: dummy\n",
            "must be non-empty and hold no ':'",
        ),
        (
            "backend:\n  f:\n    type: dummy\n",
            "unknown field `backend`",
        ),
        ("backends: {}\n", "no backends configured"),
    ] {
        write_private(&conf, text);
        let done = Cmd::new(BIN)
            .args(["--config", conf.to_str().unwrap()])
            .stdin(payload(&["f:x"]))
            .run();
        done.expect_code(2);
        assert!(done.stderr.contains(want), "{want}: {done}");
        assert!(done.stdout.is_empty());
    }
    let done = Cmd::new(BIN).stdin(payload(&["x"])).run();
    done.expect_code(2);
    assert!(done.stderr.contains("no backends configured"), "{done}");
}

#[test]
fn the_caller_can_choose_a_file_store_without_a_config_file() {
    let (dir, _) = setup(&[]);
    let doc = dir.path().join("doc.json");
    let secrets = dir.path().join("secrets");
    let call = |t: &str, config: serde_json::Value, handles: &[&str]| {
        Cmd::new(BIN)
            .stdin(go_payload(
                "1.1",
                handles,
                &[
                    ("type", json!(t)),
                    ("config", config),
                    ("secret_backend_timeout", json!(10)),
                ],
            ))
            .run()
    };
    let done = call("file.json", json!({"file_path": doc}), &["user"]);
    assert_eq!(done.value("user"), "doc-user");
    // Key names match case-insensitively, as in the agent's connector.
    let done = call("file.yaml", json!({"File_Path": doc}), &["user"]);
    assert_eq!(done.value("user"), "doc-user");
    let done = call(
        "file.text",
        json!({"secrets_path": secrets}),
        &["db_password"],
    );
    assert_eq!(done.value("db_password"), "file-pw");
    let done = call(
        "k8s.file",
        json!({"secrets_path": secrets, "max_file_read_size": 3}),
        &["db_password"],
    );
    assert!(done.error("db_password").contains("larger than"), "{done}");
    let done = call(
        "docker.secrets",
        json!({"secrets_path": secrets}),
        &["db_password"],
    );
    assert_eq!(done.value("db_password"), "file-pw");
    let done = call("dummy", json!({}), &["x"]);
    assert_eq!(done.value("x"), "decrypted_x");
    // Type names we do not serve, and missing required keys, are config errors.
    let done = call("akeyless", json!({}), &["x"]);
    done.expect_code(2);
    assert!(done.stderr.contains("is not served here"), "{done}");
    call("file.json", json!({}), &["x"]).expect_code(2);
}

/// The connector reads files of up to `max_file_read_size`, 10 MiB unless
/// set: a 100 KB document or secret file the agent's own connector serves
/// is served here too, not refused at our directory store's default.
#[test]
fn the_file_connectors_read_files_up_to_their_own_default_size() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("big.json");
    let padding = "p".repeat(100 * 1024);
    write_private(
        &doc,
        &json!({"user": "big-doc-user", "padding": padding}).to_string(),
    );
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("cert"), &padding);
    let call = |t: &str, config: serde_json::Value, handle: &str| {
        Cmd::new(BIN)
            .stdin(go_payload(
                "1.1",
                &[handle],
                &[
                    ("type", json!(t)),
                    ("config", config),
                    ("secret_backend_timeout", json!(10)),
                ],
            ))
            .run()
    };
    let done = call("file.json", json!({"file_path": doc}), "user");
    assert_eq!(done.value("user"), "big-doc-user");
    let done = call("file.text", json!({"secrets_path": secrets}), "cert");
    assert_eq!(done.value("cert"), padding);
    let done = call(
        "file.text",
        json!({"secrets_path": secrets, "max_file_read_size": 1024}),
        "cert",
    );
    assert!(done.error("cert").contains("larger than"), "{done}");
}

#[test]
fn a_store_that_cannot_be_built_fails_only_its_handles() {
    let (dir, _) = setup(&[]);
    let conf = dir.path().join("broken.yaml");
    write_private(
        &conf,
        "backends:\n  vault:\n    type: vault\n    address: http://127.0.0.1:9\n    auth:\n      method: token\n      token_file: /nonexistent/token\n  test:\n    type: dummy\n",
    );
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["vault:secret/x", "test:y"]))
        .run();
    let e = done.error("vault:secret/x");
    assert!(
        e.starts_with("backend 'vault': ") && e.contains("/nonexistent/token"),
        "{done}"
    );
    assert_eq!(done.value("test:y"), "decrypted_y");
}

#[test]
fn a_readable_config_holding_credentials_is_warned_about() {
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("multi.yaml");
    write_private(
        &conf,
        "backends:\n  v:\n    type: vault\n    auth:\n      method: token\n      token: s.inline\n  t:\n    type: dummy\n",
    );
    let run = || {
        Cmd::new(BIN)
            .args(["--config", conf.to_str().unwrap()])
            .stdin(payload(&["t:x"]))
            .run()
    };
    let quiet = run();
    assert_eq!(quiet.value("t:x"), "decrypted_x");
    assert_eq!(quiet.stderr, "", "0600: no warning");
    std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
    let warned = run();
    assert_eq!(warned.value("t:x"), "decrypted_x");
    assert!(warned.stderr.contains("readable by every user"), "{warned}");
    assert!(!warned.stderr.contains("s.inline"), "{warned}");
}

/// A store's readable credentials file is warned about once, though
/// `secret-backend` reads it twice in the call (to hold the store's
/// credentials before any store answers, then to use them).
#[test]
fn a_readable_credentials_file_is_warned_about_once() {
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    write_private(
        &credentials,
        "[default]\naws_access_key_id = AKIAX\naws_secret_access_key = warn-once-KEY-0123\n",
    );
    std::fs::set_permissions(&credentials, std::fs::Permissions::from_mode(0o644)).unwrap();
    let config = MultiConfig::new()
        .aws("a", "eu-west-1", "http://127.0.0.1:9")
        .write(dir.path(), "multi.yaml");
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .stdin(payload(&["a:x"]))
        .run();
    assert!(done.error("a:x").contains("cannot connect"), "{done}");
    assert_eq!(
        done.stderr.matches("readable by every user").count(),
        1,
        "{done}"
    );
    assert!(!done.stderr.contains("warn-once-KEY-0123"), "{done}");
}

/// A request's `config` that is not an object is named as such, its value
/// unquoted; an absent or null one is no config.
#[test]
fn a_request_config_that_is_not_an_object_is_named() {
    for config in [json!("secret-VALUE-1"), json!(987654321), json!(["x"])] {
        let request = go_payload(
            "1.1",
            &["a"],
            &[("type", json!("file.json")), ("config", config.clone())],
        );
        let done = Cmd::new(BIN).stdin(request).run();
        done.expect_code(2);
        assert!(done.stderr.contains("'config' must be an object"), "{done}");
        assert!(
            !done.stderr.contains("secret-VALUE-1") && !done.stderr.contains("987654321"),
            "{done}"
        );
    }
    let request = go_payload(
        "1.1",
        &["x"],
        &[("type", json!("dummy")), ("config", json!(null))],
    );
    assert_eq!(Cmd::new(BIN).stdin(request).run().value("x"), "decrypted_x");
}

#[test]
fn caller_config_decides_whether_a_request_may_replace_the_config_file() {
    let request = go_payload(
        "1.1",
        &["db_password"],
        &[("type", json!("dummy")), ("config", json!({}))],
    );
    // allow (the default): the request's store serves, a debug line says so.
    let (_dir, conf) = setup(&[("default", "files")]);
    let done = Cmd::new(BIN)
        .args(["--config", &conf, "--log-level", "debug"])
        .stdin(request.clone())
        .run();
    assert_eq!(done.value("db_password"), "decrypted_db_password");
    assert!(done.stderr.contains("caller_config: allow"), "{done}");
    // deny: the file's backends serve, and a warning says the request's
    // type was ignored.
    let (_dir, conf) = setup(&[("default", "files"), ("caller_config", "deny")]);
    let done = Cmd::new(BIN)
        .args(["--config", &conf])
        .stdin(request.clone())
        .run();
    assert_eq!(done.value("db_password"), "file-pw");
    assert!(done.stderr.contains("caller_config: deny"), "{done}");
    // Anything else is a config error.
    let (_dir, conf) = setup(&[("caller_config", "maybe")]);
    Cmd::new(BIN)
        .args(["--config", &conf])
        .stdin(request)
        .run()
        .expect_code(2);
}

#[test]
fn a_request_config_cannot_name_a_file_we_write() {
    let done = Cmd::new(BIN)
        .stdin(go_payload(
            "1.1",
            &["secret/x;y"],
            &[
                ("type", json!("vault")),
                (
                    "config",
                    json!({"address": "http://127.0.0.1:9", "token_cache_file": "/tmp/overwritten"}),
                ),
            ],
        ))
        .run();
    done.expect_code(2);
    assert!(
        done.stderr
            .contains("token_cache_file cannot come from the request"),
        "{done}"
    );
}
