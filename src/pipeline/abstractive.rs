//! Optional abstractive summaries from an OpenAI-compatible chat-completions endpoint
//! (`[summarizer] kind = "openai"`), cached per article and model in the store. Any error falls
//! back to the extractive summary (the caller uses it for articles missing from the map).
//!
//! The endpoint is an outside service, so every call is bounded: at most
//! [`SUMMARY_CONCURRENCY`] requests at a time, each under `summarizer.timeout_secs` (connect
//! included), an answer of at most [`MAX_RESPONSE_BYTES`], and once the endpoint has failed to
//! answer (a timeout or a refused connection) no further article waits for it in this pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;

use super::summarize;
use crate::config::{Settings, SummarizerKind};
use crate::domain::Article;
use crate::store::Store;

#[derive(Deserialize)]
struct ChatResponse {
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Message,
}

#[derive(Deserialize)]
struct Message {
    content: Option<String>,
}

/// Requests to the summarizer in flight at a time.
pub const SUMMARY_CONCURRENCY: usize = 4;

/// The largest answer read from the summarizer; a chat completion of one paragraph is a few
/// kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Abstractive summaries for the given articles, by article id; empty with the extractive
/// summarizer. Articles whose summary failed are absent (the caller falls back).
pub async fn summaries(
    settings: &Settings,
    store: &Store,
    articles: &[&Article],
    now: DateTime<Utc>,
) -> HashMap<i64, String> {
    let mut out = HashMap::new();
    let cfg = &settings.summarizer;
    if cfg.kind != SummarizerKind::Openai {
        return out;
    }
    let timeout = Duration::from_secs(cfg.timeout_secs.max(1));
    let client = match reqwest::Client::builder()
        .timeout(timeout)
        .connect_timeout(timeout)
        .user_agent(settings.fetch.user_agent.clone())
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "summarizer client could not be built; using extractive summaries");
            return out;
        }
    };
    let endpoint = format!("{}/chat/completions", cfg.base_url.trim_end_matches('/'));
    let call = Call {
        settings,
        store,
        client: &client,
        endpoint: &endpoint,
        now,
        unreachable: AtomicBool::new(false),
    };
    // A loop rather than `buffer_unordered` over a closure, whose borrow the compiler cannot
    // prove `Send` for the spawned scheduler task.
    let mut waiting = articles.iter().copied();
    let mut running = futures::stream::FuturesUnordered::new();
    loop {
        while running.len() < SUMMARY_CONCURRENCY {
            match waiting.next() {
                Some(a) => running.push(call.summary(a)),
                None => break,
            }
        }
        match running.next().await {
            Some(Some((id, text))) => {
                out.insert(id, text);
            }
            Some(None) => {}
            None => break,
        }
    }
    out
}

/// One summarizer pass: what every request needs, and whether the endpoint stopped answering.
struct Call<'a> {
    settings: &'a Settings,
    store: &'a Store,
    client: &'a reqwest::Client,
    endpoint: &'a str,
    now: DateTime<Utc>,
    unreachable: AtomicBool,
}

impl Call<'_> {
    /// The article's summary from the cache or the endpoint; None falls back to extractive.
    async fn summary(&self, a: &Article) -> Option<(i64, String)> {
        let cfg = &self.settings.summarizer;
        match self.store.cached_summary(a.id, &cfg.model).await {
            Ok(Some(s)) => return Some((a.id, s)),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "summary cache unavailable"),
        }
        if self.unreachable.load(Ordering::Relaxed) {
            return None;
        }
        match self.request(a).await {
            Ok(text) => {
                if let Err(e) = self
                    .store
                    .save_summary(a.id, &cfg.model, &text, self.now)
                    .await
                {
                    tracing::warn!(error = %e, "could not cache a summary");
                }
                Some((a.id, text))
            }
            Err(e) => {
                let gone = e
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(|r| r.is_timeout() || r.is_connect());
                if gone && !self.unreachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %format!("{e:#}"), "the summarizer does not answer; using extractive summaries for this run");
                } else if !gone {
                    tracing::warn!(article = a.id, error = %format!("{e:#}"), "abstractive summary failed; using the extractive one");
                }
                None
            }
        }
    }

    async fn request(&self, a: &Article) -> anyhow::Result<String> {
        let cfg = &self.settings.summarizer;
        let source_text = summarize::extractive_summary(a);
        let page_text = a
            .page
            .as_ref()
            .and_then(|p| p.text.as_deref())
            .unwrap_or_default();
        let excerpt: String = page_text.chars().take(6000).collect();
        let body = json!({
            "model": cfg.model,
            "messages": [
                {"role": "system", "content": "Summarise the article in one factual paragraph of 40 to 90 words. Plain text only."},
                {"role": "user", "content": format!("Title: {}\nURL: {}\nSummary so far: {}\nText: {}", a.title, a.url, source_text, excerpt)}
            ],
            "temperature": 0.2
        });
        let mut req = self.client.post(self.endpoint).json(&body);
        if !cfg.api_key.is_empty() {
            req = req.bearer_auth(cfg.api_key.expose());
        }
        let mut resp = req.send().await?.error_for_status()?;
        if resp
            .content_length()
            .is_some_and(|n| n > MAX_RESPONSE_BYTES as u64)
        {
            anyhow::bail!("the answer is larger than {MAX_RESPONSE_BYTES} bytes");
        }
        let mut raw = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if raw.len() + chunk.len() > MAX_RESPONSE_BYTES {
                anyhow::bail!("the answer is larger than {MAX_RESPONSE_BYTES} bytes");
            }
            raw.extend_from_slice(&chunk);
        }
        let parsed: ChatResponse = serde_json::from_slice(&raw)?;
        let text = parsed
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message.content)
            .map(|t| crate::sources::clean_text(&t, 1200))
            .unwrap_or_default();
        let words = text.split_whitespace().count();
        anyhow::ensure!(
            (10..=150).contains(&words),
            "the model answered {words} words"
        );
        Ok(text)
    }
}
