//! `SubscriberEmail`: an address parsed once (trimmed, Unicode NFC, domain lower-cased and
//! IDNA-normalised, local part's case kept as given) and rejected with a reason when it contains
//! control characters, spaces, or is malformed or over-long. One mailbox has one spelling:
//! `josé@` typed in NFC or NFD, and `user@bücher.de` or `user@xn--bcher-kva.de`, parse to the
//! same value, so the store's key and the suppression list's hash are the same too.

use std::fmt;

use unicode_normalization::UnicodeNormalization;

/// Why an address was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EmailError {
    #[error("email address is empty")]
    Empty,
    #[error("email address contains a line break or NUL character")]
    ControlCharacter,
    #[error("email address contains a space")]
    Whitespace,
    #[error("email address is longer than 254 characters")]
    TooLong,
    #[error("email address needs exactly one @")]
    MissingAt,
    #[error("the part before @ is empty or longer than 64 characters")]
    BadLocalPart,
    #[error("the domain after @ is not a valid host name")]
    BadDomain,
    #[error("email address is malformed: {0}")]
    Malformed(String),
}

/// A valid subscriber address: NFC, the domain lower-cased in its Unicode (U-label) form, which
/// maps one-to-one to its IDNA A-label ([`SubscriberEmail::ascii_domain`]); the local part keeps
/// its case.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize)]
#[serde(transparent)]
pub struct SubscriberEmail(String);

impl SubscriberEmail {
    pub fn parse(raw: &str) -> Result<SubscriberEmail, EmailError> {
        if raw.chars().any(|c| c == '\r' || c == '\n' || c == '\0') {
            return Err(EmailError::ControlCharacter);
        }
        let s = raw.trim();
        if s.is_empty() {
            return Err(EmailError::Empty);
        }
        if s.chars().any(|c| c.is_whitespace()) {
            return Err(EmailError::Whitespace);
        }
        if s.chars().any(|c| c.is_control()) {
            return Err(EmailError::ControlCharacter);
        }
        if s.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let s: String = s.nfc().collect();
        let (local, domain) = match s.split_once('@') {
            Some((l, d)) if !d.contains('@') => (l, d),
            _ => return Err(EmailError::MissingAt),
        };
        if local.is_empty() || local.len() > 64 {
            return Err(EmailError::BadLocalPart);
        }
        let local_ok = local.chars().all(|c| {
            c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~.".contains(c) || !c.is_ascii()
        }) && !local.starts_with('.')
            && !local.ends_with('.')
            && !local.contains("..");
        if !local_ok {
            return Err(EmailError::BadLocalPart);
        }
        let ascii = ascii_domain(domain).ok_or(EmailError::BadDomain)?;
        // Back from the A-label: both spellings of an internationalised domain meet here.
        let (domain, decoded) = idna::domain_to_unicode(&ascii);
        if decoded.is_err() {
            return Err(EmailError::BadDomain);
        }
        if local.len() + 1 + ascii.len() > 254 {
            return Err(EmailError::TooLong);
        }
        let normalised = format!("{local}@{domain}");
        // lettre must accept it too, since it is what ends up in the To header.
        normalised
            .parse::<lettre::Address>()
            .map_err(|e| EmailError::Malformed(e.to_string()))?;
        Ok(SubscriberEmail(normalised))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The case-insensitive key that makes an address unique.
    pub fn key(&self) -> String {
        self.0.to_lowercase()
    }

    pub fn domain(&self) -> &str {
        self.0.rsplit_once('@').map(|(_, d)| d).unwrap_or("")
    }

    /// The domain as its IDNA A-label (`xn--bcher-kva.de` for `bücher.de`): what DNS and a relay
    /// without SMTPUTF8 understand.
    pub fn ascii_domain(&self) -> String {
        ascii_domain(self.domain()).unwrap_or_else(|| self.domain().to_string())
    }
}

/// The domain of an address as a lower-case IDNA A-label whose labels are letters, digits and
/// inner hyphens (at most 63 octets each, 253 in all, at least two labels); None when it is not
/// a valid host name.
fn ascii_domain(domain: &str) -> Option<String> {
    if domain.ends_with('.') {
        return None;
    }
    let ascii = idna::domain_to_ascii(domain).ok()?;
    let labels: Vec<&str> = ascii.split('.').collect();
    let ok = ascii.len() <= 253
        && labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
    ok.then_some(ascii)
}

/// The all-ASCII form of an envelope address for a relay that does not offer SMTPUTF8: the
/// domain as its A-label. None when the local part is not ASCII (no ASCII form exists).
pub fn ascii_envelope_address(address: &str) -> Option<String> {
    let (local, domain) = address.rsplit_once('@')?;
    if !local.is_ascii() {
        return None;
    }
    Some(format!("{local}@{}", ascii_domain(domain)?))
}

impl fmt::Display for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for SubscriberEmail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SubscriberEmail({})", self.0)
    }
}

impl AsRef<str> for SubscriberEmail {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// Parses a configured mailbox such as `Tidings <news@example.com>`, refusing control characters.
pub fn parse_mailbox(raw: &str) -> Result<lettre::message::Mailbox, String> {
    if raw.chars().any(|c| c.is_control()) {
        return Err("contains a control character".into());
    }
    raw.trim()
        .parse::<lettre::message::Mailbox>()
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn trims_and_lowercases_the_domain_only() {
        let e = SubscriberEmail::parse(" Bob@Example.COM ").unwrap();
        assert_eq!(e.as_str(), "Bob@example.com");
        assert_eq!(e.key(), "bob@example.com");
    }

    #[test]
    fn rejects_with_reasons() {
        use EmailError::*;
        let cases = [
            ("", Empty),
            ("   ", Empty),
            ("bob@example.com\r\nBcc: x@y.z", ControlCharacter),
            ("bob\n@example.com", ControlCharacter),
            ("bob\0@example.com", ControlCharacter),
            ("bo b@example.com", Whitespace),
            ("bob.example.com", MissingAt),
            ("a@b@example.com", MissingAt),
            ("@example.com", BadLocalPart),
            ("bob@", BadDomain),
            ("bob@localhost", BadDomain),
            ("bob@exa_mple.com", BadDomain),
            ("bob@-example.com", BadDomain),
            ("bob..x@example.com", BadLocalPart),
            ("<bob>@example.com", BadLocalPart),
        ];
        for (input, want) in cases {
            assert_eq!(SubscriberEmail::parse(input), Err(want), "{input:?}");
        }
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            SubscriberEmail::parse(&long),
            Err(BadLocalPart).or(Err(TooLong))
        );
        let long_domain = format!("bob@{}.com", "a".repeat(260));
        assert_eq!(SubscriberEmail::parse(&long_domain), Err(TooLong));
    }

    #[test]
    fn one_mailbox_has_one_spelling() {
        let parse = |raw: &str| SubscriberEmail::parse(raw).unwrap();
        let nfc = parse("jos\u{e9}@example.com");
        let nfd = parse("jose\u{301}@example.com");
        assert_eq!(nfc, nfd);
        assert_eq!(nfc.as_str(), "jos\u{e9}@example.com");
        assert_eq!(nfc.key(), nfd.key());
        let unicode = parse("user@b\u{fc}cher.de");
        for other in [
            "user@xn--bcher-kva.de",
            "user@B\u{dc}CHER.de",
            "user@XN--BCHER-KVA.DE",
        ] {
            let other = parse(other);
            assert_eq!(other, unicode);
            assert_eq!(other.key(), unicode.key());
        }
        assert_eq!(unicode.as_str(), "user@b\u{fc}cher.de");
        assert_eq!(unicode.ascii_domain(), "xn--bcher-kva.de");
        assert_eq!(parse("bob@example.com").ascii_domain(), "example.com");
        assert_eq!(
            SubscriberEmail::parse("user@xn--zz.de"),
            Err(EmailError::BadDomain),
            "an A-label that decodes to nothing"
        );
    }

    #[test]
    fn envelope_addresses_have_an_ascii_form_when_the_local_part_is_ascii() {
        assert_eq!(
            ascii_envelope_address("user@b\u{fc}cher.de").as_deref(),
            Some("user@xn--bcher-kva.de")
        );
        assert_eq!(
            ascii_envelope_address("bob@example.com").as_deref(),
            Some("bob@example.com")
        );
        assert_eq!(ascii_envelope_address("jos\u{e9}@b\u{fc}cher.de"), None);
    }

    proptest! {
        #[test]
        fn never_accepts_control_characters(local in "[a-z]{1,10}", c in prop::sample::select(vec!['\r', '\n', '\0'])) {
            let raw = format!("{local}{c}@example.com");
            prop_assert!(SubscriberEmail::parse(&raw).is_err());
        }

        #[test]
        fn parse_is_idempotent(local in "[A-Za-z0-9._%+-]{1,20}", domain in "[A-Za-z]{1,10}\\.[A-Za-z]{2,4}") {
            let raw = format!("{local}@{domain}");
            if let Ok(e) = SubscriberEmail::parse(&raw) {
                let again = SubscriberEmail::parse(e.as_str()).unwrap();
                prop_assert_eq!(&again, &e);
                prop_assert_eq!(e.domain(), domain.to_lowercase());
            }
        }
    }
}
