//! tidings: a self-hosted newsletter digest bot. Sources are fetched, articles ingested and
//! classified into topics, ranked, summarised and frozen into one digest issue per topic and
//! period, rendered as email and delivered through an outbox over SMTP.

pub mod bounce; // reading inbound bounces, complaints and auto-replies (pure)
pub mod cli; // clap command definitions
pub mod commands; // one handler per CLI command; exit-code mapping
pub mod config; // typed settings, layered loading, validation naming the key
pub mod delivery; // outbox workers and transports; the only place that talks SMTP
pub mod doctor; // `tidings doctor`: checks of a deployment (config, database, SMTP, DNS, base_url)
pub mod domain; // pure types: SubscriberEmail, TopicSlug, statuses, articles, digests
pub mod inbound; // inbound mail into bounce events: the shared ingest path, the IMAP poller
pub mod pipeline; // ingest, classify, rank, summarize, compile (pure where possible)
pub mod render; // askama templates -> complete email messages
pub mod schedule; // pure cron arithmetic in a time zone (next run, latest run)
pub mod scheduler; // the serve-side job loop: fetch, digests, retry sweep, housekeeping; status
pub mod sources; // HTTP client with limits and SSRF guard; hackernews, feed, lobsters
pub mod store; // the only place with SQL: SQLite and PostgreSQL behind one Store
pub mod tokens; // HMAC-signed link tokens
pub mod web; // axum router and pages
