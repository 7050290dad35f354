//! How one send attempt went ([`DeliveryOutcome`], [`SendResult`]) and the sorting of lettre's
//! SMTP errors into those outcomes: 2xx sent; 4xx deferred; 5xx failed (5.1.x: the mailbox is
//! bad, so the subscriber bounced); no session or no reply before the message data went out is
//! deferred; no reply after it (a connection dropped after the final ".", a timeout) is an
//! unknown outcome: the message may have arrived, so it is sent again only
//! `delivery.unknown_retries` times. Shared by the transports (`transport.rs`, `smtp.rs`) and
//! the workers; what an outcome does to the outbox row is [`super::RetryPolicy::settle`]'s.

/// How one attempt went, with the server's reply (or the error) as text.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted (2xx).
    Sent { reply: String },
    /// Temporary failure (4xx), or no session / no reply before the message data went out:
    /// retry later.
    Deferred { reply: String },
    /// No reply after the message data went out (connection lost, timeout, the lease ran
    /// out): it may have arrived. Sent again at most `unknown_retries` times, then recorded
    /// with the status `unknown`.
    Unknown { reply: String },
    /// Permanent failure (5xx); `bounce` when the reply says the mailbox is bad (5.1.x).
    Failed { reply: String, bounce: bool },
}

/// The result of one send attempt.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SendResult {
    pub outcome: DeliveryOutcome,
    /// No SMTP reply to this attempt: no session could be opened, the connection dropped, or a
    /// reply timed out.
    pub no_reply: bool,
}

impl SendResult {
    pub(super) fn sent(reply: String) -> SendResult {
        SendResult {
            outcome: DeliveryOutcome::Sent { reply },
            no_reply: false,
        }
    }
}

/// Sorts a lettre SMTP error into sent/deferred/failed, keeping its text.
pub fn classify_error(e: &lettre::transport::smtp::Error) -> SendResult {
    let reply = error_text(e);
    if e.is_permanent() {
        let bounce = is_bad_mailbox(&reply);
        SendResult {
            outcome: DeliveryOutcome::Failed { reply, bounce },
            no_reply: false,
        }
    } else if e.is_transient() {
        SendResult {
            outcome: DeliveryOutcome::Deferred { reply },
            no_reply: false,
        }
    } else {
        SendResult {
            outcome: DeliveryOutcome::Deferred {
                reply: format!("unknown outcome: {reply}"),
            },
            no_reply: true,
        }
    }
}

/// A lettre error with its chain of causes, each said once.
pub(super) fn error_text(e: &lettre::transport::smtp::Error) -> String {
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

/// Whether a permanent reply names a bad mailbox: an RFC 3463 enhanced code 5.1.x, except the
/// two about the sender (5.1.7 bad sender address syntax, 5.1.8 bad sender system).
pub fn is_bad_mailbox(reply: &str) -> bool {
    reply
        .split(|c: char| c.is_whitespace() || matches!(c, ':' | '(' | ')' | ','))
        .any(|w| w.starts_with("5.1.") && w.len() > 4 && !matches!(w, "5.1.7" | "5.1.8"))
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
        assert!(!is_bad_mailbox(
            "permanent error (553): 5.1.8 sender address rejected: domain not found"
        ));
    }
}
