//! Logging: `tracing` to stderr and, optionally, appended to a file.
//!
//! The default level is `warn`, so a successful call prints nothing on
//! stderr (Vector logs every stderr line of its backend as a warning).
//! Crates that log requests or responses (HTTP stacks, TLS, vaultrs, the AWS
//! SDK) stay off unless the filter names them: vaultrs alone logs an ERROR
//! for every 404, and the HTTP layers can log bodies at trace level.

use std::fs::OpenOptions;
use std::path::Path;
use std::sync::Mutex;

use tracing::level_filters::LevelFilter;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{Layer, fmt};

use crate::error::ConfigError;

/// The environment variable holding the log filter when `--log-level` is not given.
pub const LOG_ENV: &str = "SECRET_BACKEND_LOG";

/// Target prefixes kept off unless the filter names them.
const NOISY: &[&str] = &[
    "vaultrs", "rustify", "reqwest", "hyper", "h2", "rustls", "tower", "aws_", "tokio",
];

/// Parses a filter: a level (`debug`) or `tracing` target directives
/// (`warn,backend_vault=trace`).
pub fn filter(spec: &str) -> Result<Targets, ConfigError> {
    let bad = |what: &str| {
        ConfigError::new(format!(
            "invalid log level '{}': {what} (use off, error, warn, info, debug, trace, or target=level pairs)",
            spec.escape_debug()
        ))
    };
    let level = |text: &str| {
        text.trim()
            .parse::<LevelFilter>()
            .map_err(|_| bad(text.trim()))
    };
    let mut targets = Targets::new().with_default(LevelFilter::WARN);
    for directive in spec.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        targets = match directive.split_once('=') {
            Some((target, lvl)) if !target.trim().is_empty() => {
                targets.with_target(target.trim(), level(lvl)?)
            }
            Some(_) => return Err(bad(directive)),
            None => targets.with_default(level(directive)?),
        };
    }
    for noisy in NOISY {
        if !targets
            .iter()
            .any(|(t, _)| t.starts_with(noisy) || noisy.starts_with(t))
        {
            targets = targets.with_target(*noisy, LevelFilter::OFF);
        }
    }
    Ok(targets)
}

/// Installs the global subscriber: stderr always, `file` appended to (mode
/// 0600 when created) if given.
pub fn init(spec: Option<&str>, file: Option<&Path>) -> Result<(), ConfigError> {
    let targets = filter(spec.unwrap_or("warn"))?;
    let stderr = fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_filter(targets.clone());
    let file_layer = match file {
        None => None,
        Some(path) => {
            let mut options = OpenOptions::new();
            options.create(true).append(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let f = options
                .open(path)
                .map_err(|e| ConfigError::new(format!("log file {}: {e}", path.display())))?;
            Some(
                fmt::layer()
                    .with_writer(Mutex::new(f))
                    .with_ansi(false)
                    .with_filter(targets),
            )
        }
    };
    // A second init (tests running the runner twice) keeps the first one.
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(file_layer)
        .try_init();
    Ok(())
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn levels_and_noisy_crates() {
        let t = filter("trace").unwrap();
        assert!(t.would_enable("backend_vault", &Level::TRACE));
        assert!(!t.would_enable("vaultrs::api", &Level::ERROR));
        assert!(!t.would_enable("aws_smithy_runtime::client", &Level::ERROR));
        let t = filter("warn,vaultrs=debug").unwrap();
        assert!(t.would_enable("vaultrs::api", &Level::DEBUG));
        assert!(!t.would_enable("backend_core", &Level::INFO));
        assert!(t.would_enable("backend_core", &Level::WARN));
        let t = filter("").unwrap();
        assert!(t.would_enable("backend_core", &Level::WARN));
        assert!(filter("loud").is_err());
    }
}
