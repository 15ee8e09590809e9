//! Aliases through the dummy binary, and the dummy's config reader held to
//! what a YAML parser reads from the same text.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use backend_dummy::DummyConfig;
use backend_tests::files::private_file;
use backend_tests::{Cmd, Done, payload};
use proptest::prelude::*;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-dummy");

fn config(dir: &Path, text: &str) -> PathBuf {
    private_file(dir, "dummy.yaml", text)
}

fn run(conf: &Path, extra: &[&str], handles: &[&str]) -> Done {
    Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .args(extra)
        .stdin(payload(handles))
        .run()
}

const ALIASES: &str = "aliases:\n  db_password: \"secret/db;password\"\n  db.pw: 'secret/db;password'\n  api_key: aws:prod/api;key\n";

#[test]
fn aliases_resolve_as_their_targets_keyed_as_requested() {
    let d = tempfile::tempdir().unwrap();
    let conf = config(d.path(), ALIASES);
    let handles = [
        "db_password",
        "db.pw",
        "secret/db;password",
        "api_key",
        "plain",
    ];
    let done = run(&conf, &["--log-level", "debug"], &handles);
    let reply = done.reply();
    assert_eq!(reply.len(), handles.len(), "{done}");
    for alias in ["db_password", "db.pw", "secret/db;password"] {
        assert_eq!(done.value(alias), "decrypted_secret/db;password");
    }
    assert_eq!(done.value("api_key"), "decrypted_aws:prod/api;key");
    assert_eq!(done.value("plain"), "decrypted_plain");
    // Two aliases of one target and the target itself: one handle asked.
    assert!(
        done.stderr
            .contains("3 of 5 handle(s) are aliases; 3 distinct handle(s) asked of the store"),
        "{done}"
    );
    // `get` answers aliases too.
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap(), "get", "api_key"])
        .run();
    assert_eq!(done.value("api_key"), "decrypted_aws:prod/api;key");
}

#[test]
fn the_watchdog_answers_aliases_as_requested() {
    let d = tempfile::tempdir().unwrap();
    let conf = config(d.path(), ALIASES);
    let done = run(
        &conf,
        &["--stall", "30", "--timeout", "1"],
        &["db_password", "plain"],
    );
    let reply = done.reply();
    assert_eq!(reply.len(), 2, "{done}");
    assert!(done.error("db_password").contains("timed out"), "{done}");
    assert!(done.error("plain").contains("timed out"), "{done}");
}

#[test]
fn refused_alias_configs_name_the_alias() {
    let d = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "aliases:\n  db;pw: secret/db\n",
            "line 2: expected 'name: handle'",
        ),
        (
            "aliases:\n  \"db;pw\": secret/db\n",
            "line 2: expected 'name: handle'",
        ),
        (
            "aliases:\n  a: b\n  b: secret/x\n",
            "'a': its target 'b' is itself an alias",
        ),
        ("aliases:\n  a: ''\n", "'a': the target is empty"),
        ("aliases:\n  a: x\n  a: z\n", "'a' is given twice"),
        ("aliases:\n  a: yes\n", "line 2: quote this handle"),
        ("aliases:\n  a: x\nother: 1\n", "line 3: "),
    ] {
        let conf = config(d.path(), text);
        let done = run(&conf, &[], &["a"]);
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(want), "{text:?}: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
    }
}

/// Names in Vector's characters, and a few just outside.
fn name() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => "[A-Za-z0-9_./-]{1,12}",
        1 => "[A-Za-z0-9_./;:?# -]{1,12}",
    ]
}

/// Targets with YAML's special characters in every place.
fn target() -> impl Strategy<Value = String> {
    "[a-z/;:?#=&*!|>%@`'\" ,\\[\\]{}\\\\-]{1,16}"
}

/// One entry line as an operator might write it: plain, double- or
/// single-quoted, with or without a comment.
fn line() -> impl Strategy<Value = String> {
    (name(), target(), 0..3u8, any::<bool>()).prop_map(|(n, t, style, comment)| {
        let value = match style {
            0 => t,
            1 => format!("\"{t}\""),
            _ => format!("'{}'", t.replace('\'', "''")),
        };
        let comment = if comment { " # note" } else { "" };
        format!("  {n}: {value}{comment}")
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(3000))]

    /// Whatever the dummy's reader accepts, the core's YAML reader reads as
    /// the same aliases (so the dummy's config means what YAML says).
    #[test]
    fn the_reader_agrees_with_yaml(lines in proptest::collection::vec(line(), 0..5)) {
        let text = format!("aliases:\n{}\n", lines.join("\n"));
        if let Ok(ours) = backend_dummy::config::parse(&text) {
            let yaml = backend_core::yaml::from_yaml::<DummyConfig>(&text);
            let yaml = yaml.map_err(|e| format!("{text:?}: ours {ours:?}, yaml: {e}"));
            prop_assert_eq!(&ours, &yaml.unwrap().aliases, "{:?}", text);
        }
    }
}

proptest! {
    /// Any text at all: an answer, never a panic.
    #[test]
    fn the_reader_never_panics(text in "(aliases:\n)?[ -~\t\n'\"#é]{0,200}") {
        let _ = backend_dummy::config::parse(&text);
    }
}

#[test]
fn the_reader_accepts_what_operators_write() {
    // The generator above must reach the accepting side, or the property
    // proves nothing: these shapes are what it generates most.
    for text in [
        "aliases:\n  a: secret/db;pw # note\n",
        "aliases:\n  a.b/c-d: \"x: y #z\"\n",
        "aliases:\n  a: 'it''s'\n",
    ] {
        let ours = backend_dummy::config::parse(text).unwrap();
        let yaml = backend_core::yaml::from_yaml::<DummyConfig>(text).unwrap();
        assert_eq!(ours, yaml.aliases, "{text:?}");
    }
}
