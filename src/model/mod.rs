//! The typed runbook, version 1: what a runbook file means once it has been read.
//!
//! Every value a user wrote keeps the span it came from, so that later stages can point at it.
//! The JSON Schema in `schema/runbook.schema.json` is generated from these types.

pub mod build;
mod duration;
mod group;
mod named;
mod notify;
mod param;
mod rehearse;
mod retry;
mod runbook;
mod spanned;
mod step;

pub use duration::Duration;
pub use group::GroupFile;
pub use named::Named;
pub use notify::{DEFAULT_NOTIFY_TIMEOUT, Notify, NotifyEvent};
pub use param::{Param, ParamType, Secret, SecretSource};
pub use rehearse::{Rehearse, RehearseKind};
pub use retry::{Backoff, Retry, RetryOn};
pub use runbook::{Connection, Defaults, EnvFile, Runbook, Target};
pub use spanned::Spanned;
pub use step::{
    Approval, ApproverGroup, Approvers, Assert, ForEach, Passed, Rollback, RollbackKind, Run,
    STEP_KINDS, Scalar, Shell, Sql, Step, StepKind,
};
