//! The word matcher: finds every whole-word occurrence of a set of terms (keywords and phrases)
//! in a text, case-insensitively, in one pass whatever the number of terms. Pure: no I/O.
//!
//! The interface is small: [`WordMatcher::new`] takes the terms in their matched form
//! ([`normalize`]: trimmed and lower-cased; a term's id is its index), and
//! [`WordMatcher::find`] reports the id of each term found in a text. Topics, roles and
//! membership are the classifier's business (`pipeline::classify`).
//!
//! "Whole word" means the characters around a match are not alphanumeric (or are the ends of the
//! text), so `fault-tolerant` and `node.js` match as written; there is no stemming.
//!
//! All terms go into one byte trie. Since a whole-word match can only start where the previous
//! character is not alphanumeric, the trie is walked only from those positions (mostly word
//! starts), and most walks end after a byte or two; ASCII text is cut into words, each costing
//! one probe of a table of terms by leading word, and matched case-insensitively in place; other
//! text is lower-cased once into the caller's reused buffer, so matching allocates nothing.

use std::collections::HashMap;

/// The form a term is matched in: trimmed and lower-cased; `None` for a blank term.
pub fn normalize(term: &str) -> Option<String> {
    let t = term.trim().to_lowercase();
    (!t.is_empty()).then_some(t)
}

/// Finds whole-word occurrences of a fixed set of terms.
pub struct WordMatcher {
    trie: Trie,
    terms: usize,
}

impl std::fmt::Debug for WordMatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WordMatcher")
            .field("terms", &self.terms)
            .finish()
    }
}

impl WordMatcher {
    /// A matcher for `terms`, each already in its [`normalize`]d form and listed once; the id
    /// reported for a term is its index in `terms`.
    pub fn new(terms: &[String]) -> anyhow::Result<WordMatcher> {
        Ok(WordMatcher {
            trie: Trie::new(terms)?,
            terms: terms.len(),
        })
    }

    /// How many terms the matcher was built from (ids are below this).
    pub fn len(&self) -> usize {
        self.terms
    }

    pub fn is_empty(&self) -> bool {
        self.terms == 0
    }

    /// Calls `found` with the id of every term that occurs as a whole word in `text` (once per
    /// occurrence). `lower` is a buffer the caller reuses across texts: non-ASCII text is
    /// lower-cased into it (Unicode word boundaries then apply).
    #[inline]
    pub fn find(&self, text: &str, lower: &mut String, found: &mut impl FnMut(u32)) {
        if text.is_ascii() {
            self.trie.scan_ascii(text.as_bytes(), found);
        } else {
            lowercase_into(text, lower);
            self.trie.scan_lowered(lower, found);
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    /// Every term id found in `haystack`.
    fn found(matcher: &WordMatcher, haystack: &str) -> std::collections::BTreeSet<u32> {
        let mut got = std::collections::BTreeSet::new();
        matcher.find(haystack, &mut String::new(), &mut |t| {
            got.insert(t);
        });
        got
    }

    #[test]
    fn finds_whole_words_only_in_any_case() {
        let terms: Vec<String> = ["raft", "node.js", ".net", "consensus algorithm", "zürich"]
            .iter()
            .filter_map(|t| normalize(t))
            .collect();
        let m = WordMatcher::new(&terms).unwrap();
        assert_eq!(m.len(), 5);
        let ids = |s: &str| found(&m, s).into_iter().collect::<Vec<_>>();
        assert_eq!(ids("Implementing RAFT in Go"), vec![0]);
        assert_eq!(ids("Aircraft and crafts"), Vec::<u32>::new());
        assert_eq!(ids("Node.js on .NET"), vec![1, 2]);
        assert_eq!(ids("a new Consensus Algorithm."), vec![3]);
        assert_eq!(ids("consensus algorithms"), Vec::<u32>::new());
        assert_eq!(ids("Meetup in ZÜRICH (raft)"), vec![0, 4]);
        assert_eq!(ids("éraft"), Vec::<u32>::new());
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
            let mut terms: Vec<String> = raw.iter().filter_map(|t| normalize(t)).collect();
            terms.sort();
            terms.dedup();
            proptest::prop_assume!(!terms.is_empty());
            let matcher = WordMatcher::new(&terms).unwrap();
            let got = found(&matcher, &hay);
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
                raw.iter().chain(&pieces).filter_map(|t| normalize(t)).collect();
            terms.sort();
            terms.dedup();
            proptest::prop_assume!(!terms.is_empty());
            let matcher = WordMatcher::new(&terms).unwrap();
            let got = found(&matcher, &hay);
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
}
