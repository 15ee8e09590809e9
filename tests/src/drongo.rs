//! A real GCP Secret Manager emulator, drongo, for the gcp backend's tests.
//!
//! [`Drongo::start`] runs `drongo server` (from `$DRONGO`, else `PATH`) on a
//! free port of 127.0.0.1, waits until it answers, and kills it on drop. A
//! missing binary fails the test (never a skip): install it with
//! `pip install drongo==0.8.0` (tests/run-all.sh does).
//!
//! drongo serves the v1 REST API (secrets, versions, `:access`, `:disable`,
//! `:destroy`), checks no credentials, and sends no `dataCrc32c`; it has no
//! version aliases and no regional (`locations/`) secrets. What it lacks
//! comes from the fakes of [`crate::gcp_auth`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine as _;
use serde_json::{Value, json};

/// A running drongo server, killed on drop.
#[derive(Debug)]
pub struct Drongo {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drongo {
    /// Starts drongo on a free port and waits until it answers.
    pub fn start() -> Self {
        let bin = std::env::var("DRONGO").unwrap_or_else(|_| "drongo".into());
        let dir = tempfile::tempdir().expect("temp dir for drongo");
        let log = std::fs::File::create(dir.path().join("drongo.log")).expect("drongo log file");
        let port = crate::free_port();
        let child = Command::new(&bin)
            .args(["server", "--host", "127.0.0.1", "--port", &port.to_string()])
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start the GCP Secret Manager emulator '{bin}': {e}. Install it with \
                     `pip install drongo==0.8.0` (or set DRONGO) and run tests/run-all.sh"
                )
            });
        let mut d = Self {
            child,
            port,
            _dir: dir,
        };
        d.wait_ready();
        d
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("drongo exited early ({status}); is the port taken?");
            }
            if self
                .request("GET", "/v1/projects/ready-check/secrets", None)
                .is_some()
            {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("drongo did not answer on port {} within 30 s", self.port);
    }

    /// `http://127.0.0.1:<port>`, the `endpoint:` of a config.
    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Sends a request; the status and JSON body, or `None` when the
    /// server did not answer.
    pub fn request(&self, method: &str, path: &str, body: Option<&Value>) -> Option<(u16, Value)> {
        let body = body.map(Value::to_string).unwrap_or_default();
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        let status = out.get(9..12)?.parse().ok()?;
        let (_, text) = out.split_once("\r\n\r\n")?;
        Some((status, serde_json::from_str(text).unwrap_or(Value::Null)))
    }

    fn ok(&self, method: &str, path: &str, body: Option<&Value>) -> Value {
        match self.request(method, path, body) {
            Some((200, v)) => v,
            other => panic!("drongo {method} {path}: {other:?}"),
        }
    }

    /// Creates secret `project/secret` (automatic replication).
    pub fn create_secret(&self, project: &str, secret: &str) {
        self.ok(
            "POST",
            &format!("/v1/projects/{project}/secrets?secretId={secret}"),
            Some(&json!({"replication": {"automatic": {}}})),
        );
    }

    /// Adds a version holding `data`; returns its number.
    pub fn add_version(&self, project: &str, secret: &str, data: &[u8]) -> String {
        let encoded = base64::engine::general_purpose::STANDARD.encode(data);
        let v = self.ok(
            "POST",
            &format!("/v1/projects/{project}/secrets/{secret}:addVersion"),
            Some(&json!({"payload": {"data": encoded}})),
        );
        v["name"]
            .as_str()
            .and_then(|n| n.rsplit('/').next())
            .expect("a version name")
            .to_owned()
    }

    /// Creates `project/secret` with one version holding `data`.
    pub fn put(&self, project: &str, secret: &str, data: &[u8]) {
        self.create_secret(project, secret);
        self.add_version(project, secret, data);
    }

    /// Disables a version.
    pub fn disable(&self, project: &str, secret: &str, version: &str) {
        self.ok(
            "POST",
            &format!("/v1/projects/{project}/secrets/{secret}/versions/{version}:disable"),
            Some(&json!({})),
        );
    }

    /// Destroys a version.
    pub fn destroy(&self, project: &str, secret: &str, version: &str) {
        self.ok(
            "POST",
            &format!("/v1/projects/{project}/secrets/{secret}/versions/{version}:destroy"),
            Some(&json!({})),
        );
    }
}

impl Drop for Drongo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
