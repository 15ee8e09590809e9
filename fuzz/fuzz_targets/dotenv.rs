//! The .env reader of the file store: no panic on any text, and a text it
//! recognises as .env parses to an object of strings.
#![no_main]

use backend_file::dotenv;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let _ = dotenv::looks_like(text);
    if let Ok(value) = dotenv::parse(text) {
        let map = value.as_object().expect("a .env document is an object");
        assert!(map.values().all(serde_json::Value::is_string), "{text:?}");
    }
});
