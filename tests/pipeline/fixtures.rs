//! A loopback fixture server for the pipeline tests: the Algolia HN search API (honouring
//! numericFilters and paging, reporting nbHits like the real API), Lobsters JSON, RSS with ETag,
//! Atom, JSON Feed, a malformed feed, and article pages.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use serde_json::{Value, json};

#[derive(Clone, Debug)]
pub struct Story {
    pub id: String,
    pub title: String,
    pub url: Option<String>,
    pub points: i64,
    pub comments: i64,
    pub at: DateTime<Utc>,
    pub text: Option<String>,
}

impl Story {
    pub fn hn(id: &str, title: &str, url: Option<&str>, points: i64, at: DateTime<Utc>) -> Story {
        Story {
            id: id.into(),
            title: title.into(),
            url: url.map(str::to_string),
            points,
            comments: 3,
            at,
            text: None,
        }
    }
}

#[derive(Clone, Debug)]
#[allow(dead_code)] // start and end show in assertion messages
pub struct HnQuery {
    pub start: i64,
    pub end: i64,
    pub page: u64,
    pub matching: usize,
}

#[derive(Default)]
struct Inner {
    stories: Vec<Story>,
    queries: Vec<HnQuery>,
    headers: Vec<(String, HeaderMap)>,
}

#[derive(Clone)]
struct AppState {
    base: String,
    inner: Arc<Mutex<Inner>>,
}

pub struct FixtureServer {
    pub base: String,
    inner: Arc<Mutex<Inner>>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FixtureServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn u(s: &str) -> DateTime<Utc> {
    super::utc(s)
}

/// The standard world; `{BASE}` in URLs becomes the server's base URL.
pub fn standard_stories() -> Vec<Story> {
    let mut v = vec![
        Story {
            comments: 120,
            ..Story::hn(
                "100",
                "Raft consensus in practice",
                Some("{BASE}/page/raft?utm_source=hn"),
                302,
                u("2026-02-03T10:00:00Z"),
            )
        },
        Story {
            comments: 30,
            ..Story::hn(
                "200",
                "Paxos made simple again",
                Some("{BASE}/page/paxos"),
                150,
                u("2026-02-05T12:00:00Z"),
            )
        },
        Story {
            comments: 45,
            text: Some("<p>We run a small queue and want to test it properly.</p>".into()),
            ..Story::hn(
                "300",
                "Ask HN: How do you test distributed systems?",
                None,
                80,
                u("2026-02-04T09:00:00Z"),
            )
        },
        Story::hn(
            "400",
            "Pasta",
            Some("{BASE}/page/pasta"),
            500,
            u("2026-02-06T09:00:00Z"),
        ),
        Story::hn(
            "500",
            "Cooking with raft",
            Some("{BASE}/page/cooking"),
            400,
            u("2026-02-06T10:00:00Z"),
        ),
        Story::hn(
            "600",
            "Raft at the boundary",
            Some("{BASE}/page/boundary"),
            999,
            u("2026-02-09T08:00:00Z"),
        ),
        Story::hn(
            "700",
            "Raft tiny",
            Some("{BASE}/page/tiny"),
            5,
            u("2026-02-06T10:00:00Z"),
        ),
    ];
    v.iter_mut().for_each(|s| s.comments = s.comments.max(0));
    v
}

impl FixtureServer {
    pub async fn start(stories: Vec<Story>) -> FixtureServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let stories = stories
            .into_iter()
            .map(|mut s| {
                s.url = s.url.map(|u| u.replace("{BASE}", &base));
                s
            })
            .collect();
        let inner = Arc::new(Mutex::new(Inner {
            stories,
            ..Inner::default()
        }));
        let state = AppState {
            base: base.clone(),
            inner: inner.clone(),
        };
        let app = Router::new()
            .route("/api/v1/search_by_date", get(hn))
            .route("/hottest.json", get(lobsters_hottest))
            .route("/t/{tag}", get(lobsters_tag))
            .route("/rss.xml", get(rss))
            .route("/atom.xml", get(atom))
            .route("/feed.json", get(json_feed))
            .route(
                "/broken.xml",
                get(|| async {
                    (
                        [(header::CONTENT_TYPE, "application/rss+xml")],
                        "this is not a feed {{{",
                    )
                }),
            )
            .route("/page/{name}", get(page))
            .with_state(state);
        let task = tokio::spawn(async move {
            axum::serve(listener, app).await.unwrap();
        });
        FixtureServer { base, inner, task }
    }

    pub fn set_points(&self, id: &str, points: i64) {
        let mut g = self.inner.lock().unwrap();
        for s in g.stories.iter_mut().filter(|s| s.id == id) {
            s.points = points;
        }
    }

    pub fn hn_queries(&self) -> Vec<HnQuery> {
        self.inner.lock().unwrap().queries.clone()
    }

    pub fn saw_header(&self, path: &str, name: &str, value: &str) -> bool {
        self.inner
            .lock()
            .unwrap()
            .headers
            .iter()
            .any(|(p, h)| p == path && h.get(name).and_then(|v| v.to_str().ok()) == Some(value))
    }
}

async fn hn(State(st): State<AppState>, RawQuery(q): RawQuery) -> Response {
    let q = q.unwrap_or_default();
    let params: Vec<(String, String)> = url::form_urlencoded::parse(q.as_bytes())
        .into_owned()
        .collect();
    let get = |k: &str| {
        params
            .iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    assert_eq!(get("tags"), "story");
    let (mut start, mut end, mut min_points) = (i64::MIN, i64::MAX, i64::MIN);
    for f in get("numericFilters").split(',') {
        if let Some(v) = f.strip_prefix("created_at_i>=") {
            start = v.parse().unwrap();
        } else if let Some(v) = f.strip_prefix("created_at_i<") {
            end = v.parse().unwrap();
        } else if let Some(v) = f.strip_prefix("points>=") {
            min_points = v.parse().unwrap();
        } else {
            panic!("unexpected filter {f}");
        }
    }
    let page: u64 = get("page").parse().unwrap_or(0);
    let per: u64 = get("hitsPerPage").parse().unwrap_or(20);
    let mut g = st.inner.lock().unwrap();
    let mut matching: Vec<&Story> = g
        .stories
        .iter()
        .filter(|s| s.at.timestamp() >= start && s.at.timestamp() < end && s.points >= min_points)
        .collect();
    matching.sort_by_key(|s| std::cmp::Reverse(s.at));
    let total = matching.len();
    // Like Algolia: at most 1000 hits are reachable however many match.
    let reachable = total.min(1000) as u64;
    let pages = reachable.div_ceil(per);
    let hits: Vec<Value> = matching
        .iter()
        .skip((page * per) as usize)
        .take(if page < pages { per as usize } else { 0 })
        .map(|s| {
            json!({
                "objectID": s.id, "title": s.title, "url": s.url, "points": s.points,
                "num_comments": s.comments, "created_at_i": s.at.timestamp(), "story_text": s.text,
                "_tags": if s.url.is_none() { json!(["story", "ask_hn"]) } else { json!(["story"]) }
            })
        })
        .collect();
    let body =
        json!({"hits": hits, "nbHits": total, "nbPages": pages, "page": page, "hitsPerPage": per});
    g.queries.push(HnQuery {
        start,
        end,
        page,
        matching: total,
    });
    axum::Json(body).into_response()
}

async fn lobsters_hottest(State(st): State<AppState>) -> Response {
    let b = &st.base;
    axum::Json(json!([
        {"short_id": "abc", "title": "Raft consensus in practice", "url": format!("{b}/page/raft/#comments"), "score": 41,
         "comment_count": 10, "created_at": "2026-02-03T05:00:00.000-06:00", "comments_url": "https://lobste.rs/s/abc",
         "tags": ["distributed"], "description": ""},
        {"short_id": "def", "title": "Raft history", "url": format!("{b}/page/history"), "score": 90,
         "comment_count": 4, "created_at": "2026-01-10T10:00:00.000Z", "comments_url": "https://lobste.rs/s/def", "tags": ["history"]},
        {"short_id": "bad", "title": "Evil", "url": "javascript:alert(1)", "score": 900,
         "comment_count": 4, "created_at": "2026-02-04T10:00:00.000Z", "tags": []}
    ]))
    .into_response()
}

async fn lobsters_tag(State(st): State<AppState>, Path(tag): Path<String>) -> Response {
    assert_eq!(tag, "distributed.json");
    let b = &st.base;
    axum::Json(json!([
        {"short_id": "ghi", "title": "Consensus on the edge", "url": format!("{b}/page/edge"), "score": 0,
         "comment_count": 0, "created_at": "2026-02-07T10:00:00.000Z", "comments_url": "https://lobste.rs/s/ghi", "tags": ["distributed"]},
        {"short_id": "abc", "title": "Raft consensus in practice", "url": format!("{b}/page/raft/#comments"), "score": 41,
         "comment_count": 10, "created_at": "2026-02-03T05:00:00.000-06:00", "comments_url": "https://lobste.rs/s/abc", "tags": ["distributed"]}
    ]))
    .into_response()
}

async fn rss(State(st): State<AppState>, headers: HeaderMap) -> Response {
    st.inner
        .lock()
        .unwrap()
        .headers
        .push(("/rss.xml".into(), headers.clone()));
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        == Some("\"rss-v1\"")
    {
        return StatusCode::NOT_MODIFIED.into_response();
    }
    let b = &st.base;
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Blog</title><link>{b}/</link>
<item><title>&lt;script&gt;alert(1)&lt;/script&gt; Raft tips</title><link>{b}/page/tips</link><guid>tips</guid><pubDate>Wed, 04 Feb 2026 10:00:00 GMT</pubDate><description>&lt;p&gt;Tips for running &lt;b&gt;raft&lt;/b&gt; clusters.&lt;/p&gt;&lt;script&gt;steal()&lt;/script&gt;</description></item>
<item><title>Raft javascript link</title><link>javascript:alert(1)</link><pubDate>Wed, 04 Feb 2026 10:00:00 GMT</pubDate></item>
<item><title>Off topic gardening</title><link>{b}/page/garden</link><pubDate>Wed, 04 Feb 2026 11:00:00 GMT</pubDate></item>
</channel></rss>"#
    );
    (
        [
            (header::CONTENT_TYPE, "application/rss+xml"),
            (header::ETAG, "\"rss-v1\""),
        ],
        body,
    )
        .into_response()
}

async fn atom(State(st): State<AppState>) -> Response {
    let b = &st.base;
    let body = format!(
        r#"<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom"><title>A</title><id>urn:a</id><updated>2026-02-06T10:00:00Z</updated>
<entry><title>CRDTs in the wild</title><id>urn:a:1</id><link href="{b}/page/crdts"/><updated>2026-02-06T10:00:00Z</updated><summary>Replicated data types in production.</summary></entry>
</feed>"#
    );
    ([(header::CONTENT_TYPE, "application/atom+xml")], body).into_response()
}

async fn json_feed(State(st): State<AppState>) -> Response {
    let b = &st.base;
    axum::Json(json!({
        "version": "https://jsonfeed.org/version/1.1", "title": "J",
        "items": [{"id": "j1", "url": format!("{b}/page/ftq"), "title": "Fault-tolerant queues",
                   "date_published": "2026-02-05T10:00:00Z", "content_text": "Queues that survive crashes."}]
    }))
    .into_response()
}

async fn page(Path(name): Path<String>) -> Response {
    let body = match name.as_str() {
        "paxos" => r#"<html><head><meta name="description" content="Paxos, revisited for practitioners."></head><body>
<nav><p>Home Blog About Subscribe</p></nav><article><h1>Paxos</h1>
<p>Accept all cookies to continue reading this fine article about things.</p>
<p>The protocol lets a group of machines agree on one value even when some of them fail.</p>
<p>We walk through the prepare and accept phases with a running example of three acceptors.</p>
<p>Then we look at leader election, log compaction and the practical shortcuts real systems take.</p>
</article><footer><p>Copyright 2026</p></footer></body></html>"#
            .to_string(),
        other => format!("<html><head><title>{other}</title></head><body><article><p>Some words about the {other} page for readers.</p></article></body></html>"),
    };
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], body).into_response()
}
