//! The abstractive summarizer against a misbehaving OpenAI-compatible endpoint on loopback: an
//! answer far larger than any summary, and an endpoint that never answers. Either way the digest
//! falls back to extractive summaries without reading the whole answer or waiting for every
//! article in turn.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::State;
use axum::routing::post;
use chrono::Utc;
use serde_json::{Value, json};
use tidings::config::{Secret, Settings, SummarizerKind};
use tidings::domain::Article;
use tidings::pipeline::abstractive::{MAX_RESPONSE_BYTES, SUMMARY_CONCURRENCY, summaries};

use crate::support::db;

/// A chat-completions endpoint whose behaviour the model name picks: "ok" answers a summary,
/// "huge" the same summary padded past the size cap, "hang" never answers.
struct Endpoint {
    base: String,
    calls: Arc<AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for Endpoint {
    fn drop(&mut self) {
        self.task.abort();
    }
}

const SUMMARY: &str =
    "A model summary of the article in a dozen plain words for the digest readers.";

async fn chat(State(calls): State<Arc<AtomicUsize>>, Json(body): Json<Value>) -> String {
    calls.fetch_add(1, Ordering::SeqCst);
    let answer = json!({"choices": [{"message": {"content": SUMMARY}}]});
    match body["model"].as_str() {
        Some("huge") => {
            let mut padded = answer;
            padded["padding"] = Value::String("x".repeat(4 * MAX_RESPONSE_BYTES));
            padded.to_string()
        }
        Some("hang") => std::future::pending().await,
        _ => answer.to_string(),
    }
}

async fn endpoint() -> Endpoint {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/v1", listener.local_addr().unwrap());
    let calls = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route("/v1/chat/completions", post(chat))
        .with_state(calls.clone());
    let task = tokio::spawn(async move {
        axum::serve(listener, app).await.unwrap();
    });
    Endpoint { base, calls, task }
}

fn settings(base: &str, model: &str) -> Settings {
    let mut s = Settings::default();
    s.summarizer.kind = SummarizerKind::Openai;
    s.summarizer.base_url = base.into();
    s.summarizer.model = model.into();
    s.summarizer.api_key = Secret::new("sk-test");
    s.summarizer.timeout_secs = 1;
    s
}

fn articles(n: i64) -> Vec<Article> {
    (1..=n)
        .map(|id| Article {
            id,
            canonical_url: format!("https://example.com/{id}"),
            url: format!("https://example.com/{id}"),
            title: format!("Article {id}"),
            domain: "example.com".into(),
            published_at: Utc::now(),
            sources: Vec::new(),
            page: None,
        })
        .collect()
}

#[tokio::test]
async fn an_answer_over_the_size_cap_falls_back_to_the_extractive_summary() {
    let server = endpoint().await;
    let store = db::sqlite().await;
    let list = articles(2);
    let refs: Vec<&Article> = list.iter().collect();
    let normal = summaries(&settings(&server.base, "ok"), &store, &refs, Utc::now()).await;
    assert_eq!(normal.len(), 2, "the endpoint works: {normal:?}");
    let huge = summaries(&settings(&server.base, "huge"), &store, &refs, Utc::now()).await;
    assert!(huge.is_empty(), "an oversized answer was used: {huge:?}");
}

#[tokio::test]
async fn an_endpoint_that_does_not_answer_is_given_up_for_the_run() {
    let server = endpoint().await;
    let store = db::sqlite().await;
    let list = articles(12);
    let refs: Vec<&Article> = list.iter().collect();
    let out = summaries(&settings(&server.base, "hang"), &store, &refs, Utc::now()).await;
    assert!(out.is_empty(), "{out:?}");
    let calls = server.calls.load(Ordering::SeqCst);
    assert!(
        (1..=SUMMARY_CONCURRENCY).contains(&calls),
        "{calls} requests waited on an endpoint that does not answer (at most {SUMMARY_CONCURRENCY} expected)"
    );
}
