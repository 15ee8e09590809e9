//! The `fake-google` executable's lifecycle, as `bench/bench.py` drives it:
//! the JSON line, the key file, a refused request counted by `take`, the
//! exit when stdin closes. Needs drongo (`$DRONGO`, else `PATH`; the test
//! fails without it, as the gcp backend's tests do; tests/run-all.sh
//! installs it).
//!
//! Being an integration test of this package, it also makes `cargo test
//! --workspace` build `target/debug/fake-google`, which CI's `bench/run.sh
//! --smoke --bin-dir target/debug` runs right after.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use serde_json::Value;

#[path = "../fake-azure/spawn.rs"]
mod spawn;

use spawn::Fake;

/// One plain HTTP GET; the status line.
fn get(base: &str, path: &str) -> String {
    let host = base.trim_start_matches("http://");
    let mut s = TcpStream::connect(host).unwrap();
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut out = String::new();
    s.read_to_string(&mut out).unwrap();
    out.lines().next().unwrap_or_default().to_owned()
}

#[test]
fn serves_until_stdin_closes() {
    let (mut fake, ready) = Fake::start(
        env!("CARGO_BIN_EXE_fake-google"),
        &["--secrets", "3", "--keys", "2"],
    );
    let endpoint = ready["endpoint"].as_str().unwrap().to_owned();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    assert_eq!(ready["project"], "bench");
    assert_eq!(ready["secrets"], 3);
    assert_eq!(
        ready["token_uri"].as_str().unwrap(),
        format!("{endpoint}/token")
    );
    let creds = ready["credentials_file"].as_str().unwrap().to_owned();
    let key: Value = serde_json::from_str(&std::fs::read_to_string(&creds).unwrap()).unwrap();
    assert_eq!(key["type"], "service_account");
    assert_eq!(key["token_uri"], ready["token_uri"]);
    let mode = std::fs::metadata(&creds).unwrap().permissions().mode();
    assert_eq!(mode & 0o077, 0, "key file mode {mode:o}");

    // drongo holds the seeded secret; the front wants a token.
    let access = "/v1/projects/bench/secrets/app2/versions/latest:access";
    let drongo = ready["drongo"].as_str().unwrap();
    assert!(get(drongo, access).contains(" 200"), "drongo");
    assert!(get(&endpoint, access).contains(" 401"), "the front");

    let taken = fake.take();
    assert_eq!(taken["total"], 1, "{taken}");
    assert_eq!(taken["counts"]["refused GET access"], 1, "{taken}");
    fake.finish();
    assert!(
        !std::path::Path::new(&creds).exists(),
        "the key file is left"
    );
}
