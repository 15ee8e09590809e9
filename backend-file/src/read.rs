//! Reading one secret file: opened without blocking on special files (the
//! core's [`backend_core::fs`] flags and bounded read, shared with every
//! config and credential file),
//! refused unless it is a regular file under the size limit, read whole or
//! not at all (never truncated), UTF-8 only, buffers zeroized.
//!
//! Opening and reading block; callers run them on threads of their own.

use std::io::{self, Read};
use std::path::Path;

use backend_core::HandleError;
use cap_std::fs::Dir;
use zeroize::Zeroizing;

/// Opens `path` beneath `root` for reading. cap-std resolves every
/// component, symlinks included, inside `root` and fails with
/// [`is_escape`] errors for anything that would leave it.
pub fn open_in(root: &Dir, path: &str) -> io::Result<cap_std::fs::File> {
    let mut options = cap_std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    cap_std::fs::OpenOptionsExt::custom_flags(&mut options, backend_core::fs::OPEN_FLAGS);
    root.open_with(path, &options)
}

/// Opens an operator-configured path (the document of document mode).
pub fn open_ambient(path: &Path) -> io::Result<std::fs::File> {
    backend_core::fs::open_nonblocking(path)
}

/// What the metadata says about an opened file.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// It is a directory.
    pub is_dir: bool,
    /// It is a regular file.
    pub is_file: bool,
    /// Its size in bytes.
    pub len: u64,
}

/// Reads a whole file of the given `shape` as UTF-8 text of at most `limit`
/// bytes. `location` starts every error message.
pub fn read_text(
    file: impl Read,
    shape: Shape,
    limit: u64,
    location: &str,
) -> Result<Zeroizing<String>, HandleError> {
    if shape.is_dir {
        return Err(HandleError::invalid_handle(format!(
            "{location}: is a directory, not a file"
        )));
    }
    if !shape.is_file {
        return Err(HandleError::invalid_handle(format!(
            "{location}: not a regular file"
        )));
    }
    let too_large = || {
        HandleError::too_large(format!(
            "{location}: file is larger than the limit of {limit} bytes (max_file_bytes)"
        ))
    };
    if shape.len > limit {
        return Err(too_large());
    }
    // The metadata may lie (a file growing, a procfs-like size of 0): the
    // read itself stops one byte past the limit and refuses, never truncates.
    let mut bytes = backend_core::fs::read_bounded(file, shape.len, limit)
        .map_err(|e| io_error(location, &e))?;
    if bytes.len() as u64 > limit {
        return Err(too_large());
    }
    match String::from_utf8(std::mem::take(&mut *bytes)) {
        Ok(text) => Ok(Zeroizing::new(text)),
        Err(e) => {
            drop(Zeroizing::new(e.into_bytes()));
            Err(HandleError::other(format!(
                "{location}: not UTF-8 text (binary files are not supported)"
            )))
        }
    }
}

/// Removes one trailing `\n` or `\r\n`.
pub fn trim_newline(text: &str) -> &str {
    text.strip_suffix("\r\n")
        .or_else(|| text.strip_suffix('\n'))
        .unwrap_or(text)
}

/// cap-std's refusal of a path that resolves outside the root (a `..` or a
/// symlink leading out). It has no error kind of its own, only this text.
pub fn is_escape(e: &io::Error) -> bool {
    e.kind() == io::ErrorKind::PermissionDenied
        && e.to_string() == "a path led outside of the filesystem"
}

/// A symlink loop (`ErrorKind::FilesystemLoop` is not stable yet).
fn is_loop(e: &io::Error) -> bool {
    #[cfg(unix)]
    {
        e.raw_os_error() == Some(libc::ELOOP)
    }
    #[cfg(not(unix))]
    {
        let _ = e;
        false
    }
}

/// An I/O error as a handle's error, `<location>: <cause>`.
pub fn io_error(location: &str, e: &io::Error) -> HandleError {
    use io::ErrorKind as K;
    match e.kind() {
        K::NotFound => HandleError::not_found(format!("{location}: no such file")),
        K::PermissionDenied if is_escape(e) => HandleError::permission_denied(format!(
            "{location}: refused: the path leads outside the secrets directory (through '..' or a symlink)"
        )),
        K::PermissionDenied => {
            HandleError::permission_denied(format!("{location}: permission denied"))
        }
        K::NotADirectory => HandleError::not_found(format!(
            "{location}: no such file (a parent is not a directory)"
        )),
        K::IsADirectory => {
            HandleError::invalid_handle(format!("{location}: is a directory, not a file"))
        }
        _ if is_loop(e) => {
            HandleError::other(format!("{location}: too many levels of symbolic links"))
        }
        K::InvalidInput | K::InvalidFilename => {
            HandleError::invalid_handle(format!("{location}: not a valid file name"))
        }
        _ => HandleError::unavailable(format!("{location}: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use backend_core::ErrorKind;

    use super::*;

    fn file(len: u64) -> Shape {
        Shape {
            is_dir: false,
            is_file: true,
            len,
        }
    }

    fn read(bytes: &[u8], shape: Shape, limit: u64) -> Result<String, (ErrorKind, String)> {
        read_text(bytes, shape, limit, "f")
            .map(|t| t.to_string())
            .map_err(|e| (e.kind(), e.to_string()))
    }

    #[test]
    fn reads_whole_files_and_refuses_over_the_limit() {
        assert_eq!(read(b"abc", file(3), 3).unwrap(), "abc");
        assert_eq!(read(b"", file(0), 3).unwrap(), "");
        // Metadata says small, the file is bigger: refused, not truncated.
        assert_eq!(
            read(b"abcd", file(0), 3).unwrap_err().0,
            ErrorKind::TooLarge
        );
        assert_eq!(
            read(b"abcd", file(4), 3).unwrap_err().0,
            ErrorKind::TooLarge
        );
        // A buffer that grows several times keeps every byte.
        let big: Vec<u8> = (0..10_000u32).map(|i| b'a' + (i % 26) as u8).collect();
        let text = read(&big, file(1), 10_000).unwrap();
        assert_eq!(text.as_bytes(), &big[..]);
        let e = read(&big, file(1), 9_999).unwrap_err();
        assert_eq!(
            e.1,
            "f: file is larger than the limit of 9999 bytes (max_file_bytes)"
        );
    }

    #[test]
    fn refuses_binary_directories_and_special_files() {
        assert_eq!(
            read(&[0xff, 0xfe, 0], file(3), 10).unwrap_err().1,
            "f: not UTF-8 text (binary files are not supported)"
        );
        let dir = Shape {
            is_dir: true,
            is_file: false,
            len: 4096,
        };
        assert_eq!(
            read(b"", dir, 10).unwrap_err().1,
            "f: is a directory, not a file"
        );
        let fifo = Shape {
            is_dir: false,
            is_file: false,
            len: 0,
        };
        assert_eq!(read(b"", fifo, 10).unwrap_err().1, "f: not a regular file");
    }

    #[test]
    fn trims_one_newline() {
        assert_eq!(trim_newline("a\n"), "a");
        assert_eq!(trim_newline("a\r\n"), "a");
        assert_eq!(trim_newline("a\n\n"), "a\n");
        assert_eq!(trim_newline("a\r\n\r\n"), "a\r\n");
        assert_eq!(trim_newline("a\r"), "a\r");
        assert_eq!(trim_newline("a"), "a");
    }
}
