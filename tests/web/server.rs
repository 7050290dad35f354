//! The web server itself over real TCP on loopback, in-process and as the real `tidings serve`
//! binary: connections that never finish a request head are closed after
//! `[web] header_read_timeout_secs`; one client address cannot hold more than
//! `[web] max_connections_per_client` connections, so the site keeps answering others even under
//! a low open-file limit; SIGTERM ends `serve` within `[web] shutdown_grace_secs` while a
//! client holds a connection, after finishing the request in flight; `/healthz` answers 503
//! quickly when the database refuses writes or is gone; `/metrics` without a token answers only
//! loopback and trusted proxies; a loopback `base_url` on another port than `bind` is warned
//! about at start.
//!
//! Waits are on events (a socket read returning 0, a line on stderr, the process exiting), each
//! with a generous upper bound so a regression fails instead of hanging.

use std::net::{IpAddr, SocketAddr};
use std::process::Stdio;
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use tidings::store::Store;
use tidings::web::AppState;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpSocket, TcpStream};
use tokio::task::JoinSet;

use super::{TestApp, settings};
use crate::support::cli::TestEnv;
use crate::support::db;

/// The most any single wait in this file may take before the test fails.
const BOUND: Duration = Duration::from_secs(30);

/// Serves an app on 127.0.0.1:0 with `extra` TOML; stops when the returned sender is dropped.
async fn serve(store: Store, extra: &str) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let state = AppState::new(std::sync::Arc::new(settings(extra)), store).unwrap();
    super::live::serve(state).await
}

/// Reads until the peer closes the connection (read returns 0 or the connection is reset);
/// returns what arrived, or None when it is still open after [`BOUND`].
async fn until_closed(stream: &mut TcpStream) -> Option<Vec<u8>> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
    };
    tokio::time::timeout(BOUND, read).await.ok()?;
    Some(got)
}

/// Reads one HTTP/1.1 response (head and a `Content-Length` body) off a kept-alive connection
/// and returns its status code.
async fn read_response(stream: &mut TcpStream) -> u16 {
    let read = async {
        let mut raw = Vec::new();
        let mut buf = [0u8; 4096];
        loop {
            if let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&raw[..end]).to_ascii_lowercase();
                let status: u16 = head
                    .split(' ')
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .expect("a status code");
                if status == 100 {
                    raw.drain(..end + 4);
                    continue;
                }
                let length: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse().expect("a length"))
                    .unwrap_or(0);
                if raw.len() >= end + 4 + length {
                    return status;
                }
            }
            let n = stream.read(&mut buf).await.expect("read the response");
            assert!(n > 0, "closed before a whole response: {raw:?}");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("a response in time")
}

/// Reads until `100 Continue` arrives: the server is now reading the request's body, so the
/// request is in flight.
async fn read_continue(stream: &mut TcpStream) {
    let mut raw = Vec::new();
    let mut buf = [0u8; 256];
    let read = async {
        while !raw.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.expect("read 100 Continue");
            assert!(n > 0, "closed before 100 Continue");
            raw.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(BOUND, read)
        .await
        .expect("100 Continue in time");
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 100"), "{text}");
}

/// A connection to `addr` from the loopback address `from` (all of 127/8 is loopback on Linux).
async fn connect_from(from: &str, addr: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::new(from.parse().unwrap(), 0))
        .unwrap();
    socket.connect(addr).await.unwrap()
}

#[tokio::test]
async fn silent_half_sent_and_idle_keep_alive_connections_are_closed_after_the_header_timeout() {
    let (addr, _stop) = serve(db::sqlite().await, "[web]\nheader_read_timeout_secs = 1\n").await;
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(("silent", TcpStream::connect(addr).await.unwrap()));
    }
    for _ in 0..3 {
        let mut s = TcpStream::connect(addr).await.unwrap();
        s.write_all(b"GET /healthz HTTP/1.1\r\nHost: news.test\r\nUser-Ag")
            .await
            .unwrap();
        open.push(("half-sent headers", s));
    }
    let mut kept = TcpStream::connect(addr).await.unwrap();
    kept.write_all(b"GET /healthz HTTP/1.1\r\nHost: news.test\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut kept).await, 200);
    open.push(("idle keep-alive", kept));

    let mut waits = JoinSet::new();
    for (kind, mut stream) in open {
        waits.spawn(async move { (kind, until_closed(&mut stream).await.is_some()) });
    }
    while let Some(done) = waits.join_next().await {
        let (kind, closed) = done.unwrap();
        assert!(closed, "a {kind} connection is still open after {BOUND:?}");
    }
    // The server itself still answers.
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: news.test\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut fresh).await, 200);
}

/// `tidings serve` as a child process, its stderr read line by line.
struct Serve {
    child: tokio::process::Child,
    addr: SocketAddr,
    /// Lines printed before "listening on".
    before_listening: Vec<String>,
    lines: tokio::sync::mpsc::UnboundedReceiver<String>,
}

impl Serve {
    /// Starts `serve` in `env` (under `sh -c "ulimit -n N"` when `open_files` is given) and
    /// waits for its "listening on" line.
    async fn start(env: &TestEnv, open_files: Option<u32>) -> Serve {
        let std_cmd = env.command();
        let mut cmd = match open_files {
            Some(n) => {
                let mut c = tokio::process::Command::new("sh");
                c.arg("-c")
                    .arg(format!("ulimit -n {n} && exec \"$0\" \"$@\""))
                    .arg(std_cmd.get_program())
                    .args(std_cmd.get_args());
                c
            }
            None => {
                let mut c = tokio::process::Command::new(std_cmd.get_program());
                c.args(std_cmd.get_args());
                c
            }
        };
        cmd.current_dir(&env.dir)
            .arg("serve")
            .env_remove("TIDINGS_CONFIG")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        for (k, _) in std::env::vars() {
            if k.starts_with("TIDINGS__") {
                cmd.env_remove(k);
            }
        }
        let mut child = cmd.spawn().expect("start tidings serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, mut lines) = tokio::sync::mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut before_listening = Vec::new();
        let addr = loop {
            let line = tokio::time::timeout(BOUND, lines.recv())
                .await
                .expect("serve starts in time")
                .unwrap_or_else(|| panic!("serve ended early: {before_listening:#?}"));
            if let Some(rest) = line.split("listening on http://").nth(1) {
                break rest
                    .trim()
                    .parse::<SocketAddr>()
                    .expect("the bound address");
            }
            before_listening.push(line);
        };
        Serve {
            child,
            addr,
            before_listening,
            lines,
        }
    }

    /// Waits for a stderr line containing `needle`.
    async fn wait_for_line(&mut self, needle: &str) {
        let wait = async {
            while let Some(line) = self.lines.recv().await {
                if line.contains(needle) {
                    return true;
                }
            }
            false
        };
        assert!(
            tokio::time::timeout(BOUND, wait).await.unwrap_or(false),
            "no line with {needle:?} on serve's stderr"
        );
    }

    fn terminate(&self) {
        let pid = self.child.id().expect("serve is running");
        let status = std::process::Command::new("kill")
            .arg("-TERM")
            .arg(pid.to_string())
            .status()
            .expect("run kill");
        assert!(status.success());
    }
}

/// A `serve` configuration on `database_url` with `web` keys and a loopback base_url.
fn serve_env(database_url: &str, base_url: &str, web: &str) -> TestEnv {
    TestEnv::new(
        database_url,
        &format!(
            "[newsletter]\nbase_url = \"{base_url}\"\nsecret = \"a-serve-test-secret-that-is-long-enough-0123456789\"\n\n\
             [web]\nbind = \"127.0.0.1:0\"\n{web}\n"
        ),
    )
}

#[tokio::test]
async fn one_client_holding_many_connections_cannot_starve_the_others_under_a_low_file_limit() {
    // 300 idle connections from 127.0.0.1 against a process limited to 256 open files: without a
    // cap `serve` runs out of descriptors and stops accepting anyone.
    let env = serve_env(
        &db::sqlite_url(),
        "http://localhost:8080",
        "header_read_timeout_secs = 300\nmax_connections = 150\nmax_connections_per_client = 20\n",
    );
    let serve = Serve::start(&env, Some(256)).await;
    let mut idle = Vec::new();
    for _ in 0..300 {
        idle.push(connect_from("127.0.0.1", serve.addr).await);
    }
    let mut fresh = connect_from("127.0.0.2", serve.addr).await;
    fresh
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    assert_eq!(read_response(&mut fresh).await, 200);
    // The connection over the cap was closed at once (with a 429 when it could be written).
    let last = idle.last_mut().unwrap();
    let answer = until_closed(last)
        .await
        .expect("the connection over the per-client cap is closed");
    let text = String::from_utf8_lossy(&answer);
    assert!(
        text.is_empty() || text.starts_with("HTTP/1.1 429"),
        "{text}"
    );
}

#[tokio::test]
async fn sigterm_stops_serve_within_the_grace_period_after_finishing_the_request_in_flight() {
    let env = serve_env(
        &db::sqlite_url(),
        "http://localhost:8080",
        "shutdown_grace_secs = 1\nrequest_timeout_secs = 600\nheader_read_timeout_secs = 600\n",
    );
    let mut serve = Serve::start(&env, None).await;
    let body = b"email=reader%40example.com&topic=rust";
    let head = format!(
        "POST /subscribe HTTP/1.1\r\nHost: localhost:8080\r\nOrigin: http://localhost:8080\r\n\
         Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\n\
         Expect: 100-continue\r\n\r\n",
        body.len()
    );
    // A client that holds its connection: a request whose body never comes.
    let mut holder = TcpStream::connect(serve.addr).await.unwrap();
    holder.write_all(head.as_bytes()).await.unwrap();
    read_continue(&mut holder).await;
    // A silent connection too.
    let _silent = TcpStream::connect(serve.addr).await.unwrap();
    // A request in flight: its handler is reading the body when SIGTERM arrives.
    let mut in_flight = TcpStream::connect(serve.addr).await.unwrap();
    in_flight.write_all(head.as_bytes()).await.unwrap();
    read_continue(&mut in_flight).await;

    serve.terminate();
    serve.wait_for_line("shutting down").await;
    in_flight.write_all(body).await.unwrap();
    let status = read_response(&mut in_flight).await;
    assert!(
        (200..500).contains(&status) && status != 408,
        "the request in flight got {status}"
    );
    let exited = tokio::time::timeout(BOUND, serve.child.wait())
        .await
        .expect("serve exits while a client still holds a connection")
        .unwrap();
    assert!(exited.success(), "{exited:?}");
    assert!(
        until_closed(&mut holder).await.is_some(),
        "the held connection is closed"
    );
}

#[tokio::test]
async fn serve_warns_when_a_loopback_base_url_names_another_port_than_bind() {
    let env = serve_env(&db::sqlite_url(), "http://127.0.0.1:9", "");
    let serve = Serve::start(&env, None).await;
    let port = serve.addr.port();
    let warning = serve
        .before_listening
        .iter()
        .find(|l| l.contains("base_url"))
        .unwrap_or_else(|| panic!("no warning about base_url: {:#?}", serve.before_listening));
    assert!(warning.contains("warning"), "{warning}");
    assert!(warning.contains("http://127.0.0.1:9"), "{warning}");
    assert!(warning.contains(&format!("127.0.0.1:{port}")), "{warning}");
    assert!(warning.contains("web.bind"), "{warning}");
    serve.terminate();
}

#[tokio::test]
async fn serve_does_not_warn_about_a_public_base_url() {
    let env = serve_env(&db::sqlite_url(), "https://news.example.org", "");
    let serve = Serve::start(&env, None).await;
    assert!(
        !serve
            .before_listening
            .iter()
            .any(|l| l.contains("base_url")),
        "{:#?}",
        serve.before_listening
    );
    serve.terminate();
}

/// `GET /healthz` over real HTTP; the status code.
async fn healthz(addr: SocketAddr) -> u16 {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("an answer from /healthz")
        .status()
        .as_u16()
}

#[tokio::test]
async fn healthz_is_503_when_sqlite_refuses_writes() {
    let url = db::sqlite_url();
    // Keeps the database (and its WAL files) open read-write while the app reads it read-only.
    let writer = Store::open(&url, 1).await.unwrap();
    let read_only = Store::connect(&format!("{url}?mode=ro"), 2).await.unwrap();
    let (addr, _stop) = serve(read_only, "").await;
    assert_eq!(healthz(addr).await, 503);
    let (addr, _stop) = serve(writer, "").await;
    assert_eq!(healthz(addr).await, 200);
}

#[tokio::test]
async fn healthz_stays_200_while_another_sqlite_writer_holds_the_write_lock() {
    let url = db::sqlite_url();
    let store = Store::open(&url, 2).await.unwrap();
    let mut writer = <sqlx::SqliteConnection as sqlx::Connection>::connect(&url)
        .await
        .unwrap();
    sqlx::query("BEGIN IMMEDIATE")
        .execute(&mut writer)
        .await
        .unwrap();
    let (addr, _stop) = serve(store, "").await;
    assert_eq!(healthz(addr).await, 200);
    sqlx::query("ROLLBACK").execute(&mut writer).await.unwrap();
}

#[tokio::test]
async fn healthz_is_503_when_postgres_refuses_writes() {
    let Some(url) = db::postgres_url().await else {
        return;
    };
    let writer = Store::open(&url, 1).await.unwrap();
    let (addr, _stop) = serve(writer, "").await;
    assert_eq!(healthz(addr).await, 200);
    let name = url::Url::parse(&url)
        .unwrap()
        .path()
        .trim_start_matches('/')
        .to_string();
    let admin = std::env::var("TIDINGS_TEST_POSTGRES_URL").unwrap();
    let mut conn = <sqlx::PgConnection as sqlx::Connection>::connect(&admin)
        .await
        .unwrap();
    sqlx::query(sqlx::AssertSqlSafe(format!(
        "ALTER DATABASE {name} SET default_transaction_read_only = on"
    )))
    .execute(&mut conn)
    .await
    .unwrap();
    let read_only = Store::connect(&url, 2).await.unwrap();
    let (addr, _stop) = serve(read_only, "").await;
    assert_eq!(healthz(addr).await, 503);
}

/// A TCP relay to PostgreSQL whose plug can be pulled: then its port refuses connections and
/// every relayed connection is cut, as when the database server goes down.
struct Relay {
    addr: SocketAddr,
    tasks: JoinSet<()>,
}

impl Relay {
    async fn start(upstream: SocketAddr) -> Relay {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let mut tasks = JoinSet::new();
        tasks.spawn(async move {
            let mut relays = JoinSet::new();
            while let Ok((mut inbound, _)) = listener.accept().await {
                relays.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Relay { addr, tasks }
    }

    async fn pull_plug(mut self) {
        self.tasks.shutdown().await;
    }
}

#[tokio::test]
async fn healthz_is_503_at_once_when_postgres_is_down() {
    let Some(url) = db::postgres_url().await else {
        return;
    };
    let mut parsed = url::Url::parse(&url).unwrap();
    let upstream = tokio::net::lookup_host(format!(
        "{}:{}",
        parsed.host_str().unwrap(),
        parsed.port().unwrap_or(5432)
    ))
    .await
    .unwrap()
    .next()
    .unwrap();
    let relay = Relay::start(upstream).await;
    parsed.set_port(Some(relay.addr.port())).unwrap();
    parsed.set_host(Some("127.0.0.1")).unwrap();
    let store = Store::open(parsed.as_str(), 2).await.unwrap();
    let (addr, _stop) = serve(store, "").await;
    assert_eq!(healthz(addr).await, 200);
    relay.pull_plug().await;
    // Before: the pool kept retrying for its 30 s acquire timeout and the request timed out 408.
    assert_eq!(healthz(addr).await, 503);
}

fn metrics_request(authorization: Option<&str>) -> Request<Body> {
    let mut r = Request::get("/metrics");
    if let Some(a) = authorization {
        r = r.header(header::AUTHORIZATION, a);
    }
    r.body(Body::empty()).unwrap()
}

#[tokio::test]
async fn metrics_without_a_token_answer_loopback_and_refuse_other_clients() {
    let app = TestApp::new("sqlite", db::sqlite().await, settings(""));
    let public: IpAddr = "203.0.113.9".parse().unwrap();
    assert_eq!(
        app.send(metrics_request(None), public).await.status,
        StatusCode::FORBIDDEN
    );
    assert_eq!(
        app.send(metrics_request(None), super::local()).await.status,
        StatusCode::OK
    );
    let v6_loopback: IpAddr = "::1".parse().unwrap();
    assert_eq!(
        app.send(metrics_request(None), v6_loopback).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn metrics_without_a_token_refuse_a_client_forwarded_by_a_trusted_proxy() {
    let (addr, _stop) = serve(
        db::sqlite().await,
        "[web]\ntrusted_proxies = [\"127.0.0.1\"]\n",
    )
    .await;
    let client = reqwest::Client::new();
    let forwarded = client
        .get(format!("http://{addr}/metrics"))
        .header("X-Forwarded-For", "203.0.113.5")
        .send()
        .await
        .unwrap();
    assert_eq!(forwarded.status().as_u16(), 403);
    // The proxy's own scrape (no forwarding header) is answered.
    let direct = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .unwrap();
    assert_eq!(direct.status().as_u16(), 200);
}

#[tokio::test]
async fn metrics_accept_the_bearer_scheme_in_any_case() {
    let app = TestApp::new(
        "sqlite",
        db::sqlite().await,
        settings("[web]\nmetrics_token = \"s3cret-metrics\"\n"),
    );
    let public: IpAddr = "203.0.113.9".parse().unwrap();
    for scheme in ["Bearer", "bearer", "BEARER"] {
        let a = app
            .send(
                metrics_request(Some(&format!("{scheme} s3cret-metrics"))),
                public,
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{scheme}");
    }
    let a = app
        .send(metrics_request(Some("bearer wrong-token")), public)
        .await;
    assert_eq!(a.status, StatusCode::UNAUTHORIZED);
}
