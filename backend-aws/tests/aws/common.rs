//! Shared by the aws backend's tests: seeding moto with the SDK, and
//! running the real binary against it. A module of the `aws` test binary,
//! and of `conformance` too (which uses only [`Seed`]).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test helpers

use aws_sdk_secretsmanager::config::{BehaviorVersion, Credentials, Region};
use aws_sdk_secretsmanager::primitives::Blob;
use backend_tests::moto::{self, Moto};
use backend_tests::{Cmd, Done, payload};

pub const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-aws");

/// Seeds moto through its API with the Rust SDK.
pub struct Seed {
    pub sm: aws_sdk_secretsmanager::Client,
    pub ssm: aws_sdk_ssm::Client,
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
        let sm = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            // The crate's own client: the SDK has no default one in this build.
            .http_client(backend_aws::http::client())
            .region(Region::new(region.to_owned()))
            .endpoint_url(moto.endpoint())
            .credentials_provider(creds.clone())
            .build();
        let ssm = aws_sdk_ssm::Config::builder()
            .behavior_version(BehaviorVersion::latest())
            // The crate's own client: the SDK has no default one in this build.
            .http_client(backend_aws::http::client())
            .region(aws_sdk_ssm::config::Region::new(region.to_owned()))
            .endpoint_url(moto.endpoint())
            .credentials_provider(creds)
            .build();
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        Self {
            sm: aws_sdk_secretsmanager::Client::from_conf(sm),
            ssm: aws_sdk_ssm::Client::from_conf(ssm),
            rt,
        }
    }

    /// Creates a secret with a string value; returns its ARN.
    pub fn secret(&self, name: &str, value: &str) -> String {
        let out = self
            .rt
            .block_on(
                self.sm
                    .create_secret()
                    .name(name)
                    .secret_string(value)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("create {name}: {}", display(&e)));
        out.arn().unwrap().to_owned()
    }

    /// Creates a secret with a binary value.
    pub fn binary(&self, name: &str, value: &[u8]) {
        self.rt
            .block_on(
                self.sm
                    .create_secret()
                    .name(name)
                    .secret_binary(Blob::new(value))
                    .send(),
            )
            .unwrap_or_else(|e| panic!("create {name}: {}", display(&e)));
    }

    /// Puts a new current version; returns its version id.
    pub fn put(&self, name: &str, value: &str) -> String {
        let out = self
            .rt
            .block_on(
                self.sm
                    .put_secret_value()
                    .secret_id(name)
                    .secret_string(value)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put {name}: {}", display(&e)));
        out.version_id().unwrap().to_owned()
    }

    /// Schedules a secret for deletion (with a recovery window).
    pub fn delete(&self, name: &str) {
        self.rt
            .block_on(
                self.sm
                    .delete_secret()
                    .secret_id(name)
                    .recovery_window_in_days(7)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("delete {name}: {}", display(&e)));
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
        self.rt
            .block_on(
                self.ssm
                    .put_parameter()
                    .name(name)
                    .value(value)
                    .r#type(kind.into())
                    .overwrite(overwrite)
                    .send(),
            )
            .unwrap_or_else(|e| panic!("put parameter {name}: {}", display(&e)));
    }
}

fn display(e: &(dyn std::error::Error + 'static)) -> String {
    backend_aws::errors::chain(e)
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
