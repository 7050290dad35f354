//! Sentence centrality: TextRank (Mihalcea and Tarau, 2004) over a graph whose edges weigh the
//! content words two sentences share, normalised by their lengths, with PageRank's damping.
//! A mild bonus for the lead follows, since news and blog posts tend to open with their point.

use std::collections::HashMap;

/// Common English words that carry no topic.
const STOP_WORDS: &[&str] = &[
    "a", "about", "above", "after", "again", "against", "all", "also", "am", "an", "and", "any",
    "are", "as", "at", "be", "because", "been", "before", "being", "below", "between", "both",
    "but", "by", "can", "could", "did", "do", "does", "doing", "down", "during", "each", "even",
    "few", "for", "from", "further", "had", "has", "have", "having", "he", "her", "here", "hers",
    "him", "his", "how", "however", "i", "if", "in", "into", "is", "it", "its", "itself", "just",
    "like", "many", "may", "me", "might", "more", "most", "much", "must", "my", "no", "nor", "not",
    "now", "of", "off", "on", "once", "one", "only", "or", "other", "our", "ours", "out", "over",
    "own", "same", "she", "should", "so", "some", "still", "such", "than", "that", "the", "their",
    "them", "then", "there", "these", "they", "this", "those", "through", "to", "too", "under",
    "until", "up", "upon", "us", "very", "was", "we", "well", "were", "what", "when", "where",
    "which", "while", "who", "whom", "why", "will", "with", "would", "yet", "you", "your", "yours",
    "get", "got", "make", "made", "use", "used", "using", "way", "new", "say", "said", "says",
    "thing", "things", "lot", "really", "every", "another", "since", "though",
];

/// Whether `w` (lower case) is a stop word.
pub fn is_stop_word(w: &str) -> bool {
    STOP_WORDS.contains(&w)
}

/// The content words of `text`: lower case, stop words out, a light suffix stem
/// ("queues" -> "queue", "scaling" -> "scal"), each once, sorted.
pub fn content_words(text: &str) -> Vec<String> {
    let mut out: Vec<String> = text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_lowercase)
        .filter(|w| !is_stop_word(w) && (w.chars().count() > 1 || w.chars().all(char::is_numeric)))
        .map(|w| stem(&w))
        .collect();
    out.sort();
    out.dedup();
    out
}

fn stem(w: &str) -> String {
    if w.chars().count() <= 4 || !w.is_ascii() {
        return w.to_string();
    }
    for suffix in ["ing", "ies", "es", "ed", "ly", "s"] {
        if let Some(s) = w.strip_suffix(suffix)
            && s.len() >= 3
        {
            return s.to_string();
        }
    }
    w.to_string()
}

/// Words two sorted, deduplicated lists share.
pub fn shared(a: &[String], b: &[String]) -> usize {
    let (mut i, mut j, mut n) = (0, 0, 0);
    while i < a.len() && j < b.len() {
        match a[i].cmp(&b[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                n += 1;
                i += 1;
                j += 1;
            }
        }
    }
    n
}

/// TextRank's edge weight: shared words over the sum of the log lengths.
fn similarity(a: &[String], b: &[String]) -> f64 {
    let n = shared(a, b);
    if n == 0 {
        return 0.0;
    }
    n as f64 / ((1.0 + a.len() as f64).ln() + (1.0 + b.len() as f64).ln())
}

/// Overlap of two word lists relative to the shorter one (0..=1), for redundancy checks.
pub fn overlap(a: &[String], b: &[String]) -> f64 {
    let shorter = a.len().min(b.len());
    if shorter == 0 {
        return 0.0;
    }
    shared(a, b) as f64 / shorter as f64
}

const DAMPING: f64 = 0.85;
const ITERATIONS: usize = 50;
/// The lead bonus: the first sentence scores up to 20% more, fading over the first dozen.
const LEAD_BONUS: f64 = 0.2;

/// A centrality score per sentence (same order as `words`), lead bonus included.
pub fn centrality(words: &[&[String]]) -> Vec<f64> {
    let n = words.len();
    if n == 0 {
        return Vec::new();
    }
    // Sparse graph through an inverted index: only sentences sharing a word are compared.
    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, ws) in words.iter().enumerate() {
        for w in *ws {
            index.entry(w.as_str()).or_default().push(i);
        }
    }
    let mut edges: Vec<Vec<(usize, f64)>> = vec![Vec::new(); n];
    let mut seen = vec![usize::MAX; n];
    for i in 0..n {
        for w in words[i] {
            for &j in index.get(w.as_str()).map(Vec::as_slice).unwrap_or_default() {
                if j <= i || seen[j] == i {
                    continue;
                }
                seen[j] = i;
                let s = similarity(words[i], words[j]);
                if s > 0.0 {
                    edges[i].push((j, s));
                    edges[j].push((i, s));
                }
            }
        }
    }
    let out_weight: Vec<f64> = edges
        .iter()
        .map(|e| e.iter().map(|(_, w)| w).sum())
        .collect();
    let mut score = vec![1.0; n];
    for _ in 0..ITERATIONS {
        let mut next = vec![1.0 - DAMPING; n];
        for (i, e) in edges.iter().enumerate() {
            for &(j, w) in e {
                if out_weight[j] > 0.0 {
                    next[i] += DAMPING * w / out_weight[j] * score[j];
                }
            }
        }
        let delta: f64 = next.iter().zip(&score).map(|(a, b)| (a - b).abs()).sum();
        score = next;
        if delta < 1e-6 {
            break;
        }
    }
    score
        .iter()
        .enumerate()
        .map(|(i, s)| s * (1.0 + LEAD_BONUS / (1.0 + i as f64 / 4.0)))
        .collect()
}
