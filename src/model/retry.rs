//! Retry policies: how many attempts, how long between them, and which failures are retried.

use schemars::JsonSchema;

use super::{Duration, Spanned};

/// `retry:` on a step or in `defaults`.
#[derive(Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Retry {
    /// Total attempts, the first included (at least 1).
    pub attempts: Option<Spanned<u32>>,
    /// Delay before the second attempt.
    pub delay: Option<Spanned<Duration>>,
    /// `fixed` (the default) or `exponential` (the delay doubles after each attempt).
    pub backoff: Option<Spanned<Backoff>>,
    /// Upper bound on the delay when backing off.
    pub max_delay: Option<Spanned<Duration>>,
    /// Randomise each delay between zero and its computed value (full jitter).
    pub jitter: Option<Spanned<bool>>,
    /// Which failures are retried; without it every failure is.
    pub on: Option<RetryOn>,
}

/// How the delay grows between attempts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Backoff {
    Fixed,
    Exponential,
}

impl Backoff {
    pub const NAMES: &'static [&'static str] = &["fixed", "exponential"];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "fixed" => Some(Self::Fixed),
            "exponential" => Some(Self::Exponential),
            _ => None,
        }
    }
}

/// `retry.on`: the failures that are worth another attempt.
#[derive(Clone, Debug, Default, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct RetryOn {
    /// Exit codes of a `run` step that are retried.
    #[serde(default)]
    pub exit_codes: Vec<Spanned<i64>>,
    /// SQL Server error numbers that are retried (1205 deadlock, 1222 lock timeout, …).
    #[serde(default)]
    pub sql_errors: Vec<Spanned<i64>>,
    /// Retry an attempt that ran out of time.
    pub timeout: Option<Spanned<bool>>,
    /// Retry when a connection cannot be opened or is lost: a SQL connection, or the ssh
    /// connection of a target.
    pub connect: Option<Spanned<bool>>,
}
