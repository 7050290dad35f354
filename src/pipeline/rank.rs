//! Ranking within a topic and period. Each source's points are scaled by that source's weight and
//! added; a source without points (a plain feed) contributes its weight. Ties go to more comments,
//! then the newer article. Pure: no I/O.

use std::cmp::Ordering;
use std::collections::HashMap;

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

/// The digest order: higher score, then more comments, then newer, then lower id (stable).
pub fn compare(a: (&Article, f64), b: (&Article, f64)) -> Ordering {
    b.1.partial_cmp(&a.1)
        .unwrap_or(Ordering::Equal)
        .then_with(|| comments(b.0).cmp(&comments(a.0)))
        .then_with(|| b.0.published_at.cmp(&a.0.published_at))
        .then_with(|| a.0.id.cmp(&b.0.id))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ArticleSource;
    use chrono::{TimeZone, Utc};

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
