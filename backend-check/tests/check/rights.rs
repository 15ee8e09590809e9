//! `rights` against files made here with exact modes and owners. The tests
//! run as root (as on the project's machines), so a second owner is
//! `nobody` (uid 65534) with group `nogroup` (gid 65534).

use std::os::unix::fs::chown;

use backend_tests::files::{file_with_mode, set_mode};

use crate::common::{self, check, has_line, out};

const NOBODY: u32 = 65534;

const LEGACY: &str = "StackState Agent V2, Datadog Agent < 7.55";
const MODERN: &str = "Datadog Agent >= 7.55";

fn require_root() {
    assert_eq!(
        euid(),
        0,
        "these tests chown files and must run as root (as the project's machines do)"
    );
}

fn euid() -> u32 {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m))
        .unwrap()
}

/// A tempdir that `nobody` may search, holding one backend file.
fn backend(mode: u32, owner: u32, group: u32) -> (tempfile::TempDir, String) {
    let d = tempfile::tempdir().unwrap();
    set_mode(d.path(), 0o711);
    let p = file_with_mode(d.path(), "backend", "#!/bin/sh\n", mode);
    chown(&p, Some(owner), Some(group)).unwrap();
    (d, p.display().to_string())
}

fn rights(path: &str, extra: &[&str]) -> (i32, String) {
    let mut args = vec!["rights", path];
    args.extend_from_slice(extra);
    let done = check(&args);
    (done.code(), done.stdout_str().to_owned())
}

#[test]
fn owner_only_0700_passes_both_rule_sets() {
    require_root();
    let (_d, p) = backend(0o700, 0, 0);
    let (code, o) = rights(&p, &[]);
    assert_eq!(code, 0, "{o}");
    has_line(&o, "mode:  0700 (-rwx------)");
    has_line(&o, "owner: root (0)");
    has_line(&o, "group: root (0)");
    has_line(&o, &format!("{LEGACY}: ok"));
    has_line(&o, &format!("{MODERN}: ok"));
    has_line(&o, "(access(X_OK) called as root)");
    // 0500 is the other mode the agent's docs name.
    let (_d, p) = backend(0o500, 0, 0);
    assert_eq!(rights(&p, &[]).0, 0);
}

#[test]
fn group_or_other_bits_are_refused_by_both() {
    require_root();
    for mode in [0o755, 0o701, 0o710, 0o740] {
        let (_d, p) = backend(mode, 0, 0);
        let (code, o) = rights(&p, &[]);
        assert_eq!(code, 1, "{mode:o}: {o}");
        let msg =
            format!("agent says: invalid executable '{p}', 'group' or 'others' have rights on it");
        assert_eq!(
            o.lines().filter(|l| l.trim() == msg).count(),
            2,
            "{mode:o}: {o}"
        );
        has_line(&o, "verdict: refused by at least one agent generation");
    }
}

#[test]
fn owner_check_only_in_the_legacy_rules() {
    require_root();
    // Owned by nobody, checked for root: the old agents refuse (not the
    // owner), the new ones only ask access(X_OK), which root passes.
    let (_d, p) = backend(0o700, NOBODY, NOBODY);
    let (code, o) = rights(&p, &[]);
    assert_eq!(code, 1, "{o}");
    has_line(&o, "owner: nobody (65534)");
    has_line(&o, &format!("{LEGACY}: REFUSED"));
    has_line(
        &o,
        &format!(
            "agent says: invalid executable: '{p}' isn't owned by this user: username 'root', UID 0. We can't execute it"
        ),
    );
    has_line(&o, &format!("{MODERN}: ok"));
    // The same file for its owner passes both; access is reasoned, since
    // the tool does not run as nobody.
    let (code, o) = rights(&p, &["--user", "nobody"]);
    assert_eq!(code, 0, "{o}");
    has_line(
        &o,
        "agent user: nobody (uid 65534, gid 65534, groups 65534)",
    );
    assert!(o.contains("reasoned from the modes"), "{o}");
    // By uid as well as by name.
    assert_eq!(rights(&p, &["--user", "65534"]).0, 0);
}

#[test]
fn no_execute_bit() {
    require_root();
    let (_d, p) = backend(0o600, 0, 0);
    let (code, o) = rights(&p, &[]);
    assert_eq!(code, 1, "{o}");
    has_line(
        &o,
        &format!("agent says: invalid executable: '{p}' is not executable"),
    );
    has_line(
        &o,
        &format!("agent says: invalid executable '{p}': can't access it: permission denied"),
    );
    // For another user, the class without x is named.
    let (_d, p) = backend(0o600, NOBODY, NOBODY);
    let (code, o) = rights(&p, &["--user", "nobody"]);
    assert_eq!(code, 1, "{o}");
    assert!(o.contains("the owner class has no execute bit"), "{o}");
}

#[test]
fn a_directory_the_user_cannot_search_fails_access() {
    require_root();
    let (d, p) = backend(0o700, NOBODY, NOBODY);
    set_mode(d.path(), 0o700);
    let (code, o) = rights(&p, &["--user", "nobody"]);
    assert_eq!(code, 1, "{o}");
    has_line(&o, &format!("{LEGACY}: ok"));
    has_line(&o, &format!("{MODERN}: REFUSED"));
    has_line(
        &o,
        &format!("agent says: invalid executable '{p}': can't access it: permission denied"),
    );
    assert!(
        o.contains(&format!(
            "no search (x) permission on directory {}",
            d.path().display()
        )),
        "{o}"
    );
}

#[test]
fn allow_group_exec() {
    require_root();
    // root owns it, nobody runs it through group nogroup.
    let (_d, p) = backend(0o750, 0, NOBODY);
    let (code, o) = rights(&p, &["--user", "nobody", "--allow-group-exec"]);
    assert_eq!(code, 0, "{o}");
    has_line(&o, "allow group exec: yes");
    has_line(&o, "group: nogroup (65534)");
    // Without the setting, group bits are refused.
    let (code, o) = rights(&p, &["--user", "nobody"]);
    assert_eq!(code, 1, "{o}");
    has_line(
        &o,
        &format!("agent says: invalid executable '{p}', 'group' or 'others' have rights on it"),
    );

    // Group may read but not execute.
    let (_d, p) = backend(0o740, 0, NOBODY);
    let (code, o) = rights(&p, &["--user", "nobody", "--allow-group-exec"]);
    assert_eq!(code, 1, "{o}");
    has_line(
        &o,
        &format!("agent says: invalid executable: '{p}' is not executable by group"),
    );
    has_line(
        &o,
        &format!("agent says: invalid executable '{p}': can't access it: permission denied"),
    );

    // Group write, or anything for others, is refused.
    for mode in [0o770, 0o751] {
        let (_d, p) = backend(mode, 0, NOBODY);
        let (code, o) = rights(&p, &["--user", "nobody", "--allow-group-exec"]);
        assert_eq!(code, 1, "{o}");
        let msg = format!(
            "agent says: invalid executable '{p}', 'others' have rights on it or 'group' has write permissions on it"
        );
        assert_eq!(
            o.lines().filter(|l| l.trim() == msg).count(),
            2,
            "{mode:o}: {o}"
        );
    }

    // Not owner, not in the group.
    let (_d, p) = backend(0o750, 0, 0);
    let (code, o) = rights(&p, &["--user", "nobody", "--allow-group-exec"]);
    assert_eq!(code, 1, "{o}");
    has_line(
        &o,
        &format!(
            "agent says: invalid executable: '{p}' isn't owned by this user or one of his group: username 'nobody', UID 65534 GUI 65534. We can't execute it"
        ),
    );
    assert!(o.contains("the other class has no execute bit"), "{o}");
}

#[test]
fn missing_file_and_unknown_user() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("nope");
    let p = p.to_str().unwrap();
    let (code, o) = rights(p, &[]);
    assert_eq!(code, 1, "{o}");
    assert_eq!(
        o.lines()
            .filter(|l| l.trim()
                == format!(
                    "agent says: invalid executable '{p}': can't stat it: no such file or directory"
                ))
            .count(),
        2,
        "{o}"
    );
    let done = check(["rights", p, "--user", "no-such-user-here"]);
    done.expect_code(2);
    assert!(
        done.stderr.contains("no user named 'no-such-user-here'"),
        "{done}"
    );
}

#[test]
fn a_bare_name_is_searched_in_path() {
    require_root();
    let (d, p) = backend(0o700, 0, 0);
    let done = backend_tests::Cmd::new(common::BIN)
        .args(["rights", "backend"])
        .env("PATH", d.path().to_str().unwrap())
        .run();
    let o = out(&done, 0);
    has_line(&o, &format!("executable: {p}"));
}
