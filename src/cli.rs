//! The `tidings` command line (clap): every command and its arguments. Raw arguments are turned
//! into validated values (addresses, slugs, times) by the command handlers in `commands/`
//! before any work starts.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version = concat!(env!("CARGO_PKG_VERSION"), " (commit ", env!("TIDINGS_GIT_COMMIT"), ")"),
    about = "A self-hosted newsletter digest bot",
    long_about = None,
    help_expected = true
)]
pub struct Cli {
    /// Configuration file (default: config/tidings.toml when present)
    #[arg(long, global = true, env = "TIDINGS_CONFIG", value_name = "PATH")]
    pub config: Option<PathBuf>,

    /// Log filter, for example "info" or "tidings=debug" (RUST_LOG works too)
    #[arg(long, global = true, value_name = "FILTER")]
    pub log: Option<String>,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Manage subscribers: add, list, remove, import, export
    #[command(subcommand)]
    Subscribers(SubscribersCommand),
    /// List configured topics with their confirmed subscriber counts
    Topics,
    /// Apply database migrations
    Migrate,
    /// Fetch sources and ingest their articles for the window ending at TIME
    Fetch(FetchArgs),
    /// Freeze the digest issue of a topic for the period ending at TIME; prints the issue id
    Compile(CompileArgs),
    /// Print the digest that compile would freeze (text, html or a complete .eml)
    Preview(PreviewArgs),
    /// Explain why an article is in or out of a topic's digest
    Explain(ExplainArgs),
    /// Compile (if needed), enqueue and deliver a topic's issue
    Send(SendArgs),
    /// List per-recipient delivery records
    Deliveries(DeliveriesArgs),
    /// Re-queue an issue's failed and deferred deliveries for now
    Retry(RetryArgs),
    /// The main job: fetch, compile and send every topic
    Run(RunArgs),
    /// Run the web app, the scheduler and the delivery workers until SIGTERM or Ctrl-C
    Serve,
    /// Show next and last runs, queue depth and subscribers by status
    Status,
    /// Read bounces, complaints and auto-replies
    #[command(subcommand)]
    Bounces(BouncesCommand),
    /// Check a deployment: configuration, database, SMTP, DNS (SPF, DKIM, DMARC), base_url, sources
    Doctor(DoctorArgs),
    /// Set up a new installation: write DIR/tidings.toml with a fresh secret, create and migrate the database, print the next steps
    Init(InitArgs),
    /// DKIM keys for signing the mail
    #[command(subcommand)]
    Dkim(DkimCommand),
    /// Write a consistent backup of the configured database to FILE while `serve` keeps running
    Backup(BackupArgs),
    /// Load a backup FILE into the configured database, which must be empty
    Restore(RestoreArgs),
    /// Move data between databases
    #[command(subcommand)]
    Db(DbCommand),
    /// Print a page's title, metadata, main text and the summary tidings makes of it, from a file or a URL (needs no configuration file or database)
    Extract(ExtractArgs),
}

#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Print one JSON array of checks instead of the checklist
    #[arg(long)]
    pub json: bool,
    /// Ask this DNS server (IP or IP:PORT) instead of the system's resolvers
    #[arg(long, value_name = "IP:PORT", value_parser = parse_nameserver)]
    pub nameserver: Option<std::net::SocketAddr>,
}

/// A DNS server on the command line: `IP:PORT`, or an IP alone for port 53.
fn parse_nameserver(raw: &str) -> Result<std::net::SocketAddr, String> {
    let raw = raw.trim();
    raw.parse::<std::net::SocketAddr>()
        .or_else(|_| raw.parse::<std::net::IpAddr>().map(|ip| (ip, 53).into()))
        .map_err(|_| format!("{raw:?} is not an IP address or IP:PORT"))
}

#[derive(Debug, Args)]
pub struct InitArgs {
    /// Folder for tidings.toml (and the SQLite database, data/tidings.db); created when missing
    #[arg(value_name = "DIR", default_value = ".")]
    pub dir: PathBuf,
    /// Public address of the web app (newsletter.base_url), for example https://news.example.com
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Sender mailbox (newsletter.from), for example "Example News <news@example.com>"
    #[arg(long, value_name = "MAILBOX")]
    pub from: Option<String>,
    /// Postal address printed in every email footer (newsletter.postal_address)
    #[arg(long, value_name = "TEXT")]
    pub postal_address: Option<String>,
    /// Database URL (database.url); default: SQLite at DIR/data/tidings.db
    #[arg(long, value_name = "URL")]
    pub database: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum DkimCommand {
    /// Write a new DKIM private key (RSA-2048 in PKCS#1 PEM, or Ed25519; mode 0600) and print the DNS TXT record to publish
    Keygen(DkimKeygenArgs),
}

/// The kind of DKIM key `tidings dkim keygen` writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum DkimAlgorithm {
    // RSA-2048, rsa-sha256: the key every receiver verifies ([dkim] private_key_path).
    Rsa,
    // Ed25519, ed25519-sha256 (RFC 8463): a second signature beside RSA.
    Ed25519,
}

#[derive(Debug, Args)]
pub struct DkimKeygenArgs {
    /// The signing domain (dkim.domain), usually the domain of newsletter.from
    #[arg(long, value_name = "DOMAIN")]
    pub domain: String,
    /// The selector (dkim.selector): the record goes at SELECTOR._domainkey.DOMAIN
    #[arg(long, value_name = "SELECTOR")]
    pub selector: String,
    /// Where to write the private key (never overwritten); default: SELECTOR.DOMAIN.dkim.pem (RSA) or SELECTOR.DOMAIN.dkim.ed25519 (Ed25519)
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The kind of key: rsa (RSA-2048, for dkim.private_key_path) or ed25519 (RFC 8463, a second signature beside RSA, for dkim.ed25519_private_key_path)
    #[arg(long, value_enum, default_value = "rsa")]
    pub algorithm: DkimAlgorithm,
}

#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write (gzip'd JSON lines; an existing file is never overwritten)
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file written by `tidings backup`, from SQLite or PostgreSQL
    #[arg(value_name = "FILE")]
    pub file: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum DbCommand {
    /// Copy every table from one database into another, empty one (SQLite to PostgreSQL or back); the source is only read
    Copy(DbCopyArgs),
}

#[derive(Debug, Args)]
pub struct DbCopyArgs {
    /// The database to copy from (sqlite://PATH or postgres://...)
    #[arg(long, value_name = "URL")]
    pub from: String,
    /// The empty database to copy into (sqlite://PATH, created when missing, or postgres://...)
    #[arg(long, value_name = "URL")]
    pub to: String,
}

#[derive(Debug, Subcommand)]
pub enum BouncesCommand {
    /// Print what each message file is (bounce, complaint, auto-reply, ...) as one JSON line; stores nothing
    Parse(BouncesParseArgs),
    /// Store inbound messages as bounce events and apply the policy (one message from FILE or stdin, for an MTA pipe; exit 75 when the database is unavailable)
    Ingest(BouncesIngestArgs),
    /// List stored bounce events (a table, or JSON with --json), oldest first
    List(BouncesListArgs),
    /// Show one stored bounce event: its parsed fields and the raw message
    Show(BouncesShowArgs),
}

#[derive(Debug, Args)]
pub struct BouncesIngestArgs {
    /// One message file; `-` or nothing reads the message from stdin
    #[arg(value_name = "FILE", conflicts_with_all = ["maildir", "mbox"])]
    pub file: Option<PathBuf>,
    /// Ingest every message of this Maildir (its new/ and cur/ folders); nothing is moved or deleted
    #[arg(long, value_name = "DIR", conflicts_with = "mbox")]
    pub maildir: Option<PathBuf>,
    /// Ingest every message of this mbox file
    #[arg(long, value_name = "FILE")]
    pub mbox: Option<PathBuf>,
    /// The envelope recipient the MTA delivered to (Postfix: ${original_recipient}), read for a VERP tag
    #[arg(long, value_name = "ADDRESS")]
    pub recipient: Option<String>,
}

#[derive(Debug, Args)]
pub struct BouncesListArgs {
    /// Only events stored at or after this time (RFC 3339, for example 2026-02-09T08:00:00Z)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub since: Option<DateTime<Utc>>,
    /// Only events of this kind: bounce, complaint, auto-reply, delivery-report or unknown
    #[arg(long, value_name = "KIND", value_parser = parse_bounce_kind)]
    pub kind: Option<String>,
    /// Print one JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct BouncesShowArgs {
    /// The event's id, as `tidings bounces list` shows it
    #[arg(value_name = "ID")]
    pub id: i64,
}

/// A bounce event kind given on the command line, as `tidings bounces parse` prints kinds.
fn parse_bounce_kind(raw: &str) -> Result<String, String> {
    use crate::bounce::Kind;
    let kinds = [
        Kind::Bounce,
        Kind::Complaint,
        Kind::AutoReply,
        Kind::DeliveryReport,
        Kind::Unknown,
    ]
    .map(Kind::as_str);
    let want = raw.trim().to_ascii_lowercase();
    if kinds.contains(&want.as_str()) {
        Ok(want)
    } else {
        Err(format!(
            "{raw:?} is not a kind; use one of {}",
            kinds.join(", ")
        ))
    }
}

#[derive(Debug, Args)]
pub struct BouncesParseArgs {
    /// Message files (.eml, one message each)
    #[arg(required = true, value_name = "FILE")]
    pub files: Vec<PathBuf>,
}

/// A point in time given on the command line: RFC 3339, for example 2026-02-09T08:00:00Z.
pub fn parse_time(raw: &str) -> Result<DateTime<Utc>, String> {
    DateTime::parse_from_rfc3339(raw.trim())
        .map(|t| t.with_timezone(&Utc))
        .map_err(|e| format!("{raw:?} is not an RFC 3339 time such as 2026-02-09T08:00:00Z ({e})"))
}

#[derive(Debug, Subcommand)]
pub enum SubscribersCommand {
    /// Add a subscriber, or add topics to an existing one
    Add(AddArgs),
    /// List subscribers (a table, or JSON with --json)
    List(ListArgs),
    /// Unsubscribe an address (keeps the consent record); --erase deletes the person's data
    Remove(RemoveArgs),
    /// Import subscribers from a CSV file with a header row: email,topics[,status][,timezone]
    Import(ImportArgs),
    /// Export subscribers as CSV on stdout (re-importable)
    Export(ExportArgs),
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The address to add
    pub email: String,
    /// A topic slug; repeat for several
    #[arg(long = "topic", value_name = "SLUG", required = true)]
    pub topics: Vec<String>,
    /// Record the address as confirmed (consent obtained elsewhere)
    #[arg(long)]
    pub confirmed: bool,
    /// The subscriber's IANA time zone, for example Europe/Berlin
    #[arg(long, value_name = "TZ")]
    pub timezone: Option<String>,
    /// Bring back an unsubscribed, bounced or complained address
    #[arg(long)]
    pub resubscribe: bool,
}

#[derive(Debug, Args)]
pub struct ListArgs {
    /// Only subscribers of this topic
    #[arg(long, value_name = "SLUG")]
    pub topic: Option<String>,
    /// Only subscribers with this status (pending, confirmed, unsubscribed, bounced, complained)
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Print one JSON array instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RemoveArgs {
    /// The address to remove
    pub email: String,
    /// Delete the person's data; only a hash of the address stays on the suppression list
    #[arg(long)]
    pub erase: bool,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// CSV file with a header row naming `email` and `topics` (topics separated by `;`)
    pub file: PathBuf,
    /// Import rows without a status column as confirmed
    #[arg(long)]
    pub confirmed: bool,
}

#[derive(Debug, Args)]
pub struct ExportArgs {
    /// Only subscribers of this topic
    #[arg(long, value_name = "SLUG")]
    pub topic: Option<String>,
}

#[derive(Debug, Args)]
pub struct FetchArgs {
    /// End of the window to ingest (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
    /// Only this source (by its configured name)
    #[arg(long, value_name = "NAME")]
    pub source: Option<String>,
}

#[derive(Debug, Args)]
pub struct CompileArgs {
    /// The topic whose issue to freeze (a configured slug)
    #[arg(long, value_name = "SLUG")]
    pub topic: String,
    /// A time inside the period (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
    /// Compile again even if the issue exists (refused once deliveries were queued)
    #[arg(long)]
    pub force: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum PreviewFormat {
    Text,
    Html,
    Eml,
}

#[derive(Debug, Args)]
pub struct PreviewArgs {
    /// The topic whose digest to show (a configured slug)
    #[arg(long, value_name = "SLUG")]
    pub topic: String,
    /// A time inside the period (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
    /// What to print: the text part, the HTML part, or the whole message as .eml
    #[arg(long, value_enum, default_value = "text")]
    pub format: PreviewFormat,
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The article's URL (any form; it is canonicalised)
    pub url: String,
    /// The topic whose digest to explain (a configured slug)
    #[arg(long, value_name = "SLUG")]
    pub topic: String,
    /// A time inside the period (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct SendArgs {
    /// The topic whose issue to send (a configured slug)
    #[arg(long, value_name = "SLUG")]
    pub topic: String,
    /// A time inside the period whose issue to send (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
    /// Send this existing issue instead of the period's
    #[arg(long, value_name = "ID")]
    pub issue: Option<i64>,
    /// Send one test copy to this address without recording a delivery
    #[arg(long, value_name = "EMAIL")]
    pub to: Option<String>,
    /// Render everything and report what would be sent
    #[arg(long)]
    pub dry_run: bool,
}

#[derive(Debug, Args)]
pub struct DeliveriesArgs {
    /// Only this issue's deliveries (the id `compile` printed)
    #[arg(long, value_name = "ID")]
    pub issue: Option<i64>,
    /// Only deliveries with this status: queued, sending, sent, deferred, failed or skipped
    #[arg(long, value_name = "STATUS")]
    pub status: Option<String>,
    /// Print JSON instead of a table
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct RetryArgs {
    /// The issue whose failed and deferred deliveries to re-queue (the id `compile` printed)
    #[arg(long, value_name = "ID")]
    pub issue: i64,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Run as if it were this time (RFC 3339; default now)
    #[arg(long, value_name = "TIME", value_parser = parse_time)]
    pub at: Option<DateTime<Utc>>,
}

#[derive(Debug, Args)]
pub struct ExtractArgs {
    /// A local HTML file, or an http(s) URL fetched with the same guarded client sources use
    #[arg(value_name = "FILE|URL")]
    pub source: String,
    /// The page's own address, for a local file: resolves its relative links and names it
    #[arg(long, value_name = "URL")]
    pub url: Option<String>,
    /// Print one JSON object: url, title, description, author, published, text, words, summary, summary_source
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    /// clap's own checks, including `help_expected`: every argument has a help text.
    #[test]
    fn the_command_line_is_well_formed() {
        super::Cli::command().debug_assert();
    }
}
