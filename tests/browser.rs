//! End to end in headless Chromium (Debian's chromium + chromium-driver, driven over WebDriver
//! by fantoccini), with the real web app, the real delivery workers and the SMTP server of
//! tests/support/smtp.rs on loopback: subscribe through the form, read the confirmation email,
//! open its link, click Confirm, receive a digest compiled by the pipeline, follow the digest's
//! unsubscribe link (also checked against its List-Unsubscribe header), click the button, and
//! receive no further digest: the row queued before the click is skipped at claim time and an
//! issue compiled afterwards queues nothing for the reader; a known address entered in the form
//! gets a preferences link instead. Every page is checked with axe-core in light and dark mode,
//! must fit a 375 px phone (emulated through chromedriver's DevTools endpoint) and have a dark
//! background in dark mode, and is photographed at phone and desktop width into a
//! `tidings-screens-*` temp folder. Every email received (confirmation, digest, preferences
//! link) is laid out at 375 px too: it must fit, the digest's titles must look like links and
//! its footer links must be separate targets at least 44 px tall. Such problems are collected
//! and listed together at the end, so one run shows them all.
//!
//! Without chromium/chromedriver/axe-core the test prints a loud SKIPPED and passes, unless
//! `TIDINGS_REQUIRE_ALL=1`. axe-core comes from `TIDINGS_AXE_JS`, else
//! `target/axe/node_modules/axe-core/axe.min.js`, installed there once with npm (the only
//! network use, the npm registry) and reused by later runs.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use fantoccini::{Client, ClientBuilder, Locator};
use tidings::config::Settings;
use tidings::domain::{FetchedItem, SubscriberEmail, SubscriberStatus};
use tidings::pipeline;
use tidings::store::{AddOutcome, Store};
use tidings::web::{AppState, Application};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::support::smtp::{Faults, Received, SmtpServer};

/// The axe-core release the test installs (pinned so every run checks the same rules).
const AXE_VERSION: &str = "4.14.1";
const READER: &str = "reader@example.com";
const STAYER: &str = "stayer@example.com";
const MAIL_WAIT: Duration = Duration::from_secs(30);

fn skip_or_fail(why: &str) {
    eprintln!("!!!!!!!! browser end-to-end test SKIPPED: {why}");
    assert!(
        std::env::var("TIDINGS_REQUIRE_ALL").as_deref() != Ok("1"),
        "TIDINGS_REQUIRE_ALL=1 but the browser test cannot run: {why}"
    );
}

fn which(program: &str) -> Option<PathBuf> {
    std::env::var_os("PATH")?
        .to_str()?
        .split(':')
        .map(|d| Path::new(d).join(program))
        .find(|p| p.is_file())
}

/// The axe-core source: `TIDINGS_AXE_JS`, else the copy cached under target/axe, installed there
/// with npm when missing (into a scratch folder first, renamed into place when complete, so an
/// interrupted install is never mistaken for a cached one). A cached copy of another version
/// is replaced.
fn axe_source() -> Result<String, String> {
    if let Ok(path) = std::env::var("TIDINGS_AXE_JS") {
        return std::fs::read_to_string(&path).map_err(|e| format!("TIDINGS_AXE_JS={path}: {e}"));
    }
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
    let dir = target.join("axe");
    let file = dir.join("node_modules/axe-core/axe.min.js");
    let cached = std::fs::read_to_string(dir.join("node_modules/axe-core/package.json"))
        .ok()
        .and_then(|p| serde_json::from_str::<serde_json::Value>(&p).ok())
        .is_some_and(|p| p["version"] == AXE_VERSION);
    if !cached || !file.is_file() {
        let npm = which("npm").ok_or("npm is not installed (apt-get install npm)")?;
        std::fs::create_dir_all(&target).map_err(|e| format!("{}: {e}", target.display()))?;
        let scratch = target.join(format!("axe.partial-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&scratch);
        std::fs::create_dir_all(&scratch).map_err(|e| format!("{}: {e}", scratch.display()))?;
        let status = std::process::Command::new(npm)
            .args([
                "install",
                "--no-audit",
                "--no-fund",
                "--no-save",
                "--prefix",
            ])
            .arg(&scratch)
            .arg(format!("axe-core@{AXE_VERSION}"))
            .stdout(Stdio::null())
            .status()
            .map_err(|e| format!("cannot run npm: {e}"))?;
        if !status.success() {
            let _ = std::fs::remove_dir_all(&scratch);
            return Err(format!(
                "npm install axe-core@{AXE_VERSION} failed ({status})"
            ));
        }
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::rename(&scratch, &dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    std::fs::read_to_string(&file).map_err(|e| format!("{}: {e}", file.display()))
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

struct Driver(std::process::Child);

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

async fn start_browser(chromedriver: &Path, chromium: &Path, profile: &Path) -> (Driver, Client) {
    let port = free_port();
    let child = std::process::Command::new(chromedriver)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start chromedriver");
    let driver = Driver(child);
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        serde_json::json!({
            "binary": chromium,
            "args": [
                "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--disable-background-networking", "--disable-quic", "--no-first-run",
                "--disable-component-update", "--disable-sync", "--hide-scrollbars",
                "--window-size=375,812",
                format!("--user-data-dir={}", profile.display()),
            ]
        }),
    );
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let attempt = ClientBuilder::new(hyper_util::client::legacy::connect::HttpConnector::new())
            .capabilities(caps.clone())
            .connect(&url)
            .await;
        match attempt {
            Ok(client) => return (driver, client),
            Err(e) if Instant::now() > deadline => panic!("cannot start a WebDriver session: {e}"),
            Err(_) => tokio::time::sleep(Duration::from_millis(100)).await,
        }
    }
}

/// A Chrome DevTools Protocol command, sent through chromedriver's `goog/cdp/execute` endpoint.
#[derive(Debug)]
struct Cdp {
    cmd: &'static str,
    params: serde_json::Value,
}

impl fantoccini::wd::WebDriverCompatibleCommand for Cdp {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        base_url.join(&format!(
            "session/{}/goog/cdp/execute",
            session_id.unwrap_or_default()
        ))
    }

    fn method_and_body(&self, _: &url::Url) -> (axum::http::Method, Option<String>) {
        let body = serde_json::json!({ "cmd": self.cmd, "params": self.params });
        (axum::http::Method::POST, Some(body.to_string()))
    }
}

async fn cdp(client: &Client, cmd: &'static str, params: serde_json::Value) {
    client
        .issue_cmd(Cdp { cmd, params })
        .await
        .unwrap_or_else(|e| panic!("{cmd}: {e}"));
}

struct Pages {
    client: Client,
    axe: String,
    shots: PathBuf,
    count: usize,
    problems: Vec<String>,
}

impl Pages {
    /// Runs axe-core on the current page in light and in dark mode (failing on any violation),
    /// checks that nothing is wider than a 375 px phone screen, that the dark mode is dark, and
    /// saves screenshots at phone width (light and dark) and at desktop width.
    async fn check(&mut self, name: &str) {
        self.client
            .execute(&self.axe, vec![])
            .await
            .expect("inject axe-core");
        self.axe_run(name).await;
        self.count += 1;
        self.phone(true).await;
        self.assert_fits_phone(name).await;
        self.shoot(&format!("{:02}-{name}-phone", self.count)).await;
        self.dark(true).await;
        self.axe_run(&format!("{name} (dark)")).await;
        let background = self.background_brightness().await;
        self.expect(
            background < 80.0,
            format!("the {name} page stays light in dark mode (brightness {background})"),
        );
        self.shoot(&format!("{:02}-{name}-dark", self.count)).await;
        self.dark(false).await;
        self.phone(false).await;
        self.client.set_window_size(1280, 900).await.unwrap();
        self.shoot(&format!("{:02}-{name}-desktop", self.count))
            .await;
        self.client.set_window_size(375, 812).await.unwrap();
        self.phone(true).await;
    }

    /// Notes a problem; the test reports them all at its end, so one run shows every defect.
    fn expect(&mut self, ok: bool, problem: String) {
        if !ok {
            eprintln!("browser test: {problem}");
            self.problems.push(problem);
        }
    }

    async fn axe_run(&mut self, name: &str) {
        let result = self
            .client
            .execute_async(
                "const done = arguments[arguments.length - 1];
                 axe.run(document, { resultTypes: ['violations'] })
                    .then(r => done(JSON.stringify(r.violations.map(v => ({ id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.map(n => n.html) })))))
                    .catch(e => done('axe failed: ' + e));",
                vec![],
            )
            .await
            .expect("run axe-core");
        let text = result.as_str().unwrap_or("").to_string();
        self.expect(
            text == "[]",
            format!("accessibility violations on the {name} page: {text}"),
        );
    }

    /// Lays pages out as a 375 px wide phone (headless Chromium's window cannot be made that
    /// narrow, so the viewport is emulated), or goes back to the window's own size.
    async fn phone(&self, on: bool) {
        if on {
            cdp(
                &self.client,
                "Emulation.setDeviceMetricsOverride",
                serde_json::json!({ "width": 375, "height": 812, "deviceScaleFactor": 1, "mobile": false }),
            )
            .await;
        } else {
            cdp(
                &self.client,
                "Emulation.clearDeviceMetricsOverride",
                serde_json::json!({}),
            )
            .await;
        }
    }

    /// Makes `prefers-color-scheme` match dark (or light).
    async fn dark(&self, on: bool) {
        let scheme = if on { "dark" } else { "light" };
        cdp(
            &self.client,
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "features": [{ "name": "prefers-color-scheme", "value": scheme }] }),
        )
        .await;
    }

    /// The mean of the red, green and blue of the body's (or, when transparent, the page's)
    /// background colour, 0 to 255.
    async fn background_brightness(&self) -> f64 {
        let value = self
            .client
            .execute(
                "for (const el of [document.body, document.documentElement]) {
                   const m = getComputedStyle(el).backgroundColor.match(/[\\d.]+/g).map(Number);
                   if (m.length < 4 || m[3] > 0) return (m[0] + m[1] + m[2]) / 3;
                 }
                 return 255;",
                vec![],
            )
            .await
            .unwrap();
        value.as_f64().unwrap()
    }

    /// Asserts that the current document, laid out on a 375 px phone, does not scroll sideways.
    async fn assert_fits_phone(&mut self, name: &str) {
        let widths = self
            .client
            .execute(
                "return [window.innerWidth, document.documentElement.scrollWidth];",
                vec![],
            )
            .await
            .unwrap();
        let (inner, scroll) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert_eq!(inner, 375, "the phone viewport is not 375 px wide");
        self.expect(
            scroll <= 375,
            format!("{name} is {scroll} px wide on a 375 px phone screen: it scrolls sideways"),
        );
    }

    /// Shows an email's HTML part the way a phone's mail app would (375 px wide), checks that
    /// it fits, and photographs it in light and dark mode.
    async fn check_email(&mut self, name: &str, raw: &[u8]) {
        let message = parse(raw);
        let html = message.body_html(0).expect("an HTML part").into_owned();
        self.client.goto("about:blank").await.unwrap();
        self.phone(true).await;
        self.client
            .execute(
                "document.open(); document.write(arguments[0]); document.close(); return true;",
                vec![serde_json::Value::String(html)],
            )
            .await
            .unwrap();
        self.count += 1;
        self.assert_fits_phone(&format!("the {name} email")).await;
        self.shoot(&format!("{:02}-email-{name}-phone", self.count))
            .await;
        self.dark(true).await;
        self.shoot(&format!("{:02}-email-{name}-dark", self.count))
            .await;
        self.dark(false).await;
    }

    /// The boxes (left, top, width, height) of the elements `css` selects.
    async fn boxes(&self, css: &str) -> Vec<[f64; 4]> {
        let value = self
            .client
            .execute(
                "return [...document.querySelectorAll(arguments[0])].map(e => { const r = e.getBoundingClientRect(); return [r.left, r.top, r.width, r.height]; });",
                vec![serde_json::Value::String(css.into())],
            )
            .await
            .unwrap();
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|b| {
                let n: Vec<f64> = b
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|x| x.as_f64().unwrap())
                    .collect();
                [n[0], n[1], n[2], n[3]]
            })
            .collect()
    }

    /// Computed style properties of the first element `css` selects.
    async fn computed(&self, css: &str, properties: &[&str]) -> Vec<String> {
        let value = self
            .client
            .execute(
                "const s = getComputedStyle(document.querySelector(arguments[0]));
                 return arguments[1].map(p => s.getPropertyValue(p));",
                vec![
                    serde_json::Value::String(css.into()),
                    serde_json::json!(properties),
                ],
            )
            .await
            .unwrap_or_else(|e| panic!("no {css}: {e}"));
        value
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap_or("").to_string())
            .collect()
    }

    async fn shoot(&self, file: &str) {
        let png = self.client.screenshot().await.expect("screenshot");
        std::fs::write(self.shots.join(format!("{file}.png")), png).unwrap();
    }

    /// Waits until the page's main text contains `needle` (a click starts a navigation that
    /// finishes later).
    async fn wait_for_text(&self, needle: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        let mut last = String::new();
        while Instant::now() < deadline {
            if let Ok(main) = self.client.find(Locator::Css("main")).await
                && let Ok(text) = main.text().await
            {
                if text.contains(needle) {
                    return;
                }
                last = text;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("the page never said {needle:?}; it says: {last}");
    }

    async fn click(&self, css: &str) {
        self.client
            .find(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no {css} on the page: {e}"))
            .click()
            .await
            .unwrap();
    }

    async fn type_into(&self, id: &str, text: &str) {
        let field = self.client.find(Locator::Id(id)).await.unwrap();
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }
}

/// The first link in a message's text part that starts with `base` + `prefix`.
fn link_in_text(message: &mail_parser::Message<'_>, base: &str, prefix: &str) -> String {
    let text = message.body_text(0).expect("text part").into_owned();
    let start = text
        .find(&format!("{base}{prefix}"))
        .unwrap_or_else(|| panic!("no {prefix} link in {text}"));
    text[start..].split_whitespace().next().unwrap().to_string()
}

fn parse(raw: &[u8]) -> mail_parser::Message<'_> {
    mail_parser::MessageParser::default()
        .parse(raw)
        .expect("parse email")
}

fn header(message: &mail_parser::Message<'_>, name: &str) -> Option<String> {
    message
        .header_raw(name)
        .map(|v| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn sent_to<'a>(received: &'a [Received], who: &str) -> Vec<&'a Received> {
    received.iter().filter(|m| m.to == [who]).collect()
}

/// The delivery workers of `tidings serve`, stoppable so the test can queue an issue while no
/// worker is claiming.
struct Workers {
    stop: watch::Sender<bool>,
    task: JoinHandle<anyhow::Result<tidings::delivery::DeliveryReport>>,
}

impl Workers {
    fn start(settings: &Arc<Settings>, store: &Store) -> Workers {
        let (stop, stop_rx) = watch::channel(false);
        let (settings, store) = (settings.clone(), store.clone());
        let task = tokio::spawn(async move {
            tidings::delivery::run_workers(&settings, &store, stop_rx).await
        });
        Workers { stop, task }
    }

    async fn stop(self) {
        self.stop.send(true).unwrap();
        self.task.await.unwrap().unwrap();
    }
}

/// Stores three Rust stories published an hour before `before` (as a fetch would), then freezes
/// the issue of the period containing `at` with the pipeline and returns its id.
async fn compile(
    settings: &Settings,
    store: &Store,
    round: u32,
    before: DateTime<Utc>,
    at: DateTime<Utc>,
) -> i64 {
    for i in 1..=3 {
        let item = FetchedItem {
            source_name: "hn".into(),
            source_kind: "hackernews".into(),
            external_id: format!("{round}-{i}"),
            // The top story's title ends in a word too long for a phone's line, as titles
            // quoting identifiers or URLs do: it must wrap, not widen the email or the page.
            title: if i == 3 {
                format!(
                    "Rust story {i} of round {round}: {}",
                    "Supercalifragilisticexpialidocious".repeat(3)
                )
            } else {
                format!("Rust story {i} of round {round}")
            },
            url: Some(format!("https://example.org/rust/{round}/{i}")),
            discussion_url: None,
            published_at: before - chrono::Duration::hours(1),
            points: Some(100 + i64::from(i)),
            comments: Some(10),
            text: Some("A Rust release with faster compile times.".into()),
            tags: vec![],
        };
        pipeline::ingest(store, &item, Utc::now())
            .await
            .unwrap()
            .expect("the story has a link");
    }
    let topic = settings.topic("rust").unwrap();
    let compiled = pipeline::compile_issue(settings, store, topic, at, false)
        .await
        .unwrap();
    assert!(compiled.newly_compiled, "round {round}: a new issue");
    assert_eq!(
        compiled.digest.entries.len(),
        3,
        "round {round}: the digest holds this round's stories"
    );
    compiled.issue_id
}

/// Waits until no delivery of `issue` is queued or in flight, and returns its rows by status.
async fn wait_for_issue_done(store: &Store, issue: i64) -> BTreeMap<String, i64> {
    let deadline = Instant::now() + MAIL_WAIT;
    loop {
        let counts = store.counts_by_status(Some(issue)).await.unwrap();
        if counts
            .iter()
            .all(|(status, n)| *n == 0 || matches!(status.as_str(), "sent" | "skipped" | "failed"))
        {
            return counts;
        }
        assert!(
            Instant::now() < deadline,
            "the workers did not finish issue {issue}: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscribe_confirm_receive_a_digest_and_unsubscribe_in_a_real_browser() {
    let (Some(chromium), Some(chromedriver)) = (which("chromium"), which("chromedriver")) else {
        skip_or_fail(
            "chromium or chromedriver is not installed (apt-get install chromium chromium-driver)",
        );
        return;
    };
    let axe = match axe_source() {
        Ok(axe) => axe,
        Err(why) => {
            skip_or_fail(&format!("axe-core is not available: {why}"));
            return;
        }
    };

    let smtp = SmtpServer::start(Faults::default()).await;
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr: SocketAddr = listener.local_addr().unwrap();
    let base = format!("http://{addr}");
    let db = tempfile::tempdir().unwrap();
    // Hourly issues, so the second issue is simply the next hour's.
    let settings = Arc::new(
        Settings::from_toml(&format!(
            r#"
[newsletter]
base_url = "{base}"
from = "Tidings <news@example.org>"
secret = "browser-test-secret-0123456789abcdef"
[database]
url = "sqlite://{db}/tidings.db"
[delivery]
transport = "smtp"
[smtp]
host = "127.0.0.1"
port = {port}
tls = "none"
timeout_secs = 5
[web]
bind = "{addr}"
[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language and its ecosystem"
keywords = ["rust"]
cron = "0 0 * * * *"
[[topics]]
slug = "databases"
name = "Databases"
keywords = ["postgres", "sqlite"]
"#,
            db = db.path().display(),
            port = smtp.port,
        ))
        .unwrap(),
    );
    let store = Store::open(&settings.database.url, 4).await.unwrap();
    // Another confirmed reader of the same topic: the proof that later digests are sent at all.
    let stayer = crate::support::db::new_subscriber(STAYER, &["rust"], SubscriberStatus::Confirmed);
    assert!(matches!(
        store.add_subscriber(&stayer, Utc::now()).await.unwrap(),
        AddOutcome::Created { .. }
    ));

    let state = AppState::new(settings.clone(), store.clone()).unwrap();
    let (web_stop, mut web_stop_rx) = watch::channel(false);
    let web = tokio::spawn(
        Application::from_listener(state, listener).run_until(async move {
            let _ = web_stop_rx.wait_for(|s| *s).await;
        }),
    );
    let workers = Workers::start(&settings, &store);

    let profile = tempfile::tempdir().unwrap();
    let (_driver, client) = start_browser(&chromedriver, &chromium, profile.path()).await;
    let shots = tempfile::Builder::new()
        .prefix("tidings-screens-")
        .tempdir()
        .unwrap()
        .keep();
    eprintln!("browser test: screenshots in {}", shots.display());
    let mut pages = Pages {
        client: client.clone(),
        axe,
        shots,
        count: 0,
        problems: Vec::new(),
    };

    // The subscribe form.
    client.goto(&format!("{base}/")).await.unwrap();
    pages.check("subscribe").await;
    pages.type_into("email", READER).await;
    pages.click("#topic-rust").await;
    pages.click("form button[type=submit]").await;
    pages.wait_for_text("Check your inbox").await;
    pages.check("check-inbox").await;

    // An address the browser accepts but the server refuses (no dot in the domain) shows the
    // form again with the problem stated.
    client.goto(&format!("{base}/")).await.unwrap();
    pages.type_into("email", "bob@localhost").await;
    pages.click("#topic-rust").await;
    pages.click("form button[type=submit]").await;
    pages.wait_for_text("check the email address").await;
    pages.check("subscribe-error").await;

    // The confirmation email arrives over SMTP; its link shows a page with a button.
    let got = smtp.wait_for(1, MAIL_WAIT).await;
    assert_eq!(got[0].to, [READER], "the first email is the confirmation");
    pages.check_email("confirmation", &got[0].raw).await;
    let confirm = link_in_text(&parse(&got[0].raw), &base, "/confirm/");
    client.goto(&confirm).await.unwrap();
    pages.check("confirm").await;
    let who = SubscriberEmail::parse(READER).unwrap();
    let pending = store.find_subscriber(&who).await.unwrap().unwrap();
    assert_eq!(
        pending.status,
        SubscriberStatus::Pending,
        "opening the link changes nothing"
    );
    pages.click("main form button").await;
    pages.wait_for_text("You are subscribed").await;
    pages.check("confirmed").await;
    let confirmed = store.find_subscriber(&who).await.unwrap().unwrap();
    assert_eq!(confirmed.status, SubscriberStatus::Confirmed);
    assert_eq!(confirmed.topics, vec!["rust".to_string()]);

    // Preferences, reached from the confirmed page.
    client
        .find(Locator::LinkText("Change topics or time zone"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    pages.wait_for_text("Your preferences").await;
    pages.check("preferences").await;

    // A digest: compiled by the pipeline, queued, sent by the running workers.
    let now = Utc::now();
    let first = compile(&settings, &store, 1, now, now).await;
    assert_eq!(
        store.enqueue_issue(first, "rust", now).await.unwrap(),
        2,
        "the reader and the other subscriber"
    );
    let got = smtp.wait_for(3, MAIL_WAIT).await;
    let digests = sent_to(&got, READER);
    assert_eq!(digests.len(), 2, "the confirmation and one digest");
    let digest = parse(&digests[1].raw);
    assert!(
        digest.subject().unwrap_or("").contains("Rust"),
        "a Rust digest: {:?}",
        digest.subject()
    );
    let unsubscribe = link_in_text(&digest, &base, "/unsubscribe/");
    assert_eq!(
        header(&digest, "List-Unsubscribe").as_deref(),
        Some(format!("<{unsubscribe}>").as_str()),
        "List-Unsubscribe names the link in the text"
    );
    assert_eq!(
        header(&digest, "List-Unsubscribe-Post").as_deref(),
        Some("List-Unsubscribe=One-Click")
    );
    let archived = link_in_text(&digest, &base, "/archive/");
    pages.check_email("digest", &digests[1].raw).await;
    // Titles look like links: underlined, in a colour other than the text's.
    let title = pages
        .computed(".title a", &["text-decoration-line", "color"])
        .await;
    let text = pages.computed(".summary", &["color"]).await;
    pages.expect(
        title[0].contains("underline") && title[1] != text[0],
        format!("digest titles do not look like links: {title:?}, text {text:?}"),
    );
    // The footer's links are separate targets at least 44 px tall that do not touch.
    let targets = pages.boxes(".footer a").await;
    assert_eq!(targets.len(), 3, "{targets:?}");
    for (i, a) in targets.iter().enumerate() {
        pages.expect(
            a[3] >= 44.0 && a[2] >= 44.0,
            format!("footer link {i} is a small target: {a:?} (left, top, width, height)"),
        );
        for b in &targets[i + 1..] {
            let apart_x = a[0] + a[2] + 4.0 <= b[0] || b[0] + b[2] + 4.0 <= a[0];
            let apart_y = a[1] + a[3] <= b[1] || b[1] + b[3] <= a[1];
            pages.expect(
                apart_x || apart_y,
                format!("footer links {a:?} and {b:?} touch"),
            );
        }
    }
    assert_eq!(
        wait_for_issue_done(&store, first).await.get("sent"),
        Some(&2)
    );

    // The archive and the digest as a web page (the email's "view in browser" link).
    client.goto(&format!("{base}/archive")).await.unwrap();
    pages.check("archive").await;
    client.goto(&format!("{base}/archive/rust")).await.unwrap();
    pages.wait_for_text("Atom feed of Rust").await;
    pages.check("archive-topic").await;
    client.goto(&archived).await.unwrap();
    pages.wait_for_text("Rust story 1 of round 1").await;
    pages.check("archive-issue").await;
    // The entries line up with the page's heading: one indent (the page's), not two.
    let heading = pages.boxes("main h1").await;
    let titles = pages.boxes(".entry .title").await;
    assert!(!titles.is_empty());
    pages.expect(
        (titles[0][0] - heading[0][0]).abs() <= 1.0,
        format!(
            "archive entries are indented {} px past the heading on a phone",
            titles[0][0] - heading[0][0]
        ),
    );

    // The next issue is queued while no worker runs, so the reader's row exists when they
    // unsubscribe; it must be skipped when claimed.
    workers.stop().await;
    let next_hour = now + chrono::Duration::hours(1);
    let second = compile(&settings, &store, 2, next_hour, next_hour).await;
    assert_eq!(store.enqueue_issue(second, "rust", now).await.unwrap(), 2);

    // The digest's unsubscribe link: a page with a button; opening it changes nothing.
    client.goto(&unsubscribe).await.unwrap();
    pages.wait_for_text("Unsubscribe").await;
    pages.check("unsubscribe").await;
    assert_eq!(
        store.find_subscriber(&who).await.unwrap().unwrap().status,
        SubscriberStatus::Confirmed,
        "opening the unsubscribe link changes nothing"
    );
    pages.click("main form button").await;
    pages.wait_for_text("You are unsubscribed").await;
    pages.check("unsubscribed").await;
    let gone = store.find_subscriber(&who).await.unwrap().unwrap();
    assert_eq!(
        gone.status,
        SubscriberStatus::Unsubscribed,
        "Rust was the reader's only topic"
    );

    // An issue compiled after the click queues nothing for the reader.
    let later = now + chrono::Duration::hours(2);
    let third = compile(&settings, &store, 3, later, later).await;
    assert_eq!(
        store.enqueue_issue(third, "rust", now).await.unwrap(),
        1,
        "only the other subscriber"
    );

    // The workers come back and finish the queue: the reader's row of the second issue is
    // skipped, the other subscriber gets both issues, the reader gets nothing more.
    let workers = Workers::start(&settings, &store);
    let second_rows = wait_for_issue_done(&store, second).await;
    assert_eq!(second_rows.get("skipped"), Some(&1), "{second_rows:?}");
    assert_eq!(second_rows.get("sent"), Some(&1), "{second_rows:?}");
    let third_rows = wait_for_issue_done(&store, third).await;
    assert_eq!(third_rows.get("sent"), Some(&1), "{third_rows:?}");
    let got = smtp.wait_for(5, MAIL_WAIT).await;
    assert_eq!(
        sent_to(&got, STAYER).len(),
        3,
        "three digests for the stayer"
    );
    assert_eq!(
        sent_to(&got, READER).len(),
        2,
        "the reader got only the confirmation and the first digest"
    );

    // A forged link and an unknown page.
    client
        .goto(&format!("{base}/unsubscribe/forged.token"))
        .await
        .unwrap();
    pages.wait_for_text("not valid").await;
    pages.check("invalid-link").await;
    let footer = client.find(Locator::Css("footer")).await.unwrap();
    assert_eq!(
        footer.text().await.unwrap(),
        settings.newsletter.postal_address,
        "error pages carry the site's footer too"
    );
    client.goto(&format!("{base}/no-such-page")).await.unwrap();
    pages.check("not-found").await;

    // A known address entered in the form gets a link to its preferences instead.
    client.goto(&format!("{base}/")).await.unwrap();
    pages.type_into("email", STAYER).await;
    pages.click("#topic-rust").await;
    pages.click("form button[type=submit]").await;
    pages.wait_for_text("Check your inbox").await;
    let got = smtp.wait_for(6, MAIL_WAIT).await;
    assert_eq!(got[5].to, [STAYER], "the preferences link");
    link_in_text(&parse(&got[5].raw), &base, "/preferences/");
    pages.check_email("preferences-link", &got[5].raw).await;

    client.close().await.unwrap();
    workers.stop().await;
    web_stop.send(true).unwrap();
    web.await.unwrap().unwrap();
    assert_eq!(smtp.received().len(), 6, "no other email left the outbox");
    assert!(
        pages.problems.is_empty(),
        "{} problems:\n{}",
        pages.problems.len(),
        pages.problems.join("\n")
    );
}
