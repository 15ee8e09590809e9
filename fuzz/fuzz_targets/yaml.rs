//! The event-based YAML reader (`backend_core::yaml`) against serde-saphyr:
//! no panic on any text, the budget check agrees with the reader (a text
//! the reader builds is never over the budget), and on documents both
//! accept, both give the same value. (Both refuse in places the other
//! accepts: duplicate keys, which serde-saphyr lets the last win; those are
//! not compared.)
#![no_main]

use backend_core::yaml;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    let ours = yaml::parse(text);
    let budget = yaml::check_budget(text);
    if ours.is_ok() {
        assert!(budget.is_ok(), "parsed, yet over the budget: {text:?}");
    }
    if budget.is_err() {
        // Over the budget: serde-saphyr would expand it; do not ask.
        return;
    }
    let theirs = serde_saphyr::from_str::<serde_json::Value>(text);
    if let (Ok(ours), Ok(theirs)) = (ours, theirs) {
        assert_eq!(ours.value, theirs, "{text:?}");
    }
});
