//! `runbook man`: one roff manual page generated from the clap definitions (clap_mangen): the
//! program, then a section per command with its synopsis, description and options, then the
//! environment.

/// The page. Writing to a `Vec` cannot fail, so the writers' errors are not possible here.
pub fn page(mut cli: clap::Command) -> String {
    cli.build();
    let mut out = Vec::new();
    let man = clap_mangen::Man::new(cli.clone());
    let _ = man.render_title(&mut out);
    let _ = man.render_name_section(&mut out);
    let _ = man.render_synopsis_section(&mut out);
    let _ = man.render_description_section(&mut out);
    let _ = man.render_options_section(&mut out);
    // clap_mangen's own list points at one page per command; this page has them all.
    let commands: Vec<&clap::Command> = cli
        .get_subcommands()
        .filter(|s| !s.is_hide_set() && s.get_name() != "help")
        .collect();
    out.extend_from_slice(b".SH COMMANDS\n");
    for sub in &commands {
        let about = sub.get_about().map(|a| a.to_string()).unwrap_or_default();
        out.extend_from_slice(
            format!(
                ".TP\n\\fBrunbook {}\\fR\n{}\n",
                sub.get_name(),
                escape(&about)
            )
            .as_bytes(),
        );
    }
    for sub in commands {
        let name = sub.get_bin_name().unwrap_or_else(|| sub.get_name());
        out.extend_from_slice(format!(".SH \"{}\"\n", name.to_uppercase()).as_bytes());
        let mut section = Vec::new();
        // `--color` is said once, among the program's options.
        let sub = sub.clone().mut_args(|a| {
            if a.is_global_set() || a.get_id() == "color" {
                a.hide(true)
            } else {
                a
            }
        });
        let man = clap_mangen::Man::new(sub);
        let _ = man.render_synopsis_section(&mut section);
        let _ = man.render_description_section(&mut section);
        let _ = man.render_options_section(&mut section);
        // A command's parts are subsections of its section.
        let section = String::from_utf8_lossy(&section).replace("\n.SH ", "\n.SS ");
        let section = section
            .strip_prefix(".SH ")
            .map_or(section.clone(), |rest| format!(".SS {rest}"));
        out.extend_from_slice(section.as_bytes());
    }
    out.extend_from_slice(ENVIRONMENT.as_bytes());
    let _ = man.render_version_section(&mut out);
    String::from_utf8_lossy(&out).into_owned()
}

/// Text for a roff line: backslashes and hyphens as roff writes them, and no request can start
/// it.
fn escape(text: &str) -> String {
    let text = text.replace('\\', "\\e").replace('-', "\\-");
    if text.starts_with(['.', '\'']) {
        format!("\\&{text}")
    } else {
        text
    }
}

const ENVIRONMENT: &str = r#".SH ENVIRONMENT
.TP
\fBRUNBOOK_STATE_DIR\fR
Where runs are kept (journals and locks) when \fB\-\-state\-dir\fR is not given; default \fI.runbook\fR.
.TP
\fBNO_COLOR\fR
When set (not empty), no colour unless \fB\-\-color always\fR.
.TP
\fBCLICOLOR_FORCE\fR
When set (not empty, not 0), colour even when not writing to a terminal, unless \fBNO_COLOR\fR is set or \fB\-\-color never\fR.
.TP
\fBCOMPLETE\fR
Set by the completion scripts (\fBrunbook completions\fR) when they ask for candidates.
.SH "EXIT STATUS"
0 success; 1 failed (rolled back, or validation errors); 2 invalid runbook, parameters or arguments: nothing ran; 3 a person must check the system (rollback incomplete, or stopped past a point of no return); 4 the run journal could not be written; 130 interrupted. Each command's section says which it uses.
"#;
