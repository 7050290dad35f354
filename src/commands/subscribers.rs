//! `tidings subscribers add|list|remove|import|export` and `tidings topics`.
//!
//! Export and import are each other's inverse: a cell that a spreadsheet would run as a formula
//! (starting with `=`, `+`, `-`, `@`, a tab or a carriage return) is written with a leading `'`
//! (OWASP's advice for CSV injection) and read back without it; `created_at`, the consent date,
//! survives the trip. Import reads CRLF files (what spreadsheets write) with the right line
//! numbers, and a quote left open is reported at its line, never silently swallowing the rows
//! after it.

use std::io::{BufRead, IsTerminal, Read, Write};
use std::path::Path;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use indicatif::{ProgressBar, ProgressStyle};

use super::{CommandError, CommandResult, Context, now, usage};
use crate::cli::{AddArgs, ExportArgs, ImportArgs, ListArgs, RemoveArgs, SubscribersCommand};
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberStatus, TopicSlug};
use crate::store::{AddOutcome, LastBounce, NewSubscriber, SubscriberFilter, SubscriberRecord};

/// Rows written per transaction during an import.
const IMPORT_BATCH: usize = 500;

pub async fn run(ctx: &Context, cmd: SubscribersCommand) -> CommandResult {
    match cmd {
        SubscribersCommand::Add(a) => add(ctx, a).await,
        SubscribersCommand::List(a) => list(ctx, a).await,
        SubscribersCommand::Remove(a) => remove(ctx, a).await,
        SubscribersCommand::Import(a) => import(ctx, a).await,
        SubscribersCommand::Export(a) => export(ctx, a).await,
    }
}

fn parse_email(raw: &str) -> Result<SubscriberEmail, CommandError> {
    SubscriberEmail::parse(raw).map_err(|e| usage(format!("{}: {e}", printable(raw))))
}

/// Shows user input in messages without its control characters.
fn printable(raw: &str) -> String {
    format!("{:?}", raw.chars().take(100).collect::<String>())
}

fn parse_timezone(raw: &str) -> Result<String, String> {
    raw.trim()
        .parse::<chrono_tz::Tz>()
        .map(|tz| tz.name().to_string())
        .map_err(|_| {
            format!(
                "{} is not an IANA time zone such as Europe/Berlin",
                printable(raw)
            )
        })
}

fn parse_topics<'a>(
    ctx: &Context,
    raw: impl IntoIterator<Item = &'a str>,
) -> Result<Vec<TopicSlug>, String> {
    let mut out = Vec::new();
    for t in raw {
        let t = t.trim();
        if t.is_empty() {
            continue;
        }
        if ctx.settings.topic(t).is_none() {
            return Err(format!("unknown topic {}", printable(t)));
        }
        let slug = TopicSlug::parse(t)?;
        if !out.contains(&slug) {
            out.push(slug);
        }
    }
    Ok(out)
}

async fn add(ctx: &Context, a: AddArgs) -> CommandResult {
    let email = parse_email(&a.email)?;
    // An unknown topic gets the message that lists the configured ones.
    for t in a.topics.iter().map(|t| t.trim()).filter(|t| !t.is_empty()) {
        ctx.topic(t)?;
    }
    let topics = parse_topics(ctx, a.topics.iter().map(String::as_str)).map_err(usage)?;
    if topics.is_empty() {
        return Err(usage("at least one --topic is required"));
    }
    let timezone = a
        .timezone
        .as_deref()
        .map(parse_timezone)
        .transpose()
        .map_err(usage)?;
    let new = NewSubscriber {
        email: email.clone(),
        topics,
        status: if a.confirmed {
            SubscriberStatus::Confirmed
        } else {
            SubscriberStatus::Pending
        },
        timezone,
        source: ConsentSource::Cli,
        consent_version: ctx.settings.newsletter.consent_version.clone(),
        consented_at: None,
        resubscribe: a.resubscribe,
        ip: None,
        user_agent: None,
    };
    match ctx.store.add_subscriber(&new, now()).await? {
        AddOutcome::Created { id } => println!("added {email} (id {id}, {})", new.status),
        AddOutcome::Updated {
            id,
            added_topics,
            confirmed,
        } => {
            let mut what = vec![format!("{added_topics} new topic(s)")];
            if confirmed {
                what.push("now confirmed".into());
            }
            println!("{email} already exists (id {id}): {}", what.join(", "));
        }
        AddOutcome::Suppressed { reason } => {
            return Err(CommandError::Failed(anyhow::anyhow!(
                "{email} is {reason}; not added (use --resubscribe if they asked to come back)"
            )));
        }
    }
    Ok(())
}

async fn list(ctx: &Context, a: ListArgs) -> CommandResult {
    if let Some(t) = &a.topic {
        ctx.topic(t)?;
    }
    let status = a
        .status
        .as_deref()
        .map(str::parse::<SubscriberStatus>)
        .transpose()
        .map_err(usage)?;
    let rows = ctx
        .store
        .list_subscribers(&SubscriberFilter {
            topic: a.topic.clone(),
            status,
        })
        .await?;
    let mut out = std::io::stdout().lock();
    if a.json {
        /// A subscriber as `list --json` prints it: the record and its latest bounce or
        /// complaint (null when none).
        #[derive(serde::Serialize)]
        struct Listed<'a> {
            #[serde(flatten)]
            record: &'a SubscriberRecord,
            last_bounce: Option<&'a LastBounce>,
        }
        let last = ctx.store.last_bounces().await?;
        let listed: Vec<Listed> = rows
            .iter()
            .map(|record| Listed {
                record,
                last_bounce: last.get(&record.id),
            })
            .collect();
        serde_json::to_writer_pretty(&mut out, &listed).context("writing JSON")?;
        writeln!(out).context("writing to stdout")?;
    } else {
        writeln!(
            out,
            "{:<40} {:<13} {:<30} CREATED",
            "EMAIL", "STATUS", "TOPICS"
        )
        .context("writing to stdout")?;
        for r in &rows {
            writeln!(
                out,
                "{:<40} {:<13} {:<30} {}",
                r.email,
                r.status.as_str(),
                r.topics.join(";"),
                r.created_at.format("%Y-%m-%d %H:%M")
            )
            .context("writing to stdout")?;
        }
    }
    Ok(())
}

async fn remove(ctx: &Context, a: RemoveArgs) -> CommandResult {
    let email = parse_email(&a.email)?;
    let Some(sub) = ctx.store.find_subscriber(&email).await? else {
        return Err(CommandError::Failed(anyhow::anyhow!(
            "{email} is not a subscriber"
        )));
    };
    if a.erase {
        ctx.store.erase_subscriber(sub.id, now()).await?;
        println!("erased {email}; only a hash of the address stays on the suppression list");
    } else {
        ctx.store.unsubscribe_all(sub.id, now()).await?;
        println!("unsubscribed {email}");
    }
    Ok(())
}

/// One rejected CSV row.
struct BadRow {
    line: u64,
    reason: String,
}

async fn import(ctx: &Context, a: ImportArgs) -> CommandResult {
    let file = std::fs::File::open(&a.file)
        .map_err(|e| usage(format!("cannot open {}: {e}", a.file.display())))?;
    let total_bytes = file.metadata().map(|m| m.len()).unwrap_or(0);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(CrlfToLf::new(std::io::BufReader::new(file)));
    let headers = reader
        .headers()
        .map_err(|e| {
            usage(format!(
                "{}: cannot read the header row: {e}",
                a.file.display()
            ))
        })?
        .clone();
    let col = |name: &str| headers.iter().position(|h| h.eq_ignore_ascii_case(name));
    let (Some(email_col), Some(topics_col)) = (col("email"), col("topics")) else {
        return Err(usage(format!(
            "{}: the header row must name the columns email and topics (found: {})",
            a.file.display(),
            headers.iter().collect::<Vec<_>>().join(",")
        )));
    };
    let columns = Columns {
        count: headers.len(),
        email: email_col,
        topics: topics_col,
        status: col("status"),
        timezone: col("timezone"),
        created_at: col("created_at"),
    };

    let progress = progress_bar(total_bytes, &a.file);
    let mut bad: Vec<BadRow> = Vec::new();
    let mut tally = Tally::default();
    let mut batch: Vec<ImportRow> = Vec::with_capacity(IMPORT_BATCH);
    let mut record = csv::StringRecord::new();
    // A record that spans lines (line, last), reported once we know whether the file ended.
    let mut open_quote: Option<(u64, u64)> = None;
    loop {
        let read = reader.read_record(&mut record);
        if let Some((line, last)) = open_quote.take() {
            let reason = if matches!(read, Ok(false)) {
                format!(
                    "a quote opened on this line is never closed; lines {line} to {last} (the end of the file) were not imported"
                )
            } else {
                format!(
                    "a quote opened on this line runs to line {last}; lines {line} to {last} were not imported"
                )
            };
            bad.push(BadRow { line, reason });
        }
        let more = match read {
            Ok(more) => more,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                bad.push(BadRow {
                    line,
                    reason: format!("unreadable CSV: {e}"),
                });
                if matches!(e.kind(), csv::ErrorKind::Io(_)) {
                    break;
                }
                continue;
            }
        };
        if !more {
            break;
        }
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        progress.set_position(record.position().map(|p| p.byte()).unwrap_or(0));
        // No column of ours holds a line break, so a record that does was made by a quote
        // left open: it swallowed the lines up to the next quote, or to the end of the file.
        let breaks: usize = record.iter().map(|f| f.matches('\n').count()).sum();
        if breaks > 0 {
            open_quote = Some((line, line + breaks as u64));
            continue;
        }
        match parse_row(ctx, &record, &columns, a.confirmed, now()) {
            Ok(new) => batch.push(ImportRow { line, new }),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
        if batch.len() >= IMPORT_BATCH {
            flush(ctx, &mut batch, &mut bad, &mut tally).await?;
        }
    }
    flush(ctx, &mut batch, &mut bad, &mut tally).await?;
    progress.finish_and_clear();

    bad.sort_by_key(|b| b.line);
    for b in &bad {
        eprintln!("{}: line {}: {}", a.file.display(), b.line, b.reason);
    }
    let Tally {
        created,
        updated,
        unchanged,
        suppressed,
    } = tally;
    println!(
        "imported {}: {created} added, {updated} updated, {unchanged} unchanged, {suppressed} suppressed, {} rejected",
        a.file.display(),
        bad.len()
    );
    if bad.is_empty() {
        Ok(())
    } else {
        Err(CommandError::Failed(anyhow::anyhow!(
            "{} row(s) rejected (lines {}); the other rows were imported",
            bad.len(),
            bad.iter()
                .map(|b| b.line.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        )))
    }
}

/// One parsed CSV row waiting for its batch.
struct ImportRow {
    line: u64,
    new: NewSubscriber,
}

/// What the rows written so far did.
#[derive(Default)]
struct Tally {
    created: u64,
    updated: u64,
    unchanged: u64,
    suppressed: u64,
}

/// Where the import's columns are in the header row.
struct Columns {
    count: usize,
    email: usize,
    topics: usize,
    status: Option<usize>,
    timezone: Option<usize>,
    created_at: Option<usize>,
}

fn parse_row(
    ctx: &Context,
    record: &csv::StringRecord,
    columns: &Columns,
    confirmed: bool,
    now: DateTime<Utc>,
) -> Result<NewSubscriber, String> {
    if record.len() != columns.count {
        return Err(format!(
            "expected {} fields, found {}",
            columns.count,
            record.len()
        ));
    }
    let field = |i: usize| unneutralise(record.get(i).unwrap_or(""));
    let email = SubscriberEmail::parse(field(columns.email)).map_err(|e| format!("email: {e}"))?;
    let topics = parse_topics(ctx, field(columns.topics).split(';'))?;
    let status = match columns.status.map(field).filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<SubscriberStatus>()
            .map_err(|e| format!("status: {e}"))?,
        None if confirmed => SubscriberStatus::Confirmed,
        None => SubscriberStatus::Pending,
    };
    if topics.is_empty() && !status.is_suppressed() {
        return Err("topics: no topic given".into());
    }
    let timezone = match columns.timezone.map(field).filter(|s| !s.is_empty()) {
        Some(tz) => Some(parse_timezone(tz)?),
        None => None,
    };
    let consented_at = match columns.created_at.map(field).filter(|s| !s.is_empty()) {
        Some(raw) => {
            let at = crate::cli::parse_time(raw).map_err(|e| format!("created_at: {e}"))?;
            if at > now {
                return Err(format!("created_at: {} is in the future", printable(raw)));
            }
            Some(at)
        }
        None => None,
    };
    Ok(NewSubscriber {
        email,
        topics,
        status,
        timezone,
        source: ConsentSource::Import,
        consent_version: ctx.settings.newsletter.consent_version.clone(),
        consented_at,
        resubscribe: false,
        ip: None,
        user_agent: None,
    })
}

/// Writes the batch (one transaction; a row the database refuses is reported in its place)
/// and counts what each row did.
async fn flush(
    ctx: &Context,
    batch: &mut Vec<ImportRow>,
    bad: &mut Vec<BadRow>,
    tally: &mut Tally,
) -> Result<(), CommandError> {
    if batch.is_empty() {
        return Ok(());
    }
    // An address twice in one batch: the later row adds to the earlier one.
    let (lines, rows): (Vec<u64>, Vec<NewSubscriber>) =
        batch.drain(..).map(|row| (row.line, row.new)).unzip();
    let outcomes = ctx.store.add_subscribers(&rows, now()).await?;
    for (line, outcome) in lines.into_iter().zip(outcomes) {
        match outcome {
            Ok(AddOutcome::Created { .. }) => tally.created += 1,
            Ok(AddOutcome::Updated {
                added_topics: 0,
                confirmed: false,
                ..
            }) => tally.unchanged += 1,
            Ok(AddOutcome::Updated { .. }) => tally.updated += 1,
            Ok(AddOutcome::Suppressed { .. }) => tally.suppressed += 1,
            Err(e) => bad.push(BadRow {
                line,
                reason: e.to_string(),
            }),
        }
    }
    tracing::debug!(rows = rows.len(), "import batch written");
    Ok(())
}

/// Whether a spreadsheet would take a cell starting with this character for a formula
/// (OWASP, CSV injection).
fn starts_formula(cell: &str) -> bool {
    cell.starts_with(['=', '+', '-', '@', '\t', '\r'])
}

/// The cell as exported: one `'` in front of a cell that would start a formula, and in front of
/// a cell that is already such a cell with quotes before it, so [`unneutralise`] can undo
/// exactly what was added.
fn neutralise(cell: &str) -> std::borrow::Cow<'_, str> {
    if starts_formula(cell.trim_start_matches('\'')) {
        format!("'{cell}").into()
    } else {
        cell.into()
    }
}

/// The cell as imported: the `'` that [`neutralise`] added is taken off again.
fn unneutralise(cell: &str) -> &str {
    match cell.strip_prefix('\'') {
        Some(rest) if starts_formula(rest.trim_start_matches('\'')) => rest,
        _ => cell,
    }
}

/// Reads CRLF line ends as LF, so the CSV reader's line numbers are right for the files
/// spreadsheets write (it counts a record's line before it has consumed the record's `\n`).
/// Our columns never hold a carriage return, so none is lost that mattered.
struct CrlfToLf<R> {
    inner: R,
    /// A `\r` read at the end of a chunk, not yet known to be followed by `\n`.
    pending_cr: bool,
}

impl<R: BufRead> CrlfToLf<R> {
    fn new(inner: R) -> Self {
        CrlfToLf {
            inner,
            pending_cr: false,
        }
    }
}

impl<R: BufRead> Read for CrlfToLf<R> {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        let mut n = 0;
        while n == 0 {
            let input = self.inner.fill_buf()?;
            if input.is_empty() {
                if std::mem::take(&mut self.pending_cr) {
                    out[0] = b'\r';
                    return Ok(1);
                }
                return Ok(0);
            }
            let mut used = 0;
            for &b in input {
                if n == out.len() {
                    break;
                }
                if std::mem::take(&mut self.pending_cr) && b != b'\n' {
                    out[n] = b'\r';
                    n += 1;
                    if n == out.len() {
                        break;
                    }
                }
                used += 1;
                if b == b'\r' {
                    self.pending_cr = true;
                } else {
                    out[n] = b;
                    n += 1;
                }
            }
            self.inner.consume(used);
        }
        Ok(n)
    }
}

/// A byte-based progress bar on a terminal; hidden (with a log line per batch) otherwise.
fn progress_bar(total: u64, file: &Path) -> ProgressBar {
    if std::io::stderr().is_terminal() {
        let pb = ProgressBar::new(total);
        pb.set_style(
            ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} ({eta})")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        );
        pb.set_message(format!("importing {}", file.display()));
        pb
    } else {
        ProgressBar::hidden()
    }
}

async fn export(ctx: &Context, a: ExportArgs) -> CommandResult {
    if let Some(t) = &a.topic {
        ctx.topic(t)?;
    }
    let rows = ctx
        .store
        .list_subscribers(&SubscriberFilter {
            topic: a.topic.clone(),
            status: None,
        })
        .await?;
    let mut w = csv::Writer::from_writer(std::io::stdout().lock());
    w.write_record(["email", "status", "topics", "timezone", "created_at"])
        .context("writing CSV")?;
    for r in &rows {
        let topics = r.topics.join(";");
        let created_at = r.created_at.to_rfc3339();
        let cells = [
            r.email.as_str(),
            r.status.as_str(),
            &topics,
            r.timezone.as_deref().unwrap_or(""),
            &created_at,
        ];
        w.write_record(cells.map(neutralise).iter().map(|c| c.as_bytes()))
            .context("writing CSV")?;
    }
    w.flush().context("writing CSV")?;
    Ok(())
}

pub async fn topics(ctx: &Context) -> CommandResult {
    let counts = ctx.store.confirmed_counts_by_topic().await?;
    let mut out = std::io::stdout().lock();
    writeln!(out, "{:<24} {:>10}  NAME", "TOPIC", "CONFIRMED").context("writing to stdout")?;
    for t in &ctx.settings.topics {
        writeln!(
            out,
            "{:<24} {:>10}  {}",
            t.slug,
            counts.get(t.slug.as_str()).copied().unwrap_or(0),
            t.name
        )
        .context("writing to stdout")?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `input` through `CrlfToLf` with an inner buffer of `cap` bytes, reading `out` at a
    /// time.
    fn convert(input: &[u8], cap: usize, out: usize) -> Vec<u8> {
        let mut reader = CrlfToLf::new(std::io::BufReader::with_capacity(cap, input));
        let mut all = Vec::new();
        let mut buf = vec![0u8; out];
        loop {
            let n = reader.read(&mut buf).unwrap();
            if n == 0 {
                return all;
            }
            all.extend_from_slice(&buf[..n]);
        }
    }

    #[test]
    fn crlf_becomes_lf_across_every_chunk_boundary() {
        let input = b"a\r\nb\rc\r\n\r\r\nd\r";
        let want = b"a\nb\rc\n\r\nd\r";
        for cap in 1..=5 {
            for out in 1..=5 {
                assert_eq!(convert(input, cap, out), want, "cap {cap}, out {out}");
            }
        }
    }

    #[test]
    fn neutralised_cells_come_back_intact() {
        for cell in [
            "=1+2", "+x", "-x", "@x", "\tx", "'=x", "''-x", "'plain", "plain", "", "'",
        ] {
            let exported = neutralise(cell);
            assert!(!starts_formula(&exported), "{cell:?} -> {exported:?}");
            assert_eq!(unneutralise(&exported), cell, "{cell:?} -> {exported:?}");
        }
        assert_eq!(neutralise("=1+2"), "'=1+2");
        assert_eq!(neutralise("plain"), "plain");
    }
}
