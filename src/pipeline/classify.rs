//! Topic membership: an article belongs to a topic when one of its keywords or phrases occurs as
//! a whole word (case-insensitive) in the title, a source's text or the page description/text, or
//! a source tag or the domain is listed, and no exclude term occurs anywhere. Pure: no I/O.
//!
//! "Whole word" means the characters around a match are not alphanumeric (or are the ends of the
//! text), so `fault-tolerant` and `node.js` match as written; there is no stemming.
//!
//! All keywords and exclude terms of all topics go into one byte trie, so each article's text is
//! scanned once whatever the number of topics and keywords. Since a whole-word match can only
//! start where the previous character is not alphanumeric, the trie is walked only from those
//! positions (mostly word starts), and most walks end after a byte or two; ASCII text is matched
//! case-insensitively in place, other text is lower-cased once into a reused buffer. A
//! [`Scanner`] keeps its buffers across articles, so deciding membership allocates nothing.

use std::collections::HashMap;

use crate::config::TopicSettings;
use crate::domain::Article;

/// A title match counts this much; a body match counts 1.
pub const TITLE_WEIGHT: f64 = 3.0;
/// A listed source tag or domain counts this much.
pub const TAG_OR_DOMAIN_WEIGHT: f64 = 2.0;

/// The text of one article as classification sees it.
#[derive(Clone, Debug, Default)]
pub struct ArticleText<'a> {
    pub title: &'a str,
    /// Source texts, page description, page text.
    pub body: Vec<&'a str>,
    pub tags: Vec<&'a str>,
    pub domain: &'a str,
}

impl<'a> ArticleText<'a> {
    pub fn of(article: &'a Article) -> ArticleText<'a> {
        let mut body = Vec::new();
        let mut tags = Vec::new();
        for s in &article.sources {
            if let Some(t) = s.text.as_deref() {
                body.push(t);
            }
            tags.extend(s.tags.iter().map(String::as_str));
        }
        if let Some(p) = &article.page {
            if let Some(d) = p.description.as_deref() {
                body.push(d);
            }
            if let Some(t) = p.text.as_deref() {
                body.push(t);
            }
        }
        ArticleText {
            title: &article.title,
            body,
            tags,
            domain: &article.domain,
        }
    }
}

/// Why an article is or is not in one topic.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct TopicMatch {
    /// Index of the topic in the slice the classifier was built from.
    pub topic: usize,
    pub title_keywords: Vec<String>,
    pub body_keywords: Vec<String>,
    pub tags: Vec<String>,
    pub domain: Option<String>,
    pub excluded_by: Vec<String>,
}

impl TopicMatch {
    /// Some keyword, tag or domain matched and no exclude term occurred.
    pub fn is_member(&self) -> bool {
        self.has_signal() && self.excluded_by.is_empty()
    }

    pub fn has_signal(&self) -> bool {
        !(self.title_keywords.is_empty()
            && self.body_keywords.is_empty()
            && self.tags.is_empty()
            && self.domain.is_none())
    }

    /// Title matches weigh more than body matches.
    pub fn relevance(&self) -> f64 {
        self.title_keywords.len() as f64 * TITLE_WEIGHT
            + self.body_keywords.len() as f64
            + (self.tags.len() + usize::from(self.domain.is_some())) as f64 * TAG_OR_DOMAIN_WEIGHT
    }
}

struct TopicRules {
    keywords: Vec<String>,
    /// The term id of each keyword (same order as `keywords`).
    keyword_terms: Vec<u32>,
    exclude: Vec<String>,
    exclude_terms: Vec<u32>,
    tags: Vec<String>,
    domains: Vec<String>,
}

impl TopicRules {
    fn tag_matches(&self, text: &ArticleText<'_>) -> Vec<String> {
        self.tags
            .iter()
            .filter(|t| text.tags.iter().any(|s| s.trim().eq_ignore_ascii_case(t)))
            .cloned()
            .collect()
    }

    fn has_tag<'t>(&self, mut tags: impl Iterator<Item = &'t str>) -> bool {
        !self.tags.is_empty()
            && tags.any(|s| {
                let s = s.trim();
                self.tags.iter().any(|t| s.eq_ignore_ascii_case(t))
            })
    }

    /// The listed domain this article's domain is, or is a subdomain of.
    fn domain_match(&self, domain: &str) -> Option<&String> {
        let dom = domain.as_bytes();
        self.domains.iter().find(|d| {
            let d = d.as_bytes();
            dom.eq_ignore_ascii_case(d)
                || (dom.len() > d.len()
                    && dom[dom.len() - d.len() - 1] == b'.'
                    && dom[dom.len() - d.len()..].eq_ignore_ascii_case(d))
        })
    }
}

/// What each term means to each topic.
#[derive(Clone, Copy, Debug)]
enum Role {
    Keyword,
    Exclude,
}

/// A byte trie over every distinct term, walked from each position where a whole-word match can
/// start. Transitions are dense rows over byte classes: `next[row + class]` is the target's row
/// (its state number times `classes`), with [`TERM_BIT`] set when a term ends there, and 0 for
/// "no transition" (the root, row 0, is never a target).
struct Trie {
    /// ASCII-case-folded byte -> class; class 0 is a byte that no term contains.
    class: [u16; 256],
    /// Per byte: [`ALNUM`] (ASCII alphanumeric) and [`START`] (a term starts with it, folded).
    flags: [u8; 256],
    classes: usize,
    next: Vec<u32>,
    /// The term ending at each state (indexed by row / classes), or `NO_TERM`.
    term_at: Vec<u32>,
    /// For ASCII text: terms by their leading word.
    words: WordIndex,
}

/// Terms by their leading run of ASCII alphanumerics, for ASCII text. A term that starts at a
/// word start and passes the whole-word check has exactly that word as its leading run (the run
/// either is the whole term, or is followed by a non-alphanumeric byte the text must repeat), so
/// one hash probe per word finds every candidate, which is then compared in full. Terms that
/// start with a non-alphanumeric byte are found by the trie walk instead.
struct WordIndex {
    /// Open addressing, a power of two in size, at most a third full: the tag of each slot's
    /// word (see [`word_tag`]; 0 = empty), probed first and small enough to stay in L1 cache.
    tags: Vec<u64>,
    /// Per slot: the word's length and its candidate terms, `first..first + count`.
    slots: Vec<WordSlot>,
    shift: u32,
    candidates: Vec<u32>,
    terms: Vec<Box<[u8]>>,
}

#[derive(Clone, Copy, Default)]
struct WordSlot {
    len: usize,
    first: u32,
    count: u32,
}

const LOW_BITS: u64 = 0x0101_0101_0101_0101;
const HIGH_BITS: u64 = 0x8080_8080_8080_8080;

/// Per byte of `x` (all ASCII): bit 7 set when the byte is at least `c` (1..=0x80). Adding
/// `0x80 - c` to a byte below 0x80 never carries into the next byte.
#[inline(always)]
fn bytes_at_least(x: u64, c: u8) -> u64 {
    x.wrapping_add(LOW_BITS * u64::from(0x80 - c)) & HIGH_BITS
}

/// Per byte of `x` (all ASCII): bit 7 set when the byte is an ASCII letter or digit.
#[inline(always)]
fn ascii_alnum_bytes(x: u64) -> u64 {
    let digit = bytes_at_least(x, b'0') & !bytes_at_least(x, b'9' + 1);
    let folded = x | (LOW_BITS * 0x20);
    let letter = bytes_at_least(folded, b'a') & !bytes_at_least(folded, b'z' + 1);
    digit | letter
}

/// The end of the run of ASCII alphanumerics starting at or before `from` in ASCII `hay`:
/// eight bytes at a time, so the end of a word costs no mispredicted branch per byte.
#[inline(always)]
fn word_end(hay: &[u8], mut from: usize, flags: &[u8; 256]) -> usize {
    while let Some(b) = hay.get(from..from + 8) {
        let x = u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]);
        let other = !ascii_alnum_bytes(x) & HIGH_BITS;
        if other != 0 {
            return from + (other.trailing_zeros() / 8) as usize;
        }
        from += 8;
    }
    while from < hay.len() && flags[usize::from(hay[from])] & ALNUM != 0 {
        from += 1;
    }
    from
}

/// The first 8 bytes of an ASCII alphanumeric word, lower-cased (`| 0x20` lower-cases letters
/// and leaves digits alone), packed little-endian; a word shorter than 8 bytes has its length in
/// the top byte (1-7, which no alphanumeric byte can be), so the tag is never 0.
#[inline(always)]
fn word_tag(hay: &[u8], start: usize, len: usize) -> u64 {
    let k = len.min(8);
    let raw = match hay.get(start..start + 8) {
        Some(b) => u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]]),
        None => {
            let mut buf = [0u8; 8];
            buf[..k].copy_from_slice(&hay[start..start + k]);
            u64::from_le_bytes(buf)
        }
    };
    if k == 8 {
        raw | 0x2020_2020_2020_2020
    } else {
        ((raw | 0x2020_2020_2020_2020) & ((1u64 << (8 * k)) - 1)) | ((k as u64) << 56)
    }
}

impl WordIndex {
    fn new(terms: &[String]) -> WordIndex {
        let mut groups: HashMap<(u64, usize), Vec<u32>> = HashMap::new();
        for (id, t) in terms.iter().enumerate() {
            let b = t.as_bytes();
            let lead = b.iter().take_while(|c| c.is_ascii_alphanumeric()).count();
            if lead > 0 {
                groups
                    .entry((word_tag(b, 0, lead), lead))
                    .or_default()
                    .push(u32::try_from(id).unwrap_or(u32::MAX));
            }
        }
        let size = (groups.len() * 3).next_power_of_two().max(16);
        let mut index = WordIndex {
            tags: vec![0; size],
            slots: vec![WordSlot::default(); size],
            shift: 64 - size.trailing_zeros(),
            candidates: Vec::new(),
            terms: terms.iter().map(|t| t.as_bytes().into()).collect(),
        };
        let mut groups: Vec<_> = groups.into_iter().collect();
        groups.sort();
        for ((tag, len), ids) in groups {
            let mut i = index.home(tag);
            while index.tags[i] != 0 {
                i = (i + 1) & (size - 1);
            }
            index.tags[i] = tag;
            index.slots[i] = WordSlot {
                len,
                first: u32::try_from(index.candidates.len()).unwrap_or(u32::MAX),
                count: u32::try_from(ids.len()).unwrap_or(u32::MAX),
            };
            index.candidates.extend(ids);
        }
        index
    }

    #[inline(always)]
    fn home(&self, tag: u64) -> usize {
        (tag.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> self.shift) as usize
    }

    /// Every term starting with the word `hay[start..end]` that occurs there as a whole word.
    #[inline(always)]
    fn lookup(
        &self,
        hay: &[u8],
        start: usize,
        end: usize,
        end_ok: impl Fn(usize) -> bool,
        found: &mut impl FnMut(u32),
    ) {
        let len = end - start;
        let tag = word_tag(hay, start, len);
        let mask = self.tags.len() - 1;
        let mut i = self.home(tag);
        loop {
            let t = self.tags[i];
            if t == 0 {
                return;
            }
            if t == tag && self.slots[i].len == len {
                let slot = self.slots[i];
                let first = slot.first as usize;
                for &id in &self.candidates[first..first + slot.count as usize] {
                    let t = &self.terms[id as usize];
                    if hay
                        .get(start..start + t.len())
                        .is_some_and(|w| w.eq_ignore_ascii_case(t))
                        && end_ok(start + t.len())
                    {
                        found(id);
                    }
                }
                return;
            }
            i = (i + 1) & mask;
        }
    }
}

const NO_TERM: u32 = u32::MAX;
const TERM_BIT: u32 = 1 << 31;
const ALNUM: u8 = 1;
const START: u8 = 2;

impl Trie {
    fn new(terms: &[String]) -> anyhow::Result<Trie> {
        let too_big = || anyhow::anyhow!("too many keywords to build the matcher");
        let mut present = [false; 256];
        for t in terms {
            for &b in t.as_bytes() {
                present[usize::from(b)] = true;
            }
        }
        let mut raw = [0u16; 256];
        let mut classes = 1usize;
        for (b, p) in present.iter().enumerate() {
            if *p {
                raw[b] = u16::try_from(classes).map_err(|_| too_big())?;
                classes += 1;
            }
        }
        let mut trie = Trie {
            class: [0; 256],
            flags: [0; 256],
            classes,
            next: vec![0; classes],
            term_at: vec![NO_TERM],
            words: WordIndex::new(terms),
        };
        for b in 0..=255u8 {
            trie.class[usize::from(b)] = raw[usize::from(b.to_ascii_lowercase())];
        }
        for (id, t) in terms.iter().enumerate() {
            let mut row = 0usize;
            for &b in t.as_bytes() {
                let slot = row + usize::from(raw[usize::from(b)]);
                if trie.next[slot] == 0 {
                    let new_row = trie.next.len();
                    if new_row + classes > TERM_BIT as usize {
                        return Err(too_big());
                    }
                    trie.next.extend(std::iter::repeat_n(0, classes));
                    trie.term_at.push(NO_TERM);
                    trie.next[slot] = u32::try_from(new_row).map_err(|_| too_big())?;
                }
                row = (trie.next[slot] & !TERM_BIT) as usize;
            }
            trie.term_at[row / classes] = u32::try_from(id).map_err(|_| too_big())?;
        }
        // Mark the transitions into states where a term ends.
        for t in trie.next.iter_mut() {
            if *t != 0 && trie.term_at[*t as usize / classes] != NO_TERM {
                *t |= TERM_BIT;
            }
        }
        for b in 0..=255u8 {
            let mut f = 0;
            if b.is_ascii_alphanumeric() {
                f |= ALNUM;
            }
            if trie.next[usize::from(trie.class[usize::from(b)])] != 0 {
                f |= START;
            }
            trie.flags[usize::from(b)] = f;
        }
        Ok(trie)
    }

    /// Every term that starts at `start` in `hay`, calling `found` for those whose end passes
    /// `end_ok` (the whole-word check on the following character).
    #[inline(always)]
    fn walk(
        &self,
        hay: &[u8],
        start: usize,
        end_ok: impl Fn(usize) -> bool,
        found: &mut impl FnMut(u32),
    ) {
        let mut row = 0usize;
        for (q, &b) in hay.iter().enumerate().skip(start) {
            let t = self.next[row + usize::from(self.class[usize::from(b)])];
            if t == 0 {
                return;
            }
            row = (t & !TERM_BIT) as usize;
            if t & TERM_BIT != 0 && end_ok(q + 1) {
                found(self.term_at[row / self.classes]);
            }
        }
    }

    /// Reports every whole-word occurrence of a term in ASCII text (ASCII case-insensitive).
    /// Each word (run of alphanumerics) costs one probe of the word index; the trie is walked
    /// only from non-alphanumeric bytes that follow another one (terms such as `.net`).
    fn scan_ascii(&self, hay: &[u8], found: &mut impl FnMut(u32)) {
        let flags = &self.flags;
        let end_ok = |q: usize| {
            hay.get(q)
                .is_none_or(|b| flags[usize::from(*b)] & ALNUM == 0)
        };
        let n = hay.len();
        let mut p = 0;
        while p < n {
            let f = flags[usize::from(hay[p])];
            if f & ALNUM != 0 {
                let e = word_end(hay, p + 1, flags);
                self.words.lookup(hay, p, e, end_ok, found);
                // hay[e] ends the word; it follows an alphanumeric byte, so it starts nothing.
                p = e + 1;
            } else {
                if f & START != 0 {
                    self.walk(hay, p, end_ok, found);
                }
                p += 1;
            }
        }
    }

    /// The same for text that was lower-cased with `str::to_lowercase` (any Unicode): words are
    /// bounded by characters that are not alphanumeric.
    fn scan_lowered(&self, lower: &str, found: &mut impl FnMut(u32)) {
        let hay = lower.as_bytes();
        let end_ok = |q: usize| {
            lower
                .get(q..)
                .is_some_and(|rest| !rest.chars().next().is_some_and(char::is_alphanumeric))
        };
        let mut prev_alnum = false;
        for (p, c) in lower.char_indices() {
            if !prev_alnum && self.flags[usize::from(hay[p])] & START != 0 {
                self.walk(hay, p, end_ok, found);
            }
            prev_alnum = c.is_alphanumeric();
        }
    }
}

/// `s.to_lowercase()` into a reusable buffer: per character, except that a capital sigma (whose
/// lower case depends on its neighbours) goes through `str::to_lowercase` itself.
fn lowercase_into(s: &str, buf: &mut String) {
    buf.clear();
    if s.contains('\u{3a3}') {
        buf.push_str(&s.to_lowercase());
    } else {
        for c in s.chars() {
            buf.extend(c.to_lowercase());
        }
    }
}

/// Classifies articles into any number of topics in one pass per article.
pub struct Classifier {
    topics: Vec<TopicRules>,
    trie: Option<Trie>,
    /// For each term: every (topic, role) that listed it.
    roles: Vec<Vec<(usize, Role)>>,
    /// Whether any topic lists tags or domains (otherwise those checks are skipped).
    any_tags_or_domains: bool,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("topics", &self.topics.len())
            .field("terms", &self.roles.len())
            .finish()
    }
}

fn norm_term(t: &str) -> Option<String> {
    let t = t.trim().to_lowercase();
    (!t.is_empty()).then_some(t)
}

impl Classifier {
    pub fn new(topics: &[TopicSettings]) -> anyhow::Result<Classifier> {
        let mut terms: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut roles: Vec<Vec<(usize, Role)>> = Vec::new();
        let mut rules = Vec::with_capacity(topics.len());
        for (ti, t) in topics.iter().enumerate() {
            let keywords: Vec<String> = t.keywords.iter().filter_map(|k| norm_term(k)).collect();
            let exclude: Vec<String> = t.exclude.iter().filter_map(|k| norm_term(k)).collect();
            let (mut keyword_terms, mut exclude_terms) = (Vec::new(), Vec::new());
            for (list, role, ids) in [
                (&keywords, Role::Keyword, &mut keyword_terms),
                (&exclude, Role::Exclude, &mut exclude_terms),
            ] {
                for term in list {
                    let id = match index.get(term) {
                        Some(id) => *id,
                        None => {
                            let id = u32::try_from(terms.len()).map_err(|_| {
                                anyhow::anyhow!("too many keywords to build the matcher")
                            })?;
                            terms.push(term.clone());
                            roles.push(Vec::new());
                            index.insert(term.clone(), id);
                            id
                        }
                    };
                    roles[id as usize].push((ti, role));
                    ids.push(id);
                }
            }
            rules.push(TopicRules {
                keywords,
                keyword_terms,
                exclude,
                exclude_terms,
                tags: t.tags.iter().filter_map(|k| norm_term(k)).collect(),
                domains: t
                    .domains
                    .iter()
                    .filter_map(|d| norm_term(d))
                    .map(|d| d.trim_start_matches("www.").to_string())
                    .collect(),
            });
        }
        let any_tags_or_domains = rules
            .iter()
            .any(|r| !r.tags.is_empty() || !r.domains.is_empty());
        Ok(Classifier {
            topics: rules,
            trie: if terms.is_empty() {
                None
            } else {
                Some(Trie::new(&terms)?)
            },
            roles,
            any_tags_or_domains,
        })
    }

    /// A scanner with reusable buffers, for classifying many articles without allocating.
    pub fn scanner(&self) -> Scanner<'_> {
        Scanner {
            classifier: self,
            generation: 0,
            seen: vec![0; self.roles.len()],
            in_title: vec![0; self.roles.len()],
            in_body: vec![0; self.roles.len()],
            hits: Vec::new(),
            keyword_hit: vec![0; self.topics.len()],
            excluded: vec![0; self.topics.len()],
            lower: String::new(),
        }
    }

    /// The topics this article shows any signal for (member or excluded), in topic order.
    pub fn classify(&self, text: &ArticleText<'_>) -> Vec<TopicMatch> {
        let mut scanner = self.scanner();
        scanner.scan(text.title, text.body.iter().copied());
        let generation = scanner.generation;
        let mut out = Vec::new();
        for (ti, rules) in self.topics.iter().enumerate() {
            let tags = rules.tag_matches(text);
            let domain = rules.domain_match(text.domain).cloned();
            let pick = |terms: &[String], ids: &[u32], stamps: &[u32]| -> Vec<String> {
                terms
                    .iter()
                    .zip(ids)
                    .filter(|(_, id)| stamps[**id as usize] == generation)
                    .map(|(t, _)| t.clone())
                    .collect()
            };
            let title_keywords = pick(&rules.keywords, &rules.keyword_terms, &scanner.in_title);
            let body_keywords: Vec<String> =
                pick(&rules.keywords, &rules.keyword_terms, &scanner.in_body)
                    .into_iter()
                    .filter(|k| !title_keywords.contains(k))
                    .collect();
            let excluded_by = pick(&rules.exclude, &rules.exclude_terms, &scanner.seen);
            let m = TopicMatch {
                topic: ti,
                title_keywords,
                body_keywords,
                tags,
                domain,
                excluded_by,
            };
            if m.has_signal() || !m.excluded_by.is_empty() {
                out.push(m);
            }
        }
        out
    }

    /// The match for one topic, with empty lists when nothing matched.
    pub fn classify_topic(&self, text: &ArticleText<'_>, topic: usize) -> TopicMatch {
        self.classify(text)
            .into_iter()
            .find(|m| m.topic == topic)
            .unwrap_or(TopicMatch {
                topic,
                ..TopicMatch::default()
            })
    }
}

/// Scans articles for a [`Classifier`] with buffers reused from one article to the next: term
/// hits are stamped with a per-article generation instead of being cleared, and non-ASCII text
/// is lower-cased into one reused string. Membership needs no allocation at all.
pub struct Scanner<'c> {
    classifier: &'c Classifier,
    generation: u32,
    /// Per term: the generation in which it last occurred anywhere / in the title.
    seen: Vec<u32>,
    in_title: Vec<u32>,
    in_body: Vec<u32>,
    /// Terms seen in this generation.
    hits: Vec<u32>,
    /// Per topic: the generation in which a keyword / an exclude term last occurred.
    keyword_hit: Vec<u32>,
    excluded: Vec<u32>,
    lower: String,
}

impl std::fmt::Debug for Scanner<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scanner")
            .field("generation", &self.generation)
            .finish()
    }
}

impl Scanner<'_> {
    fn next_generation(&mut self) {
        if self.generation == u32::MAX {
            for v in [
                &mut self.seen,
                &mut self.in_title,
                &mut self.in_body,
                &mut self.keyword_hit,
                &mut self.excluded,
            ] {
                v.fill(0);
            }
            self.generation = 0;
        }
        self.generation += 1;
        self.hits.clear();
    }

    /// Stamps every term occurring as a whole word in the title or a body text.
    fn scan<'t>(&mut self, title: &str, body: impl Iterator<Item = &'t str>) {
        self.next_generation();
        let Some(trie) = &self.classifier.trie else {
            return;
        };
        let generation = self.generation;
        let (seen, in_title, in_body, hits, lower) = (
            &mut self.seen,
            &mut self.in_title,
            &mut self.in_body,
            &mut self.hits,
            &mut self.lower,
        );
        let mut scan_one = |text: &str, title: bool| {
            let mut found = |term: u32| {
                let t = term as usize;
                if seen[t] != generation {
                    seen[t] = generation;
                    hits.push(term);
                }
                if title {
                    in_title[t] = generation;
                } else {
                    in_body[t] = generation;
                }
            };
            if text.is_ascii() {
                trie.scan_ascii(text.as_bytes(), &mut found);
            } else {
                lowercase_into(text, lower);
                trie.scan_lowered(lower, &mut found);
            }
        };
        scan_one(title, true);
        for b in body {
            scan_one(b, false);
        }
    }

    /// The topics `article` belongs to (a keyword, tag or domain matched and no exclude term
    /// occurred), in topic order, into `out`. Same decision as [`TopicMatch::is_member`].
    pub fn members(&mut self, article: &Article, out: &mut Vec<usize>) {
        out.clear();
        let bodies = article
            .sources
            .iter()
            .filter_map(|s| s.text.as_deref())
            .chain(article.page.iter().flat_map(|p| {
                p.description
                    .as_deref()
                    .into_iter()
                    .chain(p.text.as_deref())
            }));
        self.scan(&article.title, bodies);
        let generation = self.generation;
        let classifier = self.classifier;
        for &term in &self.hits {
            for &(ti, role) in &classifier.roles[term as usize] {
                match role {
                    Role::Keyword => self.keyword_hit[ti] = generation,
                    Role::Exclude => self.excluded[ti] = generation,
                }
            }
        }
        for (ti, rules) in classifier.topics.iter().enumerate() {
            if self.excluded[ti] == generation {
                continue;
            }
            let member = self.keyword_hit[ti] == generation
                || (classifier.any_tags_or_domains
                    && (rules.domain_match(&article.domain).is_some()
                        || rules.has_tag(
                            article
                                .sources
                                .iter()
                                .flat_map(|s| s.tags.iter().map(String::as_str)),
                        )));
            if member {
                out.push(ti);
            }
        }
    }
}

/// Reports every whole-word occurrence of any term in `haystack` (for tests and `classify`).
#[cfg(test)]
fn scan_terms(trie: &Trie, haystack: &str, found: &mut impl FnMut(u32)) {
    if haystack.is_ascii() {
        trie.scan_ascii(haystack.as_bytes(), found);
    } else {
        let mut lower = String::new();
        lowercase_into(haystack, &mut lower);
        trie.scan_lowered(&lower, found);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(keywords: &[&str], exclude: &[&str]) -> TopicSettings {
        TopicSettings {
            slug: crate::domain::TopicSlug::parse("t").unwrap(),
            name: "T".into(),
            description: String::new(),
            keywords: keywords.iter().map(|s| s.to_string()).collect(),
            exclude: exclude.iter().map(|s| s.to_string()).collect(),
            tags: vec!["distributed".into()],
            domains: vec!["jepsen.io".into()],
            window_days: 7,
            limit: 20,
            max_per_domain: 3,
            repeat: false,
            cron: None,
            deliver_at_local: None,
        }
    }

    fn text<'a>(title: &'a str, body: &'a str) -> ArticleText<'a> {
        ArticleText {
            title,
            body: vec![body],
            tags: vec![],
            domain: "example.com",
        }
    }

    #[test]
    fn whole_words_only_case_insensitive() {
        let c = Classifier::new(&[topic(
            &["raft", "node.js", "fault-tolerant", "consensus algorithm"],
            &[],
        )])
        .unwrap();
        assert!(
            c.classify_topic(&text("Implementing RAFT in Go", ""), 0)
                .is_member()
        );
        assert!(
            !c.classify_topic(&text("Aircraft design and crafts", ""), 0)
                .is_member()
        );
        assert!(
            c.classify_topic(&text("x", "Why Node.js streams"), 0)
                .is_member()
        );
        assert!(!c.classify_topic(&text("x", "nodexjs"), 0).is_member());
        assert!(
            c.classify_topic(&text("A fault-tolerant queue", ""), 0)
                .is_member()
        );
        assert!(
            c.classify_topic(&text("x", "a new Consensus Algorithm."), 0)
                .is_member()
        );
        assert!(
            !c.classify_topic(&text("x", "consensus algorithms"), 0)
                .is_member(),
            "no stemming"
        );
        assert!(c.classify_topic(&text("(raft)", ""), 0).is_member());
    }

    #[test]
    fn title_outweighs_body_and_body_counts() {
        let c = Classifier::new(&[topic(&["raft"], &[])]).unwrap();
        let t = c.classify_topic(&text("Raft explained", ""), 0);
        let b = c.classify_topic(&text("Explained", "about raft"), 0);
        assert_eq!(t.title_keywords, vec!["raft"]);
        assert_eq!(b.body_keywords, vec!["raft"]);
        assert!(t.relevance() > b.relevance());
    }

    #[test]
    fn exclude_wins_and_tags_domains_count() {
        let c = Classifier::new(&[topic(&["raft"], &["boat"])]).unwrap();
        let m = c.classify_topic(&text("Raft boat trip", ""), 0);
        assert!(!m.is_member());
        assert_eq!(m.excluded_by, vec!["boat"]);
        let tagged = ArticleText {
            title: "Something",
            body: vec![],
            tags: vec!["Distributed"],
            domain: "x.org",
        };
        assert!(c.classify_topic(&tagged, 0).is_member());
        let dom = ArticleText {
            title: "Something",
            body: vec![],
            tags: vec![],
            domain: "blog.jepsen.io",
        };
        assert_eq!(
            c.classify_topic(&dom, 0).domain.as_deref(),
            Some("jepsen.io")
        );
        let other = ArticleText {
            title: "Something",
            body: vec![],
            tags: vec![],
            domain: "notjepsen.io",
        };
        assert!(!c.classify_topic(&other, 0).is_member());
    }

    #[test]
    fn unicode_text_is_matched_case_insensitively() {
        let c = Classifier::new(&[topic(&["zürich", "raft"], &[])]).unwrap();
        assert!(
            c.classify_topic(&text("Meetup in ZÜRICH", ""), 0)
                .is_member()
        );
        assert!(c.classify_topic(&text("Ünïcode RAFT", ""), 0).is_member());
        assert!(!c.classify_topic(&text("éraft", ""), 0).is_member());
    }

    /// The reference: every overlapping occurrence found by Aho-Corasick (ASCII case-insensitive
    /// on ASCII text, on the lower-cased text otherwise), kept when both neighbours are not
    /// alphanumeric.
    fn reference(terms: &[String], haystack: &str) -> std::collections::BTreeSet<u32> {
        use aho_corasick::{AhoCorasick, MatchKind};
        let ac = AhoCorasick::builder()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::Standard)
            .build(terms)
            .unwrap();
        let mut out = std::collections::BTreeSet::new();
        let lower = if haystack.is_ascii() {
            haystack.to_string()
        } else {
            haystack.to_lowercase()
        };
        for m in ac.find_overlapping_iter(&lower) {
            let before = lower[..m.start()].chars().next_back();
            let after = lower[m.end()..].chars().next();
            let alnum = |c: Option<char>| c.is_some_and(char::is_alphanumeric);
            if !alnum(before) && !alnum(after) {
                out.insert(m.pattern().as_u32());
            }
        }
        out
    }

    proptest::proptest! {
        #[test]
        fn trie_scan_equals_the_overlapping_reference(
            hay in "[aAbB .\\-+éÉΣσς1_]{0,40}",
            raw in proptest::collection::vec("[aAbB .\\-+éΣσς1]{1,4}", 1..8),
        ) {
            let mut terms: Vec<String> = raw.iter().filter_map(|t| norm_term(t)).collect();
            terms.sort();
            terms.dedup();
            proptest::prop_assume!(!terms.is_empty());
            let trie = Trie::new(&terms).unwrap();
            let mut got = std::collections::BTreeSet::new();
            scan_terms(&trie, &hay, &mut |t| { got.insert(t); });
            proptest::prop_assert_eq!(got, reference(&terms, &hay));
        }

        #[test]
        fn long_words_and_phrases_equal_the_reference(
            hay in "[aAbB1 .\\-]{0,80}",
            raw in proptest::collection::vec("[ab1 .\\-]{1,14}", 1..8),
        ) {
            // Pieces of the text itself (words, pairs of words, word prefixes) so long terms hit.
            let words: Vec<&str> = hay.split(' ').collect();
            let mut pieces: Vec<String> = words.iter().map(|w| w.to_string()).collect();
            pieces.extend(words.windows(2).map(|w| w.join(" ")));
            pieces.extend(words.iter().map(|w| w.chars().take(9).collect::<String>()));
            let mut terms: Vec<String> =
                raw.iter().chain(&pieces).filter_map(|t| norm_term(t)).collect();
            terms.sort();
            terms.dedup();
            proptest::prop_assume!(!terms.is_empty());
            let trie = Trie::new(&terms).unwrap();
            let mut got = std::collections::BTreeSet::new();
            scan_terms(&trie, &hay, &mut |t| { got.insert(t); });
            proptest::prop_assert_eq!(got, reference(&terms, &hay));
        }
    }

    #[test]
    fn word_end_agrees_with_the_byte_loop() {
        let flags = &Trie::new(&["x".to_string()]).unwrap().flags;
        for b in 0u8..0x80 {
            let x = u64::from_le_bytes([b, b'a', b, b'Z', b, b'0', b, b'9']);
            let got = ascii_alnum_bytes(x);
            for (i, c) in x.to_le_bytes().iter().enumerate() {
                assert_eq!(
                    got >> (8 * i + 7) & 1 == 1,
                    c.is_ascii_alphanumeric(),
                    "byte {c:#x}"
                );
            }
        }
        let text = b"abcdefghijklmnop qrs,tu0123456789_v";
        for from in 0..text.len() {
            let expected = (from..text.len())
                .find(|&i| !text[i].is_ascii_alphanumeric())
                .unwrap_or(text.len());
            assert_eq!(word_end(text, from, flags), expected, "from {from}");
        }
    }

    #[test]
    fn membership_equals_classify() {
        let mut a = topic(&["raft", "b c", "c"], &["x"]);
        a.slug = crate::domain::TopicSlug::parse("a").unwrap();
        let mut b = topic(&["c", "zürich"], &[]);
        b.slug = crate::domain::TopicSlug::parse("b").unwrap();
        b.tags = vec![];
        b.domains = vec!["ex.org".into()];
        let c = Classifier::new(&[a, b]).unwrap();
        let mut scanner = c.scanner();
        let mut out = Vec::new();
        for (title, body, domain) in [
            ("Raft", "", "a.com"),
            ("b c", "x", "a.com"),
            ("nothing", "ZÜRICH", "a.com"),
            ("nothing", "", "sub.ex.org"),
            ("nothing", "", "a.com"),
            ("RAFT", "b  c", "EX.org"),
        ] {
            let article = Article {
                id: 1,
                canonical_url: String::new(),
                url: String::new(),
                title: title.into(),
                domain: domain.into(),
                published_at: chrono::DateTime::UNIX_EPOCH,
                sources: vec![],
                page: Some(crate::domain::PageInfo {
                    description: None,
                    text: Some(body.into()),
                }),
            };
            scanner.members(&article, &mut out);
            let expected: Vec<usize> = c
                .classify(&ArticleText::of(&article))
                .into_iter()
                .filter(|m| m.is_member())
                .map(|m| m.topic)
                .collect();
            assert_eq!(out, expected, "{title:?} {body:?} {domain:?}");
        }
    }

    #[test]
    fn several_topics_share_one_scan() {
        let mut a = topic(&["raft"], &[]);
        a.slug = crate::domain::TopicSlug::parse("a").unwrap();
        let mut b = topic(&["raft", "paxos"], &["raft"]);
        b.slug = crate::domain::TopicSlug::parse("b").unwrap();
        let c = Classifier::new(&[a, b]).unwrap();
        let ms = c.classify(&text("Raft vs Paxos", ""));
        assert!(ms[0].is_member());
        assert!(!ms[1].is_member());
        assert_eq!(ms[1].title_keywords, vec!["raft", "paxos"]);
    }
}
