//! No config error quotes a value, whatever its YAML type (see
//! `backend_tests::config_quotes_no_value`), and an alias bomb as the
//! config is refused before it is expanded.

use backend_tests::{config_bomb_is_refused, config_quotes_no_value, credential_scalars_are_text};

const BIN: &str = env!("CARGO_BIN_EXE_secret-backend-vault");

#[test]
fn config_errors_quote_no_value_of_any_type() {
    config_quotes_no_value(
        BIN,
        &[
            "address: http://127.0.0.1:1\nauth:\n  method: userpass\n  username: u\n  password: {v}\n",
            "address: http://127.0.0.1:1\nauth:\n  method: token\n  token: {v}\n",
            "address: http://127.0.0.1:1\nauth:\n  method: approle\n  role_id: r\n  secret_id: {v}\n",
            "address: http://127.0.0.1:1\nauth:\n  method: {v}\n",
            "address: http://127.0.0.1:1\nconcurrency: {v}\n",
        ],
        "secret/x",
    );
}

#[test]
fn an_alias_bomb_config_is_refused_unexpanded() {
    config_bomb_is_refused(BIN);
}

/// A credential written as an integer, a boolean, a float, a hex number or
/// a quoted string is its text, as in every other binary (one YAML
/// dialect), and a readable config holding one is warned about.
#[test]
fn credentials_of_any_scalar_type_are_their_text() {
    credential_scalars_are_text(
        BIN,
        "address: http://127.0.0.1:1\nnamespace: 2024\nauth:\n  method: token\n  token: {v}\n",
        "secret/x",
    );
}
