//! Articles as sources report them ([`FetchedItem`]), as stored after ingest ([`Article`]), and
//! as frozen into a digest issue ([`Digest`], [`DigestEntry`]).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One story as a source reported it, before ingest. Links are absolute http(s) or `None`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct FetchedItem {
    pub source_name: String,
    /// "hackernews", "feed" or "lobsters".
    pub source_kind: String,
    /// The source's own id (HN objectID, Lobsters short_id, feed entry id or link).
    pub external_id: String,
    pub title: String,
    /// The linked article; `None` for Ask HN and text posts.
    pub url: Option<String>,
    /// The discussion page (news.ycombinator.com/item?id=..., a Lobsters comments page).
    pub discussion_url: Option<String>,
    pub published_at: DateTime<Utc>,
    pub points: Option<i64>,
    pub comments: Option<i64>,
    /// Plain text the source carries: HN story_text, a feed entry's summary or content.
    pub text: Option<String>,
    pub tags: Vec<String>,
}

/// One source's view of an article.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ArticleSource {
    pub source_name: String,
    pub source_kind: String,
    pub external_id: String,
    pub points: Option<i64>,
    pub comments: Option<i64>,
    pub discussion_url: Option<String>,
    pub text: Option<String>,
    pub tags: Vec<String>,
    pub published_at: DateTime<Utc>,
}

/// What was extracted from the linked page. The store caches `description` and `text`; the
/// metadata (`title`, `author`, `published`) is read from the page each time it is extracted.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PageInfo {
    pub description: Option<String>,
    /// The article's main text: paragraphs (headings and list items among them) separated by a
    /// blank line, white space collapsed within each, at most 100 KB.
    pub text: Option<String>,
    /// The article's own title (JSON-LD headline, Open Graph, `<title>` without the site name).
    pub title: Option<String>,
    /// Who wrote it, several authors joined by ", ".
    pub author: Option<String>,
    /// When it was published, in UTC (a date alone reads as midnight UTC).
    pub published: Option<DateTime<Utc>>,
}

/// An ingested article: one per canonical URL, merging every source that carried it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Article {
    pub id: i64,
    pub canonical_url: String,
    pub url: String,
    pub title: String,
    pub domain: String,
    /// The earliest publication time any source gave, in UTC.
    pub published_at: DateTime<Utc>,
    pub sources: Vec<ArticleSource>,
    pub page: Option<PageInfo>,
}

/// "Hacker News 302 pts" in a digest's Sources line.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SourceLine {
    pub name: String,
    pub points: Option<i64>,
    pub comments: Option<i64>,
    pub discussion_url: Option<String>,
}

/// One numbered article of a digest, frozen as it was when compiled.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DigestEntry {
    /// 1-based position in the digest.
    pub position: u32,
    pub article_id: i64,
    pub title: String,
    pub url: String,
    pub domain: String,
    pub published_at: DateTime<Utc>,
    pub summary: String,
    pub score: f64,
    pub sources: Vec<SourceLine>,
}

/// One topic's digest for one period `[window_start, window_end)`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Digest {
    /// Set once the digest is frozen as an issue.
    pub issue_id: Option<i64>,
    pub topic_slug: String,
    pub topic_name: String,
    pub topic_description: String,
    pub window_start: DateTime<Utc>,
    pub window_end: DateTime<Utc>,
    pub window_days: u32,
    pub entries: Vec<DigestEntry>,
}
