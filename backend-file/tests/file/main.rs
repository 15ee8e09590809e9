//! The file backend's integration tests, one test binary (issue 14: one
//! link of the dependency tree per crate instead of one per file):
//!
//! - `aliases`: aliases through `secret-backend-file`: names Vector can
//!   write standing for handles with `;key` and JSON Pointers, in both
//!   modes; targets checked when the config is loaded.
//! - `file`: `secret-backend-file` end to end: the real binary, run as the
//!   agent runs it, over real files in temporary directories.
//! - `hostile_files`: files planted by someone hostile, through the real
//!   binary: an alias bomb in a YAML secret or document, FIFOs and devices
//!   where a secret, the document or the config should be, a `;key`
//!   carrying a newline into the logs. Each ends quickly with a per-handle
//!   error (or exit 2 for the config), never a hang or a gigabyte of memory.
//! - `hostile_handles`: hostile keys for document mode, as a table, run
//!   through the binary at trace level with a log file: no value of the
//!   document other than the one asked for, and no value at all outside
//!   stdout's values, may show anywhere.
//! - `properties`: properties of the pure parts, over arbitrary input: the
//!   handle grammar, `.env` parsing, document parsing and bounded reads
//!   never panic, and what they accept or refuse follows their rules; the
//!   YAML reader gives the values serde-saphyr (the core's parser) gives.

mod aliases;
mod file;
mod hostile_files;
mod hostile_handles;
mod properties;
