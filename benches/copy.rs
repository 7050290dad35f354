//! Copy benchmark (not a test): seeds a SQLite database with N confirmed subscribers (each with
//! a subscription and a consent record), a 3-article issue and one queued delivery per
//! subscriber, then times the paths `tidings db copy`, `backup` and `restore` take (the same
//! library calls): SQLite -> PostgreSQL, PostgreSQL -> a new SQLite file, a backup of the SQLite
//! database and its restore into another new SQLite file. Prints rows per second, the backup's
//! size and this process's peak memory (VmHWM). See BENCHMARKS.md "## Backup and db copy".
//!
//!   cargo bench --bench copy -- DIR EMPTY_POSTGRES_URL N

mod common;

use std::path::PathBuf;
use std::time::Instant;

use chrono::{TimeZone, Utc};
use tidings::domain::{ArticleSource, Digest, DigestEntry};
use tidings::store::copy::NoProgress;
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

async fn seed(url: &str, n: usize) -> anyhow::Result<Store> {
    let store = Store::open(url, 4).await?;
    common::add_confirmed_readers(&store, n).await?;
    let t0 = Utc
        .with_ymd_and_hms(2026, 2, 2, 8, 0, 0)
        .single()
        .ok_or_else(|| anyhow::anyhow!("time"))?;
    let mut entries = Vec::new();
    for i in 1..=3u32 {
        let url = format!("https://example.com/articles/{i}");
        let title = format!("Article {i} about distributed systems in Rust");
        let source = ArticleSource {
            source_name: "hn".into(),
            source_kind: "hackernews".into(),
            external_id: i.to_string(),
            points: Some(100),
            comments: Some(4),
            discussion_url: None,
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
            summary: "A summary.".into(),
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
    let queued = store.enqueue_issue(issue.id, "rust", Utc::now()).await?;
    anyhow::ensure!(queued as usize == n, "queued {queued} deliveries, not {n}");
    Ok(store)
}

fn report(what: &str, rows: u64, started: Instant) {
    let secs = started.elapsed().as_secs_f64();
    println!(
        "{what}: {rows} rows in {secs:.2} s ({:.0} rows/s)",
        rows as f64 / secs
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .filter(|a| a != "--bench")
        .collect();
    let [dir, postgres, n] = args.as_slice() else {
        anyhow::bail!("usage: copy DIR EMPTY_POSTGRES_URL N");
    };
    let dir = PathBuf::from(dir);
    std::fs::create_dir_all(&dir)?;
    let n: usize = n.parse()?;
    let url = |name: &str| format!("sqlite://{}", dir.join(name).display());

    let started = Instant::now();
    let source = seed(&url("source.db"), n).await?;
    println!(
        "seeded {n} subscribers and deliveries in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let target = Store::connect(postgres, 4).await?;
    let started = Instant::now();
    let summary = source.copy_to(&target, &NoProgress).await?;
    report(
        "db copy SQLite -> PostgreSQL",
        summary.total_rows(),
        started,
    );

    let back = Store::connect(&url("back.db"), 4).await?;
    let started = Instant::now();
    let summary = target.copy_to(&back, &NoProgress).await?;
    report(
        "db copy PostgreSQL -> SQLite",
        summary.total_rows(),
        started,
    );

    let file = dir.join("backup.jsonl.gz");
    let started = Instant::now();
    let summary = source.backup_to(&file, &NoProgress).await?;
    report("backup SQLite -> file", summary.total_rows(), started);
    println!("backup size: {} bytes", std::fs::metadata(&file)?.len());

    let restored = Store::connect(&url("restored.db"), 4).await?;
    let started = Instant::now();
    let summary = restored.restore_from(&file, &NoProgress).await?;
    report("restore file -> SQLite", summary.total_rows(), started);
    println!("VmHWM: {:.1} MiB", vm_hwm_kib() as f64 / 1024.0);
    Ok(())
}
