//! Choosing a topic's digest from in-memory articles: window filter, membership, no repeats of
//! earlier issues ([`TopicPeriod`] holds those rules), ranking, the per-domain cap and the limit;
//! then freezing the chosen articles into a [`Digest`]. Pure: no I/O. [`choose_all`] is the one
//! fast path: production compiles every topic through it (`pipeline::compile`) and the
//! benchmark measures it through [`compile_all`]; `explain` uses [`explain_selection`], which
//! keeps a verdict for every article and chooses the same articles.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::classify::{ArticleText, Classifier, TopicMatch};
use super::rank::{self, Decision, RankKey, Weights, walk_ranked};
use super::story::{Stories, merge_stories, merge_stories_of};
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

/// One topic's period as selection sees it: the window and the articles the topic's earlier
/// issues carried. The window and no-repeat rules live here, and only here: the fast path
/// ([`choose_all`]: compile, preview, the benchmark) and `explain`'s verdicts
/// ([`explain_selection`]) both screen articles through [`TopicPeriod::screen`].
#[derive(Clone, Copy, Debug)]
pub struct TopicPeriod<'t> {
    pub topic: &'t TopicSettings,
    pub window: Window,
    /// Article id -> an earlier issue of this topic that carried it (period ended before this
    /// one's end).
    pub earlier: &'t HashMap<i64, i64>,
}

impl TopicPeriod<'_> {
    /// The window rule: the article was published in `[start, end)`.
    pub fn in_window(&self, article: &Article) -> bool {
        self.window.contains(article.published_at)
    }

    /// The no-repeat rule: the earlier issue that carried the article, unless the topic has
    /// `repeat = true`.
    pub fn earlier_issue(&self, article: &Article) -> Option<i64> {
        if self.topic.repeat {
            None
        } else {
            self.earlier.get(&article.id).copied()
        }
    }

    /// Every rule an article must pass before ranking, in verdict order: the window, then
    /// `membership` (the classifier's verdict: an exclude term, or no keyword, tag or domain;
    /// `None` for a member), then no repeats. `None`: the article goes on to ranking.
    pub fn screen(
        &self,
        article: &Article,
        membership: impl FnOnce() -> Option<Verdict>,
    ) -> Option<Verdict> {
        if !self.in_window(article) {
            return Some(Verdict::OutsideWindow);
        }
        if let Some(verdict) = membership() {
            return Some(verdict);
        }
        self.earlier_issue(article)
            .map(|issue_id| Verdict::InEarlierIssue { issue_id })
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
    /// Every article's verdict, by article id.
    pub verdicts: HashMap<i64, Verdict>,
}

/// Screens and ranks articles already classified for one topic (`candidates` pairs each
/// article with its match), giving every article a verdict.
fn select_matched<'a>(
    period: &TopicPeriod<'_>,
    candidates: Vec<(&'a Article, TopicMatch)>,
    weights: &Weights,
) -> Selection<'a> {
    let topic = period.topic;
    let mut verdicts = HashMap::new();
    // The articles that go on to ranking, with their matches (moved out once decided).
    let mut articles: Vec<&'a Article> = Vec::new();
    let mut matches: Vec<TopicMatch> = Vec::new();
    let mut keys: Vec<(RankKey, usize)> = Vec::new();
    for (article, matched) in candidates {
        let verdict = period.screen(article, || {
            if !matched.excluded_by.is_empty() {
                Some(Verdict::Excluded {
                    terms: matched.excluded_by.clone(),
                })
            } else if !matched.is_member() {
                Some(Verdict::NotOnTopic)
            } else {
                None
            }
        });
        match verdict {
            Some(v) => {
                verdicts.insert(article.id, v);
            }
            None => {
                let key = RankKey::new(article, rank::score(article, weights));
                keys.push((key, articles.len()));
                articles.push(article);
                matches.push(matched);
            }
        }
    }
    let mut chosen = Vec::with_capacity(topic.limit.min(keys.len()));
    let mut ranked: Vec<usize> = (0..keys.len()).collect();
    walk_ranked(
        &keys,
        &mut ranked,
        |i| articles[i].domain.as_str(),
        topic.limit,
        topic.max_per_domain,
        true,
        |k, decision| {
            let (key, i) = keys[k];
            let article = articles[i];
            let verdict = match decision {
                Decision::Included { position } => {
                    chosen.push(Ranked {
                        article,
                        score: key.score,
                        matched: std::mem::take(&mut matches[i]),
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
            verdicts.insert(article.id, verdict);
        },
    );
    Selection { chosen, verdicts }
}

/// Classifies every article for one topic and selects its digest, keeping every article's
/// verdict and [`TopicMatch`] (in the order of `articles`): the path of `explain`. Its choice
/// equals [`choose_all`]'s, which is faster and is what compiling uses.
pub fn explain_selection<'a>(
    period: TopicPeriod<'_>,
    articles: &'a [Article],
    weights: &Weights,
) -> anyhow::Result<(Selection<'a>, Vec<TopicMatch>)> {
    let classifier = Classifier::new([period.topic])?;
    let mut scanner = classifier.scanner();
    let mut matches = Vec::with_capacity(articles.len());
    let candidates: Vec<(&Article, TopicMatch)> = articles
        .iter()
        .map(|a| {
            let m = scanner.classify_topic(&ArticleText::of(a), 0);
            matches.push(m.clone());
            (a, m)
        })
        .collect();
    Ok((select_matched(&period, candidates, weights), matches))
}

/// The fast path, shared by production (`compile`, `run`, `send`, the scheduler, `preview`)
/// and the benchmark: membership, window, no-repeat filter and ranking for every topic in one
/// pass over `articles`, with one classifier built for all topics. Each article is scanned once
/// for all topics by the allocation-free [`Scanner`](super::classify::Scanner); per topic only
/// (rank key, index) pairs are kept, and only the chosen articles get a [`TopicMatch`]. Returns
/// each period's chosen articles in digest order.
pub fn choose_all<'a>(
    periods: &[TopicPeriod<'_>],
    articles: &'a [Article],
    weights: &Weights,
) -> anyhow::Result<Vec<Vec<Ranked<'a>>>> {
    let classifier = Classifier::new(periods.iter().map(|p| p.topic))?;
    let mut scanner = classifier.scanner();
    // One rank key per article that joined any topic; per topic only indices into `keys`.
    let mut keys: Vec<(RankKey, usize)> = Vec::new();
    let mut buckets: Vec<Vec<usize>> = vec![Vec::new(); periods.len()];
    let mut members = Vec::new();
    for (index, a) in articles.iter().enumerate() {
        if !periods.iter().any(|p| p.in_window(a)) {
            continue;
        }
        scanner.members(a, &mut members);
        let mut key = None;
        for &ti in &members {
            // Membership is decided (the scanner listed the topic): the period's rules remain.
            if periods[ti].screen(a, || None).is_some() {
                continue;
            }
            let k = *key.get_or_insert_with(|| {
                keys.push((RankKey::new(a, rank::score(a, weights)), index));
                keys.len() - 1
            });
            buckets[ti].push(k);
        }
    }
    Ok(buckets
        .into_iter()
        .enumerate()
        .map(|(ti, mut ranked)| {
            let topic = periods[ti].topic;
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
                        matched: scanner.classify_topic(&ArticleText::of(article), ti),
                    }
                })
                .collect()
        })
        .collect())
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
            // Six decimals: frozen issues keep the score as JSON, and a shorter number reads
            // back as exactly the same f64.
            score: (r.score * 1e6).round() / 1e6,
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

/// The articles of each distinct window among `windows`, merged into one entry per story
/// (`story::merge_stories`): (the indices of the windows equal to it, its stories). Stories are
/// merged within each window alone, so a topic's digest never depends on which other topics
/// are compiled with it. With one window (the usual case: every topic on one schedule) owned
/// articles are moved and borrowed ones copied only when some fall outside it or some merge.
pub fn stories_by_window<'a>(
    windows: &[Window],
    articles: Cow<'a, [Article]>,
) -> Vec<(Vec<usize>, Stories<'a>)> {
    let mut distinct: Vec<(Window, Vec<usize>)> = Vec::new();
    for (i, w) in windows.iter().enumerate() {
        match distinct.iter_mut().find(|(d, _)| d == w) {
            Some((_, members)) => members.push(i),
            None => distinct.push((*w, vec![i])),
        }
    }
    let inside = |w: &Window, articles: &[Article]| -> Vec<Article> {
        articles
            .iter()
            .filter(|a| w.contains(a.published_at))
            .cloned()
            .collect()
    };
    if let [(w, members)] = distinct.as_slice() {
        let stories = if articles.iter().all(|a| w.contains(a.published_at)) {
            merge_stories_of(articles)
        } else {
            match articles {
                Cow::Owned(v) => merge_stories(
                    v.into_iter()
                        .filter(|a| w.contains(a.published_at))
                        .collect(),
                ),
                Cow::Borrowed(v) => merge_stories(inside(w, v)),
            }
        };
        return vec![(members.clone(), stories)];
    }
    distinct
        .into_iter()
        .map(|(w, members)| (members, merge_stories(inside(&w, &articles))))
        .collect()
}

/// Merge stories + classify + rank + compile for many topics over one set of in-memory
/// articles, with extractive summaries: [`stories_by_window`], [`choose_all`] per window (the
/// path production compiles through) and [`build_digest`], without the store. This is what the
/// benchmark measures.
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
    let mut digests: Vec<Option<Digest>> = vec![None; topics.len()];
    for (members, stories) in stories_by_window(windows, Cow::Borrowed(articles)) {
        let earlier: Vec<HashMap<i64, i64>> = members
            .iter()
            .map(|&i| stories.remap_earlier(&earlier[i]))
            .collect();
        let periods: Vec<TopicPeriod<'_>> = members
            .iter()
            .zip(&earlier)
            .map(|(&i, earlier)| TopicPeriod {
                topic: &topics[i],
                window: windows[i],
                earlier,
            })
            .collect();
        let chosen = choose_all(&periods, &stories.articles, weights)?;
        for ((&i, p), chosen) in members.iter().zip(&periods).zip(&chosen) {
            digests[i] = Some(build_digest(
                p.topic,
                p.window,
                chosen,
                super::summarize::extractive_summary,
            ));
        }
    }
    digests
        .into_iter()
        .map(|d| d.ok_or_else(|| anyhow::anyhow!("no digest was built for a topic")))
        .collect()
}

#[cfg(test)]
mod tests;
