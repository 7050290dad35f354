//! Choosing a topic's digest from in-memory articles: window filter, membership, no repeats of
//! earlier issues, ranking, the per-domain cap and the limit; then freezing the chosen articles
//! into a [`Digest`]. Pure: no I/O, so `compile`, `preview`, `explain` and the benchmark share it.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::classify::{ArticleText, Classifier, TopicMatch};
use super::rank::{self, RankKey, Weights};
use crate::config::TopicSettings;
use crate::domain::{Article, Digest, DigestEntry, SourceLine};

/// A period `[start, end)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

impl Window {
    pub fn contains(&self, t: DateTime<Utc>) -> bool {
        self.start <= t && t < self.end
    }
}

/// Why an article is in or out of a topic's digest.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Included { position: usize },
    OutsideWindow,
    NotOnTopic,
    Excluded { terms: Vec<String> },
    InEarlierIssue { issue_id: i64 },
    DomainCap { domain: String, cap: usize },
    BeyondLimit { rank: usize, limit: usize },
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Verdict::Included { position } => write!(f, "in the digest at position {position}"),
            Verdict::OutsideWindow => write!(f, "out: published outside the period"),
            Verdict::NotOnTopic => write!(f, "out: no keyword, tag or domain of the topic matched"),
            Verdict::Excluded { terms } => {
                write!(f, "out: exclude term(s) matched: {}", terms.join(", "))
            }
            Verdict::InEarlierIssue { issue_id } => {
                write!(
                    f,
                    "out: already in the topic's earlier issue #{issue_id} (repeat = false)"
                )
            }
            Verdict::DomainCap { domain, cap } => {
                write!(
                    f,
                    "out: {cap} higher-ranked articles from {domain} already (max_per_domain)"
                )
            }
            Verdict::BeyondLimit { rank, limit } => {
                write!(f, "out: ranked {rank}, beyond the topic's limit of {limit}")
            }
        }
    }
}

/// An article chosen for a digest, with its score and match.
#[derive(Clone, Debug)]
pub struct Ranked<'a> {
    pub article: &'a Article,
    pub score: f64,
    pub matched: TopicMatch,
}

/// The outcome of selecting one topic's digest.
#[derive(Debug, Default)]
pub struct Selection<'a> {
    pub chosen: Vec<Ranked<'a>>,
    /// Per article id, when verdicts were asked for.
    pub verdicts: HashMap<i64, Verdict>,
}

/// What the domain cap and the limit decided for one ranked article.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    Included { position: usize },
    DomainCap,
    BeyondLimit { rank: usize },
}

/// Walks `ranked` (indices into `keys`, whose entries pair a rank key with an article index)
/// in digest order, applying the per-domain cap and the limit, and calls `decide` with the
/// `keys` index of each article walked. With `all = false` the walk stops once the limit is
/// reached, and only the head of the order is sorted (a partial selection of the best
/// `4 x limit`; the rest is sorted only if the domain cap leaves the digest short).
fn walk_ranked<'d>(
    keys: &[(RankKey, usize)],
    ranked: &mut [usize],
    domain_of: impl Fn(usize) -> &'d str,
    limit: usize,
    max_per_domain: usize,
    all: bool,
    mut decide: impl FnMut(usize, Decision),
) {
    // Ties on the whole key (equal ids) keep the input order, as a stable sort would.
    let cmp = |a: &usize, b: &usize| keys[*a].0.order(&keys[*b].0).then(a.cmp(b));
    let n = ranked.len();
    let head = limit.saturating_mul(4).max(32);
    let mut sorted = if all || head >= n {
        ranked.sort_unstable_by(cmp);
        n
    } else {
        ranked.select_nth_unstable_by(head, cmp);
        ranked[..head].sort_unstable_by(cmp);
        head
    };
    let mut per_domain: HashMap<&str, usize> = HashMap::new();
    let mut chosen = 0;
    let mut i = 0;
    loop {
        while i < sorted {
            let k = ranked[i];
            let count = per_domain.entry(domain_of(keys[k].1)).or_insert(0);
            let decision = if *count >= max_per_domain {
                Decision::DomainCap
            } else if chosen >= limit {
                Decision::BeyondLimit { rank: i + 1 }
            } else {
                *count += 1;
                chosen += 1;
                Decision::Included { position: chosen }
            };
            decide(k, decision);
            if !all && chosen >= limit {
                return;
            }
            i += 1;
        }
        if sorted == n {
            return;
        }
        // Everything past the head ranks after it: sorting the rest completes the order.
        ranked[sorted..].sort_unstable_by(cmp);
        sorted = n;
    }
}

/// Selects from articles already classified for this topic (`candidates` pairs each article with
/// its match). `earlier` maps article ids to an earlier issue of this topic that carried them.
pub fn select_matched<'a>(
    topic: &TopicSettings,
    window: Window,
    candidates: Vec<(&'a Article, TopicMatch)>,
    earlier: &HashMap<i64, i64>,
    weights: &Weights,
    keep_verdicts: bool,
) -> Selection<'a> {
    let mut verdicts = HashMap::new();
    let mut slots: Vec<Option<(&'a Article, TopicMatch)>> = Vec::with_capacity(candidates.len());
    let mut keys: Vec<(RankKey, usize)> = Vec::new();
    for (article, matched) in candidates {
        let verdict = if !window.contains(article.published_at) {
            Some(Verdict::OutsideWindow)
        } else if !matched.excluded_by.is_empty() {
            Some(Verdict::Excluded {
                terms: matched.excluded_by.clone(),
            })
        } else if !matched.is_member() {
            Some(Verdict::NotOnTopic)
        } else if let (false, Some(issue_id)) = (topic.repeat, earlier.get(&article.id)) {
            Some(Verdict::InEarlierIssue {
                issue_id: *issue_id,
            })
        } else {
            None
        };
        match verdict {
            Some(v) => {
                if keep_verdicts {
                    verdicts.insert(article.id, v);
                }
                slots.push(None);
            }
            None => {
                let key = RankKey::new(article, rank::score(article, weights));
                keys.push((key, slots.len()));
                slots.push(Some((article, matched)));
            }
        }
    }
    let mut chosen = Vec::with_capacity(topic.limit.min(keys.len()));
    let articles: Vec<Option<&'a Article>> =
        slots.iter().map(|s| s.as_ref().map(|s| s.0)).collect();
    let mut ranked: Vec<usize> = (0..keys.len()).collect();
    walk_ranked(
        &keys,
        &mut ranked,
        |i| articles[i].map_or("", |a| a.domain.as_str()),
        topic.limit,
        topic.max_per_domain,
        keep_verdicts,
        |k, decision| {
            let (key, i) = keys[k];
            let Some((article, matched)) = slots[i].take() else {
                return;
            };
            let verdict = match decision {
                Decision::Included { position } => {
                    chosen.push(Ranked {
                        article,
                        score: key.score,
                        matched,
                    });
                    Verdict::Included { position }
                }
                Decision::DomainCap => Verdict::DomainCap {
                    domain: article.domain.clone(),
                    cap: topic.max_per_domain,
                },
                Decision::BeyondLimit { rank } => Verdict::BeyondLimit {
                    rank,
                    limit: topic.limit,
                },
            };
            if keep_verdicts {
                verdicts.insert(article.id, verdict);
            }
        },
    );
    Selection { chosen, verdicts }
}

/// Classifies `articles` for one topic and selects its digest. With `keep_verdicts` every
/// article gets a verdict and its [`TopicMatch`] (for `explain`); without, membership is decided
/// by the allocation-free [`Scanner`] and only the chosen articles' matches are built.
pub fn select<'a>(
    topic: &TopicSettings,
    window: Window,
    articles: &'a [Article],
    earlier: &HashMap<i64, i64>,
    weights: &Weights,
    keep_verdicts: bool,
) -> anyhow::Result<(Selection<'a>, Vec<TopicMatch>)> {
    let classifier = Classifier::new(std::slice::from_ref(topic))?;
    if keep_verdicts {
        let mut matches = Vec::with_capacity(articles.len());
        let candidates: Vec<(&Article, TopicMatch)> = articles
            .iter()
            .map(|a| {
                let m = classifier.classify_topic(&ArticleText::of(a), 0);
                matches.push(m.clone());
                (a, m)
            })
            .collect();
        return Ok((
            select_matched(topic, window, candidates, earlier, weights, true),
            matches,
        ));
    }
    let mut digests = compile_with(
        &classifier,
        std::slice::from_ref(topic),
        &[window],
        articles,
        std::slice::from_ref(earlier),
        weights,
    );
    let chosen = digests.pop().unwrap_or_default();
    Ok((
        Selection {
            chosen,
            verdicts: HashMap::new(),
        },
        Vec::new(),
    ))
}

/// Membership, window, no-repeat filter and ranking for every topic in one pass over
/// `articles`: each article is scanned once for all topics; per topic only (rank key, index)
/// pairs are kept, and only the chosen articles get a [`TopicMatch`].
fn compile_with<'a>(
    classifier: &Classifier,
    topics: &[TopicSettings],
    windows: &[Window],
    articles: &'a [Article],
    earlier: &[HashMap<i64, i64>],
    weights: &Weights,
) -> Vec<Vec<Ranked<'a>>> {
    let mut scanner = classifier.scanner();
    // One rank key per article that joined any topic; per topic only indices into `keys`.
    let mut keys: Vec<(RankKey, usize)> = Vec::new();
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); topics.len()];
    let mut members = Vec::new();
    for (index, a) in articles.iter().enumerate() {
        if !windows.iter().any(|w| w.contains(a.published_at)) {
            continue;
        }
        scanner.members(a, &mut members);
        let mut key = None;
        for &ti in &members {
            if !windows[ti].contains(a.published_at)
                || (!topics[ti].repeat && earlier[ti].contains_key(&a.id))
            {
                continue;
            }
            let k = *key.get_or_insert_with(|| {
                keys.push((RankKey::new(a, rank::score(a, weights)), index));
                keys.len() - 1
            });
            buckets[ti].push(k);
        }
    }
    buckets
        .into_iter()
        .enumerate()
        .map(|(ti, mut ranked)| {
            let topic = &topics[ti];
            let mut picked = Vec::with_capacity(topic.limit.min(ranked.len()));
            walk_ranked(
                &keys,
                &mut ranked,
                |i| articles[i].domain.as_str(),
                topic.limit,
                topic.max_per_domain,
                false,
                |k, decision| {
                    if let Decision::Included { .. } = decision {
                        picked.push(keys[k]);
                    }
                },
            );
            picked
                .into_iter()
                .map(|(key, i)| {
                    let article = &articles[i];
                    Ranked {
                        article,
                        score: key.score,
                        matched: classifier.classify_topic(&ArticleText::of(article), ti),
                    }
                })
                .collect()
        })
        .collect()
}

/// Freezes chosen articles into a digest; `summary` gives each article's paragraph.
pub fn build_digest(
    topic: &TopicSettings,
    window: Window,
    chosen: &[Ranked<'_>],
    mut summary: impl FnMut(&Article) -> String,
) -> Digest {
    let entries = chosen
        .iter()
        .enumerate()
        .map(|(i, r)| DigestEntry {
            position: u32::try_from(i + 1).unwrap_or(u32::MAX),
            article_id: r.article.id,
            title: r.article.title.clone(),
            url: r.article.url.clone(),
            domain: r.article.domain.clone(),
            published_at: r.article.published_at,
            summary: summary(r.article),
            score: r.score,
            sources: r
                .article
                .sources
                .iter()
                .map(|s| SourceLine {
                    name: s.source_name.clone(),
                    points: s.points,
                    comments: s.comments,
                    discussion_url: s.discussion_url.clone(),
                })
                .collect(),
        })
        .collect();
    Digest {
        issue_id: None,
        topic_slug: topic.slug.to_string(),
        topic_name: topic.name.clone(),
        topic_description: topic.description.clone(),
        window_start: window.start,
        window_end: window.end,
        window_days: topic.window_days,
        entries,
    }
}

/// Classify + rank + compile for many topics over one set of in-memory articles: each article
/// is scanned once for all topics. Summaries are extractive. This is what the benchmark measures.
pub fn compile_all(
    topics: &[TopicSettings],
    windows: &[Window],
    articles: &[Article],
    earlier: &[HashMap<i64, i64>],
    weights: &Weights,
) -> anyhow::Result<Vec<Digest>> {
    anyhow::ensure!(
        topics.len() == windows.len() && topics.len() == earlier.len(),
        "compile_all needs one window and one earlier-issue map per topic"
    );
    let classifier = Classifier::new(topics)?;
    let chosen = compile_with(&classifier, topics, windows, articles, earlier, weights);
    Ok(chosen
        .iter()
        .enumerate()
        .map(|(i, chosen)| {
            build_digest(
                &topics[i],
                windows[i],
                chosen,
                super::summarize::extractive_summary,
            )
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ArticleSource;
    use chrono::TimeZone;

    fn topic() -> TopicSettings {
        TopicSettings {
            slug: crate::domain::TopicSlug::parse("dist").unwrap(),
            name: "Distributed".into(),
            description: "d".into(),
            keywords: vec!["raft".into()],
            exclude: vec!["crypto".into()],
            tags: vec![],
            domains: vec![],
            window_days: 7,
            limit: 3,
            max_per_domain: 2,
            repeat: false,
            cron: None,
            deliver_at_local: None,
        }
    }

    fn art(id: i64, title: &str, domain: &str, points: i64, at: DateTime<Utc>) -> Article {
        Article {
            id,
            canonical_url: format!("https://{domain}/{id}"),
            url: format!("https://{domain}/{id}"),
            title: title.into(),
            domain: domain.into(),
            published_at: at,
            sources: vec![ArticleSource {
                source_name: "Hacker News".into(),
                source_kind: "hackernews".into(),
                external_id: id.to_string(),
                points: Some(points),
                comments: Some(1),
                discussion_url: None,
                text: None,
                tags: vec![],
                published_at: at,
            }],
            page: None,
        }
    }

    #[test]
    fn window_is_half_open_and_every_rule_applies() {
        let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
        let start = end - chrono::Duration::days(7);
        let w = Window { start, end };
        let mid = start + chrono::Duration::days(2);
        let arts = vec![
            art(1, "Raft at the start", "a.com", 10, start),
            art(2, "Raft at the end", "a.com", 500, end),
            art(3, "Raft crypto", "b.com", 400, mid),
            art(4, "Off topic", "b.com", 300, mid),
            art(5, "Raft repeat", "c.com", 200, mid),
            art(6, "Raft a", "d.com", 90, mid),
            art(7, "Raft b", "d.com", 80, mid),
            art(8, "Raft c", "d.com", 70, mid),
            art(9, "Raft e", "e.com", 5, mid),
        ];
        let earlier = HashMap::from([(5, 11)]);
        let (sel, _) = select(&topic(), w, &arts, &earlier, &Weights::default(), true).unwrap();
        let ids: Vec<i64> = sel.chosen.iter().map(|r| r.article.id).collect();
        assert_eq!(ids, vec![6, 7, 1]);
        assert_eq!(sel.verdicts[&2], Verdict::OutsideWindow);
        assert!(matches!(sel.verdicts[&3], Verdict::Excluded { .. }));
        assert_eq!(sel.verdicts[&4], Verdict::NotOnTopic);
        assert_eq!(sel.verdicts[&5], Verdict::InEarlierIssue { issue_id: 11 });
        assert!(matches!(sel.verdicts[&8], Verdict::DomainCap { .. }));
        assert!(matches!(sel.verdicts[&9], Verdict::BeyondLimit { .. }));
        let mut t = topic();
        t.repeat = true;
        let (sel, _) = select(&t, w, &arts, &earlier, &Weights::default(), false).unwrap();
        assert_eq!(sel.chosen[0].article.id, 5);
    }

    #[test]
    fn compile_all_matches_single_topic_select() {
        let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
        let w = Window {
            start: end - chrono::Duration::days(7),
            end,
        };
        let mid = end - chrono::Duration::days(1);
        let arts: Vec<Article> = (0..20)
            .map(|i| {
                art(
                    i,
                    if i % 2 == 0 { "Raft" } else { "Other" },
                    &format!("d{i}.com"),
                    i * 3,
                    mid,
                )
            })
            .collect();
        let ds = compile_all(
            &[topic()],
            &[w],
            &arts,
            &[HashMap::new()],
            &Weights::default(),
        )
        .unwrap();
        let (sel, _) = select(
            &topic(),
            w,
            &arts,
            &HashMap::new(),
            &Weights::default(),
            false,
        )
        .unwrap();
        let a: Vec<i64> = ds[0].entries.iter().map(|e| e.article_id).collect();
        let b: Vec<i64> = sel.chosen.iter().map(|r| r.article.id).collect();
        assert_eq!(a, b);
        assert_eq!(a, vec![18, 16, 14]);
    }

    #[test]
    fn partial_selection_equals_the_full_order_even_when_the_domain_cap_bites() {
        let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
        let w = Window {
            start: end - chrono::Duration::days(7),
            end,
        };
        // 200 top-scoring articles from one domain, then others: the best 4 x limit are not
        // enough once the cap bites, so the rest of the order must be sorted too.
        let arts: Vec<Article> = (0..400)
            .map(|i| {
                let domain = if i < 200 {
                    "big.com".to_string()
                } else {
                    format!("d{}.com", i % 7)
                };
                let at = end - chrono::Duration::minutes(i % 13 + 1);
                art(i, "Raft", &domain, 1000 - i % 300, at)
            })
            .collect();
        let mut t = topic();
        t.limit = 10;
        let (full, _) = select(&t, w, &arts, &HashMap::new(), &Weights::default(), true).unwrap();
        let (fast, _) = select(&t, w, &arts, &HashMap::new(), &Weights::default(), false).unwrap();
        let ids = |s: &Selection<'_>| s.chosen.iter().map(|r| r.article.id).collect::<Vec<_>>();
        assert_eq!(ids(&fast), ids(&full));
        assert_eq!(fast.chosen.len(), 10);
        assert_eq!(
            fast.chosen
                .iter()
                .filter(|r| r.article.domain == "big.com")
                .count(),
            2
        );
        for (a, b) in fast.chosen.iter().zip(&full.chosen) {
            assert_eq!(a.score, b.score);
            assert_eq!(a.matched, b.matched);
        }
    }
}
