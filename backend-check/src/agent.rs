//! `run --agent-config`: the agent's own settings for the backend, read as
//! the agent reads them, and the traps they set.
//!
//! **Which agent.** The file's name says it (`stackstate.yaml`,
//! `datadog.yaml`); a file named otherwise is StackState's when it sets
//! `sts_url`, else Datadog's. That choice fixes the environment prefix and
//! which settings exist: StackState Agent V2 (Datadog 7.33 code, branded at
//! build time by renaming the `"DD"` prefix to `"STS"`) reads
//! `STS_SECRET_BACKEND_*` and has no `secret_backend_remove_trailing_line_break`
//! nor namespace scoping; Datadog reads `DD_SECRET_BACKEND_*`.
//!
//! **How values are read** (viper with `SetTypeByDefaultValue`, `cast`):
//! an environment variable that is set and not empty wins over the file
//! (viper's `AllowEmptyEnv` is off); a list from the environment is split at
//! whitespace (`strings.Fields`: `"--config /etc/x.yaml"` is two arguments);
//! a number is Go's `ParseInt(s, 0, 0)` (`0x10`, `010` octal); a boolean
//! from the environment is Go's `ParseBool`. A value the agent cannot read
//! becomes its zero value (`GetInt` logs a warning and returns 0), which is
//! reported here as a problem.
//!
//! **Traps warned about.** A 1.0 payload (StackState V2, Datadog until late
//! 2025) carries no timeout, so this project's backends fall back to their
//! 5 s default: an agent whose `secret_backend_timeout` is shorter kills them
//! first unless `--timeout` in `secret_backend_arguments` comes before its
//! own ([`timeout_trap`]). And a Datadog agent with Kubernetes namespace
//! scoping skips, without calling the backend, a handle it reads as another
//! namespace's secret ([`namespace_warnings`]).

use std::path::{Path, PathBuf};

use serde_saphyr::Spanned;

use crate::judge::PayloadVersion;
use crate::scan::{self, FileScan, Node, Role};

/// The agent generations an agent config can belong to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Agent {
    /// StackState Agent V2.
    StackState,
    /// Datadog Agent 6/7 (and its Cluster Agent).
    Datadog,
}

impl Agent {
    /// The prefix of the environment variables that override its settings.
    pub fn env_prefix(self) -> &'static str {
        match self {
            Self::StackState => "STS_",
            Self::Datadog => "DD_",
        }
    }

    /// What follows from the generation, said once in the report.
    fn consequences(self) -> &'static str {
        match self {
            Self::StackState => {
                "STS_* environment overrides, payload 1.0 (no timeout), the legacy rights rules, no secret_backend_remove_trailing_line_break"
            }
            Self::Datadog => {
                "DD_* environment overrides, payload 1.0 as sent until late 2025 (--payload-version 1.1 for newer agents), the rights rules of its version (both shown)"
            }
        }
    }
}

/// Where a setting's value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// The agent's default.
    Default,
    /// The agent config, at this line.
    File(usize),
    /// This environment variable.
    Env(String),
    /// This flag of this tool.
    Flag(&'static str),
}

/// A setting's value and its source.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting<T> {
    /// The value the agent uses.
    pub value: T,
    /// Where it came from.
    pub source: Source,
}

/// The Kubernetes namespace scoping of a Datadog agent's secrets.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Scoping {
    /// `secret_scope_integration_to_their_k8s_namespace`.
    pub own_namespace: bool,
    /// `secret_allowed_k8s_namespace`.
    pub allowed: Vec<String>,
}

/// The secret settings of one agent config, as that agent reads them.
#[derive(Debug)]
pub struct AgentConfig {
    /// The file.
    pub path: PathBuf,
    /// Which agent it belongs to.
    pub agent: Agent,
    /// Why that agent.
    pub why: String,
    /// `secret_backend_command` (empty when unset).
    pub command: Setting<String>,
    /// `secret_backend_arguments`.
    pub args: Setting<Vec<String>>,
    /// `secret_backend_timeout`, seconds.
    pub timeout: Setting<i64>,
    /// `secret_backend_output_max_size`, bytes.
    pub output_max_size: Setting<i64>,
    /// `secret_backend_command_allow_group_exec_perm`.
    pub allow_group_exec: Setting<bool>,
    /// `secret_backend_remove_trailing_line_break` (always off for StackState).
    pub trim_line_break: Setting<bool>,
    /// Namespace scoping (Datadog only).
    pub scoping: Scoping,
    /// The agent's `conf.d`: `confd_path`, else `conf.d` next to the file.
    pub confd: PathBuf,
    /// The file's own handles (the agent resolves its main config too).
    pub main: FileScan,
    /// Values the agent cannot use as written.
    pub problems: Vec<String>,
}

/// The agent's defaults (Datadog `pkg/config/setup`, StackState `pkg/config`).
const DEFAULT_TIMEOUT: i64 = 30;
const DEFAULT_OUTPUT_MAX: i64 = crate::exec::DEFAULT_MAX_OUTPUT as i64;

/// Reads an agent config; `env` looks an environment variable up.
pub fn load(path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<AgentConfig, String> {
    let text = scan::read_text(path)?;
    let (main, root) = scan::scan_text(path, Role::Main, &text);
    if let Err(e) = &main.found {
        return Err(format!(
            "{}: {e}: the agent would not start",
            path.display()
        ));
    }
    let entries: &[(Node, Spanned<Node>)] = match root.as_ref().map(|r| &r.value) {
        Some(Node::Map(entries)) => entries,
        None | Some(Node::Scalar(_)) => &[],
        Some(_) => {
            return Err(format!(
                "{}: not an agent config: the document is not a mapping",
                path.display()
            ));
        }
    };
    let (agent, why) = which_agent(path, entries);
    let mut r = Reader {
        entries,
        prefix: agent.env_prefix(),
        env,
        problems: Vec::new(),
    };
    let command = r.string("secret_backend_command");
    let args = r.list("secret_backend_arguments");
    let timeout = r.int("secret_backend_timeout", DEFAULT_TIMEOUT);
    let output_max_size = r.int("secret_backend_output_max_size", DEFAULT_OUTPUT_MAX);
    let allow_group_exec = r.boolean("secret_backend_command_allow_group_exec_perm");
    let confd_path = r.string("confd_path");
    let (trim_line_break, scoping) = match agent {
        Agent::Datadog => (
            r.boolean("secret_backend_remove_trailing_line_break"),
            Scoping {
                own_namespace: r
                    .boolean("secret_scope_integration_to_their_k8s_namespace")
                    .value,
                allowed: r.list("secret_allowed_k8s_namespace").value,
            },
        ),
        Agent::StackState => {
            if r.entry("secret_backend_remove_trailing_line_break")
                .is_some()
            {
                r.problems.push(
                    "secret_backend_remove_trailing_line_break is set, but StackState Agent V2 has no such setting: it keeps a value's trailing line break"
                        .into(),
                );
            }
            (unset(false), Scoping::default())
        }
    };
    let confd = if confd_path.value.is_empty() {
        path.parent().unwrap_or(Path::new(".")).join("conf.d")
    } else {
        PathBuf::from(&confd_path.value)
    };
    Ok(AgentConfig {
        path: path.to_path_buf(),
        agent,
        why,
        command,
        args,
        timeout,
        output_max_size,
        allow_group_exec,
        trim_line_break,
        scoping,
        confd,
        main,
        problems: r.problems,
    })
}

fn which_agent(path: &Path, entries: &[(Node, Spanned<Node>)]) -> (Agent, String) {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_lowercase())
        .unwrap_or_default();
    if name.contains("stackstate") {
        (Agent::StackState, format!("the file is named {name}"))
    } else if name.contains("datadog") {
        (Agent::Datadog, format!("the file is named {name}"))
    } else if entries
        .iter()
        .any(|(k, _)| matches!(k, Node::Str(s) if s == "sts_url"))
    {
        (Agent::StackState, "the file sets sts_url".into())
    } else {
        (
            Agent::Datadog,
            format!(
                "assumed: the name {name} is neither stackstate.yaml nor datadog.yaml, and it sets no sts_url"
            ),
        )
    }
}

fn unset<T>(value: T) -> Setting<T> {
    Setting {
        value,
        source: Source::Default,
    }
}

/// Reads settings from the file's top level, the environment first.
struct Reader<'a> {
    entries: &'a [(Node, Spanned<Node>)],
    prefix: &'static str,
    env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<String>,
}

/// A raw value: from the environment (variable, text) or the file.
enum Raw<'a> {
    Env(String, String),
    File(&'a Spanned<Node>),
}

impl<'a> Reader<'a> {
    fn entry(&self, key: &str) -> Option<&'a Spanned<Node>> {
        // The parser keeps the last of duplicate keys, as yaml.v2 does.
        let entries: &'a [(Node, Spanned<Node>)] = self.entries;
        entries
            .iter()
            .rev()
            .find(|(k, _)| matches!(k, Node::Str(s) if s == key))
            .map(|(_, v)| v)
    }

    fn raw(&self, key: &str) -> Option<Raw<'a>> {
        let var = format!("{}{}", self.prefix, key.to_uppercase());
        match (self.env)(&var) {
            Some(text) if !text.is_empty() => Some(Raw::Env(var, text)),
            _ => self.entry(key).map(Raw::File),
        }
    }

    /// Reads `key` with `from_env` or `from_file`; a value neither can read
    /// is the agent's zero value, and a problem.
    fn read<T>(
        &mut self,
        key: &str,
        zero: T,
        default: T,
        from_env: impl Fn(&str) -> Option<T>,
        from_file: impl Fn(&Node) -> Option<T>,
    ) -> Setting<T> {
        let (parsed, source, shown) = match self.raw(key) {
            None => return unset(default),
            Some(Raw::Env(var, text)) => (from_env(&text), Source::Env(var.clone()), text),
            Some(Raw::File(node)) => (
                from_file(&node.value),
                Source::File(node.referenced.line() as usize),
                node_text(&node.value).unwrap_or_else(|| "a list or mapping".into()),
            ),
        };
        let value = parsed.unwrap_or_else(|| {
            self.problems.push(format!(
                "{key} ({}): '{shown}' cannot be read as the agent expects: it takes the zero value",
                source_text(&source)
            ));
            zero
        });
        Setting { value, source }
    }

    fn string(&mut self, key: &str) -> Setting<String> {
        self.read(
            key,
            String::new(),
            String::new(),
            |s| Some(s.to_owned()),
            node_text,
        )
    }

    fn int(&mut self, key: &str, default: i64) -> Setting<i64> {
        self.read(key, 0, default, go_int, node_int)
    }

    fn boolean(&mut self, key: &str) -> Setting<bool> {
        self.read(key, false, false, go_bool, node_bool)
    }

    fn list(&mut self, key: &str) -> Setting<Vec<String>> {
        self.read(key, Vec::new(), Vec::new(), |s| Some(fields(s)), node_list)
    }
}

/// `strings.Fields`: split at runs of whitespace.
fn fields(s: &str) -> Vec<String> {
    s.split_whitespace().map(str::to_owned).collect()
}

/// `cast.ToString` of a YAML value.
fn node_text(n: &Node) -> Option<String> {
    match n {
        Node::Str(s) => Some(s.clone()),
        Node::Scalar(s) if s == "null" => Some(String::new()),
        Node::Scalar(s) => Some(s.clone()),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

/// `cast.ToInt` of a YAML value.
fn node_int(n: &Node) -> Option<i64> {
    match n {
        Node::Scalar(s) => match s.as_str() {
            "true" => Some(1),
            "false" | "null" => Some(0),
            // A float is truncated toward zero, as cast does.
            s => go_int(s).or_else(|| {
                s.parse::<f64>()
                    .ok()
                    .filter(|f| f.is_finite())
                    .map(|f| f.trunc() as i64)
            }),
        },
        Node::Str(s) => go_int(s),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

/// `cast.ToBool` of a YAML value. A string yaml.v2 would have read as a
/// YAML 1.1 boolean (`yes`, `on`) counts as that boolean.
fn node_bool(n: &Node) -> Option<bool> {
    match n {
        Node::Scalar(s) if s == "null" => Some(false),
        Node::Scalar(s) => go_bool(s).or_else(|| go_int(s).map(|i| i != 0)),
        Node::Str(s) => go_bool(s).or_else(|| yaml11_bool(s)),
        Node::Seq(_) | Node::Map(_) => None,
    }
}

fn yaml11_bool(s: &str) -> Option<bool> {
    match s {
        "y" | "Y" | "yes" | "Yes" | "YES" | "on" | "On" | "ON" => Some(true),
        "n" | "N" | "no" | "No" | "NO" | "off" | "Off" | "OFF" => Some(false),
        _ => None,
    }
}

/// `cast.ToStringSlice` of a YAML value: a list item by item, a string
/// split at whitespace.
fn node_list(n: &Node) -> Option<Vec<String>> {
    match n {
        Node::Seq(items) => items.iter().map(|i| node_text(&i.value)).collect(),
        Node::Str(s) => Some(fields(s)),
        Node::Scalar(s) if s == "null" => Some(Vec::new()),
        Node::Scalar(_) | Node::Map(_) => None,
    }
}

/// Go's `strconv.ParseInt(s, 0, 64)`: an optional sign, then decimal,
/// `0x` hex, `0o` or a leading `0` octal, `0b` binary.
fn go_int(s: &str) -> Option<i64> {
    let (negative, body) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s.strip_prefix('+').unwrap_or(s)),
    };
    let lower = body.to_ascii_lowercase();
    let (radix, digits) = if let Some(d) = lower.strip_prefix("0x") {
        (16, d)
    } else if let Some(d) = lower.strip_prefix("0o") {
        (8, d)
    } else if let Some(d) = lower.strip_prefix("0b") {
        (2, d)
    } else if lower.len() > 1
        && let Some(d) = lower.strip_prefix('0')
    {
        (8, d)
    } else {
        (10, lower.as_str())
    };
    if digits.is_empty() || !digits.chars().all(|c| c.is_digit(radix)) {
        return None;
    }
    let magnitude = i64::from_str_radix(digits, radix).ok()?;
    Some(if negative { -magnitude } else { magnitude })
}

/// Go's `strconv.ParseBool`.
fn go_bool(s: &str) -> Option<bool> {
    match s {
        "1" | "t" | "T" | "TRUE" | "true" | "True" => Some(true),
        "0" | "f" | "F" | "FALSE" | "false" | "False" => Some(false),
        _ => None,
    }
}

/// Where a value came from, in words.
pub fn source_text(source: &Source) -> String {
    match source {
        Source::Default => "the agent's default".into(),
        Source::File(line) => format!("agent config line {line}"),
        Source::Env(var) => format!("environment {var}"),
        Source::Flag(flag) => format!("flag {flag}"),
    }
}

impl AgentConfig {
    /// The one line saying which agent is assumed and why.
    pub fn agent_line(&self) -> String {
        let name = match self.agent {
            Agent::StackState => "StackState Agent V2",
            Agent::Datadog => "Datadog Agent",
        };
        format!(
            "agent: {name} ({}): {}",
            self.why,
            self.agent.consequences()
        )
    }
}

/// Our backends' deadline when neither `--timeout` nor the request sets one
/// (`backend_core::runner::DEFAULT_TIMEOUT`).
const BACKEND_DEFAULT_SECS: f64 = 5.0;

/// The one timeout trap of the real agents: the backend must answer before
/// the agent kills it at `agent_secs`. With a 1.0 payload (no timeout in it)
/// and no `--timeout` in `args`, our backends take 5 s; a `--timeout` in
/// `args` overrides the payload's, so it must be below the agent's too.
pub fn timeout_trap(args: &[String], agent_secs: u64, version: PayloadVersion) -> Option<String> {
    let agent = agent_secs as f64;
    let fix = if agent_secs >= 2 {
        format!("--timeout {}", agent_secs - 1)
    } else {
        "--timeout 0.5".to_owned()
    };
    match backend_timeout(args) {
        Some(ours) if ours >= agent => Some(format!(
            "timeout: secret_backend_arguments set --timeout {ours}, which is not below the agent's secret_backend_timeout ({agent_secs} s): the agent kills the backend before it answers a slow store; use {fix} in secret_backend_arguments"
        )),
        Some(_) => None,
        None if version == PayloadVersion::V1_0 && agent < BACKEND_DEFAULT_SECS => Some(format!(
            "timeout: the agent kills the backend after {agent_secs} s (secret_backend_timeout), but a 1.0 payload (StackState V2, Datadog until late 2025) carries no timeout, so this project's backends fall back to their 5 s default and are killed before they answer a slow store; add {fix} to secret_backend_arguments (below the agent's)"
        )),
        None => None,
    }
}

/// The value of `--timeout S` or `--timeout=S` in a backend's arguments.
fn backend_timeout(args: &[String]) -> Option<f64> {
    let mut it = args.iter();
    let mut found = None;
    while let Some(a) = it.next() {
        let value = match a.strip_prefix("--timeout") {
            Some("") => it.next().map(String::as_str),
            Some(rest) => rest.strip_prefix('='),
            None => None,
        };
        if let Some(v) = value.and_then(|v| v.parse::<f64>().ok()) {
            found = Some(v);
        }
    }
    found
}

/// The namespace a Datadog agent reads in a handle when a config comes
/// from Kubernetes autodiscovery (`comp/core/secrets` `shouldResolvedSecret`):
/// `k8s_secret@<namespace>/...`, else, for a handle holding `;`, whatever
/// precedes the first `/` before the first `;` (`<namespace>/<name>;<key>`,
/// the secret-generic-connector's form).
pub fn handle_namespace(handle: &str) -> Option<&str> {
    let mut ns = handle
        .strip_prefix("k8s_secret@")
        .and_then(|rest| rest.split('/').next())
        .unwrap_or("");
    if ns.is_empty()
        && let Some((before, _)) = handle.split_once(';')
    {
        ns = before.split('/').next().unwrap_or("");
    }
    (!ns.is_empty()).then_some(ns)
}

/// One warning per handle that a Datadog agent with namespace scoping
/// would skip silently in an autodiscovery config. Scoping is on when
/// `secret_scope_integration_to_their_k8s_namespace` is true (the handle's
/// namespace must be the pod's) or `secret_allowed_k8s_namespace` lists
/// namespaces (it must be one of them). Handles in `conf.d` files are not
/// affected: those configs come with no namespace.
pub fn namespace_warnings(handles: &[String], scoping: &Scoping) -> Vec<String> {
    if !scoping.own_namespace && scoping.allowed.is_empty() {
        return Vec::new();
    }
    let skip = "is left unresolved, without calling the backend (one WARN line 'secret not resolved' in the agent's log)";
    handles
        .iter()
        .filter_map(|h| {
            let ns = handle_namespace(h)?;
            let why = if !scoping.allowed.is_empty() && !scoping.allowed.iter().any(|a| a == ns) {
                format!("'{ns}' is not in secret_allowed_k8s_namespace, so in any such config it")
            } else if scoping.own_namespace {
                "with secret_scope_integration_to_their_k8s_namespace on, in a config from a pod of any other namespace it".to_owned()
            } else {
                return None;
            };
            Some(format!(
                "namespace: in a config from Kubernetes autodiscovery (pod annotations, cluster checks), a Datadog Agent or Cluster Agent reads ENC[{h}] as a secret of namespace '{ns}'; {why} {skip}"
            ))
        })
        .collect()
}

/// The `run` flags that stand for agent settings; a flag given wins over
/// the agent config.
#[derive(Debug, Default)]
pub struct Flags {
    /// `--command`.
    pub command: Option<String>,
    /// `--arg` (the whole list, when any is given).
    pub args: Vec<String>,
    /// `--timeout`.
    pub timeout: Option<u64>,
    /// `--payload-version`.
    pub version: Option<PayloadVersion>,
    /// `--output-max-size`.
    pub output_max_size: Option<usize>,
    /// `--allow-group-exec`.
    pub allow_group_exec: bool,
    /// `--remove-trailing-line-break`.
    pub trim_line_break: bool,
}

/// Longest `secret_backend_timeout` taken (a day), as `--timeout` allows.
const MAX_TIMEOUT_SECS: i64 = 86_400;

/// A setting as used, and the agent config's own when a flag overrode a
/// value the agent config (or its environment) set differently.
type Picked<T> = (Setting<T>, Option<Setting<T>>);

/// The flag's value if given, else the agent config's, else `default`.
fn pick<T: Clone + PartialEq>(
    flag: Option<T>,
    name: &'static str,
    agent: Option<&Setting<T>>,
    default: T,
) -> Picked<T> {
    match (flag, agent) {
        (Some(value), agent) => {
            let overridden = agent
                .filter(|a| a.value != value && a.source != Source::Default)
                .cloned();
            let source = Source::Flag(name);
            (Setting { value, source }, overridden)
        }
        (None, Some(a)) => (a.clone(), None),
        (None, None) => (unset(default), None),
    }
}

/// `  key = value (source; the agent's own: value, source)`.
fn said<T>(key: &str, (used, overridden): &Picked<T>, show: impl Fn(&T) -> String) -> String {
    let own = overridden
        .as_ref()
        .map(|o| {
            format!(
                "; the agent's own: {}, {}",
                show(&o.value),
                source_text(&o.source)
            )
        })
        .unwrap_or_default();
    format!(
        "  {key} = {} ({}{own})",
        show(&used.value),
        source_text(&used.source)
    )
}

/// JSON text of a string or a list of them: quoted, escaped.
fn json<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// The plan for `run`: each setting from its flag, else from the agent
/// config, else the agent's default. With an agent config, the preface says
/// which agent is assumed and where every setting came from.
pub fn settle(flags: Flags, cfg: Option<&AgentConfig>) -> Result<crate::call::Plan, String> {
    let command = pick(
        flags.command,
        "--command",
        cfg.map(|c| &c.command),
        String::new(),
    );
    if command.0.value.is_empty() {
        return Err(match cfg {
            Some(c) => format!(
                "{} sets no secret_backend_command (nor does {}SECRET_BACKEND_COMMAND): that agent resolves no secrets; give --command",
                c.path.display(),
                c.agent.env_prefix()
            ),
            None => "no --command given".into(),
        });
    }
    let args_flag = (!flags.args.is_empty()).then_some(flags.args);
    let args = pick(args_flag, "--arg", cfg.map(|c| &c.args), Vec::new());
    let timeout = pick(
        flags.timeout.and_then(|t| i64::try_from(t).ok()),
        "--timeout",
        cfg.map(|c| &c.timeout),
        DEFAULT_TIMEOUT,
    );
    let timeout_secs = u64::try_from(timeout.0.value)
        .ok()
        .filter(|&t| t >= 1 && t <= MAX_TIMEOUT_SECS as u64)
        .ok_or_else(|| {
            format!(
                "secret_backend_timeout is {} ({}): the agent would kill every call at once; set whole seconds between 1 and {MAX_TIMEOUT_SECS}",
                timeout.0.value,
                source_text(&timeout.0.source)
            )
        })?;
    let max_output = pick(
        flags.output_max_size.and_then(|m| i64::try_from(m).ok()),
        "--output-max-size",
        cfg.map(|c| &c.output_max_size),
        DEFAULT_OUTPUT_MAX,
    );
    let max_output_bytes = usize::try_from(max_output.0.value).map_err(|_| {
        format!(
            "secret_backend_output_max_size is {} ({}): the agent would refuse every reply; set a number of bytes",
            max_output.0.value,
            source_text(&max_output.0.source)
        )
    })?;
    let group = pick(
        flags.allow_group_exec.then_some(true),
        "--allow-group-exec",
        cfg.map(|c| &c.allow_group_exec),
        false,
    );
    let trim = pick(
        flags.trim_line_break.then_some(true),
        "--remove-trailing-line-break",
        cfg.map(|c| &c.trim_line_break),
        false,
    );
    let mut preface = Vec::new();
    if let Some(c) = cfg {
        preface.push(format!("agent config: {}", c.path.display()));
        preface.push(c.agent_line());
        preface.extend([
            said("secret_backend_command", &command, json),
            said("secret_backend_arguments", &args, json),
            said("secret_backend_timeout", &timeout, i64::to_string),
            said(
                "secret_backend_output_max_size",
                &max_output,
                i64::to_string,
            ),
            said(
                "secret_backend_command_allow_group_exec_perm",
                &group,
                bool::to_string,
            ),
        ]);
        // StackState V2 has no such setting; only a flag puts it in play.
        if c.agent == Agent::Datadog || trim.0.source != Source::Default {
            preface.push(said(
                "secret_backend_remove_trailing_line_break",
                &trim,
                bool::to_string,
            ));
        }
    }
    Ok(crate::call::Plan {
        command: command.0.value,
        args: args.0.value,
        timeout_secs,
        version: flags.version.unwrap_or(PayloadVersion::V1_0),
        max_output: max_output_bytes,
        allow_group_exec: group.0.value,
        trim_line_break: trim.0.value,
        preface,
        warnings: cfg.map(|c| c.problems.clone()).unwrap_or_default(),
        handles: Vec::new(),
        files: Vec::new(),
        aliases: crate::aliases::Known::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load_text(name: &str, yaml: &str, env: &[(&str, &str)]) -> AgentConfig {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join(name);
        std::fs::write(&p, yaml).unwrap();
        let env: Vec<(String, String)> = env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        let lookup = move |k: &str| env.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        load(&p, &lookup).unwrap()
    }

    #[test]
    fn go_numbers_and_booleans() {
        assert_eq!(go_int("30"), Some(30));
        assert_eq!(go_int("-3"), Some(-3));
        assert_eq!(go_int("+7"), Some(7));
        assert_eq!(go_int("0x10"), Some(16));
        assert_eq!(go_int("010"), Some(8));
        assert_eq!(go_int("0b11"), Some(3));
        assert_eq!(go_int("0"), Some(0));
        for bad in ["", "abc", "1.5", " 3", "0x", "--1", "09", "+-1"] {
            assert_eq!(go_int(bad), None, "{bad}");
        }
        assert_eq!(go_bool("True"), Some(true));
        assert_eq!(go_bool("0"), Some(false));
        assert_eq!(go_bool("yes"), None);
    }

    #[test]
    fn values_are_read_as_the_agent_casts_them() {
        let c = load_text(
            "datadog.yaml",
            "secret_backend_command: /bin/b\nsecret_backend_arguments: --a  b\nsecret_backend_timeout: \"0x0a\"\nsecret_backend_output_max_size: 2.9\nsecret_backend_command_allow_group_exec_perm: yes\nsecret_backend_remove_trailing_line_break: 1\n",
            &[],
        );
        assert_eq!(c.command.value, "/bin/b");
        assert_eq!(c.command.source, Source::File(1));
        assert_eq!(c.args.value, ["--a", "b"]);
        assert_eq!(c.timeout.value, 10);
        assert_eq!(c.output_max_size.value, 2);
        assert!(c.allow_group_exec.value);
        assert!(c.trim_line_break.value);
        assert!(c.problems.is_empty(), "{:?}", c.problems);
        // A list keeps its items whole; null is an empty string.
        let c = load_text(
            "datadog.yaml",
            "secret_backend_arguments: [\"two words\", 3, null]\nsecret_backend_timeout: soon\n",
            &[],
        );
        assert_eq!(c.args.value, ["two words", "3", ""]);
        assert_eq!(c.timeout.value, 0);
        assert_eq!(
            c.problems,
            [
                "secret_backend_timeout (agent config line 2): 'soon' cannot be read as the agent expects: it takes the zero value"
            ]
        );
    }

    #[test]
    fn the_environment_wins_unless_empty() {
        let yaml = "secret_backend_timeout: 10\nsecret_backend_arguments: [--x]\n";
        let c = load_text(
            "stackstate.yaml",
            yaml,
            &[
                ("STS_SECRET_BACKEND_TIMEOUT", "3"),
                ("STS_SECRET_BACKEND_ARGUMENTS", ""),
                ("DD_SECRET_BACKEND_COMMAND", "/not/read"),
            ],
        );
        assert_eq!(c.agent, Agent::StackState);
        assert_eq!(c.timeout.value, 3);
        assert_eq!(
            c.timeout.source,
            Source::Env("STS_SECRET_BACKEND_TIMEOUT".into())
        );
        assert_eq!(c.args.value, ["--x"]);
        assert_eq!(c.command.value, "");
        let c = load_text(
            "agent.yaml",
            "sts_url: http://x\n",
            &[("STS_SECRET_BACKEND_COMMAND", "/b")],
        );
        assert_eq!(
            (c.agent, c.command.value.as_str()),
            (Agent::StackState, "/b")
        );
        let c = load_text("agent.yaml", "", &[]);
        assert_eq!(c.agent, Agent::Datadog);
        assert_eq!(c.timeout, unset(30));
    }

    #[test]
    fn timeout_traps() {
        let args = |a: &[&str]| a.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
        let v10 = PayloadVersion::V1_0;
        assert!(
            timeout_trap(&[], 3, v10)
                .unwrap()
                .contains("add --timeout 2")
        );
        assert!(timeout_trap(&[], 1, v10).unwrap().contains("--timeout 0.5"));
        assert_eq!(timeout_trap(&[], 5, v10), None);
        assert_eq!(timeout_trap(&[], 3, PayloadVersion::V1_1), None);
        assert_eq!(timeout_trap(&args(&["--timeout", "2"]), 3, v10), None);
        assert_eq!(timeout_trap(&args(&["--timeout=2.5"]), 3, v10), None);
        assert!(timeout_trap(&args(&["--timeout", "3"]), 3, v10).is_some());
        assert!(timeout_trap(&args(&["--timeout=40"]), 30, PayloadVersion::V1_1).is_some());
        assert_eq!(backend_timeout(&args(&["--timeouts", "1"])), None);
    }

    #[test]
    fn namespaces_as_the_datadog_resolver_reads_them() {
        assert_eq!(handle_namespace("secret/db;password"), Some("secret"));
        assert_eq!(handle_namespace("prod/db-creds;user"), Some("prod"));
        assert_eq!(
            handle_namespace("postgres.json;password"),
            Some("postgres.json")
        );
        assert_eq!(handle_namespace("k8s_secret@ns1/name/key"), Some("ns1"));
        assert_eq!(handle_namespace("k8s_secret@/x;y"), Some("k8s_secret@"));
        assert_eq!(handle_namespace("/abs;key"), None);
        assert_eq!(handle_namespace("plain"), None);
        let hs = vec![
            "secret/db;pw".to_owned(),
            "plain".to_owned(),
            "ok/x;k".to_owned(),
        ];
        let scope = Scoping {
            own_namespace: true,
            allowed: Vec::new(),
        };
        assert_eq!(namespace_warnings(&hs, &scope).len(), 2);
        let allowed = Scoping {
            own_namespace: false,
            allowed: vec!["ok".into()],
        };
        let w = namespace_warnings(&hs, &allowed);
        assert_eq!(w.len(), 1);
        assert!(
            w[0].contains("'secret' is not in secret_allowed_k8s_namespace"),
            "{w:?}"
        );
        assert!(namespace_warnings(&hs, &Scoping::default()).is_empty());
    }
}
