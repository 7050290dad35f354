//! The one publish path for an issue, which `tidings run`, `tidings send` and the scheduler's
//! digest job all call: compile the period's issue unless nothing in it is on topic (an empty
//! period is never frozen), queue one delivery per confirmed subscriber of the topic, held when
//! the topic has a local delivery time, then release those rows per subscriber zone at that
//! time. Nothing else queues an issue.

use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, NaiveTime, Utc};
use chrono_tz::Tz;

use super::{Clock, local_not_before, parse_timezone};
use crate::config::{Settings, TopicSettings};
use crate::domain::Digest;
use crate::pipeline::CompiledIssue;
use crate::store::Store;

/// Which issue [`publish`] queues.
#[derive(Clone, Debug)]
pub enum IssueToPublish {
    /// The issue of the period containing this time: the one frozen earlier, or compiled now
    /// unless nothing in the period is on topic.
    Period(DateTime<Utc>),
    /// An issue already frozen (`tidings send --issue`).
    Frozen(CompiledIssue),
}

impl IssueToPublish {
    /// The issue itself, compiling the period's when needed, or the empty digest of a period with
    /// nothing on topic (then nothing is frozen). The first step of [`publish`]; `send --to` and
    /// `send --dry-run` stop after it.
    pub async fn resolve(
        self,
        settings: &Settings,
        store: &Store,
        topic: &TopicSettings,
    ) -> anyhow::Result<Result<CompiledIssue, Digest>> {
        match self {
            IssueToPublish::Frozen(compiled) => Ok(Ok(compiled)),
            IssueToPublish::Period(at) => {
                crate::pipeline::compile_period(settings, store, topic, at, false)
                    .await
                    .with_context(|| format!("compiling {}", topic.slug))
            }
        }
    }
}

/// What [`publish`] did.
#[derive(Debug)]
pub enum Publication {
    /// Nothing in the period is on topic: no issue frozen, nothing queued. Holds the empty
    /// digest (its window).
    NothingOnTopic(Digest),
    /// The issue has no articles: nothing queued (an empty digest is never sent).
    NoArticles(CompiledIssue),
    /// Deliveries were queued at `queued_at` (`queued` new ones; 0 when they existed already).
    Queued {
        issue: CompiledIssue,
        queued: u64,
        local: Option<LocalTimes>,
        queued_at: DateTime<Utc>,
    },
}

/// Publishes `topic`'s issue: resolves it ([`IssueToPublish::resolve`]), then, on `clock`'s time
/// right after compiling, queues it for the topic's confirmed subscribers, holding each delivery
/// until the topic's local delivery time when it has one. Idempotent: running it again for the
/// same issue queues nothing new, and rows already released stay released.
pub async fn publish(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    issue: IssueToPublish,
    clock: &dyn Clock,
) -> anyhow::Result<Publication> {
    let compiled = match issue.resolve(settings, store, topic).await? {
        Ok(compiled) => compiled,
        Err(empty) => return Ok(Publication::NothingOnTopic(empty)),
    };
    if compiled.digest.entries.is_empty() {
        return Ok(Publication::NoArticles(compiled));
    }
    let now = clock.now();
    let (queued, local) = queue_and_release(settings, store, topic, compiled.issue_id, now)
        .await
        .with_context(|| format!("queueing issue #{}", compiled.issue_id))?;
    Ok(Publication::Queued {
        issue: compiled,
        queued,
        local,
        queued_at: now,
    })
}

/// Enqueue held, then release for the local delivery time.
async fn queue_and_release(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    issue_id: i64,
    now: DateTime<Utc>,
) -> anyhow::Result<(u64, Option<LocalTimes>)> {
    // With a local delivery time the rows are written held (longer than any zone's next local
    // time can be away) and released per zone below: no worker can claim a row before its
    // local time, and a crash in between only delays, never sends early (the scheduler's
    // repair run applies the times again).
    let not_before = if topic.deliver_at_local.is_some() {
        now + chrono::Duration::days(3)
    } else {
        now
    };
    let queued = store
        .enqueue_issue_held(issue_id, &topic.slug, now, not_before)
        .await?;
    let local = apply_local_delivery_time(settings, store, topic, issue_id, now).await?;
    Ok((queued, local))
}

/// What the release step of [`publish`] did: rows held for the local delivery time, zones, and
/// the earliest and latest release.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LocalTimes {
    pub zones: usize,
    pub rows: u64,
    pub earliest: Option<DateTime<Utc>>,
    pub latest: Option<DateTime<Utc>>,
}

impl fmt::Display for LocalTimes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} held for local delivery in {} zones",
            self.rows, self.zones
        )?;
        if let (Some(a), Some(b)) = (self.earliest, self.latest) {
            write!(
                f,
                " ({} to {})",
                a.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                b.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
            )?;
        }
        Ok(())
    }
}

/// For a topic with `deliver_at_local`, holds `issue_id`'s queued deliveries until that time in
/// each subscriber's zone (the schedule's zone for those without one or with an unknown one),
/// counted from `compiled_at` (the caller's clock right after compiling): the release step of
/// [`publish`], right after the held rows are written; only queued, never-attempted rows that
/// are still held change. Returns None when the topic has no local delivery time.
async fn apply_local_delivery_time(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    issue_id: i64,
    compiled_at: DateTime<Utc>,
) -> anyhow::Result<Option<LocalTimes>> {
    let Some(release) = LocalRelease::of(settings, topic) else {
        return Ok(None);
    };
    let zones = store.issue_delivery_timezones(issue_id).await?;
    let per_zone: Vec<(Option<String>, DateTime<Utc>)> = zones
        .into_iter()
        .map(|zone| {
            let at = release.time_for(zone.as_deref(), compiled_at);
            (zone, at)
        })
        .collect();
    let rows = store
        .set_local_not_before(issue_id, &per_zone, compiled_at)
        .await?;
    Ok(Some(LocalTimes {
        zones: per_zone.len(),
        rows,
        earliest: per_zone.iter().map(|(_, t)| *t).min(),
        latest: per_zone.iter().map(|(_, t)| *t).max(),
    }))
}

/// A topic's `deliver_at_local`, parsed: when a delivery queued at some moment is released in
/// a subscriber's zone.
#[derive(Clone, Copy, Debug)]
pub struct LocalRelease {
    deliver_at: NaiveTime,
    default_tz: Tz,
}

impl LocalRelease {
    /// None when the topic has no local delivery time.
    pub fn of(settings: &Settings, topic: &TopicSettings) -> Option<LocalRelease> {
        topic.deliver_at_local.map(|deliver_at| LocalRelease {
            deliver_at,
            default_tz: settings.schedule.timezone,
        })
    }

    /// The release time of a delivery queued at `queued_at` for a subscriber in `zone` (the
    /// schedule's zone for none or an unknown one).
    pub fn time_for(&self, zone: Option<&str>, queued_at: DateTime<Utc>) -> DateTime<Utc> {
        let tz = parse_timezone(zone);
        if zone.is_some() && tz.is_none() {
            tracing::warn!(timezone = ?zone, "unknown subscriber time zone; using the schedule's");
        }
        local_not_before(self.deliver_at, tz, self.default_tz, queued_at)
    }
}
