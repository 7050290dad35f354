//! `tidings doctor` through the binary, against real peers on loopback: a DNS server with
//! scripted records (`support::dns`), the SMTP test server (STARTTLS with a private CA, AUTH),
//! the web app itself for `/healthz`, a fixture feed, SQLite and PostgreSQL. Each check is
//! seen passing and failing in the checklist, the JSON and the exit code.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use base64::Engine as _;
use serde_json::Value;
use tidings::config::Settings;
use tidings::store::Store;
use tidings::web::{AppState, Application};

use crate::support::cli::{TestEnv, stderr, stdout};
use crate::support::db;
use crate::support::dns::{DnsServer, Rec};
use crate::support::feed::FeedServer;
use crate::support::smtp::{Faults, ServerTls, SmtpServer};

const SECRET: &str = "0123456789abcdef0123456789abcdef-doctor";
const ZONE: &str = "example.test";

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

/// The public half of the DKIM test key, as published.
fn published_key() -> String {
    std::fs::read_to_string(fixture("dkim-test-key.pub.b64"))
        .unwrap()
        .trim()
        .to_string()
}

/// Another RSA public key (the test key's modulus plus two).
fn other_key() -> String {
    use rsa::pkcs8::{DecodePublicKey, EncodePublicKey};
    use rsa::traits::PublicKeyParts;
    let der = base64::engine::general_purpose::STANDARD
        .decode(published_key())
        .unwrap();
    let key = rsa::RsaPublicKey::from_public_key_der(&der).unwrap();
    let n = key.n() + rsa::BigUint::from(2u8);
    let other = rsa::RsaPublicKey::new(n, key.e().clone()).unwrap();
    base64::engine::general_purpose::STANDARD.encode(other.to_public_key_der().unwrap().as_bytes())
}

/// Every record a well set-up sender publishes: SPF at the bounce domain (the envelope
/// sender), the DKIM key, DMARC, and MX for the bounce domain.
fn good_records() -> Vec<(&'static str, Rec)> {
    vec![
        (
            "bounce.example.test",
            Rec::Txt("v=spf1 ip4:127.0.0.1 -all".into()),
        ),
        (
            "mail._domainkey.example.test",
            Rec::Txt(format!("v=DKIM1; k=rsa; p={}", published_key())),
        ),
        (
            "_dmarc.example.test",
            Rec::Txt("v=DMARC1; p=reject; rua=mailto:dmarc@example.test".into()),
        ),
        ("bounce.example.test", Rec::Mx("mx.example.test".into())),
        ("example.test", Rec::Txt("unrelated=1".into())),
    ]
}

/// The configuration of a deployment: `base_url` on `web_port`, SMTP on `smtp` (STARTTLS
/// trusting `ca`, user "news" with `password`), DKIM with the test key, a bounce address, and
/// `extra` TOML (sources) appended.
fn config(web_port: u16, smtp: &SmtpServer, password: &str, trust_ca: bool, extra: &str) -> String {
    let ca = if trust_ca {
        let dir = tempfile::tempdir().unwrap().keep();
        let path = dir.join("ca.pem");
        std::fs::write(&path, smtp.ca_pem.as_deref().unwrap_or_default()).unwrap();
        path.display().to_string()
    } else {
        String::new()
    };
    format!(
        r#"
[newsletter]
base_url = "http://127.0.0.1:{web_port}"
from = "News <news@example.test>"
secret = "{SECRET}"
postal_address = "Tidings Ltd, 5 Real Road, 12345 Realtown"

[smtp]
host = "127.0.0.1"
port = {port}
tls = "starttls"
username = "news"
password = "{password}"
ca_file = "{ca}"
timeout_secs = 5

[dkim]
domain = "example.test"
selector = "mail"
private_key_path = "{key}"

[bounces]
address = "bounces@bounce.example.test"

[fetch]
allow_private_addresses = true
retries = 0
timeout_secs = 5

{extra}
"#,
        port = smtp.port,
        key = fixture("dkim-test-key.pem").display(),
    )
}

async fn smtp_server() -> SmtpServer {
    SmtpServer::start(Faults {
        tls: Some(ServerTls::Starttls),
        auth: Some(("news".into(), "right-password".into())),
        ..Faults::default()
    })
    .await
}

/// A port nothing listens on.
async fn closed_port() -> u16 {
    let l = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    l.local_addr().unwrap().port()
}

/// Runs `tidings doctor --json --nameserver <dns>`; (exit code, checks by name, stderr).
async fn doctor_json(env: &TestEnv, dns: SocketAddr) -> (i32, Vec<Value>, String) {
    let out = tokio::process::Command::from(env.command())
        .args(["doctor", "--json", "--nameserver", &dns.to_string()])
        .output()
        .await
        .unwrap();
    let checks: Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {} {}", stdout(&out), stderr(&out)));
    (
        out.status.code().unwrap_or(-1),
        checks.as_array().unwrap().clone(),
        stderr(&out),
    )
}

/// The check named `name`: (status, message).
fn check<'a>(checks: &'a [Value], name: &str) -> (&'a str, &'a str) {
    let c = checks
        .iter()
        .find(|c| c["check"] == name)
        .unwrap_or_else(|| panic!("no check {name} in {checks:#?}"));
    (
        c["status"].as_str().unwrap(),
        c["message"].as_str().unwrap(),
    )
}

/// Serves the web app for `settings_text` on `listener` with a migrated store at `url`.
async fn serve(settings_text: &str, url: &str, listener: tokio::net::TcpListener) {
    let mut settings = Settings::from_toml(settings_text).unwrap();
    settings.database.url = url.to_string();
    let store = Store::open(url, 2).await.unwrap();
    let state = AppState::new(Arc::new(settings), store).unwrap();
    let app = Application::from_listener(state, listener);
    tokio::spawn(app.run_until(std::future::pending()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_deployment_with_everything_in_place_passes() {
    let dns = DnsServer::start(ZONE, &good_records()).await;
    let smtp = smtp_server().await;
    let feed = FeedServer::start(vec![]).await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let web_port = listener.local_addr().unwrap().port();
    let extra = format!(
        "[[sources]]\nkind = \"feed\"\nname = \"Fixture\"\nurl = \"{}\"\n",
        feed.feed_url()
    );
    let text = config(web_port, &smtp, "right-password", true, &extra);
    let env = TestEnv::new(&db::sqlite_url(), &text);
    serve(&text, &env.database_url, listener).await;

    let (code, checks, err) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 0, "{checks:#?} {err}");
    for c in &checks {
        let expected = if c["check"] == "newsletter.base_url" {
            "warning" // http, not https
        } else {
            "ok"
        };
        assert_eq!(c["status"], expected, "{c:#}");
    }
    for name in [
        "config",
        "newsletter.secret",
        "database",
        "database.migrations",
        "database.writable",
        "database.wal",
        "smtp.connect",
        "smtp.ehlo",
        "smtp.starttls",
        "smtp.auth",
        "dns.spf",
        "dns.dkim",
        "dns.dmarc",
        "dns.bounce_mx",
        "base_url.healthz",
        "source \"Fixture\"",
    ] {
        check(&checks, name);
    }
    assert!(check(&checks, "dns.dmarc").1.contains("DKIM and SPF"));
    assert!(
        check(&checks, "dns.bounce_mx")
            .1
            .contains("mx.example.test")
    );
    assert!(check(&checks, "smtp.auth").1.contains("logged in as news"));
    assert!(
        check(&checks, "newsletter.base_url")
            .1
            .contains("not https")
    );
    let base_url = checks
        .iter()
        .find(|c| c["check"] == "newsletter.base_url")
        .unwrap();
    assert!(base_url["fix"].as_str().unwrap().contains("https"));
    // Nothing was sent.
    assert!(smtp.received().is_empty());

    // The checklist as text: one line per check, and the count.
    let out = tokio::process::Command::from(env.command())
        .args(["doctor", "--nameserver", &dns.addr.to_string()])
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("ok ") && l.contains("dns.dkim")),
        "{text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("warning ") && l.contains("newsletter.base_url")),
        "{text}"
    );
    assert!(
        text.contains("fix: put the web app behind a TLS reverse proxy"),
        "{text}"
    );
    assert!(
        text.trim_end().ends_with("1 warning(s), 0 failed"),
        "{text}"
    );
}

/// A world where only the checks under test are set up; everything else may fail.
async fn env_with(
    dns_records: &[(&str, Rec)],
    smtp: &SmtpServer,
    password: &str,
    trust: bool,
) -> (DnsServer, TestEnv) {
    let dns = DnsServer::start(ZONE, dns_records).await;
    let text = config(closed_port().await, smtp, password, trust, "");
    (dns, TestEnv::new(&db::sqlite_url(), &text))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_placeholder_secret_fails_and_a_bad_config_is_a_failed_check() {
    let dns = DnsServer::start(ZONE, &[]).await;
    let env = TestEnv::new(
        &db::sqlite_url(),
        "[newsletter]\nbase_url = \"https://news.example.test\"\n",
    );
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    let (status, message) = check(&checks, "newsletter.secret");
    assert_eq!(status, "failed");
    assert!(message.contains("placeholder"), "{message}");
    assert_eq!(check(&checks, "newsletter.base_url").0, "ok");
    // The shipped example sender and postal address are flagged.
    assert_eq!(check(&checks, "newsletter.postal_address").0, "warning");

    let env = TestEnv::new(
        &db::sqlite_url(),
        "[newsletter]\nsecret = \"twenty-characters-xx\"\n",
    );
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    assert!(
        check(&checks, "newsletter.secret")
            .1
            .contains("shorter than 32")
    );

    let env = TestEnv::new(&db::sqlite_url(), "[smtp]\nport = \"not a number\"\n");
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(
        code, 1,
        "a configuration that does not load is a failed check, exit 1"
    );
    assert_eq!(checks.len(), 1);
    let (status, message) = check(&checks, "config");
    assert_eq!(status, "failed");
    assert!(message.contains("smtp.port"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_smtp_password_fails_with_the_servers_reply() {
    let smtp = smtp_server().await;
    let (dns, env) = env_with(&good_records(), &smtp, "wrong-password", true).await;
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    assert_eq!(check(&checks, "smtp.starttls").0, "ok");
    let (status, message) = check(&checks, "smtp.auth");
    assert_eq!(status, "failed");
    assert!(
        message.contains("535") && message.contains("authentication credentials invalid"),
        "{message}"
    );
    assert!(smtp.received().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_smtp_certificate_fails_at_starttls() {
    let smtp = smtp_server().await;
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", false).await;
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    assert_eq!(check(&checks, "smtp.ehlo").0, "ok");
    let (status, message) = check(&checks, "smtp.starttls");
    assert_eq!(status, "failed");
    assert!(message.to_lowercase().contains("certificate"), "{message}");
    assert!(
        checks.iter().all(|c| c["check"] != "smtp.auth"),
        "no AUTH after a failed STARTTLS"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_smtp_relay_that_does_not_answer_fails_at_connect_and_no_relay_warns() {
    let mut smtp = smtp_server().await;
    smtp.port = closed_port().await;
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", true).await;
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    let (status, message) = check(&checks, "smtp.connect");
    assert_eq!(status, "failed");
    assert!(
        message.contains(&format!("127.0.0.1:{}", smtp.port)),
        "{message}"
    );

    // No [smtp] host: the file transport, said as a warning.
    let env = TestEnv::new(&db::sqlite_url(), "");
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "smtp");
    assert_eq!(status, "warning");
    assert!(message.contains(".eml"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_dns_records_fail_each_check() {
    let smtp = smtp_server().await;
    let (dns, env) = env_with(&[], &smtp, "right-password", true).await;
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    for (name, words) in [
        ("dns.spf", "bounce.example.test has no SPF record"),
        (
            "dns.dkim",
            "no DKIM key record at mail._domainkey.example.test",
        ),
        ("dns.dmarc", "no DMARC record for example.test"),
        (
            "dns.bounce_mx",
            "bounce.example.test (bounces.address) has no MX record",
        ),
    ] {
        let (status, message) = check(&checks, name);
        assert_eq!(status, "failed", "{name}: {message}");
        assert!(message.contains(words), "{name}: {message}");
    }
    // The DKIM fix is the record to publish, with this key.
    let dkim = checks.iter().find(|c| c["check"] == "dns.dkim").unwrap();
    assert!(
        dkim["fix"].as_str().unwrap().contains(&published_key()),
        "{dkim:#}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_dns_records_fail_each_check() {
    let smtp = smtp_server().await;
    let records = vec![
        (
            "bounce.example.test",
            Rec::Txt("v=spf1 ip4:127.0.0.1 -all".into()),
        ),
        ("bounce.example.test", Rec::Txt("v=spf1 mx -all".into())),
        (
            "mail._domainkey.example.test",
            Rec::Txt(format!("v=DKIM1; k=rsa; p={}", other_key())),
        ),
        (
            "_dmarc.example.test",
            Rec::Txt("v=DMARC1; p=reject; aspf=s".into()),
        ),
        ("bounce.example.test", Rec::Mx("mx.example.test".into())),
    ];
    let (dns, env) = env_with(&records, &smtp, "right-password", true).await;
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    let (status, message) = check(&checks, "dns.spf");
    assert_eq!(status, "failed");
    assert!(message.contains("2 SPF records"), "{message}");
    let (status, message) = check(&checks, "dns.dkim");
    assert_eq!(status, "failed");
    assert!(message.contains("is not the public half"), "{message}");
    // No valid DKIM signature, and SPF's domain (bounce.example.test) is not strictly aligned.
    let (status, message) = check(&checks, "dns.dmarc");
    assert_eq!(status, "failed");
    assert!(message.contains("every message fails DMARC"), "{message}");
    assert_eq!(check(&checks, "dns.bounce_mx").0, "ok");
}

/// RFC 8032 7.1's first Ed25519 test key: its seed as `tidings dkim keygen --algorithm ed25519`
/// writes it (base64), and its public key; and the second test key's public key.
const ED25519_SEED: &str = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
const ED25519_PUBLIC: &str = "11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=";
const OTHER_ED25519_PUBLIC: &str = "PUAXw+hDiVqStwqnTRt+vJyYLM8uxJaMwM1V8Sr0Zgw=";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ed25519_key_record_is_checked_when_dual_signing() {
    let smtp = smtp_server().await;
    let key = tempfile::tempdir().unwrap().keep().join("ed.key");
    std::fs::write(&key, format!("{ED25519_SEED}\n")).unwrap();
    let dual = format!(
        "selector = \"mail\"\ned25519_selector = \"ed\"\ned25519_private_key_path = \"{}\"\n",
        key.display()
    );
    let name = "ed._domainkey.example.test";
    for (published, status, expected) in [
        (
            Some(format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}")),
            "ok",
            "publishes the public half",
        ),
        (
            Some(format!("v=DKIM1; k=ed25519; p={OTHER_ED25519_PUBLIC}")),
            "failed",
            "is not the public half",
        ),
        // Without k=ed25519 the record is an RSA key's.
        (
            Some(format!("v=DKIM1; p={ED25519_PUBLIC}")),
            "failed",
            "k=rsa",
        ),
        (None, "failed", "no DKIM key record at ed._domainkey"),
    ] {
        let mut records = good_records();
        if let Some(record) = &published {
            records.push((name, Rec::Txt(record.clone())));
        }
        let dns = DnsServer::start(ZONE, &records).await;
        let text = config(closed_port().await, &smtp, "right-password", true, "")
            .replace("selector = \"mail\"\n", &dual);
        let env = TestEnv::new(&db::sqlite_url(), &text);
        let (_, checks, _) = doctor_json(&env, dns.addr).await;
        let (got, message) = check(&checks, "dns.dkim_ed25519");
        assert_eq!(got, status, "{published:?}: {message}");
        assert!(message.contains(expected), "{published:?}: {message}");
        assert_eq!(check(&checks, "dns.dkim").0, "ok", "{published:?}");
        if status == "failed" {
            let c = checks
                .iter()
                .find(|c| c["check"] == "dns.dkim_ed25519")
                .unwrap();
            let fix = c["fix"].as_str().unwrap();
            assert!(
                fix.contains(&format!("v=DKIM1; k=ed25519; p={ED25519_PUBLIC}")),
                "{fix}"
            );
        }
    }
    // Without an Ed25519 key there is no such check.
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", true).await;
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    assert!(
        !checks.iter().any(|c| c["check"] == "dns.dkim_ed25519"),
        "{checks:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_spf_fails_and_a_monitoring_dmarc_policy_warns() {
    let smtp = smtp_server().await;
    let mut records = good_records();
    records[0] = (
        "bounce.example.test",
        Rec::Txt("v=spf1 ip4:999.0.0.1 -all".into()),
    );
    records[2] = ("_dmarc.example.test", Rec::Txt("v=DMARC1; p=none".into()));
    let (dns, env) = env_with(&records, &smtp, "right-password", true).await;
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "dns.spf");
    assert_eq!(status, "failed");
    assert!(
        message.contains("not valid SPF") && message.contains("999.0.0.1"),
        "{message}"
    );
    let (status, message) = check(&checks, "dns.dmarc");
    assert_eq!(status, "warning");
    assert!(message.contains("p=none"), "{message}");
    assert_eq!(check(&checks, "dns.dkim").0, "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_or_unmigrated_database_fails() {
    let smtp = smtp_server().await;
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", true).await;
    // db::sqlite_url() makes an empty file: a database with no migrations applied.
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    assert_eq!(check(&checks, "database").0, "ok");
    let (status, message) = check(&checks, "database.migrations");
    assert_eq!(status, "failed");
    assert!(message.contains("pending"), "{message}");
    // Doctor changed nothing: still unmigrated.
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(check(&checks, "database.migrations").0, "failed");

    let out = env.run(&["migrate"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(check(&checks, "database.migrations").0, "ok");
    assert_eq!(check(&checks, "database.writable").0, "ok");
    assert_eq!(check(&checks, "database.wal").0, "ok");

    let file = env.database_url.trim_start_matches("sqlite://").to_string();
    std::fs::remove_file(&file).unwrap();
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    let (status, message) = check(&checks, "database");
    assert_eq!(status, "failed");
    assert!(message.contains("there is no database"), "{message}");
    assert!(
        !std::path::Path::new(&file).exists(),
        "doctor must not create the database"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_migrated_postgresql_database_passes() {
    let Some(url) = db::postgres_url().await else {
        return;
    };
    let smtp = smtp_server().await;
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", true).await;
    let pending = tokio::process::Command::from(env.command())
        .env("TIDINGS__DATABASE__URL", &url)
        .args(["doctor", "--json", "--nameserver", &dns.addr.to_string()])
        .output()
        .await
        .unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&pending.stdout).unwrap();
    assert_eq!(check(&checks, "database").0, "ok");
    assert_eq!(check(&checks, "database.migrations").0, "failed");
    Store::open(&url, 1).await.unwrap().close().await;
    let out = tokio::process::Command::from(env.command())
        .env("TIDINGS__DATABASE__URL", &url)
        .args(["doctor", "--json", "--nameserver", &dns.addr.to_string()])
        .output()
        .await
        .unwrap();
    let checks: Vec<Value> = serde_json::from_slice(&out.stdout).unwrap();
    let (status, message) = check(&checks, "database");
    assert_eq!(status, "ok");
    assert!(message.contains("PostgreSQL"), "{message}");
    assert!(!message.contains("password"), "{message}");
    assert_eq!(check(&checks, "database.migrations").0, "ok");
    assert_eq!(check(&checks, "database.writable").0, "ok");
    assert!(checks.iter().all(|c| c["check"] != "database.wal"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn base_url_reaching_another_service_or_another_instance_fails() {
    let smtp = smtp_server().await;
    let dns = DnsServer::start(ZONE, &good_records()).await;

    // Another service: answers 200 "ok" without the instance header.
    let other = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let other_port = other.local_addr().unwrap().port();
    let app = axum::Router::new().route("/healthz", axum::routing::get(|| async { "ok\n" }));
    tokio::spawn(async move { axum::serve(other, app).await });
    let env = TestEnv::new(&db::sqlite_url(), &config(other_port, &smtp, "x", true, ""));
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "base_url.healthz");
    assert_eq!(status, "failed");
    assert!(message.contains("some other service"), "{message}");

    // Another tidings, with another secret.
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let text = config(port, &smtp, "x", true, "");
    let theirs = text.replace(SECRET, "another-secret-of-at-least-32-characters!");
    serve(&theirs, &db::sqlite_url(), listener).await;
    let env = TestEnv::new(&db::sqlite_url(), &text);
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "base_url.healthz");
    assert_eq!(status, "failed");
    assert!(message.contains("another tidings"), "{message}");

    // Nothing listening.
    let env = TestEnv::new(
        &db::sqlite_url(),
        &config(closed_port().await, &smtp, "x", true, ""),
    );
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "base_url.healthz");
    assert_eq!(status, "failed");
    assert!(message.contains("does not answer"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_that_does_not_answer_fails() {
    let smtp = smtp_server().await;
    let dns = DnsServer::start(ZONE, &good_records()).await;
    let feed = FeedServer::start(vec![]).await;
    let extra = format!(
        "[[sources]]\nkind = \"feed\"\nname = \"Good\"\nurl = \"{}\"\n\n[[sources]]\nkind = \"feed\"\nname = \"Gone\"\nurl = \"{}/missing.xml\"\n\n[[sources]]\nkind = \"lobsters\"\nname = \"Down\"\nbase_url = \"http://127.0.0.1:{}\"\n",
        feed.feed_url(),
        feed.base,
        closed_port().await
    );
    let env = TestEnv::new(
        &db::sqlite_url(),
        &config(closed_port().await, &smtp, "x", true, &extra),
    );
    let (code, checks, _) = doctor_json(&env, dns.addr).await;
    assert_eq!(code, 1);
    assert_eq!(check(&checks, "source \"Good\"").0, "ok");
    let (status, message) = check(&checks, "source \"Gone\"");
    assert_eq!(status, "failed");
    assert!(message.contains("404"), "{message}");
    let (status, message) = check(&checks, "source \"Down\"");
    assert_eq!(status, "failed");
    assert!(message.contains("hottest.json"), "{message}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_implicit_tls_relay_passes_and_dmarc_is_found_at_the_organisational_domain() {
    let smtp = SmtpServer::start(Faults {
        tls: Some(ServerTls::Implicit),
        auth: Some(("news".into(), "right-password".into())),
        ..Faults::default()
    })
    .await;
    // From a subdomain: DMARC is published only at the organisational domain, DKIM signs
    // for the organisational domain (relaxed alignment).
    let (dns, env) = env_with(&good_records(), &smtp, "right-password", true).await;
    let text = std::fs::read_to_string(&env.config)
        .unwrap()
        .replace("tls = \"starttls\"", "tls = \"tls\"")
        .replace("news@example.test", "news@letters.example.test");
    std::fs::write(&env.config, text).unwrap();
    let (_, checks, _) = doctor_json(&env, dns.addr).await;
    let (status, message) = check(&checks, "smtp.tls");
    assert_eq!(status, "ok");
    assert!(message.contains("implicit TLS"), "{message}");
    assert!(checks.iter().all(|c| c["check"] != "smtp.starttls"));
    assert_eq!(check(&checks, "smtp.auth").0, "ok");
    let (status, message) = check(&checks, "dns.dmarc");
    assert_eq!(status, "ok");
    assert!(
        message.starts_with("_dmarc.example.test p=reject"),
        "{message}"
    );
    assert!(smtp.received().is_empty());
}
