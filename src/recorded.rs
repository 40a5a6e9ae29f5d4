//! The runbook a run ran, read back from the file its journal names, but only when the
//! file still has the hash the journal recorded: a changed file would describe another
//! procedure. From it, the evidence report takes the critical path and the points of no
//! return.

use crate::record::RunRecord;

/// What the run's own runbook says about the run.
#[derive(Clone, Debug, Default)]
pub struct Recorded {
    /// Step ids on the critical path to service restored, in order.
    pub critical_path: Vec<String>,
    /// Steps marked `irreversible`.
    pub irreversible: Vec<String>,
}

/// Why the run's runbook cannot be read back.
#[derive(Debug, thiserror::Error)]
pub enum RecordedError {
    #[error("the journal does not say which runbook it ran")]
    NoContext,
    #[error("the runbook file `{0}` can no longer be read or is not valid")]
    Unreadable(String),
    #[error("the runbook file `{0}` has changed since the run (its hash differs)")]
    Changed(String),
    #[error("the runbook file `{0}` cannot be planned with the recorded params")]
    Unplannable(String),
}

impl Recorded {
    pub fn of(record: &RunRecord) -> Result<Self, RecordedError> {
        let context = record.context.as_ref().ok_or(RecordedError::NoContext)?;
        let path = std::path::Path::new(&context.path);
        let unreadable = || RecordedError::Unreadable(context.path.clone());
        let (runbook, dag) = crate::session::checked(path).map_err(|_| unreadable())?;
        let bytes = std::fs::read(path).map_err(|_| unreadable())?;
        if crate::journal::hash(&crate::include::fingerprint(&bytes, &runbook)) != context.hash {
            return Err(RecordedError::Changed(context.path.clone()));
        }
        let bound = crate::bind::Bound {
            values: context.params.clone(),
            from_example: Vec::new(),
            ignored: Vec::new(),
        };
        let plan = crate::plan::build(&runbook, &dag, &bound, None, 1, None)
            .map_err(|_| RecordedError::Unplannable(context.path.clone()))?;
        Ok(Self {
            critical_path: plan.estimate.map(|e| e.critical_path).unwrap_or_default(),
            irreversible: runbook
                .steps
                .iter()
                .filter(|s| s.is_irreversible())
                .map(|s| s.id.value.clone())
                .collect(),
        })
    }
}
