//! Unit tests of story merging: labelled title pairs (merges and near misses both ways), title
//! normalisation, and merging articles into one entry per story.

use super::*;
use crate::domain::PageInfo;
use chrono::TimeZone;
use std::borrow::Cow;

/// Labelled title pairs: the same story under two titles (true), and near misses or
/// different stories (false). The thresholds were chosen on these.
const PAIRS: &[(&str, &str, bool)] = &[
    (
        "Don't rent the cloud, own instead",
        "Don’t Rent the Cloud, Own Instead",
        true,
    ),
    (
        "Async/Await on the GPU",
        "Async/await on the GPU | VectorWare",
        true,
    ),
    (
        "Postgres Postmaster does not scale",
        "Recall.ai: Postgres postmaster does not scale",
        true,
    ),
    (
        "Show HN: AI agents play SimCity through a REST API",
        "AI agents play SimCity through a REST API",
        true,
    ),
    (
        "Cloudflare outage on February 20, 2026",
        "Cloudflare outage on February 20, 2026 (post-mortem)",
        true,
    ),
    (
        "A Botnet Accidentally Destroyed I2P",
        "How a botnet accidentally destroyed I2P",
        true,
    ),
    (
        "Making WebAssembly a first-class language on the Web",
        "Making WebAssembly a First-Class Language on the Web - Mozilla Hacks",
        true,
    ),
    (
        "Goblins: Distributed, Transactional Programming with Racket and Guile",
        "Spritely Goblins: distributed, transactional programming with Racket and Guile",
        true,
    ),
    (
        "Hypergrowth isn’t always easy",
        "Hypergrowth isn't always easy",
        true,
    ),
    ("Rust 1.80 released", "Announcing Rust 1.80.0", true),
    ("Understanding Raft (2019)", "Understanding Raft", true),
    (
        "Use Protocols, Not Services",
        "Use protocols, not services [pdf]",
        true,
    ),
    (
        "The Day the Telnet Died",
        "The day the Telnet died: port 23 traffic fell 83%",
        false,
    ),
    ("Rust 1.80 released", "Rust 1.81 released", false),
    (
        "Understanding Raft, Part 1",
        "Understanding Raft, Part 2",
        false,
    ),
    ("Consensus, Part I", "Consensus, Part II", false),
    ("Consensus, part one", "Consensus, part two", false),
    ("GPT-4 system card", "GPT-5 system card", false),
    ("Postgres 17 performance", "Postgres 18 performance", false),
    ("This Week in Rust 540", "This Week in Rust 541", false),
    ("Learning Rust in 2024", "Learning Rust in 2025", false),
    ("Postgres does scale", "Postgres does not scale", false),
    ("Rust async cancellation", "Rust async book", false),
    ("Why we left Kubernetes", "Why we love Kubernetes", false),
    (
        "The Day the Telnet Died",
        "Reports of Telnet's death have been greatly exaggerated",
        false,
    ),
    (
        "Lessons from building a database",
        "Lessons from building a compiler",
        false,
    ),
    (
        "Building a fast database in Rust",
        "Building a fast database in Go",
        false,
    ),
    (
        "Show HN: My Rust web framework",
        "Show HN: My Go web framework",
        false,
    ),
    (
        "Rust 1.80 released",
        "Rust 1.80 regression in the borrow checker",
        false,
    ),
    ("Raft", "Raft", false),
    ("Rust story 2 of round 1", "Rust story 1 of round 2", false),
    (
        "Distributed systems reading list",
        "Distributed systems reading group notes for the autumn term of 2026 at our lab",
        false,
    ),
];

#[test]
fn labelled_pairs_merge_or_stay_apart_both_ways() {
    for (a, b, same) in PAIRS {
        let (wa, wb) = (title_words(a), title_words(b));
        let m = titles_match(&wa, &wb);
        assert_eq!(m.is_some(), *same, "{a:?} / {b:?}: {wa:?} {wb:?} {m:?}");
        assert_eq!(titles_match(&wb, &wa), m, "symmetric: {a:?} / {b:?}");
    }
}

/// Prints each labelled pair's measures (`cargo test measure_pairs -- --nocapture`).
#[test]
fn measure_pairs() {
    for (a, b, same) in PAIRS {
        let (wa, wb) = (title_words(a), title_words(b));
        let shared = wa.words.intersection(&wb.words).count();
        let small = wa.words.len().min(wb.words.len()).max(1);
        let union = (wa.words.len() + wb.words.len() - shared).max(1);
        println!(
            "{same:5} markers_equal={:5} shared={shared} jaccard={:.2} containment={:.2} sizes={}/{} | {a} | {b}",
            wa.markers == wb.markers,
            shared as f64 / union as f64,
            shared as f64 / small as f64,
            wa.words.len(),
            wb.words.len()
        );
    }
}

#[test]
fn titles_are_normalised_before_matching() {
    let w = title_words("Show HN: Rust v1.80.0 isn't released, Part II (2019) [pdf]");
    assert_eq!(
        w.markers.iter().map(String::as_str).collect::<Vec<_>>(),
        ["1.80", "not", "2"]
    );
    assert!(w.words.contains("rust") && w.words.contains("part"));
    assert!(!w.words.contains("show") && !w.words.contains("hn"));
    assert!(
        !w.markers.iter().any(|m| m == "2019"),
        "a trailing (2019) tag is dropped"
    );
    assert_eq!(title_words("Releases").words, title_words("release").words);
    assert_eq!(title_words("scaling").words, title_words("scale").words);
    assert_eq!(
        title_words("1,100 prefixes").markers,
        title_words("1100 prefixes").markers
    );
}

fn art(id: i64, title: &str, url: &str, source: &str, points: Option<i64>, day: u32) -> Article {
    let at = Utc.with_ymd_and_hms(2026, 2, day, 12, 0, 0).unwrap();
    Article {
        id,
        canonical_url: super::canonical::canonicalize(url).unwrap(),
        url: url.into(),
        title: title.into(),
        domain: "d".into(),
        published_at: at,
        sources: vec![ArticleSource {
            source_name: source.into(),
            source_kind: "x".into(),
            external_id: id.to_string(),
            points,
            comments: None,
            discussion_url: None,
            text: None,
            tags: vec![],
            published_at: at,
        }],
        page: None,
    }
}

#[test]
fn one_story_under_two_urls_becomes_one_entry_with_every_source() {
    let mut mirror = art(
        2,
        "Async/await on the GPU | VectorWare",
        "https://mirror.example/gpu",
        "Lobsters",
        Some(45),
        4,
    );
    mirror.page = Some(PageInfo {
        description: Some("d".into()),
        text: None,
        ..PageInfo::default()
    });
    let arts = vec![
        art(
            1,
            "Async/Await on the GPU",
            "https://vectorware.example/blog/gpu",
            "Hacker News",
            Some(312),
            5,
        ),
        mirror,
        art(
            3,
            "Rust 1.80 released",
            "https://a.example/180",
            "Hacker News",
            Some(50),
            5,
        ),
        art(
            4,
            "Rust 1.81 released",
            "https://b.example/181",
            "Lobsters",
            Some(9),
            5,
        ),
        art(5, "Raft notes", "https://c.example/raft", "Blog", None, 5),
        art(
            6,
            "Raft notes",
            "http://m.c.example/raft/amp",
            "Hacker News",
            Some(70),
            6,
        ),
    ];
    let stories = merge_stories(arts);
    let ids: Vec<i64> = stories.articles.iter().map(|a| a.id).collect();
    // The earliest article represents the story; input order is kept otherwise.
    assert_eq!(ids, vec![2, 3, 4, 5]);
    let gpu = &stories.articles[0];
    assert_eq!(gpu.title, "Async/await on the GPU | VectorWare");
    let sources: Vec<(&str, Option<i64>)> = gpu
        .sources
        .iter()
        .map(|s| (s.source_name.as_str(), s.points))
        .collect();
    assert_eq!(
        sources,
        vec![("Hacker News", Some(312)), ("Lobsters", Some(45))]
    );
    assert!(gpu.page.is_some());
    let notes = &stories.merged[&2];
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].article_id, 1);
    assert!(
        notes[0]
            .reason
            .to_string()
            .starts_with("titles match: 3 shared word(s)"),
        "{}",
        notes[0].reason
    );
    let raft = &stories.merged[&5];
    assert_eq!(
        raft[0].reason,
        MergeReason::SameLinkTarget("c.example/raft".into())
    );
    assert_eq!(stories.story_of(1), 2);
    assert_eq!(stories.story_of(6), 5);
    assert_eq!(stories.story_of(3), 3);
    // A story carried by an earlier issue under a member's id counts as carried.
    let earlier = stories.remap_earlier(&HashMap::from([(1, 77)]));
    assert_eq!(earlier.get(&2), Some(&77));
}

#[test]
fn stories_never_span_more_than_the_limit() {
    let arts: Vec<Article> = (0..6)
        .map(|i| {
            art(
                i,
                "Weekly consensus notes",
                &format!("https://e.example/{i}"),
                "Blog",
                None,
                1 + 5 * i as u32,
            )
        })
        .collect();
    let stories = merge_stories(arts);
    for a in stories.articles.iter() {
        let members = stories.merged.get(&a.id).map_or(0, Vec::len);
        assert!(members <= 2, "{a:?}");
    }
    assert!(stories.articles.len() >= 2);
}

#[test]
fn many_distinct_titles_stay_distinct() {
    let arts: Vec<Article> = (0..2000)
        .map(|i| {
            art(
                i,
                &format!("Topic {i} in depth"),
                &format!("https://e.example/{i}"),
                "Blog",
                None,
                3,
            )
        })
        .collect();
    let borrowed = merge_stories_of(Cow::Borrowed(&arts));
    assert!(
        matches!(borrowed.articles, Cow::Borrowed(_)),
        "nothing merged: nothing copied"
    );
    assert_eq!(merge_stories(arts).articles.len(), 2000);
}
