//! `scan` and `run` show which handles are aliases of the backend's config
//! and what they stand for, never a value; the config comes from
//! `--backend-config` or, for `run`, the backend's own `--config FILE`.

use backend_tests::assert_no_leak;
use backend_tests::files::private_file;

use crate::common::{check, dummy, has_line, out};

const ALIASES: &str =
    "aliases:\n  db_password: \"secret/db;password\"\n  api_key: 'aws:prod/api;key'\n";

const CHECK: &str =
    "instances:\n  - user: ENC[plain]\n    password: ENC[db_password]\n    key: ENC[api_key]\n";

#[test]
fn scan_marks_aliases() {
    let d = tempfile::tempdir().unwrap();
    let conf = private_file(d.path(), "backend.yaml", ALIASES);
    let confd = d.path().join("conf.d");
    private_file(&confd, "db.d/conf.yaml", CHECK);
    let o = out(
        &check([
            "scan",
            confd.to_str().unwrap(),
            "--backend-config",
            conf.to_str().unwrap(),
        ]),
        0,
    );
    has_line(&o, &format!("aliases: 2 from {}", conf.display()));
    has_line(
        &o,
        "instances[0].password (line 3): ENC[db_password]  [alias of secret/db;password]",
    );
    has_line(
        &o,
        "instances[0].key (line 4): ENC[api_key]  [alias of aws:prod/api;key]",
    );
    has_line(&o, "instances[0].user (line 2): ENC[plain]");
    // Without the backend's config, nothing is said about aliases.
    let o = out(&check(["scan", confd.to_str().unwrap()]), 0);
    has_line(&o, "instances[0].password (line 3): ENC[db_password]");
    assert!(!o.contains("alias"), "{o}");
}

#[test]
fn a_backend_config_that_cannot_be_read_stops_the_check() {
    let d = tempfile::tempdir().unwrap();
    let confd = d.path().join("conf.d");
    private_file(&confd, "db.d/conf.yaml", CHECK);
    for (text, want) in [
        (
            "aliases:\n  \"db;pw\": secret/db\n",
            "aliases: 'db;pw': ';' is not allowed in an alias name",
        ),
        (
            "aliases:\n  a: b\n  b: c\n",
            "'a': its target 'b' is itself an alias",
        ),
    ] {
        let conf = private_file(d.path(), "backend.yaml", text);
        for cmd in ["scan", "run"] {
            let mut args = vec![cmd, "--backend-config", conf.to_str().unwrap()];
            if cmd == "run" {
                args.extend(["--command", "/bin/true", "x"]);
            } else {
                args.push(confd.to_str().unwrap());
            }
            let done = check(&args);
            done.expect_code(2);
            assert!(done.stderr.contains(want), "{cmd} {text:?}: {done}");
        }
    }
}

#[test]
fn run_shows_aliases_from_the_backends_arguments() {
    let d = tempfile::tempdir().unwrap();
    let b = dummy(d.path());
    let conf = private_file(d.path(), "backend.yaml", ALIASES);
    let confd = d.path().join("conf.d");
    private_file(&confd, "db.d/conf.yaml", CHECK);
    let o = out(
        &check([
            "run",
            "--command",
            b.to_str().unwrap(),
            "--arg",
            "--config",
            "--arg",
            conf.to_str().unwrap(),
            "--from",
            confd.to_str().unwrap(),
        ]),
        0,
    );
    has_line(&o, &format!("aliases: 2 from {}", conf.display()));
    // The dummy answers `decrypted_` + the target: 28 characters here.
    has_line(
        &o,
        "ok    ENC[db_password]  [alias of secret/db;password] = ****** (28 chars)",
    );
    has_line(
        &o,
        "ok    ENC[api_key]  [alias of aws:prod/api;key] = ****** (26 chars)",
    );
    has_line(&o, "ok    ENC[plain] = ****** (15 chars)");
    assert_no_leak(
        "masked output",
        &o,
        &["decrypted_secret/db;password", "decrypted_aws:prod/api;key"],
    );
}

#[test]
fn run_with_the_agent_config_finds_the_backend_config() {
    let d = tempfile::tempdir().unwrap();
    let b = dummy(d.path());
    let conf = private_file(d.path(), "backend.yaml", ALIASES);
    let agent = private_file(
        &d.path().join("agent"),
        "stackstate.yaml",
        &format!(
            "api_key: ENC[api_key]\nsecret_backend_command: {}\nsecret_backend_arguments: [\"--config={}\"]\n",
            b.display(),
            conf.display()
        ),
    );
    let o = out(
        &check([
            "run",
            "--agent-config",
            agent.to_str().unwrap(),
            "--show-values",
        ]),
        0,
    );
    has_line(&o, &format!("aliases: 2 from {}", conf.display()));
    has_line(
        &o,
        r#"ok    ENC[api_key]  [alias of aws:prod/api;key] = "decrypted_aws:prod/api;key""#,
    );
}
