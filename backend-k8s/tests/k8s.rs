//! End-to-end tests: the real `secret-backend-k8s` binary against the fake
//! API server of `backend_tests::k8s` (TLS with its own CA, bearer tokens,
//! client certificates, RBAC, Status objects, faults, a request log).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use backend_tests::files::private_file;
use backend_tests::k8s::{FakeKube, Fault, service_account, status};
use backend_tests::{Cmd, Done, assert_no_leak, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-k8s");
const TOKEN: &str = "sa-token-0123456789-ABCDEFGHIJ";
const PASSWORD: &str = "pa55-w0rd-VALUE-1";
const USER: &str = "db-user-VALUE-2";
const API_KEY: &str = "api-key-VALUE-3";

/// A fake cluster with the agent's service account, its token file and a
/// config pointing at both; secrets in namespace `prod`.
struct Cluster {
    kube: FakeKube,
    dir: tempfile::TempDir,
    sa: String,
}

impl Cluster {
    fn new() -> Self {
        let kube = FakeKube::start();
        let sa = service_account("agents", "agent");
        kube.add_token(TOKEN, &sa);
        kube.grant(
            &sa,
            "prod",
            &[
                "db", "api", "bin", "json", "empty", "nodata", "many", "missing",
            ],
        );
        kube.grant(&sa, "agents", &[]);
        kube.put_secret(
            "prod",
            "db",
            &[("password", PASSWORD.as_bytes()), ("user", USER.as_bytes())],
        );
        kube.put_secret("prod", "api", &[("key", API_KEY.as_bytes())]);
        kube.put_secret("agents", "own", &[("v", b"own-namespace-VALUE-4")]);
        let dir = tempfile::tempdir().unwrap();
        let c = Self { kube, dir, sa };
        c.write("token", &format!("{TOKEN}\n"));
        c.write("namespace", "agents");
        c
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        private_file(self.dir.path(), name, text)
    }

    /// The in-cluster config: our token, the fake's CA, the pod's namespace file.
    fn in_cluster(&self, extra: &str) -> PathBuf {
        self.write(
            "config.yaml",
            &format!(
                "token_path: {}\nca_path: {}\nnamespace_path: {}\n{extra}",
                self.path("token").display(),
                self.kube.ca_file().display(),
                self.path("namespace").display()
            ),
        )
    }

    /// The binary as the agent in a pod runs it.
    fn cmd(&self, config: &Path, handles: &[&str]) -> Cmd {
        Cmd::new(BIN)
            .args(["--config", config.to_str().unwrap()])
            .args(["--log-level", "trace"])
            .args(["--log-file", self.path("trace.log").to_str().unwrap()])
            .env("KUBERNETES_SERVICE_HOST", &self.kube.host())
            .env("KUBERNETES_SERVICE_PORT", &self.kube.port().to_string())
            .env_remove("KUBECONFIG")
            .stdin(payload(handles))
            .kill_after(Duration::from_secs(60))
    }

    fn run(&self, handles: &[&str]) -> Done {
        self.cmd(&self.in_cluster(""), handles).run()
    }

    /// No token or value in stderr or the trace log, no token in stdout.
    fn no_leaks(&self, done: &Done) {
        let log = std::fs::read_to_string(self.path("trace.log")).unwrap_or_default();
        let secrets = [TOKEN, PASSWORD, USER, API_KEY, "own-namespace-VALUE-4"];
        assert_no_leak("stderr", &done.stderr, &secrets);
        assert_no_leak("the trace log", &log, &secrets);
        assert_no_leak("stdout", done.stdout_str(), &[TOKEN]);
    }
}

#[test]
fn in_cluster_env_and_files_one_get_per_secret() {
    let c = Cluster::new();
    let handles = [
        "prod/db;password",
        "prod/db;user",
        "prod/api",
        "own;v",
        "prod/db",
    ];
    let done = c.run(&handles);
    assert_eq!(done.value("prod/db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("prod/db;user"), USER);
    assert_eq!(done.value("prod/api"), API_KEY);
    assert_eq!(done.value("own;v"), "own-namespace-VALUE-4");
    let e = done.error("prod/db");
    assert!(
        e.contains("prod/db") && e.contains("keys: password, user"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD) && !e.contains(USER), "{e}");
    assert_eq!(c.kube.count("prod", "db"), 1, "{:?}", c.kube.requests());
    assert_eq!(c.kube.count("prod", "api"), 1);
    assert_eq!(c.kube.count("agents", "own"), 1);
    assert!(
        c.kube
            .requests()
            .iter()
            .all(|r| r.user.as_deref() == Some(c.sa.as_str()))
    );
    c.no_leaks(&done);
    // At the default log level, a call with an answer for every handle
    // prints nothing (Vector logs every stderr line as a warning).
    let quiet = Cmd::new(BIN)
        .args(["--config", c.in_cluster("").to_str().unwrap()])
        .env("KUBERNETES_SERVICE_HOST", &c.kube.host())
        .env("KUBERNETES_SERVICE_PORT", &c.kube.port().to_string())
        .stdin(payload(&["prod/db;user"]))
        .run();
    assert_eq!(quiet.value("prod/db;user"), USER);
    assert!(quiet.stderr.is_empty(), "{quiet}");
}

#[test]
fn fifty_keys_of_one_secret_are_one_get() {
    let c = Cluster::new();
    let values: Vec<(String, String)> = (0..50)
        .map(|i| (format!("k{i}"), format!("value-{i}-of-many")))
        .collect();
    let data: Vec<(&str, &[u8])> = values
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_bytes()))
        .collect();
    c.kube.put_secret("prod", "many", &data);
    let handles: Vec<String> = values
        .iter()
        .map(|(k, _)| format!("prod/many;{k}"))
        .collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = c.run(&refs);
    for ((_, v), h) in values.iter().zip(&handles) {
        assert_eq!(&done.value(h), v);
    }
    assert_eq!(c.kube.count("prod", "many"), 1);
    assert_eq!(c.kube.requests().len(), 1);
}

#[test]
fn a_token_rotated_between_calls_is_picked_up() {
    let c = Cluster::new();
    let done = c.run(&["prod/api;key"]);
    assert_eq!(done.value("prod/api;key"), API_KEY);
    // The kubelet rotates the projected token: a new one in the file, the
    // old one no longer valid.
    let rotated = "sa-token-ROTATED-9876543210-zyx";
    c.kube.add_token(rotated, &c.sa);
    c.kube.remove_token(TOKEN);
    c.write("token", &format!("{rotated}\n\t "));
    let done = c.run(&["prod/api;key"]);
    assert_eq!(done.value("prod/api;key"), API_KEY, "{done}");
    assert_no_leak("stderr", &done.stderr, &[rotated]);
    // A token the server no longer takes: 401, said plainly.
    c.kube.remove_token(rotated);
    let done = c.run(&["prod/api;key"]);
    let e = done.error("prod/api;key");
    assert!(
        e.starts_with("prod/api: ") && e.contains("HTTP 401") && e.contains("expired"),
        "{e}"
    );
    c.no_leaks(&done);
}

#[test]
fn errors_403_404_500_and_a_hang_under_the_deadline() {
    let c = Cluster::new();
    c.kube
        .put_secret("prod", "secret-nobody-granted", &[("k", b"v")]);
    c.kube.grant(&c.sa, "prod", &["broken", "stuck"]);
    c.kube.fault("prod", "broken", Fault::Status(500));
    c.kube.fault("prod", "stuck", Fault::Hang);
    let handles = [
        "prod/secret-nobody-granted;k",
        "prod/missing;k",
        "prod/db;nokey",
        "prod/broken;k",
        "prod/stuck;k",
        "prod/db;password",
    ];
    let done = c
        .cmd(&c.in_cluster(""), &handles)
        .args(["--timeout", "3"])
        .run();
    assert!(
        done.elapsed < Duration::from_secs(20),
        "does not hang: {done}"
    );
    assert_eq!(done.value("prod/db;password"), PASSWORD, "{done}");
    let e = done.error("prod/secret-nobody-granted;k");
    assert!(
        e.contains("get secrets in namespace prod")
            && e.contains("RBAC")
            && e.contains("backend-k8s/README.md#rbac")
            && e.contains("system:serviceaccount:agents:agent"),
        "{e}"
    );
    assert_eq!(
        done.error("prod/missing;k"),
        "secret prod/missing not found"
    );
    let e = done.error("prod/db;nokey");
    assert_eq!(e, "prod/db: no key 'nokey' (keys: password, user)");
    let e = done.error("prod/broken;k");
    assert!(
        e.contains("HTTP 500") && e.contains("InternalError") && !e.contains("injected"),
        "{e}"
    );
    assert!(c.kube.count("prod", "broken") > 1, "5xx is retried");
    let e = done.error("prod/stuck;k");
    assert!(
        e.contains("timed out") && e.starts_with("prod/stuck"),
        "{e}"
    );
    assert_eq!(c.kube.count("prod", "missing"), 1, "a 404 is not retried");
    c.no_leaks(&done);
}

#[test]
fn invalid_names_are_refused_before_any_request() {
    let c = Cluster::new();
    let handles = [
        "Prod/db;password",
        "prod/db;bad key",
        "../../etc/passwd",
        "prod/db/password",
        "prod/db%2fx;k",
        "",
        "prod/db;..",
    ];
    let done = c.run(&handles);
    for h in handles {
        let e = done.error(h);
        assert!(e.starts_with("invalid handle"), "{h}: {e}");
    }
    assert!(c.kube.requests().is_empty(), "{:?}", c.kube.requests());
    // Not even the token is read: a call of invalid handles only needs none.
    let config = c.write(
        "config.yaml",
        &format!(
            "token_path: {}\nca_path: {}\n",
            c.path("absent").display(),
            c.kube.ca_file().display()
        ),
    );
    let done = c.cmd(&config, &["BAD/x"]).run();
    assert!(done.error("BAD/x").starts_with("invalid handle"));
}

#[test]
fn binary_empty_json_and_missing_data() {
    let c = Cluster::new();
    c.kube.put_secret(
        "prod",
        "bin",
        &[("blob", &[0xff, 0xfe, 0x00, 0x80]), ("text", b"plain")],
    );
    c.kube.put_secret(
        "prod",
        "json",
        &[(
            "config.json",
            br#"{"db":{"password":"json-pw-VALUE-5"},"port":5432}"#,
        )],
    );
    c.kube.put_secret("prod", "empty", &[("k", b"")]);
    c.kube.put_secret("prod", "nodata", &[]);
    let done = c.run(&[
        "prod/bin;blob",
        "prod/bin;text",
        "prod/json;config.json/db/password",
        "prod/json;config.json/port",
        "prod/json;config.json/nope",
        "prod/empty;k",
        "prod/nodata;k",
    ]);
    let e = done.error("prod/bin;blob");
    assert!(e.contains("binary") && e.contains("'blob'"), "{e}");
    assert_eq!(done.value("prod/bin;text"), "plain");
    assert_eq!(
        done.value("prod/json;config.json/db/password"),
        "json-pw-VALUE-5"
    );
    assert_eq!(done.value("prod/json;config.json/port"), "5432");
    let e = done.error("prod/json;config.json/nope");
    assert!(
        e.contains("no key '/nope'") && !e.contains("json-pw"),
        "{e}"
    );
    assert_eq!(done.error("prod/empty;k"), "secret is empty");
    assert_eq!(
        done.error("prod/nodata;k"),
        "prod/nodata: the secret has no data"
    );
    assert_eq!(c.kube.count("prod", "json"), 1);
}

#[test]
fn a_missing_token_file_fails_every_handle_fast() {
    let c = Cluster::new();
    let config = c.write(
        "config.yaml",
        &format!(
            "token_path: {}\nca_path: {}\nnamespace: prod\n",
            c.path("no-such-token").display(),
            c.kube.ca_file().display()
        ),
    );
    let done = c
        .cmd(&config, &["prod/db;password", "api;key", "Bad"])
        .args(["--timeout", "30"])
        .run();
    assert!(done.elapsed < Duration::from_secs(10), "{done}");
    for h in ["prod/db;password", "api;key"] {
        let e = done.error(h);
        assert!(
            e.contains("service account token") && e.contains("no-such-token"),
            "{h}: {e}"
        );
    }
    assert!(done.error("api;key").starts_with("prod/api: "));
    assert!(done.error("Bad").starts_with("invalid handle"));
    assert!(c.kube.requests().is_empty());
}

#[test]
fn no_api_server_outside_a_pod_says_what_to_set() {
    let c = Cluster::new();
    let config = c.write(
        "config.yaml",
        &format!("token_path: {}\n", c.path("token").display()),
    );
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .stdin(payload(&["prod/db;password"]))
        .run();
    let e = done.error("prod/db;password");
    assert!(
        e.contains("KUBERNETES_SERVICE_HOST") && e.contains("kubeconfig"),
        "{e}"
    );
}

#[test]
fn only_the_configured_ca_is_trusted_unless_verification_is_off() {
    let c = Cluster::new();
    let other = FakeKube::start();
    let config = c.write(
        "config.yaml",
        &format!(
            "token_path: {}\nca_path: {}\n",
            c.path("token").display(),
            other.ca_file().display()
        ),
    );
    let done = c.cmd(&config, &["prod/api;key"]).run();
    let e = done.error("prod/api;key");
    assert!(
        e.contains("cannot reach the API server") && e.contains("certificate"),
        "{e}"
    );
    assert!(c.kube.requests().is_empty());
    // The operator turns verification off explicitly: it works, and says so.
    let config = c.write(
        "config.yaml",
        &format!(
            "token_path: {}\nca_path: {}\ninsecure_skip_tls_verify: true\n",
            c.path("token").display(),
            other.ca_file().display()
        ),
    );
    let done = c.cmd(&config, &["prod/api;key"]).run();
    assert_eq!(done.value("prod/api;key"), API_KEY);
    assert!(done.stderr.contains("TLS verification"), "{done}");
    c.no_leaks(&done);
}

#[test]
fn a_status_message_holding_the_token_is_not_shown() {
    let c = Cluster::new();
    c.kube.grant(&c.sa, "prod", &["odd"]);
    let body = status(403, "Forbidden", &format!("token {TOKEN} refused"), None);
    c.kube.fault("prod", "odd", Fault::Raw(403, body));
    let done = c.run(&["prod/odd;k"]);
    let e = done.error("prod/odd;k");
    assert!(e.contains("HTTP 403") && !e.contains(TOKEN), "{e}");
    c.no_leaks(&done);
}

#[test]
fn ipv6_service_host_is_bracketed() {
    let Some(kube) = FakeKube::start_ipv6() else {
        eprintln!("no IPv6 loopback here: skipped");
        return;
    };
    let c = Cluster::new();
    kube.add_token(TOKEN, &c.sa);
    kube.grant(&c.sa, "prod", &[]);
    kube.put_secret("prod", "v6", &[("k", b"over-ipv6")]);
    let config = c.write(
        "config.yaml",
        &format!(
            "token_path: {}\nca_path: {}\n",
            c.path("token").display(),
            kube.ca_file().display()
        ),
    );
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env("KUBERNETES_SERVICE_HOST", "::1")
        .env("KUBERNETES_SERVICE_PORT", &kube.port().to_string())
        .stdin(payload(&["prod/v6;k"]))
        .run();
    assert_eq!(done.value("prod/v6;k"), "over-ipv6", "{done}");
}

/// A kubeconfig for the fake cluster with `user` as its user entry.
fn kubeconfig(c: &Cluster, user: &str) -> PathBuf {
    use base64::Engine as _;
    let ca = base64::engine::general_purpose::STANDARD.encode(c.kube.ca_pem());
    c.write(
        "kubeconfig",
        &format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: fake\nclusters:\n- name: fake\n  cluster:\n    server: {}\n    certificate-authority-data: {ca}\ncontexts:\n- name: fake\n  context:\n    cluster: fake\n    user: agent\n    namespace: prod\n- name: elsewhere\n  context:\n    cluster: fake\n    user: agent\n    namespace: agents\nusers:\n- name: agent\n  user:\n{user}",
            c.kube.url()
        ),
    )
}

/// A config naming a kubeconfig whose user is the client certificate
/// `cert` with its key `key`.
fn client_cert_config(c: &Cluster, cert: &Path, key: &Path) -> PathBuf {
    let kc = kubeconfig(
        c,
        &format!(
            "    client-certificate: {}\n    client-key: {}\n",
            cert.display(),
            key.display()
        ),
    );
    c.write("config.yaml", &format!("kubeconfig: {}\n", kc.display()))
}

fn outside(c: &Cluster, config: &Path, handles: &[&str]) -> Done {
    Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .args(["--log-level", "trace"])
        .args(["--log-file", c.path("trace.log").to_str().unwrap()])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env_remove("KUBECONFIG")
        .stdin(payload(handles))
        .run()
}

#[test]
fn kubeconfig_with_a_token() {
    let c = Cluster::new();
    let kc = kubeconfig(&c, &format!("    token: {TOKEN}\n"));
    let config = c.write("config.yaml", &format!("kubeconfig: {}\n", kc.display()));
    let done = outside(&c, &config, &["db;password", "prod/api;key"]);
    assert_eq!(done.value("db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("prod/api;key"), API_KEY);
    c.no_leaks(&done);
    // A named context, and $KUBECONFIG instead of the config key.
    let config = c.write("config.yaml", "context: elsewhere\n");
    let done = Cmd::new(BIN)
        .args(["--config", config.to_str().unwrap()])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .env("KUBECONFIG", kc.to_str().unwrap())
        .stdin(payload(&["own;v"]))
        .run();
    assert_eq!(done.value("own;v"), "own-namespace-VALUE-4", "{done}");
    // tokenFile, read at every call like the service account's.
    let kc = kubeconfig(
        &c,
        &format!("    tokenFile: {}\n", c.path("token").display()),
    );
    let config = c.write("config.yaml", &format!("kubeconfig: {}\n", kc.display()));
    assert_eq!(outside(&c, &config, &["db;user"]).value("db;user"), USER);
}

#[test]
fn kubeconfig_with_a_client_certificate() {
    let c = Cluster::new();
    c.kube.grant("alice", "prod", &["api"]);
    let (cert, key) = c.kube.client_cert("alice");
    let config = client_cert_config(&c, &cert, &key);
    let done = outside(&c, &config, &["api;key", "db;password"]);
    assert_eq!(done.value("api;key"), API_KEY, "{done}");
    let e = done.error("db;password");
    assert!(
        e.contains("User \"alice\" cannot get resource \"secrets\""),
        "{e}"
    );
    assert!(
        c.kube
            .requests()
            .iter()
            .all(|r| r.user.as_deref() == Some("alice"))
    );
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let body = key_pem.lines().nth(1).unwrap();
    assert_no_leak("stderr", &done.stderr, &[body]);
    // Exec plugins are out of scope, and the error says so.
    let kc = kubeconfig(
        &c,
        "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: aws\n",
    );
    let config = c.write("config.yaml", &format!("kubeconfig: {}\n", kc.display()));
    let e = outside(&c, &config, &["db;password"]).error("db;password");
    assert!(
        e.contains("exec credential plugins") && e.contains("out of scope"),
        "{e}"
    );
}

#[tokio::test]
async fn conformance_kit() {
    let c = Cluster::new();
    let config = backend_k8s::K8sConfig {
        api_server: Some(c.kube.url()),
        token_path: Some(c.path("token")),
        ca_path: Some(c.kube.ca_file()),
        namespace: Some("prod".into()),
        ..backend_k8s::K8sConfig::default()
    };
    let provider = backend_k8s::K8sProvider::new(config).unwrap();
    let cases = backend_core::testkit::Cases {
        found: vec![
            ("prod/db;password".into(), PASSWORD.into()),
            ("db;user".into(), USER.into()),
            ("prod/api".into(), API_KEY.into()),
        ],
        missing: vec!["prod/missing;k".into(), "prod/db;nokey".into()],
        budget: None,
    };
    backend_core::testkit::check(&provider, &cases).await;
}

#[test]
fn aliases_name_keys_and_cost_one_get_per_secret() {
    let c = Cluster::new();
    let config = c.in_cluster(
        "aliases:\n  db_password: prod/db;password\n  db_user: prod/db;user\n  api_key: prod/api\n",
    );
    let done = c
        .cmd(
            &config,
            &["db_password", "db_user", "api_key", "prod/db;user"],
        )
        .run();
    assert_eq!(done.value("db_password"), PASSWORD, "{done}");
    assert_eq!(done.value("db_user"), USER);
    assert_eq!(done.value("prod/db;user"), USER);
    assert_eq!(done.value("api_key"), API_KEY);
    assert_eq!(c.kube.count("prod", "db"), 1, "{:?}", c.kube.requests());
    assert_eq!(c.kube.count("prod", "api"), 1);
    c.no_leaks(&done);
    // A target the handle grammar refuses is a config error naming the alias.
    let bad = c.in_cluster("aliases:\n  broken: Not_A/DNS;name\n");
    let done = c.cmd(&bad, &["broken"]).run();
    done.expect_code(2);
    assert!(done.stderr.contains("broken"), "{done}");
    assert!(c.kube.count("prod", "db") == 1);
}

/// Every credential the store reads is held, so a secret whose value is
/// one of them (a copy of the service account token, of a kubeconfig
/// token, of the client key) is refused, never answered: in-cluster, and
/// with a kubeconfig token and a client certificate.
#[test]
fn secrets_holding_our_own_credentials_are_refused() {
    let c = Cluster::new();
    c.kube.grant(&c.sa, "prod", &["copy"]);
    c.kube.grant("alice", "prod", &["copy"]);
    let (cert, key) = c.kube.client_cert("alice");
    let key_pem = std::fs::read_to_string(&key).unwrap();
    let inline = "kubeconfig-inline-TOKEN-0123456789";
    c.kube.add_token(inline, &c.sa);
    c.kube.put_secret(
        "prod",
        "copy",
        &[
            ("sa", TOKEN.as_bytes()),
            ("sa-line", format!("{TOKEN}\n").as_bytes()),
            ("inline", inline.as_bytes()),
            ("key", key_pem.as_bytes()),
        ],
    );
    let refused = |done: &Done, handles: &[&str]| {
        for h in handles {
            let e = done.error(h);
            assert!(e.contains("credential"), "{h}: {e}");
        }
    };
    let done = c.run(&["prod/copy;sa", "prod/copy;sa-line"]);
    refused(&done, &["prod/copy;sa", "prod/copy;sa-line"]);
    c.no_leaks(&done);
    let kc = kubeconfig(&c, &format!("    token: {inline}\n"));
    let config = c.write("config.yaml", &format!("kubeconfig: {}\n", kc.display()));
    let done = outside(&c, &config, &["copy;inline"]);
    refused(&done, &["copy;inline"]);
    assert!(!done.stdout_str().contains(inline), "{done}");
    let config = client_cert_config(&c, &cert, &key);
    let done = outside(&c, &config, &["copy;key"]);
    refused(&done, &["copy;key"]);
    let body = key_pem.lines().nth(1).unwrap();
    assert!(!done.stdout_str().contains(body), "{done}");
}

/// `hold_credentials` reads the token file and holds the token without a
/// request, so a process serving this store beside a file store refuses
/// the token as a value even when no handle of this store is asked.
#[test]
fn hold_credentials_holds_the_token_without_a_request() {
    let c = Cluster::new();
    let own = "held-before-any-request-TOKEN-42";
    c.write("own-token", &format!("{own}\n"));
    let provider = |token_file: &str| {
        let config: backend_k8s::K8sConfig = backend_core::config::from_yaml(&format!(
            "api_server: {}\ntoken_path: {}\nca_path: {}\nnamespace: prod\n",
            c.kube.url(),
            c.path(token_file).display(),
            c.kube.ca_file().display()
        ))
        .unwrap();
        backend_k8s::K8sProvider::new(config).unwrap()
    };
    assert!(!backend_core::secret::reveals_credential(own));
    backend_core::Provider::hold_credentials(&provider("own-token"));
    assert!(backend_core::secret::reveals_credential(own));
    assert!(c.kube.requests().is_empty());
    // A missing token file is skipped, not a panic.
    backend_core::Provider::hold_credentials(&provider("absent"));
}
