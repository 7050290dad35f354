//! Benchmark (not a test) of classify + rank + compile over 100k synthetic in-memory articles
//! (a title and 2 KB of page text each) for 10 topics of 30 keywords. Prints the time of
//! `pipeline::select::compile_all` (median of 5 runs) and the process's peak RSS (VmHWM).
//! `compile_all` is `select::choose_all`, the path every production compile takes
//! (`pipeline::compile`), plus extractive summaries, without the store.
//!
//! Run: `taskset -c 0 cargo bench --bench pipeline`
//!
//! With `BENCH_SUMMARIES=1` it instead times the extractive summariser
//! (`pipeline::summarize::summary_with_source`) on each article under
//! `tests/fixtures/articles/` and on one synthetic article of 100 KB (the most page text
//! kept), and prints each fixture's summary, its word count and source:
//! `BENCH_SUMMARIES=1 taskset -c 0 cargo bench --bench pipeline`

use std::collections::HashMap;
use std::time::{Duration, Instant};

use chrono::{TimeZone, Utc};
use tidings::config::TopicSettings;
use tidings::domain::{Article, ArticleSource, PageInfo};
use tidings::pipeline::classify::Classifier;
use tidings::pipeline::rank::Weights;
use tidings::pipeline::select::{Window, compile_all};
use tidings::pipeline::summarize;

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

/// Words of 1-4 syllables, shortest first: rank 0 is the most frequent word.
fn vocabulary(rng: &mut Lcg, n: usize) -> Vec<String> {
    const SYL: &[&str] = &[
        "ra", "ft", "pa", "xo", "con", "sen", "sus", "dis", "tri", "bu", "ted", "lo", "gi", "cal",
        "ne", "tor", "ver", "ma", "ki", "zen",
    ];
    let mut seen = std::collections::HashSet::new();
    let mut words: Vec<String> = SYL.iter().map(|s| s.to_string()).collect();
    seen.extend(words.iter().cloned());
    while words.len() < n {
        let k = 2 + rng.below(3);
        let w: String = (0..k).map(|_| SYL[rng.below(SYL.len())]).collect();
        if seen.insert(w.clone()) {
            words.push(w);
        }
    }
    words.sort_by_key(|w| w.len());
    words
}

/// Zipf's law over word ranks (exponent 1), as in natural language: the few most frequent
/// (short) words make up much of the text, and topic keywords come from the rare end.
struct Zipf(Vec<f64>);

impl Zipf {
    fn new(n: usize) -> Zipf {
        let mut acc = 0.0;
        Zipf(
            (0..n)
                .map(|r| {
                    acc += 1.0 / (r as f64 + 1.0);
                    acc
                })
                .collect(),
        )
    }
    fn sample(&self, rng: &mut Lcg) -> usize {
        let total = self.0.last().copied().unwrap_or(1.0);
        let x = (rng.next() as f64 / (1u64 << 31) as f64) * total;
        self.0.partition_point(|c| *c < x).min(self.0.len() - 1)
    }
}

fn capitalized(w: &str) -> String {
    let mut c = w.chars();
    c.next()
        .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
        .unwrap_or_default()
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

/// Times the extractive summariser per article (median of `runs`) and prints the summaries.
fn bench_summaries() {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/articles");
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .expect("the article fixtures")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    paths.sort();
    let mut cases: Vec<(String, Article)> = Vec::new();
    for path in &paths {
        let raw = std::fs::read_to_string(path).expect("a fixture");
        let (head, body) = raw.split_once("\n\n").unwrap_or(("", &raw));
        let field = |name: &str| {
            head.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(str::to_string)
        };
        let name = path
            .file_stem()
            .map_or("?".into(), |s| s.to_string_lossy().into_owned());
        let title = field("Title: ").unwrap_or_default();
        cases.push((name, article(&title, field("Description: "), body)));
    }
    // One article of 100 KB: the fixtures' paragraphs over and over.
    let mut big = String::new();
    while big.len() < 100_000 {
        for (_, a) in &cases {
            big.push_str(
                a.page
                    .as_ref()
                    .and_then(|p| p.text.as_deref())
                    .unwrap_or(""),
            );
            big.push_str("\n\n");
        }
    }
    cases.push((
        "synthetic-100kb".into(),
        article("A long article", None, &big),
    ));
    for (name, a) in &cases {
        let text_words = a
            .page
            .as_ref()
            .and_then(|p| p.text.as_deref())
            .map_or(0, |t| t.split_whitespace().count());
        let runs = if text_words > 5_000 { 21 } else { 201 };
        let mut times = Vec::with_capacity(runs);
        let mut summary = summarize::summary_with_source(a);
        for _ in 0..runs {
            let t = Instant::now();
            summary = std::hint::black_box(summarize::summary_with_source(std::hint::black_box(a)));
            times.push(t.elapsed());
        }
        times.sort();
        println!(
            "{name}: {text_words} words of text -> {} words ({}), median {:.2?} per article (min {:.2?}, {runs} runs)",
            summary.text.split_whitespace().count(),
            summary.source,
            times[runs / 2],
            times[0]
        );
        if !name.starts_with("synthetic") {
            println!("  {}\n", summary.text);
        }
    }
}

fn article(title: &str, description: Option<String>, text: &str) -> Article {
    Article {
        id: 1,
        canonical_url: "https://example.org/a".into(),
        url: "https://example.org/a".into(),
        title: title.into(),
        domain: "example.org".into(),
        published_at: Utc::now(),
        sources: vec![],
        page: Some(PageInfo {
            description,
            text: Some(text.to_string()),
            ..Default::default()
        }),
    }
}

fn main() {
    if std::env::var_os("BENCH_SUMMARIES").is_some() {
        bench_summaries();
        return;
    }
    let articles_n: usize = std::env::var("BENCH_ARTICLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let mut rng = Lcg(42);
    let vocab = vocabulary(&mut rng, 20_000);
    let zipf = Zipf::new(vocab.len());
    // Keywords and exclude terms come from the rarer words (rank 2,000 and beyond).
    let rare = |i: usize| &vocab[2_000 + i % (vocab.len() - 2_000)];
    let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
    let start = end - chrono::Duration::days(7);
    let topics: Vec<TopicSettings> = (0..10)
        .map(|t| TopicSettings {
            slug: tidings::domain::TopicSlug::parse(&format!("topic-{t}")).unwrap(),
            name: format!("Topic {t}"),
            description: String::new(),
            keywords: (0..30)
                .map(|k| {
                    if k % 5 == 0 {
                        format!("{} {}", rare(t * 97 + k * 13), rare(t * 31 + k * 7 + 1))
                    } else {
                        rare(t * 97 + k * 13).clone()
                    }
                })
                .collect(),
            exclude: vec![rare(t * 11 + 5000).clone()],
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
    let (mut words, mut word_bytes) = (0usize, 0usize);
    let articles: Vec<Article> = (0..articles_n)
        .map(|i| {
            let mut title = capitalized(&vocab[zipf.sample(&mut rng)]);
            for _ in 1..8 {
                title.push(' ');
                title.push_str(&vocab[zipf.sample(&mut rng)]);
            }
            // Sentences of about 12 words, a comma now and then, a capital after each full stop.
            let mut text = String::with_capacity(2100);
            let mut sentence_start = true;
            while text.len() < 2048 {
                let w = &vocab[zipf.sample(&mut rng)];
                if sentence_start {
                    text.push_str(&capitalized(w));
                } else {
                    text.push_str(w);
                }
                words += 1;
                word_bytes += w.len();
                sentence_start = rng.below(12) == 0;
                text.push_str(if sentence_start {
                    ". "
                } else if rng.below(15) == 0 {
                    ", "
                } else {
                    " "
                });
            }
            let at = start + chrono::Duration::seconds(rng.below(7 * 86_400) as i64);
            Article {
                id: i as i64 + 1,
                canonical_url: format!("https://d{}.example/{i}", i % 5000),
                url: format!("https://d{}.example/{i}", i % 5000),
                title,
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
                    ..Default::default()
                }),
            }
        })
        .collect();
    let gen_time = gen_started.elapsed();
    let hwm_after_gen = vm_hwm_kib();
    let windows = vec![Window { start, end }; topics.len()];
    let earlier = vec![HashMap::new(); topics.len()];
    // Points read against the articles' own distribution per source, as the store would hand it over.
    let weights = Weights::default().observing(&articles);
    // How many articles each topic takes in (outside the timed runs), to show the input is
    // neither trivially empty nor all-matching.
    let classifier = Classifier::new(&topics).expect("classifier");
    let mut scanner = classifier.scanner();
    let mut per_topic = vec![0usize; topics.len()];
    let mut members = Vec::new();
    for a in &articles {
        scanner.members(a, &mut members);
        for &t in &members {
            per_topic[t] += 1;
        }
    }
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
    println!(
        "page text: {words} words, mean word length {:.1} letters",
        word_bytes as f64 / words.max(1) as f64
    );
    println!(
        "articles per topic: min {}, max {} (mean {:.1}% of all)",
        per_topic.iter().min().unwrap_or(&0),
        per_topic.iter().max().unwrap_or(&0),
        100.0 * per_topic.iter().sum::<usize>() as f64 / (per_topic.len() * articles_n) as f64
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
