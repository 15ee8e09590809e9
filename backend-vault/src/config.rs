//! The configuration schema and its validation.
//!
//! [`VaultConfig`] is what the YAML file holds (unknown keys are errors).
//! Where it is silent, the environment variables the `vault` / `bao` CLI
//! reads fill it in (`VAULT_ADDR`, `VAULT_TOKEN`, `VAULT_CACERT`, ...), so
//! an operator's working shell setup carries over. [`VaultConfig::validate`]
//! then turns it into [`Settings`]: credential files read (and refused when
//! group or others can write them), the address parsed, the auth method's
//! required fields checked. Nothing here touches the network.

use std::fmt;
use std::path::{Path, PathBuf};

use backend_core::config::read_credential;
use backend_core::secret::hold;
use backend_core::{ConfigError, Credential, Secret, redact};
use serde::Deserialize;

use crate::policy::{Policy, refused_root};

/// The address when neither the config nor `VAULT_ADDR` sets one (the CLI's default).
pub const DEFAULT_ADDRESS: &str = "https://127.0.0.1:8200";
/// Default number of paths read at once.
pub const DEFAULT_CONCURRENCY: usize = 16;
/// Upper bound for `concurrency`.
pub const MAX_CONCURRENCY: usize = 256;
/// Where Kubernetes mounts the service account token.
pub const KUBERNETES_TOKEN_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/token";

/// The YAML config of `secret-backend-vault`.
#[derive(Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct VaultConfig {
    /// Server URL (`VAULT_ADDR`), default `https://127.0.0.1:8200`.
    pub address: Option<String>,
    /// Vault Enterprise / OpenBao namespace (`VAULT_NAMESPACE`).
    pub namespace: Option<String>,
    /// PEM file of CA certificates (`VAULT_CACERT`); replaces the system roots.
    pub ca_cert: Option<PathBuf>,
    /// Directory of PEM CA files (`VAULT_CAPATH`); replaces the system roots.
    pub ca_path: Option<PathBuf>,
    /// PEM client certificate for mutual TLS (`VAULT_CLIENT_CERT`).
    pub client_cert: Option<PathBuf>,
    /// PEM private key of `client_cert` (`VAULT_CLIENT_KEY`).
    pub client_key: Option<PathBuf>,
    /// Name the server certificate must carry (`VAULT_TLS_SERVER_NAME`).
    pub tls_server_name: Option<String>,
    /// Skip TLS verification (`VAULT_SKIP_VERIFY`); logged as a warning.
    pub skip_verify: Option<bool>,
    /// Paths read at once (default 16).
    pub concurrency: Option<usize>,
    /// How to get a token.
    pub auth: AuthConfig,
    /// Keep a token obtained by login in this file (mode 0600) and reuse it
    /// while it is valid, instead of revoking it after each call.
    pub token_cache_file: Option<PathBuf>,
    /// Path prefixes (whole segments, as handles write them) that handles
    /// may read; default: every path that is not refused ([`crate::policy`]).
    pub allowed_paths: Option<Vec<String>>,
    /// Names that stand for handles ([`backend_core::alias`]).
    pub aliases: backend_core::Aliases,
}

/// The auth methods.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    /// A token from `token_file`, `VAULT_TOKEN` or `~/.vault-token`.
    #[default]
    Token,
    /// AppRole: role id and secret id.
    Approle,
    /// Kubernetes service account JWT.
    Kubernetes,
    /// A JWT from a file.
    Jwt,
    /// Username and password.
    Userpass,
    /// LDAP username and password.
    Ldap,
    /// The TLS client certificate.
    Cert,
    /// AWS IAM: a signed `sts:GetCallerIdentity` request ([`crate::aws_login`]).
    Aws,
}

impl Method {
    /// The name used in config and messages.
    pub fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::Approle => "approle",
            Self::Kubernetes => "kubernetes",
            Self::Jwt => "jwt",
            Self::Userpass => "userpass",
            Self::Ldap => "ldap",
            Self::Cert => "cert",
            Self::Aws => "aws",
        }
    }
}

/// `auth:` in the config. Which fields apply depends on `method`; a field
/// the method does not use is an error (it is probably a mistake).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AuthConfig {
    /// The auth method (default `token`).
    pub method: Method,
    /// Where the method is mounted (default: the method's name).
    pub mount: Option<String>,
    /// token: the token itself (prefer `token_file` or `VAULT_TOKEN`).
    pub token: Option<Credential>,
    /// token: file holding the token.
    pub token_file: Option<PathBuf>,
    /// approle: the role id.
    pub role_id: Option<Credential>,
    /// approle: file holding the role id.
    pub role_id_file: Option<PathBuf>,
    /// approle: the secret id.
    pub secret_id: Option<Credential>,
    /// approle: file holding the secret id.
    pub secret_id_file: Option<PathBuf>,
    /// kubernetes, jwt, aws: the role; cert: the certificate role name (optional).
    pub role: Option<String>,
    /// kubernetes, jwt: the JWT itself (prefer `jwt_file`).
    pub jwt: Option<Credential>,
    /// kubernetes: the service account token file; jwt: the JWT file.
    pub jwt_file: Option<PathBuf>,
    /// userpass, ldap: the user name.
    pub username: Option<String>,
    /// userpass, ldap: the password itself (prefer `password_file`).
    pub password: Option<Credential>,
    /// userpass, ldap: file holding the password.
    pub password_file: Option<PathBuf>,
    /// aws: the region whose STS endpoint the login request names.
    pub region: Option<String>,
    /// aws: the `X-Vault-AWS-IAM-Server-ID` header value, signed with the request.
    pub iam_server_id: Option<String>,
    /// aws: the STS endpoint the login request names, instead of the region's.
    pub sts_endpoint: Option<String>,
}

impl fmt::Debug for VaultConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultConfig")
            .field("address", &self.address)
            .field("namespace", &self.namespace)
            .field("ca_cert", &self.ca_cert)
            .field("ca_path", &self.ca_path)
            .field("client_cert", &self.client_cert)
            .field("client_key", &self.client_key)
            .field("tls_server_name", &self.tls_server_name)
            .field("skip_verify", &self.skip_verify)
            .field("concurrency", &self.concurrency)
            .field("auth", &self.auth)
            .field("token_cache_file", &self.token_cache_file)
            .field("allowed_paths", &self.allowed_paths)
            .field("aliases", &self.aliases)
            .finish()
    }
}

/// Where the environment comes from (the process, or a map in tests).
pub trait Env {
    /// The variable's value, if set and not empty.
    fn var(&self, name: &str) -> Option<String>;
}

/// The process environment.
#[derive(Debug, Clone, Copy)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok().filter(|v| !v.is_empty())
    }
}

impl<F: Fn(&str) -> Option<String>> Env for F {
    fn var(&self, name: &str) -> Option<String> {
        self(name).filter(|v| !v.is_empty())
    }
}

/// TLS settings, files not yet read.
#[derive(Debug, Clone, Default)]
pub struct TlsSettings {
    /// CA file.
    pub ca_cert: Option<PathBuf>,
    /// CA directory.
    pub ca_path: Option<PathBuf>,
    /// Client certificate and key files.
    pub client: Option<(PathBuf, PathBuf)>,
    /// Expected server name.
    pub server_name: Option<String>,
    /// Verification off.
    pub skip_verify: bool,
}

/// How the provider gets its token.
#[derive(Debug)]
pub enum Credentials {
    /// A token we were given: used as is, never revoked.
    Token(Secret),
    /// A login at `auth/<mount>/login...`.
    Login(Login),
}

/// A login request, credentials read.
#[derive(Debug)]
pub struct Login {
    /// The method.
    pub method: Method,
    /// The mount path's segments (`approle`, or `team/approle`).
    pub mount: Vec<String>,
    /// Extra path segment after `login` (the user name for userpass/ldap).
    pub user: Option<String>,
    /// The JSON body fields; values are credentials.
    pub body: Vec<(&'static str, Secret)>,
    /// aws: how to sign the request whose fields join `body` at login time.
    pub aws: Option<crate::aws_login::AwsLogin>,
}

/// The validated configuration.
#[derive(Debug)]
pub struct Settings {
    /// Server base URL, without a trailing slash.
    pub address: String,
    /// Namespace header.
    pub namespace: Option<String>,
    /// TLS.
    pub tls: TlsSettings,
    /// Paths read at once.
    pub concurrency: usize,
    /// The token, or how to log in.
    pub credentials: Credentials,
    /// Token cache file for tokens obtained by login.
    pub token_cache_file: Option<PathBuf>,
    /// Which paths handles may read.
    pub policy: Policy,
}

fn bad(msg: impl Into<String>) -> ConfigError {
    ConfigError::new(msg)
}

/// Go's `strconv.ParseBool`, which the vault CLI uses for `VAULT_SKIP_VERIFY`.
fn parse_bool(name: &str, v: &str) -> Result<bool, ConfigError> {
    match v {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Ok(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Ok(false),
        _ => Err(bad(format!(
            "{name}: '{}' is not a boolean",
            v.escape_debug()
        ))),
    }
}

impl VaultConfig {
    /// Fills what the config leaves unset from `env` (the CLI's variables).
    pub fn with_env(mut self, env: &dyn Env) -> Result<Self, ConfigError> {
        let path = |n: &str| env.var(n).map(PathBuf::from);
        self.address = self.address.or_else(|| env.var("VAULT_ADDR"));
        self.namespace = self.namespace.or_else(|| env.var("VAULT_NAMESPACE"));
        self.ca_cert = self.ca_cert.or_else(|| path("VAULT_CACERT"));
        self.ca_path = self.ca_path.or_else(|| path("VAULT_CAPATH"));
        self.client_cert = self.client_cert.or_else(|| path("VAULT_CLIENT_CERT"));
        self.client_key = self.client_key.or_else(|| path("VAULT_CLIENT_KEY"));
        self.tls_server_name = self
            .tls_server_name
            .or_else(|| env.var("VAULT_TLS_SERVER_NAME"));
        if self.skip_verify.is_none() {
            self.skip_verify = env
                .var("VAULT_SKIP_VERIFY")
                .map(|v| parse_bool("VAULT_SKIP_VERIFY", &v))
                .transpose()?;
        }
        Ok(self)
    }

    /// Checks the config and reads the credential files it names. `env`
    /// supplies `VAULT_TOKEN` and `HOME` for the token method.
    pub fn validate(self, env: &dyn Env) -> Result<Settings, ConfigError> {
        let address = address(self.address.as_deref().unwrap_or(DEFAULT_ADDRESS))?;
        let namespace = match self.namespace {
            Some(ns) => Some(namespace(&ns)?),
            None => None,
        };
        let concurrency = self.concurrency.unwrap_or(DEFAULT_CONCURRENCY);
        if !(1..=MAX_CONCURRENCY).contains(&concurrency) {
            return Err(bad(format!(
                "concurrency must be between 1 and {MAX_CONCURRENCY}"
            )));
        }
        let client = match (self.client_cert, self.client_key) {
            (Some(c), Some(k)) => Some((c, k)),
            (None, None) => None,
            _ => {
                return Err(bad(
                    "client_cert and client_key (VAULT_CLIENT_CERT, VAULT_CLIENT_KEY) go together",
                ));
            }
        };
        let skip_verify = self.skip_verify.unwrap_or(false);
        if skip_verify {
            tracing::warn!("TLS verification is off (skip_verify / VAULT_SKIP_VERIFY)");
        }
        if self.auth.method == Method::Cert && client.is_none() {
            return Err(bad(
                "auth method cert needs client_cert and client_key (or VAULT_CLIENT_CERT and VAULT_CLIENT_KEY)",
            ));
        }
        let policy = Policy::new(self.allowed_paths.map(allowed_paths).transpose()?);
        let credentials = credentials(self.auth, env)?;
        if matches!(credentials, Credentials::Token(_)) && self.token_cache_file.is_some() {
            return Err(bad(
                "token_cache_file keeps tokens obtained by login; it does not apply to auth method token",
            ));
        }
        Ok(Settings {
            address,
            namespace,
            tls: TlsSettings {
                ca_cert: self.ca_cert,
                ca_path: self.ca_path,
                client,
                server_name: self.tls_server_name,
                skip_verify,
            },
            concurrency,
            credentials,
            token_cache_file: self.token_cache_file,
            policy,
        })
    }
}

/// The address as a message may show it: without userinfo, escaped.
fn shown_address(raw: &str) -> String {
    redact::url(raw).escape_debug().to_string()
}

fn address(raw: &str) -> Result<String, ConfigError> {
    // A Vault address never holds '@': it can only be userinfo, whatever
    // the URL parser makes of it (`http://u:p/w@host` parses as host `u`
    // with a path holding the rest).
    if raw.contains('@') {
        return Err(bad(format!(
            "address '{}' must not carry credentials (user:password@)",
            shown_address(raw)
        )));
    }
    let url = reqwest::Url::parse(raw.trim())
        .map_err(|e| bad(format!("address '{}': {e}", shown_address(raw))))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(bad("address must start with http:// or https://"));
    }
    if url.host_str().is_none() {
        return Err(bad("address has no host"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(bad("address must not carry a query or fragment"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad("address must not carry credentials"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// `allowed_paths` entries as segments: paths as handles write them, none
/// of them refused anyway (an entry that can never match is a mistake).
fn allowed_paths(entries: Vec<String>) -> Result<Vec<Vec<String>>, ConfigError> {
    if entries.is_empty() {
        return Err(bad(
            "allowed_paths is empty: list the path prefixes handles may read, or remove it",
        ));
    }
    entries
        .iter()
        .map(|entry| {
            let shown = entry.escape_debug();
            let trimmed = entry.trim().trim_end_matches('/');
            let segments = crate::handle::segments(trimmed).map_err(|_| {
                bad(format!(
                    "allowed_paths: '{shown}' is not a path like 'secret/app' (no '//', '.', '..', '%', '#', '\\', '?')"
                ))
            })?;
            if trimmed.contains(['?', ';']) {
                return Err(bad(format!(
                    "allowed_paths: '{shown}' is a path prefix, without '?' or ';'"
                )));
            }
            if refused_root(&segments) {
                return Err(bad(format!(
                    "allowed_paths: '{shown}' can never be read (auth/, sys/, identity/ and cubbyhole/response are refused)"
                )));
            }
            Ok(segments.into_iter().map(str::to_owned).collect())
        })
        .collect()
}

fn namespace(ns: &str) -> Result<String, ConfigError> {
    let ns = ns.trim().trim_matches('/');
    if ns.is_empty()
        || ns.len() > 512
        || ns.split('/').any(|s| s.is_empty() || s == "." || s == "..")
        || ns.chars().any(|c| c.is_control())
    {
        return Err(bad("namespace must be a path like 'team' or 'team/sub'"));
    }
    Ok(ns.to_owned())
}

/// A mount path's segments: `approle`, `team/approle`.
fn mount(method: Method, mount: Option<&str>) -> Result<Vec<String>, ConfigError> {
    let m = mount.unwrap_or(method.name()).trim_matches('/');
    let parts: Vec<String> = m.split('/').map(str::to_owned).collect();
    let ok = !m.is_empty()
        && parts.iter().all(|s| {
            !s.is_empty()
                && s != "."
                && s != ".."
                && !s.contains(['?', '#', '%', '\\'])
                && !s.chars().any(char::is_control)
        });
    if ok {
        Ok(parts)
    } else {
        Err(bad(format!(
            "auth.mount '{}' is not a mount path",
            m.escape_debug()
        )))
    }
}

/// A credential read from a file, [`hold`]: no reply may carry it.
fn held(secret: Secret) -> Secret {
    hold(&secret);
    secret
}

/// A value given inline or in a file; exactly one of them. Either way it is
/// a credential the process holds ([`hold`]).
fn inline_or_file(
    inline: Option<Credential>,
    file: Option<&Path>,
    name: &str,
) -> Result<Option<Secret>, ConfigError> {
    match (inline, file) {
        (Some(_), Some(_)) => Err(bad(format!(
            "auth.{name} and auth.{name}_file exclude each other"
        ))),
        (Some(v), None) if v.expose().trim().is_empty() => {
            Err(bad(format!("auth.{name} is empty")))
        }
        (Some(v), None) => Ok(Some(Secret::credential(v.expose().trim().to_owned()))),
        (None, Some(p)) => read_credential(p, &format!("auth.{name}_file")).map(|s| Some(held(s))),
        (None, None) => Ok(None),
    }
}

fn required(v: Option<Secret>, what: &str) -> Result<Secret, ConfigError> {
    v.ok_or_else(|| bad(format!("auth method needs {what}")))
}

fn unused(auth: &AuthConfig) -> Vec<&'static str> {
    let uses: &[&str] = match auth.method {
        Method::Token => &["token", "token_file"],
        Method::Approle => &[
            "mount",
            "role_id",
            "role_id_file",
            "secret_id",
            "secret_id_file",
        ],
        Method::Kubernetes | Method::Jwt => &["mount", "role", "jwt", "jwt_file"],
        Method::Userpass | Method::Ldap => &["mount", "username", "password", "password_file"],
        Method::Cert => &["mount", "role"],
        Method::Aws => &["mount", "role", "region", "iam_server_id", "sts_endpoint"],
    };
    let set = [
        ("mount", auth.mount.is_some()),
        ("token", auth.token.is_some()),
        ("token_file", auth.token_file.is_some()),
        ("role_id", auth.role_id.is_some()),
        ("role_id_file", auth.role_id_file.is_some()),
        ("secret_id", auth.secret_id.is_some()),
        ("secret_id_file", auth.secret_id_file.is_some()),
        ("role", auth.role.is_some()),
        ("jwt", auth.jwt.is_some()),
        ("jwt_file", auth.jwt_file.is_some()),
        ("username", auth.username.is_some()),
        ("password", auth.password.is_some()),
        ("password_file", auth.password_file.is_some()),
        ("region", auth.region.is_some()),
        ("iam_server_id", auth.iam_server_id.is_some()),
        ("sts_endpoint", auth.sts_endpoint.is_some()),
    ];
    set.into_iter()
        .filter(|(name, is_set)| *is_set && !uses.contains(name))
        .map(|(name, _)| name)
        .collect()
}

fn credentials(auth: AuthConfig, env: &dyn Env) -> Result<Credentials, ConfigError> {
    let method = auth.method;
    let stray = unused(&auth);
    if !stray.is_empty() {
        return Err(bad(format!(
            "auth.{} not used by auth method {}",
            stray.join(", auth."),
            method.name()
        )));
    }
    if method == Method::Token {
        return match inline_or_file(auth.token, auth.token_file.as_deref(), "token")? {
            Some(t) => Ok(Credentials::Token(t)),
            None => token(env).map(Credentials::Token),
        };
    }
    let mount = mount(method, auth.mount.as_deref())?;
    let role = auth.role.filter(|r| !r.trim().is_empty()).map(Secret::new);
    let (user, body) = match method {
        Method::Token => return Err(bad("unreachable: token handled above")),
        Method::Approle => {
            let role_id = required(
                inline_or_file(auth.role_id, auth.role_id_file.as_deref(), "role_id")?,
                "auth.role_id or auth.role_id_file",
            )?;
            let mut body = vec![("role_id", role_id)];
            if let Some(s) =
                inline_or_file(auth.secret_id, auth.secret_id_file.as_deref(), "secret_id")?
            {
                body.push(("secret_id", s));
            }
            (None, body)
        }
        Method::Kubernetes | Method::Jwt => {
            let jwt = match inline_or_file(auth.jwt, auth.jwt_file.as_deref(), "jwt")? {
                Some(jwt) => jwt,
                None if method == Method::Kubernetes => held(read_credential(
                    Path::new(KUBERNETES_TOKEN_FILE),
                    "service account token",
                )?),
                None => return Err(bad("auth method jwt needs auth.jwt_file or auth.jwt")),
            };
            let mut body = vec![("jwt", jwt)];
            match role {
                Some(r) => body.push(("role", r)),
                None if method == Method::Kubernetes => {
                    return Err(bad("auth method kubernetes needs auth.role"));
                }
                None => {}
            }
            (None, body)
        }
        Method::Userpass | Method::Ldap => {
            let user = auth
                .username
                .filter(|u| !u.trim().is_empty())
                .ok_or_else(|| bad(format!("auth method {} needs auth.username", method.name())))?;
            if user.contains(['/', '?', '#', '%', '\\'])
                || user.chars().any(char::is_control)
                || user == "."
                || user == ".."
            {
                return Err(bad(
                    "auth.username holds characters a user name cannot have",
                ));
            }
            let password = required(
                inline_or_file(auth.password, auth.password_file.as_deref(), "password")?,
                &format!("auth.password_file or auth.password ({})", method.name()),
            )?;
            (Some(user), vec![("password", password)])
        }
        Method::Cert => (None, role.map(|r| vec![("name", r)]).unwrap_or_default()),
        // The role is optional, as in Vault (the principal's name then).
        Method::Aws => (None, role.map(|r| vec![("role", r)]).unwrap_or_default()),
    };
    let aws = match method {
        Method::Aws => Some(crate::aws_login::AwsLogin::new(
            auth.region,
            auth.iam_server_id,
            auth.sts_endpoint,
        )?),
        _ => None,
    };
    Ok(Credentials::Login(Login {
        method,
        mount,
        user,
        body,
        aws,
    }))
}

/// The token method's token when the config names none: `VAULT_TOKEN`,
/// else `~/.vault-token` (the CLI's token helper file).
fn token(env: &dyn Env) -> Result<Secret, ConfigError> {
    if let Some(t) = env.var("VAULT_TOKEN") {
        return Ok(Secret::credential(t.trim().to_owned()));
    }
    if let Some(home) = env.var("HOME") {
        let f = Path::new(&home).join(".vault-token");
        // symlink_metadata: a dangling link or a FIFO there is reported
        // (by the read), not skipped.
        if f.symlink_metadata().is_ok() {
            return read_credential(&f, "token file").map(held);
        }
    }
    Err(bad(
        "no Vault token: set VAULT_TOKEN, auth.token_file, or ~/.vault-token, or configure auth.method",
    ))
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::os::unix::fs::PermissionsExt;

    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |k: &str| map.get(k).cloned()
    }

    fn yaml(text: &str) -> Result<VaultConfig, String> {
        backend_core::config::from_yaml(text)
    }

    #[test]
    fn env_fills_only_what_config_leaves_unset() {
        let e = env(&[
            ("VAULT_ADDR", "http://env:8200"),
            ("VAULT_NAMESPACE", "ns1"),
            ("VAULT_SKIP_VERIFY", "true"),
            ("VAULT_TLS_SERVER_NAME", "vault.local"),
        ]);
        let c = yaml("address: http://conf:8200\n")
            .unwrap()
            .with_env(&e)
            .unwrap();
        assert_eq!(c.address.as_deref(), Some("http://conf:8200"));
        assert_eq!(c.namespace.as_deref(), Some("ns1"));
        assert_eq!(c.skip_verify, Some(true));
        assert_eq!(c.tls_server_name.as_deref(), Some("vault.local"));
        let e = env(&[("VAULT_SKIP_VERIFY", "yes")]);
        assert!(VaultConfig::default().with_env(&e).is_err());
    }

    #[test]
    fn unknown_keys_and_stray_auth_fields_are_errors() {
        assert!(yaml("adress: x\n").is_err());
        assert!(yaml("auth:\n  methd: token\n").is_err());
        assert!(yaml("auth:\n  method: kerberos\n").is_err());
        let c = yaml("auth:\n  method: token\n  role_id: x\n").unwrap();
        let e = c.validate(&env(&[("VAULT_TOKEN", "t")])).unwrap_err();
        assert!(
            e.to_string()
                .contains("auth.role_id not used by auth method token"),
            "{e}"
        );
    }

    #[test]
    fn token_sources_in_order() {
        let d = tempfile::tempdir().unwrap();
        let home_token = d.path().join(".vault-token");
        std::fs::write(&home_token, "from-home\n").unwrap();
        std::fs::set_permissions(&home_token, std::fs::Permissions::from_mode(0o600)).unwrap();
        let home = d.path().to_str().unwrap();
        let tok = |c: VaultConfig, e: &dyn Env| match c.validate(e).unwrap().credentials {
            Credentials::Token(t) => t.expose().to_owned(),
            Credentials::Login(_) => panic!("login"),
        };
        assert_eq!(
            tok(VaultConfig::default(), &env(&[("HOME", home)])),
            "from-home"
        );
        assert_eq!(
            tok(
                VaultConfig::default(),
                &env(&[("HOME", home), ("VAULT_TOKEN", "from-env")])
            ),
            "from-env"
        );
        let mut c = VaultConfig::default();
        c.auth.token_file = Some(home_token.clone());
        assert_eq!(tok(c, &env(&[("VAULT_TOKEN", "from-env")])), "from-home");
        assert!(VaultConfig::default().validate(&env(&[])).is_err());
        std::fs::set_permissions(&home_token, std::fs::Permissions::from_mode(0o622)).unwrap();
        let e = VaultConfig::default()
            .validate(&env(&[("HOME", home)]))
            .unwrap_err();
        assert!(e.to_string().contains("writable by group or others"), "{e}");
    }

    #[test]
    fn addresses_and_limits() {
        let v = |a: &str| {
            let c = VaultConfig {
                address: Some(a.into()),
                ..VaultConfig::default()
            };
            c.validate(&env(&[("VAULT_TOKEN", "t")])).map(|s| s.address)
        };
        assert_eq!(
            v("http://127.0.0.1:8200/").unwrap(),
            "http://127.0.0.1:8200"
        );
        assert!(v("ftp://x").is_err());
        assert!(v("http://u:p@x").is_err());
        // Userinfo is refused whatever the parser makes of it, and never shown.
        for bad in [
            "http://u:PW-1@127.0.0.1:99999",
            "http://u:PW-1@[::1",
            "http://u:PW-1@bad host:1",
            "http://u:P W-1@h",
            "http://u:PW/1@h",
            "http://u/PW-1@h",
        ] {
            let e = v(bad).unwrap_err().to_string();
            assert!(!e.contains("PW") && !e.contains("W-1"), "{bad}: {e}");
            assert!(e.contains("address"), "{bad}: {e}");
        }
        assert!(v("http://x/?a=b").is_err());
        assert!(v("not a url").is_err());
        let c = VaultConfig {
            concurrency: Some(0),
            ..VaultConfig::default()
        };
        assert!(c.validate(&env(&[("VAULT_TOKEN", "t")])).is_err());
    }

    #[test]
    fn login_methods_need_their_fields() {
        let e = env(&[]);
        let check = |text: &str, want: &str| {
            let err = yaml(text).unwrap().validate(&e).unwrap_err().to_string();
            assert!(err.contains(want), "{text}: {err}");
        };
        check("auth:\n  method: approle\n", "role_id");
        check("auth:\n  method: userpass\n", "username");
        check(
            "auth:\n  method: userpass\n  username: u\n",
            "password_file",
        );
        check("auth:\n  method: jwt\n", "jwt_file");
        check("auth:\n  method: cert\n", "client_cert");
        check(
            "auth:\n  method: approle\n  role_id: r\n  mount: ../x\n",
            "not a mount path",
        );
        check(
            "auth:\n  method: approle\n  role_id: r\n  role_id_file: /x\n",
            "exclude each other",
        );
        let s = yaml("auth:\n  method: approle\n  role_id: r\n  mount: team/ar/\n")
            .unwrap()
            .validate(&e)
            .unwrap();
        match s.credentials {
            Credentials::Login(l) => {
                assert_eq!(l.mount, ["team", "ar"]);
                assert_eq!(l.body.len(), 1);
            }
            Credentials::Token(_) => panic!("token"),
        }
    }

    #[test]
    fn debug_redacts_credentials() {
        let u = yaml("auth:\n  method: userpass\n  username: u\n  password: PASSWORD\n").unwrap();
        assert!(!format!("{u:?}").contains("PASSWORD"));
        let t = yaml("auth:\n  token: TOKENVALUE\n").unwrap();
        assert!(!format!("{t:?}").contains("TOKENVALUE"));
        let t = t.validate(&env(&[])).unwrap();
        assert!(matches!(t.credentials, Credentials::Token(_)));
        assert!(!format!("{t:?}").contains("TOKENVALUE"));
        let c =
            yaml("auth:\n  method: approle\n  role_id: ROLEID\n  secret_id: SECRETID\n").unwrap();
        let shown = format!("{c:?}");
        assert!(
            !shown.contains("ROLEID") && !shown.contains("SECRETID"),
            "{shown}"
        );
        let s = c.validate(&env(&[])).unwrap();
        let shown = format!("{s:?}");
        assert!(
            !shown.contains("ROLEID") && !shown.contains("SECRETID"),
            "{shown}"
        );
    }
}
