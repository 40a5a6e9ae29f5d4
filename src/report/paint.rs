//! Colour for people: the marks of the run output (✓ green, ✗ red, ↺ yellow) and the headers
//! of the plan and the summary in bold, only when colour is on (`--color`, `NO_COLOR`,
//! `CLICOLOR_FORCE`, a terminal).
//!
//! Colour is added to text that has already been through
//! [`control_chars::escape`](super::control_chars::escape), and only around marks and headers
//! this program wrote: a runbook or a command's output can never bring its own escape
//! sequences, and escaping never mangles ours.

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";
const RED: &str = "\x1b[31m";
const GREEN: &str = "\x1b[32m";
const YELLOW: &str = "\x1b[33m";
const DIM: &str = "\x1b[2m";

/// The colour of a mark at the start of a line, if it is one of ours.
fn mark_colour(mark: char) -> Option<&'static str> {
    match mark {
        '✓' | '✔' => Some(GREEN),
        '✗' | '■' => Some(RED),
        '↺' | '▶' => Some(YELLOW),
        '–' | '·' => Some(DIM),
        _ => None,
    }
}

/// Lines of a run (`HH:MM:SS ✓ step …`, summary rows `  ✓ step …`) with their mark coloured,
/// and the summary's headers in bold.
pub fn run_lines(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        if line.starts_with("Summary of run ")
            || line.starts_with("Outcome: ")
            || line.starts_with("ACTION NEEDED")
        {
            bold(line, &mut out);
            continue;
        }
        // The mark follows the timestamp of an event line or the indent of a summary row.
        let start = if is_clock(line) {
            9
        } else if line.starts_with("  ") && !line.starts_with("   ") {
            2
        } else {
            out.push_str(line);
            continue;
        };
        let mut rest = line[start..].chars();
        match rest
            .next()
            .and_then(|c| mark_colour(c).map(|colour| (c, colour)))
        {
            Some((mark, colour)) => {
                out.push_str(&line[..start]);
                out.push_str(colour);
                out.push(mark);
                out.push_str(RESET);
                out.push_str(rest.as_str());
            }
            None => out.push_str(line),
        }
    }
    out
}

/// The human plan with its headers (the title, waves, approvals, points of no return, the
/// failure scenario) in bold and its step lines' `▸` marks coloured.
pub fn plan(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 16);
    for line in text.split_inclusive('\n') {
        if [
            "Plan for `",
            "Wave ",
            "Approvals: ",
            "Points of no return: ",
            "If `",
            "Estimate (",
            "  WARNING: ",
        ]
        .iter()
        .any(|h| line.starts_with(h))
        {
            bold(line, &mut out);
        } else if let Some(rest) = line.strip_prefix("  ▸ ") {
            out.push_str("  ");
            out.push_str(YELLOW);
            out.push('▸');
            out.push_str(RESET);
            out.push(' ');
            out.push_str(rest);
        } else {
            out.push_str(line);
        }
    }
    out
}

fn bold(line: &str, out: &mut String) {
    let (body, newline) = match line.strip_suffix('\n') {
        Some(body) => (body, "\n"),
        None => (line, ""),
    };
    out.push_str(BOLD);
    out.push_str(body);
    out.push_str(RESET);
    out.push_str(newline);
}

/// `HH:MM:SS ` at the start of a line.
fn is_clock(line: &str) -> bool {
    let b = line.as_bytes();
    b.len() > 9
        && b[2] == b':'
        && b[5] == b':'
        && b[8] == b' '
        && [0, 1, 3, 4, 6, 7].iter().all(|&i| b[i].is_ascii_digit())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_and_headers_are_coloured_and_other_text_is_kept() {
        let text = "10:00:00 ✓ a (0.01s)\n10:00:01 ✗ b failed\n      │ ✓ not ours\nSummary of run x (1.0s):\n  ✓ a  succeeded\n";
        let painted = run_lines(text);
        assert!(painted.starts_with("10:00:00 \x1b[32m✓\x1b[0m a (0.01s)\n"));
        assert!(painted.contains("10:00:01 \x1b[31m✗\x1b[0m b failed\n"));
        assert!(painted.contains("      │ ✓ not ours\n"));
        assert!(painted.contains("\x1b[1mSummary of run x (1.0s):\x1b[0m\n"));
        assert!(painted.contains("  \x1b[32m✓\x1b[0m a  succeeded\n"));
        let plain = painted
            .replace(RESET, "")
            .replace(BOLD, "")
            .replace(GREEN, "")
            .replace(RED, "");
        assert_eq!(plain, text);
    }
}
