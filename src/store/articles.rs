//! Articles (one per canonical URL), each source's view of them, extracted pages, cached
//! summaries, feeds' conditional-GET state, and the entries fetch saw but did not store.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use super::{BeginWrite, Store, StoreError, StoreResult, with_pool};
use crate::domain::{Article, ArticleSource, FeedState, PageInfo};

/// An article to insert or update, with one source's view of it.
#[derive(Clone, Debug)]
pub struct ArticleUpsert<'a> {
    pub canonical_url: &'a str,
    pub url: &'a str,
    pub domain: &'a str,
    pub title: &'a str,
    pub source: &'a ArticleSource,
}

#[derive(sqlx::FromRow)]
struct ArticleRow {
    id: i64,
    canonical_url: String,
    url: String,
    title: String,
    domain: String,
    published_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct SourceRow {
    article_id: i64,
    source_name: String,
    source_kind: String,
    external_id: String,
    points: Option<i64>,
    comments: Option<i64>,
    discussion_url: Option<String>,
    text: Option<String>,
    tags: String,
    published_at: DateTime<Utc>,
}

#[derive(sqlx::FromRow)]
struct PageRow {
    article_id: i64,
    description: Option<String>,
    text: Option<String>,
}

impl SourceRow {
    fn into_source(self) -> StoreResult<ArticleSource> {
        let tags: Vec<String> = serde_json::from_str(&self.tags)
            .map_err(|e| StoreError::Corrupt(format!("article_sources.tags: {e}")))?;
        Ok(ArticleSource {
            source_name: self.source_name,
            source_kind: self.source_kind,
            external_id: self.external_id,
            points: self.points,
            comments: self.comments,
            discussion_url: self.discussion_url,
            text: self.text,
            tags,
            published_at: self.published_at,
        })
    }
}

const ARTICLE_COLS: &str = "a.id, a.canonical_url, a.url, a.title, a.domain, a.published_at";
const SOURCE_COLS: &str = "s.article_id, s.source_name, s.source_kind, s.external_id, s.points, s.comments, s.discussion_url, s.text, s.tags, s.published_at";

fn assemble(
    rows: Vec<ArticleRow>,
    sources: Vec<SourceRow>,
    pages: Vec<PageRow>,
) -> StoreResult<Vec<Article>> {
    let mut by_id: HashMap<i64, Vec<ArticleSource>> = HashMap::new();
    for s in sources {
        let id = s.article_id;
        by_id.entry(id).or_default().push(s.into_source()?);
    }
    let mut page_by_id: HashMap<i64, PageInfo> = pages
        .into_iter()
        .map(|p| {
            (
                p.article_id,
                PageInfo {
                    description: p.description,
                    text: p.text,
                    ..Default::default()
                },
            )
        })
        .collect();
    Ok(rows
        .into_iter()
        .map(|r| {
            let mut sources = by_id.remove(&r.id).unwrap_or_default();
            sources.sort_by(|a, b| a.source_name.cmp(&b.source_name));
            Article {
                id: r.id,
                canonical_url: r.canonical_url,
                url: r.url,
                title: r.title,
                domain: r.domain,
                published_at: r.published_at,
                sources,
                page: page_by_id.remove(&r.id),
            }
        })
        .collect())
}

/// An entry fetch saw and did not store, under its canonical URL (`tidings explain`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedItem {
    pub canonical_url: String,
    pub source_name: String,
    pub title: String,
    pub reason: String,
    pub seen_at: DateTime<Utc>,
}

/// What a cached model summary is keyed by: the article's URL, a hash of the text the model
/// was given, the model and the prompt's version.
#[derive(Clone, Copy, Debug)]
pub struct SummaryKey<'a> {
    pub url: &'a str,
    pub content_hash: &'a str,
    pub model: &'a str,
    pub prompt_version: i32,
}

impl Store {
    /// Notes that `item.source_name` returned an entry that was not stored, and why (the latest
    /// sighting wins).
    pub async fn record_dropped(&self, item: &DroppedItem) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO dropped_items (canonical_url, source_name, title, reason, seen_at) \
                 VALUES ($1, $2, $3, $4, $5) \
                 ON CONFLICT (canonical_url) DO UPDATE SET source_name = excluded.source_name, \
                   title = excluded.title, reason = excluded.reason, seen_at = excluded.seen_at",
            )
            .bind(&item.canonical_url)
            .bind(&item.source_name)
            .bind(&item.title)
            .bind(&item.reason)
            .bind(item.seen_at)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// Why fetch did not store the entry with this canonical URL, if it saw one.
    pub async fn dropped_item(&self, canonical: &str) -> StoreResult<Option<DroppedItem>> {
        let row: Option<(String, String, String, String, DateTime<Utc>)> = with_pool!(self, p => {
            sqlx::query_as(
                "SELECT canonical_url, source_name, title, reason, seen_at FROM dropped_items \
                 WHERE canonical_url = $1",
            )
            .bind(canonical)
            .fetch_optional(p)
            .await?
        });
        Ok(row.map(
            |(canonical_url, source_name, title, reason, seen_at)| DroppedItem {
                canonical_url,
                source_name,
                title,
                reason,
                seen_at,
            },
        ))
    }

    /// Inserts the article or updates it (title, earliest publication time), and inserts or
    /// updates this source's row (points and comments move, never duplicate). Returns the id.
    pub async fn upsert_article(
        &self,
        a: &ArticleUpsert<'_>,
        now: DateTime<Utc>,
    ) -> StoreResult<i64> {
        let tags = serde_json::to_string(&a.source.tags)
            .map_err(|e| StoreError::Corrupt(format!("tags: {e}")))?;
        with_pool!(self, p => {
            let mut tx = p.begin_write().await?;
            let id: i64 = sqlx::query_scalar(
                "INSERT INTO articles (canonical_url, url, title, domain, published_at, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6)
                 ON CONFLICT (canonical_url) DO UPDATE SET
                   title = excluded.title,
                   published_at = CASE WHEN excluded.published_at < articles.published_at
                                       THEN excluded.published_at ELSE articles.published_at END,
                   updated_at = excluded.updated_at
                 RETURNING id",
            )
            .bind(a.canonical_url)
            .bind(a.url)
            .bind(a.title)
            .bind(a.domain)
            .bind(a.source.published_at)
            .bind(now)
            .fetch_one(&mut *tx)
            .await?;
            sqlx::query(
                "INSERT INTO article_sources (article_id, source_name, source_kind, external_id, points, comments, discussion_url, text, tags, published_at, updated_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                 ON CONFLICT (article_id, source_name) DO UPDATE SET
                   external_id = excluded.external_id,
                   points = excluded.points,
                   comments = excluded.comments,
                   discussion_url = excluded.discussion_url,
                   text = excluded.text,
                   tags = excluded.tags,
                   updated_at = excluded.updated_at",
            )
            .bind(id)
            .bind(&a.source.source_name)
            .bind(&a.source.source_kind)
            .bind(&a.source.external_id)
            .bind(a.source.points)
            .bind(a.source.comments)
            .bind(&a.source.discussion_url)
            .bind(&a.source.text)
            .bind(&tags)
            .bind(a.source.published_at)
            .bind(now)
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            Ok(id)
        })
    }

    /// Every article published in `[start, end)`, with its sources and cached page.
    pub async fn articles_between(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<Article>> {
        with_pool!(self, p => {
            let rows: Vec<ArticleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ARTICLE_COLS} FROM articles a WHERE a.published_at >= $1 AND a.published_at < $2 ORDER BY a.id"
            )))
            .bind(start)
            .bind(end)
            .fetch_all(p)
            .await?;
            let sources: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SOURCE_COLS} FROM article_sources s JOIN articles a ON a.id = s.article_id
                 WHERE a.published_at >= $1 AND a.published_at < $2"
            )))
            .bind(start)
            .bind(end)
            .fetch_all(p)
            .await?;
            let pages: Vec<PageRow> = sqlx::query_as(
                "SELECT g.article_id, g.description, g.text FROM pages g JOIN articles a ON a.id = g.article_id
                 WHERE a.published_at >= $1 AND a.published_at < $2 AND g.error IS NULL",
            )
            .bind(start)
            .bind(end)
            .fetch_all(p)
            .await?;
            assemble(rows, sources, pages)
        })
    }

    /// One article by its canonical URL.
    pub async fn article_by_canonical_url(&self, canonical: &str) -> StoreResult<Option<Article>> {
        with_pool!(self, p => {
            let rows: Vec<ArticleRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {ARTICLE_COLS} FROM articles a WHERE a.canonical_url = $1"
            )))
            .bind(canonical)
            .fetch_all(p)
            .await?;
            let Some(id) = rows.first().map(|r| r.id) else {
                return Ok(None);
            };
            let sources: Vec<SourceRow> = sqlx::query_as(sqlx::AssertSqlSafe(format!(
                "SELECT {SOURCE_COLS} FROM article_sources s WHERE s.article_id = $1"
            )))
            .bind(id)
            .fetch_all(p)
            .await?;
            let pages: Vec<PageRow> = sqlx::query_as(
                "SELECT article_id, description, text FROM pages WHERE article_id = $1 AND error IS NULL",
            )
            .bind(id)
            .fetch_all(p)
            .await?;
            Ok(assemble(rows, sources, pages)?.pop())
        })
    }

    /// Articles in `[start, end)` whose page was never fetched: (id, url), newest first.
    pub async fn articles_without_page(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
        limit: i64,
    ) -> StoreResult<Vec<(i64, String)>> {
        with_pool!(self, p => {
            Ok(sqlx::query_as(
                "SELECT a.id, a.url FROM articles a LEFT JOIN pages g ON g.article_id = a.id
                 WHERE g.article_id IS NULL AND a.published_at >= $1 AND a.published_at < $2
                 ORDER BY a.published_at DESC LIMIT $3",
            )
            .bind(start)
            .bind(end)
            .bind(limit)
            .fetch_all(p)
            .await?)
        })
    }

    /// Caches a page's extraction (or the reason it failed, so it is not fetched again).
    pub async fn save_page(
        &self,
        article_id: i64,
        page: &PageInfo,
        error: Option<&str>,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO pages (article_id, description, text, error, fetched_at) VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (article_id) DO UPDATE SET description = excluded.description,
                   text = excluded.text, error = excluded.error, fetched_at = excluded.fetched_at",
            )
            .bind(article_id)
            .bind(&page.description)
            .bind(&page.text)
            .bind(error)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    pub async fn feed_state(&self, source_name: &str) -> StoreResult<FeedState> {
        with_pool!(self, p => {
            let row: Option<(Option<String>, Option<String>)> =
                sqlx::query_as("SELECT etag, last_modified FROM feed_state WHERE source_name = $1")
                    .bind(source_name)
                    .fetch_optional(p)
                    .await?;
            Ok(row
                .map(|(etag, last_modified)| FeedState { etag, last_modified })
                .unwrap_or_default())
        })
    }

    pub async fn save_feed_state(
        &self,
        source_name: &str,
        state: &FeedState,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO feed_state (source_name, etag, last_modified, updated_at) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (source_name) DO UPDATE SET etag = excluded.etag,
                   last_modified = excluded.last_modified, updated_at = excluded.updated_at",
            )
            .bind(source_name)
            .bind(&state.etag)
            .bind(&state.last_modified)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// A cached model summary for (URL, content hash, model, prompt version); `Some("")`
    /// records an answer that was rejected.
    pub async fn cached_summary(&self, key: &SummaryKey<'_>) -> StoreResult<Option<String>> {
        with_pool!(self, p => {
            Ok(sqlx::query_scalar(
                "SELECT summary FROM summaries
                 WHERE url = $1 AND content_hash = $2 AND model = $3 AND prompt_version = $4",
            )
            .bind(key.url)
            .bind(key.content_hash)
            .bind(key.model)
            .bind(key.prompt_version)
            .fetch_optional(p)
            .await?)
        })
    }

    /// Caches a model summary (empty: the answer was rejected) under `key`.
    pub async fn save_summary(
        &self,
        key: &SummaryKey<'_>,
        summary: &str,
        now: DateTime<Utc>,
    ) -> StoreResult<()> {
        with_pool!(self, p => {
            sqlx::query(
                "INSERT INTO summaries (url, content_hash, model, prompt_version, summary, created_at)
                 VALUES ($1, $2, $3, $4, $5, $6)
                 ON CONFLICT (url, content_hash, model, prompt_version)
                 DO UPDATE SET summary = excluded.summary, created_at = excluded.created_at",
            )
            .bind(key.url)
            .bind(key.content_hash)
            .bind(key.model)
            .bind(key.prompt_version)
            .bind(summary)
            .bind(now)
            .execute(p)
            .await?;
        });
        Ok(())
    }

    /// The points every source gave its stories published in `[start, end)`, as
    /// (source name, points) pairs: each source's recent distribution, which ranking reads
    /// points against (`pipeline::rank`). Sources without points (feeds) give none.
    pub async fn recent_points(
        &self,
        start: DateTime<Utc>,
        end: DateTime<Utc>,
    ) -> StoreResult<Vec<(String, i64)>> {
        with_pool!(self, p => {
            Ok(sqlx::query_as(
                "SELECT source_name, points FROM article_sources
                 WHERE points IS NOT NULL AND published_at >= $1 AND published_at < $2",
            )
            .bind(start)
            .bind(end)
            .fetch_all(p)
            .await?)
        })
    }
}
