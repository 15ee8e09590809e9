//! `fake-k8s`: the fake Kubernetes API server of `backend_tests::k8s`, run
//! on its own for the benchmark harness (`bench/bench.py`).
//!
//! ```text
//! fake-k8s [--secrets N] [--keys K] [--namespace NS]
//! ```
//!
//! Starts the fake on a free port of 127.0.0.1 (TLS with a fresh CA), seeds
//! `N` secrets `NS/app<i>` (default 20, in namespace `bench`) of `K` keys
//! `k<j>` = `k8s-<i>-<j>` (default 5), makes one bearer token of the service
//! account `NS:bench` with `get` on every secret of `NS`, writes the token
//! to a file (mode 0600) next to the CA file, and prints one JSON line:
//!
//! ```text
//! {"api_server":"https://127.0.0.1:PORT","port":PORT,"ca_path":"...","token_path":"...","token":"...","namespace":"bench","secrets":N,"keys":K}
//! ```
//!
//! Then it reads commands on stdin, one a line, and answers each with one
//! JSON line on stdout:
//!
//! - `take`: the requests seen since the last `take` (or the start),
//!   classified: `read` for a `GET` of a secret answered 200, else
//!   `<status> <method> <what>` (`404 GET secret`, `401 GET secret`, `404 GET
//!   other`; status 0 is a hang), as `{"total":N,"counts":{"read":20}}`.
//!
//! It serves until stdin closes (the files are removed then) or it is
//! killed.

#![allow(clippy::panic, clippy::expect_used, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::{BufRead, Write};

use backend_tests::files::write_private;
use backend_tests::k8s::{FakeKube, service_account};
use serde_json::json;

const TOKEN: &str = "fake-k8s-bench-token";

fn usage() -> ! {
    let _ = writeln!(
        std::io::stderr(),
        "usage: fake-k8s [--secrets N] [--keys K] [--namespace NS]"
    );
    std::process::exit(2);
}

fn main() {
    let (mut secrets, mut keys, mut ns) = (20usize, 5usize, "bench".to_owned());
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let Some(value) = args.next() else { usage() };
        match arg.as_str() {
            "--secrets" => secrets = value.parse().unwrap_or_else(|_| usage()),
            "--keys" => keys = value.parse().unwrap_or_else(|_| usage()),
            "--namespace" => ns = value,
            _ => usage(),
        }
    }
    let kube = FakeKube::start();
    let user = service_account(&ns, "bench");
    kube.add_token(TOKEN, &user);
    kube.grant(&user, &ns, &[]);
    for i in 0..secrets {
        let values: Vec<(String, String)> = (0..keys)
            .map(|j| (format!("k{j}"), format!("k8s-{i}-{j}")))
            .collect();
        let data: Vec<(&str, &[u8])> = values
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_bytes()))
            .collect();
        kube.put_secret(&ns, &format!("app{i}"), &data);
    }
    let ca_path = kube.ca_file();
    let token_path = ca_path.with_file_name("token");
    write_private(&token_path, TOKEN);

    let mut out = std::io::stdout().lock();
    let ready = json!({
        "api_server": kube.url(),
        "port": kube.port(),
        "ca_path": ca_path,
        "token_path": token_path,
        "token": TOKEN,
        "namespace": ns,
        "secrets": secrets,
        "keys": keys,
    });
    writeln!(out, "{ready}").unwrap();
    out.flush().unwrap();

    let mut taken = 0;
    for line in std::io::stdin().lock().lines() {
        let Ok(line) = line else { break };
        match line.trim() {
            "take" => {
                let seen = kube.requests();
                let mut counts = BTreeMap::<String, usize>::new();
                for s in &seen[taken.min(seen.len())..] {
                    let path = s.path.split('?').next().unwrap_or_default();
                    let secret = path.starts_with("/api/v1/namespaces/")
                        && path.split('/').nth(5) == Some("secrets");
                    let kind = match (s.method.as_str(), s.status, secret) {
                        ("GET", 200, true) => "read".to_owned(),
                        (m, code, true) => format!("{code} {m} secret"),
                        (m, code, false) => format!("{code} {m} other"),
                    };
                    *counts.entry(kind).or_default() += 1;
                }
                let total = seen.len() - taken.min(seen.len());
                taken = seen.len();
                writeln!(out, "{}", json!({"total": total, "counts": counts})).unwrap();
            }
            "" => continue,
            other => writeln!(
                out,
                "{}",
                json!({"error": format!("unknown command {other:?}")})
            )
            .unwrap(),
        }
        out.flush().unwrap();
    }
    // stdin closed: dropping `kube` stops it and removes its files.
    drop(kube);
}
