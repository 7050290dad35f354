//! Hacker News through the Algolia search API: `{base_url}/api/v1/search_by_date` with
//! `tags=story` and `numericFilters` on `created_at_i` and `points`, paged until `nbPages`. A
//! window whose query reports more than 1000 hits (the API's cap) is split in two until every
//! query fits.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::http::HttpClient;
use super::{FetchWindow, MAX_TITLE_CHARS, SourceBatch, clean_text, optional_text};
use crate::config::SourceSettings;
use crate::domain::{FetchedItem, web_link};

pub const DEFAULT_BASE_URL: &str = "https://hn.algolia.com";
/// Algolia never returns more than this many hits for one query.
pub const HIT_CAP: u64 = 1000;
const HITS_PER_PAGE: u64 = 100;
/// Safety stop on window splitting.
const MAX_QUERIES: usize = 400;

#[derive(Debug, Deserialize)]
struct SearchPage {
    #[serde(default)]
    hits: Vec<Hit>,
    #[serde(default, rename = "nbHits")]
    nb_hits: u64,
    #[serde(default, rename = "nbPages")]
    nb_pages: u64,
}

#[derive(Debug, Deserialize)]
struct Hit {
    #[serde(rename = "objectID")]
    object_id: String,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    points: Option<i64>,
    #[serde(default)]
    num_comments: Option<i64>,
    #[serde(default)]
    created_at_i: Option<i64>,
    #[serde(default)]
    story_text: Option<String>,
    #[serde(default, rename = "_tags")]
    tags: Vec<String>,
}

fn search_url(base: &str, min_points: i64, start: i64, end: i64, page: u64) -> String {
    format!(
        "{}/api/v1/search_by_date?tags=story&numericFilters=created_at_i>={start},created_at_i<{end},points>={min_points}&page={page}&hitsPerPage={HITS_PER_PAGE}",
        base.trim_end_matches('/')
    )
}

async fn get_page(http: &HttpClient, url: &str) -> anyhow::Result<SearchPage> {
    let body = http.get(url, &[]).await?;
    // Invalid UTF-8 is replaced rather than failing the whole page.
    let text = String::from_utf8_lossy(&body.body);
    serde_json::from_str(&text).map_err(|e| anyhow::anyhow!("{url}: not a search result: {e}"))
}

/// Fetches every story in the window with at least `min_points`.
pub async fn fetch(
    http: &HttpClient,
    source: &SourceSettings,
    window: FetchWindow,
    max_entries: usize,
) -> anyhow::Result<SourceBatch> {
    let base = source.base_url.as_deref().unwrap_or(DEFAULT_BASE_URL);
    let mut batch = SourceBatch::default();
    let mut pending = vec![(window.start.timestamp(), window.end.timestamp())];
    let mut queries = 0;
    let mut hits = Vec::new();
    while let Some((a, b)) = pending.pop() {
        if a >= b {
            continue;
        }
        queries += 1;
        anyhow::ensure!(
            queries <= MAX_QUERIES,
            "{}: too many queries while splitting the window",
            source.name
        );
        let first = get_page(http, &search_url(base, source.min_points, a, b, 0)).await?;
        if first.nb_hits > HIT_CAP && b - a > 1 {
            let mid = a + (b - a) / 2;
            pending.push((mid, b));
            pending.push((a, mid));
            continue;
        }
        let pages = first.nb_pages;
        hits.extend(first.hits);
        let mut page = 1;
        while page < pages {
            queries += 1;
            anyhow::ensure!(queries <= MAX_QUERIES, "{}: too many pages", source.name);
            let next = get_page(http, &search_url(base, source.min_points, a, b, page)).await?;
            if next.hits.is_empty() {
                break;
            }
            hits.extend(next.hits);
            page += 1;
        }
        if hits.len() > max_entries.saturating_mul(20) {
            batch.warnings.push(format!(
                "{}: stopped after {} stories",
                source.name,
                hits.len()
            ));
            break;
        }
    }
    let mut seen = std::collections::HashSet::new();
    for hit in hits {
        if !seen.insert(hit.object_id.clone()) {
            continue;
        }
        match to_item(&source.name, hit) {
            Ok(item) => batch.items.push(item),
            Err(w) => batch.warnings.push(w),
        }
    }
    Ok(batch)
}

fn to_item(source_name: &str, hit: Hit) -> Result<FetchedItem, String> {
    let id = clean_text(&hit.object_id, 40);
    let title = clean_text(hit.title.as_deref().unwrap_or_default(), MAX_TITLE_CHARS);
    if title.is_empty() {
        return Err(format!("{source_name}: story {id} has no title"));
    }
    let published_at: DateTime<Utc> = hit
        .created_at_i
        .and_then(|t| DateTime::from_timestamp(t, 0))
        .ok_or_else(|| format!("{source_name}: story {id} has no time"))?;
    let discussion = format!(
        "https://news.ycombinator.com/item?id={}",
        url::form_urlencoded::byte_serialize(id.as_bytes()).collect::<String>()
    );
    let url = match hit.url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(u) => match web_link(u) {
            Some(l) => Some(l),
            None => {
                return Err(format!(
                    "{source_name}: story {id} has a non-http link, skipped"
                ));
            }
        },
        None => None,
    };
    let mut tags: Vec<String> = hit
        .tags
        .iter()
        .filter(|t| matches!(t.as_str(), "ask_hn" | "show_hn"))
        .cloned()
        .collect();
    tags.sort();
    Ok(FetchedItem {
        source_name: source_name.to_string(),
        source_kind: "hackernews".into(),
        external_id: id,
        title,
        url,
        discussion_url: Some(discussion),
        published_at,
        points: hit.points,
        comments: hit.num_comments,
        text: optional_text(hit.story_text.as_deref()),
        tags,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ask_hn_without_url_keeps_discussion_and_text() {
        let hit: Hit = serde_json::from_str(
            r#"{"objectID":"42","title":"Ask HN: <b>Raft</b>?","points":5,"num_comments":3,"created_at_i":1770000000,"story_text":"<p>How do you run <i>raft</i>?</p>","_tags":["story","ask_hn"]}"#,
        )
        .unwrap();
        let item = to_item("Hacker News", hit).unwrap();
        assert_eq!(item.url, None);
        assert_eq!(
            item.discussion_url.as_deref(),
            Some("https://news.ycombinator.com/item?id=42")
        );
        assert_eq!(item.text.as_deref(), Some("How do you run raft ?"));
        assert_eq!(item.tags, vec!["ask_hn"]);
    }

    #[test]
    fn javascript_links_are_dropped() {
        let hit: Hit = serde_json::from_str(
            r#"{"objectID":"1","title":"x","url":"javascript:alert(1)","created_at_i":1770000000}"#,
        )
        .unwrap();
        assert!(to_item("HN", hit).is_err());
    }
}
