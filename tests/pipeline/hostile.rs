//! Hostile input and the SSRF guard: a 50 MB body, a 1-byte-per-second trickle, a gzip bomb,
//! invalid UTF-8, refused loopback/private addresses (IP literals, names through an injected
//! resolver, and redirects), each checked by a listener that must see no connection.

use std::io::Write;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use futures::FutureExt;
use tidings::config::FetchSettings;
use tidings::sources::http::{FetchError, HostResolver, HttpClient, ResolveFuture};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Clone)]
enum Mode {
    Big,
    Trickle,
    Fixed(Vec<u8>),
}

async fn read_head(s: &mut TcpStream) {
    let mut buf = Vec::new();
    let mut b = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match s.read(&mut b).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&b[..n]),
        }
    }
}

async fn raw_server(mode: Mode) -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = l.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((mut s, _)) = l.accept().await else {
                return;
            };
            let mode = mode.clone();
            tokio::spawn(async move {
                read_head(&mut s).await;
                match mode {
                    Mode::Big => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nConnection: close\r\n\r\n").await;
                        let chunk = vec![b'a'; 64 * 1024];
                        for _ in 0..(50 * 16) {
                            if s.write_all(&chunk).await.is_err() {
                                return;
                            }
                        }
                    }
                    Mode::Trickle => {
                        let _ = s.write_all(b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 1000\r\n\r\n").await;
                        for _ in 0..1000 {
                            if s.write_all(b"a").await.is_err() {
                                return;
                            }
                            tokio::time::sleep(Duration::from_secs(1)).await;
                        }
                    }
                    Mode::Fixed(bytes) => {
                        let _ = s.write_all(&bytes).await;
                    }
                }
            });
        }
    });
    addr
}

fn settings(allow_private: bool) -> FetchSettings {
    FetchSettings {
        allow_private_addresses: allow_private,
        retries: 0,
        timeout_secs: 1,
        connect_timeout_secs: 1,
        max_bytes: 1024 * 1024,
        ..FetchSettings::default()
    }
}

/// Resolves every name to one address.
struct FixedResolver(IpAddr);

impl HostResolver for FixedResolver {
    fn resolve(&self, _host: &str) -> ResolveFuture {
        let ip = self.0;
        Box::pin(async move { Ok(vec![ip]) })
    }
}

fn client(allow_private: bool, resolve_to: IpAddr, exempt: Vec<IpAddr>) -> HttpClient {
    HttpClient::with_resolver(
        &settings(allow_private),
        Arc::new(FixedResolver(resolve_to)),
        exempt,
    )
    .unwrap()
}

fn no_pending_connection(l: &TcpListener) -> bool {
    l.accept().now_or_never().is_none()
}

#[tokio::test]
async fn a_fifty_megabyte_body_is_cut_at_the_byte_cap() {
    let addr = raw_server(Mode::Big).await;
    let err = client(true, addr.ip(), vec![])
        .get(&format!("http://{addr}/big"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn a_trickle_is_cut_by_the_total_timeout() {
    let addr = raw_server(Mode::Trickle).await;
    let started = std::time::Instant::now();
    let err = client(true, addr.ip(), vec![])
        .get(&format!("http://{addr}/slow"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::Timeout { .. }), "{err}");
    // Not a speed assertion: the 1000-byte trickle would take 1000 s without the timeout.
    assert!(started.elapsed() < Duration::from_secs(60));
}

#[tokio::test]
async fn a_gzip_bomb_is_cut_after_decompression() {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let zeros = vec![0u8; 1024 * 1024];
    for _ in 0..16 {
        enc.write_all(&zeros).unwrap();
    }
    let gz = enc.finish().unwrap();
    assert!(
        gz.len() < 1024 * 1024,
        "the compressed body is under the cap itself"
    );
    let mut resp = format!("HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Encoding: gzip\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", gz.len()).into_bytes();
    resp.extend_from_slice(&gz);
    let addr = raw_server(Mode::Fixed(resp)).await;
    let err = client(true, addr.ip(), vec![])
        .get(&format!("http://{addr}/bomb"), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, FetchError::TooLarge { .. }), "{err}");
}

#[tokio::test]
async fn invalid_utf8_and_script_titles_from_hacker_news_stay_inert() {
    let mut json = br#"{"hits":[{"objectID":"1","title":"caf"#.to_vec();
    json.extend_from_slice(&[0xff, 0xfe]);
    json.extend_from_slice(br#" <script>alert(1)</script> raft","url":"https://e.example/a","points":50,"num_comments":1,"created_at_i":1770300000}],"nbHits":1,"nbPages":1}"#);
    let mut resp = format!("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n", json.len()).into_bytes();
    resp.extend_from_slice(&json);
    let addr = raw_server(Mode::Fixed(resp)).await;
    let source: tidings::config::SourceSettings = serde_json::from_value(serde_json::json!({
        "kind": "hackernews", "name": "HN", "base_url": format!("http://{addr}")
    }))
    .unwrap();
    let window = tidings::sources::FetchWindow {
        start: super::utc("2026-02-02T08:00:00Z"),
        end: super::utc("2026-02-09T08:00:00Z"),
    };
    let batch = tidings::sources::hacker_news::fetch(
        &client(true, addr.ip(), vec![]),
        &source,
        window,
        100,
    )
    .await
    .unwrap();
    assert_eq!(batch.items.len(), 1);
    assert_eq!(
        batch.items[0].title,
        "caf\u{fffd}\u{fffd} <script>alert(1)</script> raft"
    );
}

#[tokio::test]
async fn with_the_guard_on_a_loopback_listener_sees_no_connection() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c = client(false, "127.0.0.1".parse().unwrap(), vec![]);
    for u in [
        format!("http://127.0.0.1:{port}/"),
        format!("http://2130706433:{port}/"),
        format!("http://0x7f000001:{port}/"),
        format!("http://[::ffff:127.0.0.1]:{port}/"),
    ] {
        let err = c.get(&u, &[]).await.unwrap_err();
        assert!(matches!(err, FetchError::Refused { .. }), "{u}: {err}");
    }
    assert!(no_pending_connection(&l));
}

#[tokio::test]
async fn a_name_resolving_to_a_private_address_is_refused() {
    let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = l.local_addr().unwrap().port();
    let c = client(false, "127.0.0.1".parse().unwrap(), vec![]);
    let err = c
        .get(&format!("http://internal.example:{port}/"), &[])
        .await
        .unwrap_err();
    assert!(err.to_string().contains("non-public"), "{err}");
    assert!(no_pending_connection(&l));
    // Control: with private addresses allowed the same name connects.
    let open = client(true, "127.0.0.1".parse().unwrap(), vec![]);
    let probe = tokio::spawn(async move {
        open.get(&format!("http://internal.example:{port}/"), &[])
            .await
    });
    let accepted = tokio::time::timeout(Duration::from_secs(10), l.accept()).await;
    assert!(accepted.is_ok(), "the control request reached the listener");
    probe.abort();
}

#[tokio::test]
async fn a_redirect_from_an_allowed_host_to_a_private_address_is_refused() {
    let private = TcpListener::bind("127.0.0.2:0").await.unwrap();
    let p2 = private.local_addr().unwrap().port();
    for target in [
        format!("http://127.0.0.2:{p2}/meta"),
        format!("http://metadata.internal:{p2}/meta"),
        "http://169.254.169.254/latest/meta-data/".to_string(),
    ] {
        let resp = format!("HTTP/1.1 302 Found\r\nLocation: {target}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n").into_bytes();
        let addr = raw_server(Mode::Fixed(resp)).await;
        // The first hop (127.0.0.1) is exempt, as a public host would be; names resolve to 127.0.0.2.
        let c = client(
            false,
            "127.0.0.2".parse().unwrap(),
            vec!["127.0.0.1".parse().unwrap()],
        );
        let err = c
            .get(&format!("http://127.0.0.1:{}/start", addr.port()), &[])
            .await
            .unwrap_err();
        assert!(
            matches!(
                err,
                FetchError::Refused { .. } | FetchError::Transport { .. }
            ),
            "{target}: {err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("refused") || msg.contains("non-public"),
            "{target}: {msg}"
        );
        assert!(no_pending_connection(&private), "{target}");
    }
}
