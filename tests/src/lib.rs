//! Test support for the backends' end-to-end tests.
//!
//! End-to-end tests live in the crate that owns each binary (cargo tells
//! that crate where its binary is, through `CARGO_BIN_EXE_<name>`); what they
//! share lives here: running a binary the way the agent does ([`run`]),
//! payloads as Go writes them ([`payload`]), private files ([`files`]), free
//! ports, leak scans, and the real test servers ([`openbao`], [`moto`]).

// Test support fails the test that uses it by panicking, as tests do.
#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

pub mod azure;
pub mod drongo;
pub mod fault;
pub mod files;
pub mod gcp_auth;
pub mod k8s;
pub mod ldap;
pub mod moto;
pub mod multi;
pub mod openbao;
pub mod run;
pub mod vault_aws;

pub use run::{Cmd, Done, go_payload, payload};

use std::sync::{Arc, Mutex, Weak};

/// A YAML alias bomb built from one long string: `top` holds 10 aliases of
/// 10 aliases of 10 aliases of a 30 KB string (a 32 KB document expanding
/// to 30 MB; with `levels` = 4, 300 MB). Every node and alias count stays
/// small; only the expanded size gives it away. `first` is put in front as
/// the document's first line(s).
pub fn yaml_bomb(first: &str, levels: usize) -> String {
    let mut text = format!("{first}a0: &a0 \"{}\"\n", "x".repeat(30_000));
    for level in 1..=levels {
        let prev = format!("*a{}", level - 1);
        let list = [prev.as_str(); 10].join(", ");
        text.push_str(&format!("a{level}: &a{level} [{list}]\n"));
    }
    text.push_str(&format!("top: *a{levels}\n"));
    text
}

/// Values of every YAML type for [`config_quotes_no_value`], each with the
/// marker that must not be shown (booleans are checked apart: see there).
pub const YAML_VALUES: &[(&str, &str)] = &[
    ("987654321", "987654321"),
    ("98765.4321", "98765.4321"),
    ("-98765", "98765"),
    ("0x98765", "98765"),
    ("[98765, x]", "98765"),
    ("{k: 98765}", "98765"),
    ("hunter98765", "hunter98765"),
];

/// Runs `bin --config FILE` for every config of `places` (YAML with `{v}`
/// where a credential goes) with every value of [`YAML_VALUES`], and checks
/// that no marker reaches stdout, stderr or the trace-level log file: a
/// config error quotes no value, whatever its YAML type.
pub fn config_quotes_no_value(bin: &str, places: &[&str], handle: &str) {
    let d = tempfile::tempdir().unwrap();
    let log = d.path().join("log");
    let conf = d.path().join("config.yaml");
    for place in places {
        for (yaml, marker) in YAML_VALUES {
            let text = place.replace("{v}", yaml);
            files::write_private(&conf, &text);
            let _ = std::fs::remove_file(&log);
            let done = Cmd::new(bin)
                .args(["--config", conf.to_str().unwrap()])
                .args(["--log-file", log.to_str().unwrap(), "--log-level", "trace"])
                .args(["--timeout", "5"])
                .stdin(payload(&[handle]))
                .run();
            let shown = format!(
                "{}{}{}",
                done.stderr,
                done.stdout_str(),
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            assert_no_leak(&format!("{text}\n{done}"), &shown, &[marker]);
        }
        // A boolean cannot be a marker (`true` is in many messages), but
        // serde's way of quoting one is known.
        for yaml in ["true", "false"] {
            let text = place.replace("{v}", yaml);
            files::write_private(&conf, &text);
            let done = Cmd::new(bin)
                .args(["--config", conf.to_str().unwrap()])
                .args(["--timeout", "5"])
                .stdin(payload(&[handle]))
                .run();
            assert!(
                !done.stderr.contains(&format!("boolean `{yaml}`")),
                "a boolean quoted:\n{text}\n{done}"
            );
        }
    }
}

/// Scalars of every YAML type a credential may be written as.
pub const CREDENTIAL_SCALARS: &[&str] = &["987654321", "true", "-12.5", "0x1F", "'quoted'"];

/// Runs `bin --config FILE` for the config `place` (YAML with `{v}` where
/// a credential goes) with every scalar of [`CREDENTIAL_SCALARS`]: each is
/// read as the credential's text (one YAML dialect in every binary: the
/// config is accepted, exit 0, and `handle` gets a per-handle answer), and
/// the config file, readable by others, is warned about (it holds a
/// credential inline).
pub fn credential_scalars_are_text(bin: &str, place: &str, handle: &str) {
    use std::os::unix::fs::PermissionsExt;
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("config.yaml");
    for scalar in CREDENTIAL_SCALARS {
        let text = place.replace("{v}", scalar);
        std::fs::write(&conf, &text).unwrap();
        std::fs::set_permissions(&conf, std::fs::Permissions::from_mode(0o644)).unwrap();
        let done = Cmd::new(bin)
            .args(["--config", conf.to_str().unwrap(), "--timeout", "3"])
            .stdin(payload(&[handle]))
            .run();
        done.expect_code(0);
        assert!(!done.error(handle).is_empty(), "{text}\n{done}");
        assert!(
            done.stderr.contains("is readable by every user"),
            "no warning for a readable config holding a credential:\n{text}\n{done}"
        );
    }
}

/// Runs `bin --config FILE` with an alias bomb as the config
/// ([`yaml_bomb`], 300 MB expanded): a config error naming the parser's
/// limits, at once (a minute would mean it was being expanded).
pub fn config_bomb_is_refused(bin: &str) {
    let d = tempfile::tempdir().unwrap();
    let conf = d.path().join("config.yaml");
    files::write_private(&conf, &yaml_bomb("", 4));
    let done = Cmd::new(bin)
        .args(["--config", conf.to_str().unwrap()])
        .stdin(payload(&["x"]))
        .kill_after(std::time::Duration::from_secs(60))
        .run();
    done.expect_code(2);
    assert!(done.stderr.contains("over the parser's limits"), "{done}");
}

/// A test server shared by the tests of one test binary: started (and
/// seeded) by the first test that asks while none holds it, stopped when
/// the last test holding it ends. Use it as a `static`.
#[derive(Debug)]
pub struct Shared<T>(Mutex<Weak<T>>);

impl<T> Shared<T> {
    /// No server yet.
    pub const fn new() -> Self {
        Self(Mutex::new(Weak::new()))
    }

    /// The running server, or a new one from `start`.
    pub fn get(&self, start: impl FnOnce() -> T) -> Arc<T> {
        // A test that panicked holding the lock left nothing half-done.
        let mut slot = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(s) = slot.upgrade() {
            return s;
        }
        let s = Arc::new(start());
        *slot = Arc::downgrade(&s);
        s
    }
}

impl<T> Default for Shared<T> {
    fn default() -> Self {
        Self::new()
    }
}

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
