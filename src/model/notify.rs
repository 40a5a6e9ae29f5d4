//! `notify:` hooks: a command run on chosen events of a run, the event as JSON on its stdin.

use schemars::JsonSchema;

use super::{Duration, Run, Spanned};
use crate::yaml::Span;

/// One hook: the events it is run on and what it runs.
#[derive(Clone, Debug, PartialEq, JsonSchema)]
#[schemars(deny_unknown_fields)]
pub struct Notify {
    /// The events the hook is run on.
    pub on: Vec<Spanned<NotifyEvent>>,
    /// What runs (templates read `params`, `secrets`, `env` and `run`); the event arrives as
    /// JSON on its stdin.
    pub run: Run,
    /// Environment variables of the command (templates), merged with `defaults.env`; the way
    /// to hand it a secret such as a webhook URL without putting it in its arguments.
    #[serde(default)]
    pub env: indexmap::IndexMap<String, Spanned<String>>,
    /// How long the hook may take (default 30s); a hook past it is ended and reported.
    pub timeout: Option<Spanned<Duration>>,
    /// The machine the hook runs on: a name under `targets:`, as for a step. Without it, the
    /// hook runs here.
    pub target: Option<Spanned<String>>,
    #[schemars(skip)]
    pub span: Span,
}

/// The events a hook can be run on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NotifyEvent {
    /// An approval is about to be asked of a person.
    ApprovalNeeded,
    /// A step (or a `for_each` instance) failed for good.
    StepFailed,
    /// The run ended needing a person (exit 3).
    NeedsPerson,
    /// The run ended, whatever its outcome.
    Finished,
    /// The run was interrupted (Ctrl-C, SIGTERM, SIGHUP).
    Interrupted,
}

impl NotifyEvent {
    pub const NAMES: &'static [&'static str] = &[
        "approval_needed",
        "step_failed",
        "needs_person",
        "finished",
        "interrupted",
    ];

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "approval_needed" => Some(Self::ApprovalNeeded),
            "step_failed" => Some(Self::StepFailed),
            "needs_person" => Some(Self::NeedsPerson),
            "finished" => Some(Self::Finished),
            "interrupted" => Some(Self::Interrupted),
            _ => None,
        }
    }

    pub const fn name(self) -> &'static str {
        match self {
            Self::ApprovalNeeded => "approval_needed",
            Self::StepFailed => "step_failed",
            Self::NeedsPerson => "needs_person",
            Self::Finished => "finished",
            Self::Interrupted => "interrupted",
        }
    }
}

/// A hook's time limit when it sets none.
pub const DEFAULT_NOTIFY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);
