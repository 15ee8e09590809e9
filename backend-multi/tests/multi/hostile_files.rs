//! `secret-backend` given hostile files as its config: an alias bomb, a
//! FIFO, a device. Each is a config error (exit 2) at once.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use backend_tests::{Cmd, payload, yaml_bomb};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

#[test]
fn hostile_config_files_are_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let bomb = d.path().join("bomb.yaml");
    std::fs::write(&bomb, yaml_bomb("default: d\n", 4)).unwrap();
    let fifo = d.path().join("fifo.yaml");
    let ok = std::process::Command::new("mkfifo")
        .arg(&fifo)
        .status()
        .unwrap()
        .success();
    assert!(ok);
    for (path, why) in [
        (bomb.to_str().unwrap(), "over the parser's limits"),
        (fifo.to_str().unwrap(), "not a regular file"),
        ("/dev/zero", "not a regular file"),
    ] {
        let done = Cmd::new(BIN)
            .args(["--config", path])
            .stdin(payload(&["d:x"]))
            .kill_after(Duration::from_secs(30))
            .run();
        done.expect_code(2);
        assert!(done.stderr.contains(why), "{path}: {done}");
    }
}
