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
//!
//! Files we keep (the token caches of vault, gcp and azure) are written by
//! [`write_private`]: a new 0600 file in the same directory, synced, then
//! renamed over the old one, so a reader sees the old content or the new,
//! never half of it, and nobody else ever could read it. What is at that
//! path and is not a regular file (a FIFO, a device, a socket, a directory,
//! a symbolic link someone planted) is never replaced nor removed.

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

/// Why [`write_private`] did not write.
#[derive(Debug)]
pub enum WriteError {
    /// Something that is not a regular file is at the path: left alone.
    NotRegular,
    /// Creating, writing or renaming failed (the path has no file name, the
    /// directory is missing or not writable).
    Io(io::Error),
}

impl std::fmt::Display for WriteError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NotRegular => f.write_str("is not a regular file; not replacing it"),
            Self::Io(e) => write!(f, "{e}"),
        }
    }
}

impl From<io::Error> for WriteError {
    fn from(e: io::Error) -> Self {
        Self::Io(e)
    }
}

/// Whether what is at `path` may be replaced or removed by us: nothing, or
/// a regular file (not followed if it is a link: a link is not replaced).
pub fn replaceable(path: &Path) -> bool {
    match std::fs::symlink_metadata(path) {
        Ok(meta) => meta.is_file(),
        Err(e) => e.kind() == io::ErrorKind::NotFound,
    }
}

/// Writes `bytes` to `path` atomically with mode 0600 (see the module
/// docs): a new file `.<name>.<pid>.<n>.tmp` beside it, created exclusively
/// (never an existing one), written, synced and renamed over `path`. The
/// temporary file is removed if anything fails. Refuses (and leaves alone)
/// whatever is at `path` unless it is a regular file.
pub fn write_private(path: &Path, bytes: &[u8]) -> Result<(), WriteError> {
    use std::io::Write as _;
    use std::sync::atomic::{AtomicU32, Ordering};

    static COUNTER: AtomicU32 = AtomicU32::new(0);
    if !replaceable(path) {
        return Err(WriteError::NotRegular);
    }
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let name = path
        .file_name()
        .ok_or_else(|| io::Error::other("not a file name"))?;
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mut attempt = 0u32;
    let (tmp, file) = loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let tmp = dir.join(format!(
            ".{}.{}.{nanos:x}{n}.tmp",
            name.to_string_lossy(),
            std::process::id()
        ));
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            std::os::unix::fs::OpenOptionsExt::custom_flags(
                &mut options,
                libc::O_NOFOLLOW | libc::O_NOCTTY,
            );
        }
        match options.open(&tmp) {
            Ok(f) => break (tmp, f),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists && attempt < 16 => attempt += 1,
            Err(e) => return Err(e.into()),
        }
    };
    let mut file = file;
    let done = file
        .write_all(bytes)
        .and_then(|()| file.sync_all())
        .and_then(|()| std::fs::rename(&tmp, path));
    if done.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    Ok(done?)
}

/// Removes the file at `path` if it is a regular file (a forgotten cache);
/// anything else there stays. A missing file is not an error.
pub fn remove_private(path: &Path) -> Result<(), WriteError> {
    match std::fs::symlink_metadata(path) {
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e.into()),
        Ok(meta) if meta.is_file() => match std::fs::remove_file(path) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e.into()),
            _ => Ok(()),
        },
        Ok(_) => Err(WriteError::NotRegular),
    }
}

/// The JSON document of a token cache file (`token_cache_file:` of gcp and
/// azure), read like a credential file (bounded, refused when group or
/// others can write it) and its text zeroized. `None` when there is no
/// file yet, or, with a warning, when it cannot be read or is not JSON: a
/// cache never fails a call. The caller [`crate::key::wipe`]s the document.
pub fn read_token_cache(file: &Path) -> Option<serde_json::Value> {
    use zeroize::Zeroize as _;
    if std::fs::symlink_metadata(file).is_err() {
        tracing::debug!("no token cache at {} yet", file.display());
        return None;
    }
    let mut text = match crate::config::read_guarded(
        file,
        "token_cache_file",
        crate::config::MAX_CREDENTIAL_BYTES,
    ) {
        Ok(t) => t,
        Err(e) => {
            tracing::warn!("ignoring the token cache: {e}");
            return None;
        }
    };
    let parsed = serde_json::from_str::<serde_json::Value>(&text);
    text.zeroize();
    match parsed {
        Ok(v) => Some(v),
        Err(_) => {
            tracing::warn!(
                "ignoring the token cache {}: not a cache file",
                file.display()
            );
            None
        }
    }
}

/// Writes `doc` as the token cache file with [`write_private`], then wipes
/// it and its text; a failure is a warning.
pub fn write_token_cache(file: &Path, mut doc: serde_json::Value) {
    use zeroize::Zeroize as _;
    let mut text = doc.to_string();
    crate::key::wipe(&mut doc);
    match write_private(file, text.as_bytes()) {
        Ok(()) => tracing::debug!("access token kept in {}", file.display()),
        Err(e @ WriteError::NotRegular) => {
            tracing::warn!("token_cache_file {} {e}", file.display());
        }
        Err(e) => tracing::warn!("cannot write the token cache {}: {e}", file.display()),
    }
    text.zeroize();
}

/// Forgets a token cache file (its token was refused) with
/// [`remove_private`]; a failure is a warning.
pub fn forget_token_cache(file: &Path) {
    if let Err(e) = remove_private(file) {
        tracing::warn!("cannot remove the token cache {}: {e}", file.display());
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::{FileTypeExt as _, PermissionsExt};
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
    fn private_files_are_0600_replaced_whole_and_leave_nothing_behind() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("token");
        std::fs::write(&f, "old").unwrap();
        std::fs::set_permissions(&f, std::fs::Permissions::from_mode(0o666)).unwrap();
        write_private(&f, b"new-token").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "new-token");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        write_private(&f, b"again").unwrap();
        assert_eq!(std::fs::read_to_string(&f).unwrap(), "again");
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 1);
        assert!(matches!(
            write_private(&d.path().join("missing-dir/token"), b"x"),
            Err(WriteError::Io(_))
        ));
        assert!(matches!(
            write_private(Path::new("/"), b"x"),
            Err(WriteError::NotRegular)
        ));
        remove_private(&f).unwrap();
        assert!(!f.exists());
        remove_private(&f).unwrap();
    }

    #[test]
    fn what_is_not_a_regular_file_is_never_replaced_nor_removed() {
        let d = tempfile::tempdir().unwrap();
        let fifo = d.path().join("fifo");
        mkfifo(&fifo);
        let dir = d.path().join("dir");
        std::fs::create_dir(&dir).unwrap();
        let target = d.path().join("target");
        std::fs::write(&target, "kept").unwrap();
        let link = d.path().join("link");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        for p in [&fifo, &dir, &link] {
            assert!(!replaceable(p));
            let e = write_private(p, b"token").unwrap_err();
            assert!(matches!(e, WriteError::NotRegular), "{e}");
            assert!(e.to_string().contains("not a regular file"));
            assert!(matches!(remove_private(p), Err(WriteError::NotRegular)));
        }
        assert!(
            std::fs::symlink_metadata(&fifo)
                .unwrap()
                .file_type()
                .is_fifo()
        );
        assert!(dir.is_dir());
        assert!(
            std::fs::symlink_metadata(&link)
                .unwrap()
                .file_type()
                .is_symlink()
        );
        assert_eq!(std::fs::read_to_string(&target).unwrap(), "kept");
        // Nothing left behind: fifo, dir, target, link.
        assert_eq!(std::fs::read_dir(d.path()).unwrap().count(), 4);
        assert!(replaceable(&d.path().join("absent")));
    }

    #[test]
    fn token_cache_documents_round_trip_privately() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path().join("cache.json");
        assert!(read_token_cache(&f).is_none());
        write_token_cache(
            &f,
            serde_json::json!({"access_token": "t-VALUE", "expires_at": 9}),
        );
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
        let v = read_token_cache(&f).unwrap();
        assert_eq!(v["access_token"], "t-VALUE");
        std::fs::write(&f, "not json").unwrap();
        assert!(read_token_cache(&f).is_none());
        forget_token_cache(&f);
        assert!(!f.exists());
        std::fs::create_dir(&f).unwrap();
        write_token_cache(&f, serde_json::json!({}));
        forget_token_cache(&f);
        assert!(f.is_dir());
        assert!(read_token_cache(&f).is_none());
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
