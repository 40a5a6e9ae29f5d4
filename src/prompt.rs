//! Questions the engine asks a person: an approval, or what happened to a step in doubt. The
//! engine only calls this trait; the command line supplies the terminal that asks
//! (`report::terminal`), so the engine never reads or writes a terminal itself.

/// A person's answer to an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    Yes,
    /// Refused, with the reason the person gave (`None`: none given).
    No {
        reason: Option<String>,
    },
    /// Nothing could be read (end of input, a closed terminal).
    Unreadable,
}

/// What happened to a step that was running when its run stopped.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Done,
    Failed,
    Rerun,
}

/// Asks a person. Calls block until answered: the engine runs them off its async threads.
pub trait Prompter: Send + Sync {
    fn approve(&self, step: &str, prompt: &str, instructions: Option<&str>) -> Answer;

    /// `None`: no usable answer.
    fn in_doubt(&self, step: &str) -> Option<Decision>;
}
