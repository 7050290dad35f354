//! `tidings db copy --from URL --to URL`: every table from one database into another, empty one
//! (SQLite to PostgreSQL or back), through the same source -> rows -> sink path as backup and
//! restore (`store::copy`). The source is opened as it is and only read; the target is created
//! (SQLite) and migrated as needed. A progress bar on a terminal; a per-table summary on stdout.
//! Also the progress bar and error mapping `backup` and `restore` share.

use std::io::IsTerminal as _;

use crate::cli::{DbCommand, DbCopyArgs};
use crate::commands::{CommandError, CommandResult, usage};
use crate::config::redact_url;
use crate::store::Store;
use crate::store::copy::{CopyError, CopySummary, Progress};

pub async fn run(cmd: DbCommand) -> CommandResult {
    match cmd {
        DbCommand::Copy(args) => copy(args).await,
    }
}

async fn copy(args: DbCopyArgs) -> CommandResult {
    if args.from.trim() == args.to.trim() {
        return Err(usage("--from and --to name the same database"));
    }
    let source = Store::open_as_is(&args.from, 2).await?;
    let target = Store::connect(&args.to, 2).await?;
    let bar = ProgressBar::on_terminal(ROWS);
    let result = source.copy_to(&target, &bar).await;
    source.close().await;
    target.close().await;
    let summary = result.map_err(copy_error)?;
    print_summary(&summary);
    println!(
        "copied {} rows in {} tables from {} to {}; row counts verified, sequences set",
        summary.total_rows(),
        summary.tables.len(),
        redact_url(&args.from),
        redact_url(&args.to)
    );
    Ok(())
}

/// A refusal (a non-empty target, an existing backup file, a newer schema) is a usage error
/// (exit 2); anything else failed (exit 1).
pub(super) fn copy_error(e: CopyError) -> CommandError {
    match e {
        CopyError::Refused(msg) => CommandError::Usage(msg),
        other => CommandError::Failed(other.into()),
    }
}

/// One line per table: its name and row count.
pub(super) fn print_summary(summary: &CopySummary) {
    for t in &summary.tables {
        println!("  {:<16} {:>10}", t.table, t.rows);
    }
}

/// An indicatif bar on stderr when it is a terminal; nothing otherwise.
pub(super) struct ProgressBar(Option<indicatif::ProgressBar>);

/// The bar of `db copy`, `backup` and `restore`.
pub(super) const ROWS: &str = "{bar:40} {pos}/{len} rows ({per_sec}, {eta} left)";

impl ProgressBar {
    /// A bar drawn with indicatif's `template` when stderr is a terminal.
    pub fn on_terminal(template: &str) -> ProgressBar {
        ProgressBar(std::io::stderr().is_terminal().then(|| {
            let bar = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(template) {
                bar.set_style(style);
            }
            bar
        }))
    }

    /// No bar at all.
    pub fn hidden() -> ProgressBar {
        ProgressBar(None)
    }

    /// `line` on stderr, above the bar when there is one.
    pub fn println(&self, line: &str) {
        match &self.0 {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }
}

impl Progress for ProgressBar {
    fn start(&self, total_rows: u64) {
        if let Some(bar) = &self.0 {
            bar.set_length(total_rows);
        }
    }

    fn advance(&self, rows: u64) {
        if let Some(bar) = &self.0 {
            bar.inc(rows);
        }
    }

    fn finish(&self) {
        if let Some(bar) = &self.0 {
            bar.finish_and_clear();
        }
    }
}
