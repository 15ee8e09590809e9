//! `secret-backend-check`'s integration tests, one test binary (issue 14:
//! one link of the dependency tree per crate instead of one per file). Each
//! module runs the real binary:
//!
//! - `agent_config`: `run --agent-config` against StackState- and
//!   Datadog-style agent trees made here: the agent's settings and
//!   environment overrides, the handles of its config and conf.d, the
//!   warnings (timeout, namespace scoping), and the flags that win over all
//!   of it.
//! - `aliases`: `scan` and `run` show which handles are aliases of the
//!   backend's config and what they stand for, never a value; the config
//!   comes from `--backend-config` or, for `run`, the backend's own
//!   `--config FILE`.
//! - `rights`: `rights` against files made here with exact modes and
//!   owners (as root, with `nobody` as the second owner).
//! - `run`: `run` against the project's dummy backend and against
//!   deliberately broken backends written as shell scripts: each failure
//!   mode named in the agent's words, the right handles failed, the exit
//!   code set.
//! - `scan`: `scan` over YAML files and directories made here: the agent's
//!   handle rule, locations, and which files the agent reads at all.
//! - `common`: what they share: the binary under test, the project's dummy
//!   backend, and small files with exact modes in a temp dir.

// Helpers outside #[test] functions (and the shared setup in `common`)
// fail loudly too.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod agent_config;
mod aliases;
mod common;
mod rights;
mod run;
mod scan;
