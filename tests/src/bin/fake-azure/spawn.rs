//! A fake-server executable driven as `bench/bench.py` drives it, for the
//! lifecycle tests of `fake-azure` and `fake-google` (which include this
//! file).

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::Value;

/// A running fake; [`Fake::finish`] closes its stdin.
pub struct Fake {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Fake {
    /// Starts `bin` with `args`: the fake, and its first line (what it
    /// serves).
    pub fn start(bin: &str, args: &[&str]) -> (Self, Value) {
        let mut child = Command::new(bin)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        let mut fake = Self {
            child,
            stdin,
            stdout,
        };
        let line = fake.line();
        let ready = serde_json::from_str(&line)
            .unwrap_or_else(|e| panic!("{bin}'s first line {line:?}: {e} (see its stderr)"));
        (fake, ready)
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        line
    }

    /// `take`: the requests seen since the last one.
    pub fn take(&mut self) -> Value {
        writeln!(self.stdin, "take").unwrap();
        self.stdin.flush().unwrap();
        let line = self.line();
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("take: {line:?}: {e}"))
    }

    /// Closes stdin: the fake must exit 0.
    pub fn finish(self) {
        let Self {
            mut child, stdin, ..
        } = self;
        drop(stdin);
        let status = child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}
