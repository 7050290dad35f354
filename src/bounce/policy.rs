//! What an inbound report does to its subscriber, decided purely: a hard bounce and a complaint
//! suppress at once, soft bounces only when `soft_limit` of them fall within `soft_window_days`,
//! and auto-replies, delivery reports, delayed reports and unknown messages change nothing. The
//! store records the event and carries out the decision in one transaction.

use super::{Kind, Report};
use crate::domain::SubscriberEvent;

/// What an event counts as.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Effect {
    /// The address is gone.
    Hard,
    /// A failure that may pass (full mailbox, block, policy, network); counted.
    Soft,
    /// The reader marked our mail as spam.
    Complaint,
    /// Nothing: an auto-reply, a delivery report, a delayed report, an unknown message.
    None,
}

impl Effect {
    /// The name stored with the event.
    pub fn as_str(self) -> &'static str {
        match self {
            Effect::Hard => "hard",
            Effect::Soft => "soft",
            Effect::Complaint => "complaint",
            Effect::None => "none",
        }
    }
}

/// The soft-bounce rule: `limit` soft bounces within `window_days` days suppress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SoftLimit {
    pub limit: u32,
    pub window_days: u32,
}

impl Default for SoftLimit {
    fn default() -> Self {
        SoftLimit {
            limit: 3,
            window_days: 30,
        }
    }
}

/// What `report` counts as for the recipient at index `recipient` (the one matched to a
/// subscriber; the first when none was matched by address).
pub fn effect(report: &Report, recipient: usize) -> Effect {
    match report.kind {
        Kind::Complaint => Effect::Complaint,
        Kind::Bounce => match report.recipients.get(recipient) {
            None => Effect::None,
            Some(r) => {
                let action = r.action.as_deref().unwrap_or("failed");
                if !action.eq_ignore_ascii_case("failed") {
                    Effect::None
                } else if r.hard {
                    Effect::Hard
                } else {
                    Effect::Soft
                }
            }
        },
        Kind::AutoReply | Kind::DeliveryReport | Kind::Unknown => Effect::None,
    }
}

/// The subscriber event an effect causes, given how many soft bounces (this one included) the
/// subscriber has within the window; `None` when the status stays.
pub fn decide(effect: Effect, soft_in_window: u64, rule: SoftLimit) -> Option<SubscriberEvent> {
    match effect {
        Effect::Hard => Some(SubscriberEvent::Bounce),
        Effect::Complaint => Some(SubscriberEvent::Complaint),
        Effect::Soft if soft_in_window >= u64::from(rule.limit.max(1)) => {
            Some(SubscriberEvent::Bounce)
        }
        Effect::Soft | Effect::None => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bounce::Recipient;

    fn report(kind: Kind, action: Option<&str>, hard: bool) -> Report {
        Report {
            kind,
            feedback_type: None,
            original_message_id: None,
            recipients: vec![Recipient {
                email: "a@example.org".into(),
                status: None,
                smtp_code: None,
                action: action.map(str::to_string),
                hard,
                reason: "x".into(),
            }],
        }
    }

    #[test]
    fn each_kind_counts_as_the_policy_says() {
        assert_eq!(
            effect(&report(Kind::Bounce, Some("failed"), true), 0),
            Effect::Hard
        );
        assert_eq!(effect(&report(Kind::Bounce, None, false), 0), Effect::Soft);
        assert_eq!(
            effect(&report(Kind::Bounce, Some("delayed"), true), 0),
            Effect::None
        );
        assert_eq!(
            effect(&report(Kind::Complaint, None, false), 0),
            Effect::Complaint
        );
        for kind in [Kind::AutoReply, Kind::DeliveryReport, Kind::Unknown] {
            assert_eq!(effect(&report(kind, Some("failed"), true), 0), Effect::None);
        }
        let mut none = report(Kind::Bounce, Some("failed"), true);
        none.recipients.clear();
        assert_eq!(effect(&none, 0), Effect::None);
    }

    #[test]
    fn soft_bounces_suppress_only_at_the_limit() {
        let rule = SoftLimit::default();
        assert_eq!(decide(Effect::Soft, 2, rule), None);
        assert_eq!(decide(Effect::Soft, 3, rule), Some(SubscriberEvent::Bounce));
        assert_eq!(decide(Effect::Hard, 0, rule), Some(SubscriberEvent::Bounce));
        assert_eq!(
            decide(Effect::Complaint, 0, rule),
            Some(SubscriberEvent::Complaint)
        );
        assert_eq!(decide(Effect::None, 99, rule), None);
        let one = SoftLimit {
            limit: 1,
            window_days: 1,
        };
        assert_eq!(decide(Effect::Soft, 1, one), Some(SubscriberEvent::Bounce));
    }
}
