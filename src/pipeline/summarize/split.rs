//! Sentence splitting: Unicode sentence boundaries (UAX #29, `unicode-segmentation`) within
//! each paragraph, then a few rules UAX #29 leaves to the caller: no break after a title or
//! Latin abbreviation ("Dr.", "e.g.", "vs."), an initial ("J. Smith"), a dotted acronym
//! ("U.S."), or where no space follows the stop (URLs, file names, "node.JS"). Decimals,
//! version numbers, quotes and ellipses followed by lower case are UAX #29's own rules.

use unicode_segmentation::UnicodeSegmentation as _;

/// Abbreviations after which a sentence does not end, lower-cased without the final dot.
const ABBREVIATIONS: &[&str] = &[
    "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "mt", "gen", "gov", "sen", "rep", "capt",
    "lt", "col", "sgt", "rev", "vs", "e.g", "i.e", "cf", "approx", "no", "nos", "fig", "figs",
    "vol", "pp", "p", "ca", "al", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept",
    "oct", "nov", "dec", "est", "dept", "univ", "corp", "ltd", "co", "ave", "blvd",
];

/// The paragraphs of `text` (split at line breaks), each as its sentences, white space
/// collapsed. Empty paragraphs are left out.
pub fn paragraphs(text: &str) -> Vec<Vec<String>> {
    text.split(['\n', '\r', '\u{2029}'])
        .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
        .filter(|p| !p.is_empty())
        .map(|p| split_paragraph(&p))
        .filter(|p| !p.is_empty())
        .collect()
}

/// Every sentence of `text`, in order.
pub fn sentences(text: &str) -> Vec<String> {
    paragraphs(text).into_iter().flatten().collect()
}

fn split_paragraph(p: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut current = String::new();
    for seg in p.split_sentence_bounds() {
        current.push_str(seg);
        if continues(&current, seg) {
            continue;
        }
        let s = current.trim();
        if !s.is_empty() {
            out.push(s.to_string());
        }
        current.clear();
    }
    let rest = current.trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

/// Whether the sentence so far (ending with the UAX #29 segment `seg`) goes on into the next
/// segment.
fn continues(so_far: &str, seg: &str) -> bool {
    // A stop with no space after it ("example.com/a.Html", "node.JS") is not a sentence end.
    if !seg.ends_with(char::is_whitespace) {
        return true;
    }
    let trimmed = so_far.trim_end();
    let Some(last) = trimmed.split_whitespace().last() else {
        return false;
    };
    let word = last.trim_start_matches(['(', '[', '"', '\'', '“', '‘']);
    let Some(stem) = word.strip_suffix('.') else {
        return false;
    };
    if stem.ends_with('.') {
        // An ellipsis ("...") ends the sentence when UAX #29 says so.
        return false;
    }
    let lower = stem.to_lowercase();
    if ABBREVIATIONS.contains(&lower.as_str()) {
        return true;
    }
    // An initial ("J.") or a dotted acronym ("U.S", "U.K"): single letters between dots.
    let letters: Vec<&str> = stem.split('.').collect();
    letters
        .iter()
        .all(|l| l.chars().count() == 1 && l.chars().all(char::is_uppercase))
}
