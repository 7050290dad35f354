//! Bench helper for the one-click unsubscribe benchmark (not a test): seeds N confirmed
//! subscribers of one topic into the database of a tidings config and prints each one's
//! unsubscribe path (`/unsubscribe/<token>`, signed with the config's secret), one per line, for
//! `benches/web/unsubscribe.lua`. Addresses carry a per-run prefix, so runs can be repeated on
//! the same database.
//!
//! ```text
//! cargo run --example web_bench_seed -- --config bench.toml --count 200000 [--topic rust] > tokens.txt
//! ```

use std::io::Write as _;
use std::path::PathBuf;

use anyhow::{Context as _, bail};
use chrono::Utc;
use tidings::config::Settings;
use tidings::domain::{ConsentSource, SubscriberEmail, SubscriberStatus, TopicSlug};
use tidings::store::{AddOutcome, NewSubscriber, Store};
use tidings::tokens::TokenSigner;

/// Rows per insert transaction.
const BATCH: usize = 2000;

struct Args {
    config: PathBuf,
    count: usize,
    topic: String,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut config = None;
    let mut count = None;
    let mut topic = "rust".to_string();
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let value = args
            .next()
            .with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--config" => config = Some(PathBuf::from(value)),
            "--count" => count = Some(value.parse().context("--count must be a number")?),
            "--topic" => topic = value,
            other => {
                bail!("unknown argument {other}; usage: --config FILE --count N [--topic SLUG]")
            }
        }
    }
    Ok(Args {
        config: config.context("--config FILE is required")?,
        count: count.context("--count N is required")?,
        topic,
    })
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let settings = Settings::load(Some(&args.config))?;
    anyhow::ensure!(
        settings.topic(&args.topic).is_some(),
        "topic {:?} is not configured in {}",
        args.topic,
        args.config.display()
    );
    let store = Store::open(&settings.database.url, settings.database.max_connections).await?;
    let tokens = TokenSigner::from_settings(&settings.newsletter);
    let topic = TopicSlug::parse(&args.topic).map_err(|e| anyhow::anyhow!("--topic: {e}"))?;
    let run = Utc::now().timestamp_millis();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    let mut written = 0usize;
    let mut start = 0usize;
    while start < args.count {
        let end = (start + BATCH).min(args.count);
        let rows = (start..end)
            .map(|i| {
                Ok(NewSubscriber {
                    email: SubscriberEmail::parse(&format!("seed-{run}-{i}@example.com"))?,
                    topics: vec![topic.clone()],
                    status: SubscriberStatus::Confirmed,
                    timezone: None,
                    source: ConsentSource::Cli,
                    consent_version: "bench".into(),
                    consented_at: None,
                    resubscribe: false,
                    ip: None,
                    user_agent: None,
                })
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        for outcome in store.add_subscribers(&rows, Utc::now()).await? {
            match outcome? {
                AddOutcome::Created { id } => {
                    writeln!(
                        out,
                        "/unsubscribe/{}",
                        tokens.unsubscribe(id, topic.as_str())
                    )?;
                    written += 1;
                }
                other => bail!("a fresh bench address was not created: {other:?}"),
            }
        }
        start = end;
    }
    out.flush()?;
    eprintln!("seeded {written} confirmed subscribers of {:?}", args.topic);
    Ok(())
}
