//! Bounce ingest benchmark (not a test): seeds N confirmed subscribers, writes N inbound
//! reports about them into a Maildir (70% hard bounces, 20% soft bounces, 5% complaints, 5%
//! auto-replies, each with its own Message-ID), then runs the built binary's
//! `tidings bounces ingest --maildir DIR` once and prints messages per second and the
//! ingesting process's peak memory (ru_maxrss of the child). See BENCHMARKS.md "## Bounce
//! ingest" for the commands.
//!
//!   cargo bench --bench bounces                      # SQLite in a temporary directory
//!   cargo bench --bench bounces -- postgres://...    # an empty PostgreSQL database
//!
//! `BENCH_MESSAGES=N` changes the count (default 10,000).

mod common;

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use tidings::store::Store;

async fn seed(url: &str, n: usize) -> anyhow::Result<()> {
    let store = Store::open(url, 4).await?;
    common::add_confirmed_readers(&store, n).await?;
    Ok(())
}

/// A delivery status notification for `to` with `status` (RFC 3464).
fn dsn(i: usize, to: &str, status: &str, words: &str) -> String {
    format!(
        "From: Mail Delivery System <MAILER-DAEMON@mx.example.org>\r\n\
         To: bounces@news.example.com\r\n\
         Subject: Undelivered Mail Returned to Sender\r\n\
         Date: Mon, 09 Feb 2026 08:05:00 +0000\r\n\
         Message-ID: <bench-{i}@mx.example.org>\r\n\
         MIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=delivery-status; boundary=\"dsn\"\r\n\r\n\
         --dsn\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n\
         Your message could not be delivered to one or more recipients.\r\n\r\n\
         <{to}>: host mx.example.org said: {words} (in reply to RCPT TO command)\r\n\r\n\
         --dsn\r\nContent-Type: message/delivery-status\r\n\r\n\
         Reporting-MTA: dns; mx.example.org\r\n\r\n\
         Final-Recipient: rfc822; {to}\r\nAction: failed\r\nStatus: {status}\r\n\
         Diagnostic-Code: smtp; {words}\r\n\r\n\
         --dsn\r\nContent-Type: text/rfc822-headers\r\n\r\n\
         From: Tidings <news@news.example.com>\r\nTo: {to}\r\nSubject: Rust digest\r\n\
         Message-ID: <tidings.rust.20260209.7.{i}@news.example.com>\r\n\r\n--dsn--\r\n"
    )
}

/// An ARF complaint (RFC 5965) about `to`.
fn complaint(i: usize, to: &str) -> String {
    format!(
        "From: fbl@mail.example.net\r\nTo: abuse@news.example.com\r\nSubject: FW: Rust digest\r\n\
         Message-ID: <bench-{i}@fbl.example.net>\r\nMIME-Version: 1.0\r\n\
         Content-Type: multipart/report; report-type=feedback-report; boundary=\"x\"\r\n\r\n\
         --x\r\nContent-Type: text/plain\r\n\r\nThis is an email abuse report.\r\n\r\n\
         --x\r\nContent-Type: message/feedback-report\r\n\r\n\
         Feedback-Type: abuse\r\nUser-Agent: Bench/1.0\r\nVersion: 1\r\nOriginal-Rcpt-To: <{to}>\r\n\r\n\
         --x\r\nContent-Type: message/rfc822\r\n\r\n\
         From: news@news.example.com\r\nTo: {to}\r\nSubject: Rust digest\r\n\r\nbody\r\n--x--\r\n"
    )
}

/// An out-of-office reply from `from`.
fn auto_reply(i: usize, from: &str) -> String {
    format!(
        "From: {from}\r\nTo: news@news.example.com\r\nSubject: Out of office: Rust digest\r\n\
         Message-ID: <bench-{i}@mail.example.org>\r\nAuto-Submitted: auto-replied\r\n\r\n\
         I am away until Monday.\r\n"
    )
}

fn write_maildir(dir: &Path, n: usize) -> anyhow::Result<()> {
    let new = dir.join("new");
    std::fs::create_dir_all(&new)?;
    std::fs::create_dir_all(dir.join("cur"))?;
    std::fs::create_dir_all(dir.join("tmp"))?;
    for i in 0..n {
        let to = format!("reader{i}@example.org");
        let message = match i % 20 {
            0 => complaint(i, &to),
            1 => auto_reply(i, &to),
            2..=5 => dsn(i, &to, "4.2.2", "452 4.2.2 Mailbox full"),
            _ => dsn(i, &to, "5.1.1", "550 5.1.1 User unknown"),
        };
        std::fs::write(new.join(format!("{i}.bench:2,")), message)?;
    }
    Ok(())
}

/// The largest resident set of any waited-for child, in KiB.
fn children_max_rss_kib() -> i64 {
    // SAFETY: getrusage fills the struct we hand it and reads nothing else.
    unsafe {
        let mut usage: libc::rusage = std::mem::zeroed();
        if libc::getrusage(libc::RUSAGE_CHILDREN, &mut usage) == 0 {
            usage.ru_maxrss
        } else {
            0
        }
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let n: usize = std::env::var("BENCH_MESSAGES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let url = std::env::args()
        .skip(1)
        .find(|a| a.starts_with("postgres"))
        .unwrap_or_else(|| format!("sqlite://{}", dir.path().join("bench.db").display()));
    let backend = if url.starts_with("postgres") {
        "PostgreSQL"
    } else {
        "SQLite"
    };
    seed(&url, n).await?;
    let maildir = dir.path().join("Maildir");
    write_maildir(&maildir, n)?;
    let config = dir.path().join("tidings.toml");
    std::fs::write(&config, "")?;

    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_tidings"))
        .args([
            "--config",
            &config.display().to_string(),
            "bounces",
            "ingest",
            "--maildir",
        ])
        .arg(&maildir)
        .env("TIDINGS__DATABASE__URL", &url)
        .env("RUST_LOG", "warn")
        .output()?;
    let elapsed = started.elapsed();
    if !out.status.success() {
        anyhow::bail!(
            "bounces ingest failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let summary = String::from_utf8_lossy(&out.stdout);
    println!(
        "{backend}: {n} messages in {:.2} s = {:.0} messages/s; peak RSS of the ingest {} MiB",
        elapsed.as_secs_f64(),
        n as f64 / elapsed.as_secs_f64(),
        children_max_rss_kib() / 1024
    );
    println!("{}", summary.lines().last().unwrap_or_default());
    Ok(())
}
