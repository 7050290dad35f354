//! Delivery benchmark (not a test): seeds N confirmed subscribers and a 20-article issue, then
//! delivers it through the configured transport and prints messages per second and this
//! process's peak memory (VmHWM). Seeding and sending run as separate invocations so the
//! memory figure is the sender's alone. See BENCHMARKS.md "## Delivery" for the commands.
//!
//!   cargo bench --bench delivery -- seed DB_URL N
//!   cargo bench --bench delivery -- send DB_URL smtp PORT CONCURRENCY
//!   cargo bench --bench delivery -- send DB_URL file OUTBOX_DIR CONCURRENCY
//!
//! With `SMTP_SOURCE=/path/to/smtp-source` in the environment, an SMTP `send` is followed by
//! Postfix's smtp-source sending as many messages of the same size at the same concurrency to
//! the same port, and both rates are printed.

mod common;

use std::time::Instant;

use chrono::{TimeZone, Utc};
use tidings::config::Settings;
use tidings::delivery;
use tidings::domain::{ArticleSource, Digest, DigestEntry, SubscriberEmail, TopicSlug};
use tidings::store::{ArticleUpsert, Store};

fn vm_hwm_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        })
        .unwrap_or(0)
}

async fn seed(url: &str, n: usize) -> anyhow::Result<()> {
    let store = Store::open(url, 4).await?;
    let started = Instant::now();
    common::add_confirmed_readers(&store, n).await?;
    let t0 = Utc
        .with_ymd_and_hms(2026, 2, 2, 8, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("time"))?;
    let mut entries = Vec::new();
    for i in 1..=20u32 {
        let url = format!("https://example.com/articles/{i}");
        let title =
            format!("A reasonably long article title number {i} about distributed systems in Rust");
        let source = ArticleSource {
            source_name: "hn".into(),
            source_kind: "hackernews".into(),
            external_id: i.to_string(),
            points: Some(500 - i64::from(i)),
            comments: Some(40),
            discussion_url: Some(format!("https://news.ycombinator.com/item?id={i}")),
            text: None,
            tags: vec![],
            published_at: t0,
        };
        let id = store
            .upsert_article(
                &ArticleUpsert {
                    canonical_url: &url,
                    url: &url,
                    domain: "example.com",
                    title: &title,
                    source: &source,
                },
                Utc::now(),
            )
            .await?;
        entries.push(DigestEntry {
            position: i,
            article_id: id,
            title,
            url,
            domain: "example.com".into(),
            published_at: t0,
            summary: "A summary paragraph of about sixty words. ".repeat(8),
            score: 1.0,
            sources: vec![],
        });
    }
    let digest = Digest {
        issue_id: None,
        topic_slug: "rust".into(),
        topic_name: "Rust".into(),
        topic_description: "The Rust language.".into(),
        window_start: t0 - chrono::Duration::days(7),
        window_end: t0,
        window_days: 7,
        entries,
    };
    let (issue, _) = store.insert_issue(&digest, Utc::now()).await?;
    println!(
        "seeded {n} subscribers and issue {} in {:.1} s",
        issue.id,
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

async fn send(url: &str, transport: &str, target: &str, concurrency: usize) -> anyhow::Result<()> {
    let mut settings = Settings::default();
    settings.database.url = url.into();
    settings.newsletter.from = "Tidings <news@example.com>".parse()?;
    settings.delivery.concurrency = concurrency;
    settings.delivery.batch_size = 64;
    match transport {
        "smtp" => {
            settings.delivery.transport = Some(tidings::config::TransportKind::Smtp);
            settings.smtp.host = "127.0.0.1".into();
            settings.smtp.port = target.parse()?;
            settings.smtp.tls = tidings::config::TlsMode::None;
        }
        _ => {
            settings.delivery.transport = Some(tidings::config::TransportKind::File);
            settings.delivery.outbox_dir = target.into();
        }
    }
    settings.topics.push(tidings::config::TopicSettings {
        slug: TopicSlug::parse("rust").map_err(anyhow::Error::msg)?,
        name: "Rust".into(),
        description: String::new(),
        keywords: vec![],
        exclude: vec![],
        tags: vec![],
        domains: vec![],
        window_days: 7,
        limit: 20,
        max_per_domain: 3,
        repeat: false,
        cron: None,
        deliver_at_local: None,
    });
    // The same pool size as `tidings send` (`[database] max_connections`, default 8).
    let store = Store::open(url, settings.database.max_connections).await?;
    let issue = 1;
    let size = message_size(&settings, &store, issue).await?;
    let queued = store.enqueue_issue(issue, "rust", Utc::now()).await?;
    let started = Instant::now();
    let report =
        delivery::deliver_until_idle(&settings, &store, "bench", delivery::system_clock()).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "tidings: queued {queued}, sent {} (deferred {}, failed {}) in {secs:.2} s = {:.0} msg/s; \
         message {size} bytes; concurrency {concurrency}; VmHWM {} KiB",
        report.sent,
        report.deferred,
        report.failed,
        report.sent as f64 / secs,
        vm_hwm_kib()
    );
    // The same number of same-sized messages at the same concurrency from Postfix's C load
    // generator, to the same sink, right after: the practical upper bound on this machine.
    if let (Ok(source), "smtp") = (std::env::var("SMTP_SOURCE"), transport) {
        let started = Instant::now();
        let status = std::process::Command::new(&source)
            .args(["-s", &concurrency.to_string()])
            .args(["-m", &report.sent.to_string()])
            .args(["-l", &size.to_string()])
            .args(["-f", "news@example.com", "-t", "reader@example.org"])
            .arg(format!("127.0.0.1:{target}"))
            .status()?;
        let secs = started.elapsed().as_secs_f64();
        anyhow::ensure!(status.success(), "{source} failed: {status}");
        println!(
            "smtp-source: {} messages of {size} bytes, {concurrency} sessions, in {secs:.2} s = {:.0} msg/s",
            report.sent,
            report.sent as f64 / secs
        );
    }
    Ok(())
}

/// The size of one rendered message of `issue` (they differ by a few bytes per subscriber).
async fn message_size(settings: &Settings, store: &Store, issue: i64) -> anyhow::Result<usize> {
    let stored = store
        .get_issue(issue)
        .await?
        .ok_or_else(|| anyhow::anyhow!("issue {issue} is missing: run `seed` first"))?;
    let prepared = tidings::render::PreparedDigest::prepare(settings, &stored.digest, None)?;
    let tokens = tidings::tokens::TokenSigner::from_settings(&settings.newsletter);
    let recipient = tidings::render::Recipient {
        subscriber_id: 1,
        email: SubscriberEmail::parse("reader1@example.org")?,
    };
    Ok(prepared
        .message_for(&tokens, &recipient, Utc::now())?
        .raw
        .len())
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["seed", url, n] => rt.block_on(seed(url, n.parse()?)),
        ["send", url, transport, target, concurrency] => {
            rt.block_on(send(url, transport, target, concurrency.parse()?))
        }
        _ => {
            eprintln!(
                "usage: delivery seed DB_URL N | delivery send DB_URL smtp|file PORT|DIR CONCURRENCY"
            );
            Ok(())
        }
    }
}
