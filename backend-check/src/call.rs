//! One `run`: the rights check the agent makes first, the call itself, and
//! the agent's verdict on every handle and, with `--from`, on every file.
//!
//! The agent calls the backend once per config file with unresolved
//! handles; this tool makes one call with every distinct handle. The
//! verdicts are the same unless the backend's answer for a handle depends on
//! the others asked with it, or one big batch is slower than the timeout
//! where smaller ones would not be (the report shows the call's time).

use std::collections::HashMap;
use std::time::Duration;

use backend_core::Secret;

use crate::exec::{self, Ending, Outcome};
use crate::judge::{self, HandleVerdict, PayloadVersion};
use crate::rights::{self, AgentUser, Rights};
use crate::scan::{FileScan, Role};

/// What `run` was asked to do.
#[derive(Debug, Clone)]
pub struct Plan {
    /// `secret_backend_command`.
    pub command: String,
    /// `secret_backend_arguments`.
    pub args: Vec<String>,
    /// `secret_backend_timeout`, seconds.
    pub timeout_secs: u64,
    /// Payload generation.
    pub version: PayloadVersion,
    /// `secret_backend_output_max_size`.
    pub max_output: usize,
    /// `secret_backend_command_allow_group_exec_perm`.
    pub allow_group_exec: bool,
    /// `secret_backend_remove_trailing_line_break`.
    pub trim_line_break: bool,
    /// Said before the command: which agent is assumed, where each setting
    /// came from (with `--agent-config`).
    pub preface: Vec<String>,
    /// Traps in the setup that the call itself may not show.
    pub warnings: Vec<String>,
    /// Distinct handles, in first-seen order.
    pub handles: Vec<String>,
    /// The files the handles came from (`--from`), if any.
    pub files: Vec<FileScan>,
    /// The backend config's aliases, shown next to the handles they name.
    pub aliases: crate::aliases::Known,
}

/// The verdict on a whole call, when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CallFailure {
    /// The agent's words.
    pub message: String,
    /// What the tool adds (which agents say it differently, what to do).
    pub hint: Option<String>,
}

/// What happened.
#[derive(Debug)]
pub struct Report {
    /// The plan.
    pub plan: Plan,
    /// The rights verdicts for the user this tool runs as.
    pub rights: Result<Rights, String>,
    /// The exact payload written.
    pub payload: Vec<u8>,
    /// The run.
    pub outcome: Outcome,
    /// Set when the whole call failed.
    pub failure: Option<CallFailure>,
    /// One per handle, in plan order.
    pub verdicts: Vec<HandleVerdict>,
    /// Every non-empty value stdout holds, by handle, whatever the verdicts
    /// (a failed call, a value beside an error, an entry not asked for):
    /// what must be masked wherever it shows up again.
    pub values: Vec<(String, Secret)>,
}

impl Report {
    /// Whether the agent would refuse the executable (some rule set does).
    pub fn rights_refused(&self) -> bool {
        match &self.rights {
            Ok(r) => r.refused(),
            Err(_) => false,
        }
    }

    /// Whether every handle resolves, the executable is accepted, and every
    /// config file could be read.
    pub fn all_ok(&self) -> bool {
        !self.rights_refused()
            && self.verdicts.iter().all(HandleVerdict::ok)
            && unreadable(&self.plan.files).next().is_none()
    }

    /// For each file with handles: the handles that fail.
    pub fn file_verdicts(&self) -> Vec<(&FileScan, Vec<&str>)> {
        self.plan
            .files
            .iter()
            .filter_map(|f| {
                let hs = f.resolved_handles();
                if hs.is_empty() {
                    return None;
                }
                let failing: Vec<&str> = self
                    .plan
                    .handles
                    .iter()
                    .zip(&self.verdicts)
                    .filter(|(h, v)| !v.ok() && hs.contains(h))
                    .map(|(h, _)| h.as_str())
                    .collect();
                Some((f, failing))
            })
            .collect()
    }
}

/// Distinct handles of the files, in first-seen order.
pub fn handles_of(files: &[FileScan]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    files
        .iter()
        .flat_map(FileScan::resolved_handles)
        .filter(|h| seen.insert(h.clone()))
        .collect()
}

/// Why each file that could not be read or parsed was not (a FIFO, a
/// file too large, broken YAML): the agent loads none of them.
pub fn unreadable(files: &[FileScan]) -> impl Iterator<Item = &str> {
    files
        .iter()
        .filter_map(|f| f.found.as_ref().err().map(String::as_str))
}

/// Whether the file is the agent's main config.
pub fn is_main(f: &FileScan) -> bool {
    f.role == Role::Main
}

/// Checks the rights, runs the backend and judges the reply.
pub fn execute(plan: Plan) -> Report {
    let rights = AgentUser::current()
        .map(|u| rights::check(&plan.command, u, plan.allow_group_exec))
        .map_err(|e| e.to_string());
    let path = rights::look_path(&plan.command);
    let payload = judge::payload(plan.version, &plan.handles, plan.timeout_secs);
    let outcome = exec::run(
        &path,
        &plan.args,
        &payload,
        Duration::from_secs(plan.timeout_secs),
        plan.max_output,
    );
    // Parsed once: for the verdicts, and for the values to mask wherever
    // they show up again (whether or not the call failed).
    let reply = judge::parse_reply(&outcome.stdout.bytes);
    let (failure, verdicts) = match call_failure(&plan, &outcome) {
        Some(f) => (Some(f), vec![HandleVerdict::CallFailed; plan.handles.len()]),
        None => match &reply {
            Ok(reply) => (
                None,
                judge::judge(&plan.handles, reply, plan.trim_line_break),
            ),
            Err(e) => (
                Some(CallFailure {
                    message: format!("could not unmarshal 'secret_backend_command' output: {e}"),
                    hint: Some(
                        "stdout must be exactly one JSON object {\"handle\":{\"value\":\"...\",\"error\":null}} and nothing else"
                            .into(),
                    ),
                }),
                vec![HandleVerdict::CallFailed; plan.handles.len()],
            ),
        },
    };
    let values = reply.map(written_values).unwrap_or_default();
    Report {
        plan,
        rights,
        payload,
        outcome,
        failure,
        verdicts,
        values,
    }
}

/// The non-empty values of a reply, longest first (so a value that holds
/// another is masked whole).
fn written_values(reply: HashMap<String, judge::Entry>) -> Vec<(String, Secret)> {
    let mut values: Vec<(String, Secret)> = reply
        .into_iter()
        .filter_map(|(h, e)| {
            // As the agent may keep it: without a final line break.
            let v = e.value.expose().trim_end_matches(['\r', '\n']);
            (!v.is_empty()).then(|| (h, Secret::from(v)))
        })
        .collect();
    values.sort_by(|a, b| {
        b.1.expose()
            .len()
            .cmp(&a.1.expose().len())
            .then_with(|| a.0.cmp(&b.0))
    });
    values
}

fn call_failure(plan: &Plan, o: &Outcome) -> Option<CallFailure> {
    let cmd = &plan.command;
    let fail = |message: String, hint: Option<String>| Some(CallFailure { message, hint });
    match &o.ending {
        Ending::SpawnFailed(e) => {
            let errno = rights::errno_text(e);
            let hint = (e.kind() == std::io::ErrorKind::PermissionDenied).then(|| {
                format!("newer agents say: permission denied executing secret command '{cmd}'")
            });
            return fail(
                format!("error while running '{cmd}': fork/exec {cmd}: {errno}"),
                hint,
            );
        }
        Ending::TimedOut => {
            return fail(
                format!("error while running '{cmd}': command timeout"),
                Some(format!(
                    "killed after {} s; newer agents say: '{cmd}' timed out after {} seconds. You can increase secret_backend_timeout in datadog.yaml",
                    plan.timeout_secs, plan.timeout_secs
                )),
            );
        }
        Ending::Exited(_) => {}
    }
    for (name, s) in [("stdout", &o.stdout), ("stderr", &o.stderr)] {
        if s.over_cap {
            return fail(
                format!(
                    "error while running '{cmd}': command output was too long: exceeded {} bytes",
                    plan.max_output
                ),
                Some(format!(
                    "{name} passed secret_backend_output_max_size ({} bytes)",
                    plan.max_output
                )),
            );
        }
        if s.unfinished {
            return fail(
                format!("error while running '{cmd}': command timeout"),
                Some(format!(
                    "the backend exited but a process it left behind kept {name} open past the deadline"
                )),
            );
        }
    }
    if let Ending::Exited(status) = &o.ending
        && !status.success()
    {
        return fail(
            format!("error while running '{cmd}': {}", go_exit_text(status)),
            Some(
                "a non-zero exit fails every handle of the call; the agent ignores stdout and logs stderr at ERROR"
                    .into(),
            ),
        );
    }
    None
}

/// Go's `ExitError` text: `exit status 3`, `signal: killed`.
pub fn go_exit_text(status: &std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    if let Some(code) = status.code() {
        return format!("exit status {code}");
    }
    match status.signal() {
        Some(sig) => {
            let name = match sig {
                1 => "hangup".to_owned(),
                2 => "interrupt".to_owned(),
                6 => "aborted".to_owned(),
                9 => "killed".to_owned(),
                11 => "segmentation fault".to_owned(),
                13 => "broken pipe".to_owned(),
                15 => "terminated".to_owned(),
                n => format!("signal {n}"),
            };
            format!("signal: {name}")
        }
        None => "exited abnormally".into(),
    }
}

/// The handles given on the command line, distinct, in order.
pub fn distinct(handles: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    handles
        .into_iter()
        .filter(|h| seen.insert(h.clone()))
        .collect()
}
