//! Shared by the end-to-end tests: the binary under test, the project's
//! dummy backend, and small scripts and FIFOs in a temp dir (files with
//! exact modes are [`backend_tests::files`]).

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use backend_tests::files::{file_with_mode, set_mode};
use backend_tests::{Cmd, Done};

/// The binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-check");

/// Runs `secret-backend-check ARGS`.
pub fn check<I: IntoIterator<Item = S>, S: AsRef<str>>(args: I) -> Done {
    Cmd::new(BIN).args(args).run()
}

/// A `#!/bin/sh` backend with mode 0700.
pub fn script(dir: &Path, name: &str, body: &str) -> PathBuf {
    file_with_mode(dir, name, &format!("#!/bin/sh\n{body}\n"), 0o700)
}

/// The project's dummy backend, copied into `dir` with mode 0700 (the
/// build's own copy is 0755, which the agent refuses).
///
/// It is found next to this crate's binary, where `cargo test --workspace`
/// builds it; under `cargo test -p backend-check` it is built there once,
/// with the same cargo, target dir and profile.
pub fn dummy(dir: &Path) -> PathBuf {
    static BUILT: OnceLock<PathBuf> = OnceLock::new();
    let built = BUILT.get_or_init(|| {
        let bin_dir = Path::new(BIN).parent().expect("binary directory");
        let found = bin_dir.join("secret-backend-dummy");
        if found.is_file() {
            return found;
        }
        let target = bin_dir.parent().expect("target directory");
        let profile = match bin_dir.file_name().and_then(|n| n.to_str()) {
            Some("debug") | None => "dev".to_owned(),
            Some(other) => other.to_owned(),
        };
        let out = Command::new(env!("CARGO"))
            .args(["build", "-p", "backend-dummy", "--profile", &profile, "--target-dir"])
            .arg(target)
            .current_dir(env!("CARGO_MANIFEST_DIR"))
            .output()
            .unwrap_or_else(|e| panic!("cannot run cargo to build backend-dummy: {e}"));
        assert!(
            out.status.success() && found.is_file(),
            "secret-backend-dummy is not next to {BIN} and building it failed; run `cargo build -p backend-dummy` with the same CARGO_TARGET_DIR first:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        found
    });
    let copy = dir.join("secret-backend-dummy");
    std::fs::copy(built, &copy).unwrap();
    set_mode(&copy, 0o700);
    copy
}

/// stdout of a run, asserting its exit code.
pub fn out(done: &Done, code: i32) -> String {
    done.expect_code(code);
    done.stdout_str().to_owned()
}

/// Asserts that `haystack` has a line equal to `line` (after trimming).
pub fn has_line(haystack: &str, line: &str) {
    assert!(
        haystack.lines().any(|l| l.trim() == line.trim()),
        "no line {line:?} in:\n{haystack}"
    );
}

/// Makes a FIFO at `dir/name` (parents created). Opened for reading the
/// plain way, it waits for a writer forever: a reader that does so hangs.
pub fn fifo(dir: &Path, name: &str) -> PathBuf {
    let p = dir.join(name);
    if let Some(parent) = p.parent() {
        std::fs::create_dir_all(parent).unwrap();
    }
    let status = Command::new("mkfifo").arg(&p).status().unwrap();
    assert!(status.success(), "mkfifo {}", p.display());
    p
}

/// A bound that only proves "does not hang": a read that waited on a FIFO
/// would run into it (and the run is killed there, failing the test).
pub const NO_HANG: std::time::Duration = std::time::Duration::from_secs(30);
