//! `tidings bounces parse FILE...`: what each message file is, one JSON object per line on
//! stdout. Nothing is stored. Exit 0 when every file was read (whatever it held), 2 when one
//! could not be read (the others are still printed).

use std::io::Write;

use serde_json::json;

use super::{CommandError, CommandResult};
use crate::bounce::{self, Report};
use crate::cli::{BouncesCommand, BouncesParseArgs};

pub fn run(cmd: BouncesCommand) -> CommandResult {
    match cmd {
        BouncesCommand::Parse(args) => parse(args),
    }
}

fn parse(args: BouncesParseArgs) -> CommandResult {
    let mut unreadable = Vec::new();
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    for file in &args.files {
        let bytes = match read_capped(file) {
            Ok(b) => b,
            Err(e) => {
                eprintln!("{}: {e}", file.display());
                unreadable.push(file.display().to_string());
                continue;
            }
        };
        let report = bounce::parse(&bytes);
        let line = to_json(&file.display().to_string(), &report);
        writeln!(out, "{line}").map_err(|e| CommandError::Failed(e.into()))?;
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

/// The file's first [`bounce::MAX_MESSAGE_BYTES`] bytes: the parser reads no more.
fn read_capped(path: &std::path::Path) -> std::io::Result<Vec<u8>> {
    use std::io::Read;
    let mut bytes = Vec::new();
    std::fs::File::open(path)?
        .take(bounce::MAX_MESSAGE_BYTES as u64)
        .read_to_end(&mut bytes)?;
    Ok(bytes)
}

fn to_json(file: &str, report: &Report) -> serde_json::Value {
    json!({
        "file": file,
        "kind": report.kind.as_str(),
        "feedback_type": report.feedback_type,
        // Our Message-ID names the issue and subscriber (`bounce::our_message`); turning that
        // into a delivery row needs the store, which `parse` does not open.
        "delivery_id": serde_json::Value::Null,
        "recipients": report.recipients.iter().map(|r| json!({
            "email": r.email,
            "status": r.status,
            "smtp_code": r.smtp_code,
            "action": r.action,
            "hard": r.hard,
            "reason": r.reason,
        })).collect::<Vec<_>>(),
    })
}
