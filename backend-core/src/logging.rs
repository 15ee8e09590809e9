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

use std::cell::RefCell;
use std::fmt::Write as _;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::Path;
use std::sync::{Mutex, PoisonError};

use tracing::level_filters::LevelFilter;
use tracing::span::{Attributes, Id, Record};
use tracing::subscriber::Interest;
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_core::span::Current;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::fmt::FormattedFields;
use tracing_subscriber::fmt::format::{DefaultFields, FormatFields, Writer};
use tracing_subscriber::fmt::time::{FormatTime, SystemTime};

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
/// (full format, no ANSI) wrote, byte for byte: on stderr `LEVEL spans:
/// fields`, in the file `TIMESTAMP LEVEL spans: target: fields`, the
/// fields and span fields formatted by that crate's own [`DefaultFields`],
/// the timestamp by its [`SystemTime`]. Hand-written because the registry,
/// its per-layer filters and two `fmt` layer instances cost about 50 KB of
/// every binary (`secret-backend-file` must stay under 1 MB); a test holds
/// the lines to the ones the crate's layers write.
struct Lines {
    targets: Targets,
    stderr: Sink,
    file: Option<Sink>,
    spans: Mutex<Spans>,
}

/// Open spans by id - 1, and the slots closed spans left, to reuse.
#[derive(Default)]
struct Spans {
    slots: Vec<Option<SpanData>>,
    free: Vec<usize>,
}

/// A span the filter let through: what its lines show of it.
struct SpanData {
    meta: &'static Metadata<'static>,
    fields: FormattedFields<DefaultFields>,
    parent: Option<Id>,
    /// Handles to it (its `Span`s and its children's parent links).
    refs: usize,
}

thread_local! {
    /// The spans this thread is in, innermost last; a span entered again
    /// while it is already in is marked (it does not become current twice).
    static ENTERED: RefCell<Vec<(u64, bool)>> = const { RefCell::new(Vec::new()) };
}

/// The innermost span this thread is in.
fn current() -> Option<Id> {
    // Nothing once the thread's locals are gone (a span dropped as the
    // thread ends).
    ENTERED
        .try_with(|stack| {
            stack
                .borrow()
                .iter()
                .rev()
                .find(|(_, again)| !again)
                .map(|(id, _)| *id)
        })
        .ok()
        .flatten()
        .map(Id::from_u64)
}

fn slot(id: &Id) -> usize {
    usize::try_from(id.into_u64() - 1).unwrap_or(usize::MAX)
}

impl Lines {
    fn new(targets: Targets, stderr: Sink, file: Option<Sink>) -> Self {
        Self {
            targets,
            stderr,
            file,
            spans: Mutex::default(),
        }
    }

    fn with_span<R>(&self, id: &Id, f: impl FnOnce(&mut SpanData) -> R) -> Option<R> {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        spans
            .slots
            .get_mut(slot(id))
            .and_then(Option::as_mut)
            .map(f)
    }

    /// `name{fields}:` for each span from the outermost in, and a space
    /// after them, as the `fmt` layer writes an event's spans.
    fn scope(&self, event: &Event<'_>, out: &mut String) {
        let mut next = if event.is_root() {
            None
        } else if event.is_contextual() {
            current()
        } else {
            event.parent().cloned()
        };
        let mut names = Vec::new();
        let spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        while let Some(span) = next.and_then(|id| spans.slots.get(slot(&id))?.as_ref()) {
            names.push(span);
            next = span.parent.clone();
        }
        for span in names.iter().rev() {
            out.push_str(span.meta.name());
            if !span.fields.fields.is_empty() {
                let _ = write!(out, "{{{}}}", span.fields.fields);
            }
            out.push(':');
        }
        if !names.is_empty() {
            out.push(' ');
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
        tracing_subscriber::Layer::<tracing::subscriber::NoSubscriber>::max_level_hint(
            &self.targets,
        )
    }

    fn new_span(&self, attrs: &Attributes<'_>) -> Id {
        let parent = if attrs.is_root() {
            None
        } else if attrs.is_contextual() {
            current()
        } else {
            attrs.parent().cloned()
        };
        let mut fields = FormattedFields::new(String::new());
        let _ = DefaultFields::new().format_fields(fields.as_writer(), attrs);
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(parent) = parent
            .as_ref()
            .and_then(|id| spans.slots.get_mut(slot(id))?.as_mut())
        {
            parent.refs += 1;
        }
        let data = SpanData {
            meta: attrs.metadata(),
            fields,
            parent,
            refs: 1,
        };
        let at = match spans.free.pop() {
            Some(at) => {
                spans.slots[at] = Some(data);
                at
            }
            None => {
                spans.slots.push(Some(data));
                spans.slots.len() - 1
            }
        };
        Id::from_u64(u64::try_from(at).unwrap_or(u64::MAX - 1) + 1)
    }

    fn record(&self, id: &Id, values: &Record<'_>) {
        // Formatted outside the lock: a value's Debug may log.
        let mut more = FormattedFields::<DefaultFields>::new(String::new());
        let _ = DefaultFields::new().format_fields(more.as_writer(), values);
        if more.fields.is_empty() {
            return;
        }
        // The two `fmt` layers shared the span's formatted fields and each
        // appended a recorded value to them: with a log file, a value
        // recorded later shows twice, as it did.
        let times = if self.file.is_some() { 2 } else { 1 };
        self.with_span(id, |span| {
            for _ in 0..times {
                if !span.fields.fields.is_empty() {
                    span.fields.fields.push(' ');
                }
                span.fields.fields.push_str(&more.fields);
            }
        });
    }

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
        let mut spans = String::new();
        self.scope(event, &mut spans);
        let mut fields = String::new();
        if DefaultFields::new()
            .format_fields(Writer::new(&mut fields), event)
            .is_err()
        {
            return;
        }
        let line = format!("{level}{spans}{fields}\n");
        let mut stderr = self.stderr.lock().unwrap_or_else(PoisonError::into_inner);
        let _ = stderr.write_all(line.as_bytes());
        drop(stderr);
        if let Some(file) = &self.file {
            let mut line = String::new();
            let _ = SystemTime.format_time(&mut Writer::new(&mut line));
            let _ = writeln!(line, " {level}{spans}{}: {fields}", meta.target());
            let mut file = file.lock().unwrap_or_else(PoisonError::into_inner);
            let _ = file.write_all(line.as_bytes());
        }
    }

    fn enter(&self, id: &Id) {
        let id = id.into_u64();
        let _ = ENTERED.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            let again = stack.iter().any(|(entered, _)| *entered == id);
            stack.push((id, again));
        });
    }

    fn exit(&self, id: &Id) {
        let id = id.into_u64();
        let _ = ENTERED.try_with(|stack| {
            let mut stack = stack.borrow_mut();
            if let Some(at) = stack.iter().rposition(|(entered, _)| *entered == id) {
                stack.remove(at);
            }
        });
    }

    fn clone_span(&self, id: &Id) -> Id {
        self.with_span(id, |span| span.refs += 1);
        id.clone()
    }

    fn try_close(&self, id: Id) -> bool {
        let mut spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        let mut next = Some(id);
        let mut first = true;
        let mut closed = false;
        // A closed span lets go of its parent, which may close in turn.
        while let Some(id) = next.take() {
            let at = slot(&id);
            let Some(entry) = spans.slots.get_mut(at) else {
                break;
            };
            let Some(span) = entry.as_mut() else {
                break;
            };
            span.refs -= 1;
            if span.refs == 0 {
                next = entry.take().and_then(|span| span.parent);
                spans.free.push(at);
                closed |= first;
            }
            first = false;
        }
        closed
    }

    fn current_span(&self) -> Current {
        let spans = self.spans.lock().unwrap_or_else(PoisonError::into_inner);
        current()
            .and_then(|id| {
                let meta = spans.slots.get(slot(&id))?.as_ref()?.meta;
                Some(Current::new(id, meta))
            })
            .unwrap_or_else(Current::none)
    }
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

    /// Events and spans of every shape the backends and their crates log.
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
        tracing::warn!("after the spans closed");
        std::thread::spawn(|| tracing::warn!("another thread"))
            .join()
            .unwrap();
        let late = tracing::warn_span!("late", n = 1);
        late.in_scope(|| tracing::warn!("a reused slot"));
    }

    /// The registry and the two `fmt` layers this module's subscriber
    /// replaces, as `init` set them up.
    fn reference(targets: Targets, stderr: Shared, file: Shared) -> impl Subscriber {
        use tracing_subscriber::layer::SubscriberExt;
        use tracing_subscriber::{Layer, fmt};
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
                    .with_filter(filter("debug").unwrap()),
            )
        };
        tracing::subscriber::with_default(theirs, log_everything);
        assert_eq!(ours_err.text(), their_err.text());
    }

    #[test]
    fn spans_are_freed_when_closed() {
        let lines = Lines::new(filter("trace").unwrap(), sink(Shared::default()), None);
        let dispatch = tracing::Dispatch::new(lines);
        tracing::dispatcher::with_default(&dispatch, || {
            for _ in 0..100 {
                let a = tracing::info_span!("a");
                let _a = a.enter();
                let b = tracing::info_span!("b");
                b.in_scope(|| tracing::info!("x"));
            }
        });
        let lines = dispatch.downcast_ref::<Lines>().unwrap();
        let spans = &lines.spans.lock().unwrap().slots;
        assert!(
            spans.iter().all(Option::is_none) && spans.len() <= 2,
            "{}",
            spans.len()
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
