//! The admin CLI as an operator uses it: the built binary, a temporary config, SQLite and
//! PostgreSQL (the latter through `TIDINGS__DATABASE__URL`, as an operator would).

use serde_json::Value;

use crate::support::cli::{COMMANDS, TestEnv, stderr, stdout, write};
use crate::support::db::{self, Backend, per_backend};

/// A SQLite env, or one whose config says SQLite but whose database URL comes from
/// TIDINGS__DATABASE__URL pointing at PostgreSQL (None without a cluster).
async fn env_on(backend: Backend) -> Option<(&'static str, TestEnv, Option<String>)> {
    let pg = match backend {
        Backend::Sqlite => None,
        Backend::Postgres => Some(db::postgres_url().await?),
    };
    Some((backend.label(), TestEnv::new(&db::sqlite_url(), ""), pg))
}

fn run(env: &TestEnv, pg: &Option<String>, args: &[&str]) -> std::process::Output {
    let mut cmd = env.command();
    if let Some(url) = pg {
        cmd.env("TIDINGS__DATABASE__URL", url);
    }
    cmd.args(args).output().expect("run tidings")
}

fn list_json(env: &TestEnv, pg: &Option<String>) -> Vec<Value> {
    let out = run(env, pg, &["subscribers", "list", "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    match serde_json::from_slice::<Value>(&out.stdout).expect("stdout is JSON") {
        Value::Array(items) => items,
        other => panic!("expected an array, got {other}"),
    }
}

per_backend!(add_then_list_normalises_the_address);
async fn add_then_list_normalises_the_address(backend: Backend) {
    let Some((label, env, pg)) = env_on(backend).await else {
        return;
    };
    let out = run(
        &env,
        &pg,
        &[
            "subscribers",
            "add",
            " Bob@Example.COM ",
            "--topic",
            "distributed-systems",
            "--confirmed",
        ],
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let items = list_json(&env, &pg);
    assert_eq!(items.len(), 1, "{label}");
    assert_eq!(items[0]["email"], "Bob@example.com", "{label}");
    assert_eq!(items[0]["status"], "confirmed", "{label}");
    assert_eq!(
        items[0]["topics"],
        serde_json::json!(["distributed-systems"]),
        "{label}"
    );
    assert!(items[0]["created_at"].is_string(), "{label}");
    // Adding again with another topic adds the topic, never a second row.
    let out = run(
        &env,
        &pg,
        &["subscribers", "add", "bob@EXAMPLE.com", "--topic", "rust"],
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let items = list_json(&env, &pg);
    assert_eq!(items.len(), 1, "{label}");
    assert_eq!(
        items[0]["topics"],
        serde_json::json!(["distributed-systems", "rust"]),
        "{label}"
    );
    let topics = run(&env, &pg, &["topics"]);
    let text = stdout(&topics);
    assert!(
        text.lines()
            .any(|l| l.starts_with("distributed-systems") && l.contains(" 1 ")),
        "{label}: {text}"
    );
    assert!(
        text.lines()
            .any(|l| l.starts_with("rust") && l.contains(" 1 ")),
        "{label}: {text}"
    );
}

per_backend!(bad_input_is_refused_and_nothing_is_stored);
async fn bad_input_is_refused_and_nothing_is_stored(backend: Backend) {
    let Some((label, env, pg)) = env_on(backend).await else {
        return;
    };
    // Runs `args`, expects exit code 2 and returns stderr.
    let refused = |args: &[&str]| {
        let out = run(&env, &pg, args);
        assert_eq!(out.status.code(), Some(2), "{label}: {args:?}");
        stderr(&out)
    };
    let add = ["subscribers", "add"];
    let err = refused(
        &[
            &add[..],
            &["eve@example.com\r\nBcc: x@example.com", "--topic", "rust"],
        ]
        .concat(),
    );
    assert!(err.contains("line break"), "{label}: {err}");
    // sqlx may add a "slow statement" warning when the machine is loaded; that is not ours.
    let ours = err.trim().lines().filter(|l| !l.contains("slow statement"));
    assert_eq!(ours.count(), 1, "{label}: one line: {err}");
    let err = refused(
        &[
            &add[..],
            &["eve@example.com", "--topic", "rust", "--topic", "knitting"],
        ]
        .concat(),
    );
    assert!(err.contains("unknown topic \"knitting\""), "{label}: {err}");
    refused(
        &[
            &add[..],
            &[
                "eve@example.com",
                "--topic",
                "rust",
                "--timezone",
                "Mars/Base",
            ],
        ]
        .concat(),
    );
    assert!(
        list_json(&env, &pg).is_empty(),
        "{label}: nothing partial stored"
    );
    refused(&["subscribers", "list", "--status", "happy"]);
}

per_backend!(import_reports_bad_lines_and_is_idempotent);
async fn import_reports_bad_lines_and_is_idempotent(backend: Backend) {
    let Some((label, env, pg)) = env_on(backend).await else {
        return;
    };
    let csv = env.path("people.csv");
    write(
        &csv,
        "email,topics,status,timezone\n\
         a@example.com,rust,,\n\
         not-an-address,rust,,\n\
         b@example.com,rust;distributed-systems,confirmed,Europe/Berlin\n\
         c@example.com,knitting,,\n\
         d@example.com,rust,,UTC\n",
    );
    let out = run(&env, &pg, &["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{label}: rejected rows make the import fail"
    );
    let err = stderr(&out);
    assert!(
        err.contains("line 3") && err.contains("line 5"),
        "{label}: {err}"
    );
    assert!(
        !err.contains("line 2") && !err.contains("line 4:"),
        "{label}: {err}"
    );
    assert!(
        stdout(&out).contains("3 added"),
        "{label}: {}",
        stdout(&out)
    );
    let items = list_json(&env, &pg);
    assert_eq!(items.len(), 3, "{label}");
    let b = items
        .iter()
        .find(|i| i["email"] == "b@example.com")
        .unwrap();
    assert_eq!(b["status"], "confirmed", "{label}");
    assert_eq!(b["timezone"], "Europe/Berlin", "{label}");
    assert_eq!(
        items
            .iter()
            .find(|i| i["email"] == "a@example.com")
            .unwrap()["status"],
        "pending"
    );

    let again = run(&env, &pg, &["subscribers", "import", csv.to_str().unwrap()]);
    assert!(
        stdout(&again).contains("0 added, 0 updated, 3 unchanged"),
        "{label}: {}",
        stdout(&again)
    );
    assert_eq!(
        list_json(&env, &pg),
        items,
        "{label}: a second import changes nothing"
    );
}

per_backend!(export_is_reimportable);
async fn export_is_reimportable(backend: Backend) {
    let Some((label, env, pg)) = env_on(backend).await else {
        return;
    };
    for (email, extra) in [
        ("a@example.com", vec!["--confirmed"]),
        ("b@example.com", vec![]),
    ] {
        let mut args = vec![
            "subscribers",
            "add",
            email,
            "--topic",
            "rust",
            "--topic",
            "distributed-systems",
        ];
        args.extend(extra);
        assert!(run(&env, &pg, &args).status.success());
    }
    assert!(
        run(&env, &pg, &["subscribers", "remove", "b@example.com"])
            .status
            .success()
    );
    let export = run(&env, &pg, &["subscribers", "export"]);
    assert!(export.status.success(), "{label}: {}", stderr(&export));
    let text = stdout(&export);
    assert!(text.starts_with("email,status,topics"), "{label}: {text}");
    assert!(
        text.contains("a@example.com,confirmed,distributed-systems;rust"),
        "{label}: {text}"
    );
    assert!(
        text.contains("b@example.com,unsubscribed"),
        "{label}: {text}"
    );

    // Into a fresh database: the same people with the same statuses.
    let fresh = TestEnv::new(&db::sqlite_url(), "");
    let file = fresh.path("export.csv");
    write(&file, &text);
    let out = fresh.run(&["subscribers", "import", file.to_str().unwrap()]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let items = list_json(&fresh, &None);
    let status = |e: &str| {
        items
            .iter()
            .find(|i| i["email"] == e)
            .map(|i| i["status"].clone())
    };
    assert_eq!(status("a@example.com"), Some("confirmed".into()), "{label}");
    assert_eq!(
        status("b@example.com"),
        Some("unsubscribed".into()),
        "{label}"
    );
}

per_backend!(remove_keeps_consent_and_erase_forgets);
async fn remove_keeps_consent_and_erase_forgets(backend: Backend) {
    let Some((label, env, pg)) = env_on(backend).await else {
        return;
    };
    assert!(
        run(
            &env,
            &pg,
            &[
                "subscribers",
                "add",
                "a@example.com",
                "--topic",
                "rust",
                "--confirmed"
            ]
        )
        .status
        .success()
    );
    let out = run(&env, &pg, &["subscribers", "remove", "A@example.com"]);
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    let items = list_json(&env, &pg);
    assert_eq!(items[0]["status"], "unsubscribed", "{label}");
    let out = run(
        &env,
        &pg,
        &["subscribers", "add", "a@example.com", "--topic", "rust"],
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "{label}: unsubscribed is not brought back"
    );
    assert!(stderr(&out).contains("--resubscribe"), "{label}");
    let out = run(
        &env,
        &pg,
        &[
            "subscribers",
            "add",
            "a@example.com",
            "--topic",
            "rust",
            "--resubscribe",
            "--confirmed",
        ],
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert_eq!(list_json(&env, &pg)[0]["status"], "confirmed", "{label}");
    let out = run(
        &env,
        &pg,
        &["subscribers", "remove", "a@example.com", "--erase"],
    );
    assert!(out.status.success(), "{label}: {}", stderr(&out));
    assert!(list_json(&env, &pg).is_empty(), "{label}");
    let out = run(&env, &pg, &["subscribers", "remove", "nobody@example.com"]);
    assert_eq!(out.status.code(), Some(1), "{label}");
}

#[test]
fn every_command_has_help() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    for args in COMMANDS {
        let mut full = args.to_vec();
        full.push("--help");
        let out = env.run(&full);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage:"), "{args:?}");
    }
}

#[test]
fn configuration_errors_name_the_key_and_exit_2() {
    let env = TestEnv::new(&db::sqlite_url(), "[smtp]\nport = \"not a number\"\n");
    let out = env.run(&["topics"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("smtp.port"), "{}", stderr(&out));

    let env = TestEnv::new(&db::sqlite_url(), "");
    let out = env
        .command()
        .env("TIDINGS__SCHEDULE__TIMEZONE", "Nowhere/Land")
        .arg("topics")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("schedule.timezone"),
        "{}",
        stderr(&out)
    );

    let out = std::process::Command::new(env!("CARGO_BIN_EXE_tidings"))
        .current_dir(&env.dir)
        .args(["--config", "/nonexistent/tidings.toml", "topics"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("/nonexistent/tidings.toml"),
        "{}",
        stderr(&out)
    );

    let out = env
        .command()
        .env("TIDINGS__NEWSLETTER__SECRET", "short")
        .arg("topics")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        stderr(&out).contains("newsletter.secret"),
        "{}",
        stderr(&out)
    );
    assert!(
        !stderr(&out).contains("short"),
        "the secret itself is not printed: {}",
        stderr(&out)
    );
}

#[test]
fn environment_overrides_one_key() {
    let env = TestEnv::new(&db::sqlite_url(), "");
    let other = db::sqlite_url();
    let out = env
        .command()
        .env("TIDINGS__DATABASE__URL", &other)
        .args(["subscribers", "add", "x@example.com", "--topic", "rust"])
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let path = other.trim_start_matches("sqlite://");
    assert!(
        std::path::Path::new(path).exists(),
        "the overriding database was used"
    );
    let listed = env.run(&["subscribers", "list", "--json"]);
    assert_eq!(
        stdout(&listed).trim(),
        "[]",
        "the configured database was not touched"
    );
}
