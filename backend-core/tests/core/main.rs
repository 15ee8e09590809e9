//! The core's integration tests, one test binary (issue 14: one link of
//! the dependency tree per crate instead of one per file):
//!
//! - `aliases`: alias names against Vector's own rule: every name
//!   `check_name` accepts can be written as `SECRET[<backend>.<name>]` in a
//!   Vector config and is read back whole, and every name Vector cannot
//!   read back is refused.
//! - `properties`: properties of the wire, checked on generated inputs:
//!   requests round-trip whatever the handles hold, no input makes parsing
//!   panic, replies are the JSON they claim to be, and the output cap keeps
//!   every value it does not drop.
//!
//! proptest keeps the seeds of past failures of a module `m` of this binary
//! in `tests/proptest-regressions/m.txt`: its file persistence finds this
//! `main.rs` as the target's root and looks in `proptest-regressions/` next
//! to the target's directory. `properties` turns that persistence off
//! (`failure_persistence: None`), so its `properties.txt` there is not read
//! today.

mod aliases;
mod properties;
