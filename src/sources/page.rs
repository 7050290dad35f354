//! Article pages: the description (`meta name=description`, `og:description`) and the readable
//! main text (paragraphs of `article`, else `main`, else `body`, outside navigation, headers,
//! footers, asides, forms, scripts and styles), parsed with html5ever through `scraper`.

use std::sync::LazyLock;

use scraper::{ElementRef, Html, Selector};

use super::{MAX_TEXT_CHARS, clean_text};
use crate::domain::PageInfo;

const SKIP: &[&str] = &[
    "nav", "header", "footer", "aside", "form", "script", "style", "noscript", "template",
    "figure", "button",
];

fn sel(s: &str) -> Option<Selector> {
    Selector::parse(s).ok()
}

/// Where a page describes itself, in order of preference.
static DESCRIPTIONS: LazyLock<Vec<Selector>> = LazyLock::new(|| {
    [
        r#"meta[name="description" i]"#,
        r#"meta[property="og:description" i]"#,
        r#"meta[name="twitter:description" i]"#,
    ]
    .iter()
    .filter_map(|s| sel(s))
    .collect()
});

/// Where the main text lives, in order of preference.
static ROOTS: LazyLock<Vec<Selector>> = LazyLock::new(|| {
    ["article", "main", "[role=main]", "body"]
        .iter()
        .filter_map(|s| sel(s))
        .collect()
});

/// The blocks the main text is made of.
static BLOCKS: LazyLock<Option<Selector>> = LazyLock::new(|| sel("p, li, h2, h3, pre"));

fn meta(doc: &Html, s: &Selector) -> Option<String> {
    doc.select(s)
        .filter_map(|e| e.value().attr("content"))
        .map(|c| clean_text(c, 1000))
        .find(|c| !c.is_empty())
}

fn element_text(e: ElementRef<'_>) -> String {
    let mut out = String::new();
    for node in e.descendants() {
        if let scraper::Node::Text(t) = node.value()
            && !super::any_hidden(node.ancestors().filter_map(|a| a.value().as_element()))
        {
            out.push_str(t);
        }
    }
    clean_text(&out, MAX_TEXT_CHARS)
}

/// Extracts description and main text from an HTML document.
pub fn extract(html: &str) -> PageInfo {
    let doc = Html::parse_document(html);
    let description = DESCRIPTIONS.iter().find_map(|s| meta(&doc, s));
    let root = ROOTS.iter().find_map(|s| doc.select(s).next());
    let mut text = String::new();
    if let (Some(root), Some(p_sel)) = (root, BLOCKS.as_ref()) {
        for p in root.select(p_sel) {
            let skipped = p
                .ancestors()
                .take_while(|a| a.id() != root.id())
                .filter_map(|a| a.value().as_element())
                .any(|e| SKIP.contains(&e.name()) || (e.name() == "p" || e.name() == "li"));
            if skipped {
                continue;
            }
            let t = element_text(p);
            if t.is_empty() {
                continue;
            }
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(&t);
            if !t.ends_with(['.', '!', '?', ':']) && p.value().name() != "p" {
                text.push('.');
            }
            if text.len() > MAX_TEXT_CHARS {
                break;
            }
        }
    }
    let text = clean_text(&text, MAX_TEXT_CHARS);
    PageInfo {
        description,
        text: (!text.is_empty()).then_some(text),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_description_and_article_text() {
        let html = r#"<html><head><meta property="og:description" content="OG desc"><title>t</title></head>
<body><nav><p>Home About</p></nav><article><h1>T</h1><p>First paragraph here.</p>
<script>var x = "evil";</script><p>Second <a href="/x">para</a>.</p><footer><p>Copyright</p></footer></article></body></html>"#;
        let p = extract(html);
        assert_eq!(p.description.as_deref(), Some("OG desc"));
        assert_eq!(
            p.text.as_deref(),
            Some("First paragraph here. Second para.")
        );
    }

    #[test]
    fn meta_description_preferred_and_body_fallback() {
        let html = r#"<html><head><meta name="Description" content=" Plain  desc "></head><body><p>Body text only.</p></body></html>"#;
        let p = extract(html);
        assert_eq!(p.description.as_deref(), Some("Plain desc"));
        assert_eq!(p.text.as_deref(), Some("Body text only."));
    }
}
