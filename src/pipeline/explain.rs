//! `tidings explain`: why one article is or is not in a topic's digest for a period. The
//! article is merged with the rest of its story, screened and ranked by the same rules as
//! compiling (`story::merge_stories`, `compile::ranking_weights`, `select::TopicPeriod` and
//! `select::explain_selection`, which keeps a verdict for every article); it shows each
//! source's percentile and the score, which articles were merged into one entry and why, and,
//! when no article has the URL, what fetch noted about it.

use std::fmt;

use chrono::{DateTime, Utc};

use super::canonical;
use super::classify::TopicMatch;
use super::compile::ranking_weights;
use super::period;
use super::rank::{self, PercentileBasis, SourceScore};
use super::select::{self, TopicPeriod, Verdict, Window};
use super::story::{self, Merged};
use crate::config::{Settings, SourceKind, TopicSettings};
use crate::domain::Article;
use crate::store::{DroppedItem, Store};

/// Why one article is or is not in a topic's digest for the period containing `at`.
#[derive(Clone, Debug)]
pub struct Explanation {
    pub topic: String,
    pub canonical_url: String,
    pub window: Window,
    pub article: Option<Article>,
    pub matched: Option<TopicMatch>,
    pub score: Option<f64>,
    /// Each source's part of the score.
    pub source_scores: Vec<SourceScore>,
    /// The story's entry when the article was merged into another article's entry: (its id,
    /// URL and title).
    pub merged_into: Option<(i64, String, String)>,
    /// The articles merged into this story's entry, and why.
    pub merged: Vec<Merged>,
    pub verdict: Option<Verdict>,
    /// When no article has the URL: what fetch noted when it saw the entry and dropped it.
    pub dropped: Option<DroppedItem>,
    /// When no article has the URL: the last fetch that completed, if any (the caller fills
    /// it in from the fetch job's record).
    pub last_fetch: Option<DateTime<Utc>>,
    /// When no article has the URL: the Hacker News sources' `min_points`, by source name.
    pub min_points: Vec<(String, i64)>,
    /// The summary compiling would use now and which summariser wrote it.
    pub summary: Option<super::summarize::Summary>,
}

impl fmt::Display for Explanation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "topic:     {}", self.topic)?;
        writeln!(f, "url:       {}", self.canonical_url)?;
        writeln!(
            f,
            "period:    {} .. {} (end excluded)",
            self.window.start.to_rfc3339(),
            self.window.end.to_rfc3339()
        )?;
        let Some(a) = &self.article else {
            if let Some(d) = &self.dropped {
                return writeln!(
                    f,
                    "verdict:   out: fetch saw it at {} ({}, {:?}) and did not store it: {}",
                    d.seen_at.to_rfc3339(),
                    d.source_name,
                    d.title,
                    d.reason
                );
            }
            let Some(last) = self.last_fetch else {
                return writeln!(
                    f,
                    "verdict:   out: no stored article has this URL and no fetch has completed yet (run `tidings fetch` first)"
                );
            };
            write!(
                f,
                "verdict:   out: no source returned this URL (last fetch {})",
                last.to_rfc3339()
            )?;
            for (name, points) in &self.min_points {
                write!(
                    f,
                    "; {name} returns only stories with at least {points} points (min_points) published in the fetch window"
                )?;
            }
            return writeln!(f, "; a feed lists only its latest entries");
        };
        writeln!(f, "title:     {}", a.title)?;
        writeln!(f, "published: {}", a.published_at.to_rfc3339())?;
        for s in &a.sources {
            writeln!(
                f,
                "source:    {} points={} comments={}",
                s.source_name,
                s.points.map_or("-".into(), |p| p.to_string()),
                s.comments.map_or("-".into(), |c| c.to_string())
            )?;
        }
        if let Some((id, url, title)) = &self.merged_into {
            writeln!(
                f,
                "merged:    into the entry of article #{id} {url} ({title:?}), which ranks for both"
            )?;
        }
        for m in &self.merged {
            writeln!(
                f,
                "merged:    article #{} {} ({:?}): {}",
                m.article_id, m.url, m.title, m.reason
            )?;
        }
        if let Some(m) = &self.matched {
            let list = |v: &[String]| {
                if v.is_empty() {
                    "none".to_string()
                } else {
                    v.join(", ")
                }
            };
            writeln!(f, "title keywords: {}", list(&m.title_keywords))?;
            writeln!(f, "body keywords:  {}", list(&m.body_keywords))?;
            writeln!(f, "tags:           {}", list(&m.tags))?;
            writeln!(
                f,
                "domain:         {}",
                m.domain.as_deref().unwrap_or("none")
            )?;
            writeln!(f, "excluded by:    {}", list(&m.excluded_by))?;
            writeln!(f, "relevance:      {}", m.relevance())?;
        }
        for s in &self.source_scores {
            let basis = match s.basis {
                PercentileBasis::Recent { count } => format!(
                    "{} points among {count} recent points of the source",
                    s.points.unwrap_or_default()
                ),
                PercentileBasis::Default => "no points or history: default_percentile".into(),
            };
            writeln!(
                f,
                "rank:      {} percentile {:.2} ({basis}) x weight {} = {:.3}",
                s.source_name, s.percentile, s.weight, s.score
            )?;
        }
        if let Some(s) = self.score {
            writeln!(
                f,
                "score:     {s:.3} (sum over the entry's sources of percentile x weight)"
            )?;
        }
        if let Some(s) = &self.summary {
            writeln!(
                f,
                "summary:   ({}, {} words) {}",
                s.source,
                s.text.split_whitespace().count(),
                s.text
            )?;
        }
        match &self.verdict {
            Some(v) => writeln!(f, "verdict:   {v}"),
            None => writeln!(f, "verdict:   unknown"),
        }
    }
}

/// Explains the decision for `url` in `topic`'s digest for the period containing `at`.
pub async fn explain(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    url: &str,
    at: DateTime<Utc>,
) -> anyhow::Result<Explanation> {
    let canonical = canonical::canonicalize(url)
        .ok_or_else(|| anyhow::anyhow!("{url:?} is not an absolute http(s) URL"))?;
    let window = period(settings, topic, at)?;
    let mut out = Explanation {
        topic: topic.slug.to_string(),
        canonical_url: canonical.clone(),
        window,
        article: None,
        matched: None,
        score: None,
        source_scores: Vec::new(),
        merged_into: None,
        merged: Vec::new(),
        verdict: None,
        dropped: None,
        last_fetch: None,
        min_points: Vec::new(),
        summary: None,
    };
    let Some(article) = store.article_by_canonical_url(&canonical).await? else {
        out.dropped = store.dropped_item(&canonical).await?;
        out.min_points = settings
            .sources
            .iter()
            .filter(|s| s.kind == SourceKind::Hackernews)
            .map(|s| (s.name.clone(), s.min_points))
            .collect();
        return Ok(out);
    };
    let weights = ranking_weights(settings, store, window.start, window.end).await?;
    let earlier = store
        .articles_in_earlier_issues(&topic.slug, window.end)
        .await?;
    // Within the window the article is judged as part of its story, as compiling judges it.
    let (stories, earlier) = if window.contains(article.published_at) {
        let stories = story::merge_stories(store.articles_between(window.start, window.end).await?);
        let earlier = stories.remap_earlier(&earlier);
        (stories, earlier)
    } else {
        (
            story::Stories {
                articles: vec![article.clone()].into(),
                ..Default::default()
            },
            earlier,
        )
    };
    let period = TopicPeriod {
        topic,
        window,
        earlier: &earlier,
    };
    let articles = &stories.articles;
    let rep = stories.story_of(article.id);
    if rep != article.id
        && let Some(entry) = articles.iter().find(|a| a.id == rep)
    {
        out.merged_into = Some((rep, entry.url.clone(), entry.title.clone()));
    }
    out.merged = stories.merged.get(&rep).cloned().unwrap_or_default();
    let (selection, matches) = select::explain_selection(period, articles, &weights)?;
    let story = articles.iter().position(|a| a.id == rep);
    if let Some(i) = story {
        out.matched = matches.get(i).cloned();
    }
    let story = story.and_then(|i| articles.get(i)).unwrap_or(&article);
    out.score = Some(rank::score(story, &weights));
    out.source_scores = story
        .sources
        .iter()
        .map(|s| weights.source_score(s))
        .collect();
    out.verdict = selection.verdicts.get(&rep).cloned();
    out.summary = Some(super::abstractive::current_summary(settings, store, story).await);
    out.article = Some(article);
    Ok(out)
}
