//! What a failed `output_contains` or `output_lacks` shows of the output it searched, so that
//! the author sees why: a short output whole, a long one by the lines nearest the text (the
//! lines sharing most of its three-character pieces, which finds `NORECOVERY` for `RECOVERY`
//! or `4305` for `4306`), and every line cut to a readable width around what matters in it.

use std::collections::HashSet;
use std::fmt::Write;

/// An output of at most this many lines is shown whole.
const WHOLE: usize = 40;
/// Otherwise this many lines nearest the text are shown.
const NEAREST: usize = 8;
/// Lines where a text that must be absent occurs, at most.
const OCCURRENCES: usize = 5;
/// Characters shown of one line.
const WIDTH: usize = 160;

/// Whether the output is short enough to be shown whole.
pub fn is_short(output: &str) -> bool {
    output.lines().count() <= WHOLE
}

/// The whole output, each line behind a bar.
pub fn whole(output: &str) -> String {
    let mut text = String::new();
    for line in output.lines() {
        let _ = write!(text, "\n  │ {}", cut(line, 0));
        // An empty line leaves no trailing space.
        text.truncate(text.trim_end_matches(' ').len());
    }
    text
}

/// The lines of a long output nearest `text`, numbered, in output order.
pub fn nearest(output: &str, text: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let pieces = pieces(text);
    let mut scored: Vec<(usize, usize, usize)> = lines
        .iter()
        .enumerate()
        .filter_map(|(n, line)| {
            let (score, at) = shared(line, &pieces);
            (score > 0).then_some((score, n, at))
        })
        .collect();
    // Most shared first; among equals, the earlier line.
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    scored.truncate(NEAREST);
    scored.sort_by_key(|&(_, n, _)| n);
    let mut shown = if scored.is_empty() {
        format!(
            "; no line of its {} is near it, its last {NEAREST}:",
            lines.len()
        )
    } else {
        format!("; the lines of its {} nearest it:", lines.len())
    };
    if scored.is_empty() {
        let from = lines.len().saturating_sub(NEAREST);
        scored = (from..lines.len()).map(|n| (0, n, 0)).collect();
    }
    for (_, n, at) in scored {
        let _ = write!(shown, "\n  {:>5} │ {}", n + 1, cut(lines[n], at));
    }
    shown
}

/// The lines of `output` that have `text`, numbered (at most a few).
pub fn occurrences(output: &str, text: &str) -> String {
    // A text over several lines is found where it starts.
    let first = text.lines().next().unwrap_or(text);
    let found: Vec<(usize, usize)> = output
        .lines()
        .enumerate()
        .filter_map(|(n, line)| line.find(first).map(|at| (n, line[..at].chars().count())))
        .collect();
    let lines: Vec<&str> = output.lines().collect();
    let mut shown = String::new();
    for &(n, at) in found.iter().take(OCCURRENCES) {
        let _ = write!(shown, "\n  {:>5} │ {}", n + 1, cut(lines[n], at));
    }
    if found.len() > OCCURRENCES {
        let _ = write!(shown, "\n  … and {} more lines", found.len() - OCCURRENCES);
    }
    shown
}

/// The three-character pieces of `text`, lowercased (the whole text when it is shorter).
fn pieces(text: &str) -> HashSet<Vec<char>> {
    let chars: Vec<char> = text.to_lowercase().chars().collect();
    if chars.len() < 3 {
        return HashSet::from([chars]);
    }
    chars.windows(3).map(<[char]>::to_vec).collect()
}

/// How many of `pieces` `line` has, and where (in characters) the first of them is.
fn shared(line: &str, pieces: &HashSet<Vec<char>>) -> (usize, usize) {
    let chars: Vec<char> = line.to_lowercase().chars().collect();
    let width = pieces.iter().next().map_or(3, Vec::len).max(1);
    let mut seen = HashSet::new();
    let mut first = None;
    for (i, window) in chars.windows(width).enumerate() {
        if pieces.contains(window) {
            first.get_or_insert(i);
            seen.insert(window);
        }
    }
    (seen.len(), first.unwrap_or(0))
}

/// At most [`WIDTH`] characters of `line`, starting a little before character `at`.
fn cut(line: &str, at: usize) -> String {
    let chars: Vec<char> = line.chars().collect();
    if chars.len() <= WIDTH {
        return line.to_owned();
    }
    let start = at.saturating_sub(WIDTH / 4).min(chars.len() - WIDTH);
    let end = start + WIDTH;
    format!(
        "{}{}{}",
        if start > 0 { "…" } else { "" },
        chars[start..end].iter().collect::<String>(),
        if end < chars.len() { "…" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_nearest_lines_of_a_long_output_share_most_of_the_text() {
        let mut output: String = (1..=60).map(|n| format!("line {n}\n")).collect();
        output.push_str("RESTORE DATABASE [mgc] WITH NORECOVERY\n");
        let shown = nearest(&output, "RESTORE DATABASE [mgc] WITH RECOVERY");
        assert!(
            shown.starts_with(
                "; the lines of its 61 nearest it:\n     61 │ RESTORE DATABASE [mgc] WITH NORECOVERY"
            ),
            "{shown}"
        );
        let none = nearest(&output, "xyz");
        assert!(
            none.starts_with("; no line of its 61 is near it, its last 8:\n     54 │ line 54"),
            "{none}"
        );
    }

    #[test]
    fn a_long_line_is_cut_around_what_matters() {
        let line = format!("{}needle{}", "a".repeat(500), "b".repeat(500));
        let shown = cut(&line, 500);
        assert_eq!(shown.chars().count(), WIDTH + 2);
        assert!(shown.starts_with('…') && shown.ends_with('…'));
        assert!(shown.contains("needle"));
        assert_eq!(cut("short", 3), "short");
    }

    #[test]
    fn occurrences_are_numbered_and_bounded() {
        let output: String = (1..=9).map(|n| format!("secret {n}\n")).collect();
        let shown = occurrences(&output, "secret");
        assert!(shown.starts_with("\n      1 │ secret 1\n"), "{shown}");
        assert!(shown.ends_with("\n  … and 4 more lines"), "{shown}");
    }
}
