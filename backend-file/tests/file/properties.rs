//! Properties of the pure parts, over arbitrary input: the handle grammar,
//! `.env` parsing, document parsing and bounded reads never panic, and what
//! they accept or refuse follows their rules; the YAML reader gives the
//! values serde-saphyr (the core's parser) gives.

use backend_core::ErrorKind;
use backend_file::document::{self, Format};
use backend_file::read::{Shape, read_text};
use backend_file::{dotenv, handle};
use proptest::prelude::*;
use serde_json::Value;

/// Handles built from the characters that matter to the grammar.
fn handle_text() -> impl Strategy<Value = String> {
    prop::collection::vec(
        prop_oneof![
            Just("/".to_owned()),
            Just("..".to_owned()),
            Just(".".to_owned()),
            Just(";".to_owned()),
            Just("\0".to_owned()),
            "[a-z]{1,3}",
            any::<char>().prop_map(String::from),
        ],
        0..12,
    )
    .prop_map(|parts| parts.concat())
}

/// Plain and quoted scalars whose meaning YAML readers disagree on.
fn yaml_scalar() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "yes",
            "No",
            "ON",
            "y",
            "tRuE",
            "0x1F",
            "-0x10",
            "0o17",
            "0b101",
            "017",
            "-017",
            "00",
            "1_000",
            "1__0",
            "_1",
            "-5",
            "+12",
            "1.5e3",
            "1.",
            ".5",
            "1_0.5",
            ".inf",
            "-.NaN",
            "1e400",
            "inf",
            "~",
            "null",
            "NULL",
            "nUll",
            "''",
            "'x y'",
            "\"\\u00e9\"",
            "abc",
            "1:30",
            "2001-01-01",
            "!!str 5",
            "!!str ~",
            "!!int '7'",
            "!!float 3",
            "!!bool off",
            "!!int x",
            "!local 5",
            "&a x",
            "&a 1",
            "*a",
            "99999999999999999999",
            "18446744073709551616",
            "-9223372036854775809",
            "!!binary aGk=",
        ])
        .prop_map(str::to_owned),
        "[a-z0-9._+-]{1,6}",
    ]
}

/// Flow-style values nested a few levels, with keys that can repeat.
fn yaml_flow() -> impl Strategy<Value = String> {
    let key = prop::sample::select(vec!["a", "b", "'a'", "yes", "1", "0x1", "~", "<<"]);
    yaml_scalar().prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            prop::collection::vec((key.clone(), inner), 0..4).prop_map(|kv| {
                let kv: Vec<String> = kv.iter().map(|(k, v)| format!("{k}: {v}")).collect();
                format!("{{{}}}", kv.join(", "))
            }),
        ]
    })
}

/// How deep a relative path ends up, or `None` when it climbs above its start.
fn lexical_depth(path: &str) -> Option<usize> {
    let mut depth = 0usize;
    for c in path.split('/') {
        match c {
            "" | "." => {}
            ".." => depth = depth.checked_sub(1)?,
            _ => depth += 1,
        }
    }
    Some(depth)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn accepted_handles_stay_relative_and_inside(h in handle_text()) {
        match handle::parse(&h) {
            Ok(t) => {
                prop_assert!(!t.path.is_empty());
                prop_assert!(!t.path.starts_with('/'));
                prop_assert!(!t.path.contains('\0'));
                prop_assert!(lexical_depth(t.path).is_some(), "{:?}", t.path);
                prop_assert!(t.key.is_none_or(|k| !k.is_empty()));
            }
            Err(e) => {
                prop_assert!(!e.message().is_empty());
                prop_assert!(e.message().len() < 400, "{}", e.message().len());
            }
        }
    }

    #[test]
    fn dotenv_round_trips_single_quoted_values(
        vars in prop::collection::btree_map("[A-Za-z_][A-Za-z0-9_]{0,8}", "[^'\r\n]{0,20}", 0..8)
    ) {
        let text: String = vars.iter().map(|(k, v)| format!("{k}='{v}'\n")).collect();
        let parsed = dotenv::parse(&text).unwrap();
        let want: serde_json::Map<String, Value> =
            vars.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
        prop_assert_eq!(parsed, Value::Object(want));
    }

    #[test]
    fn parse_errors_never_quote_the_text(
        before in ".{0,30}", after in ".{0,30}",
        format in prop_oneof![Just(Format::Json), Just(Format::Yaml), Just(Format::Env)]
    ) {
        let text = format!("{before}ZQXSECRET{after}");
        if let Err(e) = document::parse(&text, format) {
            prop_assert!(!e.contains("ZQXSECRET"), "{}", e);
            prop_assert!(!e.contains('\n'), "{}", e);
        }
        let _ = dotenv::looks_like(&text);
        let _ = Format::sniff(&text);
    }

    #[test]
    fn reads_are_whole_or_refused(
        bytes in prop::collection::vec(any::<u8>(), 0..300),
        limit in 1u64..300,
        claimed in 0u64..400,
    ) {
        let shape = Shape { is_dir: false, is_file: true, len: claimed };
        match read_text(&bytes[..], shape, limit, "f") {
            Ok(text) => {
                prop_assert!(claimed <= limit && bytes.len() as u64 <= limit);
                prop_assert_eq!(text.as_bytes(), &bytes[..]);
            }
            Err(e) if e.kind() == ErrorKind::TooLarge => {
                prop_assert!(claimed > limit || bytes.len() as u64 > limit);
            }
            Err(e) => {
                prop_assert!(std::str::from_utf8(&bytes).is_err(), "{}", e);
            }
        }
    }

    #[test]
    fn yaml_values_match_serde_saphyr(
        entries in prop::collection::vec(("[a-c]{1,2}", yaml_flow()), 1..5)
    ) {
        let text: String = entries.iter().map(|(k, v)| format!("{k}: {v}\n")).collect();
        let ours = backend_core::yaml::parse(&text).map(|p| p.value);
        let theirs = serde_saphyr::from_str::<Value>(&text);
        match (ours, theirs) {
            (Ok(ours), Ok(theirs)) => prop_assert_eq!(ours, theirs, "{}", text),
            (Err(_), Err(_)) => {}
            (ours, theirs) => prop_assert!(false, "{}: ours {:?}, serde-saphyr {:?}", text, ours, theirs.map_err(|e| e.to_string())),
        }
    }
}
