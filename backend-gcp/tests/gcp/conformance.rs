//! The conformance kit of backend-core against the provider.

use super::*;

#[tokio::test]
async fn the_contract() {
    let w = World::new();
    w.google.add_service_account(SA_EMAIL, SA_KEY);
    let sa = w.service_account("sa.json", SA_KEY);
    let config = backend_gcp::GcpConfig {
        endpoint: Some(w.google.url()),
        project_id: Some(PROJECT.into()),
        credentials_file: Some(sa),
        ..backend_gcp::GcpConfig::default()
    };
    let provider = backend_gcp::GcpProvider::new(config).unwrap();
    let cases = backend_core::testkit::Cases {
        found: vec![
            ("db;password".into(), PASSWORD.into()),
            ("api".into(), API_KEY.into()),
            ("projects/other-proj/secrets/x".into(), OTHER_VALUE.into()),
        ],
        missing: vec!["missing".into(), "db;nokey".into()],
        budget: None,
    };
    backend_core::testkit::check(&provider, &cases).await;
}
