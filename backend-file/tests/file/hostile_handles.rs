//! Hostile keys for document mode, as a table (each with its expected
//! outcome), run through `secret-backend-file` at trace level with a log
//! file: no value of the document other than the one asked for, and no
//! value at all outside stdout's values, may show anywhere. (Directory-mode
//! path tricks are in `backend-multi/tests/hostile_handles.rs`, through the
//! multi binary's file store.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backend_tests::fault::assert_kept;
use backend_tests::{Cmd, go_payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-file");
const USER: &str = "doc-user-1f1f";
const PASS: &str = "doc-pass-2e2e";
const NESTED: &str = "doc-nested-3d3d";
const SLASHED: &str = "doc-slashed-4c4c";

enum Want {
    Value(&'static str),
    Error(&'static str),
}

fn corpus() -> Vec<(String, Want)> {
    use Want::*;
    vec![
        ("user".into(), Value(USER)),
        ("/db/pass".into(), Value(PASS)),
        ("/a~1b".into(), Value(SLASHED)),
        ("/nested/0/deep".into(), Value(NESTED)),
        ("/db/../user".into(), Error("no key")),
        ("/../user".into(), Error("no key")),
        ("../user".into(), Error("no key")),
        ("/db/pass/".into(), Error("")),
        ("/a/b".into(), Error("no key")),
        ("/a~2b".into(), Error("")),
        ("/a~".into(), Error("")),
        ("/nested/1".into(), Error("")),
        ("/nested/-1".into(), Error("")),
        ("/nested/99999999999999999999999".into(), Error("")),
        ("%2Fdb%2Fpass".into(), Error("no key")),
        ("us\u{0}er".into(), Error("")),
        ("USER".into(), Error("no key")),
        ("user ".into(), Error("no key")),
        ("\u{ff55}ser".into(), Error("no key")),
        ("".into(), Error("empty handle")),
        ("k".repeat(2000), Error("key longer than 1024 bytes")),
        ("/".into(), Error("")),
        ("//".into(), Error("")),
    ]
}

#[test]
fn hostile_keys_of_a_document_at_trace_level() {
    let dir = tempfile::tempdir().unwrap();
    let doc = dir.path().join("secrets.json");
    std::fs::write(
        &doc,
        json!({"user": USER, "db": {"pass": PASS}, "a/b": SLASHED, "nested": [{"deep": NESTED}]})
            .to_string(),
    )
    .unwrap();
    let corpus = corpus();
    let handles: Vec<&str> = corpus.iter().map(|(h, _)| h.as_str()).collect();
    let log = dir.path().join("trace.log");
    let done = Cmd::new(BIN)
        .args(["--document", doc.to_str().unwrap()])
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(go_payload(
            "1.1",
            &handles,
            &[("secret_backend_timeout", json!(10))],
        ))
        .run();
    let log = std::fs::read_to_string(&log).unwrap();
    assert!(log.contains("resolved 4 of"), "trace log written: {log}");
    assert_kept(
        &done,
        &log,
        &handles,
        std::time::Duration::from_secs(10),
        &[USER, PASS, NESTED, SLASHED],
        &[],
    );
    let reply = done.reply();
    let mut wrong = Vec::new();
    for (h, want) in &corpus {
        let e = &reply[h.as_str()];
        let ok = match want {
            Want::Value(v) => e["value"] == *v,
            Want::Error(frag) => {
                e["value"].is_null() && e["error"].as_str().is_some_and(|m| m.contains(frag))
            }
        };
        if !ok {
            wrong.push(format!("{h:?} -> {e}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "unexpected outcomes:\n{}",
        wrong.join("\n")
    );
}
