//! `tidings subscribers add|list|remove|import|export` and `tidings topics`.

use std::io::{IsTerminal, Write};
use std::path::Path;

use anyhow::Context as _;
use indicatif::{ProgressBar, ProgressStyle};

use super::{CommandError, CommandResult, Context, now, usage};
use crate::cli::{AddArgs, ExportArgs, ImportArgs, ListArgs, RemoveArgs, SubscribersCommand};
use crate::domain::{ConsentSource, SubscriberEmail, SubscriberStatus, TopicSlug};
use crate::store::{AddOutcome, NewSubscriber, SubscriberFilter};

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
        serde_json::to_writer_pretty(&mut out, &rows).context("writing JSON")?;
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
        .from_reader(std::io::BufReader::new(file));
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
    let status_col = col("status");
    let tz_col = col("timezone");

    let progress = progress_bar(total_bytes, &a.file);
    let mut bad: Vec<BadRow> = Vec::new();
    let (mut created, mut updated, mut unchanged, mut suppressed) = (0u64, 0u64, 0u64, 0u64);
    let mut batch: Vec<(u64, NewSubscriber)> = Vec::with_capacity(IMPORT_BATCH);
    let mut record = csv::StringRecord::new();
    loop {
        let more = match reader.read_record(&mut record) {
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
        match parse_row(
            ctx,
            &record,
            headers.len(),
            email_col,
            topics_col,
            status_col,
            tz_col,
            a.confirmed,
        ) {
            Ok(row) => batch.push((line, row)),
            Err(reason) => bad.push(BadRow { line, reason }),
        }
        if batch.len() >= IMPORT_BATCH {
            flush(
                ctx,
                &mut batch,
                &mut bad,
                [&mut created, &mut updated, &mut unchanged, &mut suppressed],
            )
            .await?;
        }
    }
    flush(
        ctx,
        &mut batch,
        &mut bad,
        [&mut created, &mut updated, &mut unchanged, &mut suppressed],
    )
    .await?;
    progress.finish_and_clear();

    bad.sort_by_key(|b| b.line);
    for b in &bad {
        eprintln!("{}: line {}: {}", a.file.display(), b.line, b.reason);
    }
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

#[allow(clippy::too_many_arguments)]
fn parse_row(
    ctx: &Context,
    record: &csv::StringRecord,
    columns: usize,
    email_col: usize,
    topics_col: usize,
    status_col: Option<usize>,
    tz_col: Option<usize>,
    confirmed: bool,
) -> Result<NewSubscriber, String> {
    if record.len() != columns {
        return Err(format!("expected {columns} fields, found {}", record.len()));
    }
    let field = |i: usize| record.get(i).unwrap_or("");
    let email = SubscriberEmail::parse(field(email_col)).map_err(|e| format!("email: {e}"))?;
    let topics = parse_topics(ctx, field(topics_col).split(';'))?;
    let status = match status_col.map(field).filter(|s| !s.is_empty()) {
        Some(s) => s
            .parse::<SubscriberStatus>()
            .map_err(|e| format!("status: {e}"))?,
        None if confirmed => SubscriberStatus::Confirmed,
        None => SubscriberStatus::Pending,
    };
    if topics.is_empty() && !status.is_suppressed() {
        return Err("topics: no topic given".into());
    }
    let timezone = match tz_col.map(field).filter(|s| !s.is_empty()) {
        Some(tz) => Some(parse_timezone(tz)?),
        None => None,
    };
    Ok(NewSubscriber {
        email,
        topics,
        status,
        timezone,
        source: ConsentSource::Import,
        consent_version: ctx.settings.newsletter.consent_version.clone(),
        resubscribe: false,
        ip: None,
        user_agent: None,
    })
}

async fn flush(
    ctx: &Context,
    batch: &mut Vec<(u64, NewSubscriber)>,
    bad: &mut Vec<BadRow>,
    counters: [&mut u64; 4],
) -> Result<(), CommandError> {
    if batch.is_empty() {
        return Ok(());
    }
    // An address twice in one batch: the later row adds to the earlier one.
    let (lines, rows): (Vec<u64>, Vec<NewSubscriber>) = batch.drain(..).unzip();
    let outcomes = ctx.store.add_subscribers(&rows, now()).await?;
    let [created, updated, unchanged, suppressed] = counters;
    for (line, outcome) in lines.into_iter().zip(outcomes) {
        match outcome {
            Ok(AddOutcome::Created { .. }) => *created += 1,
            Ok(AddOutcome::Updated {
                added_topics: 0,
                confirmed: false,
                ..
            }) => *unchanged += 1,
            Ok(AddOutcome::Updated { .. }) => *updated += 1,
            Ok(AddOutcome::Suppressed { .. }) => *suppressed += 1,
            Err(e) => bad.push(BadRow {
                line,
                reason: e.to_string(),
            }),
        }
    }
    tracing::debug!(rows = rows.len(), "import batch written");
    Ok(())
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
        w.write_record([
            r.email.as_str(),
            r.status.as_str(),
            &r.topics.join(";"),
            r.timezone.as_deref().unwrap_or(""),
            &r.created_at.to_rfc3339(),
        ])
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
            counts.get(&t.slug).copied().unwrap_or(0),
            t.name
        )
        .context("writing to stdout")?;
    }
    Ok(())
}
