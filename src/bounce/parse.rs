//! Deciding what an inbound message is. mail-parser reads the MIME structure; then, in order:
//! a feedback report is a complaint; a delivery-status part gives one recipient per block
//! (a delivery report when every action is delivered, relayed or expanded); failure wording
//! or an `X-Failed-Recipients` header makes a plain-text bounce; automatic-reply headers or
//! subjects make an auto-reply; anything else is unknown.

use mail_parser::{Message, MessageParser, MimeHeaders, PartType};

use super::dsn::{self, Fields};
use super::provider;
use super::reason::{self, classify};
use super::text;
use super::{Kind, MAX_MESSAGE_BYTES, Recipient, Report};

/// Subject words of a bounce.
const BOUNCE_SUBJECTS: &[&str] = &[
    "undeliver",
    "delivery fail",
    "delivery status",
    "failure notice",
    "mail delivery",
    "returned mail",
    "not delivered",
    "could not be delivered",
    "delivery problem",
    "nondeliverable",
    "non-deliverable",
    "non delivery",
    "rejected",
    "mail system error",
    "delivery notification",
    "failed",
    "bounce",
    "error",
    "warning",
    "delayed",
    "unzustellbar",
];

/// Local parts that send bounces.
const DAEMONS: &[&str] = &["mailer-daemon", "postmaster", "post_master", "mail-daemon"];

/// Subject words of an automatic reply.
const AUTO_REPLY_SUBJECTS: &[&str] = &[
    "out of office",
    "out of the office",
    "automatic reply",
    "auto reply",
    "autoreply",
    "auto-reply",
    "auto:",
    "vacation",
    "away from",
    "abwesenheit",
    "absence",
];

/// What a message is, read from its bytes (at most [`MAX_MESSAGE_BYTES`]).
pub fn parse(raw: &[u8]) -> Report {
    let raw = &raw[..raw.len().min(MAX_MESSAGE_BYTES)];
    match MessageParser::default().parse(raw) {
        Some(message) => read(&message),
        None => Report::unknown(),
    }
}

/// The parts of a message sorted by what they hold.
#[derive(Default)]
struct Parts {
    delivery_status: Vec<String>,
    feedback: Vec<String>,
    body: String,
    original_message_id: Option<String>,
    original_to: Vec<String>,
    original_recipient_header: Option<String>,
}

fn sort_parts(message: &Message) -> Parts {
    let mut parts = Parts::default();
    sort_into(&mut parts, message, 0);
    if parts.body.trim().is_empty() {
        // A broken MIME structure (a boundary mail-parser cannot find) hides the text: read
        // the raw body instead.
        let raw = message.raw_message();
        let start = message.root_part().offset_body as usize;
        parts.body = String::from_utf8_lossy(raw.get(start..).unwrap_or_default()).into_owned();
    }
    parts
}

/// How deep reports nested in attached messages are looked for (some gateways forward the
/// whole DSN as an attachment).
const MAX_NESTING: usize = 3;

fn sort_into(parts: &mut Parts, message: &Message, depth: usize) {
    for part in message.parts.iter() {
        let (ctype, subtype) = part
            .content_type()
            .map(|ct| {
                (
                    ct.ctype().to_ascii_lowercase(),
                    ct.subtype().unwrap_or_default().to_ascii_lowercase(),
                )
            })
            .unwrap_or_else(|| ("text".into(), "plain".into()));
        let bytes = part.contents();
        let text = || String::from_utf8_lossy(bytes).into_owned();
        match (ctype.as_str(), subtype.as_str(), &part.body) {
            (_, "delivery-status" | "global-delivery-status", _) => {
                parts.delivery_status.push(text())
            }
            (_, "feedback-report", _) => parts.feedback.push(text()),
            (_, _, PartType::Message(original)) => {
                note_original(parts, original);
                if depth < MAX_NESTING && parts.delivery_status.is_empty() {
                    let mut nested = Parts::default();
                    sort_into(&mut nested, original, depth + 1);
                    parts.delivery_status.extend(nested.delivery_status);
                    parts.feedback.extend(nested.feedback);
                }
            }
            ("text", "rfc822-headers", _) | ("message", "rfc822-headers", _) => {
                if let Some(original) = MessageParser::default().parse_headers(bytes) {
                    note_original(parts, &original);
                }
            }
            (_, _, PartType::Text(t)) => {
                parts.body.push_str(t);
                parts.body.push('\n');
            }
            (_, _, PartType::Html(h)) => {
                parts.body.push_str(&strip_tags(h));
                parts.body.push('\n');
            }
            _ => {}
        }
    }
}

fn note_original(parts: &mut Parts, original: &Message) {
    if parts.original_message_id.is_none() {
        parts.original_message_id = original.message_id().map(str::to_string);
    }
    if parts.original_to.is_empty() {
        parts.original_to = addresses_of(original.to());
    }
    if parts.original_recipient_header.is_none() {
        parts.original_recipient_header = original
            .header_raw("X-HmXmrOriginalRecipient")
            .and_then(text::clean_address);
    }
}

fn addresses_of(address: Option<&mail_parser::Address>) -> Vec<String> {
    address
        .map(|a| {
            a.iter()
                .filter_map(|m| m.address().and_then(text::clean_address))
                .collect()
        })
        .unwrap_or_default()
}

fn strip_tags(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    let mut in_tag = false;
    for c in html.chars() {
        match c {
            '<' => in_tag = true,
            '>' if in_tag => {
                in_tag = false;
                out.push(' ');
            }
            _ if !in_tag => out.push(c),
            _ => {}
        }
    }
    out.replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&amp;", "&")
}

fn header_text(message: &Message, name: &str) -> String {
    message
        .header_raw(name)
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn read(message: &Message) -> Report {
    let parts = sort_parts(message);
    let mut report = Report::unknown();
    report.original_message_id = parts.original_message_id.clone();
    let subject = message.subject().unwrap_or_default().to_lowercase();
    let from = addresses_of(message.from());
    let report_type = message
        .content_type()
        .and_then(|ct| ct.attribute("report-type"))
        .unwrap_or_default()
        .to_ascii_lowercase();

    if !parts.feedback.is_empty() || report_type == "feedback-report" {
        return complaint(report, &parts);
    }
    if let Some(provider) = provider::notification(&parts.body) {
        return Report {
            original_message_id: provider.original_message_id.or(report.original_message_id),
            ..provider
        };
    }
    if let Some(unsubscribe) = provider_unsubscribe(message, &subject, &from, &parts) {
        return unsubscribe;
    }
    // The prose of the report, without the quoted original: what every rule below reads.
    let body = text::before_original(&parts.body);
    let mut recipients = Vec::new();
    for status in &parts.delivery_status {
        recipients.extend(from_delivery_status(status, body));
    }
    if recipients.is_empty() && parts.body.contains("Final-Recipient:") {
        recipients.extend(from_delivery_status(&parts.body, body));
    }
    if !recipients.is_empty() {
        let all_fine = recipients.iter().all(|r| {
            matches!(
                r.action.as_deref(),
                Some("delivered" | "relayed" | "expanded")
            )
        });
        report.kind = if all_fine {
            Kind::DeliveryReport
        } else {
            Kind::Bounce
        };
        report.recipients = recipients;
        return report;
    }

    let failed_header = header_text(message, "X-Failed-Recipients");
    // A subject alone ("Re: error in the digest") is not enough: the body must say so too.
    let looks_bounced = !failed_header.is_empty()
        || report_type == "delivery-status"
        || (BOUNCE_SUBJECTS.iter().any(|w| subject.contains(w)) && reports_failure(body))
        || from.iter().any(|f| {
            DAEMONS
                .iter()
                .any(|d| f.to_ascii_lowercase().starts_with(d))
        });
    let auto_submitted = header_text(message, "Auto-Submitted");
    let auto_reply = (auto_submitted.starts_with("auto-replied") && !looks_bounced)
        || message.header_raw("X-Autoreply").is_some()
        || message.header_raw("X-Autorespond").is_some()
        || header_text(message, "Precedence") == "auto_reply"
        || AUTO_REPLY_SUBJECTS.iter().any(|w| subject.contains(w));
    if auto_reply && failed_header.is_empty() {
        report.kind = Kind::AutoReply;
        report.recipients = from
            .into_iter()
            .take(1)
            .map(|email| Recipient::named(email, "auto-reply"))
            .collect();
        return report;
    }
    if !looks_bounced {
        return report;
    }
    let mut skip = from.clone();
    skip.extend(addresses_of(message.to()));
    let mut found = text::recipients(body, &skip);
    if found.is_empty() {
        // Some servers address the bounce to the failed recipient itself.
        found = text::recipients(body, &from);
    }
    // X-Failed-Recipients (Exim, Google) is the server's own list: it wins over the prose.
    let listed: Vec<String> = failed_header
        .split(',')
        .filter_map(text::clean_address)
        .collect();
    if !listed.is_empty() {
        found = listed
            .into_iter()
            .map(|address| {
                let reply = found
                    .iter()
                    .find(|(a, _)| a.eq_ignore_ascii_case(&address))
                    .map_or_else(|| body.to_string(), |(_, r)| r.clone());
                (address, reply)
            })
            .collect();
    }
    if found.is_empty()
        && let Some(address) = parts.original_to.first()
    {
        found.push((address.clone(), body.to_string()));
    }
    let single = found.len() == 1;
    // A delivery-status part whose recipient is no address (Exim's pipe or file targets)
    // still carries the status.
    let dsn_status = parts
        .delivery_status
        .iter()
        .flat_map(|d| dsn::blocks(d))
        .find_map(|b| b.get("status").and_then(text::status_in));
    report.recipients = found
        .into_iter()
        .map(|(email, reply)| {
            let reply = if single {
                body.to_string()
            } else {
                reply_for(&reply, body)
            };
            let status = text::status_in(&reply).or_else(|| text::status_in(body));
            let smtp_code = text::smtp_code_in(&reply).or_else(|| text::smtp_code_in(body));
            let status = status
                .or_else(|| smtp_code.map(|c| format!("{}.0.0", c / 100)))
                .or_else(|| dsn_status.clone());
            let verdict = classify(status.as_deref(), &reply, Some("failed"));
            let verdict = reason::after_data(verdict, status.as_deref(), &reply);
            Recipient {
                email,
                status,
                smtp_code,
                action: Some("failed".into()),
                hard: verdict.hard,
                reason: verdict.reason.into(),
            }
        })
        .collect();
    if !report.recipients.is_empty() {
        report.kind = Kind::Bounce;
    }
    report
}

/// Wording or a reply code that says a delivery failed.
fn reports_failure(body: &str) -> bool {
    const WORDS: &[&str] = &[
        "could not be delivered",
        "couldn't be delivered",
        "not be delivered",
        "undeliverable",
        "undelivered",
        "delivery failed",
        "delivery has failed",
        "delivery to the following",
        "permanent error",
        "permanent fatal",
        "unable to deliver",
        "wasn't able to deliver",
        "failed to deliver",
        "could not deliver",
        "error delivering",
        "attempting to deliver",
        "expired",
        "delayed",
        "rejected",
        "returned",
        "mail delivery",
        "following address",
        "following recipient",
        "no such user",
        "user unknown",
    ];
    let lower = body.to_lowercase();
    WORDS.iter().any(|w| lower.contains(w))
        || text::status_in(body).is_some_and(|s| !s.starts_with('2'))
}

/// The words to classify: the recipient's own reply, or the whole body when it says nothing.
fn reply_for(own: &str, body: &str) -> String {
    if own.trim_end().lines().count() > 1 || text::status_in(own).is_some() || says_something(own) {
        own.to_string()
    } else {
        body.to_string()
    }
}

/// Whether a one-line reply holds words beyond its address and a reply code (Sendmail's
/// `554 <a@b>... Remote protocol error`): at least three words after the address.
fn says_something(own: &str) -> bool {
    let after = own.split_once(['>', ':', ' ']).map_or("", |(_, rest)| rest);
    after
        .split_whitespace()
        .filter(|w| w.chars().any(|c| c.is_alphabetic()))
        .count()
        >= 3
}

/// A mailbox provider's own complaint or unsubscribe mail that is no ARF report: Hotmail's
/// "complaint about message" (the reader in `X-HmXmrOriginalRecipient`) and Apple Mail's
/// `X-Apple-Unsubscribe` request (an opt-out from the reader's own address).
fn provider_unsubscribe(
    message: &Message,
    subject: &str,
    from: &[String],
    parts: &Parts,
) -> Option<Report> {
    let (feedback_type, email) = if header_text(message, "X-Apple-Unsubscribe") == "true" {
        ("opt-out", from.first().cloned())
    } else if subject.contains("complaint about message") {
        let hotmail = parts
            .original_recipient_header
            .clone()
            .or_else(|| parts.original_to.first().cloned());
        ("abuse", hotmail)
    } else {
        return None;
    };
    Some(Report {
        kind: Kind::Complaint,
        feedback_type: Some(feedback_type.into()),
        original_message_id: parts.original_message_id.clone(),
        recipients: email
            .into_iter()
            .map(|email| Recipient::named(email, "complaint"))
            .collect(),
    })
}

fn complaint(mut report: Report, parts: &Parts) -> Report {
    report.kind = Kind::Complaint;
    let fields: Vec<Fields> = parts.feedback.iter().flat_map(|f| dsn::blocks(f)).collect();
    report.feedback_type = fields
        .iter()
        .find_map(|f| f.get("feedback-type"))
        .map(|t| t.to_ascii_lowercase())
        .or_else(|| Some("abuse".into()));
    let email = fields
        .iter()
        .find_map(|f| {
            f.get("original-rcpt-to")
                .or_else(|| f.get("removal-recipient"))
        })
        .and_then(dsn::address_of)
        .or_else(|| parts.original_to.first().cloned());
    report.recipients = email
        .into_iter()
        .map(|email| Recipient::named(email, "complaint"))
        .collect();
    report
}

/// One recipient per block of a delivery-status part that names one; `body` is the report's
/// prose before the quoted original.
fn from_delivery_status(status_text: &str, body: &str) -> Vec<Recipient> {
    let mut out: Vec<Recipient> = Vec::new();
    for block in dsn::blocks(status_text) {
        let Some(email) = block
            .get("final-recipient")
            .and_then(dsn::address_of)
            .or_else(|| block.get("original-recipient").and_then(dsn::address_of))
        else {
            continue;
        };
        if out.iter().any(|r| r.email.eq_ignore_ascii_case(&email)) {
            continue;
        }
        let action = block.get("action").map(|a| {
            a.split_whitespace()
                .next()
                .unwrap_or_default()
                .to_ascii_lowercase()
        });
        let diagnostic = block.get("diagnostic-code").unwrap_or_default().to_string();
        let status = match (
            block.get("status").and_then(text::status_in),
            text::status_in(&diagnostic),
        ) {
            // A bare x.0.0 says less than the code in the server's own reply.
            (Some(s), Some(d)) if s.ends_with(".0.0") && d.starts_with(&s[..1]) => Some(d),
            (s, d) => s.or(d),
        };
        let smtp_code =
            text::smtp_code_in(diagnostic.split_once(';').map_or(&*diagnostic, |d| d.1))
                .or_else(|| text::smtp_code_in(&diagnostic));
        let words = if diagnostic.trim().is_empty() {
            body.to_string()
        } else {
            diagnostic
        };
        let verdict = classify(status.as_deref(), &words, action.as_deref());
        let verdict = reason::after_data(verdict, status.as_deref(), &format!("{words}\n{body}"));
        let fine = matches!(
            action.as_deref(),
            Some("delivered" | "relayed" | "expanded")
        );
        out.push(Recipient {
            email,
            status,
            smtp_code,
            hard: verdict.hard && !fine,
            reason: if fine {
                "delivered".into()
            } else {
                verdict.reason.into()
            },
            action,
        });
    }
    out
}
