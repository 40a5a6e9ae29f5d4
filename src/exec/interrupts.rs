//! Ctrl-C (SIGINT), SIGTERM and SIGHUP. The first stops the run: in-flight steps are cancelled
//! and completed ones rolled back. The second asks for a hard stop: the caller kills every
//! running command's process group and ends the run at once, saying what was left undone.
//!
//! SIGHUP is an interrupt like the others because it is what an SSH session dropped mid-run
//! sends: its default action would kill runbook silently, with no rollback, no record and the
//! lock left behind.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot};

use super::event::{EventKind, Sink, event};
use crate::steps::command::Groups;

pub struct Interrupts {
    first: mpsc::UnboundedReceiver<String>,
    hard: Option<oneshot::Receiver<()>>,
    pub(crate) groups: Groups,
    undone: Arc<Mutex<Undone>>,
}

impl Interrupts {
    /// Listens for SIGINT, SIGTERM and SIGHUP (inside a tokio runtime). The first is an event at
    /// once, whatever the run is doing (running steps or rolling back).
    pub fn listen(sink: Arc<dyn Sink>) -> Self {
        let (first_tx, first) = mpsc::unbounded_channel();
        let (hard_tx, hard) = oneshot::channel();
        tokio::spawn(async move {
            use tokio::signal::unix::{SignalKind, signal};
            let (Ok(mut int), Ok(mut term), Ok(mut hup)) = (
                signal(SignalKind::interrupt()),
                signal(SignalKind::terminate()),
                signal(SignalKind::hangup()),
            ) else {
                return;
            };
            let name = tokio::select! {
                _ = int.recv() => "SIGINT",
                _ = term.recv() => "SIGTERM",
                _ = hup.recv() => "SIGHUP",
            };
            sink.emit(&event(EventKind::Interrupted {
                signal: name.to_owned(),
            }));
            let _ = first_tx.send(name.to_owned());
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
                _ = hup.recv() => {}
            }
            let _ = hard_tx.send(());
        });
        Self {
            first,
            hard: Some(hard),
            groups: Groups::default(),
            undone: Arc::default(),
        }
    }

    /// The hard stop: resolves on the second interrupt, and never without one.
    pub fn hard_stop(&mut self) -> HardStop {
        HardStop {
            signal: self.hard.take(),
            groups: self.groups.clone(),
            undone: self.undone.clone(),
        }
    }

    /// Resolves on the first interrupt, with the signal's name.
    pub(crate) async fn next(&mut self) -> String {
        match self.first.recv().await {
            Some(signal) => signal,
            None => std::future::pending().await,
        }
    }

    pub(crate) fn track(&self, change: impl FnOnce(&mut Undone)) {
        if let Ok(mut undone) = self.undone.lock() {
            change(&mut undone);
        }
    }
}

/// The second interrupt, held by whoever drives the run.
pub struct HardStop {
    signal: Option<oneshot::Receiver<()>>,
    groups: Groups,
    undone: Arc<Mutex<Undone>>,
}

impl HardStop {
    /// Waits for the second interrupt, kills every running command's process group, and
    /// says what was left undone.
    pub async fn wait(self) -> String {
        let signalled = match self.signal {
            Some(rx) => rx.await.is_ok(),
            None => false,
        };
        if !signalled {
            std::future::pending::<()>().await;
        }
        self.groups.kill_all();
        self.undone
            .lock()
            .map(|u| u.describe())
            .unwrap_or_else(|_| "interrupted twice: exited at once".to_owned())
    }
}

/// What a hard stop leaves undone: said when it happens, so the operator knows where to look.
#[derive(Debug, Default)]
pub(crate) struct Undone {
    pub(crate) running: BTreeSet<String>,
    pub(crate) rollback_left: Vec<String>,
}

impl Undone {
    fn describe(&self) -> String {
        let list = |v: Vec<&String>| {
            if v.is_empty() {
                "none".to_owned()
            } else {
                v.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
            }
        };
        format!(
            "interrupted twice: exited at once. Steps killed while running: {}. Rollbacks not run: {}. Check the state of the system by hand",
            list(self.running.iter().collect()),
            list(self.rollback_left.iter().collect()),
        )
    }
}
