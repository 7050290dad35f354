//! Command handlers: one function per CLI command, each turning raw arguments into validated
//! values and calling the same library functions the web app and scheduler use. Results go to
//! stdout, logs and progress to stderr.

mod backup;
mod bounces;
mod compile;
mod db;
mod deliveries;
mod dkim;
mod doctor;
mod explain;
mod extract;
mod fetch;
mod init;
mod preview;
mod retry;
mod run;
mod send;
mod serve;
mod status;
mod subscribers;

use chrono::{DateTime, Utc};

use crate::cli::{Cli, Command};
use crate::config::{ConfigError, Settings};
use crate::store::{Store, StoreError};

/// Why a command did not succeed; decides the exit code.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Bad usage: an unknown topic, a malformed address, a bad flag value. Exit code 2.
    #[error("{0}")]
    Usage(String),
    /// The configuration is invalid. Exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The work failed. Exit code 1.
    #[error(transparent)]
    Failed(#[from] anyhow::Error),
    /// The work cannot be done now and should be retried (the database is unavailable). Exit
    /// code 75 (EX_TEMPFAIL), so an MTA's pipe keeps the message and tries again.
    #[error("{0}")]
    TempFail(String),
}

impl From<StoreError> for CommandError {
    fn from(e: StoreError) -> Self {
        CommandError::Failed(e.into())
    }
}

impl CommandError {
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Usage(_) | CommandError::Config(_) => 2,
            CommandError::Failed(_) => 1,
            CommandError::TempFail(_) => 75,
        }
    }

    /// The message on one line, with its causes joined by ": ".
    pub fn one_line(&self) -> String {
        match self {
            CommandError::Failed(e) => format!("{e:#}").replace('\n', " "),
            other => other.to_string().replace('\n', " "),
        }
    }
}

pub type CommandResult = Result<(), CommandError>;

pub fn usage(msg: impl Into<String>) -> CommandError {
    CommandError::Usage(msg.into())
}

/// Writes `text` to a new file `path` that only its owner may read or write (mode 0600 from
/// the start, never a moment readable by others) and syncs it; an existing file is never
/// overwritten: `exists` is the error then.
pub fn write_new_private(
    path: &std::path::Path,
    text: &str,
    exists: impl FnOnce() -> CommandError,
) -> CommandResult {
    use std::io::Write as _;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = match options.open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(exists()),
        Err(e) => {
            return Err(CommandError::Failed(anyhow::anyhow!(
                "cannot create {}: {e}",
                path.display()
            )));
        }
    };
    file.write_all(text.as_bytes())
        .and_then(|()| file.sync_all())
        .map_err(|e| CommandError::Failed(anyhow::anyhow!("writing {}: {e}", path.display())))
}

/// What every command gets: validated settings and an open, migrated store.
pub struct Context {
    pub settings: Settings,
    pub store: Store,
    /// The DKIM signer, loaded once by `dispatch` for the commands that sign mail (`None` for
    /// the others, or without a key).
    pub dkim: Option<crate::render::DkimSigner>,
}

impl Context {
    /// Opens the configured database and migrates it. With `create` false a SQLite file that
    /// does not exist is an error (a mistyped path), not a new empty database.
    pub async fn open(settings: Settings, create: bool) -> Result<Context, CommandError> {
        let db = &settings.database;
        let store = if create {
            Store::open(&db.url, db.max_connections).await
        } else {
            Store::open_existing(&db.url, db.max_connections).await
        }
        .map_err(|e| CommandError::Failed(e.into()))?;
        Ok(Context {
            settings,
            store,
            dkim: None,
        })
    }

    /// Checks that a topic slug is configured; the error names it and lists the known ones.
    pub fn topic(&self, slug: &str) -> Result<&crate::config::TopicSettings, CommandError> {
        self.settings.topic(slug).ok_or_else(|| {
            let known: Vec<&str> = self
                .settings
                .topics
                .iter()
                .map(|t| t.slug.as_str())
                .collect();
            usage(format!(
                "unknown topic {slug:?} (configured: {})",
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ))
        })
    }
}

/// The current time; commands take `--at` to override it.
pub fn now() -> DateTime<Utc> {
    Utc::now()
}

/// Runs one command.
pub async fn dispatch(cli: Cli) -> CommandResult {
    // `bounces parse` needs neither the configuration nor the database; `bounces ingest` opens
    // them itself, so that it can ask an MTA to retry when they are unavailable.
    if let Command::Bounces(cmd) = cli.command {
        return bounces::run(cmd, cli.config.as_deref()).await;
    }
    // `doctor` reports a configuration that does not load as one of its checks; `init` writes
    // a configuration and `dkim keygen` a key: neither reads one; `db copy` names both
    // databases on the command line; `extract` reads one page.
    match cli.command {
        Command::Doctor(args) => return doctor::run(args, cli.config.as_deref()).await,
        Command::Db(cmd) => return db::run(cmd).await,
        Command::Extract(args) => return extract::run(args, cli.config.as_deref()).await,
        Command::Init(a) => return init::run(a).await,
        Command::Dkim(cmd) => return dkim::run(cmd),
        _ => {}
    }
    let settings = Settings::load(cli.config.as_deref())?;
    // Backup reads the database as it is; restore migrates it to the backup's version first.
    if let Command::Backup(args) = cli.command {
        return backup::backup(&settings, args).await;
    }
    if let Command::Restore(args) = cli.command {
        return backup::restore(&settings, args).await;
    }
    if let Command::Migrate = cli.command {
        // Connect without the migration `Context::open` runs, so the count is this run's.
        let db = &settings.database;
        let store = Store::connect(&db.url, db.max_connections)
            .await
            .map_err(|e| CommandError::Failed(e.into()))?;
        let n = store.migrate().await?;
        println!("migrations up to date ({n} applied now)");
        return Ok(());
    }
    // Only these send or serve signed links to the world.
    if matches!(
        cli.command,
        Command::Serve | Command::Run(_) | Command::Send(_)
    ) {
        settings.check_secret_for_public_links()?;
    }
    // Only these sign mail: a DKIM key (RSA, or the Ed25519 one) that is missing, unreadable or
    // not a key stops them before anything is opened, naming its setting (exit 2).
    let dkim = if matches!(
        cli.command,
        Command::Serve | Command::Run(_) | Command::Send(_) | Command::Preview(_)
    ) {
        crate::render::DkimSigner::from_settings(&settings.dkim)
            .map_err(|e| ConfigError(e.to_string()))?
    } else {
        None
    };
    // Only the commands that set up or run the service create a missing SQLite database; the
    // others, pointed at a mistyped path, say there is none.
    let create = matches!(cli.command, Command::Serve | Command::Run(_));
    let ctx = Context {
        dkim,
        ..Context::open(settings, create).await?
    };
    let result = match cli.command {
        Command::Subscribers(cmd) => subscribers::run(&ctx, cmd).await,
        Command::Topics => subscribers::topics(&ctx).await,
        Command::Migrate => Ok(()), // handled above
        Command::Fetch(a) => fetch::run(&ctx, a).await,
        Command::Compile(a) => compile::run(&ctx, a).await,
        Command::Preview(a) => preview::run(&ctx, a).await,
        Command::Explain(a) => explain::run(&ctx, a).await,
        Command::Send(a) => send::run(&ctx, a).await,
        Command::Deliveries(a) => deliveries::run(&ctx, a).await,
        Command::Retry(a) => retry::run(&ctx, a).await,
        Command::Run(a) => run::run(&ctx, a).await,
        Command::Serve => serve::run(&ctx).await,
        Command::Status => status::run(&ctx).await,
        Command::Bounces(_) | Command::Doctor(_) | Command::Init(_) | Command::Dkim(_) => Ok(()), // handled above
        Command::Backup(_) | Command::Restore(_) | Command::Db(_) => Ok(()), // handled above
        Command::Extract(_) => Ok(()),                                       // handled above
    };
    ctx.store.close().await;
    result
}

/// Exit 1 when a delivery run could not complete (the mail server never answered, or the run
/// was aborted); the summary printed before counts any failures of a completed run.
fn completed(report: crate::delivery::DeliveryReport) -> CommandResult {
    if report.unreachable() || report.aborted {
        return Err(CommandError::Failed(anyhow::anyhow!(
            "could not deliver: no message got an answer from the mail server ({})",
            report.last_error.unwrap_or_else(|| "no reply".into())
        )));
    }
    Ok(())
}
