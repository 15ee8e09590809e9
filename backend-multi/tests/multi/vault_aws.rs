//! `secret-backend` serving a caller's `hashicorp.vault` config (Datadog's
//! connector keys, in the request) that logs in with AWS IAM: the 2026
//! keys `vault_namespace`, `vault_session.vault_auth_type: aws`,
//! `vault_aws_role`, `aws_region`, `vault_aws_iam_server_id`, and
//! `vault_session.implicit_auth`. Vault is a real OpenBao with the aws
//! method's stand-in in front (`backend_tests::vault_aws`), replaying the
//! signed request to a moto server that checks signatures.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::Arc;

use backend_tests::moto::{Moto, xml_field};
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::vault_aws::{VaultAws, moto_auth};
use backend_tests::{Cmd, Done, assert_no_leak, go_payload};
use serde_json::{Value, json};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");
const NS: &str = "team";
const VALUE: &str = "ns-aws-value-0077";
const HANDLE: &str = "secret/app;password";

fn run(home: &std::path::Path, env: &[(&str, &str)], config: Value) -> Done {
    let mut c = Cmd::new(BIN);
    for v in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
        "AWS_PROFILE",
        "AWS_SESSION_TOKEN",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ] {
        c = c.env_remove(v);
    }
    c = c
        .env("HOME", home.to_str().unwrap())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .args(["--log-level", "trace"]);
    for (k, v) in env {
        c = c.env(k, v);
    }
    c.stdin(go_payload(
        "1.1",
        &[HANDLE],
        &[
            ("type", json!("hashicorp.vault")),
            ("config", config),
            ("secret_backend_timeout", json!(20)),
        ],
    ))
    .run()
}

#[test]
fn the_connectors_aws_login_in_a_namespace() {
    let bao = Arc::new(OpenBao::start());
    bao.api_ok("POST", &format!("sys/namespaces/{NS}"), None);
    bao.api_ok(
        "POST",
        &format!("{NS}/sys/mounts/secret"),
        Some(json!({"type": "kv", "options": {"version": "2"}})),
    );
    bao.api_ok(
        "PUT",
        &format!("{NS}/sys/policies/acl/ns-reader"),
        Some(json!({"policy": r#"path "secret/data/*" { capabilities = ["read"] }"#})),
    );
    bao.api_ok(
        "POST",
        &format!("{NS}/secret/data/app"),
        Some(json!({"data": {"password": VALUE}})),
    );
    let moto = Moto::start();
    moto.query(
        "iam",
        &[
            ("Action", "CreateUser"),
            ("Version", "2010-05-08"),
            ("UserName", "agent"),
        ],
    );
    let keys = moto.query(
        "iam",
        &[
            ("Action", "CreateAccessKey"),
            ("Version", "2010-05-08"),
            ("UserName", "agent"),
        ],
    );
    let (id, secret) = (
        xml_field(&keys, "AccessKeyId").unwrap().to_owned(),
        xml_field(&keys, "SecretAccessKey").unwrap().to_owned(),
    );
    moto_auth(&moto, 0);
    let aws = VaultAws::start(bao.clone(), &moto.endpoint(), "aws");
    aws.role(
        "agent",
        &["arn:aws:iam::123456789012:user/agent"],
        &["ns-reader"],
    );
    aws.require_server_id(Some("vault.example.test"));
    let home = tempfile::tempdir().unwrap();
    let env = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
    ];
    // The request names sts.eu-west-1.amazonaws.com (no endpoint key in the
    // connector); the stand-in, as Vault does, sends it to its own STS
    // endpoint with the signed Host.
    let config = json!({
        "vault_address": aws.url(),
        "vault_namespace": NS,
        "vault_session": {
            "vault_auth_type": "aws",
            "vault_aws_role": "agent",
            "aws_region": "eu-west-1",
            "vault_aws_iam_server_id": "vault.example.test",
        },
    });
    let done = run(home.path(), &env, config.clone());
    assert_eq!(done.value(HANDLE), VALUE);
    let attempts = aws.attempts();
    assert_eq!(attempts.len(), 1, "one login per call: {attempts:?}");
    let a = &attempts[0];
    assert_eq!(
        a.namespace.as_deref(),
        Some(NS),
        "the login carries the namespace"
    );
    assert!(a.authorization.contains("/eu-west-1/sts/"), "{a:?}");
    let token = a.outcome.clone().unwrap();
    let (status, _) = bao.api(
        "POST",
        &format!("{NS}/auth/token/lookup"),
        Some(json!({"token": token})),
    );
    assert_eq!(
        status, 403,
        "the login token was revoked (lookup of a dead token is refused)"
    );
    let signature = a.authorization.rsplit("Signature=").next().unwrap();
    assert_no_leak(
        "stderr",
        &done.stderr,
        &[&secret, signature, &a.headers_field, &token],
    );

    // Without the server id the mount requires: refused, one attempt more.
    let mut no_id = config.clone();
    no_id["vault_session"]
        .as_object_mut()
        .unwrap()
        .remove("vault_aws_iam_server_id");
    let done = run(home.path(), &env, no_id);
    assert!(
        done.error(HANDLE)
            .contains("credentials refused (HTTP 400)"),
        "{done}"
    );
    assert_eq!(aws.attempts().len(), 2);

    // implicit_auth: no login, the token from the environment (here, a
    // token of the namespace's reader policy in VAULT_TOKEN).
    let (_, created) = bao.api(
        "POST",
        &format!("{NS}/auth/token/create"),
        Some(json!({"policies": ["ns-reader"], "ttl": "5m"})),
    );
    let implicit = created["auth"]["client_token"].as_str().unwrap().to_owned();
    assert_ne!(implicit, ROOT_TOKEN);
    let done = run(
        home.path(),
        &[("VAULT_TOKEN", implicit.as_str())],
        json!({"vault_address": aws.url(), "vault_namespace": NS,
               "vault_session": {"implicit_auth": true}}),
    );
    assert_eq!(done.value(HANDLE), VALUE);
    assert_eq!(aws.attempts().len(), 2, "implicit_auth logs in nowhere");
    assert_no_leak("stderr", &done.stderr, &[&implicit]);
}
