//! One entry per story and fair ranking across sources, through the real binary (`tidings
//! fetch`, `preview --format text`, `explain`) against a loopback fixture with Hacker News,
//! Lobsters and a feed: the same story under two URLs (HN and Lobsters) is one entry listing
//! both sources while a near miss ("1.80" / "1.81") stays two; a feed, a Lobsters and an HN story
//! each top a digest on merit with every weight at 1.0, because points are read against each
//! source's own recent points (fetched a week earlier); and the text opens with the newsletter's
//! title line, the topic, its description and the period. One test per backend.

use std::process::Output;

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

use super::utc;
use crate::support::db::{Backend, per_backend};

/// One story on Hacker News or Lobsters.
struct Story {
    id: &'static str,
    title: &'static str,
    page: &'static str,
    points: i64,
    at: &'static str,
}

const fn s(
    id: &'static str,
    title: &'static str,
    page: &'static str,
    points: i64,
    at: &'static str,
) -> Story {
    Story {
        id,
        title,
        page,
        points,
        at,
    }
}

/// Hacker News: a week of history before the period (points in the hundreds), then the
/// period's stories.
const HN: &[Story] = &[
    s(
        "h1",
        "Sourdough baking notes 1",
        "h1",
        20,
        "2026-01-27T10:00:00Z",
    ),
    s(
        "h2",
        "Sourdough baking notes 2",
        "h2",
        40,
        "2026-01-27T11:00:00Z",
    ),
    s(
        "h3",
        "Sourdough baking notes 3",
        "h3",
        60,
        "2026-01-28T10:00:00Z",
    ),
    s(
        "h4",
        "Sourdough baking notes 4",
        "h4",
        90,
        "2026-01-28T11:00:00Z",
    ),
    s(
        "h5",
        "Sourdough baking notes 5",
        "h5",
        120,
        "2026-01-29T10:00:00Z",
    ),
    s(
        "h6",
        "Sourdough baking notes 6",
        "h6",
        160,
        "2026-01-29T11:00:00Z",
    ),
    s(
        "h7",
        "Sourdough baking notes 7",
        "h7",
        220,
        "2026-01-30T10:00:00Z",
    ),
    s(
        "h8",
        "Sourdough baking notes 8",
        "h8",
        300,
        "2026-01-30T11:00:00Z",
    ),
    s(
        "h9",
        "Sourdough baking notes 9",
        "h9",
        420,
        "2026-01-31T10:00:00Z",
    ),
    s(
        "h10",
        "Sourdough baking notes 10",
        "h10",
        600,
        "2026-01-31T11:00:00Z",
    ),
    s(
        "a1",
        "Alpha compiler rewrite",
        "alpha-hn",
        900,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "b1",
        "Beta database tuning",
        "beta-hn",
        50,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "c1",
        "Gamma ray tooling",
        "gamma-hn",
        30,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "g1",
        "Async/Await on the GPU",
        "gpu-post",
        312,
        "2026-02-04T09:00:00Z",
    ),
    s(
        "r1",
        "Rust GPU 1.80 released",
        "rust-gpu-180",
        200,
        "2026-02-05T10:00:00Z",
    ),
];

/// Lobsters: the same shape, points in the tens.
const LOBSTERS: &[Story] = &[
    s("l1", "Knitting patterns 1", "l1", 2, "2026-01-27T10:00:00Z"),
    s("l2", "Knitting patterns 2", "l2", 4, "2026-01-27T11:00:00Z"),
    s("l3", "Knitting patterns 3", "l3", 6, "2026-01-28T10:00:00Z"),
    s("l4", "Knitting patterns 4", "l4", 8, "2026-01-28T11:00:00Z"),
    s(
        "l5",
        "Knitting patterns 5",
        "l5",
        10,
        "2026-01-29T10:00:00Z",
    ),
    s(
        "l6",
        "Knitting patterns 6",
        "l6",
        12,
        "2026-01-29T11:00:00Z",
    ),
    s(
        "l7",
        "Knitting patterns 7",
        "l7",
        15,
        "2026-01-30T10:00:00Z",
    ),
    s(
        "l8",
        "Knitting patterns 8",
        "l8",
        20,
        "2026-01-30T11:00:00Z",
    ),
    s(
        "l9",
        "Knitting patterns 9",
        "l9",
        25,
        "2026-01-31T10:00:00Z",
    ),
    s(
        "l10",
        "Knitting patterns 10",
        "l10",
        30,
        "2026-01-31T11:00:00Z",
    ),
    s(
        "la",
        "Alpha shell tricks",
        "alpha-lob",
        3,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "lb",
        "Beta parser combinators",
        "beta-lob",
        45,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "lc",
        "Gamma scheduler internals",
        "gamma-lob",
        4,
        "2026-02-04T10:00:00Z",
    ),
    s(
        "lg",
        "Async/await on the GPU | VectorWare",
        "gpu-mirror",
        25,
        "2026-02-05T09:00:00Z",
    ),
    s(
        "lr",
        "Rust GPU 1.81 released",
        "rust-gpu-181",
        10,
        "2026-02-05T10:00:00Z",
    ),
];

#[derive(Clone)]
struct World {
    base: String,
}

async fn hn(State(w): State<World>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let filters = params
        .iter()
        .find(|(k, _)| k == "numericFilters")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let (mut start, mut end) = (i64::MIN, i64::MAX);
    for f in filters.split(',') {
        if let Some(v) = f.strip_prefix("created_at_i>=") {
            start = v.parse().unwrap();
        } else if let Some(v) = f.strip_prefix("created_at_i<") {
            end = v.parse().unwrap();
        }
    }
    let hits: Vec<Value> = HN
        .iter()
        .filter(|s| {
            let t = utc(s.at).timestamp();
            start <= t && t < end
        })
        .map(|s| {
            json!({
                "objectID": s.id, "title": s.title, "url": format!("{}/page/{}", w.base, s.page),
                "points": s.points, "num_comments": 1, "created_at_i": utc(s.at).timestamp(),
                "_tags": ["story"]
            })
        })
        .collect();
    let n = hits.len();
    axum::Json(json!({"hits": hits, "nbHits": n, "nbPages": 1, "page": 0, "hitsPerPage": 100}))
        .into_response()
}

async fn lobsters(State(w): State<World>) -> Response {
    let list: Vec<Value> = LOBSTERS
        .iter()
        .map(|s| {
            json!({
                "short_id": s.id, "title": s.title, "url": format!("{}/page/{}", w.base, s.page),
                "score": s.points, "comment_count": 1, "created_at": s.at,
                "comments_url": format!("https://lobste.rs/s/{}", s.id), "tags": ["programming"]
            })
        })
        .collect();
    axum::Json(Value::Array(list)).into_response()
}

async fn rss(State(w): State<World>) -> Response {
    let b = &w.base;
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Blog</title><link>{b}/</link>
<item><title>Alpha feed musings</title><link>{b}/page/alpha-feed</link><guid>fa</guid><pubDate>Wed, 04 Feb 2026 10:00:00 GMT</pubDate></item>
<item><title>Beta feed notes</title><link>{b}/page/beta-feed</link><guid>fb</guid><pubDate>Wed, 04 Feb 2026 10:00:00 GMT</pubDate></item>
<item><title>Gamma feed deep dive</title><link>{b}/page/gamma-feed</link><guid>fc</guid><pubDate>Wed, 04 Feb 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#
    );
    ([(header::CONTENT_TYPE, "application/rss+xml")], body).into_response()
}

async fn page(Path(name): Path<String>) -> Response {
    let body = format!("<html><body><article><p>The {name} page.</p></article></body></html>");
    ([(header::CONTENT_TYPE, "text/html")], body).into_response()
}

/// Serves the world on a loopback port; the task ends with the test's runtime.
async fn serve() -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let app = Router::new()
        .route("/api/v1/search_by_date", get(hn))
        .route("/hottest.json", get(lobsters))
        .route("/rss.xml", get(rss))
        .route("/page/{name}", get(page))
        .with_state(World { base: base.clone() });
    tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    base
}

fn config(base: &str) -> String {
    format!(
        r#"
[newsletter]
title = "Tidings Weekly"

[schedule]
cron = "0 0 8 * * Mon"
timezone = "UTC"

[fetch]
allow_private_addresses = true
retries = 0
timeout_secs = 5
fetch_pages = false

[[sources]]
kind = "hackernews"
name = "Hacker News"
base_url = "{base}"
min_points = 1

[[sources]]
kind = "lobsters"
name = "Lobsters"
base_url = "{base}"

[[sources]]
kind = "feed"
name = "Blog"
url = "{base}/rss.xml"

[[topics]]
slug = "alpha"
name = "Alpha"
keywords = ["alpha"]

[[topics]]
slug = "beta"
name = "Beta"
keywords = ["beta"]

[[topics]]
slug = "gamma"
name = "Gamma"
keywords = ["gamma"]

[[topics]]
slug = "gpu"
name = "GPU"
description = "Programming graphics processors."
keywords = ["gpu"]
"#
    )
}

/// The binary on a config file in a temporary directory, the database from `db_url`.
struct Cli {
    dir: tempfile::TempDir,
    db_url: String,
}

impl Cli {
    async fn run(&self, args: &[&str]) -> Output {
        let cfg = self.dir.path().join("tidings.toml");
        let db_url = self.db_url.clone();
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        let out = tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
                .arg("--config")
                .arg(&cfg)
                .args(&args)
                .env_remove("TIDINGS_CONFIG")
                .env("TIDINGS__DATABASE__URL", &db_url)
                .env("RUST_LOG", "warn")
                .output()
                .unwrap()
        })
        .await
        .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    }

    async fn stdout(&self, args: &[&str]) -> String {
        String::from_utf8_lossy(&self.run(args).await.stdout).into_owned()
    }
}

const AT: &str = "2026-02-09T08:00:00Z";

/// Fetches last week (the history) and this week.
async fn fetched(backend: Backend) -> Option<(Cli, String)> {
    let (label, db_url) = backend.url().await?;
    eprintln!("backend: {label}");
    let base = serve().await;
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("tidings.toml"), config(&base)).unwrap();
    let cli = Cli { dir, db_url };
    let last_week: DateTime<Utc> = utc(AT) - chrono::Duration::days(7);
    cli.run(&["fetch", "--at", &last_week.to_rfc3339()]).await;
    cli.run(&["fetch", "--at", AT]).await;
    Some((cli, base))
}

async fn preview(cli: &Cli, topic: &str) -> String {
    cli.stdout(&["preview", "--topic", topic, "--at", AT, "--format", "text"])
        .await
}

per_backend!(the_same_story_under_two_urls_is_one_entry_with_both_sources);
async fn the_same_story_under_two_urls_is_one_entry_with_both_sources(backend: Backend) {
    let Some((cli, base)) = fetched(backend).await else {
        return;
    };
    let text = preview(&cli, "gpu").await;
    // The text opens like the example digest: title line, topic, description, period.
    assert!(
        text.starts_with(
            "Tidings Weekly\n\nGPU\n\nProgramming graphics processors.\n\nArticles from the last 7 days\n\n01  "
        ),
        "{text}"
    );
    assert_eq!(
        text.matches("on the GPU").count(),
        1,
        "one entry for the story: {text}"
    );
    assert!(
        text.contains(&format!(
            "01  Wednesday, February 4, 2026\nAsync/Await on the GPU\n{base}/page/gpu-post\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("Sources: Hacker News 312 pts · Lobsters 25 pts\n"),
        "{text}"
    );
    assert!(!text.contains("gpu-mirror"), "{text}");
    // The HTML part says the same in its header: title line, topic, description, period.
    let html = cli
        .stdout(&["preview", "--topic", "gpu", "--at", AT, "--format", "html"])
        .await;
    let order: Vec<Option<usize>> = [
        ">Tidings Weekly</p>",
        ">GPU</h1>",
        ">Programming graphics processors.</p>",
        ">Articles from the last 7 days</p>",
        ">01</span>",
    ]
    .iter()
    .map(|needle| html.find(needle))
    .collect();
    assert!(
        order.iter().all(Option::is_some) && order.is_sorted(),
        "{order:?}: {html}"
    );
    // A near miss (another version) stays an entry of its own.
    assert!(text.contains("Rust GPU 1.80 released"), "{text}");
    assert!(text.contains("Rust GPU 1.81 released"), "{text}");
    assert!(text.contains("Sources: Hacker News 200 pts\n"), "{text}");
    assert!(text.contains("Sources: Lobsters 10 pts\n"), "{text}");

    // explain says when and why two items were merged, from either URL.
    let mirror = cli
        .stdout(&[
            "explain",
            &format!("{base}/page/gpu-mirror"),
            "--topic",
            "gpu",
            "--at",
            AT,
        ])
        .await;
    assert!(
        mirror.contains("merged:    into the entry of article #")
            && mirror.contains("/page/gpu-post (\"Async/Await on the GPU\")"),
        "{mirror}"
    );
    assert!(mirror.contains("in the digest at position 1"), "{mirror}");
    let post = cli
        .stdout(&[
            "explain",
            &format!("{base}/page/gpu-post"),
            "--topic",
            "gpu",
            "--at",
            AT,
        ])
        .await;
    assert!(
        post.contains(
            "/page/gpu-mirror (\"Async/await on the GPU | VectorWare\"): titles match: 3 shared word(s) (async await gpu), Jaccard 0.75, containment 1.00"
        ),
        "{post}"
    );
    // Both sources count: each one's percentile of its own recent points, summed.
    assert!(
        post.contains("rank:      Hacker News percentile 0.77 (312 points among 15 recent points of the source) x weight 1 = 0.767"),
        "{post}"
    );
    assert!(
        post.contains("rank:      Lobsters percentile 0.80 (25 points among 15 recent points of the source) x weight 1 = 0.800"),
        "{post}"
    );
    assert!(post.contains("score:     1.567"), "{post}");
    let near_miss = cli
        .stdout(&[
            "explain",
            &format!("{base}/page/rust-gpu-181"),
            "--topic",
            "gpu",
            "--at",
            AT,
        ])
        .await;
    assert!(!near_miss.contains("merged:"), "{near_miss}");
}

per_backend!(a_feed_a_lobsters_and_an_hn_story_each_top_a_digest_on_merit);
async fn a_feed_a_lobsters_and_an_hn_story_each_top_a_digest_on_merit(backend: Backend) {
    let Some((cli, base)) = fetched(backend).await else {
        return;
    };
    // Every weight is 1.0. Alpha: HN's best story of the month; beta: Lobsters' best (45
    // points, fewer than HN's 50-point beta story, which is among HN's weakest); gamma: both
    // community stories are weak, so the feed's default percentile (0.5) wins.
    for (topic, first, second, third) in [
        (
            "alpha",
            "Alpha compiler rewrite",
            "Alpha feed musings",
            "Alpha shell tricks",
        ),
        (
            "beta",
            "Beta parser combinators",
            "Beta feed notes",
            "Beta database tuning",
        ),
        (
            "gamma",
            "Gamma feed deep dive",
            "Gamma scheduler internals",
            "Gamma ray tooling",
        ),
    ] {
        let text = preview(&cli, topic).await;
        for (n, title) in [(1, first), (2, second), (3, third)] {
            assert!(
                text.contains(&format!("{n:02}  Wednesday, February 4, 2026\n{title}\n")),
                "{topic}: {title} at {n}: {text}"
            );
        }
    }
    let beta = cli
        .stdout(&[
            "explain",
            &format!("{base}/page/beta-lob"),
            "--topic",
            "beta",
            "--at",
            AT,
        ])
        .await;
    assert!(
        beta.contains("rank:      Lobsters percentile 0.97 (45 points among 15 recent points of the source) x weight 1 = 0.967"),
        "{beta}"
    );
    assert!(beta.contains("in the digest at position 1"), "{beta}");
    let feed = cli
        .stdout(&[
            "explain",
            &format!("{base}/page/gamma-feed"),
            "--topic",
            "gamma",
            "--at",
            AT,
        ])
        .await;
    assert!(
        feed.contains(
            "rank:      Blog percentile 0.50 (no points or history: default_percentile) x weight 1 = 0.500"
        ),
        "{feed}"
    );
    assert!(feed.contains("in the digest at position 1"), "{feed}");
}
