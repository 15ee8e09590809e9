//! The end-to-end tests of `secret-backend`, one test binary (issue 14:
//! one link of the dependency tree instead of one per file), a module per
//! subject:
//!
//! aliases, the cloud stores (gcp, azure), config errors, the examples,
//! the fault matrix, hostile files and handles, process hygiene, the k8s
//! store, leaks through `Debug`, the registry against every listing of
//! the stores, routing, real stores in one call, and the
//! connector's Vault configs. Each module's own docs say what it covers.

mod aliases;
mod clouds;
mod config_errors;
mod examples;
mod faults;
mod hostile_files;
mod hostile_handles;
mod hygiene;
mod k8s;
mod leaks;
mod registry;
mod routing;
mod stores;
mod vault_aws;
