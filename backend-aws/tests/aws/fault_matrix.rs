//! The fault matrix of issue 7 for `secret-backend-aws`: every fault AWS or
//! the network between can show, one test each, with the same checks every
//! time: the agent's deadline (`secret_backend_timeout` 3 s) is met, every
//! handle has an answer (a value, or an error naming the cause), exit 0,
//! and no value or credential on stderr, in the trace log or in stdout
//! outside the values.
//!
//! moto produces what it can (credentials it does not know, with its IAM
//! checks on); a [`FaultProxy`] in front of it the rest (hangs, stalled
//! bodies, late answers, 5xx and 429 before a success, garbage, an expired
//! session token), and an OpenBao `-dev-tls` server is the TLS endpoint
//! whose CA nobody gave us.
//!
//! One endpoint serves every handle of this binary, so "good handles still
//! resolve beside a faulty store" is shown through the multi binary
//! (`backend-multi/tests/faults.rs`); here, the retry cases resolve every
//! handle: each request fails twice, and the third of the SDK's three
//! attempts (short backoffs, see `client.rs`) must get through.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use backend_tests::fault::{Fault, FaultProxy, assert_kept, isolated, moto_call, run_traced};
use backend_tests::moto::{self, Moto};
use backend_tests::openbao::OpenBao;
use backend_tests::{Cmd, Done, Shared, free_port};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-aws");

const VALUE_A: &str = "fm-aws-value-a-6b0e";
const VALUE_B: &str = "fm-aws-param-b-93c1";
const HANDLES: [&str; 2] = ["fm/a;k", "ssm:/fm/b"];
/// The deadline the agent gives, in seconds.
const DEADLINE: u64 = 3;

static SHARED: Shared<Moto> = Shared::new();

/// The shared moto with the secret and the parameter.
fn server() -> Arc<Moto> {
    SHARED.get(|| {
        let m = Moto::start();
        seed(&m);
        m
    })
}

fn seed(m: &Moto) {
    moto_call(
        m,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "fm/a", "SecretString": json!({"k": VALUE_A}).to_string()}),
    );
    moto_call(
        m,
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/fm/b", "Value": VALUE_B, "Type": "SecureString"}),
    );
}

/// Runs the binary against `endpoint` with the test credentials, the
/// request's 3 s deadline, trace logging to stderr and a log file; checks
/// the common promises.
fn run(endpoint: &str, access_key: &str) -> Done {
    let dir = tempfile::tempdir().unwrap();
    let cmd = isolated(Cmd::new(BIN))
        .env("HOME", dir.path().to_str().unwrap())
        .env("AWS_ENDPOINT_URL", endpoint)
        .env("AWS_ACCESS_KEY_ID", access_key)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true");
    let (done, log) = run_traced(cmd, dir.path(), &HANDLES, DEADLINE);
    assert_kept(
        &done,
        &log,
        &HANDLES,
        Duration::from_secs(DEADLINE),
        &[VALUE_A, VALUE_B],
        &[moto::SECRET_ACCESS_KEY],
    );
    done
}

/// Every handle failed with an error containing `cause`, naming its target.
fn all_failed(done: &Done, cause: &str) {
    for (h, location) in HANDLES.iter().zip(["fm/a", "ssm:/fm/b"]) {
        let e = done.error(h);
        assert!(
            e.starts_with(&format!("{location}: ")) && e.contains(cause),
            "{h}: want '{cause}': {e}\n{done}"
        );
    }
}

fn all_resolved(done: &Done) {
    assert_eq!(done.value(HANDLES[0]), VALUE_A);
    assert_eq!(done.value(HANDLES[1]), VALUE_B);
}

#[test]
fn connection_refused() {
    let done = run(
        &format!("http://127.0.0.1:{}", free_port()),
        moto::ACCESS_KEY_ID,
    );
    all_failed(&done, "cannot connect");
}

#[test]
fn accepts_and_never_answers() {
    let proxy = FaultProxy::always(Fault::Hang);
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_failed(&done, "timed out after 3s");
    assert!(proxy.faulted() > 0);
}

#[test]
fn headers_then_a_stalled_body() {
    let proxy = FaultProxy::always(Fault::StallBody);
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_failed(&done, "timed out after 3s");
}

#[test]
fn answers_after_the_deadline() {
    let m = server();
    let proxy = FaultProxy::before(Fault::Delay(Duration::from_secs(5)), 1, &m.endpoint());
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_failed(&done, "timed out after 3s");
}

/// `fault` twice for every distinct request, then moto's answer: the
/// SDK's retry must win within the deadline.
fn retry_wins(fault: Fault) {
    let m = server();
    let proxy = FaultProxy::before(fault, 2, &m.endpoint());
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_resolved(&done);
    assert!(proxy.faulted() >= 4, "{:?}", proxy.seen());
}

#[test]
fn http_500_then_success() {
    retry_wins(Fault::aws(500, "InternalServiceError", None));
}

#[test]
fn http_503_then_success() {
    retry_wins(Fault::aws(503, "ServiceUnavailable", None));
}

#[test]
fn http_429_with_retry_after_then_success() {
    retry_wins(Fault::aws(429, "ThrottlingException", Some(1)));
}

#[test]
fn http_429_without_retry_after_then_success() {
    retry_wins(Fault::aws(429, "ThrottlingException", None));
}

#[test]
fn http_429_for_good_with_a_long_retry_after() {
    let proxy = FaultProxy::always(Fault::aws(429, "ThrottlingException", Some(3600)));
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    for h in HANDLES {
        let e = done.error(h);
        assert!(
            e.contains("throttled by AWS (ThrottlingException)") || e.contains("timed out"),
            "{h}: {e}"
        );
    }
    assert!(proxy.faulted() > 2, "retried: {:?}", proxy.seen());
}

#[test]
fn http_500_for_good() {
    let proxy = FaultProxy::always(Fault::aws(500, "InternalServiceError", None));
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_failed(&done, "InternalServiceError");
}

#[test]
fn a_body_that_is_not_json() {
    let proxy = FaultProxy::always(Fault::Garbage);
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    // Secrets Manager's batch reads the HTML as an error without a code,
    // SSM as a response it cannot take apart: unreadable either way.
    assert_eq!(
        done.error(HANDLES[0]),
        "fm/a: unreadable response from the AWS endpoint (HTTP 200, not the service's JSON)"
    );
    assert_eq!(
        done.error(HANDLES[1]),
        "ssm:/fm/b: unreadable response from the AWS endpoint (HTTP 200, not the service's JSON)"
    );
}

#[test]
fn tls_with_an_unknown_ca_fails_closed() {
    let bao = OpenBao::start_tls();
    let done = run(&bao.addr, moto::ACCESS_KEY_ID);
    all_failed(&done, "certificate");
}

#[test]
fn an_expired_session_token() {
    // moto does not expire credentials: the proxy answers as AWS does.
    let proxy = FaultProxy::always(Fault::aws(
        400,
        "ExpiredTokenException",
        Option::<u64>::None,
    ));
    let done = run(&proxy.url(), moto::ACCESS_KEY_ID);
    all_failed(&done, "AWS refused the credentials (ExpiredTokenException)");
}

#[test]
fn credentials_aws_does_not_know() {
    // moto with its IAM checks on (after the seeding calls) refuses an
    // access key it never issued, as AWS does a deleted or revoked key.
    // moto's refusals differ from AWS's (Secrets Manager says
    // AccessDenied, SSM answers in XML the SDK cannot read): the handles
    // still get their error, in time.
    let m = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "2")]);
    seed(&m);
    let done = run(&m.endpoint(), "AKIAREVOKEDKEY000000");
    assert_eq!(done.error(HANDLES[0]), "fm/a: access denied");
    assert!(done.error(HANDLES[1]).starts_with("ssm:/fm/b: "), "{done}");
}
