//! Secret masking: every secret value is replaced by `***` in the values a run shows, logs or
//! stores. The masker works on values (a rendered argument, a line of output), never on
//! serialized or formatted text, so keys, event names, step ids and numbers are never touched
//! (see [`crate::exec::masked`], which applies it to every event).
//!
//! Two rules, because a short secret cannot be searched for in free text without destroying it
//! (`x` is in every `exit code`):
//! - a value that *is* a secret, in any of its quoted forms, is masked whatever its length;
//! - free text (command output, messages, scripts) is searched for secrets of at least
//!   [`MIN_SEARCH_LEN`] characters, in every form a program may print them: as they are, each
//!   line of a multi-line secret, shell-, PowerShell-, SQL- and JSON-escaped.

use std::borrow::Cow;

use crate::template::{ps_quote, shell_quote, sql_literal};

pub const MASK: &str = "***";

/// Secrets shorter than this (in characters) are masked only where a value is exactly the
/// secret; the run says so when it starts.
pub const MIN_SEARCH_LEN: usize = 4;

/// Masks secret values.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    /// Whole values that are a secret (any length), in every quoted form.
    exact: Vec<String>,
    /// Searched in free text, longest first.
    needles: Vec<String>,
    /// The secrets long enough to be searched, for a partial match where text was cut.
    searched: Vec<String>,
}

impl Masker {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut masker = Self::default();
        for secret in secrets {
            let secret = secret.as_ref();
            if secret.is_empty() {
                continue;
            }
            let json = serde_json::to_string(secret).unwrap_or_default();
            masker.exact.extend([
                secret.to_owned(),
                shell_quote(secret.to_owned()),
                ps_quote(secret.to_owned()),
                sql_literal(secret.to_owned()),
                json.clone(),
            ]);
            // The forms a program prints: the quoted forms without their quotes are enough,
            // since the quotes themselves reveal nothing.
            let mut forms = vec![
                secret.to_owned(),
                secret.replace('\'', r"'\''"),
                inner(&ps_quote(secret.to_owned())),
                secret.replace('\'', "''"),
                inner(&json),
            ];
            // Each line of a multi-line secret, as output lines carry it.
            forms.extend(
                secret
                    .lines()
                    .map(|l| l.trim_end_matches('\r').to_owned())
                    .filter(|l| !l.trim().is_empty()),
            );
            for form in forms {
                if form.chars().count() >= MIN_SEARCH_LEN {
                    masker.needles.push(form);
                }
            }
            if secret.chars().count() >= MIN_SEARCH_LEN {
                masker.searched.push(secret.to_owned());
            }
        }
        masker.exact.sort();
        masker.exact.dedup();
        // Longest first, so a secret that contains another is masked whole.
        masker.needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        masker.needles.dedup();
        masker
    }

    /// Whether there is anything to mask.
    pub fn is_empty(&self) -> bool {
        self.exact.is_empty()
    }

    /// A value: `***` when it is a secret (or one of its quoted forms, or one with only
    /// surrounding whitespace), else free text with secrets searched in it.
    pub fn value<'a>(&self, value: &'a str) -> Cow<'a, str> {
        if self.is_exact(value) || self.is_exact(value.trim()) {
            return Cow::Borrowed(MASK);
        }
        self.text(value)
    }

    fn is_exact(&self, value: &str) -> bool {
        self.exact
            .binary_search_by(|e| e.as_str().cmp(value))
            .is_ok()
    }

    /// Free text: every secret long enough to search for is replaced, in every form.
    pub fn text<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }

    /// Text cut at its end (captured output that hit the cap): as [`Self::value`], and a
    /// trailing beginning of a secret is masked too, since the cut may fall inside one.
    pub fn cut<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let masked = self.value(text);
        let mut longest = 0;
        for secret in &self.searched {
            for (i, _) in secret.char_indices().skip(1) {
                if i > longest && masked.ends_with(&secret[..i]) {
                    longest = i;
                }
            }
        }
        if longest == 0 {
            return masked;
        }
        let keep = masked.len() - longest;
        Cow::Owned(format!("{}{MASK}", &masked[..keep]))
    }

    /// Each string in a JSON value (not the keys).
    pub fn json(&self, value: &serde_json::Value) -> serde_json::Value {
        use serde_json::Value as V;
        match value {
            V::String(s) => V::String(self.value(s).into_owned()),
            V::Array(items) => V::Array(items.iter().map(|v| self.json(v)).collect()),
            V::Object(map) => V::Object(self.map(map)),
            other => other.clone(),
        }
    }

    /// Each string value of a JSON object (not the keys).
    pub fn map(
        &self,
        map: &serde_json::Map<String, serde_json::Value>,
    ) -> serde_json::Map<String, serde_json::Value> {
        map.iter().map(|(k, v)| (k.clone(), self.json(v))).collect()
    }
}

/// A quoted form without its first and last character.
fn inner(quoted: &str) -> String {
    let mut chars = quoted.chars();
    chars.next();
    chars.next_back();
    chars.as_str().to_owned()
}
