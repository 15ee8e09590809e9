//! The `fake-azure` executable's lifecycle, as `bench/bench.py` drives it:
//! the JSON line, the CA file, `take`, the exit when stdin closes.
//!
//! Being an integration test of this package, it also makes `cargo test
//! --workspace` build `target/debug/fake-azure`, which CI's `bench/run.sh
//! --smoke --bin-dir target/debug` runs right after.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

mod spawn;

use spawn::Fake;

#[test]
fn serves_until_stdin_closes() {
    let (mut fake, ready) = Fake::start(
        env!("CARGO_BIN_EXE_fake-azure"),
        &["--secrets", "3", "--keys", "2"],
    );
    let url = ready["vault_url"].as_str().unwrap();
    assert!(url.starts_with("https://127.0.0.1:"), "{url}");
    assert_eq!(ready["authority_host"], ready["vault_url"]);
    assert_eq!(ready["secrets"], 3);
    assert_eq!(ready["keys"], 2);
    for field in ["tenant", "client_id", "client_secret"] {
        assert!(
            ready[field].as_str().is_some_and(|s| !s.is_empty()),
            "{field}: {ready}"
        );
    }
    let ca = ready["ca_file"].as_str().unwrap().to_owned();
    assert!(
        std::fs::read_to_string(&ca)
            .unwrap()
            .contains("BEGIN CERTIFICATE")
    );
    let taken = fake.take();
    assert_eq!(taken["total"], 0, "{taken}");
    fake.finish();
    assert!(!std::path::Path::new(&ca).exists(), "the CA file is left");
}
