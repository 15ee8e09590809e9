//! The fault matrix of issue 7 through `secret-backend`: a faulty vault
//! store and a faulty aws store beside a dummy and a file store in one
//! call. Each case checks that the agent's deadline (`secret_backend_timeout`
//! 3 s) is met, that every handle has an answer, that the faulty stores'
//! handles name the cause, that the good stores' handles still resolve,
//! exit 0, and that no value or credential shows on stderr, in the trace
//! log or in stdout outside the values.
//!
//! Real OpenBao and moto stand behind [`FaultProxy`]s that inject the
//! faults they cannot produce themselves; OpenBao produces the sealed
//! server, the expired and revoked tokens, and (started with `-dev-tls`)
//! the certificate from an unknown CA, for both stores.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;
use std::time::Duration;

use backend_tests::fault::{Fault, FaultProxy, assert_kept, isolated, moto_call, run_traced};
use backend_tests::files::write_private;
use backend_tests::moto::{self, Moto};
use backend_tests::multi::MultiConfig;
use backend_tests::openbao::OpenBao;
use backend_tests::{Cmd, Done, Shared, free_port};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

const TOKEN: &str = "multi-fault-token-0c4e7a";
const VAULT_VALUE: &str = "mf-vault-value-11aa";
const AWS_VALUE: &str = "mf-aws-value-22bb";
const SSM_VALUE: &str = "mf-ssm-value-33cc";
const FILE_VALUE: &str = "mf-file-value-44dd";
const VAULT: &str = "vault:secret/mf/a;k";
const AWS: [&str; 2] = ["aws:mf/a;k", "aws:ssm:/mf/b"];
const GOOD: [&str; 2] = ["test:x", "files:pw"];
const DEADLINE: u64 = 3;

static BAO: Shared<OpenBao> = Shared::new();
static MOTO: Shared<Moto> = Shared::new();

/// The shared OpenBao, seeded, with [`TOKEN`].
fn bao() -> Arc<OpenBao> {
    BAO.get(|| {
        let s = OpenBao::start();
        seed_bao(&s);
        s
    })
}

fn seed_bao(bao: &OpenBao) {
    bao.api_ok(
        "POST",
        "secret/data/mf/a",
        Some(json!({"data": {"k": VAULT_VALUE}})),
    );
    bao.api_ok(
        "PUT",
        "sys/policies/acl/mf-reader",
        Some(json!({"policy": r#"path "secret/data/mf/*" { capabilities = ["read"] }"#})),
    );
    bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": TOKEN, "policies": ["mf-reader"], "ttl": "1h"})),
    );
}

/// The shared moto, seeded.
fn moto() -> Arc<Moto> {
    MOTO.get(seed_moto)
}

fn seed_moto() -> Moto {
    let m = Moto::start();
    moto_call(
        &m,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": "mf/a", "SecretString": json!({"k": AWS_VALUE}).to_string()}),
    );
    moto_call(
        &m,
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/mf/b", "Value": SSM_VALUE, "Type": "SecureString"}),
    );
    m
}

/// Runs one call with the vault store at `vault`, the aws store at `aws`
/// (both URLs), and `token`; checks the common promises and that the good
/// stores resolved. Every handle of the call is in the reply.
fn run(vault: &str, aws: &str, token: &str) -> Done {
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("pw"), FILE_VALUE);
    let token_file = dir.path().join("token");
    write_private(&token_file, token);
    let config = MultiConfig::new()
        .vault("vault", vault, &token_file)
        .aws("aws", moto::REGION, aws)
        .dummy("test")
        .files("files", &secrets)
        .write(dir.path(), "multi.yaml");
    let handles = [VAULT, AWS[0], AWS[1], GOOD[0], GOOD[1]];
    let cmd = isolated(Cmd::new(BIN))
        .env("HOME", dir.path().to_str().unwrap())
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--config", config.to_str().unwrap()]);
    let (done, log) = run_traced(cmd, dir.path(), &handles, DEADLINE);
    assert_kept(
        &done,
        &log,
        &handles,
        Duration::from_secs(DEADLINE),
        &[VAULT_VALUE, AWS_VALUE, SSM_VALUE, FILE_VALUE],
        &[token, moto::SECRET_ACCESS_KEY],
    );
    assert_eq!(done.value(GOOD[0]), "decrypted_x", "{done}");
    assert_eq!(done.value(GOOD[1]), FILE_VALUE, "{done}");
    done
}

/// The vault handle failed with `vault_cause`, the aws ones with `aws_cause`.
fn failed(done: &Done, vault_cause: &str, aws_cause: &str) {
    let e = done.error(VAULT);
    assert!(
        e.starts_with("secret/mf/a: ") && e.contains(vault_cause),
        "{VAULT}: want '{vault_cause}': {e}\n{done}"
    );
    for (h, location) in AWS.iter().zip(["mf/a", "ssm:/mf/b"]) {
        let e = done.error(h);
        assert!(
            e.starts_with(&format!("{location}: ")) && e.contains(aws_cause),
            "{h}: want '{aws_cause}': {e}\n{done}"
        );
    }
}

fn resolved(done: &Done) {
    assert_eq!(done.value(VAULT), VAULT_VALUE);
    assert_eq!(done.value(AWS[0]), AWS_VALUE);
    assert_eq!(done.value(AWS[1]), SSM_VALUE);
}

/// Both stores behind proxies applying `fault` (vault's for every request,
/// aws's likewise), everything else real.
fn both_faulty(fault: Fault) -> Done {
    let vault = FaultProxy::always(fault.clone());
    let aws = FaultProxy::always(fault);
    run(&vault.url(), &aws.url(), TOKEN)
}

#[test]
fn connection_refused() {
    let down = format!("http://127.0.0.1:{}", free_port());
    let done = run(&down, &down, TOKEN);
    failed(&done, "cannot connect", "cannot connect");
}

#[test]
fn accepts_and_never_answers() {
    let done = both_faulty(Fault::Hang);
    failed(&done, "timed out after 3s", "timed out after 3s");
}

#[test]
fn headers_then_a_stalled_body() {
    let done = both_faulty(Fault::StallBody);
    failed(&done, "timed out after 3s", "timed out after 3s");
}

#[test]
fn answers_after_the_deadline() {
    let (b, m) = (bao(), moto());
    let late = Fault::Delay(Duration::from_secs(5));
    let vault = FaultProxy::before(late.clone(), 1, &b.addr);
    let aws = FaultProxy::before(late, 1, &m.endpoint());
    let done = run(&vault.url(), &aws.url(), TOKEN);
    failed(&done, "timed out after 3s", "timed out after 3s");
}

/// Each store's every distinct request fails once, then reaches the real
/// server: the retries win.
fn retry_wins(vault_fault: Fault, aws_fault: Fault) {
    let (b, m) = (bao(), moto());
    let vault = FaultProxy::before(vault_fault, 1, &b.addr);
    let aws = FaultProxy::before(aws_fault, 1, &m.endpoint());
    let done = run(&vault.url(), &aws.url(), TOKEN);
    resolved(&done);
    assert!(
        vault.faulted() >= 2 && aws.faulted() >= 2,
        "faults injected"
    );
}

#[test]
fn http_500_then_success() {
    retry_wins(
        Fault::status(500),
        Fault::aws(500, "InternalServiceError", None),
    );
}

#[test]
fn http_503_then_success() {
    retry_wins(
        Fault::status(503),
        Fault::aws(503, "ServiceUnavailable", None),
    );
}

#[test]
fn http_429_with_retry_after_then_success() {
    retry_wins(
        Fault::throttled(Some(1)),
        Fault::aws(429, "ThrottlingException", Some(1)),
    );
}

#[test]
fn http_429_without_retry_after_then_success() {
    retry_wins(
        Fault::throttled(None),
        Fault::aws(429, "ThrottlingException", None),
    );
}

#[test]
fn a_body_that_is_not_json() {
    let done = both_faulty(Fault::Garbage);
    failed(&done, "not a Vault JSON response", "");
}

#[test]
fn tls_with_an_unknown_ca_fails_closed() {
    // One TLS server whose CA neither store was given, for both.
    let tls = OpenBao::start_tls();
    let done = run(&tls.addr, &tls.addr, TOKEN);
    failed(&done, "UnknownIssuer", "certificate");
}

#[test]
fn an_expired_vault_token() {
    let b = bao();
    let token = b.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["mf-reader"], "ttl": "1s", "explicit_max_ttl": "1s"})),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let started = std::time::Instant::now();
    while b
        .api("POST", "auth/token/lookup", Some(json!({"token": token})))
        .0
        == 200
    {
        assert!(started.elapsed() < Duration::from_secs(30), "never expired");
        std::thread::sleep(Duration::from_millis(200));
    }
    let m = moto();
    let done = run(&b.addr, &m.endpoint(), &token);
    assert!(done.error(VAULT).contains("permission denied"), "{done}");
    assert_eq!(done.value(AWS[0]), AWS_VALUE, "aws is fine");
}

#[test]
fn a_revoked_vault_token_and_an_expired_aws_session() {
    let b = bao();
    let token = b.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"policies": ["mf-reader"], "ttl": "1h"})),
    )["auth"]["client_token"]
        .as_str()
        .unwrap()
        .to_owned();
    b.api_ok("POST", "auth/token/revoke", Some(json!({"token": token})));
    let aws = FaultProxy::always(Fault::aws(400, "ExpiredTokenException", None));
    let done = run(&b.addr, &aws.url(), &token);
    failed(
        &done,
        "permission denied",
        "AWS refused the credentials (ExpiredTokenException)",
    );
}

#[test]
fn a_sealed_vault() {
    let sealed = OpenBao::start();
    seed_bao(&sealed);
    sealed.api_ok("PUT", "sys/seal", None);
    let m = moto();
    let done = run(&sealed.addr, &m.endpoint(), TOKEN);
    let e = done.error(VAULT);
    assert!(
        e.contains("server sealed or unavailable (HTTP 503)"),
        "{done}"
    );
    assert_eq!(done.value(AWS[1]), SSM_VALUE, "aws is fine");
}
