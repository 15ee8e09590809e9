//! No config error quotes a value, whatever its YAML type (see
//! `backend_tests::config_quotes_no_value`), and an alias bomb as the
//! config is refused before it is expanded.

use backend_tests::{config_bomb_is_refused, config_quotes_no_value};

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
