//! HTML to plain paragraphs: every block element (paragraph, heading, list item, quote, table
//! row...) and every `<br>` ends a paragraph; white space is collapsed within a paragraph;
//! script, style, noscript and template content is dropped. The walk is iterative, so a
//! deeply nested page cannot exhaust the stack; it also reports how deep the tree goes, so the
//! caller can refuse to hand a pathological page to a recursive extractor.

use ego_tree::NodeRef;
use ego_tree::iter::Edge;
use scraper::Node;

use crate::sources::collapse;

/// Elements whose start and end break paragraphs.
const BLOCKS: &[&str] = &[
    "address",
    "article",
    "aside",
    "blockquote",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "h1",
    "h2",
    "h3",
    "h4",
    "h5",
    "h6",
    "header",
    "hgroup",
    "hr",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "pre",
    "section",
    "summary",
    "table",
    "tbody",
    "td",
    "tfoot",
    "th",
    "thead",
    "tr",
    "ul",
    "body",
    "html",
];

/// Elements whose text no reader sees.
const HIDDEN: &[&str] = &["script", "style", "noscript", "template", "head", "title"];

/// The paragraphs under `root` (the node itself included), leaving out the content of
/// elements named in `skip` as well as hidden ones, and the deepest element nesting seen.
pub fn paragraphs(root: NodeRef<'_, Node>, skip: &[&str]) -> (Vec<String>, usize) {
    let mut out = Vec::new();
    let mut buf = String::new();
    let mut hidden_until = None;
    let (mut depth, mut max_depth) = (0usize, 0usize);
    for edge in root.traverse() {
        match edge {
            Edge::Open(node) => {
                let Some(el) = node.value().as_element() else {
                    if hidden_until.is_none()
                        && let Node::Text(t) = node.value()
                    {
                        buf.push_str(t);
                    }
                    continue;
                };
                depth += 1;
                max_depth = max_depth.max(depth);
                if hidden_until.is_some() {
                    continue;
                }
                let name = el.name();
                if HIDDEN.contains(&name) || skip.contains(&name) {
                    hidden_until = Some(node.id());
                } else if name == "br" || BLOCKS.contains(&name) {
                    flush(&mut buf, &mut out);
                }
            }
            Edge::Close(node) => {
                let Some(el) = node.value().as_element() else {
                    continue;
                };
                depth = depth.saturating_sub(1);
                if hidden_until == Some(node.id()) {
                    hidden_until = None;
                } else if hidden_until.is_none() && BLOCKS.contains(&el.name()) {
                    flush(&mut buf, &mut out);
                }
            }
        }
    }
    flush(&mut buf, &mut out);
    (out, max_depth)
}

/// The element nesting depth under `root`, without collecting any text.
pub fn depth(root: NodeRef<'_, Node>) -> usize {
    let (mut depth, mut max_depth) = (0usize, 0usize);
    for edge in root.traverse() {
        match edge {
            Edge::Open(n) if n.value().is_element() => {
                depth += 1;
                max_depth = max_depth.max(depth);
            }
            Edge::Close(n) if n.value().is_element() => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max_depth
}

fn flush(buf: &mut String, out: &mut Vec<String>) {
    let p = collapse(buf);
    if !p.is_empty() {
        out.push(p);
    }
    buf.clear();
}

/// `paragraphs` joined by blank lines, at most `max_bytes` bytes: whole paragraphs while they
/// fit, then the next one cut at a word (or, failing that, a character) boundary.
pub fn join_capped(paragraphs: &[String], max_bytes: usize) -> String {
    let mut out = String::new();
    for p in paragraphs {
        let sep = if out.is_empty() { 0 } else { 2 };
        if out.len() + sep + p.len() <= max_bytes {
            if sep > 0 {
                out.push_str("\n\n");
            }
            out.push_str(p);
            continue;
        }
        let room = max_bytes.saturating_sub(out.len() + sep);
        let mut cut = floor_char_boundary(p, room);
        if let Some(space) = p[..cut].rfind(' ') {
            cut = space;
        }
        let head = p[..cut].trim_end();
        if !head.is_empty() {
            if sep > 0 {
                out.push_str("\n\n");
            }
            out.push_str(head);
        }
        break;
    }
    out
}

/// The largest index <= `i` that is a char boundary of `s`.
fn floor_char_boundary(s: &str, i: usize) -> usize {
    if i >= s.len() {
        return s.len();
    }
    (0..=i).rev().find(|&j| s.is_char_boundary(j)).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use scraper::Html;

    fn paras(html: &str) -> Vec<String> {
        let doc = Html::parse_fragment(html);
        paragraphs(doc.tree.root(), &[]).0
    }

    #[test]
    fn blocks_and_breaks_end_paragraphs_inline_elements_do_not() {
        assert_eq!(
            paras(
                "<h2>Why</h2><p>One <b>bold</b>\n  word.</p>tail<ul><li>a</li><li>b<br>c</li></ul>"
            ),
            ["Why", "One bold word.", "tail", "a", "b", "c"]
        );
    }

    #[test]
    fn hidden_content_is_dropped() {
        assert_eq!(
            paras(
                "<p>Seen<script>var x = 1;</script><style>p{}</style> text</p><template><p>no</p></template>"
            ),
            ["Seen text"]
        );
    }

    #[test]
    fn skipped_elements_are_left_out() {
        assert_eq!(
            paras_skipping(
                "<nav><p>Home</p></nav><p>Kept</p><footer>© Site</footer>",
                &["nav", "footer"]
            ),
            ["Kept"]
        );
    }

    fn paras_skipping(html: &str, skip: &[&str]) -> Vec<String> {
        let doc = Html::parse_fragment(html);
        paragraphs(doc.tree.root(), skip).0
    }

    #[test]
    fn depth_counts_nesting_without_recursion() {
        let html = format!("{}x{}", "<div>".repeat(5_000), "</div>".repeat(5_000));
        let doc = Html::parse_fragment(&html);
        assert!(depth(doc.tree.root()) >= 5_000);
        let (p, d) = paragraphs(doc.tree.root(), &[]);
        assert_eq!(p, ["x"]);
        assert!(d >= 5_000);
    }

    #[test]
    fn join_keeps_whole_paragraphs_then_cuts_at_a_word_on_a_char_boundary() {
        let ps = vec!["ééé ééé".to_string(), "ööö ööö ööö".to_string()];
        assert_eq!(join_capped(&ps, 100), "ééé ééé\n\nööö ööö ööö");
        // 13 bytes for the first, 2 for the break, then room for "ööö" (6 bytes) only.
        assert_eq!(join_capped(&ps, 22), "ééé ééé\n\nööö");
        // A cut inside a two-byte character backs off to the boundary.
        assert_eq!(join_capped(&["éééé".to_string()], 5), "éé");
        assert_eq!(join_capped(&ps, 0), "");
    }
}
