//! Handles through the binary: every form, versions and their states,
//! aliases, regions, invalid handles that send nothing, and one access per
//! (secret, version) (the bench case: 100 handles over 20 secrets).

use super::*;

#[test]
fn every_form_one_access_per_version() {
    let w = World::new();
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let handles = [
        "db;password",
        "db;user",
        "db;/nested/port",
        "db;password;1",
        "db;;1",
        "api",
        "api;;latest",
        "projects/other-proj/secrets/x",
        "projects/proj-a/secrets/db/versions/1;user",
        "missing",
        "db;nokey",
        "db;;7",
        "binary",
        "empty-ish;k",
        "bad/name",
    ];
    let done = w.cmd(&config, &handles).run();
    done.expect_code(0);
    assert_eq!(done.value("db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("db;user"), USER);
    assert_eq!(done.value("db;/nested/port"), "5432");
    assert_eq!(done.value("db;password;1"), PASSWORD_V1);
    assert!(done.value("db;;1").contains(PASSWORD_V1));
    assert_eq!(done.value("api"), API_KEY);
    assert_eq!(done.value("api;;latest"), API_KEY);
    assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
    assert_eq!(
        done.value("projects/proj-a/secrets/db/versions/1;user"),
        USER
    );
    let e = done.error("missing");
    assert!(
        e.starts_with("projects/proj-a/secrets/missing/versions/latest: not found"),
        "{e}"
    );
    let e = done.error("db;nokey");
    assert!(
        e.contains("no key 'nokey'") && e.contains("password"),
        "{e}"
    );
    assert!(!e.contains(PASSWORD), "{e}");
    assert!(done.error("db;;7").contains("not found"));
    assert!(done.error("binary").contains("not UTF-8"));
    assert!(done.error("empty-ish;k").contains("not a JSON document"));
    assert!(done.error("bad/name").contains("invalid handle"));
    // One access per distinct (secret, version), whatever the handles.
    assert_eq!(
        w.access_count(PROJECT, "db", "latest"),
        1,
        "{:?}",
        w.google.seen()
    );
    assert_eq!(w.access_count(PROJECT, "db", "1"), 1);
    assert_eq!(w.access_count(PROJECT, "api", "latest"), 1);
    assert_eq!(w.access_count(OTHER, "x", "latest"), 1);
    assert_eq!(w.google.count("/v1/"), 8, "{:?}", w.google.seen());
    // One metadata token for the call.
    assert_eq!(w.google.count("/computeMetadata/v1/instance"), 1);
    w.no_leaks(&done);
    // At the default log level an all-answered call prints nothing.
    let quiet = isolated(Cmd::new(BIN))
        .args(["--config", config.to_str().unwrap()])
        .env("HOME", w.path("home").to_str().unwrap())
        .env("GCE_METADATA_HOST", &w.google.metadata_host())
        .stdin(payload(&["api"]))
        .run();
    assert_eq!(quiet.value("api"), API_KEY, "{quiet}");
    assert!(quiet.stderr.is_empty(), "{quiet}");
}

#[test]
fn invalid_handles_send_nothing() {
    let w = World::new();
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w
        .cmd(
            &config,
            &["", "a/b", "db;k;1;x", "db;;../x", "projects/p/secrets"],
        )
        .run();
    done.expect_code(0);
    for h in ["", "a/b", "db;k;1;x", "db;;../x", "projects/p/secrets"] {
        assert!(done.error(h).contains("invalid handle"), "{h}: {done}");
    }
    assert!(w.google.seen().is_empty(), "{:?}", w.google.seen());
}

#[test]
fn versions_states_aliases_and_regions() {
    let w = World::new();
    let config = w.config(&format!("gcp_session:\n  project_id: {PROJECT}\n"));
    let done = w
        .cmd(
            &config,
            &["states;;1", "states;;2", "states", "states;;prod"],
        )
        .run();
    assert_eq!(done.value("states"), "three", "{done}");
    let e = done.error("states;;1");
    assert!(e.contains("versions/1: the version is disabled"), "{e}");
    let e = done.error("states;;2");
    assert!(e.contains("versions/2: the version is destroyed"), "{e}");
    // An alias goes to the API as it is (drongo has no aliases: 404).
    assert_eq!(w.access_count(PROJECT, "states", "prod"), 1);
    assert!(done.error("states;;prod").contains("not found"));
    w.no_leaks(&done);
    // A regional secret: the location's path (drongo has none: 404).
    let config = w.config(&format!("project_id: {PROJECT}\nlocation: europe-west4\n"));
    let conf_text = std::fs::read_to_string(&config).unwrap();
    assert!(conf_text.contains("endpoint:"));
    let done = w
        .cmd(&config, &["r", "projects/p/locations/us-east1/secrets/s"])
        .run();
    assert_eq!(
        w.google
            .count("/v1/projects/proj-a/locations/europe-west4/secrets/r/versions/latest:access"),
        1,
        "{:?}",
        w.google.seen()
    );
    assert!(done.error("r").contains("not found"), "{done}");
    let e = done.error("projects/p/locations/us-east1/secrets/s");
    assert!(e.contains("location: us-east1"), "{e}");
}

#[test]
fn aliases_resolve_to_their_targets() {
    let w = World::new();
    let config = w.config(&format!(
        "project_id: {PROJECT}\naliases:\n  db_password: db;password\n  other: projects/other-proj/secrets/x\n"
    ));
    let done = w.cmd(&config, &["db_password", "other", "db;user"]).run();
    assert_eq!(done.value("db_password"), PASSWORD, "{done}");
    assert_eq!(done.value("other"), OTHER_VALUE);
    assert_eq!(done.value("db;user"), USER);
    assert_eq!(w.access_count(PROJECT, "db", "latest"), 1);
    let bad = w.config("aliases:\n  broken: bad/name\n");
    w.cmd(&bad, &["broken"]).run().expect_code(2);
}
/// The bench case of issue 18: 100 handles over 20 secrets are one
/// token request and 20 accesses.
#[test]
fn a_hundred_handles_over_twenty_secrets() {
    let w = World::new();
    let d = drongo();
    for i in 0..20 {
        let doc: serde_json::Map<String, serde_json::Value> = (0..5)
            .map(|k| (format!("k{k}"), format!("bench-{i}-{k}").into()))
            .collect();
        let name = format!("bench-{i:02}");
        if d.request(
            "GET",
            &format!("/v1/projects/{PROJECT}/secrets/{name}"),
            None,
        )
        .is_none_or(|(code, _)| code != 200)
        {
            d.put(
                PROJECT,
                &name,
                serde_json::Value::Object(doc).to_string().as_bytes(),
            );
        }
    }
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = w.service_account("sa.json", SA_KEY);
    let config = w.config(&format!("credentials_file: {}\n", sa.display()));
    let handles: Vec<String> = (0..100)
        .map(|n| format!("bench-{:02};k{}", n / 5, n % 5))
        .collect();
    let refs: Vec<&str> = handles.iter().map(String::as_str).collect();
    let done = w.cmd(&config, &refs).run();
    for (n, h) in handles.iter().enumerate() {
        assert_eq!(
            done.value(h),
            format!("bench-{}-{}", n / 5, n % 5),
            "{done}"
        );
    }
    assert_eq!(w.google.count("/token"), 1);
    assert_eq!(w.google.count("/v1/"), 20, "{:?}", w.google.seen());
    w.no_leaks(&done);
}
