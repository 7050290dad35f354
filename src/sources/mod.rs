//! Where articles come from: the shared HTTP client with its limits and SSRF guard
//! ([`http`]), the Hacker News Algolia API, RSS/Atom/JSON feeds, Lobsters JSON, and the
//! extraction of an article page's description and main text. Every source returns
//! [`FetchedItem`]s whose links are [`crate::domain::WebLink`]s (absolute http(s), fragment
//! and tracking parameters removed). Sources know nothing of dedupe or storage: canonical
//! URLs, ingest and the feed state kept between fetches are `crate::pipeline`'s and
//! `crate::store`'s business.

pub mod feed;
pub mod hacker_news;
pub mod http;
pub mod lobsters;
pub mod page;

use chrono::{DateTime, Utc};

use crate::domain::FetchedItem;

/// What one source fetch produced.
#[derive(Debug, Default)]
pub struct SourceBatch {
    pub items: Vec<FetchedItem>,
    /// Entries skipped with the reason (bad link, missing date, over the entry cap).
    pub warnings: Vec<String>,
    /// The feed answered 304 Not Modified.
    pub not_modified: bool,
    /// Entries with a usable link that were seen and not returned, with the reason, so
    /// `tidings explain` can say why an article is missing.
    pub dropped: Vec<DroppedEntry>,
}

/// An entry a source saw and did not return.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DroppedEntry {
    /// The entry's absolute http(s) link.
    pub url: String,
    pub title: String,
    pub reason: String,
}

/// The period a fetch asks sources for: `[start, end)`.
#[derive(Clone, Copy, Debug)]
pub struct FetchWindow {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// White space and control characters collapsed to single spaces, trimmed.
pub fn collapse(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for word in s
        .split(|c: char| c.is_whitespace() || c.is_control())
        .filter(|w| !w.is_empty())
    {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Plain text for storage: control characters removed, white space collapsed, at most `max`
/// characters.
pub fn clean_text(s: &str, max: usize) -> String {
    let collapsed = collapse(s);
    if collapsed.chars().count() <= max {
        collapsed
    } else {
        let mut t: String = collapsed.chars().take(max).collect();
        t.push('…');
        t
    }
}

/// Whether any of `elements` hides its text from readers (script, style, noscript, template).
pub(crate) fn any_hidden<'a>(
    mut elements: impl Iterator<Item = &'a scraper::node::Element>,
) -> bool {
    elements.any(|e| matches!(e.name(), "script" | "style" | "noscript" | "template"))
}

/// The visible text of an optional HTML fragment, or `None` when it has none.
pub fn optional_text(html: Option<&str>) -> Option<String> {
    html.map(|t| html_to_text(t, MAX_TEXT_CHARS))
        .filter(|t| !t.is_empty())
}

/// The visible text of an HTML fragment (script and style content dropped), cleaned.
pub fn html_to_text(html: &str, max: usize) -> String {
    if !html.contains('<') && !html.contains('&') {
        return clean_text(html, max);
    }
    let frag = scraper::Html::parse_fragment(html);
    let mut out = String::new();
    for node in frag.tree.nodes() {
        if let scraper::Node::Text(t) = node.value()
            && !any_hidden(node.ancestors().filter_map(|a| a.value().as_element()))
        {
            out.push_str(t);
            out.push(' ');
        }
    }
    clean_text(&out, max)
}

/// Maximum stored lengths.
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_TEXT_CHARS: usize = 4000;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn html_text_drops_scripts_and_controls() {
        let t = html_to_text(
            "<p>Hello <b>world</b></p><script>alert(1)</script>\u{7}ok",
            100,
        );
        assert_eq!(t, "Hello world ok");
        assert_eq!(clean_text("a\r\nb\u{0}c", 100), "a b c");
        assert_eq!(clean_text("abcdef", 3), "abc…");
    }
}
