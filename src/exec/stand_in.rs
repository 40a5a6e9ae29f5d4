//! The seam where a run's actions meet the world. A real run has no stand-in: commands and
//! queries run for real. `runbook test` gives the engine a [`StandIn`] that answers every
//! command and query from the test's mocks, so the scheduler, retries, `until`, loops,
//! rollback, finally and outcome that a test exercises are the very ones a real run uses.

use crate::render::Action;
use crate::steps::Attempt;

/// Answers actions instead of running them.
pub trait StandIn: Send + Sync {
    /// One attempt of `action`. `unit` is what the attempt belongs to: a step id, an
    /// instance id (`STEP[KEY]`), or `rollback:UNIT` for a rollback action.
    fn answer(&self, unit: &str, action: &Action) -> Attempt;
}

impl std::fmt::Debug for dyn StandIn {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("StandIn")
    }
}
