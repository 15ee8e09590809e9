//! End-to-end tests: the real `secret-backend-azure` binary against the
//! fake Key Vault, Entra ID and managed identity endpoints of
//! `backend_tests::azure` (TLS with its own CA, tokens checked, RBAC and
//! access policies, Key Vault's error bodies, faults, a request log). One
//! test binary, modules by theme.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::time::Duration;

use backend_tests::azure::{Attributes, FakeAzure, Fault, IDENTITY_VARS, SYSTEM_IDENTITY, TENANT};
use backend_tests::files::write_private;
use backend_tests::{Cmd, Done, assert_no_leak, payload};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-azure");
const APP: &str = "a9911c1e-0000-4000-8000-00000000app1";
const CLIENT_SECRET: &str = "client-S3CRET-value-0123456789";
const PASSWORD: &str = "pa55-w0rd-VALUE-1";
const USER: &str = "db-user-VALUE-2";
const PLAIN: &str = "plain-VALUE-3~!";

/// A fake vault holding `db` (JSON), `plain`, with application `APP`
/// (client secret) allowed everything by RBAC.
struct Azure {
    az: FakeAzure,
    dir: tempfile::TempDir,
}

impl Azure {
    fn new() -> Self {
        let az = FakeAzure::start();
        az.add_app(TENANT, APP, Some(CLIENT_SECRET));
        az.use_rbac(true);
        az.grant(APP, &[]);
        az.put_secret(
            "db",
            &format!(r#"{{"user":"{USER}","password":"{PASSWORD}","port":5432}}"#),
        );
        az.put_secret("plain", PLAIN);
        Self {
            az,
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path(name);
        write_private(&p, text);
        p
    }

    /// A config for the fake vault, its CA and authority, plus `extra`.
    fn config(&self, extra: &str) -> PathBuf {
        self.write(
            "config.yaml",
            &format!(
                "keyvaulturl: {}\nauthority_host: {}\nca_file: {}\narc_token_dir: {}\n{extra}",
                self.az.url(),
                self.az.url(),
                self.az.ca_file().display(),
                self.az.arc_dir().display()
            ),
        )
    }

    /// The service principal with its client secret, in the config.
    fn sp(&self) -> PathBuf {
        self.config(&format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n"
        ))
    }

    /// The binary as the agent runs it, with no identity from the host and
    /// IMDS at the fake.
    fn cmd(&self, config: &Path, handles: &[&str]) -> Cmd {
        let mut cmd = Cmd::new(BIN);
        for v in IDENTITY_VARS {
            cmd = cmd.env_remove(v);
        }
        cmd.args(["--config", config.to_str().unwrap()])
            .args(["--log-level", "trace"])
            .args(["--log-file", self.path("trace.log").to_str().unwrap()])
            .env("AZURE_POD_IDENTITY_AUTHORITY_HOST", &self.az.identity_url())
            .stdin(payload(handles))
            .kill_after(Duration::from_secs(60))
    }

    /// No credential or value in stderr or the trace log, no credential in
    /// stdout; tokens the fake issued are `fake-access-token-`.
    fn no_leaks(&self, done: &Done, more: &[&str]) {
        let log = std::fs::read_to_string(self.path("trace.log")).unwrap_or_default();
        let mut secrets = vec![CLIENT_SECRET, PASSWORD, USER, PLAIN, "fake-access-token-"];
        secrets.extend_from_slice(more);
        assert_no_leak("stderr", &done.stderr, &secrets);
        assert_no_leak("the trace log", &log, &secrets);
        assert_no_leak(
            "stdout",
            done.stdout_str(),
            &[CLIENT_SECRET, "fake-access-token-"],
        );
    }

    fn token_requests(&self) -> usize {
        self.az
            .requests()
            .iter()
            .filter(|r| r.path.ends_with("/oauth2/v2.0/token"))
            .count()
    }
}

mod identities {
    use super::*;

    /// `hold_credentials` holds the workload identity's federated token
    /// without a request.
    #[test]
    fn hold_credentials_holds_the_federated_token_without_a_request() {
        let a = Azure::new();
        let token = "federated-HOLD-token-0123456789";
        let file = a.write("federated", &format!("{token}\n"));
        let config: backend_azure::AzureConfig =
            backend_core::config::from_yaml(&format!("keyvaulturl: {}\n", a.az.url())).unwrap();
        let env = |k: &str| match k {
            "AZURE_TENANT_ID" => Some(TENANT.to_owned()),
            "AZURE_CLIENT_ID" => Some(APP.to_owned()),
            "AZURE_FEDERATED_TOKEN_FILE" => Some(file.to_str().unwrap().to_owned()),
            _ => None,
        };
        let provider = backend_azure::AzureProvider::with_env(config, &env).unwrap();
        assert!(!backend_core::secret::reveals_credential(token));
        backend_core::Provider::hold_credentials(&provider);
        assert!(backend_core::secret::reveals_credential(token));
        assert!(a.az.requests().is_empty());
    }

    /// `hold_credentials` holds a certificate file's private key block as
    /// written (a `file@` handle naming the file would return its text);
    /// the certificate itself is not a credential.
    #[test]
    fn hold_credentials_holds_the_certificate_files_key_as_written() {
        let a = Azure::new();
        let cert = a.az.app_certificate(TENANT, APP, true);
        let pem = std::fs::read_to_string(&cert).unwrap();
        let block = |kind: &str| {
            let begin = pem.find(&format!("-----BEGIN {kind}")).unwrap();
            let end_marker = format!("-----END {kind}");
            let end = pem[begin..].find(&end_marker).unwrap() + begin;
            let close = pem[end + 9..].find("-----").unwrap() + end + 14;
            pem[begin..close].to_owned()
        };
        let key = block("PRIVATE KEY");
        let certificate = block("CERTIFICATE");
        let config: backend_azure::AzureConfig = backend_core::config::from_yaml(&format!(
            "keyvaulturl: {}\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_certificate_path: {}\n",
            a.az.url(),
            cert.display()
        ))
        .unwrap();
        let provider = backend_azure::AzureProvider::new(config).unwrap();
        assert!(!backend_core::secret::reveals_credential(&key));
        backend_core::Provider::hold_credentials(&provider);
        assert!(backend_core::secret::reveals_credential(&key));
        assert!(backend_core::secret::reveals_credential(&pem));
        assert!(!backend_core::secret::reveals_credential(&certificate));
        assert!(a.az.requests().is_empty());
    }

    #[test]
    fn client_secret_one_token_and_one_get_per_secret() {
        let a = Azure::new();
        let v1 = a.az.put_secret("rotating", "old-VALUE-4");
        a.az.put_secret("rotating", "new-VALUE-5");
        let versioned = format!("rotating?version={v1}");
        let handles = [
            "db;user",
            "db;password",
            "db;/port",
            "plain",
            "rotating",
            versioned.as_str(),
        ];
        let done = a.cmd(&a.sp(), &handles).run();
        assert_eq!(done.value("db;user"), USER, "{done}");
        assert_eq!(done.value("db;password"), PASSWORD);
        assert_eq!(done.value("db;/port"), "5432");
        assert_eq!(done.value("plain"), PLAIN);
        assert_eq!(done.value("rotating"), "new-VALUE-5");
        assert_eq!(done.value(&versioned), "old-VALUE-4");
        assert_eq!(a.az.count("/secrets/db"), 1, "{:?}", a.az.requests());
        assert_eq!(a.az.count("/secrets/plain"), 1);
        assert_eq!(a.az.count(&format!("/secrets/rotating/{v1}")), 1);
        assert_eq!(a.token_requests(), 1);
        assert!(
            a.az.requests()
                .iter()
                .filter(|r| r.path.starts_with("/secrets/"))
                .all(|r| r.who.as_deref() == Some(APP) && r.query == "api-version=7.5")
        );
        a.no_leaks(&done, &["old-VALUE-4", "new-VALUE-5"]);
        // At the default log level a call whose every handle has its value
        // prints nothing.
        let mut quiet = Cmd::new(BIN);
        for v in IDENTITY_VARS {
            quiet = quiet.env_remove(v);
        }
        let quiet = quiet
            .args(["--config", a.sp().to_str().unwrap()])
            .stdin(payload(&["plain"]))
            .run();
        assert_eq!(quiet.value("plain"), PLAIN);
        assert!(quiet.stderr.is_empty(), "{quiet}");
    }

    #[test]
    fn a_hundred_handles_over_twenty_secrets_are_twenty_gets() {
        let a = Azure::new();
        let mut handles = Vec::new();
        for s in 0..20 {
            let fields: Vec<String> = (0..5).map(|k| format!(r#""k{k}":"v{s}-{k}""#)).collect();
            a.az.put_secret(&format!("app-{s}"), &format!("{{{}}}", fields.join(",")));
            handles.extend((0..5).map(|k| format!("app-{s};k{k}")));
        }
        let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
        let done = a.cmd(&a.sp(), &refs).run();
        for s in 0..20 {
            for k in 0..5 {
                assert_eq!(done.value(&format!("app-{s};k{k}")), format!("v{s}-{k}"));
            }
        }
        let gets =
            a.az.requests()
                .iter()
                .filter(|r| r.path.starts_with("/secrets/"))
                .count();
        assert_eq!((gets, a.token_requests()), (20, 1));
    }

    #[test]
    fn a_wrong_client_secret_names_the_identity_and_the_code_only() {
        let a = Azure::new();
        let wrong = "wrong-S3CRET-0987654321";
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {wrong}\n"
        ));
        let done = a.cmd(&config, &["plain", "db;user", "bad_name"]).run();
        let e = done.error("plain");
        assert!(
            e.contains("client secret of application")
                && e.contains("azure_session.azure_client_secret")
                && e.contains("invalid_client (AADSTS7000215)")
                && e.contains("the client secret is wrong")
                && !e.contains("Invalid client secret provided"),
            "{e}"
        );
        assert!(
            done.error("db;user").starts_with(&format!(
                "{}/db: ",
                a.az.url().trim_start_matches("https://")
            )),
            "{done}"
        );
        assert!(done.error("bad_name").starts_with("invalid handle"));
        assert_eq!(a.az.count("/secrets/plain"), 0);
        a.no_leaks(&done, &[wrong]);
        // An unknown tenant and application are told apart.
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: nobody\n  azure_client_secret: {wrong}\n"
        ));
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(e.contains("AADSTS700016"), "{e}");
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: other-tenant\n  azure_client_id: {APP}\n  azure_client_secret: {wrong}\n"
        ));
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(
            e.contains("AADSTS90002") && e.contains("no such tenant"),
            "{e}"
        );
    }

    #[test]
    fn client_certificate_signed_assertion_with_and_without_chain() {
        let a = Azure::new();
        let cert = a.az.app_certificate(TENANT, APP, true);
        let sp = format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_certificate_path: {}\n",
            cert.display()
        );
        let done = a.cmd(&a.config(&sp), &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        let chained = a.config(&format!(
            "{sp}  azure_client_send_certificate_chain: true\n"
        ));
        let done = a.cmd(&chained, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.az.chains_seen(), vec![0, 2]);
        // From the environment, as Azure's SDKs read it.
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", APP)
            .env("AZURE_CLIENT_CERTIFICATE_PATH", cert.to_str().unwrap())
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        // A certificate the application does not know.
        let stranger = a.az.app_certificate(TENANT, APP, false);
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_certificate_path: {}\n",
            stranger.display()
        ));
        let done = a.cmd(&config, &["plain"]).run();
        let e = done.error("plain");
        assert!(
            e.contains("client certificate of application") && e.contains("AADSTS700027"),
            "{e}"
        );
        let key_line = std::fs::read_to_string(&cert).unwrap();
        let key_line = key_line
            .lines()
            .skip_while(|l| !l.contains("PRIVATE KEY"))
            .nth(1)
            .unwrap()
            .to_owned();
        a.no_leaks(&done, &[&key_line]);
        // A file others may write is refused; one that is not PEM says what to do.
        backend_tests::files::set_mode(&stranger, 0o666);
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(e.contains("writable"), "{e}");
        write_private(&stranger, &[0x30, 0x82, 0x01, 0x00]);
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(e.contains("not a PKCS#12 file"), "{e}");
    }

    #[test]
    fn workload_identity_reads_a_rotated_token_at_every_call() {
        let a = Azure::new();
        let first = "federated-TOKEN-one-0123456789";
        let second = "federated-TOKEN-two-9876543210";
        a.az.federate(APP, first);
        let file = a.write("federated-token", first);
        let run = || {
            a.cmd(&a.config(""), &["plain"])
                .env("AZURE_TENANT_ID", TENANT)
                .env("AZURE_CLIENT_ID", APP)
                .env("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())
                .run()
        };
        let done = run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        a.az.unfederate(first);
        a.az.federate(APP, second);
        write_private(&file, &format!("{second}\n"));
        let done = run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        a.az.unfederate(second);
        let done = run();
        let e = done.error("plain");
        assert!(
            e.contains("workload identity")
                && e.contains("AADSTS700213")
                && e.contains("federated credential"),
            "{e}"
        );
        a.no_leaks(&done, &[first, second]);
        // The connector's client id alone, on AKS, is that identity's
        // federated credential.
        a.az.federate(APP, second);
        let done = a
            .cmd(&a.config(&format!("clientid: {APP}\n")), &["plain"])
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
    }

    #[test]
    fn the_chain_takes_the_first_configured_source() {
        let a = Azure::new();
        let file = a.write("federated-token", "never-federated-token-000");
        // A client secret and a federated token: the secret wins, and the
        // token file is not even read.
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env("AZURE_TENANT_ID", TENANT)
            .env("AZURE_CLIENT_ID", APP)
            .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
            .env("AZURE_FEDERATED_TOKEN_FILE", file.to_str().unwrap())
            .env(
                "IDENTITY_ENDPOINT",
                &format!("{}/msi/token", a.az.identity_url()),
            )
            .env("IDENTITY_HEADER", FakeAzure::APP_SERVICE_HEADER)
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert!(a.az.requests().iter().all(|r| r.path != "/msi/token"));
        // The config's service principal wins over the environment's.
        let done = a
            .cmd(&a.sp(), &["plain"])
            .env("AZURE_CLIENT_SECRET", "wrong-env-secret-1234567")
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
    }

    #[test]
    fn managed_identity_imds_system_and_user_assigned() {
        let a = Azure::new();
        let uami = "0a0a0a0a-0000-4000-8000-0000000uami1";
        // No identity on this host: said plainly.
        let done = a.cmd(&a.config(""), &["plain"]).run();
        let e = done.error("plain");
        assert!(
            e.contains("managed identity (IMDS) (system-assigned)")
                && e.contains("invalid_request")
                && e.contains("no such identity"),
            "{e}"
        );
        a.az.add_managed_identity(None);
        a.az.grant(SYSTEM_IDENTITY, &["plain"]);
        let done = a.cmd(&a.config(""), &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        let imds: Vec<_> =
            a.az.requests()
                .into_iter()
                .filter(|r| r.path == "/metadata/identity/oauth2/token")
                .collect();
        assert!(
            imds.iter()
                .all(|r| r.query.contains("resource=https%3A%2F%2Fvault.azure.net")),
            "{imds:?}"
        );
        a.az.add_managed_identity(Some(uami));
        a.az.grant(uami, &["db"]);
        let done = a
            .cmd(
                &a.config(&format!("clientid: {uami}\n")),
                &["db;user", "plain"],
            )
            .run();
        assert_eq!(done.value("db;user"), USER, "{done}");
        let e = done.error("plain");
        assert!(
            e.contains("Key Vault Secrets User")
                && e.contains(uami)
                && e.contains("ForbiddenByRbac"),
            "{e}"
        );
        a.no_leaks(&done, &[]);
    }

    #[test]
    fn an_imds_that_hangs_or_is_absent_fails_within_the_deadline() {
        let a = Azure::new();
        a.az.imds_hang();
        let done = a
            .cmd(&a.config(""), &["plain", "db;user"])
            .args(["--timeout", "3"])
            .run();
        assert!(done.elapsed < Duration::from_secs(10), "{done}");
        let e = done.error("plain");
        assert!(e.contains("timed out") && e.contains("IMDS"), "{e}");
        // Nothing listening: at once, not at the deadline.
        let port = backend_tests::free_port();
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env(
                "AZURE_POD_IDENTITY_AUTHORITY_HOST",
                &format!("http://127.0.0.1:{port}"),
            )
            .args(["--timeout", "20"])
            .run();
        assert!(done.elapsed < Duration::from_secs(10), "{done}");
        let e = done.error("plain");
        assert!(
            e.contains("cannot reach IMDS") && e.contains("Azure VM"),
            "{e}"
        );
    }

    #[test]
    fn app_service_and_arc_endpoints() {
        let a = Azure::new();
        a.az.add_managed_identity(None);
        a.az.grant(SYSTEM_IDENTITY, &[]);
        let endpoint = format!("{}/msi/token", a.az.identity_url());
        // A proxy in the environment is not used for the local endpoint:
        // it would see the identity header.
        let dead_proxy = format!("http://127.0.0.1:{}", backend_tests::free_port());
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env("IDENTITY_ENDPOINT", &endpoint)
            .env("IDENTITY_HEADER", FakeAzure::APP_SERVICE_HEADER)
            .env("HTTP_PROXY", &dead_proxy)
            .env("http_proxy", &dead_proxy)
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.az.count("/msi/token"), 1);
        a.no_leaks(&done, &[FakeAzure::APP_SERVICE_HEADER]);
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env("IDENTITY_ENDPOINT", &endpoint)
            .env("IDENTITY_HEADER", "wrong-identity-header-000")
            .run();
        let e = done.error("plain");
        assert!(
            e.contains("App Service") && e.contains("unauthorized_client"),
            "{e}"
        );
        // Azure Arc: a challenge naming a key file, then the key.
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env(
                "IDENTITY_ENDPOINT",
                &format!("{}/arc/token", a.az.identity_url()),
            )
            .env("IMDS_ENDPOINT", &a.az.identity_url())
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.az.count("/arc/token"), 2);
        assert_no_leak("stderr", &done.stderr, &["arc-challenge-key-"]);
        // Azure ML and Cloud Shell.
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env("MSI_ENDPOINT", &format!("{}/ml/token", a.az.identity_url()))
            .env("MSI_SECRET", FakeAzure::AZURE_ML_SECRET)
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        a.no_leaks(&done, &[FakeAzure::AZURE_ML_SECRET]);
        let done = a
            .cmd(&a.config(""), &["plain"])
            .env(
                "MSI_ENDPOINT",
                &format!("{}/cloudshell/token", a.az.identity_url()),
            )
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        // A challenge outside the Arc directory is refused.
        let config = a.write(
            "other.yaml",
            &format!(
                "keyvaulturl: {}\nca_file: {}\narc_token_dir: /nonexistent-arc-dir\n",
                a.az.url(),
                a.az.ca_file().display()
            ),
        );
        let e = a
            .cmd(&config, &["plain"])
            .env(
                "IDENTITY_ENDPOINT",
                &format!("{}/arc/token", a.az.identity_url()),
            )
            .env("IMDS_ENDPOINT", &a.az.identity_url())
            .run()
            .error("plain");
        assert!(e.contains("Azure Arc") && e.contains("refused"), "{e}");
    }
}

mod cache {
    //! `token_cache_file`: one token for many calls of one identity, kept
    //! 0600, forgotten when Key Vault refuses it, never in a log.

    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt as _};

    use super::*;

    const APP2: &str = "b2222c1e-0000-4000-8000-00000000app2";
    const SECRET2: &str = "second-app-S3CRET-0123456789";
    const ROTATED: &str = "rotated-client-S3CRET-98765";

    fn session(client: &str, secret: &str) -> String {
        format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {client}\n  azure_client_secret: {secret}\n"
        )
    }

    fn cached(a: &Azure, session: &str) -> PathBuf {
        a.config(&format!(
            "token_cache_file: {}\n{session}",
            a.path("token-cache.json").display()
        ))
    }

    fn cached_token(a: &Azure) -> String {
        let text = std::fs::read_to_string(a.path("token-cache.json")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        v["access_token"].as_str().unwrap().to_owned()
    }

    #[test]
    fn one_token_for_many_calls_until_the_identity_changes() {
        let a = Azure::new();
        let config = cached(&a, &session(APP, CLIENT_SECRET));
        let first = a.cmd(&config, &["plain", "db;user"]).run();
        assert_eq!(first.value("plain"), PLAIN, "{first}");
        assert_eq!(a.token_requests(), 1);
        let file = a.path("token-cache.json");
        let mode = std::fs::metadata(&file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let token = cached_token(&a);
        assert!(token.contains("fake-access-token-"), "the fake's token");
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(!text.contains(CLIENT_SECRET), "the secret is never kept");
        let second = a.cmd(&config, &["plain", "db;password"]).run();
        assert_eq!(second.value("db;password"), PASSWORD, "{second}");
        assert_eq!(a.token_requests(), 1, "the second call used the cache");
        for done in [&first, &second] {
            a.no_leaks(done, &[&token]);
        }
        // Another application: its own token, not the cached one.
        a.az.add_app(TENANT, APP2, Some(SECRET2));
        a.az.grant(APP2, &[]);
        let done = a
            .cmd(&cached(&a, &session(APP2, SECRET2)), &["plain"])
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.token_requests(), 2);
        let seen = a.az.requests();
        assert_eq!(seen.last().unwrap().who.as_deref(), Some(APP2));
        // The same application with a rotated secret: a new token too.
        a.az.add_app(TENANT, APP, Some(ROTATED));
        let done = a.cmd(&cached(&a, &session(APP, ROTATED)), &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.token_requests(), 3);
        // Its certificate: another kind of credential, another token; then
        // reused while the certificate stays.
        let cert = a.az.app_certificate(TENANT, APP, true);
        let with_cert = cached(
            &a,
            &format!(
                "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_certificate_path: {}\n",
                cert.display()
            ),
        );
        for _ in 0..2 {
            let done = a.cmd(&with_cert, &["plain"]).run();
            assert_eq!(done.value("plain"), PLAIN, "{done}");
        }
        assert_eq!(a.token_requests(), 4);
        let done = a.cmd(&with_cert, &["plain"]).run();
        a.no_leaks(&done, &[&cached_token(&a), ROTATED, SECRET2]);
        // Without token_cache_file, nothing is kept: a token per call.
        let before = a.token_requests();
        for _ in 0..2 {
            let done = a.cmd(&a.config(&session(APP, ROTATED)), &["plain"]).run();
            assert_eq!(done.value("plain"), PLAIN, "{done}");
        }
        assert_eq!(a.token_requests(), before + 2);
    }

    #[test]
    fn a_token_key_vault_refuses_is_forgotten() {
        let a = Azure::new();
        let config = cached(&a, &session(APP, CLIENT_SECRET));
        let done = a.cmd(&config, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        let token = cached_token(&a);
        a.az.expire_tokens();
        let refused = a.cmd(&config, &["plain"]).run();
        let e = refused.error("plain");
        assert!(e.contains("HTTP 401"), "{e}");
        assert!(!a.path("token-cache.json").exists(), "forgotten");
        assert!(
            refused.stderr.contains("forgetting the token cache"),
            "{refused}"
        );
        a.no_leaks(&refused, &[&token]);
        let done = a.cmd(&config, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.token_requests(), 2);
        assert_ne!(cached_token(&a), token);
    }

    #[test]
    fn a_fifo_or_directory_at_the_path_is_never_replaced() {
        let a = Azure::new();
        let file = a.path("token-cache.json");
        std::fs::create_dir(&file).unwrap();
        let config = cached(&a, &session(APP, CLIENT_SECRET));
        for _ in 0..2 {
            let done = a.cmd(&config, &["plain"]).run();
            assert_eq!(done.value("plain"), PLAIN, "{done}");
            assert!(done.stderr.contains("not a regular file"), "{done}");
        }
        assert!(file.is_dir());
        assert_eq!(a.token_requests(), 2, "nothing was cached");
        std::fs::remove_dir(&file).unwrap();
        let status = std::process::Command::new("mkfifo")
            .arg(&file)
            .status()
            .unwrap();
        assert!(status.success());
        let done = a.cmd(&config, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert!(
            std::fs::symlink_metadata(&file)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert_eq!(a.token_requests(), 3);
    }

    #[test]
    fn a_managed_identity_token_is_cached_by_its_expires_on() {
        let a = Azure::new();
        a.az.add_managed_identity(None);
        a.az.grant(SYSTEM_IDENTITY, &["plain"]);
        let config = cached(&a, "");
        for _ in 0..2 {
            let done = a.cmd(&config, &["plain"]).run();
            assert_eq!(done.value("plain"), PLAIN, "{done}");
            a.no_leaks(&done, &[]);
        }
        assert_eq!(a.az.count("/metadata/identity/oauth2/token"), 1);
    }
}

mod protected {
    //! `azure_client_certificate_password`: an encrypted PKCS#8 PEM key and
    //! PKCS#12 files, made with `openssl` from the fake's certificate.

    use super::*;

    const CERT_PASSWORD: &str = "cert-PASSW0RD-value-77";

    /// Runs `openssl` with the words of `line` (paths here have no spaces).
    fn openssl(line: &str) {
        let args: Vec<&str> = line.split_whitespace().collect();
        let out = std::process::Command::new("openssl")
            .args(&args)
            .output()
            .expect("openssl is needed by these tests (apt-get install openssl)");
        assert!(
            out.status.success(),
            "openssl {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// The fake's PEM (certificate, CA certificate, key) split into files:
    /// (leaf, ca, key).
    fn split(a: &Azure, pem: &Path) -> (PathBuf, PathBuf, PathBuf) {
        let text = std::fs::read_to_string(pem).unwrap();
        let end = "-----END CERTIFICATE-----\n";
        let mut parts = text.split_inclusive(end);
        let leaf = a.write("leaf.pem", parts.next().unwrap());
        let ca = a.write("ca.pem", parts.next().unwrap());
        let key = a.write("key.pem", parts.next().unwrap());
        (leaf, ca, key)
    }

    fn with_cert(a: &Azure, file: &Path, password: Option<&str>) -> PathBuf {
        let mut sp = format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_certificate_path: {}\n",
            file.display()
        );
        if let Some(p) = password {
            sp.push_str(&format!("  azure_client_certificate_password: {p}\n"));
        }
        a.config(&sp)
    }

    fn p(path: &Path) -> &str {
        path.to_str().unwrap()
    }

    #[test]
    fn an_encrypted_pkcs8_pem_key_logs_in() {
        let a = Azure::new();
        let (leaf, ca, key) = split(&a, &a.az.app_certificate(TENANT, APP, true));
        let enc = a.path("key-enc.pem");
        let pass = format!("pass:{CERT_PASSWORD}");
        openssl(&format!(
            "pkcs8 -topk8 -v2 aes-256-cbc -in {} -out {} -passout {}",
            p(&key),
            p(&enc),
            pass
        ));
        let text = format!(
            "{}{}{}",
            std::fs::read_to_string(&leaf).unwrap(),
            std::fs::read_to_string(&ca).unwrap(),
            std::fs::read_to_string(&enc).unwrap()
        );
        assert!(text.contains("ENCRYPTED PRIVATE KEY"));
        let file = a.write("agent-sp.pem", &text);
        let done = a
            .cmd(&with_cert(&a, &file, Some(CERT_PASSWORD)), &["plain"])
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        a.no_leaks(&done, &[CERT_PASSWORD]);
        // Without the password, or with a wrong one: said, per handle,
        // naming the file and never the password.
        let e = a
            .cmd(&with_cert(&a, &file, None), &["plain"])
            .run()
            .error("plain");
        assert!(
            e.contains("azure_client_certificate_password") && e.contains(p(&file)),
            "{e}"
        );
        let done = a
            .cmd(
                &with_cert(&a, &file, Some("wrong-PASSWORD-9")),
                &["plain", "db;user"],
            )
            .run();
        for h in ["plain", "db;user"] {
            let e = done.error(h);
            assert!(e.contains("wrong password") && e.contains(p(&file)), "{e}");
        }
        a.no_leaks(&done, &["wrong-PASSWORD-9", CERT_PASSWORD]);
        // The leaf and the key encrypted with scrypt (`openssl pkcs8
        // -scrypt` and `options`), as file `name`.
        let scrypt_pem = |options: &str, name: &str| {
            openssl(&format!(
                "pkcs8 -topk8 -scrypt {options} -in {} -out {} -passout {}",
                p(&key),
                p(&enc),
                pass
            ));
            let text = format!(
                "{}{}",
                std::fs::read_to_string(&leaf).unwrap(),
                std::fs::read_to_string(&enc).unwrap()
            );
            a.write(name, &text)
        };
        // scrypt with openssl's own parameters.
        let file = scrypt_pem("", "agent-sp-scrypt.pem");
        let done = a
            .cmd(&with_cert(&a, &file, Some(CERT_PASSWORD)), &["plain"])
            .run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        // Costlier parameters than allowed (here r 9) are refused, not derived
        // (the openssl here would not write N 2^17 to test N itself).
        let file = scrypt_pem("-scrypt_N 16384 -scrypt_r 9", "agent-sp-scrypt-costly.pem");
        let e = a
            .cmd(&with_cert(&a, &file, Some(CERT_PASSWORD)), &["plain"])
            .run()
            .error("plain");
        assert!(e.contains("scrypt parameters are larger"), "{e}");
    }

    #[test]
    fn an_openssl_3_pkcs12_file_logs_in_with_its_chain() {
        let a = Azure::new();
        let (leaf, ca, key) = split(&a, &a.az.app_certificate(TENANT, APP, true));
        let pfx = a.path("agent-sp.pfx");
        let pass = format!("pass:{CERT_PASSWORD}");
        openssl(&format!(
            "pkcs12 -export -in {} -inkey {} -certfile {} -out {} -passout {}",
            p(&leaf),
            p(&key),
            p(&ca),
            p(&pfx),
            pass
        ));
        backend_tests::files::set_mode(&pfx, 0o600);
        let config = with_cert(&a, &pfx, Some(CERT_PASSWORD));
        let done = a.cmd(&config, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        a.no_leaks(&done, &[CERT_PASSWORD]);
        // The chain is the file's two certificates, the key's own first.
        let chained = a.config(&format!(
            "{}  azure_client_send_certificate_chain: true\n",
            std::fs::read_to_string(&config)
                .unwrap()
                .split_once("azure_session:")
                .map(|(_, s)| format!("azure_session:{s}"))
                .unwrap()
        ));
        let done = a.cmd(&chained, &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(a.az.chains_seen().last(), Some(&2));
        // A wrong password: the MAC says so, per handle, naming the file.
        let done = a
            .cmd(
                &with_cert(&a, &pfx, Some("wrong-PASSWORD-9")),
                &["plain", "db;user"],
            )
            .run();
        for h in ["plain", "db;user"] {
            let e = done.error(h);
            assert!(
                e.contains("wrong password") && e.contains(p(&pfx)) && e.contains("PKCS#12"),
                "{e}"
            );
        }
        a.no_leaks(&done, &["wrong-PASSWORD-9", CERT_PASSWORD]);
        // Without a password: the empty one, which is wrong here.
        let e = a
            .cmd(&with_cert(&a, &pfx, None), &["plain"])
            .run()
            .error("plain");
        assert!(e.contains("wrong password"), "{e}");
        // A file exported without a password is read with the empty one.
        openssl(&format!(
            "pkcs12 -export -in {} -inkey {} -out {} -passout pass:",
            p(&leaf),
            p(&key),
            p(&pfx)
        ));
        backend_tests::files::set_mode(&pfx, 0o600);
        let done = a.cmd(&with_cert(&a, &pfx, None), &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
    }

    #[test]
    fn legacy_pkcs12_is_refused_saying_how_to_export_it_again() {
        let a = Azure::new();
        let (leaf, _, key) = split(&a, &a.az.app_certificate(TENANT, APP, true));
        let pfx = a.path("legacy.pfx");
        let pass = format!("pass:{CERT_PASSWORD}");
        openssl(&format!(
            "pkcs12 -export -in {} -inkey {} -out {} -passout {} -keypbe PBE-SHA1-3DES -certpbe PBE-SHA1-3DES -macalg sha1",
            p(&leaf),
            p(&key),
            p(&pfx),
            pass
        ));
        backend_tests::files::set_mode(&pfx, 0o600);
        let done = a
            .cmd(&with_cert(&a, &pfx, Some(CERT_PASSWORD)), &["plain"])
            .run();
        let e = done.error("plain");
        assert!(
            e.contains("legacy PKCS#12") && e.contains("openssl pkcs12") && e.contains(p(&pfx)),
            "{e}"
        );
        a.no_leaks(&done, &[CERT_PASSWORD]);
    }
}

mod errors {
    use super::*;

    /// An identity endpoint we send a credential to may echo it where we
    /// read an OAuth error code (`{"error": "<code>"}`): a code that is
    /// one of our credentials is not shown.
    #[test]
    fn an_error_code_that_echoes_a_credential_is_not_shown() {
        use backend_tests::fault::{Fault, FaultProxy};
        let a = Azure::new();
        // Letters only: it passes the shape of an OAuth error code.
        let header = "identityHeaderOnlyLettersValue";
        let proxy = FaultProxy::always(Fault::Status {
            code: 400,
            retry_after: None,
            body: format!(r#"{{"error":"{header}"}}"#),
        });
        let config = a.config("");
        let done = a
            .cmd(&config, &["plain"])
            .env("IDENTITY_ENDPOINT", &format!("{}/msi/token", proxy.url()))
            .env("IDENTITY_HEADER", header)
            .run();
        let e = done.error("plain");
        assert!(e.contains("HTTP 400"), "{e}");
        assert!(!done.stdout_str().contains(header), "{done}");
        a.no_leaks(&done, &[header]);
    }

    #[test]
    fn every_key_vault_error_has_its_own_message() {
        let a = Azure::new();
        let now = i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap();
        let off = Attributes {
            enabled: false,
            ..Attributes::default()
        };
        a.az.put_secret_with("disabled", "disabled-VALUE-6", off);
        let old = Attributes {
            exp: Some(now - 3600),
            ..Attributes::default()
        };
        a.az.put_secret_with("expired", "expired-VALUE-7", old);
        let future = Attributes {
            nbf: Some(now + 86_400),
            ..Attributes::default()
        };
        a.az.put_secret_with("future", "future-VALUE-8", future);
        a.az.put_secret("broken", "x");
        a.az.put_secret("throttled", "x");
        a.az.put_secret("stuck", "x");
        a.az.fault("broken", Fault::Status(500));
        a.az.fault("throttled", Fault::Status(429));
        a.az.fault("stuck", Fault::Hang);
        let missing_version = "missing?version=0123456789abcdef0123456789abcdef";
        let handles = [
            "missing",
            missing_version,
            "disabled",
            "expired",
            "future",
            "broken",
            "throttled",
            "stuck",
            "plain;key",
            "db;nokey",
            "plain",
        ];
        let done = a.cmd(&a.sp(), &handles).args(["--timeout", "6"]).run();
        assert!(done.elapsed < Duration::from_secs(20), "{done}");
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        let vault = a.az.url().trim_start_matches("https://").to_owned();
        let e = done.error("missing");
        assert_eq!(
            e,
            format!("{vault}/missing: no such secret in the vault (HTTP 404 SecretNotFound)")
        );
        let e = done.error(missing_version);
        assert!(
            e.starts_with(&format!("{vault}/missing/0123456789abcdef")),
            "{e}"
        );
        assert!(
            done.error("disabled")
                .contains("the secret is disabled (HTTP 403 Forbidden/SecretDisabled)")
        );
        let e = done.error("expired");
        assert!(
            e.contains("expired at") && e.contains("allow_expired"),
            "{e}"
        );
        assert!(done.error("future").contains("not valid before"));
        let e = done.error("broken");
        assert!(
            e.contains("HTTP 500") && !e.contains("FAULT-BODY-MARKER"),
            "{e}"
        );
        assert!(a.az.count("/secrets/broken") > 1, "5xx is retried");
        let e = done.error("throttled");
        assert!(e.contains("HTTP 429 Throttled"), "{e}");
        assert!(
            a.az.count("/secrets/throttled") > 1,
            "429 is retried after Retry-After"
        );
        let e = done.error("stuck");
        assert!(
            e.contains("timed out") && e.starts_with(&format!("{vault}/stuck")),
            "{e}"
        );
        let e = done.error("plain;key");
        assert!(e.contains("not a JSON object"), "{e}");
        let e = done.error("db;nokey");
        assert!(
            e.contains("no key 'nokey'") && e.contains("password, port, user"),
            "{e}"
        );
        assert_eq!(a.az.count("/secrets/missing"), 1, "a 404 is not retried");
        a.no_leaks(
            &done,
            &["disabled-VALUE-6", "expired-VALUE-7", "future-VALUE-8"],
        );
        // The operator may take expired values.
        let config = a.config(&format!(
            "allow_expired: true\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n"
        ));
        assert_eq!(
            a.cmd(&config, &["expired"]).run().value("expired"),
            "expired-VALUE-7"
        );
    }

    #[test]
    fn access_policies_and_rbac_are_told_apart() {
        let a = Azure::new();
        let other = "b0000000-0000-4000-8000-0000000app2";
        a.az.add_app(TENANT, other, Some("other-S3CRET-123456789"));
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {other}\n  azure_client_secret: other-S3CRET-123456789\n"
        ));
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(
            e.contains("Key Vault Secrets User") && e.contains("ForbiddenByRbac"),
            "{e}"
        );
        a.az.use_rbac(false);
        let e = a.cmd(&config, &["plain"]).run().error("plain");
        assert!(
            e.contains("access policy")
                && e.contains("Get permission")
                && e.contains("AccessDenied"),
            "{e}"
        );
        assert!(!e.contains("oid=") && !e.contains("linkid"), "{e}");
        // Forbidden comes before existence, as in Key Vault.
        let e = a.cmd(&config, &["missing"]).run().error("missing");
        assert!(e.contains("AccessDenied"), "{e}");
    }

    #[test]
    fn a_token_of_another_tenant_gets_the_vaults_challenge() {
        let a = Azure::new();
        let (tenant, app) = (
            "0ther000-0000-4000-8000-00000tenant2",
            "c0000000-0000-4000-8000-0000000app3",
        );
        a.az.add_app(tenant, app, Some("tenant2-S3CRET-12345678"));
        let config = a.config(&format!(
            "azure_session:\n  azure_tenant_id: {tenant}\n  azure_client_id: {app}\n  azure_client_secret: tenant2-S3CRET-12345678\n"
        ));
        let done = a.cmd(&config, &["plain"]).run();
        let e = done.error("plain");
        assert!(
            e.contains("HTTP 401") && e.contains(&format!("authorization={}/{TENANT}", a.az.url())),
            "{e}"
        );
        a.no_leaks(&done, &["tenant2-S3CRET-12345678"]);
    }

    #[test]
    fn the_cloud_sets_the_resource_tokens_are_asked_for() {
        let a = Azure::new();
        let config = a.config(&format!(
            "cloud: china\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n"
        ));
        let done = a.cmd(&config, &["plain"]).run();
        let e = done.error("plain");
        assert!(e.contains("invalid_scope (AADSTS70011)"), "{e}");
        assert!(
            a.az.requests()
                .iter()
                .all(|r| !r.path.starts_with("/secrets/")),
            "no token, no read"
        );
    }

    #[test]
    fn a_throttled_or_failing_token_service_is_retried_within_the_deadline() {
        let a = Azure::new();
        a.az.token_fault(429, 2);
        let done = a.cmd(&a.sp(), &["plain"]).args(["--timeout", "10"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
        assert_eq!(
            a.token_requests(),
            3,
            "two 429s with Retry-After, then the token"
        );
        a.az.token_fault(503, usize::MAX);
        let done = a.cmd(&a.sp(), &["plain"]).args(["--timeout", "3"]).run();
        let e = done.error("plain");
        assert!(
            e.contains("client secret of application")
                && e.contains("failed (HTTP 503, temporarily_unavailable")
                && !e.contains("FAULT-BODY-MARKER"),
            "{e}"
        );
        assert!(done.elapsed < Duration::from_secs(10), "{done}");
        a.no_leaks(&done, &[]);
        // The same for a managed identity endpoint.
        a.az.add_managed_identity(None);
        a.az.grant(SYSTEM_IDENTITY, &[]);
        a.az.token_fault(500, 1);
        let done = a.cmd(&a.config(""), &["plain"]).run();
        assert_eq!(done.value("plain"), PLAIN, "{done}");
    }

    #[test]
    fn invalid_handles_send_nothing() {
        let a = Azure::new();
        let handles = [
            "",
            "a_b",
            "../x",
            "db?version=12",
            "https://evil.example/secrets/x",
            "db;",
        ];
        let done = a.cmd(&a.sp(), &handles).run();
        for h in handles {
            assert!(done.error(h).starts_with("invalid handle"), "{h}: {done}");
        }
        assert!(a.az.requests().is_empty(), "{:?}", a.az.requests());
    }

    #[test]
    fn a_vault_behind_an_unknown_ca_is_refused() {
        let a = Azure::new();
        let config = a.write(
            "config.yaml",
            &format!(
                "keyvaulturl: {}\nauthority_host: {}\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n",
                a.az.url(),
                a.az.url()
            ),
        );
        let done = a
            .cmd(&config, &["plain"])
            .env("SSL_CERT_FILE", a.path("none.pem").to_str().unwrap())
            .run();
        let e = done.error("plain");
        assert!(
            e.contains("cannot reach Entra ID") && e.contains("UnknownIssuer"),
            "{e}"
        );
        assert!(a.az.requests().is_empty());
        a.no_leaks(&done, &[]);
    }
}

mod config {
    use super::*;

    #[test]
    fn config_errors_quote_no_credential() {
        backend_tests::config_quotes_no_value(
            BIN,
            &[
                "keyvaulturl: https://v.vault.azure.net\nazure_session:\n  azure_tenant_id: t\n  azure_client_id: c\n  azure_client_secret: {v}\n  bogus: 1\n",
                "keyvaulturl: https://v.vault.azure.net\nazure_session:\n  azure_client_certificate_password: {v}\n",
            ],
            "plain",
        );
        backend_tests::config_bomb_is_refused(BIN);
    }

    /// A tenant goes into the token URL's path: `.` and `..` (or any
    /// empty label) would make it another path of the authority than the
    /// tenant's, so they are refused before any request, from the config
    /// and from AZURE_TENANT_ID alike.
    #[test]
    fn a_tenant_cannot_escape_the_token_path() {
        let a = Azure::new();
        for bad in [
            "..",
            ".",
            "...",
            ".contoso.com",
            "contoso..com",
            "contoso.com.",
        ] {
            let config = a.config(&format!(
                "azure_session:\n  azure_tenant_id: '{bad}'\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n"
            ));
            let done = a.cmd(&config, &["db;password"]).run();
            done.expect_code(2);
            assert!(done.stderr.contains("tenant"), "{bad}: {done}");
            let config = a.config("");
            let done = a
                .cmd(&config, &["db;password"])
                .env("AZURE_TENANT_ID", bad)
                .env("AZURE_CLIENT_ID", APP)
                .env("AZURE_CLIENT_SECRET", CLIENT_SECRET)
                .run();
            done.expect_code(2);
            assert!(done.stderr.contains("AZURE_TENANT_ID"), "{bad}: {done}");
            a.no_leaks(&done, &[]);
        }
        assert!(a.az.requests().is_empty(), "{:?}", a.az.requests());
    }

    #[test]
    fn aliases_and_the_connectors_keys() {
        let a = Azure::new();
        let config = a.config(&format!(
            "clientid: {APP}\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_secret: {CLIENT_SECRET}\naliases:\n  db_password: db;password\n  db_user: db;user\n"
        ));
        let done = a.cmd(&config, &["db_password", "db_user"]).run();
        assert_eq!(done.value("db_password"), PASSWORD, "{done}");
        assert_eq!(done.value("db_user"), USER);
        assert_eq!(a.az.count("/secrets/db"), 1);
        let config = a.config("aliases:\n  bad: a_b\n");
        let done = a.cmd(&config, &["bad"]).run();
        done.expect_code(2);
    }
}

#[tokio::test]
async fn conformance_kit() {
    let a = Azure::new();
    let config: backend_azure::AzureConfig = backend_core::config::from_yaml(&format!(
        "keyvaulturl: {}\nauthority_host: {}\nca_file: {}\nazure_session:\n  azure_tenant_id: {TENANT}\n  azure_client_id: {APP}\n  azure_client_secret: {CLIENT_SECRET}\n",
        a.az.url(),
        a.az.url(),
        a.az.ca_file().display()
    ))
    .unwrap();
    let provider = backend_azure::AzureProvider::with_env(config, &|_| None).unwrap();
    let cases = backend_core::testkit::Cases {
        found: vec![
            ("db;password".into(), PASSWORD.into()),
            ("plain".into(), PLAIN.into()),
        ],
        missing: vec!["missing".into(), "db;nokey".into()],
        budget: None,
    };
    backend_core::testkit::check(&provider, &cases).await;
}
