//! What an attempt's outcome does to its outbox row ([`RetryPolicy::settle`]): sent and failed
//! are final; a deferred row waits `base * 2^(attempts-1)` (capped) and fails after
//! `max_attempts` attempts or `give_up_after` since it was queued; an unknown outcome is resent
//! the same way at most `unknown_retries` times, then recorded `unknown`. Pure: the store only
//! records the [`Settlement`] this decides.

use chrono::{DateTime, Duration, Utc};

use super::outcome::DeliveryOutcome;
use crate::domain::DeliveryStatus;
use crate::store::{ClaimedDelivery, Settlement};

/// Backoff and give-up rules (from `[delivery]`).
#[derive(Clone, Copy, Debug)]
pub struct RetryPolicy {
    pub base_secs: u64,
    pub max_secs: u64,
    pub max_attempts: u32,
    pub give_up_after: Duration,
    /// Resends allowed after an unknown outcome before the row is recorded `unknown`.
    pub unknown_retries: u32,
}

impl RetryPolicy {
    pub fn from_settings(d: &crate::config::DeliverySettings) -> RetryPolicy {
        RetryPolicy {
            base_secs: d.retry_base_secs,
            max_secs: d.retry_max_secs,
            max_attempts: d.max_attempts,
            give_up_after: Duration::hours(
                i64::try_from(d.give_up_after_hours).unwrap_or(i64::MAX / 3_600_000),
            ),
            unknown_retries: d.unknown_retries,
        }
    }

    /// The wait after the `attempts`-th failed attempt: `base * 2^(attempts-1)`, capped at max.
    pub fn backoff(&self, attempts: i64) -> Duration {
        let exp = u32::try_from(attempts.saturating_sub(1).clamp(0, 62)).unwrap_or(62);
        let secs = self
            .base_secs
            .saturating_mul(1u64.checked_shl(exp).unwrap_or(u64::MAX))
            .min(self.max_secs);
        Duration::seconds(i64::try_from(secs).unwrap_or(i64::MAX / 1000))
    }

    /// How `claim` is settled after an attempt that ended in `outcome` at `now`. Deferred rows
    /// get `next_attempt_at = now + backoff`, or become failed after `max_attempts` attempts or
    /// `give_up_after` since they were queued. An unknown outcome is retried the same way at
    /// most `unknown_retries` times, then (or when the row would give up) recorded `unknown`.
    /// A failure whose reply names a bad mailbox bounces the row's subscriber.
    pub fn settle(
        &self,
        claim: &ClaimedDelivery,
        outcome: &DeliveryOutcome,
        now: DateTime<Utc>,
    ) -> Settlement {
        let give_up = claim.attempts >= i64::from(self.max_attempts)
            || now - claim.created_at >= self.give_up_after;
        let retry_at = now + self.backoff(claim.attempts);
        let (status, reply, next_attempt_at, sent_at, unknown_outcome) = match outcome {
            DeliveryOutcome::Sent { reply } => (DeliveryStatus::Sent, reply, now, Some(now), false),
            DeliveryOutcome::Failed { reply, .. } => {
                (DeliveryStatus::Failed, reply, now, None, false)
            }
            DeliveryOutcome::Deferred { reply } if give_up => {
                (DeliveryStatus::Failed, reply, now, None, false)
            }
            DeliveryOutcome::Deferred { reply } => {
                (DeliveryStatus::Deferred, reply, retry_at, None, false)
            }
            DeliveryOutcome::Unknown { reply } => {
                let resends_used = claim.unknown_outcomes >= i64::from(self.unknown_retries);
                if give_up || resends_used {
                    (DeliveryStatus::Unknown, reply, now, None, true)
                } else {
                    (DeliveryStatus::Deferred, reply, retry_at, None, true)
                }
            }
        };
        Settlement {
            status,
            reply: reply.clone(),
            next_attempt_at,
            sent_at,
            unknown_outcome,
            bounce: matches!(outcome, DeliveryOutcome::Failed { bounce: true, .. }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::DeliveryKind;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            base_secs: 300,
            max_secs: 3600,
            max_attempts: 8,
            give_up_after: Duration::hours(120),
            unknown_retries: 1,
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1), Duration::seconds(300));
        assert_eq!(p.backoff(2), Duration::seconds(600));
        assert_eq!(p.backoff(4), Duration::seconds(2400));
        assert_eq!(p.backoff(5), Duration::seconds(3600));
        assert_eq!(p.backoff(200), Duration::seconds(3600));
    }

    /// Every outcome against a fresh row, a row out of attempts, a row queued too long ago and
    /// a row whose unknown-outcome resends are used up: the status, the next attempt, the sent
    /// time, whether an unknown outcome is counted and whether the subscriber bounces.
    #[test]
    fn each_outcome_settles_a_row_by_the_policy() {
        let p = policy();
        let queued = DateTime::parse_from_rfc3339("2026-02-01T08:00:00Z")
            .unwrap()
            .with_timezone(&Utc);
        let now = queued + Duration::hours(1);
        let claim =
            |attempts: i64, unknown_outcomes: i64, created_at: DateTime<Utc>| ClaimedDelivery {
                id: 1,
                kind: DeliveryKind::Digest,
                issue_id: Some(1),
                subscriber_id: Some(1),
                email: "reader@example.org".into(),
                topic: Some("rust".into()),
                message_id: "digest:1:1".into(),
                payload: None,
                attempts,
                unknown_outcomes,
                created_at,
                lease_owner: "w/1".into(),
            };
        let fresh = claim(2, 0, queued);
        let out_of_attempts = claim(8, 0, queued);
        let too_old = claim(2, 0, queued - Duration::hours(120));
        let resent_once = claim(2, 1, queued);
        let retry = now + Duration::seconds(600);
        let sent = DeliveryOutcome::Sent {
            reply: "250".into(),
        };
        let deferred = DeliveryOutcome::Deferred {
            reply: "451".into(),
        };
        let unknown = DeliveryOutcome::Unknown {
            reply: "timeout".into(),
        };
        let failed = DeliveryOutcome::Failed {
            reply: "550 5.7.1".into(),
            bounce: false,
        };
        let bounced = DeliveryOutcome::Failed {
            reply: "550 5.1.1".into(),
            bounce: true,
        };
        use DeliveryStatus::*;
        let table = [
            (&fresh, &sent, Sent, now, Some(now), false, false),
            (&out_of_attempts, &sent, Sent, now, Some(now), false, false),
            (&fresh, &deferred, Deferred, retry, None, false, false),
            (&out_of_attempts, &deferred, Failed, now, None, false, false),
            (&too_old, &deferred, Failed, now, None, false, false),
            (&fresh, &unknown, Deferred, retry, None, true, false),
            (&resent_once, &unknown, Unknown, now, None, true, false),
            (&out_of_attempts, &unknown, Unknown, now, None, true, false),
            (&too_old, &unknown, Unknown, now, None, true, false),
            (&fresh, &failed, Failed, now, None, false, false),
            (&fresh, &bounced, Failed, now, None, false, true),
            (&out_of_attempts, &bounced, Failed, now, None, false, true),
        ];
        for (row, outcome, status, next, sent_at, unknown_outcome, bounce) in table {
            let s = p.settle(row, outcome, now);
            let reply = match outcome {
                DeliveryOutcome::Sent { reply }
                | DeliveryOutcome::Deferred { reply }
                | DeliveryOutcome::Unknown { reply }
                | DeliveryOutcome::Failed { reply, .. } => reply.clone(),
            };
            assert_eq!(
                s,
                Settlement {
                    status,
                    reply,
                    next_attempt_at: next,
                    sent_at,
                    unknown_outcome,
                    bounce,
                },
                "{outcome:?} after {} attempts, {} unknown, queued {}",
                row.attempts,
                row.unknown_outcomes,
                row.created_at
            );
        }
    }
}
