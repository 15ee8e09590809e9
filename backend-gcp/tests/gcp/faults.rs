//! What drongo cannot do, injected by the fake front: CRC32C checksums,
//! 403, 429 then success, 5xx, hangs, oversized answers; configs that
//! quote no value.

use super::*;

fn run_with(fault: ApiFault, handles: &[&str]) -> (World, Done) {
    let w = World::new();
    w.google.api_fault(Some(fault));
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, handles).args(["--timeout", "10"]).run();
    done.expect_code(0);
    w.no_leaks(&done);
    (w, done)
}

#[test]
fn crc32c_is_checked() {
    let (_, done) = run_with(ApiFault::Crc32c { wrong: false }, &["db;password", "api"]);
    assert_eq!(done.value("db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("api"), API_KEY);
    let (_, done) = run_with(ApiFault::Crc32c { wrong: true }, &["db;password", "api"]);
    for h in ["db;password", "api"] {
        let e = done.error(h);
        assert!(e.contains("CRC32C") && e.contains("value withheld"), "{e}");
    }
    assert!(!done.stdout_str().contains(API_KEY), "{done}");
}

#[test]
fn permission_denied_names_the_permission() {
    let fault = ApiFault::Status {
        code: 403,
        status: "PERMISSION_DENIED".into(),
        retry_after: None,
        times: usize::MAX,
    };
    let (w, done) = run_with(fault, &["api"]);
    let e = done.error("api");
    assert!(
        e.starts_with("projects/proj-a/secrets/api/versions/latest: permission denied")
            && e.contains("secretmanager.versions.access")
            && e.contains("roles/secretmanager.secretAccessor"),
        "{e}"
    );
    assert_eq!(w.google.count("/v1/"), 1, "403 is not retried");
}

#[test]
fn quota_is_retried_within_the_deadline() {
    let fault = ApiFault::Status {
        code: 429,
        status: "RESOURCE_EXHAUSTED".into(),
        retry_after: None,
        times: 2,
    };
    let (w, done) = run_with(fault, &["api"]);
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert_eq!(w.google.count("/v1/"), 3);
    let fault = ApiFault::Status {
        code: 503,
        status: "UNAVAILABLE".into(),
        retry_after: None,
        times: usize::MAX,
    };
    let (_, done) = run_with(fault, &["api"]);
    let e = done.error("api");
    assert!(e.contains("HTTP 503 UNAVAILABLE"), "{e}");
    assert!(done.elapsed < Duration::from_secs(10), "{done}");
}

#[test]
fn a_hanging_api_times_out_per_handle() {
    let w = World::new();
    w.google.api_fault(Some(ApiFault::Hang));
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, &["api"]).args(["--timeout", "2"]).run();
    done.expect_code(0);
    assert!(done.elapsed < Duration::from_secs(2), "{done}");
    assert!(done.error("api").contains("timed out"), "{done}");
    // The version is named once, not once per layer.
    assert_eq!(
        done.error("api"),
        format!("projects/{PROJECT}/secrets/api/versions/latest: timed out after 2s"),
        "{done}"
    );
    w.no_leaks(&done);
}

#[test]
fn an_answer_over_the_bound_is_refused() {
    let w = World::new();
    let big = "B".repeat(200 * 1024);
    let d = drongo();
    if d.request("GET", &format!("/v1/projects/{PROJECT}/secrets/huge"), None)
        .is_none_or(|(code, _)| code != 200)
    {
        d.put(PROJECT, "huge", big.as_bytes());
    }
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, &["huge", "api"]).run();
    let e = done.error("huge");
    assert!(e.contains("larger than"), "{e}");
    assert_eq!(done.value("api"), API_KEY);
    assert!(!done.stdout_str().contains(&big[..1000]));
}

#[test]
fn configs_quote_no_values() {
    backend_tests::config_quotes_no_value(
        BIN,
        &[
            "endpoint: {v}\n",
            "location: {v}\n",
            "concurrency: {v}\n",
            "gcp_session: {v}\n",
        ],
        "x",
    );
    backend_tests::config_bomb_is_refused(BIN);
}
