//! The one text form of a rendered action, used by the plan, the live output, the journal's
//! summary line and `show`: a one-line summary, and every line of it.

use std::fmt::Write;

use crate::render::Action;

/// One line: what progress output, `show` and the journal say a step is doing.
pub fn summary(action: &Action) -> String {
    let here = local_summary(action);
    match action {
        Action::Command {
            target: Some(remote),
            ..
        }
        | Action::Script {
            target: Some(remote),
            ..
        } => format!("on {}: {here}", remote.target),
        _ => here,
    }
}

/// Where a remote action runs: its target, ssh destination and shell.
fn place(action: &Action, indent: &str, out: &mut String) {
    if let Action::Command {
        target: Some(remote),
        ..
    }
    | Action::Script {
        target: Some(remote),
        ..
    } = action
    {
        let _ = writeln!(
            out,
            "{indent}on target {} (ssh {}, shell {}):",
            remote.target, remote.ssh, remote.shell
        );
    }
}

fn local_summary(action: &Action) -> String {
    match action {
        Action::Command { program, args, .. } => {
            let mut line = crate::template::shell_quote(program.clone());
            for arg in args {
                line.push(' ');
                line.push_str(&crate::template::shell_quote(arg.clone()));
            }
            line
        }
        Action::Script { shell, script, .. } => {
            // The first line that does something: comments and blank lines are skipped.
            let first = script
                .lines()
                .find(|l| !l.trim().is_empty() && !l.trim_start().starts_with('#'))
                .unwrap_or("");
            let more = if script.trim().lines().count() > 1 {
                " …"
            } else {
                ""
            };
            format!("{shell}: {}{more}", first.trim())
        }
        Action::Sql {
            connection, query, ..
        } => {
            let first = query.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            format!("sql on {connection}: {}", first.trim())
        }
        Action::Wait { duration, .. } => format!("wait {duration}"),
        Action::Assert { that, .. } => format!("assert {that}"),
        Action::Approval { prompt, .. } => format!("approval: {prompt}"),
    }
}

/// The working directory and environment of a command.
fn surroundings(cwd: Option<&String>, env: &[(String, String)], indent: &str, out: &mut String) {
    if let Some(cwd) = cwd {
        let _ = writeln!(out, "{indent}  in {cwd}");
    }
    for (k, v) in env {
        let _ = writeln!(out, "{indent}  env {k}={v}");
    }
}

/// A script or query, each line behind a bar.
fn block(text: &str, indent: &str, out: &mut String) {
    for line in text.trim_end().lines() {
        let _ = writeln!(out, "{indent}  | {line}");
    }
}

/// Every line of an action: the command line or script, the SQL text with its arguments as
/// T-SQL would read them, the wait, assertion or prompt; each line starts with `indent`.
pub fn lines(action: &Action, indent: &str, out: &mut String) {
    match action {
        Action::Command { cwd, env, .. } => {
            place(action, indent, out);
            let _ = writeln!(out, "{indent}$ {}", local_summary(action));
            surroundings(cwd.as_ref(), env, indent, out);
        }
        Action::Script {
            shell,
            script,
            cwd,
            env,
            ..
        } => {
            place(action, indent, out);
            let _ = writeln!(out, "{indent}{shell} script:");
            block(script, indent, out);
            surroundings(cwd.as_ref(), env, indent, out);
        }
        Action::Sql {
            connection,
            server,
            database,
            query,
            args,
        } => {
            let mut place = Vec::new();
            if let Some(server) = server {
                place.push(format!("server {server}"));
            }
            if let Some(database) = database {
                place.push(format!("database {database}"));
            }
            let place = if place.is_empty() {
                String::new()
            } else {
                format!(" ({})", place.join(", "))
            };
            let _ = writeln!(out, "{indent}sql on `{connection}`{place}:");
            block(query, indent, out);
            for (i, a) in args.iter().enumerate() {
                // Shown as T-SQL would read the value.
                let shown = match a {
                    serde_json::Value::String(s) => crate::template::sql_literal(s.clone()),
                    serde_json::Value::Null => "NULL".to_owned(),
                    other => other.to_string(),
                };
                let _ = writeln!(out, "{indent}  @P{} = {shown}", i + 1);
            }
        }
        Action::Wait { duration, .. } => {
            let _ = writeln!(out, "{indent}wait {duration}");
        }
        Action::Assert { that, message } => {
            let _ = writeln!(out, "{indent}assert {that}");
            if let Some(m) = message {
                let _ = writeln!(out, "{indent}  otherwise: {m}");
            }
        }
        Action::Approval {
            prompt,
            instructions,
            quorum,
        } => {
            let _ = writeln!(out, "{indent}approval: {prompt}");
            if let Some(text) = instructions {
                for line in text.trim_end().lines() {
                    let _ = writeln!(out, "{indent}  > {line}");
                }
            }
            if let Some(quorum) = quorum {
                let _ = writeln!(out, "{indent}  {}", super::quorum::needs(quorum));
            }
        }
    }
}

/// Every line of an action, as one text.
pub fn full(action: &Action) -> String {
    let mut out = String::new();
    lines(action, "", &mut out);
    out.trim_end().to_owned()
}
