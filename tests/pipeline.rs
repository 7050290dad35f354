//! The article pipeline against loopback fixture servers: Hacker News Algolia pages, Lobsters
//! JSON, RSS/Atom/JSON feeds, article pages, and hostile servers (trickle, 50 MB body, gzip
//! bomb); SSRF refusals through an injectable resolver; periods, repeats, compile and explain.

mod compile;
mod fixtures;
mod hostile;
mod ranking;
mod summaries;

use chrono::{DateTime, Duration, TimeZone, Utc};
use tidings::config::Settings;
use tidings::domain::{FetchedItem, SubscriberStatus};
use tidings::pipeline;
use tidings::store::Store;

use crate::support::db::{self, Backend, per_backend};
use fixtures::{FixtureServer, Story};

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2026-02-09 08:00 UTC: the period is [2026-02-02T08:00, 2026-02-09T08:00).
pub fn at() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap()
}

pub fn config_toml(db_url: &str, base: &str, extra_topic: &str) -> String {
    format!(
        r#"
[database]
url = "{db_url}"

[schedule]
cron = "0 0 8 * * Mon"
timezone = "UTC"

[fetch]
allow_private_addresses = true
retries = 0
timeout_secs = 5
max_bytes = 1048576

[[sources]]
kind = "hackernews"
name = "Hacker News"
base_url = "{base}"
min_points = 10

[[sources]]
kind = "lobsters"
name = "Lobsters"
base_url = "{base}"
tags = ["distributed"]

[[sources]]
kind = "feed"
name = "Blog"
url = "{base}/rss.xml"
weight = 2.0

[[sources]]
kind = "feed"
name = "Atom Blog"
url = "{base}/atom.xml"

[[sources]]
kind = "feed"
name = "JSON Blog"
url = "{base}/feed.json"

[[sources]]
kind = "feed"
name = "Broken"
url = "{base}/broken.xml"

[[topics]]
slug = "distributed"
name = "Distributed Systems"
description = "Consensus, fault tolerance and the systems built on them."
keywords = ["raft", "paxos", "consensus", "distributed systems", "fault-tolerant", "crdts"]
exclude = ["cooking"]
max_per_domain = 10
{extra_topic}
"#,
    )
}

pub async fn setup(db_url: &str, extra_topic: &str) -> (FixtureServer, Settings, Store) {
    let server = FixtureServer::start(fixtures::standard_stories()).await;
    let toml = config_toml(db_url, &server.base, extra_topic);
    let settings = Settings::from_toml(&toml).unwrap();
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    (server, settings, store)
}

per_backend!(fetch_merges_sources_and_preview_ranks_the_period);
async fn fetch_merges_sources_and_preview_ranks_the_period(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (server, settings, store) = setup(&db_url, "").await;
    let report = pipeline::fetch_all(&settings, &store, at(), None)
        .await
        .unwrap();
    let text = report.to_string();
    // The broken feed is reported once and the others carry on.
    let broken = report.source("Broken").unwrap();
    assert!(
        broken.error.as_deref().unwrap().contains("not a feed"),
        "{text}"
    );
    assert!(
        report.source("Hacker News").unwrap().error.is_none(),
        "{text}"
    );
    assert!(report.source("Lobsters").unwrap().stored >= 2, "{text}");
    assert_eq!(report.source("JSON Blog").unwrap().stored, 1, "{text}");
    assert!(report.pages_fetched >= 2, "{text}");

    let topic = settings.topic("distributed").unwrap();
    let digest = pipeline::preview_digest(&settings, &store, topic, at())
        .await
        .unwrap();
    let titles: Vec<&str> = digest.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(
        titles,
        // Each source's points as a percentile of its own recent points (HN: 80, 150, 302,
        // 400, 500; Lobsters: 0, 41), feeds at the default 0.5, times the weight, summed.
        vec![
            "Raft consensus in practice",
            "<script>alert(1)</script> Raft tips",
            "CRDTs in the wild",
            "Fault-tolerant queues",
            "Paxos made simple again",
            "Consensus on the edge",
            "Ask HN: How do you test distributed systems?",
        ],
        "{digest:#?}"
    );
    // Cross-source merge: one article with both sources' points.
    let raft = &digest.entries[0];
    assert_eq!(raft.sources.len(), 2);
    // HN 302 is the middle of five (0.5), Lobsters 41 the top of two (0.75).
    assert_eq!(raft.score, 1.25);
    // A story without a URL uses its discussion page.
    assert_eq!(
        digest.entries[6].url,
        "https://news.ycombinator.com/item?id=300"
    );
    // A four-word description is a tagline, not a summary: the page's sentences make it,
    // without the cookie banner.
    let paxos = &digest.entries[4].summary;
    assert!(
        paxos.starts_with("The protocol lets a group of machines agree on one value"),
        "{paxos}"
    );
    assert!(!paxos.contains("cookies"), "{paxos}");
    for e in &digest.entries {
        let words = e.summary.split_whitespace().count();
        assert!(words <= 130, "{}", e.summary);
    }
    assert!(digest.issue_id.is_none());
    assert!(
        store.list_issues(None).await.unwrap().is_empty(),
        "preview stores no issue"
    );

    let out = tidings::render::digest_text(&digest, &settings.newsletter.title);
    assert!(
        out.starts_with("Tidings\n\nDistributed Systems\n\nConsensus, fault tolerance"),
        "{out}"
    );
    assert!(out.contains("Articles from the last 7 days"));
    assert!(
        out.contains("01  Tuesday, February 3, 2026\nRaft consensus in practice\n"),
        "{out}"
    );
    assert!(
        out.contains("Sources: Hacker News 302 pts · Lobsters 41 pts"),
        "{out}"
    );
    assert!(out.contains("Sources: Blog\n"), "{out}");
    for absent in [
        "Cooking with raft",
        "Raft history",
        "Pasta",
        "Raft javascript link",
        "Raft at the boundary",
    ] {
        assert!(!out.contains(absent), "{absent} must be absent: {out}");
    }
    assert!(!out.contains("javascript:"), "{out}");
    drop(server);
}

per_backend!(fetching_again_updates_points_and_honours_conditional_get);
async fn fetching_again_updates_points_and_honours_conditional_get(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (server, settings, store) = setup(&db_url, "").await;
    pipeline::fetch_all(&settings, &store, at(), None)
        .await
        .unwrap();
    server.set_points("100", 500);
    let report = pipeline::fetch_all(&settings, &store, at(), None)
        .await
        .unwrap();
    assert!(report.source("Blog").unwrap().not_modified, "{report}");
    assert!(server.saw_header("/rss.xml", "if-none-match", "\"rss-v1\""));
    let topic = settings.topic("distributed").unwrap();
    let digest = pipeline::preview_digest(&settings, &store, topic, at())
        .await
        .unwrap();
    let raft: Vec<_> = digest
        .entries
        .iter()
        .filter(|e| e.title == "Raft consensus in practice")
        .collect();
    assert_eq!(raft.len(), 1, "no duplicate after a second fetch");
    assert_eq!(
        raft[0]
            .sources
            .iter()
            .find(|s| s.name == "Hacker News")
            .unwrap()
            .points,
        Some(500)
    );
}

per_backend!(hacker_news_windows_are_split_under_the_hit_cap);
async fn hacker_news_windows_are_split_under_the_hit_cap(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let start = at() - Duration::days(7);
    let stories: Vec<Story> = (0..2500)
        .map(|i| {
            Story::hn(
                &format!("{}", 10_000 + i),
                &format!("Raft note {i}"),
                Some(&format!("https://n{i}.example.org/")),
                20,
                start + Duration::seconds(i * 241),
            )
        })
        .collect();
    let server = FixtureServer::start(stories).await;
    let toml = format!(
        "[database]\nurl = \"{db_url}\"\n[fetch]\nallow_private_addresses = true\nretries = 0\nfetch_pages = false\n[[sources]]\nkind = \"hackernews\"\nname = \"Hacker News\"\nbase_url = \"{}\"\n[[topics]]\nslug = \"d\"\nname = \"D\"\nkeywords = [\"raft\"]\n",
        server.base
    );
    let settings = Settings::from_toml(&toml).unwrap();
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    let report = pipeline::fetch_all(&settings, &store, at(), None)
        .await
        .unwrap();
    assert_eq!(
        report.source("Hacker News").unwrap().stored,
        2500,
        "{report}"
    );
    let queries = server.hn_queries();
    assert!(
        queries.iter().any(|q| q.matching > 1000),
        "the first query is over the cap"
    );
    for q in queries.iter().filter(|q| q.page > 0) {
        assert!(q.matching <= 1000, "paged a query over the cap: {q:?}");
    }
}

fn item(id: &str, title: &str, url: &str, points: i64, published: DateTime<Utc>) -> FetchedItem {
    FetchedItem {
        source_name: "Hacker News".into(),
        source_kind: "hackernews".into(),
        external_id: id.into(),
        title: title.into(),
        url: Some(url.into()),
        discussion_url: Some(format!("https://news.ycombinator.com/item?id={id}")),
        published_at: published,
        points: Some(points),
        comments: Some(1),
        text: None,
        tags: vec![],
    }
}

async fn offline(db_url: &str, topic_extra: &str) -> (Settings, Store) {
    let toml = format!(
        "[database]\nurl = \"{db_url}\"\n[schedule]\ncron = \"0 0 8 * * Mon\"\ntimezone = \"UTC\"\n[[topics]]\nslug = \"d\"\nname = \"D\"\nkeywords = [\"raft\"]\n{topic_extra}\n",
    );
    let settings = Settings::from_toml(&toml).unwrap();
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    (settings, store)
}

per_backend!(an_article_on_the_boundary_lands_in_exactly_one_period);
async fn an_article_on_the_boundary_lands_in_exactly_one_period(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (settings, store) = offline(&db_url, "").await;
    let boundary = at();
    pipeline::ingest(
        &store,
        &item(
            "1",
            "Raft on the boundary",
            "https://a.example/x",
            10,
            boundary,
        ),
        at(),
    )
    .await
    .unwrap();
    pipeline::ingest(
        &store,
        &item(
            "2",
            "Raft a second before",
            "https://a.example/y",
            10,
            boundary - Duration::seconds(1),
        ),
        at(),
    )
    .await
    .unwrap();
    let topic = settings.topic("d").unwrap();
    let this = pipeline::preview_digest(&settings, &store, topic, at())
        .await
        .unwrap();
    let next = pipeline::preview_digest(&settings, &store, topic, at() + Duration::days(7))
        .await
        .unwrap();
    let t: Vec<&str> = this.entries.iter().map(|e| e.title.as_str()).collect();
    let n: Vec<&str> = next.entries.iter().map(|e| e.title.as_str()).collect();
    assert_eq!(t, vec!["Raft a second before"]);
    assert_eq!(n, vec!["Raft on the boundary"]);
    // Any time inside the week finds the same period.
    let pipeline::select::Window { start: s1, end: e1 } =
        pipeline::period(&settings, topic, at() + Duration::hours(30)).unwrap();
    assert_eq!((s1, e1), (at() - Duration::days(7), at()));
}

per_backend!(overlapping_periods_do_not_repeat_articles_unless_repeat);
async fn overlapping_periods_do_not_repeat_articles_unless_repeat(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (settings, store) = offline(&db_url, "window_days = 30").await;
    let topic = settings.topic("d").unwrap();
    let week1 = at() - Duration::days(3);
    pipeline::ingest(
        &store,
        &item("1", "Raft week one", "https://a.example/1", 50, week1),
        at(),
    )
    .await
    .unwrap();
    let first = pipeline::compile_issue(&settings, &store, topic, at(), false)
        .await
        .unwrap();
    assert_eq!(first.digest.entries.len(), 1);
    pipeline::ingest(
        &store,
        &item(
            "2",
            "Raft week two",
            "https://a.example/2",
            10,
            at() + Duration::days(2),
        ),
        at(),
    )
    .await
    .unwrap();
    let second = pipeline::compile_issue(&settings, &store, topic, at() + Duration::days(7), false)
        .await
        .unwrap();
    let titles: Vec<&str> = second
        .digest
        .entries
        .iter()
        .map(|e| e.title.as_str())
        .collect();
    assert_eq!(titles, vec!["Raft week two"]);
    assert_ne!(first.issue_id, second.issue_id);

    let mut repeat = topic.clone();
    repeat.repeat = true;
    let preview = pipeline::preview_digest(&settings, &store, &repeat, at() + Duration::days(7))
        .await
        .unwrap();
    assert_eq!(preview.entries.len(), 2);
    // explain names the earlier issue.
    let ex = pipeline::explain(
        &settings,
        &store,
        topic,
        "https://a.example/1",
        at() + Duration::days(7),
    )
    .await
    .unwrap();
    assert!(
        ex.to_string()
            .contains(&format!("earlier issue #{}", first.issue_id)),
        "{ex}"
    );
}

per_backend!(compile_is_stable_force_refreezes_and_deliveries_block_it);
async fn compile_is_stable_force_refreezes_and_deliveries_block_it(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (settings, store) = offline(&db_url, "").await;
    let topic = settings.topic("d").unwrap();
    pipeline::ingest(
        &store,
        &item(
            "1",
            "Raft one",
            "https://a.example/1",
            50,
            at() - Duration::days(1),
        ),
        at(),
    )
    .await
    .unwrap();
    let a = pipeline::compile_issue(&settings, &store, topic, at(), false)
        .await
        .unwrap();
    assert!(a.newly_compiled);
    assert_eq!(a.digest.issue_id, Some(a.issue_id));
    pipeline::ingest(
        &store,
        &item(
            "2",
            "Raft two",
            "https://a.example/2",
            90,
            at() - Duration::days(2),
        ),
        at(),
    )
    .await
    .unwrap();
    let b = pipeline::compile_issue(&settings, &store, topic, at() + Duration::days(1), false)
        .await
        .unwrap();
    assert_eq!(b.issue_id, a.issue_id);
    assert!(!b.newly_compiled);
    assert_eq!(b.digest, a.digest, "frozen as it was");
    let c = pipeline::compile_issue(&settings, &store, topic, at(), true)
        .await
        .unwrap();
    assert_eq!(c.issue_id, a.issue_id);
    assert_eq!(c.digest.entries.len(), 2);
    let stored = store.get_issue(a.issue_id).await.unwrap().unwrap();
    assert_eq!(stored.digest, c.digest);
    let list = store.list_issues(Some("d")).await.unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].article_count, 2);

    // A delivery row (queued for a confirmed subscriber of the topic) blocks --force.
    store
        .add_subscriber(
            &db::new_subscriber("a@example.com", &["d"], SubscriberStatus::Confirmed),
            at(),
        )
        .await
        .unwrap();
    assert_eq!(store.enqueue_issue(a.issue_id, "d", at()).await.unwrap(), 1);
    let err = pipeline::compile_issue(&settings, &store, topic, at(), true)
        .await
        .unwrap_err();
    assert!(format!("{err:#}").contains("deliveries"), "{err:#}");
}

per_backend!(explain_reports_matches_and_decisions);
async fn explain_reports_matches_and_decisions(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (server, settings, store) = setup(&db_url, "").await;
    pipeline::fetch_all(&settings, &store, at(), None)
        .await
        .unwrap();
    let topic = settings.topic("distributed").unwrap();
    let ex = |u: String| {
        let (settings, store) = (&settings, &store);
        async move {
            pipeline::explain(settings, store, topic, &u, at())
                .await
                .unwrap()
                .to_string()
        }
    };
    let raft = ex(format!("{}/page/raft", server.base)).await;
    assert!(raft.contains("title keywords: raft, consensus"), "{raft}");
    assert!(raft.contains("in the digest at position 1"), "{raft}");
    let cooking = ex(format!("{}/page/cooking", server.base)).await;
    assert!(
        cooking.contains("exclude term(s) matched: cooking"),
        "{cooking}"
    );
    let pasta = ex(format!("{}/page/pasta", server.base)).await;
    assert!(pasta.contains("no keyword, tag or domain"), "{pasta}");
    let old = ex(format!("{}/page/history", server.base)).await;
    assert!(old.contains("outside the period"), "{old}");
    let unknown = ex("https://nowhere.example/".into()).await;
    assert!(unknown.contains("no stored article"), "{unknown}");
}

per_backend!(cli_fetch_then_preview_prints_the_digest);
async fn cli_fetch_then_preview_prints_the_digest(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let dir = tempfile::tempdir().unwrap();
    let server = FixtureServer::start(fixtures::standard_stories()).await;
    let cfg = dir.path().join("tidings.toml");
    // The config names SQLite; TIDINGS__DATABASE__URL wins, as an operator would set it.
    std::fs::write(&cfg, config_toml(&db::sqlite_url(), &server.base, "")).unwrap();
    let run = |args: Vec<String>| {
        let (cfg, db_url) = (cfg.clone(), db_url.clone());
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
                .arg("--config")
                .arg(&cfg)
                .args(args)
                .env_remove("TIDINGS_CONFIG")
                .env("TIDINGS__DATABASE__URL", &db_url)
                .output()
                .unwrap()
        })
    };
    let at = "2026-02-09T08:00:00Z".to_string();
    let fetch = run(vec!["fetch".into(), "--at".into(), at.clone()])
        .await
        .unwrap();
    let out = String::from_utf8_lossy(&fetch.stdout);
    assert!(
        fetch.status.success(),
        "{out} {}",
        String::from_utf8_lossy(&fetch.stderr)
    );
    assert!(out.contains("Broken") && out.contains("FAILED"), "{out}");
    let preview = run(vec![
        "preview".into(),
        "--topic".into(),
        "distributed".into(),
        "--at".into(),
        at.clone(),
        "--format".into(),
        "text".into(),
    ])
    .await
    .unwrap();
    let text = String::from_utf8_lossy(&preview.stdout);
    assert!(
        preview.status.success(),
        "{}",
        String::from_utf8_lossy(&preview.stderr)
    );
    assert!(
        text.starts_with("Tidings\n\nDistributed Systems\n"),
        "stdout carries the digest alone: {text}"
    );
    let first = text.find("Raft consensus in practice").unwrap();
    let second = text.find("Paxos made simple again").unwrap();
    assert!(first < second, "{text}");
    assert!(!text.contains("Pasta"));
    let html = run(vec![
        "preview".into(),
        "--topic".into(),
        "distributed".into(),
        "--at".into(),
        at.clone(),
        "--format".into(),
        "html".into(),
    ])
    .await
    .unwrap();
    assert!(
        html.status.success(),
        "{label}: {}",
        String::from_utf8_lossy(&html.stderr)
    );
    assert!(String::from_utf8_lossy(&html.stdout).contains("<table"));
    let compile = run(vec![
        "compile".into(),
        "--topic".into(),
        "distributed".into(),
        "--at".into(),
        at.clone(),
    ])
    .await
    .unwrap();
    let id = String::from_utf8_lossy(&compile.stdout).trim().to_string();
    assert!(id.parse::<i64>().is_ok(), "{id}");
    let again = run(vec![
        "compile".into(),
        "--topic".into(),
        "distributed".into(),
        "--at".into(),
        at.clone(),
    ])
    .await
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&again.stdout).trim(), id);
    // The issue landed in the database named by TIDINGS__DATABASE__URL.
    let store = Store::open(&db_url, 2).await.unwrap();
    let issues = store.list_issues(Some("distributed")).await.unwrap();
    assert_eq!(issues.len(), 1, "{label}");
    assert_eq!(issues[0].id.to_string(), id, "{label}");
    let explain = run(vec![
        "explain".into(),
        format!("{}/page/pasta", server.base),
        "--topic".into(),
        "distributed".into(),
        "--at".into(),
        at,
    ])
    .await
    .unwrap();
    assert!(String::from_utf8_lossy(&explain.stdout).contains("out: no keyword"));
}
