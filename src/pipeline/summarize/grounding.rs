//! Grounding checks for model summaries: every number and every capitalised name a summary
//! states must occur in the article (title, description or text). A summary that fails is
//! rejected and the extractive one used instead. Numbers compare by their digits ("1,100" is
//! 1100; "ten" counts for 10 up to twelve); names compare case-insensitively word by word
//! ("Cloudflare's" needs "cloudflare"). A capitalised word opening a sentence is checked only
//! when it is written like a name inside (an inner capital or a digit: "OpenAI", "GPT4"), since
//! any word may open a sentence.

use std::collections::HashSet;
use std::sync::LazyLock;

use regex::Regex;

static NUMBER: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\d+(?:[.,]\d+)*").expect("the number pattern is valid"));

const NUMBER_WORDS: &[&str] = &[
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten",
    "eleven", "twelve",
];

static THOUSANDS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{1,3}(,\d{3})+(\.\d+)?$").expect("the thousands pattern is valid")
});

/// A number as written, thousands separators out ("1,100" is "1100").
fn normal_number(n: &str) -> String {
    if THOUSANDS.is_match(n) {
        n.replace(',', "")
    } else {
        n.to_string()
    }
}

/// The numbers written in `text`, normalised.
fn numbers(text: &str) -> HashSet<String> {
    NUMBER
        .find_iter(text)
        .map(|m| normal_number(m.as_str().trim_end_matches(['.', ','])))
        .collect()
}

fn word_parts(text: &str) -> impl Iterator<Item = &str> {
    text.split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// The numbers and names in `summary` that `article` does not contain; empty when grounded.
pub fn ungrounded(summary: &str, article: &str) -> Vec<String> {
    let mut missing = Vec::new();
    let article_numbers = numbers(article);
    let article_words: HashSet<String> = word_parts(article).map(str::to_lowercase).collect();
    for n in numbers(summary) {
        let small_word = n
            .parse::<usize>()
            .ok()
            .and_then(|v| NUMBER_WORDS.get(v))
            .is_some_and(|w| article_words.contains(*w));
        if !article_numbers.contains(&n) && !small_word {
            missing.push(n);
        }
    }
    let mut sentence_start = true;
    for raw in summary.split_whitespace() {
        let opens = sentence_start;
        sentence_start = raw
            .trim_end_matches(['"', '\'', '”', '’', ')'])
            .ends_with(['.', '!', '?', ':']);
        for part in word_parts(raw) {
            let mut chars = part.chars();
            let Some(first) = chars.next() else {
                continue;
            };
            let inner_cap = chars.clone().any(char::is_uppercase);
            let has_digit = part.chars().any(|c| c.is_ascii_digit());
            let name_like = if opens {
                inner_cap || (first.is_uppercase() && has_digit)
            } else {
                first.is_uppercase() || inner_cap
            };
            if !name_like || part == "I" || part.chars().all(|c| c.is_ascii_digit()) {
                continue;
            }
            if !article_words.contains(&part.to_lowercase()) {
                missing.push(part.to_string());
            }
        }
    }
    missing.sort();
    missing.dedup();
    missing
}
