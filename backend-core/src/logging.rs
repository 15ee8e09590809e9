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
//! Crates that log requests or responses (HTTP stacks, TLS)
//! stay off unless the filter names them: the HTTP layers can log bodies at
//! trace level.

use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use tracing::field::{Field, Visit};
use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;

use crate::error::ConfigError;

/// The environment variable holding the log filter when `--log-level` is not given.
pub const LOG_ENV: &str = "SECRET_BACKEND_LOG";

/// Target prefixes kept off unless the filter names them.
const NOISY: &[&str] = &["reqwest", "hyper", "h2", "rustls", "tower", "aws_", "tokio"];

/// Which events are logged: a default level and levels per target prefix,
/// the longest matching prefix deciding (what `tracing-subscriber`'s
/// `Targets` filter does, without that crate: see [`Lines`]).
#[derive(Debug, Clone)]
pub struct Targets {
    default: LevelFilter,
    /// Longest target first.
    targets: Vec<(String, LevelFilter)>,
}

impl Targets {
    fn new() -> Self {
        Self {
            default: LevelFilter::OFF,
            targets: Vec::new(),
        }
    }

    fn with_default(mut self, level: LevelFilter) -> Self {
        self.default = level;
        self
    }

    fn with_target(mut self, target: &str, level: LevelFilter) -> Self {
        match self.targets.iter_mut().find(|(t, _)| t == target) {
            Some(found) => found.1 = level,
            None => {
                let at = self
                    .targets
                    .iter()
                    .position(|(t, _)| t.len() < target.len())
                    .unwrap_or(self.targets.len());
                self.targets.insert(at, (target.to_owned(), level));
            }
        }
        self
    }

    fn iter(&self) -> impl Iterator<Item = (&str, LevelFilter)> {
        self.targets.iter().map(|(t, l)| (t.as_str(), *l))
    }

    /// Whether an event of `level` from `target` is logged.
    pub fn would_enable(&self, target: &str, level: &Level) -> bool {
        let filter = self
            .targets
            .iter()
            .find(|(t, _)| target.starts_with(t.as_str()))
            .map_or(self.default, |(_, l)| *l);
        *level <= filter
    }

    fn max_level(&self) -> LevelFilter {
        self.targets
            .iter()
            .map(|(_, l)| *l)
            .fold(self.default, LevelFilter::max)
    }
}

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
            targets = targets.with_target(noisy, LevelFilter::OFF);
        }
    }
    Ok(targets)
}

/// Installs the global subscriber: stderr always, `file` appended to (mode
/// 0600 when created) if given.
pub fn init(spec: Option<&str>, file: Option<&Path>) -> Result<(), ConfigError> {
    let targets = filter(spec.unwrap_or("warn"))?;
    let file = match file {
        None => None,
        Some(path) => Some(sink(open_log(path)?)),
    };
    // A second init (tests running the runner twice) keeps the first one.
    let _ =
        tracing::subscriber::set_global_default(Lines::new(targets, sink(std::io::stderr()), file));
    Ok(())
}

/// Where lines go, each made safe ([`Safe`]) and written in one call.
type Sink = Mutex<Safe<Box<dyn Write + Send>>>;

fn sink(w: impl Write + Send + 'static) -> Sink {
    Mutex::new(Safe(Box::new(w)))
}

/// The subscriber: each event is one line, on stderr and in the log file.
///
/// It writes what `tracing-subscriber`'s registry with two `fmt` layers
/// (full format, no ANSI) wrote for an event, byte for byte: on stderr
/// `LEVEL fields`, in the file `TIMESTAMP LEVEL target: fields`, the fields
/// formatted as that crate's `DefaultFields` does ([`Fields`]), the
/// timestamp as its `SystemTime` does ([`timestamp`]), filtered as its
/// `Targets` does ([`Targets`]). Hand-written because the registry, its
/// per-layer filters and two `fmt` layer instances cost about 50 KB of
/// every binary, and the crate's remaining pieces a few KB more
/// (`secret-backend-file` must stay under 1 MB); a test holds the lines to
/// the ones the crate's layers write (the crate is a dev-dependency).
///
/// Spans are not tracked, so a line never names the spans it was logged
/// in (the crate's layers wrote `span{fields}: ` before the fields): no
/// crate these binaries link opens one (the AWS SDK did; it is not linked
/// any more), and tracking them cost about 3 KB.
struct Lines {
    targets: Targets,
    stderr: Sink,
    file: Option<Sink>,
}

impl Lines {
    fn new(targets: Targets, stderr: Sink, file: Option<Sink>) -> Self {
        Self {
            targets,
            stderr,
            file,
        }
    }
}

impl Subscriber for Lines {
    fn register_callsite(&self, metadata: &'static Metadata<'static>) -> Interest {
        if self.enabled(metadata) {
            Interest::always()
        } else {
            Interest::never()
        }
    }

    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        self.targets
            .would_enable(metadata.target(), metadata.level())
    }

    fn max_level_hint(&self) -> Option<LevelFilter> {
        Some(self.targets.max_level())
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        // Not tracked (see the type's docs): every span is the same one.
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let meta = event.metadata();
        let level = match *meta.level() {
            Level::TRACE => "TRACE ",
            Level::DEBUG => "DEBUG ",
            Level::INFO => " INFO ",
            Level::WARN => " WARN ",
            Level::ERROR => "ERROR ",
        };
        let mut fields = String::new();
        let mut visitor = Fields::new(&mut fields);
        event.record(&mut visitor);
        if visitor.failed {
            return;
        }
        let line = format!("{level}{fields}\n");
        let mut stderr = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = stderr.write_all(line.as_bytes());
        drop(stderr);
        if let Some(file) = &self.file {
            let mut line = timestamp(std::time::SystemTime::now());
            let _ = writeln!(line, " {level}{}: {fields}", meta.target());
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}

    fn current_span(&self) -> Current {
        Current::none()
    }
}

/// Writes fields as `tracing-subscriber`'s `DefaultFields` does: `message`
/// first as its text, then `name=value` with values in their `Debug` form,
/// separated by spaces; the message and error texts with terminal escape
/// characters written out (`\x1b`), as that crate's `EscapeGuard` does.
struct Fields<'a> {
    out: &'a mut String,
    empty: bool,
    failed: bool,
}

impl<'a> Fields<'a> {
    fn new(out: &'a mut String) -> Self {
        Self {
            out,
            empty: true,
            failed: false,
        }
    }
}

impl Visit for Fields<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.record_debug(field, &format_args!("{value}"));
        } else {
            self.record_debug(field, &value);
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        match value.source() {
            Some(source) => self.record_debug(
                field,
                &format_args!(
                    "{} {}.sources={}",
                    Escaped(format_args!("{value}")),
                    field.name(),
                    Sources(source)
                ),
            ),
            None => self.record_debug(field, &format_args!("{}", Escaped(format_args!("{value}")))),
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if self.failed {
            return;
        }
        if self.empty {
            self.empty = false;
        } else {
            self.out.push(' ');
        }
        let name = field.name();
        let written = match name {
            "message" => write!(self.out, "{:?}", Escaped(value)),
            _ => {
                let name = name.strip_prefix("r#").unwrap_or(name);
                write!(self.out, "{name}={value:?}")
            }
        };
        self.failed = written.is_err();
    }
}

/// A value written with terminal escape characters spelled out.
struct Escaped<T>(T);

/// Writes through, spelling out ESC, BEL, BS, FF, DEL and C1 controls.
struct EscapingWriter<'a, 'b>(&'a mut std::fmt::Formatter<'b>);

impl std::fmt::Write for EscapingWriter<'_, '_> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        for ch in s.chars() {
            match ch {
                '\x1b' => self.0.write_str("\\x1b")?,
                '\x07' => self.0.write_str("\\x07")?,
                '\x08' => self.0.write_str("\\x08")?,
                '\x0c' => self.0.write_str("\\x0c")?,
                '\x7f' => self.0.write_str("\\x7f")?,
                '\u{80}'..='\u{9f}' => write!(self.0, "\\u{{{:x}}}", ch as u32)?,
                _ => self.0.write_char(ch)?,
            }
        }
        Ok(())
    }
}

impl<T: std::fmt::Debug> std::fmt::Debug for Escaped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(EscapingWriter(f), "{:?}", self.0)
    }
}

impl<T: std::fmt::Display> std::fmt::Display for Escaped<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(EscapingWriter(f), "{}", self.0)
    }
}

/// An error and its sources as a list: `[outer, inner]`.
struct Sources<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for Sources<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut list = f.debug_list();
        let mut next = Some(self.0);
        while let Some(e) = next {
            list.entry(&Escaped(format_args!("{e}")));
            next = e.source();
        }
        list.finish()
    }
}

/// `2026-01-02T03:04:05.123456Z`: UTC with microseconds, as
/// `tracing-subscriber`'s `SystemTime` timer writes it.
fn timestamp(now: std::time::SystemTime) -> String {
    let since = now
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(since.as_secs()).unwrap_or(i64::MAX);
    format!("{}.{:06}Z", crate::error::utc(secs), since.subsec_micros())
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
    use std::sync::Arc;

    use tracing::Level;

    use super::*;

    /// A writer whose bytes a test reads back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    #[derive(Debug)]
    struct Failed(&'static str, Option<Box<Failed>>);

    impl std::fmt::Display for Failed {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Failed {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            self.1.as_deref().map(|e| e as _)
        }
    }

    /// Events of every shape the backends and their crates log.
    fn log_everything() {
        tracing::warn!("plain");
        tracing::error!(handle = "db;pw", count = 3, ok = true, "with fields");
        tracing::warn!(target: "backend_vault::login", "a target of ours");
        tracing::error!(target: "hyper::proto", "noisy, off");
        tracing::warn!(target: "aws_config::imds", "noisy, off");
        tracing::info!("info");
        tracing::debug!(r#type = "x", "raw identifier");
        tracing::trace!("trace");
        tracing::warn!(value = ?Some("debug"), text = %"display", "formats");
        let err = Failed("outer", Some(Box::new(Failed("inner", None))));
        tracing::warn!(
            error = &err as &dyn std::error::Error,
            "an error with sources"
        );
        tracing::warn!(message = "named message", extra = 1);
        tracing::warn!(only = 1);
        tracing::warn!("line\nbreak and \u{1b}[31m escape at http://u:pw@h/");
        tracing::warn!("after the spans closed");
        std::thread::spawn(|| tracing::warn!("another thread"))
            .join()
            .unwrap();
    }

    /// Events inside spans of every shape.
    fn log_in_spans() {
        let outer = tracing::warn_span!("outer", id = 7, name = "n");
        let _o = outer.enter();
        tracing::warn!("in outer");
        let inner = tracing::error_span!("inner", later = tracing::field::Empty);
        inner.in_scope(|| tracing::warn!("in inner, before record"));
        inner.record("later", "recorded");
        inner.in_scope(|| {
            tracing::warn!("in inner");
            let again = outer.enter();
            tracing::warn!("outer entered again inside inner");
            drop(again);
            tracing::warn!(parent: None, "a root event");
            tracing::warn!(parent: &outer, "explicit parent");
        });
        let empty = tracing::warn_span!("empty");
        empty.in_scope(|| tracing::warn!("in a span without fields"));
        let detached = tracing::warn_span!(parent: None, "detached", k = "v");
        detached.in_scope(|| tracing::warn!("in a root span"));
        let quiet = tracing::trace_span!("quiet", hidden = 1);
        quiet.in_scope(|| tracing::warn!("in a filtered span"));
        let current = tracing::Span::current();
        let child = tracing::warn_span!(parent: &current, "child_of_current");
        child.in_scope(|| tracing::warn!("under the current span"));
        drop(_o);
        drop((outer, inner));
        let late = tracing::warn_span!("late", n = 1);
        late.in_scope(|| tracing::warn!("a reused slot"));
    }

    /// The registry and the two `fmt` layers this module's subscriber
    /// replaces, as `init` set them up.
    fn reference(targets: Targets, stderr: Shared, file: Shared) -> impl Subscriber {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{Layer, fmt};
        let targets = theirs(&targets);
        let stderr = fmt::layer()
            .with_writer(move || Safe(stderr.clone()))
            .with_ansi(false)
            .without_time()
            .with_target(false)
            .with_filter(targets.clone());
        let file = fmt::layer()
            .with_writer(Mutex::new(Safe(file)))
            .with_ansi(false)
            .with_filter(targets);
        tracing_subscriber::registry().with(stderr).with(Some(file))
    }

    /// The file's lines without their timestamps, which must look like the
    /// crate's (`2026-01-02T03:04:05.123456Z`).
    fn untimed(text: &str) -> String {
        text.lines()
            .map(|line| {
                let (time, rest) = line.split_once(' ').unwrap();
                assert_eq!(time.len(), 27, "{line}");
                assert!(time.ends_with('Z') && time.as_bytes()[10] == b'T', "{line}");
                format!("{rest}\n")
            })
            .collect()
    }

    /// The crate's `Targets` with the same directives as ours.
    fn theirs(ours: &Targets) -> tracing_subscriber::filter::Targets {
        tracing_subscriber::filter::Targets::new()
            .with_default(ours.default)
            .with_targets(ours.iter().map(|(t, l)| (t.to_owned(), l)))
    }

    #[test]
    fn filters_decide_as_the_crates_targets() {
        let levels = [
            Level::TRACE,
            Level::DEBUG,
            Level::INFO,
            Level::WARN,
            Level::ERROR,
        ];
        for spec in [
            "warn",
            "trace",
            "off",
            "debug,backend_vault=off",
            "warn,hyper=trace,hyper::proto=off",
            "info,backend=trace,backend_core=error",
            "error,reqwest=debug",
        ] {
            let ours = filter(spec).unwrap();
            let crates = theirs(&ours);
            for target in [
                "backend_core",
                "backend_vault::login",
                "backend",
                "hyper",
                "hyper::proto::h1",
                "reqwest::connect",
                "aws_config",
                "x",
            ] {
                for level in &levels {
                    assert_eq!(
                        ours.would_enable(target, level),
                        crates.would_enable(target, level),
                        "{spec} {target} {level}"
                    );
                }
            }
            assert_eq!(
                Some(ours.max_level()),
                tracing_subscriber::Layer::<tracing::subscriber::NoSubscriber>::max_level_hint(
                    &crates
                ),
                "{spec}"
            );
        }
    }

    #[test]
    fn timestamps_as_the_crate_writes_them() {
        use tracing_subscriber::fmt::format::Writer;
        use tracing_subscriber::fmt::time::FormatTime;
        // The crate's timer reads the clock itself: compare on the seconds
        // shared, and our date arithmetic on fixed instants.
        let mut theirs = String::new();
        tracing_subscriber::fmt::time::SystemTime
            .format_time(&mut Writer::new(&mut theirs))
            .unwrap();
        let ours = timestamp(std::time::SystemTime::now());
        assert_eq!(ours.len(), theirs.len());
        assert_eq!(ours.get(..16), theirs.get(..16), "{ours} {theirs}");
        let at = |secs: u64, micros: u32| {
            timestamp(
                std::time::UNIX_EPOCH
                    + std::time::Duration::from_secs(secs)
                    + std::time::Duration::from_micros(u64::from(micros)),
            )
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 5), "2000-02-29T00:00:00.000005Z");
        assert_eq!(at(1_796_583_845, 123_456), "2026-12-06T19:04:05.123456Z");
        assert_eq!(at(4_102_444_799, 999_999), "2099-12-31T23:59:59.999999Z");
    }

    #[test]
    fn lines_are_the_fmt_layers_lines() {
        for spec in [
            "warn",
            "trace",
            "debug,backend_vault=off",
            "warn,hyper=trace",
        ] {
            let (ours_err, ours_file) = (Shared::default(), Shared::default());
            let ours = Lines::new(
                filter(spec).unwrap(),
                sink(ours_err.clone()),
                Some(sink(ours_file.clone())),
            );
            tracing::subscriber::with_default(ours, log_everything);
            let (their_err, their_file) = (Shared::default(), Shared::default());
            let theirs = reference(filter(spec).unwrap(), their_err.clone(), their_file.clone());
            tracing::subscriber::with_default(theirs, log_everything);
            assert!(
                ours_err.text().contains("WARN plain\n"),
                "{}",
                ours_err.text()
            );
            assert_eq!(ours_err.text(), their_err.text(), "{spec}");
            assert_eq!(
                untimed(&ours_file.text()),
                untimed(&their_file.text()),
                "{spec}"
            );
        }
        // Without a log file (recorded values once).
        let ours_err = Shared::default();
        let ours = Lines::new(filter("debug").unwrap(), sink(ours_err.clone()), None);
        tracing::subscriber::with_default(ours, log_everything);
        let their_err = Shared::default();
        let theirs = {
            use tracing_subscriber::layer::SubscriberExt;
            use tracing_subscriber::{Layer, fmt};
            let writer = their_err.clone();
            tracing_subscriber::registry().with(
                fmt::layer()
                    .with_writer(move || Safe(writer.clone()))
                    .with_ansi(false)
                    .without_time()
                    .with_target(false)
                    .with_filter(theirs(&filter("debug").unwrap())),
            )
        };
        tracing::subscriber::with_default(theirs, log_everything);
        assert_eq!(ours_err.text(), their_err.text());
    }

    #[test]
    fn lines_in_spans_are_lines_without_them() {
        let (err, file) = (Shared::default(), Shared::default());
        let ours = Lines::new(
            filter("trace").unwrap(),
            sink(err.clone()),
            Some(sink(file.clone())),
        );
        tracing::subscriber::with_default(ours, log_in_spans);
        let expected = [
            "in outer",
            "in inner, before record",
            "in inner",
            "outer entered again inside inner",
            "a root event",
            "explicit parent",
            "in a span without fields",
            "in a root span",
            "in a filtered span",
            "under the current span",
            "a reused slot",
        ]
        .map(|m| format!(" WARN {m}\n"))
        .concat();
        assert_eq!(err.text(), expected);
        assert_eq!(untimed(&file.text()).lines().count(), 11);
        assert!(
            untimed(&file.text()).starts_with(" WARN backend_core::logging::tests: in outer\n"),
            "{}",
            file.text()
        );
    }

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
