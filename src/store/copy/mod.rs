//! Backups and moving databases, as one path: a source (a database read in one consistent
//! snapshot, or a backup file) streams every table's rows, as backend-neutral [`Value`]s, into a
//! sink (a database loaded in one transaction, or a backup file). `tidings backup` is store ->
//! file, `tidings restore` file -> store, `tidings db copy` store -> store.
//!
//! The tables and their order come from one list, `migrations/tables.txt`, kept next to the
//! migrations (a table after every table it references); a unit test checks that it names every
//! table of the migrated schema. Columns are matched by name, so SQLite and PostgreSQL may order
//! them differently. The target is brought to the source's migration version before loading and
//! to the newest version after, so a backup from an older tidings restores into a newer one.
//!
//! The backup file is gzip'd JSON lines: a [`Header`] (format, tidings and schema versions, row
//! count per table), then per table a [`TableStart`], its rows as JSON arrays, and an end line,
//! and a final line marking the file complete. Values are typed: integers and reals as JSON
//! numbers, text as strings, `{"b": base64}` for bytes and `{"t": RFC 3339}` for times (what
//! PostgreSQL stores as `TIMESTAMPTZ`; SQLite keeps times as text, which the sink parses when
//! the target column is a timestamp).

mod catalog;
mod file;
mod source;
mod target;

use std::path::Path;

use base64::Engine as _;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{Store, StoreError};

/// The tables tidings keeps, in dependency order, one a line (see the module comment).
const TABLE_LIST: &str = include_str!("../../../migrations/tables.txt");

/// The names in [`TABLE_LIST`], in order.
pub fn tables() -> Vec<&'static str> {
    TABLE_LIST
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
}

/// What the first line of a backup file names as its format.
pub const FORMAT: &str = "tidings-backup";
/// The version of the backup file format this build writes and reads.
pub const FORMAT_VERSION: u32 = 1;

/// Why a backup, restore or copy did not happen or did not finish.
#[derive(Debug, thiserror::Error)]
pub enum CopyError {
    /// The operation was refused before anything was written: a target that is not empty, a
    /// backup file that exists, a schema newer than this build knows.
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: String,
        source: std::io::Error,
    },
    /// The backup file is not one this build can read, or is damaged.
    #[error("{path}: {reason}")]
    BadFile { path: String, reason: String },
    /// The data does not fit the target (a column missing, a value of the wrong type).
    #[error("{0}")]
    Mismatch(String),
}

impl From<sqlx::Error> for CopyError {
    fn from(e: sqlx::Error) -> Self {
        CopyError::Store(StoreError::Database(e))
    }
}

impl From<sqlx::migrate::MigrateError> for CopyError {
    fn from(e: sqlx::migrate::MigrateError) -> Self {
        CopyError::Store(StoreError::Migrate(e))
    }
}

pub type CopyResult<T> = Result<T, CopyError>;

/// One column value of one row, as both backends and the backup file carry it.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    Null,
    Int(i64),
    Real(f64),
    Bool(bool),
    Text(String),
    Bytes(Vec<u8>),
    Time(DateTime<Utc>),
}

impl Value {
    /// About how many bytes the value holds, for sizing batches.
    fn size(&self) -> usize {
        match self {
            Value::Text(s) => s.len(),
            Value::Bytes(b) => b.len(),
            _ => 8,
        }
    }

    /// The value as it is written in a backup file.
    fn to_json(&self) -> serde_json::Value {
        use serde_json::{Value as J, json};
        match self {
            Value::Null => J::Null,
            Value::Int(i) => J::from(*i),
            // A real that JSON cannot hold (NaN, infinity) becomes null; SQLite itself stores
            // NaN as NULL.
            Value::Real(f) => serde_json::Number::from_f64(*f).map_or(J::Null, J::Number),
            Value::Bool(b) => J::Bool(*b),
            Value::Text(s) => J::String(s.clone()),
            Value::Bytes(b) => json!({ "b": base64::engine::general_purpose::STANDARD.encode(b) }),
            Value::Time(t) => {
                json!({ "t": t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true) })
            }
        }
    }

    /// Reads a value written by [`Value::to_json`].
    fn from_json(json: serde_json::Value) -> Result<Value, String> {
        use serde_json::Value as J;
        Ok(match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Bool(b),
            J::Number(n) => match (n.as_i64(), n.as_f64()) {
                (Some(i), _) if !n.is_f64() => Value::Int(i),
                (_, Some(f)) => Value::Real(f),
                _ => return Err(format!("the number {n} is out of range")),
            },
            J::String(s) => Value::Text(s),
            J::Object(map) => match (map.get("b"), map.get("t"), map.len()) {
                (Some(J::String(b)), None, 1) => Value::Bytes(
                    base64::engine::general_purpose::STANDARD
                        .decode(b)
                        .map_err(|e| format!("bad base64 in a bytes value: {e}"))?,
                ),
                (None, Some(J::String(t)), 1) => Value::Time(
                    DateTime::parse_from_rfc3339(t)
                        .map_err(|e| format!("bad time {t:?}: {e}"))?
                        .with_timezone(&Utc),
                ),
                _ => return Err("an object value must be {\"b\": ...} or {\"t\": ...}".into()),
            },
            J::Array(_) => return Err("a value cannot be an array".into()),
        })
    }
}

/// A table's row count, as a header lists them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TableCount {
    pub table: String,
    pub rows: u64,
}

/// What a source says before its tables: which schema its rows follow and how many there are.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Header {
    pub format: String,
    pub format_version: u32,
    /// The tidings version that wrote it.
    pub tidings_version: String,
    /// The newest migration applied to the source (its version number, e.g. 5 for `0005_...`).
    pub schema_version: i64,
    /// `sqlite` or `postgres`.
    pub source_backend: String,
    pub created_at: DateTime<Utc>,
    /// Every table in copy order with its row count.
    pub tables: Vec<TableCount>,
}

/// One table as it starts in the stream.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct TableStart {
    pub table: String,
    /// The column names, in the order of each row's values.
    pub columns: Vec<String>,
    pub rows: u64,
    /// The highest `id` the source's sequence has handed out (0 when the table has no
    /// sequence or never used it), so the target never hands one out again.
    pub last_id: i64,
}

/// What a finished backup, restore or copy moved.
#[derive(Clone, Debug)]
pub struct CopySummary {
    pub schema_version: i64,
    pub source_backend: String,
    pub tables: Vec<TableCount>,
}

impl CopySummary {
    pub fn total_rows(&self) -> u64 {
        self.tables.iter().map(|t| t.rows).sum()
    }
}

/// Told how far a copy has come (a progress bar on a terminal, or nothing).
pub trait Progress {
    /// Rows of every table together, before the first table.
    fn start(&self, total_rows: u64);
    /// `rows` more rows reached the sink.
    fn advance(&self, rows: u64);
    fn finish(&self);
}

/// No progress to show.
pub struct NoProgress;

impl Progress for NoProgress {
    fn start(&self, _: u64) {}
    fn advance(&self, _: u64) {}
    fn finish(&self) {}
}

/// Where rows go: a database or a backup file.
pub(crate) trait RowSink {
    async fn start(&mut self, header: &Header) -> CopyResult<()>;
    async fn start_table(&mut self, table: &TableStart) -> CopyResult<()>;
    async fn write_rows(&mut self, rows: &[Vec<Value>]) -> CopyResult<()>;
    /// The table's rows have all been written; `rows` is how many the source sent.
    async fn end_table(&mut self, table: &TableStart, rows: u64) -> CopyResult<()>;
    async fn finish(self) -> CopyResult<()>;
}

/// At most this many bytes of values are held before a batch goes to the sink.
const BATCH_BYTES: usize = 8 * 1024 * 1024;
/// At most this many values (rows times columns) in one batch: under SQLite's limit of 32766
/// bound parameters per statement and PostgreSQL's 65535.
const BATCH_VALUES: usize = 30_000;
/// At most this many rows in one batch.
const BATCH_ROWS: usize = 1000;

/// Gathers a table's rows into batches and hands each full batch to the sink.
struct Batcher<'a, S: RowSink> {
    sink: &'a mut S,
    progress: &'a dyn Progress,
    rows: Vec<Vec<Value>>,
    bytes: usize,
    max_rows: usize,
    sent: u64,
}

impl<'a, S: RowSink> Batcher<'a, S> {
    fn new(sink: &'a mut S, progress: &'a dyn Progress, columns: usize) -> Self {
        Batcher {
            sink,
            progress,
            rows: Vec::new(),
            bytes: 0,
            max_rows: (BATCH_VALUES / columns.max(1)).clamp(1, BATCH_ROWS),
            sent: 0,
        }
    }

    async fn push(&mut self, row: Vec<Value>) -> CopyResult<()> {
        self.bytes += row.iter().map(Value::size).sum::<usize>();
        self.rows.push(row);
        if self.rows.len() >= self.max_rows || self.bytes >= BATCH_BYTES {
            self.flush().await?;
        }
        Ok(())
    }

    /// Sends what is gathered; returns how many rows went to the sink in all.
    async fn flush(&mut self) -> CopyResult<u64> {
        if !self.rows.is_empty() {
            self.sink.write_rows(&self.rows).await?;
            let n = self.rows.len() as u64;
            self.sent += n;
            self.progress.advance(n);
            self.rows.clear();
            self.bytes = 0;
        }
        Ok(self.sent)
    }
}

impl Store {
    /// Writes every table to a new backup file at `path`, read in one consistent snapshot (a
    /// read transaction on SQLite, `REPEATABLE READ READ ONLY` on PostgreSQL) while other
    /// processes keep writing. An existing file is refused; the file appears under its name only
    /// once complete.
    pub async fn backup_to(&self, path: &Path, progress: &dyn Progress) -> CopyResult<CopySummary> {
        let mut sink = file::FileSink::create(path)?;
        let summary = source::dump(self, &mut sink, progress).await?;
        sink.finish().await?;
        Ok(summary)
    }

    /// Loads a backup file into this database, which must be empty (no rows in any table):
    /// migrates it to the backup's schema version, loads every table in one transaction,
    /// checks the row counts, moves the id sequences past the restored ids, and applies the
    /// newer migrations.
    pub async fn restore_from(
        &self,
        path: &Path,
        progress: &dyn Progress,
    ) -> CopyResult<CopySummary> {
        let reader = file::FileSource::open(path)?;
        let mut sink = target::DatabaseSink::new(self);
        let summary = reader.stream(&mut sink, progress).await?;
        sink.finish().await?;
        self.migrate().await?;
        Ok(summary)
    }

    /// Copies every table of this database into `target`, which must be empty, as
    /// [`Store::restore_from`] loads a backup; this database is only read.
    pub async fn copy_to(
        &self,
        target: &Store,
        progress: &dyn Progress,
    ) -> CopyResult<CopySummary> {
        let mut sink = target::DatabaseSink::new(target);
        let summary = source::dump(self, &mut sink, progress).await?;
        sink.finish().await?;
        target.migrate().await?;
        Ok(summary)
    }

    /// Rows per table, in copy order (for comparing two databases).
    pub async fn table_counts(&self) -> CopyResult<Vec<TableCount>> {
        super::with_pool!(self, p => {
            let mut conn = p.acquire().await?;
            let mut counts = Vec::new();
            for table in tables() {
                let rows = catalog::Catalog::count(&mut *conn, table).await?;
                counts.push(TableCount { table: table.to_string(), rows });
            }
            Ok(counts)
        })
    }
}

#[cfg(test)]
mod tests;
