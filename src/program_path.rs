//! Where a command's program is: looked up through `PATH` once per run, not at every start.
//!
//! The lookup finds what `execvp` would: the first directory of `PATH` that holds an
//! executable file of that name. Only programs found are remembered; one not found is handed
//! to the supervisor by name, which looks it up as every start did before and gives the same
//! error. A program named with a slash is not looked up, nor is one whose step sets `PATH`
//! (or hides it), and nothing is when `PATH` has a relative directory (`.`, or an empty
//! entry), which is read from each step's own working directory.

use std::collections::HashMap;
use std::ffi::OsString;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

/// The run's `PATH`, and the programs found in it so far.
#[derive(Debug, Default)]
pub struct ProgramPath {
    /// `None`: nothing is looked up here (no `PATH`, or a relative directory in it).
    dirs: Option<Vec<PathBuf>>,
    found: Mutex<HashMap<String, PathBuf>>,
}

impl ProgramPath {
    /// The `PATH` runbook was started with.
    pub fn from_env() -> Self {
        Self::new(std::env::var_os("PATH"))
    }

    pub fn new(path: Option<OsString>) -> Self {
        let dirs = path.and_then(|path| {
            let dirs: Vec<PathBuf> = std::env::split_paths(&path).collect();
            dirs.iter().all(|d| d.is_absolute()).then_some(dirs)
        });
        Self {
            dirs,
            found: Mutex::default(),
        }
    }

    /// Where `program` is, for a command whose environment sets `env` and loses `hidden`;
    /// `None`: the supervisor looks it up by name.
    pub fn find(
        &self,
        program: &str,
        env: &[(String, String)],
        hidden: &[String],
    ) -> Option<PathBuf> {
        let dirs = self.dirs.as_ref()?;
        if program.is_empty()
            || program.contains('/')
            || env.iter().any(|(name, _)| name == "PATH")
            || hidden.iter().any(|name| name == "PATH")
        {
            return None;
        }
        if let Some(path) = self.found.lock().ok()?.get(program) {
            return Some(path.clone());
        }
        let path = dirs
            .iter()
            .map(|dir| dir.join(program))
            .find(|candidate| executable(candidate))?;
        if let Ok(mut found) = self.found.lock() {
            found.insert(program.to_owned(), path.clone());
        }
        Some(path)
    }
}

/// A file `execve` would start: a regular file (symbolic links followed) we may execute.
fn executable(path: &Path) -> bool {
    if !path.metadata().is_ok_and(|m| m.is_file()) {
        return false;
    }
    let Ok(c_path) = std::ffi::CString::new(path.as_os_str().as_bytes()) else {
        return false;
    };
    // SAFETY: access reads a NUL-terminated path.
    unsafe { libc::access(c_path.as_ptr(), libc::X_OK) == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn file(dir: &Path, name: &str, mode: u32) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    }

    fn path_of(dirs: &[&Path]) -> Option<OsString> {
        Some(std::env::join_paths(dirs).unwrap())
    }

    #[test]
    fn the_first_executable_file_in_path_order_is_found_and_remembered() {
        let (a, b, c) = (
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
            tempfile::tempdir().unwrap(),
        );
        // Skipped as execvp skips them: a file that is not executable, a directory.
        file(a.path(), "tool", 0o644);
        std::fs::create_dir(b.path().join("tool")).unwrap();
        let wanted = file(c.path(), "tool", 0o755);
        let programs = ProgramPath::new(path_of(&[a.path(), b.path(), c.path()]));
        assert_eq!(programs.find("tool", &[], &[]), Some(wanted.clone()));
        // Remembered: a copy put earlier in PATH during the run is not seen.
        file(a.path(), "tool", 0o755);
        assert_eq!(programs.find("tool", &[], &[]), Some(wanted));
    }

    #[test]
    fn a_program_not_found_is_looked_up_again() {
        let dir = tempfile::tempdir().unwrap();
        let programs = ProgramPath::new(path_of(&[dir.path()]));
        assert_eq!(programs.find("later", &[], &[]), None);
        let installed = file(dir.path(), "later", 0o755);
        assert_eq!(programs.find("later", &[], &[]), Some(installed));
    }

    #[test]
    fn what_is_left_to_the_supervisor() {
        let dir = tempfile::tempdir().unwrap();
        file(dir.path(), "tool", 0o755);
        let programs = ProgramPath::new(path_of(&[dir.path()]));
        let path = [("PATH".to_owned(), "/elsewhere".to_owned())];
        assert_eq!(
            programs.find("tool", &path, &[]),
            None,
            "the step sets PATH"
        );
        assert_eq!(programs.find("tool", &[], &["PATH".to_owned()]), None);
        assert_eq!(programs.find("./tool", &[], &[]), None, "a path");
        assert_eq!(programs.find("", &[], &[]), None);
        let relative = ProgramPath::new(Some(OsString::from(format!(
            "bin:{}",
            dir.path().display()
        ))));
        assert_eq!(
            relative.find("tool", &[], &[]),
            None,
            "a relative directory"
        );
        let empty = ProgramPath::new(Some(OsString::from(format!("{}:", dir.path().display()))));
        assert_eq!(empty.find("tool", &[], &[]), None, "an empty entry");
        assert_eq!(ProgramPath::new(None).find("tool", &[], &[]), None);
    }
}
