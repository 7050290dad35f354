//! Seeds for scheduler tests on an injected clock: a scheduler whose loop never waits long, and
//! one article on topic `rust` for a digest to compile.

use std::sync::Arc;

use chrono::{DateTime, Duration, Utc};
use tidings::config::Settings;
use tidings::scheduler::{Clock, ManualClock, Scheduler, SchedulerOptions};
use tidings::store::Store;

/// One article on topic `rust`, published 20 hours before `before`, ingested at `before`.
pub async fn seed_article(store: &Store, before: DateTime<Utc>) {
    let item = tidings::domain::FetchedItem {
        source_name: "Fixture".into(),
        source_kind: "feed".into(),
        external_id: "rust-news".into(),
        title: "Rust news of the week".into(),
        url: Some("https://example.com/rust-news".into()),
        discussion_url: None,
        published_at: before - Duration::hours(20),
        points: None,
        comments: None,
        text: Some("What happened in Rust this week.".into()),
        tags: vec![],
    };
    tidings::pipeline::ingest(store, &item, before)
        .await
        .expect("ingest the seeded article");
}

/// The scheduler of instance `owner` on `clock`, with [`options`].
pub fn scheduler(
    settings: &Arc<Settings>,
    store: &Store,
    clock: &Arc<ManualClock>,
    owner: &str,
) -> Scheduler {
    let clock: Arc<dyn Clock> = clock.clone();
    Scheduler::new(settings.clone(), store.clone(), clock).with_options(options(owner))
}

/// Scheduler options for instance `owner`: a ten-minute claim lease, failed runs retried after
/// five minutes, and at most 10 ms asleep, so a test's clock changes are seen at once.
fn options(owner: &str) -> SchedulerOptions {
    SchedulerOptions {
        owner: owner.into(),
        claim_lease: Duration::minutes(10),
        retry_failed_after: Duration::minutes(5),
        max_idle: std::time::Duration::from_millis(10),
    }
}
