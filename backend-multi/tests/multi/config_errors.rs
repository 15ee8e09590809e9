//! No config error quotes a value, whatever its YAML type: a credential
//! written as an integer, a float or a list (a password of digits, an AWS
//! account number as external id) must not reach stderr or the log file
//! through a deserializer's "invalid type" message.

use backend_tests::{config_quotes_no_value, credential_scalars_are_text};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend");

#[test]
fn config_errors_quote_no_value_of_any_type() {
    config_quotes_no_value(
        BIN,
        &[
            "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:1\n    auth:\n      method: userpass\n      username: u\n      password: {v}\n",
            "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:1\n    auth:\n      method: token\n      token: {v}\n",
            "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:1\n    auth:\n      method: approle\n      role_id: r\n      secret_id: {v}\n",
            "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:1\n    auth:\n      method: {v}\n",
            "backends:\n  v:\n    type: aws\n    region: eu-west-1\n    role_arn: arn:aws:iam::1:role/r\n    external_id: {v}\n",
            "backends:\n  v:\n    type: aws\n    region: eu-west-1\n    access_key_id: AKIA0000\n    secret_access_key: {v}\n",
            "backends:\n  v:\n    type: {v}\n",
        ],
        "v:secret/x",
    );
}

/// A credential written as an integer, a boolean, a float, a hex number or
/// a quoted string is its text, as in every other binary (one YAML
/// dialect), and a readable config holding one is warned about.
#[test]
fn credentials_of_any_scalar_type_are_their_text() {
    credential_scalars_are_text(
        BIN,
        "backends:\n  v:\n    type: vault\n    address: http://127.0.0.1:1\n    namespace: 2024\n    auth:\n      method: token\n      token: {v}\n",
        "v:secret/x",
    );
}

#[test]
fn aws_credentials_of_any_scalar_type_are_their_text() {
    credential_scalars_are_text(
        BIN,
        "backends:\n  a:\n    type: aws\n    region: eu-west-1\n    endpoint_url: http://127.0.0.1:1\n    access_key_id: AKIA0000\n    secret_access_key: {v}\n",
        "a:x",
    );
}
