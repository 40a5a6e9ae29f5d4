//! The informational messages SQL Server sends (PRINT, RESTORE's "percent processed"): tiberius
//! reads them but only reports them as `tracing` events, so a small subscriber picks them up
//! and hands them to the step whose query is running (a task-local says which).

use std::sync::{Arc, Mutex};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Level, Metadata, Subscriber};

/// Where the messages of the running query go.
#[derive(Clone)]
pub struct Messages {
    collected: Arc<Mutex<Vec<String>>>,
    live: Arc<dyn Fn(&str) + Send + Sync>,
}

impl Messages {
    pub fn new(live: impl Fn(&str) + Send + Sync + 'static) -> Self {
        Self {
            collected: Arc::default(),
            live: Arc::new(live),
        }
    }

    fn push(&self, message: &str) {
        (self.live)(message);
        if let Ok(mut c) = self.collected.lock() {
            c.push(message.to_owned());
        }
    }

    pub fn take(&self) -> Vec<String> {
        self.collected
            .lock()
            .map(|mut c| std::mem::take(&mut *c))
            .unwrap_or_default()
    }
}

tokio::task_local! {
    /// The messages sink of the query this task is running.
    pub static CURRENT: Messages;
}

/// Installs the subscriber once for the process (it only listens to tiberius).
pub fn install() {
    let _ = tracing::subscriber::set_global_default(InfoMessages);
}

struct InfoMessages;

/// tiberius logs its own state changes on the same call path; they are not server messages.
const NOT_MESSAGES: &[&str] = &[
    "Database change from",
    "Packet size change from",
    "SQL collation change",
    "Begin transaction",
    "Commit transaction",
    "Rollback transaction",
    "Defect transaction",
    "Routing",
];

struct MessageField(Option<String>);

impl Visit for MessageField {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = Some(format!("{value:?}"));
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.0 = Some(value.to_owned());
        }
    }
}

impl Subscriber for InfoMessages {
    fn enabled(&self, metadata: &Metadata<'_>) -> bool {
        *metadata.level() == Level::DEBUG && metadata.target() == "tiberius::tds::stream::token"
    }

    fn max_level_hint(&self) -> Option<tracing::level_filters::LevelFilter> {
        Some(tracing::level_filters::LevelFilter::DEBUG)
    }

    fn new_span(&self, _: &Attributes<'_>) -> Id {
        Id::from_u64(1)
    }

    fn record(&self, _: &Id, _: &Record<'_>) {}

    fn record_follows_from(&self, _: &Id, _: &Id) {}

    fn event(&self, event: &Event<'_>) {
        let mut field = MessageField(None);
        event.record(&mut field);
        let Some(message) = field.0 else { return };
        if NOT_MESSAGES.iter().any(|p| message.starts_with(p)) {
            return;
        }
        let _ = CURRENT.try_with(|sink| sink.push(&message));
    }

    fn enter(&self, _: &Id) {}

    fn exit(&self, _: &Id) {}
}
