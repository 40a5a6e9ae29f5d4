//! Stamps the version with the git commit the binary is built from (`runbook --version`),
//! when there is one: a tarball or `cargo install` from crates.io has no `.git`.

use std::path::PathBuf;
use std::process::Command;

fn git(args: &[&str]) -> Option<String> {
    let out = Command::new("git").args(args).output().ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8(out.stdout).ok()?.trim().to_owned();
    (!text.is_empty()).then_some(text)
}

fn main() {
    let version = env!("CARGO_PKG_VERSION");
    let commit = git(&["rev-parse", "--short=9", "HEAD"]);
    let full = match &commit {
        Some(commit) => format!("{version} (commit {commit})"),
        None => version.to_owned(),
    };
    println!("cargo:rustc-env=RUNBOOK_VERSION={full}");
    println!("cargo:rerun-if-changed=build.rs");
    // A new commit moves HEAD (detached) or the branch it points at (possibly packed); in a
    // worktree HEAD lives in the worktree's git dir and the refs in the common one.
    let dir = git(&["rev-parse", "--git-dir"]).map(PathBuf::from);
    let common = git(&["rev-parse", "--git-common-dir"]).map(PathBuf::from);
    let head_ref = git(&["rev-parse", "--symbolic-full-name", "HEAD"]);
    let mut watched = Vec::new();
    if let Some(dir) = &dir {
        watched.push(dir.join("HEAD"));
    }
    if let Some(common) = &common {
        watched.push(common.join("packed-refs"));
        // A branch only in packed-refs gets a file of its own at its next commit, in a
        // directory that is then watched instead (a missing file would rerun every build).
        if let Some(branch) = head_ref.as_deref().filter(|r| r.starts_with("refs/")) {
            let file = common.join(branch);
            match file.parent() {
                Some(dir) if !file.exists() => watched.push(dir.to_path_buf()),
                _ => watched.push(file),
            }
        }
    }
    for path in watched.iter().filter(|p| p.exists()) {
        println!("cargo:rerun-if-changed={}", path.display());
    }
}
