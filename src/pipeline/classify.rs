//! Topic membership: an article belongs to a topic when one of its keywords or phrases occurs as
//! a whole word (case-insensitive) in the title, a source's text or the page description/text, or
//! a source tag or the domain is listed, and no exclude term occurs anywhere. Pure: no I/O.
//!
//! All keywords and exclude terms of all topics go into one Aho-Corasick automaton, so each
//! article's text is scanned once whatever the number of topics and keywords. "Whole word" means
//! the characters around a match are not alphanumeric (or are the ends of the text), so
//! `fault-tolerant` and `node.js` match as written; there is no stemming.

use std::collections::HashMap;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

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

#[derive(Clone, Copy, Debug)]
enum Role {
    Keyword(usize),
    Exclude(usize),
}

struct TopicRules {
    keywords: Vec<String>,
    exclude: Vec<String>,
    tags: Vec<String>,
    domains: Vec<String>,
}

/// Classifies articles into any number of topics in one pass per article.
pub struct Classifier {
    topics: Vec<TopicRules>,
    automaton: Option<AhoCorasick>,
    /// For each automaton pattern: every (topic, role) that listed it.
    roles: Vec<Vec<(usize, Role)>>,
}

impl std::fmt::Debug for Classifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Classifier")
            .field("topics", &self.topics.len())
            .field("patterns", &self.roles.len())
            .finish()
    }
}

fn norm_term(t: &str) -> Option<String> {
    let t = t.trim().to_lowercase();
    (!t.is_empty()).then_some(t)
}

impl Classifier {
    pub fn new(topics: &[TopicSettings]) -> anyhow::Result<Classifier> {
        let mut patterns: Vec<String> = Vec::new();
        let mut index: HashMap<String, usize> = HashMap::new();
        let mut roles: Vec<Vec<(usize, Role)>> = Vec::new();
        let mut rules = Vec::with_capacity(topics.len());
        for (ti, t) in topics.iter().enumerate() {
            let keywords: Vec<String> = t.keywords.iter().filter_map(|k| norm_term(k)).collect();
            let exclude: Vec<String> = t.exclude.iter().filter_map(|k| norm_term(k)).collect();
            for (list, is_kw) in [(&keywords, true), (&exclude, false)] {
                for (i, term) in list.iter().enumerate() {
                    let pid = *index.entry(term.clone()).or_insert_with(|| {
                        patterns.push(term.clone());
                        roles.push(Vec::new());
                        patterns.len() - 1
                    });
                    let role = if is_kw {
                        Role::Keyword(i)
                    } else {
                        Role::Exclude(i)
                    };
                    roles[pid].push((ti, role));
                }
            }
            rules.push(TopicRules {
                keywords,
                exclude,
                tags: t.tags.iter().filter_map(|k| norm_term(k)).collect(),
                domains: t
                    .domains
                    .iter()
                    .filter_map(|d| norm_term(d))
                    .map(|d| d.trim_start_matches("www.").to_string())
                    .collect(),
            });
        }
        let automaton = if patterns.is_empty() {
            None
        } else {
            Some(
                AhoCorasick::builder()
                    .ascii_case_insensitive(true)
                    .match_kind(MatchKind::Standard)
                    .kind(Some(AhoCorasickKind::DFA))
                    .build(&patterns)
                    .map_err(|e| anyhow::anyhow!("cannot build the keyword matcher: {e}"))?,
            )
        };
        Ok(Classifier {
            topics: rules,
            automaton,
            roles,
        })
    }

    /// The topics this article shows any signal for (member or excluded), in topic order.
    pub fn classify(&self, text: &ArticleText<'_>) -> Vec<TopicMatch> {
        let n = self.topics.len();
        // Per topic: bitsets of matched keywords (title, body) and excludes.
        let mut title_hits: Vec<Vec<bool>> = Vec::new();
        let mut body_hits: Vec<Vec<bool>> = Vec::new();
        let mut excl_hits: Vec<Vec<bool>> = Vec::new();
        let mut touched = vec![false; n];
        let ensure = |v: &mut Vec<Vec<bool>>| {
            if v.is_empty() {
                *v = self
                    .topics
                    .iter()
                    .map(|t| vec![false; t.keywords.len().max(t.exclude.len())])
                    .collect();
            }
        };
        if let Some(ac) = &self.automaton {
            let mut record = |pid: usize, in_title: bool| {
                for &(ti, role) in &self.roles[pid] {
                    touched[ti] = true;
                    match role {
                        Role::Keyword(k) => {
                            let v = if in_title {
                                &mut title_hits
                            } else {
                                &mut body_hits
                            };
                            ensure(v);
                            v[ti][k] = true;
                        }
                        Role::Exclude(k) => {
                            ensure(&mut excl_hits);
                            excl_hits[ti][k] = true;
                        }
                    }
                }
            };
            scan(ac, text.title, |pid| record(pid, true));
            for b in &text.body {
                scan(ac, b, |pid| record(pid, false));
            }
        }
        let mut out = Vec::new();
        for (ti, rules) in self.topics.iter().enumerate() {
            let tags: Vec<String> = rules
                .tags
                .iter()
                .filter(|t| text.tags.iter().any(|s| s.trim().eq_ignore_ascii_case(t)))
                .cloned()
                .collect();
            let domain = rules
                .domains
                .iter()
                .find(|d| {
                    let dom = text.domain;
                    dom.eq_ignore_ascii_case(d)
                        || (dom.len() > d.len()
                            && dom.to_ascii_lowercase().ends_with(&format!(".{d}")))
                })
                .cloned();
            if !touched[ti] && tags.is_empty() && domain.is_none() {
                continue;
            }
            let pick = |hits: &Vec<Vec<bool>>, terms: &Vec<String>| -> Vec<String> {
                if hits.is_empty() {
                    return Vec::new();
                }
                terms
                    .iter()
                    .enumerate()
                    .filter(|(i, _)| hits[ti][*i])
                    .map(|(_, t)| t.clone())
                    .collect()
            };
            let title_keywords = pick(&title_hits, &rules.keywords);
            let body_keywords: Vec<String> = pick(&body_hits, &rules.keywords)
                .into_iter()
                .filter(|k| !title_keywords.contains(k))
                .collect();
            out.push(TopicMatch {
                topic: ti,
                title_keywords,
                body_keywords,
                tags,
                domain,
                excluded_by: pick(&excl_hits, &rules.exclude),
            });
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

/// Reports every whole-word occurrence of any pattern in `haystack`.
fn scan(ac: &AhoCorasick, haystack: &str, mut found: impl FnMut(usize)) {
    if haystack.is_empty() {
        return;
    }
    if haystack.is_ascii() {
        let bytes = haystack.as_bytes();
        for m in ac.find_overlapping_iter(haystack) {
            let before = m.start().checked_sub(1).map(|i| bytes[i]);
            let after = bytes.get(m.end()).copied();
            if !before.is_some_and(|b| b.is_ascii_alphanumeric())
                && !after.is_some_and(|b| b.is_ascii_alphanumeric())
            {
                found(m.pattern().as_usize());
            }
        }
    } else {
        let lower = haystack.to_lowercase();
        for m in ac.find_overlapping_iter(&lower) {
            let (Some(head), Some(tail)) = (lower.get(..m.start()), lower.get(m.end()..)) else {
                continue; // a match inside a multi-byte character
            };
            let before = head.chars().next_back();
            let after = tail.chars().next();
            if !before.is_some_and(char::is_alphanumeric)
                && !after.is_some_and(char::is_alphanumeric)
            {
                found(m.pattern().as_usize());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn topic(keywords: &[&str], exclude: &[&str]) -> TopicSettings {
        TopicSettings {
            slug: "t".into(),
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

    #[test]
    fn several_topics_share_one_scan() {
        let mut a = topic(&["raft"], &[]);
        a.slug = "a".into();
        let mut b = topic(&["raft", "paxos"], &["raft"]);
        b.slug = "b".into();
        let c = Classifier::new(&[a, b]).unwrap();
        let ms = c.classify(&text("Raft vs Paxos", ""));
        assert!(ms[0].is_member());
        assert!(!ms[1].is_member());
        assert_eq!(ms[1].title_keywords, vec!["raft", "paxos"]);
    }
}
