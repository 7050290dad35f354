//! Fresh databases for tests: a temporary SQLite file, and a new database on the throwaway
//! PostgreSQL cluster that `scripts/test` starts (its admin URL arrives in
//! `TIDINGS_TEST_POSTGRES_URL`). Without that variable the PostgreSQL half is skipped loudly,
//! and `TIDINGS_REQUIRE_ALL=1` turns the skip into a failure.

use std::sync::Once;

use sqlx::Connection;
use tidings::store::Store;

static SKIP_WARNING: Once = Once::new();

/// A migrated store on a new temporary SQLite file (the directory is kept for the test's life).
pub async fn sqlite() -> Store {
    Store::open(&sqlite_url(), 5)
        .await
        .expect("open SQLite store")
}

/// A URL for a new, empty SQLite database file. The file exists (empty), as after `tidings
/// migrate`, since only `migrate`, `run` and `serve` create a missing database.
pub fn sqlite_url() -> String {
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let file = dir.join("tidings.db");
    std::fs::File::create(&file).expect("create the database file");
    format!("sqlite://{}", file.display())
}

/// The URL of a new, empty PostgreSQL database, or None when no cluster is available.
pub async fn postgres_url() -> Option<String> {
    let admin = match std::env::var("TIDINGS_TEST_POSTGRES_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => {
            SKIP_WARNING.call_once(|| {
                eprintln!(
                    "!!!!!!!! TIDINGS_TEST_POSTGRES_URL is not set: PostgreSQL tests are SKIPPED (run scripts/test)"
                );
            });
            assert!(
                std::env::var("TIDINGS_REQUIRE_ALL").as_deref() != Ok("1"),
                "TIDINGS_REQUIRE_ALL=1 but no PostgreSQL is available (run scripts/test)"
            );
            return None;
        }
    };
    let name = format!("t_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&admin)
        .await
        .expect("connect to the test cluster");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let _ = conn.close().await;
    let mut url = url::Url::parse(&admin).expect("admin URL");
    url.set_path(&format!("/{name}"));
    Some(url.to_string())
}

/// A migrated store on a new PostgreSQL database, when a cluster is available.
pub async fn postgres() -> Option<Store> {
    let url = postgres_url().await?;
    Some(Store::open(&url, 5).await.expect("open PostgreSQL store"))
}

/// A database backend. A test that covers both is written once as `async fn name(backend:
/// Backend)` and expanded by [`per_backend!`] into `name::sqlite` and `name::postgres`, so a
/// failure names its backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// The name used in test names and assertion messages.
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }

    /// The URL of a new, empty database on this backend, labelled; None when no PostgreSQL
    /// cluster is available (the test then passes after the loud skip of [`postgres_url`]).
    pub async fn url(self) -> Option<(&'static str, String)> {
        match self {
            Backend::Sqlite => Some((self.label(), sqlite_url())),
            Backend::Postgres => Some((self.label(), postgres_url().await?)),
        }
    }

    /// A migrated store on a new database on this backend, labelled; None as for [`Self::url`].
    pub async fn store(self) -> Option<(&'static str, Store)> {
        match self {
            Backend::Sqlite => Some((self.label(), sqlite().await)),
            Backend::Postgres => Some((self.label(), postgres().await?)),
        }
    }
}

impl std::fmt::Display for Backend {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.label())
    }
}

/// `per_backend!(name)` (or `per_backend!(name, flavor = "multi_thread", ...)`, the arguments
/// of `#[tokio::test]`) declares the tests `name::sqlite` and `name::postgres`, each calling
/// `async fn name(backend: Backend)` with its backend.
macro_rules! per_backend {
    ($name:ident $(, $($test_args:tt)+)?) => {
        mod $name {
            #[tokio::test$(($($test_args)+))?]
            async fn sqlite() {
                super::$name($crate::support::db::Backend::Sqlite).await;
            }

            #[tokio::test$(($($test_args)+))?]
            async fn postgres() {
                super::$name($crate::support::db::Backend::Postgres).await;
            }
        }
    };
}
pub(crate) use per_backend;

/// A subscriber as `tidings subscribers add` would record one (consent from the CLI, "v1").
pub fn new_subscriber(
    email: &str,
    topics: &[&str],
    status: tidings::domain::SubscriberStatus,
) -> tidings::store::NewSubscriber {
    use tidings::domain::{ConsentSource, SubscriberEmail, TopicSlug};
    tidings::store::NewSubscriber {
        email: SubscriberEmail::parse(email).expect("test address"),
        topics: topics
            .iter()
            .map(|t| TopicSlug::parse(t).expect("test topic"))
            .collect(),
        status,
        timezone: None,
        source: ConsentSource::Cli,
        consent_version: "v1".into(),
        consented_at: None,
        resubscribe: false,
        ip: None,
        user_agent: None,
    }
}

/// Adds a new subscriber (see [`new_subscriber`]) and returns its id.
pub async fn add_subscriber(
    store: &Store,
    email: &str,
    topics: &[&str],
    status: tidings::domain::SubscriberStatus,
) -> i64 {
    let new = new_subscriber(email, topics, status);
    match store.add_subscriber(&new, chrono::Utc::now()).await {
        Ok(tidings::store::AddOutcome::Created { id }) => id,
        other => panic!("adding {email}: {other:?}"),
    }
}
