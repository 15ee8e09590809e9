//! The core of every secret backend executable.
//!
//! A monitoring agent (StackState Agent V2, Datadog Agent, Vector) runs a
//! `secret_backend_command`, writes `{"version":"1.0","secrets":[...]}` to its
//! stdin and reads `{"<handle>":{"value":...,"error":...}}` from its stdout.
//! This crate owns that wire ([`protocol`]), the run of one call ([`runner`]:
//! limits, one deadline, write once, exit codes), the [`Provider`] contract a
//! secret store implements, the [`Secret`] type, per-handle errors, document
//! keys ([`key`]), config files ([`config`]) and logging ([`logging`]).
//!
//! A provider crate implements one trait, [`Provider`] (see its module for
//! a complete example), and its `main` is one line:
//!
//! ```ignore
//! fn main() -> std::process::ExitCode { backend_core::main::<backend_dummy::Dummy>() }
//! ```

pub mod alias;
pub mod config;
pub mod error;
pub mod fs;
pub mod key;
pub mod lenient;
pub mod logging;
pub mod protocol;
pub mod provider;
pub mod redact;
pub mod runner;
pub mod secret;
#[cfg(feature = "testkit")]
pub mod testkit;
pub mod watchdog;
pub mod yaml;

pub use alias::Aliases;
pub use error::{ConfigError, ErrorKind, HandleError};
pub use provider::{
    About, BoxFuture, Context, Fetched, NoArgs, NoConfig, Outcome, Provider, Resolver, bounded,
    fan_out, group, none_parsed,
};
pub use runner::main;
pub use secret::{Credential, Secret};
