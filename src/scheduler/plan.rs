//! The job plan, pure: which jobs exist (fetch, one digest per topic, retry sweep,
//! housekeeping), each with its [`Schedule`] in `[schedule] timezone`, and the decisions the
//! loop makes from the clock alone: the next run, whether a missed digest is caught up on start
//! or skipped as too old, and which slot follows a run that finished late. The serve loop and
//! `tidings status` both use these functions, and so do the DST tests.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;

use crate::config::Settings;
use crate::schedule::Schedule;

/// What a job does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum JobKind {
    /// Fetch every source (`[schedule] fetch_cron`).
    Fetch,
    /// Compile the topic's issue for the period and queue it (topic `cron` or `[schedule] cron`).
    Digest { topic: String },
    /// Count deliveries due again and expired leases, for the job log (`[schedule] retry_cron`).
    RetrySweep,
    /// Purge unconfirmed subscribers and old cached pages (`[schedule] housekeeping_cron`).
    Housekeeping,
}

impl JobKind {
    /// The job's name, as stored in `job_runs` and shown by `tidings status`.
    pub fn name(&self) -> String {
        match self {
            JobKind::Fetch => "fetch".into(),
            JobKind::Digest { topic } => format!("digest:{topic}"),
            JobKind::RetrySweep => "retry".into(),
            JobKind::Housekeeping => "housekeeping".into(),
        }
    }

    /// Every job the settings define, enabled or not, in plan order (fetch first, so a digest
    /// due at the same time sees fresh articles), each with its schedule; `None` when its cron
    /// is blank (the job is disabled). The plan and `tidings status` both list jobs from this.
    pub fn configured(settings: &Settings) -> Vec<(JobKind, Option<&Schedule>)> {
        let sch = &settings.schedule;
        let mut jobs = vec![(JobKind::Fetch, sch.fetch_cron.as_ref())];
        jobs.extend(settings.topics.iter().map(|topic| {
            let kind = JobKind::Digest {
                topic: topic.slug.to_string(),
            };
            (kind, topic.schedule_or(sch))
        }));
        jobs.push((JobKind::RetrySweep, sch.retry_cron.as_ref()));
        jobs.push((JobKind::Housekeeping, sch.housekeeping_cron.as_ref()));
        jobs
    }
}

/// One enabled job and when it runs.
#[derive(Clone, Debug)]
pub struct PlannedJob {
    pub name: String,
    pub kind: JobKind,
    pub schedule: Schedule,
}

/// Every enabled job, in the order jobs due at the same instant run (fetch first, so a digest
/// due at the same time sees fresh articles).
#[derive(Clone, Debug)]
pub struct JobPlan {
    pub jobs: Vec<PlannedJob>,
    pub timezone: Tz,
    /// `[schedule] catch_up_hours`: how old a missed digest may be and still go out.
    pub catch_up: chrono::Duration,
}

/// What to do on start about a digest's latest scheduled time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CatchUp {
    /// Nothing missed: the latest slot was recorded, or there is none.
    Nothing,
    /// The slot was missed and is within the grace period: run it once now.
    Run(DateTime<Utc>),
    /// The slot was missed long ago: record it as skipped, never send it.
    TooOld(DateTime<Utc>),
}

impl JobPlan {
    /// Builds the plan from the settings (whose crons are parsed when they load); a blank cron
    /// disables its job.
    pub fn from_settings(settings: &Settings) -> JobPlan {
        let sch = &settings.schedule;
        let jobs = JobKind::configured(settings)
            .into_iter()
            .filter_map(|(kind, schedule)| {
                Some(PlannedJob {
                    name: kind.name(),
                    schedule: schedule?.clone(),
                    kind,
                })
            })
            .collect();
        let hours = i64::try_from(sch.catch_up_hours).unwrap_or(i64::MAX / 3600 / 1000);
        JobPlan {
            jobs,
            timezone: sch.timezone,
            catch_up: chrono::Duration::hours(hours.min(24 * 366 * 100)),
        }
    }

    pub fn job(&self, name: &str) -> Option<&PlannedJob> {
        self.jobs.iter().find(|j| j.name == name)
    }

    /// Each job's first run strictly after `after`.
    pub fn next_runs(&self, after: DateTime<Utc>) -> Vec<(&PlannedJob, Option<DateTime<Utc>>)> {
        self.jobs
            .iter()
            .map(|j| (j, j.schedule.next_after(after)))
            .collect()
    }

    /// The earliest next run after `after`, with every job due at that instant (in plan order).
    pub fn next_due(&self, after: DateTime<Utc>) -> Option<(DateTime<Utc>, Vec<&PlannedJob>)> {
        let runs = self.next_runs(after);
        let earliest = runs.iter().filter_map(|(_, t)| *t).min()?;
        let jobs = runs
            .into_iter()
            .filter(|(_, t)| *t == Some(earliest))
            .map(|(j, _)| j)
            .collect();
        Some((earliest, jobs))
    }
}

/// Decides on start whether a digest's latest scheduled time at or before `now` must be caught
/// up: only when it has no recorded run (`last_recorded` is older or absent) and is at most
/// `grace` old.
pub fn catch_up_decision(
    schedule: &Schedule,
    last_recorded: Option<DateTime<Utc>>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> CatchUp {
    let Some(latest) = schedule.latest_at_or_before(now) else {
        return CatchUp::Nothing;
    };
    if last_recorded.is_some_and(|done| done >= latest) {
        return CatchUp::Nothing;
    }
    if now - latest <= grace {
        CatchUp::Run(latest)
    } else {
        CatchUp::TooOld(latest)
    }
}

/// The slot to run after `done_slot` was handled at `now`: the next scheduled time; when that
/// already passed (the run took long, or the machine slept), the latest missed one if it is at
/// most `grace` old (missed slots in between are dropped, never run back to back), otherwise
/// the next one after `now`.
pub fn following_slot(
    schedule: &Schedule,
    done_slot: DateTime<Utc>,
    now: DateTime<Utc>,
    grace: chrono::Duration,
) -> Option<DateTime<Utc>> {
    let next = schedule.next_after(done_slot)?;
    if next > now {
        return Some(next);
    }
    match schedule.latest_at_or_before(now) {
        Some(latest) if latest > done_slot && now - latest <= grace => Some(latest),
        _ => schedule.next_after(now),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn settings(toml: &str) -> Settings {
        Settings::from_toml(toml).unwrap()
    }

    const TWO_TOPICS: &str = r#"
[schedule]
cron = "0 0 8 * * Mon"
timezone = "Europe/Berlin"
fetch_cron = "0 0 * * * *"
retry_cron = ""
housekeeping_cron = "0 30 3 * * *"
catch_up_hours = 6

[[topics]]
slug = "rust"
name = "Rust"

[[topics]]
slug = "go"
name = "Go"
cron = "0 30 7 * * *"
"#;

    /// The list of (job, UTC time) the plan runs from `from`, `n` steps, as the loop does.
    fn walk(plan: &JobPlan, from: DateTime<Utc>, n: usize) -> Vec<(String, DateTime<Utc>)> {
        let mut out = Vec::new();
        let mut at = from;
        while out.len() < n {
            let (t, jobs) = plan.next_due(at).unwrap();
            for j in jobs {
                out.push((j.name.clone(), t));
            }
            at = t;
        }
        out
    }

    #[test]
    fn plan_has_enabled_jobs_in_order_and_blank_cron_disables() {
        let plan = JobPlan::from_settings(&settings(TWO_TOPICS));
        let names: Vec<&str> = plan.jobs.iter().map(|j| j.name.as_str()).collect();
        assert_eq!(names, ["fetch", "digest:rust", "digest:go", "housekeeping"]);
        assert_eq!(plan.catch_up, chrono::Duration::hours(6));
        assert_eq!(
            plan.job("digest:go").unwrap().schedule.expression(),
            "0 30 7 * * *"
        );
        assert_eq!(
            plan.job("digest:rust").unwrap().schedule.expression(),
            "0 0 8 * * Mon"
        );
    }

    #[test]
    fn plan_weekly_berlin_digest_stays_at_eight_local_across_spring_change() {
        // Europe/Berlin switches to CEST on Sunday 2026-03-29.
        let plan = JobPlan::from_settings(&settings(TWO_TOPICS));
        let digests: Vec<DateTime<Utc>> = walk(&plan, utc("2026-03-16T00:00:00Z"), 24 * 16 + 40)
            .into_iter()
            .filter(|(n, _)| n == "digest:rust")
            .map(|(_, t)| t)
            .take(3)
            .collect();
        assert_eq!(
            digests,
            [
                utc("2026-03-16T07:00:00Z"),
                utc("2026-03-23T07:00:00Z"),
                utc("2026-03-30T06:00:00Z"),
            ]
        );
    }

    #[test]
    fn plan_daily_berlin_digest_across_autumn_change() {
        // Europe/Berlin returns to CET on Sunday 2026-10-25.
        let plan = JobPlan::from_settings(&settings(TWO_TOPICS));
        let go = &plan.job("digest:go").unwrap().schedule;
        let mut at = utc("2026-10-23T12:00:00Z");
        let mut runs = Vec::new();
        for _ in 0..4 {
            at = go.next_after(at).unwrap();
            runs.push(at);
        }
        assert_eq!(
            runs,
            [
                utc("2026-10-24T05:30:00Z"),
                utc("2026-10-25T06:30:00Z"),
                utc("2026-10-26T06:30:00Z"),
                utc("2026-10-27T06:30:00Z"),
            ]
        );
    }

    #[test]
    fn plan_new_york_digest_and_fetch_across_both_changes() {
        let s = settings(
            r#"
[schedule]
cron = "0 0 9 * * Sun"
timezone = "America/New_York"
fetch_cron = "0 0 2 * * *"
[[topics]]
slug = "rust"
name = "Rust"
"#,
        );
        let plan = JobPlan::from_settings(&s);
        let digest = &plan.job("digest:rust").unwrap().schedule;
        // Spring: 2026-03-08 is a Sunday and the change day itself.
        assert_eq!(
            digest.next_after(utc("2026-03-02T00:00:00Z")).unwrap(),
            utc("2026-03-08T13:00:00Z")
        );
        assert_eq!(
            digest.next_after(utc("2026-02-23T00:00:00Z")).unwrap(),
            utc("2026-03-01T14:00:00Z")
        );
        // Autumn: 2026-11-01 is a Sunday and the change day.
        assert_eq!(
            digest.next_after(utc("2026-10-26T00:00:00Z")).unwrap(),
            utc("2026-11-01T14:00:00Z")
        );
        // 02:00 does not exist on 2026-03-08 in New York: the fetch still runs that day, once.
        let fetch = &plan.job("fetch").unwrap().schedule;
        let first = fetch.next_after(utc("2026-03-07T12:00:00Z")).unwrap();
        let second = fetch.next_after(first).unwrap();
        assert!(
            first > utc("2026-03-08T05:00:00Z") && first < utc("2026-03-08T08:00:00Z"),
            "{first}"
        );
        assert_eq!(second, utc("2026-03-09T06:00:00Z"));
        // 02:00 happens once on 2026-11-01 (01:00-02:00 repeats, 02:00 does not).
        let nov = fetch.next_after(utc("2026-10-31T12:00:00Z")).unwrap();
        assert_eq!(nov, utc("2026-11-01T07:00:00Z"));
        assert_eq!(fetch.next_after(nov).unwrap(), utc("2026-11-02T07:00:00Z"));
    }

    #[test]
    fn catch_up_runs_a_recent_missed_slot_once() {
        let plan = JobPlan::from_settings(&settings(TWO_TOPICS));
        let rust = &plan.job("digest:rust").unwrap().schedule;
        // Monday 2026-02-02 08:00 Berlin = 07:00Z; started at 10:00Z (3 h late, grace 6 h).
        let now = utc("2026-02-02T10:00:00Z");
        let slot = utc("2026-02-02T07:00:00Z");
        assert_eq!(
            catch_up_decision(rust, None, now, plan.catch_up),
            CatchUp::Run(slot)
        );
        // Once recorded, never again.
        assert_eq!(
            catch_up_decision(rust, Some(slot), now, plan.catch_up),
            CatchUp::Nothing
        );
        // A record of last week's run does not count for this week.
        assert_eq!(
            catch_up_decision(rust, Some(utc("2026-01-26T07:00:00Z")), now, plan.catch_up),
            CatchUp::Run(slot)
        );
    }

    #[test]
    fn catch_up_skips_a_slot_older_than_the_grace_period() {
        let plan = JobPlan::from_settings(&settings(TWO_TOPICS));
        let rust = &plan.job("digest:rust").unwrap().schedule;
        let slot = utc("2026-02-02T07:00:00Z");
        assert_eq!(
            catch_up_decision(rust, None, utc("2026-02-02T13:00:00Z"), plan.catch_up),
            CatchUp::Run(slot)
        );
        assert_eq!(
            catch_up_decision(rust, None, utc("2026-02-02T13:00:01Z"), plan.catch_up),
            CatchUp::TooOld(slot)
        );
    }

    #[test]
    fn following_slot_drops_missed_slots_but_runs_the_latest_once() {
        let s = Schedule::new("*/5 * * * * *", "UTC").unwrap();
        let grace = chrono::Duration::hours(1);
        let done = utc("2026-02-02T08:00:00Z");
        // On time: the next slot.
        assert_eq!(
            following_slot(&s, done, utc("2026-02-02T08:00:01Z"), grace),
            Some(utc("2026-02-02T08:00:05Z"))
        );
        // The run took 12 s: slots :05 and :10 passed; run :10 once, not :05 then :10.
        assert_eq!(
            following_slot(&s, done, utc("2026-02-02T08:00:12Z"), grace),
            Some(utc("2026-02-02T08:00:10Z"))
        );
        // Two hours late: the latest slot is within the grace and runs once.
        assert_eq!(
            following_slot(&s, done, utc("2026-02-02T10:00:02Z"), grace),
            Some(utc("2026-02-02T10:00:00Z"))
        );
        // The latest slot beyond the grace: wait for the next one.
        assert_eq!(
            following_slot(
                &s,
                done,
                utc("2026-02-02T10:00:02Z"),
                chrono::Duration::seconds(1)
            ),
            Some(utc("2026-02-02T10:00:05Z"))
        );
    }
}
