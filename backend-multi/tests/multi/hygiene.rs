//! Process hygiene beyond the dummy (whose suite covers a closed stdout
//! and SIGTERM while waiting for stdin): SIGTERM while a vault call hangs
//! ends the process promptly, and no process the backend might start
//! outlives its reply, for every store type.
//!
//! Each run gets its own process group (`process_group(0)`), which its
//! children inherit; after the backend exits, `/proc` must hold no process
//! of that group.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backend_tests::fault::{Fault, FaultProxy, moto_call};
use backend_tests::files::write_private;
use backend_tests::go_payload;
use backend_tests::moto::{self, Moto};
use backend_tests::multi::MultiConfig;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

/// The backend with `config`, in its own process group, the payload sent.
fn spawn(config: &Path, handles: &[&str], timeout: u64) -> std::process::Child {
    let mut child = Command::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env_remove("HTTP_PROXY")
        .env_remove("HTTPS_PROXY")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .process_group(0)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let payload = go_payload(
        "1.1",
        handles,
        &[("secret_backend_timeout", json!(timeout))],
    );
    child.stdin.take().unwrap().write_all(&payload).unwrap();
    child
}

/// Processes whose process group is `pgid`, from /proc.
fn group_members(pgid: u32) -> Vec<String> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after ')'.
        let Some((_, rest)) = stat.rsplit_once(')') else {
            continue;
        };
        let fields: Vec<&str> = rest.split_whitespace().collect();
        if fields.get(2) == Some(&pgid.to_string().as_str()) {
            found.push(stat);
        }
    }
    found
}

/// Waits for `child` (at most 30 s) and returns its stdout.
fn finish(mut child: std::process::Child) -> (std::process::ExitStatus, String) {
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if started.elapsed() > Duration::from_secs(30) {
            let _ = child.kill();
            panic!("still running after 30 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let mut out = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut out)
        .unwrap();
    (status, out)
}

#[test]
fn no_process_outlives_the_reply_for_any_store() {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("pw"), "file-value");
    let bao = OpenBao::start();
    bao.api_ok("POST", "secret/data/h", Some(json!({"data": {"k": "v"}})));
    let m = Moto::start();
    moto_call(
        &m,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "h", "SecretString": "aws-value"}),
    );
    let token = dir.path().join("token");
    write_private(&token, ROOT_TOKEN);
    let config = MultiConfig::new()
        .files("files", &secrets)
        .dummy("test")
        .vault("vault", &bao.addr, &token)
        .aws("aws", moto::REGION, &m.endpoint())
        .write(dir.path(), "multi.yaml");
    for (handle, value) in [
        ("files:pw", "file-value"),
        ("test:x", "decrypted_x"),
        ("vault:secret/h;k", "v"),
        ("aws:h", "aws-value"),
    ] {
        let child = spawn(&config, &[handle], 20);
        let pid = child.id();
        let (status, out) = finish(child);
        assert_eq!(status.code(), Some(0), "{handle}");
        let reply: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(reply[handle]["value"], value, "{handle}: {out}");
        let left = group_members(pid);
        assert!(left.is_empty(), "{handle}: left behind: {left:?}");
    }
}

#[test]
fn sigterm_during_a_hanging_vault_call_ends_the_process() {
    let hang = FaultProxy::always(Fault::Hang);
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_private(&token, ROOT_TOKEN);
    let config = MultiConfig::new()
        .vault("vault", &hang.url(), &token)
        .write(dir.path(), "multi.yaml");
    let child = spawn(&config, &["vault:secret/h;k"], 60);
    let pid = child.id();
    let started = Instant::now();
    while hang.faulted() == 0 {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "never reached the server"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let killed = Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let (status, out) = finish(child);
    // Well before the 60 s deadline: SIGTERM is not waited out.
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "{:?}",
        started.elapsed()
    );
    assert!(status.code().is_none_or(|c| c != 101), "{status}");
    assert!(out.is_empty(), "no reply after SIGTERM: {out}");
    assert!(group_members(pid).is_empty());
}

/// A request whose own timeout is already over when it has been read (a
/// millisecond): whoever wins, the watchdog or the runner, the outcome is
/// a reply or one line that says so, never the claim that no complete
/// request arrived (the watchdog said so while the provider was built).
#[test]
fn a_deadline_past_once_the_request_is_read_is_not_blamed_on_stdin() {
    let request = br#"{"config":{"file_path":"/etc/hostname"},"secret_backend_timeout":0.001,"secrets":["a"],"type":"file.json","version":"1.1"}"#;
    for _ in 0..60 {
        let out = Command::new(BIN)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .and_then(|mut child| {
                child.stdin.take().unwrap().write_all(request)?;
                child.wait_with_output()
            })
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!stderr.contains("no complete request"), "{stderr}");
        match out.status.code() {
            Some(0) => {
                let reply: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
                assert_eq!(reply.as_object().unwrap().len(), 1, "{reply}");
            }
            Some(1) => {
                assert!(out.stdout.is_empty());
                assert!(stderr.contains("after the request was read"), "{stderr}");
            }
            other => panic!("{other:?}: {stderr}"),
        }
    }
}
