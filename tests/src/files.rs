//! Files as the end-to-end tests write them: configs, token and password
//! files, keys. The backends refuse a credential file others can write and
//! warn about a config others can read, so a test's files are private
//! (mode 0600) unless the test is about the mode: [`write_private`] and
//! [`private_file`] for the usual case, [`write_with_mode`],
//! [`file_with_mode`] and [`set_mode`] for a test that wants another mode
//! on purpose.

use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

/// Writes `contents` to `path` (replacing what was there, creating missing
/// parent directories) and leaves it with exactly `mode`, whatever the
/// umask or the mode of the file it replaced. A new file is created with
/// `mode` already, so it is never readable by others in between.
pub fn write_with_mode(path: &Path, contents: &(impl AsRef<[u8]> + ?Sized), mode: u32) {
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .unwrap_or_else(|e| panic!("create {}: {e}", parent.display()));
    }
    let mut f = OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(mode)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    f.write_all(contents.as_ref())
        .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    drop(f);
    set_mode(path, mode);
}

/// Writes `contents` to `path` with mode 0600 (see [`write_with_mode`]).
pub fn write_private(path: &Path, contents: &(impl AsRef<[u8]> + ?Sized)) {
    write_with_mode(path, contents, 0o600);
}

/// Writes `contents` to `dir/name` with mode 0600 (`name` may hold
/// directories, which are created); returns the path.
pub fn private_file(dir: &Path, name: &str, contents: &(impl AsRef<[u8]> + ?Sized)) -> PathBuf {
    file_with_mode(dir, name, contents, 0o600)
}

/// Writes `contents` to `dir/name` with exactly `mode` (see
/// [`write_with_mode`]); returns the path.
pub fn file_with_mode(
    dir: &Path,
    name: &str,
    contents: &(impl AsRef<[u8]> + ?Sized),
    mode: u32,
) -> PathBuf {
    let p = dir.join(name);
    write_with_mode(&p, contents, mode);
    p
}

/// Sets the mode of `path` (following a symlink, as chmod does).
pub fn set_mode(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {mode:o} {}: {e}", path.display()));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn mode(p: &Path) -> u32 {
        std::fs::metadata(p).unwrap().permissions().mode() & 0o7777
    }

    #[test]
    fn a_private_file_is_0600_new_or_replaced() {
        let d = tempfile::tempdir().unwrap();
        let p = private_file(d.path(), "a/b/token", "one");
        assert_eq!(p, d.path().join("a/b/token"));
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "one");
        assert_eq!(mode(&p), 0o600);
        assert!(std::fs::symlink_metadata(&p).unwrap().file_type().is_file());
        // A readable file replaced by a shorter text: 0600, no tail left.
        set_mode(&p, 0o644);
        write_private(&p, "2");
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "2");
        assert_eq!(mode(&p), 0o600);
    }

    #[test]
    fn another_mode_is_exact_despite_the_umask() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("x");
        write_with_mode(&p, b"bytes", 0o666);
        assert_eq!(mode(&p), 0o666);
        write_with_mode(&p, b"bytes", 0o700);
        assert_eq!(mode(&p), 0o700);
        let q = file_with_mode(d.path(), "y/z", "", 0o644);
        assert_eq!((q.clone(), mode(&q)), (d.path().join("y/z"), 0o644));
    }
}
