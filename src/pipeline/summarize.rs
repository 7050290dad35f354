//! Extractive summaries: one paragraph of 40-90 words from the page (description, then the
//! leading sentences of the main text, without boilerplate), else the source's own text, else a
//! factual line such as "Discussion on Hacker News: 240 comments". Pure: no I/O.

use crate::domain::Article;

pub const MIN_WORDS: usize = 40;
pub const MAX_WORDS: usize = 90;

const BOILERPLATE: &[&str] = &[
    "cookie",
    "subscribe",
    "sign up",
    "sign in",
    "log in",
    "newsletter",
    "javascript",
    "all rights reserved",
    "privacy policy",
    "terms of service",
    "advertisement",
    "share this",
    "click here",
    "skip to content",
    "read more",
    "copyright",
];

/// Splits text into sentences at `.`, `!` or `?` followed by white space.
pub fn sentences(text: &str) -> Vec<String> {
    let clean: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let mut out = Vec::new();
    let mut start = 0;
    let bytes = clean.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if matches!(b, b'.' | b'!' | b'?') && bytes.get(i + 1).is_none_or(|n| *n == b' ') {
            let s = clean[start..=i].trim();
            if !s.is_empty() {
                out.push(s.to_string());
            }
            start = i + 1;
        }
    }
    let rest = clean[start..].trim();
    if !rest.is_empty() {
        out.push(rest.to_string());
    }
    out
}

fn is_boilerplate(sentence: &str) -> bool {
    let words = sentence.split_whitespace().count();
    if words < 4 {
        return true;
    }
    // Whole words only: "design in" must not read as "sign in".
    let normal: String = sentence
        .to_lowercase()
        .chars()
        .map(|c| if c.is_alphanumeric() { c } else { ' ' })
        .collect();
    let padded = format!(
        " {} ",
        normal.split_whitespace().collect::<Vec<_>>().join(" ")
    );
    BOILERPLATE
        .iter()
        .any(|b| padded.contains(&format!(" {b}")))
}

fn words(s: &str) -> usize {
    s.split_whitespace().count()
}

/// Joins sentences until at least `MIN_WORDS` words, never more than `MAX_WORDS`.
fn assemble(candidates: impl IntoIterator<Item = String>) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut count = 0;
    for s in candidates {
        if count >= MIN_WORDS {
            break;
        }
        if parts.iter().any(|p| p.eq_ignore_ascii_case(&s)) {
            continue;
        }
        let n = words(&s);
        if count + n <= MAX_WORDS {
            parts.push(s);
            count += n;
        } else {
            let take = MAX_WORDS - count;
            let cut: Vec<&str> = s.split_whitespace().take(take).collect();
            let mut t = cut.join(" ");
            t = t.trim_end_matches([',', ';', ':']).to_string();
            t.push('…');
            parts.push(t);
            break;
        }
    }
    parts.join(" ")
}

fn page_sentences(article: &Article) -> Vec<String> {
    let mut out = Vec::new();
    if let Some(p) = &article.page {
        if let Some(d) = &p.description {
            out.extend(sentences(d).into_iter().filter(|s| words(s) >= 3));
        }
        if let Some(t) = &p.text {
            out.extend(sentences(t).into_iter().filter(|s| !is_boilerplate(s)));
        }
    }
    out
}

fn source_sentences(article: &Article) -> Vec<String> {
    article
        .sources
        .iter()
        .filter_map(|s| s.text.as_deref())
        .flat_map(sentences)
        .filter(|s| !is_boilerplate(s))
        .collect()
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

/// The extractive summary of one article.
pub fn extractive_summary(article: &Article) -> String {
    let page = page_sentences(article);
    let source = source_sentences(article);
    let summary = if !page.is_empty() {
        assemble(page.into_iter().chain(source))
    } else if !source.is_empty() {
        assemble(source)
    } else {
        String::new()
    };
    if summary.is_empty() {
        factual_line(article)
    } else {
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ArticleSource, PageInfo};
    use chrono::Utc;

    fn article(page: Option<PageInfo>, text: Option<&str>, comments: Option<i64>) -> Article {
        Article {
            id: 1,
            canonical_url: "https://e.com/a".into(),
            url: "https://e.com/a".into(),
            title: "A".into(),
            domain: "e.com".into(),
            published_at: Utc::now(),
            sources: vec![ArticleSource {
                source_name: "Hacker News".into(),
                source_kind: "hackernews".into(),
                external_id: "1".into(),
                points: Some(10),
                comments,
                discussion_url: None,
                text: text.map(str::to_string),
                tags: vec![],
                published_at: Utc::now(),
            }],
            page,
        }
    }

    fn long_text(n: usize) -> String {
        (0..n)
            .map(|i| format!("Sentence number {i} explains the system design in detail."))
            .collect::<Vec<_>>()
            .join(" ")
    }

    #[test]
    fn page_summary_is_40_to_90_words_without_boilerplate() {
        let page = PageInfo {
            description: Some("A short description of the article.".into()),
            text: Some(format!(
                "Accept all cookies to continue reading this page. {}",
                long_text(30)
            )),
            ..Default::default()
        };
        let s = extractive_summary(&article(Some(page), None, None));
        let n = words(&s);
        assert!((MIN_WORDS..=MAX_WORDS).contains(&n), "{n}: {s}");
        assert!(s.starts_with("A short description"));
        assert!(!s.to_lowercase().contains("cookie"));
    }

    #[test]
    fn one_huge_sentence_is_capped() {
        let page = PageInfo {
            description: None,
            text: Some(vec!["word"; 500].join(" ")),
            ..Default::default()
        };
        let s = extractive_summary(&article(Some(page), None, None));
        assert!(words(&s) <= MAX_WORDS);
        assert!(s.ends_with('…'));
    }

    #[test]
    fn falls_back_to_source_text_then_facts() {
        let s = extractive_summary(&article(
            None,
            Some("I built a tiny database in a weekend. It was fun."),
            Some(5),
        ));
        assert!(s.starts_with("I built a tiny database"));
        let s = extractive_summary(&article(None, None, Some(240)));
        assert_eq!(s, "Discussion on Hacker News: 240 comments");
    }

    #[test]
    fn splits_sentences() {
        assert_eq!(
            sentences("One. Two!  Three? v1.2 is out"),
            vec!["One.", "Two!", "Three?", "v1.2 is out"]
        );
    }
}
