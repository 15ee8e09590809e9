//! Faults a real server cannot produce: an endpoint that refuses, one that
//! hangs, no credentials at all, a metadata service that hangs, proxies.
//! Small in-test listeners stand in for them.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_tests::moto::{self, Moto};
use backend_tests::{free_port, payload};

use crate::common::{Seed, bare, cmd, run};

const HANDLES: [&str; 4] = ["prod/db;password", "other", "ssm:/p/x", "x;k;AWSPREVIOUS"];

/// Accepts connections and never answers; counts them.
struct Hang {
    port: u16,
    accepted: Arc<AtomicUsize>,
    /// The first bytes of each connection (a request line, a CONNECT).
    heads: Arc<Mutex<Vec<String>>>,
}

impl Hang {
    fn start() -> Self {
        Self::serve(None)
    }

    /// Answers every connection with `reply` after reading its head.
    fn answering(reply: &'static str) -> Self {
        Self::serve(Some(reply))
    }

    fn serve(reply: Option<&'static str>) -> Self {
        let l = TcpListener::bind("127.0.0.1:0").unwrap();
        let port = l.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let (a, h) = (accepted.clone(), heads.clone());
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            for s in l.incoming().flatten() {
                a.fetch_add(1, Ordering::SeqCst);
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
                let head = read_request(&mut s);
                h.lock().unwrap().push(head);
                if let Some(r) = reply {
                    let _ = s.write_all(r.as_bytes());
                } else {
                    held.push(s); // keep it open, never answer
                }
            }
        });
        Self {
            port,
            accepted,
            heads,
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }
}

/// Reads one request (head and `Content-Length` body), so that answering
/// and closing never resets a connection with unread bytes; returns the head.
fn read_request(s: &mut TcpStream) -> String {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&data[..end]).into_owned();
            let len: usize = head
                .lines()
                .find_map(|l| {
                    let (k, v) = l.split_once(':')?;
                    k.eq_ignore_ascii_case("content-length")
                        .then(|| v.trim().parse().ok())?
                })
                .unwrap_or(0);
            while data.len() < end + 4 + len {
                match s.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => data.extend_from_slice(&buf[..n]),
                }
            }
            return head;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&data).into_owned(),
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
    }
}

fn assert_all_failed(done: &backend_tests::Done, what: &str) {
    for h in HANDLES {
        let e = done.error(h);
        assert!(e.contains(what), "{h}: {e}\n{done}");
    }
}

#[test]
fn an_endpoint_that_refuses_connections() {
    let home = tempfile::tempdir().unwrap();
    let port = free_port(); // nothing listens there any more
    // Endpoint and region by flag this time (the others use the variables).
    let endpoint = format!("http://127.0.0.1:{port}");
    let c = bare(home.path())
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--timeout", "5", "--endpoint-url", &endpoint])
        .args(["--region", moto::REGION]);
    let done = run(&c, &HANDLES);
    assert_all_failed(&done, "cannot connect");
    // The retries back off, but the answer comes before the deadline.
    assert!(done.elapsed < Duration::from_secs(6), "{done}");
    assert!(done.error("other").starts_with("other: "), "{done}");
}

#[test]
fn an_endpoint_that_hangs_is_cut_at_the_deadline() {
    let home = tempfile::tempdir().unwrap();
    let hang = Hang::start();
    let c = bare(home.path())
        .env("AWS_ENDPOINT_URL", &hang.url())
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--timeout", "2"]);
    let done = run(&c, &HANDLES);
    assert_all_failed(&done, "timed out after 2s");
    assert!(done.elapsed < Duration::from_secs(3), "{done}");
    assert!(hang.accepted.load(Ordering::SeqCst) > 0);
}

#[test]
fn no_credentials_anywhere_is_a_fast_clear_error() {
    let home = tempfile::tempdir().unwrap();
    let c = bare(home.path())
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--timeout", "10"]);
    let done = run(&c, &HANDLES);
    assert_all_failed(&done, "no AWS credentials found (tried: environment");
    assert!(done.error("other").starts_with("other: no AWS credentials"));
    assert!(
        done.error("other")
            .contains("instance metadata (disabled by AWS_EC2_METADATA_DISABLED)")
    );
    // Nothing to wait for: well under the deadline.
    assert!(done.elapsed < Duration::from_secs(5), "{done}");
}

#[test]
fn a_hanging_metadata_service_is_bounded_by_the_deadline() {
    // No credentials and no region anywhere: the SDK asks the metadata
    // service for both; here it accepts and never answers.
    let home = tempfile::tempdir().unwrap();
    let imds = Hang::start();
    let c = bare(home.path())
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())
        .args(["--timeout", "5"]);
    let done = run(&c, &HANDLES);
    for h in HANDLES {
        assert!(!done.error(h).is_empty());
    }
    assert!(done.elapsed < Duration::from_secs(6), "{done}");
    assert!(
        imds.accepted.load(Ordering::SeqCst) > 0,
        "IMDS was not asked"
    );
    // With a region, only credentials are looked for: the clear error.
    let done = run(&c.clone().env("AWS_REGION", moto::REGION), &HANDLES);
    assert_all_failed(&done, "no AWS credentials found");
    assert!(done.elapsed < Duration::from_secs(6), "{done}");
}

#[test]
fn with_region_and_credentials_the_metadata_service_is_never_asked() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    Seed::new(&moto).secret("imds/test", r#"{"k":"v-imds"}"#);
    let imds = Hang::start();
    let c = cmd(&moto, home.path())
        .env_remove("AWS_EC2_METADATA_DISABLED")
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url());
    let done = run(&c, &["imds/test;k", "ssm:/none"]);
    assert_eq!(done.value("imds/test;k"), "v-imds");
    assert_eq!(done.error("ssm:/none"), "ssm:/none: not found");
    assert_eq!(imds.accepted.load(Ordering::SeqCst), 0);
}

#[test]
fn https_proxy_is_honoured_and_no_proxy_bypasses_it() {
    let home = tempfile::tempdir().unwrap();
    let proxy = Hang::answering("HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n");
    let base = bare(home.path())
        .env("AWS_ENDPOINT_URL", "https://secretsmanager.proxied.invalid")
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("HTTPS_PROXY", &proxy.url())
        .args(["--timeout", "5"]);
    let done = base.clone().stdin(payload(&["via/proxy"])).run();
    assert!(!done.error("via/proxy").is_empty());
    let heads = proxy.heads.lock().unwrap().clone();
    assert!(
        heads
            .iter()
            .any(|h| h.starts_with("CONNECT secretsmanager.proxied.invalid:443")),
        "{heads:?}"
    );
    let before = proxy.accepted.load(Ordering::SeqCst);
    let done = base
        .env("NO_PROXY", "proxied.invalid")
        .stdin(payload(&["via/proxy"]))
        .run();
    assert!(!done.error("via/proxy").is_empty());
    assert_eq!(proxy.accepted.load(Ordering::SeqCst), before);
}

#[test]
fn a_refusing_metadata_service_gives_the_reason_never_its_body() {
    let home = tempfile::tempdir().unwrap();
    let imds = Hang::answering(
        "HTTP/1.1 403 Forbidden\r\nContent-Length: 21\r\nConnection: close\r\n\r\nBODY-MARKER-NOT-SHOWN",
    );
    let c = bare(home.path())
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url())
        .args(["--timeout", "5"]);
    let done = run(&c, &HANDLES);
    assert_all_failed(&done, "no AWS credentials found (tried: ");
    assert!(done.error("other").contains("IMDS"), "{done}");
    assert!(!done.stdout_str().contains("BODY-MARKER"), "{done}");
    assert!(!done.stderr.contains("BODY-MARKER"), "{done}");
    assert!(imds.accepted.load(Ordering::SeqCst) > 0);
}

/// An AWS endpoint that answers every request with the same error.
fn canned(status: &str, body: &'static str) -> Hang {
    let reply = format!(
        "HTTP/1.1 {status}\r\nContent-Type: application/x-amz-json-1.1\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    Hang::answering(Box::leak(reply.into_boxed_str()))
}

fn against(endpoint: &Hang, home: &std::path::Path) -> backend_tests::Cmd {
    bare(home)
        .env("AWS_ENDPOINT_URL", &endpoint.url())
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--timeout", "10"])
}

#[test]
fn throttling_is_retried_then_reported() {
    let home = tempfile::tempdir().unwrap();
    let aws = canned(
        "400 Bad Request",
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#,
    );
    let done = run(
        &against(&aws, home.path()),
        &["t/one", "t/two;k;AWSPREVIOUS"],
    );
    let e = done.error("t/one");
    assert!(
        e.starts_with("t/one: throttled by AWS (ThrottlingException)"),
        "{e}"
    );
    let e = done.error("t/two;k;AWSPREVIOUS");
    assert!(e.starts_with("t/two (AWSPREVIOUS): throttled"), "{e}");
    // One batch and one GetSecretValue, each tried more than once.
    assert!(aws.accepted.load(Ordering::SeqCst) >= 4, "{done}");
}

#[test]
fn kms_failures_and_server_errors_are_named_and_bodies_never_shown() {
    let home = tempfile::tempdir().unwrap();
    let kms = canned(
        "400 Bad Request",
        r#"{"__type":"DecryptionFailure","message":"KMS says BODY-MARKER-1"}"#,
    );
    let kms_done = run(&against(&kms, home.path()), &["k/one"]);
    let e = kms_done.error("k/one");
    assert!(
        e.starts_with("k/one: KMS could not decrypt the value (DecryptionFailure)"),
        "{e}"
    );
    let broken = canned("502 Bad Gateway", "<html>BODY-MARKER-2</html>");
    let done = run(&against(&broken, home.path()), &["b/one", "ssm:/b/two"]);
    assert!(done.error("b/one").starts_with("b/one: "), "{done}");
    assert!(
        done.error("ssm:/b/two").starts_with("ssm:/b/two: "),
        "{done}"
    );
    for d in [&kms_done, &done] {
        assert!(!d.stdout_str().contains("BODY-MARKER"), "{d}");
        assert!(!d.stderr.contains("BODY-MARKER"), "{d}");
    }
}
