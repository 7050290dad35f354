//! Optional abstractive summaries from an OpenAI-compatible chat-completions endpoint
//! (`[summarizer] kind = "openai"`), cached per article and model in the store. Any error falls
//! back to the extractive summary (the caller uses it for articles missing from the map).

use std::collections::HashMap;
use std::time::Duration;

use chrono::{DateTime, Utc};
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
    let client = match reqwest::Client::builder()
        .timeout(Duration::from_secs(cfg.timeout_secs.max(1)))
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
    for a in articles {
        match store.cached_summary(a.id, &cfg.model).await {
            Ok(Some(s)) => {
                out.insert(a.id, s);
                continue;
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "summary cache unavailable"),
        }
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
        let mut req = client.post(&endpoint).json(&body);
        if !cfg.api_key.is_empty() {
            req = req.bearer_auth(cfg.api_key.expose());
        }
        let result: anyhow::Result<String> = async {
            let resp = req.send().await?.error_for_status()?;
            let parsed: ChatResponse = resp.json().await?;
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
        .await;
        match result {
            Ok(text) => {
                if let Err(e) = store.save_summary(a.id, &cfg.model, &text, now).await {
                    tracing::warn!(error = %e, "could not cache a summary");
                }
                out.insert(a.id, text);
            }
            Err(e) => {
                tracing::warn!(article = a.id, error = %format!("{e:#}"), "abstractive summary failed; using the extractive one");
            }
        }
    }
    out
}
