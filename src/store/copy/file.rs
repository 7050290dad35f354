//! The backup file: gzip'd JSON lines (see the module comment of `copy` for the layout),
//! readable by its owner alone (mode 0600). The writer fills a temporary file beside the target
//! and renames it into place only once the last line is written and synced, so a backup that
//! fails half-way leaves no file that looks whole. The reader checks the format version, each
//! table's row count and the closing line, so a truncated or damaged file is refused instead of
//! half-restored.
//!
//! File reads and writes are plain blocking I/O through buffers: these run in a command of their
//! own, not beside the web app's tasks.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use serde::{Deserialize, Serialize};

use super::{
    Batcher, CopyError, CopyResult, CopySummary, FORMAT, FORMAT_VERSION, Header, Progress, RowSink,
    TableStart, Value,
};

/// Every line of a backup file but the rows (which are plain JSON arrays).
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "line", rename_all = "snake_case")]
enum Line {
    Header(Header),
    Table(TableStart),
    End { table: String, rows: u64 },
    Complete { tables: usize },
}

pub(super) struct FileSink {
    path: PathBuf,
    partial: PathBuf,
    out: Option<GzEncoder<BufWriter<File>>>,
    tables: usize,
}

fn io_error(path: &Path) -> impl Fn(std::io::Error) -> CopyError + '_ {
    move |source| CopyError::Io {
        path: path.display().to_string(),
        source,
    }
}

impl FileSink {
    /// Starts a new backup file at `path`; refuses one that exists.
    pub fn create(path: &Path) -> CopyResult<FileSink> {
        if path.exists() {
            return Err(CopyError::Refused(format!(
                "{} exists; a backup never overwrites a file",
                path.display()
            )));
        }
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".partial-{}", std::process::id()));
        let partial = path.with_file_name(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        // Only the owner may read it: a backup holds every subscriber's address.
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let file = options.open(&partial).map_err(io_error(&partial))?;
        Ok(FileSink {
            path: path.to_path_buf(),
            partial,
            out: Some(GzEncoder::new(BufWriter::new(file), Compression::fast())),
            tables: 0,
        })
    }

    fn write_json(&mut self, value: &impl Serialize) -> CopyResult<()> {
        let partial = self.partial.clone();
        let out = self
            .out
            .as_mut()
            .ok_or_else(|| CopyError::Mismatch("the backup file is already closed".into()))?;
        serde_json::to_writer(&mut *out, value)
            .map_err(|e| io_error(&partial)(std::io::Error::other(e)))?;
        out.write_all(b"\n").map_err(io_error(&partial))
    }
}

impl Drop for FileSink {
    fn drop(&mut self) {
        // Not renamed into place: the backup did not finish; leave nothing behind.
        if self.out.is_some() {
            let _ = std::fs::remove_file(&self.partial);
        }
    }
}

impl RowSink for FileSink {
    async fn start(&mut self, header: &Header) -> CopyResult<()> {
        self.write_json(&Line::Header(header.clone()))
    }

    async fn start_table(&mut self, table: &TableStart) -> CopyResult<()> {
        self.tables += 1;
        self.write_json(&Line::Table(table.clone()))
    }

    async fn write_rows(&mut self, rows: &[Vec<Value>]) -> CopyResult<()> {
        for row in rows {
            let row: Vec<serde_json::Value> = row.iter().map(Value::to_json).collect();
            self.write_json(&row)?;
        }
        Ok(())
    }

    async fn end_table(&mut self, table: &TableStart, rows: u64) -> CopyResult<()> {
        self.write_json(&Line::End {
            table: table.table.clone(),
            rows,
        })
    }

    async fn finish(mut self) -> CopyResult<()> {
        self.write_json(&Line::Complete {
            tables: self.tables,
        })?;
        let partial = self.partial.clone();
        let Some(out) = self.out.take() else {
            return Ok(());
        };
        let result = (|| {
            let file = out
                .finish()?
                .into_inner()
                .map_err(std::io::IntoInnerError::into_error)?;
            file.sync_all()?;
            std::fs::rename(&partial, &self.path)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&partial);
        }
        result.map_err(io_error(&partial))
    }
}

/// A backup file being read.
pub(super) struct FileSource {
    path: PathBuf,
    lines: std::io::Lines<BufReader<MultiGzDecoder<File>>>,
    line_no: u64,
}

impl FileSource {
    pub fn open(path: &Path) -> CopyResult<FileSource> {
        let file = File::open(path).map_err(io_error(path))?;
        Ok(FileSource {
            path: path.to_path_buf(),
            lines: BufReader::new(MultiGzDecoder::new(file)).lines(),
            line_no: 0,
        })
    }

    fn bad(&self, reason: impl std::fmt::Display) -> CopyError {
        CopyError::BadFile {
            path: self.path.display().to_string(),
            reason: format!("line {}: {reason}", self.line_no),
        }
    }

    /// The next line as JSON; `None` at the end of the file.
    fn next_json(&mut self) -> CopyResult<Option<serde_json::Value>> {
        let Some(line) = self.lines.next() else {
            return Ok(None);
        };
        self.line_no += 1;
        let line = line.map_err(|e| self.bad(format!("cannot read ({e})")))?;
        serde_json::from_str(&line)
            .map(Some)
            .map_err(|e| self.bad(format!("not JSON ({e})")))
    }

    fn next_line(&mut self) -> CopyResult<Line> {
        match self.next_json()? {
            None => Err(self.bad("the file ends early; it is incomplete or truncated")),
            Some(json) => serde_json::from_value(json).map_err(|e| self.bad(e)),
        }
    }

    /// Reads the header, then streams every table into `sink`.
    pub async fn stream<S: RowSink>(
        mut self,
        sink: &mut S,
        progress: &dyn Progress,
    ) -> CopyResult<CopySummary> {
        let first = self
            .next_json()?
            .ok_or_else(|| self.bad("the file is empty"))?;
        if first.get("format").and_then(|f| f.as_str()) != Some(FORMAT) {
            return Err(self.bad("this is not a tidings backup file"));
        }
        let Line::Header(header) = serde_json::from_value(first).map_err(|e| self.bad(e))? else {
            return Err(self.bad("the file does not start with a header"));
        };
        if header.format_version != FORMAT_VERSION {
            return Err(self.bad(format!(
                "backup format version {} is not the version {FORMAT_VERSION} this tidings reads \
                 (the file was written by tidings {})",
                header.format_version, header.tidings_version
            )));
        }
        sink.start(&header).await?;
        progress.start(header.tables.iter().map(|t| t.rows).sum());
        let mut seen = 0;
        loop {
            match self.next_line()? {
                Line::Table(table) => {
                    seen += 1;
                    self.table(&table, &header, sink, progress).await?;
                }
                Line::Complete { tables } if tables == seen && seen == header.tables.len() => break,
                other => return Err(self.bad(format!("unexpected {other:?}"))),
            }
        }
        progress.finish();
        Ok(CopySummary {
            schema_version: header.schema_version,
            source_backend: header.source_backend,
            tables: header.tables,
        })
    }

    /// One table: its rows up to its end line.
    async fn table<S: RowSink>(
        &mut self,
        table: &TableStart,
        header: &Header,
        sink: &mut S,
        progress: &dyn Progress,
    ) -> CopyResult<()> {
        let announced = header
            .tables
            .iter()
            .find(|t| t.table == table.table)
            .map(|t| t.rows);
        if announced != Some(table.rows) {
            return Err(self.bad(format!(
                "table {} is not listed in the header with {} rows",
                table.table, table.rows
            )));
        }
        sink.start_table(table).await?;
        let mut batcher = Batcher::new(&mut *sink, progress, table.columns.len());
        loop {
            let json = self
                .next_json()?
                .ok_or_else(|| self.bad("the file ends early; it is incomplete or truncated"))?;
            match json {
                serde_json::Value::Array(values) => {
                    if values.len() != table.columns.len() {
                        return Err(self.bad(format!(
                            "a row of {} has {} values for {} columns",
                            table.table,
                            values.len(),
                            table.columns.len()
                        )));
                    }
                    let row = values
                        .into_iter()
                        .map(Value::from_json)
                        .collect::<Result<Vec<_>, _>>()
                        .map_err(|e| self.bad(e))?;
                    batcher.push(row).await?;
                }
                other => {
                    let line: Line = serde_json::from_value(other).map_err(|e| self.bad(e))?;
                    match line {
                        Line::End { table: name, rows } if name == table.table => {
                            let sent = batcher.flush().await?;
                            if sent != rows || rows != table.rows {
                                return Err(self.bad(format!(
                                    "table {name} should have {} rows but has {sent}",
                                    table.rows
                                )));
                            }
                            return sink.end_table(table, sent).await;
                        }
                        other => return Err(self.bad(format!("unexpected {other:?}"))),
                    }
                }
            }
        }
    }
}
