//! Vault handle parsing on arbitrary text: no panic, and what is accepted
//! is a list of plain path segments that cannot leave `/v1/` (no `.`,
//! `..`, `/`, `%`, `?`, `#`, `\` or control characters), with a positive
//! version.
#![no_main]

use backend_vault::handle::parse;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(h) = parse(text) else { return };
    assert!(!h.segments.is_empty());
    for s in &h.segments {
        assert!(!s.is_empty() && s != "." && s != "..", "{s:?}");
        assert!(!s.contains(['/', '%', '?', '#', '\\']), "{s:?}");
        assert!(!s.chars().any(char::is_control), "{s:?}");
    }
    assert!(h.version.is_none_or(|v| v > 0));
    let _ = h.location();
});
