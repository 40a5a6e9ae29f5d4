//! The PowerShell scripts a shipped Persistent Chat runbook sends to its Lync host, read from
//! the YAML file: which step sends each (as its action, its rehearse action or its rollback),
//! the cmdlet and parameter names each uses, and a copy of the runbook with one of those names
//! changed in one step. What a cmdlet may change comes from Microsoft's reference (the
//! stand-in's catalogue): a cmdlet that takes `-WhatIf` changes something.

use std::collections::BTreeSet;

use crate::support::repo;

/// Which of a step's actions a script is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Action {
    /// The step's own action (`run:`), which `runbook check` runs only for a probe.
    Run,
    /// `rehearse:`, what `runbook check` runs instead of a change.
    Rehearse,
    /// `rollback:`, which only a run that fails runs.
    Rollback,
}

impl Action {
    fn key(self) -> &'static str {
        match self {
            Action::Run => "run",
            Action::Rehearse => "rehearse",
            Action::Rollback => "rollback",
        }
    }
}

/// One script on `target: lync`, as the YAML file has it (templates unrendered).
#[derive(Clone, Debug)]
pub struct Script {
    pub step: String,
    pub action: Action,
    /// The step is `probe: true`.
    pub probe: bool,
    pub text: String,
}

/// A name a script uses: a cmdlet (`Set-CsPersistentChatState`) or a parameter (`PoolState`
/// of `-PoolState`).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Name {
    Cmdlet(String),
    Parameter(String),
}

impl Name {
    /// The name as a script writes it.
    pub fn written(&self) -> String {
        match self {
            Name::Cmdlet(n) => n.clone(),
            Name::Parameter(n) => format!("-{n}"),
        }
    }

    /// The name changed: one that is neither a cmdlet nor a parameter, nor the prefix of one
    /// (PowerShell binds an unambiguous prefix of a parameter's name).
    pub fn changed(&self) -> Name {
        match self {
            Name::Cmdlet(n) => Name::Cmdlet(format!("{n}X")),
            Name::Parameter(n) => Name::Parameter(format!("{n}X")),
        }
    }

    /// What PowerShell says when a script uses this name and the cmdlet has no such
    /// parameter, or no cmdlet has this name.
    pub fn refused(&self) -> String {
        match self {
            Name::Cmdlet(n) => {
                format!("The term '{n}' is not recognized as the name of a cmdlet")
            }
            Name::Parameter(n) => {
                format!("A parameter cannot be found that matches parameter name '{n}'.")
            }
        }
    }
}

/// The text of a shipped runbook (`failover.yaml`, …).
pub fn source(book: &str) -> String {
    std::fs::read_to_string(repo().join("runbooks/persistent-chat").join(book))
        .unwrap_or_else(|e| panic!("{book}: {e}"))
}

/// The steps of a runbook's text, as JSON.
pub fn steps(yaml: &str) -> Vec<serde_json::Value> {
    let book: serde_json::Value = serde_saphyr::from_str(yaml).expect("a runbook is YAML");
    book["steps"].as_array().expect("steps").clone()
}

/// Every script a runbook's text sends to `target: lync`, in the order of its steps.
pub fn scripts(yaml: &str) -> Vec<Script> {
    let mut out = Vec::new();
    for step in steps(yaml) {
        let id = step["id"].as_str().expect("an id").to_owned();
        let probe = step["probe"] == true;
        let own = step["target"] == "lync";
        for action in [Action::Run, Action::Rehearse, Action::Rollback] {
            let (on_lync, script) = match action {
                Action::Run => (own, &step["run"]["script"]),
                other => {
                    let a = &step[other.key()];
                    (a["target"] == "lync", &a["run"]["script"])
                }
            };
            if let (true, Some(text)) = (on_lync, script.as_str()) {
                out.push(Script {
                    step: id.clone(),
                    action,
                    probe,
                    text: text.to_owned(),
                });
            }
        }
    }
    out
}

/// The text PowerShell parses: templates (`{{ … }}` a value, `{% … %}` nothing) and quoted
/// strings left out, so that names inside them are not taken for the script's.
fn code(script: &str) -> String {
    let mut out = String::new();
    let mut rest = script;
    while !rest.is_empty() {
        if let Some(after) = rest.strip_prefix("{{") {
            let end = after.find("}}").map_or(after.len(), |i| i + 2);
            out.push('T');
            rest = &after[end.min(after.len())..];
        } else if let Some(after) = rest.strip_prefix("{%") {
            let end = after.find("%}").map_or(after.len(), |i| i + 2);
            rest = &after[end.min(after.len())..];
        } else if let Some(after) = rest.strip_prefix('\'') {
            let end = after.find('\'').map_or(after.len(), |i| i + 1);
            out.push_str("''");
            rest = &after[end.min(after.len())..];
        } else {
            let c = rest.chars().next().expect("not empty");
            out.push(c);
            rest = &rest[c.len_utf8()..];
        }
    }
    out
}

fn is_word(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// A cmdlet name starting at byte `i` of `line`: `Verb-Noun`, both capitalised, not part of
/// a longer word, a variable or a member.
fn cmdlet_at(line: &str, i: usize) -> Option<&str> {
    let before = line[..i].chars().next_back();
    if before.is_some_and(|c| is_word(c) || c == '$' || c == '.') {
        return None;
    }
    let word: &str = {
        let end = line[i..]
            .find(|c: char| !is_word(c))
            .map_or(line.len(), |e| i + e);
        &line[i..end]
    };
    let (verb, noun) = word.split_once('-')?;
    let capital = |s: &str| {
        s.chars().next().is_some_and(|c| c.is_ascii_uppercase())
            && s.chars().all(|c| c.is_ascii_alphabetic())
    };
    (capital(verb) && capital(noun)).then_some(word)
}

/// The cmdlet and parameter names a script uses, each once, cmdlets first.
pub fn names(script: &str) -> Vec<Name> {
    let mut cmdlets = BTreeSet::new();
    let mut parameters = BTreeSet::new();
    for line in code(script).lines() {
        let mut i = 0;
        while i < line.len() {
            let Some(cmdlet) = cmdlet_at(line, i) else {
                i += line[i..].chars().next().map_or(1, char::len_utf8);
                continue;
            };
            cmdlets.insert(cmdlet.to_owned());
            // Its parameters: `-Name` tokens up to the end of the command (a `)` closing
            // what opened before it, a pipe, a `;` or the end of the line).
            let mut depth = 0usize;
            let mut j = i + cmdlet.len();
            let bytes = line.as_bytes();
            while j < line.len() {
                match bytes[j] {
                    b'(' | b'{' | b'[' => depth += 1,
                    b')' | b'}' | b']' if depth == 0 => break,
                    b')' | b'}' | b']' => depth -= 1,
                    b'|' | b';' if depth == 0 => break,
                    b'-' if depth == 0 && bytes[j - 1].is_ascii_whitespace() => {
                        let end = line[j + 1..]
                            .find(|c: char| !c.is_ascii_alphabetic())
                            .map_or(line.len(), |e| j + 1 + e);
                        if end > j + 1 {
                            parameters.insert(line[j + 1..end].to_owned());
                        }
                        j = end;
                        continue;
                    }
                    _ => {}
                }
                j += 1;
            }
            i = j.max(i + 1);
        }
    }
    cmdlets
        .into_iter()
        .map(Name::Cmdlet)
        .chain(parameters.into_iter().map(Name::Parameter))
        .collect()
}

/// The byte ranges of `step`'s `actions` blocks in the runbook's text.
fn blocks(yaml: &str, step: &str, actions: &[Action]) -> Vec<(usize, usize)> {
    let header = format!("  - id: {step}\n");
    let start = yaml
        .find(&header)
        .unwrap_or_else(|| panic!("no step {step}"));
    let mut lines = Vec::new();
    let mut offset = start;
    for line in yaml[start..].split_inclusive('\n') {
        // A step's lines are indented by four spaces or more.
        if offset > start && !line.starts_with("    ") && !line.trim().is_empty() {
            break;
        }
        lines.push((offset, line));
        offset += line.len();
    }
    let key_of = |line: &str| {
        line.strip_prefix("    ")
            .filter(|l| !l.starts_with(' '))
            .and_then(|l| l.split_once(':'))
            .map(|(k, _)| k.to_owned())
    };
    let mut out = Vec::new();
    for (n, (at, line)) in lines.iter().enumerate() {
        let Some(key) = key_of(line) else { continue };
        if !actions.iter().any(|a| a.key() == key) {
            continue;
        }
        let end = lines[n + 1..]
            .iter()
            .find(|(_, l)| key_of(l).is_some())
            .map_or(offset, |(o, _)| *o);
        out.push((*at, end));
    }
    out
}

/// Every place in `text` where `name` is written as a name of the script.
fn places(text: &str, name: &Name) -> Vec<usize> {
    let written = name.written();
    text.match_indices(&written)
        .map(|(i, _)| i)
        .filter(|&i| {
            let before = text[..i].chars().next_back();
            let after = text[i + written.len()..].chars().next();
            let starts = match name {
                Name::Cmdlet(_) => !before.is_some_and(|c| is_word(c) || c == '$' || c == '.'),
                Name::Parameter(_) => before.is_some_and(char::is_whitespace),
            };
            starts && !after.is_some_and(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        .collect()
}

/// The runbook's text with `name` changed to `name.changed()` wherever `step`'s `actions`
/// write it. Panics when they do not write it.
pub fn with_changed(yaml: &str, step: &str, actions: &[Action], name: &Name) -> String {
    let changed = name.changed().written();
    let mut out = yaml.to_owned();
    let mut count = 0;
    let mut ranges = blocks(yaml, step, actions);
    ranges.sort_unstable();
    for (start, end) in ranges.into_iter().rev() {
        for at in places(&yaml[start..end], name).into_iter().rev() {
            let at = start + at;
            out.replace_range(at..at + name.written().len(), &changed);
            count += 1;
        }
    }
    assert!(count > 0, "{step} does not write {}", name.written());
    out
}

/// The cmdlets of Microsoft's reference that take `-WhatIf`: those that change something.
pub fn changing_cmdlets() -> BTreeSet<String> {
    let path = repo().join("tests/rehearsal/powershell-cmdlets.json");
    let text = std::fs::read_to_string(path).expect("the cmdlet catalogue");
    let catalogue: serde_json::Value = serde_json::from_str(&text).expect("JSON");
    catalogue["cmdlets"]
        .as_object()
        .expect("cmdlets")
        .iter()
        .filter(|(_, c)| {
            c["parameter_sets"].as_object().is_some_and(|sets| {
                sets.values().any(|p| {
                    p.as_array()
                        .is_some_and(|p| p.iter().any(|n| n == "WhatIf"))
                })
            })
        })
        .map(|(name, _)| name.clone())
        .collect()
}

#[test]
fn names_are_the_cmdlets_and_their_parameters_outside_templates_and_strings() {
    let script = "Import-Module Lync\n(Get-CsService -PersistentChatServer -PoolFqdn {{ x | ps_quote }}).ActiveServers -join ','\nSet-CsPersistentChatActiveServer -Identity 'Set-Fake -Nope' -ActiveServers @{Add={{ a }}} -Confirm:$false\n{% if x -%}\nWrite-Output {{ ('a -b' ~ c) | ps_quote }}\n{%- endif %}";
    let cmdlet = |n: &str| Name::Cmdlet(n.to_owned());
    let parameter = |n: &str| Name::Parameter(n.to_owned());
    assert_eq!(
        names(script),
        [
            cmdlet("Get-CsService"),
            cmdlet("Import-Module"),
            cmdlet("Set-CsPersistentChatActiveServer"),
            cmdlet("Write-Output"),
            parameter("ActiveServers"),
            parameter("Confirm"),
            parameter("Identity"),
            parameter("PersistentChatServer"),
            parameter("PoolFqdn"),
        ]
    );
}

#[test]
fn a_name_is_changed_only_in_the_blocks_asked_for() {
    let yaml = "steps:\n  - id: a\n    run:\n      script: |\n        Set-X -Identity 'i' -IdentityRef 1\n    rehearse:\n      run:\n        script: Set-X -Identity 'i' -WhatIf\n    rollback:\n      run:\n        script: Set-X -Identity 'j'\n  - id: b\n    run:\n      script: Set-X -Identity 'k'\n";
    let changed = with_changed(
        yaml,
        "a",
        &[Action::Run, Action::Rehearse],
        &Name::Parameter("Identity".to_owned()),
    );
    assert_eq!(
        changed,
        yaml.replacen(
            "Set-X -Identity 'i' -IdentityRef",
            "Set-X -IdentityX 'i' -IdentityRef",
            1
        )
        .replacen(
            "Set-X -Identity 'i' -WhatIf",
            "Set-X -IdentityX 'i' -WhatIf",
            1
        )
    );
    let changed = with_changed(yaml, "b", &[Action::Run], &Name::Cmdlet("Set-X".to_owned()));
    assert_eq!(
        changed,
        yaml.replacen("Set-X -Identity 'k'", "Set-XX -Identity 'k'", 1)
    );
}
