//! Opening and reading the files an operator or a handle names: config
//! files, credential files (tokens, secret ids, keys), CA bundles, the
//! secrets of the file store.
//!
//! Every such path can be planted: a FIFO opened for reading waits for a
//! writer forever, a device never ends, a terminal could become our
//! controlling terminal. So every file is opened here with `O_NONBLOCK`
//! (opening a FIFO returns at once) and `O_NOCTTY`, refused unless `fstat`
//! says it is a regular file, and read whole up to a limit or not at all
//! (never truncated), into buffers that are zeroized, every grown copy
//! included. What a read can still wait on (a hung network filesystem) is
//! bounded by the runner's watchdog, which answers at the deadline whatever
//! the main thread is doing.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::path::Path;

use zeroize::Zeroizing;

use crate::error::ConfigError;

/// The flags every read of a named file is opened with: no waiting for a
/// FIFO's writer, no controlling terminal (std adds `O_CLOEXEC`).
#[cfg(unix)]
pub const OPEN_FLAGS: i32 = libc::O_NONBLOCK | libc::O_NOCTTY;

/// Opens `path` for reading without blocking on special files (see the
/// module docs). The caller checks what it opened with [`File::metadata`]
/// or uses [`read_regular`].
pub fn open_nonblocking(path: &Path) -> io::Result<File> {
    let mut options = OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::custom_flags(&mut options, OPEN_FLAGS);
    options.open(path)
}

/// Why a named file was not read.
#[derive(Debug)]
pub enum ReadError {
    /// It could not be opened or read.
    Io(io::Error),
    /// It is a directory.
    Directory,
    /// It is a FIFO, socket or device.
    NotRegular,
    /// It is larger than the limit (the limit is in the variant).
    TooLarge(u64),
    /// Group or others can write it (the mode is in the variant).
    Writable(u32),
    /// It is not UTF-8 text.
    NotUtf8,
}

impl std::fmt::Display for ReadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Io(e) => write!(f, "{e}"),
            Self::Directory => f.write_str("is a directory, not a file"),
            Self::NotRegular => {
                f.write_str("not a regular file (a FIFO, socket or device is never read)")
            }
            Self::TooLarge(max) => write!(f, "is larger than {max} bytes"),
            Self::Writable(mode) => write!(
                f,
                "is writable by group or others (mode {mode:04o}): refusing it; chmod go-w it"
            ),
            Self::NotUtf8 => f.write_str("is not UTF-8 text"),
        }
    }
}

impl From<io::Error> for ReadError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

impl ReadError {
    /// The error as a config error naming `what` and `path`.
    pub fn config(self, what: &str, path: &Path) -> ConfigError {
        let shown = path.display();
        match self {
            Self::Io(_) | Self::Directory | Self::NotRegular => {
                ConfigError::new(format!("{what} {shown}: {self}"))
            }
            _ => ConfigError::new(format!("{what} {shown} {self}")),
        }
    }
}

/// What [`read_regular`] demands of a file beyond being regular.
#[derive(Debug, Clone, Copy)]
pub struct Rules {
    /// Largest size read.
    pub max: u64,
    /// Refuse it when group or others can write it (config and credential
    /// files: whoever can write them can swap our server or credentials).
    pub refuse_writable: bool,
}

/// Opens `path` without blocking, refuses anything but a regular file (and,
/// per `rules`, one others can write), and reads it whole: at most
/// `rules.max` bytes, never truncated.
pub fn read_regular(path: &Path, rules: Rules) -> Result<Zeroizing<Vec<u8>>, ReadError> {
    let file = open_nonblocking(path)?;
    let meta = file.metadata()?;
    if meta.is_dir() {
        return Err(ReadError::Directory);
    }
    if !meta.is_file() {
        return Err(ReadError::NotRegular);
    }
    #[cfg(unix)]
    if rules.refuse_writable {
        use std::os::unix::fs::PermissionsExt;
        let mode = meta.permissions().mode();
        if mode & 0o022 != 0 {
            return Err(ReadError::Writable(mode & 0o7777));
        }
    }
    if meta.len() > rules.max {
        return Err(ReadError::TooLarge(rules.max));
    }
    let bytes = read_bounded(file, meta.len(), rules.max)?;
    if bytes.len() as u64 > rules.max {
        return Err(ReadError::TooLarge(rules.max));
    }
    Ok(bytes)
}

/// [`read_regular`], as UTF-8 text.
pub fn read_regular_text(path: &Path, rules: Rules) -> Result<Zeroizing<String>, ReadError> {
    utf8(read_regular(path, rules)?)
}

/// The bytes as text, the buffer zeroized either way.
pub fn utf8(mut bytes: Zeroizing<Vec<u8>>) -> Result<Zeroizing<String>, ReadError> {
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(ReadError::NotUtf8)
        }
    }
}

/// Reads at most `limit + 1` bytes into a buffer that is zeroized, and
/// whose every earlier, smaller copy was zeroized when it grew. `hint` is
/// the expected size (the metadata's, which may lie: a file growing, a
/// procfs-like size of 0); the caller compares the length with `limit`.
pub fn read_bounded(mut file: impl Read, hint: u64, limit: u64) -> io::Result<Zeroizing<Vec<u8>>> {
    let cap = usize::try_from(limit.saturating_add(1)).unwrap_or(usize::MAX);
    let first = usize::try_from(hint.saturating_add(1))
        .unwrap_or(usize::MAX)
        .clamp(1, cap);
    let mut buf = Zeroizing::new(vec![0u8; first]);
    let mut filled = 0;
    loop {
        if filled == buf.len() {
            if buf.len() >= cap {
                break;
            }
            let mut bigger = Zeroizing::new(vec![0u8; buf.len().saturating_mul(2).min(cap)]);
            if let (Some(to), Some(from)) = (bigger.get_mut(..filled), buf.get(..filled)) {
                to.copy_from_slice(from);
            }
            buf = bigger;
        }
        let Some(free) = buf.get_mut(filled..) else {
            break;
        };
        match file.read(free) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(filled);
    Ok(buf)
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;
    use std::time::{Duration, Instant};

    use super::*;

    const RULES: Rules = Rules {
        max: 100,
        refuse_writable: true,
    };

    fn mkfifo(path: &Path) {
        let status = std::process::Command::new("mkfifo")
            .arg(path)
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[test]
    fn special_files_are_refused_without_waiting() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        mkfifo(&fifo);
        let start = Instant::now();
        assert!(matches!(
            read_regular(&fifo, RULES),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(Path::new("/dev/zero"), RULES),
            Err(ReadError::NotRegular)
        ));
        assert!(matches!(
            read_regular(d.path(), RULES),
            Err(ReadError::Directory)
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        let sock = d.path().join("sock");
        let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
        assert!(read_regular(&sock, RULES).is_err());
    }

    #[test]
    fn size_mode_and_text_rules() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, "x".repeat(100)).unwrap();
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert_eq!(read_regular_text(&p, RULES).unwrap().len(), 100);
        std::fs::write(&p, "x".repeat(101)).unwrap();
        assert!(matches!(
            read_regular(&p, RULES),
            Err(ReadError::TooLarge(100))
        ));
        std::fs::write(&p, [0xff, 0xfe]).unwrap();
        assert!(matches!(
            read_regular_text(&p, RULES),
            Err(ReadError::NotUtf8)
        ));
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o620)).unwrap();
        assert!(matches!(
            read_regular(&p, RULES),
            Err(ReadError::Writable(0o620))
        ));
        let loose = Rules {
            refuse_writable: false,
            ..RULES
        };
        assert!(read_regular(&p, loose).is_ok());
        let e = read_regular(&d.path().join("missing"), RULES)
            .unwrap_err()
            .config("token file", &d.path().join("missing"))
            .to_string();
        assert!(e.starts_with("token file ") && e.contains("missing"), "{e}");
    }

    #[test]
    fn a_lying_size_never_truncates() {
        // /proc files say 0 bytes; the read still finds everything.
        let text = read_regular_text(
            Path::new("/proc/self/status"),
            Rules {
                max: 1 << 20,
                refuse_writable: false,
            },
        )
        .unwrap();
        assert!(text.contains("Name:"));
        assert!(matches!(
            read_regular(
                Path::new("/proc/self/status"),
                Rules {
                    max: 10,
                    refuse_writable: false
                }
            ),
            Err(ReadError::TooLarge(10))
        ));
    }
}
