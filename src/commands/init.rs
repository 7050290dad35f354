//! `tidings init [DIR]`: a new installation in one command. It writes `DIR/tidings.toml`, the
//! shipped `config/tidings.toml` (embedded in the binary, so the two never drift: every key,
//! every comment) with the operator's values and a fresh random `newsletter.secret` (32 bytes
//! from the operating system's CSPRNG through aws-lc, base64) put in; creates and migrates the
//! database (SQLite at `DIR/data/tidings.db` unless `--database`); and prints the next steps.
//!
//! The whole file is parsed and validated with the real loader before anything is created, so
//! a bad `--from` or `--base-url` stops it with the key named (exit code 2). An existing
//! `tidings.toml` is never overwritten (exit code 2); the new one is created readable by its
//! owner alone, since it holds the secret.

use std::path::Path;

use anyhow::Context as _;
use base64::Engine as _;

use super::{CommandError, CommandResult, usage, write_new_private};
use crate::cli::InitArgs;
use crate::config::{Settings, redact_url};
use crate::store::Store;

/// The shipped configuration, the template of every file `init` writes.
const SHIPPED_CONFIG: &str = include_str!("../../config/tidings.toml");

/// Random bytes in a new `newsletter.secret`.
const SECRET_BYTES: usize = 32;

pub async fn run(a: InitArgs) -> CommandResult {
    let dir = std::path::absolute(&a.dir)
        .with_context(|| format!("cannot resolve {}", a.dir.display()))?;
    let config_path = dir.join("tidings.toml");
    if config_path.exists() {
        return Err(already_exists(&config_path));
    }
    let database = match a.database {
        Some(url) => url,
        None => format!("sqlite://{}", dir.join("data").join("tidings.db").display()),
    };
    let secret = random_secret()?;
    let outbox = dir.join("outbox").display().to_string();
    let mut values: Vec<(&str, &str, String)> = vec![
        ("newsletter", "secret", toml_string(&secret)),
        ("database", "url", toml_string(&database)),
        ("delivery", "outbox_dir", toml_string(&outbox)),
    ];
    for (key, value) in [
        ("base_url", &a.base_url),
        ("from", &a.from),
        ("postal_address", &a.postal_address),
    ] {
        if let Some(v) = value {
            values.push(("newsletter", key, toml_string(v.trim())));
        }
    }
    let mut text = format!(
        "# Written by `tidings init` from the shipped config/tidings.toml. newsletter.secret below is\n\
         # a fresh random key: keep this file private (mode 0600).\n\n{SHIPPED_CONFIG}"
    );
    for (section, key, value) in &values {
        text = set_value(&text, section, key, value)
            .map_err(|e| CommandError::Failed(anyhow::anyhow!(e)))?;
    }
    // The file must load with the real loader before anything is created.
    let settings = Settings::from_toml(&text)?;

    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let store = Store::connect(&settings.database.url, 1).await?;
    let applied = store.migrate().await;
    store.close().await;
    let applied = applied?;
    write_new_private(&config_path, &text, || already_exists(&config_path))?;

    print_next_steps(&settings, &config_path, &database, applied);
    Ok(())
}

fn already_exists(path: &Path) -> CommandError {
    usage(format!(
        "{} already exists; tidings init never overwrites a file (move it away or choose another DIR)",
        path.display()
    ))
}

/// 32 random bytes from the operating system (aws-lc's CSPRNG), base64: 44 characters.
fn random_secret() -> Result<String, CommandError> {
    let mut bytes = [0u8; SECRET_BYTES];
    aws_lc_rs::rand::fill(&mut bytes)
        .map_err(|_| CommandError::Failed(anyhow::anyhow!("no random bytes from the system")))?;
    Ok(base64::engine::general_purpose::STANDARD.encode(bytes))
}

/// `value` as a TOML basic string: quoted, with `\`, `"` and control characters escaped.
pub(super) fn toml_string(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c if c.is_control() => out.push_str(&format!("\\u{:04X}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// `text` with the line `key = ...` of `[section]` (set, not commented out) given `value` (TOML
/// already). An error when the shipped file has no such line: the template changed.
fn set_value(text: &str, section: &str, key: &str, value: &str) -> Result<String, String> {
    let mut current = String::new();
    let mut done = false;
    let mut out = String::with_capacity(text.len() + value.len());
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('[') {
            current = trimmed.trim_matches(|c| c == '[' || c == ']').to_string();
        }
        let is_key = line
            .strip_prefix(key)
            .is_some_and(|rest| rest.trim_start().starts_with('='));
        if !done && current == section && is_key {
            out.push_str(&format!("{key} = {value}"));
            done = true;
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    if done {
        Ok(out)
    } else {
        Err(format!(
            "the shipped configuration has no {section}.{key} line to fill in"
        ))
    }
}

/// `path` as a shell word: as it is when it needs no quoting, else in single quotes.
fn shell_word(path: &Path) -> String {
    let s = path.display().to_string();
    if s.chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-+,:@".contains(c))
    {
        s
    } else {
        format!("'{}'", s.replace('\'', "'\\''"))
    }
}

fn print_next_steps(settings: &Settings, config: &Path, database: &str, applied: usize) {
    let cfg = shell_word(config);
    let domain = settings.newsletter.from.email.domain().to_ascii_lowercase();
    let topic = settings
        .topics
        .first()
        .map(|t| t.slug.as_str().to_string())
        .unwrap_or_else(|| "SLUG".into());
    let key = config.with_file_name("dkim.pem");
    println!(
        "Wrote {} with a fresh random newsletter.secret (readable by you alone).",
        config.display()
    );
    println!(
        "Database {} is ready ({applied} migrations applied).",
        redact_url(database)
    );
    println!();
    println!("Next steps:");
    println!(
        "1. Edit {}: [smtp] (your mail relay), [[sources]] and [[topics]]; check newsletter.base_url, from and postal_address.",
        config.display()
    );
    println!("2. Publish DNS records for {domain}, the domain of newsletter.from:");
    println!(
        "   SPF:   {domain} IN TXT \"v=spf1 mx -all\"   (name the servers your relay sends from)"
    );
    println!(
        "   DKIM:  tidings dkim keygen --domain {domain} --selector tidings --out {}",
        shell_word(&key)
    );
    println!(
        "          then publish the TXT record it prints and copy its [dkim] lines into the config"
    );
    println!(
        "   DMARC: _dmarc.{domain} IN TXT \"v=DMARC1; p=none; rua=mailto:postmaster@{domain}\""
    );
    println!("3. Check the set-up: tidings --config {cfg} doctor");
    println!("4. Send yourself a test copy: tidings --config {cfg} fetch");
    println!("   then: tidings --config {cfg} send --topic {topic} --to you@example.com");
    println!(
        "5. Run it: tidings --config {cfg} serve   (as a service: contrib/systemd/tidings.service)"
    );
}

#[cfg(test)]
mod tests {
    use super::{set_value, toml_string};

    #[test]
    fn values_go_into_their_own_section_only() {
        let text = "[a]\nurl = \"x\"\n# url = \"c\"\n[b]\nurl = \"y\"\n";
        let out = set_value(text, "b", "url", "\"z\"").unwrap();
        assert_eq!(out, "[a]\nurl = \"x\"\n# url = \"c\"\n[b]\nurl = \"z\"\n");
        assert!(set_value(text, "c", "url", "\"z\"").is_err());
    }

    #[test]
    fn toml_strings_escape_quotes_backslashes_and_controls() {
        assert_eq!(
            toml_string("a \"b\" \\ c\u{7}"),
            "\"a \\\"b\\\" \\\\ c\\u0007\""
        );
    }
}
