//! `env_file:`: the dotenv file read when a run starts. Its values are `env.NAME` in
//! templates; the names listed under `secret` are masked like secrets.
//!
//! The format is the common subset of dotenv: `NAME=value` lines, blank lines, `#` comment
//! lines, an optional `export ` before the name, and a value optionally wrapped in matching
//! single or double quotes (taken literally: no escapes, no `$VAR` expansion).

use crate::model::Runbook;

/// The largest env file read: it holds settings, not data.
pub const MAX_ENV_FILE_BYTES: u64 = 1024 * 1024;

/// The values of a runbook's env file.
#[derive(Clone, Debug, Default)]
pub struct EnvValues {
    /// In file order; a name given twice keeps its last value.
    pub values: Vec<(String, String)>,
    /// Names whose values are masked.
    pub secret: Vec<String>,
}

impl EnvValues {
    /// The values of the secret names.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.values
            .iter()
            .filter(|(k, _)| self.secret.contains(k))
            .map(|(_, v)| v.as_str())
    }
}

/// Why the env file could not be used; nothing runs.
#[derive(Debug, thiserror::Error)]
pub enum EnvFileError {
    #[error("env_file (at {at}): cannot read `{path}`: {reason}")]
    Unreadable {
        at: String,
        path: String,
        reason: String,
    },
    #[error("env_file `{path}` line {line}: {reason}")]
    Syntax {
        path: String,
        line: usize,
        reason: String,
    },
    #[error("env_file (at {at}): `{name}` is listed under `secret` but `{path}` does not set it")]
    MissingSecret {
        at: String,
        path: String,
        name: String,
    },
}

/// Reads the runbook's env file, if it has one (relative to the runbook's directory).
pub fn read(runbook: &Runbook) -> Result<EnvValues, EnvFileError> {
    let Some(env_file) = &runbook.env_file else {
        return Ok(EnvValues::default());
    };
    let path = runbook.dir.join(env_file.path.as_str());
    let shown = path.display().to_string();
    let text = crate::bind::read_capped(&path, MAX_ENV_FILE_BYTES, "an env file").map_err(|e| {
        EnvFileError::Unreadable {
            at: env_file.at.clone(),
            path: shown.clone(),
            reason: e.to_string(),
        }
    })?;
    let values = parse(&text).map_err(|(line, reason)| EnvFileError::Syntax {
        path: shown.clone(),
        line,
        reason,
    })?;
    let secret: Vec<String> = env_file.secret.iter().map(|s| s.value.clone()).collect();
    if let Some(name) = secret.iter().find(|n| !values.iter().any(|(k, _)| k == *n)) {
        // A typo here would show the real secret unmasked.
        return Err(EnvFileError::MissingSecret {
            at: env_file.at.clone(),
            path: shown,
            name: name.clone(),
        });
    }
    Ok(EnvValues { values, secret })
}

/// `NAME=value` pairs, or the 1-based line that is not one and why.
fn parse(text: &str) -> Result<Vec<(String, String)>, (usize, String)> {
    let mut values: Vec<(String, String)> = Vec::new();
    for (n, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = line.strip_prefix("export ").unwrap_or(line);
        let Some((name, value)) = line.split_once('=') else {
            return Err((n + 1, "expected NAME=value".to_owned()));
        };
        let name = name.trim();
        if !crate::validate::is_valid_id(name, false) {
            return Err((
                n + 1,
                format!(
                    "`{name}` is not a name (letters, digits and `_`, not starting with a digit)"
                ),
            ));
        }
        let value = value.trim();
        let value = ['"', '\'']
            .iter()
            .find_map(|q| {
                value
                    .strip_prefix(*q)
                    .and_then(|v| v.strip_suffix(*q))
                    .filter(|_| value.len() >= 2)
            })
            .unwrap_or(value);
        values.retain(|(k, _)| k != name);
        values.push((name.to_owned(), value.to_owned()));
    }
    Ok(values)
}

#[cfg(test)]
mod tests {
    use super::parse;

    #[test]
    fn dotenv_lines_comments_export_and_quotes() {
        let text = "# site\n\nexport HOST=db1\nPORT = 1433\nNAME=\"two words\"\nQ='$HOME'\nHOST=db2\nEMPTY=\n";
        let pairs = |v: Vec<(String, String)>| -> Vec<(String, String)> { v };
        assert_eq!(
            pairs(parse(text).expect("parses")),
            [
                ("PORT", "1433"),
                ("NAME", "two words"),
                ("Q", "$HOME"),
                ("HOST", "db2"),
                ("EMPTY", ""),
            ]
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
        );
    }

    #[test]
    fn a_line_that_is_not_name_value_is_located() {
        assert_eq!(
            parse("A=1\njust text\n"),
            Err((2, "expected NAME=value".to_owned()))
        );
        assert!(parse("1A=x").is_err());
    }
}
