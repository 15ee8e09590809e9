//! The TLS stack (rustls with ring, `src/http.rs`): the system's CA store
//! is read only when a request needs TLS, and when it is read, it is what
//! the server's certificate is checked against. (A CA nobody vouches for is
//! refused: `fault_matrix.rs`, `tls_with_an_unknown_ca_fails_closed`.)
//!
//! `SSL_CERT_FILE` (which the root loading honours instead of the system
//! store) names a FIFO fed by a thread of the test: opening a FIFO blocks
//! until the other end opens it too, so the thread sees every time the
//! binary reads its roots, and hands it the CA of the test's choice.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;

use backend_tests::moto::{self, Moto};
use backend_tests::openbao::OpenBao;
use common::{Seed, bare, cmd, run};

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
        let made = std::process::Command::new("mkfifo")
            .arg(&path)
            .status()
            .unwrap();
        assert!(made.success(), "mkfifo {}", path.display());
        let reads = Arc::new(AtomicUsize::new(0));
        let done = Arc::new(AtomicBool::new(false));
        let feeder = {
            let (path, reads, done) = (path.clone(), reads.clone(), done.clone());
            std::thread::spawn(move || {
                loop {
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
        self.done.store(true, Ordering::SeqCst);
        // Meets the feeder in its blocking open, so that it sees `done`.
        let _ = File::open(&self.path);
        if let Some(feeder) = self.feeder.take() {
            let _ = feeder.join();
        }
    }
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
    let roots = CaFifo::new(ca);
    let home = tempfile::tempdir().unwrap();
    let c = bare(home.path())
        .env("AWS_ENDPOINT_URL", &bao.addr)
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("SSL_CERT_FILE", roots.path.to_str().unwrap())
        .env_remove("SSL_CERT_DIR")
        .args(["--timeout", "10"]);
    let done = run(&c, &["tls/x"]);
    // The handshake passed (OpenBao's CA was the root); what answered is
    // no AWS service, so the handle still fails, on the HTTP answer.
    let e = done.error("tls/x");
    assert!(
        e.starts_with("tls/x: ") && e.contains("HTTP") && !e.contains("certificate"),
        "{e}\n{done}"
    );
    assert_eq!(roots.reads(), 1, "the roots are read once, for https://");
}
