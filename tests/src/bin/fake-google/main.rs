//! `fake-google`: GCP Secret Manager for the benchmark harness
//! (`bench/bench.py`): drongo, the emulator of `backend_tests::drongo`
//! (`$DRONGO`, else `drongo` on `PATH`), behind the fake Google of
//! `backend_tests::gcp_auth` (an OAuth token endpoint that checks the
//! service account's signed assertion, and a front that demands the tokens
//! it issued and forwards to drongo).
//!
//! ```text
//! fake-google [--secrets N] [--keys K] [--project P]
//! ```
//!
//! Starts drongo and the fake on free ports of 127.0.0.1, seeds `N` secrets
//! `P/app<i>` (default 20, project `bench`), each with one version holding a
//! JSON object of `K` keys `k<j>` = `gcp-<i>-<j>` (default 5), writes a
//! service account key file (mode 0600) whose `token_uri` is the fake's
//! token endpoint, and prints one JSON line:
//!
//! ```text
//! {"endpoint":"http://127.0.0.1:PORT","token_uri":"...","credentials_file":"...","drongo":"http://127.0.0.1:PORT","project":"bench","secrets":N,"keys":K}
//! ```
//!
//! `endpoint` is the front (the `endpoint:` of a config); `drongo` the
//! emulator itself, which checks no credentials.
//!
//! Then it reads commands on stdin, one a line, and answers each with one
//! JSON line on stdout:
//!
//! - `take`: the requests the fake saw since the last `take` (or the
//!   start), classified: `token` for a token granted, `access` for a
//!   version's `:access` forwarded to drongo (whatever drongo answered),
//!   else `refused <method> <what>` or `<method> <what>` (`refused POST
//!   token`, `GET other`), as `{"total":N,"counts":{"token":1,"access":20}}`.
//!
//! It serves until stdin closes (drongo is stopped and the key file
//! removed then) or it is killed.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use backend_tests::drongo::Drongo;
use backend_tests::files::write_private;
use backend_tests::gcp_auth::{FakeGoogle, Seen};
use serde_json::json;

/// The command line and the stdio protocol, shared with `fake-azure`.
#[path = "../fake-azure/driver.rs"]
mod driver;

const SA_EMAIL: &str = "bench@bench.iam.gserviceaccount.com";
/// The gcp tests' throwaway service account key; it protects nothing.
const SA_KEY: &str = include_str!("../../../../backend-gcp/tests/data/test-sa-key.pem");

fn classify(s: &Seen) -> String {
    let path = s.target.split('?').next().unwrap_or_default();
    let what = if path == "/token" {
        "token"
    } else if path.starts_with("/v1/") && path.ends_with(":access") {
        "access"
    } else {
        "other"
    };
    match (s.granted, what) {
        (true, "token" | "access") => what.to_owned(),
        (true, _) => format!("{} {what}", s.method),
        (false, _) => format!("refused {} {what}", s.method),
    }
}

fn main() {
    let o = driver::options(
        "fake-google [--secrets N] [--keys K] [--project P]",
        &[("project", "bench")],
    );
    let project = &o.more["project"];
    let drongo = Drongo::start();
    for i in 0..o.secrets {
        let data = driver::document("gcp", i, o.keys);
        drongo.put(project, &format!("app{i}"), data.as_bytes());
    }
    let google = FakeGoogle::start(Some(&drongo.url()));
    google.add_service_account(SA_EMAIL, SA_KEY);
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("service-account.json");
    let key = json!({
        "type": "service_account",
        "project_id": project,
        "private_key_id": "0000bench",
        "private_key": SA_KEY,
        "client_email": SA_EMAIL,
        "client_id": "1000000000bench",
        "token_uri": google.token_uri(),
    });
    write_private(&credentials, &key.to_string());
    let ready = json!({
        "endpoint": google.url(),
        "token_uri": google.token_uri(),
        "credentials_file": credentials,
        "drongo": drongo.url(),
        "project": project,
        "secrets": o.secrets,
        "keys": o.keys,
    });
    driver::serve(&ready, || google.seen(), classify);
    // stdin closed: stop the fake and drongo, remove the key file.
    drop(google);
    drop(drongo);
    drop(dir);
}
