//! The article pipeline: fetch sources, ingest (canonical URL, dedupe, merge), then per topic
//! merge stories, classify, rank, summarise and compile one digest per period. The scoring
//! modules ([`canonical`], [`story`], [`matcher`], [`classify`], [`rank`], [`select`],
//! [`summarize`]) are pure;
//! this module wires fetching and ingest to the store and the sources, [`compile`] compiles and
//! previews digests from the store, and [`explain`](mod@explain) says why an article is in or out.

pub mod abstractive;
pub mod canonical;
pub mod classify;
pub mod compile;
pub mod explain;
pub mod matcher;
pub mod rank;
pub mod select;
pub mod story;
pub mod summarize;

pub use compile::{
    CompiledIssue, NothingOnTopic, TopicCompiled, compile_issue, compile_period, compile_topics,
    preview_digest,
};
pub use explain::{Explanation, explain};

use std::fmt;

use anyhow::Context as _;
use chrono::{DateTime, Duration, Utc};
use futures::StreamExt;

use crate::config::{Settings, SourceKind, SourceSettings, TopicSettings};
use crate::domain::{ArticleSource, FetchedItem};
use crate::sources::http::HttpClient;
use crate::sources::{FetchWindow, SourceBatch, feed, hacker_news, lobsters, page};
use crate::store::{ArticleUpsert, DroppedItem, Store};
use canonical::canonical_link;
use select::Window;

/// How many article pages one fetch run retrieves at most.
pub const MAX_PAGES_PER_RUN: i64 = 500;
/// Pages fetched at the same time (each host is further limited by `per_host_concurrency`).
const PAGE_CONCURRENCY: usize = 8;

/// The half-open period `[end - window_days, end)` of a topic's digest, where `end` is the latest
/// scheduled send time at or before `at` (the topic's cron, else `[schedule] cron`, in
/// `[schedule] timezone`).
pub fn period(
    settings: &Settings,
    topic: &TopicSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<Window> {
    let schedule = topic.schedule_or(&settings.schedule).ok_or_else(|| {
        anyhow::anyhow!(
            "topic {:?} has no schedule: set schedule.cron or the topic's cron",
            topic.slug.as_str()
        )
    })?;
    let end = schedule.latest_at_or_before(at).ok_or_else(|| {
        anyhow::anyhow!(
            "no scheduled time of {:?} at or before {at}",
            schedule.expression()
        )
    })?;
    Ok(Window {
        start: end - Duration::days(i64::from(topic.window_days)),
        end,
    })
}

/// One source's part of a fetch run.
#[derive(Clone, Debug, Default)]
pub struct SourceReport {
    pub name: String,
    pub kind: String,
    /// Items the source returned.
    pub fetched: usize,
    /// Items stored (new or updated).
    pub stored: usize,
    pub skipped: usize,
    pub not_modified: bool,
    /// Set when the source failed as a whole.
    pub error: Option<String>,
}

/// What `tidings fetch` did.
#[derive(Clone, Debug, Default)]
pub struct FetchReport {
    pub window_start: Option<DateTime<Utc>>,
    pub window_end: Option<DateTime<Utc>>,
    pub sources: Vec<SourceReport>,
    pub pages_fetched: usize,
    pub page_errors: usize,
    pub warnings: Vec<String>,
}

impl FetchReport {
    pub fn source(&self, name: &str) -> Option<&SourceReport> {
        self.sources.iter().find(|s| s.name == name)
    }

    /// True when sources were fetched and every one of them failed.
    pub fn all_failed(&self) -> bool {
        !self.sources.is_empty() && self.sources.iter().all(|s| s.error.is_some())
    }

    /// "every source failed (2 of 2)", for the error that makes `fetch` and `run` exit 1 (the
    /// report above it names each source and its error once).
    pub fn all_failed_message(&self) -> String {
        format!(
            "every source failed ({n} of {n}); nothing new was fetched",
            n = self.sources.len()
        )
    }

    /// One line for `tidings status`: "3 sources ok, 1 failed, 12 items stored".
    pub fn summary(&self) -> String {
        let failed = self.sources.iter().filter(|s| s.error.is_some()).count();
        let stored: usize = self.sources.iter().map(|s| s.stored).sum();
        format!(
            "{} sources ok, {failed} failed, {stored} items stored",
            self.sources.len() - failed
        )
    }
}

impl fmt::Display for FetchReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let (Some(s), Some(e)) = (self.window_start, self.window_end) {
            writeln!(f, "window {} .. {}", s.to_rfc3339(), e.to_rfc3339())?;
        }
        for s in &self.sources {
            match &s.error {
                Some(err) => writeln!(f, "{:<24} {:<10} FAILED: {err}", s.name, s.kind)?,
                None if s.not_modified => {
                    writeln!(f, "{:<24} {:<10} not modified", s.name, s.kind)?
                }
                None => writeln!(
                    f,
                    "{:<24} {:<10} {} fetched, {} stored, {} skipped",
                    s.name, s.kind, s.fetched, s.stored, s.skipped
                )?,
            }
        }
        writeln!(
            f,
            "pages: {} fetched, {} failed",
            self.pages_fetched, self.page_errors
        )?;
        if !self.warnings.is_empty() {
            writeln!(f, "warnings:")?;
            for w in &self.warnings {
                writeln!(f, "  {w}")?;
            }
        }
        Ok(())
    }
}

/// The window a fetch at `at` covers: from the earliest period start of any topic to `at`.
pub fn fetch_window(settings: &Settings, at: DateTime<Utc>) -> FetchWindow {
    let start = settings
        .topics
        .iter()
        .filter_map(|t| period(settings, t, at).ok().map(|w| w.start))
        .min()
        .unwrap_or(at - Duration::days(7));
    FetchWindow {
        start,
        end: at + Duration::seconds(1),
    }
}

/// Fetches every configured source (or only `only_source`), ingests what they return and
/// fetches the pages of new articles. A broken source is reported and logged, never fatal.
pub async fn fetch_all(
    settings: &Settings,
    store: &Store,
    at: DateTime<Utc>,
    only_source: Option<&str>,
) -> anyhow::Result<FetchReport> {
    let http = HttpClient::new(&settings.fetch)?;
    fetch_all_with(settings, store, &http, at, only_source).await
}

/// [`fetch_all`] with a given client (tests inject a resolver through it).
pub async fn fetch_all_with(
    settings: &Settings,
    store: &Store,
    http: &HttpClient,
    at: DateTime<Utc>,
    only_source: Option<&str>,
) -> anyhow::Result<FetchReport> {
    let sources: Vec<&SourceSettings> = match only_source {
        Some(name) => vec![
            settings
                .sources
                .iter()
                .find(|s| s.name == name)
                .ok_or_else(|| {
                    anyhow::anyhow!(
                        "unknown source {name:?} (configured: {})",
                        settings
                            .sources
                            .iter()
                            .map(|s| s.name.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )
                })?,
        ],
        None => settings.sources.iter().collect(),
    };
    let window = fetch_window(settings, at);
    let mut report = FetchReport {
        window_start: Some(window.start),
        window_end: Some(at),
        ..FetchReport::default()
    };
    let max_entries = settings.fetch.max_entries;
    let results = futures::future::join_all(
        sources
            .iter()
            .map(|s| fetch_source(http, store, s, window, max_entries)),
    )
    .await;
    for (source, result) in sources.iter().zip(results) {
        let mut sr = SourceReport {
            name: source.name.clone(),
            kind: source.kind.as_str().into(),
            ..SourceReport::default()
        };
        match result {
            Ok(batch) => {
                sr.fetched = batch.items.len();
                sr.not_modified = batch.not_modified;
                sr.skipped = batch.warnings.len();
                report.warnings.extend(batch.warnings);
                for d in &batch.dropped {
                    if let Some(link) = canonical_link(&d.url) {
                        store
                            .record_dropped(&DroppedItem {
                                canonical_url: link.canonical,
                                source_name: source.name.clone(),
                                title: d.title.clone(),
                                reason: d.reason.clone(),
                                seen_at: at,
                            })
                            .await
                            .with_context(|| format!("noting what {} dropped", source.name))?;
                    }
                }
                for item in &batch.items {
                    match ingest(store, item, at).await {
                        Ok(Some(_)) => sr.stored += 1,
                        Ok(None) => {
                            sr.skipped += 1;
                            report.warnings.push(format!(
                                "{}: {:?} has no http(s) link, skipped",
                                source.name, item.title
                            ));
                        }
                        Err(e) => {
                            return Err(e.context(format!("storing items of {}", source.name)));
                        }
                    }
                }
            }
            Err(e) => {
                // Said once, in the report (the callers print or log it).
                let msg = format!("{e:#}");
                tracing::debug!(source = %source.name, error = %msg, "source failed; continuing with the others");
                sr.error = Some(msg);
            }
        }
        report.sources.push(sr);
    }
    if settings.fetch.fetch_pages {
        let (ok, failed) = fetch_pages(store, http, window, at).await?;
        report.pages_fetched = ok;
        report.page_errors = failed;
    }
    Ok(report)
}

async fn fetch_source(
    http: &HttpClient,
    store: &Store,
    source: &SourceSettings,
    window: FetchWindow,
    max_entries: usize,
) -> anyhow::Result<SourceBatch> {
    match source.kind {
        SourceKind::Hackernews => hacker_news::fetch(http, source, window, max_entries).await,
        SourceKind::Lobsters => lobsters::fetch(http, source, max_entries).await,
        SourceKind::Feed => {
            let state = store.feed_state(&source.name).await?;
            let (batch, new_state) = feed::fetch(http, source, &state, max_entries).await?;
            if new_state != state {
                store
                    .save_feed_state(&source.name, &new_state, Utc::now())
                    .await?;
            }
            Ok(batch)
        }
    }
}

/// Stores one item: the article under its canonical URL (the discussion page when the story has
/// no link) and this source's view of it. `None` when it has no usable link.
pub async fn ingest(
    store: &Store,
    item: &FetchedItem,
    now: DateTime<Utc>,
) -> anyhow::Result<Option<i64>> {
    let link = item
        .url
        .as_deref()
        .and_then(canonical_link)
        .or_else(|| item.discussion_url.as_deref().and_then(canonical_link));
    let Some(link) = link else {
        return Ok(None);
    };
    let source = ArticleSource {
        source_name: item.source_name.clone(),
        source_kind: item.source_kind.clone(),
        external_id: item.external_id.clone(),
        points: item.points,
        comments: item.comments,
        discussion_url: item.discussion_url.clone(),
        text: item.text.clone(),
        tags: item.tags.clone(),
        // Whole seconds: periods are compared at second precision on both backends.
        published_at: DateTime::from_timestamp(item.published_at.timestamp(), 0)
            .unwrap_or(item.published_at),
    };
    let id = store
        .upsert_article(
            &ArticleUpsert {
                canonical_url: &link.canonical,
                url: &link.url,
                domain: &link.domain,
                title: &item.title,
                source: &source,
            },
            now,
        )
        .await?;
    Ok(Some(id))
}

async fn fetch_pages(
    store: &Store,
    http: &HttpClient,
    window: FetchWindow,
    now: DateTime<Utc>,
) -> anyhow::Result<(usize, usize)> {
    let todo = store
        .articles_without_page(window.start, window.end, MAX_PAGES_PER_RUN)
        .await?;
    let (discussions, todo): (Vec<_>, Vec<_>) = todo
        .into_iter()
        .partition(|(_, url)| is_discussion_page(url));
    for (id, _) in discussions {
        // A story without a link: its discussion page carries no article text to extract.
        store
            .save_page(
                id,
                &Default::default(),
                Some("discussion page, not fetched"),
                now,
            )
            .await?;
    }
    let results: Vec<(i64, Result<crate::domain::PageInfo, String>)> = futures::stream::iter(todo)
        .map(|(id, url)| async move {
            let r = match http
                .get(
                    &url,
                    &[("accept", "text/html,application/xhtml+xml".to_string())],
                )
                .await
            {
                Ok(body) => {
                    let ct = body
                        .header("content-type")
                        .unwrap_or_default()
                        .to_ascii_lowercase();
                    if ct.is_empty() || ct.contains("html") {
                        // Extraction is CPU work (tens of ms a page): off the async workers.
                        tokio::task::spawn_blocking(move || {
                            page::extract_document(&body.body, Some(&ct), Some(&body.final_url))
                        })
                        .await
                        .map_err(|e| format!("{url}: page extraction failed: {e}"))
                    } else {
                        Err(format!("{url}: not an HTML page ({ct})"))
                    }
                }
                Err(e) => Err(e.to_string()),
            };
            (id, r)
        })
        .buffer_unordered(PAGE_CONCURRENCY)
        .collect()
        .await;
    let (mut ok, mut failed) = (0, 0);
    for (id, r) in results {
        match r {
            Ok(p) => {
                store.save_page(id, &p, None, now).await?;
                ok += 1;
            }
            Err(e) => {
                tracing::debug!(article = id, error = %e, "page not fetched");
                store
                    .save_page(id, &Default::default(), Some(&e), now)
                    .await?;
                failed += 1;
            }
        }
    }
    Ok((ok, failed))
}

fn is_discussion_page(url: &str) -> bool {
    canonical_link(url)
        .is_some_and(|l| matches!(l.domain.as_str(), "news.ycombinator.com" | "lobste.rs"))
}
