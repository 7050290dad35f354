//! Rendering: askama email templates -> complete messages (subject, HTML with inlined CSS, text, headers, DKIM).

use crate::config::Settings;
use crate::domain::Digest;

// TEMP-STUB (owned by the render helper): the real `digest_text` replaces this at merge and
// produces the same layout.
/// The digest as plain text: name, description, "Articles from the last N days", then per
/// article its number and written-out date, title, URL, summary wrapped at 72 columns, and a
/// Sources line.
pub fn digest_text(_settings: &Settings, digest: &Digest) -> String {
    let mut out = String::new();
    out.push_str(&digest.topic_name);
    out.push('\n');
    if !digest.topic_description.trim().is_empty() {
        out.push_str(&digest.topic_description);
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&format!(
        "Articles from the last {} days\n",
        digest.window_days
    ));
    for e in &digest.entries {
        out.push('\n');
        out.push_str(&format!(
            "{:02}  {}\n",
            e.position,
            e.published_at.format("%A, %B %-d, %Y")
        ));
        out.push_str(&e.title);
        out.push('\n');
        out.push_str(&e.url);
        out.push_str("\n\n");
        out.push_str(&wrap(&e.summary, 72));
        out.push('\n');
        if !e.sources.is_empty() {
            let parts: Vec<String> = e
                .sources
                .iter()
                .map(|s| match s.points {
                    Some(p) => format!("{} {p} pts", s.name),
                    None => s.name.clone(),
                })
                .collect();
            out.push_str(&format!("\nSources: {}\n", parts.join(" · ")));
        }
    }
    out
}

fn wrap(text: &str, width: usize) -> String {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines.join("\n")
}
