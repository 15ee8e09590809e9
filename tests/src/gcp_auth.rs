//! Google's side of a GCP call, faked for the gcp backend's tests: an
//! OAuth token endpoint, the metadata server, IAM's `generateAccessToken`,
//! and a front for the Secret Manager emulator ([`crate::drongo`]) that
//! demands the tokens it issued and injects what drongo lacks.
//!
//! [`FakeGoogle`] is one HTTP/1.1 server on 127.0.0.1:
//!
//! - `POST /token`: the JWT bearer grant (RFC 7523) of service accounts,
//!   whose assertion's RS256 signature is checked with the account's
//!   public key, and its `iss`, `aud` (this URL), `scope`
//!   (cloud-platform), `iat` (within five minutes of now) and `exp`
//!   (`iat` + at most one hour); the `refresh_token` grant of authorized
//!   users; the STS `token-exchange` grant of external accounts (subject
//!   token and audience). Refusals are OAuth errors
//!   (`{"error":"invalid_grant",...}`) whose description carries
//!   [`crate::fault::BODY_MARKER`];
//! - `GET /computeMetadata/v1/instance/service-accounts/default/token` and
//!   `.../project/project-id`: only with `Metadata-Flavor: Google` (else
//!   403, as the real server does), or never answered when told to hang;
//! - `POST /impersonate`: IAM's `generateAccessToken` for a caller holding
//!   an issued token;
//! - `/v1/...`: Secret Manager, forwarded to the upstream emulator when the
//!   request carries a token this server issued (else 401 as Google's
//!   front end answers), with an optional [`ApiFault`]: the payload's
//!   `dataCrc32c` added (right or wrong), an error status a few times, or
//!   no answer.
//!
//! Every request is recorded ([`FakeGoogle::seen`]). Access tokens are
//! `ya29.FAKE-ACCESS-TOKEN-<n>`, distinct and long, for leak scans.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use ring::signature::{RSA_PKCS1_2048_8192_SHA256, RsaKeyPair, UnparsedPublicKey};
use rustls::pki_types::PrivateKeyDer;
use rustls::pki_types::pem::PemObject;
use serde_json::{Value, json};

use crate::fault::{BODY_MARKER, Request, accept_loop, answer, read_request};

/// The project the metadata server names.
pub const METADATA_PROJECT: &str = "metadata-project";
/// The access key id of the instance metadata stand-in's role.
pub const AWS_ACCESS_KEY_ID: &str = "ASIAFAKEROLEKEY00001";
/// Its secret key.
pub const AWS_SECRET_KEY: &str = "aws-secret-KEY-of-the-role-0001";
/// The IMDSv2 session token it hands out.
const IMDS_TOKEN: &str = "imds-session-TOKEN-0001";
/// The scope every token must be asked for.
pub const SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";

/// What the Secret Manager front does to `/v1/` requests.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ApiFault {
    /// Adds the payload's CRC32C as `dataCrc32c`: the right one, or a wrong one.
    Crc32c {
        /// Whether the checksum sent is wrong.
        wrong: bool,
    },
    /// Answers the first `times` requests of each path with `code` and a
    /// Google error of `status`, then forwards.
    Status {
        /// The HTTP status.
        code: u16,
        /// The error's `status` word (`PERMISSION_DENIED`).
        status: String,
        /// `Retry-After` seconds, if any.
        retry_after: Option<u64>,
        /// How many requests per path are answered so.
        times: usize,
    },
    /// Never answers.
    Hang,
}

/// One request the server saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Seen {
    /// `GET`, `POST`.
    pub method: String,
    /// Path and query.
    pub target: String,
    /// The grant type of a token request.
    pub grant: Option<String>,
    /// Whether the server granted it (a token, or a forwarded API call).
    pub granted: bool,
    /// The `x-goog-user-project` header (the billed project), if sent.
    pub user_project: Option<String>,
}

#[derive(Debug, Default)]
struct State {
    addr: Option<SocketAddr>,
    upstream: Option<SocketAddr>,
    stop: AtomicBool,
    metadata_hang: AtomicBool,
    service_accounts: Mutex<Vec<(String, Vec<u8>)>>,
    users: Mutex<Vec<[String; 3]>>,
    subjects: Mutex<Vec<(String, String)>>,
    /// What `GET /subject` serves (a URL-sourced subject token), and the
    /// header it requires.
    url_subject: Mutex<Option<(String, (String, String))>>,
    /// Audiences and AWS access key ids whose signed requests the STS
    /// exchange accepts.
    aws_subjects: Mutex<Vec<(String, String)>>,
    issued: Mutex<Vec<String>>,
    seen: Mutex<Vec<Seen>>,
    fault: Mutex<Option<ApiFault>>,
    faulted: Mutex<Vec<(String, usize)>>,
    /// drongo serves one request at a time with Python's default listen
    /// backlog of 5: more connections at once are refused, which a client
    /// retries, and request counts would count the retries. The front
    /// queues requests to it instead.
    upstream_turn: Mutex<()>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The fake Google endpoints, stopped on drop.
#[derive(Debug)]
pub struct FakeGoogle {
    addr: SocketAddr,
    state: Arc<State>,
}

impl FakeGoogle {
    /// Starts the server; `/v1/` requests go to `upstream`
    /// (`http://127.0.0.1:PORT`), when given.
    pub fn start(upstream: Option<&str>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind the fake Google server");
        let addr = listener.local_addr().expect("fake Google address");
        let upstream = upstream.map(|u| {
            u.trim_start_matches("http://")
                .trim_end_matches('/')
                .parse()
                .unwrap_or_else(|e| panic!("upstream {u}: not 127.0.0.1:PORT ({e})"))
        });
        let state = Arc::new(State {
            addr: Some(addr),
            upstream,
            ..State::default()
        });
        accept_loop(listener, state.clone(), |s| &s.stop, serve);
        Self { addr, state }
    }

    /// `http://127.0.0.1:PORT`: the `endpoint:` of a config.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// The OAuth token endpoint (`token_uri`, `token_url`).
    pub fn token_uri(&self) -> String {
        format!("{}/token", self.url())
    }

    /// IAM's `generateAccessToken` stand-in.
    pub fn impersonation_url(&self) -> String {
        format!("{}/impersonate", self.url())
    }

    /// `127.0.0.1:PORT`, for `GCE_METADATA_HOST`.
    pub fn metadata_host(&self) -> String {
        self.addr.to_string()
    }

    /// Accepts assertions of `email` signed with `private_key_pem`'s key.
    pub fn add_service_account(&self, email: &str, private_key_pem: &str) {
        let der = PrivateKeyDer::from_pem_slice(private_key_pem.as_bytes()).expect("a PEM key");
        let PrivateKeyDer::Pkcs8(k) = der else {
            panic!("a PKCS#8 key")
        };
        let pair = RsaKeyPair::from_pkcs8(k.secret_pkcs8_der()).expect("an RSA key");
        lock(&self.state.service_accounts).push((email.into(), pair.public().as_ref().to_vec()));
    }

    /// Accepts this refresh token of this OAuth client.
    pub fn add_user(&self, client_id: &str, client_secret: &str, refresh_token: &str) {
        lock(&self.state.users).push([
            client_id.into(),
            client_secret.into(),
            refresh_token.into(),
        ]);
    }

    /// Accepts this subject token for this audience at the STS exchange.
    pub fn add_subject(&self, audience: &str, subject_token: &str) {
        lock(&self.state.subjects).push((audience.into(), subject_token.into()));
    }

    /// Serves `body` at `GET /subject` to requests carrying `header`
    /// (name, value): an external account's `credential_source.url`.
    pub fn serve_subject(&self, body: &str, header: (&str, &str)) {
        *lock(&self.state.url_subject) = Some((body.into(), (header.0.into(), header.1.into())));
    }

    /// Accepts, for `audience`, AWS `GetCallerIdentity` requests signed
    /// by `access_key_id` (the request's form and headers are checked; its
    /// signature is AWS's to check, which this fake does not do).
    pub fn add_aws_subject(&self, audience: &str, access_key_id: &str) {
        lock(&self.state.aws_subjects).push((audience.into(), access_key_id.into()));
    }

    /// The EC2 instance metadata stand-in's base URL (`/latest/...`):
    /// role `gcp-federation` with key [`AWS_ACCESS_KEY_ID`], zone
    /// `eu-west-1b`, IMDSv2 tokens required.
    pub fn imds_url(&self) -> String {
        format!("{}/latest", self.url())
    }

    /// `GET /subject`'s URL.
    pub fn subject_url(&self) -> String {
        format!("{}/subject", self.url())
    }

    /// Makes the metadata server accept connections and never answer.
    pub fn hang_metadata(&self, hang: bool) {
        self.state.metadata_hang.store(hang, Ordering::SeqCst);
    }

    /// Sets what happens to Secret Manager requests.
    pub fn api_fault(&self, fault: Option<ApiFault>) {
        *lock(&self.state.fault) = fault;
        lock(&self.state.faulted).clear();
    }

    /// Every access token issued so far.
    pub fn issued(&self) -> Vec<String> {
        lock(&self.state.issued).clone()
    }

    /// Every request seen so far.
    pub fn seen(&self) -> Vec<Seen> {
        lock(&self.state.seen).clone()
    }

    /// How many requests had a target starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.seen()
            .iter()
            .filter(|s| s.target.starts_with(prefix))
            .count()
    }

    /// Forgets the requests seen.
    pub fn reset_seen(&self) {
        lock(&self.state.seen).clear();
    }
}

impl Drop for FakeGoogle {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect(self.addr);
    }
}

fn issue(state: &State) -> String {
    let mut issued = lock(&state.issued);
    let token = format!("ya29.FAKE-ACCESS-TOKEN-{:04}-x7Rq", issued.len() + 1);
    issued.push(token.clone());
    token
}

fn record(state: &State, req: &Request, grant: Option<String>, granted: bool) {
    let mut parts = req.line().split_whitespace();
    lock(&state.seen).push(Seen {
        method: parts.next().unwrap_or_default().into(),
        target: parts.next().unwrap_or_default().into(),
        grant,
        granted,
        user_project: req.header("x-goog-user-project"),
    });
}

fn serve(mut client: TcpStream, state: &State) {
    let Some(req) = read_request(&mut client) else {
        return;
    };
    let target = req
        .line()
        .split_whitespace()
        .nth(1)
        .unwrap_or_default()
        .to_owned();
    let path = target.split('?').next().unwrap_or_default().to_owned();
    if path.starts_with("/computeMetadata/") {
        metadata(client, &req, &path, state);
    } else if path == "/token" {
        token(&mut client, &req, state);
    } else if path == "/impersonate" {
        let ok = bearer_ok(&req, state);
        record(state, &req, None, ok);
        if ok {
            let body = json!({"accessToken": issue(state), "expireTime": "2099-01-01T00:00:00Z"});
            answer(&mut client, 200, None, &body.to_string());
        } else {
            google_error(&mut client, 401, "UNAUTHENTICATED", None);
        }
    } else if path.starts_with("/latest/") {
        imds(&mut client, &req, &path, state);
    } else if path == "/subject" {
        let served = lock(&state.url_subject).clone();
        let ok = served
            .as_ref()
            .is_some_and(|(_, (k, v))| req.header(k).as_deref() == Some(v.as_str()));
        record(state, &req, None, ok);
        match served {
            Some((body, _)) if ok => answer(&mut client, 200, None, &body),
            _ => answer(&mut client, 403, None, r#"{"error":"forbidden"}"#),
        }
    } else if path.starts_with("/v1/") {
        api(client, &req, &target, state);
    } else {
        record(state, &req, None, false);
        answer(&mut client, 404, None, r#"{"error":"not_found"}"#);
    }
}

fn google_error(client: &mut TcpStream, code: u16, status: &str, retry_after: Option<u64>) {
    let body = json!({"error": {"code": code, "status": status,
        "message": format!("injected {status} {BODY_MARKER}")}});
    answer(client, code, retry_after, &body.to_string());
}

fn bearer_ok(req: &Request, state: &State) -> bool {
    req.header("authorization")
        .and_then(|v| v.strip_prefix("Bearer ").map(str::to_owned))
        .is_some_and(|t| lock(&state.issued).contains(&t))
}

fn metadata(client: TcpStream, req: &Request, path: &str, state: &State) {
    let mut client = client;
    let flavored = req.header("metadata-flavor").is_some_and(|v| v == "Google");
    record(state, req, None, flavored);
    if state.metadata_hang.load(Ordering::SeqCst) {
        while !state.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    if !flavored {
        answer(
            &mut client,
            403,
            None,
            "Missing Metadata-Flavor:Google header.",
        );
        return;
    }
    match path {
        "/computeMetadata/v1/instance/service-accounts/default/token" => {
            let body =
                json!({"access_token": issue(state), "expires_in": 3599, "token_type": "Bearer"});
            answer(&mut client, 200, None, &body.to_string());
        }
        "/computeMetadata/v1/project/project-id" => {
            let _ = write!(
                client,
                "HTTP/1.1 200 OK\r\nContent-Type: application/text\r\nMetadata-Flavor: Google\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{METADATA_PROJECT}",
                METADATA_PROJECT.len()
            );
        }
        _ => answer(&mut client, 404, None, "not found"),
    }
}

/// `application/x-www-form-urlencoded` pairs.
fn form(body: &[u8]) -> Vec<(String, String)> {
    form_urlencoded::parse(body).into_owned().collect()
}

fn token(client: &mut TcpStream, req: &Request, state: &State) {
    let form = form(&req.body);
    let get = |k: &str| {
        form.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let grant = get("grant_type");
    let verdict = match grant.as_str() {
        "urn:ietf:params:oauth:grant-type:jwt-bearer" => check_assertion(&get("assertion"), state),
        "refresh_token" => {
            let wanted = [get("client_id"), get("client_secret"), get("refresh_token")];
            if lock(&state.users).contains(&wanted) {
                Ok(())
            } else {
                Err("unknown client or refresh token")
            }
        }
        "urn:ietf:params:oauth:grant-type:token-exchange" => {
            let pair = (get("audience"), get("subject_token"));
            let aws = get("subject_token_type") == "urn:ietf:params:aws:token-type:aws4_request";
            if get("scope") != SCOPE
                || get("requested_token_type") != "urn:ietf:params:oauth:token-type:access_token"
            {
                Err("bad scope or requested token type")
            } else if aws {
                check_aws_subject(&pair.0, &pair.1, state)
            } else if lock(&state.subjects).contains(&pair) {
                Ok(())
            } else {
                Err("unknown subject token or audience")
            }
        }
        _ => Err("unsupported grant type"),
    };
    record(state, req, Some(grant), verdict.is_ok());
    match verdict {
        Ok(()) => {
            let body =
                json!({"access_token": issue(state), "expires_in": 3599, "token_type": "Bearer"});
            answer(client, 200, None, &body.to_string());
        }
        Err(why) => {
            let body = json!({"error": "invalid_grant", "error_description": format!("{why} {BODY_MARKER}")});
            answer(client, 400, None, &body.to_string());
        }
    }
}

/// The EC2 instance metadata service: IMDSv2 session tokens, the role's
/// name and credentials, the availability zone.
fn imds(client: &mut TcpStream, req: &Request, path: &str, state: &State) {
    let method = req.line().split_whitespace().next().unwrap_or_default();
    if method == "PUT" && path == "/latest/api/token" {
        let ok = req.header("x-aws-ec2-metadata-token-ttl-seconds").is_some();
        record(state, req, None, ok);
        let _ = write!(
            client,
            "HTTP/1.1 {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{IMDS_TOKEN}",
            if ok { "200 OK" } else { "400 Bad Request" },
            IMDS_TOKEN.len()
        );
        return;
    }
    let ok = req.header("x-aws-ec2-metadata-token").as_deref() == Some(IMDS_TOKEN);
    record(state, req, None, ok);
    let body = match path {
        _ if !ok => None,
        "/latest/meta-data/placement/availability-zone" => Some("eu-west-1b".to_owned()),
        "/latest/meta-data/iam/security-credentials" => Some("gcp-federation".to_owned()),
        "/latest/meta-data/iam/security-credentials/gcp-federation" => Some(
            json!({"Code": "Success", "AccessKeyId": AWS_ACCESS_KEY_ID,
                   "SecretAccessKey": AWS_SECRET_KEY, "Token": "aws-session-TOKEN-0001"})
            .to_string(),
        ),
        _ => None,
    };
    let (status, body) = match body {
        Some(b) => ("200 OK", b),
        None if ok => ("404 Not Found", String::new()),
        None => ("401 Unauthorized", String::new()),
    };
    let _ = write!(
        client,
        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
}

/// An AWS subject token: the URL-encoded JSON of a signed
/// `GetCallerIdentity` request for `audience` by a registered key.
fn check_aws_subject(audience: &str, token: &str, state: &State) -> Result<(), &'static str> {
    let decoded = form(format!("t={token}").as_bytes())
        .pop()
        .map(|(_, v)| v)
        .ok_or("empty subject token")?;
    let v: Value = serde_json::from_str(&decoded).map_err(|_| "subject token is not JSON")?;
    let header = |k: &str| {
        v["headers"].as_array().and_then(|hs| {
            hs.iter()
                .find(|h| h["key"].as_str().is_some_and(|x| x.eq_ignore_ascii_case(k)))
                .and_then(|h| h["value"].as_str())
        })
    };
    if v["method"] != "POST"
        || !v["url"]
            .as_str()
            .is_some_and(|u| u.contains("Action=GetCallerIdentity"))
    {
        return Err("not a GetCallerIdentity request");
    }
    if header("x-goog-cloud-target-resource") != Some(audience) {
        return Err("signed for another audience");
    }
    let auth = header("authorization").ok_or("unsigned")?;
    let known = lock(&state.aws_subjects).iter().any(|(aud, key)| {
        aud == audience
            && auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={key}/"))
            && auth.contains("SignedHeaders=host;x-amz-date;")
            && auth.contains("x-goog-cloud-target-resource")
    });
    if known && header("x-amz-date").is_some() {
        Ok(())
    } else {
        Err("unknown AWS identity")
    }
}

/// Checks a JWT bearer assertion as Google's token endpoint does.
fn check_assertion(jwt: &str, state: &State) -> Result<(), &'static str> {
    let dec = |s: &str| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(s)
            .ok()
    };
    let parts: Vec<&str> = jwt.split('.').collect();
    let [h, c, sig] = parts.as_slice() else {
        return Err("not a JWT");
    };
    let header: Value = dec(h)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad header")?;
    let claims: Value = dec(c)
        .and_then(|b| serde_json::from_slice(&b).ok())
        .ok_or("bad claims")?;
    let sig = dec(sig).ok_or("bad signature encoding")?;
    if header["alg"] != "RS256" {
        return Err("alg is not RS256");
    }
    let iss = claims["iss"].as_str().ok_or("no iss")?;
    let key = lock(&state.service_accounts)
        .iter()
        .find(|(e, _)| e == iss)
        .map(|(_, k)| k.clone())
        .ok_or("unknown service account")?;
    UnparsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, key)
        .verify(format!("{h}.{c}").as_bytes(), &sig)
        .map_err(|_| "Invalid JWT Signature.")?;
    let aud = format!("http://{}/token", state.addr.ok_or("no address")?);
    if claims["aud"] != aud.as_str() {
        return Err("aud is not this token endpoint");
    }
    if claims["scope"]
        .as_str()
        .is_none_or(|s| !s.split(' ').any(|x| x == SCOPE))
    {
        return Err("scope lacks cloud-platform");
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let iat = claims["iat"].as_u64().ok_or("no iat")?;
    let exp = claims["exp"].as_u64().ok_or("no exp")?;
    if iat.abs_diff(now) > 300 {
        return Err("iat is not now");
    }
    if exp <= iat || exp - iat > 3600 {
        return Err("exp is not within an hour of iat");
    }
    Ok(())
}

/// CRC32C (Castagnoli), as Secret Manager computes `dataCrc32c`.
pub fn crc32c(data: &[u8]) -> u32 {
    crc::Crc::<u32>::new(&crc::CRC_32_ISCSI).checksum(data)
}

fn api(mut client: TcpStream, req: &Request, target: &str, state: &State) {
    if !bearer_ok(req, state) {
        record(state, req, None, false);
        google_error(&mut client, 401, "UNAUTHENTICATED", None);
        return;
    }
    let fault = lock(&state.fault).clone();
    if let Some(ApiFault::Status {
        code,
        status,
        retry_after,
        times,
    }) = &fault
    {
        let mut met = lock(&state.faulted);
        let n = match met.iter().position(|(t, _)| t == target) {
            Some(i) => &mut met[i].1,
            None => {
                met.push((target.to_owned(), 0));
                let last = met.len() - 1;
                &mut met[last].1
            }
        };
        if *n < *times {
            *n += 1;
            drop(met);
            record(state, req, None, false);
            google_error(&mut client, *code, status, *retry_after);
            return;
        }
    }
    record(state, req, None, true);
    if fault == Some(ApiFault::Hang) {
        while !state.stop.load(Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(100));
        }
        return;
    }
    let forwarded = {
        let _turn = lock(&state.upstream_turn);
        state.upstream.and_then(|up| forward(req, target, up))
    };
    let Some((code, mut body)) = forwarded else {
        answer(&mut client, 502, None, r#"{"error":"upstream failed"}"#);
        return;
    };
    if let (200, Some(ApiFault::Crc32c { wrong })) = (code, &fault)
        && let Some(data) = body
            .pointer("/payload/data")
            .and_then(Value::as_str)
            .and_then(|d| base64::engine::general_purpose::STANDARD.decode(d).ok())
    {
        let crc = u64::from(crc32c(&data)) + u64::from(*wrong);
        body["payload"]["dataCrc32c"] = crc.to_string().into();
    }
    answer(&mut client, code, None, &body.to_string());
}

/// Sends `req` to the upstream; its status and JSON body.
fn forward(req: &Request, target: &str, upstream: SocketAddr) -> Option<(u16, Value)> {
    let method = req.line().split_whitespace().next().unwrap_or("GET");
    let mut up = TcpStream::connect(upstream).ok()?;
    up.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    write!(
        up,
        "{method} {target} HTTP/1.1\r\nHost: {upstream}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        req.body.len()
    )
    .ok()?;
    up.write_all(&req.body).ok()?;
    let mut out = Vec::new();
    up.read_to_end(&mut out).ok()?;
    let text = String::from_utf8_lossy(&out);
    let code = text.get(9..12)?.parse().ok()?;
    let (_, body) = text.split_once("\r\n\r\n")?;
    Some((code, serde_json::from_str(body).unwrap_or(Value::Null)))
}
