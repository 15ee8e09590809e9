//! A Key Vault access token for the configured [`Identity`], once per call.
//!
//! | identity | request |
//! |---|---|
//! | client secret | `POST {authority}/{tenant}/oauth2/v2.0/token`, `grant_type=client_credentials`, `client_secret` |
//! | client certificate | the same with `client_assertion` ([`crate::assertion`]) |
//! | workload identity | the same with the federated token file as `client_assertion` |
//! | App Service | `GET $IDENTITY_ENDPOINT?api-version=2019-08-01&resource=...`, `X-IDENTITY-HEADER` |
//! | Azure Arc | `GET $IDENTITY_ENDPOINT?api-version=2019-11-01&resource=...`, `Metadata: true`; its 401's `WWW-Authenticate: Basic realm=<file>` names a key file, sent back as `Authorization: Basic <key>` |
//! | Azure ML | `GET $MSI_ENDPOINT?api-version=2017-09-01&resource=...`, header `secret` |
//! | Cloud Shell | `POST $MSI_ENDPOINT`, form `resource=...`, `Metadata: true` |
//! | IMDS | `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=...`, `Metadata: true`, a 2 s connect timeout |
//!
//! The managed identity endpoints are local plain HTTP and never proxied
//! ([`crate::http::local_client`]). Tokens live for the call, unless
//! `token_cache_file` keeps them ([`crate::cache`]), and are held
//! ([`backend_core::secret::hold`]): no reply carries one. A failure names the identity tried and what the
//! endpoint said: its HTTP status, its OAuth `error` code and Entra ID's
//! `AADSTS` numbers, which are fixed identifiers; never the free text of
//! `error_description` (it can echo what we sent), a token or a body.

use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use backend_core::config::{MAX_CREDENTIAL_BYTES, read_guarded};
use backend_core::{Context, ErrorKind, Secret};
use reqwest::StatusCode;
use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, WWW_AUTHENTICATE};
use serde_json::Value;

use crate::assertion::{Certificate, MAX_CERT_FILE};
use crate::config::{Identity, ManagedSource, Settings};
use backend_net::{Failure, Http, Response};

use crate::http;

/// Where the Azure Arc agent writes its challenge key files (Linux).
pub const ARC_TOKEN_DIR: &str = "/var/opt/azcmagent/tokens";
/// Largest Arc key file.
const MAX_ARC_KEY: u64 = 4096;
const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

/// Why no token came: what kind of failure, and the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failed(pub ErrorKind, pub String);

impl From<String> for Failed {
    fn from(why: String) -> Self {
        Self(ErrorKind::Other, why)
    }
}

impl From<&str> for Failed {
    fn from(why: &str) -> Self {
        Self(ErrorKind::Other, why.to_owned())
    }
}

/// A token for the call.
#[derive(Debug)]
pub struct Issued {
    /// The access token (held).
    pub token: Secret,
    /// Whether it came from the token cache file.
    pub cached: bool,
}

/// Gets a token, from the cache file if one is configured and holds a live
/// token of this identity, else from the identity's endpoint (then kept in
/// the cache file if configured); the error names the identity and the
/// cause: refused (`PermissionDenied`), not reached or failing
/// (`Unavailable`), or a local problem (a file, `Other`).
pub async fn token(
    settings: &Settings,
    http: &Http,
    arc_dir: &Path,
    ctx: &Context,
) -> Result<Issued, Failed> {
    let id = &settings.identity;
    let named = |Failed(kind, why)| Failed(kind, format!("{}: {why}", id.describe()));
    // A certificate is read first: its thumbprint is part of the cache key.
    let cert = match id {
        Identity::ClientCertificate { path, password, .. } => {
            Some(certificate(path, password.as_ref()).map_err(|why| named(why.into()))?)
        }
        _ => None,
    };
    let cache = settings.token_cache_file.as_deref().map(|file| {
        let thumbprint = cert.as_ref().map(Certificate::thumbprint);
        (file, crate::cache::key(settings, thumbprint.as_deref()))
    });
    if let Some((file, key)) = &cache
        && let Some(token) = crate::cache::load(file, key, now())
    {
        return Ok(Issued {
            token,
            cached: true,
        });
    }
    let (token, expires_at) = fetch(settings, http, arc_dir, cert.as_ref(), ctx)
        .await
        .map_err(named)?;
    if let Some((file, key)) = &cache {
        crate::cache::store(file, key, &token, expires_at);
    }
    Ok(Issued {
        token,
        cached: false,
    })
}

/// Reads and holds the federated token file of a workload identity, or
/// the private key blocks of a certificate file; a file that cannot be
/// read is skipped ([`crate::AzureProvider::hold_credentials`]).
pub fn hold(settings: &Settings) {
    match &settings.identity {
        Identity::Workload { token_file, .. } => {
            if let Ok(mut text) =
                read_guarded(token_file, "federated token file", MAX_CREDENTIAL_BYTES)
            {
                drop(Secret::credential(text.trim().to_owned()));
                zeroize::Zeroize::zeroize(&mut text);
            }
        }
        Identity::ClientCertificate { path, .. } => {
            if let Ok(file) = read_certificate_file(path) {
                hold_key_blocks(&file);
            }
        }
        _ => {}
    }
}

/// Holds each PEM private key block of `file` as written (`-----BEGIN ...
/// PRIVATE KEY-----` to its `END` line): the key is held decoded once
/// parsed, but a `file@` handle naming the certificate file would return
/// its text.
fn hold_key_blocks(file: &[u8]) {
    let Ok(text) = std::str::from_utf8(file) else {
        return;
    };
    let mut rest = text;
    while let Some(begin) = rest.find("-----BEGIN ") {
        let Some(block) = rest.get(begin..) else {
            return;
        };
        let Some(end) = block.find("-----END ") else {
            return;
        };
        let close = block
            .get(end + 9..)
            .and_then(|t| t.find("-----"))
            .map_or(block.len(), |c| end + 9 + c + 5);
        let pem = block.get(..close).unwrap_or(block);
        if pem
            .lines()
            .next()
            .is_some_and(|l| l.contains("PRIVATE KEY"))
        {
            backend_core::secret::hold(&Secret::from(pem.trim()));
        }
        rest = block.get(close..).unwrap_or_default();
    }
}

fn read_certificate_file(path: &Path) -> Result<zeroize::Zeroizing<Vec<u8>>, String> {
    backend_core::fs::read_regular(
        path,
        backend_core::fs::Rules {
            max: MAX_CERT_FILE,
            refuse_writable: true,
        },
    )
    .map_err(|e| e.config("certificate file", path).to_string())
}

/// The certificate credential's file, read and parsed.
fn certificate(path: &Path, password: Option<&Secret>) -> Result<Certificate, String> {
    let pem = read_certificate_file(path)?;
    hold_key_blocks(&pem);
    backend_core::config::warn_if_readable_by_others(path, "certificate file");
    Certificate::from_file(&pem, password)
        .map_err(|e| format!("certificate file {}: {e}", path.display()))
}

/// A token and when it expires (seconds since the epoch), if told.
type Fetched = (Secret, Option<u64>);

async fn fetch(
    settings: &Settings,
    http: &Http,
    arc_dir: &Path,
    cert: Option<&Certificate>,
    ctx: &Context,
) -> Result<Fetched, Failed> {
    match &settings.identity {
        Identity::ClientSecret {
            tenant,
            client_id,
            secret,
            ..
        } => {
            let proof = [("client_secret", secret.expose())];
            entra(settings, http, tenant, client_id, &proof, ctx).await
        }
        Identity::ClientCertificate {
            tenant,
            client_id,
            send_chain,
            ..
        } => {
            let cert = cert.ok_or("the certificate was not read")?;
            let audience = token_url(settings, tenant);
            let assertion = cert.assertion(client_id, &audience, *send_chain, now())?;
            let proof = [
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose()),
            ];
            entra(settings, http, tenant, client_id, &proof, ctx).await
        }
        Identity::Workload {
            tenant,
            client_id,
            token_file,
        } => {
            let mut text = read_guarded(token_file, "federated token file", MAX_CREDENTIAL_BYTES)
                .map_err(|e| e.to_string())?;
            let assertion = Secret::credential(text.trim().to_owned());
            zeroize::Zeroize::zeroize(&mut text);
            if assertion.is_empty() {
                return Err(
                    format!("federated token file {} is empty", token_file.display()).into(),
                );
            }
            let proof = [
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", assertion.expose()),
            ];
            entra(settings, http, tenant, client_id, &proof, ctx).await
        }
        Identity::Managed { client_id, source } => {
            let resource = settings.cloud.resource();
            managed(source, client_id.as_deref(), resource, arc_dir, ctx).await
        }
    }
}

fn token_url(settings: &Settings, tenant: &str) -> String {
    format!("{}/{tenant}/oauth2/v2.0/token", settings.authority)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

/// The client credentials grant at the Entra ID token endpoint of
/// `tenant`, for the Key Vault resource; `proof` is the secret or the
/// assertion.
async fn entra(
    settings: &Settings,
    http: &Http,
    tenant: &str,
    client_id: &str,
    proof: &[(&str, &str)],
    ctx: &Context,
) -> Result<Fetched, Failed> {
    let scope = format!("{}/.default", settings.cloud.resource());
    let mut pairs = vec![
        ("grant_type", "client_credentials"),
        ("client_id", client_id),
        ("scope", scope.as_str()),
    ];
    pairs.extend_from_slice(proof);
    let body = http::form(&pairs);
    let url = token_url(settings, tenant);
    let resp = http
        .send(ctx, |c| {
            c.post(&url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(body.as_str().to_owned())
        })
        .await
        .map_err(|e| reach("Entra ID", &settings.authority, &e))?;
    access_token(&resp, "Entra ID")
}

fn reach(what: &str, at: &str, e: &Failure) -> Failed {
    let at = backend_core::redact::url(at);
    Failed(
        ErrorKind::Unavailable,
        format!("cannot reach {what} at {at}: {e}"),
    )
}

/// A managed identity endpoint.
async fn managed(
    source: &ManagedSource,
    client_id: Option<&str>,
    resource: &str,
    arc_dir: &Path,
    ctx: &Context,
) -> Result<Fetched, Failed> {
    let http = http::local_client(matches!(source, ManagedSource::Imds { .. }))?;
    let with_query = |base: &str, version: &str, id_name: &str| -> Result<reqwest::Url, String> {
        let mut url = reqwest::Url::parse(base).map_err(|e| format!("endpoint: {e}"))?;
        {
            let mut q = url.query_pairs_mut();
            q.append_pair("api-version", version)
                .append_pair("resource", resource);
            if let Some(id) = client_id {
                q.append_pair(id_name, id);
            }
        }
        Ok(url)
    };
    let what = source.name();
    let resp = match source {
        ManagedSource::Imds { host } => {
            let url = with_query(
                &format!(
                    "{}/metadata/identity/oauth2/token",
                    host.trim_end_matches('/')
                ),
                "2018-02-01",
                "client_id",
            )?;
            http.send(ctx, |c| c.get(url.clone()).header("Metadata", "true"))
                .await
                .map_err(|e| {
                    let Failed(kind, why) = reach("IMDS", host, &e);
                    Failed(
                        kind,
                        format!("{why} (is this an Azure VM with a managed identity?)"),
                    )
                })?
        }
        ManagedSource::AppService { endpoint, header } => {
            let url = with_query(endpoint, "2019-08-01", "client_id")?;
            http.send(ctx, |c| {
                c.get(url.clone())
                    .header("X-IDENTITY-HEADER", header.expose())
            })
            .await
            .map_err(|e| reach("the identity endpoint", endpoint, &e))?
        }
        ManagedSource::AzureMl { endpoint, secret } => {
            let url = with_query(endpoint, "2017-09-01", "clientid")?;
            http.send(ctx, |c| {
                c.get(url.clone()).header("secret", secret.expose())
            })
            .await
            .map_err(|e| reach("the identity endpoint", endpoint, &e))?
        }
        ManagedSource::CloudShell { endpoint } => {
            let mut pairs = vec![("resource", resource)];
            if let Some(id) = client_id {
                pairs.push(("client_id", id));
            }
            let body = http::form(&pairs);
            http.send(ctx, |c| {
                c.post(endpoint.as_str())
                    .header("Metadata", "true")
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.as_str().to_owned())
            })
            .await
            .map_err(|e| reach("the identity endpoint", endpoint, &e))?
        }
        ManagedSource::Arc { endpoint } => {
            if client_id.is_some() {
                return Err(
                    "Azure Arc has only the machine's system-assigned identity; remove the client id"
                        .into(),
                );
            }
            let url = with_query(endpoint, "2019-11-01", "client_id")?;
            let first = http
                .send(ctx, |c| c.get(url.clone()).header("Metadata", "true"))
                .await
                .map_err(|e| reach("the Arc identity endpoint", endpoint, &e))?;
            if first.status != StatusCode::UNAUTHORIZED {
                return Err(match refusal(&first) {
                    Some(failed) => failed,
                    None => "the Arc endpoint answered without its challenge".into(),
                });
            }
            let key = arc_key(&first, arc_dir)?;
            http.send(ctx, |c| {
                c.get(url.clone())
                    .header("Metadata", "true")
                    .header(AUTHORIZATION, format!("Basic {}", key.expose()))
            })
            .await
            .map_err(|e| reach("the Arc identity endpoint", endpoint, &e))?
        }
    };
    access_token(&resp, what)
}

/// The key file an Arc challenge names, read if it is where the Arc agent
/// writes them: a `.key` file directly in `dir`, at most 4 KiB.
fn arc_key(resp: &Response, dir: &Path) -> Result<Secret, String> {
    let realm = resp
        .headers
        .get(WWW_AUTHENTICATE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().strip_prefix("Basic realm="))
        .map(|r| r.trim().trim_matches('"'))
        .ok_or("the Arc endpoint's 401 carries no Basic realm challenge")?;
    let path = Path::new(realm);
    let inside = path.parent() == Some(dir)
        && path.extension().is_some_and(|e| e == "key")
        && !realm.contains("..");
    if !inside {
        return Err(format!(
            "the Arc challenge names a file outside {} (or not a .key file); refused",
            dir.display()
        ));
    }
    let mut text = read_guarded(path, "Azure Arc key file", MAX_ARC_KEY).map_err(|e| {
        format!("{e}; the agent's user must be in the himds group to read Arc's key files")
    })?;
    let key = Secret::credential(text.trim().to_owned());
    zeroize::Zeroize::zeroize(&mut text);
    Ok(key)
}

/// The `access_token` of a token response and when it expires (from
/// `expires_in`, else `expires_on`; numbers or, as managed identity
/// endpoints write them, strings of digits), or why there is none.
fn access_token(resp: &Response, what: &str) -> Result<Fetched, Failed> {
    if resp.status == StatusCode::OK {
        let mut v: Value = serde_json::from_slice(&resp.body)
            .map_err(|_| format!("{what} answered HTTP 200 without a token"))?;
        let token = v
            .get("access_token")
            .and_then(Value::as_str)
            .filter(|t| !t.is_empty() && t.bytes().all(|c| c.is_ascii_graphic()))
            .map(|t| Secret::credential(t.to_owned()));
        let number = |k: &str| {
            let n = v.get(k)?;
            n.as_u64().or_else(|| n.as_str()?.trim().parse().ok())
        };
        let expires_at = number("expires_in")
            .map(|secs| now().saturating_add(secs))
            .or_else(|| number("expires_on"));
        backend_core::key::wipe(&mut v);
        return token.map(|t| (t, expires_at)).ok_or_else(|| {
            format!("{what} answered HTTP 200 without a usable access_token").into()
        });
    }
    Err(refusal(resp).unwrap_or_else(|| {
        Failed(
            kind_of(resp.status),
            format!("{what} answered HTTP {}", resp.status.as_u16()),
        )
    }))
}

/// A refusal is the identity's problem; a throttled or failing endpoint
/// is unavailable.
fn kind_of(status: StatusCode) -> ErrorKind {
    if status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS {
        ErrorKind::Unavailable
    } else {
        ErrorKind::PermissionDenied
    }
}

/// An OAuth error answer as a message: HTTP status, the `error` code and
/// Entra ID's `AADSTS` numbers, with a hint for the common ones.
fn refusal(resp: &Response) -> Option<Failed> {
    let code = resp.status.as_u16();
    let mut v: Value = serde_json::from_slice(&resp.body).ok()?;
    let error = v
        .get("error")
        .and_then(Value::as_str)
        .filter(|e| is_code(e))
        .map(str::to_owned);
    let mut numbers: Vec<String> = v
        .get("error_codes")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_u64)
                .take(4)
                .map(|n| format!("AADSTS{n}"))
                .collect()
        })
        .unwrap_or_default();
    if numbers.is_empty() {
        // Managed identity endpoints put the number in the description only.
        if let Some(n) = v
            .get("error_description")
            .and_then(Value::as_str)
            .and_then(|d| d.strip_prefix("AADSTS"))
            .map(|d| {
                d.chars()
                    .take_while(char::is_ascii_digit)
                    .collect::<String>()
            })
            .filter(|n| !n.is_empty() && n.len() <= 10)
        {
            numbers.push(format!("AADSTS{n}"));
        }
    }
    backend_core::key::wipe(&mut v);
    let error = error?;
    let hint = hint(&error, &numbers);
    let numbers = if numbers.is_empty() {
        String::new()
    } else {
        format!(" ({})", numbers.join(", "))
    };
    let kind = kind_of(resp.status);
    let verb = match kind {
        ErrorKind::Unavailable => "failed",
        _ => "refused",
    };
    Some(Failed(
        kind,
        format!("{verb} (HTTP {code}, {error}{numbers}){hint}"),
    ))
}

fn hint(error: &str, numbers: &[String]) -> &'static str {
    let has = |n: &str| numbers.iter().any(|x| x == n);
    if has("AADSTS7000215") {
        ": the client secret is wrong"
    } else if has("AADSTS7000222") {
        ": the client secret has expired"
    } else if has("AADSTS700016") {
        ": no such application in the tenant"
    } else if has("AADSTS90002") {
        ": no such tenant"
    } else if has("AADSTS700027") {
        ": the certificate is not registered on the application, or the assertion's signature is wrong"
    } else if has("AADSTS700024") {
        ": the assertion is outside its validity (clock skew, or an expired federated token)"
    } else if has("AADSTS70021") || has("AADSTS700213") {
        ": no federated credential of the application matches the token's issuer and subject"
    } else if error == "invalid_request" && numbers.is_empty() {
        ": no such identity on this host (is the managed identity assigned, and the client id right?)"
    } else {
        ""
    }
}

/// An OAuth error code: a short word of letters and `_`, and never a
/// credential we hold (an endpoint echoing what we sent it).
fn is_code(s: &str) -> bool {
    (1..=64).contains(&s.len())
        && s.bytes().all(|c| c.is_ascii_alphabetic() || c == b'_')
        && !backend_core::secret::reveals_credential(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn resp(status: u16, body: &str) -> Response {
        Response {
            status: StatusCode::from_u16(status).unwrap(),
            headers: reqwest::header::HeaderMap::new(),
            body: zeroize::Zeroizing::new(body.as_bytes().to_vec()),
        }
    }

    #[test]
    fn oauth_errors_show_codes_never_descriptions() {
        let body = r#"{"error":"invalid_client","error_description":"AADSTS7000215: Invalid client secret provided. Ensure the secret being sent is s3cr3t-ECHO","error_codes":[7000215],"trace_id":"x"}"#;
        let Failed(kind, e) = access_token(&resp(401, body), "Entra ID").unwrap_err();
        assert_eq!(kind, ErrorKind::PermissionDenied);
        assert_eq!(
            e,
            "refused (HTTP 401, invalid_client (AADSTS7000215)): the client secret is wrong"
        );
        let Failed(_, e) = access_token(
            &resp(
                400,
                r#"{"error":"invalid_request","error_description":"Identity not found"}"#,
            ),
            "IMDS",
        )
        .unwrap_err();
        assert!(
            e.contains("invalid_request") && e.contains("no such identity"),
            "{e}"
        );
        assert!(!e.contains("Identity not found"));
        let e = access_token(&resp(500, "<html>s3cr3t</html>"), "IMDS").unwrap_err();
        assert_eq!(
            e,
            Failed(ErrorKind::Unavailable, "IMDS answered HTTP 500".into())
        );
        let Failed(_, e) =
            access_token(&resp(400, r#"{"error":"bad code with spaces"}"#), "X").unwrap_err();
        assert_eq!(e, "X answered HTTP 400");
        let t = access_token(
            &resp(
                200,
                r#"{"access_token":"tok-123456789012","expires_in":3599}"#,
            ),
            "X",
        )
        .unwrap();
        assert_eq!(t.0.expose(), "tok-123456789012");
        let at = t.1.unwrap();
        assert!((now() + 3500..=now() + 3599).contains(&at), "{at}");
        let (_, at) = access_token(
            &resp(
                200,
                r#"{"access_token":"tok-1","expires_on":"1700000000","resource":"r"}"#,
            ),
            "X",
        )
        .unwrap();
        assert_eq!(at, Some(1_700_000_000));
        let (_, at) = access_token(&resp(200, r#"{"access_token":"tok-1"}"#), "X").unwrap();
        assert_eq!(at, None);
        assert!(access_token(&resp(200, r#"{"access_token":"a b"}"#), "X").is_err());
    }

    #[test]
    fn arc_challenges_name_only_key_files_in_the_directory() {
        let dir = tempfile::tempdir().unwrap();
        let mut r = resp(401, "");
        let key = dir.path().join("abc.key");
        std::fs::write(&key, "arc-key-VALUE\n").unwrap();
        for (realm, ok) in [
            (key.display().to_string(), true),
            ("/etc/shadow".into(), false),
            (dir.path().join("abc.txt").display().to_string(), false),
            (format!("{}/../x.key", dir.path().display()), false),
        ] {
            r.headers.insert(
                WWW_AUTHENTICATE,
                format!("Basic realm={realm}").parse().unwrap(),
            );
            let got = arc_key(&r, dir.path());
            assert_eq!(got.is_ok(), ok, "{realm}: {got:?}");
        }
        r.headers.insert(
            WWW_AUTHENTICATE,
            format!("Basic realm={}", key.display()).parse().unwrap(),
        );
        assert_eq!(arc_key(&r, dir.path()).unwrap().expose(), "arc-key-VALUE");
    }
}
