//! `secret-backend-check`: plays the agent on the host, so an operator can
//! test a secret backend setup under the agent's own rules before
//! restarting the agent (which, when a handle fails, says little and drops
//! the check).
//!
//! - `rights`: the executable's mode and owner against both generations of
//!   the agent's rules ([`rights`]).
//! - `scan`: the handles in YAML configs and conf.d directories, found as the
//!   agent finds them ([`scan`]).
//! - `run`: the backend run as the agent runs it ([`exec`]), its reply read
//!   and judged as the agent reads it ([`judge`], [`call`]).
//!
//! Everything printed goes through [`report`]. Exit codes: 0 the agent would
//! accept everything checked, 1 it would refuse something, 2 the check
//! itself could not be made (usage, unreadable input).

mod agent;
mod aliases;
mod call;
mod exec;
mod judge;
mod report;
mod rights;
mod scan;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand, ValueEnum};

/// Exit code: the agent would accept everything checked.
const EXIT_OK: u8 = 0;
/// Exit code: the agent would refuse something.
const EXIT_REFUSED: u8 = 1;
/// Exit code: the check could not be made.
const EXIT_USAGE: u8 = 2;

const AFTER_HELP: &str = "\
Exit codes:
  0  the agent would accept everything checked
  1  the agent would refuse something: the executable's rights, a config
     file it cannot load, a handle it cannot resolve
  2  the check could not be made: bad usage, a path that cannot be read,
     no handles to ask for

Run it as the agent's user (sudo -u dd-agent ...) so that rights and the
backend's own access to its config and credentials are those of the agent.";

#[derive(Debug, Parser)]
#[command(
    name = "secret-backend-check",
    version,
    about = "Check a secret backend setup as the agent would: rights, handles, a real call.",
    after_help = AFTER_HELP
)]
struct Cli {
    #[command(subcommand)]
    command: Cmd,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum Version {
    #[value(name = "1.0")]
    V1_0,
    #[value(name = "1.1")]
    V1_1,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// Check the executable's mode and owner by both generations of the
    /// agent's rules.
    #[command(after_help = AFTER_HELP)]
    Rights {
        /// The secret_backend_command (searched in PATH when it has no '/').
        path: String,
        /// The agent's user, by name or uid [default: the user running this].
        #[arg(long, value_name = "NAME")]
        user: Option<String>,
        /// secret_backend_command_allow_group_exec_perm: true.
        #[arg(long)]
        allow_group_exec: bool,
    },
    /// Find the handles (ENC[...]) in YAML files and conf.d directories.
    #[command(after_help = AFTER_HELP)]
    Scan {
        /// Files, conf.d directories, or agent config directories (holding conf.d/).
        #[arg(required = true, value_name = "PATH")]
        paths: Vec<PathBuf>,
        /// The backend's config: handles that are its aliases are shown
        /// with what they stand for.
        #[arg(long, value_name = "FILE")]
        backend_config: Option<PathBuf>,
    },
    /// Run the backend as the agent does and judge its reply.
    #[command(after_help = AFTER_HELP)]
    Run {
        /// The agent's main config (stackstate.yaml, datadog.yaml): its
        /// secret_backend_* settings, with the agent's STS_/DD_ environment
        /// overrides, and its handles and conf.d as --from. Flags given win.
        #[arg(long, value_name = "FILE")]
        agent_config: Option<PathBuf>,
        /// The secret_backend_command.
        #[arg(long, value_name = "PATH", required_unless_present = "agent_config")]
        command: Option<String>,
        /// One of secret_backend_arguments (repeat for more; replaces the agent config's list).
        #[arg(long = "arg", value_name = "A", allow_hyphen_values = true)]
        args: Vec<String>,
        /// secret_backend_timeout, whole seconds [default: the agent config's, else 30].
        #[arg(long, value_name = "S",
              value_parser = clap::value_parser!(u64).range(1..=86_400))]
        timeout: Option<u64>,
        /// Payload generation: 1.0 (StackState V2, Datadog until late 2025)
        /// or 1.1 (adds secret_backend_timeout) [default: 1.0].
        #[arg(long, value_name = "V")]
        payload_version: Option<Version>,
        /// secret_backend_output_max_size, bytes (stdout and stderr each)
        /// [default: the agent config's, else 1048576].
        #[arg(long, value_name = "BYTES")]
        output_max_size: Option<usize>,
        /// secret_backend_command_allow_group_exec_perm: true.
        #[arg(long)]
        allow_group_exec: bool,
        /// secret_backend_remove_trailing_line_break: true (newer Datadog agents).
        #[arg(long)]
        remove_trailing_line_break: bool,
        /// Print resolved values instead of masking them.
        #[arg(long)]
        show_values: bool,
        /// The backend's config, for its aliases [default: the --config
        /// FILE among the backend's arguments].
        #[arg(long, value_name = "FILE")]
        backend_config: Option<PathBuf>,
        /// Take the handles from these files or directories, as `scan` finds them.
        #[arg(long, value_name = "PATH", num_args = 1.., conflicts_with = "handles")]
        from: Vec<PathBuf>,
        /// Handles, as written inside ENC[...] (put them after `--` when one starts with `-`).
        #[arg(value_name = "HANDLE", required_unless_present_any = ["from", "agent_config"])]
        handles: Vec<String>,
    },
}

fn main() -> ExitCode {
    // The same version line as the backends: crate version and git revision.
    let version: &'static str = Box::leak(
        format!(
            "{} (git {})",
            env!("CARGO_PKG_VERSION"),
            backend_core::runner::GIT_REV
        )
        .into_boxed_str(),
    );
    let parsed = Cli::command()
        .version(version)
        .try_get_matches()
        .and_then(|m| Cli::from_arg_matches(&m));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { EXIT_USAGE } else { EXIT_OK });
        }
    };
    ExitCode::from(match cli.command {
        Cmd::Rights {
            path,
            user,
            allow_group_exec,
        } => rights_cmd(&path, user.as_deref(), allow_group_exec),
        Cmd::Scan {
            paths,
            backend_config,
        } => scan_cmd(&paths, backend_config.as_deref()),
        Cmd::Run {
            agent_config,
            command,
            args,
            timeout,
            payload_version,
            output_max_size,
            allow_group_exec,
            remove_trailing_line_break,
            show_values,
            backend_config,
            from,
            handles,
        } => {
            let flags = agent::Flags {
                command,
                args,
                timeout,
                version: payload_version.map(|v| match v {
                    Version::V1_0 => judge::PayloadVersion::V1_0,
                    Version::V1_1 => judge::PayloadVersion::V1_1,
                }),
                output_max_size,
                allow_group_exec,
                trim_line_break: remove_trailing_line_break,
            };
            let sources = Sources {
                agent_config: agent_config.as_deref(),
                backend_config: backend_config.as_deref(),
                from: &from,
            };
            run_cmd(flags, &sources, handles, show_values)
        }
    })
}

fn rights_cmd(path: &str, user: Option<&str>, allow_group_exec: bool) -> u8 {
    let user = match user {
        Some(name) => rights::AgentUser::lookup(name),
        None => rights::AgentUser::current(),
    };
    let user = match user {
        Ok(u) => u,
        Err(e) => {
            report::error(&e);
            return EXIT_USAGE;
        }
    };
    let r = rights::check(path, user, allow_group_exec);
    report::rights(&r);
    if r.refused() { EXIT_REFUSED } else { EXIT_OK }
}

/// The aliases of an explicit `--backend-config`; one that cannot be read
/// stops the check.
fn backend_aliases(path: Option<&Path>) -> Result<aliases::Known, String> {
    let Some(path) = path else {
        return Ok(aliases::Known::default());
    };
    let known = aliases::Known::load(path);
    match &known.unread {
        Some(why) => Err(why.clone()),
        None => Ok(known),
    }
}

fn scan_cmd(paths: &[PathBuf], backend_config: Option<&Path>) -> u8 {
    let known = match backend_aliases(backend_config) {
        Ok(k) => k,
        Err(e) => {
            report::error(&e);
            return EXIT_USAGE;
        }
    };
    match scan::scan(paths) {
        Ok(s) => {
            report::scan(&s, &known);
            let unloadable = s
                .files
                .iter()
                .any(|f| f.found.is_err() || f.not_loaded.is_some());
            if unloadable { EXIT_REFUSED } else { EXIT_OK }
        }
        Err(e) => {
            report::error(&e);
            EXIT_USAGE
        }
    }
}

/// Where `run` takes its settings and handles from, besides the flags.
#[derive(Debug, Clone, Copy)]
struct Sources<'a> {
    agent_config: Option<&'a Path>,
    backend_config: Option<&'a Path>,
    from: &'a [PathBuf],
}

fn run_cmd(flags: agent::Flags, sources: &Sources<'_>, handles: Vec<String>, show: bool) -> u8 {
    match plan(flags, sources, handles) {
        Ok(plan) => {
            let r = call::execute(plan);
            report::run(&r, show);
            if r.all_ok() { EXIT_OK } else { EXIT_REFUSED }
        }
        Err(e) => {
            report::error(&e);
            EXIT_USAGE
        }
    }
}

/// Settles the settings, finds the handles and adds the warnings.
fn plan(
    flags: agent::Flags,
    sources: &Sources<'_>,
    handles: Vec<String>,
) -> Result<call::Plan, String> {
    let Sources {
        agent_config,
        backend_config,
        from,
    } = *sources;
    let env = |name: &str| std::env::var(name).ok();
    let cfg = agent_config.map(|p| agent::load(p, &env)).transpose()?;
    let mut plan = agent::settle(flags, cfg.as_ref())?;
    plan.aliases = match backend_config {
        Some(_) => backend_aliases(backend_config)?,
        // Read as the backend will read it; if it cannot be, the call shows why.
        None => aliases::config_in_args(&plan.args)
            .map(|p| aliases::Known::load(&p))
            .unwrap_or_default(),
    };
    if !from.is_empty() {
        plan.files = scan::scan(from).map_err(|e| e.to_string())?.files;
    } else if let Some(c) = &cfg
        && handles.is_empty()
    {
        // The agent resolves its main config and its conf.d.
        plan.files.push(c.main.clone());
        if c.confd.is_dir() {
            plan.preface.push(format!(
                "  handles from: the agent config and {}",
                c.confd.display()
            ));
            let confd = scan::scan(std::slice::from_ref(&c.confd)).map_err(|e| e.to_string())?;
            plan.files.extend(confd.files);
        } else {
            plan.preface.push(format!(
                "  handles from: the agent config only ({} is not a directory)",
                c.confd.display()
            ));
        }
    }
    if handles.is_empty() {
        plan.handles = call::handles_of(&plan.files);
        if plan.handles.is_empty() {
            let mut e =
                "no handles that the agent resolves in the given paths (see `scan`)".to_owned();
            for why in call::unreadable(&plan.files) {
                e.push_str("; not loaded: ");
                e.push_str(why);
            }
            return Err(e);
        }
    } else {
        plan.handles = call::distinct(handles);
    }
    plan.warnings.extend(agent::timeout_trap(
        &plan.args,
        plan.timeout_secs,
        plan.version,
    ));
    if let Some(c) = &cfg {
        plan.warnings
            .extend(agent::namespace_warnings(&plan.handles, &c.scoping));
    }
    Ok(plan)
}
