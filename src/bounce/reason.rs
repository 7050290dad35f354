//! Sorting a server's reply into a short reason and hard or soft. Hard means the address is
//! gone: unknown user, unknown domain, moved, or a domain that accepts no mail. Everything else
//! (a full mailbox, a block, a policy or content rejection, an expired message, a network
//! failure, a suspended account) is soft: it may pass later. The wording is checked before the
//! status code, because servers often send 5.0.0 or a wrong code with a clear sentence.

/// A reason and whether it is hard.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Verdict {
    pub reason: &'static str,
    pub hard: bool,
}

const fn soft(reason: &'static str) -> Verdict {
    Verdict {
        reason,
        hard: false,
    }
}

const fn hard(reason: &'static str) -> Verdict {
    Verdict { reason, hard: true }
}

/// Phrases that decide before anything else: a soft reason even when a server wraps it in a
/// "user unknown" status.
const FIRST: &[(&str, Verdict)] = &[
    // A refused sender says nothing about the recipient.
    ("after mail from", soft("rejected")),
    // A mailing list refusing a post (Google Groups) is no missing address.
    ("permission to post", soft("rejected")),
    ("mailbox full", soft("mailbox-full")),
    ("mailbox is full", soft("mailbox-full")),
    ("mailbox has exceeded", soft("mailbox-full")),
    ("over quota", soft("mailbox-full")),
    ("overquota", soft("mailbox-full")),
    ("quota exceeded", soft("mailbox-full")),
    ("exceeded storage", soft("mailbox-full")),
    ("exceeded its storage", soft("mailbox-full")),
    ("insufficient storage", soft("mailbox-full")),
    ("mailbox size limit", soft("mailbox-full")),
    ("out of storage", soft("mailbox-full")),
    ("storage quota", soft("mailbox-full")),
    ("user is over", soft("mailbox-full")),
    ("too many messages", soft("mailbox-full")),
    ("disk quota", soft("mailbox-full")),
    ("domain of sender", soft("rejected")),
    ("sender address rejected", soft("rejected")),
    ("temporarily locked", soft("suspended")),
    ("temporary locked", soft("suspended")),
    ("is disabled", soft("suspended")),
    ("account is disabled", soft("suspended")),
    ("account has been disabled", soft("suspended")),
    ("account disabled", soft("suspended")),
    ("mailbox disabled", soft("suspended")),
    ("mailbox is disabled", soft("suspended")),
    ("is inactive", soft("suspended")),
    ("account is inactive", soft("suspended")),
    ("suspended", soft("suspended")),
    ("temporarily deferred", soft("deferred")),
    ("retry time not reached", soft("expired")),
    ("retry timeout exceeded", soft("expired")),
    ("message expired", soft("expired")),
    ("has been delayed", soft("expired")),
    ("could not be delivered for", soft("expired")),
    ("too long in queue", soft("expired")),
    ("delivery time expired", soft("expired")),
    ("time limit", soft("expired")),
    ("timed out", soft("network")),
    ("spamhaus", soft("blocked")),
    ("blacklist", soft("blocked")),
    ("blocklist", soft("blocked")),
    ("block list", soft("blocked")),
    ("reverse dns", soft("blocked")),
    ("ptr record", soft("blocked")),
    ("spam", soft("spam")),
    ("virus", soft("content")),
    ("message size exceeds", soft("too-big")),
    ("message is too large", soft("too-big")),
    ("relay access denied", soft("relaying-denied")),
    ("relaying denied", soft("relaying-denied")),
    ("not permitted to relay", soft("relaying-denied")),
    ("unable to relay", soft("relaying-denied")),
    ("relay not permitted", soft("relaying-denied")),
];

/// Phrases that mean the address is gone.
const HARD: &[(&str, Verdict)] = &[
    ("has moved", hard("moved")),
    ("not accept mail", hard("no-mail-accepted")),
    ("accepts no mail", hard("no-mail-accepted")),
    ("does not accept email", hard("no-mail-accepted")),
    ("null mx", hard("no-mail-accepted")),
    ("not accepting network messages", hard("no-mail-accepted")),
    ("no smtp service", hard("no-mail-accepted")),
    ("couldn't find a mail exchanger", hard("no-mail-accepted")),
    ("no mx found", hard("no-mail-accepted")),
    ("dns lookup failure", hard("unknown-domain")),
    ("host unknown", hard("unknown-domain")),
    ("unknown host", hard("unknown-domain")),
    ("host not found", hard("unknown-domain")),
    ("domain not found", hard("unknown-domain")),
    ("no such domain", hard("unknown-domain")),
    ("domain does not exist", hard("unknown-domain")),
    ("unrouteable mail domain", hard("unknown-domain")),
    ("host or domain name not found", hard("unknown-domain")),
    ("name or service not known", hard("unknown-domain")),
    ("no mx record", hard("unknown-domain")),
    ("unknown domain", hard("unknown-domain")),
    ("domain name not found", hard("unknown-domain")),
    ("illegal host/domain", hard("unknown-domain")),
    ("user unknown", hard("unknown-user")),
    ("invalid final delivery", hard("unknown-user")),
    ("address is correct", hard("unknown-user")),
    ("doesn't have a", hard("unknown-user")),
    ("address rejected.", hard("unknown-user")),
    (
        "recipient address rejected: access denied",
        hard("unknown-user"),
    ),
    ("unknown user", hard("unknown-user")),
    ("no such user", hard("unknown-user")),
    ("no such mailbox", hard("unknown-user")),
    ("no such recipient", hard("unknown-user")),
    ("no such account", hard("unknown-user")),
    ("no such person", hard("unknown-user")),
    ("user not found", hard("unknown-user")),
    ("mailbox not found", hard("unknown-user")),
    ("mailbox unavailable", hard("unknown-user")),
    ("mailbox does not exist", hard("unknown-user")),
    ("recipient not found", hard("unknown-user")),
    ("unknown recipient", hard("unknown-user")),
    ("recipient unknown", hard("unknown-user")),
    ("invalid recipient", hard("unknown-user")),
    ("invalid mailbox", hard("unknown-user")),
    ("unknown address", hard("unknown-user")),
    ("unknown local part", hard("unknown-user")),
    ("addressee unknown", hard("unknown-user")),
    ("unrouteable address", hard("unknown-user")),
    ("does not exist", hard("unknown-user")),
    ("doesn't exist", hard("unknown-user")),
    ("not exist", hard("unknown-user")),
    ("no mailbox", hard("unknown-user")),
    ("bad destination mailbox", hard("unknown-user")),
    ("is not a valid mailbox", hard("unknown-user")),
    ("not a known user", hard("unknown-user")),
    ("no longer available", hard("unknown-user")),
    ("couldn't be found", hard("unknown-user")),
    ("could not be found", hard("unknown-user")),
    ("account that you tried to reach", hard("unknown-user")),
    ("not our customer", hard("unknown-user")),
    ("no valid recipients", hard("unknown-user")),
];

/// Phrases for soft reasons checked after the hard ones.
const LATER: &[(&str, Verdict)] = &[
    ("blocked", soft("blocked")),
    ("rejected", soft("rejected")),
    ("refused", soft("rejected")),
    ("policy", soft("policy")),
    ("not allowed", soft("policy")),
    ("denied", soft("rejected")),
    ("connection", soft("network")),
    ("network", soft("network")),
    ("dns", soft("network")),
];

/// The verdict for a reply: `status` an enhanced status code, `text` the server's words.
pub fn classify(status: Option<&str>, text: &str, action: Option<&str>) -> Verdict {
    let lower = text.to_lowercase();
    let permanent =
        !matches!(action, Some("delayed")) && !status.is_some_and(|s| s.starts_with('4'));
    for table in [FIRST, HARD, LATER] {
        for (phrase, verdict) in table {
            if lower.contains(phrase) {
                if verdict.hard && !permanent {
                    return soft("deferred");
                }
                if verdict.reason == "unknown-user" && status.is_some_and(contradicts_unknown) {
                    return soft("filtered");
                }
                return *verdict;
            }
        }
    }
    if !permanent {
        return soft("deferred");
    }
    match status.map(|s| s.split('.').skip(1).collect::<Vec<_>>()) {
        Some(p) if p == ["1", "1"] || p == ["1", "3"] || p == ["1", "0"] => hard("unknown-user"),
        Some(p) if p == ["1", "2"] => hard("unknown-domain"),
        Some(p) if p == ["1", "6"] => hard("moved"),
        Some(p) if p == ["1", "7"] || p == ["1", "8"] => soft("rejected"),
        Some(p) if p == ["1", "10"] => hard("no-mail-accepted"),
        Some(p) if p == ["2", "2"] => soft("mailbox-full"),
        Some(p) if p.first() == Some(&"2") => soft("suspended"),
        Some(p) if p.first() == Some(&"7") => soft("blocked"),
        Some(p) if p.first() == Some(&"4") => soft("network"),
        Some(p) if p.first() == Some(&"3") => soft("system"),
        Some(p) if p.first() == Some(&"6") => soft("content"),
        _ => soft("other"),
    }
}

/// Whether an enhanced status code outweighs generic "user unknown" wording: x.7.x says the
/// message was refused by security or policy, which is how filters and access lists that
/// imitate an unknown user answer. The code is the machine-readable part of the reply, so such
/// a reply is read as filtered and soft.
fn contradicts_unknown(status: &str) -> bool {
    status.split('.').nth(1) == Some("7")
}

/// Whether a reply saying "user unknown" also ties the refusal to the address: it answered
/// RCPT TO, or the report says in other words that the address was not found or refused.
fn tied_to_the_address(lower: &str) -> bool {
    [
        "rcpt",
        "address not found",
        "couldn't be found",
        "invalid recipient",
        "rejected address",
        "no such user",
    ]
    .iter()
    .any(|p| lower.contains(p))
}

/// Whether a "user unknown" really says the address is gone. Content filters and access lists
/// answer "user unknown" too, most often after DATA, so the bare phrase is read as "filtered"
/// and soft (sisimai's reading) unless something ties it to the address: an x.1.x status, a
/// reply to RCPT TO, or other words for a missing address. Being wrong this way costs a few
/// more soft bounces before `soft_limit` suppresses the address; being wrong the other way
/// loses a reader. `text` is the reply with any session transcript around it.
pub fn after_data(verdict: Verdict, status: Option<&str>, text: &str) -> Verdict {
    if verdict.reason != "unknown-user" || status.is_some_and(|s| s.get(1..4) == Some(".1.")) {
        return verdict;
    }
    let lower = text.to_ascii_lowercase();
    // RFC 5321's own text for 550, "mailbox unavailable", covers policy refusals too.
    let says_unknown = |t: &str| {
        t.contains("user unknown")
            || t.contains("unknown user")
            || t.contains("mailbox unavailable")
    };
    let replied_to_data = ((lower.contains("end of data")
        || lower.contains("after data")
        || lower.contains("reply to data"))
        && says_unknown(&lower))
        || lower.split(">>> data").nth(1).is_some_and(|rest| {
            let reply = rest.trim_start().lines().next().unwrap_or_default();
            reply.starts_with("<<< 5") && !reply.starts_with("<<< 503") && says_unknown(reply)
        });
    if replied_to_data || (says_unknown(&lower) && !tied_to_the_address(&lower)) {
        soft("filtered")
    } else {
        verdict
    }
}
