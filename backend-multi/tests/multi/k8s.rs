//! `secret-backend` with Kubernetes Secrets: the `k8s` store, the
//! connector's `k8s.secrets` payload, and the helper's `k8s_secret@` and
//! `file@` handles, against the fake API server of `backend_tests::k8s`.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::PathBuf;

use backend_tests::files::private_file;
use backend_tests::k8s::{FakeKube, service_account};
use backend_tests::multi::MultiConfig;
use backend_tests::{Cmd, assert_no_leak, go_payload, payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");
const TOKEN: &str = "multi-sa-token-0123456789-QWERTY";
const PASSWORD: &str = "multi-db-pw-VALUE-1";
const USER: &str = "multi-db-user-VALUE-2";
const FILE_VALUE: &str = "file-api-key-VALUE-3";

struct Setup {
    kube: FakeKube,
    dir: tempfile::TempDir,
}

impl Setup {
    fn new() -> Self {
        let kube = FakeKube::start();
        let sa = service_account("agents", "agent");
        kube.add_token(TOKEN, &sa);
        kube.grant(&sa, "prod", &["db"]);
        kube.put_secret(
            "prod",
            "db",
            &[("password", PASSWORD.as_bytes()), ("user", USER.as_bytes())],
        );
        let dir = tempfile::tempdir().unwrap();
        let s = Self { kube, dir };
        s.write("token", TOKEN);
        std::fs::create_dir(s.path("secrets")).unwrap();
        s.write("secrets/api-key", FILE_VALUE);
        s.write("outside", "outside-the-root-VALUE-4");
        s
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        private_file(self.dir.path(), name, text)
    }

    /// A config with the store `kube` on the fake API server, our token and
    /// the fake's CA, plus `fields`.
    fn kube_store(&self, fields: &[(&str, &str)]) -> MultiConfig {
        let api_server = self.kube.url();
        let token_path = self.path("token").display().to_string();
        let ca_path = self.kube.ca_file().display().to_string();
        let mut all = vec![
            ("api_server", api_server.as_str()),
            ("token_path", token_path.as_str()),
            ("ca_path", ca_path.as_str()),
        ];
        all.extend_from_slice(fields);
        MultiConfig::new().store("kube", "k8s", &all)
    }

    fn leaks(&self, what: &str, text: &str) {
        assert_no_leak(
            what,
            text,
            &[
                TOKEN,
                PASSWORD,
                USER,
                FILE_VALUE,
                "outside-the-root-VALUE-4",
            ],
        );
    }
}

#[test]
fn helper_spelling_mixed_with_other_stores_in_one_call() {
    let s = Setup::new();
    let config = s
        .kube_store(&[])
        .dummy("d")
        .top("file_roots", &format!("[{}]", s.path("secrets").display()))
        .write(s.dir.path(), "multi.yaml");
    let file_handle = format!("file@{}", s.path("secrets/api-key").display());
    let escape = format!("file@{}/../outside", s.path("secrets").display());
    let outside = format!("file@{}", s.path("outside").display());
    let handles = [
        "k8s_secret@prod/db/password",
        "kube:prod/db;user",
        file_handle.as_str(),
        "d:x",
        escape.as_str(),
        outside.as_str(),
        "k8s_secret@prod/db",
    ];
    let log = s.path("trace.log");
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(payload(&handles))
        .run();
    assert_eq!(
        done.value("k8s_secret@prod/db/password"),
        PASSWORD,
        "{done}"
    );
    assert_eq!(done.value("kube:prod/db;user"), USER);
    assert_eq!(done.value(&file_handle), FILE_VALUE);
    assert_eq!(done.value("d:x"), "decrypted_x");
    for refused in [&escape, &outside] {
        let e = done.error(refused);
        assert!(!e.contains("outside-the-root"), "{e}");
    }
    assert!(done.error(&outside).contains("allowed roots"));
    assert!(
        done.error("k8s_secret@prod/db")
            .contains("<namespace>/<name>/<key>")
    );
    // Both spellings of prod/db went to one store: one GET.
    assert_eq!(s.kube.count("prod", "db"), 1, "{:?}", s.kube.requests());
    s.leaks("stderr", &done.stderr);
    s.leaks("the trace log", &std::fs::read_to_string(&log).unwrap());
}

#[test]
fn helper_spelling_needs_no_config_file() {
    let s = Setup::new();
    let handles = [
        "k8s_secret@prod/db/password",
        "file@/etc/passwd",
        "file@/run/secrets/../../etc/passwd",
        "plain",
    ];
    let run = |host: Option<&FakeKube>| {
        let mut cmd = Cmd::new(BIN).env_remove("KUBECONFIG");
        cmd = match host {
            Some(k) => cmd
                .env("KUBERNETES_SERVICE_HOST", &k.host())
                .env("KUBERNETES_SERVICE_PORT", &k.port().to_string()),
            None => cmd.env_remove("KUBERNETES_SERVICE_HOST"),
        };
        cmd.stdin(payload(&handles)).run()
    };
    // Not in a pod: the k8s store says what is missing; exit 0 all the same.
    let done = run(None);
    let e = done.error("k8s_secret@prod/db/password");
    assert!(
        e.starts_with("prod/db: ") && e.contains("KUBERNETES_SERVICE_HOST"),
        "{e}"
    );
    for h in ["file@/etc/passwd", "file@/run/secrets/../../etc/passwd"] {
        let e = done.error(h);
        assert!(!e.contains("root:"), "{h}: {e}");
    }
    assert!(done.error("file@/etc/passwd").contains("allowed roots"));
    assert!(done.error("plain").contains("no default backend"));
    // In a pod whose service account token is not where Kubernetes mounts
    // it (this host): the default path is named.
    let done = run(Some(&s.kube));
    let e = done.error("k8s_secret@prod/db/password");
    assert!(
        e.contains("/var/run/secrets/kubernetes.io/serviceaccount/token")
            || e.contains("/var/run/secrets/kubernetes.io/serviceaccount/ca.crt"),
        "{e}"
    );
    // Without a helper handle, no config is still a config error.
    Cmd::new(BIN)
        .stdin(payload(&["plain"]))
        .run()
        .expect_code(2);
}

#[test]
fn payload_driven_k8s_secrets_with_the_connectors_keys() {
    let s = Setup::new();
    let config = json!({
        "token_path": s.path("token"),
        "CA_PATH": s.kube.ca_file(),
        "api_server": s.kube.url(),
        "unknown_key": "ignored as the connector ignores it",
    });
    let done = Cmd::new(BIN)
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .stdin(go_payload(
            "1.1",
            &["prod/db;password", "prod/db;user", "prod/nope;k"],
            &[
                ("type", json!("k8s.secrets")),
                ("config", config),
                ("secret_backend_timeout", json!(10)),
            ],
        ))
        .run();
    assert_eq!(done.value("prod/db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("prod/db;user"), USER);
    assert!(done.error("prod/nope;k").contains("RBAC"));
    assert_eq!(s.kube.count("prod", "db"), 1);
    s.leaks("stderr", &done.stderr);
}

#[tokio::test]
async fn the_k8s_store_keeps_the_core_contract() {
    let s = Setup::new();
    let config = s
        .kube_store(&[("namespace", "prod")])
        .default("kube")
        .write(s.dir.path(), "multi.yaml");
    let config: backend_multi::MultiConfig = backend_core::config::load_flat(&config).unwrap();
    let provider = backend_multi::MultiProvider::new(config).unwrap();
    let cases = backend_core::testkit::Cases {
        found: vec![
            ("kube:prod/db;password".into(), PASSWORD.into()),
            ("db;user".into(), USER.into()),
            ("k8s_secret@prod/db/user".into(), USER.into()),
        ],
        missing: vec!["kube:prod/db;nokey".into()],
        budget: None,
    };
    backend_core::testkit::check(&provider, &cases).await;
}

/// A handle of one store naming another store's credential file is
/// refused although no handle of that other store is asked in the call:
/// every configured store holds its credentials before any answers (the
/// k8s token, a vault token file, the AWS web identity token), whether the
/// file is reached through `file@` or a file backend's directory.
#[test]
fn another_stores_credential_files_are_refused_unasked() {
    let s = Setup::new();
    s.write("secrets/sa-token", "sa-token-in-root-VALUE-5\n");
    s.write("secrets/vault-token", "vault-token-in-root-VALUE-6\n");
    s.write("secrets/irsa-token", "irsa-token-in-root-VALUE-7");
    // A GCP key file: its key is a JSON string, newlines escaped.
    s.write(
        "secrets/sa.json",
        &json!({
            "type": "service_account",
            "project_id": "p",
            "private_key_id": "k1",
            "private_key": "-----BEGIN PRIVATE KEY-----\nGCP-KEY-BYTES-in-root-VALUE-8\n-----END PRIVATE KEY-----\n",
            "client_email": "agent@p.iam.gserviceaccount.com",
            "token_uri": "http://127.0.0.1:9/token"
        })
        .to_string(),
    );
    let sa_token = s.path("secrets/sa-token").display().to_string();
    let (api_server, ca_path) = (s.kube.url(), s.kube.ca_file().display().to_string());
    let config = MultiConfig::new()
        .store(
            "kube",
            "k8s",
            &[
                ("api_server", &api_server),
                ("token_path", &sa_token),
                ("ca_path", &ca_path),
            ],
        )
        .vault("v", "http://127.0.0.1:9", &s.path("secrets/vault-token"))
        .aws("a", "eu-west-1", "http://127.0.0.1:9")
        .store(
            "g",
            "gcp",
            &[
                ("project_id", "p"),
                (
                    "credentials_file",
                    &s.path("secrets/sa.json").display().to_string(),
                ),
            ],
        )
        .files("f", &s.path("secrets"))
        .top("file_roots", &format!("[{}]", s.path("secrets").display()))
        .write(s.dir.path(), "multi.yaml");
    let root = s.path("secrets").display().to_string();
    let owned: Vec<String> = ["sa-token", "vault-token", "irsa-token", "sa.json"]
        .iter()
        .flat_map(|f| [format!("file@{root}/{f}"), format!("f:{f}")])
        .collect();
    let mut handles: Vec<&str> = owned.iter().map(String::as_str).collect();
    let api_key = format!("file@{root}/api-key");
    handles.extend([api_key.as_str(), "f:api-key"]);
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env(
            "AWS_WEB_IDENTITY_TOKEN_FILE",
            s.path("secrets/irsa-token").to_str().unwrap(),
        )
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/agent")
        .stdin(payload(&handles))
        .run();
    for h in &owned {
        assert!(done.error(h).contains("credential"), "{h}: {done}");
    }
    assert_eq!(done.value(&api_key), FILE_VALUE);
    assert_eq!(done.value("f:api-key"), FILE_VALUE);
    assert_no_leak(
        "the reply and stderr",
        &format!("{}{}", String::from_utf8_lossy(&done.stdout), done.stderr),
        &[
            "sa-token-in-root-VALUE-5",
            "vault-token-in-root-VALUE-6",
            "irsa-token-in-root-VALUE-7",
            "GCP-KEY-BYTES-in-root-VALUE-8",
        ],
    );
    // Only files were read: nothing was asked of the API server.
    assert!(s.kube.requests().is_empty(), "{:?}", s.kube.requests());
}
