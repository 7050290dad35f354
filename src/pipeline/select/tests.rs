//! Unit tests of selection: the window, membership and no-repeat rules, the domain cap and
//! limit, and the fast path (`choose_all`, `compile_all`) choosing what `explain_selection` does.

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

/// `explain`'s selection of one topic (a verdict for every article).
fn explained<'a>(
    topic: &TopicSettings,
    window: Window,
    articles: &'a [Article],
    earlier: &HashMap<i64, i64>,
) -> Selection<'a> {
    let period = TopicPeriod {
        topic,
        window,
        earlier,
    };
    explain_selection(period, articles, &Weights::default().observing(articles))
        .unwrap()
        .0
}

/// The fast path's choice for one topic.
fn fast<'a>(
    topic: &TopicSettings,
    window: Window,
    articles: &'a [Article],
    earlier: &HashMap<i64, i64>,
) -> Vec<Ranked<'a>> {
    let period = TopicPeriod {
        topic,
        window,
        earlier,
    };
    let mut chosen =
        choose_all(&[period], articles, &Weights::default().observing(articles)).unwrap();
    assert_eq!(chosen.len(), 1);
    chosen.pop().unwrap()
}

fn ids(chosen: &[Ranked<'_>]) -> Vec<i64> {
    chosen.iter().map(|r| r.article.id).collect()
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
    let sel = explained(&topic(), w, &arts, &earlier);
    assert_eq!(ids(&sel.chosen), vec![6, 7, 1]);
    assert_eq!(ids(&fast(&topic(), w, &arts, &earlier)), vec![6, 7, 1]);
    assert_eq!(sel.verdicts[&2], Verdict::OutsideWindow);
    assert!(matches!(sel.verdicts[&3], Verdict::Excluded { .. }));
    assert_eq!(sel.verdicts[&4], Verdict::NotOnTopic);
    assert_eq!(sel.verdicts[&5], Verdict::InEarlierIssue { issue_id: 11 });
    assert!(matches!(sel.verdicts[&8], Verdict::DomainCap { .. }));
    assert!(matches!(sel.verdicts[&9], Verdict::BeyondLimit { .. }));
    let mut t = topic();
    t.repeat = true;
    assert_eq!(fast(&t, w, &arts, &earlier)[0].article.id, 5);
    assert_eq!(explained(&t, w, &arts, &earlier).chosen[0].article.id, 5);
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
        &Weights::default().observing(&arts),
    )
    .unwrap();
    let a: Vec<i64> = ds[0].entries.iter().map(|e| e.article_id).collect();
    assert_eq!(a, ids(&fast(&topic(), w, &arts, &HashMap::new())));
    assert_eq!(
        a,
        ids(&explained(&topic(), w, &arts, &HashMap::new()).chosen)
    );
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
    let full = explained(&t, w, &arts, &HashMap::new());
    let fast = fast(&t, w, &arts, &HashMap::new());
    assert_eq!(ids(&fast), ids(&full.chosen));
    assert_eq!(fast.len(), 10);
    assert_eq!(
        fast.iter()
            .filter(|r| r.article.domain == "big.com")
            .count(),
        2
    );
    for (a, b) in fast.iter().zip(&full.chosen) {
        assert_eq!(a.score, b.score);
        assert_eq!(a.matched, b.matched);
    }
}

#[test]
fn one_pass_over_several_periods_chooses_what_each_topic_alone_chooses() {
    let end = Utc.with_ymd_and_hms(2026, 2, 9, 8, 0, 0).unwrap();
    // Three topics with different windows, keywords and earlier issues, compiled in one
    // pass over the union of their windows.
    let week = Window {
        start: end - chrono::Duration::days(7),
        end,
    };
    let month = Window {
        start: end - chrono::Duration::days(30),
        end: end - chrono::Duration::days(2),
    };
    let mut raft = topic();
    raft.limit = 4;
    let mut paxos = topic();
    paxos.slug = crate::domain::TopicSlug::parse("paxos").unwrap();
    paxos.keywords = vec!["paxos".into()];
    paxos.exclude = vec![];
    paxos.limit = 5;
    let mut both = topic();
    both.slug = crate::domain::TopicSlug::parse("both").unwrap();
    both.keywords = vec!["raft".into(), "paxos".into()];
    both.repeat = true;
    both.limit = 6;
    let arts: Vec<Article> = (0..120)
        .map(|i| {
            let title = match i % 4 {
                0 => "Raft notes",
                1 => "Paxos notes",
                2 => "Raft and Paxos crypto",
                _ => "Other",
            };
            let at = end - chrono::Duration::hours(i * 7 % (40 * 24));
            art(i, title, &format!("d{}.com", i % 9), (i * 37) % 500, at)
        })
        .collect();
    let earlier_raft: HashMap<i64, i64> = (0..120).step_by(8).map(|i| (i, 3)).collect();
    let earlier_paxos: HashMap<i64, i64> = (1..120).step_by(8).map(|i| (i, 4)).collect();
    let periods = [
        TopicPeriod {
            topic: &raft,
            window: week,
            earlier: &earlier_raft,
        },
        TopicPeriod {
            topic: &paxos,
            window: month,
            earlier: &earlier_paxos,
        },
        TopicPeriod {
            topic: &both,
            window: month,
            earlier: &earlier_raft,
        },
    ];
    let together = choose_all(&periods, &arts, &Weights::default().observing(&arts)).unwrap();
    assert_eq!(together.len(), 3);
    for (ti, (p, chosen)) in periods.iter().zip(&together).enumerate() {
        assert!(!chosen.is_empty(), "{}", p.topic.slug);
        let alone = fast(p.topic, p.window, &arts, p.earlier);
        let full = explained(p.topic, p.window, &arts, p.earlier);
        assert_eq!(ids(chosen), ids(&alone), "{}", p.topic.slug);
        assert_eq!(ids(chosen), ids(&full.chosen), "{}", p.topic.slug);
        for (a, b) in chosen.iter().zip(&full.chosen) {
            assert_eq!(
                a.matched.topic, ti,
                "a match names the topic's index in the pass"
            );
            assert_eq!(a.matched.title_keywords, b.matched.title_keywords);
            assert_eq!(a.score, b.score);
        }
        for r in chosen {
            assert!(p.window.contains(r.article.published_at));
            assert!(p.topic.repeat || !p.earlier.contains_key(&r.article.id));
        }
    }
}
