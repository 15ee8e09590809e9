//! The core's conformance kit against an `AwsProvider` on a real moto server.
//!
//! In-process, so the provider reads this process's environment: the one
//! test of this binary sets the static test credentials before anything
//! else runs (hence its own test binary, apart from the crate's other
//! integration tests in `tests/aws/`, and the `unsafe` of `set_var`).

#![allow(unsafe_code, clippy::unwrap_used, clippy::expect_used, clippy::panic)]

// The `aws` binary's helpers; this binary uses only `Seed`.
#[path = "aws/common.rs"]
#[allow(dead_code)]
mod common;

use std::time::Duration;

use backend_aws::{AwsConfig, AwsProvider};
use backend_core::testkit::{Cases, check};
use backend_tests::moto::{self, Moto};
use common::Seed;

#[test]
fn conformance_on_moto() {
    let home = tempfile::tempdir().unwrap();
    // SAFETY: the only test of this binary, before any other thread exists
    // that could read the environment.
    unsafe {
        std::env::set_var("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID);
        std::env::set_var("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY);
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        std::env::set_var("HOME", home.path());
        for k in [
            "AWS_PROFILE",
            "AWS_SESSION_TOKEN",
            "AWS_ENDPOINT_URL",
            "AWS_REGION",
        ] {
            std::env::remove_var(k);
        }
    }
    let moto = Moto::start();
    let seed = Seed::new(&moto);
    seed.secret(
        "kit/db",
        r#"{"user":"kit-user","password":"kit-pw","port":5432}"#,
    );
    seed.secret("kit/plain", "kit-plain-value");
    seed.parameter("/kit/param", "kit-param-value", "SecureString");
    let provider = AwsProvider::new(AwsConfig {
        region: Some(moto::REGION.into()),
        endpoint_url: Some(moto.endpoint()),
        ..AwsConfig::default()
    })
    .unwrap();
    let cases = Cases {
        found: [
            ("kit/db;password", "kit-pw"),
            ("kit/db;/port", "5432"),
            ("kit/plain", "kit-plain-value"),
            ("ssm:/kit/param", "kit-param-value"),
        ]
        .iter()
        .map(|(h, v)| (h.to_string(), v.to_string()))
        .collect(),
        missing: vec![
            "kit/absent".into(),
            "kit/absent;password".into(),
            "kit/db;nokey".into(),
            "ssm:/kit/absent".into(),
        ],
        budget: Some(Duration::from_secs(10)),
    };
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(check(&provider, &cases));
}
