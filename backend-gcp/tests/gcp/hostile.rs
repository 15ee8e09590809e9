//! Hostile inputs found by attacking the binary: a credentials file whose
//! `project_id` would rewrite the request path, and secrets that hold the
//! backend's own credentials.

use super::*;

/// A project of its own, so the shared drongo's other secrets are untouched.
const HOSTILE: &str = "hostile-proj";

/// A service account file's `project_id` is used for handles that name no
/// project: one that is not a project id must never reach the URL, where
/// `/`, `?` or `:` would make it name another secret than the handle.
#[test]
fn a_project_id_in_the_key_file_cannot_rewrite_the_path() {
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    for bad in [
        format!("{PROJECT}/secrets/api/versions/latest:access?x="),
        format!("{PROJECT}/secrets/api/versions/latest:access#"),
        "../../v1/projects/proj-a/secrets/api".to_owned(),
        format!("{PROJECT}/secrets/api/versions/1:access%3F"),
        String::new(),
    ] {
        let json = serde_json::json!({
            "type": "service_account",
            "project_id": bad,
            "private_key_id": "0123abcd",
            "private_key": SA_KEY,
            "client_email": SA_EMAIL,
            "token_uri": w.google.token_uri(),
        });
        let sa = w.write("sa.json", &json.to_string());
        let config = w.config(&format!("credentials_file: {}\n", sa.display()));
        w.google.reset_seen();
        let done = w.cmd(&config, &["nosuch", "db;password"]).run();
        assert_eq!(done.code(), 0, "{done}");
        assert!(!done.stdout_str().contains(API_KEY), "{bad}: {done}");
        for h in ["nosuch", "db;password"] {
            let e = done.error(h);
            assert!(e.contains("no project"), "{bad}: {h}: {e}");
        }
        assert_eq!(w.google.count("/v1/"), 0, "{bad}");
        w.no_leaks(&done);
    }
}

/// Every credential the store reads from a credentials file is held: a
/// secret whose payload is the refresh token, the client secret or the
/// private key is refused, never answered.
#[test]
fn secrets_holding_our_own_credentials_are_refused() {
    let w = World::new();
    w._drongo.put(HOSTILE, "refresh", REFRESH_TOKEN.as_bytes());
    w._drongo
        .put(HOSTILE, "client-secret", CLIENT_SECRET.as_bytes());
    w._drongo.put(HOSTILE, "key", SA_KEY.as_bytes());
    let doc = serde_json::json!({"k": SA_KEY}).to_string();
    w._drongo.put(HOSTILE, "key-json", doc.as_bytes());
    w.google
        .add_user("client-1.apps", CLIENT_SECRET, REFRESH_TOKEN);
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let handles = ["refresh", "client-secret", "key", "key-json;k"];
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": "client-1.apps",
        "client_secret": CLIENT_SECRET,
        "refresh_token": REFRESH_TOKEN,
        "token_uri": w.google.token_uri(),
    });
    let user = w.write("user.json", &user.to_string());
    let sa = w.service_account("sa.json", SA_KEY);
    for (creds, refused, held) in [
        (&user, &handles[..2], &[REFRESH_TOKEN, CLIENT_SECRET][..]),
        (&sa, &handles[2..], &["PRIVATE KEY"][..]),
    ] {
        let config = w.config(&format!(
            "project_id: {HOSTILE}\ncredentials_file: {}\n",
            creds.display()
        ));
        let done = w.cmd(&config, &handles).run();
        assert_eq!(done.code(), 0, "{done}");
        for h in refused {
            let e = done.error(h);
            assert!(e.contains("credential"), "{h}: {e}");
        }
        for cred in held {
            assert!(!done.stdout_str().contains(cred), "{cred}: {done}");
        }
    }
}

/// An endpoint we send a credential to may echo it where we read an error
/// code (`{"error": "<code>"}`): a code that is one of our credentials is
/// not shown, from a token endpoint or from Secret Manager.
#[test]
fn an_error_code_that_echoes_a_credential_is_not_shown() {
    use backend_tests::fault::{Fault, FaultProxy};
    let w = World::new();
    // Letters and digits only: it passes the shape of an error code.
    let secret = "clientSECRETonlyWORDchars7";
    let refresh = "refreshTOKENonlyWORDchars8";
    for echoed in [secret, refresh] {
        let proxy = FaultProxy::always(Fault::Status {
            code: 400,
            retry_after: None,
            body: format!(r#"{{"error":"{echoed}"}}"#),
        });
        let user = serde_json::json!({
            "type": "authorized_user",
            "client_id": "client-1.apps",
            "client_secret": secret,
            "refresh_token": refresh,
            "token_uri": format!("{}/token", proxy.url()),
        });
        let user = w.write("user.json", &user.to_string());
        let config = w.config(&format!(
            "project_id: {PROJECT}\ncredentials_file: {}\n",
            user.display()
        ));
        let done = w.cmd(&config, &["api"]).run();
        let e = done.error("api");
        assert!(e.contains("refused the refresh token (HTTP 400)"), "{e}");
        for cred in [secret, refresh] {
            assert!(!done.stdout_str().contains(cred), "{done}");
            assert!(!done.stderr.contains(cred), "{done}");
        }
        w.no_leaks(&done);
    }
}

/// `hold_credentials` holds the key file's secrets and an external
/// account's subject token without a request.
#[test]
fn hold_credentials_holds_the_key_file_without_a_request() {
    let w = World::new();
    let key = "hold-CLIENT-secret-0123456789";
    let refresh = "hold-REFRESH-token-0123456789";
    let user = serde_json::json!({
        "type": "authorized_user",
        "client_id": "client-1.apps",
        "client_secret": key,
        "refresh_token": refresh,
        "token_uri": w.google.token_uri(),
    });
    let user = w.write("user.json", &user.to_string());
    let subject = "hold-SUBJECT-token-0123456789";
    let subject_file = w.write("subject", &format!("{subject}\n"));
    let ext = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.google.token_uri(),
        "credential_source": {"file": subject_file},
    });
    let ext = w.write("ext.json", &ext.to_string());
    let header = "Bearer hold-HEADER-token-0123456789";
    let by_url = serde_json::json!({
        "type": "external_account",
        "audience": "//iam.googleapis.com/x",
        "subject_token_type": "urn:ietf:params:oauth:token-type:jwt",
        "token_url": w.google.token_uri(),
        "credential_source": {
            "url": "http://127.0.0.1:9/token",
            "headers": {"Authorization": header, "Metadata": "true"},
        },
    });
    let by_url = w.write("by-url.json", &by_url.to_string());
    for (file, held) in [
        (&user, &[key, refresh][..]),
        (&ext, &[subject][..]),
        (&by_url, &[header][..]),
    ] {
        let config: backend_gcp::GcpConfig = backend_core::config::from_yaml(&format!(
            "project_id: {PROJECT}\ncredentials_file: {}\n",
            file.display()
        ))
        .unwrap();
        for h in held {
            assert!(!backend_core::secret::reveals_credential(h), "{h}");
        }
        backend_core::Provider::hold_credentials(&backend_gcp::GcpProvider::new(config).unwrap());
        for h in held {
            assert!(backend_core::secret::reveals_credential(h), "{h}");
        }
    }
    assert!(w.google.seen().is_empty());
    // A short header value is not a credential: a secret may equal it.
    assert!(!backend_core::secret::reveals_credential("true"));
}
