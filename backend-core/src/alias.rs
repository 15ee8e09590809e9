//! Aliases: names any caller can write that stand for handles some cannot.
//!
//! Vector takes a secret as `SECRET[<backend>.<name>]` and accepts only
//! letters, digits, `_`, `.`, `-` and `/` in the name (its regex, in
//! `src/config/loading/secret.rs`: `SECRET\[([[:word:]\-]+)\.([[:word:].\-/]+)\]`),
//! so a handle holding `;key`, `?version=`, `ssm:` or a JSON Pointer cannot
//! be written there. Every backend's config therefore takes an `aliases:`
//! map from a name to a handle:
//!
//! ```yaml
//! aliases:
//!   db_password: "secret/db;password"
//!   api_key: "aws:prod/api;key"
//! ```
//!
//! A requested handle equal to an alias name is resolved as its target; the
//! reply is keyed by the handle as requested. The rules, all checked when
//! the config is loaded (a breach is a config error, exit 2, naming the
//! alias):
//!
//! - a name is 1 to [`MAX_NAME_BYTES`] bytes of Vector's characters only
//!   ([`check_name`]), so that every alias can be written in Vector,
//!   StackState and Datadog alike;
//! - a target is a non-empty string of at most [`MAX_TARGET_BYTES`] bytes
//!   that the backend's own handle parser accepts (the runner asks the
//!   backend, [`crate::Provider::check_handle`]);
//! - aliases resolve once: a target that is itself an alias name is refused
//!   (no chains, no loops);
//! - at most [`MAX_ALIASES`] of them.
//!
//! The runner wraps the provider in [`Aliased`], which asks the provider for
//! each distinct target once: two aliases of one secret, or an alias and its
//! target requested together, cost one fetch.

use std::collections::BTreeMap;
use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::Value;
use tokio::time::Instant;

use crate::error::{ConfigError, HandleError};
use crate::provider::{BoxFuture, Context, Outcome, Resolver, group};

/// Most aliases one config may hold.
pub const MAX_ALIASES: usize = 4096;
/// Longest alias name, in bytes.
pub const MAX_NAME_BYTES: usize = 256;
/// Longest alias target, in bytes.
pub const MAX_TARGET_BYTES: usize = 8192;

/// The characters Vector accepts in the name part of `SECRET[backend.name]`
/// (`[[:word:].\-/]`, ASCII only), in words for messages.
pub const NAME_CHARS: &str = "letters A-Z a-z, digits, '_', '.', '-' and '/'";

/// Whether Vector accepts `c` in a secret's name.
pub fn is_name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-' | '/')
}

/// Checks an alias name: non-empty, at most [`MAX_NAME_BYTES`], Vector's
/// characters only. The error says what is wrong, without the name (the
/// caller names it).
pub fn check_name(name: &str) -> Result<(), String> {
    if name.is_empty() {
        return Err("an alias name must not be empty".into());
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(format!("longer than {MAX_NAME_BYTES} bytes"));
    }
    match name.chars().find(|c| !is_name_char(*c)) {
        None => Ok(()),
        Some(c) => Err(format!(
            "{} is not allowed in an alias name (Vector's SECRET[backend.name] takes only {NAME_CHARS})",
            quoted_char(c)
        )),
    }
}

/// A name or target as a message shows it: escaped, at most 100
/// characters, with no double quote (config errors blank out double-quoted
/// runs, where serde quotes values).
pub fn shown(text: &str) -> String {
    let mut out = String::with_capacity(text.len().min(100));
    for c in text.chars().take(100) {
        if c == '"' {
            out.push_str("\\u{22}");
        } else {
            out.extend(c.escape_debug());
        }
    }
    if text.chars().nth(100).is_some() {
        out.push_str("...");
    }
    out
}

fn quoted_char(c: char) -> String {
    format!("'{}'", shown(c.encode_utf8(&mut [0; 4])))
}

/// A config's `aliases:`: validated names, bounded, no chains. Its
/// `Deserialize` takes a map of names to handle strings (or nothing).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Aliases(BTreeMap<String, String>);

impl Aliases {
    /// Aliases from `(name, target)` pairs, checked by every rule that does
    /// not need the backend (names, sizes, count, duplicates, chains).
    pub fn new(pairs: impl IntoIterator<Item = (String, String)>) -> Result<Self, String> {
        let mut map = BTreeMap::new();
        for (name, target) in pairs {
            if map.len() >= MAX_ALIASES {
                return Err(format!("more than {MAX_ALIASES} aliases"));
            }
            check_name(&name).map_err(|e| format!("aliases: '{}': {e}", shown(&name)))?;
            if target.is_empty() {
                return Err(format!(
                    "aliases: '{}': the target is empty: write the handle it stands for",
                    shown(&name)
                ));
            }
            if target.len() > MAX_TARGET_BYTES {
                return Err(format!(
                    "aliases: '{}': the target is longer than {MAX_TARGET_BYTES} bytes",
                    shown(&name)
                ));
            }
            if map.contains_key(&name) {
                return Err(format!("aliases: '{}' is given twice", shown(&name)));
            }
            map.insert(name, target);
        }
        if let Some((name, target)) = map.iter().find(|(_, t)| map.contains_key(*t)) {
            return Err(format!(
                "aliases: '{}': its target '{}' is itself an alias; aliases are resolved once, so write the handle that '{}' stands for",
                shown(name),
                shown(target),
                shown(target)
            ));
        }
        Ok(Self(map))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// How many there are.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The target of alias `name`, if `name` is one.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }

    /// What `handle` is resolved as: its target if it is an alias, else
    /// itself.
    pub fn resolve<'a>(&'a self, handle: &'a str) -> &'a str {
        self.get(handle).unwrap_or(handle)
    }

    /// `(name, target)` in name order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.0.iter().map(|(n, t)| (n.as_str(), t.as_str()))
    }

    /// Runs the backend's handle check on every target: the first target
    /// it refuses is a config error naming the alias, with the message a
    /// handle error would show.
    pub fn check_targets(
        &self,
        mut check: impl FnMut(&str) -> Result<(), HandleError>,
    ) -> Result<(), ConfigError> {
        for (name, target) in self.iter() {
            check(target).map_err(|e| {
                ConfigError::new(format!(
                    "aliases: '{}': the target is not a handle this backend can resolve: {e}",
                    shown(name)
                ))
            })?;
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Aliases {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(AliasesVisitor)
    }
}

struct AliasesVisitor;

impl<'de> Visitor<'de> for AliasesVisitor {
    type Value = Aliases;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a map of alias names to handles")
    }

    fn visit_unit<E: de::Error>(self) -> Result<Aliases, E> {
        Ok(Aliases::default())
    }

    fn visit_none<E: de::Error>(self) -> Result<Aliases, E> {
        Ok(Aliases::default())
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Aliases, A::Error> {
        let mut pairs = Vec::new();
        while let Some(name) = map.next_key::<String>()? {
            if pairs.len() >= MAX_ALIASES {
                return Err(de::Error::custom(format!(
                    "aliases: more than {MAX_ALIASES} aliases"
                )));
            }
            // Read as any value, so that a target of the wrong type is
            // reported with its alias's name (and without its text).
            match map.next_value::<Value>()? {
                Value::String(target) => pairs.push((name, target)),
                _ => {
                    return Err(de::Error::custom(format!(
                        "aliases: '{}': the target must be a string (a handle; quote it)",
                        shown(&name)
                    )));
                }
            }
        }
        Aliases::new(pairs).map_err(de::Error::custom)
    }
}

/// A provider that answers aliases: each requested handle is resolved as
/// [`Aliases::resolve`] says, each distinct target asked of the inner
/// provider once, every answer keyed by the handle as requested.
#[derive(Debug)]
pub struct Aliased<P> {
    inner: P,
    aliases: Aliases,
}

impl<P> Aliased<P> {
    /// `inner` answering `aliases` too.
    pub fn new(inner: P, aliases: Aliases) -> Self {
        Self { inner, aliases }
    }
}

impl<P: Resolver> Resolver for Aliased<P> {
    fn resolve_boxed<'a>(
        &'a self,
        handles: &'a [String],
        ctx: &'a Context,
    ) -> BoxFuture<'a, Vec<Outcome>> {
        let aliased = if self.aliases.is_empty() {
            0
        } else {
            handles
                .iter()
                .filter(|h| self.aliases.get(h).is_some())
                .count()
        };
        if aliased == 0 {
            // The common case, a call without aliases, costs no copy.
            return self.inner.resolve_boxed(handles, ctx);
        }
        Box::pin(async move {
            let (targets, of_handle) = group(handles.iter().map(|h| self.aliases.resolve(h)));
            let targets: Vec<String> = targets.into_iter().map(str::to_owned).collect();
            tracing::debug!(
                "{aliased} of {} handle(s) are aliases; {} distinct handle(s) asked of the store",
                handles.len(),
                targets.len()
            );
            let answers = self.inner.resolve_boxed(&targets, ctx).await;
            of_handle
                .into_iter()
                .map(|i| match answers.get(i) {
                    Some(answer) => answer.clone(),
                    None if Instant::now() >= ctx.deadline() => Err(ctx.timed_out()),
                    None => Err(HandleError::other(
                        "internal error: the provider returned no result for this handle",
                    )),
                })
                .collect()
        })
    }

    fn close_boxed<'a>(&'a self, ctx: &'a Context) -> BoxFuture<'a, ()> {
        self.inner.close_boxed(ctx)
    }

    fn hold_all(&self) {
        self.inner.hold_all();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::time::Duration;

    use super::*;
    use crate::Secret;

    fn aliases(pairs: &[(&str, &str)]) -> Result<Aliases, String> {
        Aliases::new(pairs.iter().map(|(n, t)| ((*n).into(), (*t).into())))
    }

    #[test]
    fn names_are_vectors_characters() {
        for ok in ["db_password", "a", "A.b-c/d_9", "..", "/", "-x-"] {
            assert!(check_name(ok).is_ok(), "{ok}");
        }
        for (bad, shown) in [
            ("db;pw", "';'"),
            ("a b", "' '"),
            ("v?version=2", "'?'"),
            ("ssm:x", "':'"),
            ("é", "'é'"),
            ("a\"b", "'\\u{22}'"),
            ("a\nb", "'\\n'"),
        ] {
            let e = check_name(bad).unwrap_err();
            assert!(e.starts_with(&format!("{shown} is not allowed")), "{e}");
            assert!(!e.contains('"'), "{e}");
        }
        assert!(check_name("").is_err());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES)).is_ok());
        assert!(check_name(&"a".repeat(MAX_NAME_BYTES + 1)).is_err());
    }

    #[test]
    fn refused_aliases_name_the_alias() {
        let e = aliases(&[("db;pw", "secret/db;pw")]).unwrap_err();
        assert!(e.starts_with("aliases: 'db;pw': ';' is not allowed"), "{e}");
        let e = aliases(&[("a", "b"), ("b", "secret/x")]).unwrap_err();
        assert!(e.contains("'a': its target 'b' is itself an alias"), "{e}");
        let e = aliases(&[("self", "self")]).unwrap_err();
        assert!(e.contains("'self': its target 'self' is itself"), "{e}");
        let e = aliases(&[("a", "")]).unwrap_err();
        assert!(e.contains("'a': the target is empty"), "{e}");
        let long = "x".repeat(MAX_TARGET_BYTES + 1);
        let e = aliases(&[("a", &long)]).unwrap_err();
        assert!(e.contains("longer than"), "{e}");
        let e = aliases(&[("a", "x"), ("a", "y")]).unwrap_err();
        assert!(e.contains("given twice"), "{e}");
        let many: Vec<(String, String)> = (0..=MAX_ALIASES)
            .map(|i| (format!("n{i}"), "t".into()))
            .collect();
        assert!(Aliases::new(many).unwrap_err().contains("more than"));
    }

    #[test]
    fn deserializes_from_a_map_or_nothing() {
        let a: Aliases =
            serde_json::from_value(serde_json::json!({"db": "secret/db;pw", "k": "aws:x"}))
                .unwrap();
        assert_eq!(a.get("db"), Some("secret/db;pw"));
        assert_eq!(a.resolve("k"), "aws:x");
        assert_eq!(a.resolve("secret/db;pw"), "secret/db;pw");
        let a: Aliases = serde_json::from_value(Value::Null).unwrap();
        assert!(a.is_empty());
        let e = serde_json::from_value::<Aliases>(serde_json::json!({"n": 98765}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'n': the target must be a string") && !e.contains("98765"));
        let e = serde_json::from_value::<Aliases>(serde_json::json!(["x"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("a map of alias names to handles"), "{e}");
        let e = serde_json::from_value::<Aliases>(serde_json::json!({"a;b": "x"}))
            .unwrap_err()
            .to_string();
        assert!(e.contains("'a;b': ';' is not allowed"), "{e}");
    }

    #[test]
    fn targets_are_checked_by_the_backend() {
        let a = aliases(&[("good", "ok/x"), ("bad", "nope")]).unwrap();
        let e = a
            .check_targets(|t| {
                if t.starts_with("ok/") {
                    Ok(())
                } else {
                    Err(HandleError::invalid_handle(format!("{t}: not ok")))
                }
            })
            .unwrap_err()
            .to_string();
        assert_eq!(
            e,
            "aliases: 'bad': the target is not a handle this backend can resolve: nope: not ok"
        );
    }

    /// Records what it was asked; answers `v:<handle>`.
    #[derive(Default)]
    struct Recorder(Mutex<Vec<Vec<String>>>);

    impl crate::Provider for Recorder {
        const ABOUT: crate::About = crate::about!("recorder", "test");
        type Config = crate::NoConfig;
        type Args = crate::NoArgs;
        fn build(
            _: crate::NoConfig,
            _: crate::NoArgs,
            _: &crate::protocol::Request,
        ) -> Result<Self, crate::ConfigError> {
            Ok(Self::default())
        }
        async fn resolve(&self, handles: &[String], _: &Context) -> Vec<Outcome> {
            self.0.lock().unwrap().push(handles.to_vec());
            handles
                .iter()
                .map(|h| Ok(Secret::new(format!("v:{h}"))))
                .collect()
        }
    }

    #[tokio::test]
    async fn each_target_is_asked_once_and_answers_keep_the_requested_handle() {
        let a = aliases(&[("db", "secret/db;pw"), ("pw", "secret/db;pw"), ("k", "x")]).unwrap();
        let p = Aliased::new(Recorder::default(), a);
        let ctx = Context::with_budget(Duration::from_secs(5));
        let handles: Vec<String> = ["db", "other", "pw", "secret/db;pw", "k"]
            .map(String::from)
            .into();
        let out = p.resolve_boxed(&handles, &ctx).await;
        let values: Vec<String> = out
            .iter()
            .map(|o| o.as_ref().unwrap().expose().into())
            .collect();
        assert_eq!(
            values,
            [
                "v:secret/db;pw",
                "v:other",
                "v:secret/db;pw",
                "v:secret/db;pw",
                "v:x"
            ]
        );
        assert_eq!(
            *p.inner.0.lock().unwrap(),
            vec![vec!["secret/db;pw".to_owned(), "other".into(), "x".into()]]
        );
        // Without an alias among the handles, the call passes through.
        let plain: Vec<String> = vec!["a".into(), "b".into()];
        let out = p.resolve_boxed(&plain, &ctx).await;
        assert_eq!(out.len(), 2);
        assert_eq!(p.inner.0.lock().unwrap().last().unwrap(), &plain);
    }
}
