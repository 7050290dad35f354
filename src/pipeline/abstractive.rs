//! Optional model summaries from an OpenAI-compatible chat-completions endpoint
//! (`[summarizer] kind = "openai"`: OpenAI, a local Ollama or llama.cpp server...). The prompt
//! asks for the example digest's style: 80-130 words, concrete, whole sentences. An answer is
//! kept only when it is grounded ([`summarize::grounding`]: no number or name the article does
//! not contain), within `min_words..=max_words`, and not a copy of the title; anything else,
//! and every failure, falls back to the extractive summary (the caller uses it for articles
//! missing from the map).
//!
//! Answers are cached in the store by URL, a hash of the text sent, model and
//! [`PROMPT_VERSION`], rejected answers too (as an empty summary), so re-running a period costs
//! no request. The endpoint is an outside service, so every call is bounded: at most
//! `summarizer.concurrency` requests at a time and `summarizer.max_requests_per_run` in one
//! pass, each under `summarizer.timeout_secs` (connect included), an answer of at most
//! [`MAX_RESPONSE_BYTES`], and once the endpoint has failed to answer (a timeout or a refused
//! connection) no further article waits for it in this pass.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use futures::StreamExt as _;
use serde::Deserialize;
use serde_json::json;
use sha2::{Digest as _, Sha256};

use super::summarize::{self, Limits, Source, Summary, grounding};
use crate::config::{Settings, SummarizerKind};
use crate::domain::Article;
use crate::store::{Store, SummaryKey};

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

/// The default of `summarizer.concurrency`: requests in flight at a time.
pub const SUMMARY_CONCURRENCY: usize = 4;

/// The largest answer read from the summarizer; a chat completion of one paragraph is a few
/// kilobytes.
pub const MAX_RESPONSE_BYTES: usize = 256 * 1024;

/// Part of the cache key: raise it when the prompt changes, so cached answers are asked again.
pub const PROMPT_VERSION: i32 = 2;

/// An article with less text than this is summarised extractively without asking the model:
/// there is too little to ground a model's paragraph in.
pub const MIN_ARTICLE_WORDS: usize = 100;

/// The most article text sent, in characters (cut at a sentence end when one is near).
pub const MAX_PROMPT_CHARS: usize = 24_000;

/// The style of the example digest, described rather than quoted.
const SYSTEM_PROMPT: &str = "You write the summary paragraph for one article in an email digest read by software engineers. \
Write one paragraph of {MIN} to {MAX} words, in plain text: no title, no heading, no list, no markdown, no quotation marks around the paragraph, no preamble such as \"Summary:\". \
Write in the third person and the present tense, in complete sentences. \
Open with who did what or what the article argues, then give the concrete details: the names of people, companies, projects and tools, the numbers, what happened, how it works, and why it matters. \
End with the consequence or the takeaway. \
Use only facts stated in the article: never add a number, name, date or claim that is not in the text. \
Do not repeat the article's title.";

/// The model summaries of the given articles, by article id; empty with the extractive
/// summarizer. Articles whose summary failed or was rejected are absent (the caller falls back).
pub async fn summaries(
    settings: &Settings,
    store: &Store,
    articles: &[&Article],
    now: DateTime<Utc>,
) -> HashMap<i64, Summary> {
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
        requests: AtomicUsize::new(0),
    };
    // A loop rather than `buffer_unordered` over a closure, whose borrow the compiler cannot
    // prove `Send` for the spawned scheduler task.
    let mut waiting = articles.iter().copied();
    let mut running = futures::stream::FuturesUnordered::new();
    let concurrency = cfg.concurrency.max(1);
    loop {
        while running.len() < concurrency {
            match waiting.next() {
                Some(a) => running.push(call.summary(a)),
                None => break,
            }
        }
        match running.next().await {
            Some(Some((id, s))) => {
                out.insert(id, s);
            }
            Some(None) => {}
            None => break,
        }
    }
    let asked = call.requests.load(Ordering::Relaxed);
    if asked > cfg.max_requests_per_run {
        tracing::warn!(
            limit = cfg.max_requests_per_run,
            skipped = asked - cfg.max_requests_per_run,
            "summarizer.max_requests_per_run reached; the rest of this run uses extractive summaries"
        );
    }
    out
}

/// The summary `compile` would use for `article` now, without asking the model: the cached
/// model summary when there is one, else the extractive one (for `tidings explain`).
pub async fn current_summary(settings: &Settings, store: &Store, article: &Article) -> Summary {
    let cfg = &settings.summarizer;
    if cfg.kind == SummarizerKind::Openai
        && let Some(prompt) = Prompt::of(article)
    {
        let key = prompt.key(article, &cfg.model);
        match store.cached_summary(&key).await {
            Ok(Some(s)) if !s.is_empty() => {
                return Summary {
                    text: s,
                    source: Source::Model(cfg.model.clone()),
                };
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "summary cache unavailable"),
        }
    }
    summarize::summarize(article, Limits::from(cfg))
}

/// What the model is given for one article, and the hash the cache keys it by.
struct Prompt {
    description: String,
    text: String,
    hash: String,
}

impl Prompt {
    /// None when the article has too little text to ground a model summary in.
    fn of(a: &Article) -> Option<Prompt> {
        let full = summarize::article_text(a);
        if full.split_whitespace().count() < MIN_ARTICLE_WORDS {
            return None;
        }
        let text = cut(&full, MAX_PROMPT_CHARS).to_string();
        let description = a
            .page
            .as_ref()
            .and_then(|p| p.description.clone())
            .unwrap_or_default();
        let mut h = Sha256::new();
        for part in [a.title.as_str(), &description, &text] {
            h.update(part.as_bytes());
            h.update([0]);
        }
        Some(Prompt {
            description,
            text,
            hash: hex::encode(h.finalize()),
        })
    }

    fn key<'a>(&'a self, a: &'a Article, model: &'a str) -> SummaryKey<'a> {
        SummaryKey {
            url: &a.canonical_url,
            content_hash: &self.hash,
            model,
            prompt_version: PROMPT_VERSION,
        }
    }

    /// Everything the answer may draw on, for the grounding check.
    fn material(&self, a: &Article) -> String {
        format!("{}\n{}\n{}", a.title, self.description, self.text)
    }
}

/// At most `max` characters of `s`, ending at a sentence end in the last tenth when there is one.
fn cut(s: &str, max: usize) -> &str {
    let Some((end, _)) = s.char_indices().nth(max) else {
        return s;
    };
    let head = &s[..end];
    match head.rfind(". ") {
        Some(i) if i > end * 9 / 10 => &head[..=i],
        _ => head,
    }
}

/// One summarizer pass: what every request needs, whether the endpoint stopped answering, and
/// how many requests were made.
struct Call<'a> {
    settings: &'a Settings,
    store: &'a Store,
    client: &'a reqwest::Client,
    endpoint: &'a str,
    now: DateTime<Utc>,
    unreachable: AtomicBool,
    requests: AtomicUsize,
}

impl Call<'_> {
    /// The article's summary from the cache or the endpoint; None falls back to extractive.
    async fn summary(&self, a: &Article) -> Option<(i64, Summary)> {
        let cfg = &self.settings.summarizer;
        let prompt = Prompt::of(a)?;
        let key = prompt.key(a, &cfg.model);
        let model = |text: String| Summary {
            text,
            source: Source::Model(cfg.model.clone()),
        };
        match self.store.cached_summary(&key).await {
            Ok(Some(s)) if s.is_empty() => return None,
            Ok(Some(s)) => return Some((a.id, model(s))),
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "summary cache unavailable"),
        }
        if self.unreachable.load(Ordering::Relaxed) {
            return None;
        }
        if self.requests.fetch_add(1, Ordering::Relaxed) >= cfg.max_requests_per_run {
            return None;
        }
        match self.request(a, &prompt).await {
            Ok(text) => {
                let verdict = self.check(a, &prompt, &text);
                let kept = match &verdict {
                    Ok(()) => text.as_str(),
                    Err(why) => {
                        tracing::warn!(article = a.id, reason = %why, "model summary rejected; using the extractive one");
                        ""
                    }
                };
                if let Err(e) = self.store.save_summary(&key, kept, self.now).await {
                    tracing::warn!(error = %e, "could not cache a summary");
                }
                verdict.ok().map(|()| (a.id, model(text)))
            }
            Err(e) => {
                let gone = e
                    .downcast_ref::<reqwest::Error>()
                    .is_some_and(|r| r.is_timeout() || r.is_connect());
                if gone && !self.unreachable.swap(true, Ordering::Relaxed) {
                    tracing::warn!(error = %format!("{e:#}"), "the summarizer does not answer; using extractive summaries for this run");
                } else if !gone {
                    tracing::warn!(article = a.id, error = %format!("{e:#}"), "model summary failed; using the extractive one");
                }
                None
            }
        }
    }

    /// Why a well-formed answer cannot be used: its length, a copy of the title, or numbers
    /// and names the article does not contain.
    fn check(&self, a: &Article, prompt: &Prompt, text: &str) -> Result<(), String> {
        let limits = Limits::from(&self.settings.summarizer);
        let words = text.split_whitespace().count();
        if !(limits.min_words..=limits.max_words).contains(&words) {
            return Err(format!(
                "{words} words, outside {}..={}",
                limits.min_words, limits.max_words
            ));
        }
        if !a.title.trim().is_empty() && text.to_lowercase().contains(&a.title.to_lowercase()) {
            return Err("it repeats the title".into());
        }
        let missing = grounding::ungrounded(text, &prompt.material(a));
        if !missing.is_empty() {
            return Err(format!("not in the article: {}", missing.join(", ")));
        }
        Ok(())
    }

    async fn request(&self, a: &Article, prompt: &Prompt) -> anyhow::Result<String> {
        let cfg = &self.settings.summarizer;
        let system = SYSTEM_PROMPT
            .replace(
                "{MIN}",
                &cfg.min_words.max(80).min(cfg.max_words).to_string(),
            )
            .replace("{MAX}", &cfg.max_words.to_string());
        let mut user = format!("Title: {}\nURL: {}\n", a.title, a.url);
        if !prompt.description.is_empty() {
            user.push_str(&format!("Description: {}\n", prompt.description));
        }
        user.push_str(&format!("Article text:\n{}", prompt.text));
        let body = json!({
            "model": cfg.model,
            "messages": [
                {"role": "system", "content": system},
                {"role": "user", "content": user}
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
            .map(|t| crate::sources::clean_text(&t, 4000))
            .unwrap_or_default();
        anyhow::ensure!(!text.is_empty(), "the answer has no text");
        Ok(text)
    }
}
