//! Production compile goes through the benchmarked path: `pipeline::compile_topics` (what `run`
//! calls for every topic, and `compile`, `send` and the scheduler for one) freezes exactly what
//! the pure `select::compile_all` (the function `benches/pipeline.rs` measures) chooses from the
//! same stored articles, for several topics with different periods, an earlier issue and an
//! empty topic; a second call finds every issue frozen. One test per backend.

use chrono::{DateTime, Duration, Utc};
use tidings::config::Settings;
use tidings::domain::FetchedItem;
use tidings::pipeline;
use tidings::pipeline::select::compile_all;
use tidings::store::Store;

// Monday 2026-02-09 08:00 UTC, a scheduled time of every topic below.
use super::at;
use crate::support::db::{Backend, per_backend};

fn item(i: i64, title: &str, published: DateTime<Utc>) -> FetchedItem {
    FetchedItem {
        source_name: "Hacker News".into(),
        source_kind: "hackernews".into(),
        external_id: i.to_string(),
        title: title.into(),
        url: Some(format!("https://d{}.example/{i}", i % 3)),
        discussion_url: None,
        published_at: published,
        points: Some((i * 37) % 200),
        comments: Some(i % 7),
        text: None,
        tags: vec![],
    }
}

/// Three topics: two weeks of raft (weekly), three days of paxos (daily), and one whose
/// keyword nothing mentions.
fn settings(db_url: &str) -> Settings {
    let toml = format!(
        r#"
[database]
url = "{db_url}"

[schedule]
cron = "0 0 8 * * Mon"
timezone = "UTC"

[[topics]]
slug = "raft"
name = "Raft"
keywords = ["raft"]
exclude = ["boat"]
window_days = 14
limit = 5
max_per_domain = 2

[[topics]]
slug = "paxos"
name = "Paxos"
keywords = ["paxos"]
cron = "0 0 8 * * *"
window_days = 3
limit = 4

[[topics]]
slug = "none"
name = "Nothing"
keywords = ["zanzibar"]
"#
    );
    Settings::from_toml(&toml).unwrap()
}

per_backend!(compile_topics_freezes_what_the_benchmarked_path_chooses);
async fn compile_topics_freezes_what_the_benchmarked_path_chooses(backend: Backend) {
    let Some((_, db_url)) = backend.url().await else {
        return;
    };
    let settings = settings(&db_url);
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    for i in 0..60 {
        let title = match i % 5 {
            0 => "Raft in practice",
            1 => "Paxos made simple",
            2 => "Raft and Paxos compared",
            3 => "A raft boat trip",
            _ => "Something else",
        };
        let published = at() - Duration::hours(i * 11 + 1);
        pipeline::ingest(&store, &item(i, title, published), at())
            .await
            .unwrap();
    }
    // An earlier issue of "raft" whose period overlaps this one: its articles are not repeated.
    let raft = settings.topic("raft").unwrap();
    let earlier = pipeline::compile_issue(&settings, &store, raft, at() - Duration::days(7), false)
        .await
        .unwrap();
    assert!(!earlier.digest.entries.is_empty());

    // What the benchmarked function chooses from the same stored data.
    let mut windows = Vec::new();
    let mut earlier_maps = Vec::new();
    for topic in &settings.topics {
        let window = pipeline::period(&settings, topic, at()).unwrap();
        windows.push(window);
        earlier_maps.push(
            store
                .articles_in_earlier_issues(&topic.slug, window.end)
                .await
                .unwrap(),
        );
    }
    let start = windows.iter().map(|w| w.start).min().unwrap();
    let end = windows.iter().map(|w| w.end).max().unwrap();
    let articles = store.articles_between(start, end).await.unwrap();
    let expected = compile_all(
        &settings.topics,
        &windows,
        &articles,
        &earlier_maps,
        &pipeline::compile::ranking_weights(&settings, &store, start, end)
            .await
            .unwrap(),
    )
    .unwrap();

    let compiled = pipeline::compile_topics(&settings, &store, &settings.topics, at(), false)
        .await
        .unwrap();
    assert_eq!(compiled.len(), 3);
    let mut issue_ids = Vec::new();
    for (i, result) in compiled.into_iter().enumerate() {
        let slug = &settings.topics[i].slug;
        match result.unwrap() {
            Ok(issue) => {
                assert!(issue.newly_compiled, "{slug}");
                assert!(!issue.digest.entries.is_empty(), "{slug}");
                assert_eq!(issue.digest.entries, expected[i].entries, "{slug}");
                assert_eq!(issue.digest.window_start, windows[i].start, "{slug}");
                assert_eq!(issue.digest.window_end, windows[i].end, "{slug}");
                issue_ids.push(Some(issue.issue_id));
            }
            Err(empty) => {
                assert_eq!(
                    slug.as_str(),
                    "none",
                    "only the topic nothing mentions is empty"
                );
                assert!(expected[i].entries.is_empty());
                assert!(
                    store
                        .find_issue(slug, empty.window_end)
                        .await
                        .unwrap()
                        .is_none(),
                    "an empty period is never frozen"
                );
                issue_ids.push(None);
            }
        }
    }
    assert_eq!(issue_ids.iter().flatten().count(), 2);
    let raft_now = store
        .get_issue(issue_ids[0].unwrap())
        .await
        .unwrap()
        .unwrap();
    for e in &raft_now.digest.entries {
        assert!(
            !earlier
                .digest
                .entries
                .iter()
                .any(|x| x.article_id == e.article_id),
            "no repeats of the earlier issue"
        );
        assert!(!e.title.contains("boat"), "exclude terms hold");
    }

    // Again: every issue is found frozen, and one topic alone gives the same issue.
    let again = pipeline::compile_topics(&settings, &store, &settings.topics, at(), false)
        .await
        .unwrap();
    for (i, result) in again.into_iter().enumerate() {
        match result.unwrap() {
            Ok(issue) => {
                assert!(!issue.newly_compiled);
                assert_eq!(Some(issue.issue_id), issue_ids[i]);
            }
            Err(_) => assert_eq!(issue_ids[i], None),
        }
    }
    let paxos = settings.topic("paxos").unwrap();
    let alone = pipeline::compile_period(&settings, &store, paxos, at(), false)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(Some(alone.issue_id), issue_ids[1]);
    let preview = pipeline::preview_digest(&settings, &store, paxos, at())
        .await
        .unwrap();
    assert_eq!(preview.entries, alone.digest.entries);
}
