//! Finding failed recipients and their replies in the prose of bounces that carry no
//! delivery-status part (qmail, Exim, older Postfix and Sendmail, Exchange, webmail
//! providers): addresses near failure wording, the enhanced status code and the SMTP reply code
//! near each, with the quoted original message cut off first.

use std::sync::LazyLock;

use regex::Regex;

static ADDRESS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r#"(?:"[^"\r\n<>@]{1,64}"|[A-Za-z0-9._%+\-=/!#$&'*^`{|}~]{1,64})@[A-Za-z0-9\-]{1,63}(?:\.[A-Za-z0-9\-]{1,63})+"#)
        .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

static STATUS: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[^0-9.])([245])\.([0-9]{1,3})\.([0-9]{1,3})(?:[^0-9.]|\.(?:[^0-9]|$)|$)")
        .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

static SMTP_CODE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"(?:^|[\s:;(\[<>]|said:)([245][0-5][0-9])(?:[ \-]|$)")
        .unwrap_or_else(|_| unreachable!("a constant pattern"))
});

/// Lines that start the quoted original message in a plain-text bounce.
const ORIGINAL_MARKERS: &[&str] = &[
    "------ this is a copy of the message",
    "--- below this line is a copy of the message",
    "----- original message -----",
    "original message follows",
    "------ original message",
    "--- the header of the original message",
    "----- unsent message follows",
    "content-type: message/rfc822",
    "--- original message header",
    "original message headers:",
    "return-path: <",
    "received: from",
];

/// `value` as an address when it looks like one: local part and a dotted domain, the domain
/// lower-cased, at most 254 characters.
pub fn clean_address(value: &str) -> Option<String> {
    let value = value
        .trim()
        .trim_start_matches(['<', '\'', '(', '['])
        .trim_end_matches(['>', '"', '\'', ')', ']', '.', ',', ';', ':']);
    // A quote only opens a quoted local part when it closes before the `@`.
    let value = match value.strip_prefix('"') {
        Some(rest) if !rest.split('@').next().unwrap_or_default().contains('"') => rest,
        _ => value,
    };
    let value = value.strip_prefix("mailto:").unwrap_or(value);
    if value.len() > 254 || value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return None;
    }
    let (local, domain) = value.rsplit_once('@')?;
    if local.is_empty() || !domain.contains('.') || domain.starts_with('.') || local.contains('@') {
        return None;
    }
    Some(format!("{local}@{}", domain.to_lowercase()))
}

/// Every address in `text`, in order, with its byte offset.
pub fn addresses(text: &str) -> Vec<(usize, String)> {
    ADDRESS
        .find_iter(text)
        .filter_map(|m| clean_address(m.as_str()).map(|a| (m.start(), a)))
        .collect()
}

/// The first enhanced status code in `text`, such as "5.1.1": the first failure (4.x.x or
/// 5.x.x) when there is one, since a session transcript starts with successes.
pub fn status_in(text: &str) -> Option<String> {
    first_failure(
        STATUS
            .captures_iter(text)
            .map(|c| format!("{}.{}.{}", &c[1], &c[2], &c[3])),
        |s| !s.starts_with('2'),
    )
}

/// The first SMTP reply code in `text` (250, 421, 550, ...), a failure first as for
/// [`status_in`].
pub fn smtp_code_in(text: &str) -> Option<u16> {
    first_failure(
        SMTP_CODE
            .captures_iter(text)
            .filter_map(|c| c[1].parse().ok()),
        |c| *c >= 400,
    )
}

/// The first of `all` that `failed` says is a failure, else the first of all.
fn first_failure<T>(mut all: impl Iterator<Item = T>, failed: impl Fn(&T) -> bool) -> Option<T> {
    let first = all.next()?;
    if failed(&first) {
        return Some(first);
    }
    Some(all.find(|x| failed(x)).unwrap_or(first))
}

/// `text` up to the quoted original message.
pub fn before_original(text: &str) -> &str {
    let lower = text.to_ascii_lowercase();
    let mut end = text.len();
    let mut line_start = 0;
    for line in lower.split_inclusive('\n') {
        let t = line.trim();
        if line_start > 0 && ORIGINAL_MARKERS.iter().any(|m| t.starts_with(m)) {
            end = line_start;
            break;
        }
        line_start += line.len();
    }
    text.get(..end).unwrap_or(text)
}

/// The failed recipients a plain-text bounce names, each with the text that follows it (its
/// reply). An address is a recipient when it stands at the start of a line (qmail's `<a@b>:`,
/// Exim's indented address, Postfix's `<a@b>: host said`), or else the first address that is
/// not `skip` (the bounce's own sender and recipient).
pub fn recipients(text: &str, skip: &[String]) -> Vec<(String, String)> {
    let found: Vec<(usize, String)> = addresses(text)
        .into_iter()
        .filter(|(_, a)| !skip.iter().any(|s| s.eq_ignore_ascii_case(a)))
        .filter(|(_, a)| !is_daemon(a))
        .collect();
    let at_line_start: Vec<&(usize, String)> = found
        .iter()
        .enumerate()
        .filter(|(_, (at, _))| {
            let line_start = text[..*at].rfind('\n').map_or(0, |i| i + 1);
            names_a_recipient(&text[line_start..*at])
        })
        .map(|(i, entry)| angle_address_after(text, &found, i).unwrap_or(entry))
        .collect();
    let lower = text.to_ascii_lowercase();
    let after_rcpt_to: Vec<&(usize, String)> = found
        .iter()
        .filter(|(at, _)| {
            let line_start = lower[..*at].rfind('\n').map_or(0, |i| i + 1);
            lower[line_start..*at]
                .trim()
                .trim_end_matches('<')
                .trim_end()
                .ends_with("rcpt to:")
        })
        .take(1)
        .collect();
    let chosen: Vec<&(usize, String)> = if !after_rcpt_to.is_empty() && at_line_start.is_empty() {
        after_rcpt_to
    } else if at_line_start.is_empty() {
        found.iter().take(1).collect()
    } else {
        at_line_start
    };
    let mut out: Vec<(String, String)> = Vec::new();
    for (i, (at, address)) in chosen.iter().enumerate() {
        if out.iter().any(|(a, _)| a.eq_ignore_ascii_case(address)) {
            continue;
        }
        let end = chosen
            .get(i + 1)
            .map_or(text.len(), |(next, _)| *next)
            .min(at.saturating_add(2000))
            .min(text.len());
        let mut end = end.max(*at);
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        out.push((address.clone(), own_lines(&text[*at..end]).to_string()));
    }
    out
}

/// The address in angle brackets that directly follows `found[i]` on the same line, as in
/// `name@example.com <user@example.org>: ...`: the first is only a display name (RFC 5322's
/// name-addr form) and the bracketed one is the recipient.
fn angle_address_after<'a>(
    text: &str,
    found: &'a [(usize, String)],
    i: usize,
) -> Option<&'a (usize, String)> {
    let (at, address) = found.get(i)?;
    let next = found.get(i + 1)?;
    let between = text.get(at + address.len()..next.0)?;
    let between = between.trim_start_matches([' ', '\t']);
    (between == "<").then_some(next)
}

/// A recipient's reply up to the next Sendmail-style status line (`550 <other>... reason` or
/// `421 host (smtp)... Deferred`) or the next `While talking to` or `>>>` transcript entry:
/// those belong to another address or host.
fn own_lines(reply: &str) -> &str {
    let mut offset = 0;
    for (n, line) in reply.split_inclusive('\n').enumerate() {
        let t = line.trim_start();
        let code_line = t.len() > 4
            && t.as_bytes()[..3].iter().all(u8::is_ascii_digit)
            && t.as_bytes()[3] == b' '
            && t.contains("... ");
        let lower = t.to_ascii_lowercase();
        if n > 0 && (code_line || lower.starts_with("while talking to") || t.starts_with(">>> ")) {
            return &reply[..offset];
        }
        offset += line.len();
    }
    reply
}

/// Addresses of mail systems, never a reader's.
fn is_daemon(address: &str) -> bool {
    let local = address
        .split('@')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    matches!(
        local.as_str(),
        "mailer-daemon" | "mail-daemon" | "mailerdaemon"
    )
}

/// Whether the text before an address on its line introduces a recipient: nothing but
/// punctuation (qmail, Exim, Postfix), an SMTP reply code (Sendmail's transcript lines), or a
/// label such as "Recipient address:".
fn names_a_recipient(prefix: &str) -> bool {
    let prefix = prefix.trim().to_ascii_lowercase();
    let prefix = prefix.trim_end_matches(['<', ' ', '"']);
    if prefix
        .chars()
        .all(|c| c.is_whitespace() || matches!(c, '<' | '>' | '"' | '*' | '-' | ':'))
    {
        return true;
    }
    if prefix.len() == 3 && prefix.chars().all(|c| c.is_ascii_digit()) {
        return true;
    }
    [
        "recipient address:",
        "recipient:",
        "original-recipient:",
        "final-recipient:",
    ]
    .iter()
    .any(|label| prefix.ends_with(label))
}
