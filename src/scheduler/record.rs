//! The run record in `job_runs` (last slot handled, its one-line result, the last completed run,
//! the next run), written through one store call ([`Store::record_job_run`]) with one ending
//! ([`RunEnd`]: done, skipped or failed) by the serve loop and by the commands that do a job's
//! work themselves (`tidings fetch`, `tidings run`), so `tidings status` shows either. A command's
//! record takes the job's next run from the same jobs and schedules ([`JobKind::configured`])
//! the loop's plan and `status` are built from.

use chrono::{DateTime, Utc};

use super::{JobKind, OutcomeKind};
use crate::config::Settings;
use crate::pipeline::{CompiledIssue, FetchReport};
use crate::store::{RunEnd, Store};

impl OutcomeKind {
    /// How the loop records an attempt at `slot` that ended this way; None when this instance
    /// did nothing to record (another holds the claim, or the slot was done already).
    pub fn run_end(self, slot: DateTime<Utc>) -> Option<RunEnd> {
        match self {
            OutcomeKind::Ran => Some(RunEnd::Done(slot)),
            OutcomeKind::SkippedTooOld => Some(RunEnd::Skipped(slot)),
            OutcomeKind::Failed => Some(RunEnd::Failed),
            OutcomeKind::HeldElsewhere | OutcomeKind::AlreadyDone => None,
        }
    }
}

/// Records what a command did as the run of `kind`, with the job's next run from the plan (None
/// when the job is disabled).
pub async fn record_command_run(
    settings: &Settings,
    store: &Store,
    kind: &JobKind,
    end: RunEnd,
    summary: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let next = JobKind::configured(settings)
        .into_iter()
        .find(|(configured, _)| configured == kind)
        .and_then(|(_, schedule)| schedule?.next_after(now));
    store
        .record_job_run(&kind.name(), end, summary, next, now)
        .await?;
    Ok(())
}

/// Records a fetch that a command did (`tidings fetch`, `tidings run`, named by `by`) as the
/// fetch job's last run, so `tidings status` shows it: done at `at`, or failed when every
/// source failed.
pub async fn record_fetch(
    settings: &Settings,
    store: &Store,
    report: &FetchReport,
    at: DateTime<Utc>,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let (end, summary) = if report.all_failed() {
        (
            RunEnd::Failed,
            format!("failed ({by}): {}", report.all_failed_message()),
        )
    } else {
        (RunEnd::Done(at), format!("ok ({by}): {}", report.summary()))
    };
    record_command_run(settings, store, &JobKind::Fetch, end, &summary, now).await
}

/// Records the period of an issue a command published (`by`, e.g. `tidings run`) as the topic's
/// last digest run, done at the period's end (its scheduled time), so `tidings status` shows it
/// and a `serve` started later does not treat the period as missed (queueing again would be a
/// no-op anyway: deliveries are unique per issue and subscriber).
pub async fn record_digest_published(
    settings: &Settings,
    store: &Store,
    topic: &str,
    compiled: &CompiledIssue,
    by: &str,
    now: DateTime<Utc>,
) -> anyhow::Result<()> {
    let summary = format!(
        "{by}: issue #{} ({} article(s))",
        compiled.issue_id,
        compiled.digest.entries.len()
    );
    let kind = JobKind::Digest {
        topic: topic.to_string(),
    };
    let end = RunEnd::Done(compiled.digest.window_end);
    record_command_run(settings, store, &kind, end, &summary, now).await
}
