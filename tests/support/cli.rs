//! Runs the built `tidings` binary against a temporary directory with its own config file.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// A temporary working directory with `config/tidings.toml` for one test.
pub struct TestEnv {
    pub dir: PathBuf,
    pub config: PathBuf,
    pub database_url: String,
}

pub const TOPICS: &str = r#"
[[topics]]
slug = "distributed-systems"
name = "Distributed Systems"
description = "Consensus, fault tolerance and architecture."

[[topics]]
slug = "rust"
name = "Rust"
description = "The Rust language."
"#;

impl TestEnv {
    /// A config with two topics and `extra` TOML appended, on the given database URL.
    pub fn new(database_url: &str, extra: &str) -> TestEnv {
        let dir = tempfile::tempdir().expect("temp dir").keep();
        std::fs::create_dir_all(dir.join("config")).expect("config dir");
        let config = dir.join("config/tidings.toml");
        let text = format!(
            "[database]\nurl = \"{database_url}\"\n\n[delivery]\noutbox_dir = \"{}\"\n\n{extra}\n{TOPICS}",
            dir.join("outbox").display()
        );
        std::fs::write(&config, text).expect("write config");
        TestEnv {
            dir,
            config,
            database_url: database_url.to_string(),
        }
    }

    pub fn command(&self) -> Command {
        tidings(&self.dir, &self.config)
    }

    pub fn run(&self, args: &[&str]) -> Output {
        self.command().args(args).output().expect("run tidings")
    }

    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.join(rel)
    }
}

/// The built binary run in `dir` on the config file `config` alone: `RUST_LOG=warn`, and no
/// `TIDINGS_CONFIG` or `TIDINGS__` variables inherited from the environment.
fn tidings(dir: &Path, config: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_tidings"));
    cmd.current_dir(dir)
        .arg("--config")
        .arg(config)
        .env_remove("TIDINGS_CONFIG")
        .env("RUST_LOG", "warn");
    for (k, _) in std::env::vars() {
        if k.starts_with("TIDINGS__") {
            cmd.env_remove(k);
        }
    }
    cmd
}

/// stdout as text.
pub fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

/// stderr as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

/// Every command and subcommand of the binary, as argument lists (the top level first).
pub const COMMANDS: &[&[&str]] = &[
    &[],
    &["subscribers"],
    &["subscribers", "add"],
    &["subscribers", "list"],
    &["subscribers", "remove"],
    &["subscribers", "import"],
    &["subscribers", "export"],
    &["topics"],
    &["migrate"],
    &["fetch"],
    &["compile"],
    &["preview"],
    &["explain"],
    &["send"],
    &["deliveries"],
    &["retry"],
    &["run"],
    &["serve"],
    &["status"],
    &["bounces"],
    &["bounces", "parse"],
    &["bounces", "ingest"],
    &["bounces", "list"],
    &["bounces", "show"],
    &["doctor"],
    &["init"],
    &["dkim"],
    &["dkim", "keygen"],
    &["backup"],
    &["restore"],
    &["db"],
    &["db", "copy"],
    &["extract"],
];

pub fn write(path: &Path, text: &str) {
    std::fs::write(path, text).expect("write file");
}

/// How [`send_command`] tunes the delivery workers.
pub struct Workers {
    pub concurrency: usize,
    pub batch_size: usize,
    pub lease_secs: u64,
}

/// `tidings send --topic rust --issue <issue>` as a tokio child (so a test can kill it
/// mid-send), on its own config: the database at `url`, SMTP without TLS on
/// 127.0.0.1:`smtp_port`, `workers` as given; stdout and stderr piped, nothing inherited from
/// the environment's configuration (as [`TestEnv::command`]).
pub fn send_command(
    url: &str,
    smtp_port: u16,
    issue: i64,
    workers: &Workers,
) -> tokio::process::Command {
    let Workers {
        concurrency,
        batch_size,
        lease_secs,
    } = workers;
    let dir = tempfile::tempdir().expect("temp dir").keep();
    let config = dir.join("tidings.toml");
    let text = format!(
        r#"
[database]
url = "{url}"
[newsletter]
from = "Tidings <news@example.com>"
[delivery]
transport = "smtp"
outbox_dir = "{}"
concurrency = {concurrency}
batch_size = {batch_size}
lease_secs = {lease_secs}
[smtp]
host = "127.0.0.1"
port = {smtp_port}
tls = "none"
timeout_secs = 5
[[topics]]
slug = "rust"
name = "Rust"
"#,
        dir.join("outbox").display(),
    );
    std::fs::write(&config, text).expect("write config");
    let mut c = tokio::process::Command::from(tidings(&dir, &config));
    c.args(["send", "--topic", "rust", "--issue", &issue.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    c
}
