//! The hostile review of the backend's own credential chain (chain.rs,
//! profile.rs), through the real binary: a chain that must end where the
//! SDK's ends, never going on to another identity.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use backend_tests::Cmd;
use backend_tests::files::write_private;

use crate::common::{bare, run};

/// A profile named (by `--profile`, `AWS_PROFILE` or a `source_profile`)
/// that is in neither file ends the chain, as the SDK's `MissingProfile`
/// does, and so does `AWS_WEB_IDENTITY_TOKEN_FILE` without `AWS_ROLE_ARN`
/// (the SDK's "AWS_ROLE_ARN environment variable must be set"): both were
/// "not loaded", and the chain went on to the container credentials (here
/// a listener), using the identity of whatever machine it ran on instead
/// of the one the operator named.
#[test]
fn a_profile_or_a_role_that_is_not_there_ends_the_chain() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    write_private(
        &config,
        "[profile ops]\nrole_arn = arn:aws:iam::123456789012:role/r\nsource_profile = gone\n",
    );
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let container = format!(
        "http://127.0.0.1:{}/creds",
        listener.local_addr().unwrap().port()
    );
    const TOKEN_FILE: (&str, &str) = ("AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token");
    let cases: [(&[(&str, &str)], &str); 4] = [
        (&[("AWS_PROFILE", "opps")], "profile 'opps' is in neither"),
        (
            &[("AWS_PROFILE", "ops")],
            "its source_profile 'gone' is in neither",
        ),
        // The SDK's web identity link: the token file without the role is
        // invalid too (no profile selected here: `default` is not there).
        (
            &[TOKEN_FILE],
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN",
        ),
        // A blank AWS_PROFILE is unset: `default`, not there, the next
        // link (the web identity's, which ends the chain for its reason).
        (
            &[("AWS_PROFILE", " "), TOKEN_FILE],
            "AWS_WEB_IDENTITY_TOKEN_FILE is set but AWS_ROLE_ARN",
        ),
    ];
    for (how, said) in cases {
        let mut cmd = bare(dir.path())
            .args(["--timeout", "5"])
            .env("AWS_REGION", "eu-west-1")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("AWS_CONFIG_FILE", config.to_str().unwrap())
            .env("AWS_CONTAINER_CREDENTIALS_FULL_URI", &container);
        for (k, v) in how {
            cmd = cmd.env(k, v);
        }
        let done = run(&cmd, &["a"]);
        let e = done.error("a");
        assert!(
            e.starts_with("a: invalid AWS credentials configuration: ") && e.contains(said),
            "{how:?}: {e}"
        );
        std::thread::sleep(Duration::from_millis(50));
        assert!(
            listener.accept().is_err(),
            "{how:?}: the container endpoint was asked"
        );
    }
}

/// The tunnels (`CONNECT host:port`) the binary asks an HTTPS proxy for,
/// for `cmd` pointed at a proxy that refuses every one.
fn tunnels(cmd: Cmd, handles: &[&str]) -> Vec<String> {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let proxy = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let record = Arc::clone(&seen);
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut line = String::new();
            if BufReader::new(&stream).read_line(&mut line).is_ok() {
                record.lock().unwrap().push(line.trim().to_owned());
            }
            let _ = stream.write_all(b"HTTP/1.1 403 Forbidden\r\ncontent-length: 0\r\n\r\n");
        }
    });
    run(&cmd.env("HTTPS_PROXY", &proxy), handles);
    // Each once, however many attempts.
    let mut seen = seen.lock().unwrap().clone();
    seen.dedup();
    seen
}

/// The binary with static keys in the environment and `config` as the
/// AWS config file, no metadata service.
fn keyed(home: &Path, config: &Path) -> Cmd {
    bare(home)
        .args(["--timeout", "5"])
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_CONFIG_FILE", config.to_str().unwrap())
        .env("AWS_ACCESS_KEY_ID", "AKIAREVIEW")
        .env("AWS_SECRET_ACCESS_KEY", "review-secret-key")
}

/// The profile's `use_fips_endpoint` (and `use_dualstack_endpoint`) are
/// read when the variable is unset, as the SDK reads them, for the
/// services and for STS: they were ignored, and a FIPS-only host's
/// requests went to the standard endpoints.
#[test]
fn the_profiles_fips_setting_reaches_the_services_and_sts() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    write_private(
        &config,
        "[default]\nregion = us-east-1\nuse_fips_endpoint = true\nuse_dualstack_endpoint = false\n",
    );
    let cmd = || keyed(dir.path(), &config);
    assert_eq!(
        tunnels(cmd(), &["a"]),
        ["CONNECT secretsmanager-fips.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
    assert_eq!(
        tunnels(cmd(), &["ssm:/a"]),
        ["CONNECT ssm-fips.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
    assert_eq!(
        tunnels(
            cmd().args(["--role-arn", "arn:aws:iam::123456789012:role/r"]),
            &["a"]
        ),
        ["CONNECT sts-fips.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
    // The variable, set, wins over the profile.
    assert_eq!(
        tunnels(cmd().env("AWS_USE_FIPS_ENDPOINT", "false"), &["a"]),
        ["CONNECT secretsmanager.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
}

/// The profile's `ignore_configured_endpoint_urls = true` is read when
/// `AWS_IGNORE_CONFIGURED_ENDPOINT_URLS` is unset, as the SDK reads it:
/// the endpoints of the variables and of the profile are then ignored
/// (they were used).
#[test]
fn the_profiles_ignore_configured_endpoint_urls_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config");
    let closed = format!("http://127.0.0.1:{}", backend_tests::free_port());
    write_private(
        &config,
        &format!(
            "[default]\nregion = us-east-1\nendpoint_url = {closed}\n\
             ignore_configured_endpoint_urls = true\n"
        ),
    );
    let cmd = || keyed(dir.path(), &config);
    assert_eq!(
        tunnels(cmd(), &["a"]),
        ["CONNECT secretsmanager.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
    assert_eq!(
        tunnels(cmd().env("AWS_ENDPOINT_URL", &closed), &["ssm:/a"]),
        ["CONNECT ssm.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
    assert_eq!(
        tunnels(
            cmd()
                .env("AWS_ENDPOINT_URL_STS", &closed)
                .args(["--role-arn", "arn:aws:iam::123456789012:role/r"]),
            &["a"]
        ),
        ["CONNECT sts.us-east-1.amazonaws.com:443 HTTP/1.1"]
    );
}
