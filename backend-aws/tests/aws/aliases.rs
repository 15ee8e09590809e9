//! Aliases through `secret-backend-aws` against moto: names Vector can
//! write standing for `;key`, JSON Pointer and `ssm:` handles, one request
//! per secret however many aliases name it (counted by a recording proxy
//! in front of moto), and targets refused when the config is loaded.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use backend_tests::assert_no_leak;
use backend_tests::fault::{Fault, FaultProxy};
use backend_tests::files::private_file;
use backend_tests::moto::Moto;

use crate::common::{Seed, bare, cmd, run};

fn config(dir: &Path, text: &str) -> PathBuf {
    private_file(dir, "aws.yaml", text)
}

#[test]
fn aliases_fetch_each_secret_once() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    seed.secret("prod/api", r#"{"key":"k-91","nested":{"other":"o-91"}}"#);
    seed.secret("prod/db", "plain-92");
    seed.parameter("/prod/param", "p-93", "SecureString");
    // Every request passes through the proxy, which counts them by kind.
    let proxy = FaultProxy::before(Fault::Garbage, 0, &moto.endpoint());
    let conf = config(
        home.path(),
        &format!(
            "endpoint_url: {}\nbatch_get: false\naliases:\n  api_key: \"prod/api;key\"\n  api.other: \"prod/api;/nested/other\"\n  key2: \"prod/api;key\"\n  db: prod/db\n  param: \"ssm:/prod/param\"\n",
            proxy.url()
        ),
    );
    let c = cmd(&moto, home.path()).args(["--config", conf.to_str().unwrap()]);
    let handles = [
        "api_key",
        "api.other",
        "key2",
        "prod/api;key",
        "db",
        "param",
    ];
    let done = run(&c, &handles);
    assert_eq!(done.reply().len(), handles.len(), "{done}");
    for h in ["api_key", "key2", "prod/api;key"] {
        assert_eq!(done.value(h), "k-91");
    }
    assert_eq!(done.value("api.other"), "o-91");
    assert_eq!(done.value("db"), "plain-92");
    assert_eq!(done.value("param"), "p-93");
    assert_no_leak(
        "stderr",
        &done.stderr,
        &["k-91", "o-91", "plain-92", "p-93"],
    );
    let count = |target: &str| {
        proxy
            .seen()
            .iter()
            .filter(|s| s.amz_target.as_deref() == Some(target))
            .count()
    };
    let seen = proxy.seen();
    assert_eq!(
        count("secretsmanager.GetSecretValue"),
        2,
        "one read of prod/api for four handles, one of prod/db: {seen:?}"
    );
    assert_eq!(count("AmazonSSM.GetParameters"), 1, "{seen:?}");
    assert_eq!(seen.len(), 3, "nothing else: {seen:?}");
}

#[test]
fn refused_targets_and_names_stop_the_run() {
    let home = tempfile::tempdir().unwrap();
    for (text, want) in [
        (
            "aliases:\n  bad: \"has space;key\"\n",
            "aliases: 'bad': the target is not a handle this backend can resolve: has space;key: a secret name or ARN has only",
        ),
        (
            "aliases:\n  p: \"ssm:\"\n",
            "aliases: 'p': the target is not a handle this backend can resolve: ",
        ),
        (
            "aliases:\n  \"ssm:x\": /x\n",
            "aliases: 'ssm:x': ':' is not allowed in an alias name",
        ),
        (
            "aliases:\n  a: 12\n",
            "aliases: 'a': the target must be a string",
        ),
        (
            "aliases:\n  a: b\n  b: c\n",
            "aliases: 'a': its target 'b' is itself an alias",
        ),
    ] {
        let conf = config(home.path(), text);
        // No AWS settings at all: the config is refused before any lookup.
        let done = run(
            &bare(home.path()).args(["--config", conf.to_str().unwrap()]),
            &["a"],
        );
        done.expect_code(2);
        assert!(done.stdout.is_empty(), "{done}");
        assert!(done.stderr.contains(want), "{text:?}: {done}");
        assert_eq!(done.stderr.lines().count(), 1, "{done}");
    }
}
