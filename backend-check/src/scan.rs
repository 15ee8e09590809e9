//! Finding handles where the agent finds them.
//!
//! **Which strings are handles.** A YAML string value is a handle when,
//! trimmed of spaces and tabs at both ends, it starts with `ENC[` and ends
//! with `]`; the handle is what lies between. Keys, numbers, booleans and
//! `db-ENC[x]` never are. YAML is parsed into [`Node`], which keeps strings
//! apart from every other scalar and remembers each value's line.
//!
//! **Which parts of a file the agent resolves.** In its main config
//! (`datadog.yaml`, `stackstate.yaml`, ...) everything. In a check config
//! only `init_config`, `instances`, `jmx_metrics` and `logs` (Datadog's
//! `configFormat`); a handle elsewhere (`ad_identifiers`, a stray top-level
//! key) is listed, marked as never resolved.
//!
//! **Which files the agent reads** (its `config_reader.go`), and so which
//! files a directory scan reads:
//! - a directory holding `conf.d/` is an agent config directory: its main
//!   config files, then `conf.d/` as below;
//! - any other directory is a `conf.d`: its files named `*.yaml`, `*.yml`,
//!   `*.yaml.default` or `*.yml.default` (not `metrics.yaml`), and the same
//!   files one level down in directories named `<check>.d`. Deeper
//!   directories, directories without `.d`, and other names (a
//!   `conf.yaml.example`) are not read by the agent and are listed as skipped;
//! - a `.default` file is ignored when its check has another config file;
//! - an empty file is skipped quietly; a check config without `instances`,
//!   `logs` or `jmx_metrics` is not loaded (the agent logs a warning).
//!
//! A file named on the command line is always read, whatever its name.
//! Files are read up to [`MAX_FILE_BYTES`], at most [`MAX_FILES`] of them.

use std::collections::HashSet;
use std::fmt;
use std::path::{Path, PathBuf};

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// Largest YAML file read; the agent's own configs are a few KiB.
pub const MAX_FILE_BYTES: u64 = 4 * 1024 * 1024;
/// Most files read in one scan.
pub const MAX_FILES: usize = 10_000;

/// The names of the agents' main config files.
pub const MAIN_CONFIGS: &[&str] = &[
    "datadog.yaml",
    "stackstate.yaml",
    "system-probe.yaml",
    "security-agent.yaml",
];

/// The sections of a check config the agent resolves.
pub const CHECK_SECTIONS: &[&str] = &["init_config", "instances", "jmx_metrics", "logs"];

/// A YAML value, as far as handles care.
#[derive(Debug, Clone, PartialEq)]
pub enum Node {
    /// A string scalar.
    Str(String),
    /// Any other scalar (number, boolean, null), rendered for use as a key.
    Scalar(String),
    /// A sequence.
    Seq(Vec<Spanned<Node>>),
    /// A mapping, in document order.
    Map(Vec<(Node, Spanned<Node>)>),
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any YAML value")
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<Node, E> {
        Ok(Node::Str(v.to_owned()))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<Node, E> {
        Ok(Node::Str(v))
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_i128<E: de::Error>(self, v: i128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_u128<E: de::Error>(self, v: u128) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Node, E> {
        Ok(Node::Scalar(v.to_string()))
    }
    fn visit_bytes<E: de::Error>(self, _: &[u8]) -> Result<Node, E> {
        Ok(Node::Scalar("<binary>".into()))
    }
    fn visit_unit<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar("null".into()))
    }
    fn visit_none<E: de::Error>(self) -> Result<Node, E> {
        Ok(Node::Scalar("null".into()))
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        Node::deserialize(d)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some((k, v)) = map.next_entry::<Node, Spanned<Node>>()? {
            entries.push((k, v));
        }
        Ok(Node::Map(entries))
    }
}

/// The agent's rule: the handle inside `ENC[...]`, if `value` is one.
pub fn handle_of(value: &str) -> Option<&str> {
    let t = value.trim_matches([' ', '\t']);
    t.strip_prefix("ENC[")?.strip_suffix(']')
}

/// A handle found in a file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The handle, as sent to the backend.
    pub handle: String,
    /// Where, as `instances[0].password`.
    pub location: String,
    /// 1-based line of the value (0 when unknown).
    pub line: usize,
    /// Whether the agent resolves it (false outside a check's sections).
    pub resolved: bool,
    /// Spaces or tabs around `ENC[...]`: only agents that trim them (newer
    /// Datadog) see a handle; older ones (2020-era code, which StackState
    /// Agent V2 carries) take the text as it is.
    pub padded: bool,
}

/// The role a file plays for the agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The agent's main config: every value is resolved.
    Main,
    /// A check config: only [`CHECK_SECTIONS`] are resolved.
    Check,
}

/// One scanned file.
#[derive(Debug, Clone)]
pub struct FileScan {
    /// The file.
    pub path: PathBuf,
    /// Its role.
    pub role: Role,
    /// The handles in document order, or why the file could not be read.
    pub found: Result<Vec<Found>, String>,
    /// Why the agent would not load the file although it reads it.
    pub not_loaded: Option<String>,
    /// The file has no bytes at all: the agent skips it quietly.
    pub empty: bool,
}

impl FileScan {
    /// The handles the agent resolves for this file, distinct, in order.
    pub fn resolved_handles(&self) -> Vec<String> {
        let mut seen = HashSet::new();
        match &self.found {
            Ok(found) if self.not_loaded.is_none() => found
                .iter()
                .filter(|f| f.resolved && seen.insert(f.handle.clone()))
                .map(|f| f.handle.clone())
                .collect(),
            _ => Vec::new(),
        }
    }
}

/// A file or directory the agent would not read, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Skipped {
    /// The path.
    pub path: PathBuf,
    /// Why.
    pub reason: String,
}

/// Everything one scan saw.
#[derive(Debug, Default)]
pub struct Scan {
    /// Files read, in the order the agent reads them.
    pub files: Vec<FileScan>,
    /// Paths passed over.
    pub skipped: Vec<Skipped>,
}

/// Why a scan could not start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScanError(pub String);

impl fmt::Display for ScanError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ScanError {}

/// Scans the given files and directories.
pub fn scan(paths: &[PathBuf]) -> Result<Scan, ScanError> {
    let mut out = Scan::default();
    for p in paths {
        let meta = std::fs::metadata(p).map_err(|e| {
            ScanError(format!(
                "{}: {}",
                p.display(),
                crate::rights::errno_text(&e)
            ))
        })?;
        if meta.is_dir() {
            scan_dir(p, &mut out)?;
        } else {
            push_file(p, role_by_name(p), &mut out)?;
        }
    }
    Ok(out)
}

fn role_by_name(p: &Path) -> Role {
    let name = p.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if MAIN_CONFIGS.contains(&name) {
        Role::Main
    } else {
        Role::Check
    }
}

fn push_file(p: &Path, role: Role, out: &mut Scan) -> Result<(), ScanError> {
    if out.files.len() >= MAX_FILES {
        return Err(ScanError(format!(
            "more than {MAX_FILES} files to scan; name fewer paths"
        )));
    }
    out.files.push(scan_file(p, role));
    Ok(())
}

fn sorted_entries(dir: &Path) -> Result<Vec<(PathBuf, bool)>, ScanError> {
    let rd = std::fs::read_dir(dir).map_err(|e| {
        ScanError(format!(
            "{}: {}",
            dir.display(),
            crate::rights::errno_text(&e)
        ))
    })?;
    let mut entries: Vec<(PathBuf, bool)> = rd
        .filter_map(Result::ok)
        .map(|e| {
            let path = e.path();
            // Go's DirEntry.IsDir does not follow symlinks; neither do we.
            let is_dir = e.file_type().is_ok_and(|t| t.is_dir());
            (path, is_dir)
        })
        .collect();
    entries.sort();
    Ok(entries)
}

fn scan_dir(dir: &Path, out: &mut Scan) -> Result<(), ScanError> {
    let confd = dir.join("conf.d");
    if confd.is_dir() {
        for name in MAIN_CONFIGS {
            let p = dir.join(name);
            // A FIFO or device under that name is reported, not skipped:
            // the agent would try to read it.
            if p.exists() && !p.is_dir() {
                push_file(&p, Role::Main, out)?;
            }
        }
        return scan_confd(&confd, out);
    }
    scan_confd(dir, out)
}

/// What a file name means to the agent's config reader.
struct ConfName {
    check: String,
    default: bool,
}

/// `postgres.yaml` -> check `postgres`; `x.yml.default` -> default of `x`;
/// other names are not config files.
fn conf_name(file: &str, check_dir: Option<&str>) -> Option<ConfName> {
    let (base, default) = match file.strip_suffix(".default") {
        Some(b) => (b, true),
        None => (file, false),
    };
    let stem = base
        .strip_suffix(".yaml")
        .or_else(|| base.strip_suffix(".yml"))?;
    Some(ConfName {
        check: check_dir.unwrap_or(stem).to_owned(),
        default,
    })
}

fn looks_like_yaml(name: &str) -> bool {
    name.contains(".yaml") || name.contains(".yml")
}

fn scan_confd(confd: &Path, out: &mut Scan) -> Result<(), ScanError> {
    // (path, check, default), in the agent's reading order.
    let mut candidates: Vec<(PathBuf, String, bool)> = Vec::new();
    for (path, is_dir) in sorted_entries(confd)? {
        let name = file_name(&path);
        if is_dir {
            let Some(check) = name.strip_suffix(".d") else {
                out.skipped.push(Skipped {
                    path,
                    reason: "not read by the agent: a check directory's name must end in .d".into(),
                });
                continue;
            };
            for (sub, sub_is_dir) in sorted_entries(&path)? {
                let sub_name = file_name(&sub);
                if sub_is_dir {
                    out.skipped.push(Skipped {
                        path: sub,
                        reason:
                            "not read by the agent: it reads one level of <check>.d directories"
                                .into(),
                    });
                } else if let Some(c) = conf_name(&sub_name, Some(check)) {
                    candidates.push((sub, c.check, c.default));
                } else if looks_like_yaml(&sub_name) {
                    out.skipped.push(not_a_config(sub));
                }
            }
        } else if name == "metrics.yaml" || name == "metrics.yml" {
            out.skipped.push(Skipped {
                path,
                reason: "not read by the agent: metrics files belong in a <check>.d directory"
                    .into(),
            });
        } else if let Some(c) = conf_name(&name, None) {
            candidates.push((path, c.check, c.default));
        } else if looks_like_yaml(&name) {
            out.skipped.push(not_a_config(path));
        }
    }
    let mut scanned: Vec<(FileScan, String, bool)> = Vec::new();
    for (path, check, default) in candidates {
        if out.files.len() + scanned.len() >= MAX_FILES {
            return Err(ScanError(format!(
                "more than {MAX_FILES} files to scan; name fewer paths"
            )));
        }
        scanned.push((scan_file(&path, Role::Check), check, default));
    }
    // A check's own config hides its `.default` one (metrics-only and
    // logs-only files do not count as the check's config).
    let configured: HashSet<String> = scanned
        .iter()
        .filter(|(f, _, default)| !default && f.not_loaded.is_none() && !is_other(f))
        .map(|(_, check, _)| check.clone())
        .collect();
    for (file, check, default) in scanned {
        if default && configured.contains(&check) {
            out.skipped.push(Skipped {
                path: file.path,
                reason: format!(
                    "not loaded by the agent: check '{check}' has a non-default config file"
                ),
            });
        } else {
            out.files.push(file);
        }
    }
    Ok(())
}

fn is_other(f: &FileScan) -> bool {
    let name = file_name(&f.path);
    name == "metrics.yaml" || name == "metrics.yml"
}

fn not_a_config(path: PathBuf) -> Skipped {
    Skipped {
        path,
        reason: "not read by the agent: only .yaml, .yml, .yaml.default and .yml.default files are"
            .into(),
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// Reads and scans one file.
pub fn scan_file(path: &Path, role: Role) -> FileScan {
    match read_text(path) {
        Ok(text) => scan_text(path, role, &text).0,
        Err(e) => FileScan {
            path: path.to_path_buf(),
            role,
            found: Err(e),
            not_loaded: None,
            empty: false,
        },
    }
}

/// Scans the text of one file; also hands back the parsed document, for a
/// caller that reads settings from it.
pub fn scan_text(path: &Path, role: Role, text: &str) -> (FileScan, Option<Spanned<Node>>) {
    let mut root = None;
    let (found, not_loaded) = if text.is_empty() {
        (Ok(Vec::new()), None)
    } else {
        match parse(text) {
            Err(e) => (Err(format!("cannot parse it: {e}")), None),
            Ok(parsed) => {
                let not_loaded = match role {
                    Role::Check => check_config_problem(&parsed.value),
                    Role::Main => None,
                };
                let found = handles(&parsed, role);
                root = Some(parsed);
                (Ok(found), not_loaded)
            }
        }
    };
    let scanned = FileScan {
        path: path.to_path_buf(),
        role,
        found,
        not_loaded,
        empty: text.is_empty(),
    };
    (scanned, root)
}

/// Reads a file the way nothing can stall: opened non-blocking and read
/// only when it is a regular file, whole, up to [`MAX_FILE_BYTES`]. A FIFO
/// opened the agent's way (a plain `open`) waits for a writer forever; a
/// device may never end.
pub fn read_text(path: &Path) -> Result<String, String> {
    use backend_core::fs::{ReadError, Rules};
    let rules = Rules {
        max: MAX_FILE_BYTES,
        refuse_writable: false,
    };
    let shown = path.display();
    // Opening a socket fails (ENXIO) before its type is seen: ask stat.
    let special = || std::fs::metadata(path).is_ok_and(|m| !m.is_file() && !m.is_dir());
    match backend_core::fs::read_regular_text(path, rules) {
        Ok(text) => Ok(text.as_str().to_owned()),
        Err(ReadError::NotRegular) => Err(not_regular(path)),
        Err(ReadError::Io(_)) if special() => Err(not_regular(path)),
        Err(ReadError::Io(e)) => Err(format!("{shown}: {}", crate::rights::errno_text(&e))),
        // The other variants read "is a directory", "is larger than ...".
        Err(e) => Err(format!("{shown} {e}")),
    }
}

fn not_regular(path: &Path) -> String {
    format!(
        "{}: not a regular file (a FIFO, socket or device): not read (the agent's own reader would wait forever on a FIFO)",
        path.display()
    )
}

/// Parses YAML; the error is one line that quotes nothing of the document.
pub fn parse(text: &str) -> Result<Spanned<Node>, String> {
    // The core's budget first (an alias bomb expands inside serde-saphyr).
    backend_core::config::check_budget(text)?;
    let options = serde_saphyr::options! {
        // yaml.v2, which the agent uses, lets the last duplicate key win.
        duplicate_keys: serde_saphyr::options::DuplicateKeyPolicy::LastWins,
    };
    serde_saphyr::from_str_with_options(text, options).map_err(|e| {
        let full = e.to_string();
        full.lines()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("invalid YAML")
            .trim()
            .to_owned()
    })
}

/// Why the agent would not load a check config it has read.
fn check_config_problem(root: &Node) -> Option<String> {
    let no_instances = || Some("Configuration file contains no valid instances".to_owned());
    let entries = match root {
        Node::Map(entries) => entries,
        // Only comments: yaml.v2 leaves every field unset.
        Node::Scalar(s) if s == "null" => return no_instances(),
        _ => return Some("not a check config: the document is not a mapping".into()),
    };
    let get = |key: &str| {
        entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
            .map(|(_, v)| &v.value)
    };
    let present =
        |n: Option<&Node>| n.is_some_and(|n| !matches!(n, Node::Scalar(s) if s == "null"));
    let has_instances = matches!(get("instances"), Some(Node::Seq(items)) if !items.is_empty());
    if has_instances || present(get("logs")) || present(get("jmx_metrics")) {
        None
    } else {
        no_instances()
    }
}

/// Every handle in the document, in document order.
pub fn handles(root: &Spanned<Node>, role: Role) -> Vec<Found> {
    let mut found = Vec::new();
    match (&root.value, role) {
        (Node::Map(entries), Role::Check) => {
            for (k, v) in entries {
                let resolved = matches!(k, Node::Str(s) if CHECK_SECTIONS.contains(&s.as_str()));
                walk(v, &key_segment(k, true), resolved, &mut found);
            }
        }
        _ => walk(root, "", true, &mut found),
    }
    found
}

fn walk(node: &Spanned<Node>, at: &str, resolved: bool, found: &mut Vec<Found>) {
    match &node.value {
        Node::Str(s) => {
            if let Some(h) = handle_of(s) {
                found.push(Found {
                    handle: h.to_owned(),
                    location: if at.is_empty() {
                        "(document)".into()
                    } else {
                        at.to_owned()
                    },
                    line: node.referenced.line() as usize,
                    resolved,
                    padded: s.len() != s.trim_matches([' ', '\t']).len(),
                });
            }
        }
        Node::Scalar(_) => {}
        Node::Seq(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &format!("{at}[{i}]"), resolved, found);
            }
        }
        Node::Map(entries) => {
            for (k, v) in entries {
                let seg = key_segment(k, at.is_empty());
                walk(v, &format!("{at}{seg}"), resolved, found);
            }
        }
    }
}

/// `.password`, `password` at the top, or `["odd key"]` when the key is
/// not a plain word.
fn key_segment(key: &Node, top: bool) -> String {
    let text = match key {
        Node::Str(s) | Node::Scalar(s) => s.as_str(),
        Node::Seq(_) | Node::Map(_) => "<complex key>",
    };
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    match (plain, top) {
        (true, true) => text.to_owned(),
        (true, false) => format!(".{text}"),
        (false, _) => format!(
            "[{}]",
            serde_json::to_string(text).unwrap_or_else(|_| "\"?\"".into())
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_agents_handle_rule() {
        assert_eq!(handle_of("ENC[x]"), Some("x"));
        assert_eq!(handle_of(" \tENC[a b]\t "), Some("a b"));
        assert_eq!(handle_of("ENC[]"), Some(""));
        assert_eq!(handle_of("ENC[]]]]"), Some("]]]"));
        assert_eq!(handle_of("ENC[a]b]"), Some("a]b"));
        assert_eq!(handle_of("db-ENC[x]"), None);
        assert_eq!(handle_of("ENC[x] "), Some("x"));
        assert_eq!(handle_of("ENC[x]\n"), None);
        assert_eq!(handle_of("enc[x]"), None);
        assert_eq!(handle_of("ENC[x"), None);
    }

    fn found(yaml: &str, role: Role) -> Vec<(String, String, bool)> {
        let root = parse(yaml).unwrap();
        handles(&root, role)
            .into_iter()
            .map(|f| (f.handle, f.location, f.resolved))
            .collect()
    }

    #[test]
    fn locations_and_types() {
        let yaml = "init_config:\n  token: ENC[t]\ninstances:\n  - password: ENC[db/pw]\n    port: 5432\n    ok: true\n    \"ENC[key]\": plain\n    odd.key: ENC[o]\n    list: [a, 'ENC[l]']\nad_identifiers:\n  - ENC[ad]\n";
        assert_eq!(
            found(yaml, Role::Check),
            vec![
                ("t".into(), "init_config.token".into(), true),
                ("db/pw".into(), "instances[0].password".into(), true),
                ("o".into(), "instances[0][\"odd.key\"]".into(), true),
                ("l".into(), "instances[0].list[1]".into(), true),
                ("ad".into(), "ad_identifiers[0]".into(), false),
            ]
        );
        assert_eq!(
            found("api_key: ENC[k]\n", Role::Main),
            vec![("k".into(), "api_key".into(), true)]
        );
    }

    #[test]
    fn lines_are_reported() {
        let root = parse("a: 1\nb:\n  c: ENC[x]\n").unwrap();
        assert_eq!(handles(&root, Role::Main)[0].line, 3);
    }

    #[test]
    fn config_names() {
        assert_eq!(conf_name("postgres.yaml", None).unwrap().check, "postgres");
        assert!(conf_name("conf.yaml.default", Some("pg")).unwrap().default);
        assert!(conf_name("conf.yaml.example", None).is_none());
        assert!(conf_name("README.md", None).is_none());
    }
}
