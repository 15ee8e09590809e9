//! Which handles are aliases of the backend's config, for `scan` and `run`.
//!
//! A backend's config may map names to handles (`aliases:`, see
//! `backend_core::alias`); a handle the agent sends that is such a name is
//! resolved as its target. The reports show `alias of <target>` next to it
//! (the target is a handle, never a value). The config is the one given as
//! `--backend-config`, or, for `run`, the `--config FILE` among the
//! backend's arguments.

use std::path::{Path, PathBuf};

use backend_core::Aliases;
use backend_core::config::{MAX_CONFIG_BYTES, read_guarded};

/// The aliases a report shows, and where they came from.
#[derive(Debug, Clone, Default)]
pub struct Known {
    /// The backend config they were read from, if any.
    pub from: Option<PathBuf>,
    /// The aliases (empty when none, or when they could not be read).
    pub aliases: Aliases,
    /// Why the config's aliases could not be read, if so.
    pub unread: Option<String>,
}

impl Known {
    /// The aliases of the backend config at `path`: its `aliases:` map, by
    /// the rules the backend applies (names, sizes, no chains).
    pub fn load(path: &Path) -> Self {
        let (aliases, unread) = match read(path) {
            Ok(a) => (a, None),
            Err(e) => (Aliases::default(), Some(e)),
        };
        Self {
            from: Some(path.to_owned()),
            aliases,
            unread,
        }
    }

    /// `alias of <target>` when `handle` is an alias.
    pub fn note(&self, handle: &str) -> Option<String> {
        self.aliases
            .get(handle)
            .map(|target| format!("alias of {target}"))
    }

    /// One line saying where the aliases come from, for a report's head.
    pub fn summary(&self) -> Option<String> {
        let from = self.from.as_ref()?.display();
        Some(match &self.unread {
            Some(why) => format!("aliases: not read: {why}"),
            None => format!("aliases: {} from {from}", self.aliases.len()),
        })
    }
}

/// The `aliases:` of the config at `path`; the error names the file.
fn read(path: &Path) -> Result<Aliases, String> {
    let what = "backend config";
    let text = read_guarded(path, what, MAX_CONFIG_BYTES).map_err(|e| e.to_string())?;
    let in_file = |e: String| format!("{what} {}: {e}", path.display());
    let parsed = backend_core::yaml::parse(&text).map_err(|e| in_file(e.without_text()))?;
    match parsed.value.get("aliases") {
        None => Ok(Aliases::default()),
        Some(value) => serde_json::from_value(value.clone())
            .map_err(|e| in_file(backend_core::config::describe_error(&e))),
    }
}

/// The `--config FILE` (or `--config=FILE`) among a backend's arguments.
pub fn config_in_args(args: &[String]) -> Option<PathBuf> {
    let mut args = args.iter();
    while let Some(a) = args.next() {
        if a == "--config" {
            return args.next().map(PathBuf::from);
        }
        if let Some(path) = a.strip_prefix("--config=") {
            return Some(PathBuf::from(path));
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_in_args_finds_both_spellings() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        assert_eq!(
            config_in_args(&args(&["--timeout", "3", "--config", "/etc/v.yaml"])),
            Some(PathBuf::from("/etc/v.yaml"))
        );
        assert_eq!(
            config_in_args(&args(&["--config=/etc/v.yaml"])),
            Some(PathBuf::from("/etc/v.yaml"))
        );
        assert_eq!(config_in_args(&args(&["--config"])), None);
        assert_eq!(config_in_args(&args(&["get", "x"])), None);
    }
}
