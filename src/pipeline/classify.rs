//! Topic membership: an article belongs to a topic when one of its keywords or phrases occurs as
//! a whole word (case-insensitive) in the title, a source's text or the page description/text, or
//! a source tag or the domain is listed, and no exclude term occurs anywhere. Pure: no I/O.
//!
//! All keywords and exclude terms of all topics go into one [`WordMatcher`] (its own module,
//! `pipeline::matcher`, says what "whole word" means and how the scan works), so each article's
//! text is scanned once whatever the number of topics and keywords; this module maps the terms
//! found back to topics. A [`Scanner`] keeps its buffers across articles, so deciding membership
//! allocates nothing.

use std::collections::HashMap;

use super::matcher::{WordMatcher, normalize};
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

/// Classifies articles into any number of topics in one pass per article.
pub struct Classifier {
    topics: Vec<TopicRules>,
    /// Every distinct keyword and exclude term; `None` when no topic lists any.
    matcher: Option<WordMatcher>,
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

impl Classifier {
    /// A classifier for `topics`; a [`TopicMatch`]'s `topic` is an index into them, in order.
    pub fn new<'t>(
        topics: impl IntoIterator<Item = &'t TopicSettings>,
    ) -> anyhow::Result<Classifier> {
        let mut terms: Vec<String> = Vec::new();
        let mut index: HashMap<String, u32> = HashMap::new();
        let mut roles: Vec<Vec<(usize, Role)>> = Vec::new();
        let mut rules = Vec::new();
        for (ti, t) in topics.into_iter().enumerate() {
            let keywords: Vec<String> = t.keywords.iter().filter_map(|k| normalize(k)).collect();
            let exclude: Vec<String> = t.exclude.iter().filter_map(|k| normalize(k)).collect();
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
                tags: t.tags.iter().filter_map(|k| normalize(k)).collect(),
                domains: t
                    .domains
                    .iter()
                    .filter_map(|d| normalize(d))
                    .map(|d| d.trim_start_matches("www.").to_string())
                    .collect(),
            });
        }
        let any_tags_or_domains = rules
            .iter()
            .any(|r| !r.tags.is_empty() || !r.domains.is_empty());
        Ok(Classifier {
            topics: rules,
            matcher: if terms.is_empty() {
                None
            } else {
                Some(WordMatcher::new(&terms)?)
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
        (0..self.topics.len())
            .map(|ti| scanner.topic_match(text, ti))
            .filter(|m| m.has_signal() || !m.excluded_by.is_empty())
            .collect()
    }

    /// The match for one topic, with empty lists when nothing matched.
    pub fn classify_topic(&self, text: &ArticleText<'_>, topic: usize) -> TopicMatch {
        self.scanner().classify_topic(text, topic)
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
        let Some(matcher) = &self.classifier.matcher else {
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
            matcher.find(text, lower, &mut found);
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

    /// [`Classifier::classify_topic`] with this scanner's buffers: the match for one topic,
    /// with empty lists when nothing matched.
    pub fn classify_topic(&mut self, text: &ArticleText<'_>, topic: usize) -> TopicMatch {
        self.scan(text.title, text.body.iter().copied());
        self.topic_match(text, topic)
    }

    /// The match for topic `ti` from the last [`Scanner::scan`] of `text`.
    fn topic_match(&self, text: &ArticleText<'_>, ti: usize) -> TopicMatch {
        let Some(rules) = self.classifier.topics.get(ti) else {
            return TopicMatch {
                topic: ti,
                ..TopicMatch::default()
            };
        };
        let generation = self.generation;
        let pick = |terms: &[String], ids: &[u32], stamps: &[u32]| -> Vec<String> {
            terms
                .iter()
                .zip(ids)
                .filter(|(_, id)| stamps[**id as usize] == generation)
                .map(|(t, _)| t.clone())
                .collect()
        };
        let title_keywords = pick(&rules.keywords, &rules.keyword_terms, &self.in_title);
        let body_keywords: Vec<String> = pick(&rules.keywords, &rules.keyword_terms, &self.in_body)
            .into_iter()
            .filter(|k| !title_keywords.contains(k))
            .collect();
        TopicMatch {
            topic: ti,
            title_keywords,
            body_keywords,
            tags: rules.tag_matches(text),
            domain: rules.domain_match(text.domain).cloned(),
            excluded_by: pick(&rules.exclude, &rules.exclude_terms, &self.seen),
        }
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
                    ..Default::default()
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
