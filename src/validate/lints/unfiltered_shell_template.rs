//! A `{{ … }}` in a `run.script` without the quoting filter of its shell as its last filter
//! (`shell_quote` for `sh`/`bash`, `ps_quote` for `pwsh`/`powershell`): the value is pasted
//! into the script as code, so a `;`, `$(…)` or quote in it runs as a command. `cmd` has no
//! quoting filter and is not checked.

use super::Lint;
use crate::diagnostic::Problem;
use crate::model::Shell;
use crate::validate::template_walk::Finding;
use crate::validate::templates::{Kind, Site};

pub struct UnfilteredShellTemplate;

impl Lint for UnfilteredShellTemplate {
    fn finding(&mut self, finding: &Finding<'_>, site: &Site<'_>, problems: &mut Vec<Problem>) {
        let (Finding::Emit { filter, span }, Kind::Script(shell)) = (finding, site.place.kind)
        else {
            return;
        };
        let needed = match shell {
            Shell::Sh | Shell::Bash => "shell_quote",
            Shell::Pwsh | Shell::Powershell => "ps_quote",
            Shell::Cmd => return,
        };
        if *filter != Some(needed) {
            problems.push(Problem::UnfilteredShellTemplate {
                shell: shell.name().to_owned(),
                filter: needed,
                span: site.at(*span).into(),
            });
        }
    }
}
