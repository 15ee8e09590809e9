//! Every example config in `examples/` is valid for the store it is
//! written for, and the agent snippets name our executables.

// Test helpers fail the test by panicking.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};

use backend_core::ConfigError;
use backend_core::config::from_yaml;
use serde_json::Value;

fn examples() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn text(name: &str) -> String {
    std::fs::read_to_string(examples().join(name)).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn check<C: serde::de::DeserializeOwned + Default, P>(
    name: &str,
    new: impl Fn(C) -> Result<P, ConfigError>,
) {
    let config: C = from_yaml(&text(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
    if let Err(e) = new(config) {
        panic!("{name}: {e}");
    }
}

#[test]
fn store_examples_are_valid_configs() {
    let mut seen = 0;
    for entry in std::fs::read_dir(examples()).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        let prefix = name.split(['-', '.']).next().unwrap();
        match prefix {
            // Built too: the provider's own validation runs.
            "aws" => check(&name, backend_aws::AwsProvider::new),
            "file" => check(&name, backend_file::FileProvider::new),
            "multi" => check(&name, backend_multi::MultiProvider::new),
            // Every other store of the registry: its config schema (vault's
            // examples name credential files of a real host, read only
            // when the store is built).
            _ if backend_multi::stores::find(prefix).is_some() => {
                let value: Value =
                    from_yaml(&text(&name)).unwrap_or_else(|e| panic!("{name}: {e}"));
                backend_multi::stores::validate(prefix, value)
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
            _ => continue,
        }
        seen += 1;
    }
    assert!(seen >= 10, "only {seen} store examples");
}

#[test]
fn agent_snippets_name_our_executables_and_examples() {
    let ours = [
        "secret-backend",
        "secret-backend-vault",
        "secret-backend-aws",
        "secret-backend-file",
        "secret-backend-dummy",
    ];
    for name in ["stackstate.yaml", "datadog.yaml"] {
        let v: Value = from_yaml(&text(name)).unwrap();
        let command = v["secret_backend_command"].as_str().unwrap();
        assert!(
            command.starts_with("/opt/secret-backend/bin/"),
            "{name}: {command}"
        );
        assert!(
            ours.iter().any(|b| command.ends_with(&format!("/{b}"))),
            "{name}: {command}"
        );
        let args: Vec<&str> = v["secret_backend_arguments"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a.as_str().unwrap())
            .collect();
        let config = args
            .iter()
            .skip_while(|a| **a != "--config")
            .nth(1)
            .unwrap();
        let example = config.rsplit('/').next().unwrap();
        let matching = std::fs::read_dir(examples())
            .unwrap()
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .any(|f| {
                f == example || f.starts_with(&format!("{}-", example.trim_end_matches(".yaml")))
            });
        assert!(matching, "{name}: --config {config} has no example");
        assert!(v["secret_backend_timeout"].as_u64().is_some());
    }
}

#[test]
fn kubernetes_examples_ship_the_binary_and_a_valid_config() {
    let dir = examples().join("kubernetes");
    let mut manifests = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().and_then(|e| e.to_str()) != Some("yaml") {
            continue;
        }
        let docs: Vec<Value> =
            serde_saphyr::from_multiple(&std::fs::read_to_string(&path).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let daemonset = docs
            .iter()
            .find(|d| d["kind"] == "DaemonSet")
            .expect("a DaemonSet");
        let spec = &daemonset["spec"]["template"]["spec"];
        assert!(
            spec["initContainers"]
                .as_array()
                .is_some_and(|c| !c.is_empty()),
            "{}",
            path.display()
        );
        let agent = &spec["containers"][0];
        let command = agent["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| {
                e["name"]
                    .as_str()
                    .is_some_and(|n| n.ends_with("SECRET_BACKEND_COMMAND"))
            })
            .and_then(|e| e["value"].as_str())
            .unwrap();
        assert!(
            command.starts_with("/opt/secret-backend/bin/secret-backend"),
            "{command}"
        );
        for doc in docs.iter().filter(|d| d["kind"] == "ConfigMap") {
            for (name, text) in doc["data"].as_object().unwrap() {
                if name.starts_with("vault") {
                    let _: backend_vault::VaultConfig =
                        from_yaml(text.as_str().unwrap()).unwrap_or_else(|e| panic!("{name}: {e}"));
                }
            }
        }
        manifests += 1;
    }
    assert_eq!(manifests, 2);
}
