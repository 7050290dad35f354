//! Compiling digests from the store. Every way to compile or preview an issue (`compile`,
//! `run`, `send`, the scheduler, `preview`) comes through [`compile_topics`] or
//! [`preview_digest`], and both build digests the same way ([`build_digests`]): the articles of
//! every period wanted are loaded once, merged into one entry per story within each distinct
//! window (`select::stories_by_window`), ranked against each source's recent points
//! ([`ranking_weights`]), classified for all topics of a window in one pass with one classifier
//! (`select::choose_all`, the path `benches/pipeline.rs` measures), then summarised per topic
//! (abstractive when configured, extractive otherwise) and frozen.

use std::collections::HashMap;
use std::fmt;

use chrono::{DateTime, Utc};

use super::rank::Weights;
use super::select::{self, TopicPeriod, Window};
use super::{abstractive, period, summarize};
use crate::config::{Settings, TopicSettings};
use crate::domain::{Article, Digest};
use crate::store::{Store, StoredIssue};

/// A frozen issue as `compile` returns it.
#[derive(Clone, Debug)]
pub struct CompiledIssue {
    pub issue_id: i64,
    pub digest: Digest,
    pub newly_compiled: bool,
}

/// What compiling one topic's period gave: the issue (frozen now or earlier), or, when nothing
/// in the window is on topic, the empty digest (`Err`, nothing stored); the outer error is a
/// failure of this topic alone (its schedule, `--force` refused, storing it).
pub type TopicCompiled = anyhow::Result<Result<CompiledIssue, Digest>>;

/// "no articles on topic from .. to ..", for an empty digest.
pub struct NothingOnTopic<'a>(pub &'a Digest);

impl fmt::Display for NothingOnTopic<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: no articles on topic from {} to {}",
            self.0.topic_slug,
            self.0.window_start.format("%Y-%m-%d %H:%M UTC"),
            self.0.window_end.format("%Y-%m-%d %H:%M UTC"),
        )
    }
}

/// Builds the digests `compile` would freeze for each (topic, window), in order (issue ids
/// `None`): the articles of all windows are loaded with one query, classified and ranked for
/// every topic in one pass (`select::choose_all`), then each topic's chosen articles get their
/// summaries.
async fn build_digests(
    settings: &Settings,
    store: &Store,
    wanted: &[(&TopicSettings, Window)],
    now: DateTime<Utc>,
) -> anyhow::Result<Vec<Digest>> {
    let (Some(start), Some(end)) = (
        wanted.iter().map(|(_, w)| w.start).min(),
        wanted.iter().map(|(_, w)| w.end).max(),
    ) else {
        return Ok(Vec::new());
    };
    let mut carried = Vec::with_capacity(wanted.len());
    for (topic, window) in wanted {
        carried.push(
            store
                .articles_in_earlier_issues(&topic.slug, window.end)
                .await?,
        );
    }
    let weights = ranking_weights(settings, store, start, end).await?;
    let windows: Vec<Window> = wanted.iter().map(|(_, w)| *w).collect();
    let articles = store.articles_between(start, end).await?;
    // Stories are merged per distinct window; every topic's entries are chosen first ...
    let groups = select::stories_by_window(&windows, articles.into());
    let earlier: Vec<Vec<HashMap<i64, i64>>> = groups
        .iter()
        .map(|(members, stories)| {
            members
                .iter()
                .map(|&i| stories.remap_earlier(&carried[i]))
                .collect()
        })
        .collect();
    let mut picked = Vec::with_capacity(wanted.len());
    for ((members, stories), earlier) in groups.iter().zip(&earlier) {
        let periods: Vec<TopicPeriod<'_>> = members
            .iter()
            .zip(earlier)
            .map(|(&i, earlier)| TopicPeriod {
                topic: wanted[i].0,
                window: wanted[i].1,
                earlier,
            })
            .collect();
        let chosen = select::choose_all(&periods, &stories.articles, &weights)?;
        picked.extend(
            members
                .iter()
                .zip(periods)
                .zip(chosen)
                .map(|((&i, period), chosen)| (i, period, chosen)),
        );
    }
    // ... then one summarizer pass for every topic, so `max_requests_per_run` bounds the run.
    let mut list: Vec<&Article> = picked
        .iter()
        .flat_map(|(_, _, chosen)| chosen.iter().map(|r| r.article))
        .collect();
    list.sort_by_key(|a| a.id);
    list.dedup_by_key(|a| a.id);
    let mut by_id = abstractive::summaries(settings, store, &list, now).await;
    let limits = summarize::Limits::from(&settings.summarizer);
    let mut written_by: HashMap<String, usize> = HashMap::new();
    let mut digests: Vec<Option<Digest>> = vec![None; wanted.len()];
    for (i, period, chosen) in &picked {
        digests[*i] = Some(select::build_digest(
            period.topic,
            period.window,
            chosen,
            |a| {
                // Computed once per article, however many topics pick it.
                let s = by_id
                    .entry(a.id)
                    .or_insert_with(|| summarize::summarize(a, limits));
                *written_by.entry(s.source.to_string()).or_default() += 1;
                s.text.clone()
            },
        ));
    }
    if !written_by.is_empty() {
        tracing::info!(summaries = ?written_by, "summaries by summariser");
    }
    digests
        .into_iter()
        .map(|d| d.ok_or_else(|| anyhow::anyhow!("no digest was built for a topic")))
        .collect()
}

/// The ranking inputs for periods ending by `end` and starting at `start`: the sources'
/// weights, `[ranking] default_percentile`, and every source's points over the trailing
/// `[ranking] trailing_days` before `end` (at least back to `start`). Compiling and `explain`
/// read points against the same distributions through this.
pub async fn ranking_weights(
    settings: &Settings,
    store: &Store,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
) -> anyhow::Result<Weights> {
    let trailing = end - chrono::Duration::days(i64::from(settings.ranking.trailing_days));
    let points = store.recent_points(trailing.min(start), end).await?;
    Ok(Weights::from_sources(&settings.sources)
        .with_default_percentile(settings.ranking.default_percentile)
        .with_recent_points(points))
}

/// What compiling a topic needs once its period and frozen issue are known.
enum Plan {
    /// Nothing to build: the issue frozen earlier.
    Frozen(CompiledIssue),
    /// Build the digest of `window`; `existing` is the issue re-frozen with `force`.
    Build {
        window: Window,
        existing: Option<StoredIssue>,
    },
}

/// The period of `topic` containing `at` and what compiling it needs: the issue frozen earlier
/// (unless `force`), or a digest to build; `force` is refused once the issue has deliveries.
async fn plan(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    at: DateTime<Utc>,
    force: bool,
) -> anyhow::Result<Plan> {
    let window = period(settings, topic, at)?;
    let existing = store.find_issue(&topic.slug, window.end).await?;
    if let Some(issue) = &existing {
        if !force {
            return Ok(Plan::Frozen(CompiledIssue {
                issue_id: issue.id,
                digest: issue.digest.clone(),
                newly_compiled: false,
            }));
        }
        let n = store.issue_delivery_count(issue.id).await?;
        anyhow::ensure!(
            n == 0,
            "issue {} of topic {:?} already has {n} deliveries queued or sent; it cannot be compiled again with --force",
            issue.id,
            topic.slug
        );
    }
    Ok(Plan::Build { window, existing })
}

/// Freezes a built digest (a new issue, or `existing` re-frozen under the same id); an empty
/// digest is never frozen and comes back as `Err`.
async fn freeze(
    store: &Store,
    digest: Digest,
    existing: Option<StoredIssue>,
    now: DateTime<Utc>,
) -> TopicCompiled {
    if digest.entries.is_empty() {
        return Ok(Err(digest));
    }
    let (issue, fresh) = match existing {
        Some(issue) => (store.refreeze_issue(issue.id, &digest, now).await?, true),
        None => store.insert_issue(&digest, now).await?,
    };
    Ok(Ok(CompiledIssue {
        issue_id: issue.id,
        digest: issue.digest,
        newly_compiled: fresh,
    }))
}

/// The issues of `topics` for the periods containing `at`, one [`TopicCompiled`] per topic in
/// order: the issue frozen earlier (re-frozen with `force`, refused once it has deliveries), or
/// a new one. Every digest to build comes from one load of the articles and one classification
/// pass for all those topics. Never freezes an empty digest: when nothing in a window is on
/// topic (for example because every source was down), nothing is stored for that topic (with
/// `force`, the existing issue stays as it was) and its empty digest comes back as `Err`, so a
/// later run can still compile the period. The outer error is a failure shared by all topics
/// (loading the articles).
pub async fn compile_topics<'t>(
    settings: &Settings,
    store: &Store,
    topics: impl IntoIterator<Item = &'t TopicSettings>,
    at: DateTime<Utc>,
    force: bool,
) -> anyhow::Result<Vec<TopicCompiled>> {
    let topics: Vec<&TopicSettings> = topics.into_iter().collect();
    let mut plans = Vec::with_capacity(topics.len());
    for topic in &topics {
        plans.push(plan(settings, store, topic, at, force).await);
    }
    let wanted: Vec<(&TopicSettings, Window)> = topics
        .iter()
        .zip(&plans)
        .filter_map(|(topic, plan)| match plan {
            Ok(Plan::Build { window, .. }) => Some((*topic, *window)),
            _ => None,
        })
        .collect();
    let now = Utc::now();
    let mut built = build_digests(settings, store, &wanted, now)
        .await?
        .into_iter();
    let mut out = Vec::with_capacity(plans.len());
    for plan in plans {
        out.push(match plan {
            Err(e) => Err(e),
            Ok(Plan::Frozen(issue)) => Ok(Ok(issue)),
            Ok(Plan::Build { existing, .. }) => match built.next() {
                Some(digest) => freeze(store, digest, existing, now).await,
                None => Err(anyhow::anyhow!("no digest was built for a topic")),
            },
        });
    }
    Ok(out)
}

/// [`compile_topics`] for one topic: the issue of `topic` for the period containing `at`, or
/// its empty digest as `Err` (nothing stored).
pub async fn compile_period(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    at: DateTime<Utc>,
    force: bool,
) -> TopicCompiled {
    compile_topics(settings, store, [topic], at, force)
        .await?
        .into_iter()
        .next()
        .unwrap_or_else(|| Err(anyhow::anyhow!("topic {:?} was not compiled", topic.slug)))
}

/// Freezes (or returns the already frozen) issue of `topic` for the period containing `at`.
/// `force` re-freezes the same issue id, refused once the issue has deliveries. An empty
/// digest is never frozen: that is an error here (see [`compile_period`] to handle it).
pub async fn compile_issue(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    at: DateTime<Utc>,
    force: bool,
) -> anyhow::Result<CompiledIssue> {
    match compile_period(settings, store, topic, at, force).await? {
        Ok(compiled) => Ok(compiled),
        Err(digest) => anyhow::bail!("{}", NothingOnTopic(&digest)),
    }
}

/// The digest `compile` would freeze now for the period containing `at`, built the same way;
/// stores nothing but fetched data (cached summaries).
pub async fn preview_digest(
    settings: &Settings,
    store: &Store,
    topic: &TopicSettings,
    at: DateTime<Utc>,
) -> anyhow::Result<Digest> {
    let window = period(settings, topic, at)?;
    build_digests(settings, store, &[(topic, window)], Utc::now())
        .await?
        .pop()
        .ok_or_else(|| anyhow::anyhow!("no digest was built for topic {:?}", topic.slug))
}
