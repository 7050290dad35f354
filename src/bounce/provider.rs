//! Providers' JSON notifications that arrive as mail: Amazon SES bounce, complaint and
//! delivery notifications, wrapped in an SNS envelope (`"Message"` holds the notification as
//! a JSON string) or sent bare.

use serde_json::Value;

use super::text;
use super::{Kind, Recipient, Report};

/// The report an SES notification in `body` describes, if `body` is one.
pub fn notification(body: &str) -> Option<Report> {
    let start = body.find('{')?;
    let end = body.rfind('}')?;
    let json = body.get(start..=end)?;
    // Mail gateways wrap long lines; a wrapped JSON string no longer parses, so try once more
    // with the line breaks taken out.
    let outer: Value = serde_json::from_str(json)
        .or_else(|_| serde_json::from_str(&json.replace(['\r', '\n'], "")))
        .ok()?;
    let inner = match outer.get("Message").and_then(Value::as_str) {
        Some(message) => serde_json::from_str(message).ok()?,
        None => outer,
    };
    let kind = inner
        .get("notificationType")
        .or_else(|| inner.get("eventType"))
        .and_then(Value::as_str)?;
    let message_id = inner
        .pointer("/mail/commonHeaders/messageId")
        .and_then(Value::as_str)
        .map(|m| m.trim_matches(['<', '>']).to_string());
    let mut report = Report {
        kind: Kind::Unknown,
        feedback_type: None,
        original_message_id: message_id,
        recipients: Vec::new(),
    };
    match kind {
        "Bounce" => {
            let permanent =
                inner.pointer("/bounce/bounceType").and_then(Value::as_str) == Some("Permanent");
            let sub_type = inner
                .pointer("/bounce/bounceSubType")
                .and_then(Value::as_str)
                .unwrap_or_default();
            report.kind = Kind::Bounce;
            for r in list(&inner, "/bounce/bouncedRecipients") {
                let Some(email) = r.get("emailAddress").and_then(Value::as_str) else {
                    continue;
                };
                let Some(email) = text::clean_address(email) else {
                    continue;
                };
                let diagnostic = r
                    .get("diagnosticCode")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let status = r
                    .get("status")
                    .and_then(Value::as_str)
                    .and_then(text::status_in)
                    .or_else(|| text::status_in(diagnostic));
                let verdict = super::reason::classify(status.as_deref(), diagnostic, None);
                // SES says "Permanent/General" for unknown users and "Permanent/NoEmail" for
                // an address that does not exist; suppressed and on-account-suppression-list
                // are its own lists, not the address.
                let hard = permanent
                    && (verdict.hard || sub_type == "NoEmail")
                    && !matches!(sub_type, "Suppressed" | "OnAccountSuppressionList");
                report.recipients.push(Recipient {
                    email,
                    status,
                    smtp_code: text::smtp_code_in(diagnostic),
                    action: r
                        .get("action")
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .or(Some("failed".into())),
                    hard,
                    reason: if permanent || !verdict.hard {
                        verdict.reason.into()
                    } else {
                        "deferred".into()
                    },
                });
            }
        }
        "Complaint" => {
            report.kind = Kind::Complaint;
            report.feedback_type = Some(
                inner
                    .pointer("/complaint/complaintFeedbackType")
                    .and_then(Value::as_str)
                    .unwrap_or("abuse")
                    .to_string(),
            );
            report.recipients = list(&inner, "/complaint/complainedRecipients")
                .filter_map(|r| r.get("emailAddress").and_then(Value::as_str))
                .filter_map(text::clean_address)
                .map(|email| Recipient::named(email, "complaint"))
                .collect();
        }
        "Delivery" => {
            report.kind = Kind::DeliveryReport;
            let reply = inner
                .pointer("/delivery/smtpResponse")
                .and_then(Value::as_str)
                .unwrap_or_default();
            report.recipients = list(&inner, "/delivery/recipients")
                .filter_map(Value::as_str)
                .filter_map(text::clean_address)
                .map(|email| Recipient {
                    email,
                    status: text::status_in(reply),
                    smtp_code: text::smtp_code_in(reply),
                    action: Some("delivered".into()),
                    hard: false,
                    reason: "delivered".into(),
                })
                .collect();
        }
        _ => return None,
    }
    Some(report)
}

fn list<'a>(value: &'a Value, pointer: &str) -> impl Iterator<Item = &'a Value> {
    value
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
}
