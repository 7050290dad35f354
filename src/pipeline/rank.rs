//! Ranking within a topic and period. Each source's points are scaled by that source's weight and
//! added; a source without points (a plain feed) contributes its weight. Ties go to more comments,
//! then the newer article. [`walk_ranked`] walks the digest order applying the per-domain cap
//! and the limit. Pure: no I/O.

use std::cmp::Ordering;
use std::collections::HashMap;

use chrono::{DateTime, Utc};

use crate::config::SourceSettings;
use crate::domain::Article;

/// Source weights by configured name; unknown names weigh 1.0.
#[derive(Clone, Debug, Default)]
pub struct Weights(HashMap<String, f64>);

impl Weights {
    pub fn from_sources(sources: &[SourceSettings]) -> Weights {
        Weights(sources.iter().map(|s| (s.name.clone(), s.weight)).collect())
    }

    pub fn of(&self, source_name: &str) -> f64 {
        self.0.get(source_name).copied().unwrap_or(1.0)
    }
}

/// An article's score: the sum over its sources of `points * weight`, or `weight` without points.
pub fn score(article: &Article, weights: &Weights) -> f64 {
    article
        .sources
        .iter()
        .map(|s| {
            let w = weights.of(&s.source_name);
            match s.points {
                Some(p) => p.max(0) as f64 * w,
                None => w,
            }
        })
        .sum()
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
        Weights(
            [
                ("hn".to_string(), 1.0),
                ("lob".to_string(), 2.0),
                ("feed".to_string(), 5.0),
            ]
            .into(),
        )
    }

    #[test]
    fn weighted_points_add_across_sources_and_feeds_score_their_weight() {
        let w = weights();
        assert_eq!(
            score(
                &art(1, &[("hn", Some(100), None), ("lob", Some(10), None)], 3),
                &w
            ),
            120.0
        );
        assert_eq!(score(&art(2, &[("feed", None, None)], 3), &w), 5.0);
        assert_eq!(score(&art(3, &[("unknown", Some(7), None)], 3), &w), 7.0);
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
