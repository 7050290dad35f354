//! Helpers for the tests that go through the real HTTP server on loopback: serving an app's
//! state, a client that never follows redirects, a fresh database per backend (one test per
//! backend, so a failure names it), and failures injected into a table with a trigger (to show
//! what a failure half-way through a request leaves behind).

use std::net::SocketAddr;

use sqlx::Connection as _;
use tidings::store::Store;
use tidings::web::{AppState, Application};
use tokio::net::TcpListener;

use super::{BASE_URL, TestApp, settings};
use crate::support::db::{self, Backend};

/// Serves `state` on 127.0.0.1:0 until the returned sender is dropped or fired.
pub async fn serve(state: AppState) -> (SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let server = Application::from_listener(state, listener);
    tokio::spawn(server.run_until(async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

/// A fresh database on `backend`, its app (`extra` goes into the settings' TOML) and that app
/// served as by [`serve`]; `None` as for [`TestDb::postgres`].
pub async fn served(
    backend: Backend,
    extra: &str,
) -> Option<(
    TestDb,
    TestApp,
    SocketAddr,
    tokio::sync::oneshot::Sender<()>,
)> {
    let db = TestDb::on(backend).await?;
    let app = db.app(extra).await;
    let (addr, stop) = serve(app.state.clone()).await;
    Some((db, app, addr, stop))
}

/// A real HTTP client that shows redirects instead of following them.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// Where an app's forms live: `BASE_URL` is what the browser shows; requests go to `addr`.
pub fn url(addr: SocketAddr, path: &str) -> String {
    format!("http://{addr}{path}")
}

/// Our own site's origin, as a browser sends it in `Origin` from our pages.
pub fn our_origin() -> &'static str {
    BASE_URL
}

/// A fresh database on one backend, with its URL (for injecting faults beside the store).
pub struct TestDb {
    pub label: &'static str,
    pub url: String,
}

impl TestDb {
    pub fn sqlite() -> TestDb {
        TestDb {
            label: "sqlite",
            url: db::sqlite_url(),
        }
    }

    /// `None` (the test is skipped loudly) without a PostgreSQL cluster.
    pub async fn postgres() -> Option<TestDb> {
        Some(TestDb {
            label: "postgres",
            url: db::postgres_url().await?,
        })
    }

    /// A fresh database on `backend`; `None` as for [`TestDb::postgres`].
    pub async fn on(backend: Backend) -> Option<TestDb> {
        match backend {
            Backend::Sqlite => Some(TestDb::sqlite()),
            Backend::Postgres => TestDb::postgres().await,
        }
    }

    /// The app on this database; `extra` goes into the settings' TOML.
    pub async fn app(&self, extra: &str) -> TestApp {
        let store = Store::open(&self.url, 5).await.expect("open the store");
        TestApp::new(self.label, store, settings(extra))
    }

    async fn execute(&self, sql: &str) {
        let sql = sqlx::AssertSqlSafe(sql.to_string());
        if self.label == "sqlite" {
            let mut conn = sqlx::SqliteConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        } else {
            let mut conn = sqlx::PgConnection::connect(&self.url).await.unwrap();
            sqlx::raw_sql(sql).execute(&mut conn).await.unwrap();
            conn.close().await.unwrap();
        }
    }

    /// From now on every `event` (`INSERT`, `UPDATE OF timezone`...) on `table` fails.
    pub async fn fail_on(&self, table: &str, event: &str) {
        let name = format!("injected_{table}");
        let sql = if self.label == "sqlite" {
            format!(
                "CREATE TRIGGER {name} BEFORE {event} ON {table} \
                 BEGIN SELECT RAISE(ABORT, 'injected failure'); END"
            )
        } else {
            format!(
                "CREATE OR REPLACE FUNCTION injected_failure() RETURNS trigger LANGUAGE plpgsql \
                 AS $$ BEGIN RAISE EXCEPTION 'injected failure'; END $$; \
                 CREATE TRIGGER {name} BEFORE {event} ON {table} \
                 FOR EACH ROW EXECUTE FUNCTION injected_failure()"
            )
        };
        self.execute(&sql).await;
    }

    /// Undoes [`TestDb::fail_on`] for `table`.
    pub async fn heal(&self, table: &str) {
        let name = format!("injected_{table}");
        let sql = if self.label == "sqlite" {
            format!("DROP TRIGGER {name}")
        } else {
            format!("DROP TRIGGER {name} ON {table}")
        };
        self.execute(&sql).await;
    }
}
