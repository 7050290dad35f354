//! The archive pages and Atom feed, `/healthz`, `/metrics` and unknown paths.

use axum::body::Body;
use axum::http::{Request, StatusCode, header};

use super::{TestApp, local};
use crate::support::db::{Backend, per_backend};

per_backend!(archive_lists_topics_and_the_feed_parses);
async fn archive_lists_topics_and_the_feed_parses(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let index = app.get("/archive").await;
    assert_eq!(index.status, StatusCode::OK, "{}", app.label);
    assert!(index.body.contains("Rust") && index.body.contains("/archive/rust/feed.xml"));
    let feed = app.get("/archive/rust/feed.xml").await;
    assert_eq!(feed.status, StatusCode::OK);
    assert!(
        feed.headers[header::CONTENT_TYPE]
            .to_str()
            .unwrap()
            .starts_with("application/atom+xml")
    );
    let parsed = feed_rs::parser::parse(feed.body.as_bytes()).expect("a valid Atom feed");
    assert_eq!(parsed.title.unwrap().content, "Tidings: Rust");
    for missing in [
        "/archive/cooking/feed.xml",
        "/archive/rust/999",
        "/archive/rust/abc",
        "/nope",
    ] {
        assert_eq!(
            app.get(missing).await.status,
            StatusCode::NOT_FOUND,
            "{missing}"
        );
    }
}

per_backend!(healthz_answers_and_metrics_need_the_bearer_token);
async fn healthz_answers_and_metrics_need_the_bearer_token(backend: Backend) {
    let Some(app) = TestApp::on_with(backend, "[web]\nmetrics_token = \"s3cret-metrics\"\n").await
    else {
        return;
    };
    assert_eq!(app.get("/healthz").await.status, StatusCode::OK);
    app.add_confirmed("ops@example.com", &["rust"]).await;
    assert_eq!(app.get("/metrics").await.status, StatusCode::UNAUTHORIZED);
    let wrong = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer nope")
        .body(Body::empty())
        .unwrap();
    assert_eq!(
        app.send(wrong, local()).await.status,
        StatusCode::UNAUTHORIZED
    );
    let right = Request::get("/metrics")
        .header(header::AUTHORIZATION, "Bearer s3cret-metrics")
        .body(Body::empty())
        .unwrap();
    let a = app.send(right, local()).await;
    assert_eq!(a.status, StatusCode::OK, "{}", app.label);
    assert!(a.body.contains("# TYPE tidings_subscribers gauge"));
    assert!(
        a.body
            .contains("tidings_subscribers{status=\"confirmed\"} 1"),
        "{}",
        a.body
    );
    assert!(a.body.contains("tidings_deliveries{status=\"queued\"} 0"));
    assert!(a.body.contains("tidings_issues{topic=\"rust\"} 0"));
}

per_backend!(the_feed_s_alternate_link_is_the_topic_s_page);
async fn the_feed_s_alternate_link_is_the_topic_s_page(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let feed = app.get("/archive/rust/feed.xml").await;
    let parsed = feed_rs::parser::parse(feed.body.as_bytes()).expect("a valid Atom feed");
    let alternate: Vec<&str> = parsed
        .links
        .iter()
        .filter(|l| l.rel.as_deref() == Some("alternate"))
        .map(|l| l.href.as_str())
        .collect();
    let topic_page = format!("{}/archive/rust", super::BASE_URL);
    assert_eq!(alternate, [topic_page.as_str()], "{}", app.label);
    let page = app.get("/archive/rust").await;
    assert_eq!(page.status, StatusCode::OK, "{}", app.label);
    assert!(page.body.contains("<h1>Rust</h1>"), "{}", page.body);
    assert!(page.body.contains("/archive/rust/feed.xml"));
    assert!(!page.body.contains("Databases</h2>"), "only the one topic");
    assert_eq!(
        app.get("/archive/cooking").await.status,
        StatusCode::NOT_FOUND
    );
}

per_backend!(pages_follow_the_reader_s_colour_scheme);
async fn pages_follow_the_reader_s_colour_scheme(backend: Backend) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let css = app.get("/static/style.css").await;
    assert!(
        css.body.contains("@media (prefers-color-scheme: dark)"),
        "no dark mode in the stylesheet"
    );
    for path in ["/", "/archive", "/archive/rust", "/nope"] {
        let page = app.get(path).await;
        assert!(
            page.body
                .contains(r#"<meta name="color-scheme" content="light dark">"#),
            "{}: {path} does not declare its colour schemes",
            app.label
        );
    }
}
