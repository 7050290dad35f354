//! The subscriber state machine (`tidings::domain::transition`) through its callers, on each
//! backend: an import where the database refuses one row in the middle keeps the others and
//! reports that row (through the built binary), and the subscribe form stays quiet for an
//! erased or bounced address (through the router).

use axum::http::StatusCode;
use serde_json::Value;
use sqlx::Connection as _;
use tidings::domain::{SubscriberEmail, SubscriberStatus};
use tidings::store::Store;

use crate::support::cli::{TestEnv, stderr, stdout, write};
use crate::support::db::{Backend, per_backend};
use crate::web::{TestApp, settings};

/// The address the database refuses to store, by a trigger installed by the test.
const REFUSED: &str = "refused@example.com";

/// Makes the database at `url` refuse any new subscriber with the address [`REFUSED`]: what a
/// constraint or a failing write does to one row of a batch.
async fn refuse_one_address(url: &str) {
    let sql = if url.starts_with("sqlite") {
        format!(
            "CREATE TRIGGER refuse_one BEFORE INSERT ON subscribers WHEN NEW.email = '{REFUSED}' \
             BEGIN SELECT RAISE(ABORT, 'this row is refused'); END"
        )
    } else {
        format!(
            "CREATE FUNCTION refuse_one() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF NEW.email = '{REFUSED}' THEN RAISE EXCEPTION 'this row is refused'; END IF; \
             RETURN NEW; END $$; \
             CREATE TRIGGER refuse_one BEFORE INSERT ON subscribers \
             FOR EACH ROW EXECUTE FUNCTION refuse_one()"
        )
    };
    let sql = sqlx::AssertSqlSafe(sql);
    if url.starts_with("sqlite") {
        let mut conn = sqlx::SqliteConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    } else {
        let mut conn = sqlx::PgConnection::connect(url).await.unwrap();
        sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
        conn.close().await.unwrap();
    }
}

per_backend!(import_keeps_the_other_rows_when_the_database_refuses_one);
async fn import_keeps_the_other_rows_when_the_database_refuses_one(backend: Backend) {
    let Some((_, url)) = backend.url().await else {
        return;
    };
    // Migrated first, so the trigger has its table.
    drop(Store::open(&url, 1).await.expect("migrate"));
    refuse_one_address(&url).await;
    let env = TestEnv::new(&url, "");
    // An existing pending reader whom the import confirms, after the refused row.
    let out = env.run(&["subscribers", "add", "b@example.com", "--topic", "rust"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let csv = env.path("people.csv");
    write(
        &csv,
        &format!(
            "email,topics,status\n\
             a@example.com,rust,confirmed\n\
             {REFUSED},rust,confirmed\n\
             b@example.com,rust;distributed-systems,confirmed\n\
             c@example.com,rust,\n"
        ),
    );
    let out = env.run(&["subscribers", "import", csv.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(
        err.contains("line 3: database error") && err.contains("this row is refused"),
        "the refused row is reported at its line: {err}"
    );
    assert!(
        err.contains("1 row(s) rejected (lines 3); the other rows were imported"),
        "{err}"
    );
    assert!(
        stdout(&out).contains("2 added, 1 updated, 0 unchanged, 0 suppressed, 1 rejected"),
        "{}",
        stdout(&out)
    );

    let list = env.run(&["subscribers", "list", "--json"]);
    assert!(list.status.success(), "{}", stderr(&list));
    let Value::Array(items) = serde_json::from_slice::<Value>(&list.stdout).unwrap() else {
        panic!("expected an array")
    };
    let people: Vec<(String, String, String)> = items
        .iter()
        .map(|i| {
            (
                i["email"].as_str().unwrap().to_string(),
                i["status"].as_str().unwrap().to_string(),
                i["topics"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap())
                    .collect::<Vec<_>>()
                    .join(";"),
            )
        })
        .collect();
    let person = |e: &str, s: &str, t: &str| (e.to_string(), s.to_string(), t.to_string());
    assert_eq!(
        people,
        vec![
            person("b@example.com", "confirmed", "distributed-systems;rust"),
            person("a@example.com", "confirmed", "rust"),
            person("c@example.com", "pending", "rust"),
        ]
    );
}

per_backend!(the_subscribe_form_stays_quiet_for_erased_and_bounced_addresses);
async fn the_subscribe_form_stays_quiet_for_erased_and_bounced_addresses(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    let app = TestApp::new(label, store, settings(""));
    let erased = app.add_confirmed("erased@example.com", &["rust"]).await;
    assert!(
        app.store
            .erase_subscriber(erased, chrono::Utc::now())
            .await
            .unwrap()
    );
    let bounced = app.add_confirmed("bounced@example.com", &["rust"]).await;
    assert!(
        app.store
            .set_suppressed_status(bounced, SubscriberStatus::Bounced, chrono::Utc::now())
            .await
            .unwrap()
    );

    let fresh = app
        .post_form("/subscribe", "email=new%40example.com&topic=rust")
        .await;
    assert_eq!(fresh.status, StatusCode::OK, "{label}");
    for email in ["erased@example.com", "bounced@example.com"] {
        let a = app
            .post_form(
                "/subscribe",
                &format!("email={}&topic=rust", email.replace('@', "%40")),
            )
            .await;
        assert_eq!(a.status, StatusCode::OK, "{label}: {email}");
        assert_eq!(
            a.body.replace(email, "ADDRESS"),
            fresh.body.replace("new@example.com", "ADDRESS"),
            "{label}: {email} gets the same page as a new address"
        );
        assert!(
            app.mails_to(email).await.is_empty(),
            "{label}: no mail to {email}"
        );
    }
    assert_eq!(app.mails_to("new@example.com").await.len(), 1, "{label}");
    assert!(
        app.subscriber("erased@example.com").await.is_none(),
        "{label}: an erased address is not recorded again"
    );
    assert_eq!(
        app.store
            .suppression_reason(&SubscriberEmail::parse("erased@example.com").unwrap())
            .await
            .unwrap()
            .as_deref(),
        Some("erased"),
        "{label}"
    );
    let record = app.subscriber("bounced@example.com").await.unwrap();
    assert_eq!(record.status, SubscriberStatus::Bounced, "{label}");
}
