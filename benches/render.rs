//! Rendering throughput: one digest prepared once (templates + CSS inlining), then personalised
//! per subscriber (tokens, link substitution, MIME encoding, optional DKIM). Not a test: run
//! `cargo bench --bench render` and read the printed rates.

use std::time::Instant;

use chrono::{Duration, TimeZone, Utc};
use tidings::config::Settings;
use tidings::domain::{Digest, DigestEntry, SourceLine, SubscriberEmail};
use tidings::render::{DkimSigner, PreparedDigest, Recipient};
use tidings::tokens::TokenSigner;

fn digest() -> Digest {
    let start = Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap();
    let entries = (1..=20)
        .map(|i| DigestEntry {
            position: i,
            article_id: i64::from(i),
            title: format!("Article {i}: what functional programmers get wrong about systems"),
            url: format!("https://example.org/posts/{i}"),
            domain: "example.org".into(),
            published_at: start + Duration::hours(i64::from(i) * 7),
            summary: "The essay explores the gap between program correctness and the realities of production systems, which are inherently distributed. ".repeat(6),
            score: 100.0 - f64::from(i),
            sources: vec![SourceLine {
                name: "Hacker News".into(),
                points: Some(300 - i64::from(i)),
                comments: Some(40),
                discussion_url: Some(format!("https://news.ycombinator.com/item?id={i}")),
            }],
        })
        .collect();
    Digest {
        issue_id: Some(1),
        topic_slug: "distributed-systems".into(),
        topic_name: "Distributed Systems".into(),
        topic_description: "Consensus, fault tolerance and architecture.".into(),
        window_start: start,
        window_end: start + Duration::days(7),
        window_days: 7,
        entries,
    }
}

fn run(label: &str, settings: &Settings, dkim: Option<DkimSigner>, n: i64) {
    let d = digest();
    let tokens = TokenSigner::from_settings(&settings.newsletter);
    let t0 = Instant::now();
    let prepared = match PreparedDigest::prepare(settings, &d, dkim) {
        Ok(p) => p,
        Err(e) => {
            eprintln!("prepare failed: {e}");
            return;
        }
    };
    let prepare_time = t0.elapsed();
    let now = Utc::now();
    let t1 = Instant::now();
    let mut bytes = 0usize;
    for id in 1..=n {
        let Ok(email) = SubscriberEmail::parse(&format!("reader{id}@example.net")) else {
            continue;
        };
        let recipient = Recipient {
            subscriber_id: id,
            email,
        };
        match prepared.message_for(&tokens, &recipient, now) {
            Ok(m) => bytes += m.raw.len(),
            Err(e) => eprintln!("message_for failed: {e}"),
        }
    }
    let per_message = t1.elapsed();
    println!(
        "{label}: prepare {:.1} ms once; {n} messages in {:.2} s = {:.0} msg/s, {:.0} µs/msg, {} KiB/msg",
        prepare_time.as_secs_f64() * 1e3,
        per_message.as_secs_f64(),
        n as f64 / per_message.as_secs_f64(),
        per_message.as_secs_f64() * 1e6 / n as f64,
        bytes / n.max(1) as usize / 1024
    );
}

fn main() {
    let settings = Settings::default();
    run("no DKIM", &settings, None, 5_000);
    let pem = include_str!("../tests/fixtures/dkim-test-key.pem");
    match DkimSigner::from_pem("example.com", "bench", pem) {
        Ok(signer) => run("DKIM rsa-2048", &settings, Some(signer), 2_000),
        Err(e) => eprintln!("DKIM key: {e}"),
    }
}
