//! Hostile and malformed input, as a table: every payload with the outcome
//! it must have. Nothing may panic (exit 101) or die of a signal, stdout is
//! either one reply object or empty, and stderr is one line when a request is
//! refused. Plus process hygiene: a closed stdout and SIGTERM.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use backend_tests::{Cmd, payload};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-dummy");

/// What a payload must lead to.
enum Want {
    /// Exit 1, nothing on stdout, this fragment in the one stderr line.
    Refused(&'static str),
    /// Exit 0 and a reply with exactly these handles, each `decrypted_` + handle.
    Answered(Vec<String>),
}

fn corpus() -> Vec<(String, Vec<u8>, Want)> {
    use Want::*;
    let mut c: Vec<(String, Vec<u8>, Want)> = Vec::new();
    let mut add = |name: &str, bytes: Vec<u8>, want: Want| c.push((name.to_owned(), bytes, want));
    let ok = |hs: &[&str]| Answered(hs.iter().map(|h| h.to_string()).collect());

    // Framing and encodings.
    add("empty", b"".to_vec(), Refused("empty input"));
    add("only newline", b"\n".to_vec(), Refused("empty input"));
    add("nul byte", b"\0".to_vec(), Refused("not a JSON request"));
    add(
        "utf-8 bom",
        b"\xef\xbb\xbf{\"version\":\"1.0\",\"secrets\":[]}".to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "utf-16 le",
        "{\"version\":\"1.0\"}"
            .encode_utf16()
            .flat_map(u16::to_le_bytes)
            .collect(),
        Refused("not a JSON request"),
    );
    add(
        "latin-1 handle",
        b"{\"version\":\"1.0\",\"secrets\":[\"caf\xe9\"]}".to_vec(),
        Refused("not valid UTF-8"),
    );
    add(
        "overlong utf-8",
        b"{\"version\":\"1.0\",\"secrets\":[\"\xc0\xaf\"]}".to_vec(),
        Refused("not valid UTF-8"),
    );
    add(
        "lone surrogate escape",
        br#"{"version":"1.0","secrets":["\ud800"]}"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "raw control char in string",
        b"{\"version\":\"1.0\",\"secrets\":[\"a\x01b\"]}".to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "single quotes",
        b"{'version':'1.0','secrets':[]}".to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "trailing comma",
        br#"{"version":"1.0","secrets":["a",]}"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "comment",
        br#"{"version":"1.0",/*x*/"secrets":[]}"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "two objects",
        br#"{"version":"1.0","secrets":[]}{}"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "object then garbage",
        br#"{"version":"1.0","secrets":["a"]} x"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "truncated",
        br#"{"version":"1.0","secrets":["a""#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "nan",
        br#"{"version":"1.0","secrets":[],"secret_backend_timeout":NaN}"#.to_vec(),
        Refused("not a JSON request"),
    );
    add(
        "deep arrays",
        format!(
            r#"{{"version":"1.0","secrets":[],"x":{}}}"#,
            "[".repeat(5000)
        )
        .into_bytes(),
        Refused("not a JSON request"),
    );
    // An unknown field is skipped without recursion, however deep; a known
    // one is parsed and stops at serde_json's recursion limit.
    add(
        "deep unknown field",
        format!(
            r#"{{"version":"1.0","secrets":["a"],"x":{}1{}}}"#,
            "{\"a\":".repeat(3000),
            "}".repeat(3000)
        )
        .into_bytes(),
        ok(&["a"]),
    );
    add(
        "deep config",
        format!(
            r#"{{"version":"1.0","secrets":["a"],"config":{}1{}}}"#,
            "{\"a\":".repeat(3000),
            "}".repeat(3000)
        )
        .into_bytes(),
        Refused("recursion limit"),
    );
    add(
        "huge number",
        format!(
            r#"{{"version":"1.0","secrets":["a"],"n":1{}}}"#,
            "0".repeat(5000)
        )
        .into_bytes(),
        ok(&["a"]),
    );

    // Shapes.
    for (name, body, frag) in [
        ("array", "[]", "not an object"),
        ("string", "\"1.0\"", "not an object"),
        ("null", "null", "not an object"),
        ("number", "1", "not an object"),
        ("no version", r#"{"secrets":["a"]}"#, "no 'version'"),
        (
            "version null",
            r#"{"version":null,"secrets":["a"]}"#,
            "no 'version'",
        ),
        (
            "version number",
            r#"{"version":1,"secrets":["a"]}"#,
            "'version' is not a string",
        ),
        (
            "version list",
            r#"{"version":["1.0"],"secrets":["a"]}"#,
            "'version' is not a string",
        ),
        (
            "version 2",
            r#"{"version":"2.0","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        (
            "version 0",
            r#"{"version":"0.1","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        (
            "version 11",
            r#"{"version":"11.0","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        (
            "version spaced",
            r#"{"version":" 1.0","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        (
            "version v1",
            r#"{"version":"v1","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        (
            "version empty",
            r#"{"version":"","secrets":["a"]}"#,
            "unsupported protocol version",
        ),
        ("no secrets", r#"{"version":"1.0"}"#, "no 'secrets' list"),
        (
            "secrets null",
            r#"{"version":"1.0","secrets":null}"#,
            "no 'secrets' list",
        ),
        (
            "secrets string",
            r#"{"version":"1.0","secrets":"a"}"#,
            "'secrets' is not a list",
        ),
        (
            "secrets object",
            r#"{"version":"1.0","secrets":{"a":"b"}}"#,
            "'secrets' is not a list",
        ),
        (
            "secrets number",
            r#"{"version":"1.0","secrets":3}"#,
            "'secrets' is not a list",
        ),
        (
            "secret number",
            r#"{"version":"1.0","secrets":[1]}"#,
            "item 0 is not a string",
        ),
        (
            "secret null",
            r#"{"version":"1.0","secrets":["a",null]}"#,
            "item 1 is not a string",
        ),
        (
            "secret bool",
            r#"{"version":"1.0","secrets":[true]}"#,
            "item 0 is not a string",
        ),
        (
            "secret list",
            r#"{"version":"1.0","secrets":[["a"]]}"#,
            "item 0 is not a string",
        ),
        (
            "secret object",
            r#"{"version":"1.0","secrets":[{"a":1}]}"#,
            "item 0 is not a string",
        ),
    ] {
        add(name, body.as_bytes().to_vec(), Refused(frag));
    }

    // Odd but valid: answered.
    add(
        "duplicate keys",
        br#"{"version":"2.0","version":"1.0","secrets":["a"]}"#.to_vec(),
        Refused("duplicate field `version`"),
    );
    add(
        "unknown fields",
        br#"{"version":"1.0","secrets":["a"],"secrets_v2":[1],"z":{}}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "timeout as string",
        br#"{"version":"1.1","secrets":["a"],"secret_backend_timeout":"30"}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "negative timeout",
        br#"{"version":"1.1","secrets":["a"],"secret_backend_timeout":-1}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "huge timeout",
        br#"{"version":"1.1","secrets":["a"],"secret_backend_timeout":1e308}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "timeout beyond f64",
        br#"{"version":"1.1","secrets":["a"],"secret_backend_timeout":1e400}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "negative timeout beyond f64",
        br#"{"secret_backend_timeout":-1e999,"secrets":["a"],"version":"1.1"}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "config number beyond f64",
        br#"{"version":"1.1","secrets":["a"],"config":{"n":1e400}}"#.to_vec(),
        Refused("number out of range"),
    );
    add(
        "type without config",
        br#"{"version":"1.1","secrets":["a"],"type":"file.json"}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "config not an object",
        br#"{"version":"1.1","secrets":["a"],"config":"x"}"#.to_vec(),
        ok(&["a"]),
    );
    add(
        "whitespace around",
        b" \n\t{\"version\":\"1.0\",\"secrets\":[\"a\"]}\r\n ".to_vec(),
        ok(&["a"]),
    );
    add(
        "escaped handle",
        br#"{"version":"1.0","secrets":["\u0000\n\"\\\/\u00e9\ud83d\ude00"]}"#.to_vec(),
        ok(&["\0\n\"\\/é😀"]),
    );
    for h in [
        "",
        " ",
        "]]]",
        "ENC[",
        "ENC[x]",
        "${HOME}",
        "$(id)",
        "`id`",
        "../../etc/passwd",
        "%2e%2e/%2e%2e",
        "/etc/shadow",
        "http://169.254.169.254/",
        "a?b#c",
        "a;b;c;",
        "\u{202e}rtl",
        "\u{feff}bom",
        "\r\n",
        "\t",
    ] {
        add(&format!("handle {h:?}"), payload(&[h]), ok(&[h]));
    }
    let many: Vec<String> = (0..2000).map(|i| format!("h{i}")).collect();
    let refs: Vec<&str> = many.iter().map(String::as_str).collect();
    add("2000 handles", payload(&refs), Answered(many.clone()));
    let long = "L".repeat(1024 * 1024);
    // Even its name alone does not fit in the 1 MiB output cap: the agent
    // would refuse any reply, so none is written.
    add(
        "1 MiB handle",
        payload(&[&long]),
        Refused("over the output limit"),
    );
    c
}

#[test]
fn corpus_has_the_expected_outcome() {
    let corpus = corpus();
    assert!(corpus.len() >= 50, "only {} cases", corpus.len());
    for (name, bytes, want) in corpus {
        let done = Cmd::new(BIN).stdin(bytes).run();
        match want {
            Want::Refused(frag) => {
                assert_eq!(done.code(), 1, "{name}: {done}");
                assert!(
                    done.stdout.is_empty(),
                    "{name}: stdout must be empty: {done}"
                );
                assert_eq!(done.stderr.lines().count(), 1, "{name}: one line: {done}");
                assert!(done.stderr.contains(frag), "{name}: want {frag:?}: {done}");
            }
            Want::Answered(handles) => {
                let reply = done.reply();
                assert_eq!(reply.len(), handles.len(), "{name}: {done}");
                for h in &handles {
                    let e = &reply[h];
                    assert_eq!(
                        e["value"],
                        Value::String(format!("decrypted_{h}")),
                        "{name}: {h:?} -> {e}"
                    );
                }
            }
        }
    }
}

#[test]
fn a_closed_stdout_ends_the_process_cleanly() {
    let (reader, writer) = std::io::pipe().unwrap();
    drop(reader);
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(writer)
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(&payload(&["a"]))
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("could not write the reply"), "{stderr}");
}

#[test]
fn a_closed_stderr_never_panics() {
    // Errors reported before logging exists (bad --log-level, --log-file)
    // and after it, with stderr a pipe whose reader is gone.
    for (args, input, code) in [
        (&["--log-level", "bogus=zz"][..], payload(&["a"]), 2),
        (&["--log-file", "/"][..], payload(&["a"]), 2),
        (&["--log-level", "trace"][..], payload(&["a"]), 0),
        (&[][..], b"x".to_vec(), 1),
        (&["--bogus"][..], payload(&["a"]), 2),
    ] {
        let (reader, writer) = std::io::pipe().unwrap();
        drop(reader);
        let mut child = Command::new(BIN)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(writer)
            .spawn()
            .unwrap();
        let mut stdin = child.stdin.take().unwrap();
        // The process may be gone before reading its request.
        let _ = stdin.write_all(&input);
        drop(stdin);
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}: {out:?}");
    }
}

#[test]
fn a_non_blocking_stdin_and_stdout_are_waited_for() {
    use std::io::Read;
    use std::os::unix::net::UnixStream;
    // Sockets with O_NONBLOCK, as an event loop hands them down: the
    // request comes late, the large reply is read slowly.
    let (mut to_child, child_in) = UnixStream::pair().unwrap();
    let (mut from_child, child_out) = UnixStream::pair().unwrap();
    child_in.set_nonblocking(true).unwrap();
    child_out.set_nonblocking(true).unwrap();
    let handles: Vec<String> = (0..10_000).map(|i| format!("handle-{i:05}")).collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let child = Command::new(BIN)
        .stdin(std::os::fd::OwnedFd::from(child_in))
        .stdout(std::os::fd::OwnedFd::from(child_out))
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(100));
    to_child.write_all(&payload(&refs)).unwrap();
    drop(to_child);
    std::thread::sleep(Duration::from_millis(100));
    let mut reply = Vec::new();
    from_child.read_to_end(&mut reply).unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let reply: Value = serde_json::from_slice(&reply).unwrap();
    assert_eq!(reply.as_object().unwrap().len(), 10_000);
    assert_eq!(reply["handle-09999"]["value"], "decrypted_handle-09999");
}

#[test]
fn sigterm_ends_a_waiting_process_promptly() {
    let mut child = Command::new(BIN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    // Stdin stays open: the backend is waiting for its request.
    std::thread::sleep(Duration::from_millis(200));
    let killed = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    let started = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.code().is_none_or(|c| c != 101), "{status}");
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "still running after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.stdout.is_empty());
}
