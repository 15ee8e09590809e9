//! No credential in a `Debug` print: every config and result type of every
//! store, filled with planted credentials, printed with `{:?}` and `{:#?}`,
//! shows none of them. (The end-to-end suites scan stderr, stdout and the
//! trace log of real calls; this covers what a future `tracing::debug!` of
//! a config or provider would print.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::Duration;

use backend_aws::{AwsConfig, AwsProvider};
use backend_core::config::from_yaml;
use backend_core::{Context, HandleError, Outcome, Provider, Secret};
use backend_file::{FileConfig, FileProvider};
use backend_multi::{MultiConfig, MultiProvider};
use backend_tests::assert_no_leak;
use backend_vault::{AuthConfig, VaultConfig, VaultProvider};
use serde_json::json;

const TOKEN: &str = "planted-token-9f31";
const SECRET_ID: &str = "planted-secret-id-77a0";
const ROLE_ID: &str = "planted-role-id-1c2d";
const JWT: &str = "planted-jwt-eyJhbGciOi";
const PASSWORD: &str = "planted-password-e5e5";
const AWS_SECRET: &str = "planted-aws-secret-key-0b0b";
const AWS_SESSION: &str = "planted-aws-session-token-4d4d";
const EXTERNAL_ID: &str = "planted-external-id-6f6f";
const VALUE: &str = "planted-value-8a8a";

const ALL: [&str; 9] = [
    TOKEN,
    SECRET_ID,
    ROLE_ID,
    JWT,
    PASSWORD,
    AWS_SECRET,
    AWS_SESSION,
    EXTERNAL_ID,
    VALUE,
];

fn no_leak(what: &str, value: &dyn std::fmt::Debug) {
    assert_no_leak(what, &format!("{value:?}"), &ALL);
    assert_no_leak(what, &format!("{value:#?}"), &ALL);
}

fn vault_config() -> VaultConfig {
    VaultConfig {
        address: Some("http://127.0.0.1:9".into()),
        auth: AuthConfig {
            token: Some(TOKEN.into()),
            role_id: Some(ROLE_ID.into()),
            secret_id: Some(SECRET_ID.into()),
            jwt: Some(JWT.into()),
            password: Some(PASSWORD.into()),
            ..AuthConfig::default()
        },
        ..VaultConfig::default()
    }
}

fn aws_config() -> AwsConfig {
    AwsConfig {
        region: Some("us-east-1".into()),
        endpoint_url: Some("http://127.0.0.1:9".into()),
        access_key_id: Some("AKIAPLANTEDKEY000000".into()),
        secret_access_key: Some(AWS_SECRET.into()),
        session_token: Some(AWS_SESSION.into()),
        role_arn: Some("arn:aws:iam::123456789012:role/agent".into()),
        external_id: Some(EXTERNAL_ID.into()),
        ..AwsConfig::default()
    }
}

#[test]
fn vault_config_and_provider() {
    no_leak("VaultConfig", &vault_config());
    no_leak("AuthConfig", &vault_config().auth);
    let provider = VaultProvider::new(VaultConfig {
        address: Some("http://127.0.0.1:9".into()),
        auth: AuthConfig {
            token: Some(TOKEN.into()),
            ..AuthConfig::default()
        },
        ..VaultConfig::default()
    })
    .unwrap();
    no_leak("VaultProvider", &provider);
}

#[tokio::test]
async fn aws_config_and_provider_before_and_after_a_call() {
    no_leak("AwsConfig", &aws_config());
    let provider = AwsProvider::new(aws_config()).unwrap();
    no_leak("AwsProvider", &provider);
    // After a call the provider holds the SDK's config and credentials.
    let ctx = Context::with_budget(Duration::from_secs(2));
    let out = provider.resolve(&["x".to_owned()], &ctx).await;
    assert!(out[0].is_err());
    no_leak("AwsProvider after a call", &provider);
    no_leak("its outcome", &out);
}

#[test]
fn file_config_and_provider() {
    let config = FileConfig {
        dir: Some("/run/secrets".into()),
        ..FileConfig::default()
    };
    no_leak("FileConfig", &config);
    no_leak("FileProvider", &FileProvider::new(config).unwrap());
}

#[test]
fn secrets_and_outcomes() {
    let secret = Secret::from(VALUE);
    no_leak("Secret", &secret);
    let outcomes: Vec<Outcome> = vec![
        Ok(Secret::from(VALUE)),
        Err(HandleError::not_found("secret/db: no secret at this path")),
    ];
    no_leak("outcomes", &outcomes);
}

#[test]
fn multi_provider_from_a_config_file_and_from_a_caller() {
    let config: MultiConfig = from_yaml(&format!(
        "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:9\n    auth:\n      token: {TOKEN}\n  \
         a:\n    type: aws\n    region: us-east-1\n    access_key_id: AKIAPLANTEDKEY000000\n    secret_access_key: {AWS_SECRET}\n"
    ))
    .unwrap();
    no_leak("MultiProvider", &MultiProvider::new(config).unwrap());
    let caller = MultiProvider::from_caller(
        "hashicorp.vault",
        Some(
            &json!({"vault_address": "http://127.0.0.1:9", "vault_token": TOKEN,
                     "vault_session": {"vault_role_id": ROLE_ID, "vault_secret_id": SECRET_ID}}),
        ),
    )
    .unwrap();
    no_leak("MultiProvider from the caller", &caller);
}

#[test]
fn multi_config() {
    let config: MultiConfig = from_yaml(&format!(
        "backends:\n  v:\n    type: vault\n    auth:\n      token: {TOKEN}\n"
    ))
    .unwrap();
    no_leak("MultiConfig", &config);
}
