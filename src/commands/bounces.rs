//! `tidings bounces`: `parse FILE...` prints what each message file is, one JSON object per
//! line on stdout, with the delivery it matches when the configured database can be opened, and
//! stores nothing (exit 0 when every file was read, whatever it held, 2 when one could not be
//! read). `ingest [FILE|-]` stores one message (an MTA's pipe) or a Maildir or
//! mbox backlog as bounce events, matched to a delivery by its VERP tag or our Message-ID, else
//! to a subscriber by address, and applies the policy (`bounce::policy`) in the store; exit 75
//! (EX_TEMPFAIL) when the configuration or the database is unavailable, so the MTA retries.
//! `list` shows the stored events (`--since`, `--kind` filter them); `show ID` prints one
//! event's fields, its parsed report and the raw message (exit 1 for an unknown id).

use std::io::Write;
use std::path::Path;

use serde_json::json;

use super::db::ProgressBar;
use super::{CommandError, CommandResult, Context};
use crate::bounce;
use crate::cli::{
    BouncesCommand, BouncesIngestArgs, BouncesListArgs, BouncesParseArgs, BouncesShowArgs,
};
use crate::config::Settings;
use crate::inbound::{Ingested, Ingester, Source, report_json};
use crate::store::copy::Progress;
use crate::store::{BounceEventFilter, BounceEventRecord, Recorded, Store};

mod backlog;

use backlog::{Backlog, read_capped};

pub async fn run(cmd: BouncesCommand, config: Option<&Path>) -> CommandResult {
    match cmd {
        BouncesCommand::Parse(args) => parse(args, config).await,
        BouncesCommand::Ingest(args) => ingest(args, config).await,
        BouncesCommand::List(args) => list(args, config).await,
        BouncesCommand::Show(args) => show(args, config).await,
    }
}

/// Prints what each file is. With the configured database at hand (opened, never created or
/// written), `delivery_id` names the delivery a message matches as `ingest` would match it;
/// without one it is null and stderr says why, once.
async fn parse(args: BouncesParseArgs, config: Option<&Path>) -> CommandResult {
    let opened = match Settings::load(config) {
        Ok(settings) => Context::open(settings, false)
            .await
            .map(|ctx| (Ingester::new(&ctx.settings, ctx.store.clone()), ctx.store))
            .map_err(|e| e.to_string()),
        Err(e) => Err(e.to_string()),
    };
    let ingester = opened
        .map_err(|why| eprintln!("delivery_id is null: no database to match against ({why})"))
        .ok();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let mut unreadable = Vec::new();
    for file in &args.files {
        let bytes = match std::fs::File::open(file).and_then(|mut f| read_capped(&mut f)) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                unreadable.push(file.display().to_string());
                continue;
            }
        };
        let (report, delivery_id) = match &ingester {
            Some((ingester, _)) => match ingester.match_message(&bytes, None).await {
                Ok((report, matched)) => (report, matched.delivery_id),
                Err(e) => {
                    eprintln!("{}: delivery_id is null: {e}", file.display());
                    (bounce::parse(&bytes), None)
                }
            },
            None => (bounce::parse(&bytes), None),
        };
        let mut line = report_json(&report, delivery_id);
        line["file"] = json!(file.display().to_string());
        writeln!(out, "{line}").map_err(|e| CommandError::Failed(e.into()))?;
    }
    if let Some((_, store)) = ingester {
        store.close().await;
    }
    if unreadable.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Usage(format!(
            "could not read {}",
            unreadable.join(", ")
        )))
    }
}

/// Lists the backlog (or reads the one message) first, then opens the configuration and the
/// store: a failure of either is a temporary failure (exit 75), so an MTA keeps the message.
/// A backlog's messages are read one at a time; one that cannot be read is named on stderr,
/// the rest are still ingested, and the exit code is 2.
async fn ingest(args: BouncesIngestArgs, config: Option<&Path>) -> CommandResult {
    let read_err = |path: &Path, e: std::io::Error| {
        CommandError::Usage(format!("cannot read {}: {e}", path.display()))
    };
    let (source, backlog, total) = if let Some(dir) = &args.maildir {
        let (backlog, total) = Backlog::maildir(dir).map_err(|e| read_err(dir, e))?;
        (Source::Maildir, backlog, total)
    } else if let Some(file) = &args.mbox {
        let (backlog, total) = Backlog::mbox(file).map_err(|e| read_err(file, e))?;
        (Source::Mbox, backlog, total)
    } else {
        let bytes = match args.file.as_deref() {
            None => read_capped(&mut std::io::stdin().lock()),
            Some(p) if p == Path::new("-") => read_capped(&mut std::io::stdin().lock()),
            Some(p) => std::fs::File::open(p).and_then(|mut f| read_capped(&mut f)),
        }
        .map_err(|e| read_err(args.file.as_deref().unwrap_or(Path::new("-")), e))?;
        (Source::Pipe, Backlog::One(Some(bytes)), 1)
    };
    let temp = |what: &str, e: &dyn std::fmt::Display| {
        CommandError::TempFail(format!("{what} unavailable, try again later: {e}"))
    };
    let settings = Settings::load(config).map_err(|e| temp("configuration", &e))?;
    let Context {
        settings, store, ..
    } = Context::open(settings, false)
        .await
        .map_err(|e| temp("database", &e))?;
    let ingester = Ingester::new(&settings, store.clone());
    let bar = match source {
        Source::Pipe => ProgressBar::hidden(),
        Source::Mbox => ProgressBar::on_terminal("{bar:40} {bytes}/{total_bytes} ({eta} left)"),
        Source::Maildir | Source::Imap => {
            ProgressBar::on_terminal("{bar:40} {pos}/{len} messages ({per_sec}, {eta} left)")
        }
    };
    let progress: &dyn Progress = &bar;
    progress.start(total);
    let mut summary = Summary::default();
    let mut unreadable = 0u64;
    let mut result = Ok(());
    for item in backlog {
        let (message, step) = match item {
            Ok(read) => read,
            Err(what) => {
                bar.println(&what);
                unreadable += 1;
                continue;
            }
        };
        match ingester
            .ingest(&message, source, args.recipient.as_deref(), super::now())
            .await
        {
            Ok(done) => summary.add(done),
            Err(e) => {
                result = Err(temp("database", &e));
                break;
            }
        }
        progress.advance(step);
    }
    progress.finish();
    store.close().await;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match source {
        Source::Pipe => {
            // Best effort: once the event is stored the exit code must say so, whatever
            // became of the MTA's end of stdout.
            if let Some(done) = summary.last.as_ref() {
                let _ = writeln!(out, "{}", ingested_line(done));
            }
        }
        Source::Maildir | Source::Mbox | Source::Imap => {
            writeln!(out, "{}", summary.line()).map_err(|e| CommandError::Failed(e.into()))?;
        }
    }
    if result.is_ok() && unreadable > 0 {
        return Err(CommandError::Usage(format!(
            "{unreadable} message(s) could not be read (named above); the rest were ingested"
        )));
    }
    result
}

/// One line about what ingesting a message did.
fn ingested_line(done: &Ingested) -> String {
    let about = done.email.as_deref().unwrap_or("no recipient");
    match &done.recorded {
        Recorded::Duplicate => format!("already stored: {} ({about})", done.kind),
        Recorded::New { id, status_change } => match status_change {
            Some(status) => format!(
                "stored event {id}: {} ({about}); subscriber now {status}",
                done.kind
            ),
            None => format!("stored event {id}: {} ({about})", done.kind),
        },
    }
}

/// Counts for a backlog.
#[derive(Default)]
struct Summary {
    messages: u64,
    new: u64,
    duplicates: u64,
    kinds: std::collections::BTreeMap<&'static str, u64>,
    changes: std::collections::BTreeMap<String, u64>,
    last: Option<Ingested>,
}

impl Summary {
    fn add(&mut self, done: Ingested) {
        self.messages += 1;
        match &done.recorded {
            Recorded::Duplicate => self.duplicates += 1,
            Recorded::New { status_change, .. } => {
                self.new += 1;
                *self.kinds.entry(done.kind).or_default() += 1;
                if let Some(status) = status_change {
                    *self.changes.entry(status.to_string()).or_default() += 1;
                }
            }
        }
        self.last = Some(done);
    }

    fn line(&self) -> String {
        let list = |m: Vec<String>| {
            if m.is_empty() {
                "none".to_string()
            } else {
                m.join(", ")
            }
        };
        let kinds = list(self.kinds.iter().map(|(k, n)| format!("{k} {n}")).collect());
        let changes = list(
            self.changes
                .iter()
                .map(|(k, n)| format!("{k} {n}"))
                .collect(),
        );
        format!(
            "{} messages: {} new events, {} already stored; kinds: {kinds}; subscribers now: {changes}",
            self.messages, self.new, self.duplicates
        )
    }
}

/// The configured store, opened as every command that must not create a database opens it.
/// (`list` and `show` open it here rather than in `commands::dispatch`, which passes every
/// `bounces` command through before loading the configuration.)
async fn open_store(config: Option<&Path>) -> Result<Store, CommandError> {
    Ok(Context::open(Settings::load(config)?, false).await?.store)
}

/// The matched subscriber as `list` and `show` print it, with the status the event caused.
fn subscriber_label(e: &BounceEventRecord) -> String {
    match (&e.subscriber_email, &e.status_change) {
        (Some(s), Some(change)) => format!("{s} (now {change})"),
        (Some(s), None) => s.clone(),
        (None, _) => "-".into(),
    }
}

/// `bounces list`: the stored events the filters let through.
async fn list(args: BouncesListArgs, config: Option<&Path>) -> CommandResult {
    let store = open_store(config).await?;
    let filter = BounceEventFilter {
        since: args.since,
        kind: args.kind.clone(),
    };
    let events = store.bounce_events_where(&filter).await;
    store.close().await;
    let events = events?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| CommandError::Failed(e.into());
    if args.json {
        let rows: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                json!({
                    "id": e.id,
                    "created_at": e.created_at.to_rfc3339(),
                    "source": e.source,
                    "kind": e.kind,
                    "effect": e.effect,
                    "email": e.email,
                    "status": e.status,
                    "reason": e.reason,
                    "delivery_id": e.delivery_id,
                    "subscriber_id": e.subscriber_id,
                    "subscriber_email": e.subscriber_email,
                    "status_change": e.status_change,
                })
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &rows)
            .map_err(|e| CommandError::Failed(e.into()))?;
        writeln!(out).map_err(io)?;
        return Ok(());
    }
    writeln!(
        out,
        "{:<6} {:<20} {:<15} {:<30} {:<8} {:<20} SUBSCRIBER",
        "ID", "TIME", "KIND", "EMAIL", "STATUS", "REASON"
    )
    .map_err(io)?;
    for e in &events {
        writeln!(
            out,
            "{:<6} {:<20} {:<15} {:<30} {:<8} {:<20} {}",
            e.id,
            e.created_at.format("%Y-%m-%d %H:%M:%S"),
            e.kind,
            e.email.as_deref().unwrap_or("-"),
            e.status.as_deref().unwrap_or("-"),
            e.reason.as_deref().unwrap_or("-"),
            subscriber_label(e),
        )
        .map_err(io)?;
    }
    Ok(())
}

/// `bounces show ID`: the event's fields, its parsed report as JSON, then the raw message as
/// stored (cut at 256 KB), control characters replaced.
async fn show(args: BouncesShowArgs, config: Option<&Path>) -> CommandResult {
    let store = open_store(config).await?;
    let found = store.bounce_event(args.id).await;
    store.close().await;
    let Some(detail) = found? else {
        return Err(CommandError::Failed(anyhow::anyhow!(
            "no bounce event with id {} (see `tidings bounces list`)",
            args.id
        )));
    };
    let e = &detail.event;
    let parsed = serde_json::from_str::<serde_json::Value>(&detail.parsed)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| detail.parsed.clone());
    let dash = |v: &Option<String>| v.clone().unwrap_or_else(|| "-".into());
    let id = |v: Option<i64>| v.map_or_else(|| "-".into(), |i| i.to_string());
    let subscriber = subscriber_label(e);
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let io = |e: std::io::Error| CommandError::Failed(e.into());
    writeln!(
        out,
        "id:          {}\ntime:        {}\nsource:      {}\nkind:        {}\neffect:      {}\n\
         email:       {}\nstatus:      {}\nreason:      {}\ndelivery:    {}\n\
         subscriber:  {subscriber} (id {})\n\nparsed:\n{parsed}\n\nraw message ({} bytes):",
        e.id,
        e.created_at.to_rfc3339(),
        e.source,
        e.kind,
        e.effect,
        dash(&e.email),
        dash(&e.status),
        dash(&e.reason),
        id(e.delivery_id),
        id(e.subscriber_id),
        detail.raw.len(),
    )
    .map_err(io)?;
    // The message came from outside: control characters (terminal escapes) are shown as
    // U+FFFD, so printing it cannot drive the operator's terminal.
    let raw: String = String::from_utf8_lossy(&detail.raw)
        .chars()
        .map(|c| {
            if c.is_control() && !matches!(c, '\n' | '\t' | '\r') {
                char::REPLACEMENT_CHARACTER
            } else {
                c
            }
        })
        .collect();
    out.write_all(raw.as_bytes()).map_err(io)?;
    if !detail.raw.ends_with(b"\n") {
        writeln!(out).map_err(io)?;
    }
    Ok(())
}
