//! The aws backend's integration tests, one test binary (issue 14: one link
//! of the dependency tree per crate instead of one per file). They run the
//! real `secret-backend-aws` against a real moto server (`MOTO_SERVER`),
//! with fault proxies and small listeners where moto cannot misbehave:
//!
//! - `aliases`: names Vector can write standing for `;key`, JSON Pointer
//!   and `ssm:` handles, one request per secret however many aliases name
//!   it (counted by a recording proxy in front of moto), and targets
//!   refused when the config is loaded.
//! - `config_errors`: no config error quotes a value, whatever its YAML
//!   type, and an alias bomb as the config is refused before it is
//!   expanded.
//! - `fault_matrix`: the fault matrix of issue 7: every fault AWS or the
//!   network between can show, one test each, with the same checks every
//!   time (the agent's deadline met, every handle answered, exit 0, no
//!   value or credential outside stdout's values).
//! - `faults`: faults a real server cannot produce: an endpoint that
//!   refuses, one that hangs, no credentials at all, a metadata service
//!   that hangs, proxies.
//! - `hostile`: the hostile run of issue 13, AWS side: error bodies, URL
//!   userinfo, special files and held credentials never get out, and
//!   nothing makes the binary wait.
//! - `moto`: end to end against moto: names, ARNs, keys, pointers and
//!   versions, batches and their fallback, SSM parameters, STS assume-role,
//!   ARNs of another region.
//! - `review`: the hostile review of the own credential chain: a profile
//!   or a role named and not there ends the chain, as with the SDK, never
//!   going on to another identity.
//! - `tls`: the TLS stack: the system's CA store is read only when a
//!   request needs TLS, and then it is what the server's certificate is
//!   checked against.
//! - `common`: seeding moto with the SDK, and running the binary against
//!   it.
//!
//! Not here: `tests/conformance.rs`, the core's conformance kit run
//! in-process against an `AwsProvider`, stays a test binary of its own: it
//! sets the process's environment (`std::env::set_var`: the static test
//! credentials, `HOME`) before anything else runs, which no other test may
//! share a process with. It uses `common` (this directory's `common.rs`)
//! through a `#[path]` attribute.

mod aliases;
mod common;
mod config_errors;
mod fault_matrix;
mod faults;
mod hostile;
mod moto;
mod review;
mod tls;
