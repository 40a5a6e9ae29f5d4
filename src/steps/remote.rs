//! What a remote action sends: a fixed bootstrap as the remote command, and everything else
//! (environment, directory, the script or command line, secrets included) on stdin. Nothing a
//! runbook wrote reaches the remote argv, so nothing of it shows in the remote process list.
//!
//! On a Unix target the bootstrap reads a length-prefixed payload, starts it in a session of
//! its own (`setsid`, its own process group) with stdin from `/dev/null`, and then watches the
//! ssh channel: when the channel closes (runbook ended the attempt on a timeout or an
//! interrupt, runbook died, the connection dropped) the whole session is killed. Its exit
//! status is the payload's.

use base64::Engine;

use crate::render::Action;
use crate::template::{ps_quote, shell_quote};

/// Why an action cannot be sent to its target.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NotSendable {
    #[error("`{0}` is not a valid environment variable name on the target")]
    EnvName(String),
    #[error("the `{0}` shell cannot run on a target")]
    Shell(String),
    #[error("its input has a line break or the line `{INPUT_END}`, which cannot be sent")]
    Input,
}

/// Ends the input written before a Unix payload (a here-document: nothing in it is expanded).
const INPUT_END: &str = "RUNBOOK_INPUT_END";

/// The remote command and the bytes sent on its stdin.
#[derive(Debug)]
pub struct Remote {
    pub command: String,
    pub stdin: Vec<u8>,
}

/// The remote command for a Unix shell: `sh -c '…'` whatever the login shell is. `interpreter`
/// runs the payload; the text holds no single quote, so it stays one quoted word.
fn unix_bootstrap(interpreter: &str) -> String {
    format!(
        "sh -c 'IFS= read -r n || exit 254; p=$(head -c \"$n\"; echo x); p=${{p%x}}; \
exec 3<&0; printf %s \"$p\" | setsid {interpreter} -c \". /dev/fd/5\" 5<&0 </dev/null 3<&- & c=$!; p=; \
(while read -r _; do :; done; kill -KILL -\"$c\" \"$c\") <&3 >/dev/null 2>&1 & w=$!; exec 3<&-; \
wait \"$c\"; r=$?; kill \"$w\" 2>/dev/null; exit \"$r\"'"
    )
}

/// The remote command for PowerShell: the payload is one line on stdin (and `exit 1` after
/// it, for when it fails).
fn powershell_bootstrap(program: &str) -> String {
    format!("{program} -NoProfile -NonInteractive -ExecutionPolicy Bypass -Command -")
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// What to send for `action` to run on a target with `shell`; `input`, one line (a hook's
/// event as JSON), is what the action reads on its stdin (in PowerShell, `$input`).
pub fn prepare(action: &Action, shell: &str, input: Option<&str>) -> Result<Remote, NotSendable> {
    if input.is_some_and(|i| i.contains(['\n', '\r']) || i == INPUT_END) {
        return Err(NotSendable::Input);
    }
    let (cwd, env) = match action {
        Action::Command { cwd, env, .. } | Action::Script { cwd, env, .. } => (cwd, env),
        _ => return Err(NotSendable::Shell(shell.to_owned())),
    };
    if let Some((name, _)) = env.iter().find(|(name, _)| !is_env_name(name)) {
        return Err(NotSendable::EnvName(name.clone()));
    }
    match shell {
        "sh" | "bash" => {
            let mut body = String::new();
            if let Some(input) = input {
                // The shell's own stdin from here on: the payload's commands read the input.
                body.push_str(&format!("exec 0<<'{INPUT_END}'\n{input}\n{INPUT_END}\n"));
            }
            for (name, value) in env {
                body.push_str(&format!("export {name}={}\n", shell_quote(value.clone())));
            }
            if let Some(cwd) = cwd {
                body.push_str(&format!("cd {} || exit 1\n", shell_quote(cwd.clone())));
            }
            match action {
                Action::Command { program, args, .. } => {
                    body.push_str("exec");
                    for word in std::iter::once(program).chain(args) {
                        body.push(' ');
                        body.push_str(&shell_quote(word.clone()));
                    }
                    body.push('\n');
                }
                Action::Script { script, .. } => body.push_str(script),
                _ => {}
            }
            let mut stdin = format!("{}\n", body.len()).into_bytes();
            stdin.extend_from_slice(body.as_bytes());
            Ok(Remote {
                command: unix_bootstrap(shell),
                stdin,
            })
        }
        "powershell" | "pwsh" => {
            let mut line = String::from("$ErrorActionPreference='Stop'; ");
            for (name, value) in env {
                line.push_str(&format!("$env:{name}={}; ", ps_quote(value.clone())));
            }
            if let Some(cwd) = cwd {
                line.push_str(&format!(
                    "Set-Location -LiteralPath {}; ",
                    ps_quote(cwd.clone())
                ));
            }
            let script = match action {
                Action::Command { program, args, .. } => {
                    let mut call = format!("& {}", ps_quote(program.clone()));
                    for arg in args {
                        call.push(' ');
                        call.push_str(&ps_quote(arg.clone()));
                    }
                    call
                }
                Action::Script { script, .. } => script.clone(),
                _ => String::new(),
            };
            // One line whatever the script: `-Command -` runs stdin line by line, each as
            // typed at a prompt. A terminating error abandons the line before its `exit`, and
            // the prompt reads on from a stdin that stays open: the second line ends it then.
            let encoded = base64::engine::general_purpose::STANDARD.encode(script.as_bytes());
            let piped = input.map_or(String::new(), |i| format!("{} | ", ps_quote(i.to_owned())));
            line.push_str(&format!(
                "$global:LASTEXITCODE=0; {piped}& ([scriptblock]::Create([Text.Encoding]::UTF8.GetString([Convert]::FromBase64String('{encoded}')))); exit $LASTEXITCODE\nexit 1\n"
            ));
            Ok(Remote {
                command: powershell_bootstrap(if shell == "pwsh" {
                    "pwsh"
                } else {
                    "powershell"
                }),
                stdin: line.into_bytes(),
            })
        }
        other => Err(NotSendable::Shell(other.to_owned())),
    }
}

#[cfg(test)]
mod tests {
    use super::prepare;
    use crate::render::Action;

    fn script(text: &str, env: &[(&str, &str)]) -> Action {
        Action::Script {
            shell: "sh".to_owned(),
            script: text.to_owned(),
            cwd: None,
            env: env
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            target: None,
        }
    }

    #[test]
    fn the_remote_command_holds_nothing_of_the_action() {
        let sent = prepare(&script("echo {{x}}", &[("TOKEN", "a")]), "sh", None).unwrap();
        assert!(!sent.command.contains("TOKEN"));
        assert!(!sent.command.contains("{{x}}"));
        let text = String::from_utf8(sent.stdin).unwrap();
        let (len, body) = text.split_once('\n').unwrap();
        assert_eq!(len.parse::<usize>().unwrap(), body.len());
        assert_eq!(body, "export TOKEN=a\necho {{x}}");
    }

    #[test]
    fn bad_environment_names_are_refused() {
        assert!(prepare(&script("true", &[("A;B", "x")]), "sh", None).is_err());
    }

    #[test]
    fn powershell_gets_the_script_on_one_line_then_exit_1() {
        let sent = prepare(&script("Write-Output 1\nexit 3", &[]), "powershell", None).unwrap();
        let text = String::from_utf8(sent.stdin).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].ends_with("; exit $LASTEXITCODE"), "{text}");
        // Read only when the first line was abandoned on a terminating error: `-Command -`
        // would otherwise wait for more input on the stdin runbook holds open.
        assert_eq!(lines[1], "exit 1");
        assert!(sent.command.starts_with("powershell -NoProfile"));
    }
}
