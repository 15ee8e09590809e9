//! Running a backend binary as the agent does: argv without a shell, the
//! payload written to stdin from its own thread and closed, stdout and
//! stderr captured, and a kill if it runs too long (so a test never hangs).

use std::io::{Read, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A request as the Go agent writes it: keys sorted, compact, `<`, `>` and
/// `&` escaped as `\u003c`..., U+2028 and U+2029 escaped, no trailing
/// newline.
pub fn go_payload(version: &str, handles: &[&str], extra: &[(&str, Value)]) -> Vec<u8> {
    let mut obj = serde_json::Map::new();
    obj.insert("version".into(), version.into());
    obj.insert(
        "secrets".into(),
        handles.iter().map(|h| Value::from(*h)).collect(),
    );
    for (k, v) in extra {
        obj.insert((*k).into(), v.clone());
    }
    // serde_json's Map is sorted by key (no preserve_order feature here).
    let text = Value::Object(obj).to_string();
    text.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
        .replace('\u{2028}', "\\u2028")
        .replace('\u{2029}', "\\u2029")
        .into_bytes()
}

/// `{"secrets":[...],"version":"1.0"}` as the agent writes it.
pub fn payload(handles: &[&str]) -> Vec<u8> {
    go_payload("1.0", handles, &[])
}

/// A command to run.
#[derive(Debug, Clone)]
pub struct Cmd {
    bin: String,
    args: Vec<String>,
    env: Vec<(String, Option<String>)>,
    stdin: Vec<u8>,
    chunks: Option<(usize, Duration)>,
    keep_open: bool,
    limit: Duration,
}

/// A finished run.
#[derive(Debug)]
pub struct Done {
    /// How the process ended.
    pub status: ExitStatus,
    /// Everything on stdout.
    pub stdout: Vec<u8>,
    /// Everything on stderr, lossily decoded.
    pub stderr: String,
    /// Wall time from spawn to exit.
    pub elapsed: Duration,
    desc: String,
}

impl Cmd {
    /// Runs `bin` (a path, typically `env!("CARGO_BIN_EXE_...")`).
    pub fn new(bin: &str) -> Self {
        Self {
            bin: bin.into(),
            args: Vec::new(),
            env: Vec::new(),
            stdin: Vec::new(),
            chunks: None,
            keep_open: false,
            limit: Duration::from_secs(60),
        }
    }

    /// Adds arguments.
    pub fn args<I: IntoIterator<Item = S>, S: AsRef<str>>(mut self, args: I) -> Self {
        self.args
            .extend(args.into_iter().map(|a| a.as_ref().to_owned()));
        self
    }

    /// Sets an environment variable.
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), Some(v.into())));
        self
    }

    /// Removes an environment variable.
    pub fn env_remove(mut self, k: &str) -> Self {
        self.env.push((k.into(), None));
        self
    }

    /// The bytes written to stdin before it is closed.
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Self {
        self.stdin = bytes.into();
        self
    }

    /// Writes stdin in chunks of `size` bytes with `pause` between them.
    pub fn chunked(mut self, size: usize, pause: Duration) -> Self {
        self.chunks = Some((size.max(1), pause));
        self
    }

    /// Leaves stdin open after writing it (closed only once the process
    /// has exited), as a caller that never closes its end would.
    pub fn keep_stdin_open(mut self) -> Self {
        self.keep_open = true;
        self
    }

    /// Kills the process after `limit` (default 60 s) so a test cannot hang.
    pub fn kill_after(mut self, limit: Duration) -> Self {
        self.limit = limit;
        self
    }

    /// Runs the command to completion.
    pub fn run(&self) -> Done {
        let desc = format!("{} {:?} <<< {}", self.bin, self.args, preview(&self.stdin));
        let mut cmd = Command::new(&self.bin);
        cmd.args(&self.args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        // Tests see the backend's own defaults unless they set these.
        cmd.env_remove("SECRET_BACKEND_LOG").env_remove("RUST_LOG");
        for (k, v) in &self.env {
            match v {
                Some(v) => cmd.env(k, v),
                None => cmd.env_remove(k),
            };
        }
        let started = Instant::now();
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {desc}: {e}"));
        let mut stdin = child.stdin.take().expect("stdin");
        let input = self.stdin.clone();
        let chunks = self.chunks;
        let keep_open = self.keep_open;
        let writer = std::thread::spawn(move || {
            // The backend may refuse early and close stdin: ignore EPIPE.
            match chunks {
                None => {
                    let _ = stdin.write_all(&input);
                }
                Some((size, pause)) => {
                    for c in input.chunks(size) {
                        if stdin.write_all(c).and_then(|()| stdin.flush()).is_err() {
                            break;
                        }
                        std::thread::sleep(pause);
                    }
                }
            }
            // Handed back to be dropped after the process ends.
            keep_open.then_some(stdin)
        });
        let mut out = child.stdout.take().expect("stdout");
        let mut err = child.stderr.take().expect("stderr");
        let out_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = out.read_to_end(&mut b);
            b
        });
        let err_t = std::thread::spawn(move || {
            let mut b = Vec::new();
            let _ = err.read_to_end(&mut b);
            b
        });
        let status = loop {
            if let Some(s) = child.try_wait().expect("wait") {
                break s;
            }
            if started.elapsed() > self.limit {
                let _ = child.kill();
                let s = child.wait().expect("wait");
                panic!("{desc} still running after {:?}; killed ({s})", self.limit);
            }
            std::thread::sleep(Duration::from_millis(2));
        };
        let elapsed = started.elapsed();
        let _ = writer.join();
        let stdout = out_t.join().unwrap_or_default();
        let stderr = String::from_utf8_lossy(&err_t.join().unwrap_or_default()).into_owned();
        Done {
            status,
            stdout,
            stderr,
            elapsed,
            desc,
        }
    }
}

fn preview(b: &[u8]) -> String {
    let s = String::from_utf8_lossy(b);
    if s.len() > 300 {
        format!(
            "{}... ({} bytes)",
            &s[..s.floor_char_boundary(300)],
            b.len()
        )
    } else {
        s.into_owned()
    }
}

impl Done {
    /// The exit code; fails the test if the process died of a signal or
    /// panicked (101).
    pub fn code(&self) -> i32 {
        let code = self
            .status
            .code()
            .unwrap_or_else(|| panic!("killed by a signal: {self}"));
        assert_ne!(code, 101, "panicked: {self}");
        code
    }

    /// Asserts the exit code.
    pub fn expect_code(&self, want: i32) -> &Self {
        assert_eq!(self.code(), want, "exit code: {self}");
        self
    }

    /// stdout as UTF-8.
    pub fn stdout_str(&self) -> &str {
        std::str::from_utf8(&self.stdout).unwrap_or_else(|_| panic!("stdout is not UTF-8: {self}"))
    }

    /// stdout as a JSON object, after checking exit 0 (a written reply).
    pub fn reply(&self) -> serde_json::Map<String, Value> {
        self.expect_code(0);
        match serde_json::from_slice(&self.stdout) {
            Ok(Value::Object(m)) => m,
            _ => panic!("stdout is not a JSON object: {self}"),
        }
    }

    /// The value of `handle` in the reply; fails if it has an error.
    pub fn value(&self, handle: &str) -> String {
        let r = self.reply();
        let e = r
            .get(handle)
            .unwrap_or_else(|| panic!("{handle:?} missing from the reply: {self}"));
        assert_eq!(e["error"], Value::Null, "{handle:?} failed: {self}");
        e["value"]
            .as_str()
            .unwrap_or_else(|| panic!("{handle:?} has no string value: {self}"))
            .to_owned()
    }

    /// The error of `handle` in the reply; fails if it has a value.
    pub fn error(&self, handle: &str) -> String {
        let r = self.reply();
        let e = r
            .get(handle)
            .unwrap_or_else(|| panic!("{handle:?} missing from the reply: {self}"));
        assert_eq!(e["value"], Value::Null, "{handle:?} should fail: {self}");
        e["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{handle:?} has no error: {self}"))
            .to_owned()
    }
}

impl std::fmt::Display for Done {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "\n  command: {}\n  status: {}\n  elapsed: {:?}\n  stdout: {}\n  stderr: {}",
            self.desc,
            self.status,
            self.elapsed,
            preview(&self.stdout),
            self.stderr
        )
    }
}
