//! The cloud stores in `secret-backend`: Azure Key Vault (against the fake
//! of `backend_tests::azure`) as `type: azure` in the config file, and as
//! the Datadog connector's `azure.keyvault` in a request's `type` and
//! `config` (its keys matched case-insensitively, unknown ones dropped);
//! GCP Secret Manager (drongo behind the fake Google endpoints of
//! `backend_tests::gcp_auth`, the metadata server's identity) as `type:
//! gcp` in the config file and in a request. Each with the same answers,
//! errors and leak-free output as the single-store binary. (The
//! connector's `gcp.secretmanager` carries only `gcp_session.project_id`:
//! with no endpoint key it cannot reach an emulator, so its translation is
//! unit-tested in `connectors.rs`.)

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::time::Duration;

use backend_tests::azure::{FakeAzure, IDENTITY_VARS, TENANT};
use backend_tests::drongo::Drongo;
use backend_tests::gcp_auth::FakeGoogle;
use backend_tests::multi::MultiConfig;
use backend_tests::{Cmd, assert_no_leak, go_payload, payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");
const APP: &str = "a9911c1e-0000-4000-8000-00000000app1";
const CLIENT_SECRET: &str = "client-S3CRET-multi-0123456789";
const PASSWORD: &str = "pa55-w0rd-MULTI-1";

fn azure() -> FakeAzure {
    let az = FakeAzure::start();
    az.add_app(TENANT, APP, Some(CLIENT_SECRET));
    az.use_rbac(true);
    az.grant(APP, &[]);
    az.put_secret("db", &format!(r#"{{"password":"{PASSWORD}"}}"#));
    az
}

fn cmd(dir: &Path) -> Cmd {
    let mut cmd = Cmd::new(BIN);
    for v in IDENTITY_VARS {
        cmd = cmd.env_remove(v);
    }
    cmd.args(["--log-level", "trace"])
        .args(["--log-file", dir.join("trace.log").to_str().unwrap()])
        .kill_after(Duration::from_secs(60))
}

fn no_leaks(dir: &Path, done: &backend_tests::Done) {
    let log = std::fs::read_to_string(dir.join("trace.log")).unwrap_or_default();
    let secrets = [CLIENT_SECRET, PASSWORD, "fake-access-token-"];
    assert_no_leak("stderr", &done.stderr, &secrets);
    assert_no_leak("the trace log", &log, &secrets);
    assert_no_leak(
        "stdout",
        done.stdout_str(),
        &[CLIENT_SECRET, "fake-access-token-"],
    );
}

#[test]
fn azure_from_the_config_file() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    let (url, ca) = (az.url(), az.ca_file().display().to_string());
    let session = format!(
        "{{azure_tenant_id: {TENANT}, azure_client_id: {APP}, azure_client_secret: {CLIENT_SECRET}}}"
    );
    let config = MultiConfig::new()
        .store(
            "kv",
            "azure",
            &[
                ("keyvaulturl", &url),
                ("authority_host", &url),
                ("ca_file", &ca),
                ("azure_session", &session),
            ],
        )
        .write(dir.path(), "config.yaml");
    let done = cmd(dir.path())
        .args(["--config", config.to_str().unwrap()])
        .stdin(payload(&["kv:db;password", "kv:nope", "kv:bad_name!"]))
        .run();
    done.expect_code(0);
    assert_eq!(done.value("kv:db;password"), PASSWORD, "{done}");
    assert!(done.error("kv:nope").contains("SecretNotFound"), "{done}");
    assert!(!done.error("kv:bad_name!").is_empty(), "{done}");
    no_leaks(dir.path(), &done);
    // The bad name was refused before anything was sent: one GET, for db
    // and nope each.
    assert_eq!(az.count("/secrets/bad_name!"), 0);
}

#[test]
fn azure_keyvault_from_the_request_as_the_connector_sends_it() {
    let az = azure();
    let dir = tempfile::tempdir().unwrap();
    // The connector's keys only, in its own spelling and case; the fake's
    // CA and authority come from the environment, as on a host they would.
    let config = json!({
        "KeyVaultURL": az.url(),
        "azure_session": {
            "Azure_Tenant_ID": TENANT,
            "azure_client_id": APP,
            "azure_client_secret": CLIENT_SECRET,
        },
        "something_the_connector_ignores": true,
    });
    let done = cmd(dir.path())
        .env("SSL_CERT_FILE", az.ca_file().to_str().unwrap())
        .env("AZURE_AUTHORITY_HOST", &az.url())
        .stdin(go_payload(
            "1.1",
            &["db;password"],
            &[("type", json!("azure.keyvault")), ("config", config)],
        ))
        .run();
    done.expect_code(0);
    assert_eq!(done.value("db;password"), PASSWORD, "{done}");
    no_leaks(dir.path(), &done);
}

const GCP_PROJECT: &str = "proj-multi";
const GCP_VALUE: &str = "gcp-pa55-MULTI-2";

/// drongo holding `db` (JSON) behind the fake Google (token check,
/// metadata server).
fn gcp() -> (Drongo, FakeGoogle) {
    let d = Drongo::start();
    d.put(
        GCP_PROJECT,
        "db",
        format!(r#"{{"password":"{GCP_VALUE}"}}"#).as_bytes(),
    );
    let google = FakeGoogle::start(Some(&d.url()));
    (d, google)
}

fn gcp_cmd(dir: &Path, google: &FakeGoogle) -> Cmd {
    cmd(dir)
        .env("HOME", dir.to_str().unwrap())
        .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
        .env_remove("GOOGLE_CLOUD_PROJECT")
        .env_remove("CLOUDSDK_CONFIG")
        .env("GCE_METADATA_HOST", &google.metadata_host())
}

fn gcp_no_leaks(dir: &Path, done: &backend_tests::Done, google: &FakeGoogle) {
    let log = std::fs::read_to_string(dir.join("trace.log")).unwrap_or_default();
    let tokens = google.issued();
    assert!(!tokens.is_empty(), "no token was issued");
    let mut secrets: Vec<&str> = tokens.iter().map(String::as_str).collect();
    assert_no_leak("stdout", done.stdout_str(), &secrets);
    secrets.push(GCP_VALUE);
    assert_no_leak("stderr", &done.stderr, &secrets);
    assert_no_leak("the trace log", &log, &secrets);
}

#[test]
fn gcp_from_the_config_file() {
    let (_d, google) = gcp();
    let dir = tempfile::tempdir().unwrap();
    let session = format!("{{project_id: {GCP_PROJECT}}}");
    let config = MultiConfig::new()
        .store(
            "sm",
            "gcp",
            &[("endpoint", &google.url()), ("gcp_session", &session)],
        )
        .write(dir.path(), "config.yaml");
    let done = gcp_cmd(dir.path(), &google)
        .args(["--config", config.to_str().unwrap()])
        .stdin(payload(&["sm:db;password", "sm:nope", "sm:bad name"]))
        .run();
    done.expect_code(0);
    assert_eq!(done.value("sm:db;password"), GCP_VALUE, "{done}");
    assert!(!done.error("sm:nope").is_empty(), "{done}");
    assert!(!done.error("sm:bad name").is_empty(), "{done}");
    gcp_no_leaks(dir.path(), &done, &google);
}

#[test]
fn gcp_from_the_request() {
    let (_d, google) = gcp();
    let dir = tempfile::tempdir().unwrap();
    let done = gcp_cmd(dir.path(), &google)
        .stdin(go_payload(
            "1.1",
            &["db;password"],
            &[
                ("type", json!("gcp")),
                (
                    "config",
                    json!({"endpoint": google.url(), "gcp_session": {"project_id": GCP_PROJECT}}),
                ),
            ],
        ))
        .run();
    done.expect_code(0);
    assert_eq!(done.value("db;password"), GCP_VALUE, "{done}");
    gcp_no_leaks(dir.path(), &done, &google);
}
