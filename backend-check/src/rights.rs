//! The agent's checks of the executable's rights, both generations of them.
//!
//! Before it runs `secret_backend_command`, the agent stats the file and
//! refuses it unless its mode and owner pass one of two rule sets:
//!
//! - **legacy** (StackState Agent V2, Datadog Agent before 7.55): the file
//!   is owned by the agent's user, the owner may execute it, and group and
//!   others have no bit at all. With `allow_group_exec`: others have nothing,
//!   group may not write, and the user may execute it as owner or through
//!   one of its groups.
//! - **modern** (Datadog Agent 7.55 and later): the same mode masks, then
//!   `access(X_OK)`; there is no owner check at all.
//!
//! The messages are the agent's own, so an operator can match them against
//! the agent's log. Which user the agent runs as is an input: the tool may
//! run as root on behalf of `dd-agent`. For the user the tool runs as, the
//! modern rule calls the real `access(2)`; for another user it reasons as the
//! kernel does (search permission on every directory, then the execute bit
//! of the owner, group or other class; root needs any execute bit). POSIX
//! ACLs and `noexec` mounts are invisible to that reasoning, and the report
//! says which way was taken.

use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};

const S_IXUSR: u32 = 0o100;
const S_IXGRP: u32 = 0o010;
const S_IWGRP: u32 = 0o020;
const S_IRWXG: u32 = 0o070;
const S_IRWXO: u32 = 0o007;

/// The user the agent runs as, as the agent's `os/user` sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentUser {
    /// Login name.
    pub name: String,
    /// User id.
    pub uid: u32,
    /// Primary group id.
    pub gid: u32,
    /// Every group id of the user (primary and supplementary), from the
    /// group database, as Go's `User.GroupIds` returns them.
    pub groups: Vec<u32>,
}

/// Why a user cannot be looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserError(String);

impl fmt::Display for UserError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

impl AgentUser {
    /// Looks a user up by name, or by number when `name` is all digits.
    pub fn lookup(name: &str) -> Result<Self, UserError> {
        let user = match name.parse::<u32>() {
            Ok(uid) => uzers::get_user_by_uid(uid),
            Err(_) => uzers::get_user_by_name(name),
        };
        let user = user.ok_or_else(|| UserError(format!("no user named '{name}'")))?;
        Ok(Self::from_user(&user))
    }

    /// The user this process runs as (its real uid, as Go's `user.Current`).
    pub fn current() -> Result<Self, UserError> {
        let uid = rustix::process::getuid().as_raw();
        uzers::get_user_by_uid(uid)
            .map(|u| Self::from_user(&u))
            .ok_or_else(|| UserError(format!("the current uid {uid} has no user entry")))
    }

    fn from_user(user: &uzers::User) -> Self {
        let name = user.name().to_string_lossy().into_owned();
        let gid = user.primary_group_id();
        let mut groups: Vec<u32> = uzers::get_user_groups(user.name(), gid)
            .unwrap_or_default()
            .iter()
            .map(uzers::Group::gid)
            .collect();
        if !groups.contains(&gid) {
            groups.push(gid);
        }
        groups.sort_unstable();
        Self {
            name,
            uid: user.uid(),
            gid,
            groups,
        }
    }
}

/// What the agent's `stat` sees of the executable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileStat {
    /// Full `st_mode`, type bits included.
    pub mode: u32,
    /// Owner uid.
    pub uid: u32,
    /// Group gid.
    pub gid: u32,
    /// A regular file (after following symlinks).
    pub regular: bool,
}

impl FileStat {
    /// Stats `path`, following symlinks as `syscall.Stat` does.
    pub fn of(path: &Path) -> std::io::Result<Self> {
        let meta = std::fs::metadata(path)?;
        Ok(Self {
            mode: meta.mode(),
            uid: meta.uid(),
            gid: meta.gid(),
            regular: meta.is_file(),
        })
    }

    /// The permission bits as `ls -l` shows them, e.g. `-rwx------`.
    pub fn symbolic(&self) -> String {
        let kind = if self.regular { '-' } else { '?' };
        let mut s = String::with_capacity(10);
        s.push(kind);
        for (shift, special, lower, upper) in [(6, 0o4000, 's', 'S'), (3, 0o2000, 's', 'S')] {
            push_class(
                &mut s,
                self.mode >> shift,
                self.mode & special != 0,
                lower,
                upper,
            );
        }
        push_class(&mut s, self.mode, self.mode & 0o1000 != 0, 't', 'T');
        s
    }
}

fn push_class(s: &mut String, bits: u32, special: bool, lower: char, upper: char) {
    s.push(if bits & 4 != 0 { 'r' } else { '-' });
    s.push(if bits & 2 != 0 { 'w' } else { '-' });
    s.push(match (bits & 1 != 0, special) {
        (true, true) => lower,
        (false, true) => upper,
        (true, false) => 'x',
        (false, false) => '-',
    });
}

/// One generation of the agent's rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RuleSet {
    /// StackState Agent V2 and Datadog Agent before 7.55.
    Legacy,
    /// Datadog Agent 7.55 and later.
    Modern,
}

impl RuleSet {
    /// Both, in the order they are reported.
    pub const ALL: [RuleSet; 2] = [RuleSet::Legacy, RuleSet::Modern];

    /// Which agents apply it.
    pub fn agents(self) -> &'static str {
        match self {
            Self::Legacy => "StackState Agent V2, Datadog Agent < 7.55",
            Self::Modern => "Datadog Agent >= 7.55",
        }
    }
}

/// How the modern rule's `access(X_OK)` was answered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AccessMethod {
    /// The real `access(2)`, since the tool runs as the agent's user.
    Syscall,
    /// Reasoned from the modes of the file and its directories.
    Reasoned,
}

/// One rule set's verdict.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The rule set.
    pub rules: RuleSet,
    /// `None` when the agent runs the file, else the agent's message.
    pub refusal: Option<String>,
    /// A note that is not the agent's (how access was decided, why).
    pub note: Option<String>,
}

/// The full rights report for one executable and one user.
#[derive(Debug, Clone)]
pub struct Rights {
    /// The path as the agent would use it (after a `PATH` search).
    pub path: PathBuf,
    /// The stat result, or the stat error.
    pub stat: Result<FileStat, String>,
    /// The agent's user.
    pub user: AgentUser,
    /// `secret_backend_command_allow_group_exec_perm`.
    pub allow_group_exec: bool,
    /// One verdict per rule set.
    pub verdicts: Vec<Verdict>,
}

impl Rights {
    /// Whether any rule set refuses the file.
    pub fn refused(&self) -> bool {
        self.verdicts.iter().any(|v| v.refusal.is_some())
    }
}

/// Checks `command` for `user` under both rule sets.
pub fn check(command: &str, user: AgentUser, allow_group_exec: bool) -> Rights {
    let path = look_path(command);
    let shown = path.display().to_string();
    let stat = FileStat::of(&path).map_err(|e| errno_text(&e));
    let verdicts = match &stat {
        Err(e) => RuleSet::ALL
            .iter()
            .map(|&rules| Verdict {
                rules,
                refusal: Some(format!("invalid executable '{shown}': can't stat it: {e}")),
                note: None,
            })
            .collect(),
        Ok(st) => vec![
            Verdict {
                rules: RuleSet::Legacy,
                refusal: legacy(&shown, st, &user, allow_group_exec).err(),
                note: None,
            },
            modern(&path, &shown, st, &user, allow_group_exec),
        ],
    };
    Rights {
        path,
        stat,
        user,
        allow_group_exec,
        verdicts,
    }
}

/// Resolves a command without a slash through `PATH`, as Go's
/// `exec.LookPath` does; a command with a slash is used as given.
pub fn look_path(command: &str) -> PathBuf {
    if command.contains('/') {
        return PathBuf::from(command);
    }
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .filter(|dir| !dir.as_os_str().is_empty())
        .map(|dir| dir.join(command))
        .find(|candidate| {
            std::fs::metadata(candidate).is_ok_and(|m| m.is_file() && m.mode() & 0o111 != 0)
        })
        .unwrap_or_else(|| PathBuf::from(command))
}

/// The legacy rules, with the agent's messages (Datadog `pkg/secrets`
/// `check_rights_nix.go` before 7.55, which StackState Agent V2 carries).
pub fn legacy(
    path: &str,
    st: &FileStat,
    user: &AgentUser,
    allow_group_exec: bool,
) -> Result<(), String> {
    if !allow_group_exec {
        if st.uid != user.uid {
            return Err(format!(
                "invalid executable: '{path}' isn't owned by this user: username '{}', UID {}. We can't execute it",
                user.name, user.uid
            ));
        }
        if st.mode & S_IXUSR == 0 {
            return Err(format!("invalid executable: '{path}' is not executable"));
        }
        if st.mode & (S_IRWXG | S_IRWXO) != 0 {
            return Err(format!(
                "invalid executable '{path}', 'group' or 'others' have rights on it"
            ));
        }
        return Ok(());
    }
    let owner_can = st.uid == user.uid && st.mode & S_IXUSR != 0;
    if st.mode & (S_IRWXO | S_IWGRP) != 0 {
        return Err(format!(
            "invalid executable '{path}', 'others' have rights on it or 'group' has write permissions on it"
        ));
    }
    if !owner_can {
        if !user.groups.contains(&st.gid) {
            // "GUI" is the agent's own typo, kept so the message matches its log.
            return Err(format!(
                "invalid executable: '{path}' isn't owned by this user or one of his group: username '{}', UID {} GUI {}. We can't execute it",
                user.name, user.uid, user.gid
            ));
        }
        if st.mode & S_IXGRP == 0 {
            return Err(format!(
                "invalid executable: '{path}' is not executable by group"
            ));
        }
    }
    Ok(())
}

/// The modern mode masks (Datadog `CheckRights`, 7.55+), before `access`.
pub fn modern_masks(path: &str, st: &FileStat, allow_group_exec: bool) -> Result<(), String> {
    if allow_group_exec {
        if st.mode & (S_IWGRP | S_IRWXO) != 0 {
            return Err(format!(
                "invalid executable '{path}', 'others' have rights on it or 'group' has write permissions on it"
            ));
        }
    } else if st.mode & (S_IRWXG | S_IRWXO) != 0 {
        return Err(format!(
            "invalid executable '{path}', 'group' or 'others' have rights on it"
        ));
    }
    Ok(())
}

fn modern(
    path: &Path,
    shown: &str,
    st: &FileStat,
    user: &AgentUser,
    allow_group_exec: bool,
) -> Verdict {
    let rules = RuleSet::Modern;
    if let Err(refusal) = modern_masks(shown, st, allow_group_exec) {
        return Verdict {
            rules,
            refusal: Some(refusal),
            note: None,
        };
    }
    let (result, method) = if rustix::process::getuid().as_raw() == user.uid {
        let r = rustix::fs::access(path, rustix::fs::Access::EXEC_OK)
            .map_err(|e| (errno_text(&std::io::Error::from(e)), None));
        (r, AccessMethod::Syscall)
    } else {
        (reasoned_access(path, st, user), AccessMethod::Reasoned)
    };
    let (refusal, why) = match result {
        Ok(()) => (None, None),
        Err((errno, why)) => (
            Some(format!(
                "invalid executable '{shown}': can't access it: {errno}"
            )),
            why,
        ),
    };
    let how = match method {
        AccessMethod::Syscall => format!("access(X_OK) called as {}", user.name),
        AccessMethod::Reasoned => format!(
            "access(X_OK) for {} reasoned from the modes of the file and its directories (ACLs and noexec mounts not seen); run this tool as {} for the real call",
            user.name, user.name
        ),
    };
    let note = match why {
        Some(why) => format!("{how}: {why}"),
        None => how,
    };
    Verdict {
        rules,
        refusal,
        note: Some(note),
    }
}

/// `access(X_OK)` as the kernel answers it for `user`, from modes alone.
/// The error is the errno text and a reason.
fn reasoned_access(
    path: &Path,
    st: &FileStat,
    user: &AgentUser,
) -> Result<(), (String, Option<String>)> {
    let denied = |why: String| Err(("permission denied".to_owned(), Some(why)));
    let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
    if user.uid != 0 {
        for dir in real.ancestors().skip(1) {
            let Ok(meta) = std::fs::metadata(dir) else {
                continue;
            };
            let d = FileStat {
                mode: meta.mode(),
                uid: meta.uid(),
                gid: meta.gid(),
                regular: false,
            };
            if class_bits(&d, user) & 1 == 0 {
                return denied(format!(
                    "no search (x) permission on directory {} ({:04o}, owner {}, group {})",
                    dir.display(),
                    d.mode & 0o7777,
                    d.uid,
                    d.gid
                ));
            }
        }
    }
    let may_exec = if user.uid == 0 {
        st.mode & 0o111 != 0
    } else {
        class_bits(st, user) & 1 != 0
    };
    if may_exec {
        Ok(())
    } else if user.uid == 0 {
        denied("no execute bit is set for anyone, so not even root may execute it".into())
    } else {
        denied(format!(
            "the {} class has no execute bit",
            class_name(st, user)
        ))
    }
}

/// The rwx bits of the class (owner, group, other) `user` falls into.
fn class_bits(st: &FileStat, user: &AgentUser) -> u32 {
    if st.uid == user.uid {
        (st.mode >> 6) & 7
    } else if user.groups.contains(&st.gid) {
        (st.mode >> 3) & 7
    } else {
        st.mode & 7
    }
}

fn class_name(st: &FileStat, user: &AgentUser) -> &'static str {
    if st.uid == user.uid {
        "owner"
    } else if user.groups.contains(&st.gid) {
        "group"
    } else {
        "other"
    }
}

/// Go's text of an errno (`no such file or directory`), which is the OS
/// text in lower case without Rust's ` (os error N)` suffix.
pub fn errno_text(e: &std::io::Error) -> String {
    let text = e.to_string();
    let text = match text.find(" (os error") {
        Some(i) => &text[..i],
        None => &text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A user or group id with its name, when it has one.
pub fn user_name(uid: u32) -> String {
    match uzers::get_user_by_uid(uid) {
        Some(u) => format!("{} ({uid})", u.name().to_string_lossy()),
        None => format!("{uid} (no user entry)"),
    }
}

/// A group id with its name, when it has one.
pub fn group_name(gid: u32) -> String {
    match uzers::get_group_by_gid(gid) {
        Some(g) => format!("{} ({gid})", g.name().to_string_lossy()),
        None => format!("{gid} (no group entry)"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(uid: u32, groups: &[u32]) -> AgentUser {
        AgentUser {
            name: "dd-agent".into(),
            uid,
            gid: groups.first().copied().unwrap_or(uid),
            groups: groups.to_vec(),
        }
    }

    fn st(mode: u32, uid: u32, gid: u32) -> FileStat {
        FileStat {
            mode: 0o100000 | mode,
            uid,
            gid,
            regular: true,
        }
    }

    #[test]
    fn legacy_rules_follow_the_agent() {
        let u = user(1000, &[1000, 50]);
        assert!(legacy("/b", &st(0o700, 1000, 1000), &u, false).is_ok());
        assert!(legacy("/b", &st(0o500, 1000, 1000), &u, false).is_ok());
        let e = legacy("/b", &st(0o700, 0, 0), &u, false).unwrap_err();
        assert_eq!(
            e,
            "invalid executable: '/b' isn't owned by this user: username 'dd-agent', UID 1000. We can't execute it"
        );
        let e = legacy("/b", &st(0o600, 1000, 0), &u, false).unwrap_err();
        assert_eq!(e, "invalid executable: '/b' is not executable");
        let e = legacy("/b", &st(0o750, 1000, 0), &u, false).unwrap_err();
        assert_eq!(
            e,
            "invalid executable '/b', 'group' or 'others' have rights on it"
        );
        // Group exec: others nothing, group no write, exec via owner or group.
        assert!(legacy("/b", &st(0o750, 1000, 7), &u, true).is_ok());
        assert!(legacy("/b", &st(0o750, 0, 50), &u, true).is_ok());
        assert!(
            legacy("/b", &st(0o740, 0, 50), &u, true)
                .unwrap_err()
                .contains("is not executable by group")
        );
        assert!(
            legacy("/b", &st(0o750, 0, 7), &u, true)
                .unwrap_err()
                .contains("isn't owned by this user or one of his group")
        );
        assert!(
            legacy("/b", &st(0o770, 1000, 50), &u, true)
                .unwrap_err()
                .contains("'group' has write permissions")
        );
        assert!(legacy("/b", &st(0o751, 1000, 50), &u, true).is_err());
    }

    #[test]
    fn modern_masks_ignore_the_owner() {
        assert!(modern_masks("/b", &st(0o700, 0, 0), false).is_ok());
        assert!(modern_masks("/b", &st(0o710, 0, 0), false).is_err());
        assert!(modern_masks("/b", &st(0o750, 0, 0), true).is_ok());
        assert!(modern_masks("/b", &st(0o770, 0, 0), true).is_err());
        assert!(modern_masks("/b", &st(0o701, 0, 0), true).is_err());
    }

    #[test]
    fn symbolic_modes() {
        assert_eq!(st(0o700, 0, 0).symbolic(), "-rwx------");
        assert_eq!(st(0o4755, 0, 0).symbolic(), "-rwsr-xr-x");
        assert_eq!(st(0o1644, 0, 0).symbolic(), "-rw-r--r-T");
    }

    #[test]
    fn errno_text_is_gos() {
        let e = std::io::Error::from_raw_os_error(2);
        assert_eq!(errno_text(&e), "no such file or directory");
    }
}
