//! `tidings bounces parse` through the built binary: one JSON line per file with the kind,
//! feedback type and recipients the parser read, over real messages from the shared corpus
//! (copied into `tests/fixtures/bounces/corpus`, with their licence) and our own fixtures;
//! exit 2 when a file cannot be read; no database touched.

use std::path::PathBuf;

use serde_json::Value;

use crate::support::cli::{TestEnv, stderr, stdout};

/// The path of a file in `tests/fixtures/bounces` (the other bounce tests use it too).
pub(crate) fn fixture(name: &str) -> String {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/bounces")
        .join(name)
        .display()
        .to_string()
}

/// An environment whose configured SQLite database does not exist: `bounces parse` must not
/// need (or create) one.
fn env_without_database() -> (TestEnv, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let db = dir.join("never-created.db");
    let env = TestEnv::new(&format!("sqlite://{}", db.display()), "");
    (env, db)
}

/// Runs `bounces parse` over `names` and returns one parsed JSON object per stdout line.
fn parse(names: &[&str]) -> (std::process::Output, Vec<Value>) {
    let (env, db) = env_without_database();
    let files: Vec<String> = names.iter().map(|n| fixture(n)).collect();
    let mut args = vec!["bounces", "parse"];
    args.extend(files.iter().map(String::as_str));
    let out = env.run(&args);
    assert!(!db.exists(), "bounces parse created a database");
    let lines = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}")))
        .collect();
    (out, lines)
}

/// One recipient as the tests compare it: email, status, hard.
type Seen = (String, Option<String>, bool);

/// A line as the tests compare it: kind, feedback type, recipients.
type Summary = (String, Option<String>, Vec<Seen>);

/// The [`Summary`] of one line.
fn summary(line: &Value) -> Summary {
    let recipients = line["recipients"]
        .as_array()
        .expect("recipients is an array")
        .iter()
        .map(|r| {
            (
                r["email"].as_str().expect("email").to_string(),
                r["status"].as_str().map(str::to_string),
                r["hard"].as_bool().expect("hard"),
            )
        })
        .collect();
    (
        line["kind"].as_str().expect("kind").to_string(),
        line["feedback_type"].as_str().map(str::to_string),
        recipients,
    )
}

fn r(email: &str, status: Option<&str>, hard: bool) -> Seen {
    (email.to_string(), status.map(str::to_string), hard)
}

#[test]
fn bounces_parse_reads_real_servers_reports_as_the_reference_does() {
    let cases: &[(&str, &str, Option<&str>, Vec<Seen>)] = &[
        (
            "corpus/lhost-postfix-13.eml",
            "bounce",
            None,
            vec![
                r("kijitora@example.jp", Some("5.2.1"), true),
                r("noraneko@example.jp", Some("5.2.2"), false),
            ],
        ),
        (
            "corpus/lhost-postfix-37.eml",
            "bounce",
            None,
            vec![r("nyaan@example.org", Some("4.4.1"), false)],
        ),
        (
            "corpus/lhost-qmail-11.eml",
            "bounce",
            None,
            vec![r("neko@nyaan.jp", Some("5.4.4"), true)],
        ),
        (
            "corpus/lhost-exim-01.eml",
            "bounce",
            None,
            vec![r("kijitora@example.ed.jp", Some("5.7.0"), false)],
        ),
        (
            "corpus/lhost-office365-11.eml",
            "bounce",
            None,
            vec![r("kijitora@cr3.neko.nyaan.jp", Some("5.1.1"), true)],
        ),
        (
            "corpus/rfc3464-10.eml",
            "bounce",
            None,
            vec![r("kijitora@example.jp", Some("5.1.6"), true)],
        ),
        (
            "corpus/lhost-amazonses-10.eml",
            "bounce",
            None,
            vec![r("bounce@simulator.amazonses.com", Some("5.1.1"), true)],
        ),
        (
            "corpus/lhost-amazonses-12.eml",
            "delivery-report",
            None,
            vec![r("success@simulator.amazonses.com", Some("2.6.0"), false)],
        ),
        (
            "corpus/arf-01.eml",
            "complaint",
            Some("abuse"),
            vec![r("redacted@example.net", None, false)],
        ),
        (
            "corpus/rfc3834-01.eml",
            "auto-reply",
            None,
            vec![r("kijitora@example.net", None, false)],
        ),
    ];
    let names: Vec<&str> = cases.iter().map(|c| c.0).collect();
    let (out, lines) = parse(&names);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lines.len(), cases.len(), "{}", stdout(&out));
    for ((name, kind, feedback, recipients), line) in cases.iter().zip(&lines) {
        assert!(
            line["file"].as_str().is_some_and(|f| f.ends_with(name)),
            "{line}"
        );
        assert_eq!(
            summary(line),
            (
                kind.to_string(),
                feedback.map(str::to_string),
                recipients.clone()
            ),
            "{name}"
        );
    }
}

#[test]
fn bounces_parse_prints_every_field_of_a_digest_bounce() {
    let (out, lines) = parse(&["tidings-digest-bounce.eml"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let line = &lines[0];
    assert_eq!(line["kind"], "bounce");
    assert_eq!(line["feedback_type"], Value::Null);
    // Matching a report to its delivery row needs the store; `parse` opens none.
    assert_eq!(line["delivery_id"], Value::Null);
    let recipient = &line["recipients"][0];
    assert_eq!(recipient["email"], "gone@example.org");
    assert_eq!(recipient["status"], "5.1.1");
    assert_eq!(recipient["smtp_code"], 550);
    assert_eq!(recipient["action"], "failed");
    assert_eq!(recipient["hard"], true);
    assert_eq!(recipient["reason"], "unknown-user");
}

#[test]
fn bounces_parse_tells_replies_complaints_and_junk_from_bounces() {
    let (out, lines) = parse(&[
        "vacation.eml",
        "ses-complaint.eml",
        "reader-reply.eml",
        "malformed.eml",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let summaries: Vec<_> = lines.iter().map(summary).collect();
    assert_eq!(
        summaries,
        vec![
            (
                "auto-reply".to_string(),
                None,
                vec![r("reader@example.net", None, false)]
            ),
            (
                "complaint".to_string(),
                Some("abuse".to_string()),
                vec![r("reader@example.net", None, false)]
            ),
            ("unknown".to_string(), None, vec![]),
            ("unknown".to_string(), None, vec![]),
        ]
    );
}

#[test]
fn bounces_parse_exits_2_when_a_file_cannot_be_read_and_still_prints_the_others() {
    let (out, lines) = parse(&["no-such-file.eml", "tidings-digest-bounce.eml"]);
    assert_eq!(out.status.code(), Some(2), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("no-such-file.eml"),
        "{}",
        stderr(&out)
    );
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["kind"], "bounce");
}

#[test]
fn bounces_parse_reads_files_even_where_the_configuration_is_invalid() {
    // Reading message files needs no settings: an operator can run it from any directory.
    let env = TestEnv::new(
        &crate::support::db::sqlite_url(),
        "[no_such_section]\nkey = 1\n",
    );
    let file = fixture("tidings-digest-bounce.eml");
    let out = env.run(&["bounces", "parse", &file]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("\"kind\":\"bounce\""),
        "{}",
        stdout(&out)
    );
}
