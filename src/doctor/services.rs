//! The checks of `tidings doctor` that talk to the services a deployment uses: the database
//! (opened as it is: nothing created, nothing migrated), the SMTP relay (a session opened and
//! closed by `crate::delivery::probe_smtp`, nothing sent), `newsletter.base_url`'s
//! `/healthz` (answering, and naming this instance) and every configured source (one GET
//! through the guarded HTTP client each).

use std::time::Duration;

use super::Check;
use crate::config::{Settings, SourceKind, TransportKind, redact_url};
use crate::delivery::{ProbeOutcome, probe_smtp};
use crate::sources::http::HttpClient;
use crate::store::{Backend, Store};

/// How long `/healthz` may take to answer the doctor.
const HEALTHZ_TIMEOUT: Duration = Duration::from_secs(10);

/// Where sources are asked when their `base_url` is not set (the sources' own defaults).
const HACKER_NEWS_DEFAULT: &str = "https://hn.algolia.com";
const LOBSTERS_DEFAULT: &str = "https://lobste.rs";

/// The database: it opens, its migrations are all applied, it takes writes, SQLite is in WAL.
pub async fn check_database(settings: &Settings) -> Vec<Check> {
    let db = &settings.database;
    let shown = redact_url(&db.url);
    let store = match Store::open_unmigrated(&db.url, db.max_connections.min(2)).await {
        Ok(s) => s,
        Err(e) => {
            return vec![Check::failed(
                "database",
                e.to_string(),
                "check database.url; `tidings migrate` creates and migrates a new database",
            )];
        }
    };
    let backend = match store.backend() {
        Backend::Sqlite => "SQLite",
        Backend::Postgres => "PostgreSQL",
    };
    let mut checks = vec![Check::ok(
        "database",
        format!("{backend} at {shown} answers"),
    )];
    let migrations_ok = match store.migration_state().await {
        Err(e) => {
            checks.push(Check::failed(
                "database.migrations",
                format!("cannot read the applied migrations: {e}"),
                "check that database.url names tidings' database",
            ));
            false
        }
        Ok(state) if !state.unknown.is_empty() => {
            checks.push(Check::failed(
                "database.migrations",
                format!(
                    "the database has migrations this tidings does not know ({}): a newer version migrated it",
                    join(&state.unknown)
                ),
                "run the newer tidings, or restore a backup taken with this version",
            ));
            false
        }
        Ok(state) if !state.pending.is_empty() => {
            checks.push(Check::failed(
                "database.migrations",
                format!(
                    "{} of {} migrations pending ({})",
                    state.pending.len(),
                    state.pending.len() + state.applied,
                    join(&state.pending)
                ),
                "run `tidings migrate` (`serve` and `run` also apply them at start)",
            ));
            false
        }
        Ok(state) => {
            let n = state.applied;
            checks.push(Check::ok(
                "database.migrations",
                format!("all {n} migrations applied, none pending"),
            ));
            true
        }
    };
    if migrations_ok {
        checks.push(match store.check_writable().await {
            Ok(()) => Check::ok("database.writable", "takes writes"),
            Err(e) => Check::failed(
                "database.writable",
                format!("refuses writes: {e}"),
                "give the user running tidings write access to the database (for SQLite: the file and its folder)",
            ),
        });
    }
    if let Ok(Some(mode)) = store.sqlite_journal_mode().await {
        checks.push(if mode == "wal" {
            Check::ok("database.wal", "journal_mode is wal")
        } else {
            Check::warning(
                "database.wal",
                format!("journal_mode is {mode}, not wal: the web app and delivery wait for each other"),
                "keep the SQLite file on a local file system that supports WAL (not a network share)",
            )
        });
    }
    store.close().await;
    checks
}

fn join(versions: &[i64]) -> String {
    versions
        .iter()
        .map(i64::to_string)
        .collect::<Vec<_>>()
        .join(", ")
}

/// The SMTP relay, one line per step of a session; nothing is sent.
pub async fn check_smtp(settings: &Settings) -> Vec<Check> {
    if settings.delivery.effective_transport(&settings.smtp) == TransportKind::File {
        return vec![Check::warning(
            "smtp",
            format!(
                "no SMTP relay: messages are written as .eml files into {}",
                settings.delivery.outbox_dir.display()
            ),
            "set [smtp] host (and port, tls, username, password) to send mail for real",
        )];
    }
    probe_smtp(&settings.smtp)
        .await
        .into_iter()
        .map(|step| {
            let name = format!("smtp.{}", step.step.to_ascii_lowercase());
            let fix = match step.step {
                "connect" => "check smtp.host and smtp.port, and that this machine may reach the relay",
                "TLS" | "STARTTLS" => "check smtp.tls (starttls on port 587, tls on 465) and the relay's certificate; trust a private CA with smtp.ca_file",
                "EHLO" => "check that the relay accepts this machine, and smtp.helo_name",
                _ => "check smtp.username and smtp.password (TIDINGS__SMTP__PASSWORD)",
            };
            match step.outcome {
                ProbeOutcome::Ok(m) => Check::ok(name, m),
                ProbeOutcome::Warning(m) => {
                    Check::warning(name, m, "set smtp.tls to \"starttls\" or \"tls\"")
                }
                ProbeOutcome::Failed(m) => Check::failed(name, m, fix),
            }
        })
        .collect()
}

/// `base_url` answers `/healthz` with 200 and this instance's name
/// ([`crate::web::instance_id`]): a proxy in front of another service, or another tidings
/// with another secret, fails.
pub async fn check_healthz(settings: &Settings) -> Check {
    const NAME: &str = "base_url.healthz";
    let url = format!(
        "{}/healthz",
        settings.newsletter.base_url.trim_end_matches('/')
    );
    let serve_fix = "start `tidings serve`, and make newsletter.base_url reach web.bind (directly or through the reverse proxy)";
    let client = match reqwest::Client::builder().timeout(HEALTHZ_TIMEOUT).build() {
        Ok(c) => c,
        Err(e) => return Check::failed(NAME, format!("cannot set up HTTP: {e}"), serve_fix),
    };
    let response = match client.get(&url).send().await {
        Ok(r) => r,
        Err(e) => {
            let mut why = e.to_string();
            let mut source = std::error::Error::source(&e);
            while let Some(s) = source {
                why = format!("{why}: {s}");
                source = s.source();
            }
            return Check::failed(NAME, format!("{url} does not answer: {why}"), serve_fix);
        }
    };
    let status = response.status();
    let instance = response
        .headers()
        .get(crate::web::INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let expected = crate::web::instance_id(&settings.newsletter.secret);
    match instance {
        None => Check::failed(
            NAME,
            format!(
                "{url} answered {status} without an X-Tidings-Instance header: base_url reaches some other service"
            ),
            serve_fix,
        ),
        Some(id) if id != expected => Check::failed(
            NAME,
            format!(
                "{url} answered {status} from another tidings (its X-Tidings-Instance is not this configuration's: another newsletter.secret)"
            ),
            "point newsletter.base_url (or the reverse proxy) at this instance's web.bind",
        ),
        Some(_) if !status.is_success() => Check::failed(
            NAME,
            format!(
                "{url} reaches this instance but answered {status}: its database is unavailable or read-only"
            ),
            "check the database that `tidings serve` uses",
        ),
        Some(_) => Check::ok(NAME, format!("{url} answered {status} from this instance")),
    }
}

/// Each configured source answers one GET (the guarded client: its timeouts, retries, size cap
/// and address policy).
pub async fn check_sources(settings: &Settings) -> Vec<Check> {
    if settings.sources.is_empty() {
        return vec![Check::warning(
            "sources",
            "no [[sources]] configured: digests will be empty",
            "add [[sources]] entries (hackernews, lobsters or feed) to the configuration",
        )];
    }
    let client = match HttpClient::new(&settings.fetch) {
        Ok(c) => c,
        Err(e) => {
            return vec![Check::failed(
                "sources",
                format!("cannot set up the HTTP client: {e:#}"),
                "check the [fetch] settings",
            )];
        }
    };
    let mut checks = Vec::new();
    for source in &settings.sources {
        let name = format!("source {:?}", source.name);
        let base = |default: &str| {
            source
                .base_url
                .as_deref()
                .unwrap_or(default)
                .trim_end_matches('/')
                .to_string()
        };
        let url = match source.kind {
            SourceKind::Hackernews => format!(
                "{}/api/v1/search_by_date?tags=story&hitsPerPage=1",
                base(HACKER_NEWS_DEFAULT)
            ),
            SourceKind::Lobsters => format!("{}/hottest.json", base(LOBSTERS_DEFAULT)),
            SourceKind::Feed => source.url.clone().unwrap_or_default(),
        };
        checks.push(match client.get(&url, &[]).await {
            Ok(body) => Check::ok(name, format!("{url} answered {}", body.status)),
            Err(e) => Check::failed(
                name,
                e.to_string(),
                "check the source's url or base_url, or remove the source",
            ),
        });
    }
    checks
}
