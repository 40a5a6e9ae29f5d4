//! Runs one scenario through the real engine: params bound as for `run`, secrets taken from
//! the scenario (masked as in a real run), approvals given as the scenario says, and every
//! action answered by the scenario's mocks. What comes back is what a real run leaves: its
//! events (masked), the report it would print, and its exit code.

use std::sync::Arc;

use super::file::{Approvals, Scenario};
use super::mock::Mocked;
use crate::bind::ParamError;
use crate::context::RunInfo;
use crate::dag::Dag;
use crate::exec::event::{Event, Sink};
use crate::exec::{self, Interrupts, Job};
use crate::mask::Masker;
use crate::model::Runbook;
use crate::report::test::Transcript;

/// What a scenario's run left.
pub struct Ran {
    pub events: Vec<Event>,
    /// The report the run would print (lines and summary), secrets masked.
    pub output: String,
    pub exit_code: u8,
    /// Attempts that had no mock.
    pub missing: Vec<String>,
    /// Mocks the run did not use (see [`Mocked::unused`]).
    pub unused: Vec<String>,
}

/// Why a scenario could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum NotRun {
    #[error("invalid parameters:{}", .0.iter().map(|e| format!(" {e};")).collect::<String>())]
    Params(Vec<ParamError>),
    #[error("{0}")]
    EnvFile(#[from] crate::env_file::EnvFileError),
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

/// The run id every scenario's report shows.
pub const RUN_ID: &str = "test";

pub fn run(
    runbook: &Runbook,
    dag: &Dag,
    scenario: &Scenario,
    concurrency: usize,
) -> Result<Ran, NotRun> {
    // Params as `-p KEY=VALUE` pairs, read as their declared types; secrets set aside.
    let mut pairs = Vec::new();
    let mut secrets = Vec::new();
    for (name, value) in &scenario.params {
        let text = match value {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        if runbook.secrets.contains_key(name.as_str()) {
            secrets.push((name.value.clone(), text));
        } else {
            pairs.push(format!("{}={text}", name.value));
        }
    }
    // A secret the scenario does not give still gets a value, masked like any other.
    for name in runbook.secrets.keys() {
        if !secrets.iter().any(|(n, _)| n == name) {
            secrets.push((name.clone(), format!("test-secret-{name}")));
        }
    }
    let bound = crate::bind::bind(runbook, &pairs, None, false).map_err(NotRun::Params)?;
    let env = crate::env_file::read(runbook)?;
    let masker = Masker::new(
        secrets
            .iter()
            .map(|(_, v)| v.as_str())
            .chain(env.secret_values()),
    );
    let transcript = Arc::new(Transcript::new(masker.clone()));
    let sink: Arc<dyn Sink> = Arc::new(exec::masked::Masked::new(
        masker.clone(),
        transcript.clone(),
    ));
    let mocked = Arc::new(Mocked::new(
        scenario
            .mocks
            .iter()
            .map(|(unit, mocks)| (unit.value.clone(), mocks.clone()))
            .collect(),
    ));
    let (given, all) = match &scenario.approvals {
        Approvals::None => (Vec::new(), false),
        Approvals::All => (Vec::new(), true),
        Approvals::Given(ids) => (ids.iter().map(|i| i.value.clone()).collect(), false),
    };
    let options = exec::Options {
        concurrency,
        approvals: crate::steps::approval::Approvals {
            given,
            all,
            prompter: None,
            ballot: None,
        },
        no_rollback: false,
        stand_in: Some(mocked.clone()),
    };
    let job = Job {
        runbook: Arc::new(runbook.clone()),
        dag: Arc::new(dag.clone()),
        params: bound.values,
        secrets,
        env,
        run: RunInfo {
            id: RUN_ID.to_owned(),
            dry_run: false,
            started_at: crate::exec::event::now(),
            dir: runbook.dir.display().to_string(),
            outcome: None,
        },
        origin: None,
        resume: None,
    };
    // Virtual time: nothing real runs, so the clock jumps to the next timer whenever every
    // task waits. Waits, retry delays and timeouts keep their order and meaning, and take no
    // time.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .start_paused(true)
        .build()
        .map_err(|e| NotRun::Runtime(e.to_string()))?;
    let summary = runtime.block_on(async {
        let interrupts = Interrupts::listen(sink.clone());
        exec::run(job, options, sink, interrupts).await
    });
    runtime.shutdown_background();
    transcript.summary(RUN_ID, &summary);
    Ok(Ran {
        events: transcript.events(),
        output: transcript.text(),
        exit_code: summary.exit_code,
        missing: mocked.missing(),
        unused: mocked.unused(&scenario.shared_mocks),
    })
}
