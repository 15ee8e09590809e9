//! End-to-end tests: the real `secret-backend-gcp` binary against drongo,
//! the Secret Manager emulator (`backend_tests::drongo`), behind the fake
//! Google endpoints of `backend_tests::gcp_auth` (token endpoint, metadata
//! server, IAM impersonation, and a front that demands the issued tokens
//! and injects CRC32C checksums and faults). One test binary, modules by
//! subject.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use backend_tests::drongo::Drongo;
use backend_tests::fault::{BODY_MARKER, isolated};
use backend_tests::gcp_auth::{ApiFault, FakeGoogle, METADATA_PROJECT};
use backend_tests::k8s::set_mode;
use backend_tests::{Cmd, Done, Shared, assert_no_leak, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-gcp");
const PROJECT: &str = "proj-a";
const OTHER: &str = "other-proj";
const SA_EMAIL: &str = "agent@proj-a.iam.gserviceaccount.com";
const SA_KEY: &str = include_str!("data/test-sa-key.pem");
const OTHER_KEY: &str = include_str!("data/other-key.pem");
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
        let p = self.path(name);
        if let Some(parent) = p.parent() {
            std::fs::create_dir_all(parent).unwrap();
        }
        std::fs::write(&p, text).unwrap();
        set_mode(&p, 0o600);
        p
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

mod handles {
    use super::*;

    #[test]
    fn every_form_one_access_per_version() {
        let w = World::new();
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let handles = [
            "db;password",
            "db;user",
            "db;/nested/port",
            "db;password;1",
            "db;;1",
            "api",
            "api;;latest",
            "projects/other-proj/secrets/x",
            "projects/proj-a/secrets/db/versions/1;user",
            "missing",
            "db;nokey",
            "db;;7",
            "binary",
            "empty-ish;k",
            "bad/name",
        ];
        let done = w.cmd(&config, &handles).run();
        done.expect_code(0);
        assert_eq!(done.value("db;password"), PASSWORD, "{done}");
        assert_eq!(done.value("db;user"), USER);
        assert_eq!(done.value("db;/nested/port"), "5432");
        assert_eq!(done.value("db;password;1"), PASSWORD_V1);
        assert!(done.value("db;;1").contains(PASSWORD_V1));
        assert_eq!(done.value("api"), API_KEY);
        assert_eq!(done.value("api;;latest"), API_KEY);
        assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
        assert_eq!(
            done.value("projects/proj-a/secrets/db/versions/1;user"),
            USER
        );
        let e = done.error("missing");
        assert!(
            e.starts_with("projects/proj-a/secrets/missing/versions/latest: not found"),
            "{e}"
        );
        let e = done.error("db;nokey");
        assert!(
            e.contains("no key 'nokey'") && e.contains("password"),
            "{e}"
        );
        assert!(!e.contains(PASSWORD), "{e}");
        assert!(done.error("db;;7").contains("not found"));
        assert!(done.error("binary").contains("not UTF-8"));
        assert!(done.error("empty-ish;k").contains("not a JSON document"));
        assert!(done.error("bad/name").contains("invalid handle"));
        // One access per distinct (secret, version), whatever the handles.
        assert_eq!(
            w.access_count(PROJECT, "db", "latest"),
            1,
            "{:?}",
            w.google.seen()
        );
        assert_eq!(w.access_count(PROJECT, "db", "1"), 1);
        assert_eq!(w.access_count(PROJECT, "api", "latest"), 1);
        assert_eq!(w.access_count(OTHER, "x", "latest"), 1);
        assert_eq!(w.google.count("/v1/"), 8, "{:?}", w.google.seen());
        // One metadata token for the call.
        assert_eq!(w.google.count("/computeMetadata/v1/instance"), 1);
        w.no_leaks(&done);
        // At the default log level an all-answered call prints nothing.
        let quiet = isolated(Cmd::new(BIN))
            .args(["--config", config.to_str().unwrap()])
            .env("HOME", w.path("home").to_str().unwrap())
            .env("GCE_METADATA_HOST", &w.google.metadata_host())
            .stdin(payload(&["api"]))
            .run();
        assert_eq!(quiet.value("api"), API_KEY, "{quiet}");
        assert!(quiet.stderr.is_empty(), "{quiet}");
    }

    #[test]
    fn invalid_handles_send_nothing() {
        let w = World::new();
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w
            .cmd(
                &config,
                &["", "a/b", "db;k;1;x", "db;;../x", "projects/p/secrets"],
            )
            .run();
        done.expect_code(0);
        for h in ["", "a/b", "db;k;1;x", "db;;../x", "projects/p/secrets"] {
            assert!(done.error(h).contains("invalid handle"), "{h}: {done}");
        }
        assert!(w.google.seen().is_empty(), "{:?}", w.google.seen());
    }

    #[test]
    fn versions_states_aliases_and_regions() {
        let w = World::new();
        let config = w.config(&format!("gcp_session:\n  project_id: {PROJECT}\n"));
        let done = w
            .cmd(
                &config,
                &["states;;1", "states;;2", "states", "states;;prod"],
            )
            .run();
        assert_eq!(done.value("states"), "three", "{done}");
        let e = done.error("states;;1");
        assert!(e.contains("versions/1: the version is disabled"), "{e}");
        let e = done.error("states;;2");
        assert!(e.contains("versions/2: the version is destroyed"), "{e}");
        // An alias goes to the API as it is (drongo has no aliases: 404).
        assert_eq!(w.access_count(PROJECT, "states", "prod"), 1);
        assert!(done.error("states;;prod").contains("not found"));
        w.no_leaks(&done);
        // A regional secret: the location's path (drongo has none: 404).
        let config = w.config(&format!("project_id: {PROJECT}\nlocation: europe-west4\n"));
        let conf_text = std::fs::read_to_string(&config).unwrap();
        assert!(conf_text.contains("endpoint:"));
        let done = w
            .cmd(&config, &["r", "projects/p/locations/us-east1/secrets/s"])
            .run();
        assert_eq!(
            w.google.count(
                "/v1/projects/proj-a/locations/europe-west4/secrets/r/versions/latest:access"
            ),
            1,
            "{:?}",
            w.google.seen()
        );
        assert!(done.error("r").contains("not found"), "{done}");
        let e = done.error("projects/p/locations/us-east1/secrets/s");
        assert!(e.contains("location: us-east1"), "{e}");
    }

    #[test]
    fn aliases_resolve_to_their_targets() {
        let w = World::new();
        let config = w.config(&format!(
            "project_id: {PROJECT}\naliases:\n  db_password: db;password\n  other: projects/other-proj/secrets/x\n"
        ));
        let done = w.cmd(&config, &["db_password", "other", "db;user"]).run();
        assert_eq!(done.value("db_password"), PASSWORD, "{done}");
        assert_eq!(done.value("other"), OTHER_VALUE);
        assert_eq!(done.value("db;user"), USER);
        assert_eq!(w.access_count(PROJECT, "db", "latest"), 1);
        let bad = w.config("aliases:\n  broken: bad/name\n");
        w.cmd(&bad, &["broken"]).run().expect_code(2);
    }
    /// The bench case of issue 18: 100 handles over 20 secrets are one
    /// token request and 20 accesses.
    #[test]
    fn a_hundred_handles_over_twenty_secrets() {
        let w = World::new();
        let d = drongo();
        for i in 0..20 {
            let doc: serde_json::Map<String, serde_json::Value> = (0..5)
                .map(|k| (format!("k{k}"), format!("bench-{i}-{k}").into()))
                .collect();
            let name = format!("bench-{i:02}");
            if d.request(
                "GET",
                &format!("/v1/projects/{PROJECT}/secrets/{name}"),
                None,
            )
            .is_none_or(|(code, _)| code != 200)
            {
                d.put(
                    PROJECT,
                    &name,
                    serde_json::Value::Object(doc).to_string().as_bytes(),
                );
            }
        }
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = w.service_account("sa.json", SA_KEY);
        let config = w.config(&format!("credentials_file: {}\n", sa.display()));
        let handles: Vec<String> = (0..100)
            .map(|n| format!("bench-{:02};k{}", n / 5, n % 5))
            .collect();
        let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
        let done = w.cmd(&config, &refs).run();
        for (n, h) in handles.iter().enumerate() {
            assert_eq!(
                done.value(h),
                format!("bench-{}-{}", n / 5, n % 5),
                "{done}"
            );
        }
        assert_eq!(w.google.count("/token"), 1);
        assert_eq!(w.google.count("/v1/"), 20, "{:?}", w.google.seen());
        w.no_leaks(&done);
    }
}

mod credentials {
    use super::*;

    #[test]
    fn service_account_key_jwt_exchange() {
        let w = World::new();
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = w.service_account("sa.json", SA_KEY);
        // The project comes from the key file.
        let config = w.config(&format!("credentials_file: {}\n", sa.display()));
        let done = w.cmd(&config, &["db;password", "api"]).run();
        assert_eq!(done.value("db;password"), PASSWORD, "{done}");
        assert_eq!(done.value("api"), API_KEY);
        let grants: Vec<_> = w
            .google
            .seen()
            .into_iter()
            .filter(|s| s.grant.is_some())
            .collect();
        assert_eq!(grants.len(), 1, "{grants:?}");
        assert!(grants[0].granted);
        assert_eq!(
            grants[0].grant.as_deref(),
            Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
        );
        assert_eq!(w.google.count("/computeMetadata/"), 0);
        w.no_leaks(&done);
    }

    #[test]
    fn a_key_the_endpoint_refuses_is_named_not_shown() {
        let w = World::new();
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = w.service_account("sa.json", OTHER_KEY);
        let config = w.config(&format!("credentials_file: {}\n", sa.display()));
        let done = w.cmd(&config, &["db;password"]).run();
        let e = done.error("db;password");
        assert!(
            e.contains("credentials_file")
                && e.contains(SA_EMAIL)
                && e.contains("refused the assertion (HTTP 400, invalid_grant)"),
            "{e}"
        );
        assert_eq!(w.google.count("/v1/"), 0);
        w.no_leaks(&done);
    }

    #[test]
    fn authorized_user_from_the_gcloud_adc_file() {
        let w = World::new();
        w.google
            .add_user("client-1.apps", CLIENT_SECRET, REFRESH_TOKEN);
        let adc = serde_json::json!({
            "type": "authorized_user",
            "client_id": "client-1.apps",
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_uri": w.google.token_uri(),
            "quota_project_id": "billed-proj",
        });
        w.write(
            "home/.config/gcloud/application_default_credentials.json",
            &adc.to_string(),
        );
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, &["api"]).run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert!(
            w.google
                .seen()
                .iter()
                .any(|s| s.grant.as_deref() == Some("refresh_token") && s.granted)
        );
        assert_eq!(w.google.count("/computeMetadata/"), 0);
        // The quota project is billed, as Google's clients do.
        let api_calls: Vec<_> = w
            .google
            .seen()
            .into_iter()
            .filter(|s| s.target.starts_with("/v1/"))
            .collect();
        assert!(
            api_calls
                .iter()
                .all(|s| s.user_project.as_deref() == Some("billed-proj")),
            "{api_calls:?}"
        );
        // CLOUDSDK_CONFIG moves the ADC file: none there, so the metadata server.
        w.google.reset_seen();
        let done = w
            .cmd(&config, &["api"])
            .env("CLOUDSDK_CONFIG", w.path("elsewhere").to_str().unwrap())
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert_eq!(w.google.count("/computeMetadata/"), 1);
        w.no_leaks(&done);
    }

    #[test]
    fn the_chain_order() {
        let w = World::new();
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let good = w.service_account("good.json", SA_KEY);
        let broken = w.write("broken.json", "{\"type\":\"service_account\"}");
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        // GOOGLE_APPLICATION_CREDENTIALS comes before the ADC file and the
        // metadata server.
        w.write(
            "home/.config/gcloud/application_default_credentials.json",
            "{\"type\":\"authorized_user\"}",
        );
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", good.to_str().unwrap())
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        // credentials_file comes before GOOGLE_APPLICATION_CREDENTIALS.
        let config = w.config(&format!(
            "project_id: {PROJECT}\ncredentials_file: {}\n",
            broken.display()
        ));
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", good.to_str().unwrap())
            .run();
        let e = done.error("api");
        assert!(
            e.contains("credentials_file") && e.contains("field client_email is missing"),
            "{e}"
        );
        // The ADC file comes before the metadata server.
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, &["api"]).run();
        let e = done.error("api");
        assert!(e.contains("gcloud ADC file"), "{e}");
        assert_eq!(w.google.count("/computeMetadata/"), 0);
        w.no_leaks(&done);
    }

    #[test]
    fn external_account_with_impersonation() {
        let w = World::new();
        let audience =
            "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x";
        w.google.add_subject(audience, SUBJECT_TOKEN);
        let subject = w.write(
            "subject.json",
            &format!("{{\"id_token\":\"{SUBJECT_TOKEN}\"}}"),
        );
        let ext = serde_json::json!({
            "type": "external_account",
            "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": w.google.token_uri(),
            "service_account_impersonation_url": w.google.impersonation_url(),
            "credential_source": {"file": subject, "format": {"type": "json", "subject_token_field_name": "id_token"}},
        });
        let creds = w.write("ext.json", &ext.to_string());
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        let seen = w.google.seen();
        assert!(
            seen.iter().any(|s| s.grant.as_deref()
                == Some("urn:ietf:params:oauth:grant-type:token-exchange")
                && s.granted),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|s| s.target == "/impersonate" && s.granted),
            "{seen:?}"
        );
        w.no_leaks(&done);
    }

    #[test]
    fn external_account_from_aws() {
        use backend_tests::gcp_auth::{AWS_ACCESS_KEY_ID, AWS_SECRET_KEY};
        let w = World::new();
        let audience = "//iam.googleapis.com/projects/3/locations/global/workloadIdentityPools/aws/providers/ec2";
        w.google.add_aws_subject(audience, AWS_ACCESS_KEY_ID);
        let imds = w.google.imds_url();
        let aws = serde_json::json!({
            "type": "external_account", "audience": audience,
            "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
            "token_url": w.google.token_uri(),
            "credential_source": {
                "environment_id": "aws1",
                "region_url": format!("{imds}/meta-data/placement/availability-zone"),
                "url": format!("{imds}/meta-data/iam/security-credentials"),
                "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
                "imdsv2_session_token_url": format!("{imds}/api/token"),
            },
        });
        let creds = w.write("aws.json", &aws.to_string());
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        // The role's keys from the instance metadata service (IMDSv2).
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
            .env_remove("AWS_ACCESS_KEY_ID")
            .env_remove("AWS_SECRET_ACCESS_KEY")
            .env_remove("AWS_REGION")
            .env_remove("AWS_DEFAULT_REGION")
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert!(
            w.google
                .count("/latest/meta-data/iam/security-credentials/gcp-federation")
                == 1
        );
        assert_no_leak(
            "stderr",
            &done.stderr,
            &[AWS_SECRET_KEY, "aws-session-TOKEN"],
        );
        w.no_leaks(&done);
        // Keys from the environment: no metadata service asked; a key the
        // pool does not know is refused at the exchange.
        w.google.reset_seen();
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
            .env("AWS_ACCESS_KEY_ID", "AKIAOTHERKEY00000000")
            .env("AWS_SECRET_ACCESS_KEY", "other-aws-SECRET-0000")
            .env("AWS_REGION", "us-east-2")
            .run();
        let e = done.error("api");
        assert!(
            e.contains("refused the subject token (HTTP 400, invalid_grant)"),
            "{e}"
        );
        assert_eq!(w.google.count("/latest/"), 0, "{:?}", w.google.seen());
        assert_no_leak("stderr", &done.stderr, &["other-aws-SECRET-0000"]);
        // Other environments are refused with a message, not a crash.
        let azure = serde_json::json!({
            "type": "external_account", "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": w.google.token_uri(),
            "credential_source": {"environment_id": "azure9"},
        });
        let creds = w.write("odd.json", &azure.to_string());
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
            .run();
        assert!(done.error("api").contains("azure9"), "{done}");
    }

    #[test]
    fn gcloud_impersonation_of_a_service_account() {
        let w = World::new();
        w.google
            .add_user("client-2.apps", CLIENT_SECRET, REFRESH_TOKEN);
        let adc = serde_json::json!({
            "type": "impersonated_service_account",
            "service_account_impersonation_url": w.google.impersonation_url(),
            "delegates": [],
            "source_credentials": {
                "type": "authorized_user",
                "client_id": "client-2.apps",
                "client_secret": CLIENT_SECRET,
                "refresh_token": REFRESH_TOKEN,
                "token_uri": w.google.token_uri(),
            },
        });
        let creds = w.write("imp.json", &adc.to_string());
        let config = w.config(&format!(
            "project_id: {PROJECT}\ncredentials_file: {}\n",
            creds.display()
        ));
        let done = w.cmd(&config, &["api"]).run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        let seen = w.google.seen();
        assert!(
            seen.iter()
                .any(|s| s.grant.as_deref() == Some("refresh_token") && s.granted),
            "{seen:?}"
        );
        assert!(
            seen.iter().any(|s| s.target == "/impersonate" && s.granted),
            "{seen:?}"
        );
        w.no_leaks(&done);
    }

    #[test]
    fn external_account_from_a_url_and_the_project_from_the_environment() {
        let w = World::new();
        let audience =
            "//iam.googleapis.com/projects/2/locations/global/workloadIdentityPools/q/providers/y";
        w.google.add_subject(audience, SUBJECT_TOKEN);
        w.google
            .serve_subject(SUBJECT_TOKEN, ("x-identity", "agent"));
        let ext = serde_json::json!({
            "type": "external_account",
            "audience": audience,
            "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
            "token_url": w.google.token_uri(),
            "credential_source": {"url": w.google.subject_url(), "headers": {"x-identity": "agent"}},
        });
        let creds = w.write("ext-url.json", &ext.to_string());
        let config = w.config(&format!("credentials_file: {}\n", creds.display()));
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_CLOUD_PROJECT", PROJECT)
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        let seen = w.google.seen();
        assert!(
            seen.iter().any(|s| s.target == "/subject" && s.granted),
            "{seen:?}"
        );
        assert_eq!(w.google.count("/impersonate"), 0);
        w.no_leaks(&done);
        // A subject URL that refuses us is a permission error naming it.
        w.google
            .serve_subject(SUBJECT_TOKEN, ("x-identity", "someone-else"));
        let done = w
            .cmd(&config, &["api"])
            .env("GOOGLE_CLOUD_PROJECT", PROJECT)
            .run();
        let e = done.error("api");
        assert!(
            e.contains("subject token URL") && e.contains("answered HTTP 403"),
            "{e}"
        );
        w.no_leaks(&done);
    }

    #[test]
    fn the_opt_in_token_cache() {
        use std::os::unix::fs::PermissionsExt;
        let w = World::new();
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = w.service_account("sa.json", SA_KEY);
        let cache = w.path("token-cache.json");
        let config = w.config(&format!(
            "credentials_file: {}\ntoken_cache_file: {}\n",
            sa.display(),
            cache.display()
        ));
        let grants = || w.google.count("/token");
        let done = w.cmd(&config, &["api"]).run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert_eq!(grants(), 1);
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        // The next call reuses it, project included.
        let done = w.cmd(&config, &["api", "db;user"]).run();
        assert_eq!(done.value("db;user"), USER, "{done}");
        assert_eq!(grants(), 1, "{:?}", w.google.seen());
        w.no_leaks(&done);
        // A replaced key file is a new source.
        let mut key_file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&sa).unwrap()).unwrap();
        key_file["private_key_id"] = "rotated".into();
        w.write("sa.json", &key_file.to_string());
        let done = w.cmd(&config, &["api"]).run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert_eq!(grants(), 2);
        // A cached token Secret Manager refuses is forgotten.
        let mut entry: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
        entry["access_token"] = "ya29.REVOKED-TOKEN-0000".into();
        w.write("token-cache.json", &entry.to_string());
        let done = w.cmd(&config, &["api"]).run();
        let e = done.error("api");
        assert!(e.contains("HTTP 401"), "{e}");
        assert!(!cache.exists(), "{done}");
        assert!(!done.stderr.contains("REVOKED-TOKEN"));
        let done = w.cmd(&config, &["api"]).run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert_eq!(grants(), 3);
        w.no_leaks(&done);
        let log = std::fs::read_to_string(w.path("trace.log")).unwrap_or_default();
        assert!(!log.contains("REVOKED-TOKEN"));
    }

    #[test]
    fn metadata_project_when_none_is_configured() {
        let w = World::new();
        let config = w.config("");
        let done = w
            .cmd(&config, &["m", "projects/other-proj/secrets/x"])
            .run();
        assert_eq!(done.value("m"), META_VALUE, "{done}");
        assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
        // No project anywhere: short names say what to set; full names work.
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = serde_json::json!({
            "type": "service_account", "private_key": SA_KEY, "client_email": SA_EMAIL,
            "token_uri": w.google.token_uri(),
        });
        let sa = w.write("noproj.json", &sa.to_string());
        let config = w.config(&format!("credentials_file: {}\n", sa.display()));
        let done = w
            .cmd(&config, &["m", "projects/other-proj/secrets/x"])
            .run();
        assert!(
            done.error("m").contains("no project: set project_id"),
            "{done}"
        );
        assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
    }

    #[test]
    fn no_credentials_at_all_is_fast_and_clear() {
        let w = World::new();
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let closed = backend_tests::free_port();
        let done = w
            .cmd(&config, &["api", "db;password"])
            .env("GCE_METADATA_HOST", &format!("127.0.0.1:{closed}"))
            .args(["--timeout", "20"])
            .run();
        done.expect_code(0);
        let e = done.error("api");
        assert!(
            e.contains("no credentials: GOOGLE_APPLICATION_CREDENTIALS unset, no gcloud ADC file")
                && e.contains(&format!("metadata server 127.0.0.1:{closed} not reachable")),
            "{e}"
        );
        // One retry, not six: a machine outside GCP answers at once.
        assert!(done.elapsed < Duration::from_secs(2), "{done}");
        assert!(done.error("db;password").contains("no credentials"));
        w.no_leaks(&done);
    }

    #[test]
    fn proxies_from_the_environment_but_never_for_the_metadata_server() {
        let w = World::new();
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let dead = format!("http://127.0.0.1:{}", backend_tests::free_port());
        // The metadata server is asked directly, the API through the
        // (dead) proxy.
        let done = w
            .cmd(&config, &["api"])
            .env("HTTP_PROXY", &dead)
            .args(["--timeout", "3"])
            .run();
        assert_eq!(w.google.count("/computeMetadata/"), 1, "{done}");
        assert_eq!(w.google.count("/v1/"), 0, "{done}");
        let e = done.error("api");
        assert!(
            e.contains("cannot reach Secret Manager") || e.contains("timed out"),
            "{e}"
        );
        // NO_PROXY exempts the endpoint.
        let done = w
            .cmd(&config, &["api"])
            .env("HTTP_PROXY", &dead)
            .env("NO_PROXY", "127.0.0.1")
            .run();
        assert_eq!(done.value("api"), API_KEY, "{done}");
        w.no_leaks(&done);
    }

    #[test]
    fn a_metadata_server_that_hangs_is_bounded() {
        let w = World::new();
        w.google.hang_metadata(true);
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, &["api"]).args(["--timeout", "3"]).run();
        done.expect_code(0);
        assert!(done.elapsed < Duration::from_secs(3), "{done}");
        let e = done.error("api");
        assert!(e.contains("metadata server"), "{e}");
        w.no_leaks(&done);
    }
}

mod faults {
    use super::*;

    fn run_with(fault: ApiFault, handles: &[&str]) -> (World, Done) {
        let w = World::new();
        w.google.api_fault(Some(fault));
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, handles).args(["--timeout", "10"]).run();
        done.expect_code(0);
        w.no_leaks(&done);
        (w, done)
    }

    #[test]
    fn crc32c_is_checked() {
        let (_, done) = run_with(ApiFault::Crc32c { wrong: false }, &["db;password", "api"]);
        assert_eq!(done.value("db;password"), PASSWORD, "{done}");
        assert_eq!(done.value("api"), API_KEY);
        let (_, done) = run_with(ApiFault::Crc32c { wrong: true }, &["db;password", "api"]);
        for h in ["db;password", "api"] {
            let e = done.error(h);
            assert!(e.contains("CRC32C") && e.contains("value withheld"), "{e}");
        }
        assert!(!done.stdout_str().contains(API_KEY), "{done}");
    }

    #[test]
    fn permission_denied_names_the_permission() {
        let fault = ApiFault::Status {
            code: 403,
            status: "PERMISSION_DENIED".into(),
            retry_after: None,
            times: usize::MAX,
        };
        let (w, done) = run_with(fault, &["api"]);
        let e = done.error("api");
        assert!(
            e.starts_with("projects/proj-a/secrets/api/versions/latest: permission denied")
                && e.contains("secretmanager.versions.access")
                && e.contains("roles/secretmanager.secretAccessor"),
            "{e}"
        );
        assert_eq!(w.google.count("/v1/"), 1, "403 is not retried");
    }

    #[test]
    fn quota_is_retried_within_the_deadline() {
        let fault = ApiFault::Status {
            code: 429,
            status: "RESOURCE_EXHAUSTED".into(),
            retry_after: None,
            times: 2,
        };
        let (w, done) = run_with(fault, &["api"]);
        assert_eq!(done.value("api"), API_KEY, "{done}");
        assert_eq!(w.google.count("/v1/"), 3);
        let fault = ApiFault::Status {
            code: 503,
            status: "UNAVAILABLE".into(),
            retry_after: None,
            times: usize::MAX,
        };
        let (_, done) = run_with(fault, &["api"]);
        let e = done.error("api");
        assert!(e.contains("HTTP 503 UNAVAILABLE"), "{e}");
        assert!(done.elapsed < Duration::from_secs(10), "{done}");
    }

    #[test]
    fn a_hanging_api_times_out_per_handle() {
        let w = World::new();
        w.google.api_fault(Some(ApiFault::Hang));
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, &["api"]).args(["--timeout", "2"]).run();
        done.expect_code(0);
        assert!(done.elapsed < Duration::from_secs(2), "{done}");
        assert!(done.error("api").contains("timed out"), "{done}");
        w.no_leaks(&done);
    }

    #[test]
    fn an_answer_over_the_bound_is_refused() {
        let w = World::new();
        let big = "B".repeat(200 * 1024);
        let d = drongo();
        if d.request("GET", &format!("/v1/projects/{PROJECT}/secrets/huge"), None)
            .is_none_or(|(code, _)| code != 200)
        {
            d.put(PROJECT, "huge", big.as_bytes());
        }
        let config = w.config(&format!("project_id: {PROJECT}\n"));
        let done = w.cmd(&config, &["huge", "api"]).run();
        let e = done.error("huge");
        assert!(e.contains("larger than"), "{e}");
        assert_eq!(done.value("api"), API_KEY);
        assert!(!done.stdout_str().contains(&big[..1000]));
    }

    #[test]
    fn configs_quote_no_values() {
        backend_tests::config_quotes_no_value(
            BIN,
            &[
                "endpoint: {v}\n",
                "location: {v}\n",
                "concurrency: {v}\n",
                "gcp_session: {v}\n",
            ],
            "x",
        );
        backend_tests::config_bomb_is_refused(BIN);
    }
}

mod conformance {
    use super::*;

    #[tokio::test]
    async fn the_contract() {
        let w = World::new();
        w.google.add_service_account(SA_EMAIL, SA_KEY);
        let sa = w.service_account("sa.json", SA_KEY);
        let config = backend_gcp::GcpConfig {
            endpoint: Some(w.google.url()),
            project_id: Some(PROJECT.into()),
            credentials_file: Some(sa),
            ..backend_gcp::GcpConfig::default()
        };
        let provider = backend_gcp::GcpProvider::new(config).unwrap();
        let cases = backend_core::testkit::Cases {
            found: vec![
                ("db;password".into(), PASSWORD.into()),
                ("api".into(), API_KEY.into()),
                ("projects/other-proj/secrets/x".into(), OTHER_VALUE.into()),
            ],
            missing: vec!["missing".into(), "db;nokey".into()],
            budget: None,
        };
        backend_core::testkit::check(&provider, &cases).await;
    }
}
