//! Keys into secrets that are documents.
//!
//! A handle may end in `;key`: the part before names a document (a file, a
//! Vault secret, a JSON `SecretString`), the key picks one value in it. A key
//! is a top-level field name, or a JSON Pointer (RFC 6901) when it starts with
//! `/`: `db.json;password`, `db.json;/nested/password`. A string leaf is the
//! value as it is; any other leaf (number, bool, object, array) becomes its
//! compact JSON text, so `5432` stays `5432`. A `null` leaf is an error.
//!
//! Errors name the key and list the field names where the key was looked up
//! (names are not secrets; values never appear).

use serde_json::Value;

use crate::error::HandleError;
use crate::secret::Secret;

/// How many field names an error lists before it says `...`.
const MAX_LISTED_FIELDS: usize = 20;
/// Longest field name an error shows in full.
const MAX_FIELD_NAME: usize = 64;

/// Splits `handle` at its first `;` into the document part and the key.
pub fn split_key(handle: &str) -> (&str, Option<&str>) {
    match handle.split_once(';') {
        Some((doc, key)) => (doc, Some(key)),
        None => (handle, None),
    }
}

/// Extracts `key` from `doc`. `location` names the document in messages
/// (`secret/db`, `db.json`).
pub fn extract(doc: &Value, key: &str, location: &str) -> Result<Secret, HandleError> {
    if key.is_empty() {
        return Err(HandleError::invalid_handle(format!(
            "{location}: empty key"
        )));
    }
    let (found, parent) = if key.starts_with('/') {
        (doc.pointer(key), pointer_parent(doc, key))
    } else {
        (doc.as_object().and_then(|m| m.get(key)), Some(doc))
    };
    match found {
        Some(leaf) => leaf_value(leaf)
            .ok_or_else(|| HandleError::not_found(format!("{location}: key '{key}' is null"))),
        None => Err(HandleError::not_found(format!(
            "{location}: no key '{key}'{}",
            parent.map(describe_fields).unwrap_or_default()
        ))),
    }
}

/// `key` of a value that should be a JSON document (a secret's text): the
/// document parsed, the key read, the document wiped; `not_json` is the
/// error when it is not JSON (it never quotes the text).
pub fn extract_json(
    text: &str,
    key: &str,
    location: &str,
    not_json: impl FnOnce() -> HandleError,
) -> Result<Secret, HandleError> {
    let mut doc: Value = serde_json::from_str(text).map_err(|_| not_json())?;
    let found = extract(&doc, key, location);
    wipe(&mut doc);
    found
}

/// The document's only field, for handles without a key; with several
/// fields, an error listing their names.
pub fn sole_value(doc: &Value, location: &str) -> Result<Secret, HandleError> {
    match doc {
        Value::Object(map) if map.len() == 1 => {
            let (name, leaf) = map
                .iter()
                .next()
                .ok_or_else(|| HandleError::other("unreachable"))?;
            leaf_value(leaf).ok_or_else(|| {
                HandleError::not_found(format!("{location}: field '{}' is null", short(name)))
            })
        }
        Value::Object(map) if map.is_empty() => Err(HandleError::not_found(format!(
            "{location}: the secret has no fields"
        ))),
        Value::Object(_) => Err(HandleError::invalid_handle(format!(
            "{location}: the secret has several fields, name one with ';<key>'{}",
            describe_fields(doc)
        ))),
        other => leaf_value(other)
            .ok_or_else(|| HandleError::not_found(format!("{location}: the secret is null"))),
    }
}

/// A leaf as the agent gets it: strings as they are, other JSON as compact
/// text, `null` as nothing.
pub fn leaf_value(leaf: &Value) -> Option<Secret> {
    match leaf {
        Value::Null => None,
        Value::String(s) => Some(Secret::from(s.as_str())),
        other => Some(Secret::new(other.to_string())),
    }
}

/// Zeroizes every string in `doc` (keys too) before it is dropped: a parsed
/// document holds the values it was read for.
pub fn wipe(doc: &mut Value) {
    use zeroize::Zeroize;
    match doc {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => {
            let entries = std::mem::take(map);
            for (mut k, mut v) in entries {
                k.zeroize();
                wipe(&mut v);
            }
        }
        _ => {}
    }
}

/// ` (fields: a, b, c)`, or ` (not an object)`: the hint an error carries.
pub fn describe_fields(doc: &Value) -> String {
    match doc {
        Value::Object(map) => {
            // The smallest MAX_LISTED_FIELDS names in order, kept by
            // insertion into a list that never grows past them: the same
            // list as sorting all names and truncating (equal names are
            // equal strings), without linking a general sort for strings
            // into every binary (about 8 KB of the file store's).
            let mut names: Vec<String> = Vec::with_capacity(MAX_LISTED_FIELDS + 1);
            // A name that is one of our credentials is left out.
            let shown = map.keys().filter(|k| !crate::secret::reveals_credential(k));
            for name in shown.map(|k| short(k)) {
                let at = names.partition_point(|n| *n <= name);
                if at < MAX_LISTED_FIELDS {
                    names.insert(at, name);
                    names.truncate(MAX_LISTED_FIELDS);
                }
            }
            let more = map.len() > MAX_LISTED_FIELDS;
            let mut list = names.join(", ");
            if more {
                list.push_str(", ...");
            }
            if list.is_empty() {
                " (no fields)".to_owned()
            } else {
                format!(" (fields: {list})")
            }
        }
        Value::Array(items) => format!(" (an array of {} items)", items.len()),
        _ => " (not an object)".to_owned(),
    }
}

fn pointer_parent<'a>(doc: &'a Value, pointer: &str) -> Option<&'a Value> {
    let parent = &pointer[..pointer.rfind('/').unwrap_or(0)];
    doc.pointer(parent)
}

fn short(name: &str) -> String {
    let escaped: String = name.escape_debug().collect();
    if escaped.chars().count() > MAX_FIELD_NAME {
        let mut cut: String = escaped.chars().take(MAX_FIELD_NAME).collect();
        cut.push_str("...");
        cut
    } else {
        escaped
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::ErrorKind;

    fn doc() -> Value {
        json!({"user": "admin", "password": "s3cr3t", "port": 5432, "tls": true,
               "nested": {"password": "deep", "list": [1, "two"]}, "nothing": null,
               "a/b": "slash", "m~n": "tilde"})
    }

    fn ok(key: &str) -> String {
        extract(&doc(), key, "db.json")
            .map(|s| s.expose().to_owned())
            .unwrap_or_else(|e| e.to_string())
    }

    #[test]
    fn a_field_named_like_a_credential_we_hold_is_not_listed() {
        crate::secret::hold(&Secret::from("held-CREDENTIAL-as-a-key-42"));
        let doc = json!({"held-CREDENTIAL-as-a-key-42": "x", "user": "admin"});
        let e = extract(&doc, "nope", "doc.json").unwrap_err().to_string();
        assert!(e.contains("user"), "{e}");
        assert!(!e.contains("held-CREDENTIAL"), "{e}");
    }

    #[test]
    fn names_and_pointers() {
        assert_eq!(ok("password"), "s3cr3t");
        assert_eq!(ok("port"), "5432");
        assert_eq!(ok("tls"), "true");
        assert_eq!(ok("/nested/password"), "deep");
        assert_eq!(ok("/nested/list/1"), "two");
        assert_eq!(ok("/nested/list"), "[1,\"two\"]");
        assert_eq!(ok("nested"), "{\"list\":[1,\"two\"],\"password\":\"deep\"}");
        assert_eq!(ok("a/b"), "slash");
        assert_eq!(ok("/a~1b"), "slash");
        assert_eq!(ok("/m~0n"), "tilde");
    }

    #[test]
    fn errors_list_names_never_values() {
        let e = extract(&doc(), "passwd", "db.json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        assert!(
            e.message()
                .starts_with("db.json: no key 'passwd' (fields: a/b, m~n, nested")
        );
        assert!(!e.message().contains("s3cr3t"));
        let e = extract(&doc(), "/nested/pass", "db.json").unwrap_err();
        assert_eq!(
            e.message(),
            "db.json: no key '/nested/pass' (fields: list, password)"
        );
        let e = extract(&doc(), "nothing", "db.json").unwrap_err();
        assert_eq!(e.message(), "db.json: key 'nothing' is null");
        let e = extract(&doc(), "", "db.json").unwrap_err();
        assert_eq!(e.kind(), ErrorKind::InvalidHandle);
        let e = extract(&json!("plain"), "k", "x").unwrap_err();
        assert_eq!(e.message(), "x: no key 'k' (not an object)");
    }

    #[test]
    fn sole_value_rules() {
        assert_eq!(
            sole_value(&json!({"v": "one"}), "p").unwrap().expose(),
            "one"
        );
        let e = sole_value(&json!({"b": 1, "a": 2}), "p").unwrap_err();
        assert_eq!(
            e.message(),
            "p: the secret has several fields, name one with ';<key>' (fields: a, b)"
        );
        assert_eq!(
            sole_value(&json!({}), "p").unwrap_err().kind(),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn wipe_clears_strings() {
        let mut d = doc();
        wipe(&mut d);
        assert_eq!(d["nested"], Value::Null);
        let mut s = json!("abc");
        wipe(&mut s);
        assert_eq!(s, json!(""));
    }

    #[test]
    fn split() {
        assert_eq!(split_key("a;b;c"), ("a", Some("b;c")));
        assert_eq!(split_key("a"), ("a", None));
        assert_eq!(split_key("a;"), ("a", Some("")));
    }

    #[test]
    fn long_field_lists_are_bounded() {
        let map: serde_json::Map<String, Value> = (0..100)
            .map(|i| (format!("{i:03}{}", "x".repeat(100)), json!(i)))
            .collect();
        let d = describe_fields(&Value::Object(map));
        assert!(d.len() < 2000, "{}", d.len());
        assert!(d.ends_with(", ...)"));
    }

    #[test]
    fn listed_names_are_the_smallest_in_order() {
        // Escaping reorders names (a newline, shown as `\n`, sorts after "A") and
        // cutting long ones can make two equal: the list is the one sorting
        // every shown name and keeping the first 20 gives.
        let long = "y".repeat(80);
        let mut keys: Vec<String> = (0..40).map(|i| format!("k{:02}", 39 - i)).collect();
        keys.extend([
            "\n".into(),
            "A".into(),
            format!("{long}1"),
            format!("{long}2"),
        ]);
        for n in [3, 20, 21, keys.len()] {
            let map: serde_json::Map<String, Value> = keys[keys.len() - n..]
                .iter()
                .map(|k| (k.clone(), json!(1)))
                .collect();
            let mut shown: Vec<String> = map.keys().map(|k| short(k)).collect();
            shown.sort();
            let more = if shown.len() > MAX_LISTED_FIELDS {
                ", ..."
            } else {
                ""
            };
            shown.truncate(MAX_LISTED_FIELDS);
            let want = format!(" (fields: {}{more})", shown.join(", "));
            assert_eq!(describe_fields(&Value::Object(map)), want, "{n}");
        }
    }
}
