//! The `fake-k8s` executable's lifecycle, as `bench/bench.py` drives it: the
//! JSON line, the files, `take`, the exit when stdin closes.
//!
//! Being an integration test of this package, it also makes `cargo test
//! --workspace` build `target/debug/fake-k8s`, which CI's `bench/run.sh
//! --smoke --bin-dir target/debug` runs right after.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::process::{Command, Stdio};

use serde_json::Value;

#[test]
fn serves_until_stdin_closes() {
    let mut child = Command::new(env!("CARGO_BIN_EXE_fake-k8s"))
        .args(["--secrets", "3", "--keys", "2"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    let ready: Value = serde_json::from_str(&line).unwrap();
    let api = ready["api_server"].as_str().unwrap();
    assert!(api.starts_with("https://127.0.0.1:"), "{api}");
    assert_eq!(ready["secrets"], 3);
    assert_eq!(ready["namespace"], "bench");
    let ca = ready["ca_path"].as_str().unwrap().to_owned();
    let token = ready["token_path"].as_str().unwrap().to_owned();
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    assert_eq!(
        std::fs::read_to_string(&token).unwrap(),
        ready["token"].as_str().unwrap()
    );
    let mode = std::fs::metadata(&token).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "token file mode {mode:o}");

    writeln!(stdin, "take").unwrap();
    stdin.flush().unwrap();
    line.clear();
    stdout.read_line(&mut line).unwrap();
    let taken: Value = serde_json::from_str(&line).unwrap();
    assert_eq!(taken["total"], 0, "{line}");

    drop(stdin);
    let status = child.wait().unwrap();
    assert!(status.success(), "{status}");
    assert!(!std::path::Path::new(&ca).exists(), "the CA file is left");
}
