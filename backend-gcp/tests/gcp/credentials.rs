//! The credential chain through the binary: each credential type against
//! the fake token endpoint, the chain's order, the metadata server (its
//! project, a hang, none at all), proxies, and the opt-in token cache.

use super::*;

#[test]
fn service_account_key_jwt_exchange() {
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = w.service_account("sa.json", SA_KEY);
    // The project comes from the key file.
    let config = w.config(&format!("credentials_file: {}\n", sa.display()));
    let done = w.cmd(&config, &["db;password", "api"]).run();
    assert_eq!(done.value("db;password"), PASSWORD, "{done}");
    assert_eq!(done.value("api"), API_KEY);
    let grants: Vec<_> = w
        .google
        .seen()
        .into_iter()
        .filter(|s| s.grant.is_some())
        .collect();
    assert_eq!(grants.len(), 1, "{grants:?}");
    assert!(grants[0].granted);
    assert_eq!(
        grants[0].grant.as_deref(),
        Some("urn:ietf:params:oauth:grant-type:jwt-bearer")
    );
    assert_eq!(w.google.count("/computeMetadata/"), 0);
    w.no_leaks(&done);
}

#[test]
fn a_key_the_endpoint_refuses_is_named_not_shown() {
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = w.service_account("sa.json", OTHER_KEY);
    let config = w.config(&format!("credentials_file: {}\n", sa.display()));
    let done = w.cmd(&config, &["db;password"]).run();
    let e = done.error("db;password");
    assert!(
        e.contains("credentials_file")
            && e.contains(SA_EMAIL)
            && e.contains("refused the assertion (HTTP 400, invalid_grant)"),
        "{e}"
    );
    assert_eq!(w.google.count("/v1/"), 0);
    w.no_leaks(&done);
}

#[test]
fn authorized_user_from_the_gcloud_adc_file() {
    let w = World::new();
    w.google
        .add_user("client-1.apps", CLIENT_SECRET, REFRESH_TOKEN);
    let adc = serde_json::json!({
        "type": "authorized_user",
        "client_id": "client-1.apps",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "token_uri": w.google.token_uri(),
        "quota_project_id": "billed-proj",
    });
    w.write(
        "home/.config/gcloud/application_default_credentials.json",
        &adc.to_string(),
    );
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, &["api"]).run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert!(
        w.google
            .seen()
            .iter()
            .any(|s| s.grant.as_deref() == Some("refresh_token") && s.granted)
    );
    assert_eq!(w.google.count("/computeMetadata/"), 0);
    // The quota project is billed, as Google's clients do.
    let api_calls: Vec<_> = w
        .google
        .seen()
        .into_iter()
        .filter(|s| s.target.starts_with("/v1/"))
        .collect();
    assert!(
        api_calls
            .iter()
            .all(|s| s.user_project.as_deref() == Some("billed-proj")),
        "{api_calls:?}"
    );
    // CLOUDSDK_CONFIG moves the ADC file: none there, so the metadata server.
    w.google.reset_seen();
    let done = w
        .cmd(&config, &["api"])
        .env("CLOUDSDK_CONFIG", w.path("elsewhere").to_str().unwrap())
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert_eq!(w.google.count("/computeMetadata/"), 1);
    w.no_leaks(&done);
}

#[test]
fn the_chain_order() {
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let good = w.service_account("good.json", SA_KEY);
    let broken = w.write("broken.json", "{\"type\":\"service_account\"}");
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    // GOOGLE_APPLICATION_CREDENTIALS comes before the ADC file and the
    // metadata server.
    w.write(
        "home/.config/gcloud/application_default_credentials.json",
        "{\"type\":\"authorized_user\"}",
    );
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", good.to_str().unwrap())
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    // credentials_file comes before GOOGLE_APPLICATION_CREDENTIALS.
    let config = w.config(&format!(
        "project_id: {PROJECT}\ncredentials_file: {}\n",
        broken.display()
    ));
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", good.to_str().unwrap())
        .run();
    let e = done.error("api");
    assert!(
        e.contains("credentials_file") && e.contains("field client_email is missing"),
        "{e}"
    );
    // The ADC file comes before the metadata server.
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, &["api"]).run();
    let e = done.error("api");
    assert!(e.contains("gcloud ADC file"), "{e}");
    assert_eq!(w.google.count("/computeMetadata/"), 0);
    w.no_leaks(&done);
}

#[test]
fn external_account_with_impersonation() {
    let w = World::new();
    let audience =
        "//iam.googleapis.com/projects/1/locations/global/workloadIdentityPools/p/providers/x";
    w.google.add_subject(audience, SUBJECT_TOKEN);
    let subject = w.write(
        "subject.json",
        &format!("{{\"id_token\":\"{SUBJECT_TOKEN}\"}}"),
    );
    let ext = serde_json::json!({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.google.token_uri(),
        "service_account_impersonation_url": w.google.impersonation_url(),
        "credential_source": {"file": subject, "format": {"type": "json", "subject_token_field_name": "id_token"}},
    });
    let creds = w.write("ext.json", &ext.to_string());
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    let seen = w.google.seen();
    assert!(
        seen.iter().any(|s| s.grant.as_deref()
            == Some("urn:ietf:params:oauth:grant-type:token-exchange")
            && s.granted),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.target == "/impersonate" && s.granted),
        "{seen:?}"
    );
    w.no_leaks(&done);
}

#[test]
fn external_account_from_aws() {
    use backend_tests::gcp_auth::{AWS_ACCESS_KEY_ID, AWS_SECRET_KEY};
    let w = World::new();
    let audience =
        "//iam.googleapis.com/projects/3/locations/global/workloadIdentityPools/aws/providers/ec2";
    w.google.add_aws_subject(audience, AWS_ACCESS_KEY_ID);
    let imds = w.google.imds_url();
    let aws = serde_json::json!({
        "type": "external_account", "audience": audience,
        "subject_token_type": "urn:ietf:params:aws:token-type:aws4_request",
        "token_url": w.google.token_uri(),
        "credential_source": {
            "environment_id": "aws1",
            "region_url": format!("{imds}/meta-data/placement/availability-zone"),
            "url": format!("{imds}/meta-data/iam/security-credentials"),
            "regional_cred_verification_url": "https://sts.{region}.amazonaws.com?Action=GetCallerIdentity&Version=2011-06-15",
            "imdsv2_session_token_url": format!("{imds}/api/token"),
        },
    });
    let creds = w.write("aws.json", &aws.to_string());
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    // The role's keys from the instance metadata service (IMDSv2).
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
        .env_remove("AWS_ACCESS_KEY_ID")
        .env_remove("AWS_SECRET_ACCESS_KEY")
        .env_remove("AWS_REGION")
        .env_remove("AWS_DEFAULT_REGION")
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert!(
        w.google
            .count("/latest/meta-data/iam/security-credentials/gcp-federation")
            == 1
    );
    assert_no_leak(
        "stderr",
        &done.stderr,
        &[AWS_SECRET_KEY, "aws-session-TOKEN"],
    );
    w.no_leaks(&done);
    // Keys from the environment: no metadata service asked; a key the
    // pool does not know is refused at the exchange.
    w.google.reset_seen();
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
        .env("AWS_ACCESS_KEY_ID", "AKIAOTHERKEY00000000")
        .env("AWS_SECRET_ACCESS_KEY", "other-aws-SECRET-0000")
        .env("AWS_REGION", "us-east-2")
        .run();
    let e = done.error("api");
    assert!(
        e.contains("refused the subject token (HTTP 400, invalid_grant)"),
        "{e}"
    );
    assert_eq!(w.google.count("/latest/"), 0, "{:?}", w.google.seen());
    assert_no_leak("stderr", &done.stderr, &["other-aws-SECRET-0000"]);
    // Other environments are refused with a message, not a crash.
    let azure = serde_json::json!({
        "type": "external_account", "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.google.token_uri(),
        "credential_source": {"environment_id": "azure9"},
    });
    let creds = w.write("odd.json", &azure.to_string());
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_APPLICATION_CREDENTIALS", creds.to_str().unwrap())
        .run();
    assert!(done.error("api").contains("azure9"), "{done}");
}

#[test]
fn gcloud_impersonation_of_a_service_account() {
    let w = World::new();
    w.google
        .add_user("client-2.apps", CLIENT_SECRET, REFRESH_TOKEN);
    let adc = serde_json::json!({
        "type": "impersonated_service_account",
        "service_account_impersonation_url": w.google.impersonation_url(),
        "delegates": [],
        "source_credentials": {
            "type": "authorized_user",
            "client_id": "client-2.apps",
            "client_secret": CLIENT_SECRET,
            "refresh_token": REFRESH_TOKEN,
            "token_uri": w.google.token_uri(),
        },
    });
    let creds = w.write("imp.json", &adc.to_string());
    let config = w.config(&format!(
        "project_id: {PROJECT}\ncredentials_file: {}\n",
        creds.display()
    ));
    let done = w.cmd(&config, &["api"]).run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    let seen = w.google.seen();
    assert!(
        seen.iter()
            .any(|s| s.grant.as_deref() == Some("refresh_token") && s.granted),
        "{seen:?}"
    );
    assert!(
        seen.iter().any(|s| s.target == "/impersonate" && s.granted),
        "{seen:?}"
    );
    w.no_leaks(&done);
}

#[test]
fn external_account_from_a_url_and_the_project_from_the_environment() {
    let w = World::new();
    let audience =
        "//iam.googleapis.com/projects/2/locations/global/workloadIdentityPools/q/providers/y";
    w.google.add_subject(audience, SUBJECT_TOKEN);
    w.google
        .serve_subject(SUBJECT_TOKEN, ("x-identity", "agent"));
    let ext = serde_json::json!({
        "type": "external_account",
        "audience": audience,
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.google.token_uri(),
        "credential_source": {"url": w.google.subject_url(), "headers": {"x-identity": "agent"}},
    });
    let creds = w.write("ext-url.json", &ext.to_string());
    let config = w.config(&format!("credentials_file: {}\n", creds.display()));
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_CLOUD_PROJECT", PROJECT)
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    let seen = w.google.seen();
    assert!(
        seen.iter().any(|s| s.target == "/subject" && s.granted),
        "{seen:?}"
    );
    assert_eq!(w.google.count("/impersonate"), 0);
    w.no_leaks(&done);
    // A subject URL that refuses us is a permission error naming it.
    w.google
        .serve_subject(SUBJECT_TOKEN, ("x-identity", "someone-else"));
    let done = w
        .cmd(&config, &["api"])
        .env("GOOGLE_CLOUD_PROJECT", PROJECT)
        .run();
    let e = done.error("api");
    assert!(
        e.contains("subject token URL") && e.contains("answered HTTP 403"),
        "{e}"
    );
    w.no_leaks(&done);
}

#[test]
fn the_opt_in_token_cache() {
    use std::os::unix::fs::PermissionsExt;
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = w.service_account("sa.json", SA_KEY);
    let cache = w.path("token-cache.json");
    let config = w.config(&format!(
        "credentials_file: {}\ntoken_cache_file: {}\n",
        sa.display(),
        cache.display()
    ));
    let grants = || w.google.count("/token");
    let done = w.cmd(&config, &["api"]).run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert_eq!(grants(), 1);
    let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    // The next call reuses it, project included.
    let done = w.cmd(&config, &["api", "db;user"]).run();
    assert_eq!(done.value("db;user"), USER, "{done}");
    assert_eq!(grants(), 1, "{:?}", w.google.seen());
    w.no_leaks(&done);
    // A replaced key file is a new source.
    let mut key_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&sa).unwrap()).unwrap();
    key_file["private_key_id"] = "rotated".into();
    w.write("sa.json", &key_file.to_string());
    let done = w.cmd(&config, &["api"]).run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert_eq!(grants(), 2);
    // A cached token Secret Manager refuses is forgotten.
    let mut entry: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&cache).unwrap()).unwrap();
    entry["access_token"] = "ya29.REVOKED-TOKEN-0000".into();
    w.write("token-cache.json", &entry.to_string());
    let done = w.cmd(&config, &["api"]).run();
    let e = done.error("api");
    assert!(e.contains("HTTP 401"), "{e}");
    assert!(!cache.exists(), "{done}");
    assert!(!done.stderr.contains("REVOKED-TOKEN"));
    let done = w.cmd(&config, &["api"]).run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    assert_eq!(grants(), 3);
    w.no_leaks(&done);
    let log = std::fs::read_to_string(w.path("trace.log")).unwrap_or_default();
    assert!(!log.contains("REVOKED-TOKEN"));
}

#[test]
fn metadata_project_when_none_is_configured() {
    let w = World::new();
    let config = w.config("");
    let done = w
        .cmd(&config, &["m", "projects/other-proj/secrets/x"])
        .run();
    assert_eq!(done.value("m"), META_VALUE, "{done}");
    assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
    // No project anywhere: short names say what to set; full names work.
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = serde_json::json!({
        "type": "service_account", "private_key": SA_KEY, "client_email": SA_EMAIL,
        "token_uri": w.google.token_uri(),
    });
    let sa = w.write("noproj.json", &sa.to_string());
    let config = w.config(&format!("credentials_file: {}\n", sa.display()));
    let done = w
        .cmd(&config, &["m", "projects/other-proj/secrets/x"])
        .run();
    assert!(
        done.error("m").contains("no project: set project_id"),
        "{done}"
    );
    assert_eq!(done.value("projects/other-proj/secrets/x"), OTHER_VALUE);
}

#[test]
fn no_credentials_at_all_is_fast_and_clear() {
    let w = World::new();
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let closed = backend_tests::free_port();
    let done = w
        .cmd(&config, &["api", "db;password"])
        .env("GCE_METADATA_HOST", &format!("127.0.0.1:{closed}"))
        .args(["--timeout", "20"])
        .run();
    done.expect_code(0);
    let e = done.error("api");
    assert!(
        e.contains("no credentials: GOOGLE_APPLICATION_CREDENTIALS unset, no gcloud ADC file")
            && e.contains(&format!("metadata server 127.0.0.1:{closed} not reachable")),
        "{e}"
    );
    // One retry, not six: a machine outside GCP answers at once.
    assert!(done.elapsed < Duration::from_secs(2), "{done}");
    assert!(done.error("db;password").contains("no credentials"));
    w.no_leaks(&done);
}

#[test]
fn proxies_from_the_environment_but_never_for_the_metadata_server() {
    let w = World::new();
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let dead = format!("http://127.0.0.1:{}", backend_tests::free_port());
    // The metadata server is asked directly, the API through the
    // (dead) proxy.
    let done = w
        .cmd(&config, &["api"])
        .env("HTTP_PROXY", &dead)
        .args(["--timeout", "3"])
        .run();
    assert_eq!(w.google.count("/computeMetadata/"), 1, "{done}");
    assert_eq!(w.google.count("/v1/"), 0, "{done}");
    let e = done.error("api");
    assert!(
        e.contains("cannot reach Secret Manager") || e.contains("timed out"),
        "{e}"
    );
    // NO_PROXY exempts the endpoint.
    let done = w
        .cmd(&config, &["api"])
        .env("HTTP_PROXY", &dead)
        .env("NO_PROXY", "127.0.0.1")
        .run();
    assert_eq!(done.value("api"), API_KEY, "{done}");
    w.no_leaks(&done);
}

#[test]
fn a_metadata_server_that_hangs_is_bounded() {
    let w = World::new();
    w.google.hang_metadata(true);
    let config = w.config(&format!("project_id: {PROJECT}\n"));
    let done = w.cmd(&config, &["api"]).args(["--timeout", "3"]).run();
    done.expect_code(0);
    assert!(done.elapsed < Duration::from_secs(3), "{done}");
    let e = done.error("api");
    assert!(e.contains("metadata server"), "{e}");
    w.no_leaks(&done);
}
