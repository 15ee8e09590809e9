//! `run --agent-config` against StackState- and Datadog-style agent trees
//! made here: the agent's settings and environment overrides, the handles
//! of its config and conf.d, the warnings (timeout, namespace scoping), and
//! the flags that win over all of it.

use std::path::{Path, PathBuf};

use backend_tests::files::private_file;
use backend_tests::{Cmd, Done};

use crate::common::{BIN, NO_HANG, fifo, has_line, out, script};

/// Runs the checker with exactly `env` as the agent's variables: any
/// `STS_*` or `DD_*` of the test's own environment is removed first.
fn check_env(args: &[&str], env: &[(&str, &str)]) -> Done {
    let mut cmd = Cmd::new(BIN).args(args).kill_after(NO_HANG);
    for (k, _) in std::env::vars() {
        if k.starts_with("STS_") || k.starts_with("DD_") {
            cmd = cmd.env_remove(&k);
        }
    }
    for (k, v) in env {
        cmd = cmd.env(k, v);
    }
    cmd.run()
}

/// An agent tree: `<dir>/<agent>/<config>` with a conf.d of two checks.
struct Tree {
    dir: tempfile::TempDir,
    config: PathBuf,
    confd: PathBuf,
}

impl Tree {
    fn new(agent_dir: &str, config_name: &str, config: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let agent = dir.path().join(agent_dir);
        let confd = agent.join("conf.d");
        private_file(
            &confd,
            "postgres.d/conf.yaml",
            "instances:\n  - user: ENC[db/user]\n    password: \"ENC[secret/db;password]\"\n",
        );
        private_file(
            &confd,
            "redis.yaml",
            "instances:\n  - password: ENC[redis]\n",
        );
        let config = private_file(&agent, config_name, config);
        Self { dir, config, confd }
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }

    /// A backend that records its argv and stdin, and answers every handle
    /// these tests ask for (the agent ignores the extra ones).
    fn recorder(&self, name: &str) -> PathBuf {
        script(
            self.path(),
            name,
            &format!(
                "cat > '{0}.stdin'\nprintf '%s\\n' \"$@\" > '{0}.argv'\nprintf '%s' '{REPLY}'",
                self.path().join(name).display(),
            ),
        )
    }

    fn seen(&self, name: &str, what: &str) -> String {
        std::fs::read_to_string(self.path().join(format!("{name}.{what}"))).unwrap()
    }

    fn run(&self, extra: &[&str], env: &[(&str, &str)]) -> Done {
        let mut args = vec!["run", "--agent-config", self.config.to_str().unwrap()];
        args.extend_from_slice(extra);
        check_env(&args, env)
    }
}

/// Every handle of these trees and tests, resolved to `resolved`.
const REPLY: &str = r#"{"api_key":{"value":"resolved"},"db/user":{"value":"resolved"},"secret/db;password":{"value":"resolved"},"redis":{"value":"resolved"},"h1":{"value":"resolved"},"k":{"value":"resolved"}}"#;

fn warnings(o: &str) -> Vec<&str> {
    o.lines().filter(|l| l.starts_with("WARNING: ")).collect()
}

const STS_LINE: &str = "agent: StackState Agent V2 (the file is named stackstate.yaml): STS_* environment overrides, payload 1.0 (no timeout), the legacy rights rules, no secret_backend_remove_trailing_line_break";
const DD_LINE: &str = "agent: Datadog Agent (the file is named datadog.yaml): DD_* environment overrides, payload 1.0 as sent until late 2025 (--payload-version 1.1 for newer agents), the rights rules of its version (both shown)";

fn stackstate_tree(settings: &str) -> (Tree, PathBuf) {
    let t = Tree::new("stackstate-agent", "stackstate.yaml", "");
    let rec = t.recorder("rec");
    let text = format!(
        "sts_url: http://localhost:7077\napi_key: ENC[api_key]\nsecret_backend_command: {}\n{settings}",
        rec.display()
    );
    private_file(t.config.parent().unwrap(), "stackstate.yaml", &text);
    (t, rec)
}

#[test]
fn a_stackstate_config_drives_the_call() {
    let (t, rec) = stackstate_tree(
        "secret_backend_arguments:\n  - --config\n  - /etc/secret-backend/vault.yaml\nsecret_backend_timeout: 10\n",
    );
    let o = out(&t.run(&[], &[]), 0);
    has_line(&o, &format!("agent config: {}", t.config.display()));
    has_line(&o, STS_LINE);
    has_line(
        &o,
        &format!(
            "secret_backend_command = \"{}\" (agent config line 3)",
            rec.display()
        ),
    );
    has_line(
        &o,
        "secret_backend_arguments = [\"--config\",\"/etc/secret-backend/vault.yaml\"] (agent config line 5)",
    );
    has_line(&o, "secret_backend_timeout = 10 (agent config line 7)");
    has_line(
        &o,
        "secret_backend_output_max_size = 1048576 (the agent's default)",
    );
    has_line(
        &o,
        &format!("handles from: the agent config and {}", t.confd.display()),
    );
    assert_eq!(
        t.seen("rec", "argv"),
        "--config\n/etc/secret-backend/vault.yaml\n"
    );
    // The agent's own config first, then conf.d in the agent's order.
    assert_eq!(
        t.seen("rec", "stdin"),
        r#"{"secrets":["api_key","db/user","secret/db;password","redis"],"version":"1.0"}"#
    );
    for f in [
        t.config.clone(),
        t.confd.join("postgres.d/conf.yaml"),
        t.confd.join("redis.yaml"),
    ] {
        has_line(&o, &format!("ok       {}", f.display()));
    }
    // Nor does it know this setting: not listed.
    assert!(
        !o.contains("secret_backend_remove_trailing_line_break ="),
        "{o}"
    );
    // StackState knows no namespace scoping: no warning at all.
    assert!(warnings(&o).is_empty(), "{o}");
    has_line(&o, "verdict: the agent resolves every handle");
}

#[test]
fn environment_overrides_apply_as_the_agent_applies_them() {
    let (t, _) = stackstate_tree("secret_backend_timeout: 10\nsecret_backend_arguments: [--x]\n");
    let o = out(
        &t.run(
            &[],
            &[
                // A list from the environment is split at whitespace.
                ("STS_SECRET_BACKEND_ARGUMENTS", " --log-level  debug "),
                ("STS_SECRET_BACKEND_TIMEOUT", "3"),
                // Empty is unset; Datadog's prefix is not StackState's.
                ("STS_SECRET_BACKEND_COMMAND", ""),
                ("DD_SECRET_BACKEND_TIMEOUT", "20"),
            ],
        ),
        0,
    );
    assert_eq!(t.seen("rec", "argv"), "--log-level\ndebug\n");
    has_line(
        &o,
        "secret_backend_arguments = [\"--log-level\",\"debug\"] (environment STS_SECRET_BACKEND_ARGUMENTS)",
    );
    has_line(
        &o,
        "secret_backend_timeout = 3 (environment STS_SECRET_BACKEND_TIMEOUT)",
    );
    // The trap: 3 s from the agent, no timeout in a 1.0 payload, our
    // backends' 5 s default.
    assert_eq!(
        warnings(&o),
        [
            "WARNING: timeout: the agent kills the backend after 3 s (secret_backend_timeout), but a 1.0 payload (StackState V2, Datadog until late 2025) carries no timeout, so this project's backends fall back to their 5 s default and are killed before they answer a slow store; add --timeout 2 to secret_backend_arguments (below the agent's)"
        ],
        "{o}"
    );
    // The fix silences it; a --timeout that is not below the agent's does not.
    let env = |args| {
        [
            ("STS_SECRET_BACKEND_ARGUMENTS", args),
            ("STS_SECRET_BACKEND_TIMEOUT", "3"),
        ]
    };
    let o = out(&t.run(&[], &env("--timeout 2")), 0);
    assert!(warnings(&o).is_empty(), "{o}");
    let o = out(&t.run(&[], &env("--timeout=3")), 0);
    assert_eq!(
        warnings(&o),
        [
            "WARNING: timeout: secret_backend_arguments set --timeout 3, which is not below the agent's secret_backend_timeout (3 s): the agent kills the backend before it answers a slow store; use --timeout 2 in secret_backend_arguments"
        ],
        "{o}"
    );
    // A value the agent cannot read is its zero value: said, then refused.
    let done = t.run(&[], &[("STS_SECRET_BACKEND_TIMEOUT", "soon")]);
    done.expect_code(2);
    assert!(
        done.stderr.contains(
            "secret_backend_timeout is 0 (environment STS_SECRET_BACKEND_TIMEOUT): the agent would kill every call at once"
        ),
        "{done}"
    );
}

fn datadog_tree(settings: &str) -> Tree {
    let t = Tree::new("datadog-agent", "datadog.yaml", "");
    let rec = t.recorder("rec");
    let text = format!(
        "api_key: 0123\nsecret_backend_command: {}\n{settings}",
        rec.display()
    );
    private_file(t.config.parent().unwrap(), "datadog.yaml", &text);
    t
}

#[test]
fn namespace_scoping_warns_of_handles_skipped_silently() {
    let t = datadog_tree("secret_scope_integration_to_their_k8s_namespace: true\n");
    let o = out(&t.run(&[], &[]), 0);
    has_line(&o, DD_LINE);
    // Only the handle with ';' is read as a namespace's secret.
    assert_eq!(
        warnings(&o),
        [
            "WARNING: namespace: in a config from Kubernetes autodiscovery (pod annotations, cluster checks), a Datadog Agent or Cluster Agent reads ENC[secret/db;password] as a secret of namespace 'secret'; with secret_scope_integration_to_their_k8s_namespace on, in a config from a pod of any other namespace it is left unresolved, without calling the backend (one WARN line 'secret not resolved' in the agent's log)"
        ],
        "{o}"
    );
    // The environment turns it off; an allow list that names the namespace is fine.
    let off = (
        "DD_SECRET_SCOPE_INTEGRATION_TO_THEIR_K8S_NAMESPACE",
        "false",
    );
    let o = out(
        &t.run(
            &[],
            &[off, ("DD_SECRET_ALLOWED_K8S_NAMESPACE", "other secret")],
        ),
        0,
    );
    assert!(warnings(&o).is_empty(), "{o}");
    let o = out(
        &t.run(&[], &[off, ("DD_SECRET_ALLOWED_K8S_NAMESPACE", "other")]),
        0,
    );
    let w = warnings(&o);
    assert_eq!(w.len(), 1, "{o}");
    assert!(
        w[0].contains("'secret' is not in secret_allowed_k8s_namespace, so in any such config it is left unresolved"),
        "{o}"
    );
    // StackState has no such setting: the same key there warns of nothing.
    let (sts, _) = stackstate_tree("secret_scope_integration_to_their_k8s_namespace: true\n");
    assert!(warnings(&out(&sts.run(&[], &[]), 0)).is_empty());
}

#[test]
fn trailing_line_breaks_follow_the_agents_setting() {
    let t = datadog_tree("");
    let b = script(
        t.path(),
        "newlines",
        r#"cat >/dev/null; printf '%s' '{"a":{"value":"v\n"},"b":{"value":"\r\n"}}'"#,
    );
    let cmd = b.to_str().unwrap();
    let o = out(&t.run(&["--command", cmd, "a", "b"], &[]), 0);
    has_line(&o, "ok    ENC[a] = ****** (2 chars)");
    assert!(o.contains("the value ends with a line break"), "{o}");
    // Datadog strips them when told to, before its emptiness check.
    let on = [("DD_SECRET_BACKEND_REMOVE_TRAILING_LINE_BREAK", "true")];
    let o = out(&t.run(&["--command", cmd, "a", "b"], &on), 1);
    has_line(
        &o,
        "secret_backend_remove_trailing_line_break = true (environment DD_SECRET_BACKEND_REMOVE_TRAILING_LINE_BREAK)",
    );
    has_line(&o, "ok    ENC[a] = ****** (1 chars)");
    has_line(&o, "FAIL  ENC[b]: decrypted secret for 'b' is empty");
    assert!(!o.contains("ends with a line break"), "{o}");
    // StackState V2 has no such setting: said, and the break is kept.
    let (sts, _) = stackstate_tree("secret_backend_remove_trailing_line_break: true\n");
    let o = out(&sts.run(&["--command", cmd, "a", "b"], &[]), 0);
    assert_eq!(
        warnings(&o),
        [
            "WARNING: secret_backend_remove_trailing_line_break is set, but StackState Agent V2 has no such setting: it keeps a value's trailing line break"
        ],
        "{o}"
    );
    has_line(&o, "ok    ENC[a] = ****** (2 chars)");
}

#[test]
fn explicit_flags_win() {
    let (t, rec) = stackstate_tree(
        "secret_backend_arguments: [--config, /etc/x.yaml]\nsecret_backend_timeout: 3\n",
    );
    let other = t.recorder("other");
    let o = out(
        &t.run(
            &[
                "--command",
                other.to_str().unwrap(),
                "--arg",
                "--other",
                "--timeout",
                "7",
                "--payload-version",
                "1.1",
                "--output-max-size",
                "100000",
                "--",
                "h1",
            ],
            &[("STS_SECRET_BACKEND_OUTPUT_MAX_SIZE", "50")],
        ),
        0,
    );
    assert_eq!(t.seen("other", "argv"), "--other\n");
    assert_eq!(
        t.seen("other", "stdin"),
        r#"{"secret_backend_timeout":7,"secrets":["h1"],"version":"1.1"}"#
    );
    assert!(!t.path().join("rec.stdin").exists());
    has_line(
        &o,
        &format!(
            "secret_backend_command = \"{}\" (flag --command; the agent's own: \"{}\", agent config line 3)",
            other.display(),
            rec.display()
        ),
    );
    has_line(
        &o,
        "secret_backend_timeout = 7 (flag --timeout; the agent's own: 3, agent config line 5)",
    );
    has_line(
        &o,
        "secret_backend_output_max_size = 100000 (flag --output-max-size; the agent's own: 50, environment STS_SECRET_BACKEND_OUTPUT_MAX_SIZE)",
    );
    // Handles named on the command line replace the agent's conf.d.
    assert!(!o.contains("config files:"), "{o}");
    assert!(warnings(&o).is_empty(), "{o}");
}

#[test]
fn the_agent_config_itself_can_be_wrong() {
    // No command anywhere: the agent resolves nothing.
    let t = Tree::new("stackstate-agent", "stackstate.yaml", "api_key: x\n");
    let done = t.run(&[], &[]);
    done.expect_code(2);
    assert!(
        done.stderr.contains(
            "sets no secret_backend_command (nor does STS_SECRET_BACKEND_COMMAND): that agent resolves no secrets; give --command"
        ),
        "{done}"
    );
    // A file named otherwise is StackState's when it sets sts_url.
    let t = Tree::new("agent", "agent.yaml", "sts_url: http://x\n");
    let d = t.recorder("rec");
    let o = out(&t.run(&["--command", d.to_str().unwrap()], &[]), 0);
    has_line(
        &o,
        &STS_LINE.replace("the file is named stackstate.yaml", "the file sets sts_url"),
    );
    // No conf.d: only the config's own handles.
    let lone = tempfile::tempdir().unwrap();
    let cfg = private_file(lone.path(), "datadog.yaml", "api_key: ENC[k]\n");
    let o = out(
        &check_env(
            &[
                "run",
                "--agent-config",
                cfg.to_str().unwrap(),
                "--command",
                d.to_str().unwrap(),
            ],
            &[],
        ),
        0,
    );
    has_line(
        &o,
        &format!(
            "handles from: the agent config only ({} is not a directory)",
            lone.path().join("conf.d").display()
        ),
    );
    has_line(&o, "ok    ENC[k] = ****** (8 chars)");
    // A missing or unparsable config is a usage error.
    let done = check_env(&["run", "--agent-config", "/nonexistent/datadog.yaml"], &[]);
    done.expect_code(2);
    assert!(done.stderr.contains("no such file or directory"), "{done}");
    private_file(lone.path(), "datadog.yaml", "a: [SECRETVALUE\n");
    let done = check_env(&["run", "--agent-config", cfg.to_str().unwrap()], &[]);
    done.expect_code(2);
    assert!(done.stderr.contains("the agent would not start"), "{done}");
    assert!(!done.stderr.contains("SECRETVALUE"), "{done}");
}

/// The agent config and its conf.d are read without ever waiting on a FIFO.
#[test]
fn fifos_are_never_waited_on() {
    let t = datadog_tree("");
    let pipe = fifo(&t.confd, "pipe.d/conf.yaml");
    let o = out(&t.run(&[], &[]), 1);
    has_line(
        &o,
        &format!(
            "NOT LOADED  {}: not a regular file (a FIFO, socket or device): not read (the agent's own reader would wait forever on a FIFO)",
            pipe.display()
        ),
    );
    has_line(
        &o,
        "verdict: 1 config file(s) the agent cannot load (see above); in the reply, the agent resolves every handle",
    );
    // As the agent config itself.
    let named = fifo(t.path(), "datadog.yaml");
    let done = check_env(&["run", "--agent-config", named.to_str().unwrap()], &[]);
    done.expect_code(2);
    assert!(
        done.stderr
            .contains("not a regular file (a FIFO, socket or device)"),
        "{done}"
    );
}
