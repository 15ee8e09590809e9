//! Shared by the aws backend's tests: seeding moto, and
//! running the real binary against it. A module of the `aws` test binary,
//! and of `conformance` too (which uses only [`Seed`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use aws_credential_types::Credentials;
use backend_aws::api::{Api, Endpoints, Service};
use backend_core::Context;
use backend_tests::moto::{self, Moto};
use backend_tests::{Cmd, Done, payload};
use serde_json::{Value, json};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-aws");

/// Seeds moto through its API, with the crate's own signed client (its
/// reads are what the tests check; these are other operations).
pub struct Seed {
    api: Api,
    region: String,
    rt: tokio::runtime::Runtime,
}

impl Seed {
    pub fn new(moto: &Moto) -> Self {
        Self::in_region(moto, moto::REGION)
    }

    /// Seeds the given region.
    pub fn in_region(moto: &Moto, region: &str) -> Self {
        let creds = Credentials::new(
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY,
            None,
            None,
            "test",
        );
        let endpoints = Endpoints {
            configured: Some(moto.endpoint()),
            ..Endpoints::default()
        };
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            api: Api::new(creds, endpoints).unwrap(),
            region: region.to_owned(),
            rt,
        }
    }

    fn call(&self, service: Service, operation: &str, body: Value) -> Value {
        let ctx = Context::with_budget(std::time::Duration::from_secs(30));
        self.rt
            .block_on(self.api.call(service, &self.region, operation, &body, &ctx))
            .unwrap_or_else(|e| panic!("{operation} {body}: {e:?}"))
    }

    /// Creates a secret with a string value; returns its ARN.
    pub fn secret(&self, name: &str, value: &str) -> String {
        let out = self.call(
            Service::SecretsManager,
            "CreateSecret",
            json!({ "Name": name, "SecretString": value }),
        );
        out["ARN"].as_str().unwrap().to_owned()
    }

    /// Creates a secret with a binary value.
    pub fn binary(&self, name: &str, value: &[u8]) {
        use base64::Engine as _;
        let b64 = base64::engine::general_purpose::STANDARD.encode(value);
        self.call(
            Service::SecretsManager,
            "CreateSecret",
            json!({ "Name": name, "SecretBinary": b64 }),
        );
    }

    /// Puts a new current version; returns its version id.
    pub fn put(&self, name: &str, value: &str) -> String {
        let out = self.call(
            Service::SecretsManager,
            "PutSecretValue",
            json!({ "SecretId": name, "SecretString": value }),
        );
        out["VersionId"].as_str().unwrap().to_owned()
    }

    /// Schedules a secret for deletion (with a recovery window).
    pub fn delete(&self, name: &str) {
        self.call(
            Service::SecretsManager,
            "DeleteSecret",
            json!({ "SecretId": name, "RecoveryWindowInDays": 7 }),
        );
    }

    /// Creates an SSM parameter of `kind` (`String`, `SecureString`, ...).
    pub fn parameter(&self, name: &str, value: &str, kind: &str) {
        self.put_parameter(name, value, kind, false);
    }

    /// A new version of an existing parameter (SecureString).
    pub fn overwrite_parameter(&self, name: &str, value: &str) {
        self.put_parameter(name, value, "SecureString", true);
    }

    fn put_parameter(&self, name: &str, value: &str, kind: &str, overwrite: bool) {
        self.call(
            Service::Ssm,
            "PutParameter",
            json!({ "Name": name, "Value": value, "Type": kind, "Overwrite": overwrite }),
        );
    }
}

/// The binary, run as the agent runs it, against `moto`, with an empty HOME
/// and a generous timeout (moto's first SSM call takes over a second).
pub fn cmd(moto: &Moto, home: &std::path::Path) -> Cmd {
    let mut c = Cmd::new(BIN)
        .args(["--timeout", "20"])
        .env("HOME", home.to_str().unwrap())
        .env_remove("AWS_PROFILE")
        .env_remove("AWS_DEFAULT_REGION")
        .env_remove("AWS_SESSION_TOKEN")
        .env_remove("HTTPS_PROXY")
        .env_remove("HTTP_PROXY")
        .env_remove("https_proxy")
        .env_remove("http_proxy")
        .env_remove("ALL_PROXY");
    for (k, v) in moto.env() {
        c = c.env(k, &v);
    }
    c
}

/// The binary with no AWS settings at all (no moto), an empty HOME.
pub fn bare(home: &std::path::Path) -> Cmd {
    let mut c = Cmd::new(BIN).env("HOME", home.to_str().unwrap());
    for k in [
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_PROFILE",
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_ENDPOINT_URL",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_EC2_METADATA_DISABLED",
        "AWS_EC2_METADATA_SERVICE_ENDPOINT",
        "AWS_CONFIG_FILE",
        "AWS_SHARED_CREDENTIALS_FILE",
        "AWS_ROLE_SESSION_NAME",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN",
        "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
        "HTTPS_PROXY",
        "HTTP_PROXY",
        "https_proxy",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        c = c.env_remove(k);
    }
    c
}

/// Runs `handles` through the binary.
pub fn run(c: &Cmd, handles: &[&str]) -> Done {
    c.clone().stdin(payload(handles)).run()
}

/// Makes a FIFO at `path`. Opening it for reading blocks until someone
/// opens it for writing, which nobody does unless the test does.
pub fn mkfifo(path: &std::path::Path) {
    let made = std::process::Command::new("mkfifo")
        .arg(path)
        .status()
        .unwrap();
    assert!(made.success(), "mkfifo {}", path.display());
}
