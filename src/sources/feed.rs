//! RSS 0.9x/1.0/2.0, Atom and JSON Feed through feed-rs, fetched with conditional GET (ETag and
//! Last-Modified validators kept per source). Entries are capped; links must be absolute
//! http(s); titles and summaries become plain text.

use chrono::Utc;

use super::http::HttpClient;
use super::{DroppedEntry, MAX_TITLE_CHARS, SourceBatch, clean_text, html_to_text, optional_text};
use crate::config::SourceSettings;
use crate::domain::{FeedState, FetchedItem, web_link};

/// Fetches one feed with the validators of the last fetch (`state`). Returns the batch and the
/// validators for the next fetch; the caller keeps them.
pub async fn fetch(
    http: &HttpClient,
    source: &SourceSettings,
    state: &FeedState,
    max_entries: usize,
) -> anyhow::Result<(SourceBatch, FeedState)> {
    let url = source
        .url
        .as_deref()
        .ok_or_else(|| anyhow::anyhow!("{}: feed has no url", source.name))?;
    let mut headers = Vec::new();
    if let Some(etag) = &state.etag {
        headers.push(("if-none-match", etag.clone()));
    }
    if let Some(lm) = &state.last_modified {
        headers.push(("if-modified-since", lm.clone()));
    }
    let body = http.get(url, &headers).await?;
    if body.status == 304 {
        return Ok((
            SourceBatch {
                not_modified: true,
                ..SourceBatch::default()
            },
            state.clone(),
        ));
    }
    let new_state = FeedState {
        etag: body.header("etag"),
        last_modified: body.header("last-modified"),
    };
    let batch = parse(&source.name, &body.body, &body.final_url, max_entries)?;
    Ok((batch, new_state))
}

fn parser(base_url: &str) -> feed_rs::parser::Parser {
    feed_rs::parser::Builder::new()
        .base_uri(Some(base_url))
        .build()
}

/// Parses a feed document into items (pure; used by tests and `fetch`).
pub fn parse(
    source_name: &str,
    bytes: &[u8],
    base_url: &str,
    max_entries: usize,
) -> anyhow::Result<SourceBatch> {
    let parsed = match parser(base_url).parse(bytes) {
        Ok(f) => f,
        Err(first) => {
            // Invalid UTF-8 in an otherwise good feed: try once more with it replaced.
            let lossy = String::from_utf8_lossy(bytes);
            if matches!(lossy, std::borrow::Cow::Owned(_)) {
                parser(base_url)
                    .parse(lossy.as_bytes())
                    .map_err(|e| anyhow::anyhow!("{source_name}: not a feed: {e}"))?
            } else {
                anyhow::bail!("{source_name}: not a feed: {first}");
            }
        }
    };
    let mut batch = SourceBatch::default();
    if parsed.entries.len() > max_entries {
        batch.warnings.push(format!(
            "{source_name}: {} entries, only the first {max_entries} kept",
            parsed.entries.len()
        ));
    }
    // Entries past the cap are only noted (for `tidings explain`), up to as many again.
    for (n, entry) in parsed
        .entries
        .into_iter()
        .take(max_entries.saturating_mul(2))
        .enumerate()
    {
        if n >= max_entries {
            if let Some(link) = entry.links.iter().find_map(|l| web_link(&l.href)) {
                batch.dropped.push(DroppedEntry {
                    url: link,
                    title: entry
                        .title
                        .as_ref()
                        .map(|t| clean_text(&t.content, MAX_TITLE_CHARS))
                        .unwrap_or_default(),
                    reason: format!(
                        "beyond the first {max_entries} entries of the feed ([fetch] max_entries)"
                    ),
                });
            }
            continue;
        }
        let title = entry
            .title
            .as_ref()
            .map(|t| {
                if t.content_type.essence().to_string().contains("html") {
                    html_to_text(&t.content, MAX_TITLE_CHARS)
                } else {
                    clean_text(&t.content, MAX_TITLE_CHARS)
                }
            })
            .unwrap_or_default();
        if title.is_empty() {
            batch.warnings.push(format!(
                "{source_name}: entry {:?} has no title, skipped",
                clean_text(&entry.id, 80)
            ));
            continue;
        }
        let link = entry
            .links
            .iter()
            .filter(|l| l.rel.as_deref().is_none_or(|r| r == "alternate"))
            .find_map(|l| web_link(&l.href));
        let Some(link) = link else {
            batch.warnings.push(format!(
                "{source_name}: entry {title:?} has no http(s) link, skipped"
            ));
            continue;
        };
        let Some(published_at) = entry.published.or(entry.updated) else {
            batch.warnings.push(format!(
                "{source_name}: entry {title:?} has no date, skipped"
            ));
            batch.dropped.push(DroppedEntry {
                url: link,
                title,
                reason: "the entry has no date".into(),
            });
            continue;
        };
        let text = optional_text(entry.summary.as_ref().map(|s| s.content.as_str()))
            .or_else(|| optional_text(entry.content.as_ref().and_then(|c| c.body.as_deref())));
        let external_id = if entry.id.trim().is_empty() {
            link.clone()
        } else {
            clean_text(&entry.id, 300)
        };
        batch.items.push(FetchedItem {
            source_name: source_name.to_string(),
            source_kind: "feed".into(),
            external_id,
            title,
            url: Some(link),
            discussion_url: None,
            published_at: published_at.with_timezone(&Utc),
            points: None,
            comments: None,
            text,
            tags: entry
                .categories
                .iter()
                .map(|c| clean_text(&c.term, 40).to_lowercase())
                .filter(|t| !t.is_empty())
                .collect(),
        });
    }
    Ok(batch)
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSS: &str = r#"<?xml version="1.0"?><rss version="2.0"><channel><title>x</title>
<item><title>&lt;script&gt;alert(1)&lt;/script&gt; Raft</title><link>https://e.com/a</link><pubDate>Tue, 03 Feb 2026 10:00:00 GMT</pubDate><description>&lt;p&gt;Body &lt;script&gt;evil()&lt;/script&gt;text&lt;/p&gt;</description><category>Distributed</category></item>
<item><title>Bad link</title><link>javascript:alert(1)</link><pubDate>Tue, 03 Feb 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#;

    #[test]
    fn rss_items_are_plain_text_with_http_links_only() {
        let b = parse("Feed", RSS.as_bytes(), "https://e.com/feed", 100).unwrap();
        assert_eq!(b.items.len(), 1);
        let it = &b.items[0];
        assert_eq!(it.title, "<script>alert(1)</script> Raft");
        assert_eq!(it.text.as_deref(), Some("Body text"));
        assert_eq!(it.tags, vec!["distributed"]);
        assert!(b.warnings.iter().any(|w| w.contains("Bad link")));
    }

    /// A feed hands over the link as readers should see it (fragment and tracking parameters
    /// removed, nothing else changed); it is no dedupe key (`www.`, the trailing slash stay).
    #[test]
    fn entry_links_are_handed_over_as_web_links() {
        let doc = r#"<rss version="2.0"><channel><title>x</title>
<item><title>Raft</title><link>https://www.e.com/a/?utm_source=rss&amp;id=7#top</link><pubDate>Tue, 03 Feb 2026 10:00:00 GMT</pubDate></item>
</channel></rss>"#;
        let b = parse("Feed", doc.as_bytes(), "https://e.com/feed", 10).unwrap();
        assert_eq!(b.items.len(), 1, "{:?}", b.warnings);
        let it = &b.items[0];
        assert_eq!(it.url.as_deref(), Some("https://www.e.com/a/?id=7"));
    }

    #[test]
    fn malformed_xml_is_an_error_not_a_panic() {
        assert!(
            parse(
                "Feed",
                b"<rss><channel><item><title>x</ti",
                "https://e.com/",
                10
            )
            .is_err()
        );
    }

    #[test]
    fn entry_cap_applies() {
        let items: String = (0..50)
            .map(|i| format!("<item><title>t{i}</title><link>https://e.com/{i}</link><pubDate>Tue, 03 Feb 2026 10:00:00 GMT</pubDate></item>"))
            .collect();
        let doc = format!("<rss version=\"2.0\"><channel><title>x</title>{items}</channel></rss>");
        let b = parse("Feed", doc.as_bytes(), "https://e.com/", 10).unwrap();
        assert_eq!(b.items.len(), 10);
        assert_eq!(b.dropped.len(), 10, "the next 10 are noted as dropped");
        assert_eq!(b.dropped[0].url, "https://e.com/10");
        assert!(b.dropped[0].reason.contains("max_entries"));
    }

    #[test]
    fn invalid_utf8_is_replaced() {
        let mut doc = b"<rss version=\"2.0\"><channel><title>x</title><item><title>caf".to_vec();
        doc.extend_from_slice(&[0xff, 0xfe]);
        doc.extend_from_slice(b" raft</title><link>https://e.com/u</link><pubDate>Tue, 03 Feb 2026 10:00:00 GMT</pubDate></item></channel></rss>");
        let b = parse("Feed", &doc, "https://e.com/", 10).unwrap();
        assert_eq!(b.items.len(), 1);
        assert!(b.items[0].title.ends_with("raft"));
    }
}
