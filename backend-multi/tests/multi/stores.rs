//! `secret-backend` end to end with real stores in one call: files, an
//! OpenBao dev server (vault) and a moto server (aws); a hanging store
//! costs only its own handles; nothing secret reaches stderr or the log.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::TcpListener;
use std::time::Duration;

use backend_tests::fault::moto_call;
use backend_tests::files::write_private;
use backend_tests::moto::{Moto, REGION};
use backend_tests::multi::MultiConfig;
use backend_tests::openbao::{OpenBao, ROOT_TOKEN};
use backend_tests::{Cmd, assert_no_leak, go_payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

/// Creates a Secrets Manager secret through moto's JSON API.
fn create_secret(moto: &Moto, name: &str, value: &str) {
    moto_call(
        moto,
        "secretsmanager",
        "secretsmanager.CreateSecret",
        &json!({"Name": name, "SecretString": value}),
    );
}

struct Stores {
    _bao: OpenBao,
    moto: Moto,
    dir: tempfile::TempDir,
    config: String,
}

fn stores(vault_address: Option<&str>) -> Stores {
    let bao = OpenBao::start();
    bao.ok(&[
        "kv",
        "put",
        "secret/db",
        "user=vault-user",
        "password=vault-pw-8c1f",
    ]);
    let moto = Moto::start();
    create_secret(&moto, "prod/api", r#"{"key":"aws-key-77e2","region":"eu"}"#);
    let dir = tempfile::tempdir().unwrap();
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).unwrap();
    write_private(&secrets.join("db_password"), "file-pw-41d9");
    let token = dir.path().join("token");
    write_private(&token, ROOT_TOKEN);
    let auth = format!("{{method: token, token_file: {}}}", token.display());
    let vault_address = vault_address.unwrap_or(&bao.addr);
    let config = MultiConfig::new()
        .store(
            "vault",
            "vault",
            &[("address", vault_address), ("auth", &auth)],
        )
        .aws("aws", REGION, &moto.endpoint())
        .files("files", &secrets)
        .default("aws")
        .write(dir.path(), "multi.yaml");
    let config = config.to_str().unwrap().to_owned();
    Stores {
        _bao: bao,
        moto,
        dir,
        config,
    }
}

fn cmd(s: &Stores) -> Cmd {
    let mut c = Cmd::new(BIN).args(["--config", &s.config]);
    for (k, v) in s.moto.env() {
        c = c.env(k, &v);
    }
    c.env_remove("VAULT_ADDR")
        .env_remove("VAULT_TOKEN")
        .env("HOME", s.dir.path().to_str().unwrap())
}

#[test]
fn vault_aws_and_files_in_one_call_with_nothing_leaked() {
    let s = stores(None);
    let log = s.dir.path().join("trace.log");
    let handles = [
        "vault:secret/db;password",
        "vault:secret/db;user",
        "aws:prod/api;key",
        "prod/api;region",
        "files:db_password",
        "vault:secret/nothing;x",
        "aws:prod/none",
    ];
    let done = cmd(&s)
        .args(["--log-level", "trace", "--log-file", log.to_str().unwrap()])
        .stdin(go_payload(
            "1.1",
            &handles,
            &[("secret_backend_timeout", json!(20))],
        ))
        .run();
    assert_eq!(done.value("vault:secret/db;password"), "vault-pw-8c1f");
    assert_eq!(done.value("vault:secret/db;user"), "vault-user");
    assert_eq!(done.value("aws:prod/api;key"), "aws-key-77e2");
    assert_eq!(
        done.value("prod/api;region"),
        "eu",
        "unprefixed handles go to the default (aws)"
    );
    assert_eq!(done.value("files:db_password"), "file-pw-41d9");
    assert!(!done.error("vault:secret/nothing;x").is_empty());
    assert!(!done.error("aws:prod/none").is_empty());
    let planted = [
        "vault-pw-8c1f",
        "aws-key-77e2",
        "file-pw-41d9",
        "moto-test-secret-access-key",
    ];
    assert_no_leak("stderr", &done.stderr, &planted);
    assert_no_leak(
        "the trace log",
        &std::fs::read_to_string(&log).unwrap(),
        &planted,
    );
    let stdout = done
        .stdout_str()
        .replace("\"vault-pw-8c1f\"", "")
        .replace("\"aws-key-77e2\"", "")
        .replace("\"file-pw-41d9\"", "");
    assert_no_leak("stdout outside the values", &stdout, &planted);
}

#[test]
fn a_hanging_store_costs_only_its_own_handles() {
    // A vault address that accepts connections and never answers.
    let hang = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = format!("http://{}", hang.local_addr().unwrap());
    let _held = std::thread::spawn(move || {
        let mut open = Vec::new();
        for c in hang.incoming().flatten() {
            open.push(c);
        }
    });
    let s = stores(Some(&addr));
    let done = cmd(&s)
        .stdin(go_payload(
            "1.1",
            &[
                "vault:secret/db;password",
                "aws:prod/api;key",
                "files:db_password",
            ],
            &[("secret_backend_timeout", json!(3))],
        ))
        .run();
    assert!(
        done.elapsed < Duration::from_secs(3),
        "answered before the agent's deadline: {done}"
    );
    assert!(
        done.error("vault:secret/db;password").contains("timed out"),
        "{done}"
    );
    assert_eq!(done.value("aws:prod/api;key"), "aws-key-77e2");
    assert_eq!(done.value("files:db_password"), "file-pw-41d9");
}

#[test]
fn the_caller_can_choose_vault_and_aws_stores() {
    let s = stores(None);
    let bao_addr = s._bao.addr.clone();
    let vault = cmd(&s)
        .stdin(go_payload(
            "1.1",
            &["secret/db;password", "vault://secret/db#/user"],
            &[
                ("type", json!("hashicorp.vault")),
                (
                    "config",
                    json!({"vault_address": bao_addr, "vault_token": ROOT_TOKEN}),
                ),
                ("secret_backend_timeout", json!(20)),
            ],
        ))
        .run();
    assert_eq!(vault.value("secret/db;password"), "vault-pw-8c1f");
    assert_eq!(vault.value("vault://secret/db#/user"), "vault-user");
    let aws = cmd(&s)
        .stdin(go_payload(
            "1.1",
            &["prod/api;key"],
            &[
                ("type", json!("aws.secrets")),
                ("config", json!({"aws_session": {"aws_region": REGION}})),
                ("secret_backend_timeout", json!(20)),
            ],
        ))
        .run();
    assert_eq!(aws.value("prod/api;key"), "aws-key-77e2");
    // force_string: the whole secret string, whatever key the handle names.
    let forced = cmd(&s)
        .stdin(go_payload(
            "1.1",
            &["prod/api;key"],
            &[
                ("type", json!("aws.secrets")),
                (
                    "config",
                    json!({"aws_session": {"aws_region": REGION}, "force_string": true}),
                ),
                ("secret_backend_timeout", json!(20)),
            ],
        ))
        .run();
    assert_eq!(
        forced.value("prod/api;key"),
        r#"{"key":"aws-key-77e2","region":"eu"}"#
    );
    moto_call(
        &s.moto,
        "ssm",
        "AmazonSSM.PutParameter",
        &json!({"Name": "/app/token", "Value": "ssm-token-5b", "Type": "SecureString"}),
    );
    let ssm = cmd(&s)
        .stdin(go_payload(
            "1.1",
            &["/app/token", "/app/none"],
            &[
                ("type", json!("aws.ssm")),
                ("config", json!({"AWS_SESSION": {"aws_region": REGION}})),
                ("secret_backend_timeout", json!(20)),
            ],
        ))
        .run();
    assert_eq!(ssm.value("/app/token"), "ssm-token-5b");
    assert!(!ssm.error("/app/none").is_empty());
}

/// The `aws.secrets` connector answers `secret;key` of a secret that is not
/// JSON with the whole string (CONNECTORS.md); our own `aws` type keeps
/// refusing it, and a JSON secret's missing key stays an error.
#[test]
fn the_aws_secrets_connector_gives_a_plain_secret_whole() {
    let s = stores(None);
    create_secret(&s.moto, "plain/text", "plain-text-value-4d");
    let call = |kind: &str, config: serde_json::Value| {
        cmd(&s)
            .stdin(go_payload(
                "1.1",
                &["plain/text;password", "prod/api;missing", "prod/api;key"],
                &[
                    ("type", json!(kind)),
                    ("config", config),
                    ("secret_backend_timeout", json!(20)),
                ],
            ))
            .run()
    };
    let connector = call(
        "aws.secrets",
        json!({"aws_session": {"aws_region": REGION}}),
    );
    assert_eq!(
        connector.value("plain/text;password"),
        "plain-text-value-4d"
    );
    assert_eq!(connector.value("prod/api;key"), "aws-key-77e2");
    assert!(
        connector.error("prod/api;missing").contains("no key"),
        "{connector}"
    );
    let ours = call("aws", json!({"region": REGION}));
    assert!(
        ours.error("plain/text;password").contains("not JSON"),
        "{ours}"
    );
}

#[test]
fn a_caller_config_never_reaches_the_vault_token_itself() {
    let s = stores(None);
    let bao_addr = s._bao.addr.clone();
    // A token of the default policy, with an id we can look for.
    let token = "caller-token-never-returned-5e0a";
    s._bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": token, "policies": ["default"], "ttl": "10m"})),
    );
    let handles = [
        "auth/token/lookup-self;id",
        "vault://auth/token/lookup-self#/id",
        "vault://auth/token/lookup-self#/policies",
        "auth/token/lookup-self;/id",
        "sys/mounts;/secret~1/type",
        "identity/entity/name/x;id",
        "cubbyhole/response;x",
    ];
    for (kind, config) in [
        (
            "hashicorp.vault",
            json!({"vault_address": bao_addr, "vault_token": token}),
        ),
        (
            "vault",
            json!({"address": bao_addr, "auth": {"method": "token", "token": token}}),
        ),
    ] {
        let done = cmd(&s)
            .args(["--log-level", "trace"])
            .stdin(go_payload(
                "1.1",
                &handles,
                &[
                    ("type", json!(kind)),
                    ("config", config),
                    ("secret_backend_timeout", json!(20)),
                ],
            ))
            .run();
        done.expect_code(0);
        for h in handles {
            assert!(!done.error(h).is_empty(), "{kind} {h}: {done}");
        }
        backend_tests::assert_no_leak(
            kind,
            &format!("{}{}", done.stdout_str(), done.stderr),
            &[token],
        );
    }
}

/// A caller's config written in YAML types its scalars: `vault_token:
/// 40817263549102`, an all-digit secret id or password, reach us as JSON
/// numbers. They are credentials all the same, used as their text, never
/// dropped for the environment's token (another identity) to stand in.
#[test]
fn a_caller_credential_written_as_a_number_is_used_as_its_text() {
    let s = stores(None);
    let bao_addr = s._bao.addr.clone();
    s._bao.api_ok(
        "PUT",
        "sys/policies/acl/db-reader",
        Some(json!({"policy": r#"path "secret/*" { capabilities = ["read"] }"#})),
    );
    s._bao.api_ok(
        "POST",
        "auth/token/create",
        Some(json!({"id": "40817263549102", "policies": ["db-reader"], "ttl": "10m"})),
    );
    for token in [json!("40817263549102"), json!(40817263549102_u64)] {
        let done = cmd(&s)
            // Another identity the environment offers: never used instead.
            .env("VAULT_TOKEN", "hvs.environment-token-not-for-this-call")
            .stdin(go_payload(
                "1.1",
                &["secret/db;password"],
                &[
                    ("type", json!("hashicorp.vault")),
                    (
                        "config",
                        json!({"vault_address": bao_addr, "vault_token": token}),
                    ),
                    ("secret_backend_timeout", json!(20)),
                ],
            ))
            .run();
        assert_eq!(done.value("secret/db;password"), "vault-pw-8c1f", "{token}");
    }
}
