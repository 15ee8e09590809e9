//! `scan` over YAML files and directories made here: the agent's handle
//! rule, locations, and which files the agent reads at all.

use backend_tests::Cmd;
use backend_tests::files::private_file;

use crate::common::{self, BIN, NO_HANG, check, fifo, has_line, out};

#[test]
fn the_handle_rule_and_locations() {
    let d = tempfile::tempdir().unwrap();
    let yaml = r#"init_config:
  shared:
    token: ENC[init/token]
instances:
  - host: db.example
    port: 5432
    enabled: true
    ratio: 1.5
    password: "  ENC[db/password]	"
    plain: db-ENC[x]
    not_quite: ENC[x] trailing
    ENC[looks/like/a/key]: a value
    "ENC[quoted/key]": 1
    nested:
      deeper:
        - [a, "ENC[list/inner]"]
        - {k: 'ENC[flow/map]'}
    "odd.key": ENC[odd]
    empty: ENC[]
    brackets: ENC[]]]]
    number_handle: ENC[12345]
  - password: ENC[db/password]
logs:
  - type: file
    service: ENC[logs/service]
ad_identifiers:
  - ENC[never]
"#;
    let p = private_file(d.path(), "conf.yaml", yaml);
    let o = out(&check(["scan", p.to_str().unwrap()]), 0);
    let want = [
        "init_config.shared.token (line 3): ENC[init/token]",
        "instances[0].password (line 9): ENC[db/password]  [padded with spaces or tabs: only newer Datadog agents trim them; StackState V2 and older Datadog agents take the text as it is]",
        "instances[0].nested.deeper[0][1] (line 16): ENC[list/inner]",
        "instances[0].nested.deeper[1].k (line 17): ENC[flow/map]",
        "instances[0][\"odd.key\"] (line 18): ENC[odd]",
        "instances[0].empty (line 19): ENC[]",
        "instances[0].brackets (line 20): ENC[]]]]",
        "instances[0].number_handle (line 21): ENC[12345]",
        "instances[1].password (line 22): ENC[db/password]",
        "logs[0].service (line 25): ENC[logs/service]",
        "ad_identifiers[0] (line 27): ENC[never]  [never resolved: the agent resolves only init_config, instances, jmx_metrics and logs]",
    ];
    let got: Vec<&str> = o
        .lines()
        .filter(|l| l.starts_with("  "))
        .map(str::trim)
        .collect();
    assert_eq!(got, want, "{o}");
    for absent in ["x]", "looks/like/a/key", "quoted/key", "5432", "true"] {
        assert!(!o.contains(&format!("ENC[{absent}")), "{absent}: {o}");
    }
    // 11 found, ENC[db/password] twice, ENC[never] not asked for.
    has_line(
        &o,
        "11 handle(s) in 1 file(s); 9 distinct handle(s) the agent would ask for",
    );
}

#[test]
fn main_config_resolves_everywhere() {
    let d = tempfile::tempdir().unwrap();
    let p = private_file(
        d.path(),
        "datadog.yaml",
        "api_key: ENC[api]\nproxy:\n  https: ENC[proxy]\n",
    );
    let o = out(&check(["scan", p.to_str().unwrap()]), 0);
    has_line(&o, &format!("{} (main config)", p.display()));
    has_line(&o, "api_key (line 1): ENC[api]");
    has_line(&o, "proxy.https (line 3): ENC[proxy]");
}

#[test]
fn conf_d_is_read_as_the_agent_reads_it() {
    let d = tempfile::tempdir().unwrap();
    let root = d.path();
    private_file(root, "datadog.yaml", "api_key: ENC[api]\n");
    let c = "conf.d";
    private_file(
        root,
        &format!("{c}/redis.yaml"),
        "instances:\n  - password: ENC[top]\n",
    );
    private_file(
        root,
        &format!("{c}/http.yml.default"),
        "instances:\n  - token: ENC[default/http]\n",
    );
    private_file(
        root,
        &format!("{c}/postgres.d/conf.yaml"),
        "instances:\n  - password: ENC[pg]\n",
    );
    private_file(
        root,
        &format!("{c}/postgres.d/conf.yaml.default"),
        "instances:\n  - password: ENC[pg/default]\n",
    );
    private_file(
        root,
        &format!("{c}/postgres.d/conf.yaml.example"),
        "instances:\n  - password: ENC[example]\n",
    );
    private_file(
        root,
        &format!("{c}/postgres.d/metrics.yaml"),
        "jmx_metrics:\n  - user: ENC[metrics]\n",
    );
    private_file(
        root,
        &format!("{c}/postgres.d/deeper/conf.yaml"),
        "instances:\n  - password: ENC[deep]\n",
    );
    private_file(
        root,
        &format!("{c}/mysql/conf.yaml"),
        "instances:\n  - password: ENC[no-dot-d]\n",
    );
    private_file(
        root,
        &format!("{c}/metrics.yaml"),
        "jmx_metrics:\n  - user: ENC[root-metrics]\n",
    );
    private_file(root, &format!("{c}/empty.yaml"), "");
    private_file(
        root,
        &format!("{c}/comments.yaml"),
        "# instances:\n#   - password: ENC[commented]\n",
    );
    private_file(
        root,
        &format!("{c}/noinst.yaml"),
        "init_config:\n  key: ENC[no-instances]\n",
    );
    private_file(root, &format!("{c}/README.md"), "ENC[readme]\n");
    let o = out(&check(["scan", root.to_str().unwrap()]), 1);
    let shown = |rel: &str| format!("{}", root.join(rel).display());
    for found in [
        "ENC[api]",
        "ENC[top]",
        "ENC[default/http]",
        "ENC[pg]",
        "ENC[metrics]",
        "ENC[no-instances]",
    ] {
        assert!(o.contains(found), "{found}: {o}");
    }
    for hidden in [
        "pg/default]",
        "example]",
        "deep]",
        "no-dot-d]",
        "root-metrics]",
        "readme]",
    ] {
        assert!(!o.contains(&format!("ENC[{hidden}")), "{hidden}: {o}");
    }
    has_line(
        &o,
        &format!(
            "skipped {}: not loaded by the agent: check 'postgres' has a non-default config file",
            shown("conf.d/postgres.d/conf.yaml.default")
        ),
    );
    has_line(
        &o,
        &format!(
            "skipped {}: not read by the agent: only .yaml, .yml, .yaml.default and .yml.default files are",
            shown("conf.d/postgres.d/conf.yaml.example")
        ),
    );
    has_line(
        &o,
        &format!(
            "skipped {}: not read by the agent: it reads one level of <check>.d directories",
            shown("conf.d/postgres.d/deeper")
        ),
    );
    has_line(
        &o,
        &format!(
            "skipped {}: not read by the agent: a check directory's name must end in .d",
            shown("conf.d/mysql")
        ),
    );
    has_line(
        &o,
        &format!(
            "skipped {}: not read by the agent: metrics files belong in a <check>.d directory",
            shown("conf.d/metrics.yaml")
        ),
    );
    // Read but not loaded: exit 1.
    let lines: Vec<&str> = o.lines().collect();
    let at = |name: &str| {
        lines
            .iter()
            .position(|l| l.starts_with(&shown(name)))
            .unwrap_or_else(|| panic!("{name}: {o}"))
    };
    assert_eq!(
        lines[at("conf.d/empty.yaml") + 1].trim(),
        "empty: the agent skips it"
    );
    for name in ["conf.d/noinst.yaml", "conf.d/comments.yaml"] {
        assert_eq!(
            lines[at(name) + 1].trim(),
            "NOT LOADED by the agent: Configuration file contains no valid instances",
            "{name}: {o}"
        );
    }
    // An empty file alone is no reason to fail.
    let only_empty = tempfile::tempdir().unwrap();
    private_file(only_empty.path(), "empty.yaml", "");
    out(&check(["scan", only_empty.path().to_str().unwrap()]), 0);
    // Main config first, then conf.d in name order.
    assert!(at("datadog.yaml") < at("conf.d/empty.yaml"));
    assert!(at("conf.d/http.yml.default") < at("conf.d/postgres.d/conf.yaml"));
}

#[test]
fn broken_yaml_is_reported_without_quoting_it() {
    let d = tempfile::tempdir().unwrap();
    let p = private_file(
        d.path(),
        "bad.yaml",
        "instances:\n  - password: [SECRETVALUE\n",
    );
    let o = out(&check(["scan", p.to_str().unwrap()]), 1);
    assert!(
        o.contains("NOT LOADED by the agent: cannot parse it:"),
        "{o}"
    );
    assert!(!o.contains("SECRETVALUE"), "{o}");
}

#[test]
fn an_alias_bomb_is_refused_not_expanded() {
    let d = tempfile::tempdir().unwrap();
    // A duplicate key first: yaml.v2 lets it pass, and it must not hide the
    // bomb from the budget.
    let bomb = backend_tests::yaml_bomb("k: 1\nk: 2\n", 4);
    let p = private_file(d.path(), "bomb.yaml", &bomb);
    let done = backend_tests::Cmd::new(common::BIN)
        .args(["scan", p.to_str().unwrap()])
        .kill_after(std::time::Duration::from_secs(30))
        .run();
    let o = out(&done, 1);
    assert!(o.contains("over the parser's limits"), "{o}");
}

#[test]
fn unreadable_paths_are_usage_errors() {
    let d = tempfile::tempdir().unwrap();
    let missing = d.path().join("missing.yaml");
    let done = check(["scan", missing.to_str().unwrap()]);
    done.expect_code(2);
    assert!(done.stderr.contains("no such file or directory"), "{done}");
    check(["scan"]).expect_code(2);
    // Oversized files are refused, not read whole.
    let big = private_file(d.path(), "big.yaml", &"# x\n".repeat(1_100_000));
    let o = out(&check(["scan", big.to_str().unwrap()]), 1);
    assert!(o.contains("larger than 4194304 bytes"), "{o}");
}

/// A FIFO, a socket or a device where a config file would be is reported,
/// never waited on: a plain open of a FIFO blocks until a writer comes.
#[test]
fn special_files_are_reported_not_waited_on() {
    let d = tempfile::tempdir().unwrap();
    let confd = d.path().join("conf.d");
    private_file(&confd, "good.yaml", "instances:\n  - password: ENC[ok]\n");
    let specials = [
        fifo(d.path(), "datadog.yaml"),
        fifo(&confd, "pipe.yaml"),
        fifo(&confd, "pg.d/conf.yaml"),
    ];
    let sock = confd.join("sock.yaml");
    let _listener = std::os::unix::net::UnixListener::bind(&sock).unwrap();
    let scan = |path: &std::path::Path| {
        Cmd::new(BIN)
            .args(["scan", path.to_str().unwrap()])
            .kill_after(NO_HANG)
            .run()
    };
    let o = out(&scan(d.path()), 1);
    for p in specials.iter().chain([&sock]) {
        has_line(
            &o,
            &format!(
                "NOT LOADED by the agent: {}: not a regular file (a FIFO, socket or device): not read (the agent's own reader would wait forever on a FIFO)",
                p.display()
            ),
        );
    }
    has_line(&o, "instances[0].password (line 2): ENC[ok]");
    // Named on the command line, it is refused the same way.
    let o = out(&scan(&specials[1]), 1);
    assert!(
        o.contains("not a regular file (a FIFO, socket or device)"),
        "{o}"
    );
    let o = out(&scan(std::path::Path::new("/dev/zero")), 1);
    assert!(o.contains("/dev/zero: not a regular file"), "{o}");
}
