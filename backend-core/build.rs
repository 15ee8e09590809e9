//! Records the git revision the binaries are built from, for `--version`.
//! Outside a git checkout (a crates.io download) it is `unknown`.

use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?;
    let text = text.trim();
    (!text.is_empty()).then(|| text.to_owned())
}

fn main() {
    let rev = std::env::var("SECRET_BACKEND_GIT_REV")
        .ok()
        .or_else(|| git(&["rev-parse", "--short=12", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=SECRET_BACKEND_GIT_REV={rev}");
    println!("cargo:rerun-if-env-changed=SECRET_BACKEND_GIT_REV");
    if let Some(dir) = git(&["rev-parse", "--absolute-git-dir"]) {
        // Only files that exist: cargo reruns the script (and rebuilds every
        // binary) on each build while a watched file is missing, and many
        // checkouts have no packed-refs, or the branch only in it.
        let mut watch = vec![format!("{dir}/HEAD"), format!("{dir}/packed-refs")];
        if let Some(head_ref) = git(&["symbolic-ref", "-q", "HEAD"]) {
            watch.push(format!("{dir}/{head_ref}"));
        }
        for file in watch {
            if std::path::Path::new(&file).is_file() {
                println!("cargo:rerun-if-changed={file}");
            }
        }
    }
}
