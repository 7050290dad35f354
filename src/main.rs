//! The `tidings` binary: parse the command line, set up logging on stderr, load the
//! configuration, dispatch to `tidings::commands`, and map the outcome to an exit code
//! (0 success, 1 the work failed, 2 bad usage or configuration).
//!
//! When whoever reads stdout goes away (`tidings subscribers list --json | head`), the command
//! stops quietly with exit code 141 (128 + SIGPIPE), as a Unix tool killed by SIGPIPE would,
//! instead of printing "Broken pipe" as an error.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use tidings::cli::Cli;
use tidings::commands::{self, CommandError};

/// The exit status of a command whose stdout reader went away: 128 + SIGPIPE, what a shell
/// reports for a Unix tool killed by SIGPIPE.
const BROKEN_PIPE_EXIT: u8 = 141;

fn main() -> ExitCode {
    quiet_on_broken_stdout();
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    init_tracing(cli.log.as_deref());
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    match runtime.block_on(commands::dispatch(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) if is_broken_pipe(&e) => ExitCode::from(BROKEN_PIPE_EXIT),
        Err(e) => {
            eprintln!("error: {}", e.one_line());
            if let CommandError::Failed(inner) = &e {
                tracing::debug!(error = ?inner, "command failed");
            }
            ExitCode::from(e.exit_code())
        }
    }
}

/// Whether the command failed because stdout's reader went away.
fn is_broken_pipe(e: &CommandError) -> bool {
    let CommandError::Failed(inner) = e else {
        return false;
    };
    use std::io::ErrorKind::BrokenPipe;
    inner.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == BrokenPipe)
            || cause.downcast_ref::<csv::Error>().is_some_and(
                |c| matches!(c.kind(), csv::ErrorKind::Io(io) if io.kind() == BrokenPipe),
            )
            || cause
                .downcast_ref::<serde_json::Error>()
                .is_some_and(|j| j.io_error_kind() == Some(BrokenPipe))
    })
}

/// `println!` panics when stdout's reader has gone away; exit quietly instead, like the error
/// path above. Every other panic keeps the default report.
fn quiet_on_broken_stdout() {
    let default = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<String>()
            .map(String::as_str)
            .or_else(|| info.payload().downcast_ref::<&str>().copied())
            .unwrap_or("");
        if message.starts_with("failed printing to stdout") && message.contains("Broken pipe") {
            std::process::exit(i32::from(BROKEN_PIPE_EXIT));
        }
        default(info);
    }));
}

/// Colour in log lines only on a terminal, and never when `NO_COLOR` is set (no-color.org).
fn log_colours() -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    !no_color && std::io::stderr().is_terminal()
}

fn init_tracing(filter: Option<&str>) {
    use tracing_subscriber::EnvFilter;
    let filter = filter
        .map(EnvFilter::new)
        .or_else(|| EnvFilter::try_from_default_env().ok())
        .unwrap_or_else(|| {
            EnvFilter::new("info,sqlx=warn,hyper=warn,reqwest=warn,trafilatura=warn")
        });
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(log_colours())
        .with_target(false)
        .init();
}
