//! Test support for the backends' end-to-end tests.
//!
//! End-to-end tests live in the crate that owns each binary (cargo tells
//! that crate where its binary is, through `CARGO_BIN_EXE_<name>`); what they
//! share lives here: running a binary the way the agent does ([`run`]),
//! payloads as Go writes them ([`payload`]), free ports, leak scans, and the
//! real test servers ([`openbao`], [`moto`]).

// Test support fails the test that uses it by panicking, as tests do.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod fault;
pub mod moto;
pub mod openbao;
pub mod run;

pub use run::{Cmd, Done, go_payload, payload};

/// A port on 127.0.0.1 that was free a moment ago.
pub fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local addr").port()
}

/// Fails the test when any of `secrets` occurs in `haystack` (stderr, a log
/// file, stdout outside the values). `what` names the haystack.
pub fn assert_no_leak(what: &str, haystack: &str, secrets: &[&str]) {
    for s in secrets {
        assert!(
            !s.is_empty(),
            "an empty planted secret would match everything"
        );
        assert!(
            !haystack.contains(s),
            "secret {s:?} leaked into {what}:\n{haystack}"
        );
    }
}
