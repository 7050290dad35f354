//! `tidings backup FILE` and `tidings restore FILE`: the configured database to a backup file
//! in one consistent snapshot (while `serve` keeps running), and a backup file into the
//! configured database, which must be empty. Both go through `store::copy`, the path `db copy`
//! uses; the file format is the same for SQLite and PostgreSQL.

use crate::cli::{BackupArgs, RestoreArgs};
use crate::commands::CommandResult;
use crate::commands::db::{ProgressBar, ROWS, copy_error, print_summary};
use crate::config::Settings;
use crate::store::Store;

pub async fn backup(settings: &Settings, args: BackupArgs) -> CommandResult {
    let db = &settings.database;
    // As it is: a backup reads and never migrates.
    let store = Store::open_as_is(&db.url, db.max_connections).await?;
    let bar = ProgressBar::on_terminal(ROWS);
    let result = store.backup_to(&args.file, &bar).await;
    store.close().await;
    let summary = result.map_err(copy_error)?;
    print_summary(&summary);
    println!(
        "backup written to {}: {} rows in {} tables, schema version {}",
        args.file.display(),
        summary.total_rows(),
        summary.tables.len(),
        summary.schema_version
    );
    Ok(())
}

pub async fn restore(settings: &Settings, args: RestoreArgs) -> CommandResult {
    let db = &settings.database;
    // A missing SQLite file is created: restoring onto a new machine starts from nothing.
    let store = Store::connect(&db.url, db.max_connections).await?;
    let bar = ProgressBar::on_terminal(ROWS);
    let result = store.restore_from(&args.file, &bar).await;
    store.close().await;
    let summary = result.map_err(copy_error)?;
    print_summary(&summary);
    println!(
        "restored {} rows in {} tables from {} (a {} backup at schema version {}); \
         row counts verified, sequences set, migrations up to date",
        summary.total_rows(),
        summary.tables.len(),
        args.file.display(),
        summary.source_backend,
        summary.schema_version
    );
    Ok(())
}
