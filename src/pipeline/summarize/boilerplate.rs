//! What a summary never quotes, recognised by form and position rather than by topic words:
//! headings, captions and navigation (short lines without a full stop), bylines and dates,
//! calls to action (a sentence that opens with an imperative such as "Subscribe", "Share",
//! "Click", or "If you ..., write/let us know"), sign-offs, cookie and copyright notices, and
//! lines that are mostly links or dates. The first and last paragraphs are where bylines and
//! sign-offs sit, so contact details there are dropped too. A sentence that merely mentions
//! "JavaScript", "newsletter" or "cookies" is kept.

use std::sync::LazyLock;

use regex::Regex;

/// Where a sentence sits in the article.
#[derive(Clone, Copy, Debug)]
pub struct Place {
    /// Index of its paragraph and the number of paragraphs.
    pub paragraph: usize,
    pub paragraphs: usize,
    /// Index of the sentence in the whole text and the number of sentences.
    pub sentence: usize,
    pub sentences: usize,
}

impl Place {
    /// In the opening or closing stretch, where bylines and sign-offs live.
    fn at_edge(&self) -> bool {
        if self.paragraphs > 2 {
            self.paragraph == 0 || self.paragraph + 1 == self.paragraphs
        } else {
            self.sentence < 2 || self.sentence + 2 >= self.sentences
        }
    }
}

/// Verbs that open a call to action when they start a sentence.
const CTA_VERBS: &[&str] = &[
    "subscribe",
    "sign",
    "follow",
    "share",
    "click",
    "tap",
    "join",
    "download",
    "register",
    "log",
    "login",
    "donate",
    "buy",
    "grab",
    "accept",
    "allow",
    "enable",
    "continue",
    "visit",
    "watch",
    "listen",
    "contact",
    "email",
    "e-mail",
    "tweet",
    "comment",
    "like",
    "reply",
    "support",
    "sponsor",
    "bookmark",
    "forward",
    "leave",
    "tell",
    "let",
    "read",
    "learn",
    "check",
    "see",
    "get",
    "try",
    "don't",
    "never",
    "discover",
    "explore",
    "view",
];

/// Second- and first-person words a call to action addresses the reader with.
const ADDRESS: &[&str] = &[
    "you",
    "your",
    "you're",
    "us",
    "our",
    "me",
    "my",
    "here",
    "below",
    "now",
    "today",
    "free",
    "link",
    "comments",
    "post",
    "article",
    "page",
    "site",
    "feed",
    "rss",
    "inbox",
    "updates",
    "more",
    "newsletter",
    "story",
    "out",
];

static BYLINE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            by\s+\S+(\s+\S+){0,4}\s*$ |
            (written|posted|published|updated|edited|reported|reviewed)(\s+\w+)?\s+(by|on|in|at)\b |
            (last\s+)?(updated|modified|published)\s*(:|on\b|\d) |
            \d+\s*(min|minute)s?\s+read |
            (photo|image|picture|illustration|credit|credits|caption|source|via|tags|tagged|filed\s+under|categories|category|posted\s+in|related|see\s+also|advertisement|sponsored)\s*[:|] |
            (figure|fig\.|table|listing)\s*\d+[:.] |
            [©] | copyright\s+(©\s*)?\d{4} |
            (share|follow|subscribe)\s+(on|via)\b
        )",
    )
    .expect("the byline pattern is valid")
});

static SIGN_OFF: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            if\s+you\b.*\b(write|email|e-mail|contact|let\s+(me|us)\s+know|get\s+in\s+touch|reach\s+out|subscribe|share|consider|follow|drop\s+(me|us)|feel\s+free|sign\s+up|support|tell|ping|send|reply|comment) |
            (thanks|thank\s+you)\b.*\b(reading|attention|time|following|support) |
            (happy\s+(hacking|coding)|until\s+next\s+time|see\s+you\s+(next|soon)|stay\s+tuned|cheers)\b |
            (we|this\s+(web)?site|this\s+page|our\s+site)\s+uses?\s+cookies |
            by\s+(continuing|using|clicking|browsing|scrolling)\b |
            (questions|comments|feedback|corrections)\?\s |
            all\s+rights\s+reserved
        )",
    )
    .expect("the sign-off pattern is valid")
});

static LINKISH: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"(?ix)^(
            [a-z][a-z0-9+.-]*://\S+ | www\.\S+ | \S+@\S+\.\S+ | @\w+ |
            \d{1,4}([-/.:]\d{1,4})*[,.]? |
            (jan|feb|mar|apr|may|jun|jul|aug|sep|oct|nov|dec)[a-z]*\.?,? |
            (mon|tue|wed|thu|fri|sat|sun)[a-z]*\.?,? |
            [|»>·•/—–-]
        )$",
    )
    .expect("the link pattern is valid")
});

static CONTACT: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?i)([a-z][a-z0-9+.-]*://|www\.|\S+@\S+\.[a-z]{2,}|(^|\s)@\w+)")
        .expect("the contact pattern is valid")
});

/// Whether `sentence`, at `place`, is not article prose.
pub fn is_boilerplate(sentence: &str, place: Place) -> bool {
    let words: Vec<&str> = sentence.split_whitespace().collect();
    if words.len() < 4 {
        return true;
    }
    let ends_well = sentence
        .trim_end_matches(['"', '\'', '”', '’', ')', ']', '*'])
        .ends_with(['.', '!', '?', '…']);
    // Headings, captions, navigation and list stubs: no full stop and short, or a lead-in.
    if (!ends_well && words.len() < 15) || sentence.ends_with(':') {
        return true;
    }
    // Bylines and captions are short, or sit at the top or bottom of the text.
    if (place.at_edge() || words.len() < 15) && BYLINE.is_match(sentence) {
        return true;
    }
    if SIGN_OFF.is_match(sentence) {
        return true;
    }
    // Mostly links, addresses, dates or separators.
    let linkish = words.iter().filter(|w| LINKISH.is_match(w)).count();
    if linkish * 2 >= words.len() {
        return true;
    }
    // Breadcrumbs and menus: several separators in one line.
    if words
        .iter()
        .filter(|w| matches!(**w, "|" | "»" | ">" | "·" | "•"))
        .count()
        >= 2
    {
        return true;
    }
    if is_call_to_action(&words) {
        return true;
    }
    // Contact details in the opening or closing paragraph belong to the byline or sign-off.
    place.at_edge() && CONTACT.is_match(sentence)
}

/// An imperative opening addressed to the reader: "Subscribe to get ...", "Click here",
/// "Please share this post", "Don't forget to ...".
fn is_call_to_action(words: &[&str]) -> bool {
    let normal: Vec<String> = words
        .iter()
        .map(|w| {
            w.trim_matches(|c: char| !c.is_alphanumeric() && c != '\'' && c != '-')
                .to_lowercase()
        })
        .collect();
    let mut i = 0;
    while i < normal.len() && matches!(normal[i].as_str(), "please" | "and" | "so" | "now") {
        i += 1;
    }
    let Some(first) = normal.get(i) else {
        return false;
    };
    if !CTA_VERBS.contains(&first.as_str()) {
        return false;
    }
    // "Read the paper, then ..." in a long sentence is prose; a short one addressed to the
    // reader or pointing at the page is a call to action.
    words.len() <= 25
        && normal[i + 1..]
            .iter()
            .any(|w| ADDRESS.contains(&w.as_str()))
}
