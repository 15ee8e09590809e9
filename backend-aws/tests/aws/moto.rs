//! End-to-end: the real binary against a real moto server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backend_tests::assert_no_leak;
use backend_tests::moto::{self, Moto};

use crate::common::{Seed, cmd, run};

const DB: &str =
    r#"{"user":"admin","password":"s3cr3t-pw","port":5432,"nested":{"key":"deep-value"}}"#;

#[test]
fn secrets_by_name_arn_key_pointer_and_version() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    let arn = seed.secret("prod/db", DB);
    seed.secret("plain", "just-text-value");
    seed.secret("staged", r#"{"password":"old-pw"}"#);
    let new_id = seed.put("staged", r#"{"password":"new-pw"}"#);
    seed.binary("bin/text", b"binary-but-utf8");
    seed.binary("bin/raw", &[0xff, 0xfe, 0x00, 0x80]);
    seed.secret("doomed", "gone-soon");
    seed.delete("doomed");

    moto.reset_calls();
    let c = cmd(&moto, home.path());
    let partial_arn = &arn[..arn.len() - 7];
    let handles = [
        "prod/db;password",
        "prod/db;port",
        "prod/db;/nested/key",
        "prod/db",
        "prod/db;",
        &format!("{arn};user"),
        &format!("{partial_arn};user"),
        "plain",
        "plain;key",
        "staged;password",
        "staged;password;AWSCURRENT",
        "staged;password;AWSPREVIOUS",
        &format!("staged;password;{new_id}"),
        "staged;;AWSPREVIOUS",
        "staged;password;NOSUCHSTAGE",
        "bin/text",
        "bin/raw",
        "missing/secret",
        "missing/secret;password",
        "prod/db;passwd",
        "doomed",
        "has space",
    ];
    let done = run(&c, &handles);
    assert_eq!(done.value("prod/db;password"), "s3cr3t-pw");
    assert_eq!(done.value("prod/db;port"), "5432");
    assert_eq!(done.value("prod/db;/nested/key"), "deep-value");
    assert_eq!(done.value("prod/db"), DB);
    assert_eq!(done.value("prod/db;"), DB);
    assert_eq!(done.value(&format!("{arn};user")), "admin");
    assert_eq!(done.value(&format!("{partial_arn};user")), "admin");
    assert_eq!(done.value("plain"), "just-text-value");
    let e = done.error("plain;key");
    assert!(
        e.contains("plain: no key 'key'") && e.contains("not JSON"),
        "{e}"
    );
    assert_eq!(done.value("staged;password"), "new-pw");
    assert_eq!(done.value("staged;password;AWSCURRENT"), "new-pw");
    assert_eq!(done.value("staged;password;AWSPREVIOUS"), "old-pw");
    assert_eq!(done.value(&format!("staged;password;{new_id}")), "new-pw");
    assert_eq!(
        done.value("staged;;AWSPREVIOUS"),
        r#"{"password":"old-pw"}"#
    );
    let e = done.error("staged;password;NOSUCHSTAGE");
    assert!(e.starts_with("staged (NOSUCHSTAGE): "), "{e}");
    assert_eq!(done.value("bin/text"), "binary-but-utf8");
    let e = done.error("bin/raw");
    assert!(e.contains("bin/raw: the secret is binary (4 bytes)"), "{e}");
    assert_eq!(done.error("missing/secret"), "missing/secret: not found");
    assert_eq!(
        done.error("missing/secret;password"),
        "missing/secret: not found"
    );
    let e = done.error("prod/db;passwd");
    assert_eq!(
        e,
        "prod/db: no key 'passwd' (fields: nested, password, port, user)"
    );
    let e = done.error("doomed");
    assert!(
        e.contains("doomed: ") && e.contains("marked for deletion"),
        "{e}"
    );
    let e = done.error("has space");
    assert!(
        e.starts_with("has space: a secret name or ARN has only"),
        "{e}"
    );
    // Values never reach stderr, and a successful-enough call is quiet.
    assert_no_leak(
        "stderr",
        &done.stderr,
        &[
            "s3cr3t-pw",
            "deep-value",
            "old-pw",
            "new-pw",
            "binary-but-utf8",
        ],
    );
    // One batch for the current versions (names, full and partial ARNs,
    // AWSCURRENT all answered by it); the 3 other distinct (secret,
    // version) pairs one by one, each once however many handles share it.
    assert_eq!(
        moto.count("secretsmanager.BatchGetSecretValue"),
        1,
        "{:?}",
        moto.calls()
    );
    assert_eq!(
        moto.count("secretsmanager.GetSecretValue"),
        3,
        "{:?}",
        moto.calls()
    );
}

#[test]
fn hundreds_of_handles_cost_a_few_batch_requests() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    let n = 120;
    for i in 0..n {
        seed.secret(
            &format!("many/s{i:03}"),
            &format!(r#"{{"user":"u{i}","password":"p{i}"}}"#),
        );
    }
    let mut handles = Vec::new();
    for i in 0..n {
        handles.push(format!("many/s{i:03};user"));
        handles.push(format!("many/s{i:03};password"));
    }
    handles.push("many/absent;user".into());
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    moto.reset_calls();
    let done = run(&cmd(&moto, home.path()), &refs);
    for i in 0..n {
        assert_eq!(done.value(&format!("many/s{i:03};user")), format!("u{i}"));
        assert_eq!(
            done.value(&format!("many/s{i:03};password")),
            format!("p{i}")
        );
    }
    assert_eq!(done.error("many/absent;user"), "many/absent: not found");
    // 121 distinct secrets, 20 per request: 7 requests, none one by one.
    assert_eq!(
        moto.count("secretsmanager.BatchGetSecretValue"),
        7,
        "{:?}",
        moto.calls()
    );
    assert_eq!(moto.count("secretsmanager.GetSecretValue"), 0);
    assert_eq!(moto.calls().len(), 7, "{:?}", moto.calls());
}

#[test]
fn without_batch_get_each_secret_is_fetched_once() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    for i in 0..25 {
        seed.secret(
            &format!("one/s{i}"),
            &format!(r#"{{"k":"v{i}","j":"w{i}"}}"#),
        );
    }
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("aws.yaml");
    std::fs::write(&conf, "batch_get: false\nconcurrency: 4\n").unwrap();
    let mut handles = Vec::new();
    for i in 0..25 {
        handles.push(format!("one/s{i};k"));
        handles.push(format!("one/s{i};j"));
    }
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    moto.reset_calls();
    let done = run(
        &cmd(&moto, home.path()).args(["--config", conf.to_str().unwrap()]),
        &refs,
    );
    for i in 0..25 {
        assert_eq!(done.value(&format!("one/s{i};j")), format!("w{i}"));
    }
    assert_eq!(moto.count("secretsmanager.GetSecretValue"), 25);
    assert_eq!(moto.count("secretsmanager.BatchGetSecretValue"), 0);
}

#[test]
fn ssm_parameters_in_batches_of_ten() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    for i in 0..12 {
        seed.parameter(&format!("/app/plain{i}"), &format!("plain-{i}"), "String");
        seed.parameter(
            &format!("/app/secure{i}"),
            &format!("secure-{i}"),
            "SecureString",
        );
    }
    seed.parameter("/app/json", r#"{"password":"pj","port":1}"#, "SecureString");
    seed.parameter("noslash", "top-level", "String");
    let mut handles: Vec<String> = (0..12)
        .flat_map(|i| [format!("ssm:/app/plain{i}"), format!("ssm:/app/secure{i}")])
        .collect();
    handles.extend(
        [
            "ssm:/app/json;password",
            "ssm:/app/json;/port",
            "ssm:/app/plain0;key",
            "ssm:noslash",
            "ssm:/app/missing",
            "arn:aws:ssm:us-east-1:123456789012:parameter/app/secure3",
        ]
        .map(String::from),
    );
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    moto.reset_calls();
    let done = run(&cmd(&moto, home.path()), &refs);
    for i in 0..12 {
        assert_eq!(
            done.value(&format!("ssm:/app/plain{i}")),
            format!("plain-{i}")
        );
        assert_eq!(
            done.value(&format!("ssm:/app/secure{i}")),
            format!("secure-{i}")
        );
    }
    assert_eq!(done.value("ssm:/app/json;password"), "pj");
    assert_eq!(done.value("ssm:/app/json;/port"), "1");
    let e = done.error("ssm:/app/plain0;key");
    assert!(e.contains("not JSON"), "{e}");
    assert_eq!(done.value("ssm:noslash"), "top-level");
    assert_eq!(
        done.error("ssm:/app/missing"),
        "ssm:/app/missing: not found"
    );
    assert_eq!(
        done.value("arn:aws:ssm:us-east-1:123456789012:parameter/app/secure3"),
        "secure-3"
    );
    assert_no_leak("stderr", &done.stderr, &["secure-1", "pj"]);
    // 29 distinct parameters, 10 per request.
    assert_eq!(
        moto.count("AmazonSSM.GetParameters"),
        3,
        "{:?}",
        moto.calls()
    );
    assert_eq!(moto.calls().len(), 3, "{:?}", moto.calls());
}

/// SSM selectors (`name:version`, `name:label`) name one version of a
/// parameter, and GetParameters answers each under the bare name with the
/// selector apart: a call asking for `/app/pw` and `/app/pw:1` together
/// must give each its own version, never the other's.
#[test]
fn parameter_versions_in_one_batch_are_not_mixed_up() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    seed.parameter("/app/pw", "old-pw-v1", "SecureString");
    seed.overwrite_parameter("/app/pw", "new-pw-v2");
    let arn = "arn:aws:ssm:us-east-1:123456789012:parameter/app/pw";
    let v1_arn = format!("{arn}:1");
    for order in [
        ["ssm:/app/pw:1", "ssm:/app/pw", "ssm:/app/pw:2"],
        ["ssm:/app/pw", "ssm:/app/pw:2", "ssm:/app/pw:1"],
    ] {
        let mut handles = order.to_vec();
        handles.extend([arn, v1_arn.as_str()]);
        let done = run(&cmd(&moto, home.path()), &handles);
        assert_eq!(done.value("ssm:/app/pw"), "new-pw-v2", "{order:?}");
        assert_eq!(done.value("ssm:/app/pw:2"), "new-pw-v2", "{order:?}");
        assert_eq!(done.value("ssm:/app/pw:1"), "old-pw-v1", "{order:?}");
        assert_eq!(done.value(arn), "new-pw-v2", "{order:?}");
        assert_eq!(done.value(&v1_arn), "old-pw-v1", "{order:?}");
    }
}

#[test]
fn assume_role_through_sts() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    let seed = Seed::new(&moto);
    seed.secret("role/secret", r#"{"k":"through-role"}"#);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("aws.yaml");
    std::fs::write(
        &conf,
        format!(
            "region: us-east-1\nendpoint_url: {}\nrole_arn: arn:aws:iam::123456789012:role/agent\n\
             external_id: ext-id-123\nsession_name: agent-test\n",
            moto.endpoint()
        ),
    )
    .unwrap();
    let done = run(
        &cmd(&moto, home.path())
            .env_remove("AWS_ENDPOINT_URL")
            .env_remove("AWS_REGION")
            .args(["--config", conf.to_str().unwrap()]),
        &["role/secret;k"],
    );
    assert_eq!(done.value("role/secret;k"), "through-role");
}

#[test]
fn a_denied_batch_call_falls_back_to_one_get_per_secret() {
    // moto checks IAM policies after the first 5 requests: the seeding.
    let moto = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "5")]);
    let home = tempfile::tempdir().unwrap();
    let v = ("Version", "2010-05-08");
    moto.query("iam", &[("Action", "CreateUser"), ("UserName", "agent"), v]);
    // GetSecretValue only, no BatchGetSecretValue. (moto checks these
    // actions against the resource "*", so per-secret resources would deny
    // everything here.)
    let policy = r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow",
        "Action":"secretsmanager:GetSecretValue","Resource":"*"}]}"#;
    moto.query(
        "iam",
        &[
            ("Action", "PutUserPolicy"),
            ("UserName", "agent"),
            ("PolicyName", "get-only"),
            ("PolicyDocument", policy),
            v,
        ],
    );
    let xml = moto.query(
        "iam",
        &[("Action", "CreateAccessKey"), ("UserName", "agent"), v],
    );
    let key_id = moto::xml_field(&xml, "AccessKeyId").unwrap().to_owned();
    let secret_key = moto::xml_field(&xml, "SecretAccessKey").unwrap().to_owned();
    let seed = Seed::new(&moto);
    seed.secret("fb/one", r#"{"k":"fallback-v1"}"#);
    seed.secret("fb/two", "fallback-v2");
    moto.reset_calls();
    let c = cmd(&moto, home.path())
        .env("AWS_ACCESS_KEY_ID", &key_id)
        .env("AWS_SECRET_ACCESS_KEY", &secret_key);
    let done = run(&c, &["fb/one;k", "fb/one", "fb/two", "fb/three"]);
    assert_eq!(done.value("fb/one;k"), "fallback-v1");
    assert_eq!(done.value("fb/one"), r#"{"k":"fallback-v1"}"#);
    assert_eq!(done.value("fb/two"), "fallback-v2");
    assert_eq!(done.error("fb/three"), "fb/three: not found");
    assert_eq!(
        moto.count("secretsmanager.BatchGetSecretValue"),
        1,
        "{:?}",
        moto.calls()
    );
    assert_eq!(moto.count("secretsmanager.GetSecretValue"), 3);
    // Without the policy's blessing, the same credentials get nothing.
    let done = run(
        &c.clone().env("AWS_SECRET_ACCESS_KEY", "wrong"),
        &["fb/one"],
    );
    assert!(done.error("fb/one").starts_with("fb/one: "), "{done}");
}

#[test]
fn static_keys_and_force_string_from_the_config() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    Seed::new(&moto).secret("cfg/db", r#"{"password":"cfg-pw"}"#);
    let dir = tempfile::tempdir().unwrap();
    let conf = dir.path().join("aws.yaml");
    std::fs::write(
        &conf,
        format!(
            "region: us-east-1\nendpoint_url: {}\naccess_key_id: {}\nsecret_access_key: {}\n\
             force_string: true\n",
            moto.endpoint(),
            moto::ACCESS_KEY_ID,
            moto::SECRET_ACCESS_KEY
        ),
    )
    .unwrap();
    let c = cmd(&moto, home.path())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_ENDPOINT_URL")
        .args(["--config", conf.to_str().unwrap()]);
    let done = run(&c, &["cfg/db;password", "ssm:/cfg/none"]);
    // force_string: the key is ignored, the whole string comes back.
    assert_eq!(done.value("cfg/db;password"), r#"{"password":"cfg-pw"}"#);
    assert_eq!(done.error("ssm:/cfg/none"), "ssm:/cfg/none: not found");
    assert_no_leak("stderr", &done.stderr, &[moto::SECRET_ACCESS_KEY]);
}

#[test]
fn arns_of_another_region_are_asked_there() {
    let moto = Moto::start();
    let home = tempfile::tempdir().unwrap();
    Seed::new(&moto).secret("here/db", r#"{"k":"here-value"}"#);
    let west = Seed::in_region(&moto, "us-west-2");
    let arn = west.secret("there/db", r#"{"k":"there-value"}"#);
    assert!(arn.contains(":us-west-2:"), "{arn}");
    west.parameter("/there/param", "there-param", "SecureString");
    let param = "arn:aws:ssm:us-west-2:123456789012:parameter/there/param";
    moto.reset_calls();
    let handles = [&format!("{arn};k"), "here/db;k", param, "ssm:/there/param"];
    let done = run(&cmd(&moto, home.path()), &handles);
    assert_eq!(done.value(&format!("{arn};k")), "there-value");
    assert_eq!(done.value("here/db;k"), "here-value");
    assert_eq!(done.value(param), "there-param");
    // By name, a parameter is looked for in the configured region only.
    assert_eq!(
        done.error("ssm:/there/param"),
        "ssm:/there/param: not found"
    );
    // One batch per region.
    assert_eq!(moto.count("secretsmanager.BatchGetSecretValue"), 2);
    assert_eq!(moto.count("AmazonSSM.GetParameters"), 2);
}
