//! `fake-azure`: the fake Key Vault and Entra ID of `backend_tests::azure`,
//! run on its own for the benchmark harness (`bench/bench.py`).
//!
//! ```text
//! fake-azure [--secrets N] [--keys K]
//! ```
//!
//! Starts the fake on free ports of 127.0.0.1 (TLS with a fresh CA; one
//! port is both the vault and the authority host), registers one
//! application of tenant [`TENANT`] with a client secret, allowed every
//! secret by RBAC, seeds `N` secrets `app<i>` (default 20) each holding a
//! JSON object of `K` keys `k<j>` = `azure-<i>-<j>` (default 5), and prints
//! one JSON line:
//!
//! ```text
//! {"vault_url":"https://127.0.0.1:PORT","authority_host":"https://127.0.0.1:PORT","ca_file":"...","tenant":"...","client_id":"...","client_secret":"...","secrets":N,"keys":K}
//! ```
//!
//! Then it reads commands on stdin, one a line, and answers each with one
//! JSON line on stdout:
//!
//! - `take`: the requests seen since the last `take` (or the start),
//!   classified: `token` for a token request answered 200, `read` for a
//!   `GET` of a secret answered 200, else `<status> <method> <what>` (`404
//!   GET secret`, `401 GET secret`, `400 POST token`, `404 GET other`;
//!   status 0 is a hang), as `{"total":N,"counts":{"token":1,"read":20}}`.
//!
//! It serves until stdin closes (the CA file is removed then) or it is
//! killed.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use backend_tests::azure::{FakeAzure, Seen, TENANT};
use serde_json::json;

mod driver;

const CLIENT_ID: &str = "b3c4be11-0000-4000-8000-0000000bench";
const CLIENT_SECRET: &str = "fake-azure-bench-client-secret";

fn classify(s: &Seen) -> String {
    let what = if s.path.ends_with("/oauth2/v2.0/token") {
        "token"
    } else if s.path.starts_with("/secrets/") {
        "secret"
    } else {
        "other"
    };
    match (s.method.as_str(), s.status, what) {
        ("POST", 200, "token") => "token".to_owned(),
        ("GET", 200, "secret") => "read".to_owned(),
        (m, code, what) => format!("{code} {m} {what}"),
    }
}

fn main() {
    let o = driver::options("fake-azure [--secrets N] [--keys K]", &[]);
    let az = FakeAzure::start();
    az.add_app(TENANT, CLIENT_ID, Some(CLIENT_SECRET));
    az.use_rbac(true);
    az.grant(CLIENT_ID, &[]);
    for i in 0..o.secrets {
        az.put_secret(&format!("app{i}"), &driver::document("azure", i, o.keys));
    }
    let ready = json!({
        "vault_url": az.url(),
        "authority_host": az.url(),
        "ca_file": az.ca_file(),
        "tenant": TENANT,
        "client_id": CLIENT_ID,
        "client_secret": CLIENT_SECRET,
        "secrets": o.secrets,
        "keys": o.keys,
    });
    driver::serve(&ready, || az.requests(), classify);
    // stdin closed: dropping `az` stops it and removes its files.
    drop(az);
}
