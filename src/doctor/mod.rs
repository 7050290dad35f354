//! `tidings doctor`: a checklist of what a deployment needs before its first send. Each check
//! ends ok, warning or failed, with one sentence on how to fix it. The pure parts live here
//! and in `records.rs` (SPF, DKIM and DMARC record syntax) and `settings.rs` (the
//! configuration); `dns.rs` asks DNS (hickory-resolver) and `services.rs` the database, the
//! SMTP relay (through `crate::delivery::probe_smtp`), `base_url`'s `/healthz` and the
//! sources (through the guarded HTTP client).

pub mod dns;
pub mod records;
pub mod services;
pub mod settings;

use std::fmt::Write as _;

use serde::Serialize;

/// How a check ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Ok,
    Warning,
    Failed,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Ok => "ok",
            Status::Warning => "warning",
            Status::Failed => "failed",
        }
    }
}

/// One line of the checklist: what was checked, how it ended, what was found and, unless it is
/// ok, one sentence on how to fix it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Check {
    pub check: String,
    pub status: Status,
    pub message: String,
    pub fix: Option<String>,
}

impl Check {
    pub fn ok(check: impl Into<String>, message: impl Into<String>) -> Check {
        Check {
            check: check.into(),
            status: Status::Ok,
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(
        check: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            check: check.into(),
            status: Status::Warning,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }

    pub fn failed(
        check: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Check {
        Check {
            check: check.into(),
            status: Status::Failed,
            message: message.into(),
            fix: Some(fix.into()),
        }
    }
}

/// Whether any check failed (the command's exit code is then 1).
pub fn any_failed(checks: &[Check]) -> bool {
    checks.iter().any(|c| c.status == Status::Failed)
}

/// The checklist as text: one line per check (`ok`, `warning` or `failed`, the check's name,
/// what was found), the fix on the next line, indented, and a count at the end.
pub fn render_text(checks: &[Check]) -> String {
    let width = checks.iter().map(|c| c.check.len()).max().unwrap_or(0);
    let mut out = String::new();
    for c in checks {
        let _ = writeln!(
            out,
            "{:<7}  {:<width$}  {}",
            c.status.as_str(),
            c.check,
            one_line(&c.message)
        );
        if let Some(fix) = &c.fix {
            let _ = writeln!(out, "{:<7}  {:<width$}  fix: {}", "", "", one_line(fix));
        }
    }
    let count = |s: Status| checks.iter().filter(|c| c.status == s).count();
    let _ = writeln!(
        out,
        "{} ok, {} warning(s), {} failed",
        count(Status::Ok),
        count(Status::Warning),
        count(Status::Failed)
    );
    out
}

/// Replies from servers may span lines; the checklist keeps one line per fact.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_lines_name_status_check_and_fix() {
        let checks = vec![
            Check::ok("database", "reachable"),
            Check::failed("smtp", "AUTH: 535 5.7.8\nno", "check smtp.password"),
        ];
        let text = render_text(&checks);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "ok       database  reachable");
        assert_eq!(lines[1], "failed   smtp      AUTH: 535 5.7.8 no");
        assert_eq!(lines[2], "                   fix: check smtp.password");
        assert_eq!(lines[3], "1 ok, 0 warning(s), 1 failed");
        assert!(any_failed(&checks));
    }
}
