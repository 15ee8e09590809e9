//! AWS handle parsing on arbitrary text: no panic; an accepted handle
//! names a non-empty secret id or parameter name without control
//! characters, and its location (used in messages) is bounded.
#![no_main]

use backend_aws::handle::{Target, parse};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(h) = parse(text) else { return };
    let name = match &h.target {
        Target::Secret { id, .. } => id,
        Target::Parameter(name) => name,
    };
    assert!(!name.is_empty());
    assert!(!name.chars().any(char::is_control));
    assert!(h.target.location().len() <= text.len() + 8);
});
