//! Control characters from runbooks and command output, made visible before they reach a
//! terminal: an escape sequence in a step's output or a prompt could otherwise move the
//! cursor, rewrite earlier lines or retitle the window, and hide what happened.

use std::borrow::Cow;

/// `text` with every control character but newline and tab written as `\u{…}`.
pub fn escape(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_hidden) {
        return Cow::Borrowed(text);
    }
    let mut out = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        if is_hidden(c) {
            out.push_str(&c.escape_unicode().to_string());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn is_hidden(c: char) -> bool {
    c.is_control() && c != '\n' && c != '\t'
}

#[cfg(test)]
mod tests {
    use super::escape;

    #[test]
    fn escape_sequences_and_carriage_returns_are_made_visible() {
        assert_eq!(
            escape("ok\x1b[2J\rdone\n\tnext"),
            "ok\\u{1b}[2J\\u{d}done\n\tnext"
        );
        assert_eq!(escape("\u{9b}31m\u{7}"), "\\u{9b}31m\\u{7}");
        assert!(matches!(
            escape("plain ✓ text\n"),
            std::borrow::Cow::Borrowed(_)
        ));
    }
}
