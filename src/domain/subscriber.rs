//! Topic slugs and the status enums shared by the store, the CLI and the web app, and what
//! saving the preferences page does from each status ([`preferences_change`]).

use std::fmt;
use std::str::FromStr;

/// A topic's identifier: lower-case ASCII letters, digits and `-`, 1..=64 characters.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct TopicSlug(String);

impl TopicSlug {
    pub fn parse(raw: &str) -> Result<TopicSlug, String> {
        let ok = !raw.is_empty()
            && raw.len() <= 64
            && raw
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
            && !raw.starts_with('-');
        if ok {
            Ok(TopicSlug(raw.to_string()))
        } else {
            Err(format!(
                "{raw:?} is not a topic slug (lower-case letters, digits and '-', at most 64)"
            ))
        }
    }
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

/// A slug reads as the `&str` it wraps (store queries, maps keyed by `String`); it cannot be
/// changed through this, so it stays valid.
impl std::ops::Deref for TopicSlug {
    type Target = str;
    fn deref(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for TopicSlug {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "lowercase")]
        pub enum $name { $($variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = String;
            fn from_str(s: &str) -> Result<Self, String> {
                match s.trim().to_ascii_lowercase().as_str() {
                    $($text => Ok($name::$variant),)+
                    other => Err(format!(
                        "unknown {} {other:?} (expected one of: {})",
                        stringify!($name),
                        [$($text),+].join(", ")
                    )),
                }
            }
        }
    };
}

string_enum!(
    /// Where a subscriber stands.
    SubscriberStatus {
        Pending => "pending",
        Confirmed => "confirmed",
        Unsubscribed => "unsubscribed",
        Bounced => "bounced",
        Complained => "complained",
    }
);

impl SubscriberStatus {
    /// Statuses that keep an address from being added again without `--resubscribe`.
    pub fn is_suppressed(self) -> bool {
        matches!(
            self,
            SubscriberStatus::Unsubscribed
                | SubscriberStatus::Bounced
                | SubscriberStatus::Complained
        )
    }
}

/// What saving the preferences page does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PreferencesChange {
    /// Replace the topics and time zone; no topics at all unsubscribes.
    Save,
    /// Become (or stay) pending with the chosen topics and get a fresh confirmation email:
    /// only a confirmation proves the reader wants mail again (double opt-in).
    AskConfirmation,
    /// Nothing to change: an unsubscribed reader who ticked nothing.
    StayUnsubscribed,
    /// Mail to the address failed or was reported as spam; not changed from the web.
    Refuse,
}

/// What saving the preferences page does for a reader with `status` who ticked `any_topic`.
pub fn preferences_change(status: SubscriberStatus, any_topic: bool) -> PreferencesChange {
    use SubscriberStatus as S;
    match (status, any_topic) {
        (S::Confirmed, _) | (S::Pending, false) => PreferencesChange::Save,
        (S::Pending | S::Unsubscribed, true) => PreferencesChange::AskConfirmation,
        (S::Unsubscribed, false) => PreferencesChange::StayUnsubscribed,
        (S::Bounced | S::Complained, _) => PreferencesChange::Refuse,
    }
}

string_enum!(
    /// How consent was asked for.
    ConsentSource {
        Cli => "cli",
        Web => "web",
        Import => "import",
    }
);

string_enum!(
    /// Where one outgoing message stands in the outbox. `Unknown`: no reply came after the
    /// message data went out and the allowed resends (`delivery.unknown_retries`) are used up,
    /// so it may or may not have arrived; it is neither sent nor failed, and not sent again.
    DeliveryStatus {
        Queued => "queued",
        Sending => "sending",
        Sent => "sent",
        Deferred => "deferred",
        Failed => "failed",
        Skipped => "skipped",
        Unknown => "unknown",
    }
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_round_trip() {
        for s in SubscriberStatus::ALL {
            assert_eq!(s.as_str().parse::<SubscriberStatus>().unwrap(), *s);
        }
        assert!(
            "nope"
                .parse::<SubscriberStatus>()
                .unwrap_err()
                .contains("pending")
        );
    }

    #[test]
    fn preferences_change_table() {
        use PreferencesChange as C;
        use SubscriberStatus as S;
        let table = [
            (S::Confirmed, true, C::Save),
            (S::Confirmed, false, C::Save),
            (S::Pending, true, C::AskConfirmation),
            (S::Pending, false, C::Save),
            (S::Unsubscribed, true, C::AskConfirmation),
            (S::Unsubscribed, false, C::StayUnsubscribed),
            (S::Bounced, true, C::Refuse),
            (S::Bounced, false, C::Refuse),
            (S::Complained, true, C::Refuse),
            (S::Complained, false, C::Refuse),
        ];
        assert_eq!(
            table.len(),
            S::ALL.len() * 2,
            "every status, with and without topics"
        );
        for (status, any_topic, expected) in table {
            assert_eq!(
                preferences_change(status, any_topic),
                expected,
                "{status} with topics: {any_topic}"
            );
        }
    }

    #[test]
    fn slugs() {
        assert!(TopicSlug::parse("distributed-systems").is_ok());
        assert!(TopicSlug::parse("Rust").is_err());
        assert!(TopicSlug::parse("").is_err());
        assert!(TopicSlug::parse("a b").is_err());
    }
}
