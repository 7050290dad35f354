//! The scheduler that `tidings serve` runs: fetch sources, compile and queue each topic's digest
//! when due, sweep for deliveries due again, and keep house, each on its own cron in
//! `[schedule] timezone`.
//!
//! A hand-written loop over the pure next-run function of [`crate::schedule`] (the one the DST
//! tests exercise) rather than tokio-cron-scheduler, which fixes a zone's UTC offset when a job
//! is created. The loop keeps a queue of (job, scheduled time) pairs, runs those due, and sleeps
//! until the earliest next one (at most `max_idle`, so a clock jump is noticed) or shutdown.
//!
//! Exactly once across instances: a digest run for (topic, scheduled time) is claimed through a
//! lease row in `locks` ([`Store::claim_run`]); only the winner compiles and queues. Compiling is
//! idempotent per period and queueing is idempotent, so a claimant that dies mid-run is
//! repaired by whoever claims after its lease expires; losers re-check at that moment. The
//! result goes to `job_runs`, whose `last_run_at` (the scheduled time handled) also drives
//! catch-up on start: a missed digest within `[schedule] catch_up_hours` runs once, an older
//! one is recorded as skipped.
//!
//! Beside the loop: [`publish()`] (the one publish path, shared with `tidings run` and `tidings
//! send`), [`record`] (the `job_runs` record, shared with the commands that do a job's work) and
//! [`status`] (`tidings status`).

mod clock;
mod local_time;
mod plan;
pub mod publish;
pub mod record;
pub mod status;

use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use tokio::sync::{mpsc, watch};

pub use clock::{Clock, ManualClock, SystemClock};
pub use local_time::{local_not_before, parse_timezone};
pub use plan::{CatchUp, JobKind, JobPlan, PlannedJob, catch_up_decision, following_slot};
pub use publish::{IssueToPublish, LocalRelease, LocalTimes, Publication, publish};
pub use record::{record_digest_published, record_fetch};
pub use status::{JobStatus, StatusReport, status_report};

use crate::config::Settings;
use crate::store::{RunEnd, Store};

/// Pending subscribers who never confirmed, and cached pages, are deleted after this long.
pub const HOUSEKEEPING_AGE_DAYS: i64 = 30;

/// Runs the scheduler until `shutdown` becomes true (or its sender is dropped). A job running at
/// that moment is abandoned; its claim's lease expires and another instance, or this one on its
/// next start, repairs it.
pub async fn run(
    settings: Arc<Settings>,
    store: Store,
    clock: Arc<dyn Clock>,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<()> {
    Scheduler::new(settings, store, clock).run(shutdown).await
}

/// Tunables that are not configuration: who this instance is and how long it holds claims.
#[derive(Clone, Debug)]
pub struct SchedulerOptions {
    /// This instance's name in claims; unique per process.
    pub owner: String,
    /// How long a digest claim is held before others may take over (longer than a compile).
    pub claim_lease: chrono::Duration,
    /// After a failed digest run, try the same slot again this much later (within the grace).
    pub retry_failed_after: chrono::Duration,
    /// The longest the loop sleeps before looking at the clock again.
    pub max_idle: std::time::Duration,
}

impl Default for SchedulerOptions {
    fn default() -> Self {
        let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "host".into());
        let id = uuid::Uuid::new_v4().simple().to_string();
        SchedulerOptions {
            owner: format!("{host}:{}:{}", std::process::id(), &id[..8]),
            claim_lease: chrono::Duration::minutes(15),
            retry_failed_after: chrono::Duration::minutes(5),
            max_idle: std::time::Duration::from_secs(60),
        }
    }
}

/// How one attempt at a (job, scheduled time) ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OutcomeKind {
    /// This instance did the work.
    Ran,
    /// The work failed; recorded, and for a digest retried later within the grace period.
    Failed,
    /// A missed digest older than `catch_up_hours`: recorded as skipped, never sent.
    SkippedTooOld,
    /// Another instance holds the claim; this one re-checks when its lease ends.
    HeldElsewhere,
    /// Another instance (or an earlier run) already did it.
    AlreadyDone,
}

/// What the scheduler did about one (job, scheduled time); sent to the outcome channel.
#[derive(Clone, Debug)]
pub struct JobOutcome {
    pub job: String,
    pub slot: DateTime<Utc>,
    pub kind: OutcomeKind,
    pub summary: String,
    /// The issue a digest run compiled or found.
    pub issue_id: Option<i64>,
}

#[derive(Clone, Copy, Debug)]
struct Pending {
    job: usize,
    slot: DateTime<Utc>,
    run_at: DateTime<Utc>,
    /// A regular slot schedules the following one when done; catch-ups and re-checks do not.
    regular: bool,
}

/// The scheduler loop and its state. [`Scheduler::run`] is the long-running form;
/// [`Scheduler::start`] and [`Scheduler::run_due`] let tests drive it step by step.
pub struct Scheduler {
    settings: Arc<Settings>,
    store: Store,
    clock: Arc<dyn Clock>,
    plan: JobPlan,
    options: SchedulerOptions,
    outcomes: Option<mpsc::UnboundedSender<JobOutcome>>,
    queue: Vec<Pending>,
}

/// The result of one job body, before it is recorded.
struct Attempt {
    kind: OutcomeKind,
    summary: String,
    recheck_at: Option<DateTime<Utc>>,
    /// A digest claim to finish (after recording success) or release (after failure).
    claim: Option<String>,
    issue_id: Option<i64>,
}

impl Attempt {
    /// An attempt with nothing to re-check, no claim and no issue.
    fn new(kind: OutcomeKind, summary: String) -> Attempt {
        Attempt {
            kind,
            summary,
            recheck_at: None,
            claim: None,
            issue_id: None,
        }
    }

    fn simple(result: anyhow::Result<String>) -> Attempt {
        match result {
            Ok(summary) => Attempt::new(OutcomeKind::Ran, summary),
            Err(e) => Attempt::new(OutcomeKind::Failed, format!("failed: {e:#}")),
        }
    }
}

/// The claim key of a digest run: one per topic and scheduled time.
pub fn digest_claim_key(topic: &str, slot: DateTime<Utc>) -> String {
    format!(
        "digest:{topic}:{}",
        slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

impl Scheduler {
    /// Builds the job plan from the settings (parsed and checked when they loaded, so this
    /// cannot fail).
    pub fn new(settings: Arc<Settings>, store: Store, clock: Arc<dyn Clock>) -> Scheduler {
        let plan = JobPlan::from_settings(&settings);
        Scheduler {
            settings,
            store,
            clock,
            plan,
            options: SchedulerOptions::default(),
            outcomes: None,
            queue: Vec::new(),
        }
    }

    pub fn with_options(mut self, options: SchedulerOptions) -> Scheduler {
        self.options = options;
        self
    }

    /// Sends every [`JobOutcome`] to `sender` (for tests and metrics).
    pub fn with_outcomes(mut self, sender: mpsc::UnboundedSender<JobOutcome>) -> Scheduler {
        self.outcomes = Some(sender);
        self
    }

    pub fn plan(&self) -> &JobPlan {
        &self.plan
    }

    pub fn options(&self) -> &SchedulerOptions {
        &self.options
    }

    /// Runs until `shutdown` becomes true or its sender is dropped.
    pub async fn run(mut self, mut shutdown: watch::Receiver<bool>) -> anyhow::Result<()> {
        if *shutdown.borrow_and_update() {
            return Ok(());
        }
        tokio::select! {
            started = self.start() => started?,
            () = shutdown_signalled(&mut shutdown) => return Ok(()),
        }
        loop {
            while let Some(item) = self.pop_due(self.clock.now()) {
                tokio::select! {
                    outcome = self.run_item(item) => self.emit(outcome),
                    () = shutdown_signalled(&mut shutdown) => {
                        tracing::info!("scheduler stopping during a job; its claim's lease will expire");
                        return Ok(());
                    }
                }
            }
            let now = self.clock.now();
            let wait = self
                .next_wake()
                .map(|t| (t - now).to_std().unwrap_or_default())
                .unwrap_or(self.options.max_idle)
                .min(self.options.max_idle);
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                () = shutdown_signalled(&mut shutdown) => break,
            }
        }
        tracing::info!("scheduler stopped");
        Ok(())
    }

    /// Plans the first run of every job from the clock, catches up missed digests within the
    /// grace period (queued to run now) and records older ones as skipped. Call once.
    pub async fn start(&mut self) -> anyhow::Result<()> {
        let now = self.clock.now();
        self.queue.clear();
        if self.plan.jobs.is_empty() {
            tracing::warn!("scheduler: every job is disabled (all crons are blank)");
        }
        for idx in 0..self.plan.jobs.len() {
            let job = self.plan.jobs[idx].clone();
            let next = job.schedule.next_after(now);
            if let Some(next) = next {
                self.queue.push(Pending {
                    job: idx,
                    slot: next,
                    run_at: next,
                    regular: true,
                });
            }
            if let JobKind::Digest { .. } = job.kind {
                let last = self
                    .store
                    .job_run(&job.name)
                    .await
                    .with_context(|| format!("reading the last run of {}", job.name))?
                    .and_then(|r| r.last_run_at);
                match catch_up_decision(&job.schedule, last, now, self.plan.catch_up) {
                    CatchUp::Nothing => {}
                    CatchUp::Run(slot) => {
                        tracing::info!(job = %job.name, slot = %slot, "catching up a missed run");
                        self.queue.push(Pending {
                            job: idx,
                            slot,
                            run_at: now,
                            regular: false,
                        });
                    }
                    CatchUp::TooOld(slot) => {
                        let summary = too_old_summary(slot, self.plan.catch_up);
                        tracing::warn!(job = %job.name, slot = %slot, "{summary}");
                        self.store
                            .record_job_run(&job.name, RunEnd::Skipped(slot), &summary, next, now)
                            .await?;
                        self.emit(JobOutcome {
                            job: job.name.clone(),
                            slot,
                            kind: OutcomeKind::SkippedTooOld,
                            summary,
                            issue_id: None,
                        });
                    }
                }
            }
            self.store.set_next_run(&job.name, next, now).await?;
            tracing::info!(job = %job.name, cron = job.schedule.expression(), next_run = ?next.map(|t| self.local(t)), "job scheduled");
        }
        Ok(())
    }

    /// Runs every queued (job, slot) due at the clock's time, in order, and returns what
    /// happened. Follow-up slots and re-checks are queued as it goes.
    pub async fn run_due(&mut self) -> Vec<JobOutcome> {
        let mut out = Vec::new();
        while let Some(item) = self.pop_due(self.clock.now()) {
            let outcome = self.run_item(item).await;
            self.emit(outcome.clone());
            out.push(outcome);
        }
        out
    }

    /// When the loop next has something to do.
    pub fn next_wake(&self) -> Option<DateTime<Utc>> {
        self.queue.iter().map(|p| p.run_at).min()
    }

    fn pop_due(&mut self, now: DateTime<Utc>) -> Option<Pending> {
        let (pos, _) = self
            .queue
            .iter()
            .enumerate()
            .filter(|(_, p)| p.run_at <= now)
            .min_by_key(|(_, p)| (p.run_at, p.job, p.slot))?;
        Some(self.queue.swap_remove(pos))
    }

    fn emit(&self, outcome: JobOutcome) {
        if let Some(tx) = &self.outcomes {
            let _ = tx.send(outcome);
        }
    }

    fn local(&self, t: DateTime<Utc>) -> String {
        t.with_timezone(&self.plan.timezone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    }

    async fn run_item(&mut self, item: Pending) -> JobOutcome {
        let job = self.plan.jobs[item.job].clone();
        tracing::info!(job = %job.name, slot = %self.local(item.slot), "job starting");
        let attempt = match &job.kind {
            JobKind::Fetch => Attempt::simple(self.fetch().await),
            JobKind::Digest { topic } => self.digest(topic, item.slot).await,
            JobKind::RetrySweep => Attempt::simple(self.retry_sweep().await),
            JobKind::Housekeeping => Attempt::simple(self.housekeeping().await),
        };
        let now = self.clock.now();
        if item.regular {
            let grace = match job.kind {
                JobKind::Digest { .. } => self.plan.catch_up,
                // Run a missed fetch or sweep once, late, rather than wait a whole period.
                _ => chrono::Duration::days(3650),
            };
            if let Some(next) = following_slot(&job.schedule, item.slot, now, grace) {
                self.queue.push(Pending {
                    job: item.job,
                    slot: next,
                    run_at: next,
                    regular: true,
                });
            }
        }
        if let Some(at) = attempt.recheck_at {
            self.queue.push(Pending {
                job: item.job,
                slot: item.slot,
                run_at: at,
                regular: false,
            });
        }
        let next = self
            .queue
            .iter()
            .filter(|p| p.job == item.job)
            .map(|p| p.slot.max(p.run_at))
            .min();
        if let Err(e) = self.record(&job.name, item.slot, &attempt, next, now).await {
            tracing::error!(job = %job.name, error = %format!("{e:#}"), "cannot record the job's run");
        }
        match attempt.kind {
            OutcomeKind::Failed => {
                tracing::error!(job = %job.name, slot = %self.local(item.slot), result = %attempt.summary, next_run = ?next.map(|t| self.local(t)), "job failed")
            }
            _ => {
                tracing::info!(job = %job.name, slot = %self.local(item.slot), result = %attempt.summary, next_run = ?next.map(|t| self.local(t)), "job finished")
            }
        }
        JobOutcome {
            job: job.name,
            slot: item.slot,
            kind: attempt.kind,
            summary: attempt.summary,
            issue_id: attempt.issue_id,
        }
    }

    async fn record(
        &self,
        job: &str,
        slot: DateTime<Utc>,
        attempt: &Attempt,
        next: Option<DateTime<Utc>>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        match attempt.kind.run_end(slot) {
            Some(end) => {
                self.store
                    .record_job_run(job, end, &attempt.summary, next, now)
                    .await?
            }
            None => self.store.set_next_run(job, next, now).await?,
        }
        match (&attempt.claim, attempt.kind) {
            (Some(key), OutcomeKind::Ran | OutcomeKind::SkippedTooOld) => {
                self.finish_claim(key, slot, now).await?;
            }
            (Some(key), OutcomeKind::Failed) => {
                self.store.release_run(key, &self.options.owner).await?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Marks the claim `key` on `slot` done, held past any catch-up, so the slot is never
    /// claimed again.
    async fn finish_claim(
        &self,
        key: &str,
        slot: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> anyhow::Result<()> {
        let hold = slot + self.plan.catch_up + chrono::Duration::days(1);
        self.store
            .finish_run(key, &self.options.owner, hold.max(now))
            .await?;
        Ok(())
    }

    async fn fetch(&self) -> anyhow::Result<String> {
        let now = self.clock.now();
        let report = crate::pipeline::fetch_all(&self.settings, &self.store, now, None).await?;
        anyhow::ensure!(
            !report.all_failed(),
            "{}:\n{report}",
            report.all_failed_message()
        );
        Ok(format!("ok: {report}"))
    }

    async fn retry_sweep(&self) -> anyhow::Result<String> {
        let now = self.clock.now();
        let (due, stale) = self.store.deliveries_due(now).await?;
        Ok(format!(
            "ok: {due} deliveries due, {stale} with expired leases"
        ))
    }

    async fn housekeeping(&self) -> anyhow::Result<String> {
        let now = self.clock.now();
        let cutoff = now - chrono::Duration::days(HOUSEKEEPING_AGE_DAYS);
        let purged = self.store.purge_unconfirmed(cutoff).await?;
        let pages = self.store.delete_pages_older_than(cutoff).await?;
        let claims = self.store.delete_expired_run_claims(now).await?;
        Ok(format!(
            "ok: {purged} unconfirmed subscribers purged, {pages} cached pages deleted, {claims} old claims removed"
        ))
    }

    async fn digest(&self, slug: &str, slot: DateTime<Utc>) -> Attempt {
        let now = self.clock.now();
        let job = JobKind::Digest {
            topic: slug.to_string(),
        }
        .name();
        if now - slot > self.plan.catch_up {
            return Attempt::new(
                OutcomeKind::SkippedTooOld,
                too_old_summary(slot, self.plan.catch_up),
            );
        }
        let key = digest_claim_key(slug, slot);
        let owner = &self.options.owner;
        let failed = |e: anyhow::Error, claim: Option<String>| {
            let retry = now + self.options.retry_failed_after;
            Attempt {
                recheck_at: (retry - slot <= self.plan.catch_up).then_some(retry),
                claim,
                ..Attempt::new(OutcomeKind::Failed, format!("failed: {e:#}"))
            }
        };
        let claimed = match self
            .store
            .claim_run(&key, owner, now, self.options.claim_lease)
            .await
        {
            Ok(c) => c,
            Err(e) => return failed(e.into(), None),
        };
        let done = match self.store.job_run(&job).await {
            Ok(r) => r.and_then(|r| r.last_run_at).is_some_and(|t| t >= slot),
            Err(e) => return failed(e.into(), claimed.then(|| key.clone())),
        };
        if done {
            if claimed && let Err(e) = self.finish_claim(&key, slot, now).await {
                tracing::warn!(claim = %key, error = %e, "cannot finish the claim");
            }
            return Attempt::new(OutcomeKind::AlreadyDone, "already done".into());
        }
        if !claimed {
            let holder = self.store.run_claim_holder(&key).await.ok().flatten();
            let until = holder
                .as_ref()
                .map(|h| h.expires_at)
                .unwrap_or(now)
                .max(now + chrono::Duration::seconds(1));
            let summary = format!(
                "claimed by {} until {until}; re-checking then",
                holder
                    .map(|h| h.owner)
                    .unwrap_or_else(|| "another instance".into())
            );
            return Attempt {
                recheck_at: Some(until),
                ..Attempt::new(OutcomeKind::HeldElsewhere, summary)
            };
        }
        match self.compile_and_queue(slug, slot).await {
            Ok((issue_id, summary)) => Attempt {
                claim: Some(key),
                issue_id,
                ..Attempt::new(OutcomeKind::Ran, summary)
            },
            Err(e) => failed(e, Some(key)),
        }
    }

    async fn compile_and_queue(
        &self,
        slug: &str,
        slot: DateTime<Utc>,
    ) -> anyhow::Result<(Option<i64>, String)> {
        let topic = self
            .settings
            .topic(slug)
            .with_context(|| format!("topic {slug:?} is no longer configured"))?;
        let publication = publish(
            &self.settings,
            &self.store,
            topic,
            IssueToPublish::Period(slot),
            self.clock.as_ref(),
        )
        .await?;
        Ok(match publication {
            Publication::NothingOnTopic(empty) => (
                None,
                format!(
                    "ok: no articles on topic from {} to {}: no issue, nothing queued",
                    empty
                        .window_start
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                    empty
                        .window_end
                        .to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
                ),
            ),
            Publication::NoArticles(issue) => (
                Some(issue.issue_id),
                format!(
                    "ok: issue #{} has no articles: nothing queued",
                    issue.issue_id
                ),
            ),
            Publication::Queued {
                issue,
                queued,
                local,
                ..
            } => (
                Some(issue.issue_id),
                format!(
                    "ok: issue #{} ({} articles, {}), {queued} deliveries queued{}",
                    issue.issue_id,
                    issue.digest.entries.len(),
                    if issue.newly_compiled {
                        "compiled now"
                    } else {
                        "compiled earlier"
                    },
                    local.map(|l| format!(", {l}")).unwrap_or_default(),
                ),
            ),
        })
    }
}

fn too_old_summary(slot: DateTime<Utc>, grace: chrono::Duration) -> String {
    format!(
        "skipped: the run due at {} was missed and is older than catch_up_hours ({} h)",
        slot.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        grace.num_hours()
    )
}

async fn shutdown_signalled(rx: &mut watch::Receiver<bool>) {
    loop {
        if *rx.borrow_and_update() {
            return;
        }
        if rx.changed().await.is_err() {
            return;
        }
    }
}
