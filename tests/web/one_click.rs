//! RFC 8058 one-click unsubscribe over real HTTP on loopback, the way mailbox providers send it:
//! a multipart/form-data POST written byte for byte as Gmail does (no cookie, no Origin, no
//! CSRF token) and an urlencoded one from a real HTTP client; both answer 200 with no redirect
//! and no cookie, and repeating them changes nothing more. Then the documented choice for odd
//! bodies: a POST with a valid token but a body that is neither `List-Unsubscribe=One-Click`
//! nor our page's form still leaves the token's topic (the signed token is the credential and
//! the POST the intent; refusing would risk ignoring a real unsubscribe), never more than that
//! topic, while an oversized body is refused with 413 and changes nothing.

use std::net::SocketAddr;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tidings::domain::SubscriberStatus;
use tidings::web::Application;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::{TestApp, local};
use crate::support::db::{Backend, per_backend};

/// Serves `app` on 127.0.0.1:0 until the returned sender is dropped or fired.
async fn serve(app: &TestApp) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Application::from_listener(app.state.clone(), listener);
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A raw HTTP/1.1 response: status code, lower-cased header lines, body.
struct RawAnswer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl RawAnswer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Sends `request` as is over a new TCP connection (`Connection: close`) and reads the answer.
async fn raw_http(addr: SocketAddr, request: &[u8]) -> RawAnswer {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(request).await.unwrap();
    let mut raw = Vec::new();
    stream.read_to_end(&mut raw).await.unwrap();
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").expect("a complete HTTP answer");
    let mut lines = head.split("\r\n");
    let status = lines
        .next()
        .and_then(|l| l.split(' ').nth(1))
        .and_then(|c| c.parse().ok())
        .expect("a status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    RawAnswer {
        status,
        headers,
        body: body.to_string(),
    }
}

/// The request Gmail sends for `List-Unsubscribe-Post: List-Unsubscribe=One-Click`: a
/// multipart/form-data body with one field, and nothing that identifies the reader but the URL.
fn gmail_one_click(addr: SocketAddr, path: &str) -> Vec<u8> {
    let boundary = "000000000000a1b2c3d4e5f60718";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"List-Unsubscribe\"\r\n\r\nOne-Click\r\n--{boundary}--\r\n"
    );
    format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: multipart/form-data; boundary={boundary}\r\nContent-Length: {}\r\nAccept-Encoding: gzip\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

per_backend!(one_click_posts_over_http_in_both_encodings_answer_200_without_redirect_or_cookie);
async fn one_click_posts_over_http_in_both_encodings_answer_200_without_redirect_or_cookie(
    backend: Backend,
) {
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let label = app.label;
    let (addr, _stop) = serve(&app).await;

    // multipart/form-data (RFC 8058 SHOULD), as Gmail sends it.
    let jo = app
        .add_confirmed("jo@example.com", &["rust", "databases"])
        .await;
    let path = format!("/unsubscribe/{}", app.state.tokens.unsubscribe(jo, "rust"));
    for attempt in 1..=2 {
        let a = raw_http(addr, &gmail_one_click(addr, &path)).await;
        assert_eq!(a.status, 200, "{label} attempt {attempt}: {}", a.body);
        assert_eq!(a.header("location"), None, "{label}: no redirect");
        assert_eq!(a.header("set-cookie"), None, "{label}: no cookie");
        assert!(a.body.contains("You are unsubscribed"), "{label}");
        let s = app.store.get_subscriber(jo).await.unwrap().unwrap();
        assert_eq!(s.topics, vec!["databases".to_string()], "{label}");
        assert_eq!(s.status, SubscriberStatus::Confirmed, "{label}");
    }

    // application/x-www-form-urlencoded (RFC 8058 MAY), from a real client that would
    // show a redirect rather than follow it.
    let kim = app.add_confirmed("kim@example.com", &["rust"]).await;
    let url = format!(
        "http://{addr}/unsubscribe/{}",
        app.state.tokens.unsubscribe(kim, "rust")
    );
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for attempt in 1..=2 {
        let a = client
            .post(&url)
            .form(&[("List-Unsubscribe", "One-Click")])
            .send()
            .await
            .unwrap();
        assert_eq!(a.status(), 200, "{label} attempt {attempt}");
        assert!(a.headers().get(header::LOCATION).is_none(), "{label}");
        assert!(a.headers().get(header::SET_COOKIE).is_none(), "{label}");
        let s = app.store.get_subscriber(kim).await.unwrap().unwrap();
        assert_eq!(s.status, SubscriberStatus::Unsubscribed, "{label}");
        assert!(s.topics.is_empty(), "{label}");
    }
}

per_backend!(a_valid_token_with_an_unexpected_body_leaves_only_the_tokens_topic);
async fn a_valid_token_with_an_unexpected_body_leaves_only_the_tokens_topic(backend: Backend) {
    let odd_bodies: [(&str, Option<&str>, &str); 8] = [
        ("no body, no type", None, ""),
        ("text/plain", Some("text/plain"), "hello"),
        (
            "json",
            Some("application/json"),
            r#"{"List-Unsubscribe":"One-Click"}"#,
        ),
        (
            "urlencoded, other field",
            Some("application/x-www-form-urlencoded"),
            "foo=bar",
        ),
        (
            "urlencoded, wrong value",
            Some("application/x-www-form-urlencoded"),
            "List-Unsubscribe=Two-Clicks",
        ),
        (
            "multipart without a boundary",
            Some("multipart/form-data"),
            "garbage",
        ),
        (
            "multipart, other field",
            Some("multipart/form-data; boundary=b"),
            "--b\r\nContent-Disposition: form-data; name=\"foo\"\r\n\r\nbar\r\n--b--\r\n",
        ),
        (
            // Only our own page's urlencoded form may ask for everything.
            "multipart carrying scope=all",
            Some("multipart/form-data; boundary=b"),
            "--b\r\nContent-Disposition: form-data; name=\"scope\"\r\n\r\nall\r\n--b--\r\n",
        ),
    ];
    let Some(app) = TestApp::on(backend).await else {
        return;
    };
    let label = app.label;
    for (i, (what, content_type, body)) in odd_bodies.iter().enumerate() {
        let id = app
            .add_confirmed(&format!("odd{i}@example.com"), &["rust", "databases"])
            .await;
        let uri = format!("/unsubscribe/{}", app.state.tokens.unsubscribe(id, "rust"));
        let mut request = Request::post(&uri);
        if let Some(ct) = content_type {
            request = request.header(header::CONTENT_TYPE, *ct);
        }
        let a = app
            .send(request.body(Body::from(body.to_string())).unwrap(), local())
            .await;
        assert_eq!(a.status, StatusCode::OK, "{label}, {what}: {}", a.body);
        assert!(!a.headers.contains_key(header::LOCATION), "{label}, {what}");
        let s = app.store.get_subscriber(id).await.unwrap().unwrap();
        assert_eq!(
            s.topics,
            vec!["databases".to_string()],
            "{label}, {what}: the token's topic and nothing more"
        );
        assert_eq!(s.status, SubscriberStatus::Confirmed, "{label}, {what}");
    }

    // A body over `[web] max_body_bytes` is refused before the handler runs.
    let id = app
        .add_confirmed("big@example.com", &["rust", "databases"])
        .await;
    let uri = format!("/unsubscribe/{}", app.state.tokens.unsubscribe(id, "rust"));
    let huge = format!(
        "List-Unsubscribe=One-Click&pad={}",
        "x".repeat(app.state.settings.web.max_body_bytes)
    );
    let a = app.post_form(&uri, &huge).await;
    assert_eq!(a.status, StatusCode::PAYLOAD_TOO_LARGE, "{label}");
    let s = app.store.get_subscriber(id).await.unwrap().unwrap();
    assert_eq!(s.topics.len(), 2, "{label}: nothing changed");
}
