//! Everything the tool prints. This tool's output is its purpose, so this
//! one module may print (the workspace warns on print macros elsewhere).
//!
//! Values never appear unless `--show-values` asks for them: a resolved
//! value is shown as `****** (N chars)`, and any value the reply holds
//! (resolved or not, asked for or not, the call failed or not) that also
//! shows up in the backend's stderr or in a handle's error is masked there
//! and flagged: the agent logs both. Handles, file names and
//! backend messages are printed escaped, so control characters cannot
//! garble a terminal.
//!
//! Lines are written with [`say!`], which ignores write errors instead of
//! panicking as `println!` does: `secret-backend-check ... | head` must end
//! quietly. Only [`error`] uses `eprintln!`.

/// `println!` that ignores a closed stdout.
macro_rules! say {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($arg)*);
    }};
}

use std::fmt::Display;

use backend_core::Secret;

use crate::aliases::Known;
use crate::call::{self, Report};
use crate::judge::{self, HandleVerdict, PayloadVersion};
use crate::rights::{self, Rights};
use crate::scan::{Role, Scan};

/// Longest stretch of the backend's stderr shown.
const STDERR_SHOWN: usize = 4000;

/// An error that stopped the check. Written, not `eprintln!`ed: with
/// stderr a pipe nobody reads any more, `eprintln!` panics (exit 101) and
/// the exit code would no longer say what went wrong.
pub fn error(e: &dyn Display) {
    use std::io::Write as _;
    let _ = writeln!(std::io::stderr().lock(), "secret-backend-check: error: {e}");
}

/// `s` with control characters escaped (`\n`, `\u{1b}`), the rest as is.
fn esc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn verdict_word(refused: bool) -> &'static str {
    if refused { "REFUSED" } else { "ok" }
}

/// The `rights` report.
pub fn rights(r: &Rights) {
    say!("executable: {}", esc(&r.path.display().to_string()));
    match &r.stat {
        Ok(st) => {
            say!("  mode:  {:04o} ({})", st.mode & 0o7777, st.symbolic());
            say!("  owner: {}", rights::user_name(st.uid));
            say!("  group: {}", rights::group_name(st.gid));
            if !st.regular {
                say!("  note:  not a regular file");
            }
        }
        Err(e) => say!("  cannot stat it: {e}"),
    }
    let groups: Vec<String> = r.user.groups.iter().map(u32::to_string).collect();
    say!(
        "agent user: {} (uid {}, gid {}, groups {})",
        esc(&r.user.name),
        r.user.uid,
        r.user.gid,
        groups.join(",")
    );
    say!(
        "allow group exec: {}",
        if r.allow_group_exec { "yes" } else { "no" }
    );
    for v in &r.verdicts {
        say!(
            "{}: {}",
            v.rules.agents(),
            verdict_word(v.refusal.is_some())
        );
        if let Some(msg) = &v.refusal {
            say!("  agent says: {}", esc(msg));
        }
        if let Some(note) = &v.note {
            say!("  ({})", esc(note));
        }
    }
    if r.refused() {
        say!("verdict: refused by at least one agent generation");
    } else {
        say!("verdict: every agent generation runs it");
    }
}

/// `  [alias of <target>]` after a handle that is an alias, else nothing.
fn alias_note(known: &Known, handle: &str) -> String {
    known
        .note(handle)
        .map(|n| format!("  [{}]", esc(&n)))
        .unwrap_or_default()
}

/// The `scan` report.
pub fn scan(s: &Scan, known: &Known) {
    if let Some(line) = known.summary() {
        say!("{}", esc(&line));
    }
    let mut total = 0;
    for f in &s.files {
        let role = match f.role {
            Role::Main => "main config",
            Role::Check => "check config",
        };
        say!("{} ({role})", esc(&f.path.display().to_string()));
        if f.empty {
            say!("  empty: the agent skips it");
        }
        if let Some(why) = &f.not_loaded {
            say!("  NOT LOADED by the agent: {}", esc(why));
        }
        match &f.found {
            Err(e) => say!("  NOT LOADED by the agent: {}", esc(e)),
            Ok(found) if found.is_empty() && !f.empty => say!("  no handles"),
            Ok(found) if found.is_empty() => {}
            Ok(found) => {
                for h in found {
                    let line = if h.line > 0 {
                        format!(" (line {})", h.line)
                    } else {
                        String::new()
                    };
                    let note = match (h.resolved, h.padded) {
                        (false, _) => {
                            "  [never resolved: the agent resolves only init_config, instances, jmx_metrics and logs]"
                        }
                        (true, true) => {
                            "  [padded with spaces or tabs: only newer Datadog agents trim them; StackState V2 and older Datadog agents take the text as it is]"
                        }
                        (true, false) => "",
                    };
                    say!(
                        "  {}{line}: ENC[{}]{note}{}",
                        esc(&h.location),
                        esc(&h.handle),
                        alias_note(known, &h.handle)
                    );
                    total += 1;
                }
            }
        }
    }
    for sk in &s.skipped {
        say!(
            "skipped {}: {}",
            esc(&sk.path.display().to_string()),
            sk.reason
        );
    }
    let distinct = call::handles_of(&s.files).len();
    say!(
        "{total} handle(s) in {} file(s); {distinct} distinct handle(s) the agent would ask for",
        s.files.len()
    );
}

/// The `run` report.
pub fn run(r: &Report, show: bool) {
    let p = &r.plan;
    for line in p.preface.iter().chain(&p.aliases.summary()) {
        say!("{}", esc(line));
    }
    say!("command: {}", esc(&p.command));
    for a in &p.args {
        say!("  arg: {}", esc(a));
    }
    for w in &p.warnings {
        say!("WARNING: {}", esc(w));
    }
    match &r.rights {
        Ok(rights) => {
            for v in &rights.verdicts {
                say!(
                    "rights, {} (as {}): {}",
                    v.rules.agents(),
                    esc(&rights.user.name),
                    verdict_word(v.refusal.is_some())
                );
                if let Some(msg) = &v.refusal {
                    say!("  agent says: {}", esc(msg));
                }
            }
            if rights.refused() {
                say!(
                    "  (an agent that refuses the rights never runs the backend; it is run here anyway to check the rest)"
                );
            }
        }
        Err(e) => say!("rights: not checked: {}", esc(e)),
    }
    let version = match p.version {
        PayloadVersion::V1_0 => "1.0",
        PayloadVersion::V1_1 => "1.1",
    };
    say!(
        "payload ({version}, {} bytes): {}",
        r.payload.len(),
        String::from_utf8_lossy(&r.payload)
    );
    let exit = match &r.outcome.ending {
        crate::exec::Ending::Exited(s) => call::go_exit_text(s),
        crate::exec::Ending::TimedOut => format!("killed at the deadline ({} s)", p.timeout_secs),
        crate::exec::Ending::SpawnFailed(_) => "not started".into(),
    };
    say!(
        "call: {exit}, {} ms, stdout {} bytes, stderr {} bytes",
        r.outcome.elapsed.as_millis(),
        r.outcome.stdout.bytes.len(),
        r.outcome.stderr.bytes.len()
    );
    stderr_section(r, show);
    if let Some(f) = &r.failure {
        say!("WHOLE CALL FAILS: {}", esc(&f.message));
        if let Some(h) = &f.hint {
            say!("  ({})", esc(h));
        }
    }
    handles_section(r, show);
    files_section(r);
    let failed = r.verdicts.iter().filter(|v| !v.ok()).count();
    let replied = if failed == 0 {
        "the agent resolves every handle".to_owned()
    } else {
        format!("{failed} of {} handle(s) fail", r.verdicts.len())
    };
    let unreadable = call::unreadable(&r.plan.files).count();
    if r.rights_refused() {
        say!("verdict: the executable's rights are refused (see above); in the reply, {replied}");
    } else if unreadable > 0 {
        say!(
            "verdict: {unreadable} config file(s) the agent cannot load (see above); in the reply, {replied}"
        );
    } else {
        say!("verdict: {replied}");
    }
}

fn stderr_section(r: &Report, show: bool) {
    let err = String::from_utf8_lossy(&r.outcome.stderr.bytes).into_owned();
    if err.trim().is_empty() {
        return;
    }
    let (shown, leaked) = masked(&err, &r.values, show);
    let level = if r.failure.is_some() {
        "ERROR"
    } else {
        "DEBUG"
    };
    say!("backend stderr (the agent logs it at {level}; Vector logs every line as a warning):");
    let cut: String = shown.chars().take(STDERR_SHOWN).collect();
    for line in cut.lines() {
        say!("  | {}", esc(line));
    }
    if shown.chars().count() > STDERR_SHOWN {
        say!("  | ... ({} bytes in all)", err.len());
    }
    for h in leaked {
        say!(
            "WARNING: stderr holds the value of '{}': it would reach the agent's log",
            esc(h)
        );
    }
}

/// `text` with every value of `values` in it masked (unless `show`), and
/// the handles whose values it holds, sorted.
fn masked<'a>(text: &str, values: &'a [(String, Secret)], show: bool) -> (String, Vec<&'a str>) {
    let mut shown = text.to_owned();
    let mut leaked = Vec::new();
    for (h, value) in values {
        if text.contains(value.expose()) {
            leaked.push(h.as_str());
            if !show {
                shown = shown.replace(value.expose(), "******");
            }
        }
    }
    leaked.sort_unstable();
    leaked.dedup();
    (shown, leaked)
}

fn handles_section(r: &Report, show: bool) {
    say!("handles:");
    for (h, v) in r.plan.handles.iter().zip(&r.verdicts) {
        // `ENC[handle]`, and what it stands for when it is an alias.
        let h_shown = format!("{}]{}", esc(h), alias_note(&r.plan.aliases, h));
        match v {
            HandleVerdict::Resolved(secret) => {
                // The one place a value is shown, and only when asked for.
                let value = secret.expose();
                let shown = if show {
                    format!("{value:?}")
                } else {
                    format!("****** ({} chars)", value.chars().count())
                };
                say!("  ok    ENC[{h_shown} = {shown}");
                if value.ends_with('\n') || value.ends_with('\r') {
                    say!(
                        "        warning: the value ends with a line break, which the agent keeps (newer agents strip it only with secret_backend_remove_trailing_line_break)"
                    );
                }
            }
            HandleVerdict::CallFailed => {
                say!("  FAIL  ENC[{h_shown}: the whole call failed");
            }
            HandleVerdict::Error(e) => {
                // The agent logs the error: a value in it reaches its log.
                let (e, leaked) = masked(e, &r.values, show);
                let words = judge::agent_words(h, &HandleVerdict::Error(e)).unwrap_or_default();
                say!("  FAIL  ENC[{h_shown}: {}", esc(&words));
                for of in leaked {
                    say!(
                        "WARNING: the error of '{}' holds the value of '{}': it would reach the agent's log",
                        esc(h),
                        esc(of)
                    );
                }
            }
            other => {
                let words = judge::agent_words(h, other).unwrap_or_default();
                say!("  FAIL  ENC[{h_shown}: {}", esc(&words));
            }
        }
    }
}

fn files_section(r: &Report) {
    let files = r.file_verdicts();
    let unreadable: Vec<&str> = call::unreadable(&r.plan.files).collect();
    if files.is_empty() && unreadable.is_empty() {
        return;
    }
    say!("config files:");
    for why in unreadable {
        say!("  NOT LOADED  {}", esc(why));
    }
    for (f, failing) in files {
        let path = esc(&f.path.display().to_string());
        if failing.is_empty() {
            say!("  ok       {path}");
            continue;
        }
        let list: Vec<String> = failing.iter().map(|h| format!("ENC[{}]", esc(h))).collect();
        if call::is_main(f) {
            say!(
                "  FAILS    {path}: the agent cannot load its main config ({})",
                list.join(", ")
            );
        } else {
            say!(
                "  DROPPED  {path}: older agents (StackState V2, Datadog until late 2025) drop the whole file; the newest keep it without {}",
                list.join(", ")
            );
        }
    }
}
