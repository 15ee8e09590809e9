//! No config error quotes a value, whatever its YAML type (see
//! `backend_tests::config_quotes_no_value`), and an alias bomb as the
//! config is refused before it is expanded.

use backend_tests::{config_bomb_is_refused, config_quotes_no_value, credential_scalars_are_text};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-aws");

#[test]
fn config_errors_quote_no_value_of_any_type() {
    config_quotes_no_value(
        BIN,
        &[
            "region: eu-west-1\nrole_arn: arn:aws:iam::1:role/r\nexternal_id: {v}\n",
            "region: eu-west-1\naccess_key_id: AKIA0000\nsecret_access_key: {v}\n",
            "region: eu-west-1\nsession_token: {v}\n",
            "region: {v}\n",
        ],
        "secret/x",
    );
}

#[test]
fn an_alias_bomb_config_is_refused_unexpanded() {
    config_bomb_is_refused(BIN);
}

#[test]
fn an_unreachable_sts_for_role_arn_is_a_handle_error_not_a_crash() {
    let d = tempfile::tempdir().unwrap();
    let conf = backend_tests::files::private_file(
        d.path(),
        "aws.yaml",
        "region: eu-west-1\nendpoint_url: http://127.0.0.1:1\naccess_key_id: AKIA0000\nsecret_access_key: not-a-real-key-0000\nrole_arn: arn:aws:iam::123456789012:role/r\n",
    );
    let done = backend_tests::Cmd::new(BIN)
        .args(["--config", conf.to_str().unwrap(), "--timeout", "5"])
        .env("HOME", d.path().to_str().unwrap())
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .stdin(backend_tests::payload(&["a", "ssm:/b"]))
        .run();
    done.expect_code(0);
    for h in ["a", "ssm:/b"] {
        assert!(done.error(h).contains("STS AssumeRole"), "{done}");
    }
}

/// A credential written as an integer, a boolean, a float, a hex number or
/// a quoted string is its text, as in every other binary (one YAML
/// dialect), and a readable config holding one is warned about.
#[test]
fn credentials_of_any_scalar_type_are_their_text() {
    credential_scalars_are_text(
        BIN,
        "region: eu-west-1\nendpoint_url: http://127.0.0.1:1\naccess_key_id: AKIA0000\nsecret_access_key: {v}\n",
        "x",
    );
}
