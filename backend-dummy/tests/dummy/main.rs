//! The dummy backend's integration tests, one test binary (issue 14: one
//! link of the dependency tree per crate instead of one per file). Each
//! module drives the real `secret-backend-dummy` binary:
//!
//! - `aliases`: aliases through the dummy binary, and the dummy's config
//!   reader held to what a YAML parser reads from the same text.
//! - `deadline`: the core's promises whatever the caller or the host does:
//!   an answer (or one clear line) before the deadline, however stdin
//!   behaves or the store blocks; no file an operator names is waited on or
//!   followed through a link; a reply never grows past the output cap. The
//!   dummy is the smallest provider, so what fails here fails in the core.
//! - `hostile`: hostile and malformed input, as a table of payloads with
//!   the outcome each must have (no panic, no signal, one reply object or
//!   nothing, one stderr line when refused), plus process hygiene: a closed
//!   stdout and SIGTERM.
//! - `protocol`: the protocol end to end: payloads as the agents write
//!   them, odd handles, limits, malformed input, exit codes and the CLI.
//!
//! proptest keeps the seeds of past failures of a module `m` of this binary
//! in `tests/proptest-regressions/m.txt`: its file persistence finds this
//! `main.rs` as the target's root and looks in `proptest-regressions/` next
//! to the target's directory (`aliases`' seeds are there).

mod aliases;
mod deadline;
mod hostile;
mod protocol;
