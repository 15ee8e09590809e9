//! `run` against the project's dummy backend and against deliberately
//! broken backends written as shell scripts: each failure mode must be
//! named in the agent's words, fail the right handles, and set the exit code.

use std::path::Path;
use std::time::Duration;

use backend_tests::files::{private_file, set_mode};
use backend_tests::{Cmd, Done, assert_no_leak};

use crate::common::{BIN, NO_HANG, check, dummy, fifo, has_line, out, script};

fn run(command: &Path, extra: &[&str]) -> Done {
    let mut args = vec!["run", "--command", command.to_str().unwrap()];
    args.extend_from_slice(extra);
    check(&args)
}

#[test]
fn dummy_backend_resolves_with_values_masked() {
    let d = tempfile::tempdir().unwrap();
    let b = dummy(d.path());
    let o = out(&run(&b, &["db/pw", "a<b&c>", "db/pw"]), 0);
    has_line(
        &o,
        r#"payload (1.0, 61 bytes): {"secrets":["db/pw","a\u003cb\u0026c\u003e"],"version":"1.0"}"#,
    );
    has_line(&o, "ok    ENC[db/pw] = ****** (15 chars)");
    has_line(&o, "ok    ENC[a<b&c>] = ****** (16 chars)");
    has_line(
        &o,
        "rights, StackState Agent V2, Datadog Agent < 7.55 (as root): ok",
    );
    has_line(&o, "rights, Datadog Agent >= 7.55 (as root): ok");
    has_line(&o, "verdict: the agent resolves every handle");
    assert_no_leak(
        "masked output",
        &o,
        &["decrypted_db/pw", "decrypted_a<b&c>"],
    );

    let o = out(
        &run(
            &b,
            &[
                "--show-values",
                "--payload-version",
                "1.1",
                "--timeout",
                "7",
                "x",
            ],
        ),
        0,
    );
    has_line(
        &o,
        r#"payload (1.1, 60 bytes): {"secret_backend_timeout":7,"secrets":["x"],"version":"1.1"}"#,
    );
    has_line(&o, r#"ok    ENC[x] = "decrypted_x""#);
    // A handle that looks like a flag goes after `--`.
    let o = out(&run(&b, &["--", "-dash"]), 0);
    has_line(&o, "ok    ENC[-dash] = ****** (15 chars)");
}

#[test]
fn payload_bytes_and_argv_reach_the_backend_as_sent() {
    let d = tempfile::tempdir().unwrap();
    let seen = d.path().join("stdin");
    let argv = d.path().join("argv");
    let b = script(
        d.path(),
        "recorder",
        &format!(
            "cat > '{}'\nprintf '%s\\n' \"$@\" > '{}'\necho '{{\"h\":{{\"value\":\"v\",\"error\":null}}}}'",
            seen.display(),
            argv.display()
        ),
    );
    let o = out(
        &run(
            &b,
            &[
                "--arg",
                "--config",
                "--arg",
                "two words",
                "--payload-version",
                "1.1",
                "--timeout",
                "9",
                "h",
            ],
        ),
        0,
    );
    has_line(&o, "arg: --config");
    assert_eq!(
        std::fs::read(&seen).unwrap(),
        br#"{"secret_backend_timeout":9,"secrets":["h"],"version":"1.1"}"#
    );
    assert_eq!(
        std::fs::read_to_string(&argv).unwrap(),
        "--config\ntwo words\n"
    );
}

/// Each broken backend, the line the report must hold, and the handles'
/// fates ("ok" or "FAIL").
#[test]
fn broken_backends_fail_in_the_agents_words() {
    let d = tempfile::tempdir().unwrap();
    let cases: &[(&str, &str, &str, &[&str])] = &[
        (
            "wrong_exit",
            r#"echo '{"a":{"value":"x","error":null},"b":{"value":"y","error":null}}'; echo oops >&2; exit 3"#,
            "WHOLE CALL FAILS: error while running '{B}': exit status 3",
            &[
                "FAIL  ENC[a]: the whole call failed",
                "FAIL  ENC[b]: the whole call failed",
            ],
        ),
        (
            "missing_handle",
            r#"echo '{"a":{"value":"x","error":null}}'"#,
            "FAIL  ENC[b]: secret handle 'b' was not decrypted by the secret_backend_command",
            &["ok    ENC[a] = ****** (1 chars)"],
        ),
        (
            "error_set",
            r#"echo '{"a":{"value":"x","error":null},"b":{"value":null,"error":"secret/b: not found"}}'"#,
            "FAIL  ENC[b]: an error occurred while decrypting 'b': secret/b: not found",
            &["ok    ENC[a] = ****** (1 chars)"],
        ),
        (
            "empty_value",
            r#"echo '{"a":{"value":""},"b":{"value":null,"error":null}}'"#,
            "FAIL  ENC[a]: decrypted secret for 'a' is empty",
            &["FAIL  ENC[b]: decrypted secret for 'b' is empty"],
        ),
        (
            "not_json",
            "echo 'password=hunter2'",
            "WHOLE CALL FAILS: could not unmarshal 'secret_backend_command' output: not valid JSON: expected value (line 1, column 1)",
            &["FAIL  ENC[a]: the whole call failed"],
        ),
        (
            "array",
            "echo '[1]'",
            "WHOLE CALL FAILS: could not unmarshal 'secret_backend_command' output: not the expected shape: invalid type: sequence, expected a JSON object of {\"value\":...,\"error\":...} entries (line 1, column 1)",
            &["FAIL  ENC[b]: the whole call failed"],
        ),
        (
            "silent",
            "cat >/dev/null",
            "WHOLE CALL FAILS: could not unmarshal 'secret_backend_command' output: unexpected end of JSON input (stdout is empty)",
            &[],
        ),
        (
            "too_much_output",
            r#"head -c 2000000 /dev/zero | tr '\0' x"#,
            "WHOLE CALL FAILS: error while running '{B}': command output was too long: exceeded 1048576 bytes",
            &["(stdout passed secret_backend_output_max_size (1048576 bytes))"],
        ),
        (
            "too_much_stderr",
            r#"head -c 2000000 /dev/zero | tr '\0' x >&2; echo '{"a":{"value":"x"},"b":{"value":"y"}}'"#,
            "WHOLE CALL FAILS: error while running '{B}': command output was too long: exceeded 1048576 bytes",
            &["(stderr passed secret_backend_output_max_size (1048576 bytes))"],
        ),
        (
            "killed",
            "kill -9 $$",
            "WHOLE CALL FAILS: error while running '{B}': signal: killed",
            &[],
        ),
    ];
    for (name, body, line, others) in cases {
        let b = script(d.path(), name, body);
        let shown = b.display().to_string();
        let done = run(&b, &["a", "b"]);
        let o = out(&done, 1);
        has_line(&o, &line.replace("{B}", &shown));
        for l in *others {
            has_line(&o, l);
        }
        assert!(
            o.lines()
                .any(|l| l.starts_with("verdict: ") && l.contains("fail")),
            "{name}: {o}"
        );
        assert_no_leak(name, &o, &["hunter2"]);
    }
}

#[test]
fn a_slow_backend_is_killed_at_the_deadline() {
    let d = tempfile::tempdir().unwrap();
    // The sleep is a grandchild that keeps stdout open: it must not keep
    // the tool waiting either.
    let b = script(d.path(), "slow", "sleep 60\necho '{}'");
    let done = Cmd::new(BIN)
        .args([
            "run",
            "--command",
            b.to_str().unwrap(),
            "--timeout",
            "1",
            "a",
        ])
        .kill_after(Duration::from_secs(30))
        .run();
    let o = out(&done, 1);
    has_line(
        &o,
        &format!(
            "WHOLE CALL FAILS: error while running '{}': command timeout",
            b.display()
        ),
    );
    has_line(&o, "FAIL  ENC[a]: the whole call failed");
    assert!(o.contains("killed at the deadline (1 s)"), "{o}");
    assert!(
        done.elapsed < Duration::from_secs(10),
        "took {:?}",
        done.elapsed
    );
}

#[test]
fn a_process_left_holding_stdout_is_a_timeout() {
    let d = tempfile::tempdir().unwrap();
    // Exits at once with a good reply, but leaves a sleeper holding stdout:
    // the agent waits for the end of stdout, so this is its timeout too.
    let b = script(
        d.path(),
        "leaves_child",
        r#"sleep 60 &
echo '{"a":{"value":"x","error":null}}'"#,
    );
    let done = Cmd::new(BIN)
        .args([
            "run",
            "--command",
            b.to_str().unwrap(),
            "--timeout",
            "2",
            "a",
        ])
        .kill_after(Duration::from_secs(30))
        .run();
    let o = out(&done, 1);
    has_line(
        &o,
        &format!(
            "WHOLE CALL FAILS: error while running '{}': command timeout",
            b.display()
        ),
    );
    has_line(
        &o,
        "(the backend exited but a process it left behind kept stdout open past the deadline)",
    );
    assert!(
        done.elapsed < Duration::from_secs(10),
        "took {:?}",
        done.elapsed
    );
}

#[test]
fn the_output_cap_is_the_agents_setting() {
    let d = tempfile::tempdir().unwrap();
    let b = script(
        d.path(),
        "twenty",
        r#"printf '{"a":{"value":"0123456789"}}'"#,
    );
    // 28 bytes: fine under 28, too long under 27.
    out(&run(&b, &["--output-max-size", "28", "a"]), 0);
    let o = out(&run(&b, &["--output-max-size", "27", "a"]), 1);
    has_line(
        &o,
        &format!(
            "WHOLE CALL FAILS: error while running '{}': command output was too long: exceeded 27 bytes",
            b.display()
        ),
    );
}

#[test]
fn wrong_rights_fail_even_when_the_reply_is_good() {
    let d = tempfile::tempdir().unwrap();
    let b = script(
        d.path(),
        "loose",
        r#"echo '{"a":{"value":"x","error":null}}'"#,
    );
    set_mode(&b, 0o755);
    let o = out(&run(&b, &["a"]), 1);
    let msg = format!(
        "agent says: invalid executable '{}', 'group' or 'others' have rights on it",
        b.display()
    );
    assert_eq!(o.lines().filter(|l| l.trim() == msg).count(), 2, "{o}");
    has_line(&o, "ok    ENC[a] = ****** (1 chars)");
    has_line(
        &o,
        "verdict: the executable's rights are refused (see above); in the reply, the agent resolves every handle",
    );
    // Not executable at all: the start fails, as the agent's exec would.
    set_mode(&b, 0o600);
    let o = out(&run(&b, &["a"]), 1);
    has_line(
        &o,
        &format!(
            "WHOLE CALL FAILS: error while running '{0}': fork/exec {0}: permission denied",
            b.display()
        ),
    );
    let missing = d.path().join("missing");
    let o = out(&run(&missing, &["a"]), 1);
    has_line(
        &o,
        &format!(
            "WHOLE CALL FAILS: error while running '{0}': fork/exec {0}: no such file or directory",
            missing.display()
        ),
    );
}

#[test]
fn values_on_stderr_are_flagged_and_masked() {
    let d = tempfile::tempdir().unwrap();
    let b = script(
        d.path(),
        "chatty",
        r#"echo 'fetched s3cr3t-value-123' >&2; printf '%s\n' '{"a":{"value":"s3cr3t-value-123\n","error":null}}'"#,
    );
    let o = out(&run(&b, &["a"]), 0);
    assert_no_leak("masked output", &o, &["s3cr3t-value-123"]);
    has_line(&o, "| fetched ******");
    has_line(
        &o,
        "WARNING: stderr holds the value of 'a': it would reach the agent's log",
    );
    assert!(o.contains("the value ends with a line break"), "{o}");
}

/// Every value the backend wrote is masked wherever it shows up again:
/// in another handle's error (the agent logs errors), in stderr when the
/// call failed (the agent logs stderr at ERROR then), and whatever the
/// entry's verdict (a value beside an error, an entry nobody asked for).
#[test]
fn values_are_masked_wherever_they_show_up_again() {
    let d = tempfile::tempdir().unwrap();
    let reply = r#"{"a":{"value":"s3cr3t-value-123","error":null},"b":{"value":null,"error":"differs from s3cr3t-value-123"},"c":{"value":"hidden-beside-an-error-9","error":"bad"},"x":{"value":"unasked-value-777"}}"#;
    let echo = "echo 'got s3cr3t-value-123 hidden-beside-an-error-9 unasked-value-777' >&2";
    let ok = script(
        d.path(),
        "echoing",
        &format!("{echo}; printf '%s' '{reply}'"),
    );
    let o = out(&run(&ok, &["a", "b", "c"]), 1);
    let values = [
        "s3cr3t-value-123",
        "hidden-beside-an-error-9",
        "unasked-value-777",
    ];
    assert_no_leak("masked output", &o, &values);
    has_line(
        &o,
        "WARNING: the error of 'b' holds the value of 'a': it would reach the agent's log",
    );
    let failing = script(
        d.path(),
        "failing",
        &format!("{echo}; printf '%s' '{reply}'; exit 3"),
    );
    let o = out(&run(&failing, &["a", "b", "c"]), 1);
    assert_no_leak("masked output of a failed call", &o, &values);
    has_line(
        &o,
        "WARNING: stderr holds the value of 'a': it would reach the agent's log",
    );
}

#[test]
fn from_config_files_names_the_files_the_agent_drops() {
    let d = tempfile::tempdir().unwrap();
    let confd = d.path().join("conf.d");
    private_file(&confd, "good.yaml", "instances:\n  - password: ENC[ok1]\n");
    private_file(
        &confd,
        "bad.d/conf.yaml",
        "instances:\n  - password: ENC[ok2]\n    token: ENC[missing]\n",
    );
    private_file(
        &confd,
        "ignored.yaml",
        "instances:\n  - {}\nad_identifiers:\n  - ENC[never]\n",
    );
    // Answers every handle but `missing`, and records what it was asked.
    let asked = d.path().join("asked");
    let b = script(
        d.path(),
        "partial",
        &format!(
            "cat > '{}'\necho '{{\"ok1\":{{\"value\":\"1\"}},\"ok2\":{{\"value\":\"2\"}}}}'",
            asked.display()
        ),
    );
    let o = out(&run(&b, &["--from", confd.to_str().unwrap()]), 1);
    assert_eq!(
        std::fs::read_to_string(&asked).unwrap(),
        r#"{"secrets":["ok2","missing","ok1"],"version":"1.0"}"#
    );
    has_line(
        &o,
        &format!("ok       {}", confd.join("good.yaml").display()),
    );
    has_line(
        &o,
        &format!(
            "DROPPED  {}: older agents (StackState V2, Datadog until late 2025) drop the whole file; the newest keep it without ENC[missing]",
            confd.join("bad.d/conf.yaml").display()
        ),
    );
    has_line(&o, "verdict: 1 of 3 handle(s) fail");

    // The dummy resolves them all.
    let dummy = dummy(d.path());
    let o = out(&run(&dummy, &["--from", confd.to_str().unwrap()]), 0);
    has_line(
        &o,
        &format!("ok       {}", confd.join("bad.d/conf.yaml").display()),
    );

    // No handles to ask for is a usage error, as are handles and --from together.
    let empty = d.path().join("empty");
    private_file(&empty, "x.yaml", "instances:\n  - {}\n");
    run(&dummy, &["--from", empty.to_str().unwrap()]).expect_code(2);
    run(&dummy, &["--from", empty.to_str().unwrap(), "h"]).expect_code(2);
    run(&dummy, &[]).expect_code(2);
}

#[test]
fn a_fifo_named_in_from_is_refused_at_once() {
    let d = tempfile::tempdir().unwrap();
    let pipe = fifo(d.path(), "conf.yaml");
    let b = dummy(d.path());
    let done = Cmd::new(BIN)
        .args([
            "run",
            "--command",
            b.to_str().unwrap(),
            "--from",
            pipe.to_str().unwrap(),
        ])
        .kill_after(NO_HANG)
        .run();
    done.expect_code(2);
    assert!(
        done.stderr.contains(&format!(
            "no handles that the agent resolves in the given paths (see `scan`); not loaded: {}: not a regular file (a FIFO, socket or device)",
            pipe.display()
        )),
        "{done}"
    );
}

#[test]
fn version_and_help() {
    let o = out(&check(["--version"]), 0);
    assert!(
        o.trim().starts_with(&format!(
            "secret-backend-check {} (git ",
            env!("CARGO_PKG_VERSION")
        )),
        "{o}"
    );
    for args in [
        &["--help"][..],
        &["run", "--help"],
        &["rights", "--help"],
        &["scan", "--help"],
    ] {
        let o = out(&check(args), 0);
        assert!(o.contains("Exit codes:"), "{args:?}: {o}");
    }
    check(["nonsense"]).expect_code(2);
}

/// An error that stops the check, reported on a stderr nobody reads any
/// more, still exits with its own code, not a panic's 101.
#[test]
fn a_closed_stderr_never_panics() {
    use std::process::{Command, Stdio};
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let out = Command::new(BIN)
        .args(["run", "--agent-config", "/nonexistent/agent.yaml"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(writer)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(101), "{out:?}");
    assert!(out.status.code().is_some(), "{out:?}");
}
