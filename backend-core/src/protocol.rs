//! The wire: what the agent writes to stdin and what we write to stdout.
//!
//! Request, as the agents send it (keys sorted, compact, no newline):
//!
//! ```json
//! {"secrets":["db_prod_user","db_prod_password"],"version":"1.0"}
//! {"config":{"file_path":"/etc/s.json"},"secret_backend_timeout":30,"secrets":["pw"],"type":"file.json","version":"1.1"}
//! ```
//!
//! Reply, one object holding every requested handle once:
//!
//! ```json
//! {"db_prod_user":{"value":"decrypted_db_prod_user","error":null},
//!  "missing":{"value":null,"error":"secret/missing: no secret at this path"}}
//! ```
//!
//! Unknown request fields are ignored: callers add fields without bumping
//! the major version.

use std::collections::HashSet;
use std::fmt;
use std::time::Duration;

use serde::ser::{SerializeMap, SerializeStruct};
use serde::{Deserialize, Serialize, Serializer};
use serde_json::Value;
use zeroize::Zeroize;

use crate::error::HandleError;
use crate::provider::Outcome;

/// The major protocol version we speak. Every `1.x` is accepted, since minor
/// versions only add fields (1.1 added `secret_backend_timeout`). A version 2
/// would get its own request type and a branch in [`Request::parse`].
pub const SUPPORTED_MAJOR: &str = "1";

/// Longest request timeout we honour; larger values are clamped.
pub const MAX_TIMEOUT: Duration = Duration::from_secs(24 * 3600);

/// A usable request.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The `version` string as sent, e.g. `1.0`.
    pub version: String,
    /// The handles, duplicates and all, in the caller's order.
    pub secrets: Vec<String>,
    /// `secret_backend_timeout`, when sent as a positive number of seconds.
    pub timeout: Option<Duration>,
    /// `type`: the backend type newer callers choose (`file.json`, ...).
    pub backend_type: Option<String>,
    /// `config`: that backend's configuration, as sent.
    pub backend_config: Option<Value>,
}

/// Why a request is unusable (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Nothing but whitespace arrived.
    Empty,
    /// More bytes than the input limit.
    TooLarge(usize),
    /// Bytes that are not UTF-8.
    NotUtf8,
    /// Not JSON, or JSON followed by more.
    NotJson(String),
    /// JSON, but not an object.
    NotObject,
    /// `version` is missing.
    NoVersion,
    /// `version` is not a string.
    VersionNotString,
    /// `version` has another major number.
    UnsupportedVersion(String),
    /// `secrets` is missing.
    NoSecrets,
    /// `secrets` is not a list.
    SecretsNotList,
    /// An element of `secrets` is not a string.
    SecretNotString(usize),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Empty => f.write_str("empty input: expected a JSON request on stdin"),
            Self::TooLarge(max) => write!(f, "input is larger than the limit of {max} bytes"),
            Self::NotUtf8 => f.write_str("input is not valid UTF-8"),
            Self::NotJson(e) => write!(f, "input is not a JSON request: {e}"),
            Self::NotObject => f.write_str("input is JSON but not an object"),
            Self::NoVersion => f.write_str("request has no 'version'"),
            Self::VersionNotString => f.write_str("request 'version' is not a string"),
            Self::UnsupportedVersion(v) => write!(
                f,
                "unsupported protocol version '{}': this backend speaks {SUPPORTED_MAJOR}.x",
                v.escape_debug()
            ),
            Self::NoSecrets => f.write_str("request has no 'secrets' list"),
            Self::SecretsNotList => f.write_str("request 'secrets' is not a list"),
            Self::SecretNotString(i) => write!(f, "request 'secrets' item {i} is not a string"),
        }
    }
}

impl std::error::Error for RequestError {}

impl Request {
    /// Parses and validates one request.
    pub fn parse(input: &[u8]) -> Result<Self, RequestError> {
        let text = std::str::from_utf8(input).map_err(|_| RequestError::NotUtf8)?;
        if text.trim().is_empty() {
            return Err(RequestError::Empty);
        }
        // Fields are read into a struct rather than a whole `Value`, so that
        // unknown fields are skipped without being interpreted (a number too
        // large for f64 in a field we do not know must not refuse the call).
        // A JSON array would also fill a struct: check for an object first.
        if !text.trim_start().starts_with('{') {
            return match serde_json::from_str::<serde::de::IgnoredAny>(text) {
                Ok(_) => Err(RequestError::NotObject),
                Err(e) => Err(RequestError::NotJson(json_error(&e))),
            };
        }
        let raw: RawRequest =
            serde_json::from_str(text).map_err(|e| RequestError::NotJson(json_error(&e)))?;
        let mut map = raw;
        let version = match map.version.take() {
            None => return Err(RequestError::NoVersion),
            Some(Value::String(v)) => v,
            Some(_) => return Err(RequestError::VersionNotString),
        };
        if version.split('.').next() != Some(SUPPORTED_MAJOR) {
            return Err(RequestError::UnsupportedVersion(version));
        }
        let secrets = match map.secrets.take() {
            None | Some(Value::Null) => return Err(RequestError::NoSecrets),
            Some(Value::Array(items)) => items
                .into_iter()
                .enumerate()
                .map(|(i, item)| match item {
                    Value::String(s) => Ok(s),
                    _ => Err(RequestError::SecretNotString(i)),
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(_) => return Err(RequestError::SecretsNotList),
        };
        let timeout = map.secret_backend_timeout.and_then(|t| parse_timeout(&t));
        let backend_type = match map.backend_type {
            Some(Value::String(t)) if !t.is_empty() => Some(t),
            _ => None,
        };
        let backend_config = map.config.filter(|c| !c.is_null());
        Ok(Self {
            version,
            secrets,
            timeout,
            backend_type,
            backend_config,
        })
    }

    /// The handles without duplicates, in first-seen order.
    pub fn distinct_secrets(&self) -> Vec<String> {
        let mut seen = HashSet::with_capacity(self.secrets.len());
        self.secrets
            .iter()
            .filter(|h| seen.insert(h.as_str()))
            .cloned()
            .collect()
    }
}

/// The request's fields we read; the rest are skipped unread.
#[derive(Deserialize)]
struct RawRequest {
    #[serde(default)]
    version: Option<Value>,
    #[serde(default)]
    secrets: Option<Value>,
    #[serde(default)]
    secret_backend_timeout: Option<Value>,
    #[serde(default, rename = "type")]
    backend_type: Option<Value>,
    #[serde(default)]
    config: Option<Value>,
}

/// serde_json's message without its position, which is noise on one line.
fn json_error(e: &serde_json::Error) -> String {
    let full = e.to_string();
    match full.find(" at line ") {
        Some(i) => format!("{} (line {}, column {})", &full[..i], e.line(), e.column()),
        None => full,
    }
}

fn parse_timeout(value: &Value) -> Option<Duration> {
    let secs = value.as_f64().filter(|s| s.is_finite() && *s > 0.0)?;
    Some(Duration::from_secs_f64(secs.min(MAX_TIMEOUT.as_secs_f64())))
}

/// One reply entry: a handle and its outcome.
#[derive(Debug)]
pub struct Entry {
    /// The handle as requested.
    pub handle: String,
    /// Its value or error.
    pub outcome: Outcome,
}

struct Wire<'a>(&'a Outcome);

impl Serialize for Wire<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("Entry", 2)?;
        match self.0 {
            // The one place a value leaves the process.
            Ok(secret) => {
                st.serialize_field("value", secret.expose())?;
                st.serialize_field("error", &None::<&str>)?;
            }
            Err(e) => {
                st.serialize_field("value", &None::<&str>)?;
                st.serialize_field("error", e.message())?;
            }
        }
        st.end()
    }
}

/// The reply: every requested handle once, in request order.
#[derive(Debug, Default)]
pub struct Reply {
    entries: Vec<Entry>,
}

impl Reply {
    /// A reply from entries. Empty values become the `secret is empty` error,
    /// since the agent refuses them.
    pub fn new(entries: Vec<Entry>) -> Self {
        let entries = entries
            .into_iter()
            .map(|Entry { handle, outcome }| {
                let outcome = match outcome {
                    Ok(v) if v.is_empty() => Err(HandleError::not_found("secret is empty")),
                    other => other,
                };
                Entry { handle, outcome }
            })
            .collect();
        Self { entries }
    }

    /// The entries, in request order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Serializes the reply to at most `max_bytes` where possible: while it
    /// is over, the largest values are replaced by a per-handle error, so the
    /// other handles still reach the agent. Returns the bytes and how many
    /// values were dropped.
    ///
    /// The common case, a reply under the cap, is serialized once; only an
    /// oversized one is measured entry by entry and written again. Every
    /// buffer that held values and is given up (a grown one, an oversized
    /// first attempt) is zeroized.
    pub fn to_json(&mut self, max_bytes: usize) -> (Vec<u8>, usize) {
        let mut out = WipingWriter(Vec::with_capacity(self.estimate()));
        // Serializing strings into memory cannot fail.
        let _ = serde_json::to_writer(&mut out, self);
        if out.0.len() <= max_bytes {
            return (out.0, 0);
        }
        out.0.zeroize();
        let sizes: Vec<usize> = self.entries.iter().map(entry_size).collect();
        let mut total = 2 + sizes.iter().sum::<usize>() + self.entries.len().saturating_sub(1);
        let mut dropped = 0;
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].outcome.is_ok())
            .collect();
        order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
        for i in order {
            if total <= max_bytes {
                break;
            }
            let len = self.entries[i]
                .outcome
                .as_ref()
                .map(|s| s.len())
                .unwrap_or(0);
            self.entries[i].outcome = Err(HandleError::too_large(format!(
                "value of {len} bytes left out: the reply would exceed the agent's output limit of {max_bytes} bytes"
            )));
            let new = entry_size(&self.entries[i]);
            total = total - sizes[i] + new;
            dropped += 1;
        }
        let mut out = WipingWriter(Vec::with_capacity(total));
        let _ = serde_json::to_writer(&mut out, self);
        (out.0, dropped)
    }

    /// Bytes the reply takes when nothing needs escaping: enough that a
    /// usual reply is written without growing its buffer.
    fn estimate(&self) -> usize {
        self.entries
            .iter()
            .map(|e| {
                let body = match &e.outcome {
                    Ok(v) => v.len(),
                    Err(err) => err.message().len() + 16,
                };
                e.handle.len() + body + 32
            })
            .sum::<usize>()
            + 2
    }
}

/// A `Vec` writer that zeroizes its old buffer when it has to grow, so no
/// copy of a value is left behind in freed memory.
struct WipingWriter(Vec<u8>);

impl std::io::Write for WipingWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let needed = self.0.len() + buf.len();
        if needed > self.0.capacity() {
            let mut grown = Vec::with_capacity(needed.max(self.0.capacity() * 2));
            grown.extend_from_slice(&self.0);
            self.0.zeroize();
            self.0 = grown;
        }
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Serialize for Reply {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut map = s.serialize_map(Some(self.entries.len()))?;
        for e in &self.entries {
            map.serialize_entry(&e.handle, &Wire(&e.outcome))?;
        }
        map.end()
    }
}

/// Bytes `"handle":{"value":...,"error":...}` takes in the reply.
fn entry_size(e: &Entry) -> usize {
    let mut counter = Counter(0);
    let _ = serde_json::to_writer(&mut counter, &e.handle);
    let _ = serde_json::to_writer(&mut counter, &Wire(&e.outcome));
    counter.0 + 1
}

struct Counter(usize);

impl std::io::Write for Counter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0 += buf.len();
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Secret;

    fn parse(s: &str) -> Result<Request, RequestError> {
        Request::parse(s.as_bytes())
    }

    #[test]
    fn accepts_every_1x_and_ignores_unknown_fields() {
        let r = parse(r#"{"secrets":["a","b","a"],"version":"1.0"}"#).unwrap();
        assert_eq!(r.secrets, ["a", "b", "a"]);
        assert_eq!(r.distinct_secrets(), ["a", "b"]);
        let r = parse(
            r#"{"config":{"file_path":"/x"},"extra":[1,{}],"secret_backend_timeout":30,"secrets":["\u003cx\u003e"],"type":"file.json","version":"1.1"}"#,
        )
        .unwrap();
        assert_eq!(r.secrets, ["<x>"]);
        assert_eq!(r.timeout, Some(Duration::from_secs(30)));
        assert_eq!(r.backend_type.as_deref(), Some("file.json"));
        assert_eq!(
            r.backend_config,
            Some(serde_json::json!({"file_path": "/x"}))
        );
        assert!(parse(r#"{"version":"1","secrets":[]}"#).is_ok());
        assert!(parse(r#"{"version":"1.99.3","secrets":[]}"#).is_ok());
    }

    #[test]
    fn bad_timeouts_are_ignored_huge_ones_clamped() {
        for t in ["0", "-5", "\"30\"", "null", "true"] {
            let r = parse(&format!(
                r#"{{"version":"1.1","secrets":[],"secret_backend_timeout":{t}}}"#
            ));
            assert_eq!(r.unwrap().timeout, None, "{t}");
        }
        let r = parse(r#"{"version":"1.1","secrets":[],"secret_backend_timeout":1e300}"#).unwrap();
        assert_eq!(r.timeout, Some(MAX_TIMEOUT));
    }

    #[test]
    fn refusals() {
        use RequestError::*;
        let cases: &[(&[u8], RequestError)] = &[
            (b"", Empty),
            (b" \n\t", Empty),
            (b"\xff\xfe", NotUtf8),
            (b"[1]", NotObject),
            (b"\"x\"", NotObject),
            (br#"{"secrets":[]}"#, NoVersion),
            (br#"{"version":1,"secrets":[]}"#, VersionNotString),
            (
                br#"{"version":"2.0","secrets":[]}"#,
                UnsupportedVersion("2.0".into()),
            ),
            (
                br#"{"version":"","secrets":[]}"#,
                UnsupportedVersion(String::new()),
            ),
            (
                br#"{"version":"10.0","secrets":[]}"#,
                UnsupportedVersion("10.0".into()),
            ),
            (br#"{"version":"1.0"}"#, NoSecrets),
            (br#"{"version":"1.0","secrets":null}"#, NoSecrets),
            (br#"{"version":"1.0","secrets":"a"}"#, SecretsNotList),
            (
                br#"{"version":"1.0","secrets":["a",1]}"#,
                SecretNotString(1),
            ),
        ];
        for (input, want) in cases {
            assert_eq!(
                &Request::parse(input).unwrap_err(),
                want,
                "{}",
                String::from_utf8_lossy(input)
            );
        }
        for bad in [
            r#"{"version":"1.0","secrets":[]} {}"#,
            "{",
            "nope",
            r#"{"version":"1.0","secrets":[]}x"#,
        ] {
            assert!(matches!(parse(bad), Err(NotJson(_))), "{bad}");
        }
        let deep = "[".repeat(10_000);
        assert!(matches!(parse(&deep), Err(NotJson(_))));
    }

    fn entry(h: &str, v: Result<&str, &str>) -> Entry {
        Entry {
            handle: h.into(),
            outcome: v.map(Secret::from).map_err(HandleError::not_found),
        }
    }

    #[test]
    fn reply_shape_and_empty_values() {
        let mut r = Reply::new(vec![
            entry("a", Ok("1")),
            entry("b", Err("nope")),
            entry("c", Ok("")),
        ]);
        let (json, dropped) = r.to_json(usize::MAX);
        assert_eq!(dropped, 0);
        assert_eq!(
            String::from_utf8(json).unwrap(),
            r#"{"a":{"value":"1","error":null},"b":{"value":null,"error":"nope"},"c":{"value":null,"error":"secret is empty"}}"#
        );
    }

    #[test]
    fn output_cap_drops_the_largest_values_first() {
        let big = "x".repeat(1000);
        let mid = "y".repeat(500);
        let mut r = Reply::new(vec![
            entry("s", Ok("small")),
            entry("big", Ok(&big)),
            entry("mid", Ok(&mid)),
        ]);
        let (json, dropped) = r.to_json(900);
        assert_eq!(dropped, 1);
        assert!(json.len() <= 900, "{}", json.len());
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["s"]["value"], "small");
        assert_eq!(v["mid"]["value"], mid.as_str());
        assert!(
            v["big"]["error"]
                .as_str()
                .unwrap()
                .contains("output limit of 900 bytes")
        );
    }

    #[test]
    fn computed_size_matches_serialized_size() {
        let mut r = Reply::new(vec![
            entry("q\"\n<", Ok("\u{1}\u{7f}é\"")),
            entry("", Err("e\\")),
        ]);
        let sizes: usize = r.entries.iter().map(entry_size).sum::<usize>() + 2 + 1;
        let (json, _) = r.to_json(usize::MAX);
        assert_eq!(json.len(), sizes);
    }

    #[test]
    fn escaped_values_outgrow_the_estimate_and_still_serialize_whole() {
        // Control characters take six bytes each in JSON: far over the
        // estimate, so the buffer has to grow (several times).
        let odd = "\u{1}".repeat(5000);
        let mut r = Reply::new(vec![entry("a", Ok(&odd)), entry("b", Ok("x"))]);
        assert!(r.estimate() < 5000 * 6);
        let expected = serde_json::to_vec(&r).unwrap();
        let (json, dropped) = r.to_json(usize::MAX);
        assert_eq!(dropped, 0);
        assert_eq!(json, expected);
        // Just under what it takes: the same reply, with its largest value
        // replaced by an error.
        let (json, dropped) = r.to_json(expected.len() - 1);
        assert_eq!(dropped, 1);
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["b"]["value"], "x");
        assert!(v["a"]["value"].is_null());
    }
}
