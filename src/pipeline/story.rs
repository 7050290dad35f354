//! One entry per story: articles stored under different canonical URLs (the author's post and a
//! news article about it, a mirror, an HN item and a Lobsters item pointing at different copies)
//! are merged into one [`Article`] carrying every source, when they point at the same link
//! target ([`canonical::link_target`]: scheme, `m.`/`amp.` hosts, `/amp` and `index.html`
//! aside) or their normalised titles match closely ([`titles_match`]) and the story spans at
//! most [`MAX_DAYS_APART`] days. Near misses are never
//! merged: titles that differ in a number, a version, a part ("Part 1"/"Part 2") or a negation
//! stay apart. Pure: no I/O.
//!
//! Titles are lower-cased, stripped of "Show HN:"-style prefixes, trailing "(2019)" and
//! "[pdf]" tags, apostrophes and stop words, and each word is cut to a rough stem. Two titles
//! match when their markers (numbers, versions, part numbers, negations) are the same, in the
//! same order, they
//! share at least [`MIN_SHARED_WORDS`] words, and either their Jaccard similarity is at least
//! [`MIN_JACCARD`] or the shorter (of at least 3 words, at most half the longer's length
//! shorter) is at least [`MIN_CONTAINMENT`] contained in the longer. The thresholds were chosen
//! on the labelled pairs of this module's unit tests (see `docs/pipeline.md`).

use std::borrow::Cow;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Duration, Utc};

use super::canonical;
use crate::domain::{Article, ArticleSource};

/// Jaccard similarity of the word sets at or above which two titles match.
pub const MIN_JACCARD: f64 = 0.65;
/// Share of the shorter title's words found in the longer at or above which they match.
pub const MIN_CONTAINMENT: f64 = 0.8;
/// Words two titles must share at least to match.
pub const MIN_SHARED_WORDS: usize = 2;
/// Articles published further apart than this are never merged by title.
pub const MAX_DAYS_APART: i64 = 14;

/// Why two articles were merged into one entry.
#[derive(Clone, Debug, PartialEq)]
pub enum MergeReason {
    /// Both link to the same page (the link target, shown).
    SameLinkTarget(String),
    /// Their normalised titles match.
    TitlesMatch(TitleMatch),
}

impl fmt::Display for MergeReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MergeReason::SameLinkTarget(t) => write!(f, "both link to {t}"),
            MergeReason::TitlesMatch(m) => write!(
                f,
                "titles match: {} shared word(s) ({}), Jaccard {:.2}, containment {:.2}",
                m.shared.len(),
                m.shared.join(" "),
                m.jaccard,
                m.containment
            ),
        }
    }
}

/// How closely two titles match.
#[derive(Clone, Debug, PartialEq)]
pub struct TitleMatch {
    /// The normalised words both titles have.
    pub shared: Vec<String>,
    pub jaccard: f64,
    pub containment: f64,
}

/// An article merged into another's entry.
#[derive(Clone, Debug, PartialEq)]
pub struct Merged {
    pub article_id: i64,
    pub url: String,
    pub title: String,
    pub reason: MergeReason,
}

/// The articles of a period with stories merged: one [`Article`] per story, under the id,
/// URL and title of its representative (the article with the most sources, then the earliest,
/// then the lowest id), with every member's sources (one per source name: the one with the
/// most points), the earliest publication time and the first page found.
#[derive(Clone, Debug, Default)]
pub struct Stories<'a> {
    /// Borrowed as given when nothing merged, so no article is copied.
    pub articles: Cow<'a, [Article]>,
    /// Representative id -> the articles merged into it.
    pub merged: HashMap<i64, Vec<Merged>>,
}

impl Stories<'_> {
    /// The representative id of the story holding `article_id` (itself when not merged).
    pub fn story_of(&self, article_id: i64) -> i64 {
        self.merged
            .iter()
            .find(|(_, ms)| ms.iter().any(|m| m.article_id == article_id))
            .map_or(article_id, |(rep, _)| *rep)
    }

    /// `earlier` (article id -> an earlier issue that carried it) with every story whose member
    /// was carried counted as carried under its representative's id.
    pub fn remap_earlier(&self, earlier: &HashMap<i64, i64>) -> HashMap<i64, i64> {
        let mut out = earlier.clone();
        for (rep, members) in &self.merged {
            if out.contains_key(rep) {
                continue;
            }
            if let Some(issue) = members.iter().find_map(|m| earlier.get(&m.article_id)) {
                out.insert(*rep, *issue);
            }
        }
        out
    }
}

/// A title reduced to what matching compares.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TitleWords {
    /// Stemmed words without stop words, markers included.
    pub words: BTreeSet<String>,
    /// Numbers, versions, part numbers and negations, in title order: these must agree
    /// exactly ("story 2 of round 1" is not "story 1 of round 2").
    pub markers: Vec<String>,
}

const STOP_WORDS: &[&str] = &[
    "a",
    "about",
    "after",
    "all",
    "an",
    "and",
    "announcing",
    "are",
    "as",
    "at",
    "be",
    "been",
    "before",
    "but",
    "by",
    "can",
    "do",
    "does",
    "for",
    "from",
    "has",
    "have",
    "how",
    "i",
    "in",
    "introducing",
    "into",
    "is",
    "it",
    "its",
    "just",
    "me",
    "my",
    "of",
    "on",
    "or",
    "our",
    "out",
    "over",
    "released",
    "so",
    "than",
    "that",
    "the",
    "their",
    "this",
    "to",
    "up",
    "us",
    "using",
    "via",
    "vs",
    "was",
    "we",
    "what",
    "when",
    "where",
    "which",
    "who",
    "why",
    "will",
    "with",
    "you",
    "your",
];

const NEGATIONS: &[&str] = &[
    "not", "no", "never", "isnt", "dont", "doesnt", "cant", "cannot", "wont", "arent", "wasnt",
    "shouldnt", "without",
];

const PART_WORDS: &[&str] = &[
    "part", "chapter", "episode", "ep", "vol", "volume", "season", "lesson", "step", "issue",
    "day", "week", "no",
];

const HN_PREFIXES: &[&str] = &["show hn:", "ask hn:", "tell hn:", "launch hn:"];
const BRACKET_TAGS: &[&str] = &["pdf", "video", "audio", "slides", "paper", "book"];

fn small_number(word: &str) -> Option<&'static str> {
    Some(match word {
        "one" | "first" | "i" => "1",
        "two" | "second" | "ii" => "2",
        "three" | "third" | "iii" => "3",
        "four" | "fourth" | "iv" => "4",
        "five" | "fifth" | "v" => "5",
        "six" | "sixth" | "vi" => "6",
        "seven" | "seventh" | "vii" => "7",
        "eight" | "eighth" | "viii" => "8",
        "nine" | "ninth" | "ix" => "9",
        "ten" | "tenth" | "x" => "10",
        "xi" => "11",
        "xii" => "12",
        _ => return None,
    })
}

/// Roman numerals that stand alone as numbers ("Part II", "Rocky IV"); "i", "v" and "x" only
/// count after a part word.
fn roman(word: &str) -> Option<&'static str> {
    match word {
        "ii" | "iii" | "iv" | "vi" | "vii" | "viii" | "ix" | "xi" | "xii" => small_number(word),
        _ => None,
    }
}

/// A rough stem, the same for "release", "released" and "releases" or "scale" and "scaling".
fn stem(word: &str) -> String {
    let mut w = word.to_string();
    let n = w.chars().count();
    if n > 4 && w.ends_with("ies") {
        w.truncate(w.len() - 3);
        w.push('y');
        return w;
    }
    for (suffix, min) in [("ing", 6), ("ed", 5), ("es", 5), ("s", 4)] {
        if n >= min && w.ends_with(suffix) && !w.ends_with("ss") && !w.ends_with("us") {
            w.truncate(w.len() - suffix.len());
            break;
        }
    }
    if w.chars().count() > 4 && w.ends_with('e') {
        w.pop();
    }
    w
}

/// Removes "Show HN:"-style prefixes and trailing "(2019)" or "[pdf]" tags.
fn strip_decorations(lower: &str) -> &str {
    let mut t = lower.trim();
    for p in HN_PREFIXES {
        if let Some(rest) = t.strip_prefix(p) {
            t = rest.trim_start();
        }
    }
    loop {
        let trimmed = t.trim_end();
        let Some(close) = trimmed.chars().last().filter(|c| matches!(c, ')' | ']')) else {
            return trimmed;
        };
        let open = if close == ')' { '(' } else { '[' };
        let Some(start) = trimmed.rfind(open) else {
            return trimmed;
        };
        let inner = &trimmed[start + 1..trimmed.len() - 1];
        let year = inner.len() == 4 && inner.chars().all(|c| c.is_ascii_digit());
        if year || BRACKET_TAGS.contains(&inner) {
            t = &trimmed[..start];
        } else {
            return trimmed;
        }
    }
}

/// Splits into tokens: letters and digits, with `.` kept between digits ("1.80") and `,`
/// dropped between digits ("1,100"); apostrophes vanish ("don't" -> "dont").
fn tokens(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let mut out = Vec::new();
    let mut cur = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let between_digits = i > 0
            && chars[i - 1].is_ascii_digit()
            && chars.get(i + 1).is_some_and(|n| n.is_ascii_digit());
        if c.is_alphanumeric() {
            cur.push(c);
        } else if matches!(c, '\'' | '’' | '‘') {
        } else if c == '.' && between_digits {
            cur.push('.');
        } else if c == ',' && between_digits {
        } else if !cur.is_empty() {
            out.push(std::mem::take(&mut cur));
        }
    }
    if !cur.is_empty() {
        out.push(cur);
    }
    out
}

/// "v1.80.0" -> "1.80": a leading `v` before a digit and trailing `.0` groups dropped.
fn normalise_number(token: &str) -> String {
    let t = token
        .strip_prefix('v')
        .filter(|r| r.starts_with(|c: char| c.is_ascii_digit()))
        .unwrap_or(token);
    let mut t = t.to_string();
    while t.matches('.').count() > 1 && t.ends_with(".0") {
        t.truncate(t.len() - 2);
    }
    t
}

/// The words and markers of a title.
pub fn title_words(title: &str) -> TitleWords {
    let lower = title.to_lowercase();
    let mut out = TitleWords::default();
    let mut after_part_word = false;
    for token in tokens(strip_decorations(&lower)) {
        let was_after_part = after_part_word;
        after_part_word = PART_WORDS.contains(&token.as_str());
        let marker = if token.chars().any(|c| c.is_ascii_digit()) {
            Some(normalise_number(&token))
        } else if was_after_part {
            small_number(&token).map(str::to_string)
        } else if NEGATIONS.contains(&token.as_str()) {
            Some("not".to_string())
        } else {
            roman(&token).map(str::to_string)
        };
        if let Some(m) = marker {
            out.markers.push(m.clone());
            out.words.insert(m);
            continue;
        }
        if token.chars().count() < 2 || STOP_WORDS.contains(&token.as_str()) {
            continue;
        }
        out.words.insert(stem(&token));
    }
    out
}

/// How closely two titles match, when they do (see the module comment for the rule).
pub fn titles_match(a: &TitleWords, b: &TitleWords) -> Option<TitleMatch> {
    if a.markers != b.markers {
        return None;
    }
    let shared: Vec<String> = a.words.intersection(&b.words).cloned().collect();
    if shared.len() < MIN_SHARED_WORDS {
        return None;
    }
    let (small, large) = if a.words.len() <= b.words.len() {
        (a.words.len(), b.words.len())
    } else {
        (b.words.len(), a.words.len())
    };
    let union = small + large - shared.len();
    let jaccard = shared.len() as f64 / union as f64;
    let containment = shared.len() as f64 / small as f64;
    let contained = small >= 3 && large <= 2 * small && containment >= MIN_CONTAINMENT;
    (jaccard >= MIN_JACCARD || contained).then_some(TitleMatch {
        shared,
        jaccard,
        containment,
    })
}

/// Union-find over article indices, with each group's earliest and latest publication time.
struct Groups {
    parent: Vec<usize>,
    span: Vec<(DateTime<Utc>, DateTime<Utc>)>,
}

impl Groups {
    fn new(articles: &[Article]) -> Groups {
        Groups {
            parent: (0..articles.len()).collect(),
            span: articles
                .iter()
                .map(|a| (a.published_at, a.published_at))
                .collect(),
        }
    }

    fn find(&mut self, mut i: usize) -> usize {
        while self.parent[i] != i {
            self.parent[i] = self.parent[self.parent[i]];
            i = self.parent[i];
        }
        i
    }

    /// Joins the groups of `i` and `j` unless they are one already or, with `max_span`, the
    /// joined group would span more than that; true when joined.
    fn join(&mut self, i: usize, j: usize, max_span: Option<Duration>) -> bool {
        let (ri, rj) = (self.find(i), self.find(j));
        if ri == rj {
            return false;
        }
        let span = (
            self.span[ri].0.min(self.span[rj].0),
            self.span[ri].1.max(self.span[rj].1),
        );
        if max_span.is_some_and(|m| span.1 - span.0 > m) {
            return false;
        }
        self.parent[ri] = rj;
        self.span[rj] = span;
        true
    }
}

/// Merges the articles of one story into one entry (see [`Stories`]). Candidate pairs come
/// from an index of title words probed with each title's rarest words (prefix filtering: a
/// pair that can match shares one of the shorter title's rarest `n - ceil(0.65 n) + 1` words),
/// so the work stays near linear in the number of articles.
pub fn merge_stories(articles: Vec<Article>) -> Stories<'static> {
    merge_stories_of(Cow::Owned(articles))
}

/// [`merge_stories`] of borrowed or owned articles: borrowed ones are copied only when some
/// merge.
pub fn merge_stories_of(articles: Cow<'_, [Article]>) -> Stories<'_> {
    let n = articles.len();
    let words: Vec<TitleWords> = articles.iter().map(|a| title_words(&a.title)).collect();
    let mut groups = Groups::new(&articles);
    // (member index, representative-to-be index, reason), in the order found.
    let mut links: Vec<(usize, usize, MergeReason)> = Vec::new();

    let mut by_target: HashMap<String, usize> = HashMap::new();
    for (i, a) in articles.iter().enumerate() {
        let target = canonical::link_target(&a.canonical_url);
        match by_target.get(&target) {
            Some(&j) => {
                if groups.join(i, j, None) {
                    links.push((i, j, MergeReason::SameLinkTarget(target)));
                }
            }
            None => {
                by_target.insert(target, i);
            }
        }
    }

    let mut index: HashMap<&str, Vec<usize>> = HashMap::new();
    for (i, w) in words.iter().enumerate() {
        for word in &w.words {
            index.entry(word.as_str()).or_default().push(i);
        }
    }
    let max_apart = Duration::days(MAX_DAYS_APART);
    for i in 0..n {
        let mine = &words[i].words;
        if mine.len() < MIN_SHARED_WORDS {
            continue;
        }
        let mut rare: Vec<&str> = mine.iter().map(String::as_str).collect();
        rare.sort_by_key(|w| (index.get(w).map_or(0, Vec::len), *w));
        let need = (MIN_JACCARD.min(MIN_CONTAINMENT) * mine.len() as f64).ceil() as usize;
        let prefix = mine.len() + 1 - need.clamp(1, mine.len());
        let mut seen = BTreeSet::new();
        for w in &rare[..prefix] {
            for &j in index.get(w).map_or(&[][..], Vec::as_slice) {
                // Probe from the shorter title (ties both ways); each pair is judged once.
                if j == i || words[j].words.len() < mine.len() || !seen.insert(j) {
                    continue;
                }
                if groups.find(i) == groups.find(j) {
                    continue;
                }
                if let Some(m) = titles_match(&words[i], &words[j])
                    && groups.join(i, j, Some(max_apart))
                {
                    links.push((i, j, MergeReason::TitlesMatch(m)));
                }
            }
        }
    }
    if links.is_empty() {
        return Stories {
            articles,
            merged: HashMap::new(),
        };
    }
    assemble_stories(articles.into_owned(), groups, links)
}

/// Builds one article per group and the merge notes.
fn assemble_stories(
    articles: Vec<Article>,
    mut groups: Groups,
    links: Vec<(usize, usize, MergeReason)>,
) -> Stories<'static> {
    let n = articles.len();
    let mut members: HashMap<usize, Vec<usize>> = HashMap::new();
    for i in 0..n {
        let root = groups.find(i);
        members.entry(root).or_default().push(i);
    }
    // Why each article joined its story: the first link that names it (either side), by id.
    let mut reason_of: HashMap<i64, MergeReason> = HashMap::new();
    for (i, j, reason) in links {
        reason_of
            .entry(articles[i].id)
            .or_insert_with(|| reason.clone());
        reason_of.entry(articles[j].id).or_insert(reason);
    }
    let mut slots: Vec<Option<Article>> = articles.into_iter().map(Some).collect();
    let mut out = Vec::with_capacity(members.len());
    let mut merged = HashMap::new();
    // Stories keep the input order of their first article.
    let mut roots: Vec<Vec<usize>> = members.into_values().collect();
    roots.sort_by_key(|m| m[0]);
    for group in roots {
        let mut group: Vec<Article> = group.iter().filter_map(|&i| slots[i].take()).collect();
        if group.len() < 2 {
            out.extend(group);
            continue;
        }
        group.sort_by(|a, b| {
            b.sources
                .len()
                .cmp(&a.sources.len())
                .then(a.published_at.cmp(&b.published_at))
                .then(a.id.cmp(&b.id))
        });
        let rest = group.split_off(1);
        let Some(mut rep) = group.pop() else {
            continue;
        };
        let mut notes = Vec::with_capacity(rest.len());
        for m in rest {
            rep.published_at = rep.published_at.min(m.published_at);
            if rep.page.is_none() {
                rep.page = m.page;
            }
            for s in m.sources {
                add_source(&mut rep.sources, s);
            }
            let reason = reason_of
                .remove(&m.id)
                .or_else(|| reason_of.get(&rep.id).cloned());
            if let Some(reason) = reason {
                notes.push(Merged {
                    article_id: m.id,
                    url: m.url,
                    title: m.title,
                    reason,
                });
            }
        }
        rep.sources
            .sort_by(|a, b| a.source_name.cmp(&b.source_name));
        merged.insert(rep.id, notes);
        out.push(rep);
    }
    Stories {
        articles: Cow::Owned(out),
        merged,
    }
}

/// Adds a member's source to a story: one entry per source name, the one with more points.
fn add_source(sources: &mut Vec<ArticleSource>, s: ArticleSource) {
    match sources.iter_mut().find(|t| t.source_name == s.source_name) {
        Some(t) => {
            if s.points.unwrap_or(i64::MIN) > t.points.unwrap_or(i64::MIN) {
                *t = s;
            }
        }
        None => sources.push(s),
    }
}

#[cfg(test)]
mod tests;
