//! Secret masking: every rendered secret value is replaced by `***` wherever a value is shown,
//! logged, stored or put in an error message. All output passes through one [`Masker`].

use std::borrow::Cow;

pub const MASK: &str = "***";

/// Replaces secret values (and their JSON-escaped forms) in text.
#[derive(Clone, Debug, Default)]
pub struct Masker {
    needles: Vec<String>,
}

impl Masker {
    pub fn new<I, S>(secrets: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: AsRef<str>,
    {
        let mut needles = Vec::new();
        for secret in secrets {
            let secret = secret.as_ref();
            // Very short values would mask ordinary text; they are still never printed on
            // purpose, but cannot be searched for safely.
            if secret.is_empty() {
                continue;
            }
            needles.push(secret.to_owned());
            let escaped = serde_json::to_string(secret).unwrap_or_default();
            let escaped = escaped.trim_matches('"');
            if escaped != secret {
                needles.push(escaped.to_owned());
            }
        }
        // Longest first, so a secret that contains another is masked whole.
        needles.sort_by_key(|n| std::cmp::Reverse(n.len()));
        needles.dedup();
        Self { needles }
    }

    pub fn mask<'a>(&self, text: &'a str) -> Cow<'a, str> {
        let mut out = Cow::Borrowed(text);
        for needle in &self.needles {
            if out.contains(needle.as_str()) {
                out = Cow::Owned(out.replace(needle.as_str(), MASK));
            }
        }
        out
    }
}
