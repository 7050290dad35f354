//! Benchmark (not a test) of classify + rank + compile over 100k synthetic in-memory articles
//! (a title and 2 KB of page text each) for 10 topics of 30 keywords. Prints the time of
//! `pipeline::select::compile_all` (median of 5 runs) and the process's peak RSS (VmHWM).
//!
//! Run: `taskset -c 0 cargo bench --bench pipeline`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use tidings::config::TopicSettings;
use tidings::domain::{Article, ArticleSource, PageInfo};
use tidings::pipeline::rank::Weights;
use tidings::pipeline::select::{Window, compile_all};

struct Lcg(u64);

impl Lcg {
    fn next(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0 >> 33
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

fn vocabulary(rng: &mut Lcg, n: usize) -> Vec<String> {
    const SYL: &[&str] = &[
        "ra", "ft", "pa", "xo", "con", "sen", "sus", "dis", "tri", "bu", "ted", "lo", "gi", "cal",
        "ne", "tor", "ver", "ma", "ki", "zen",
    ];
    (0..n)
        .map(|_| {
            let k = 2 + rng.below(3);
            (0..k)
                .map(|_| SYL[rng.below(SYL.len())])
                .collect::<String>()
        })
        .collect()
}

fn vm_hwm_kib() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/self/status").ok()?;
    s.lines()
        .find(|l| l.starts_with("VmHWM:"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
}

/// This thread's user + system CPU time from /proc (clock ticks of 10 ms), so runs can be
/// compared on a machine shared with other work, where wall time includes waiting for the core.
fn thread_cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/thread-self/stat").ok()?;
    // Fields after the command name (which is in parentheses and may contain spaces).
    let rest = &s[s.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks: u64 = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(Duration::from_millis(ticks * 10))
}

fn main() {
    let articles_n: usize = std::env::var("BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Lcg(42);
    let vocab = vocabulary(&mut rng, 20_000);
    let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
    let start = end - chrono::Duration::days(7);
    let topics: Vec<TopicSettings> = (0..10)
        .map(|t| TopicSettings {
            slug: format!("topic-{t}"),
            name: format!("Topic {t}"),
            description: String::new(),
            keywords: (0..30)
                .map(|k| {
                    if k % 5 == 0 {
                        format!(
                            "{} {}",
                            vocab[(t * 97 + k * 13) % vocab.len()],
                            vocab[(t * 31 + k * 7 + 1) % vocab.len()]
                        )
                    } else {
                        vocab[(t * 97 + k * 13) % vocab.len()].clone()
                    }
                })
                .collect(),
            exclude: vec![vocab[(t * 11 + 5000) % vocab.len()].clone()],
            tags: vec![],
            domains: vec![],
            window_days: 7,
            limit: 20,
            max_per_domain: 3,
            repeat: false,
            cron: None,
            deliver_at_local: None,
        })
        .collect();
    let gen_started = Instant::now();
    let articles: Vec<Article> = (0..articles_n)
        .map(|i| {
            let title: Vec<&str> = (0..8)
                .map(|_| vocab[rng.below(vocab.len())].as_str())
                .collect();
            let mut text = String::with_capacity(2100);
            while text.len() < 2048 {
                text.push_str(&vocab[rng.below(vocab.len())]);
                text.push(if rng.below(12) == 0 { '.' } else { ' ' });
                if text.ends_with('.') {
                    text.push(' ');
                }
            }
            let at = start + chrono::Duration::seconds(rng.below(7 * 86_400) as i64);
            Article {
                id: i as i64 + 1,
                canonical_url: format!("https://d{}.example/{i}", i % 5000),
                url: format!("https://d{}.example/{i}", i % 5000),
                title: title.join(" "),
                domain: format!("d{}.example", i % 5000),
                published_at: at,
                sources: vec![ArticleSource {
                    source_name: "Hacker News".into(),
                    source_kind: "hackernews".into(),
                    external_id: i.to_string(),
                    points: Some(rng.below(1000) as i64),
                    comments: Some(rng.below(300) as i64),
                    discussion_url: None,
                    text: None,
                    tags: vec![],
                    published_at: at,
                }],
                page: Some(PageInfo {
                    description: None,
                    text: Some(text),
                }),
            }
        })
        .collect();
    let gen_time = gen_started.elapsed();
    let hwm_after_gen = vm_hwm_kib();
    let windows = vec![Window { start, end }; topics.len()];
    let earlier = vec![HashMap::new(); topics.len()];
    let weights = Weights::default();
    let mut times: Vec<Duration> = Vec::new();
    let mut cpu_times: Vec<Duration> = Vec::new();
    let mut entries = 0;
    for _ in 0..5 {
        let cpu = thread_cpu_time();
        let t = Instant::now();
        let digests =
            compile_all(&topics, &windows, &articles, &earlier, &weights).expect("compile_all");
        times.push(t.elapsed());
        if let (Some(before), Some(after)) = (cpu, thread_cpu_time()) {
            cpu_times.push(after.saturating_sub(before));
        }
        entries = digests.iter().map(|d| d.entries.len()).sum::<usize>();
        std::hint::black_box(&digests);
    }
    times.sort();
    cpu_times.sort();
    println!(
        "articles: {articles_n} (generated in {:.2?}), topics: {}, keywords per topic: 30",
        gen_time,
        topics.len()
    );
    println!("digest entries: {entries}");
    println!(
        "classify+rank+compile: median {:.3?}, min {:.3?}, max {:.3?}",
        times[2], times[0], times[4]
    );
    if cpu_times.len() == 5 {
        println!(
            "CPU time of the same runs (10 ms ticks): median {:.2?}, min {:.2?}, max {:.2?}",
            cpu_times[2], cpu_times[0], cpu_times[4]
        );
    }
    println!(
        "peak RSS (VmHWM): {} KiB after generating the articles, {} KiB after compiling",
        hwm_after_gen.map_or("?".into(), |v| v.to_string()),
        vm_hwm_kib().map_or("?".into(), |v| v.to_string())
    );
}
