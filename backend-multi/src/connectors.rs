//! Stores configured by the caller: the `type` and `config` that Datadog
//! 7.70+ (`secret_backend_type`, `secret_backend_config`) and Vector's exec
//! protocol v1.1 (`backend_type`, `backend_config`) put into the request.
//!
//! The type names and config keys are those of the Datadog agent's built-in
//! connector (`../shared/CONNECTORS.md`), translated into our own store
//! configs, so `secret-backend` can stand in for that connector. As in the
//! original, key names match case-insensitively and unknown keys are
//! ignored. Handles are rewritten where the connector's grammar differs from
//! ours (`aws.ssm` takes bare parameter names; `vault://path#/pointer`).

use backend_core::ConfigError;
use serde_json::{Map, Value, json};

use crate::{HandleMap, stores};

/// Translates a caller's `type` and `config` into one of our store types,
/// its config, and the handle rewrite its grammar needs.
pub fn translate(
    backend_type: &str,
    config: &Value,
) -> Result<(String, Value, Option<HandleMap>), ConfigError> {
    let cfg = Ci(config);
    let (kind, ours, rewrite): (&str, Value, Option<HandleMap>) = match backend_type {
        "k8s.secrets" => ("k8s", k8s(&cfg), None),
        "azure.keyvault" => ("azure", azure(&cfg), None),
        "gcp.secretmanager" => ("gcp", gcp(&cfg), None),
        "hashicorp.vault" => ("vault", vault(&cfg)?, Some(vault_handle)),
        "aws.secrets" => ("aws", aws(&cfg, true)?, None),
        "aws.ssm" => ("aws", aws(&cfg, false)?, Some(ssm_handle)),
        "file.json" | "file.yaml" => {
            let path = cfg
                .str("file_path")
                .ok_or_else(|| missing(backend_type, "file_path"))?;
            ("file", file(&cfg, json!({ "document": path })), None)
        }
        "file.text" | "k8s.file" => {
            let path = cfg
                .str("secrets_path")
                .ok_or_else(|| missing(backend_type, "secrets_path"))?;
            ("file", file(&cfg, json!({ "dir": path })), None)
        }
        "docker.secrets" => {
            let path = cfg.str("secrets_path").unwrap_or("/run/secrets");
            ("file", file(&cfg, json!({ "dir": path })), None)
        }
        // Our own names, with our own keys, and connectors whose keys are
        // the store's own.
        other => match stores::find(other).or_else(|| stores::by_connector(other)) {
            Some(store) => (store.name, config.clone(), None),
            None => {
                return Err(ConfigError::new(format!(
                    "backend type '{}' is not served here (served: {}, and {})",
                    other.escape_debug(),
                    stores::connector_names(),
                    stores::names()
                )));
            }
        },
    };
    Ok((kind.to_owned(), ours, rewrite))
}

/// `aws.ssm` handles are parameter names or ARNs; ours say `ssm:` first.
fn ssm_handle(h: &str) -> String {
    if h.starts_with("arn:") {
        h.to_owned()
    } else {
        format!("ssm:{h}")
    }
}

/// `vault://path#/pointer` names the path literally and points into it.
fn vault_handle(h: &str) -> String {
    match h.strip_prefix("vault://") {
        Some(rest) => match rest.split_once('#') {
            Some((path, pointer)) => format!("{path};{pointer}"),
            None => rest.to_owned(),
        },
        None => h.to_owned(),
    }
}

/// `k8s.secrets`: the connector's keys are ours; its handles too.
fn k8s(cfg: &Ci<'_>) -> Value {
    let mut ours = Map::new();
    for key in ["token_path", "ca_path", "api_server"] {
        put(&mut ours, key, cfg.given(key));
    }
    Value::Object(ours)
}

/// Copies `keys` of `from` (matched case-insensitively, as the connector
/// does) into `to` under their own names, values as they are (a
/// credential written as a number stays one for the store to read).
fn copy(from: &Ci<'_>, to: &mut Map<String, Value>, keys: &[&str]) {
    for key in keys {
        put(to, key, from.given(key));
    }
}

/// `azure.keyvault`: the connector's keys are the store's own; unknown
/// ones are dropped, as the connector ignores them.
fn azure(cfg: &Ci<'_>) -> Value {
    let mut ours = Map::new();
    copy(cfg, &mut ours, &["keyvaulturl", "clientid"]);
    if let Some(session) = cfg.sub("azure_session") {
        let mut s = Map::new();
        copy(
            &session,
            &mut s,
            &[
                "azure_tenant_id",
                "azure_client_id",
                "azure_client_secret",
                "azure_client_certificate_path",
                "azure_client_certificate_password",
                "azure_client_send_certificate_chain",
            ],
        );
        ours.insert("azure_session".into(), Value::Object(s));
    }
    Value::Object(ours)
}

/// `gcp.secretmanager`: `gcp_session.project_id`, the connector's one key.
fn gcp(cfg: &Ci<'_>) -> Value {
    let mut ours = Map::new();
    if let Some(session) = cfg.sub("gcp_session") {
        let mut s = Map::new();
        copy(&session, &mut s, &["project_id"]);
        ours.insert("gcp_session".into(), Value::Object(s));
    }
    Value::Object(ours)
}

fn missing(t: &str, key: &str) -> ConfigError {
    ConfigError::new(format!("{t}: config key '{key}' is required"))
}

/// The file connectors' default `max_file_read_size`: 10 MiB, where our
/// own file store's default is 64 KiB; a caller choosing the connector gets
/// the connector's limit (a 100 KB document it serves is served here too).
pub const CONNECTOR_MAX_FILE_BYTES: u64 = 10 * 1024 * 1024;

/// The file connectors' common key: `max_file_read_size` (bytes), else the
/// connector's default.
fn file(cfg: &Ci<'_>, mut ours: Value) -> Value {
    let limit = cfg
        .get("max_file_read_size")
        .and_then(Value::as_u64)
        .unwrap_or(CONNECTOR_MAX_FILE_BYTES);
    ours["max_file_bytes"] = limit.into();
    ours
}

fn vault(cfg: &Ci<'_>) -> Result<Value, ConfigError> {
    let mut ours = Map::new();
    // As in the original, VAULT_ADDR wins over vault_address when set.
    if let (None, Some(a)) = (std::env::var_os("VAULT_ADDR"), cfg.given("vault_address")) {
        ours.insert("address".into(), a.clone());
    }
    // Sent on every request, the login included, as the connector does.
    put(&mut ours, "namespace", cfg.given("vault_namespace"));
    if let Some(tls) = cfg.sub("vault_tls_config") {
        for (theirs, key) in [
            ("ca_cert", "ca_cert"),
            ("ca_path", "ca_path"),
            ("client_cert", "client_cert"),
            ("client_key", "client_key"),
            ("tls_server", "tls_server_name"),
        ] {
            put(&mut ours, key, tls.given(theirs));
        }
        if let Some(b) = tls.get("insecure").and_then(Value::as_bool) {
            ours.insert("skip_verify".into(), b.into());
        }
    }
    let session = cfg.sub("vault_session");
    let s = |k: &str| session.as_ref().and_then(|s| s.given(k));
    let mut auth = Map::new();
    let auth_type = session
        .as_ref()
        .and_then(|s| s.str("vault_auth_type"))
        .map(str::to_ascii_lowercase);
    let implicit = session
        .as_ref()
        .and_then(|s| s.get("implicit_auth"))
        .and_then(Value::as_bool)
        == Some(true);
    if implicit {
        // No login: the token the vault CLI would find (VAULT_TOKEN, else
        // ~/.vault-token), which is our token method's own default.
        let login_keys = [
            "vault_role_id",
            "vault_secret_id",
            "vault_username",
            "vault_ldap_username",
            "vault_auth_type",
        ];
        if login_keys.iter().any(|k| s(k).is_some()) || cfg.given("vault_token").is_some() {
            return Err(ConfigError::new(
                "hashicorp.vault: vault_session.implicit_auth takes the token from the environment; it excludes vault_token and the login keys",
            ));
        }
        auth.insert("method".into(), "token".into());
    } else if s("vault_role_id").is_some() || s("vault_secret_id").is_some() {
        auth.insert("method".into(), "approle".into());
        put(&mut auth, "role_id", s("vault_role_id"));
        put(&mut auth, "secret_id", s("vault_secret_id"));
    } else if s("vault_username").is_some() {
        auth.insert("method".into(), "userpass".into());
        put(&mut auth, "username", s("vault_username"));
        put(&mut auth, "password", s("vault_password"));
    } else if s("vault_ldap_username").is_some() {
        auth.insert("method".into(), "ldap".into());
        put(&mut auth, "username", s("vault_ldap_username"));
        put(&mut auth, "password", s("vault_ldap_password"));
    } else if auth_type.as_deref() == Some("kubernetes") {
        auth.insert("method".into(), "kubernetes".into());
        put(&mut auth, "role", s("vault_kubernetes_role"));
        put(&mut auth, "jwt", s("vault_kubernetes_jwt"));
        put(&mut auth, "jwt_file", s("vault_kubernetes_jwt_path"));
        // Theirs is the full login path, `auth/<mount>/login`; ours the mount.
        if let Some(p) = session
            .as_ref()
            .and_then(|s| s.str("vault_kubernetes_mount_path"))
        {
            let mount = p
                .trim_matches('/')
                .trim_start_matches("auth/")
                .trim_end_matches("/login");
            auth.insert("mount".into(), mount.into());
        }
    } else if auth_type.as_deref() == Some("aws") {
        auth.insert("method".into(), "aws".into());
        put(&mut auth, "role", s("vault_aws_role"));
        put(&mut auth, "region", s("aws_region"));
        put(&mut auth, "iam_server_id", s("vault_aws_iam_server_id"));
    } else if let Some(t) = auth_type.as_deref().filter(|t| !t.is_empty()) {
        return Err(ConfigError::new(format!(
            "hashicorp.vault: vault_auth_type '{}' is not supported here (kubernetes and aws are; \
             or use vault_role_id/vault_secret_id, vault_username, vault_ldap_username, vault_token)",
            t.escape_debug()
        )));
    } else if let Some(token) = cfg.given("vault_token") {
        auth.insert("method".into(), "token".into());
        auth.insert("token".into(), token.clone());
    }
    if !auth.is_empty() {
        ours.insert("auth".into(), Value::Object(auth));
    }
    Ok(Value::Object(ours))
}

/// `secrets`: the `aws.secrets` connector, which also reads `force_string`
/// and answers `secret;key` of a secret that is not JSON with the whole
/// string (CONNECTORS.md).
fn aws(cfg: &Ci<'_>, secrets: bool) -> Result<Value, ConfigError> {
    let mut ours = Map::new();
    if let Some(session) = cfg.sub("aws_session") {
        for (theirs, key) in [
            ("aws_region", "region"),
            ("aws_profile", "profile"),
            ("aws_role_arn", "role_arn"),
            ("aws_external_id", "external_id"),
            ("aws_access_key_id", "access_key_id"),
            ("aws_secret_access_key", "secret_access_key"),
        ] {
            put(&mut ours, key, session.given(theirs));
        }
        if ours.contains_key("access_key_id") != ours.contains_key("secret_access_key") {
            return Err(ConfigError::new(
                "aws: aws_access_key_id and aws_secret_access_key go together",
            ));
        }
    }
    if secrets {
        if cfg.get("force_string").and_then(Value::as_bool) == Some(true) {
            ours.insert("force_string".into(), true.into());
        }
        ours.insert("whole_if_not_json".into(), true.into());
    }
    Ok(Value::Object(ours))
}

/// Sets `key` to `value`, as it is, when one is given.
fn put(map: &mut Map<String, Value>, key: &str, value: Option<&Value>) {
    if let Some(v) = value {
        map.insert(key.into(), v.clone());
    }
}

/// A config object read with case-insensitive keys.
struct Ci<'a>(&'a Value);

impl<'a> Ci<'a> {
    fn get(&self, key: &str) -> Option<&'a Value> {
        self.0
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    }
    /// The value of `key` unless it is null or empty, whatever its type:
    /// a caller's YAML types an all-digit token or password as a number,
    /// which is still the credential (our stores read any scalar as its
    /// text, and refuse, naming the key, what they cannot read). Dropping
    /// it would let another one stand in: the environment's token.
    fn given(&self, key: &str) -> Option<&'a Value> {
        self.get(key)
            .filter(|v| !v.is_null() && v.as_str() != Some(""))
    }
    fn str(&self, key: &str) -> Option<&'a str> {
        self.get(key)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
    }
    fn sub(&self, key: &str) -> Option<Ci<'a>> {
        self.get(key).filter(|v| v.is_object()).map(Ci)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_rewritten_where_grammars_differ() {
        assert_eq!(ssm_handle("/app/db"), "ssm:/app/db");
        assert_eq!(
            ssm_handle("arn:aws:ssm:eu-west-1:1:parameter/x"),
            "arn:aws:ssm:eu-west-1:1:parameter/x"
        );
        assert_eq!(
            vault_handle("vault://secret/data/db#/password"),
            "secret/data/db;/password"
        );
        assert_eq!(vault_handle("secret/db;password"), "secret/db;password");
    }

    #[test]
    fn credentials_of_any_scalar_type_are_passed_on() {
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_session": {"vault_role_id": 42, "vault_secret_id": 1.5e3}}),
        )
        .unwrap();
        assert_eq!(
            c["auth"],
            json!({"method": "approle", "role_id": 42, "secret_id": 1.5e3})
        );
        let (_, c, _) = translate("hashicorp.vault", &json!({"vault_token": true})).unwrap();
        assert_eq!(c["auth"], json!({"method": "token", "token": true}));
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_session": {"vault_username": "u", "vault_password": 123456}}),
        )
        .unwrap();
        assert_eq!(c["auth"]["password"], json!(123456));
        let (_, c, _) = translate(
            "aws.secrets",
            &json!({"aws_session": {"aws_access_key_id": "AKIA", "aws_secret_access_key": 99}}),
        )
        .unwrap();
        assert_eq!(c["secret_access_key"], json!(99));
        assert!(
            translate(
                "aws.secrets",
                &json!({"aws_session": {"aws_access_key_id": 7, "aws_secret_access_key": ""}}),
            )
            .is_err()
        );
    }

    #[test]
    fn file_types_map_to_our_modes() {
        let (k, c, r) = translate(
            "file.json",
            &json!({"FILE_PATH": "/etc/s.json", "max_file_read_size": 100}),
        )
        .unwrap();
        assert_eq!((k.as_str(), r.is_none()), ("file", true));
        assert_eq!(c, json!({"document": "/etc/s.json", "max_file_bytes": 100}));
        let (_, c, _) = translate("docker.secrets", &json!({})).unwrap();
        assert_eq!(
            c,
            json!({"dir": "/run/secrets", "max_file_bytes": CONNECTOR_MAX_FILE_BYTES})
        );
        assert!(translate("file.text", &json!({})).is_err());
        assert!(translate("akeyless", &json!({})).is_err());
    }

    #[test]
    fn vault_and_aws_keys_map_to_ours() {
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_address": "https://v:8200", "vault_tls_config": {"ca_cert": "/ca.pem", "insecure": false},
                    "vault_session": {"vault_auth_type": "kubernetes", "vault_kubernetes_role": "agent",
                                      "vault_kubernetes_mount_path": "auth/k8s/login"}}),
        )
        .unwrap();
        assert_eq!(
            c["auth"],
            json!({"method": "kubernetes", "role": "agent", "mount": "k8s"})
        );
        assert_eq!(c["ca_cert"], "/ca.pem");
        assert_eq!(c["skip_verify"], false);
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_session": {"vault_role_id": "r", "vault_secret_id": "s"}}),
        )
        .unwrap();
        assert_eq!(
            c["auth"],
            json!({"method": "approle", "role_id": "r", "secret_id": "s"})
        );
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_namespace": "team/a", "vault_session": {"vault_auth_type": "AWS",
                    "vault_aws_role": "agent", "aws_region": "eu-west-1",
                    "vault_aws_iam_server_id": "vault.example.com"}}),
        )
        .unwrap();
        assert_eq!(
            c,
            json!({"namespace": "team/a", "auth": {"method": "aws", "role": "agent",
                   "region": "eu-west-1", "iam_server_id": "vault.example.com"}})
        );
        let (_, c, _) = translate(
            "hashicorp.vault",
            &json!({"vault_session": {"implicit_auth": true}}),
        )
        .unwrap();
        assert_eq!(c, json!({"auth": {"method": "token"}}));
        for contradiction in [
            json!({"vault_token": "t", "vault_session": {"implicit_auth": true}}),
            json!({"vault_session": {"implicit_auth": true, "vault_role_id": "r"}}),
            json!({"vault_session": {"implicit_auth": true, "vault_auth_type": "aws"}}),
        ] {
            assert!(translate("hashicorp.vault", &contradiction).is_err());
        }
        assert!(
            translate(
                "hashicorp.vault",
                &json!({"vault_session": {"vault_auth_type": "gcp"}})
            )
            .is_err()
        );
        let (k, c, r) = translate(
            "aws.ssm",
            &json!({"aws_session": {"aws_region": "eu-west-1"}}),
        )
        .unwrap();
        assert_eq!(
            (k.as_str(), c, r.is_some()),
            ("aws", json!({"region": "eu-west-1"}), true)
        );
        assert!(
            translate(
                "aws.secrets",
                &json!({"aws_session": {"aws_access_key_id": "AK"}})
            )
            .is_err()
        );
    }

    #[test]
    fn cloud_connectors_keep_their_keys_case_insensitively_and_drop_the_rest() {
        let (kind, ours, rewrite) = translate(
            "azure.keyvault",
            &json!({
                "KeyVaultURL": "https://v.vault.azure.net",
                "ClientID": "c",
                "AZURE_SESSION": {"Azure_Client_Secret": 123, "azure_tenant_id": "t", "x": 1},
                "unknown": true,
            }),
        )
        .unwrap();
        assert_eq!(kind, "azure");
        assert!(rewrite.is_none());
        assert_eq!(
            ours,
            json!({
                "keyvaulturl": "https://v.vault.azure.net",
                "clientid": "c",
                "azure_session": {"azure_client_secret": 123, "azure_tenant_id": "t"},
            })
        );
        let (kind, ours, _) = translate(
            "gcp.secretmanager",
            &json!({"GCP_Session": {"Project_ID": "p"}, "other": 1}),
        )
        .unwrap();
        assert_eq!(kind, "gcp");
        assert_eq!(ours, json!({"gcp_session": {"project_id": "p"}}));
        crate::stores::validate("azure", json!({"keyvaulturl": "https://v.vault.azure.net"}))
            .unwrap();
        crate::stores::validate(&kind, ours).unwrap();
    }
}
