//! A real moto server for the aws backend's tests.
//!
//! [`Moto::start`] runs `moto_server` (from `$MOTO_SERVER`, else `PATH`) on a
//! free port of 127.0.0.1 with request recording on, waits until it
//! answers, and kills it on drop. A missing binary fails the test (never a
//! skip): install it with `pip install 'moto[server]==5.2.5'`.
//!
//! Recording (moto's own request log, one JSON object per request with its
//! headers) lets tests count API calls: [`Moto::calls`] gives the
//! `X-Amz-Target` of every request since the last [`Moto::reset_calls`].

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// Static credentials the tests use (moto accepts any).
pub const ACCESS_KEY_ID: &str = "AKIAMOTOTESTKEY00000";
/// The secret half of the test credentials.
pub const SECRET_ACCESS_KEY: &str = "moto-test-secret-access-key";
/// The region the tests use.
pub const REGION: &str = "us-east-1";

/// A running moto server, killed on drop.
#[derive(Debug)]
pub struct Moto {
    child: Child,
    port: u16,
    recording: PathBuf,
    _dir: tempfile::TempDir,
}

impl Moto {
    /// Starts a moto server on a free port and waits until it answers.
    pub fn start() -> Self {
        Self::start_with(&[])
    }

    /// Starts a moto server with extra environment, e.g.
    /// `INITIAL_NO_AUTH_ACTION_COUNT` to turn IAM checks on after that many
    /// requests.
    pub fn start_with(env: &[(&str, &str)]) -> Self {
        let bin = std::env::var("MOTO_SERVER").unwrap_or_else(|_| "moto_server".into());
        let dir = tempfile::tempdir().expect("temp dir for moto");
        let recording = dir.path().join("recording.jsonl");
        let log = std::fs::File::create(dir.path().join("moto.log")).expect("moto log file");
        let port = crate::free_port();
        let child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", &port.to_string()])
            .env("MOTO_ENABLE_RECORDING", "true")
            .env("MOTO_RECORDER_FILEPATH", &recording)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log handle"))
            .stderr(log)
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot start moto server '{bin}': {e}. Install it with \
                     `pip install 'moto[server]==5.2.5'` (or set MOTO_SERVER) and run the \
                     test command in backend-aws/README.md"
                )
            });
        let mut moto = Self {
            child,
            port,
            recording,
            _dir: dir,
        };
        moto.wait_ready();
        moto
    }

    fn wait_ready(&mut self) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!("moto server exited early ({status}); is the port taken?");
            }
            if self.get("/moto-api/data.json").is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "moto server did not answer on port {} within 30 s",
            self.port
        );
    }

    /// A plain HTTP GET to the server (for moto's own API).
    fn get(&self, path: &str) -> Option<String> {
        self.request("GET", path)
    }

    fn request(&self, method: &str, path: &str) -> Option<String> {
        self.raw(method, path, "", "")
    }

    fn raw(&self, method: &str, path: &str, headers: &str, body: &str) -> Option<String> {
        let mut s = TcpStream::connect(("127.0.0.1", self.port)).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(10))).ok()?;
        write!(
            s,
            "{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{headers}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        )
        .ok()?;
        let mut out = String::new();
        s.read_to_string(&mut out).ok()?;
        out.starts_with("HTTP/1.1 200").then_some(out)
    }

    /// An unsigned call of a query-protocol service (IAM, STS), for seeding
    /// what the SDKs in the tests do not cover; returns the XML reply.
    /// Panics when moto does not answer 200.
    pub fn query(&self, service: &str, params: &[(&str, &str)]) -> String {
        let body: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", encode(k), encode(v)))
            .collect();
        let headers = format!(
            "Content-Type: application/x-www-form-urlencoded\r\nAuthorization: AWS4-HMAC-SHA256 \
             Credential={ACCESS_KEY_ID}/20260101/{REGION}/{service}/aws4_request, \
             SignedHeaders=host, Signature=0\r\n"
        );
        self.raw("POST", "/", &headers, &body.join("&"))
            .unwrap_or_else(|| panic!("moto {service} {params:?} failed"))
    }

    /// The server's port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// `http://127.0.0.1:<port>`, for `AWS_ENDPOINT_URL` or `endpoint_url`.
    pub fn endpoint(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// Environment for a backend run against this server: endpoint, static
    /// credentials, region, metadata service off.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        vec![
            ("AWS_ENDPOINT_URL", self.endpoint()),
            ("AWS_ACCESS_KEY_ID", ACCESS_KEY_ID.into()),
            ("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY.into()),
            ("AWS_REGION", REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
    }

    /// Forgets the requests recorded so far.
    pub fn reset_calls(&self) {
        std::fs::write(&self.recording, "").expect("reset moto's recording");
    }

    /// The `X-Amz-Target` (e.g. `secretsmanager.BatchGetSecretValue`) of
    /// every request recorded since the last reset, in order.
    pub fn calls(&self) -> Vec<String> {
        let text = std::fs::read_to_string(&self.recording).unwrap_or_default();
        text.lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|entry| {
                entry["headers"]
                    .as_object()
                    .and_then(|h| {
                        h.iter()
                            .find(|(k, _)| k.eq_ignore_ascii_case("x-amz-target"))
                            .and_then(|(_, v)| v.as_str())
                    })
                    .unwrap_or("(no target)")
                    .to_owned()
            })
            .collect()
    }

    /// How many recorded calls have this target.
    pub fn count(&self, target: &str) -> usize {
        self.calls().iter().filter(|c| *c == target).count()
    }
}

/// `application/x-www-form-urlencoded` escaping.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The text of the first `<tag>...</tag>` in an XML reply.
pub fn xml_field<'a>(xml: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&format!("</{tag}>"))?;
    Some(&xml[start..start + len])
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
