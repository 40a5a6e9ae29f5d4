//! Which files `validate` checks: the files named, and the runbook files under directories
//! (sorted; parameter files and hidden entries skipped). `runbook test` finds its test files
//! (`*.test.yaml`) the same way.

use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum DiscoverError {
    #[error("cannot read `{path}`: {reason}")]
    Unreadable { path: String, reason: String },
    #[error("no runbook files (*.yaml, *.yml) under `{path}`")]
    Empty { path: String },
    #[error("no test files (*.test.yaml) under `{path}`")]
    NoTests { path: String },
}

/// Files named on the command line, with directories expanded to their YAML files (sorted).
pub fn expand(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    expand_with(paths, is_runbook_name, |path| DiscoverError::Empty { path })
}

/// Test files named on the command line, with directories expanded to their `*.test.yaml`.
pub fn tests(paths: &[PathBuf]) -> Result<Vec<PathBuf>, DiscoverError> {
    expand_with(
        paths,
        |name| name.ends_with(".test.yaml"),
        |path| DiscoverError::NoTests { path },
    )
}

fn expand_with(
    paths: &[PathBuf],
    wanted: fn(&str) -> bool,
    empty: fn(String) -> DiscoverError,
) -> Result<Vec<PathBuf>, DiscoverError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let before = files.len();
            walk(path, wanted, &mut files).map_err(|e| DiscoverError::Unreadable {
                path: path.display().to_string(),
                reason: e.to_string(),
            })?;
            if files.len() == before {
                return Err(empty(path.display().to_string()));
            }
        } else {
            // A missing or unreadable file is reported as a problem of that file.
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, wanted: fn(&str) -> bool, files: &mut Vec<PathBuf>) -> std::io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()?;
    entries.sort();
    for path in entries {
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            walk(&path, wanted, files)?;
        } else if wanted(name) {
            files.push(path);
        }
    }
    Ok(())
}

/// `*.yaml`/`*.yml`, except parameter files (`params.*.yaml`, `*.params.yaml`) and test
/// files (`*.test.yaml`).
fn is_runbook_name(name: &str) -> bool {
    let yaml = name.ends_with(".yaml") || name.ends_with(".yml");
    let params = name.starts_with("params.")
        || name.ends_with(".params.yaml")
        || name.ends_with(".params.yml");
    yaml && !params && !name.ends_with(".test.yaml")
}
