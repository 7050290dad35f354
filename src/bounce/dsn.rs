//! The `field: value` blocks of a `message/delivery-status` (RFC 3464) or
//! `message/feedback-report` (RFC 5965) part, and of the DSN-like lines some servers put in
//! plain text: continuation lines unfolded, field names lower-cased, blocks split at blank lines.

/// One block of fields, in order; names lower-cased, values trimmed.
#[derive(Debug, Default, Clone)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name` (lower-case), if present and not empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(n, v)| n == name && !v.is_empty())
            .map(|(_, v)| v.as_str())
    }
}

/// Fields that appear once per recipient.
const PER_RECIPIENT: &[&str] = &["final-recipient", "original-recipient", "action", "status"];

/// Splits `text` into blocks of fields at blank lines, unfolding continuation lines.
pub fn blocks(text: &str) -> Vec<Fields> {
    let mut out = Vec::new();
    let mut current = Fields::default();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() {
            if !current.0.is_empty() {
                out.push(std::mem::take(&mut current));
            }
            continue;
        }
        if line.starts_with([' ', '\t']) {
            if let Some((_, v)) = current.0.last_mut() {
                v.push(' ');
                v.push_str(line.trim());
            }
            continue;
        }
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim();
            if !name.is_empty() && !name.contains(' ') && name.len() < 64 {
                let name = name.to_ascii_lowercase();
                // Some servers leave out the blank line between recipients: a recipient field
                // seen twice starts the next block.
                if PER_RECIPIENT.contains(&name.as_str())
                    && current.0.iter().any(|(n, _)| *n == name)
                {
                    out.push(std::mem::take(&mut current));
                }
                current.0.push((name, value.trim().to_string()));
            }
        }
    }
    if !current.0.is_empty() {
        out.push(current);
    }
    out
}

/// The address in a recipient field such as `rfc822; <user@example.com>`.
pub fn address_of(value: &str) -> Option<String> {
    let value = match value.split_once(';') {
        Some((_, rest)) => rest,
        None => value,
    };
    let value = value.trim().trim_start_matches('<');
    let value = value.split(['>', ' ', '\t']).next().unwrap_or_default();
    let value = value.trim_matches(|c: char| c == '\'' || c == ',');
    crate::bounce::text::clean_address(value)
}
