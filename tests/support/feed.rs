//! A loopback RSS fixture for end-to-end tests: `/feed.xml` lists the given posts and
//! `/post/{n}` serves each post's page, so `fetch` exercises feed parsing and page extraction.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use chrono::{DateTime, Utc};

/// One post of the fixture feed.
#[derive(Clone, Debug)]
pub struct Post {
    pub title: String,
    pub published: DateTime<Utc>,
    pub body: String,
}

impl Post {
    pub fn new(title: &str, published: DateTime<Utc>, body: &str) -> Post {
        Post {
            title: title.into(),
            published,
            body: body.into(),
        }
    }
}

/// A running feed server.
pub struct FeedServer {
    pub base: String,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for FeedServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[derive(Clone)]
struct Site {
    base: String,
    posts: std::sync::Arc<Vec<Post>>,
}

impl FeedServer {
    pub async fn start(posts: Vec<Post>) -> FeedServer {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind feed server");
        let base = format!("http://{}", listener.local_addr().expect("addr"));
        let site = Site {
            base: base.clone(),
            posts: std::sync::Arc::new(posts),
        };
        let app = Router::new()
            .route("/feed.xml", get(feed))
            .route("/post/{n}", get(page))
            .with_state(site);
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        FeedServer { base, task }
    }

    pub fn feed_url(&self) -> String {
        format!("{}/feed.xml", self.base)
    }

    pub fn post_url(&self, n: usize) -> String {
        format!("{}/post/{n}", self.base)
    }
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

async fn feed(State(site): State<Site>) -> impl IntoResponse {
    let mut xml = String::from(
        "<?xml version=\"1.0\"?><rss version=\"2.0\"><channel><title>Fixture Blog</title><link>http://example.com/</link><description>posts</description>",
    );
    for (n, p) in site.posts.iter().enumerate() {
        xml.push_str(&format!(
            "<item><title>{}</title><link>{}/post/{n}</link><guid>post-{n}</guid><pubDate>{}</pubDate><description>{}</description></item>",
            esc(&p.title),
            site.base,
            p.published.to_rfc2822(),
            esc(&p.body)
        ));
    }
    xml.push_str("</channel></rss>");
    ([(header::CONTENT_TYPE, "application/rss+xml")], xml)
}

async fn page(State(site): State<Site>, Path(n): Path<usize>) -> impl IntoResponse {
    let Some(p) = site.posts.get(n) else {
        return (axum::http::StatusCode::NOT_FOUND, "no such post").into_response();
    };
    let html = format!(
        "<!doctype html><html><head><title>{t}</title><meta name=\"description\" content=\"{b}\"></head>\
         <body><nav>Home · About</nav><article><h1>{t}</h1><p>{b}</p><p>{b}</p></article><footer>© Fixture</footer></body></html>",
        t = esc(&p.title),
        b = esc(&p.body)
    );
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], html).into_response()
}
