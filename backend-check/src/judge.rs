//! The agent's side of one call, as pure functions: the payload bytes it
//! writes, and how it reads the reply.
//!
//! The payload is built by hand, not through a JSON map, so key order never
//! depends on serde_json's features: Go's `json.Marshal` of a map sorts the
//! keys, writes compactly, escapes `<`, `>`, `&`, U+2028 and U+2029, and ends
//! without a newline.
//!
//! The reply is read as Go's `json.Unmarshal` into
//! `map[string]struct{Value string; ErrorMsg string "json:\"error\""}` reads
//! it: a top-level `null` is an empty map; an entry that is `null` is an
//! empty entry; `value`/`error` match their key case-insensitively, the last
//! match winning; unknown fields are ignored; a field of another type, a
//! non-object entry, trailing data, or anything but an object fails the
//! whole call. Then each requested handle is judged: missing, error set,
//! value empty.

use std::collections::HashMap;
use std::fmt;

use backend_core::Secret;
use serde::de::{self, Deserializer, IgnoredAny, MapAccess, Visitor};

/// The payload generations the tool can send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PayloadVersion {
    /// `{"secrets":[...],"version":"1.0"}`: StackState V2, Datadog < late 2025.
    V1_0,
    /// Adds `secret_backend_timeout`: Datadog since late 2025.
    V1_1,
}

/// The payload bytes, exactly as the Go agent writes them.
pub fn payload(version: PayloadVersion, handles: &[String], timeout_secs: u64) -> Vec<u8> {
    let list: Vec<String> = handles.iter().map(|h| go_string(h)).collect();
    let secrets = format!("[{}]", list.join(","));
    let text = match version {
        PayloadVersion::V1_0 => format!(r#"{{"secrets":{secrets},"version":"1.0"}}"#),
        PayloadVersion::V1_1 => format!(
            r#"{{"secret_backend_timeout":{timeout_secs},"secrets":{secrets},"version":"1.1"}}"#
        ),
    };
    text.into_bytes()
}

/// A JSON string as Go's encoder writes it.
pub fn go_string(s: &str) -> String {
    // serde_json cannot fail on a &str.
    let json = serde_json::to_string(s).unwrap_or_default();
    let mut out = String::with_capacity(json.len());
    for c in json.chars() {
        match c {
            '<' => out.push_str("\\u003c"),
            '>' => out.push_str("\\u003e"),
            '&' => out.push_str("\\u0026"),
            '\u{2028}' => out.push_str("\\u2028"),
            '\u{2029}' => out.push_str("\\u2029"),
            c => out.push(c),
        }
    }
    out
}

/// One entry of the reply, as Go's struct holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// `value`, empty when null or absent.
    pub value: Secret,
    /// `error`, empty when null or absent.
    pub error: String,
}

/// Parses stdout as the agent does. The error is Go-like text; it never
/// quotes the reply (which holds secrets).
pub fn parse_reply(stdout: &[u8]) -> Result<HashMap<String, Entry>, String> {
    let mut de = serde_json::Deserializer::from_slice(stdout);
    let map = de.deserialize_any(ReplyVisitor).map_err(|e| describe(&e))?;
    de.end().map_err(|e| describe(&e))?;
    Ok(map.unwrap_or_default())
}

fn describe(e: &serde_json::Error) -> String {
    use serde_json::error::Category;
    let what = match e.classify() {
        Category::Eof if e.line() <= 1 && e.column() == 0 => {
            return "unexpected end of JSON input (stdout is empty)".into();
        }
        Category::Eof => "unexpected end of JSON input",
        Category::Syntax => "not valid JSON",
        Category::Data => "not the expected shape",
        Category::Io => "unreadable",
    };
    // serde_json's message names the problem (and, for data errors, the
    // expected type) but never echoes the input.
    let full = e.to_string();
    let msg = full.split(" at line ").next().unwrap_or(&full);
    format!("{what}: {msg} (line {}, column {})", e.line(), e.column())
}

struct ReplyVisitor;

impl<'de> Visitor<'de> for ReplyVisitor {
    type Value = Option<HashMap<String, Entry>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON object of {\"value\":...,\"error\":...} entries")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
        let mut out = HashMap::new();
        while let Some(handle) = map.next_key::<String>()? {
            let entry = map.next_value::<EntrySeed>()?.0;
            out.insert(handle, entry);
        }
        Ok(Some(out))
    }
}

struct EntrySeed(Entry);

impl<'de> de::Deserialize<'de> for EntrySeed {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(EntryVisitor).map(EntrySeed)
    }
}

struct EntryVisitor;

impl Default for Entry {
    fn default() -> Self {
        Self {
            value: Secret::new(String::new()),
            error: String::new(),
        }
    }
}

impl<'de> Visitor<'de> for EntryVisitor {
    type Value = Entry;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an object {\"value\":...,\"error\":...}")
    }
    fn visit_unit<E: de::Error>(self) -> Result<Entry, E> {
        Ok(Entry::default())
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Entry, A::Error> {
        let mut entry = Entry::default();
        while let Some(key) = map.next_key::<String>()? {
            if key.eq_ignore_ascii_case("value") {
                if let Some(v) = map.next_value::<Option<String>>()? {
                    entry.value = Secret::new(v);
                }
            } else if key.eq_ignore_ascii_case("error") {
                if let Some(v) = map.next_value::<Option<String>>()? {
                    entry.error = v;
                }
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(entry)
    }
}

/// How one handle fared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandleVerdict {
    /// Resolved to a non-empty value.
    Resolved(Secret),
    /// Not in the reply.
    Missing,
    /// `error` was set.
    Error(String),
    /// `value` null or empty.
    Empty,
    /// The whole call failed (the reason is the call's).
    CallFailed,
}

impl HandleVerdict {
    /// Whether the agent gets a value.
    pub fn ok(&self) -> bool {
        matches!(self, Self::Resolved(_))
    }
}

/// Judges each handle against a parsed reply. `trim_line_break` is
/// `secret_backend_remove_trailing_line_break`: newer Datadog agents then
/// cut `\r` and `\n` off the end of a value before they check it is not
/// empty.
pub fn judge(
    handles: &[String],
    reply: &HashMap<String, Entry>,
    trim_line_break: bool,
) -> Vec<HandleVerdict> {
    handles
        .iter()
        .map(|h| match reply.get(h) {
            None => HandleVerdict::Missing,
            Some(e) if !e.error.is_empty() => HandleVerdict::Error(e.error.clone()),
            Some(e) => {
                let value = e.value.expose();
                let value = if trim_line_break {
                    value.trim_end_matches(['\r', '\n'])
                } else {
                    value
                };
                if value.is_empty() {
                    HandleVerdict::Empty
                } else {
                    HandleVerdict::Resolved(Secret::from(value))
                }
            }
        })
        .collect()
}

/// The agent's log line for a failed handle (older wording, then newer).
pub fn agent_words(handle: &str, v: &HandleVerdict) -> Option<String> {
    match v {
        HandleVerdict::Resolved(_) | HandleVerdict::CallFailed => None,
        HandleVerdict::Missing => Some(format!(
            "secret handle '{handle}' was not decrypted by the secret_backend_command"
        )),
        HandleVerdict::Error(e) => Some(format!(
            "an error occurred while decrypting '{handle}': {e}"
        )),
        HandleVerdict::Empty => Some(format!("decrypted secret for '{handle}' is empty")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hs(h: &[&str]) -> Vec<String> {
        h.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn payload_bytes_are_gos() {
        assert_eq!(
            payload(PayloadVersion::V1_0, &hs(&["a", "<b&c>"]), 30),
            br#"{"secrets":["a","\u003cb\u0026c\u003e"],"version":"1.0"}"#.to_vec()
        );
        assert_eq!(
            payload(PayloadVersion::V1_1, &hs(&["x\"\n\u{2028}"]), 7),
            br#"{"secret_backend_timeout":7,"secrets":["x\"\n\u2028"],"version":"1.1"}"#.to_vec()
        );
        assert_eq!(
            payload(PayloadVersion::V1_0, &[], 30),
            br#"{"secrets":[],"version":"1.0"}"#.to_vec()
        );
    }

    #[test]
    fn the_cores_parser_reads_our_payloads() {
        use backend_core::protocol::Request;
        let handles = hs(&["a", "<&>", "", "]]]", "é\u{2028}\"\\"]);
        let r = Request::parse(&payload(PayloadVersion::V1_0, &handles, 12)).unwrap();
        assert_eq!(
            (r.version.as_str(), &r.secrets, r.timeout),
            ("1.0", &handles, None)
        );
        let r = Request::parse(&payload(PayloadVersion::V1_1, &handles, 12)).unwrap();
        assert_eq!(r.secrets, handles);
        assert_eq!(r.timeout, Some(std::time::Duration::from_secs(12)));
    }

    #[test]
    fn replies_are_read_as_go_reads_them() {
        let r = parse_reply(br#" {"a":{"value":"v","error":null},"b":{"Value":"x","ERROR":"bad","extra":[1]},"c":null,"d":{}} "#).unwrap();
        assert_eq!(
            r["a"],
            Entry {
                value: Secret::from("v"),
                error: String::new()
            }
        );
        assert_eq!(r["b"].error, "bad");
        assert_eq!(r["c"], Entry::default());
        assert_eq!(r["d"], Entry::default());
        assert!(parse_reply(b"null").unwrap().is_empty());
        for bad in [
            &b""[..],
            b"[]",
            b"\"x\"",
            b"{",
            br#"{"a":{"value":1}}"#,
            br#"{"a":"v"}"#,
            br#"{"a":{}} {}"#,
            b"not json",
        ] {
            assert!(
                parse_reply(bad).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
        let e = parse_reply(br#"{"a":{"value":"SECRETVALUE","error":5}}"#).unwrap_err();
        assert!(!e.contains("SECRETVALUE"), "{e}");
        assert!(parse_reply(b"").unwrap_err().contains("empty"));
    }

    #[test]
    fn handles_are_judged() {
        let r = parse_reply(
            br#"{"ok":{"value":"v"},"err":{"value":"v","error":"no"},"empty":{"value":""}}"#,
        )
        .unwrap();
        let v = judge(&hs(&["ok", "err", "empty", "gone"]), &r, false);
        assert_eq!(
            v,
            vec![
                HandleVerdict::Resolved(Secret::from("v")),
                HandleVerdict::Error("no".into()),
                HandleVerdict::Empty,
                HandleVerdict::Missing,
            ]
        );
        let r = parse_reply(br#"{"nl":{"value":"v\r\n"},"only":{"value":"\n"}}"#).unwrap();
        assert_eq!(
            judge(&hs(&["nl", "only"]), &r, false),
            vec![
                HandleVerdict::Resolved(Secret::from("v\r\n")),
                HandleVerdict::Resolved(Secret::from("\n")),
            ]
        );
        assert_eq!(
            judge(&hs(&["nl", "only"]), &r, true),
            vec![
                HandleVerdict::Resolved(Secret::from("v")),
                HandleVerdict::Empty
            ]
        );
    }
}
