//! Properties of the wire, checked on generated inputs: requests round-trip
//! whatever the handles hold, no input makes parsing panic, replies are the
//! JSON they claim to be, and the output cap keeps every value it does not
//! drop.

use backend_core::key;
use backend_core::protocol::{Entry, Reply, Request};
use backend_core::{HandleError, Secret};
use proptest::prelude::*;
use serde_json::Value;

fn go_escape(json: &str) -> String {
    json.replace('<', "\\u003c")
        .replace('>', "\\u003e")
        .replace('&', "\\u0026")
}

fn handle() -> impl Strategy<Value = String> {
    prop_oneof![
        any::<String>(),
        "[a-z<>&;/?#%\\]\\[ENC]{0,12}",
        "\\PC{0,40}"
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn requests_round_trip(handles in prop::collection::vec(handle(), 0..20), minor in 0u32..20) {
        let body = serde_json::json!({"secrets": handles, "version": format!("1.{minor}")}).to_string();
        let req = Request::parse(go_escape(&body).as_bytes()).unwrap();
        prop_assert_eq!(&req.secrets, &handles);
        let distinct = req.distinct_secrets();
        let unique: std::collections::HashSet<_> = handles.iter().collect();
        prop_assert_eq!(distinct.len(), unique.len());
    }

    #[test]
    fn parsing_arbitrary_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Request::parse(&bytes);
    }

    #[test]
    fn parsing_near_miss_json_never_panics(s in r#"[{}\[\]":,0-9a-z. \\u]{0,200}"#) {
        let _ = Request::parse(s.as_bytes());
        let _ = Request::parse(format!(r#"{{"version":"1.0","secrets":{s}}}"#).as_bytes());
    }

    #[test]
    fn replies_are_the_json_they_claim(entries in prop::collection::btree_map(handle(), proptest::option::of(any::<String>()), 0..20)) {
        let mut reply = Reply::new(entries.iter().map(|(h, v)| Entry {
            handle: h.clone(),
            outcome: match v {
                Some(v) => Ok(Secret::from(v.as_str())),
                None => Err(HandleError::not_found("nope")),
            },
        }).collect());
        let (bytes, dropped) = reply.to_json(usize::MAX);
        prop_assert_eq!(dropped, 0);
        let parsed: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(parsed.len(), entries.len());
        for (h, v) in &entries {
            let e = &parsed[h];
            match v {
                Some(v) if !v.is_empty() => {
                    prop_assert_eq!(&e["value"], &Value::String(v.clone()));
                    prop_assert_eq!(&e["error"], &Value::Null);
                }
                Some(_) => prop_assert_eq!(&e["error"], "secret is empty"),
                None => prop_assert_eq!(&e["error"], "nope"),
            }
        }
    }

    #[test]
    fn the_output_cap_keeps_what_it_does_not_drop(
        values in prop::collection::vec("[a-z]{1,300}", 1..15),
        cap in 50usize..3000,
    ) {
        let entries = values.iter().enumerate().map(|(i, v)| Entry { handle: format!("h{i}"), outcome: Ok(Secret::from(v.as_str())) }).collect();
        let mut reply = Reply::new(entries);
        let (bytes, dropped) = reply.to_json(cap);
        let parsed: serde_json::Map<String, Value> = serde_json::from_slice(&bytes).unwrap();
        prop_assert_eq!(parsed.len(), values.len());
        let mut kept = 0;
        for (i, v) in values.iter().enumerate() {
            let e = &parsed[&format!("h{i}")];
            if e["value"].is_null() {
                // Left out, and maybe shortened to its kind afterwards.
                let error = e["error"].as_str().unwrap();
                prop_assert!(error == backend_core::protocol::DROPPED || error == "too large", "{}", error);
            } else {
                prop_assert_eq!(&e["value"], &Value::String(v.clone()));
                kept += 1;
            }
        }
        prop_assert_eq!(kept + dropped, values.len());
        // Over the cap only when no value left could shrink the reply (each
        // is shorter than the error that would replace it).
        let short = backend_core::protocol::DROPPED.len();
        prop_assert!(bytes.len() <= cap || parsed.values().all(|e| e["value"].as_str().is_none_or(|v| v.len() <= short)));
    }

    #[test]
    fn key_extraction_never_panics(k in "\\PC{0,30}", doc in r#"\{"[a-z/~]{1,5}":("[a-z]{0,5}"|[1-9][0-9]{0,2}|null|\{"[a-z]{1,3}":1\})\}"#) {
        let doc: Value = serde_json::from_str(&doc).unwrap();
        let _ = key::extract(&doc, &k, "doc");
        let _ = key::sole_value(&doc, "doc");
        let (d, rest) = key::split_key(&k);
        prop_assert!(!d.contains(';'));
        prop_assert_eq!(rest.map(|r| format!("{d};{r}")).unwrap_or_else(|| d.to_owned()), k);
    }
}
