//! Reading inbound mail about mail we sent: bounces (RFC 3464 delivery status notifications
//! and the non-standard reports real servers write), complaints (ARF, RFC 5965), auto-replies
//! (RFC 3834, never a bounce) and delivery reports. Pure: bytes in, a [`Report`] out; no I/O,
//! no SQL, and no panic on malformed, huge or oddly encoded input.
//!
//! `parse.rs` walks the MIME structure (mail-parser) and decides the kind; `dsn.rs` reads the
//! `field: value` blocks of delivery-status and feedback-report parts; `text.rs` finds the
//! failed recipients and their replies in the prose of non-standard bounces; `reason.rs` sorts
//! a reply into a short reason and hard or soft; `provider.rs` reads providers' JSON
//! notifications sent as mail (Amazon SES through SNS).

mod dsn;
mod parse;
pub mod policy;
mod provider;
mod reason;
mod text;

pub use parse::parse;

/// The most of a message the parser reads; the rest of a larger one is ignored.
pub const MAX_MESSAGE_BYTES: usize = 4 * 1024 * 1024;

/// What an inbound message is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    /// A delivery failed, or is delayed (`action` tells which).
    Bounce,
    /// A feedback report or a provider's complaint: the reader marked the mail as spam.
    Complaint,
    /// An out-of-office or other automatic answer (RFC 3834): never a bounce.
    AutoReply,
    /// A delivery status notification saying delivered, relayed or expanded.
    DeliveryReport,
    /// Nothing the parser recognises.
    Unknown,
}

impl Kind {
    /// The name `tidings bounces parse` prints.
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Bounce => "bounce",
            Kind::Complaint => "complaint",
            Kind::AutoReply => "auto-reply",
            Kind::DeliveryReport => "delivery-report",
            Kind::Unknown => "unknown",
        }
    }
}

/// One recipient a report is about.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipient {
    /// The address, lower-cased domain, as the report names it.
    pub email: String,
    /// The enhanced status code (RFC 3463), for example "5.1.1".
    pub status: Option<String>,
    /// The SMTP reply code, for example 550.
    pub smtp_code: Option<u16>,
    /// The DSN action: failed, delayed, delivered, relayed or expanded.
    pub action: Option<String>,
    /// True when the address itself is gone (unknown user or domain, moved, accepts no mail).
    pub hard: bool,
    /// A short reason: one of the names in `reason.rs`, such as "user-unknown" or "mailbox-full".
    pub reason: String,
}

impl Recipient {
    /// A recipient a report names without any delivery status (a complaint's reader, an
    /// auto-reply's sender): no codes, no action, never hard.
    fn named(email: String, reason: &str) -> Recipient {
        Recipient {
            email,
            status: None,
            smtp_code: None,
            action: None,
            hard: false,
            reason: reason.into(),
        }
    }
}

/// What the parser read from one message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub kind: Kind,
    /// The ARF `Feedback-Type` of a complaint (abuse, opt-out, auth-failure, ...).
    pub feedback_type: Option<String>,
    /// The Message-ID of the message the report is about, when it quotes one (without `<>`).
    /// The hook for matching a report to one of our deliveries: see [`our_message`].
    pub original_message_id: Option<String>,
    pub recipients: Vec<Recipient>,
}

impl Report {
    fn unknown() -> Report {
        Report {
            kind: Kind::Unknown,
            feedback_type: None,
            original_message_id: None,
            recipients: Vec::new(),
        }
    }
}

/// What one of our Message-IDs names: a digest's is
/// `tidings.{topic}.{yyyymmdd}.{issue}.{subscriber}@{domain}` (see `render::digest`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OurMessage {
    pub issue_id: i64,
    pub subscriber_id: i64,
}

/// Reads a digest's Message-ID (with or without `<>`); None for anything else. The store turns
/// the pair into a delivery row; until it does, `bounces parse` prints `delivery_id` as null.
pub fn our_message(message_id: &str) -> Option<OurMessage> {
    let id = message_id
        .trim()
        .trim_start_matches('<')
        .trim_end_matches('>');
    let (local, _domain) = id.split_once('@')?;
    let rest = local.strip_prefix("tidings.")?;
    let parts: Vec<&str> = rest.rsplitn(3, '.').collect();
    if parts.len() != 3 {
        return None;
    }
    let subscriber_id = parts[0].parse().ok()?;
    let issue_id = parts[1].parse().ok()?;
    Some(OurMessage {
        issue_id,
        subscriber_id,
    })
}

#[cfg(test)]
mod tests;
