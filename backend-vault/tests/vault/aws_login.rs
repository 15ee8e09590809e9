//! End-to-end AWS IAM login: the real `secret-backend-vault` binary against
//! a real OpenBao, whose `aws` auth method is the stand-in of
//! `backend_tests::vault_aws` (OpenBao ships it only as a plugin that no
//! registry here carries), replaying every signed `GetCallerIdentity` to a
//! real moto server that checks SigV4 signatures (auth switched on after
//! the IAM users, keys and roles are made). A login passes only when the
//! request is signed right, by a principal the role is bound to.

// Helpers outside #[test] functions fail loudly on broken test setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use crate::common::{cmd, kv_put, server, token_alive, unique};
use backend_tests::files::private_file;
use backend_tests::moto::{Moto, xml_field};
use backend_tests::openbao::OpenBao;
use backend_tests::vault_aws::{Attempt, VaultAws, moto_auth};
use backend_tests::{Done, Shared, assert_no_leak, payload};
use backend_vault::aws_login::VARS;
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const VALUE: &str = "aws-login-value-0042";

/// An IAM user's keys.
#[derive(Debug, Clone)]
struct Keys {
    id: String,
    secret: String,
    token: Option<String>,
}

/// moto with auth on, the users and an assumed role made before.
#[derive(Debug)]
struct World {
    moto: Moto,
    agent: Keys,
    intruder: Keys,
    /// Temporary credentials of role `agent-role`.
    temporary: Keys,
}

static WORLD: Shared<World> = Shared::new();

fn user(moto: &Moto, name: &str) -> Keys {
    moto.query(
        "iam",
        &[
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", name),
        ],
    );
    let xml = moto.query(
        "iam",
        &[
            ("Action", "CreateAccessKey"),
            ("Version", "2010-05-08"),
            ("UserName", name),
        ],
    );
    Keys {
        id: xml_field(&xml, "AccessKeyId").unwrap().to_owned(),
        secret: xml_field(&xml, "SecretAccessKey").unwrap().to_owned(),
        token: None,
    }
}

fn create_role(moto: &Moto, name: &str) -> String {
    let trust = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"AWS":"*"},"Action":"sts:AssumeRole"}]}"#;
    moto.query(
        "iam",
        &[
            ("Action", "CreateRole"),
            ("Version", "2010-05-08"),
            ("RoleName", name),
            ("AssumeRolePolicyDocument", trust),
        ],
    );
    format!("arn:aws:iam::{ACCOUNT}:role/{name}")
}

fn world() -> Arc<World> {
    WORLD.get(|| {
        let moto = Moto::start();
        let agent = user(&moto, "agent");
        let intruder = user(&moto, "intruder");
        let role = create_role(&moto, "agent-role");
        let xml = moto.query(
            "sts",
            &[
                ("Action", "AssumeRole"),
                ("Version", "2011-06-15"),
                ("RoleArn", &role),
                ("RoleSessionName", "agent-session"),
            ],
        );
        let temporary = Keys {
            id: xml_field(&xml, "AccessKeyId").unwrap().to_owned(),
            secret: xml_field(&xml, "SecretAccessKey").unwrap().to_owned(),
            token: Some(xml_field(&xml, "SessionToken").unwrap().to_owned()),
        };
        moto_auth(&moto, 0);
        World {
            moto,
            agent,
            intruder,
            temporary,
        }
    })
}

/// The shared OpenBao with a secret the `reader` policy reads; its handle.
fn secret(bao: &OpenBao) -> String {
    let path = format!("secret/{}", unique("aws-"));
    kv_put(bao, &path, json!({ "password": VALUE }));
    format!("{path};password")
}

/// A stand-in at `auth/aws` in front of `bao`, replaying to `moto`, with
/// role `agent` bound to user `agent` and role `agent-role`.
fn stand_in(bao: &Arc<OpenBao>, moto: &Moto) -> VaultAws {
    let aws = VaultAws::start(bao.clone(), &moto.endpoint(), "aws");
    aws.role(
        "agent",
        &[
            &format!("arn:aws:iam::{ACCOUNT}:user/agent"),
            &format!("arn:aws:iam::{ACCOUNT}:role/agent-role"),
        ],
        &["reader"],
    );
    aws
}

/// Runs the binary against `aws` with `auth` (YAML under `auth:`, method
/// aws), `extra` config lines, AWS environment `env` and nothing else of
/// AWS's from the caller's shell; logs at trace into a file. Returns the
/// run and the log's text.
fn run(
    aws: &VaultAws,
    home: &Path,
    auth: &str,
    extra: &str,
    env: &[(&str, String)],
    handles: &[&str],
) -> (Done, String) {
    let config = private_file(
        home,
        "config.yaml",
        &format!(
            "address: {}\nauth:\n  method: aws\n{auth}{extra}",
            aws.url()
        ),
    );
    let log = home.join("trace.log");
    let _ = std::fs::remove_file(&log);
    let mut c = cmd(home)
        .args(["--config", config.to_str().unwrap(), "--timeout", "20"])
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()]);
    // Nothing of the AWS chain's from the caller's shell.
    for v in VARS.iter().filter(|v| **v != "HOME") {
        c = c.env_remove(v);
    }
    c = c.env("AWS_EC2_METADATA_DISABLED", "true");
    for (k, v) in env {
        c = c.env(k, v);
    }
    let done = c.stdin(payload(handles)).run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (done, log)
}

fn key_env(k: &Keys) -> Vec<(&'static str, String)> {
    let mut env = vec![
        ("AWS_ACCESS_KEY_ID", k.id.clone()),
        ("AWS_SECRET_ACCESS_KEY", k.secret.clone()),
    ];
    if let Some(t) = &k.token {
        env.push(("AWS_SESSION_TOKEN", t.clone()));
    }
    env
}

/// Neither the AWS secret key, the session token, the signature nor the
/// signed headers reach stderr or the trace log.
fn assert_nothing_signed_leaks(done: &Done, log: &str, keys: &Keys, attempts: &[Attempt]) {
    let mut secrets: Vec<String> = vec![keys.secret.clone()];
    secrets.extend(keys.token.clone());
    for a in attempts {
        let signature = a
            .authorization
            .rsplit("Signature=")
            .next()
            .unwrap_or_default();
        assert!(signature.len() >= 64, "no signature recorded: {a:?}");
        secrets.push(signature.to_owned());
        secrets.push(a.authorization.clone());
        secrets.push(a.headers_field.clone());
    }
    let secrets: Vec<&str> = secrets.iter().map(String::as_str).collect();
    assert!(
        log.contains("signing sts:GetCallerIdentity"),
        "trace log written: {log}"
    );
    assert_no_leak("stderr", &done.stderr, &secrets);
    assert_no_leak("the trace log", log, &secrets);
    assert_no_leak("stdout", done.stdout_str(), &secrets);
}

/// The only login attempt, which succeeded; its token.
fn one_login(aws: &VaultAws) -> (Attempt, String) {
    let attempts = aws.attempts();
    assert_eq!(attempts.len(), 1, "one login per call: {attempts:?}");
    let a = attempts[0].clone();
    let token = a
        .outcome
        .clone()
        .unwrap_or_else(|e| panic!("login refused: {e}"));
    (a, token)
}

#[test]
fn environment_credentials_log_in_read_and_revoke() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let auth = format!("  role: agent\n  sts_endpoint: {}\n", w.moto.endpoint());
    let (done, log) = run(&aws, home.path(), &auth, "", &key_env(&w.agent), &[&handle]);
    assert_eq!(done.value(&handle), VALUE);
    let (a, token) = one_login(&aws);
    assert_eq!(
        a.arn.as_deref(),
        Some(&*format!("arn:aws:iam::{ACCOUNT}:user/agent"))
    );
    // Global defaults: signed for us-east-1.
    assert!(
        a.authorization
            .contains(&format!("Credential={}/", w.agent.id))
            && a.authorization.contains("/us-east-1/sts/aws4_request"),
        "{a:?}"
    );
    assert!(!token_alive(&bao, &token), "the login token was revoked");
    assert_nothing_signed_leaks(&done, &log, &w.agent, &aws.attempts());
}

#[test]
fn temporary_credentials_in_another_region() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    // No sts_endpoint: the request names sts.eu-west-1.amazonaws.com, and
    // the stand-in, as Vault does, sends it to its own STS endpoint (moto)
    // with the signed Host.
    let mut env = key_env(&w.temporary);
    env.push(("AWS_REGION", "eu-west-1".into()));
    let (done, log) = run(&aws, home.path(), "  role: agent\n", "", &env, &[&handle]);
    assert_eq!(done.value(&handle), VALUE);
    let (a, token) = one_login(&aws);
    assert_eq!(
        a.arn.as_deref(),
        Some(&*format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/agent-role/agent-session"
        ))
    );
    assert!(
        a.authorization.contains("/eu-west-1/sts/aws4_request"),
        "{a:?}"
    );
    assert!(a.authorization.contains("x-amz-security-token"), "{a:?}");
    assert!(!token_alive(&bao, &token));
    assert_nothing_signed_leaks(&done, &log, &w.temporary, &aws.attempts());
}

#[test]
fn web_identity_token_file_as_on_eks() {
    let bao = server();
    // A moto of its own: the unsigned AssumeRoleWithWebIdentity is let
    // through unchecked (as STS takes it: the token is the proof), every
    // request after it is checked.
    let moto = Moto::start();
    let role = create_role(&moto, "irsa-agent");
    moto_auth(&moto, 1);
    let aws = VaultAws::start(bao.clone(), &moto.endpoint(), "aws");
    aws.role("irsa", &[&role], &["reader"]);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let jwt =
        "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJzeXN0ZW06c2VydmljZWFjY291bnQ6YWdlbnQifQ.SIGNED-JWT-0042";
    let token_file = private_file(home.path(), "token", jwt);
    let env = [
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            token_file.display().to_string(),
        ),
        ("AWS_ROLE_ARN", role.clone()),
        ("AWS_REGION", "us-east-1".to_owned()),
        ("AWS_ENDPOINT_URL", moto.endpoint()),
    ];
    let auth = format!("  role: irsa\n  sts_endpoint: {}\n", moto.endpoint());
    let (done, log) = run(&aws, home.path(), &auth, "", &env, &[&handle]);
    assert_eq!(done.value(&handle), VALUE);
    let (a, token) = one_login(&aws);
    // The session name is the SDK's own (`web-identity-token-<ms>`, unless
    // AWS_ROLE_SESSION_NAME names one), as secret-backend-aws's chain has it.
    let arn = a.arn.clone().unwrap_or_default();
    assert!(
        arn.starts_with(&format!(
            "arn:aws:sts::{ACCOUNT}:assumed-role/irsa-agent/web-identity-token-"
        )),
        "{a:?}"
    );
    assert!(!token_alive(&bao, &token));
    let keys = Keys {
        id: String::new(),
        secret: jwt.to_owned(),
        token: None,
    };
    assert_nothing_signed_leaks(&done, &log, &keys, &aws.attempts());
}

#[test]
fn the_server_id_the_mount_requires_is_sent_signed() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    aws.require_server_id(Some("vault.example.test"));
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let env = key_env(&w.agent);
    let (done, _) = run(&aws, home.path(), "  role: agent\n", "", &env, &[&handle]);
    let e = done.error(&handle);
    assert!(
        e.contains("login failed (aws at auth/aws): credentials refused (HTTP 400)"),
        "{e}"
    );
    let refused = aws.attempts();
    assert!(
        refused[0]
            .outcome
            .as_ref()
            .is_err_and(|e| e.contains("missing header")),
        "{refused:?}"
    );
    let (done, _) = run(
        &aws,
        home.path(),
        "  role: agent\n  iam_server_id: vault.other.test\n",
        "",
        &env,
        &[&handle],
    );
    assert!(done.error(&handle).contains("HTTP 400"));
    let (done, log) = run(
        &aws,
        home.path(),
        "  role: agent\n  iam_server_id: vault.example.test\n",
        "",
        &env,
        &[&handle],
    );
    assert_eq!(done.value(&handle), VALUE);
    let attempts = aws.attempts();
    assert_eq!(attempts.len(), 3, "{attempts:?}");
    assert!(attempts[2].outcome.is_ok(), "{attempts:?}");
    assert!(
        attempts[2]
            .authorization
            .contains(";x-vault-aws-iam-server-id, Signature="),
        "{attempts:?}"
    );
    assert_nothing_signed_leaks(&done, &log, &w.agent, &attempts[2..]);
}

#[test]
fn a_caller_the_role_is_not_bound_to_is_refused() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let (done, log) = run(
        &aws,
        home.path(),
        "  role: agent\n",
        "",
        &key_env(&w.intruder),
        &[&handle],
    );
    assert!(
        done.error(&handle)
            .contains("credentials refused (HTTP 400)")
    );
    let a = &aws.attempts()[0];
    assert_eq!(
        a.arn.as_deref(),
        Some(&*format!("arn:aws:iam::{ACCOUNT}:user/intruder"))
    );
    assert!(
        a.outcome
            .as_ref()
            .is_err_and(|e| e.contains("does not belong to the role")),
        "{a:?}"
    );
    assert_nothing_signed_leaks(&done, &log, &w.intruder, &aws.attempts());
}

#[test]
fn a_wrongly_signed_request_is_refused_by_sts() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let wrong = Keys {
        secret: "not-the-agents-secret-key-0042".into(),
        ..w.agent.clone()
    };
    let (done, log) = run(
        &aws,
        home.path(),
        "  role: agent\n",
        "",
        &key_env(&wrong),
        &[&handle],
    );
    assert!(
        done.error(&handle)
            .contains("credentials refused (HTTP 400)")
    );
    let a = &aws.attempts()[0];
    assert_eq!(a.arn, None, "STS never named a caller: {a:?}");
    let why = a.outcome.clone().unwrap_err();
    assert!(
        why.contains("received error code 403 from STS") && why.contains("SignatureDoesNotMatch"),
        "{why}"
    );
    // The refusal's body (STS's own XML) is not shown either.
    assert_no_leak("stderr", &done.stderr, &["SignatureDoesNotMatch"]);
    assert_no_leak("the trace log", &log, &["SignatureDoesNotMatch"]);
    assert_nothing_signed_leaks(&done, &log, &wrong, &aws.attempts());
}

/// A port that accepts connections and never answers.
fn silent_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for s in listener.incoming().flatten() {
            held.push(s);
        }
    });
    port
}

#[test]
fn no_aws_credentials_fail_fast_naming_every_source() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    // The metadata service accepts and never answers: bounded by its own
    // short timeout, long before the 20 s deadline.
    let imds = format!("http://127.0.0.1:{}", silent_port());
    let (done, _) = run(
        &aws,
        home.path(),
        "  role: agent\n",
        "",
        &[
            ("AWS_EC2_METADATA_DISABLED", "false".into()),
            ("AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.clone()),
        ],
        &[&handle],
    );
    let e = done.error(&handle);
    for want in [
        "login failed (aws at auth/aws): no AWS credentials found",
        "AWS_ACCESS_KEY_ID",
        "profile 'default'",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "ECS container credentials",
    ] {
        assert!(e.contains(want), "{want}: {e}");
    }
    // secret-backend-aws's wording: the metadata service was tried (its
    // timeout is "no credentials from this source" to the SDK's chain).
    assert!(e.ends_with(", instance metadata)"), "{e}");
    assert!(
        done.elapsed < Duration::from_secs(15),
        "does not hang: {done}"
    );
    let (done, _) = run(&aws, home.path(), "  role: agent\n", "", &[], &[&handle]);
    assert!(
        done.error(&handle)
            .contains("disabled by AWS_EC2_METADATA_DISABLED")
    );
    assert!(aws.attempts().is_empty(), "nothing was sent to Vault");
}

#[test]
fn a_cached_login_token_is_kept_and_reused() {
    let (w, bao) = (world(), server());
    let aws = stand_in(&bao, &w.moto);
    let handle = secret(&bao);
    let home = tempfile::tempdir().unwrap();
    let cache = home.path().join("token-cache");
    let extra = format!("token_cache_file: {}\n", cache.display());
    for _ in 0..2 {
        let (done, _) = run(
            &aws,
            home.path(),
            "  role: agent\n",
            &extra,
            &key_env(&w.agent),
            &[&handle],
        );
        assert_eq!(done.value(&handle), VALUE);
    }
    let (_, token) = one_login(&aws);
    assert!(token_alive(&bao, &token), "the cached token is kept");
    assert_eq!(std::fs::read_to_string(&cache).unwrap(), token);
}
