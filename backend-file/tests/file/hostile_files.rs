//! Files planted by someone hostile, through the real binary: an alias
//! bomb in a YAML secret or document, FIFOs and devices where a secret, the
//! document or the config should be, a `;key` carrying a newline into the
//! logs. Each ends quickly with a per-handle error (or exit 2 for the
//! config), never a hang or a gigabyte of memory.

#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::time::Duration;

use backend_tests::{Cmd, payload, yaml_bomb};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-file");

/// Well past the deadlines below: a run that needs it has hung.
const HANG: Duration = Duration::from_secs(30);

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[test]
fn an_alias_bomb_is_refused_by_the_expanded_size() {
    let d = tempfile::tempdir().unwrap();
    let bomb = yaml_bomb("", 4);
    std::fs::write(d.path().join("bomb.yaml"), &bomb).unwrap();
    let root = d.path().to_str().unwrap();
    // As a document of directory mode, by key and by pointer.
    let done = Cmd::new(BIN)
        .args(["--dir", root, "--timeout", "5"])
        .stdin(payload(&["bomb.yaml;a0", "bomb.yaml;/top/0/0"]))
        .kill_after(HANG)
        .run();
    done.expect_code(0);
    for h in ["bomb.yaml;a0", "bomb.yaml;/top/0/0"] {
        let e = done.error(h);
        assert!(e.contains("over the parser's limits"), "{h}: {e}");
    }
    // As the document of document mode.
    let doc = d.path().join("bomb.yaml");
    let done = Cmd::new(BIN)
        .args(["--document", doc.to_str().unwrap(), "--timeout", "5"])
        .stdin(payload(&["/top", "a0"]))
        .kill_after(HANG)
        .run();
    done.expect_code(0);
    assert!(
        done.error("/top").contains("over the parser's limits"),
        "{done}"
    );
    // As the config file.
    let conf = d.path().join("config.yaml");
    std::fs::write(&conf, yaml_bomb("", 3)).unwrap();
    let done = Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["x"]))
        .kill_after(HANG)
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("over the parser's limits"), "{done}");
}

#[test]
fn special_files_are_per_handle_errors_and_config_errors_at_once() {
    let d = tempfile::tempdir().unwrap();
    mkfifo(&d.path().join("fifo"));
    mkfifo(&d.path().join("fifo.yaml"));
    std::os::unix::fs::symlink("/dev/zero", d.path().join("zero")).unwrap();
    let root = d.path().to_str().unwrap();
    let done = Cmd::new(BIN)
        .args(["--dir", root, "--timeout", "5"])
        .stdin(payload(&["fifo", "fifo.yaml;key", "zero"]))
        .kill_after(HANG)
        .run();
    done.expect_code(0);
    for h in ["fifo", "fifo.yaml;key"] {
        assert!(done.error(h).contains("not a regular file"), "{h}: {done}");
    }
    // A link out of the root is refused before its target is looked at.
    assert!(!done.error("zero").is_empty(), "{done}");
    let fifo = d.path().join("fifo");
    for args in [
        vec!["--document", fifo.to_str().unwrap()],
        vec!["--config", fifo.to_str().unwrap()],
    ] {
        let done = Cmd::new(BIN)
            .args(&args)
            .args(["--timeout", "5"])
            .stdin(payload(&["k"]))
            .kill_after(HANG)
            .run();
        assert!(done.elapsed < HANG, "{done}");
        let text = format!("{}{}", done.stderr, done.stdout_str());
        assert!(text.contains("not a regular file"), "{done}");
    }
}

#[test]
fn a_key_cannot_forge_log_lines() {
    let d = tempfile::tempdir().unwrap();
    std::fs::write(d.path().join("doc.json"), r#"{"a":"1"}"#).unwrap();
    let log = d.path().join("log");
    let root = d.path().to_str().unwrap();
    let handles = [
        "doc.json;x\nERROR forged by a key",
        "doc.json;/x\r\nERROR forged by a pointer",
        "missing\nERROR forged by a name",
        "doc.json;\u{1b}[2Jclear",
    ];
    let done = Cmd::new(BIN)
        .args(["--dir", root, "--log-level", "debug"])
        .args(["--log-file", log.to_str().unwrap()])
        .stdin(payload(&handles))
        .run();
    done.expect_code(0);
    let file = std::fs::read_to_string(&log).unwrap();
    for text in [done.stderr.as_str(), file.as_str()] {
        assert!(
            !text.lines().any(|l| l.starts_with("ERROR forged")),
            "{text}"
        );
        assert!(!text.contains('\u{1b}'), "{text}");
    }
    for h in handles {
        let e = done.error(h);
        assert!(
            !e.contains('\n') && !e.contains('\r') && !e.contains('\u{1b}'),
            "{e:?}"
        );
    }
}
