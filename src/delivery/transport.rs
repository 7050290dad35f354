//! Transports: SMTP (one connection per worker task, see `smtp.rs`) and `.eml` files in a
//! folder. Each send returns a classified outcome with the server's reply text (see
//! `outcome.rs` for how replies and errors are sorted).

use std::path::{Path, PathBuf};

use anyhow::Context as _;
use lettre::Address;
use lettre::address::Envelope;

use super::outcome::{DeliveryOutcome, SendResult};
use super::smtp::{SmtpClient, SmtpSender};
use crate::config::{Settings, TransportKind};
use crate::render::OutgoingMessage;

/// Where messages go.
#[derive(Debug)]
pub enum Transport {
    Smtp(SmtpClient),
    File(PathBuf),
}

impl Transport {
    /// Builds the configured transport: the SMTP relay of `[smtp]` (each worker task opens its
    /// own connection, so `[delivery] concurrency` connections at most), or the outbox folder.
    pub fn from_settings(settings: &Settings) -> anyhow::Result<Transport> {
        match settings.delivery.effective_transport(&settings.smtp) {
            TransportKind::File => {
                let dir = settings.delivery.outbox_dir.clone();
                std::fs::create_dir_all(&dir).with_context(|| {
                    format!("cannot create delivery.outbox_dir {}", dir.display())
                })?;
                Ok(Transport::File(dir))
            }
            TransportKind::Smtp => Ok(Transport::Smtp(SmtpClient::from_settings(&settings.smtp)?)),
        }
    }

    /// A sender for one worker task: it keeps its SMTP connection between messages.
    pub fn sender(&self) -> Sender<'_> {
        match self {
            Transport::Smtp(client) => Sender::Smtp(Box::new(client.sender())),
            Transport::File(dir) => Sender::File(dir),
        }
    }
}

/// One task's way out: an SMTP connection it reuses, or the outbox folder.
pub enum Sender<'a> {
    Smtp(Box<SmtpSender<'a>>),
    File(&'a Path),
}

impl Sender<'_> {
    /// Sends one message and classifies what happened.
    pub async fn send(&mut self, message: &OutgoingMessage) -> SendResult {
        match self {
            Sender::File(dir) => match write_eml(dir, message).await {
                Ok(path) => SendResult::sent(format!("written to {}", path.display())),
                Err(e) => SendResult {
                    outcome: DeliveryOutcome::Deferred {
                        reply: format!("{e:#}"),
                    },
                    no_reply: true,
                },
            },
            Sender::Smtp(smtp) => match envelope(message) {
                Ok(envelope) => smtp.send(&envelope, &message.raw).await,
                Err(reply) => SendResult {
                    outcome: DeliveryOutcome::Failed {
                        reply,
                        bounce: false,
                    },
                    no_reply: false,
                },
            },
        }
    }

    /// Closes an idle SMTP connection (between polls of a long-running worker).
    pub async fn close_if_idle(&mut self) {
        if let Sender::Smtp(smtp) = self {
            smtp.close_if_idle().await;
        }
    }

    /// Says goodbye to the SMTP server, if connected.
    pub async fn close(&mut self) {
        if let Sender::Smtp(smtp) = self {
            smtp.close().await;
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

/// Writes `<message-id>.eml` into `dir` atomically (a temporary file, then a rename). The file
/// starts with `Return-Path: <envelope sender>`, as a receiving mailbox records the SMTP
/// `MAIL FROM` (RFC 5321 4.4), so the file shows the envelope an SMTP relay would have got.
pub async fn write_eml(dir: &Path, message: &OutgoingMessage) -> anyhow::Result<PathBuf> {
    let name = eml_file_name(&message.message_id);
    let path = dir.join(&name);
    let tmp = dir.join(format!(".{name}.{}.tmp", uuid::Uuid::new_v4().simple()));
    tokio::fs::create_dir_all(dir)
        .await
        .with_context(|| format!("cannot create the outbox folder {}", dir.display()))?;
    let mut contents = format!("Return-Path: <{}>\r\n", message.envelope_from).into_bytes();
    contents.extend_from_slice(&message.raw);
    tokio::fs::write(&tmp, &contents)
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
    fn file_names_are_safe() {
        assert_eq!(
            eml_file_name("<tidings.1.2@example.com>"),
            "tidings.1.2@example.com.eml"
        );
        assert_eq!(eml_file_name("<../../etc/passwd>"), "_.._etc_passwd.eml");
        assert_eq!(eml_file_name("<>"), "message.eml");
    }
}
