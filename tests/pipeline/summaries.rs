//! Summaries as readers and operators see them: extractive summaries of the article fixtures
//! under `tests/fixtures/articles/` (whole sentences, 60-130 words, no byline or sign-off) in
//! `tidings preview`'s output, and model summaries from fake OpenAI-compatible endpoints on
//! loopback that answer well, invent numbers and names, hang, answer garbage or too much, with
//! the cache (no second request) and `max_requests_per_run`, shown by `explain`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chrono::Duration;
use serde_json::{Value, json};
use tidings::config::{Secret, Settings, SummarizerKind};
use tidings::domain::{Digest, FetchedItem, PageInfo};
use tidings::pipeline;
use tidings::pipeline::abstractive::MAX_RESPONSE_BYTES;
use tidings::pipeline::summarize::sentences;
use tidings::store::Store;

use super::at;
use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db::{self, Backend, per_backend};

/// One article fixture: title, description and body.
struct Fixture {
    name: &'static str,
    title: String,
    description: Option<String>,
    body: String,
}

const NAMES: &[&str] = &["datacenter", "telnet", "queue", "postgres"];

fn fixture(name: &'static str) -> Fixture {
    let path = format!(
        "{}/tests/fixtures/articles/{name}.txt",
        env!("CARGO_MANIFEST_DIR")
    );
    let raw = std::fs::read_to_string(&path).unwrap();
    let (head, body) = raw.split_once("\n\n").unwrap();
    let mut title = String::new();
    let mut description = None;
    for line in head.lines() {
        if let Some(t) = line.strip_prefix("Title: ") {
            title = t.to_string();
        } else if let Some(d) = line.strip_prefix("Description: ") {
            description = Some(d.to_string());
        }
    }
    Fixture {
        name,
        title,
        description,
        body: body.to_string(),
    }
}

fn fixtures() -> Vec<Fixture> {
    NAMES.iter().map(|n| fixture(n)).collect()
}

fn url(name: &str) -> String {
    format!("https://{name}.example.org/post")
}

// Struct update syntax, so new PageInfo fields (page metadata) need no change here.
#[allow(clippy::needless_update)]
fn page_info(f: &Fixture, body: &str) -> PageInfo {
    PageInfo {
        description: f.description.clone(),
        text: Some(body.to_string()),
        ..PageInfo::default()
    }
}

/// Stores the fixture as a Hacker News story with its page already fetched.
async fn seed(store: &Store, f: &Fixture, body: &str, points: i64) {
    let item = FetchedItem {
        source_name: "Hacker News".into(),
        source_kind: "hackernews".into(),
        external_id: f.name.into(),
        title: f.title.clone(),
        url: Some(url(f.name)),
        discussion_url: None,
        published_at: at() - Duration::days(2),
        points: Some(points),
        comments: Some(3),
        text: None,
        tags: vec![],
    };
    let id = pipeline::ingest(store, &item, at()).await.unwrap().unwrap();
    store
        .save_page(id, &page_info(f, body), None, at())
        .await
        .unwrap();
}

const TOPIC: &str = r#"
[schedule]
cron = "0 0 8 * * Mon"
timezone = "UTC"

[[topics]]
slug = "infra"
name = "Infrastructure"
keywords = ["data centre", "telnet", "queue", "connection", "tiny"]
"#;

async fn seeded(db_url: &str) -> (Settings, Store) {
    let settings =
        Settings::from_toml(&format!("[database]\nurl = \"{db_url}\"\n{TOPIC}")).unwrap();
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    for (i, f) in fixtures().iter().enumerate() {
        seed(&store, f, &f.body, 100 - i as i64).await;
    }
    (settings, store)
}

async fn preview(settings: &Settings, store: &Store) -> Digest {
    let topic = settings.topic("infra").unwrap();
    pipeline::preview_digest(settings, store, topic, at())
        .await
        .unwrap()
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Every sentence of `summary` is a sentence of the fixture's body or description.
fn assert_whole_sentences(f: &Fixture, summary: &str) {
    let mut known = sentences(&f.body);
    known.extend(f.description.iter().flat_map(|d| sentences(d)));
    for s in sentences(summary) {
        assert!(
            known.contains(&s),
            "{}: not a whole sentence of the article: {s:?}\nin: {summary}",
            f.name
        );
    }
}

#[test]
fn fixture_summaries_are_60_to_130_words_of_whole_sentences_without_boilerplate() {
    for f in fixtures() {
        assert!(words(&f.body) >= 300, "{} is a long article", f.name);
        let mut a = tidings::domain::Article {
            id: 1,
            canonical_url: url(f.name),
            url: url(f.name),
            title: f.title.clone(),
            domain: "example.org".into(),
            published_at: at(),
            sources: vec![],
            page: None,
        };
        a.page = Some(page_info(&f, &f.body));
        let s = pipeline::summarize::summary_with_source(&a);
        let n = words(&s.text);
        assert!((60..=130).contains(&n), "{}: {n} words: {}", f.name, s.text);
        assert_whole_sentences(&f, &s.text);
        assert!(!s.text.contains(&f.title), "{}: {}", f.name, s.text);
        for junk in [
            "Subscribe",
            "write to us",
            "write to the author",
            "Share on",
            "Photo:",
            "Figure 2",
            "By Maria",
            "Posted by",
            "Thanks for reading",
            "If you",
            "min read",
            "engineering blog for people",
        ] {
            assert!(!s.text.contains(junk), "{}: {junk:?} in {}", f.name, s.text);
        }
    }
}

#[tokio::test]
async fn preview_shows_whole_sentence_summaries_of_60_to_130_words() {
    let db_url = db::sqlite_url();
    let (_settings, store) = seeded(&db_url).await;
    drop(store);
    let env = TestEnv::new(&db_url, TOPIC);
    let out = env.run(&[
        "preview",
        "--topic",
        "infra",
        "--at",
        "2026-02-09T08:00:00Z",
        "--format",
        "text",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    for f in fixtures() {
        // The title line, the link, a blank line, then the wrapped summary up to a blank line.
        let start = text
            .find(&format!("{}\n{}\n\n", f.title, url(f.name)))
            .unwrap_or_else(|| panic!("{} is not in the digest:\n{text}", f.title));
        let after = &text[start..];
        let body = after.split("\n\n").nth(1).unwrap();
        let summary = body.split_whitespace().collect::<Vec<_>>().join(" ");
        let n = words(&summary);
        assert!((60..=130).contains(&n), "{}: {n} words: {summary}", f.name);
        assert_whole_sentences(&f, &summary);
    }
}

/// A chat-completions endpoint; the model name picks the behaviour: "good" answers the
/// article's opening sentences (grounded by construction), "invent" adds a founding year and
/// founder the article never mentions, "short" answers five words, "hang" never answers,
/// "garbage" answers HTML, "no-choices" JSON without a choice, "huge" pads past the size cap.
struct Endpoint {
    base: String,
    state: Arc<Mutex<Seen>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct Seen {
    requests: usize,
    /// The answer given, by article title.
    answers: HashMap<String, String>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl Endpoint {
    fn requests(&self) -> usize {
        self.state.lock().unwrap().requests
    }
    fn answer(&self, title: &str) -> Option<String> {
        self.state.lock().unwrap().answers.get(title).cloned()
    }
}

/// The opening sentences of the article text in the prompt, 70 words or more.
fn opening(user: &str) -> String {
    let text = user.split_once("Article text:\n").unwrap().1;
    let mut out = Vec::new();
    let mut n = 0;
    for s in sentences(text) {
        if s.split_whitespace().count() < 6 || n + words(&s) > 125 {
            continue;
        }
        n += words(&s);
        out.push(s);
        if n >= 70 {
            break;
        }
    }
    out.join(" ")
}

async fn chat(State(state): State<Arc<Mutex<Seen>>>, Json(body): Json<Value>) -> String {
    let user = body["messages"][1]["content"].as_str().unwrap_or_default();
    let title = user
        .lines()
        .next()
        .unwrap_or_default()
        .trim_start_matches("Title: ")
        .to_string();
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let content = match model.as_str() {
        "invent" => format!(
            "{} The company was founded in 1987 by Walter Gropius.",
            opening(user)
        ),
        "short" => "A short answer, five words.".to_string(),
        _ => opening(user),
    };
    {
        let mut seen = state.lock().unwrap();
        seen.requests += 1;
        seen.answers.insert(title, content.clone());
    }
    let answer = json!({"choices": [{"message": {"role": "assistant", "content": content}}]});
    match model.as_str() {
        "hang" => std::future::pending().await,
        "garbage" => "<html><body>502 Bad Gateway</body></html>".to_string(),
        "no-choices" => json!({"choices": []}).to_string(),
        "huge" => {
            let mut padded = answer;
            padded["padding"] = Value::String("x".repeat(4 * MAX_RESPONSE_BYTES));
            padded.to_string()
        }
        _ => answer.to_string(),
    }
}

async fn endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let state = Arc::new(Mutex::new(Seen::default()));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(state.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Endpoint { base, state, task }
}

fn with_model(settings: &Settings, server: &Endpoint, model: &str) -> Settings {
    let mut s = settings.clone();
    s.summarizer.kind = SummarizerKind::Openai;
    s.summarizer.base_url = server.base.clone();
    s.summarizer.model = model.into();
    s.summarizer.api_key = Secret::new("sk-test");
    s.summarizer.timeout_secs = 1;
    s
}

async fn explain(settings: &Settings, store: &Store, name: &str) -> String {
    let topic = settings.topic("infra").unwrap();
    pipeline::explain(settings, store, topic, &url(name), at())
        .await
        .unwrap()
        .to_string()
}

per_backend!(grounded_model_summaries_are_used_cached_and_shown_by_explain);
async fn grounded_model_summaries_are_used_cached_and_shown_by_explain(backend: Backend) {
    let Some((label, db_url)) = backend.url().await else {
        return;
    };
    eprintln!("backend: {label}");
    let (settings, store) = seeded(&db_url).await;
    let server = endpoint().await;
    let good = with_model(&settings, &server, "good");
    let d1 = preview(&good, &store).await;
    assert_eq!(d1.entries.len(), 4, "{d1:#?}");
    for e in &d1.entries {
        let answer = server.answer(&e.title).unwrap();
        assert_eq!(e.summary, answer);
    }
    assert_eq!(server.requests(), 4);
    let ex = explain(&good, &store, "queue").await;
    assert!(ex.contains("summary:   (openai:good, "), "{ex}");

    // Cached by URL, text, model and prompt version: a second run asks nothing.
    let d2 = preview(&good, &store).await;
    assert_eq!(d2.entries, d1.entries);
    assert_eq!(server.requests(), 4, "a cached summary was asked for again");

    // A changed text or another model asks again, for that article or model only.
    let f = fixture("telnet");
    let changed = format!("{}\n\nAn update: the drop has now lasted a month.", f.body);
    seed(&store, &f, &changed, 99).await;
    preview(&good, &store).await;
    assert_eq!(server.requests(), 5, "the changed article is asked again");
    preview(&with_model(&settings, &server, "good-2"), &store).await;
    assert_eq!(
        server.requests(),
        9,
        "another model is asked for every article"
    );
}

/// The digest with the extractive summarizer, to compare fallbacks with.
async fn extractive(settings: &Settings, store: &Store) -> Vec<String> {
    preview(settings, store)
        .await
        .entries
        .into_iter()
        .map(|e| e.summary)
        .collect()
}

fn summaries(d: &Digest) -> Vec<String> {
    d.entries.iter().map(|e| e.summary.clone()).collect()
}

#[tokio::test]
async fn invented_numbers_and_names_fall_back_to_extractive_and_are_not_asked_again() {
    let (settings, store) = seeded(&db::sqlite_url()).await;
    let expected = extractive(&settings, &store).await;
    let server = endpoint().await;
    let invent = with_model(&settings, &server, "invent");
    let d = preview(&invent, &store).await;
    assert_eq!(summaries(&d), expected);
    assert!(!summaries(&d).iter().any(|s| s.contains("1987")));
    assert_eq!(server.requests(), 4);
    let ex = explain(&invent, &store, "queue").await;
    assert!(ex.contains("summary:   (description+extractive, "), "{ex}");
    // The rejection is cached too: re-running the period costs nothing.
    preview(&invent, &store).await;
    assert_eq!(server.requests(), 4);
}

#[tokio::test]
async fn answers_of_the_wrong_size_or_shape_fall_back_to_extractive() {
    let (settings, store) = seeded(&db::sqlite_url()).await;
    let expected = extractive(&settings, &store).await;
    let server = endpoint().await;
    for model in ["short", "garbage", "no-choices", "huge"] {
        let before = server.requests();
        let d = preview(&with_model(&settings, &server, model), &store).await;
        assert_eq!(summaries(&d), expected, "{model}");
        assert_eq!(server.requests() - before, 4, "{model}");
    }
}

#[tokio::test]
async fn an_endpoint_that_hangs_times_out_to_extractive_within_the_concurrency() {
    let (settings, store) = seeded(&db::sqlite_url()).await;
    let expected = extractive(&settings, &store).await;
    let server = endpoint().await;
    let mut hang = with_model(&settings, &server, "hang");
    hang.summarizer.concurrency = 2;
    let d = preview(&hang, &store).await;
    assert_eq!(summaries(&d), expected);
    let n = server.requests();
    assert!(
        (1..=2).contains(&n),
        "{n} requests waited on a hanging endpoint"
    );
}

#[tokio::test]
async fn max_requests_per_run_bounds_the_requests_and_the_rest_come_next_run() {
    let (settings, store) = seeded(&db::sqlite_url()).await;
    let server = endpoint().await;
    let mut good = with_model(&settings, &server, "good");
    good.summarizer.max_requests_per_run = 2;
    let d = preview(&good, &store).await;
    assert_eq!(server.requests(), 2);
    let by_model = d
        .entries
        .iter()
        .filter(|e| server.answer(&e.title).as_ref() == Some(&e.summary))
        .count();
    assert_eq!(by_model, 2, "{d:#?}");
    // The next run asks for the two that were not cached.
    let d = preview(&good, &store).await;
    assert_eq!(server.requests(), 4);
    assert!(
        d.entries
            .iter()
            .all(|e| server.answer(&e.title).as_ref() == Some(&e.summary))
    );
}

#[tokio::test]
async fn an_article_too_short_to_ground_a_summary_is_not_sent() {
    let (settings, store) = seeded(&db::sqlite_url()).await;
    let tiny = Fixture {
        name: "tiny",
        title: "A tiny note".into(),
        description: None,
        body: "I wrote a tiny key-value store in a weekend. It keeps everything in one file."
            .into(),
    };
    seed(&store, &tiny, &tiny.body, 500).await;
    let server = endpoint().await;
    let d = preview(&with_model(&settings, &server, "good"), &store).await;
    assert_eq!(d.entries.len(), 5);
    assert_eq!(server.requests(), 4);
    assert!(server.answer("A tiny note").is_none());
    let e = d.entries.iter().find(|e| e.title == "A tiny note").unwrap();
    assert_eq!(e.summary, tiny.body);
}
