//! Topic slugs and the status enums shared by the store, the CLI and the web app. What each
//! event does from each status is decided in [`super::lifecycle`].

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
    fn slugs() {
        assert!(TopicSlug::parse("distributed-systems").is_ok());
        assert!(TopicSlug::parse("Rust").is_err());
        assert!(TopicSlug::parse("").is_err());
        assert!(TopicSlug::parse("a b").is_err());
    }
}
