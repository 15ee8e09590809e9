//! Everything that lists the stores agrees with the registry
//! (`backend_multi::stores::STORES`): the `--help` line, the package's
//! description, the benchmark's binaries and size targets, the examples.
//! A store added to the registry and forgotten elsewhere fails here.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use backend_core::Provider;
use backend_multi::MultiProvider;
use backend_multi::stores::STORES;

fn read(path: &str) -> String {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_listing_of_the_stores_names_every_store() {
    let help = <MultiProvider as Provider>::ABOUT.about;
    let manifest = read("Cargo.toml");
    let bench = read("../bench/bench.py");
    let examples: Vec<String> =
        std::fs::read_dir(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
    for store in STORES {
        let name = store.name;
        assert!(help.contains(name), "--help does not name {name}: {help}");
        let binary = format!("secret-backend-{name}");
        let crate_name = format!("backend-{name}");
        assert!(
            manifest.contains(&binary),
            "the package description does not name {binary}"
        );
        assert!(
            bench.contains(&format!("\"{name}\": (\"{binary}\", \"{crate_name}\")")),
            "bench/bench.py BINARIES has no {name}"
        );
        assert!(
            bench.contains(&format!("\"{name}\": ")) && size_target(&bench, name),
            "bench/bench.py SIZE_TARGETS_MB has no {name}"
        );
        if name != "dummy" {
            assert!(
                examples
                    .iter()
                    .any(|e| e.starts_with(&format!("{name}."))
                        || e.starts_with(&format!("{name}-"))),
                "examples/ has no config for {name}"
            );
        }
        // Connector names are unique across stores.
        for c in store.connectors {
            let owners = STORES.iter().filter(|s| s.connectors.contains(c)).count();
            assert_eq!(owners, 1, "{c} is served by {owners} stores");
        }
    }
}

/// Whether `SIZE_TARGETS_MB = {...}` has an entry for `name`.
fn size_target(bench: &str, name: &str) -> bool {
    let Some(start) = bench.find("SIZE_TARGETS_MB = {") else {
        return false;
    };
    let table = &bench[start..];
    let end = table.find('}').unwrap_or(table.len());
    table[..end].contains(&format!("\"{name}\":"))
}
