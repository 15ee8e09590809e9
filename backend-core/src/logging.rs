//! Logging: `tracing` to stderr and, optionally, appended to a file.
//!
//! Every line, on stderr and in the file, goes through [`Safe`], which
//! hides URL userinfo and escapes control characters
//! ([`crate::redact::text`]): a handle or a server-provided name holding a
//! newline cannot forge a log line, whichever code path logged it. The log
//! file is opened without following a symlink planted at its path, and
//! refused unless it is a regular file nobody else can write.
//!
//! The default level is `warn`, so a successful call prints nothing on
//! stderr (Vector logs every stderr line of its backend as a warning).
//! Crates that log requests or responses (HTTP stacks, TLS, the AWS SDK)
//! stay off unless the filter names them: the HTTP layers can log bodies at
//! trace level.

use std::fs::{File, OpenOptions};
use std::io::Write;
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
const NOISY: &[&str] = &["reqwest", "hyper", "h2", "rustls", "tower", "aws_", "tokio"];

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
        .with_writer(|| Safe(std::io::stderr()))
        .with_ansi(false)
        .without_time()
        .with_target(false)
        .with_filter(targets.clone());
    let file_layer = match file {
        None => None,
        Some(path) => {
            let f = open_log(path)?;
            Some(
                fmt::layer()
                    .with_writer(Mutex::new(Safe(f)))
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

/// Opens the log file for appending: created with mode 0600; never through
/// a symlink (`O_NOFOLLOW`: a link planted at the path would make us append
/// to its target); refused when it is not a regular file (a FIFO would block
/// every log line) or when group or others can write it.
fn open_log(path: &Path) -> Result<File, ConfigError> {
    let shown = path.display();
    let refuse = |why: &dyn std::fmt::Display| ConfigError::new(format!("log file {shown}: {why}"));
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_NOCTTY);
    }
    let f = options.open(path).map_err(|e| {
        #[cfg(unix)]
        match e.raw_os_error() {
            Some(libc::ELOOP) => {
                return refuse(&"is a symbolic link: refusing it (name the real file)");
            }
            // A FIFO without a reader, or a device without its driver.
            Some(libc::ENXIO) => return refuse(&"not a regular file"),
            _ => {}
        }
        refuse(&e)
    })?;
    let meta = f.metadata().map_err(|e| refuse(&e))?;
    if !meta.is_file() {
        return Err(refuse(&"not a regular file"));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode() & 0o7777;
        if mode & 0o022 != 0 {
            return Err(refuse(&format_args!(
                "is writable by group or others (mode {mode:04o}): refusing it; chmod go-w it"
            )));
        }
    }
    Ok(f)
}

/// A writer that makes each log line safe to show before it is written
/// (the fmt layer writes one event per `write` call).
#[derive(Debug)]
struct Safe<W>(W);

impl<W: Write> Write for Safe<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.0.write_all(crate::redact::text(&text).as_bytes())?;
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use tracing::Level;

    use super::*;

    #[test]
    fn levels_and_noisy_crates() {
        let t = filter("trace").unwrap();
        assert!(t.would_enable("backend_vault", &Level::TRACE));
        assert!(!t.would_enable("hyper::proto", &Level::ERROR));
        assert!(!t.would_enable("aws_smithy_runtime::client", &Level::ERROR));
        let t = filter("warn,hyper=debug").unwrap();
        assert!(t.would_enable("hyper::proto", &Level::DEBUG));
        assert!(!t.would_enable("backend_core", &Level::INFO));
        assert!(t.would_enable("backend_core", &Level::WARN));
        let t = filter("").unwrap();
        assert!(t.would_enable("backend_core", &Level::WARN));
        assert!(filter("loud").is_err());
    }

    #[test]
    fn lines_are_made_safe() {
        let mut out = Safe(Vec::new());
        out.write_all(b"WARN forged\nline at http://u:PW@h:1\n")
            .unwrap();
        assert_eq!(
            String::from_utf8(out.0).unwrap(),
            "WARN forged\\nline at http://***@h:1\n"
        );
    }

    #[test]
    fn the_log_file_is_never_a_link_a_fifo_or_loose() {
        use std::os::unix::fs::PermissionsExt;
        let d = tempfile::tempdir().unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        let e = open_log(&link).unwrap_err().to_string();
        assert!(e.contains("symbolic link"), "{e}");
        let fifo = d.path().join("fifo");
        assert!(
            std::process::Command::new("mkfifo")
                .arg(&fifo)
                .status()
                .unwrap()
                .success()
        );
        assert!(
            open_log(&fifo)
                .unwrap_err()
                .to_string()
                .contains("not a regular file")
        );
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o666)).unwrap();
        assert!(
            open_log(&target)
                .unwrap_err()
                .to_string()
                .contains("writable by group")
        );
        let new = d.path().join("new.log");
        open_log(&new).unwrap();
        assert_eq!(
            std::fs::metadata(&new).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }
}
