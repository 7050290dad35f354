//! Build script: records the git commit the binary is built from, for `tidings --version`.
//!
//! `TIDINGS_GIT_COMMIT` is `git rev-parse --short HEAD` when the source is a git checkout and
//! git is installed, else "unknown" (a tarball, a machine without git): the build never fails
//! for want of git. A packager may set `TIDINGS_GIT_COMMIT` in the environment to name the
//! commit itself.

use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=TIDINGS_GIT_COMMIT");
    // git is asked only when the package's folder is the top of a git checkout (not a tarball
    // unpacked inside some other repository); that is settled once, here.
    let dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default());
    let in_checkout = run_git(&dir, &["rev-parse", "--show-toplevel"]).is_some_and(|top| {
        let top = std::fs::canonicalize(top).ok();
        top.is_some() && top == std::fs::canonicalize(&dir).ok()
    });
    let git = |args: &[&str]| in_checkout.then(|| run_git(&dir, args)).flatten();
    let commit = std::env::var("TIDINGS_GIT_COMMIT")
        .ok()
        .filter(|c| !c.trim().is_empty())
        .or_else(|| git(&["rev-parse", "--short", "HEAD"]))
        .unwrap_or_else(|| "unknown".to_string());
    println!("cargo:rustc-env=TIDINGS_GIT_COMMIT={commit}");
    // Rebuild when HEAD moves: HEAD itself (a branch switch), the branch's ref file and the
    // packed refs. Only files that exist are named (cargo reruns a script forever otherwise).
    let mut watched = vec!["HEAD".to_string(), "packed-refs".to_string()];
    if let Some(branch) = git(&["symbolic-ref", "-q", "HEAD"]) {
        watched.push(branch);
    }
    for name in watched {
        if let Some(path) = git(&["rev-parse", "--git-path", &name]).map(PathBuf::from)
            && path.exists()
        {
            println!("cargo:rerun-if-changed={}", path.display());
        }
    }
}

fn run_git(dir: &std::path::Path, args: &[&str]) -> Option<String> {
    let out = Command::new("git")
        .args(args)
        .current_dir(dir)
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_string();
    (!text.is_empty()).then_some(text)
}
