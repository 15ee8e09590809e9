//! Document key extraction: any document, any key, no panic.
#![no_main]

use backend_core::key;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let (doc, k) = text.split_once('\u{1f}').unwrap_or((text, ""));
    let Ok(doc) = serde_json::from_str::<serde_json::Value>(doc) else { return };
    let (_, key_part) = key::split_key(k);
    let _ = key::extract(&doc, key_part.unwrap_or(k), "doc");
    let _ = key::sole_value(&doc, "doc");
});
