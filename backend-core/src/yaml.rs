//! YAML documents and the config file, read with granit-parser's event
//! stream folded into one `serde_json::Value`.
//!
//! Why not serde-saphyr, which the core's config loader uses: its generic
//! deserializer, error renderer and budget machinery cost about 510 KB of
//! this binary, which must stay under 1 MB; the event parser under it costs
//! a quarter of that. This module keeps what the backend relied on:
//!
//! - the same values for the same text: plain scalars resolve as
//!   serde-saphyr resolves them for an untyped target (YAML 1.1 booleans
//!   such as `yes`/`off`, `0x`/`0o`/`0b` and `_` in integers, floats, null),
//!   explicit `!!str`, `!!int`, `!!float`, `!!bool`, `!!null` tags, other tags
//!   ignored; anchors, aliases and `<<` merge keys; a differential test
//!   against serde-saphyr guards this;
//! - duplicate keys are an error, so are non-finite floats, non-scalar keys
//!   and a second document in the stream;
//! - the same budget against hostile input: at most [`MAX_DEPTH`] levels,
//!   [`MAX_NODES`] nodes counting every alias expansion (an alias bomb stops
//!   there), [`MAX_ALIASES`] aliases, and an expanded size (scalar text,
//!   alias expansions included) proportional to the document's own size
//!   ([`max_expanded`]): a few aliases of one long string stay under every
//!   count and still expand to gigabytes;
//! - errors give a position; their Display (for the config file, as the
//!   core's loader) adds the scanner's message and a duplicate key's name,
//!   [`Error::without_text`] (for documents, which may be all secrets) gives
//!   the kind of error and its position only.

use std::fmt;

use crate::config::describe_error;
use granit_parser::{Event, Marker, Parser, ScalarStyle, Tag};
use serde::de::DeserializeOwned;
use serde_json::{Map, Number, Value};

/// Deepest nesting accepted, alias expansions included.
pub const MAX_DEPTH: usize = 64;
/// Most nodes (scalars, sequences, mappings) in the result, alias
/// expansions included.
pub const MAX_NODES: usize = 250_000;
/// Most aliases in one document.
pub const MAX_ALIASES: usize = 50_000;
/// Bytes of scalar text a document may expand to through its aliases, per
/// byte of the document ([`max_expanded`]): a 30 KB document anchoring one
/// 30 KB string and aliasing it a few levels deep stays under the node and
/// alias counts yet would expand to gigabytes.
pub const EXPANSION_FACTOR: usize = 8;
/// The expanded size every document may reach whatever its own size.
pub const MIN_EXPANDED: usize = 64 * 1024;

/// The expanded size (scalar text, alias expansions included) allowed for
/// a document of `len` bytes: proportional to it, never below
/// [`MIN_EXPANDED`].
pub fn max_expanded(len: usize) -> usize {
    len.saturating_mul(EXPANSION_FACTOR).max(MIN_EXPANDED)
}

/// A position in the text: 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Pos {
    /// Line, from 1.
    pub line: usize,
    /// Column, from 1.
    pub column: usize,
}

impl From<&Marker> for Pos {
    fn from(m: &Marker) -> Self {
        Self {
            line: m.line(),
            column: m.col() + 1,
        }
    }
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}", self.line, self.column)
    }
}

/// Why a text is not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The scanner's or parser's own message (it names the problem; one
    /// names the unexpected character).
    Syntax(String),
    /// Over [`MAX_DEPTH`], [`MAX_NODES`] or [`MAX_ALIASES`].
    Budget,
    /// A key given twice in one mapping.
    DuplicateKey(String),
    /// A key that is null, a sequence or a mapping.
    KeyNotAString,
    /// A `<<` whose value is not a mapping or a sequence of mappings.
    BadMerge,
    /// `.inf`, `.nan` or a float too large for 64 bits.
    NonFinite,
    /// A scalar that its `!!int`, `!!float`, `!!bool` or `!!null` tag does
    /// not fit.
    BadTagged(&'static str),
    /// More than one document in the stream.
    MultipleDocuments,
    /// An alias whose anchor is not defined before it.
    UnknownAlias,
}

/// A rejected YAML text: what and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    /// What went wrong.
    pub cause: Cause,
    /// Where.
    pub at: Pos,
}

impl Error {
    fn new(cause: Cause, at: impl Into<Pos>) -> Self {
        Self {
            cause,
            at: at.into(),
        }
    }

    /// Whether the budget against hostile input stopped the parse.
    pub fn is_budget(&self) -> bool {
        self.cause == Cause::Budget
    }

    /// The message without anything taken from the text, for documents,
    /// whose keys might be anything: no duplicate key's name, and no
    /// scanner message (one names the unexpected character).
    pub fn without_text(&self) -> String {
        match &self.cause {
            Cause::DuplicateKey(_) => format!("duplicate key at {}", self.at),
            Cause::Syntax(_) => format!("syntax error at {}", self.at),
            _ => self.to_string(),
        }
    }
}

impl From<&Marker> for Error {
    fn from(m: &Marker) -> Self {
        Self::new(Cause::Syntax(String::new()), m)
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.cause {
            Cause::Syntax(what) if what.is_empty() => f.write_str("syntax error"),
            Cause::Syntax(what) => f.write_str(what),
            Cause::Budget => {
                f.write_str(
                "over the parser's limits (too many nodes, aliases or levels, or aliases expanding it far beyond its size)",
            )
            }
            Cause::DuplicateKey(key) => write!(f, "duplicate key `{key}`"),
            Cause::KeyNotAString => f.write_str("a key must be a string, number or boolean"),
            Cause::BadMerge => {
                f.write_str("a `<<` merge value must be a mapping or a sequence of mappings")
            }
            Cause::NonFinite => f.write_str("infinite or NaN numbers are not supported"),
            Cause::BadTagged(ty) => write!(f, "the value does not fit its {ty} tag"),
            Cause::MultipleDocuments => f.write_str("more than one YAML document"),
            Cause::UnknownAlias => f.write_str("alias of an undefined anchor"),
        }?;
        write!(f, " at {}", self.at)
    }
}

/// One entry of the top-level mapping, for callers that map keys to typed
/// fields and want to point at the one that is wrong.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The key.
    pub key: String,
    /// Where the key starts.
    pub key_at: Pos,
    /// Where the value starts.
    pub value_at: Pos,
    /// The value's text when it is a plain scalar that resolved to a
    /// number or boolean: a typed target that wants a string takes this.
    pub plain: Option<String>,
}

/// A parsed text: the value (null for a stream with no document) and the
/// entries of its top-level mapping in order.
#[derive(Debug, Default)]
pub struct Parsed {
    /// The document.
    pub value: Value,
    /// The top-level mapping's entries (empty when it is not a mapping).
    pub entries: Vec<Entry>,
}

/// Parses one YAML document into a JSON value.
pub fn parse(text: &str) -> Result<Parsed, Error> {
    let mut b = Builder {
        max_bytes: max_expanded(text.len()),
        ..Builder::default()
    };
    for event in Parser::new_from_str(text) {
        let (event, span) =
            event.map_err(|e| Error::new(Cause::Syntax(scanner_message(&e.info())), e.marker()))?;
        b.event(event, &span.start)?;
    }
    Ok(Parsed {
        value: b.root.unwrap_or(Value::Null),
        entries: b.entries,
    })
}

/// Holds `text` to this module's budget (depth, nodes, aliases, expanded
/// size) without building anything, for YAML that another parser reads
/// (serde-saphyr for typed configs, the checker's span-keeping reader): the
/// same limits for every YAML we read. Only a breach is an error; syntax,
/// duplicate keys and the like are the other parser's to judge, and the
/// count goes on past them, so they cannot hide a bomb behind them.
pub fn check_budget(text: &str) -> Result<(), Error> {
    let max_bytes = max_expanded(text.len());
    // Open collections: (anchor id, nodes, bytes, height); anchors: id ->
    // (nodes, bytes, height).
    let mut open: Vec<(usize, usize, usize, usize)> = Vec::new();
    let mut anchors: std::collections::HashMap<usize, (usize, usize, usize)> =
        std::collections::HashMap::new();
    let (mut nodes, mut bytes, mut aliases) = (0usize, 0usize, 0usize);
    for event in Parser::new_from_str(text) {
        let Ok((event, span)) = event else {
            return Ok(());
        };
        let at = &span.start;
        let (anchor, size) = match event {
            Event::SequenceStart(_, anchor, _) | Event::MappingStart(_, anchor, _) => {
                if open.len() >= MAX_DEPTH {
                    return Err(Error::new(Cause::Budget, at));
                }
                open.push((anchor, 1, 1, 1));
                continue;
            }
            Event::SequenceEnd | Event::MappingEnd => {
                let Some((anchor, n, b, h)) = open.pop() else {
                    return Ok(());
                };
                (anchor, (n, b, h))
            }
            Event::Scalar(text, _, anchor, _) => {
                let b = text.len().max(1);
                bytes = bytes.saturating_add(b);
                nodes = nodes.saturating_add(1);
                (anchor, (1, b, 1))
            }
            Event::Alias(id) => {
                aliases += 1;
                let size = anchors.get(&id).copied().unwrap_or((1, 1, 1));
                nodes = nodes.saturating_add(size.0);
                bytes = bytes.saturating_add(size.1);
                (0, size)
            }
            _ => continue,
        };
        if aliases > MAX_ALIASES
            || nodes > MAX_NODES
            || bytes > max_bytes
            || open.len() + size.2 > MAX_DEPTH
        {
            return Err(Error::new(Cause::Budget, at));
        }
        if anchor != 0 {
            anchors.insert(anchor, size);
        }
        if let Some(parent) = open.last_mut() {
            parent.1 = parent.1.saturating_add(size.0);
            parent.2 = parent.2.saturating_add(size.1);
            parent.3 = parent.3.max(size.2 + 1);
        }
    }
    Ok(())
}

/// The scanner's message on one line, without the character that its
/// "unexpected character" message quotes: a config file may hold a
/// credential inline, and the position already says where.
fn scanner_message(info: &str) -> String {
    if info.starts_with("unexpected character") {
        return "unexpected character".into();
    }
    info.replace('\n', " ")
}

/// Parses a YAML config into `T`, as the core's `config::from_yaml` does
/// with serde-saphyr: empty text (or only comments) is `T::default()`, and an
/// error is one line that names the position and quotes no value.
///
/// Each top-level key is first checked alone (every field of `T` must have
/// a default), so that an unknown key or a bad value is reported at its
/// position. A plain scalar that reads as a number or boolean is given to a
/// field as its text when the field wants a string (`dir: 2024` is a path).
pub fn from_yaml<T: DeserializeOwned + Default>(text: &str) -> Result<T, String> {
    if text.trim().is_empty() {
        return Ok(T::default());
    }
    let parsed = parse(text).map_err(|e| e.to_string())?;
    let mut map = match parsed.value {
        Value::Null => return Ok(T::default()),
        Value::Object(map) => map,
        _ => {
            return Err(
                "the config must be a mapping of keys to values at line 1, column 1".into(),
            );
        }
    };
    for entry in parsed.entries {
        let Some(value) = map.get_mut(&entry.key) else {
            continue;
        };
        let alone = |v: Value| {
            // `insert`, not `from_iter`: collecting into the map would link
            // a sort of its entries (about 3.5 KB) for this one entry.
            let mut one = Map::new();
            one.insert(entry.key.clone(), v);
            serde_json::from_value::<T>(Value::Object(one))
        };
        let Err(e) = alone(value.clone()) else {
            continue;
        };
        match entry.plain {
            Some(text) if alone(Value::String(text.clone())).is_ok() => {
                *value = Value::String(text)
            }
            _ => {
                let shown = describe_error(&e);
                let at = if shown.starts_with("unknown field") {
                    entry.key_at
                } else {
                    entry.value_at
                };
                return Err(format!("{shown} at {at}"));
            }
        }
    }
    // Nested string fields take scalars as their text too ([`crate::lenient`]).
    crate::lenient::from_value(Value::Object(map)).map_err(|e| describe_error(&e))
}

/// A value under construction, with what the budget needs to know.
struct Node {
    value: Value,
    /// Nodes in this subtree.
    size: usize,
    /// Levels in this subtree (a scalar is 1).
    height: usize,
    /// Bytes of scalar text in this subtree, keys included.
    bytes: usize,
}

/// An open sequence or mapping.
struct Frame {
    items: Vec<Value>,
    map: Option<Map<String, Value>>,
    /// A mapping's key waiting for its value, and where it was.
    key: Option<(String, Pos)>,
    /// Mappings named by `<<`, merged under the explicit keys at the end.
    merges: Vec<Value>,
    /// The keys that were plain numbers or booleans, as values.
    typed_keys: Vec<Value>,
    anchor: usize,
    size: usize,
    height: usize,
    bytes: usize,
}

#[derive(Default)]
struct Builder {
    stack: Vec<Frame>,
    /// Anchored nodes: id, value, size, height.
    anchors: Vec<(usize, Node)>,
    root: Option<Value>,
    documents: usize,
    nodes: usize,
    aliases: usize,
    /// Bytes of scalar text so far, alias expansions included, and the most
    /// allowed.
    bytes: usize,
    max_bytes: usize,
    entries: Vec<Entry>,
}

impl Builder {
    fn event(&mut self, event: Event<'_>, at: &Marker) -> Result<(), Error> {
        let (node, anchor, plain) = match event {
            Event::DocumentStart(..) => {
                self.documents += 1;
                if self.documents > 1 {
                    return Err(Error::new(Cause::MultipleDocuments, at));
                }
                return Ok(());
            }
            Event::SequenceStart(_, anchor, _) => return self.open(None, anchor, at),
            Event::MappingStart(_, anchor, _) => return self.open(Some(Map::new()), anchor, at),
            Event::SequenceEnd | Event::MappingEnd => {
                let Some(frame) = self.stack.pop() else {
                    return Err(at.into());
                };
                let (node, anchor) = close(frame, at)?;
                (node, anchor, None)
            }
            Event::Scalar(text, style, anchor, tag) => {
                let value = scalar(&text, style, tag.as_deref(), at)?;
                let bytes = text.len().max(1);
                // The text of a plain scalar that is not a string: a key
                // keeps its spelling (`yes:` is the key "yes", as with
                // serde-saphyr), a typed string field can take it.
                let plain =
                    (style == ScalarStyle::Plain && !value.is_string()).then(|| text.into_owned());
                let node = Node {
                    value,
                    size: 1,
                    height: 1,
                    bytes,
                };
                self.bytes = self.bytes.saturating_add(node.bytes);
                (node, anchor, plain)
            }
            Event::Alias(id) => {
                self.aliases += 1;
                if self.aliases > MAX_ALIASES {
                    return Err(Error::new(Cause::Budget, at));
                }
                let Some((_, target)) = self.anchors.iter().rev().find(|(a, _)| *a == id) else {
                    return Err(Error::new(Cause::UnknownAlias, at));
                };
                // Checked before the copy is made: the copy is what costs.
                self.bytes = self.bytes.saturating_add(target.bytes);
                if self.bytes > self.max_bytes {
                    return Err(Error::new(Cause::Budget, at));
                }
                let node = Node {
                    value: target.value.clone(),
                    size: target.size,
                    height: target.height,
                    bytes: target.bytes,
                };
                (node, 0, None)
            }
            _ => return Ok(()),
        };
        self.nodes = self.nodes.saturating_add(node.size);
        if self.nodes > MAX_NODES
            || self.bytes > self.max_bytes
            || self.stack.len() + node.height > MAX_DEPTH
        {
            return Err(Error::new(Cause::Budget, at));
        }
        if anchor != 0 {
            let copy = Node {
                value: node.value.clone(),
                size: node.size,
                height: node.height,
                bytes: node.bytes,
            };
            self.anchors.push((anchor, copy));
        }
        self.add(node, at, plain)
    }

    fn open(
        &mut self,
        map: Option<Map<String, Value>>,
        anchor: usize,
        at: &Marker,
    ) -> Result<(), Error> {
        if self.stack.len() >= MAX_DEPTH {
            return Err(Error::new(Cause::Budget, at));
        }
        self.stack.push(Frame {
            items: Vec::new(),
            map,
            key: None,
            merges: Vec::new(),
            typed_keys: Vec::new(),
            anchor,
            size: 1,
            height: 1,
            bytes: 1,
        });
        Ok(())
    }

    /// Puts a finished node into the open collection, or makes it the root.
    fn add(&mut self, node: Node, at: &Marker, plain: Option<String>) -> Result<(), Error> {
        let top_level = self.stack.len() == 1;
        let Some(frame) = self.stack.last_mut() else {
            self.root = Some(node.value);
            return Ok(());
        };
        frame.size = frame.size.saturating_add(node.size);
        frame.bytes = frame.bytes.saturating_add(node.bytes);
        frame.height = frame.height.max(node.height + 1);
        let Some(map) = frame.map.as_mut() else {
            frame.items.push(node.value);
            return Ok(());
        };
        let Some((key, key_at)) = frame.key.take() else {
            // `1` and `0x1`, `yes` and `true` are the same key to YAML
            // (and to serde-saphyr), though not the same text.
            let typed = matches!(node.value, Value::Number(_) | Value::Bool(_));
            let twice = typed && frame.typed_keys.contains(&node.value);
            if typed && !twice {
                frame.typed_keys.push(node.value.clone());
            }
            let key = key_text(node.value, plain, at)?;
            if twice {
                return Err(Error::new(Cause::DuplicateKey(key), at));
            }
            frame.key = Some((key, at.into()));
            return Ok(());
        };
        if key == "<<" {
            frame.merges.push(node.value);
            return Ok(());
        }
        if map.contains_key(&key) {
            return Err(Error::new(Cause::DuplicateKey(key), key_at));
        }
        if top_level {
            self.entries.push(Entry {
                key: key.clone(),
                key_at,
                value_at: at.into(),
                plain: plain.filter(|_| !node.value.is_null()),
            });
        }
        map.insert(key, node.value);
        Ok(())
    }
}

/// A finished sequence or mapping; `<<` merges fill in the keys the
/// mapping does not set itself, earlier merged mappings first.
fn close(frame: Frame, at: &Marker) -> Result<(Node, usize), Error> {
    let value = match frame.map {
        None => Value::Array(frame.items),
        Some(mut map) => {
            for merge in frame.merges {
                let sources = match merge {
                    Value::Array(items) => items,
                    other => vec![other],
                };
                for source in sources {
                    let source = match source {
                        Value::Object(source) => source,
                        Value::Null => continue, // `<<: ~` merges nothing
                        _ => return Err(Error::new(Cause::BadMerge, at)),
                    };
                    for (k, v) in source {
                        // A merged `1` does not override an explicit `0x1`.
                        let typed = int(&k).is_some_and(|n| frame.typed_keys.contains(&n));
                        if !typed {
                            map.entry(k).or_insert(v);
                        }
                    }
                }
            }
            Value::Object(map)
        }
    };
    let node = Node {
        value,
        size: frame.size,
        height: frame.height,
        bytes: frame.bytes,
    };
    Ok((node, frame.anchor))
}

/// A mapping key as a string: a string as it is, a number or boolean as it
/// was written.
fn key_text(value: Value, plain: Option<String>, at: &Marker) -> Result<String, Error> {
    match (value, plain) {
        (Value::String(s), _) => Ok(s),
        (Value::Number(_) | Value::Bool(_), Some(text)) => Ok(text),
        _ => Err(Error::new(Cause::KeyNotAString, at)),
    }
}

/// The value of a scalar: a core-schema tag decides, a quoted or block
/// scalar is a string, a plain one is null, a boolean, an integer, a float
/// or else a string, tried in that order.
fn scalar(text: &str, style: ScalarStyle, tag: Option<&Tag>, at: &Marker) -> Result<Value, Error> {
    let t = text.trim_matches([' ', '\t', '\r', '\n']);
    let bad = |ty| Error::new(Cause::BadTagged(ty), at);
    match tag.and_then(core_type) {
        Some("str") => return Ok(Value::String(text.to_owned())),
        Some("null") => return Ok(Value::Null),
        Some("bool") => return bool11(t).map(Value::Bool).ok_or_else(|| bad("!!bool")),
        Some("int") => return int(t).ok_or_else(|| bad("!!int")),
        Some("float") => return float(t, at)?.ok_or_else(|| bad("!!float")),
        Some("binary") => return base64(t).map(Value::String).ok_or_else(|| bad("!!binary")),
        _ => {}
    }
    if style != ScalarStyle::Plain {
        return Ok(Value::String(text.to_owned()));
    }
    if matches!(t, "" | "~" | "null" | "Null" | "NULL") {
        return Ok(Value::Null);
    }
    if let Some(b) = bool11(t) {
        return Ok(Value::Bool(b));
    }
    if let Some(n) = int(t) {
        return Ok(n);
    }
    Ok(float(t, at)?.unwrap_or_else(|| Value::String(text.to_owned())))
}

/// The type a `tag:yaml.org,2002:` tag names (`core_suffix` knows the
/// seven JSON-like ones only, not `binary`).
fn core_type(tag: &Tag) -> Option<&str> {
    tag.core_suffix()
        .or_else(|| (tag.handle() == "tag:yaml.org,2002:").then(|| tag.suffix()))
}

/// YAML 1.1 booleans, any case: y, yes, true, on / n, no, false, off.
fn bool11(t: &str) -> Option<bool> {
    let is = |words: [&str; 4]| words.iter().any(|w| t.eq_ignore_ascii_case(w));
    if is(["y", "yes", "true", "on"]) {
        Some(true)
    } else if is(["n", "no", "false", "off"]) {
        Some(false)
    } else {
        None
    }
}

/// An integer: optional sign, then `0x`, `0o`, `0b` or decimal digits
/// without a leading zero, `_` allowed between digits. Too large for 64
/// bits is not an integer (it may still be a float).
fn int(t: &str) -> Option<Value> {
    let (negative, body) = match t.as_bytes().first()? {
        b'-' => (true, t.get(1..)?),
        b'+' => (false, t.get(1..)?),
        _ => (false, t),
    };
    let lower = body.get(..2).map(str::to_ascii_lowercase);
    let (radix, digits) = match lower.as_deref() {
        Some("0x") => (16, body.get(2..)?),
        Some("0o") => (8, body.get(2..)?),
        Some("0b") => (2, body.get(2..)?),
        _ if body.len() > 1 && body.starts_with('0') => return None,
        _ => (10, body),
    };
    // `from_str_radix` would take a second sign.
    if !digits
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'_')
        || digits.is_empty()
        || digits.starts_with('_')
        || digits.ends_with('_')
        || digits.contains("__")
    {
        return None;
    }
    let magnitude = u64::from_str_radix(&digits.replace('_', ""), radix).ok()?;
    if !negative {
        return Some(Value::from(magnitude));
    }
    let n = 0i64.checked_sub_unsigned(magnitude)?;
    Some(Value::from(n))
}

/// A float (also integers too large for 64 bits): `None` when `t` is not
/// one; an error for `.inf`, `.nan` and values too large for an f64.
fn float(t: &str, at: &Marker) -> Result<Option<Value>, Error> {
    let unsigned = t.trim_start_matches(['+', '-']);
    let special = [".inf", ".nan"]
        .iter()
        .any(|s| unsigned.eq_ignore_ascii_case(s));
    // Rust also reads `inf`, `NaN` and `infinity`, which YAML does not, and
    // YAML floats take no `_`.
    if !special && (t.contains('_') || !t.bytes().any(|b| b.is_ascii_digit())) {
        return Ok(None);
    }
    if special {
        return Err(Error::new(Cause::NonFinite, at));
    }
    let Ok(f) = t.parse::<f64>() else {
        return Ok(None);
    };
    match Number::from_f64(f) {
        Some(n) => Ok(Some(Value::Number(n))),
        None => Err(Error::new(Cause::NonFinite, at)),
    }
}

/// The text of a `!!binary` scalar: standard base64 (whitespace ignored)
/// of UTF-8 text.
fn base64(t: &str) -> Option<String> {
    let mut bits = 0u32;
    let mut count = 0u32;
    let mut out = Vec::with_capacity(t.len() / 4 * 3);
    for c in t.bytes().filter(|b| !b.is_ascii_whitespace()) {
        let v = match c {
            b'A'..=b'Z' => c - b'A',
            b'a'..=b'z' => c - b'a' + 26,
            b'0'..=b'9' => c - b'0' + 52,
            b'+' => 62,
            b'/' => 63,
            b'=' => continue,
            _ => return None,
        };
        bits = (bits << 6) | u32::from(v);
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use serde::Deserialize;
    use serde_json::json;

    use super::*;

    /// What serde-saphyr (the core's parser, which this module replaces
    /// here) makes of `text` as an untyped value.
    fn reference(text: &str) -> Result<Value, String> {
        serde_saphyr::from_str::<Value>(text).map_err(|e| e.to_string())
    }

    #[test]
    fn same_values_as_serde_saphyr() {
        let corpus = [
            "a: yes",
            "a: no",
            "a: on",
            "a: Off",
            "a: y",
            "a: N",
            "a: tRUE",
            "a: TRUE",
            "a: 0x1F",
            "a: 0o17",
            "a: 0b101",
            "a: 017",
            "a: -017",
            "a: 00",
            "a: 1_000",
            "a: -1_000",
            "a: 1__0",
            "a: _1",
            "a: 0x_1",
            "a: 0o",
            "a: +5",
            "a: -0",
            "a: +0x10",
            "a: -0x10",
            "a: 0xffffffffffffffff",
            "a: 12345678901234567890",
            "a: 99999999999999999999",
            "a: -9223372036854775808",
            "a: -9223372036854775809",
            "a: 1e3",
            "a: 1E3",
            "a: 1.5",
            "a: 1.",
            "a: .5",
            "a: -.5",
            "a: 0.",
            "a: +1.5e+3",
            "a: 0.1e-2",
            "a: 0017.5",
            "a: 1_0.5",
            "a: 1.5.6",
            "a: inf",
            "a: nan",
            "a: infinity",
            "a: 1:30",
            "a: 2001-12-14",
            "a: ~",
            "a:",
            "a: null",
            "a: Null",
            "a: NULL",
            "a: nULL",
            "a: '1'",
            "a: ' 5'",
            "a: \"\"",
            "a: \"\\x41\\u00e9\"",
            "a: !!str 5",
            "a: !!str ~",
            "a: !!str",
            "a: !!int '5'",
            "a: !!int 0x10",
            "a: !!float 1",
            "a: !!float '2'",
            "a: !!bool yes",
            "a: !!null ''",
            "a: !custom x",
            "a: !custom 5",
            "a: !custom ~",
            "a: !!binary aGVsbG8=",
            "a: !!map {}",
            "a: ++0",
            "a: -+0",
            "a: +-1.5",
            "a: --1",
            "a: +.5",
            "a: -.5e1",
            "a: 1e+",
            "a: +",
            "a: 1_",
            "a: +_1",
            "a: 0x",
            "a: -0o7",
            "a: 0X10",
            "a: 0O7",
            "a: 0B1",
            "a: +0",
            "a: 1e5_0",
            "a: 0.0.0",
            "{0x1: yes, <<: {1: yes}}",
            "{<<: ~}",
            "{<<: [~, {a: 1}]}",
            "a: |\n  x\n  y\n",
            "a: >\n  x\n  y\n",
            "a: |-\n  x\n",
            "1: x",
            "true: x",
            "yes: x",
            "0x10: x",
            "? a\n: b",
            "a: &x 1\nb: *x",
            "a: &x\nb: *x",
            "a: &x [1]\nb: *x\nc: *x",
            "a: !!str &x 1\nb: *x",
            "base: &b {x: 1}\nc:\n  <<: *b\n  y: 2",
            "base: &b {x: 1}\nc:\n  <<: *b\n  x: 2",
            "base: &b {x: 1}\nc:\n  x: 2\n  <<: *b",
            "c:\n  <<: [{x: 1}, {y: 2}]",
            "c:\n  <<: [{x: 1}, {x: 2}]",
            "x: &a {q: 1}\ny:\n  <<: *a\n  <<: {z: 2}",
            "<<: {a: 1}",
            "a: {b: [1, {c: d}]}",
            "a: 1\n...\n",
            "# only",
            "[1, 2]",
            "5",
            "\"s\"",
            "%YAML 1.1\n---\na: yes",
            "- a\n- - b\n  - c\n",
            "a:\n  - x: 1\n    y: [2]\n",
            // Refused by both.
            "a: .inf",
            "a: -.inf",
            "a: .NaN",
            "a: +.Inf",
            "a: 1e400",
            "~: x",
            "[a]: x",
            "{a: 1}: x",
            "? [a]\n: b",
            "a: 1\na: 2",
            "a: 1\n'a': 2",
            "a: 1\nb: 2\na: 3",
            "---\na: 1\n---\nb: 2",
            "a: *nope",
            "<<: 5",
            "<<: [{a: 1}, 5]",
            "a: -",
            "a: !!int x",
            "a: !!bool '1'",
            "a: [1",
            "a: 'x",
            "a:\n  - x\n b: y: z\n",
        ];
        for text in corpus {
            let ours = parse(text).map(|p| p.value).map_err(|e| e.to_string());
            match (ours, reference(text)) {
                (Ok(ours), Ok(theirs)) => assert_eq!(ours, theirs, "{text:?}"),
                (Err(_), Err(_)) => {}
                (ours, theirs) => panic!("{text:?}: ours {ours:?}, serde-saphyr {theirs:?}"),
            }
        }
    }

    #[test]
    fn duplicates_that_serde_saphyr_lets_through_are_refused() {
        // serde-saphyr 2.1 answers {"1": true} here; a key given twice is an
        // error whatever its quoting.
        let e = parse("1: x\n'1': y\n").unwrap_err();
        assert_eq!(e.cause, Cause::DuplicateKey("1".into()));
        assert_eq!(e.at, Pos { line: 2, column: 1 });
        assert_eq!(e.without_text(), "duplicate key at line 2, column 1");
    }

    #[test]
    fn hostile_input_hits_the_budget_not_the_stack() {
        // granit-parser stops past 255 levels itself, the builder at 64.
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        assert!(parse(&deep).is_err());
        let deep = format!("{}{}", "[".repeat(100), "]".repeat(100));
        assert!(parse(&deep).unwrap_err().is_budget());
        let block: String = (0..100).map(|i| format!("{}k:\n", " ".repeat(i))).collect();
        assert!(parse(&block).unwrap_err().is_budget());
        // One long string aliased a few levels deep: every count is small,
        // the expansion is not.
        let long = "x".repeat(30_000);
        let bomb = format!(
            "a: &a \"{long}\"\nb: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]\nc: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]\nd: [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]\n"
        );
        assert!(parse(&bomb).unwrap_err().is_budget());
        // The same shape at a size the document can afford still parses.
        let fine = "a: &a \"xyz\"\nb: &b [*a, *a, *a]\nc: [*b, *b, *b]\n";
        assert!(parse(fine).is_ok());
        assert!(check_budget(&bomb).is_err());
        // A duplicate key first does not hide the bomb from the budget.
        assert!(check_budget(&format!("k: 1\nk: 2\n{bomb}")).is_err());
        assert!(check_budget(fine).is_ok());
        assert!(check_budget(&format!("k: 1\nk: 2\n{fine}")).is_ok());
        assert!(crate::config::from_yaml::<Value>(&bomb).is_err());
        // 65 levels by aliases: each level fine alone, too deep expanded.
        let mut nested = String::from("a0: &a0 [x]\n");
        for i in 1..70 {
            nested.push_str(&format!("a{i}: &a{i} [*a{}]\n", i - 1));
        }
        assert!(parse(&nested).unwrap_err().is_budget());
        let mut many = String::from("a: &a x\nb: [");
        many.push_str(&"*a, ".repeat(MAX_ALIASES + 1));
        many.push_str("]\n");
        assert!(parse(&many).unwrap_err().is_budget());
        // Just under the limits is fine.
        let ok = format!(
            "{}1{}",
            "[".repeat(MAX_DEPTH - 1),
            "]".repeat(MAX_DEPTH - 1)
        );
        assert!(parse(&ok).is_ok());
    }

    #[test]
    fn errors_name_the_position_not_the_text() {
        let e = parse("a: 1\nb: [SECRETVALUE\n").unwrap_err();
        assert!(matches!(e.cause, Cause::Syntax(_)), "{e}");
        assert_eq!(e.at.line, 2, "{e}");
        assert!(!e.to_string().contains("SECRETVALUE"), "{e}");
        // The one scanner message that shows a character of the text.
        let e = parse("a: `S\n").unwrap_err();
        assert_eq!(
            e.to_string(),
            "unexpected character at line 1, column 4",
            "{e}"
        );
        assert_eq!(e.without_text(), "syntax error at line 1, column 4");
        let e = parse("a: 1\nb: .inf\n").unwrap_err();
        assert_eq!(
            (e.cause, e.at),
            (Cause::NonFinite, Pos { line: 2, column: 4 })
        );
        let e = parse("a: !!int SECRETVALUE\n").unwrap_err().to_string();
        assert!(!e.contains("SECRETVALUE") && e.contains("!!int"), "{e}");
    }

    #[test]
    fn top_level_entries_keep_their_positions() {
        let parsed = parse("a: 1\n  # c\nbee:   yes\nc: text\n").unwrap();
        let seen: Vec<_> = parsed
            .entries
            .iter()
            .map(|e| (e.key.as_str(), e.key_at, e.value_at, e.plain.as_deref()))
            .collect();
        let pos = |line, column| Pos { line, column };
        assert_eq!(
            seen,
            [
                ("a", pos(1, 1), pos(1, 4), Some("1")),
                ("bee", pos(3, 1), pos(3, 8), Some("yes")),
                ("c", pos(4, 1), pos(4, 4), None),
            ]
        );
        assert_eq!(parsed.value, json!({"a": 1, "bee": true, "c": "text"}));
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(deny_unknown_fields, default)]
    struct Conf {
        dir: Option<std::path::PathBuf>,
        flag: bool,
        max: u64,
    }

    #[test]
    fn configs_map_to_typed_fields() {
        let conf = from_yaml::<Conf>("dir: /x\nflag: yes\nmax: 0x10\n").unwrap();
        assert_eq!(
            conf,
            Conf {
                dir: Some("/x".into()),
                flag: true,
                max: 16
            }
        );
        // A path that reads as a number keeps its spelling.
        let conf = from_yaml::<Conf>("dir: 0x10\n").unwrap();
        assert_eq!(conf.dir, Some("0x10".into()));
        for empty in ["", "\n  \n", "# only a comment\n", "---\n"] {
            assert_eq!(
                from_yaml::<Conf>(empty).unwrap(),
                Conf::default(),
                "{empty:?}"
            );
        }
    }

    #[test]
    fn config_errors_point_at_the_key_or_value() {
        let e = from_yaml::<Conf>("flag: true\ndirr: /x\n").unwrap_err();
        assert!(e.starts_with("unknown field `dirr`"), "{e}");
        assert!(e.ends_with(" at line 2, column 1"), "{e}");
        let e = from_yaml::<Conf>("flag: true\nmax:   hunter2\n").unwrap_err();
        assert!(!e.contains("hunter2") && e.contains("expected u64"), "{e}");
        assert!(e.ends_with(" at line 2, column 8"), "{e}");
        let e = from_yaml::<Conf>("flag: true\nflag: false\n").unwrap_err();
        assert_eq!(e, "duplicate key `flag` at line 2, column 1");
        let e = from_yaml::<Conf>("- a\n").unwrap_err();
        assert!(e.contains("mapping"), "{e}");
        let e = from_yaml::<Conf>("flag: true\nmax: [1\n").unwrap_err();
        assert!(e.contains("line 2"), "{e}");
        assert!(!e.contains('\n'), "{e}");
    }

    #[test]
    fn binary_scalars_decode() {
        assert_eq!(base64("aGVs\n bG8="), Some("hello".into()));
        assert_eq!(base64("aGVsbG8"), Some("hello".into()));
        assert_eq!(base64("a*b"), None);
        assert_eq!(base64("/w=="), None, "not UTF-8");
    }
}
