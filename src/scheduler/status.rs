//! `tidings status`: the report of each job's cron, next run (from the jobs and schedules the
//! serve loop's plan is built from, [`JobKind::configured`], so the pure next-run function the
//! DST tests exercise), last handled slot and
//! last completed run (`job_runs`), deliveries by status, subscribers by status, and the bounce
//! and complaint rates of every sent delivery (with a warning above 0.1% complaints).

use std::collections::BTreeMap;
use std::fmt;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use super::JobKind;
use crate::config::Settings;
use crate::store::{BounceRates, JobRunRecord, Store};

/// One job's line in `tidings status`.
#[derive(Clone, Debug)]
pub struct JobStatus {
    pub name: String,
    /// None when the job is disabled (blank cron).
    pub cron: Option<String>,
    pub next_run: Option<DateTime<Utc>>,
    pub last: Option<JobRunRecord>,
}

/// What `tidings status` shows.
#[derive(Clone, Debug)]
pub struct StatusReport {
    pub now: DateTime<Utc>,
    pub timezone: Tz,
    pub jobs: Vec<JobStatus>,
    pub deliveries: BTreeMap<String, i64>,
    pub subscribers: BTreeMap<String, i64>,
    /// Sent deliveries and those a bounce or a complaint was matched to.
    pub bounces: BounceRates,
}

/// Gathers next and last runs per job and topic, queue depth and subscribers by status.
pub async fn status_report(
    settings: &Settings,
    store: &Store,
    now: DateTime<Utc>,
) -> anyhow::Result<StatusReport> {
    let mut last: BTreeMap<String, JobRunRecord> = store
        .last_runs()
        .await?
        .into_iter()
        .map(|r| (r.job.clone(), r))
        .collect();
    let jobs = JobKind::configured(settings)
        .into_iter()
        .map(|(kind, schedule)| {
            let name = kind.name();
            JobStatus {
                cron: schedule.map(|s| s.expression().to_string()),
                next_run: schedule.and_then(|s| s.next_after(now)),
                last: last.remove(&name),
                name,
            }
        })
        .collect();
    Ok(StatusReport {
        now,
        timezone: settings.schedule.timezone,
        jobs,
        deliveries: store.delivery_status_counts().await?,
        subscribers: store.subscriber_counts_by_status().await?,
        bounces: store.bounce_rates(None).await?,
    })
}

impl fmt::Display for StatusReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let local = |t: DateTime<Utc>| {
            t.with_timezone(&self.timezone)
                .format("%Y-%m-%d %H:%M:%S %Z")
                .to_string()
        };
        writeln!(
            f,
            "now: {} (schedule time zone {})",
            local(self.now),
            self.timezone
        )?;
        writeln!(f, "jobs:")?;
        for job in &self.jobs {
            match (&job.cron, job.next_run) {
                (None, _) => writeln!(f, "  {}: disabled (blank cron)", job.name)?,
                (Some(cron), Some(next)) => {
                    writeln!(f, "  {}: cron \"{cron}\", next {}", job.name, local(next))?
                }
                (Some(cron), None) => writeln!(f, "  {}: cron \"{cron}\", no next run", job.name)?,
            }
            match &job.last {
                Some(r) => {
                    let when = r
                        .last_run_at
                        .map(local)
                        .unwrap_or_else(|| "never completed".into());
                    writeln!(
                        f,
                        "    last: {when}; {}",
                        r.last_result.as_deref().unwrap_or("no result yet")
                    )?;
                    // A later skipped or failed slot does not hide the last one that did the job.
                    let shown = r.last_run_at == r.last_completed_at
                        && r.last_result == r.last_completed_result;
                    if !shown && r.last_result.is_some() {
                        match (r.last_completed_at, &r.last_completed_result) {
                            (Some(at), Some(result)) => {
                                writeln!(f, "    last completed: {}; {result}", local(at))?
                            }
                            _ => writeln!(f, "    last completed: never")?,
                        }
                    }
                }
                None => writeln!(f, "    last: never")?,
            }
        }
        let counts = |m: &BTreeMap<String, i64>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                let total: i64 = m.values().sum();
                let parts: Vec<String> = m.iter().map(|(k, v)| format!("{k} {v}")).collect();
                format!("{} (total {total})", parts.join(", "))
            }
        };
        writeln!(f, "deliveries: {}", counts(&self.deliveries))?;
        writeln!(f, "subscribers: {}", counts(&self.subscribers))?;
        for line in self.bounces.lines() {
            writeln!(f, "bounces: {line}")?;
        }
        Ok(())
    }
}
