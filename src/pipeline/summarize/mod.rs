//! Extractive summaries: whole sentences of the article, 60-130 words by default
//! (`[summarizer] min_words`/`max_words`), chosen by how central they are to the whole text
//! (TextRank, [`rank`]) with a mild preference for the lead, and printed in the article's
//! order. Bylines, captions, calls to action, sign-offs, cookie notices and navigation are
//! dropped by form and position ([`boilerplate`]); the title is never repeated. A page
//! description that is a real summary (long enough, about the text, not a copy of the title)
//! leads. Without page text the source's own text is summarised the same way, else a factual
//! line such as "Discussion on Hacker News: 240 comments". Pure: no I/O.

mod boilerplate;
pub mod grounding;
mod rank;
mod split;
#[cfg(test)]
mod tests;

use std::fmt;

pub use split::{paragraphs, sentences};

use crate::config::SummarizerSettings;
use crate::domain::Article;

/// The default bounds, as in `[summarizer]`.
pub const MIN_WORDS: usize = 60;
pub const MAX_WORDS: usize = 130;

/// An article under this many words may get a summary shorter than `min_words`.
pub const SHORT_ARTICLE_WORDS: usize = 300;

/// A description shorter than this is a tagline, not a summary.
const DESCRIPTION_MIN_WORDS: usize = 15;

/// How long a summary may be, in words.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    pub min_words: usize,
    pub max_words: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            min_words: MIN_WORDS,
            max_words: MAX_WORDS,
        }
    }
}

impl From<&SummarizerSettings> for Limits {
    fn from(s: &SummarizerSettings) -> Self {
        Limits {
            min_words: s.min_words,
            max_words: s.max_words.max(s.min_words),
        }
    }
}

/// Which summariser wrote a summary.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Source {
    /// Sentences chosen from the article's text.
    Extractive,
    /// The page's own description, whole.
    Description,
    /// The page's description, then sentences chosen from the text.
    DescriptionAndExtractive,
    /// A model through the OpenAI-compatible endpoint, by model name.
    Model(String),
    /// No text to summarise: the sources' points and comments.
    Facts,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Extractive => f.write_str("extractive"),
            Source::Description => f.write_str("description"),
            Source::DescriptionAndExtractive => f.write_str("description+extractive"),
            Source::Model(m) => write!(f, "openai:{m}"),
            Source::Facts => f.write_str("facts"),
        }
    }
}

/// A summary and who wrote it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Summary {
    pub text: String,
    pub source: Source,
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// "Discussion on Hacker News: 240 comments", one clause per source.
pub fn factual_line(article: &Article) -> String {
    let mut parts = Vec::new();
    for s in &article.sources {
        match (s.comments, s.points) {
            (Some(c), _) => parts.push(format!("Discussion on {}: {c} comments", s.source_name)),
            (None, Some(p)) => parts.push(format!("Posted on {}: {p} points", s.source_name)),
            (None, None) => parts.push(format!("Published via {}", s.source_name)),
        }
    }
    if parts.is_empty() {
        format!("An article on {}", article.domain)
    } else {
        parts.join("; ")
    }
}

/// The text to summarise: the page's main text, else what the sources carried.
pub fn article_text(article: &Article) -> String {
    if let Some(t) = article.page.as_ref().and_then(|p| p.text.as_deref())
        && !t.trim().is_empty()
    {
        return t.to_string();
    }
    article
        .sources
        .iter()
        .filter_map(|s| s.text.as_deref())
        .filter(|t| !t.trim().is_empty())
        .collect::<Vec<_>>()
        .join("\n")
}

/// The extractive summary of one article with the default limits (the entry point
/// `tidings extract` and the benchmarks use).
pub fn extractive_summary(article: &Article) -> String {
    summarize(article, Limits::default()).text
}

/// The extractive summary with the default limits and which summariser wrote it.
pub fn summary_with_source(article: &Article) -> Summary {
    summarize(article, Limits::default())
}

/// One candidate sentence: its text, where it sits, its content words.
struct Candidate {
    text: String,
    position: usize,
    paragraph: usize,
    words: usize,
    content: Vec<String>,
}

/// The article's sentences a summary may quote, in order: boilerplate and title copies out.
fn candidates(text: &str, title: &[String]) -> (Vec<Candidate>, usize) {
    let paras = paragraphs(text);
    let total_sentences: usize = paras.iter().map(Vec::len).sum();
    let mut total_words = 0;
    let mut out = Vec::new();
    let mut position = 0;
    for (pi, para) in paras.iter().enumerate() {
        for s in para {
            let place = boilerplate::Place {
                paragraph: pi,
                paragraphs: paras.len(),
                sentence: position,
                sentences: total_sentences,
            };
            position += 1;
            let n = words(s);
            if boilerplate::is_boilerplate(s, place) {
                continue;
            }
            total_words += n;
            let content = rank::content_words(s);
            if content.is_empty() || is_title_copy(&content, title) {
                continue;
            }
            out.push(Candidate {
                text: s.clone(),
                position: place.sentence,
                paragraph: pi,
                words: n,
                content,
            });
        }
    }
    (out, total_words)
}

/// Whether a sentence says little beyond the title.
fn is_title_copy(content: &[String], title: &[String]) -> bool {
    !title.is_empty() && rank::shared(content, title) as f64 >= 0.8 * content.len() as f64
}

/// The page's description when it reads as a real summary of `text`: long enough, whole (not
/// cut off with an ellipsis), not the title again, mostly about the words of the text (a
/// site's slogan is not), and not boilerplate itself.
fn real_description(article: &Article, title: &[String], body: &[String]) -> Option<Vec<String>> {
    let d = article.page.as_ref()?.description.as_deref()?.trim();
    if words(d) < DESCRIPTION_MIN_WORDS || d.ends_with('…') || d.ends_with("...") {
        return None;
    }
    let content = rank::content_words(d);
    if content.is_empty() || rank::overlap(&content, title) >= 0.8 {
        return None;
    }
    if body.len() >= 40 && (rank::shared(&content, body) as f64) < 0.5 * content.len() as f64 {
        return None;
    }
    let sents = sentences(d);
    let place = |i: usize| boilerplate::Place {
        paragraph: 1,
        paragraphs: 3,
        sentence: i + 2,
        sentences: sents.len() + 4,
    };
    if sents
        .iter()
        .enumerate()
        .any(|(i, s)| boilerplate::is_boilerplate(s, place(i)))
    {
        return None;
    }
    Some(sents)
}

/// The summary of one article within `limits`, and which summariser wrote it.
pub fn summarize(article: &Article, limits: Limits) -> Summary {
    let title = rank::content_words(&article.title);
    let text = article_text(article);
    let (cands, total_words) = candidates(&text, &title);
    let body: Vec<String> = {
        let mut all: Vec<String> = cands
            .iter()
            .flat_map(|c| c.content.iter().cloned())
            .collect();
        all.sort();
        all.dedup();
        all
    };
    // A short article gets a summary in proportion, never more than half of it.
    let (min_words, target) = if total_words < SHORT_ARTICLE_WORDS {
        let t = (total_words / 2).clamp(limits.min_words.min(25), limits.min_words);
        (t, t)
    } else {
        (
            limits.min_words,
            (limits.min_words + limits.max_words).div_ceil(2),
        )
    };

    let mut lead: Vec<String> = Vec::new();
    let mut lead_words = 0;
    let mut lead_content: Vec<String> = Vec::new();
    if let Some(desc) = real_description(article, &title, &body) {
        for s in desc {
            let n = words(&s);
            if lead_words + n > limits.max_words {
                break;
            }
            lead_words += n;
            lead_content.extend(rank::content_words(&s));
            lead.push(s);
        }
        lead_content.sort();
        lead_content.dedup();
    }

    let chosen = choose(
        &cands,
        lead_words,
        min_words,
        target,
        limits.max_words,
        &lead_content,
    );
    let mut picked: Vec<&Candidate> = chosen.iter().map(|&i| &cands[i]).collect();
    picked.sort_by_key(|c| c.position);
    let extracted: Vec<&str> = picked.iter().map(|c| c.text.as_str()).collect();

    let source = match (lead.is_empty(), extracted.is_empty()) {
        (false, true) => Source::Description,
        (false, false) => Source::DescriptionAndExtractive,
        (true, false) => Source::Extractive,
        (true, true) => {
            return match fallback(&cands, limits) {
                Some(text) => Summary {
                    text,
                    source: Source::Extractive,
                },
                None => Summary {
                    text: factual_line(article),
                    source: Source::Facts,
                },
            };
        }
    };
    let mut parts: Vec<&str> = lead.iter().map(String::as_str).collect();
    parts.extend(extracted);
    Summary {
        text: parts.join(" "),
        source,
    }
}

/// Indexes of the sentences to quote: the most central first, skipping ones that repeat what
/// is already chosen or would pass `max_words`, until `target` words (at least `min_words`
/// when the text has them). A first pass takes at most one sentence per paragraph, so the
/// summary covers the article (the problem, the cause, the fix) rather than one passage.
fn choose(
    cands: &[Candidate],
    lead_words: usize,
    min_words: usize,
    target: usize,
    max_words: usize,
    lead_content: &[String],
) -> Vec<usize> {
    if lead_words >= min_words {
        return Vec::new();
    }
    let content: Vec<&[String]> = cands.iter().map(|c| c.content.as_slice()).collect();
    let scores = rank::centrality(&content);
    let mut order: Vec<usize> = (0..cands.len()).collect();
    let adjusted = |i: usize| scores[i] * weight(&cands[i]);
    order.sort_by(|&a, &b| adjusted(b).total_cmp(&adjusted(a)).then(a.cmp(&b)));
    let mut chosen: Vec<usize> = Vec::new();
    let mut total = lead_words;
    for one_per_paragraph in [true, false] {
        for &i in &order {
            if total >= target {
                return chosen;
            }
            let c = &cands[i];
            if chosen.contains(&i) || total + c.words > max_words {
                continue;
            }
            if one_per_paragraph && chosen.iter().any(|&j| cands[j].paragraph == c.paragraph) {
                continue;
            }
            let repeats = rank::overlap(&c.content, lead_content) > 0.6
                || chosen
                    .iter()
                    .any(|&j| rank::overlap(&c.content, &cands[j].content) > 0.6);
            if repeats {
                continue;
            }
            chosen.push(i);
            total += c.words;
        }
    }
    chosen
}

/// How much a reader gets from a sentence besides its centrality: concrete ones (numbers,
/// names) a little more, very short ones and ones that lean on the sentence before less.
fn weight(c: &Candidate) -> f64 {
    let mut w = 1.0;
    if opens_mid_thought(&c.text) {
        w *= 0.8;
    }
    if c.words < 8 {
        w *= 0.7;
    }
    let concrete = c.text.chars().any(|ch| ch.is_ascii_digit())
        || c.text
            .split_whitespace()
            .skip(1)
            .any(|w| w.starts_with(char::is_uppercase));
    if concrete {
        w *= 1.15;
    }
    w
}

/// A sentence that leans on the one before it ("However, ...", "This means ...").
fn opens_mid_thought(s: &str) -> bool {
    let first = s
        .split_whitespace()
        .next()
        .unwrap_or_default()
        .trim_end_matches(',')
        .to_lowercase();
    matches!(
        first.as_str(),
        "however"
            | "but"
            | "and"
            | "so"
            | "also"
            | "then"
            | "still"
            | "yet"
            | "this"
            | "that"
            | "these"
            | "those"
            | "it"
            | "they"
            | "he"
            | "she"
            | "instead"
            | "otherwise"
    )
}

/// When no whole sentence fits: the first candidate cut at a word boundary (the one summary
/// that is not whole sentences: an article made of one sentence longer than `max_words`).
fn fallback(cands: &[Candidate], limits: Limits) -> Option<String> {
    let first = &cands.first()?.text;
    let cut: Vec<&str> = first.split_whitespace().take(limits.max_words).collect();
    let mut t = cut.join(" ");
    if words(first) > limits.max_words {
        t = t.trim_end_matches([',', ';', ':']).to_string();
        t.push('…');
    }
    Some(t)
}
