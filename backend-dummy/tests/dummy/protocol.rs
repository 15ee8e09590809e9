//! The protocol end to end, through the real `secret-backend-dummy` binary:
//! payloads as the agents write them, odd handles, limits, malformed input,
//! exit codes and the CLI.

use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use backend_tests::{Cmd, Done, assert_no_leak, files, go_payload, payload};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-dummy");

fn call(input: impl Into<Vec<u8>>) -> Done {
    Cmd::new(BIN).stdin(input).run()
}

#[test]
fn seed_example_exactly() {
    let done = call(r#"{"version":"1.0","secrets":["db_prod_user","db_prod_password"]}"#);
    done.expect_code(0);
    assert_eq!(
        done.stdout_str(),
        r#"{"db_prod_user":{"value":"decrypted_db_prod_user","error":null},"db_prod_password":{"value":"decrypted_db_prod_password","error":null}}"#
    );
    assert_eq!(
        done.stderr, "",
        "a successful call prints nothing on stderr"
    );
}

#[test]
fn go_written_payloads_with_escapes_and_extra_fields() {
    let raw = go_payload("1.0", &["<a&b>", "plain"], &[]);
    assert!(String::from_utf8_lossy(&raw).contains(r"\u003ca\u0026b\u003e"));
    let done = call(raw);
    assert_eq!(done.value("<a&b>"), "decrypted_<a&b>");
    assert_eq!(done.value("plain"), "decrypted_plain");

    let newest = go_payload(
        "1.1",
        &["x"],
        &[
            ("secret_backend_timeout", json!(30)),
            ("type", json!("file.json")),
            ("config", json!({"file_path": "/nowhere"})),
            ("some_future_field", json!({"nested": [1, 2]})),
        ],
    );
    let done = call(newest);
    assert_eq!(done.value("x"), "decrypted_x");
    assert_eq!(done.stderr, "");
    let done = call(r#"{"version":"1.7","secrets":["y"],"x":null}"#);
    assert_eq!(done.value("y"), "decrypted_y");
}

#[test]
fn duplicates_are_answered_once() {
    let done = call(payload(&["a", "b", "a", "a", "b"]));
    let reply = done.reply();
    assert_eq!(reply.len(), 2);
    assert_eq!(done.value("a"), "decrypted_a");
    // The object has each key once on the wire, too.
    assert_eq!(done.stdout_str().matches("\"a\":").count(), 1);
}

#[test]
fn odd_handles_are_answered_exactly() {
    let long = "k".repeat(10 * 1024);
    let handles = [
        "",
        "]]]",
        r#"{"json":["text"]}"#,
        "ünï☃😀",
        "line\nbreak\ttab",
        "nul\0byte",
        "\u{1}\u{7f}",
        &long,
    ];
    let done = call(payload(&handles));
    let reply = done.reply();
    assert_eq!(reply.len(), handles.len());
    for h in handles {
        assert_eq!(done.value(h), format!("decrypted_{h}"));
    }
}

#[test]
fn ten_thousand_handles() {
    let handles: Vec<String> = (0..10_000).map(|i| format!("handle_{i}")).collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = call(payload(&refs));
    let reply = done.reply();
    assert_eq!(reply.len(), 10_000);
    assert_eq!(reply["handle_9999"]["value"], "decrypted_handle_9999");
}

#[test]
fn stdin_in_slow_chunks() {
    let done = Cmd::new(BIN)
        .stdin(payload(&["slow", "chunks"]))
        .chunked(7, Duration::from_millis(20))
        .run();
    assert_eq!(done.value("chunks"), "decrypted_chunks");
}

#[test]
fn empty_secrets_list_is_an_empty_object() {
    let done = call(r#"{"version":"1.0","secrets":[]}"#);
    done.expect_code(0);
    assert_eq!(done.stdout_str(), "{}");
}

#[test]
fn unusable_requests_exit_1_with_one_line_and_no_stdout() {
    let cases: &[(&[u8], &str)] = &[
        (b"", "empty input"),
        (b"   \n", "empty input"),
        (b"not json", "not a JSON request"),
        (b"{\"version\":\"1.0\",", "not a JSON request"),
        (b"[\"version\",\"1.0\"]", "not an object"),
        (b"42", "not an object"),
        (
            br#"{"version":"1.0","secrets":[]}{"version":"1.0","secrets":[]}"#,
            "not a JSON request",
        ),
        (
            b"{\"version\":\"1.0\",\"secrets\":[\"\xff\"]}",
            "not valid UTF-8",
        ),
        (br#"{"secrets":["a"]}"#, "no 'version'"),
        (
            br#"{"version":1.0,"secrets":["a"]}"#,
            "'version' is not a string",
        ),
        (
            br#"{"version":"2.0","secrets":["a"]}"#,
            "unsupported protocol version '2.0'",
        ),
        (
            br#"{"version":"0.9","secrets":["a"]}"#,
            "unsupported protocol version '0.9'",
        ),
        (br#"{"version":"1.0"}"#, "no 'secrets' list"),
        (
            br#"{"version":"1.0","secrets":"a"}"#,
            "'secrets' is not a list",
        ),
        (
            br#"{"version":"1.0","secrets":{"a":1}}"#,
            "'secrets' is not a list",
        ),
        (
            br#"{"version":"1.0","secrets":["a",null]}"#,
            "'secrets' item 1 is not a string",
        ),
        (
            br#"{"version":"1.0","secrets":[["a"]]}"#,
            "'secrets' item 0 is not a string",
        ),
    ];
    for (input, want) in cases {
        let done = call(*input);
        done.expect_code(1);
        assert!(done.stdout.is_empty(), "stdout must stay empty: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "one line on stderr: {done}");
        assert!(done.stderr.contains(want), "expected {want:?}: {done}");
    }
}

#[test]
fn deep_nesting_is_refused_not_crashed() {
    // In a field we read (config), parsing stops at serde_json's depth limit.
    let deep = format!(
        r#"{{"version":"1.0","secrets":["a"],"config":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    call(deep).expect_code(1);
    // In a field we do not know, it is skipped without recursion.
    let deep = format!(
        r#"{{"version":"1.0","secrets":["a"],"x":{}{}}}"#,
        "[".repeat(100_000),
        "]".repeat(100_000)
    );
    assert_eq!(call(deep).value("a"), "decrypted_a");
}

#[test]
fn input_over_the_limit_is_refused() {
    let big = payload(&["x".repeat(300).as_str()]);
    let done = Cmd::new(BIN)
        .args(["--max-input-bytes", "100"])
        .stdin(big)
        .run();
    done.expect_code(1);
    assert!(
        done.stderr.contains("larger than the limit of 100 bytes"),
        "{done}"
    );
    assert!(done.stdout.is_empty());
}

#[test]
fn a_64_mib_payload_is_refused_without_reading_it_all() {
    // The writer thread gets EPIPE once the backend stops reading and exits.
    let mut big = br#"{"version":"1.0","secrets":[""#.to_vec();
    big.resize(64 * 1024 * 1024, b'a');
    let done = call(big);
    done.expect_code(1);
    assert!(
        done.stderr
            .contains("larger than the limit of 4194304 bytes"),
        "{done}"
    );
}

#[test]
fn output_cap_keeps_the_other_handles() {
    let big = "b".repeat(600);
    let done = Cmd::new(BIN)
        .args(["--max-output-bytes", "1000"])
        .stdin(payload(&[&big, "small"]))
        .run();
    assert!(done.stdout.len() <= 1000, "{done}");
    assert_eq!(done.value("small"), "decrypted_small");
    let err = done.error(&big);
    assert_eq!(err, "value left out: reply over the output limit");
    assert!(done.stderr.contains("1 value(s) left out"), "{done}");
}

#[test]
fn version_and_help() {
    let done = Cmd::new(BIN).args(["--version"]).run();
    done.expect_code(0);
    assert!(
        done.stdout_str().starts_with("secret-backend-dummy 0.1.0"),
        "{done}"
    );
    let done = Cmd::new(BIN).args(["--help"]).run();
    done.expect_code(0);
    for want in [
        "Exit codes:",
        "--timeout",
        "--config",
        "--log-level",
        "--log-file",
        "get",
    ] {
        assert!(done.stdout_str().contains(want), "{want}: {done}");
    }
}

#[test]
fn usage_and_config_errors_exit_2() {
    Cmd::new(BIN).args(["--no-such-flag"]).run().expect_code(2);
    Cmd::new(BIN)
        .args(["--timeout", "0"])
        .stdin(payload(&["a"]))
        .run()
        .expect_code(2);
    // Under a millisecond: a deadline of zero, refused as usage.
    let done = Cmd::new(BIN)
        .args(["--timeout", "1e-12"])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("between 0.001 and"), "{done}");
    Cmd::new(BIN)
        .args(["--timeout", "soon"])
        .stdin(payload(&["a"]))
        .run()
        .expect_code(2);
    let done = Cmd::new(BIN)
        .args(["--log-level", "loud"])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("invalid log level"), "{done}");
    let done = Cmd::new(BIN)
        .env("SECRET_BACKEND_LOG", "loud")
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);

    let dir = tempfile::tempdir().unwrap();
    let conf = files::private_file(dir.path(), "dummy.yaml", "unexpected: 1\n");
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("holds only 'aliases:'"), "{done}");
    assert!(done.stdout.is_empty());

    files::write_with_mode(&conf, "", 0o666);
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(
        done.stderr.contains("writable by group or others"),
        "{done}"
    );

    files::set_mode(&conf, 0o600);
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["a"]))
        .run();
    assert_eq!(done.value("a"), "decrypted_a");
}

#[test]
fn get_prints_the_same_json_for_an_operator() {
    let done = Cmd::new(BIN).args(["get", "db_prod_user", "x y"]).run();
    assert_eq!(done.value("db_prod_user"), "decrypted_db_prod_user");
    assert_eq!(done.value("x y"), "decrypted_x y");
    assert!(done.stdout_str().ends_with("}\n"));
    Cmd::new(BIN).args(["get"]).run().expect_code(2);
}

#[test]
fn trace_logging_never_holds_a_value() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("backend.log");
    let done = Cmd::new(BIN)
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(payload(&["planted"]))
        .run();
    assert_eq!(done.value("planted"), "decrypted_planted");
    let logged = std::fs::read_to_string(&log).unwrap();
    assert!(
        logged.contains("resolved 1 of 1 handles"),
        "the log file is written: {logged}"
    );
    assert_eq!(
        std::fs::metadata(&log).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_no_leak("the log file", &logged, &["decrypted_planted"]);
    assert_no_leak("stderr", &done.stderr, &["decrypted_planted"]);
}

#[test]
fn timeout_sources_are_accepted() {
    let done = Cmd::new(BIN)
        .args(["--timeout", "2.5"])
        .stdin(payload(&["t"]))
        .run();
    assert_eq!(done.value("t"), "decrypted_t");
    let p = go_payload("1.1", &["t"], &[("secret_backend_timeout", Value::from(1))]);
    assert_eq!(call(p).value("t"), "decrypted_t");
}
