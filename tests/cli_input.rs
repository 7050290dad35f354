//! The admin CLI facing careless input and hostile data, through the built binary: the shipped
//! placeholder secret on a public address, one mailbox spelled two ways, spreadsheet formulas in
//! exported cells, CSV files as spreadsheets write them (CRLF, a quote left open, the consent
//! date), log colours, a closed stdout, help texts, and a mistyped SQLite path.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

use crate::support::cli::{COMMANDS, TestEnv, stderr, stdout, write};
use crate::support::db::{self, Backend, per_backend};

/// A config on a fresh SQLite database, or on a fresh PostgreSQL one (None without a cluster).
async fn env_on(backend: Backend) -> Option<TestEnv> {
    let (_, url) = backend.url().await?;
    Some(TestEnv::new(&url, ""))
}

fn list(env: &TestEnv) -> Vec<Value> {
    let out = env.run(&["subscribers", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    match serde_json::from_slice::<Value>(&out.stdout).expect("stdout is JSON") {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other}"),
    }
}

fn emails(env: &TestEnv) -> Vec<String> {
    list(env)
        .iter()
        .map(|i| i["email"].as_str().unwrap_or_default().to_string())
        .collect()
}

fn ok(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "exit {:?}\nstdout: {}\nstderr: {}",
        out.status.code(),
        stdout(out),
        stderr(out)
    );
}

// ---- newsletter.secret ----------------------------------------------------------------------

const PUBLIC: &str =
    "[newsletter]\nbase_url = \"https://news.example.com\"\n\n[web]\nbind = \"127.0.0.1:0\"\n";

fn assert_refuses_the_secret(what: &str, out: &std::process::Output) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "{what}: {err}");
    assert!(err.contains("newsletter.secret"), "{what}: {err}");
    assert!(err.contains("openssl rand -base64 32"), "{what}: {err}");
    assert!(
        !err.contains(tidings::config::PLACEHOLDER_SECRET),
        "{what}: the secret is not printed: {err}"
    );
}

#[tokio::test]
async fn serve_refuses_the_shipped_secret_on_a_public_base_url() {
    let env = TestEnv::new(&db::sqlite_url(), PUBLIC);
    let mut child = tokio::process::Command::from(env.command())
        .arg("serve")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn tidings serve");
    // A safety net, not a measurement: a serve that started would run until killed.
    let status = tokio::time::timeout(Duration::from_secs(60), child.wait()).await;
    if status.is_err() {
        let _ = child.kill().await;
        panic!("serve started with the placeholder secret on a public base_url");
    }
    let out = child.wait_with_output().await.expect("serve output");
    assert_refuses_the_secret("serve", &out);
}

#[test]
fn run_and_send_refuse_the_shipped_or_a_short_secret_on_a_public_base_url() {
    let env = TestEnv::new(&db::sqlite_url(), PUBLIC);
    assert_refuses_the_secret("run", &env.run(&["run"]));
    assert_refuses_the_secret("send", &env.run(&["send", "--topic", "rust"]));
    let short = env
        .command()
        .env("TIDINGS__NEWSLETTER__SECRET", "only-twenty-chars-ab")
        .args(["send", "--topic", "rust"])
        .output()
        .expect("run tidings");
    assert_refuses_the_secret("send with a short secret", &short);
    assert!(
        stderr(&short).contains("shorter than 32"),
        "{}",
        stderr(&short)
    );
    // Commands that sign no links still work, and so does a loopback base_url.
    ok(&env.run(&["subscribers", "list"]));
    let local = TestEnv::new(&db::sqlite_url(), "");
    let out = local.run(&["send", "--topic", "rust", "--dry-run"]);
    assert!(
        !stderr(&out).contains("newsletter.secret"),
        "{}",
        stderr(&out)
    );
}

// ---- one mailbox, one subscriber -------------------------------------------------------------

per_backend!(one_mailbox_is_one_subscriber_and_one_suppression_entry);
async fn one_mailbox_is_one_subscriber_and_one_suppression_entry(backend: Backend) {
    let Some(env) = env_on(backend).await else {
        return;
    };
    let nfc = "jos\u{e9}@example.com";
    let nfd = "jose\u{301}@example.com";
    ok(&env.run(&["subscribers", "add", nfc, "--topic", "rust", "--confirmed"]));
    ok(&env.run(&["subscribers", "add", nfd, "--topic", "distributed-systems"]));
    ok(&env.run(&[
        "subscribers",
        "add",
        "user@b\u{fc}cher.de",
        "--topic",
        "rust",
    ]));
    ok(&env.run(&[
        "subscribers",
        "add",
        "user@xn--bcher-kva.de",
        "--topic",
        "rust",
    ]));
    let items = list(&env);
    assert_eq!(items.len(), 2, "{backend}: {items:#?}");
    assert_eq!(items[0]["email"], nfc, "{backend}");
    assert_eq!(
        items[0]["topics"],
        serde_json::json!(["distributed-systems", "rust"]),
        "{backend}"
    );
    assert_eq!(items[1]["email"], "user@b\u{fc}cher.de", "{backend}");

    // Erased under one spelling, refused under the other.
    ok(&env.run(&["subscribers", "remove", "user@xn--bcher-kva.de", "--erase"]));
    ok(&env.run(&["subscribers", "remove", nfd, "--erase"]));
    assert!(list(&env).is_empty(), "{backend}");
    for again in ["user@B\u{dc}CHER.de", nfc] {
        let out = env.run(&["subscribers", "add", again, "--topic", "rust"]);
        assert_eq!(out.status.code(), Some(1), "{backend}: {again} came back");
        assert!(
            stderr(&out).contains("--resubscribe"),
            "{backend}: {}",
            stderr(&out)
        );
    }
    assert!(list(&env).is_empty(), "{backend}");
}

// ---- export and import -----------------------------------------------------------------------

/// The cells of a CSV text, row by row (header included).
fn cells(text: &str) -> Vec<Vec<String>> {
    csv::ReaderBuilder::new()
        .has_headers(false)
        .from_reader(text.as_bytes())
        .records()
        .map(|r| r.expect("CSV").iter().map(str::to_string).collect())
        .collect()
}

#[test]
fn export_neutralises_formula_cells_and_import_restores_them() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    let hostile = [
        "=cmd|'/Ccalc'!A0@example.com",
        "+1-555@example.com",
        "-x@example.com",
        "'=quoted@example.com",
        "plain@example.com",
    ];
    for email in hostile {
        ok(&env.run(&["subscribers", "add", "--topic", "rust", "--", email]));
    }
    let export = env.run(&["subscribers", "export"]);
    ok(&export);
    let text = stdout(&export);
    for row in cells(&text).iter().skip(1) {
        for cell in row {
            assert!(
                !cell.starts_with(['=', '+', '-', '@', '\t', '\r']),
                "a spreadsheet would run {cell:?}:\n{text}"
            );
        }
    }
    assert!(text.contains("'=cmd|'/Ccalc'!A0@example.com"), "{text}");
    assert!(text.contains("plain@example.com"), "{text}");

    let fresh = TestEnv::new(&db::sqlite_url(), "");
    let file = fresh.path("export.csv");
    write(&file, &text);
    ok(&fresh.run(&["subscribers", "import", file.to_str().unwrap()]));
    let mut want: Vec<String> = hostile.iter().map(|s| s.to_string()).collect();
    let mut got = emails(&fresh);
    want.sort();
    got.sort();
    assert_eq!(got, want, "the round trip is intact");
}

#[test]
fn import_of_a_crlf_file_reports_the_right_lines() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    let csv = env.path("people.csv");
    write(
        &csv,
        "email,topics\r\na@example.com,rust\r\nnot-an-address,rust\r\nb@example.com,rust\r\nc@example.com,knitting\r\nd@example.com,rust\r\n",
    );
    let out = env.run(&["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3:") && err.contains("line 5:"),
        "the bad rows are lines 3 and 5: {err}"
    );
    assert!(
        !err.contains("line 2:") && !err.contains("line 4:"),
        "{err}"
    );
    assert!(stdout(&out).contains("3 added"), "{}", stdout(&out));
}

#[test]
fn an_unclosed_quote_is_reported_at_its_line_with_the_lines_it_swallowed() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    let csv = env.path("people.csv");
    write(
        &csv,
        "email,topics\na@example.com,rust\n\"b@example.com,rust\nc@example.com,rust\nd@example.com,rust\n",
    );
    let out = env.run(&["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: a quote opened on this line is never closed"),
        "{err}"
    );
    assert!(
        err.contains("lines 3 to 5 (the end of the file) were not imported"),
        "the swallowed rows are named: {err}"
    );
    assert_eq!(emails(&env), vec!["a@example.com".to_string()]);

    // A later quote closes it: the rows after that are imported as usual.
    let env = TestEnv::new(&db::sqlite_url(), "");
    write(
        &csv,
        "email,topics\na@example.com,rust\n\"b@example.com,rust\nc@example.com,rust\"\nd@example.com,rust\n",
    );
    let out = env.run(&["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains(
            "line 3: a quote opened on this line runs to line 4; lines 3 to 4 were not imported"
        ),
        "{err}"
    );
    assert_eq!(
        emails(&env),
        vec!["a@example.com".to_string(), "d@example.com".to_string()]
    );
}

per_backend!(export_then_import_keeps_the_consent_date);
async fn export_then_import_keeps_the_consent_date(backend: Backend) {
    let Some(env) = env_on(backend).await else {
        return;
    };
    let csv = env.path("people.csv");
    write(
        &csv,
        "email,status,topics,timezone,created_at\n\
         a@example.com,confirmed,rust,,2024-03-01T10:00:00+00:00\n\
         b@example.com,unsubscribed,,,2023-11-05T08:30:00Z\n\
         c@example.com,confirmed,rust,,2999-01-01T00:00:00Z\n",
    );
    let out = env.run(&["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{backend}: {}", stderr(&out));
    assert!(
        stderr(&out).contains("line 4: created_at"),
        "{backend}: a consent date in the future is refused: {}",
        stderr(&out)
    );
    let created = |env: &TestEnv| -> Vec<(String, String)> {
        list(env)
            .iter()
            .map(|i| {
                (
                    i["email"].as_str().unwrap_or_default().to_string(),
                    i["created_at"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    };
    let first = created(&env);
    assert_eq!(
        first,
        vec![
            ("a@example.com".into(), "2024-03-01T10:00:00Z".into()),
            ("b@example.com".into(), "2023-11-05T08:30:00Z".into()),
        ],
        "{backend}"
    );

    // Round trip into a fresh database of the same backend.
    let export = env.run(&["subscribers", "export"]);
    ok(&export);
    let Some(fresh) = env_on(backend).await else {
        return;
    };
    let file = fresh.path("export.csv");
    write(&file, &stdout(&export));
    ok(&fresh.run(&["subscribers", "import", file.to_str().unwrap()]));
    assert_eq!(created(&fresh), first, "{backend}");
}

// ---- terminal manners ------------------------------------------------------------------------

#[test]
fn log_lines_carry_no_colour_codes_when_stderr_is_not_a_terminal() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    let out = env.run(&["--log", "trace", "topics"]);
    ok(&out);
    let err = stderr(&out);
    assert!(!err.trim().is_empty(), "the trace filter logs something");
    assert!(!err.contains('\u{1b}'), "ANSI escape in a log file: {err}");
}

/// Runs `args` with stdout connected to a pipe whose reading end is already closed.
fn with_closed_stdout(env: &TestEnv, args: &[&str]) -> std::process::Output {
    let (reader, writer) = std::io::pipe().expect("pipe");
    drop(reader);
    env.command()
        .args(args)
        .stdout(writer)
        .stderr(Stdio::piped())
        .output()
        .expect("run tidings")
}

#[test]
fn a_closed_stdout_ends_the_command_quietly() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    ok(&env.run(&["subscribers", "add", "a@example.com", "--topic", "rust"]));
    for args in [
        &["subscribers", "list", "--json"][..],
        &["subscribers", "list"],
        &["subscribers", "export"],
        &["subscribers", "add", "b@example.com", "--topic", "rust"],
    ] {
        let out = with_closed_stdout(&env, args);
        assert_eq!(
            out.status.code(),
            Some(141),
            "{args:?}: exit 141 as for SIGPIPE; stderr: {}",
            stderr(&out)
        );
        assert_eq!(stderr(&out), "", "{args:?}: nothing on stderr");
    }
}

#[test]
fn every_option_has_help_text() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    for args in COMMANDS {
        let mut full = args.to_vec();
        full.push("--help");
        let out = env.run(&full);
        ok(&out);
        let text = stdout(&out);
        let lines: Vec<&str> = text.lines().collect();
        for (i, line) in lines.iter().enumerate() {
            let trimmed = line.trim_start();
            if !trimmed.starts_with('-') {
                continue;
            }
            let same_line = trimmed
                .split_once("  ")
                .is_some_and(|(_, help)| !help.trim().is_empty());
            let next_line = lines.get(i + 1).is_some_and(|next| {
                let next = next.trim_start();
                !next.is_empty() && !next.starts_with('-')
            });
            assert!(
                same_line || next_line,
                "{args:?}: {trimmed:?} has no help text\n{text}"
            );
        }
    }
}

// ---- a mistyped SQLite path ------------------------------------------------------------------

#[test]
fn commands_that_only_read_refuse_a_missing_sqlite_database() {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let path = dir.join("typo").join("tidings.db");
    let env = TestEnv::new(&format!("sqlite://{}", path.display()), "");
    for args in [
        &["subscribers", "list"][..],
        &["subscribers", "export"],
        &["subscribers", "add", "a@example.com", "--topic", "rust"],
        &["topics"],
        &["status"],
        &["deliveries"],
        &["preview", "--topic", "rust"],
    ] {
        let out = env.run(args);
        let err = stderr(&out);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("there is no database at") && err.contains("typo/tidings.db"),
            "{args:?}: {err}"
        );
        assert!(!path.exists(), "{args:?} created {}", path.display());
        assert!(!dir.join("typo").exists(), "{args:?} created the folder");
    }
    // migrate creates it; then the same commands work.
    ok(&env.run(&["migrate"]));
    assert!(path.exists());
    ok(&env.run(&["subscribers", "list"]));
}
