//! What the fake-server executables of the benchmark harness share (this
//! one's and `fake-google`'s, which includes this file): the command line
//! (`--secrets N --keys K` and `--name value` options of their own), and
//! the protocol on stdio: one JSON line saying what is served, then `take`
//! answered with the requests seen since the last `take`, classified,
//! until stdin closes.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use serde_json::{Value, json};

/// The command line: `--secrets` (default 20), `--keys` (default 5), and
/// the options named in `more` (with their defaults), else `usage`.
pub struct Options {
    /// How many secrets to seed.
    pub secrets: usize,
    /// How many keys in each.
    pub keys: usize,
    /// The other options' values, by name (`--project` -> `project`).
    pub more: BTreeMap<String, String>,
}

/// Parses the command line; prints `usage` and exits 2 on anything else.
pub fn options(usage: &str, more: &[(&str, &str)]) -> Options {
    let fail = || -> ! {
        let _ = writeln!(std::io::stderr(), "usage: {usage}");
        std::process::exit(2);
    };
    let mut o = Options {
        secrets: 20,
        keys: 5,
        more: more
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else { fail() };
        match arg.as_str() {
            "--secrets" => o.secrets = value.parse().unwrap_or_else(|_| fail()),
            "--keys" => o.keys = value.parse().unwrap_or_else(|_| fail()),
            name => match o.more.get_mut(name.trim_start_matches("--")) {
                Some(slot) if name.starts_with("--") => *slot = value,
                _ => fail(),
            },
        }
    }
    o
}

/// The JSON text of an object of `keys` keys `k<j>` = `<prefix>-<i>-<j>`:
/// secret `i` of a seeded store.
pub fn document(prefix: &str, i: usize, keys: usize) -> String {
    let doc: serde_json::Map<String, Value> = (0..keys)
        .map(|j| (format!("k{j}"), format!("{prefix}-{i}-{j}").into()))
        .collect();
    Value::Object(doc).to_string()
}

/// Prints `ready`, then answers each `take` on stdin with
/// `{"total":N,"counts":{...}}`: the requests of `seen()` since the last
/// one, counted by `classify`. Returns when stdin closes.
pub fn serve<T>(ready: &Value, seen: impl Fn() -> Vec<T>, classify: impl Fn(&T) -> String) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{ready}");
    let _ = out.flush();
    let mut taken = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        let answer = match line.trim() {
            "take" => {
                let seen = seen();
                let fresh = &seen[taken.min(seen.len())..];
                let mut counts = BTreeMap::<String, usize>::new();
                for s in fresh {
                    *counts.entry(classify(s)).or_default() += 1;
                }
                taken = seen.len();
                json!({"total": fresh.len(), "counts": counts})
            }
            "" => continue,
            other => json!({"error": format!("unknown command {other:?}")}),
        };
        if writeln!(out, "{answer}")
            .and_then(|()| out.flush())
            .is_err()
        {
            break;
        }
    }
}
