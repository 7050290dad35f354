//! Pure text helpers for rendering: cleaning untrusted strings (control characters, length caps),
//! accepting only absolute http(s) links, wrapping at 72 columns, and the digest's plain-text
//! layout shared by `tidings preview --format text` and the text part of every digest email.

use chrono::{DateTime, Utc};

use crate::domain::{Digest, DigestEntry, SourceLine};

/// Longest article title shown, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
/// Longest summary shown, in characters.
pub const MAX_SUMMARY_CHARS: usize = 1200;
/// Longest subject line, in characters.
pub const MAX_SUBJECT_CHARS: usize = 150;
/// Longest link accepted; longer ones are shown without a link.
pub const MAX_URL_CHARS: usize = 2048;
/// Column at which the text part wraps.
pub const WRAP_COLUMNS: usize = 72;
/// Longest topic, newsletter or source name shown, in characters.
pub const MAX_NAME_CHARS: usize = 120;

/// One line of text from untrusted input: control characters (CR, LF, NUL, tabs, bidi
/// overrides...) become spaces, runs of white space collapse to one, the ends are trimmed, and the
/// result is cut at `max_chars` characters (on a character boundary) with `…`.
pub fn clean_line(raw: &str, max_chars: usize) -> String {
    let mut out = String::with_capacity(raw.len().min(max_chars * 4));
    let mut pending_space = false;
    let mut count = 0usize;
    let mut truncated = false;
    for c in raw.chars() {
        let c = if is_unsafe_char(c) { ' ' } else { c };
        if c.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        let needed = if pending_space { 2 } else { 1 };
        if count + needed > max_chars {
            truncated = true;
            break;
        }
        if pending_space {
            out.push(' ');
            count += 1;
            pending_space = false;
        }
        out.push(c);
        count += 1;
    }
    if truncated {
        cut_with_ellipsis(&mut out, max_chars);
    }
    out
}

/// Shortens `s` (already at most `max_chars` characters) so that it plus `…` fits `max_chars`.
fn cut_with_ellipsis(s: &mut String, max_chars: usize) {
    let keep = max_chars.saturating_sub(1);
    if let Some((idx, _)) = s.char_indices().nth(keep) {
        s.truncate(idx);
    }
    let trimmed = s.trim_end().len();
    s.truncate(trimmed);
    s.push('…');
}

/// Characters never copied from input: controls, and the Unicode format characters that can
/// reorder or hide text (bidi overrides and isolates, line and paragraph separators).
fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(c,
            '\u{2028}' | '\u{2029}' | '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}' | '\u{FEFF}')
}

/// The link itself when `raw` is an absolute http(s) URL with a host and at most
/// [`MAX_URL_CHARS`] characters, serialised by the `url` crate (so quotes, spaces and control
/// characters are percent-encoded); `None` for anything else (`javascript:`, relative, data...).
pub fn safe_url(raw: &str) -> Option<String> {
    let raw = raw.trim();
    if raw.is_empty() || raw.len() > MAX_URL_CHARS {
        return None;
    }
    let url = url::Url::parse(raw).ok()?;
    if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none_or(str::is_empty) {
        return None;
    }
    let s = url.to_string();
    (s.len() <= MAX_URL_CHARS).then_some(s)
}

/// Wraps one paragraph at `width` columns (characters); words longer than a line stay whole.
pub fn wrap(paragraph: &str, width: usize) -> String {
    let mut out = String::with_capacity(paragraph.len() + paragraph.len() / width.max(1) + 1);
    let mut line_len = 0usize;
    for word in paragraph.split_whitespace() {
        let len = word.chars().count();
        if line_len > 0 && line_len + 1 + len > width {
            out.push('\n');
            line_len = 0;
        } else if line_len > 0 {
            out.push(' ');
            line_len += 1;
        }
        out.push_str(word);
        line_len += len;
    }
    out
}

/// "Tuesday, February 3, 2026" (in UTC).
pub fn long_date(t: DateTime<Utc>) -> String {
    t.format("%A, %B %-d, %Y").to_string()
}

/// "Articles from the last 7 days".
pub fn window_label(days: u32) -> String {
    match days {
        1 => "Articles from the last day".to_string(),
        n => format!("Articles from the last {n} days"),
    }
}

/// "Hacker News 302 pts", or the name alone when the points are unknown.
pub fn source_label(s: &SourceLine) -> String {
    let name = clean_line(&s.name, MAX_NAME_CHARS);
    match s.points {
        Some(p) => format!("{name} {p} pts"),
        None => name,
    }
}

/// "Sources: Hacker News 302 pts · Lobsters 41 pts", or `None` without sources.
pub fn sources_line(sources: &[SourceLine]) -> Option<String> {
    let labels: Vec<String> = sources
        .iter()
        .map(source_label)
        .filter(|l| !l.is_empty())
        .collect();
    (!labels.is_empty()).then(|| format!("Sources: {}", labels.join(" · ")))
}

/// The entries in digest order (by position).
pub fn ordered_entries(digest: &Digest) -> Vec<&DigestEntry> {
    let mut entries: Vec<&DigestEntry> = digest.entries.iter().collect();
    entries.sort_by_key(|e| e.position);
    entries
}

/// "Distributed Systems: <top title> and 19 more", without line breaks, at most
/// [`MAX_SUBJECT_CHARS`] characters; the " and N more" tail is kept whole when the title is cut.
pub fn subject_line(digest: &Digest) -> String {
    let topic = clean_line(&digest.topic_name, MAX_NAME_CHARS);
    let entries = ordered_entries(digest);
    let Some(top) = entries.first() else {
        return clean_line(&format!("{topic}: no new articles"), MAX_SUBJECT_CHARS);
    };
    let title = clean_line(&top.title, MAX_TITLE_CHARS);
    let more = entries.len() - 1;
    let tail = if more > 0 {
        format!(" and {more} more")
    } else {
        String::new()
    };
    let head = format!("{topic}: ");
    let room = MAX_SUBJECT_CHARS.saturating_sub(head.chars().count() + tail.chars().count());
    if room < 10 {
        return clean_line(&format!("{head}{title}{tail}"), MAX_SUBJECT_CHARS);
    }
    format!("{head}{}{tail}", clean_line(&title, room))
}

/// The digest body in the shared plain-text layout (no footer). It opens as the example
/// digest does: the newsletter's title line, the topic, its description and the period, each
/// a paragraph of its own, then the numbered entries.
pub fn digest_body_text(digest: &Digest, newsletter_title: &str) -> String {
    let mut out = String::with_capacity(512 + digest.entries.len() * 1600);
    let title = clean_line(newsletter_title, MAX_NAME_CHARS);
    if !title.is_empty() {
        out.push_str(&title);
        out.push_str("\n\n");
    }
    out.push_str(&clean_line(&digest.topic_name, MAX_NAME_CHARS));
    out.push('\n');
    let description = clean_line(&digest.topic_description, 1000);
    if !description.is_empty() {
        out.push('\n');
        out.push_str(&wrap(&description, WRAP_COLUMNS));
        out.push('\n');
    }
    out.push('\n');
    out.push_str(&window_label(digest.window_days));
    out.push('\n');
    for entry in ordered_entries(digest) {
        out.push('\n');
        out.push_str(&format!(
            "{:02}  {}\n",
            entry.position,
            long_date(entry.published_at)
        ));
        out.push_str(&clean_line(&entry.title, MAX_TITLE_CHARS));
        out.push('\n');
        if let Some(url) = safe_url(&entry.url) {
            out.push_str(&url);
            out.push('\n');
        }
        let summary = clean_line(&entry.summary, MAX_SUMMARY_CHARS);
        if !summary.is_empty() {
            out.push('\n');
            out.push_str(&wrap(&summary, WRAP_COLUMNS));
            out.push('\n');
        }
        if let Some(line) = sources_line(&entry.sources) {
            out.push('\n');
            out.push_str(&line);
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_line_strips_controls_and_collapses_space() {
        assert_eq!(clean_line("  a\r\nb\t\tc\0d  ", 100), "a b c d");
        assert_eq!(clean_line("x\u{202E}y\u{2028}z", 100), "x y z");
        assert_eq!(clean_line("", 10), "");
    }

    #[test]
    fn clean_line_caps_on_a_char_boundary() {
        let s = clean_line(&"é".repeat(500), 300);
        assert_eq!(s.chars().count(), 300);
        assert!(s.ends_with('…'));
        assert_eq!(clean_line("abc", 3), "abc");
        assert_eq!(clean_line("abcd", 3), "ab…");
        assert_eq!(clean_line("ab cd", 4), "ab…");
    }

    #[test]
    fn only_absolute_http_links_are_accepted() {
        assert_eq!(
            safe_url("https://blog.comma.ai/datacenter/").as_deref(),
            Some("https://blog.comma.ai/datacenter/")
        );
        assert!(
            safe_url("http://example.com/a b\"c")
                .unwrap()
                .contains("a%20b%22c")
        );
        for bad in [
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>",
            "/relative",
            "ftp://example.com/",
            "mailto:a@b.c",
            "",
        ] {
            assert_eq!(safe_url(bad), None, "{bad}");
        }
        let long = format!("https://example.com/{}", "a".repeat(3000));
        assert_eq!(safe_url(&long), None);
    }

    #[test]
    fn wrap_keeps_lines_within_72_columns() {
        let text = "word ".repeat(100);
        let wrapped = wrap(&text, 72);
        assert!(wrapped.lines().all(|l| l.chars().count() <= 72));
        assert_eq!(wrapped.split_whitespace().count(), 100);
        let long = format!("short {} end", "x".repeat(100));
        assert_eq!(wrap(&long, 72).lines().count(), 3);
    }

    #[test]
    fn dates_are_written_out() {
        use chrono::TimeZone;
        let t = Utc.with_ymd_and_hms(2026, 2, 3, 23, 59, 0).unwrap();
        assert_eq!(long_date(t), "Tuesday, February 3, 2026");
    }
}
