//! The hostile run of issue 13, AWS side, through the real binary: what a
//! hostile endpoint, a planted file or a careless URL must never get out
//! of it, and what it must never make it wait for.
//!
//! - Error bodies: whatever an endpoint writes in an error (its message,
//!   an error code nobody knows, a per-secret error of a batch, an STS,
//!   instance metadata or container credentials refusal), none of it shows
//!   in stdout, stderr or the trace log; messages carry our words, the
//!   HTTP status and known error codes. moto produces what it can (its
//!   refusals with IAM checks on), a [`FaultProxy`] the rest.
//! - URL userinfo: a password in `endpoint_url` (config, flag or
//!   environment) or in a proxy variable never shows, whatever the shape
//!   of the URL.
//! - Special files: a FIFO, a device, a socket or a directory at any path
//!   the AWS side reads fails every handle at once, naming the file.
//! - Held credentials: a stored value equal to (or containing) one of the
//!   backend's own credentials is refused, wherever the credential came
//!   from; a config file holding keys that others can read is warned about.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use backend_core::protocol::CREDENTIAL_REFUSED;
use backend_tests::fault::{BODY_MARKER, Fault, FaultProxy, assert_kept, run_traced};
use backend_tests::files::{set_mode, write_private, write_with_mode};
use backend_tests::moto::{self, Moto};
use backend_tests::{Cmd, Done, Shared, assert_no_leak, free_port};
use serde_json::json;

use crate::common::{Seed, bare, mkfifo};

/// The agent's deadline in these runs, in seconds.
const DEADLINE: u64 = 10;
/// A run that has to wait for nothing ends well before this: a FIFO waited
/// on would hold it until the deadline.
const NO_WAIT: Duration = Duration::from_secs(DEADLINE / 2);

const HANDLES: [&str; 3] = ["hb/a;k", "hb/b;k;AWSPREVIOUS", "ssm:/hb/c"];

/// The binary with an empty HOME, a region, no metadata service.
fn base(home: &Path) -> Cmd {
    bare(home)
        .env("AWS_REGION", moto::REGION)
        .env("AWS_EC2_METADATA_DISABLED", "true")
}

/// [`base`] with the test's static keys in the environment.
fn keyed(home: &Path) -> Cmd {
    base(home)
        .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
}

/// Runs `handles` as the agent does (trace log to stderr and a file) and
/// checks the promises of every fault case: in time, every handle
/// answered, no injected body and none of `secrets` anywhere.
fn kept(cmd: Cmd, dir: &Path, handles: &[&str], secrets: &[&str]) -> Done {
    let (done, log) = run_traced(cmd, dir, handles, DEADLINE);
    let mut secrets = secrets.to_vec();
    secrets.push(moto::SECRET_ACCESS_KEY);
    assert_kept(
        &done,
        &log,
        handles,
        Duration::from_secs(DEADLINE),
        &[],
        &secrets,
    );
    done
}

/// Every handle failed, its error naming its target first and containing
/// `cause`.
fn all_failed(done: &Done, handles: &[&str], cause: &str) {
    for h in handles {
        let e = done.error(h);
        let target = h.split(';').next().unwrap();
        assert!(
            e.starts_with(target) && e.contains(cause),
            "{h}: want '{cause}': {e}\n{done}"
        );
    }
}

/// A status answer with `body` as it is.
fn answer(code: u16, body: &str) -> Fault {
    Fault::Status {
        code,
        retry_after: None,
        body: body.into(),
    }
}

// ---------------------------------------------------------------- bodies

#[test]
fn error_codes_and_service_messages_are_never_repeated() {
    let marker_code = format!(r#"{{"__type":"{BODY_MARKER}","message":"{BODY_MARKER}"}}"#);
    let namespaced = format!(
        r#"{{"__type":"com.amazonaws.x#{BODY_MARKER}:http://internal/","Message":"{BODY_MARKER}"}}"#
    );
    let xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{BODY_MARKER}</Code>\
         <Message>{BODY_MARKER}</Message></Error></ErrorResponse>"
    );
    let cases = [
        (
            Fault::aws(400, "ValidationException", None),
            "AWS refused the request (ValidationException, HTTP 400)",
        ),
        (
            Fault::aws(400, "InvalidRequestException", None),
            "AWS refused the request (InvalidRequestException, HTTP 400)",
        ),
        (
            Fault::aws(400, "InvalidParameterException", None),
            "AWS refused the request (InvalidParameterException, HTTP 400)",
        ),
        (
            answer(400, &marker_code),
            "AWS refused the request (an error code this backend does not know, HTTP 400)",
        ),
        (
            answer(409, &namespaced),
            "(an error code this backend does not know, HTTP 409)",
        ),
        (
            answer(400, &xml),
            "AWS answered HTTP 400 without an error code",
        ),
        (
            answer(400, &format!("<html>{BODY_MARKER}</html>")),
            "AWS answered HTTP 400 without an error code",
        ),
        (answer(403, &format!("{BODY_MARKER}\n")), "access denied"),
    ];
    for (fault, want) in cases {
        let proxy = FaultProxy::always(fault);
        let dir = tempfile::tempdir().unwrap();
        let done = kept(
            keyed(dir.path()).env("AWS_ENDPOINT_URL", &proxy.url()),
            dir.path(),
            &HANDLES,
            &[],
        );
        all_failed(&done, &HANDLES, want);
        assert!(proxy.faulted() >= 3, "{:?}", proxy.seen());
    }
}

#[test]
fn per_secret_errors_of_a_batch_are_not_repeated() {
    let body = json!({
        "SecretValues": [],
        "Errors": [
            {"SecretId": "hb/a", "ErrorCode": BODY_MARKER, "Message": BODY_MARKER},
            {"SecretId": "hb/b", "ErrorCode": "ValidationException", "Message": BODY_MARKER},
            {"SecretId": "hb/c", "ErrorCode": "ResourceNotFoundException", "Message": BODY_MARKER},
        ],
    });
    let proxy = FaultProxy::always(answer(200, &body.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let handles = ["hb/a", "hb/b;k", "hb/c"];
    let done = kept(
        keyed(dir.path()).env("AWS_ENDPOINT_URL", &proxy.url()),
        dir.path(),
        &handles,
        &[],
    );
    assert_eq!(
        done.error("hb/a"),
        "hb/a: AWS refused the request (an error code this backend does not know)"
    );
    assert_eq!(
        done.error("hb/b;k"),
        "hb/b: AWS refused the request (ValidationException)"
    );
    assert_eq!(done.error("hb/c"), "hb/c: not found");
}

#[test]
fn an_ssm_reply_naming_other_parameters_is_not_repeated() {
    let body = json!({
        "Parameters": [{"Name": BODY_MARKER, "Value": BODY_MARKER, "ARN": BODY_MARKER}],
        "InvalidParameters": [BODY_MARKER, "/hb/c"],
    });
    let proxy = FaultProxy::always(answer(200, &body.to_string()));
    let dir = tempfile::tempdir().unwrap();
    let handles = ["ssm:/hb/c", "ssm:/hb/d"];
    let done = kept(
        keyed(dir.path()).env("AWS_ENDPOINT_URL", &proxy.url()),
        dir.path(),
        &handles,
        &[],
    );
    assert_eq!(done.error("ssm:/hb/c"), "ssm:/hb/c: not found");
    assert_eq!(
        done.error("ssm:/hb/d"),
        "ssm:/hb/d: not in the GetParameters reply"
    );
}

#[test]
fn moto_refusals_are_reported_without_their_message() {
    // moto with its IAM checks on from the first request: it refuses an
    // access key it never issued, in its own words, which must not follow.
    let m = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]);
    // moto's words for an unknown key, from Secrets Manager, SSM and STS
    // alike: "The security token included in the request is invalid."
    let moto_words = ["security token", "is invalid"];
    let dir = tempfile::tempdir().unwrap();
    let c = base(dir.path())
        .env("AWS_ENDPOINT_URL", &m.endpoint())
        .env("AWS_ACCESS_KEY_ID", "AKIAUNKNOWNKEY000000")
        .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY);
    let (done, log) = run_traced(c.clone(), dir.path(), &HANDLES, DEADLINE);
    for h in HANDLES {
        assert!(!done.error(h).is_empty());
    }
    for text in [done.stdout_str(), &done.stderr, &log] {
        assert_no_leak("the run", text, &moto_words);
    }
    // Its answer is XML, which the JSON services cannot read: the status
    // says enough.
    assert_eq!(done.error("hb/a;k"), "hb/a: access denied");
    // The same refusal from STS, for a role to assume.
    let c = c.args(["--role-arn", "arn:aws:iam::123456789012:role/hostile"]);
    let (done, log) = run_traced(c, dir.path(), &HANDLES, DEADLINE);
    for text in [done.stdout_str(), &done.stderr, &log] {
        assert_no_leak("the run", text, &moto_words);
    }
    all_failed(
        &done,
        &HANDLES,
        // moto nests its STS error one level deeper than STS does: no code.
        "STS AssumeRole: access denied",
    );
}

#[test]
fn credential_sources_that_refuse_are_reported_without_their_body() {
    let json_error = json!({"Code": BODY_MARKER, "Message": BODY_MARKER}).to_string();
    let sts_xml = format!(
        "<ErrorResponse><Error><Type>Sender</Type><Code>{BODY_MARKER}</Code>\
         <Message>{BODY_MARKER}</Message></Error></ErrorResponse>"
    );
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_private(&token, "hostile-web-identity-token-0123");
    let role = "arn:aws:iam::123456789012:role/hostile";
    // (what answers, how the binary is pointed at it, what the error says)
    type Setup = fn(Cmd, &str, &Path, &str) -> Cmd;
    fn web_identity(c: Cmd, url: &str, token: &Path, role: &str) -> Cmd {
        c.env("AWS_ENDPOINT_URL", url)
            .env("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
            .env("AWS_ROLE_ARN", role)
    }
    fn container(c: Cmd, url: &str, _: &Path, _: &str) -> Cmd {
        c.env(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI",
            &format!("{url}/creds"),
        )
    }
    let cases: [(Fault, Setup, &str); 6] = [
        (
            answer(403, &sts_xml),
            |c, url, _, role| {
                c.env("AWS_ENDPOINT_URL", url)
                    .env("AWS_ACCESS_KEY_ID", moto::ACCESS_KEY_ID)
                    .env("AWS_SECRET_ACCESS_KEY", moto::SECRET_ACCESS_KEY)
                    .args(["--role-arn", role])
            },
            "STS AssumeRole: AWS refused the request (an error code this backend does not know",
        ),
        (
            Fault::aws(400, "InvalidIdentityToken", None),
            web_identity,
            "no AWS credentials found",
        ),
        (
            answer(400, &sts_xml),
            web_identity,
            "STS AssumeRoleWithWebIdentity: AWS refused the request",
        ),
        (
            answer(500, &json_error),
            container,
            "no AWS credentials found",
        ),
        (
            answer(200, &json_error),
            container,
            "no AWS credentials found",
        ),
        (
            answer(404, &json_error),
            |c, url, _, _| {
                c.env_remove("AWS_EC2_METADATA_DISABLED")
                    .env("AWS_EC2_METADATA_SERVICE_ENDPOINT", url)
            },
            "no AWS credentials found",
        ),
    ];
    for (fault, setup, want) in cases {
        let proxy = FaultProxy::always(fault);
        let c = setup(base(dir.path()), &proxy.url(), &token, role);
        let done = kept(c, dir.path(), &HANDLES, &[]);
        all_failed(&done, &HANDLES, want);
        assert!(
            proxy.faulted() > 0,
            "{want}: nothing asked the fault server"
        );
    }
}

// ------------------------------------------------------------- userinfo

/// Passwords of every shape; each is made of the fragments listed with
/// it, none of which may show anywhere.
const PASSWORDS: [(&str, &[&str]); 4] = [
    ("Pw-kq7Zx-vT9mW", &["kq7Zx"]),
    ("kq7Zx@vT9mW", &["kq7Zx", "vT9mW"]),
    ("kq7Zx/vT9mW", &["kq7Zx", "vT9mW"]),
    ("kq7Zx%2FvT9mW", &["kq7Zx", "vT9mW"]),
];

/// URLs carrying `password`: refused port, a port out of range, IPv6, a
/// space in the host, no scheme.
fn shapes(password: &str) -> Vec<String> {
    let closed = free_port();
    vec![
        format!("http://user:{password}@127.0.0.1:{closed}"),
        format!("http://user:{password}@127.0.0.1:99999"),
        format!("http://user:{password}@[::1]:{closed}/x"),
        format!("https://{password}@localhost:{closed}"),
        format!("http://user:{password}@bad host:{closed}"),
        format!("user:{password}@127.0.0.1:{closed}"),
    ]
}

/// Runs `cmd` with a trace log; no fragment shows in stdout, stderr or the
/// log, and the process answered (exit 0, every handle an error) or
/// refused its configuration (exit 2) without hanging.
fn no_fragment(cmd: Cmd, dir: &Path, fragments: &[&str], what: &str) {
    let (done, log) = run_traced(cmd, dir, &HANDLES, DEADLINE);
    match done.code() {
        0 => {
            for h in HANDLES {
                assert!(!done.error(h).is_empty(), "{what}");
            }
        }
        2 => assert!(done.stdout.is_empty(), "{what}: {done}"),
        _ => panic!("{what}: {done}"),
    }
    assert!(
        done.elapsed < Duration::from_secs(DEADLINE),
        "{what}: {done}"
    );
    assert_no_leak(&format!("stdout ({what})"), done.stdout_str(), fragments);
    assert_no_leak(&format!("stderr ({what})"), &done.stderr, fragments);
    assert_no_leak(&format!("the log ({what})"), &log, fragments);
}

#[test]
fn a_password_in_the_endpoint_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aws.yaml");
    for (password, fragments) in PASSWORDS {
        for url in shapes(password) {
            let c = keyed(dir.path());
            no_fragment(
                c.clone().env("AWS_ENDPOINT_URL", &url),
                dir.path(),
                fragments,
                &format!("AWS_ENDPOINT_URL {url}"),
            );
            no_fragment(
                c.clone().env("AWS_ENDPOINT_URL_SECRETS_MANAGER", &url),
                dir.path(),
                fragments,
                &format!("AWS_ENDPOINT_URL_SECRETS_MANAGER {url}"),
            );
            no_fragment(
                c.clone().args(["--endpoint-url", &url]),
                dir.path(),
                fragments,
                &format!("--endpoint-url {url}"),
            );
            write_private(&config, &format!("endpoint_url: {}\n", json!(url)));
            no_fragment(
                c.args(["--config", config.to_str().unwrap()]),
                dir.path(),
                fragments,
                &format!("endpoint_url {url}"),
            );
        }
    }
}

#[test]
fn a_password_in_a_proxy_variable_never_shows() {
    let dir = tempfile::tempdir().unwrap();
    // A proxy that refuses every CONNECT with a body of its own.
    let refusing = FaultProxy::always(answer(407, &format!("{BODY_MARKER} proxy says no")));
    let refusing = refusing.url().replace("http://", "");
    for (password, fragments) in PASSWORDS {
        let mut urls = shapes(password);
        urls.push(format!("http://user:{password}@{refusing}"));
        for url in urls {
            for (var, endpoint) in [
                ("HTTPS_PROXY", "https://secretsmanager.proxied.invalid"),
                ("https_proxy", "https://secretsmanager.proxied.invalid"),
                ("HTTP_PROXY", "http://secretsmanager.proxied.invalid"),
                ("ALL_PROXY", "https://secretsmanager.proxied.invalid"),
            ] {
                let c = keyed(dir.path())
                    .env("AWS_ENDPOINT_URL", endpoint)
                    .env(var, &url);
                let mut planted = fragments.to_vec();
                planted.push(BODY_MARKER);
                no_fragment(c, dir.path(), &planted, &format!("{var} {url}"));
            }
        }
    }
}

// --------------------------------------------------------- special files

/// What can be planted at a path: each must be refused at once.
fn plant(kind: &str, path: &Path) {
    match kind {
        "fifo" => mkfifo(path),
        "device" => std::os::unix::fs::symlink("/dev/zero", path).unwrap(),
        "socket" => {
            // The listener goes away with the test; its file stays.
            let l = std::os::unix::net::UnixListener::bind(path).unwrap();
            std::mem::forget(l);
        }
        "symlinked fifo" => {
            let target = path.with_extension("target");
            mkfifo(&target);
            std::os::unix::fs::symlink(&target, path).unwrap();
        }
        "directory" => std::fs::create_dir(path).unwrap(),
        _ => unreachable!("{kind}"),
    }
}

const KINDS: [&str; 5] = ["fifo", "device", "socket", "symlinked fifo", "directory"];

/// Runs `cmd` and checks that every handle failed at once naming `path`.
fn refused_at_once(cmd: Cmd, dir: &Path, path: &Path, kind: &str, what: &str) {
    let done = kept(cmd, dir, &HANDLES, &[]);
    assert!(done.elapsed < NO_WAIT, "{what} ({kind}): waited: {done}");
    let cause = match kind {
        "directory" => "is a directory",
        // Opening a socket fails before anything can be checked.
        "socket" => "No such device or address",
        _ => "not a regular file",
    };
    let shown = path.display().to_string();
    for h in HANDLES {
        let e = done.error(h);
        assert!(
            e.contains(&shown) && e.contains(cause) && e.contains(what),
            "{what} ({kind}): {h}: {e}"
        );
    }
}

#[test]
fn special_files_named_by_the_environment_are_refused_at_once() {
    let vars = [
        ("AWS_SHARED_CREDENTIALS_FILE", "AWS shared credentials file"),
        ("AWS_CONFIG_FILE", "AWS config file"),
        ("AWS_WEB_IDENTITY_TOKEN_FILE", "web identity token file"),
        (
            "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            "container authorization token file",
        ),
    ];
    for kind in KINDS {
        for (var, what) in vars {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("planted");
            plant(kind, &path);
            // Credentials in the environment too: the files are read
            // (and refused) whatever the chain would have used.
            let c = keyed(dir.path())
                .env(
                    "AWS_ENDPOINT_URL",
                    &format!("http://127.0.0.1:{}", free_port()),
                )
                .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r")
                .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:1/c")
                .env(var, path.to_str().unwrap());
            refused_at_once(c, dir.path(), &path, kind, what);
        }
    }
}

#[test]
fn special_files_in_the_home_directory_are_refused_at_once() {
    for kind in KINDS {
        for (name, what) in [
            ("credentials", "AWS shared credentials file"),
            ("config", "AWS config file"),
        ] {
            let home = tempfile::tempdir().unwrap();
            std::fs::create_dir(home.path().join(".aws")).unwrap();
            let path = home.path().join(".aws").join(name);
            plant(kind, &path);
            refused_at_once(keyed(home.path()), home.path(), &path, kind, what);
        }
    }
}

#[test]
fn a_token_file_named_by_a_profile_is_refused_at_once() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let token = dir.path().join("token");
        plant(kind, &token);
        let config = dir.path().join("config");
        write_private(
            &config,
            &format!(
                "[profile irsa]\nrole_arn = arn:aws:iam::123456789012:role/r\n\
                 web_identity_token_file = {}\n",
                token.display()
            ),
        );
        let c = base(dir.path())
            .env("AWS_CONFIG_FILE", config.to_str().unwrap())
            .args(["--profile", "irsa"]);
        refused_at_once(c, dir.path(), &token, kind, "web identity token file");
    }
}

#[test]
fn a_group_writable_credentials_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("credentials");
    write_with_mode(&path, "[default]\naws_access_key_id = AKIA\n", 0o664);
    let c = keyed(dir.path()).env("AWS_SHARED_CREDENTIALS_FILE", path.to_str().unwrap());
    let done = kept(c, dir.path(), &HANDLES, &[]);
    all_failed(
        &done,
        &HANDLES,
        "is writable by group or others (mode 0664)",
    );
}

#[test]
fn a_special_file_as_the_config_is_refused_at_once() {
    for kind in KINDS {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("aws.yaml");
        plant(kind, &path);
        let done = keyed(dir.path())
            .args(["--config", path.to_str().unwrap()])
            .stdin(backend_tests::payload(&HANDLES))
            .run();
        done.expect_code(2);
        assert!(done.elapsed < NO_WAIT, "{kind}: waited: {done}");
        assert!(
            done.stderr.contains(&path.display().to_string()),
            "{kind}: {done}"
        );
    }
}

// --------------------------------------------------- held credentials

static MOTO: Shared<Moto> = Shared::new();

const SESSION_TOKEN: &str = "own-session-token-4f1c9a0b7e";
const CONFIG_KEY: &str = "own-config-secret-key-77d2";
const PROFILE_KEY: &str = "own-profile-secret-key-c3e8";
const TOKEN: &str = "own-web-identity-jwt-9b5d1e";
const ECS_KEY: &str = "own-container-secret-key-a61f";

/// moto with a secret (or parameter) holding each credential the tests
/// give the binary, alone and inside JSON.
fn held_moto() -> Arc<Moto> {
    MOTO.get(|| {
        let m = Moto::start();
        let seed = Seed::new(&m);
        for (name, value) in [
            ("own/env-key", moto::SECRET_ACCESS_KEY),
            ("own/session", SESSION_TOKEN),
            ("own/config-key", CONFIG_KEY),
            ("own/profile-key", PROFILE_KEY),
            ("own/token", TOKEN),
            ("own/ecs-key", ECS_KEY),
        ] {
            seed.secret(name, value);
        }
        seed.secret(
            "own/json",
            &json!({"k": moto::SECRET_ACCESS_KEY, "other": "a-fine-value"}).to_string(),
        );
        seed.parameter("/own/key", moto::SECRET_ACCESS_KEY, "SecureString");
        seed.secret("own/fine", "a-fine-value");
        m
    })
}

/// Each of `handles` refused as a credential; `own/fine` resolves.
fn refused(done: &Done, handles: &[&str]) {
    for h in handles {
        assert_eq!(done.error(h), CREDENTIAL_REFUSED, "{h}");
    }
    assert_eq!(done.value("own/fine"), "a-fine-value");
}

#[test]
fn the_keys_of_the_environment_and_of_the_files_are_never_a_reply() {
    let m = held_moto();
    let dir = tempfile::tempdir().unwrap();
    let credentials = dir.path().join("credentials");
    write_private(
        &credentials,
        &format!("[unused]\naws_access_key_id = AKIAX\naws_secret_access_key = {PROFILE_KEY}\n"),
    );
    let token = dir.path().join("token");
    write_private(&token, TOKEN);
    let c = keyed(dir.path())
        .env("AWS_ENDPOINT_URL", &m.endpoint())
        .env("AWS_SESSION_TOKEN", SESSION_TOKEN)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap())
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
        .env("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/r");
    let handles = [
        "own/env-key",
        "own/session",
        "own/profile-key",
        "own/token",
        "own/json",
        "own/json;k",
        "ssm:/own/key",
        "own/json;other",
        "own/fine",
    ];
    let done = kept(c, dir.path(), &handles, &[]);
    refused(&done, &handles[..7]);
    assert_eq!(done.value("own/json;other"), "a-fine-value");
}

#[test]
fn static_keys_of_the_config_are_never_a_reply() {
    let m = held_moto();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("aws.yaml");
    write_private(
        &config,
        &format!(
            "endpoint_url: {}\naccess_key_id: AKIACONFIG\nsecret_access_key: {CONFIG_KEY}\n",
            m.endpoint()
        ),
    );
    let c = base(dir.path()).args(["--config", config.to_str().unwrap()]);
    let done = kept(
        c,
        dir.path(),
        &["own/config-key", "own/fine"],
        &[CONFIG_KEY],
    );
    refused(&done, &["own/config-key"]);
}

#[test]
fn credentials_resolved_at_run_time_are_never_a_reply() {
    let m = held_moto();
    let dir = tempfile::tempdir().unwrap();
    // Container credentials, served by a fault server answering every
    // request with them; the secrets come from moto (which takes any key).
    let creds = json!({
        "AccessKeyId": "AKIACONTAINER",
        "SecretAccessKey": ECS_KEY,
        "Token": SESSION_TOKEN,
        "Expiration": "2099-01-01T00:00:00Z",
    });
    let ecs = FaultProxy::always(answer(200, &creds.to_string()));
    let c = base(dir.path()).env("AWS_ENDPOINT_URL", &m.endpoint()).env(
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        &format!("{}/creds", ecs.url()),
    );
    let handles = ["own/ecs-key", "own/session", "own/fine"];
    let done = kept(c, dir.path(), &handles, &[ECS_KEY, SESSION_TOKEN]);
    refused(&done, &handles[..2]);
    assert!(ecs.faulted() > 0, "the container endpoint was not asked");
}

#[test]
fn web_identity_works_through_the_tokens_read_by_the_backend() {
    // moto's STS takes any token: web identity from the environment and
    // from a profile gets credentials, and the token is held.
    let m = held_moto();
    let dir = tempfile::tempdir().unwrap();
    let token = dir.path().join("token");
    write_private(&token, TOKEN);
    let role = "arn:aws:iam::123456789012:role/irsa";
    let env = base(dir.path())
        .env("AWS_ENDPOINT_URL", &m.endpoint())
        .env("AWS_WEB_IDENTITY_TOKEN_FILE", token.to_str().unwrap())
        .env("AWS_ROLE_ARN", role);
    let handles = ["own/token", "own/fine"];
    refused(&kept(env, dir.path(), &handles, &[TOKEN]), &handles[..1]);
    let config = dir.path().join("config");
    write_private(
        &config,
        &format!(
            "[profile irsa]\nrole_arn = {role}\nweb_identity_token_file = {}\n",
            token.display()
        ),
    );
    let profile = base(dir.path())
        .env("AWS_ENDPOINT_URL", &m.endpoint())
        .env("AWS_CONFIG_FILE", config.to_str().unwrap())
        .args(["--profile", "irsa"]);
    refused(
        &kept(profile, dir.path(), &handles, &[TOKEN]),
        &handles[..1],
    );
}

#[test]
fn a_readable_file_holding_keys_is_warned_about() {
    const WARNING: &str = "readable by every user";
    let dir = tempfile::tempdir().unwrap();
    let endpoint = format!("http://127.0.0.1:{}", free_port());
    let run = |c: Cmd| c.stdin(backend_tests::payload(&["w/a"])).run();
    // The config: static keys, a session token or an external id.
    let config = dir.path().join("aws.yaml");
    for (text, holds) in [
        (
            format!(
                "endpoint_url: {endpoint}\naccess_key_id: AKIAX\nsecret_access_key: {CONFIG_KEY}\n"
            ),
            true,
        ),
        (
            format!(
                "endpoint_url: {endpoint}\nrole_arn: arn:aws:iam::1:role/r\nexternal_id: ext-{CONFIG_KEY}\n"
            ),
            true,
        ),
        (
            format!("endpoint_url: {endpoint}\nregion: eu-west-1\n"),
            false,
        ),
    ] {
        write_private(&config, &text);
        let c = keyed(dir.path()).args(["--config", config.to_str().unwrap()]);
        let quiet = run(c.clone());
        assert!(!quiet.stderr.contains(WARNING), "0600: {quiet}");
        set_mode(&config, 0o644);
        let loud = run(c);
        assert_eq!(loud.stderr.contains(WARNING), holds, "0644 {text}: {loud}");
        assert_no_leak("stderr", &loud.stderr, &[CONFIG_KEY]);
    }
    // The shared credentials file.
    let credentials = dir.path().join("credentials");
    write_private(
        &credentials,
        &format!("[default]\naws_access_key_id = AKIAX\naws_secret_access_key = {PROFILE_KEY}\n"),
    );
    set_mode(&credentials, 0o644);
    let done = run(base(dir.path())
        .env("AWS_ENDPOINT_URL", &endpoint)
        .env("AWS_SHARED_CREDENTIALS_FILE", credentials.to_str().unwrap()));
    assert!(done.stderr.contains(WARNING), "{done}");
    assert!(done.error("w/a").contains("cannot connect"), "{done}");
    assert_no_leak("stderr", &done.stderr, &[PROFILE_KEY]);
}
