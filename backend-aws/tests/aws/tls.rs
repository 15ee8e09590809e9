//! The TLS stack (rustls with ring, `backend-net`, used by `src/api.rs`): the system's CA store
//! is read only when a request needs TLS, and when it is read, it is what
//! the server's certificate is checked against. (A CA nobody vouches for is
//! refused: `fault_matrix.rs`, `tls_with_an_unknown_ca_fails_closed`.)
//!
//! `SSL_CERT_FILE` (which the root loading honours instead of the system
//! store) names either a regular file holding the CA of the test's choice,
//! or a FIFO fed by a thread of the test: opening a FIFO blocks until the
//! other end opens it too, so the thread would see any time the binary
//! opened it. A FIFO there is refused by a `stat` before any open (a FIFO
//! would hold the handshake), so the thread must see no open at all, for
//! http:// (the roots are never loaded) and for https:// (they are loaded,
//! and the FIFO refused unopened).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::fs::OpenOptions;
use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use backend_tests::moto::{self, Moto};
use backend_tests::openbao::OpenBao;
use backend_tests::{Cmd, Done};

use crate::common::{self, Seed, bare, cmd, run};

/// A CA file that counts its readers.
struct CaFifo {
    path: PathBuf,
    reads: Arc<AtomicUsize>,
    done: Arc<AtomicBool>,
    feeder: Option<JoinHandle<()>>,
    _dir: tempfile::TempDir,
}

impl CaFifo {
    /// A FIFO that gives `pem` to each reader.
    fn new(pem: Vec<u8>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("roots.pem");
        common::mkfifo(&path);
        let reads = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let feeder = {
            let (path, reads, done) = (path.clone(), reads.clone(), done.clone());
            std::thread::spawn(move || {
                while !done.load(Ordering::SeqCst) {
                    // Blocks until a reader opens the other end.
                    let end = OpenOptions::new().write(true).open(&path);
                    if done.load(Ordering::SeqCst) {
                        break;
                    }
                    reads.fetch_add(1, Ordering::SeqCst);
                    if let Ok(mut end) = end {
                        let _ = end.write_all(&pem);
                    }
                    wait_for_no_reader(&path);
                }
            })
        };
        Self {
            path,
            reads,
            done,
            feeder: Some(feeder),
            _dir: dir,
        }
    }

    fn reads(&self) -> usize {
        self.reads.load(Ordering::SeqCst)
    }
}

/// Waits until the reader has closed its end: until then, opening the
/// write end again would not block, and would count that reader twice.
fn wait_for_no_reader(path: &std::path::Path) {
    use std::os::unix::fs::OpenOptionsExt;
    // Opening for writing without blocking fails (ENXIO) when no reader is
    // there, and succeeds while one still is.
    while OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
        .is_ok()
    {
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

impl Drop for CaFifo {
    fn drop(&mut self) {
        use std::os::unix::fs::OpenOptionsExt;
        self.done.store(true, Ordering::SeqCst);
        let Some(feeder) = self.feeder.take() else {
            return;
        };
        // Wherever the feeder is (blocked opening its end, or waiting for a
        // reader to leave), a reader that comes and goes lets it reach its
        // check of `done`. Opening without blocking never waits for it.
        while !feeder.is_finished() {
            let _ = OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&self.path);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        let _ = feeder.join();
    }
}

/// The binary with the TLS server `bao` as its AWS endpoint, the test
/// credentials, and no roots directory of the environment's.
fn against(bao: &OpenBao, home: &std::path::Path) -> Cmd {
    bare(home)
        .env("AWS_ENDPOINT_URL", &bao.addr)
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env_remove("SSL_CERT_DIR")
        .args(["--timeout", "10"])
}

/// The handshake passed: the handle failed on what answered (OpenBao is no
/// AWS service), not on the certificate.
fn assert_handshake_passed(done: &Done) {
    let e = done.error("tls/x");
    assert!(
        e.starts_with("tls/x: ") && e.contains("HTTP") && !e.contains("certificate"),
        "{e}\n{done}"
    );
}

#[test]
fn an_http_endpoint_never_reads_the_ca_store() {
    let m = Moto::start();
    let seed = Seed::new(&m);
    seed.secret("tls/plain", r#"{"k":"v-plain"}"#);
    seed.parameter("/tls/plain", "p-plain", "SecureString");
    // Any content: it must not be asked for. (The https test below shows
    // the same kind of FIFO is read when roots are needed, so 0 here is not
    // just `SSL_CERT_FILE` being ignored.)
    let roots = CaFifo::new(b"not read".to_vec());
    let home = tempfile::tempdir().unwrap();
    let c = cmd(&m, home.path())
        .env("SSL_CERT_FILE", roots.path.to_str().unwrap())
        .env_remove("SSL_CERT_DIR");
    let done = run(&c, &["tls/plain;k", "ssm:/tls/plain"]);
    assert_eq!(done.value("tls/plain;k"), "v-plain");
    assert_eq!(done.value("ssm:/tls/plain"), "p-plain");
    assert_eq!(roots.reads(), 0, "the CA store was read for http://");
}

#[test]
fn an_https_endpoint_is_checked_against_the_ca_store() {
    let bao = OpenBao::start_tls();
    let ca = std::fs::read(bao.ca_cert.as_ref().unwrap()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("roots.pem");
    std::fs::write(&file, &ca).unwrap();
    let home = tempfile::tempdir().unwrap();
    let c = against(&bao, home.path());
    let done = run(
        &c.clone().env("SSL_CERT_FILE", file.to_str().unwrap()),
        &["tls/x"],
    );
    // The handshake passed (OpenBao's CA was the root); what answered is
    // no AWS service, so the handle still fails, on the HTTP answer.
    assert_handshake_passed(&done);
    // The same CA behind a FIFO: refused at once, never opened.
    let roots = CaFifo::new(ca);
    let done = run(
        &c.env("SSL_CERT_FILE", roots.path.to_str().unwrap()),
        &["tls/x"],
    );
    let e = done.error("tls/x");
    assert!(e.contains("not a regular file"), "{e}\n{done}");
    assert_eq!(roots.reads(), 0, "the FIFO was opened");
}

/// An HTTP proxy that tunnels `CONNECT` to where it is asked, and records
/// each `CONNECT` target.
struct ConnectProxy {
    port: u16,
    targets: Arc<Mutex<Vec<String>>>,
}

impl ConnectProxy {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let targets = Arc::new(Mutex::new(Vec::new()));
        let seen = targets.clone();
        std::thread::spawn(move || {
            for client in listener.incoming().flatten() {
                let seen = seen.clone();
                std::thread::spawn(move || tunnel(client, &seen));
            }
        });
        Self { port, targets }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().clone()
    }
}

/// Reads a `CONNECT host:port` head, connects, answers 200 and copies both
/// ways until either side closes.
fn tunnel(mut client: TcpStream, seen: &Mutex<Vec<String>>) {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 8192 {
        match client.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let Some(target) = head
        .strip_prefix("CONNECT ")
        .and_then(|rest| rest.split(' ').next())
    else {
        return;
    };
    seen.lock().unwrap().push(target.to_owned());
    let Ok(mut server) = TcpStream::connect(target) else {
        return;
    };
    let _ = client.write_all(b"HTTP/1.1 200 Connection established\r\n\r\n");
    let (mut up_from, mut up_to) = (client.try_clone().unwrap(), server.try_clone().unwrap());
    std::thread::spawn(move || {
        let _ = std::io::copy(&mut up_from, &mut up_to);
        let _ = up_to.shutdown(std::net::Shutdown::Write);
    });
    let _ = std::io::copy(&mut server, &mut client);
    let _ = client.shutdown(std::net::Shutdown::Write);
}

#[test]
fn an_https_endpoint_behind_a_proxy_is_verified_too() {
    // Through a proxy, the TLS handshake runs inside the CONNECT tunnel
    // (another code path of the HTTP client than a direct connection).
    let bao = OpenBao::start_tls();
    let proxy = ConnectProxy::start();
    let home = tempfile::tempdir().unwrap();
    let c = against(&bao, home.path()).env("HTTPS_PROXY", &proxy.url());
    let port = bao.addr.rsplit(':').next().unwrap().to_owned();

    // The system's roots do not vouch for OpenBao's CA: refused. (An empty
    // root file would not do: the SDK's client asserts, in debug builds,
    // that the store it loads is not empty.)
    let refused = run(&c.clone().env_remove("SSL_CERT_FILE"), &["tls/x"]);
    let e = refused.error("tls/x");
    assert!(
        e.starts_with("tls/x: ") && e.contains("certificate"),
        "{e}\n{refused}"
    );
    let targets = proxy.targets();
    assert!(
        !targets.is_empty() && targets.iter().all(|t| t.ends_with(&format!(":{port}"))),
        "{targets:?}"
    );

    // With its CA as the root, the handshake passes through the tunnel.
    let done = run(
        &c.env(
            "SSL_CERT_FILE",
            bao.ca_cert.as_ref().unwrap().to_str().unwrap(),
        ),
        &["tls/x"],
    );
    assert_handshake_passed(&done);
}
