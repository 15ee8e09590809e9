//! A fake Azure Key Vault, Entra ID and managed identity endpoints, for the
//! azure backend's tests.
//!
//! No Key Vault emulator is installable here (lowkey-vault is Java/Docker
//! only), so this one plays the three services the backend talks to, as
//! their REST references describe them:
//!
//! - **TLS with its own CA** ([`FakeAzure::ca_file`]), valid for
//!   `localhost` and `127.0.0.1`; one port serves Key Vault and Entra ID
//!   ([`FakeAzure::url`]: the vault URL and the authority host).
//! - **Entra ID's token endpoint** `POST /{tenant}/oauth2/v2.0/token`,
//!   `grant_type=client_credentials`, `scope=https://vault.azure.net/.default`:
//!   a client secret ([`FakeAzure::add_app`]); a client assertion checked
//!   cryptographically: an RS256 JWT whose `x5t#S256` is the SHA-256 of a
//!   certificate registered on the application
//!   ([`FakeAzure::app_certificate`]), whose signature verifies with that
//!   certificate's key, with `aud` the token URL, `iss` = `sub` = the
//!   client id, and `exp`/`nbf` around now (an `x5c` chain is recorded,
//!   [`FakeAzure::chains_seen`]); or a federated token registered for the
//!   application ([`FakeAzure::federate`]: the token is opaque here, the
//!   issuer's signature is not modelled). Errors are OAuth bodies with
//!   `error`, `error_description` (`AADSTS...: ...` text) and `error_codes`,
//!   as Entra ID writes them: unknown tenant `AADSTS90002`, unknown
//!   application `AADSTS700016`, wrong secret `AADSTS7000215`, unknown
//!   certificate or bad signature `AADSTS700027`, assertion out of its time
//!   `AADSTS700024`, no matching federated credential `AADSTS700213`, a
//!   wrong scope `AADSTS70011`.
//! - **Managed identity endpoints**, plain HTTP on a second port
//!   ([`FakeAzure::identity_url`]): IMDS
//!   `GET /metadata/identity/oauth2/token?api-version=...&resource=...[&client_id=...]`
//!   demanding `Metadata: true`, system-assigned and user-assigned
//!   identities ([`FakeAzure::add_managed_identity`]), `400 invalid_request
//!   Identity not found` otherwise; App Service `GET /msi/token` demanding
//!   `X-IDENTITY-HEADER` ([`FakeAzure::APP_SERVICE_HEADER`]); Azure Arc
//!   `GET /arc/token`, whose first answer is a 401 with `WWW-Authenticate:
//!   Basic realm=<key file>` (the file written in [`FakeAzure::arc_dir`]),
//!   and which then wants `Authorization: Basic <that key>`; Azure ML
//!   `GET /ml/token` demanding the `secret` header
//!   ([`FakeAzure::AZURE_ML_SECRET`]); Cloud Shell `POST /cloudshell/token`
//!   with a form body and `Metadata: true`. IMDS can be made to hang
//!   ([`FakeAzure::imds_hang`]), and every token endpoint to fail a number
//!   of times ([`FakeAzure::token_fault`]).
//! - **Key Vault** `GET /secrets/{name}[/{version}]?api-version=...`:
//!   without a bearer token, or with one unknown, expired, of another
//!   tenant or for another resource, a 401 with `WWW-Authenticate: Bearer
//!   authorization="<authority>/<tenant>", resource="https://vault.azure.net"`;
//!   authorization before existence, either by RBAC (`ForbiddenByRbac`) or
//!   by access policy (`AccessDenied`) ([`FakeAzure::use_rbac`],
//!   [`FakeAzure::grant`]); secret bundles (`value`, `id`, `attributes`
//!   with `enabled`, `created`, `updated`, `recoveryLevel`, and `nbf`/`exp`
//!   when set), versions (the latest is the last put), `SecretNotFound`,
//!   disabled secrets (`403 Forbidden`/`SecretDisabled`); an expired or not
//!   yet valid secret is returned with its attributes, as Key Vault does:
//!   judging them is the client's job. Faults per secret
//!   ([`FakeAzure::fault`]): a status with Key Vault's error body
//!   (`Throttled` with `Retry-After` for 429), or a hang.
//! - **A request log** ([`FakeAzure::requests`]) so tests count requests.
//!
//! What it does not model: HTTP/2 and keep-alive (every answer closes its
//! connection), Key Vault's other objects and verbs, listing, soft delete,
//! the OIDC discovery and instance metadata endpoints, token caching on the
//! server side, the federated token's own signature and issuer, `x5t`
//! (SHA-1) thumbprints, certificate chains validated against a subject
//! name/issuer registration, the managed identity endpoints' own error
//! bodies beyond `error`/`error_description`, and network rules
//! (`ForbiddenByFirewall`).

use std::collections::{BTreeMap, HashMap};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::files::write_private;

/// The tenant of the fake vault.
pub const TENANT: &str = "72f988bf-0000-4000-8000-00000000ten7";
/// The Key Vault resource tokens must be issued for.
pub const RESOURCE: &str = "https://vault.azure.net";
/// Every variable that picks an Azure identity: a test run removes them
/// all, so nothing leaks in from the host.
pub const IDENTITY_VARS: &[&str] = &[
    "AZURE_TENANT_ID",
    "AZURE_CLIENT_ID",
    "AZURE_CLIENT_SECRET",
    "AZURE_CLIENT_CERTIFICATE_PATH",
    "AZURE_CLIENT_CERTIFICATE_PASSWORD",
    "AZURE_CLIENT_SEND_CERTIFICATE_CHAIN",
    "AZURE_FEDERATED_TOKEN_FILE",
    "AZURE_AUTHORITY_HOST",
    "IDENTITY_ENDPOINT",
    "IDENTITY_HEADER",
    "IMDS_ENDPOINT",
    "MSI_ENDPOINT",
    "MSI_SECRET",
    "AZURE_POD_IDENTITY_AUTHORITY_HOST",
];

/// The client id of the system-assigned identity.
pub const SYSTEM_IDENTITY: &str = "5y5tem00-0000-4000-8000-000000000000";

/// A throwaway RSA-2048 key (PKCS#8) for the tests' application
/// certificates: ring signs RSA but cannot make RSA keys. It protects
/// nothing.
const TEST_RSA_KEY: &str = "-----BEGIN PRIVATE KEY-----
MIIEvgIBADANBgkqhkiG9w0BAQEFAASCBKgwggSkAgEAAoIBAQDNxEhI+UARApns
Tk+c2Rd8y+5Rfl5z5RKzoJB3jFazTh5XRVYanxcUBhX0kWgbDFgXxk+gHJYZqVTB
+cVI7WsocnoaMYymvUo1/3vDpxBOrAyL5TC9igUBG+o572qMmZjvRsIs42K9UPw7
OfcxMHSUkK/nlmsbyEk9eRUty49NIEiOlLnpWFGa7nq88a7W2BN0sVzD7KGOVSAI
cQ3CVAwKXw5RdDAHmZATO1SbZdn+oaLQw5PZ13IU7emJkd2uSWepr6vMAizA9Pi9
l/NBtW6iLk+rUu/nA8+jRO5ZCQfuGZTgNs6WfA7mdXyerhFHUwUWvXpIJA7WoTLZ
EQ2hOnTtAgMBAAECggEAM9opqRH+fgrcxPq6/ziJva4aQTkKDkSEoPVuUmHwG0Et
Tiqv1weOJkKeV8IorOBAdsVHnX52qMLOFA+gEo+ZuFiYwm8IFaCPyem2w4gfCOQ8
SSiZTrowJqZlMPJPNF0kd++p0OwAHtsApOAnlaKzThjj6wUxuo+PPUl898xbMUDk
iffn0DX6xS5068YvB30KCzY825ODs153NJwJhYIDdAjJLV4KB5P92v9rDML2UMlK
q4aCcWhb3DgmkMqk55q+PiZX/KaOeRhMGDv8IEOAqGvvm3oss0QBH9bkbRyiHZ2n
yrVi2jxCi0LWKPSYlgdWfo+vYxy+pps/ayEVmITkFQKBgQDzJl2L47ge4iXXI213
NTNGNurRswj1NxRcej5YWojHuKmW8qGz80/e4nBUpVVluXEF9nghB+qGs68rrjPs
SK8zcmGUY8wg1egqmgVILQwNq0XU/N0OeT0dImhUhJeauf0SeiaKVpoujfC1NGoM
7/basvQvrl9JlCKEtLbHzXlscwKBgQDYpCa4lYpzT+5Z/z+Q8CfS7SJ6m1LTtx/c
mqBMkDZlMjj1YEqcmz1gqap+TrrrCxUfTAXxN4m5WVbhTwhZzuQZkkWMWN9FC4NG
4kv2XZGh4lQ6BSlJfwCeYqpXo+iIfz+g4jVx5/FtZbg8Z6JhBySp5y+dXSxGWN1M
XvhHgeahHwKBgQClLKLPrNoe4LGj/EUYfeNfB19tJJopOklyqPhBPP897YwHJrwC
an8PgfOdDNN+TwMgcdYZWi9PYjDVE3niQV4DLOhszX6Vr7oPdqGv7ioJ/xdpIH1q
n6GMcRs+jvQN/9qS+rfDsiD7DyE9d2WzdC/VUUvgOCwy55arX7fq8wJRUQKBgQDD
ZjOCk2bAIR0j0WSdLu9MgRRzL7tiOC6lxFXHGN/nIIhdUY+ady7CC+Y6bHqNW36e
ruxBKE2xftItACLRFhmIsvTF5LbkyMCMY7oOKVEciU5c0qDtqH5/XRC1YaJv0w4p
5z47Ue/hMzkcSoEcMNwx3tKEhjBT9v0LUDFyFclWEwKBgDb3g07UZWP5AVEoIJjj
EtqFE8DmoufO1PlEQWeJZ535J9VJrxyA4g7vJN9co3wpo3P679DQfSiWpM/PA3AI
6pLYRt9REXoz6Kk5mTCDA9vUNIETqiJvgyJafgULXX1+8JoxWuHlpS5z5uPjD4JI
LcThMSIj4xehTSPY+QoRcjze
-----END PRIVATE KEY-----
";

/// What Key Vault does to the requests for one secret.
#[derive(Debug, Clone)]
pub enum Fault {
    /// Answers this status with Key Vault's error body (`Throttled` and
    /// `Retry-After: 1` for 429, `InternalServerError` otherwise).
    Status(u16),
    /// Reads the request and never answers.
    Hang,
}

/// A secret version's attributes.
#[derive(Debug, Clone, Copy)]
pub struct Attributes {
    /// `enabled`.
    pub enabled: bool,
    /// `nbf`, Unix seconds.
    pub nbf: Option<i64>,
    /// `exp`, Unix seconds.
    pub exp: Option<i64>,
}

impl Default for Attributes {
    fn default() -> Self {
        Self {
            enabled: true,
            nbf: None,
            exp: None,
        }
    }
}

/// One request the fake saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`.
    pub method: String,
    /// The path, without the query.
    pub path: String,
    /// The query.
    pub query: String,
    /// The client id the request authenticated as, if any.
    pub who: Option<String>,
    /// The status answered (0 for a hang).
    pub status: u16,
}

#[derive(Debug, Clone)]
struct Version {
    id: String,
    value: String,
    attrs: Attributes,
}

#[derive(Debug, Clone)]
struct Token {
    tenant: String,
    client_id: String,
    resource: String,
    exp: u64,
}

#[derive(Debug, Default)]
struct App {
    secret: Option<String>,
    /// SHA-256 thumbprints (base64url) -> RSA public key.
    certs: HashMap<String, Vec<u8>>,
    federated: Vec<String>,
}

#[derive(Debug, Default)]
struct State {
    /// (tenant, client id) -> app.
    apps: Mutex<HashMap<(String, String), App>>,
    /// Managed identities by client id (the system one is [`SYSTEM_IDENTITY`]).
    managed: Mutex<Vec<String>>,
    system_identity: AtomicBool,
    tokens: Mutex<HashMap<String, Token>>,
    secrets: Mutex<BTreeMap<String, Vec<Version>>>,
    rbac: AtomicBool,
    /// client id -> secret names (empty: all).
    grants: Mutex<HashMap<String, Vec<String>>>,
    faults: Mutex<HashMap<String, Fault>>,
    imds_hang: AtomicBool,
    /// (status, how many more token requests get it).
    token_faults: Mutex<(u16, usize)>,
    arc_keys: Mutex<Vec<String>>,
    chains: Mutex<Vec<usize>>,
    log: Mutex<Vec<Seen>>,
    counter: AtomicU64,
    stop: AtomicBool,
    base: Mutex<String>,
    arc_dir: Mutex<PathBuf>,
}

/// A running fake; stopped when dropped.
pub struct FakeAzure {
    tls_addr: SocketAddr,
    http_addr: SocketAddr,
    state: Arc<State>,
    dir: tempfile::TempDir,
    ca: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for FakeAzure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FakeAzure")
            .field("tls_addr", &self.tls_addr)
            .field("http_addr", &self.http_addr)
            .finish_non_exhaustive()
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn accept_loop(listener: TcpListener, state: Arc<State>, tls: Option<Arc<rustls::ServerConfig>>) {
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            if state.stop.load(Ordering::SeqCst) {
                break;
            }
            let Ok(stream) = stream else { continue };
            let (state, tls) = (state.clone(), tls.clone());
            std::thread::spawn(move || {
                let _ = stream.set_read_timeout(Some(Duration::from_secs(60)));
                match tls {
                    Some(config) => {
                        let Ok(conn) = rustls::ServerConnection::new(config) else {
                            return;
                        };
                        let mut s = rustls::StreamOwned::new(conn, stream);
                        serve(&mut s, &state, true);
                        s.conn.send_close_notify();
                        let _ = s.conn.complete_io(&mut s.sock);
                    }
                    None => {
                        let mut s = stream;
                        serve(&mut s, &state, false);
                    }
                }
            });
        }
    });
}

impl FakeAzure {
    /// The value `App Service` expects in `X-IDENTITY-HEADER`.
    pub const APP_SERVICE_HEADER: &'static str = "app-service-identity-header-4711";
    /// The value Azure ML's endpoint expects in its `secret` header.
    pub const AZURE_ML_SECRET: &'static str = "azure-ml-msi-secret-4712";

    /// Starts the fake on 127.0.0.1: a TLS port (Key Vault, Entra ID) and a
    /// plain HTTP port (managed identity endpoints).
    pub fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params
            .distinguished_name
            .push(DnType::CommonName, "fake-azure-ca");
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        std::fs::write(dir.path().join("ca.crt"), ca.pem()).unwrap();
        let key = KeyPair::generate().unwrap();
        let server = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])
            .unwrap()
            .signed_by(&key, &ca)
            .unwrap();
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let key_der = PrivateKeyDer::from_pem_slice(key.serialize_pem().as_bytes()).unwrap();
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![server.der().clone()], key_der)
            .unwrap();
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let tls = TcpListener::bind("127.0.0.1:0").unwrap();
        let plain = TcpListener::bind("127.0.0.1:0").unwrap();
        let (tls_addr, http_addr) = (tls.local_addr().unwrap(), plain.local_addr().unwrap());
        let state = Arc::new(State::default());
        *lock(&state.base) = format!("https://{tls_addr}");
        let arc_dir = dir.path().join("arc-tokens");
        std::fs::create_dir(&arc_dir).unwrap();
        *lock(&state.arc_dir) = arc_dir;
        accept_loop(tls, state.clone(), Some(Arc::new(config)));
        accept_loop(plain, state.clone(), None);
        Self {
            tls_addr,
            http_addr,
            state,
            dir,
            ca,
        }
    }

    /// `https://127.0.0.1:PORT`: the vault URL and the authority host.
    pub fn url(&self) -> String {
        format!("https://{}", self.tls_addr)
    }

    /// `http://127.0.0.1:PORT`: the managed identity endpoints' host (IMDS
    /// at `/metadata/...`, App Service at `/msi/token`, Arc at `/arc/token`).
    pub fn identity_url(&self) -> String {
        format!("http://{}", self.http_addr)
    }

    /// The CA certificate (PEM) of the TLS port.
    pub fn ca_file(&self) -> PathBuf {
        self.dir.path().join("ca.crt")
    }

    /// Where Azure Arc's key files are written.
    pub fn arc_dir(&self) -> PathBuf {
        lock(&self.state.arc_dir).clone()
    }

    /// Registers application `client_id` in `tenant`, with a client secret.
    pub fn add_app(&self, tenant: &str, client_id: &str, secret: Option<&str>) {
        let mut apps = lock(&self.state.apps);
        let app = apps
            .entry((tenant.to_owned(), client_id.to_owned()))
            .or_default();
        app.secret = secret.map(str::to_owned);
    }

    /// Makes a certificate for application `client_id` of `tenant` (signed
    /// by the fake's CA), registers it on the application when `register`,
    /// and writes a PEM file (certificate, CA certificate, key; mode 0600).
    pub fn app_certificate(&self, tenant: &str, client_id: &str, register: bool) -> PathBuf {
        let key =
            KeyPair::from_pkcs8_pem_and_sign_algo(TEST_RSA_KEY, &rcgen::PKCS_RSA_SHA256).unwrap();
        let n = self.state.counter.fetch_add(1, Ordering::SeqCst);
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params
            .distinguished_name
            .push(DnType::CommonName, format!("app-{client_id}-{n}"));
        params.serial_number = Some(rcgen::SerialNumber::from(n + 1000));
        let cert = params.signed_by(&key, &self.ca).unwrap();
        if register {
            let thumb =
                URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, cert.der()));
            lock(&self.state.apps)
                .entry((tenant.to_owned(), client_id.to_owned()))
                .or_default()
                .certs
                .insert(thumb, key.public_key_raw().to_vec());
        }
        let path = self.dir.path().join(format!("app-{n}.pem"));
        write_private(
            &path,
            &format!("{}{}{}", cert.pem(), self.ca.pem(), TEST_RSA_KEY),
        );
        path
    }

    /// Makes `token` a valid federated assertion for application
    /// `client_id` (of any tenant).
    pub fn federate(&self, client_id: &str, token: &str) {
        for ((_, id), app) in lock(&self.state.apps).iter_mut() {
            if id == client_id {
                app.federated.push(token.to_owned());
            }
        }
    }

    /// Makes `token` no longer valid for anyone.
    pub fn unfederate(&self, token: &str) {
        for app in lock(&self.state.apps).values_mut() {
            app.federated.retain(|t| t != token);
        }
    }

    /// Gives the host a managed identity: the system-assigned one
    /// (`None`, client id [`SYSTEM_IDENTITY`]) or a user-assigned one.
    pub fn add_managed_identity(&self, client_id: Option<&str>) {
        match client_id {
            None => self.state.system_identity.store(true, Ordering::SeqCst),
            Some(id) => lock(&self.state.managed).push(id.to_owned()),
        }
    }

    /// IMDS reads requests and never answers.
    pub fn imds_hang(&self) {
        self.state.imds_hang.store(true, Ordering::SeqCst);
    }

    /// The next `times` token requests (Entra ID or a managed identity
    /// endpoint) are answered `status` (with `Retry-After: 1` for 429) and
    /// an OAuth error body: a throttled or failing token service.
    pub fn token_fault(&self, status: u16, times: usize) {
        *lock(&self.state.token_faults) = (status, times);
    }

    /// Stores a new version of secret `name`; returns its version id.
    pub fn put_secret(&self, name: &str, value: &str) -> String {
        self.put_secret_with(name, value, Attributes::default())
    }

    /// Stores a new version of secret `name` with `attrs`; returns its id.
    pub fn put_secret_with(&self, name: &str, value: &str, attrs: Attributes) -> String {
        let n = self.state.counter.fetch_add(1, Ordering::SeqCst);
        let id = format!("{:032x}", 0x5ec0_0000_u128 * 7919 + u128::from(n));
        lock(&self.state.secrets)
            .entry(name.to_owned())
            .or_default()
            .push(Version {
                id: id.clone(),
                value: value.to_owned(),
                attrs,
            });
        id
    }

    /// The vault's permission model: Azure RBAC (`true`) or access policies.
    pub fn use_rbac(&self, rbac: bool) {
        self.state.rbac.store(rbac, Ordering::SeqCst);
    }

    /// Lets `client_id` get secrets `names` (a role assignment scoped to
    /// each secret, or an access policy), or every secret when empty.
    pub fn grant(&self, client_id: &str, names: &[&str]) {
        lock(&self.state.grants)
            .entry(client_id.to_owned())
            .or_default()
            .extend(names.iter().map(|n| (*n).to_owned()));
    }

    /// Applies `fault` to every request for secret `name`.
    pub fn fault(&self, name: &str, fault: Fault) {
        lock(&self.state.faults).insert(name.to_owned(), fault);
    }

    /// Marks every token issued so far expired.
    pub fn expire_tokens(&self) {
        for t in lock(&self.state.tokens).values_mut() {
            t.exp = 0;
        }
    }

    /// The `x5c` lengths of the assertions seen (0: none sent).
    pub fn chains_seen(&self) -> Vec<usize> {
        lock(&self.state.chains).clone()
    }

    /// Every request seen so far, in arrival order.
    pub fn requests(&self) -> Vec<Seen> {
        lock(&self.state.log).clone()
    }

    /// How many requests had exactly this path.
    pub fn count(&self, path: &str) -> usize {
        self.requests().iter().filter(|s| s.path == path).count()
    }
}

impl Drop for FakeAzure {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.tls_addr);
        let _ = TcpStream::connect(self.http_addr);
    }
}

/// A parsed request.
struct Req {
    method: String,
    path: String,
    query: HashMap<String, String>,
    raw_query: String,
    headers: HashMap<String, String>,
    body: String,
}

fn read_request(s: &mut impl Read) -> Option<Req> {
    let mut data = Vec::new();
    let mut buf = [0u8; 4096];
    let end = loop {
        if let Some(i) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => data.extend_from_slice(&buf[..n]),
        }
        if data.len() > 256 * 1024 {
            return None;
        }
    };
    let head = String::from_utf8_lossy(&data[..end]).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let method = first.next()?.to_owned();
    let target = first.next()?.to_owned();
    let headers: HashMap<String, String> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let len: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = data[end..].to_vec();
    while body.len() < len {
        match s.read(&mut buf) {
            Ok(0) | Err(_) => return None,
            Ok(n) => body.extend_from_slice(&buf[..n]),
        }
    }
    let (path, raw_query) = match target.split_once('?') {
        Some((p, q)) => (p.to_owned(), q.to_owned()),
        None => (target, String::new()),
    };
    Some(Req {
        method,
        path,
        query: form(&raw_query),
        raw_query,
        headers,
        body: String::from_utf8_lossy(&body).into_owned(),
    })
}

/// `application/x-www-form-urlencoded` pairs (a query or a token request).
fn form(s: &str) -> HashMap<String, String> {
    form_urlencoded::parse(s.as_bytes()).into_owned().collect()
}

/// An answer: status, extra headers, JSON body.
type Answer = (u16, Vec<(&'static str, String)>, String);

fn serve(s: &mut (impl Read + Write), state: &State, tls: bool) {
    let Some(req) = read_request(s) else { return };
    let (who, answer) = if tls {
        if req.path.starts_with("/secrets/") {
            key_vault(state, &req)
        } else {
            entra(state, &req)
        }
    } else {
        managed(state, &req)
    };
    lock(&state.log).push(Seen {
        method: req.method.clone(),
        path: req.path.clone(),
        query: req.raw_query.clone(),
        who,
        status: answer.as_ref().map_or(0, |a| a.0),
    });
    let Some((code, headers, body)) = answer else {
        // A hang: wait for the client to go away.
        let mut buf = [0u8; 1024];
        while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
        return;
    };
    let mut reply = format!(
        "HTTP/1.1 {code} Status\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    for (k, v) in headers {
        reply.push_str(&format!("{k}: {v}\r\n"));
    }
    reply.push_str("\r\n");
    reply.push_str(&body);
    let _ = s.write_all(reply.as_bytes());
    let _ = s.flush();
}

fn oauth_error(code: u16, error: &str, number: u64, text: &str) -> Option<Answer> {
    let body = json!({
        "error": error,
        "error_description": format!("AADSTS{number}: {text} Trace ID: 0000 Correlation ID: 0000 Timestamp: 2026-01-01 00:00:00Z"),
        "error_codes": [number],
        "timestamp": "2026-01-01 00:00:00Z",
        "trace_id": "00000000-0000-0000-0000-000000000000",
        "correlation_id": "00000000-0000-0000-0000-000000000000",
    });
    Some((code, vec![], body.to_string()))
}

fn issue(state: &State, tenant: &str, client_id: &str, resource: &str) -> String {
    let n = state.counter.fetch_add(1, Ordering::SeqCst);
    let token = format!("eyJ0eXAiOiJKV1QifQ.fake-access-token-{n}-{:x}", now());
    lock(&state.tokens).insert(
        token.clone(),
        Token {
            tenant: tenant.to_owned(),
            client_id: client_id.to_owned(),
            resource: resource.to_owned(),
            exp: now() + 3600,
        },
    );
    token
}

/// `POST /{tenant}/oauth2/v2.0/token`.
/// The token fault's answer, while it lasts.
fn token_fault(state: &State) -> Option<Option<Answer>> {
    let mut fault = lock(&state.token_faults);
    if fault.1 == 0 {
        return None;
    }
    fault.1 -= 1;
    let code = fault.0;
    let mut answer = oauth_error(code, "temporarily_unavailable", 50001, "FAULT-BODY-MARKER");
    if let (429, Some(a)) = (code, answer.as_mut()) {
        a.1.push(("Retry-After", "1".into()));
    }
    Some(answer)
}

fn entra(state: &State, req: &Req) -> (Option<String>, Option<Answer>) {
    if let Some(answer) = token_fault(state) {
        return (None, answer);
    }
    let tenant = req
        .path
        .strip_prefix('/')
        .and_then(|p| p.strip_suffix("/oauth2/v2.0/token"))
        .filter(|t| !t.contains('/'));
    let Some(tenant) = tenant.filter(|_| req.method == "POST") else {
        return (None, Some((404, vec![], "{}".into())));
    };
    let f = form(&req.body);
    let client_id = f.get("client_id").cloned().unwrap_or_default();
    let known_tenant = lock(&state.apps).keys().any(|(t, _)| t == tenant);
    if !known_tenant {
        return (
            None,
            oauth_error(400, "invalid_request", 90002, "Tenant not found."),
        );
    }
    if f.get("grant_type").map(String::as_str) != Some("client_credentials") {
        return (
            None,
            oauth_error(
                400,
                "unsupported_grant_type",
                70003,
                "Unsupported grant type.",
            ),
        );
    }
    let Some(resource) = f
        .get("scope")
        .and_then(|s| s.strip_suffix("/.default"))
        .filter(|r| *r == RESOURCE)
    else {
        return (
            None,
            oauth_error(
                400,
                "invalid_scope",
                70011,
                "The provided scope is not valid.",
            ),
        );
    };
    let apps = lock(&state.apps);
    let Some(app) = apps.get(&(tenant.to_owned(), client_id.clone())) else {
        return (
            None,
            oauth_error(
                400,
                "unauthorized_client",
                700016,
                "Application was not found in the directory.",
            ),
        );
    };
    let verdict = if let Some(secret) = f.get("client_secret") {
        if app.secret.as_deref() == Some(secret.as_str()) {
            Ok(())
        } else {
            Err((
                401,
                "invalid_client",
                7000215,
                "Invalid client secret provided.",
            ))
        }
    } else if let Some(assertion) = f.get("client_assertion") {
        if f.get("client_assertion_type").map(String::as_str)
            != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            Err((
                400,
                "invalid_request",
                90014,
                "client_assertion_type is missing.",
            ))
        } else if app.federated.iter().any(|t| t == assertion) {
            Ok(())
        } else {
            let audience = format!("{}{}", lock(&state.base), req.path);
            check_assertion(state, app, assertion, &client_id, &audience)
        }
    } else {
        Err((
            400,
            "invalid_request",
            7000218,
            "The request body must contain client_secret or client_assertion.",
        ))
    };
    drop(apps);
    match verdict {
        Ok(()) => {
            let token = issue(state, tenant, &client_id, resource);
            let body = json!({"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599, "access_token": token});
            (Some(client_id), Some((200, vec![], body.to_string())))
        }
        Err((code, error, number, text)) => (None, oauth_error(code, error, number, text)),
    }
}

type Refusal = (u16, &'static str, u64, &'static str);

/// Checks a certificate assertion: header, thumbprint, signature, claims.
fn check_assertion(
    state: &State,
    app: &App,
    jwt: &str,
    client_id: &str,
    audience: &str,
) -> Result<(), Refusal> {
    let no_match = (
        401,
        "invalid_client",
        700213,
        "No matching federated identity record found for presented assertion.",
    );
    let bad_sig = (
        401,
        "invalid_client",
        700027,
        "Client assertion failed signature validation.",
    );
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, s] = parts.as_slice() else {
        return Err(no_match);
    };
    let decode = |p: &str| -> Option<Value> {
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(p).ok()?).ok()
    };
    let (Some(header), Some(claims)) = (decode(h), decode(c)) else {
        return Err(no_match);
    };
    let Some(thumb) = header.get("x5t#S256").and_then(Value::as_str) else {
        // Not a certificate assertion: an unknown federated token.
        return Err(no_match);
    };
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(bad_sig);
    }
    let Some(public) = app.certs.get(thumb) else {
        return Err(bad_sig);
    };
    let sig = URL_SAFE_NO_PAD.decode(s).map_err(|_| bad_sig)?;
    ring::signature::UnparsedPublicKey::new(&ring::signature::RSA_PKCS1_2048_8192_SHA256, public)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| bad_sig)?;
    let claim = |k: &str| claims.get(k).and_then(Value::as_str).unwrap_or_default();
    if claim("aud") != audience {
        return Err((
            401,
            "invalid_client",
            700212,
            "No matching federated identity record found for presented assertion audience.",
        ));
    }
    if claim("iss") != client_id || claim("sub") != client_id {
        return Err((
            401,
            "invalid_client",
            700021,
            "Client assertion application identifier doesn't match 'client_id' parameter.",
        ));
    }
    let t = |k: &str| claims.get(k).and_then(Value::as_u64).unwrap_or(0);
    let now = now();
    if t("exp") < now || t("nbf") > now + 300 || claims.get("jti").is_none() {
        return Err((
            401,
            "invalid_client",
            700024,
            "Client assertion is not within its valid time range.",
        ));
    }
    let chain = header.get("x5c").and_then(Value::as_array).map_or(0, |c| {
        c.iter()
            .filter(|x| x.as_str().is_some_and(|x| STANDARD.decode(x).is_ok()))
            .count()
    });
    lock(&state.chains).push(chain);
    Ok(())
}

/// IMDS, App Service and Azure Arc.
fn managed(state: &State, req: &Req) -> (Option<String>, Option<Answer>) {
    if let Some(answer) = token_fault(state) {
        return (None, answer);
    }
    let bad = |code: u16, error: &str, text: &str| {
        Some((
            code,
            vec![],
            json!({"error": error, "error_description": text}).to_string(),
        ))
    };
    let body = form(&req.body);
    let resource = req
        .query
        .get("resource")
        .or_else(|| body.get("resource"))
        .cloned()
        .unwrap_or_default();
    let metadata = req.headers.get("metadata").map(String::as_str) == Some("true");
    let no_metadata = || {
        (
            None,
            bad(
                400,
                "invalid_request",
                "Required metadata header not specified",
            ),
        )
    };
    match req.path.as_str() {
        "/metadata/identity/oauth2/token" => {
            if state.imds_hang.load(Ordering::SeqCst) {
                return (None, None);
            }
            if !metadata {
                return no_metadata();
            }
        }
        "/ml/token" => {
            if req.headers.get("secret").map(String::as_str) != Some(FakeAzure::AZURE_ML_SECRET) {
                return (
                    None,
                    bad(401, "unauthorized_client", "The secret header is wrong."),
                );
            }
        }
        "/cloudshell/token" => {
            if !metadata || req.method != "POST" {
                return no_metadata();
            }
        }
        "/msi/token" => {
            if req.headers.get("x-identity-header").map(String::as_str)
                != Some(FakeAzure::APP_SERVICE_HEADER)
            {
                return (
                    None,
                    bad(
                        401,
                        "unauthorized_client",
                        "The identity header is missing or wrong.",
                    ),
                );
            }
        }
        "/arc/token" => {
            if !metadata {
                return no_metadata();
            }
            let sent = req
                .headers
                .get("authorization")
                .and_then(|a| a.strip_prefix("Basic "));
            match sent {
                Some(k) if lock(&state.arc_keys).iter().any(|x| x == k) => {}
                Some(_) => return (None, bad(401, "invalid_client", "Wrong key.")),
                None => {
                    let n = state.counter.fetch_add(1, Ordering::SeqCst);
                    let key = format!("arc-challenge-key-{n}-{:x}", now());
                    let path = lock(&state.arc_dir).join(format!("{n}.key"));
                    std::fs::write(&path, &key).unwrap();
                    lock(&state.arc_keys).push(key);
                    return (
                        None,
                        Some((
                            401,
                            vec![(
                                "WWW-Authenticate",
                                format!("Basic realm={}", path.display()),
                            )],
                            String::new(),
                        )),
                    );
                }
            }
            if req.query.contains_key("client_id") {
                return (
                    None,
                    bad(
                        400,
                        "invalid_request",
                        "User-assigned identities are not supported.",
                    ),
                );
            }
        }
        _ => return (None, Some((404, vec![], "{}".into()))),
    }
    if resource != RESOURCE {
        return (
            None,
            bad(
                400,
                "invalid_resource",
                "AADSTS500011: The resource principal was not found.",
            ),
        );
    }
    let id = req
        .query
        .get("client_id")
        .or_else(|| req.query.get("clientid"))
        .or_else(|| body.get("client_id"))
        .cloned();
    let who = match id {
        Some(id) if lock(&state.managed).contains(&id) => id,
        None if state.system_identity.load(Ordering::SeqCst) => SYSTEM_IDENTITY.to_owned(),
        _ => return (None, bad(400, "invalid_request", "Identity not found")),
    };
    let token = issue(state, TENANT, &who, &resource);
    let exp = now() + 3600;
    let body = json!({
        "access_token": token,
        "client_id": who,
        "expires_in": "3599",
        "expires_on": exp.to_string(),
        "ext_expires_in": "3599",
        "not_before": now().to_string(),
        "resource": resource,
        "token_type": "Bearer",
    });
    (Some(who), Some((200, vec![], body.to_string())))
}

fn kv_error(code: u16, outer: &str, inner: Option<&str>, message: &str) -> Option<Answer> {
    let mut e = json!({"error": {"code": outer, "message": message}});
    if let Some(i) = inner {
        e["error"]["innererror"] = json!({"code": i});
    }
    Some((code, vec![], e.to_string()))
}

/// `GET /secrets/{name}[/{version}]`.
fn key_vault(state: &State, req: &Req) -> (Option<String>, Option<Answer>) {
    let base = lock(&state.base).clone();
    let challenge = format!("Bearer authorization=\"{base}/{TENANT}\", resource=\"{RESOURCE}\"");
    let unauthorized = |inner: Option<&str>, message: &str| {
        let mut a = kv_error(401, "Unauthorized", inner, message);
        if let Some(a) = a.as_mut() {
            a.1.push(("WWW-Authenticate", challenge.clone()));
        }
        a
    };
    if !req.query.contains_key("api-version") {
        return (
            None,
            kv_error(
                400,
                "BadParameter",
                None,
                "The api-version parameter is missing.",
            ),
        );
    }
    let Some(bearer) = req
        .headers
        .get("authorization")
        .and_then(|a| a.strip_prefix("Bearer "))
    else {
        return (
            None,
            unauthorized(None, "AKV10000: Request is missing a Bearer or PoP token."),
        );
    };
    let Some(token) = lock(&state.tokens).get(bearer).cloned() else {
        return (None, unauthorized(None, "AKV10022: Invalid token."));
    };
    if token.exp < now() {
        return (
            None,
            unauthorized(
                Some("TokenExpired"),
                "[TokenExpired] Error validating token: 'S2S12086'.",
            ),
        );
    }
    if token.tenant != TENANT {
        return (None, unauthorized(None, "AKV10032: Invalid issuer."));
    }
    if token.resource != RESOURCE {
        return (None, unauthorized(None, "AKV10022: Invalid audience."));
    }
    let who = Some(token.client_id.clone());
    let rest = req.path.trim_start_matches("/secrets/");
    let (name, version) = match rest.split_once('/') {
        Some((n, v)) => (n.to_owned(), Some(v.to_owned())),
        None => (rest.to_owned(), None),
    };
    if req.method != "GET" || name.is_empty() {
        return (
            who,
            kv_error(405, "BadParameter", None, "Method not allowed."),
        );
    }
    let allowed = lock(&state.grants)
        .get(&token.client_id)
        .is_some_and(|names| names.is_empty() || names.contains(&name));
    if !allowed {
        let answer = if state.rbac.load(Ordering::SeqCst) {
            kv_error(
                403,
                "Forbidden",
                Some("ForbiddenByRbac"),
                &format!(
                    "Caller is not authorized to perform action on resource.\r\nCaller: appid={};oid=0000\r\nAction: 'Microsoft.KeyVault/vaults/secrets/getSecret/action'\r\nAssignment: (not found)\r\nDecisionReason: 'DeniedWithNoValidRBAC'",
                    token.client_id
                ),
            )
        } else {
            kv_error(
                403,
                "Forbidden",
                Some("AccessDenied"),
                &format!(
                    "The user, group or application 'appid={};oid=0000' does not have secrets get permission on key vault 'fake;location=local'. For help resolving this issue, please see https://go.microsoft.com/fwlink/?linkid=2125287",
                    token.client_id
                ),
            )
        };
        return (who, answer);
    }
    match lock(&state.faults).get(&name).cloned() {
        Some(Fault::Hang) => return (who, None),
        Some(Fault::Status(429)) => {
            let mut a = kv_error(
                429,
                "Throttled",
                None,
                "Request was not processed because too many requests were received.",
            );
            if let Some(a) = a.as_mut() {
                a.1.push(("Retry-After", "1".into()));
            }
            return (who, a);
        }
        Some(Fault::Status(code)) => {
            return (
                who,
                kv_error(
                    code,
                    "InternalServerError",
                    None,
                    "FAULT-BODY-MARKER internal error",
                ),
            );
        }
        None => {}
    }
    let found = lock(&state.secrets)
        .get(&name)
        .and_then(|versions| match &version {
            Some(v) => versions.iter().find(|x| x.id == *v).cloned(),
            None => versions.last().cloned(),
        });
    let Some(v) = found else {
        let shown = version.map_or(name.clone(), |v| format!("{name}/{v}"));
        return (
            who,
            kv_error(
                404,
                "SecretNotFound",
                None,
                &format!(
                    "A secret with (name/id) {shown} was not found in this key vault. If you recently deleted this secret you may be able to recover it using the correct recovery command."
                ),
            ),
        );
    };
    if !v.attrs.enabled {
        return (
            who,
            kv_error(
                403,
                "Forbidden",
                Some("SecretDisabled"),
                "Operation get is not allowed on a disabled secret.",
            ),
        );
    }
    let mut attrs = json!({
        "enabled": true,
        "created": 1_767_225_600,
        "updated": 1_767_225_600,
        "recoveryLevel": "Recoverable+Purgeable",
        "recoverableDays": 90,
    });
    if let Some(n) = v.attrs.nbf {
        attrs["nbf"] = n.into();
    }
    if let Some(e) = v.attrs.exp {
        attrs["exp"] = e.into();
    }
    let body = json!({
        "value": v.value,
        "id": format!("{base}/secrets/{name}/{}", v.id),
        "attributes": attrs,
        "tags": {},
    });
    (who, Some((200, vec![], body.to_string())))
}
