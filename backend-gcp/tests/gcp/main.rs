//! The gcp backend's integration tests, one test binary (issue 14): the
//! real `secret-backend-gcp` binary against drongo, the Secret Manager
//! emulator (`backend_tests::drongo`), behind the fake Google endpoints
//! of `backend_tests::gcp_auth` (token endpoint, metadata server, IAM
//! impersonation, and a front that demands the issued tokens and injects
//! CRC32C checksums and faults). Modules by subject: `handles`,
//! `credentials`, `faults`, `conformance`; what they share is here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backend_tests::drongo::Drongo;
use backend_tests::fault::{BODY_MARKER, isolated};
use backend_tests::files::private_file;
use backend_tests::gcp_auth::{ApiFault, FakeGoogle, METADATA_PROJECT};
use backend_tests::{Cmd, Done, Shared, assert_no_leak, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-gcp");
const PROJECT: &str = "proj-a";
const OTHER: &str = "other-proj";
const SA_EMAIL: &str = "agent@proj-a.iam.gserviceaccount.com";
const SA_KEY: &str = include_str!("../data/test-sa-key.pem");
const OTHER_KEY: &str = include_str!("../data/other-key.pem");
const PASSWORD: &str = "pa55-w0rd-VALUE-1";
const PASSWORD_V1: &str = "old-pa55-VALUE-0";
const USER: &str = "db-user-VALUE-2";
const API_KEY: &str = "api-key-VALUE-3";
const OTHER_VALUE: &str = "other-project-VALUE-4";
const META_VALUE: &str = "metadata-project-VALUE-5";
const CLIENT_SECRET: &str = "client-secret-CRED-6";
const REFRESH_TOKEN: &str = "1//refresh-token-CRED-7";
const SUBJECT_TOKEN: &str = "subject-token-CRED-8";

/// Every planted value and credential, for leak scans.
const PLANTED: &[&str] = &[
    PASSWORD,
    PASSWORD_V1,
    USER,
    API_KEY,
    OTHER_VALUE,
    META_VALUE,
    CLIENT_SECRET,
    REFRESH_TOKEN,
    SUBJECT_TOKEN,
    "FAKE-ACCESS-TOKEN",
    "aws-secret-KEY",
    "aws-session-TOKEN",
    "imds-session-TOKEN",
    "PRIVATE KEY",
    BODY_MARKER,
];

/// One drongo for the whole test binary, seeded once.
static DRONGO: Shared<Drongo> = Shared::new();

fn drongo() -> Arc<Drongo> {
    DRONGO.get(|| {
        let d = Drongo::start();
        d.create_secret(PROJECT, "db");
        let v1 = serde_json::json!({"user": USER, "password": PASSWORD_V1}).to_string();
        d.add_version(PROJECT, "db", v1.as_bytes());
        let v2 = serde_json::json!({"user": USER, "password": PASSWORD, "nested": {"port": 5432}})
            .to_string();
        d.add_version(PROJECT, "db", v2.as_bytes());
        d.put(PROJECT, "api", API_KEY.as_bytes());
        d.put(PROJECT, "binary", &[0xff, 0xfe, 0x00, 0x80]);
        d.put(PROJECT, "empty-ish", b"not json");
        d.create_secret(PROJECT, "states");
        for v in ["one", "two", "three"] {
            d.add_version(PROJECT, "states", v.as_bytes());
        }
        d.disable(PROJECT, "states", "1");
        d.destroy(PROJECT, "states", "2");
        d.put(OTHER, "x", OTHER_VALUE.as_bytes());
        d.put(METADATA_PROJECT, "m", META_VALUE.as_bytes());
        d
    })
}

/// A test's world: drongo behind a fake Google, a scratch HOME.
struct World {
    _drongo: Arc<Drongo>,
    google: FakeGoogle,
    dir: tempfile::TempDir,
}

impl World {
    fn new() -> Self {
        let d = drongo();
        let google = FakeGoogle::start(Some(&d.url()));
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("home")).unwrap();
        Self {
            _drongo: d,
            google,
            dir,
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        private_file(self.dir.path(), name, text)
    }

    /// A config naming the fake's endpoint and `extra`.
    fn config(&self, extra: &str) -> PathBuf {
        self.write(
            "config.yaml",
            &format!("endpoint: {}\n{extra}", self.google.url()),
        )
    }

    /// A service account key file for `key` (registered or not).
    fn service_account(&self, name: &str, key: &str) -> PathBuf {
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": PROJECT,
            "private_key_id": "0123abcd",
            "private_key": key,
            "client_email": SA_EMAIL,
            "client_id": "1234567890",
            "token_uri": self.google.token_uri(),
        });
        self.write(name, &json.to_string())
    }

    /// The binary as the agent runs it: our HOME (no gcloud ADC file), no
    /// GOOGLE_* from the developer, the fake metadata server.
    fn cmd(&self, config: &Path, handles: &[&str]) -> Cmd {
        isolated(Cmd::new(BIN))
            .args(["--config", config.to_str().unwrap()])
            .args(["--log-level", "trace"])
            .args(["--log-file", self.path("trace.log").to_str().unwrap()])
            .env("HOME", self.path("home").to_str().unwrap())
            .env_remove("GOOGLE_APPLICATION_CREDENTIALS")
            .env_remove("GOOGLE_CLOUD_PROJECT")
            .env_remove("CLOUDSDK_CONFIG")
            .env("GCE_METADATA_HOST", &self.google.metadata_host())
            .stdin(payload(handles))
            .kill_after(Duration::from_secs(60))
    }

    /// No value, credential, token or injected body in stderr or the trace
    /// log; no credential or token in stdout.
    fn no_leaks(&self, done: &Done) {
        let log = std::fs::read_to_string(self.path("trace.log")).unwrap_or_default();
        let tokens = self.google.issued();
        let mut planted: Vec<&str> = PLANTED.to_vec();
        planted.extend(tokens.iter().map(String::as_str));
        assert_no_leak("stderr", &done.stderr, &planted);
        assert_no_leak("the trace log", &log, &planted);
        let mut creds: Vec<&str> = vec![CLIENT_SECRET, REFRESH_TOKEN, SUBJECT_TOKEN, "PRIVATE KEY"];
        creds.extend(tokens.iter().map(String::as_str));
        assert_no_leak("stdout", done.stdout_str(), &creds);
    }

    fn access_count(&self, project: &str, secret: &str, version: &str) -> usize {
        self.google.count(&format!(
            "/v1/projects/{project}/secrets/{secret}/versions/{version}:access"
        ))
    }
}

mod conformance;
mod credentials;
mod faults;
mod handles;
mod hostile;
