//! Alias names against Vector's own rule: every name `check_name` accepts
//! can be written as `SECRET[<backend>.<name>]` in a Vector config and is
//! read back whole, and every name Vector cannot read back is refused.

use backend_core::alias::{Aliases, check_name};
use proptest::prelude::*;
use regex::Regex;

/// Vector's regex, verbatim from `src/config/loading/secret.rs`.
const VECTOR_SECRET: &str = r"SECRET\[([[:word:]\-]+)\.([[:word:].\-/]+)\]";

/// The name Vector reads from `SECRET[vault.<name>]`, when it reads the
/// whole name (inside a longer string, as Vector allows).
fn vector_reads(re: &Regex, name: &str) -> bool {
    let text = format!("prefix-SECRET[vault.{name}]-suffix");
    re.captures(&text)
        .is_some_and(|c| &c[1] == "vault" && &c[2] == name && c[0].len() == name.len() + 14)
}

#[test]
fn the_regex_is_vectors() {
    let re = Regex::new(VECTOR_SECRET).unwrap();
    assert!(vector_reads(&re, "db_password"));
    assert!(vector_reads(&re, "prod/api.key-2"));
    // What aliases exist for: Vector cannot write these handles.
    for handle in ["secret/db;password", "kv?version=2", "ssm:/x", "doc;/a/b"] {
        assert!(!vector_reads(&re, handle), "{handle}");
        assert!(check_name(handle).is_err(), "{handle}");
    }
}

fn name_chars() -> impl Strategy<Value = String> {
    // Vector's characters, the ones just outside them, and some far off.
    let pool: Vec<char> = ('!'..='~')
        .chain([' ', '\t', '\n', 'é', 'ß', '٣', '＿', '\u{0}', '\u{200b}'])
        .collect();
    proptest::collection::vec(proptest::sample::select(pool), 0..24)
        .prop_map(|cs| cs.into_iter().collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(4000))]

    #[test]
    fn accepted_names_are_exactly_what_vector_reads(name in name_chars()) {
        let re = Regex::new(VECTOR_SECRET).unwrap();
        prop_assert_eq!(check_name(&name).is_ok(), vector_reads(&re, &name), "{:?}", name);
    }

    #[test]
    fn accepted_vector_names_make_valid_aliases(
        name in "[A-Za-z0-9_./-]{1,40}",
        target in "[^\u{0}]{1,60}",
    ) {
        let re = Regex::new(VECTOR_SECRET).unwrap();
        prop_assert!(vector_reads(&re, &name));
        // A target equal to the name would be a chain onto itself.
        prop_assume!(target != name);
        let a = Aliases::new([(name.clone(), target.clone())]).unwrap();
        prop_assert_eq!(a.resolve(&name), target.as_str());
    }
}
