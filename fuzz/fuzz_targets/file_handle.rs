//! File handle parsing on arbitrary text: no panic; an accepted path is
//! relative, holds no NUL, and never climbs above the root by its `..`
//! components (symlinks are cap-std's to refuse, at open time).
#![no_main]

use backend_file::handle::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(t) = parse(text) else { return };
    assert!(!t.path.is_empty() && !t.path.starts_with('/'));
    assert!(!t.path.contains('\0'));
    let mut depth = 0i64;
    for c in t.path.split('/') {
        match c {
            "" | "." => {}
            ".." => depth -= 1,
            _ => depth += 1,
        }
        assert!(depth >= 0, "{text:?} climbs out");
    }
});
