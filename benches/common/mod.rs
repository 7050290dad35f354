//! What the benchmark binaries share: seeding a database with confirmed subscribers.

use chrono::Utc;
use tidings::domain::{ConsentSource, SubscriberEmail, SubscriberStatus, TopicSlug};
use tidings::store::{NewSubscriber, Store};

/// Adds `n` confirmed subscribers of topic `rust`, `reader0@example.org` and on, in batches of
/// 1,000.
pub async fn add_confirmed_readers(store: &Store, n: usize) -> anyhow::Result<()> {
    let topic = TopicSlug::parse("rust").map_err(anyhow::Error::msg)?;
    let mut batch = Vec::with_capacity(1000);
    for i in 0..n {
        batch.push(NewSubscriber {
            email: SubscriberEmail::parse(&format!("reader{i}@example.org"))?,
            topics: vec![topic.clone()],
            status: SubscriberStatus::Confirmed,
            timezone: None,
            source: ConsentSource::Import,
            consent_version: "bench".into(),
            consented_at: None,
            resubscribe: false,
            ip: None,
            user_agent: None,
        });
        if batch.len() == 1000 || i + 1 == n {
            store.add_subscribers(&batch, Utc::now()).await?;
            batch.clear();
        }
    }
    Ok(())
}
