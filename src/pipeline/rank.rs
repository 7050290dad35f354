//! Ranking within a topic and period. Each source's points are read as a percentile of that
//! source's own recent points (the store hands over the trailing weeks of each source; a story
//! that stands out in its community ranks with one that stands out in another), times the
//! source's `weight`; a source without points (a plain feed), or without a history, counts as
//! `[ranking] default_percentile`. An entry's score is the sum over its sources (one per
//! source name), so an entry found on several sources ranks above one found on one. Ties go
//! to more comments, then the newer article. [`walk_ranked`] walks the digest order applying
//! the per-domain cap and the limit. Pure: no I/O.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::SourceSettings;
use crate::domain::{Article, ArticleSource};

/// The percentile a source without points or without recent history counts as, unless
/// `[ranking] default_percentile` says otherwise.
pub const DEFAULT_PERCENTILE: f64 = 0.5;

/// What scoring needs besides the articles: each source's weight (unknown names weigh 1.0),
/// each source's recent points (sorted), and the default percentile.
#[derive(Clone, Debug)]
pub struct Weights {
    weights: HashMap<String, f64>,
    recent: HashMap<String, Vec<i64>>,
    default_percentile: f64,
}

impl Default for Weights {
    fn default() -> Self {
        Weights {
            weights: HashMap::new(),
            recent: HashMap::new(),
            default_percentile: DEFAULT_PERCENTILE,
        }
    }
}

/// Where a source's percentile came from.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum PercentileBasis {
    /// Its points among this many recent points of the source.
    Recent { count: usize },
    /// No points, or no recent points of the source: the default percentile.
    Default,
}

/// One source's part of an entry's score.
#[derive(Clone, Debug, PartialEq)]
pub struct SourceScore {
    pub source_name: String,
    pub points: Option<i64>,
    pub percentile: f64,
    pub basis: PercentileBasis,
    pub weight: f64,
    /// `percentile * weight`.
    pub score: f64,
}

impl Weights {
    /// The sources' weights, the default percentile 0.5 and no recent points.
    pub fn from_sources(sources: &[SourceSettings]) -> Weights {
        Weights {
            weights: sources.iter().map(|s| (s.name.clone(), s.weight)).collect(),
            ..Weights::default()
        }
    }

    /// With `p` (0..=1) as the percentile of sources without points or history.
    pub fn with_default_percentile(mut self, p: f64) -> Weights {
        self.default_percentile = p;
        self
    }

    /// With these (source name, points) pairs as the sources' recent distributions (the store's
    /// `recent_points`).
    pub fn with_recent_points(mut self, points: impl IntoIterator<Item = (String, i64)>) -> Self {
        for (name, p) in points {
            self.recent.entry(name).or_default().push(p);
        }
        for v in self.recent.values_mut() {
            v.sort_unstable();
        }
        self
    }

    /// With the points of `articles`' sources as the distributions (tests and the benchmark,
    /// which have no store).
    pub fn observing(self, articles: &[Article]) -> Self {
        let points: Vec<(String, i64)> = articles
            .iter()
            .flat_map(|a| &a.sources)
            .filter_map(|s| s.points.map(|p| (s.source_name.clone(), p)))
            .collect();
        self.with_recent_points(points)
    }

    pub fn of(&self, source_name: &str) -> f64 {
        self.weights.get(source_name).copied().unwrap_or(1.0)
    }

    /// The mid-rank percentile of `points` among the source's recent points (the share below,
    /// plus half the share equal), or the default without points or history.
    pub fn percentile(&self, source_name: &str, points: Option<i64>) -> (f64, PercentileBasis) {
        let (Some(p), Some(recent)) = (points, self.recent.get(source_name)) else {
            return (self.default_percentile, PercentileBasis::Default);
        };
        if recent.is_empty() {
            return (self.default_percentile, PercentileBasis::Default);
        }
        let below = recent.partition_point(|&x| x < p);
        let up_to = recent.partition_point(|&x| x <= p);
        let pct = (below as f64 + (up_to - below) as f64 / 2.0) / recent.len() as f64;
        (
            pct,
            PercentileBasis::Recent {
                count: recent.len(),
            },
        )
    }

    /// One source's part of a score.
    pub fn source_score(&self, s: &ArticleSource) -> SourceScore {
        let (percentile, basis) = self.percentile(&s.source_name, s.points);
        let weight = self.of(&s.source_name);
        SourceScore {
            source_name: s.source_name.clone(),
            points: s.points,
            percentile,
            basis,
            weight,
            score: percentile * weight,
        }
    }
}

/// An article's score: the sum over its sources (one per source name, the one with the most
/// points) of `percentile * weight`.
pub fn score(article: &Article, weights: &Weights) -> f64 {
    let mut best: Vec<(&str, f64)> = Vec::with_capacity(article.sources.len());
    for s in &article.sources {
        let v = weights.percentile(&s.source_name, s.points).0 * weights.of(&s.source_name);
        match best.iter_mut().find(|(n, _)| *n == s.source_name) {
            Some((_, b)) => *b = b.max(v),
            None => best.push((&s.source_name, v)),
        }
    }
    best.iter().map(|(_, v)| v).sum()
}

/// Total comments over all sources.
pub fn comments(article: &Article) -> i64 {
    article
        .sources
        .iter()
        .filter_map(|s| s.comments)
        .map(|c| c.max(0))
        .sum()
}

/// What the digest order looks at, computed once per article so sorting touches no strings.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RankKey {
    pub score: f64,
    pub comments: i64,
    pub published_at: DateTime<Utc>,
    pub id: i64,
}

impl RankKey {
    pub fn new(article: &Article, score: f64) -> RankKey {
        RankKey {
            // `+ 0.0` turns -0.0 into 0.0, so the total order below treats them as equal.
            score: score + 0.0,
            comments: comments(article),
            published_at: article.published_at,
            id: article.id,
        }
    }

    /// The digest order: higher score, then more comments, then newer, then lower id. Total
    /// (`f64::total_cmp`), so sorting never sees an inconsistent order.
    pub fn order(&self, other: &RankKey) -> Ordering {
        other
            .score
            .total_cmp(&self.score)
            .then_with(|| other.comments.cmp(&self.comments))
            .then_with(|| other.published_at.cmp(&self.published_at))
            .then_with(|| self.id.cmp(&other.id))
    }
}

/// What the domain cap and the limit decided for one ranked article.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Decision {
    Included { position: usize },
    DomainCap,
    BeyondLimit { rank: usize },
}

/// Walks `ranked` (indices into `keys`, whose entries pair a rank key with an article index)
/// in digest order, applying the per-domain cap and the limit, and calls `decide` with the
/// `keys` index of each article walked. With `all = false` the walk stops once the limit is
/// reached, and only the head of the order is sorted (a partial selection of the best
/// `4 x limit`; the rest is sorted only if the domain cap leaves the digest short).
pub(super) fn walk_ranked<'d>(
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

#[cfg(test)]
mod tests {
    use super::*;

    /// The digest order of two scored articles (see [`RankKey::order`]).
    fn compare(a: (&Article, f64), b: (&Article, f64)) -> Ordering {
        RankKey::new(a.0, a.1).order(&RankKey::new(b.0, b.1))
    }
    use crate::domain::ArticleSource;
    use chrono::TimeZone;

    fn art(id: i64, sources: &[(&str, Option<i64>, Option<i64>)], day: u32) -> Article {
        let at = Utc.with_ymd_and_hms(2026, 2, day, 12, 0, 0).unwrap();
        Article {
            id,
            canonical_url: format!("https://e.com/{id}"),
            url: format!("https://e.com/{id}"),
            title: format!("t{id}"),
            domain: "e.com".into(),
            published_at: at,
            sources: sources
                .iter()
                .map(|(n, p, c)| ArticleSource {
                    source_name: n.to_string(),
                    source_kind: "hackernews".into(),
                    external_id: id.to_string(),
                    points: *p,
                    comments: *c,
                    discussion_url: None,
                    text: None,
                    tags: vec![],
                    published_at: at,
                })
                .collect(),
            page: None,
        }
    }

    fn weights() -> Weights {
        Weights {
            weights: [
                ("hn".to_string(), 1.0),
                ("lob".to_string(), 2.0),
                ("feed".to_string(), 0.5),
            ]
            .into(),
            ..Weights::default()
        }
        .with_recent_points(
            // HN's recent points in the hundreds, Lobsters' in the tens.
            [10, 50, 100, 150, 200, 300, 400, 500, 700, 900]
                .map(|p| ("hn".to_string(), p))
                .into_iter()
                .chain([1, 3, 5, 8, 10, 15, 20, 30, 45, 60].map(|p| ("lob".to_string(), p))),
        )
    }

    fn assert_close(a: f64, b: f64) {
        assert!((a - b).abs() < 1e-9, "{a} != {b}");
    }

    #[test]
    fn points_are_read_as_a_percentile_of_the_sources_own_recent_points() {
        let w = weights();
        // Mid-rank: 3 of 10 below 150, one equal.
        assert_eq!(w.percentile("hn", Some(150)).0, 0.35);
        assert_eq!(w.percentile("hn", Some(10_000)).0, 1.0);
        assert_eq!(w.percentile("hn", Some(0)).0, 0.0);
        assert_eq!(
            w.percentile("hn", Some(150)).1,
            PercentileBasis::Recent { count: 10 }
        );
        // 45 points on Lobsters stand out as much as 700 on HN.
        assert_eq!(
            w.percentile("lob", Some(45)).0,
            w.percentile("hn", Some(700)).0
        );
        // No points, or no history: the default percentile.
        assert_eq!(
            w.percentile("feed", None),
            (DEFAULT_PERCENTILE, PercentileBasis::Default)
        );
        assert_eq!(
            w.percentile("unknown", Some(7)),
            (DEFAULT_PERCENTILE, PercentileBasis::Default)
        );
        let w = w.with_default_percentile(0.8);
        assert_eq!(w.percentile("feed", None).0, 0.8);
    }

    #[test]
    fn weight_multiplies_the_percentile_and_sources_add_up() {
        let w = weights();
        let hn_only = art(1, &[("hn", Some(700), None)], 3);
        assert_close(score(&hn_only, &w), 0.85);
        // Lobsters weighs 2: its 45-point story scores twice HN's 700-point one.
        assert_close(score(&art(2, &[("lob", Some(45), None)], 3), &w), 1.7);
        // A feed scores its default percentile times its weight.
        assert_close(score(&art(3, &[("feed", None, None)], 3), &w), 0.25);
        // The same story found on two sources ranks above it found on one.
        let both = art(4, &[("hn", Some(700), None), ("feed", None, None)], 3);
        assert_close(score(&both, &w), 1.1);
        assert_eq!(
            compare((&both, score(&both, &w)), (&hn_only, score(&hn_only, &w))),
            Ordering::Less
        );
        // One entry per source name: two HN submissions count once, the better one.
        let twice = art(5, &[("hn", Some(700), None), ("hn", Some(10), None)], 3);
        assert_close(score(&twice, &w), 0.85);
    }

    #[test]
    fn each_source_can_top_on_merit_without_special_weights() {
        let w = Weights::default().with_recent_points(
            [10, 50, 100, 150, 200, 300, 400, 500, 700, 900]
                .map(|p| ("hn".to_string(), p))
                .into_iter()
                .chain([1, 3, 5, 8, 10, 15, 20, 30, 45, 60].map(|p| ("lob".to_string(), p))),
        );
        let top = |arts: &[Article]| {
            let mut v: Vec<&Article> = arts.iter().collect();
            v.sort_by(|x, y| compare((x, score(x, &w)), (y, score(y, &w))));
            v[0].id
        };
        let hn_strong = art(1, &[("hn", Some(900), None)], 3);
        let hn_weak = art(2, &[("hn", Some(50), None)], 3);
        let lob_strong = art(3, &[("lob", Some(60), None)], 3);
        let lob_weak = art(4, &[("lob", Some(3), None)], 3);
        let feed = art(5, &[("feed", None, None)], 3);
        assert_eq!(top(&[hn_strong.clone(), lob_weak.clone(), feed.clone()]), 1);
        assert_eq!(top(&[hn_weak.clone(), lob_strong, feed.clone()]), 3);
        assert_eq!(top(&[hn_weak, lob_weak, feed]), 5);
    }

    #[test]
    fn ties_break_on_comments_then_newer() {
        let w = weights();
        let a = art(1, &[("hn", Some(50), Some(3))], 3);
        let b = art(2, &[("hn", Some(50), Some(9))], 2);
        let c = art(3, &[("hn", Some(50), Some(3))], 4);
        let d = art(4, &[("hn", Some(60), Some(0))], 1);
        let mut v = [&a, &b, &c, &d];
        v.sort_by(|x, y| compare((x, score(x, &w)), (y, score(y, &w))));
        let ids: Vec<i64> = v.iter().map(|a| a.id).collect();
        assert_eq!(ids, vec![4, 2, 3, 1]);
    }
}
