//! The core's promises through a real binary, whatever the caller or the
//! host does: an answer (or one clear line) before the deadline, however
//! stdin behaves or the store blocks; no file an operator names is waited
//! on or followed through a link; a reply never grows past the output cap.
//! The dummy is the smallest provider, so what fails here fails in the core.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use backend_tests::{Cmd, files, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-dummy");

/// Well past every deadline below: a run that needs it has hung.
const HANG: Duration = Duration::from_secs(20);

fn mkfifo(path: &Path) {
    let ok = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap()
        .success();
    assert!(ok, "mkfifo {}", path.display());
}

#[test]
fn a_complete_request_is_answered_with_stdin_left_open() {
    for input in [
        payload(&["a", "b"]),
        b" {\"version\":\"1.0\",\"secrets\":[\"}\"]}\n".to_vec(),
    ] {
        let done = Cmd::new(BIN)
            .args(["--timeout", "30"])
            .stdin(input)
            .keep_stdin_open()
            .kill_after(HANG)
            .run();
        done.expect_code(0);
        assert!(done.stdout_str().contains("decrypted_"), "{done}");
    }
}

#[test]
fn an_incomplete_request_at_the_deadline_is_refused_in_time() {
    // Nothing at all, part of a request, and a request trickled far slower
    // than the deadline allows (it would take 12 s to arrive).
    let trickled = Cmd::new(BIN)
        .args(["--timeout", "2"])
        .stdin(payload(&["slow-handle-0123456789"]))
        .chunked(1, Duration::from_millis(200));
    let cases = [
        Cmd::new(BIN).args(["--timeout", "1"]).keep_stdin_open(),
        Cmd::new(BIN)
            .args(["--timeout", "1"])
            .stdin(&b"{\"version\":\"1.0\",\"secr"[..])
            .keep_stdin_open(),
        trickled,
    ];
    for cmd in cases {
        let done = cmd.kill_after(HANG).run();
        done.expect_code(1);
        assert!(done.stdout.is_empty(), "{done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
        assert!(
            done.stderr
                .contains("no complete request on stdin before the deadline"),
            "{done}"
        );
        assert!(done.elapsed < Duration::from_secs(8), "{done}");
    }
}

#[test]
fn a_store_that_blocks_still_gets_every_handle_answered_at_the_deadline() {
    let done = Cmd::new(BIN)
        .args(["--stall", "60", "--timeout", "1"])
        .stdin(payload(&["a", "b", "a"]))
        .kill_after(HANG)
        .run();
    done.expect_code(0);
    assert_eq!(done.error("a"), "timed out after 1s");
    assert_eq!(done.error("b"), "timed out after 1s");
    assert_eq!(done.reply().len(), 2);
    // The request's own timeout counts the same way.
    let done = Cmd::new(BIN)
        .args(["--stall", "60"])
        .stdin(backend_tests::go_payload(
            "1.1",
            &["x"],
            &[("secret_backend_timeout", serde_json::json!(1))],
        ))
        .kill_after(HANG)
        .run();
    done.expect_code(0);
    assert_eq!(done.error("x"), "timed out after 1s");
}

#[test]
fn special_files_named_by_the_operator_are_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let fifo = d.path().join("fifo");
    mkfifo(&fifo);
    let fifo = fifo.to_str().unwrap();
    for args in [
        vec!["--config", fifo],
        vec!["--log-file", fifo],
        vec!["--config", "/dev/zero"],
        vec!["--config", "/dev/tty"],
    ] {
        let done = Cmd::new(BIN)
            .args(&args)
            .stdin(payload(&["a"]))
            .kill_after(HANG)
            .run();
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(
            done.stderr.contains("not a regular file") || done.stderr.contains("/dev/tty"),
            "{done}"
        );
    }
}

#[test]
fn the_log_file_is_never_a_planted_link_nor_loose() {
    let d = tempfile::tempdir().unwrap();
    let target = d.path().join("victim");
    std::fs::write(&target, "untouched").unwrap();
    let link = d.path().join("backend.log");
    std::os::unix::fs::symlink(&target, &link).unwrap();
    let done = Cmd::new(BIN)
        .args(["--log-file", link.to_str().unwrap(), "--log-level", "debug"])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("symbolic link"), "{done}");
    assert_eq!(std::fs::read_to_string(&target).unwrap(), "untouched");
    // An existing log file others can write is refused; a private one is used.
    let log = d.path().join("loose.log");
    files::write_with_mode(&log, "", 0o666);
    let done = Cmd::new(BIN)
        .args(["--log-file", log.to_str().unwrap()])
        .stdin(payload(&["a"]))
        .run();
    done.expect_code(2);
    assert!(
        done.stderr.contains("writable by group or others"),
        "{done}"
    );
    files::set_mode(&log, 0o600);
    Cmd::new(BIN)
        .args(["--log-file", log.to_str().unwrap()])
        .stdin(payload(&["a"]))
        .run()
        .expect_code(0);
}

#[test]
fn log_lines_cannot_be_forged_by_a_handle() {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("b.log");
    let done = Cmd::new(BIN)
        .args(["--log-file", log.to_str().unwrap(), "--log-level", "trace"])
        .args(["--max-output-bytes", "200"])
        .stdin(payload(&[&format!("x\nERROR forged {}", "y".repeat(300))]))
        .run();
    let file = std::fs::read_to_string(&log).unwrap();
    for text in [done.stderr.as_str(), file.as_str()] {
        assert!(
            !text.lines().any(|l| l.starts_with("ERROR forged")),
            "{text}"
        );
    }
}

#[test]
fn the_output_cap_only_ever_shrinks_the_reply() {
    // 30,000 small values: leaving any out would make the reply larger, so
    // it cannot fit: nothing is written and one line says why.
    let handles: Vec<String> = (0..30_000).map(|i| format!("h{i:05}")).collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = Cmd::new(BIN)
        .args(["--max-output-bytes", "100000000"])
        .stdin(payload(&refs))
        .run();
    done.expect_code(0);
    assert!(done.stdout.len() > 1 << 20, "{}", done.stdout.len());
    // The default cap is the agent's 1 MiB.
    let done = Cmd::new(BIN).stdin(payload(&refs)).run();
    done.expect_code(1);
    assert!(done.stdout.is_empty(), "{done}");
    assert_eq!(done.stderr.lines().count(), 1, "{done}");
    assert!(done.stderr.contains("over the output limit"), "{done}");
    // Large values: enough are left out to fit, the rest kept.
    // (The dummy's value repeats its handle: 300 handles of 3,000 bytes make
    // a 1.8 MB reply, 0.9 MB of it handles.)
    let big: Vec<String> = (0..300)
        .map(|i| format!("{i:04}{}", "v".repeat(3_000)))
        .collect();
    let refs: Vec<&str> = big.iter().map(String::as_str).collect();
    let done = Cmd::new(BIN).stdin(payload(&refs)).run();
    done.expect_code(0);
    assert!(done.stdout.len() <= 1 << 20, "{}", done.stdout.len());
    let reply = done.reply();
    assert_eq!(reply.len(), 300);
    let kept = reply.values().filter(|e| e["value"].is_string()).count();
    assert!(kept > 0 && kept < 300, "{kept}");
}
