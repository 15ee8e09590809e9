//! Everything the tool prints. This tool's output is its purpose, so this
//! one module may print (the workspace warns on print macros elsewhere).
//!
//! Values never appear unless `--show-values` asks for them: a resolved
//! value is shown as `****** (N chars)`, and any value that also shows up in
//! the backend's stderr is masked there too. Handles, file names and
//! backend messages are printed escaped, so control characters cannot
//! garble a terminal.
#![allow(clippy::print_stdout, clippy::print_stderr)]

use std::fmt::Display;

use crate::call::{self, Report};
use crate::judge::{self, HandleVerdict, PayloadVersion};
use crate::rights::{self, Rights};
use crate::scan::{Role, Scan};

/// Longest stretch of the backend's stderr shown.
const STDERR_SHOWN: usize = 4000;

/// An error that stopped the check.
pub fn error(e: &dyn Display) {
    eprintln!("secret-backend-check: error: {e}");
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
    println!("executable: {}", esc(&r.path.display().to_string()));
    match &r.stat {
        Ok(st) => {
            println!("  mode:  {:04o} ({})", st.mode & 0o7777, st.symbolic());
            println!("  owner: {}", rights::user_name(st.uid));
            println!("  group: {}", rights::group_name(st.gid));
            if !st.regular {
                println!("  note:  not a regular file");
            }
        }
        Err(e) => println!("  cannot stat it: {e}"),
    }
    let groups: Vec<String> = r.user.groups.iter().map(u32::to_string).collect();
    println!(
        "agent user: {} (uid {}, gid {}, groups {})",
        esc(&r.user.name),
        r.user.uid,
        r.user.gid,
        groups.join(",")
    );
    println!(
        "allow group exec: {}",
        if r.allow_group_exec { "yes" } else { "no" }
    );
    for v in &r.verdicts {
        println!(
            "{}: {}",
            v.rules.agents(),
            verdict_word(v.refusal.is_some())
        );
        if let Some(msg) = &v.refusal {
            println!("  agent says: {}", esc(msg));
        }
        if let Some(note) = &v.note {
            println!("  ({})", esc(note));
        }
    }
    if r.refused() {
        println!("verdict: refused by at least one agent generation");
    } else {
        println!("verdict: every agent generation runs it");
    }
}

/// The `scan` report.
pub fn scan(s: &Scan) {
    let mut total = 0;
    for f in &s.files {
        let role = match f.role {
            Role::Main => "main config",
            Role::Check => "check config",
        };
        println!("{} ({role})", esc(&f.path.display().to_string()));
        if let Some(why) = &f.not_loaded {
            println!("  NOT LOADED by the agent: {}", esc(why));
        }
        match &f.found {
            Err(e) => println!("  NOT LOADED by the agent: {}", esc(e)),
            Ok(found) if found.is_empty() => println!("  no handles"),
            Ok(found) => {
                for h in found {
                    let line = if h.line > 0 {
                        format!(" (line {})", h.line)
                    } else {
                        String::new()
                    };
                    let note = if h.resolved {
                        ""
                    } else {
                        "  [never resolved: the agent resolves only init_config, instances, jmx_metrics and logs]"
                    };
                    println!(
                        "  {}{line}: ENC[{}]{note}",
                        esc(&h.location),
                        esc(&h.handle)
                    );
                    total += 1;
                }
            }
        }
    }
    for sk in &s.skipped {
        println!(
            "skipped {}: {}",
            esc(&sk.path.display().to_string()),
            sk.reason
        );
    }
    let distinct = call::handles_of(&s.files).len();
    println!(
        "{total} handle(s) in {} file(s); {distinct} distinct handle(s) the agent would ask for",
        s.files.len()
    );
}

/// The `run` report.
pub fn run(r: &Report, show: bool) {
    let p = &r.plan;
    println!("command: {}", esc(&p.command));
    for a in &p.args {
        println!("  arg: {}", esc(a));
    }
    match &r.rights {
        Ok(rights) => {
            for v in &rights.verdicts {
                println!(
                    "rights, {} (as {}): {}",
                    v.rules.agents(),
                    esc(&rights.user.name),
                    verdict_word(v.refusal.is_some())
                );
                if let Some(msg) = &v.refusal {
                    println!("  agent says: {}", esc(msg));
                }
            }
            if rights.refused() {
                println!(
                    "  (that agent would not run the backend at all; it is run here anyway to check the rest)"
                );
            }
        }
        Err(e) => println!("rights: not checked: {}", esc(e)),
    }
    let version = match p.version {
        PayloadVersion::V1_0 => "1.0",
        PayloadVersion::V1_1 => "1.1",
    };
    println!(
        "payload ({version}, {} bytes): {}",
        r.payload.len(),
        String::from_utf8_lossy(&r.payload)
    );
    let exit = match &r.outcome.ending {
        crate::exec::Ending::Exited(s) => call::go_exit_text(s),
        crate::exec::Ending::TimedOut => format!("killed at the deadline ({} s)", p.timeout_secs),
        crate::exec::Ending::SpawnFailed(_) => "not started".into(),
    };
    println!(
        "call: {exit}, {} ms, stdout {} bytes, stderr {} bytes",
        r.outcome.elapsed.as_millis(),
        r.outcome.stdout.bytes.len(),
        r.outcome.stderr.bytes.len()
    );
    stderr_section(r, show);
    if let Some(f) = &r.failure {
        println!("WHOLE CALL FAILS: {}", esc(&f.message));
        if let Some(h) = &f.hint {
            println!("  ({})", esc(h));
        }
    }
    handles_section(r, show);
    files_section(r);
    if r.all_ok() {
        println!("verdict: the agent resolves every handle");
    } else {
        let failed = r.verdicts.iter().filter(|v| !v.ok()).count();
        let rights = if r.rights_refused() {
            "; the executable's rights are refused"
        } else {
            ""
        };
        println!(
            "verdict: {failed} of {} handle(s) fail{rights}",
            r.verdicts.len()
        );
    }
}

fn stderr_section(r: &Report, show: bool) {
    let err = String::from_utf8_lossy(&r.outcome.stderr.bytes).into_owned();
    if err.trim().is_empty() {
        return;
    }
    let mut shown = err.clone();
    let mut leaked = Vec::new();
    for (h, v) in r.plan.handles.iter().zip(&r.verdicts) {
        if let HandleVerdict::Resolved(value) = v
            && err.contains(value.as_str())
        {
            leaked.push(h.as_str());
            if !show {
                shown = shown.replace(value.as_str(), "******");
            }
        }
    }
    let level = if r.failure.is_some() {
        "ERROR"
    } else {
        "DEBUG"
    };
    println!("backend stderr (the agent logs it at {level}; Vector logs every line as a warning):");
    let cut: String = shown.chars().take(STDERR_SHOWN).collect();
    for line in cut.lines() {
        println!("  | {}", esc(line));
    }
    if shown.chars().count() > STDERR_SHOWN {
        println!("  | ... ({} bytes in all)", err.len());
    }
    for h in leaked {
        println!(
            "WARNING: stderr holds the value of '{}': it would reach the agent's log",
            esc(h)
        );
    }
}

fn handles_section(r: &Report, show: bool) {
    println!("handles:");
    for (h, v) in r.plan.handles.iter().zip(&r.verdicts) {
        let h_shown = esc(h);
        match v {
            HandleVerdict::Resolved(value) => {
                let shown = if show {
                    format!("{value:?}")
                } else {
                    format!("****** ({} chars)", value.chars().count())
                };
                println!("  ok    ENC[{h_shown}] = {shown}");
                if value.ends_with('\n') || value.ends_with('\r') {
                    println!(
                        "        warning: the value ends with a line break, which the agent keeps (newer agents strip it only with secret_backend_remove_trailing_line_break)"
                    );
                }
            }
            HandleVerdict::CallFailed => {
                println!("  FAIL  ENC[{h_shown}]: the whole call failed");
            }
            other => {
                let words = judge::agent_words(h, other).unwrap_or_default();
                println!("  FAIL  ENC[{h_shown}]: {}", esc(&words));
            }
        }
    }
}

fn files_section(r: &Report) {
    let files = r.file_verdicts();
    if files.is_empty() {
        return;
    }
    println!("config files:");
    for (f, failing) in files {
        let path = esc(&f.path.display().to_string());
        if failing.is_empty() {
            println!("  ok       {path}");
            continue;
        }
        let list: Vec<String> = failing.iter().map(|h| format!("ENC[{}]", esc(h))).collect();
        if call::is_main(f) {
            println!(
                "  FAILS    {path}: the agent cannot load its main config ({})",
                list.join(", ")
            );
        } else {
            println!(
                "  DROPPED  {path}: older agents (StackState V2, Datadog until late 2025) drop the whole file; the newest keep it without {}",
                list.join(", ")
            );
        }
    }
}
