//! Running the backend as the agent does: argv without a shell, the
//! payload written to stdin and closed, stdout and stderr read into buffers
//! capped at the agent's `secret_backend_output_max_size`, and a SIGKILL at
//! the deadline.
//!
//! Where the agent's way would hang this tool it differs, on purpose: the
//! backend runs in its own process group and the whole group is killed at
//! the deadline, so a forgotten grandchild holding stdout open cannot keep
//! the tool waiting (the agent, which kills only its child, can wait on such
//! a pipe until the grandchild exits). When a stream goes over the cap the
//! tool stops reading it, as the agent's buffer refuses further writes.

use std::io::{Read, Write};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// The agent's default `secret_backend_output_max_size`.
pub const DEFAULT_MAX_OUTPUT: usize = 1024 * 1024;

/// One captured stream. stdout holds the values: its `Debug` shows only
/// sizes, and its bytes are zeroized on drop.
#[derive(Default)]
pub struct Stream {
    /// The bytes read, at most the cap.
    pub bytes: Vec<u8>,
    /// More than the cap arrived.
    pub over_cap: bool,
    /// Reading it had not finished when the tool stopped waiting.
    pub unfinished: bool,
}

impl std::fmt::Debug for Stream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Stream")
            .field("len", &self.bytes.len())
            .field("over_cap", &self.over_cap)
            .field("unfinished", &self.unfinished)
            .finish()
    }
}

impl Drop for Stream {
    fn drop(&mut self) {
        zeroize::Zeroize::zeroize(&mut self.bytes);
    }
}

/// How the process ended.
#[derive(Debug)]
pub enum Ending {
    /// It could not be started.
    SpawnFailed(std::io::Error),
    /// It exited (or died of a signal) before the deadline.
    Exited(ExitStatus),
    /// It was killed at the deadline.
    TimedOut,
}

/// Everything one run produced.
#[derive(Debug)]
pub struct Outcome {
    /// How it ended.
    pub ending: Ending,
    /// stdout.
    pub stdout: Stream,
    /// stderr.
    pub stderr: Stream,
    /// From spawn to the end.
    pub elapsed: Duration,
}

/// Runs `command args...`, writes `payload`, closes stdin and waits at most
/// `timeout`.
pub fn run(
    command: &Path,
    args: &[String],
    payload: &[u8],
    timeout: Duration,
    cap: usize,
) -> Outcome {
    let start = Instant::now();
    let deadline = start + timeout;
    let mut cmd = Command::new(command);
    cmd.args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => {
            return Outcome {
                ending: Ending::SpawnFailed(e),
                stdout: Stream::default(),
                stderr: Stream::default(),
                elapsed: start.elapsed(),
            };
        }
    };
    if let Some(mut stdin) = child.stdin.take() {
        let input = payload.to_vec();
        // A backend may exit without reading stdin: a broken pipe is its
        // business, and the thread ends with the pipe.
        thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let stdout_rx = child.stdout.take().map(|s| reader(s, cap));
    let stderr_rx = child.stderr.take().map(|s| reader(s, cap));
    let ending = wait(&mut child, deadline);
    // After a kill the streams close with the group; after an exit a
    // grandchild may still hold them: read until the deadline at most.
    let grace = deadline.max(Instant::now() + Duration::from_millis(200));
    let stdout = collect(stdout_rx, grace, &child);
    let stderr = collect(stderr_rx, grace, &child);
    Outcome {
        ending,
        stdout,
        stderr,
        elapsed: start.elapsed(),
    }
}

fn reader(mut src: impl Read + Send + 'static, cap: usize) -> mpsc::Receiver<Stream> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut s = Stream::default();
        let mut buf = [0u8; 64 * 1024];
        loop {
            match src.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => {
                    // The agent's limitBuffer refuses a write that would pass
                    // the cap, and the call fails.
                    if s.bytes.len() + n > cap {
                        s.over_cap = true;
                        break;
                    }
                    s.bytes.extend_from_slice(&buf[..n]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break,
            }
        }
        zeroize::Zeroize::zeroize(&mut buf[..]);
        let _ = tx.send(s);
    });
    rx
}

fn wait(child: &mut Child, deadline: Instant) -> Ending {
    loop {
        match child.try_wait() {
            Ok(Some(status)) => return Ending::Exited(status),
            Ok(None) => {}
            Err(_) => break,
        }
        if Instant::now() >= deadline {
            break;
        }
        thread::sleep(Duration::from_millis(5));
    }
    kill_group(child);
    let _ = child.wait();
    Ending::TimedOut
}

fn kill_group(child: &mut Child) {
    if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    let _ = child.kill();
}

fn collect(rx: Option<mpsc::Receiver<Stream>>, until: Instant, child: &Child) -> Stream {
    let Some(rx) = rx else {
        return Stream::default();
    };
    let left = until.saturating_duration_since(Instant::now());
    match rx.recv_timeout(left) {
        Ok(s) => s,
        Err(_) => {
            // A grandchild holds the pipe open past the deadline: kill the
            // group so the reader ends.
            if let Some(pid) = rustix::process::Pid::from_raw(child.id() as i32) {
                let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
            }
            // Whatever arrives now came too late for the agent.
            let mut s = rx
                .recv_timeout(Duration::from_millis(500))
                .unwrap_or_default();
            s.unfinished = true;
            s
        }
    }
}
