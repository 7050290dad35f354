//! Lobsters: `{base_url}/hottest.json` and `{base_url}/t/{tag}.json` for each configured tag.
//! Keeps score, comment count and tags.

use chrono::{DateTime, Utc};
use serde::Deserialize;

use super::http::HttpClient;
use super::{MAX_TITLE_CHARS, SourceBatch, clean_text, optional_text};
use crate::config::SourceSettings;
use crate::domain::{FetchedItem, web_link};

pub const DEFAULT_BASE_URL: &str = "https://lobste.rs";

#[derive(Debug, Deserialize)]
struct Story {
    short_id: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    score: Option<i64>,
    #[serde(default)]
    comment_count: Option<i64>,
    #[serde(default)]
    created_at: Option<String>,
    #[serde(default)]
    comments_url: Option<String>,
    #[serde(default)]
    short_id_url: Option<String>,
    #[serde(default)]
    description: Option<String>,
    #[serde(default)]
    tags: Vec<String>,
}

/// Fetches the hottest list and each configured tag's list; stories seen twice are kept once.
pub async fn fetch(
    http: &HttpClient,
    source: &SourceSettings,
    max_entries: usize,
) -> anyhow::Result<SourceBatch> {
    let base = source
        .base_url
        .as_deref()
        .unwrap_or(DEFAULT_BASE_URL)
        .trim_end_matches('/');
    let mut urls = vec![format!("{base}/hottest.json")];
    for tag in &source.tags {
        let t: String = url::form_urlencoded::byte_serialize(tag.trim().as_bytes()).collect();
        urls.push(format!("{base}/t/{t}.json"));
    }
    let mut batch = SourceBatch::default();
    let mut seen = std::collections::HashSet::new();
    let mut ok = 0;
    let mut last_err = None;
    for u in urls {
        let stories: Vec<Story> = match http.get(&u, &[]).await {
            Ok(body) => match serde_json::from_str(&String::from_utf8_lossy(&body.body)) {
                Ok(s) => s,
                Err(e) => {
                    batch
                        .warnings
                        .push(format!("{u}: not a Lobsters story list: {e}"));
                    continue;
                }
            },
            Err(e) => {
                batch.warnings.push(e.to_string());
                last_err = Some(e);
                continue;
            }
        };
        ok += 1;
        if stories.len() > max_entries {
            batch.warnings.push(format!(
                "{u}: {} stories, only the first {max_entries} kept",
                stories.len()
            ));
        }
        for s in stories.into_iter().take(max_entries) {
            if !seen.insert(s.short_id.clone()) {
                continue;
            }
            match to_item(&source.name, s) {
                Ok(item) => batch.items.push(item),
                Err(w) => batch.warnings.push(w),
            }
        }
    }
    if ok == 0 {
        if let Some(e) = last_err {
            return Err(e.into());
        }
        anyhow::bail!("{}: no usable Lobsters list", source.name);
    }
    Ok(batch)
}

fn to_item(source_name: &str, s: Story) -> Result<FetchedItem, String> {
    let id = clean_text(&s.short_id, 40);
    let title = clean_text(&s.title, MAX_TITLE_CHARS);
    if title.is_empty() {
        return Err(format!("{source_name}: story {id} has no title"));
    }
    let published_at: DateTime<Utc> = s
        .created_at
        .as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
        .ok_or_else(|| format!("{source_name}: story {id} has no valid created_at"))?;
    let discussion = s.comments_url.or(s.short_id_url).and_then(|u| web_link(&u));
    let url = match s.url.as_deref().filter(|u| !u.trim().is_empty()) {
        Some(u) => Some(
            web_link(u)
                .ok_or_else(|| format!("{source_name}: story {id} has a non-http link, skipped"))?,
        ),
        None => None,
    };
    Ok(FetchedItem {
        source_name: source_name.to_string(),
        source_kind: "lobsters".into(),
        external_id: id,
        title,
        url,
        discussion_url: discussion,
        published_at,
        points: s.score,
        comments: s.comment_count,
        text: optional_text(s.description.as_deref()),
        tags: s
            .tags
            .iter()
            .map(|t| clean_text(t, 40).to_lowercase())
            .filter(|t| !t.is_empty())
            .collect(),
    })
}
