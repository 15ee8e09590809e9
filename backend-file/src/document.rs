//! Files that are documents: JSON, YAML or `.env`, parsed into one
//! `serde_json::Value` so that the core's key rules ([`backend_core::key`])
//! apply to all three alike.
//!
//! The format comes from the file name's extension (`.json`, `.yaml`,
//! `.yml`, `.env`); a name without one of these (a Kubernetes key such as
//! `config`, a Docker secret `db`) is sniffed: `{` or `[` first means JSON,
//! only `KEY=value` lines means `.env`, anything else is read as YAML.
//!
//! A parsed document holds secret strings outside a [`backend_core::Secret`],
//! so [`Doc`] overwrites them when dropped. Parse errors give a position,
//! never a piece of the text.

use std::fmt;

use serde_json::Value;
use zeroize::Zeroize;

use crate::dotenv;

/// A document format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// JSON.
    Json,
    /// YAML (JSON is YAML too, but JSON gets its own, stricter parser).
    Yaml,
    /// `KEY=value` lines.
    Env,
}

impl Format {
    /// The format named by `name`'s extension, if it names one.
    pub fn from_name(name: &str) -> Option<Self> {
        let file = name.rsplit('/').next().unwrap_or(name);
        let (_, ext) = file.rsplit_once('.')?;
        match ext.to_ascii_lowercase().as_str() {
            "json" => Some(Self::Json),
            "yaml" | "yml" => Some(Self::Yaml),
            // `.env` alone is a dotfile whose whole name is the extension.
            "env" => Some(Self::Env),
            _ => None,
        }
    }

    /// The format of `text`, judged by its content.
    pub fn sniff(text: &str) -> Self {
        let text = text.trim_start_matches('\u{feff}');
        if text.trim_start().starts_with(['{', '[']) {
            Self::Json
        } else if dotenv::looks_like(text) {
            Self::Env
        } else {
            Self::Yaml
        }
    }

    /// The format of the file `name` holding `text`.
    pub fn of(name: &str, text: &str) -> Self {
        Self::from_name(name).unwrap_or_else(|| Self::sniff(text))
    }

    fn label(self) -> &'static str {
        match self {
            Self::Json => "JSON",
            Self::Yaml => "YAML",
            Self::Env => ".env",
        }
    }
}

/// A parsed document; its strings are overwritten on drop.
pub struct Doc(Value);

impl Doc {
    /// The document as JSON.
    pub fn value(&self) -> &Value {
        &self.0
    }
}

impl Drop for Doc {
    fn drop(&mut self) {
        wipe(&mut self.0);
    }
}

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Doc(<redacted>)")
    }
}

/// Overwrites every string value in `v` (field names are not secrets and
/// cannot be changed in place).
fn wipe(v: &mut Value) {
    match v {
        Value::String(s) => s.zeroize(),
        Value::Array(items) => items.iter_mut().for_each(wipe),
        Value::Object(map) => map.values_mut().for_each(wipe),
        Value::Null | Value::Bool(_) | Value::Number(_) => {}
    }
}

/// Parses `text` as `format`. The error says which format was expected and
/// where the text stopped making sense.
pub fn parse(text: &str, format: Format) -> Result<Doc, String> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let parsed = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| json_error(&e)),
        Format::Yaml => yaml(text),
        Format::Env => dotenv::parse(text),
    };
    parsed
        .map(Doc)
        .map_err(|cause| format!("not a valid {} document: {cause}", format.label()))
}

fn json_error(e: &serde_json::Error) -> String {
    // serde_json's own message may echo a string it met (for typed targets);
    // the category and position are all we need and hold no content.
    let what = match e.classify() {
        serde_json::error::Category::Eof => "unexpected end",
        serde_json::error::Category::Syntax => "syntax error",
        serde_json::error::Category::Data => "unsupported data",
        serde_json::error::Category::Io => "read error",
    };
    format!("{what} at line {}, column {}", e.line(), e.column())
}

fn yaml(text: &str) -> Result<Value, String> {
    if text.trim().is_empty() {
        return Err("the document is empty".to_owned());
    }
    // A document's text might be a secret, keys included: errors give the
    // position only.
    backend_core::yaml::parse(text)
        .map(|parsed| parsed.value)
        .map_err(|e| e.without_text())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn formats_by_name_then_content() {
        assert_eq!(Format::from_name("a/db.JSON"), Some(Format::Json));
        assert_eq!(Format::from_name("db.yml"), Some(Format::Yaml));
        assert_eq!(Format::from_name("x.yaml"), Some(Format::Yaml));
        assert_eq!(Format::from_name("prod.env"), Some(Format::Env));
        assert_eq!(Format::from_name(".env"), Some(Format::Env));
        assert_eq!(Format::from_name("db_password"), None);
        assert_eq!(Format::from_name("dir.json/file"), None);
        assert_eq!(Format::sniff("  {\"a\":1}"), Format::Json);
        assert_eq!(Format::sniff("\u{feff}[1]"), Format::Json);
        assert_eq!(Format::sniff("A=1\nB=2\n"), Format::Env);
        assert_eq!(Format::sniff("\u{feff}A=1\n"), Format::Env);
        assert_eq!(Format::sniff("a: 1\n"), Format::Yaml);
        assert_eq!(Format::of("x.yaml", "{\"a\":1}"), Format::Yaml);
    }

    #[test]
    fn all_formats_give_the_same_tree() {
        let want = json!({"user": "admin", "nested": {"pw": "deep"}});
        let j = parse(r#"{"user":"admin","nested":{"pw":"deep"}}"#, Format::Json).unwrap();
        let y = parse("user: admin\nnested:\n  pw: deep\n", Format::Yaml).unwrap();
        assert_eq!(j.value(), &want);
        assert_eq!(y.value(), &want);
        let e = parse("user=admin\n", Format::Env).unwrap();
        assert_eq!(e.value(), &json!({"user": "admin"}));
        let y = parse("port: 5432\ntls: true\nlist: [a, 1]\n", Format::Yaml).unwrap();
        assert_eq!(
            y.value(),
            &json!({"port": 5432, "tls": true, "list": ["a", 1]})
        );
    }

    #[test]
    fn errors_hold_no_content() {
        for (text, format) in [
            ("{\"pw\": \"SECRETVALUE", Format::Json),
            ("{\"pw\": SECRETVALUE}", Format::Json),
            ("pw: [SECRETVALUE\n", Format::Yaml),
            ("pw: \"SECRETVALUE\n", Format::Yaml),
            ("a:\n  - x\n b: SECRETVALUE: y\n", Format::Yaml),
            ("SECRETVALUE\n", Format::Env),
            ("", Format::Yaml),
        ] {
            let e = parse(text, format).unwrap_err();
            assert!(!e.contains("SECRETVALUE"), "{e}");
            assert!(e.starts_with("not a valid "), "{e}");
        }
    }

    #[test]
    fn alias_bombs_hit_the_budget() {
        let mut text = String::from("a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n");
        for i in 1..12 {
            let refs = vec![format!("*a{}", i - 1); 9].join(", ");
            text.push_str(&format!("a{i}: &a{i} [{refs}]\n"));
        }
        let e = parse(&text, Format::Yaml).unwrap_err();
        assert!(e.contains("over the parser's limits"), "{e}");
    }

    #[test]
    fn wipe_overwrites_strings() {
        let mut v = json!({"a": "secret", "b": ["x", {"c": "y"}], "n": 1});
        wipe(&mut v);
        assert_eq!(v, json!({"a": "", "b": ["", {"c": ""}], "n": 1}));
    }
}
