//! `runbook init`: a new runbook to start from, written from one of the templates in
//! `src/init/` (each validates with `--deny-warnings` and plans), never over an existing file.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Which template to start from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// A SQL Server failover: checks, approval, point of no return, verification.
    Failover,
    /// A release deployment: stage, record, approve, switch, verify.
    Deploy,
    /// The smallest runbook with params, a command and its rollback, an approval, a wait and
    /// an assert.
    Minimal,
}

impl Kind {
    fn template(self) -> &'static str {
        match self {
            Self::Failover => include_str!("init/failover.yaml"),
            Self::Deploy => include_str!("init/deploy.yaml"),
            Self::Minimal => include_str!("init/minimal.yaml"),
        }
    }
}

/// Why no runbook was written.
#[derive(Debug, thiserror::Error)]
pub enum InitError {
    #[error(
        "`{name}` is not a valid runbook name: it starts with a letter or `_`, then letters, digits, `_` or `-` (the file is named after the runbook)"
    )]
    InvalidName { name: String },
    #[error("{path} already exists: not overwritten (choose another name, or remove it first)")]
    Exists { path: String },
    #[error("cannot write {path}: {reason}")]
    Io { path: String, reason: String },
}

/// What `init` wrote, for the message that follows.
#[derive(Debug)]
pub struct Written {
    pub path: PathBuf,
    /// The schema line points at a file that is not there yet.
    pub schema_missing: Option<PathBuf>,
}

/// Writes the runbook `name` (a name, or a path ending in the name, with or without `.yaml`)
/// from the `kind` template.
pub fn init(name: Option<&str>, kind: Kind) -> Result<Written, InitError> {
    let requested = PathBuf::from(name.unwrap_or("runbook"));
    let path = match requested.extension().and_then(|e| e.to_str()) {
        Some("yaml" | "yml") => requested,
        _ => {
            let mut file = requested.into_os_string();
            file.push(".yaml");
            PathBuf::from(file)
        }
    };
    let stem = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or_default()
        .to_owned();
    if !crate::validate::is_valid_id(&stem, true) {
        return Err(InitError::InvalidName {
            name: name.unwrap_or_default().to_owned(),
        });
    }
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let (schema, schema_missing) = schema_reference(&dir, &path);
    let file = path.display().to_string();
    let text = kind
        .template()
        .replace(
            "__SCHEMA__",
            &format!("# yaml-language-server: $schema={schema}"),
        )
        .replace("__NAME__", &stem)
        .replace("__FILE__", &file);
    write_new(&path, &text)?;
    Ok(Written {
        path,
        schema_missing,
    })
}

/// The schema as the shipped runbooks name it, relative to `dir`: the project's
/// `schema/runbook.schema.json` in `dir` or a directory above, else `runbook.schema.json`
/// beside the runbook (which `runbook schema` writes; returned as missing when absent).
fn schema_reference(dir: &Path, runbook: &Path) -> (String, Option<PathBuf>) {
    const BESIDE: &str = "runbook.schema.json";
    if dir.join(BESIDE).is_file() {
        return (BESIDE.to_owned(), None);
    }
    if let Ok(absolute) = dir.canonicalize() {
        for (up, ancestor) in absolute.ancestors().enumerate() {
            if ancestor.join("schema").join(BESIDE).is_file() {
                return (format!("{}schema/{BESIDE}", "../".repeat(up)), None);
            }
        }
    }
    (BESIDE.to_owned(), Some(runbook.with_file_name(BESIDE)))
}

/// Creates `path`, failing if anything (a file, a directory, a symlink, even a dangling one)
/// is already there: the check and the creation are one step, so a second `init` at the same
/// moment cannot be overwritten either.
fn write_new(path: &Path, text: &str) -> Result<(), InitError> {
    let shown = path.display().to_string();
    let mut file = match std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            return Err(InitError::Exists { path: shown });
        }
        Err(e) => {
            return Err(InitError::Io {
                path: shown,
                reason: e.to_string(),
            });
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| InitError::Io {
            path: shown,
            reason: e.to_string(),
        })
}
