//! The `tidings` command line (clap): every command and its arguments. Raw arguments are turned
//! into validated values (addresses, slugs, times) by the command handlers in `commands/`
//! before any work starts.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "tidings",
    version,
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
    /// Print a page's title, metadata, main text and the summary tidings makes of it, from a file or a URL (needs no configuration file or database)
    Extract(ExtractArgs),
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
