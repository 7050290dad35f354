//! `tidings extract`: one page's metadata, main text and summary, from a local file (no
//! configuration file, no database) and from a loopback HTTP server through the guarded
//! client, with the exit codes an operator sees.

use std::path::{Path, PathBuf};
use std::process::Output;

use axum::Router;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Redirect};
use axum::routing::get;

use crate::support::cli::{stderr, stdout};

const BOILERPLATE: &str = include_str!("fixtures/extract/boilerplate.html");
const WINDOWS_1252: &[u8] = include_bytes!("fixtures/extract/windows-1252.html");

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/extract")
        .join(name)
}

/// The binary run in an empty temporary directory (so no `config/tidings.toml`), with nothing
/// of the environment's configuration, and `config` (TOML) as its configuration file if given.
async fn tidings(args: &[&str], config: Option<&str>) -> Output {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.current_dir(dir.path())
        .env_remove("TIDINGS_CONFIG")
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS__") {
            cmd.env_remove(k);
        }
    }
    if let Some(text) = config {
        let path = dir.path().join("tidings.toml");
        std::fs::write(&path, text).expect("write config");
        cmd.arg("--config").arg(path);
    }
    cmd.arg("extract").args(args);
    cmd.output().await.expect("run tidings")
}

fn json(out: &Output) -> serde_json::Value {
    assert!(
        out.status.success(),
        "exit {:?}: {}",
        out.status,
        stderr(out)
    );
    serde_json::from_str(&stdout(out)).expect("one JSON object")
}

const GAZETTE: &str = "https://gazette.example/2024/03/14/story";

#[tokio::test]
async fn a_file_gives_title_metadata_summary_and_main_text_without_any_configuration() {
    let path = fixture("boilerplate.html");
    let out = tidings(&[path.to_str().expect("path"), "--url", GAZETTE], None).await;
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    for line in [
        format!("url:         {GAZETTE}"),
        "title:       How Harrow Lane Library rebuilt its catalogue".into(),
        "author:      Mara Okafor, Tom Reyes".into(),
        "published:   2024-03-14T08:30:00Z".into(),
        "canonical:   https://gazette.example/2024/03/harrow-lane-catalogue".into(),
        "extractor:   trafilatura".into(),
    ] {
        assert!(
            text.lines().any(|l| l == line),
            "no line {line:?} in\n{text}"
        );
    }
    let (head, body) = text.split_once("\ntext:\n").expect("a text section");
    // The page's description is a real summary, so it leads and the article's sentences follow.
    let summary = head
        .split_once("\nsummary (description+extractive):\n")
        .expect("a summary section")
        .1
        .trim();
    assert!(
        summary.starts_with("A volunteer team moved 48,000 records"),
        "{summary}"
    );
    assert!(summary.split_whitespace().count() >= 20, "{summary}");
    assert!(body.contains("The volunteers won. Over nine weeks, a team of eleven people"));
    assert!(body.contains("\n\nKeeping the doors open\n\n"), "{body}");
    for junk in [
        "Most read",
        "Share on Facebook",
        "cookies",
        "All rights reserved",
    ] {
        assert!(!text.contains(junk), "{junk:?} in\n{text}");
    }
}

#[tokio::test]
async fn json_has_every_field_with_words_counted_and_paragraphs_kept() {
    let path = fixture("boilerplate.html");
    let v = json(
        &tidings(
            &[path.to_str().expect("path"), "--url", GAZETTE, "--json"],
            None,
        )
        .await,
    );
    let mut keys: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "author",
            "description",
            "published",
            "summary",
            "summary_source",
            "text",
            "title",
            "url",
            "words"
        ]
    );
    assert_eq!(v["url"], GAZETTE);
    assert_eq!(v["title"], "How Harrow Lane Library rebuilt its catalogue");
    assert_eq!(v["author"], "Mara Okafor, Tom Reyes");
    assert_eq!(v["published"], "2024-03-14T08:30:00Z");
    assert!(
        v["description"]
            .as_str()
            .is_some_and(|d| d.starts_with("A volunteer team moved 48,000 records"))
    );
    let text = v["text"].as_str().expect("text");
    assert!(text.starts_with("For twenty-six years"), "{text}");
    assert!(text.contains(".\n\nThe volunteers won."), "{text}");
    assert_eq!(v["words"], text.split_whitespace().count());
    assert!(
        v["words"].as_u64().is_some_and(|n| n > 200),
        "{}",
        v["words"]
    );
    assert!(v["summary"].as_str().is_some_and(|s| !s.is_empty()));
    assert_eq!(v["summary_source"], "description+extractive");
}

#[tokio::test]
async fn a_file_without_url_has_no_address_when_its_canonical_link_is_relative() {
    let path = fixture("boilerplate.html");
    let v = json(&tidings(&[path.to_str().expect("path"), "--json"], None).await);
    assert!(v["url"].is_null(), "{}", v["url"]);
    assert_eq!(v["title"], "How Harrow Lane Library rebuilt its catalogue");
}

#[tokio::test]
async fn a_file_in_windows_1252_reads_by_its_own_declaration() {
    let path = fixture("windows-1252.html");
    let v = json(&tidings(&[path.to_str().expect("path"), "--json"], None).await);
    let text = v["text"].as_str().expect("text");
    assert!(
        text.contains("“noisette” at the café on Rue Mércière now costs €2.40"),
        "{text}"
    );
    assert_eq!(v["author"], "Zoé Lefèvre");
    assert_eq!(v["published"], "2023-11-02T00:00:00Z");
}

#[tokio::test]
async fn an_unreadable_file_exits_2_naming_it() {
    let out = tidings(&["no/such/page.html"], None).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("cannot read no/such/page.html"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
}

#[tokio::test]
async fn a_url_flag_that_is_not_an_http_address_exits_2() {
    let path = fixture("boilerplate.html");
    let out = tidings(
        &[path.to_str().expect("path"), "--url", "/relative/path"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--url \"/relative/path\""),
        "{}",
        stderr(&out)
    );
}

/// A loopback site: the boilerplate page, the windows-1252 page (said in the header), a
/// redirect to the first, a JSON document and nothing else.
async fn site() -> (String, tokio::task::JoinHandle<()>) {
    let app = Router::new()
        .route(
            "/article",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
                    BOILERPLATE,
                )
            }),
        )
        .route(
            "/latin",
            get(|| async {
                (
                    [(header::CONTENT_TYPE, "text/html; charset=windows-1252")],
                    WINDOWS_1252,
                )
            }),
        )
        .route("/moved", get(|| async { Redirect::temporary("/article") }))
        .route(
            "/data.json",
            get(|| async { ([(header::CONTENT_TYPE, "application/json")], "{}") }),
        )
        .fallback(|| async { (StatusCode::NOT_FOUND, "no such page").into_response() });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let base = format!("http://{}", listener.local_addr().expect("addr"));
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (base, task)
}

const LOOPBACK_ALLOWED: &str = "[fetch]\nallow_private_addresses = true\nretries = 0\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_url_is_fetched_through_the_guarded_client_after_redirects() {
    let (base, server) = site().await;
    let v = json(
        &tidings(
            &[&format!("{base}/moved"), "--json"],
            Some(LOOPBACK_ALLOWED),
        )
        .await,
    );
    assert_eq!(v["url"], format!("{base}/article"));
    assert_eq!(v["title"], "How Harrow Lane Library rebuilt its catalogue");
    assert!(
        v["text"]
            .as_str()
            .is_some_and(|t| t.starts_with("For twenty-six years"))
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fetched_page_is_decoded_by_the_charset_its_response_names() {
    let (base, server) = site().await;
    let v = json(
        &tidings(
            &[&format!("{base}/latin"), "--json"],
            Some(LOOPBACK_ALLOWED),
        )
        .await,
    );
    let text = v["text"].as_str().expect("text");
    assert!(
        text.contains("a naïve visitor can still find an espresso for €1.50"),
        "{text}"
    );
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_address_guard_refuses_loopback_unless_the_configuration_allows_it() {
    let (base, server) = site().await;
    let url = format!("{base}/article");
    let out = tidings(&[&url], None).await;
    assert_eq!(out.status.code(), Some(2), "{}", stdout(&out));
    let err = stderr(&out);
    assert!(
        err.contains(&format!("cannot fetch {url}")) && err.contains("refused"),
        "{err}"
    );
    assert_eq!(stdout(&out), "");
    server.abort();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_page_or_one_that_is_not_html_exits_2_naming_it() {
    let (base, server) = site().await;
    let missing = format!("{base}/gone");
    let out = tidings(&[&missing], Some(LOOPBACK_ALLOWED)).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!("cannot fetch {missing}")),
        "{}",
        stderr(&out)
    );
    assert!(stderr(&out).contains("404"), "{}", stderr(&out));

    let data = format!("{base}/data.json");
    let out = tidings(&[&data], Some(LOOPBACK_ALLOWED)).await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains(&format!(
            "cannot extract {data}: not an HTML page (application/json)"
        )),
        "{}",
        stderr(&out)
    );
    server.abort();
}

#[tokio::test]
async fn url_flag_with_a_url_source_is_a_usage_error() {
    let out = tidings(
        &["https://example.com/a", "--url", "https://example.com/b"],
        None,
    )
    .await;
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("--url gives a local file's address"),
        "{}",
        stderr(&out)
    );
}
