//! Request parsing and reply serialization on arbitrary bytes: no panic,
//! and whatever parses answers every distinct handle in a JSON object.
#![no_main]

use backend_core::protocol::{Entry, Reply, Request};
use backend_core::Secret;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(request) = Request::parse(data) else { return };
    let handles = request.distinct_secrets();
    let entries = handles
        .iter()
        .map(|h| Entry { handle: h.clone(), outcome: Ok(Secret::new(h.clone())) })
        .collect();
    let (bytes, _) = Reply::new(entries).to_json(data.len() / 2 + 16);
    let parsed: serde_json::Map<String, serde_json::Value> =
        serde_json::from_slice(&bytes).expect("a reply is a JSON object");
    assert_eq!(parsed.len(), handles.len());
});
