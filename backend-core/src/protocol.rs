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
#[derive(Debug, Clone, Default, PartialEq)]
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
        let mut map: RawRequest = match serde_json::from_str(text) {
            Ok(raw) => raw,
            // A number beyond f64 (`1e400`) in `secret_backend_timeout` is
            // no reason to refuse the handles: read again with that field
            // skipped unread, and answer under the default deadline. The
            // error stands when the number is elsewhere (in `config`).
            Err(e) if e.to_string().starts_with("number out of range") => {
                let patched = without_overflowing_timeout(text, &e)
                    .ok_or_else(|| RequestError::NotJson(json_error(&e)))?;
                serde_json::from_str(&patched).map_err(|_| RequestError::NotJson(json_error(&e)))?
            }
            Err(e) => return Err(RequestError::NotJson(json_error(&e))),
        };
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

    /// Takes the handles out of the request without duplicates, in
    /// first-seen order, moving rather than copying them (a request of
    /// 200,000 handles holds them once).
    pub fn take_distinct_secrets(&mut self) -> Vec<String> {
        let mut secrets = std::mem::take(&mut self.secrets);
        let keep: Vec<bool> = {
            let mut seen = HashSet::with_capacity(secrets.len());
            secrets.iter().map(|h| seen.insert(h.as_str())).collect()
        };
        let mut keep = keep.into_iter();
        secrets.retain(|_| keep.next().unwrap_or(false));
        secrets.shrink_to_fit();
        secrets
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

/// `text` with the number serde_json found beyond f64 (its error points at
/// it) written `null`, when that number is the value of
/// `secret_backend_timeout`; `None` when it is anywhere else. The same
/// struct reads the patched text: a second type to deserialize would link
/// a second copy of its reader (about 5 KB of every binary).
fn without_overflowing_timeout(text: &str, e: &serde_json::Error) -> Option<String> {
    let line_start: usize = text
        .split_inclusive('\n')
        .take(e.line().saturating_sub(1))
        .map(str::len)
        .sum();
    let at = (line_start + e.column()).min(text.len());
    let number = |i: usize| {
        text.as_bytes()
            .get(i)
            .is_some_and(|b| b.is_ascii_digit() || matches!(b, b'e' | b'E' | b'+' | b'-' | b'.'))
    };
    let mut start = at;
    while start > 0 && number(start - 1) {
        start -= 1;
    }
    let mut end = at;
    while number(end) {
        end += 1;
    }
    let key = text.get(..start)?.trim_end().strip_suffix(':')?.trim_end();
    if start == end || !key.ends_with("\"secret_backend_timeout\"") {
        return None;
    }
    Some(format!("{}null{}", text.get(..start)?, text.get(end..)?))
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

/// An error's message, written straight into the reply (no copy of it).
struct Message<'a>(&'a crate::error::HandleError);

impl Serialize for Message<'_> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self.0)
    }
}

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
                st.serialize_field("error", &Message(e))?;
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
    /// since the agent refuses them. A value that is, or contains, a
    /// credential the backend itself holds ([`crate::secret::hold`]) is
    /// refused, whatever path led to it: the last line of defence.
    pub fn new(entries: Vec<Entry>) -> Self {
        let entries = entries
            .into_iter()
            .map(|Entry { handle, outcome }| {
                let outcome = match outcome {
                    Ok(v) if v.is_empty() => Err(HandleError::not_found("secret is empty")),
                    Ok(v) if crate::secret::reveals_credential(v.expose()) => {
                        tracing::error!(
                            handle = %crate::runner::shorten(&handle),
                            "refused a value that is a credential of this backend"
                        );
                        Err(HandleError::permission_denied(CREDENTIAL_REFUSED))
                    }
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
    /// is over, the largest values are replaced by a short per-handle error
    /// ([`DROPPED`]), so the other handles still reach the agent, and then
    /// long error messages by their kind's short name. Returns the bytes and
    /// how many values were dropped; the bytes are still over `max_bytes`
    /// only when even the handles with the shortest answers do not fit (the
    /// runner then writes nothing: the agent would refuse it anyway).
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
        let mut sizes: Vec<usize> = self.entries.iter().map(entry_size).collect();
        let mut total = 2 + sizes.iter().sum::<usize>() + self.entries.len().saturating_sub(1);
        // First the largest values give way, each to an error shorter than
        // itself (so every drop shrinks the reply); a value shorter than the
        // error stays.
        let mut dropped = 0;
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].outcome.is_ok())
            .collect();
        largest_first(&mut order, &sizes);
        for i in order {
            if total <= max_bytes {
                break;
            }
            let replaced = Entry {
                handle: String::new(),
                outcome: Err(HandleError::too_large(DROPPED)),
            };
            // `replaced` has an empty handle: two quotes where the real one goes.
            let new = self.entries[i].handle_size() + entry_size(&replaced) - 2;
            if new >= sizes[i] {
                continue;
            }
            self.entries[i].outcome = replaced.outcome;
            total = total - sizes[i] + new;
            sizes[i] = new;
            dropped += 1;
        }
        // Then long error messages give way to their kind's short name.
        let mut order: Vec<usize> = (0..self.entries.len())
            .filter(|&i| self.entries[i].outcome.is_err())
            .collect();
        largest_first(&mut order, &sizes);
        for i in order {
            if total <= max_bytes {
                break;
            }
            let Err(e) = &self.entries[i].outcome else {
                continue;
            };
            let short = HandleError::new(e.kind(), e.kind().short());
            if short.len() >= e.len() {
                continue;
            }
            self.entries[i].outcome = Err(short);
            let new = entry_size(&self.entries[i]);
            total = total - sizes[i] + new;
            sizes[i] = new;
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
                    Err(err) => err.len() + 16,
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

/// The error of a value that is (or contains) one of the backend's own
/// credentials.
pub const CREDENTIAL_REFUSED: &str =
    "refused: the value is or contains a credential this backend itself uses";

/// The error of a value left out to keep the reply under the output cap:
/// short, so that leaving a value out always makes the reply smaller.
pub const DROPPED: &str = "value left out: reply over the output limit";

impl Entry {
    /// Bytes the handle takes in the reply, quotes included.
    fn handle_size(&self) -> usize {
        let mut counter = Counter(0);
        let _ = serde_json::to_writer(&mut counter, &self.handle);
        counter.0
    }
}

/// Orders `order` (indices into `sizes`) largest size first, equal sizes
/// in their order: one sort for both passes of [`Reply::to_json`] (each
/// closure of its own would link another copy of the sort, about 3 KB).
fn largest_first(order: &mut [usize], sizes: &[usize]) {
    order.sort_by_key(|&i| std::cmp::Reverse(sizes[i]));
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
    use crate::{ErrorKind, Secret};

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
        // Beyond f64: skipped, the handles still answered.
        for t in ["1e400", "-1e400", "123456789e999", " \n 1e400 "] {
            let r = parse(&format!(
                r#"{{"version":"1.1","secrets":["a"],"secret_backend_timeout":{t}}}"#
            ))
            .unwrap();
            assert_eq!((r.timeout, r.secrets), (None, vec!["a".to_owned()]), "{t}");
        }
        // First in the object, or written with spaces: the same.
        let r = parse(r#"{"secret_backend_timeout" : 1e400, "version":"1.1","secrets":["a"]}"#)
            .unwrap();
        assert_eq!((r.timeout, r.secrets), (None, vec!["a".to_owned()]));
        // Elsewhere in a field we read, it is still refused.
        let r = parse(r#"{"version":"1.1","secrets":["a"],"config":{"x":1e400}}"#);
        assert!(matches!(r, Err(RequestError::NotJson(_))), "{r:?}");
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
        assert_eq!(v["big"]["error"], DROPPED);
    }

    #[test]
    fn dropping_always_shrinks_and_errors_shorten_last() {
        // 30,000 small values: dropping one would grow the reply, so none
        // is dropped and the reply never grows; it stays over the cap and
        // the runner writes nothing.
        let many = |n: usize, len: usize| {
            Reply::new(
                (0..n)
                    .map(|i| Entry {
                        handle: format!("handle-{i:05}"),
                        outcome: Ok(Secret::from("v".repeat(len))),
                    })
                    .collect(),
            )
        };
        let mut r = many(30_000, 40);
        let (full, _) = r.to_json(usize::MAX);
        let (json, dropped) = r.to_json(1 << 20);
        assert_eq!((json.len(), dropped), (full.len(), 0));
        // Larger values: each drop shrinks the reply until it fits.
        let mut r = many(1_000, 2_000);
        let (json, dropped) = r.to_json(1 << 20);
        assert!(json.len() <= 1 << 20, "{}", json.len());
        assert!(dropped > 400 && dropped < 1_000, "{dropped}");
        // Errors long enough to matter shrink to their kind; values stay.
        let long = "x".repeat(300);
        let mut r = Reply::new(vec![entry("a", Err(&long)), entry("b", Ok("kept-value"))]);
        let (json, dropped) = r.to_json(120);
        assert!(json.len() <= 120, "{}", json.len());
        assert_eq!(dropped, 0);
        let v: Value = serde_json::from_slice(&json).unwrap();
        assert_eq!(v["b"]["value"], "kept-value");
        assert_eq!(v["a"]["error"], ErrorKind::NotFound.short());
        // Even the handles alone are over: the bytes say so by their length.
        let (json, _) = r.to_json(10);
        assert!(json.len() > 10);
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
