//! Article pages: the readable main text and what the page says about itself. The main text
//! comes from `trafilatura` (a port of go-trafilatura: boilerplate removal over the DOM, with
//! its readability fallback, tuned for precision), rendered as paragraphs separated by blank
//! lines (headings and list items are paragraphs too) and capped at [`MAX_PAGE_TEXT_BYTES`] on
//! a paragraph, word or character boundary. A page it cannot handle (nothing found, nesting
//! deeper than [`MAX_TREE_DEPTH`], a panic) falls back to the paragraphs of `article`, else
//! `main`, else `body`, outside navigation, headers, footers, asides and forms. Metadata (title,
//! description, author, publication date, canonical address) comes from [`meta`]; bytes are
//! decoded by the charset the response or the page declares ([`decode`]). Pure: no I/O.

mod meta;
mod text;

use std::sync::LazyLock;

use scraper::{Html, Selector};
use url::Url;

pub use meta::parse_date;

use crate::domain::PageInfo;

/// Most bytes of main text kept per page: whole articles fit, runaway pages stop here.
pub const MAX_PAGE_TEXT_BYTES: usize = 100_000;

/// Pages nested deeper than this skip the extractor (its tree walks recurse) for the fallback,
/// whose walk does not. Real articles nest a few dozen levels.
pub const MAX_TREE_DEPTH: usize = 512;

/// Elements whose text is never the article's, for the fallback.
const BOILERPLATE: &[&str] = &[
    "nav", "header", "footer", "aside", "form", "figure", "button", "select", "dialog", "menu",
];

/// Where the fallback looks for the main text, in order of preference.
static ROOTS: LazyLock<Vec<Selector>> = LazyLock::new(|| {
    ["article", "main", "[role=main]", "body"]
        .iter()
        .filter_map(|s| Selector::parse(s).ok())
        .collect()
});

/// One extracted page.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Page {
    pub info: PageInfo,
    /// The page's canonical address (`<link rel=canonical>`, `og:url`), absolute.
    pub canonical: Option<String>,
    /// Which extractor found the main text: "trafilatura", "fallback", or "none".
    pub extractor: &'static str,
}

/// Description, main text and metadata of an HTML document given as text.
pub fn extract(html: &str) -> PageInfo {
    extract_page(html, None).info
}

/// The same for a fetched body: decoded by `content_type`'s charset or the page's own, with
/// `url` (the page's address) for resolving relative links.
pub fn extract_document(body: &[u8], content_type: Option<&str>, url: Option<&str>) -> PageInfo {
    let base = url.and_then(|u| Url::parse(u).ok());
    extract_page(&decode(body, content_type), base.as_ref()).info
}

/// Everything read from one page; `base` is its own address.
pub fn extract_page(html: &str, base: Option<&Url>) -> Page {
    let doc = Html::parse_document(html);
    let found = meta::read(&doc, base);
    let deep = text::depth(doc.tree.root()) > MAX_TREE_DEPTH;
    let main = if deep { None } else { main_text(html, base) };
    let (mut paragraphs, extractor, extra) = match main {
        Some((p, extra)) if !p.is_empty() => (p, "trafilatura", extra),
        _ => (fallback(&doc), "fallback", meta::Meta::default()),
    };
    // The headline is metadata, not text: a summary must not repeat it.
    let titles = [found.title.as_deref(), extra.title.as_deref()];
    if paragraphs
        .first()
        .is_some_and(|p| titles.iter().flatten().any(|t| same_words(p, t)))
    {
        paragraphs.remove(0);
    }
    let text = text::join_capped(&paragraphs, MAX_PAGE_TEXT_BYTES);
    let info = PageInfo {
        description: found.description.or(extra.description),
        text: (!text.is_empty()).then_some(text),
        title: found.title.or(extra.title),
        author: found.author.or(extra.author),
        published: found.published.or(extra.published),
    };
    Page {
        extractor: if info.text.is_some() {
            extractor
        } else {
            "none"
        },
        info,
        canonical: found.canonical,
    }
}

/// The extractor's paragraphs and the metadata it found, or `None` when it found nothing or
/// failed (a panic in it included: one odd page must not stop a fetch run).
fn main_text(html: &str, base: Option<&Url>) -> Option<(Vec<String>, meta::Meta)> {
    let mut opts = trafilatura::Options::default()
        .with_fallback(true)
        .with_focus(trafilatura::ExtractionFocus::FavorPrecision);
    if let Some(base) = base {
        opts = opts.with_url(base.clone());
    }
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        trafilatura::extract(html, &opts)
    }))
    .ok()?
    .ok()?;
    let content = Html::parse_fragment(&result.content_html);
    let (paragraphs, _) = text::paragraphs(content.tree.root(), &[]);
    let m = &result.metadata;
    let non_empty = |s: &str| {
        let s = crate::sources::collapse(s);
        (!s.is_empty()).then_some(s)
    };
    let extra = meta::Meta {
        title: non_empty(&m.title),
        description: non_empty(&m.description),
        author: non_empty(&m.author),
        published: m
            .date
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .map(|d| d.and_utc()),
        canonical: None,
    };
    Some((paragraphs, extra))
}

/// Whether two texts have the same words, case and punctuation aside.
fn same_words(a: &str, b: &str) -> bool {
    let words = |s: &str| {
        s.split(|c: char| !c.is_alphanumeric())
            .filter(|w| !w.is_empty())
            .map(str::to_lowercase)
            .collect::<Vec<_>>()
    };
    let a = words(a);
    !a.is_empty() && a == words(b)
}

/// The paragraphs of the page's `article`, else `main`, else `body`, without boilerplate
/// elements.
fn fallback(doc: &Html) -> Vec<String> {
    let Some(root) = ROOTS.iter().find_map(|s| doc.select(s).next()) else {
        return Vec::new();
    };
    text::paragraphs(*root, BOILERPLATE).0
}

/// The text of an HTML body: by its byte order mark, else the charset `content_type` names,
/// else a `<meta charset>` (or `http-equiv` Content-Type) near the start, else UTF-8 when it
/// is valid UTF-8, else windows-1252 (what browsers assume). Undecodable bytes become U+FFFD.
pub fn decode(body: &[u8], content_type: Option<&str>) -> String {
    if let Some((enc, bom)) = encoding_rs::Encoding::for_bom(body) {
        return enc.decode_without_bom_handling(&body[bom..]).0.into_owned();
    }
    let declared = content_type
        .and_then(charset_label)
        .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
        .or_else(|| {
            // A page cannot be UTF-16 by its own declaration (it is read as ASCII to find
            // it), so such a label means UTF-8, as the HTML standard says.
            meta_charset(&body[..body.len().min(4096)]).map(encoding_rs::Encoding::output_encoding)
        });
    let enc = match declared {
        Some(e) => e,
        None if std::str::from_utf8(body).is_ok() => encoding_rs::UTF_8,
        None => encoding_rs::WINDOWS_1252,
    };
    enc.decode_without_bom_handling(body).0.into_owned()
}

/// The `charset=` parameter's value.
fn charset_label(s: &str) -> Option<String> {
    let lower = s.to_ascii_lowercase();
    let at = lower.find("charset")?;
    let rest = lower[at + "charset".len()..]
        .trim_start()
        .strip_prefix('=')?;
    let label: String = rest
        .trim_start()
        .trim_start_matches(['"', '\''])
        .chars()
        .take_while(|c| !matches!(c, '"' | '\'' | ';' | '>' | '/' | ',') && !c.is_whitespace())
        .collect();
    (!label.is_empty()).then_some(label)
}

/// The charset a `<meta>` tag in the first bytes declares.
fn meta_charset(head: &[u8]) -> Option<&'static encoding_rs::Encoding> {
    let text = String::from_utf8_lossy(head).to_ascii_lowercase();
    text.match_indices("<meta").find_map(|(i, _)| {
        let tag_end = text[i..].find('>').map_or(text.len(), |e| i + e);
        charset_label(&text[i..tag_end])
            .and_then(|l| encoding_rs::Encoding::for_label(l.as_bytes()))
    })
}

#[cfg(test)]
mod tests;
