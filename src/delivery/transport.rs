//! Transports: SMTP through lettre's async connection pool, and `.eml` files in a folder.
//! Each send returns a classified outcome with the server's reply text:
//! 2xx sent; 4xx deferred; 5xx failed (5.1.x: the mailbox is bad, so the subscriber bounced);
//! anything lettre reports as neither transient nor permanent (a connection dropped after the
//! final ".", a refused connection, a timeout) is an unknown outcome and is deferred, because a
//! duplicate is better than a loss.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::Context as _;
use lettre::address::Envelope;
use lettre::transport::smtp::PoolConfig;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{Address, AsyncSmtpTransport, AsyncTransport, Tokio1Executor};

use crate::config::{Settings, TlsMode, TransportKind};
use crate::render::OutgoingMessage;
use crate::store::DeliveryOutcome;

/// The result of one send attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    pub outcome: DeliveryOutcome,
    /// The outcome is unknown (no SMTP reply: connection refused or dropped, timeout).
    pub unknown: bool,
}

impl SendResult {
    fn sent(reply: String) -> SendResult {
        SendResult {
            outcome: DeliveryOutcome::Sent { reply },
            unknown: false,
        }
    }
}

/// Where messages go.
pub enum Transport {
    Smtp(AsyncSmtpTransport<Tokio1Executor>),
    File(PathBuf),
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Smtp(_) => f.write_str("Transport::Smtp"),
            Transport::File(dir) => write!(f, "Transport::File({})", dir.display()),
        }
    }
}

impl Transport {
    /// Builds the configured transport: an SMTP pool of `[delivery] concurrency` connections
    /// with `[smtp] timeout_secs` per command, or the outbox folder.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        match settings.delivery.effective_transport(&settings.smtp) {
            TransportKind::File => {
                let dir = settings.delivery.outbox_dir.clone();
                std::fs::create_dir_all(&dir).with_context(|| {
                    format!("cannot create delivery.outbox_dir {}", dir.display())
                })?;
                Ok(Transport::File(dir))
            }
            TransportKind::Smtp => {
                let smtp = &settings.smtp;
                let host = smtp.host.trim();
                anyhow::ensure!(
                    !host.is_empty(),
                    "smtp.host is empty but delivery.transport is \"smtp\""
                );
                let mut builder =
                    AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(host).port(smtp.port);
                builder = match smtp.tls {
                    TlsMode::None => builder.tls(Tls::None),
                    TlsMode::Starttls => {
                        let params = TlsParameters::new(host.to_string())
                            .context("smtp.tls: TLS parameters")?;
                        builder.tls(Tls::Required(params))
                    }
                    TlsMode::Tls => {
                        let params = TlsParameters::new(host.to_string())
                            .context("smtp.tls: TLS parameters")?;
                        builder.tls(Tls::Wrapper(params))
                    }
                };
                if !smtp.username.is_empty() {
                    builder = builder.credentials(Credentials::new(
                        smtp.username.clone(),
                        smtp.password.expose().to_string(),
                    ));
                }
                if !smtp.helo_name.trim().is_empty() {
                    builder =
                        builder.hello_name(ClientId::Domain(smtp.helo_name.trim().to_string()));
                }
                let size = u32::try_from(settings.delivery.concurrency.max(1)).unwrap_or(u32::MAX);
                let transport = builder
                    .timeout(Some(Duration::from_secs(smtp.timeout_secs.max(1))))
                    .pool_config(PoolConfig::new().max_size(size).min_idle(0))
                    .build();
                Ok(Transport::Smtp(transport))
            }
        }
    }

    /// Sends one message and classifies what happened.
    pub async fn send(&self, message: &OutgoingMessage) -> SendResult {
        match self {
            Transport::File(dir) => match write_eml(dir, message).await {
                Ok(path) => SendResult::sent(format!("written to {}", path.display())),
                Err(e) => SendResult {
                    outcome: DeliveryOutcome::Deferred {
                        reply: format!("{e:#}"),
                    },
                    unknown: true,
                },
            },
            Transport::Smtp(smtp) => {
                let envelope = match envelope(message) {
                    Ok(env) => env,
                    Err(reply) => {
                        return SendResult {
                            outcome: DeliveryOutcome::Failed {
                                reply,
                                bounce: false,
                            },
                            unknown: false,
                        };
                    }
                };
                match smtp.send_raw(&envelope, &message.raw).await {
                    Ok(response) => {
                        let text: Vec<&str> = response.message().collect();
                        SendResult::sent(format!("{} {}", response.code(), text.join(" ")))
                    }
                    Err(e) => classify_error(&e),
                }
            }
        }
    }
}

fn envelope(message: &OutgoingMessage) -> Result<Envelope, String> {
    let from: Address = message
        .envelope_from
        .parse()
        .map_err(|e| format!("bad envelope sender {:?}: {e}", message.envelope_from))?;
    let to: Address = message
        .to
        .as_str()
        .parse()
        .map_err(|e| format!("bad recipient address: {e}"))?;
    Envelope::new(Some(from), vec![to]).map_err(|e| format!("bad envelope: {e}"))
}

/// Sorts a lettre SMTP error into sent/deferred/failed, keeping its text.
pub fn classify_error(e: &lettre::transport::smtp::Error) -> SendResult {
    let reply = error_text(e);
    if e.is_permanent() {
        let bounce = is_bad_mailbox(&reply);
        SendResult {
            outcome: DeliveryOutcome::Failed { reply, bounce },
            unknown: false,
        }
    } else if e.is_transient() {
        SendResult {
            outcome: DeliveryOutcome::Deferred { reply },
            unknown: false,
        }
    } else {
        SendResult {
            outcome: DeliveryOutcome::Deferred {
                reply: format!("unknown outcome: {reply}"),
            },
            unknown: true,
        }
    }
}

fn error_text(e: &lettre::transport::smtp::Error) -> String {
    let mut text = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// Whether a permanent reply names a bad mailbox: an RFC 3463 enhanced code 5.1.x.
pub fn is_bad_mailbox(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | ','))
        .any(|w| w.starts_with("5.1.") && w.len() > 4)
}

/// A file name for a Message-ID: angle brackets dropped, anything but `[A-Za-z0-9._@-]` as `_`.
pub fn eml_file_name(message_id: &str) -> String {
    let core: String = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>')
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '@' | '-') {
                c
            } else {
                '_'
            }
        })
        .take(200)
        .collect();
    let core = core.trim_start_matches('.');
    format!("{}.eml", if core.is_empty() { "message" } else { core })
}

/// Writes `<message-id>.eml` into `dir` atomically (a temporary file, then a rename).
pub async fn write_eml(dir: &Path, message: &OutgoingMessage) -> anyhow::Result<PathBuf> {
    let name = eml_file_name(&message.message_id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create the outbox folder {}", dir.display()))?;
    tokio::fs::write(&tmp, &message.raw)
        .await
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    tokio::fs::rename(&tmp, &path)
        .await
        .with_context(|| format!("cannot move {} to {}", tmp.display(), path.display()))?;
    Ok(path)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_mailbox_needs_an_enhanced_5_1_code() {
        assert!(is_bad_mailbox(
            "permanent error (550): 5.1.1 <x@example.com>: no such user"
        ));
        assert!(!is_bad_mailbox(
            "permanent error (550): 5.7.1 rejected as spam"
        ));
        assert!(!is_bad_mailbox("permanent error (554): transaction failed"));
    }

    #[test]
    fn file_names_are_safe() {
        assert_eq!(
            eml_file_name("<tidings.1.2@example.com>"),
            "tidings.1.2@example.com.eml"
        );
        assert_eq!(eml_file_name("<../../etc/passwd>"), "_.._etc_passwd.eml");
        assert_eq!(eml_file_name("<>"), "message.eml");
    }
}
