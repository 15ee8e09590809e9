//! Per-handle failures, and the configuration error that stops a run.
//!
//! A [`HandleError`] is data, not a crash: the reply carries it as the
//! handle's `error` and the process still exits 0. Its message names where
//! the provider looked (a path, a secret id, a file) and why it failed; it
//! never carries a value or a raw server response.

use std::fmt;
use std::time::Duration;

/// What kind of failure a handle met. Providers map their vendor errors
/// onto these in one place.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The store has nothing at that location, or no such key in it.
    NotFound,
    /// The store refused us (credentials, policy, file mode, path escape).
    PermissionDenied,
    /// The handle itself cannot be understood by this provider.
    InvalidHandle,
    /// The call's deadline passed before the handle was resolved.
    TimedOut,
    /// The store could not be reached or is not serving (down, sealed, 5xx).
    Unavailable,
    /// The value, or the thing that holds it, is over a size limit.
    TooLarge,
    /// Anything else; the message says what.
    Other,
}

impl ErrorKind {
    /// The kind in a few words: the error a handle keeps when the reply
    /// must shrink to fit the output cap.
    pub fn short(self) -> &'static str {
        match self {
            Self::NotFound => "not found",
            Self::PermissionDenied => "permission denied",
            Self::InvalidHandle => "invalid handle",
            Self::TimedOut => "timed out",
            Self::Unavailable => "store unavailable",
            Self::TooLarge => "too large",
            Self::Other => "failed",
        }
    }
}

/// Why one handle has no value. `Display` is the message the agent logs.
///
/// One allocation of exactly the message's size, and two words inline:
/// the kind is the first byte of the text (a tag), the message the rest.
/// A request of 200,000 handles that all fail holds 200,000 of these,
/// several times over (the provider's outcomes, the reply): a `String`
/// and a separate kind would take a third more, and a message built by
/// `format!` keeps spare capacity a boxed `str` does not.
#[derive(Clone, PartialEq, Eq)]
pub struct HandleError(Box<str>);

impl ErrorKind {
    const ALL: [ErrorKind; 7] = [
        ErrorKind::NotFound,
        ErrorKind::PermissionDenied,
        ErrorKind::InvalidHandle,
        ErrorKind::TimedOut,
        ErrorKind::Unavailable,
        ErrorKind::TooLarge,
        ErrorKind::Other,
    ];

    /// The one-byte tag the kind is stored as.
    fn tag(self) -> char {
        match self {
            Self::NotFound => '0',
            Self::PermissionDenied => '1',
            Self::InvalidHandle => '2',
            Self::TimedOut => '3',
            Self::Unavailable => '4',
            Self::TooLarge => '5',
            Self::Other => '6',
        }
    }
}

impl HandleError {
    /// An error of `kind`; by convention the message reads
    /// `<location>: <cause>`, e.g. `secret/db: permission denied`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::tagged(kind, &shown(message.into()))
    }

    fn tagged(kind: ErrorKind, message: &str) -> Self {
        let mut text = String::with_capacity(message.len() + 1);
        text.push(kind.tag());
        text.push_str(message);
        Self(text.into_boxed_str())
    }

    /// Nothing at the location, or no such key.
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }

    /// The store refused access.
    pub fn permission_denied(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::PermissionDenied, message)
    }

    /// The handle does not parse for this provider.
    pub fn invalid_handle(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidHandle, message)
    }

    /// The store is unreachable or not serving.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Unavailable, message)
    }

    /// Over a size limit.
    pub fn too_large(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::TooLarge, message)
    }

    /// Anything else.
    pub fn other(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Other, message)
    }

    /// The call's deadline passed; `budget` is the whole call's timeout.
    pub fn timed_out(budget: Duration) -> Self {
        Self::new(
            ErrorKind::TimedOut,
            format!("timed out after {}", human_duration(budget)),
        )
    }

    /// The kind of failure.
    pub fn kind(&self) -> ErrorKind {
        let tag = self.0.chars().next().unwrap_or('6');
        ErrorKind::ALL
            .into_iter()
            .find(|k| k.tag() == tag)
            .unwrap_or(ErrorKind::Other)
    }

    /// The message as the agent will log it.
    pub fn message(&self) -> &str {
        self.0.get(1..).unwrap_or_default()
    }

    /// The message's length in bytes.
    pub fn len(&self) -> usize {
        self.message().len()
    }

    /// Whether the message is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The same error with `context: ` in front, for providers that add the
    /// location to an error raised deeper down.
    #[must_use]
    pub fn context(self, context: impl fmt::Display) -> Self {
        let context = shown(context.to_string());
        Self::tagged(self.kind(), &format!("{context}: {}", self.message()))
    }
}

impl fmt::Debug for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HandleError")
            .field("kind", &self.kind())
            .field("message", &self.message())
            .finish()
    }
}

impl fmt::Display for HandleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.message())
    }
}

impl std::error::Error for HandleError {}

/// Bad configuration or usage: the run stops with exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError(String);

impl ConfigError {
    /// A configuration error with a message naming the setting and the cause.
    pub fn new(message: impl Into<String>) -> Self {
        let message = shown(message.into());
        // Config errors often wrap a deserializer's, which quotes values.
        Self(match crate::redact::serde_values(&message) {
            std::borrow::Cow::Borrowed(_) => message,
            std::borrow::Cow::Owned(safe) => safe,
        })
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for ConfigError {}

/// A message as it may be shown: URL userinfo hidden, control characters
/// escaped ([`crate::redact::text`]).
fn shown(message: String) -> String {
    match crate::redact::text(&message) {
        std::borrow::Cow::Borrowed(_) => message,
        std::borrow::Cow::Owned(safe) => safe,
    }
}

/// A Unix time as `YYYY-MM-DDTHH:MM:SS` (UTC, proleptic Gregorian, any
/// year): for messages and log lines, which add their own suffix.
pub fn utc(t: i64) -> String {
    let days = t.div_euclid(86_400);
    let secs = t.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

/// `5s`, `2.5s`, `250ms`: how a duration reads in a message.
pub fn human_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 && d.as_secs() > 0 {
        format!("{}s", d.as_secs())
    } else if d.as_secs() == 0 {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timed_out_message() {
        assert_eq!(
            HandleError::timed_out(Duration::from_secs(5)).message(),
            "timed out after 5s"
        );
        assert_eq!(
            HandleError::timed_out(Duration::from_millis(2500)).message(),
            "timed out after 2.5s"
        );
        assert_eq!(
            HandleError::timed_out(Duration::from_millis(300)).message(),
            "timed out after 300ms"
        );
    }

    #[test]
    fn messages_never_show_userinfo_or_controls() {
        let e = HandleError::unavailable("cannot reach http://u:PW@h:1").context("a\nb");
        assert_eq!(e.to_string(), "a\\nb: cannot reach http://***@h:1");
        let e = ConfigError::new("bad address 'http://u:PW@[::1'");
        assert_eq!(e.to_string(), "bad address 'http://***@[::1'");
    }

    #[test]
    fn context_prefixes_and_keeps_kind() {
        let e = HandleError::not_found("no key 'x'").context("secret/db");
        assert_eq!(e.to_string(), "secret/db: no key 'x'");
        assert_eq!(e.message(), "secret/db: no key 'x'");
        assert_eq!(e.len(), e.to_string().len());
        assert_eq!(e.kind(), ErrorKind::NotFound);
        let e = e.context("ns");
        assert_eq!(e.to_string(), "ns: secret/db: no key 'x'");
    }

    #[test]
    fn kinds_survive_and_outcomes_stay_small() {
        for kind in ErrorKind::ALL {
            let e = HandleError::new(kind, "x: y").context("loc");
            assert_eq!(e.kind(), kind);
            assert_eq!(e.message(), "loc: x: y");
        }
        assert_eq!(HandleError::other("").message(), "");
        // An outcome is as small as the value it holds.
        assert_eq!(
            std::mem::size_of::<Result<crate::Secret, HandleError>>(),
            std::mem::size_of::<crate::Secret>()
        );
    }
}
