//! Tests of rendering through the pure API: every message is parsed back with mail-parser, and
//! DKIM signatures are checked with mail-auth (an implementation independent of lettre).

use super::*;
use crate::config::{DkimSettings, Secret};
use crate::domain::{Digest, DigestEntry, SourceLine};
use crate::store::DeliveryKind;
use crate::tokens::{Purpose, TokenSigner};
use chrono::{DateTime, Duration, TimeZone, Utc};
use mail_parser::{MessageParser, MimeHeaders};
use text::safe_url;

const KEY_PEM: &str = include_str!("../../tests/fixtures/dkim-test-key.pem");
const KEY_PUBLIC_B64: &str = include_str!("../../tests/fixtures/dkim-test-key.pub.b64");
const KEY_PKCS8_PEM: &str = include_str!("../../tests/fixtures/dkim-test-key-pkcs8.pem");

fn settings() -> Settings {
    let mut s = Settings::default();
    s.newsletter.title = "Tidings".into();
    s.newsletter.base_url = "https://news.example.com/".into();
    s.newsletter.from = "Tidings Digest <digest@example.com>".parse().unwrap();
    s.newsletter.reply_to = Some("Editors <editors@example.com>".parse().unwrap());
    s.newsletter.postal_address = "Tidings, 1 Example Street, 12345 Exampletown".into();
    s.newsletter.secret = Secret::new("render-test-secret-0123456789");
    s
}

fn signer() -> TokenSigner {
    TokenSigner::from_settings(&settings().newsletter)
}

fn at(y: i32, m: u32, d: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(y, m, d, 9, 30, 0).unwrap()
}

fn entry(position: u32, title: &str, url: &str, points: Option<i64>) -> DigestEntry {
    DigestEntry {
        position,
        article_id: i64::from(position),
        title: title.into(),
        url: url.into(),
        domain: url::Url::parse(url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default(),
        published_at: at(2026, 2, 3) + Duration::days(i64::from(position % 5)),
        summary: format!(
            "Summary of article {position}: {}",
            "a sentence about distributed systems and their failure modes. ".repeat(4)
        ),
        score: 100.0 - f64::from(position),
        sources: vec![SourceLine {
            name: "Hacker News".into(),
            points,
            comments: Some(12),
            discussion_url: Some(format!("https://news.ycombinator.com/item?id={position}")),
        }],
    }
}

fn digest(entries: Vec<DigestEntry>) -> Digest {
    Digest {
        issue_id: Some(17),
        topic_slug: "distributed-systems".into(),
        topic_name: "Distributed Systems".into(),
        topic_description:
            "Consensus, fault tolerance and the architecture of systems that span machines.".into(),
        window_start: at(2026, 2, 2),
        window_end: at(2026, 2, 9),
        window_days: 7,
        entries,
    }
}

fn twenty() -> Digest {
    let mut entries = vec![
        entry(
            1,
            "Don't rent the cloud, own instead",
            "https://blog.comma.ai/datacenter/",
            Some(302),
        ),
        entry(
            2,
            "The Day the Telnet Died",
            "https://www.greynoise.io/blog/telnet",
            Some(280),
        ),
    ];
    for i in 3..=20 {
        entry_push(&mut entries, i);
    }
    digest(entries)
}

fn entry_push(entries: &mut Vec<DigestEntry>, i: u32) {
    entries.push(entry(
        i,
        &format!("Article number {i} about queues & consensus"),
        &format!("https://example.org/posts/{i}?ref=feed&x=1"),
        if i.is_multiple_of(2) {
            Some(100 + i64::from(i))
        } else {
            None
        },
    ));
}

fn recipient(id: i64) -> Recipient {
    Recipient {
        subscriber_id: id,
        email: SubscriberEmail::parse(&format!("reader{id}@example.net")).unwrap(),
    }
}

fn now() -> DateTime<Utc> {
    at(2026, 2, 9)
}

fn dkim() -> DkimSigner {
    DkimSigner::from_pem("example.com", "tidings2026", KEY_PEM).unwrap()
}

/// The confirmation, through the one transactional builder.
fn confirmation_message(
    settings: &Settings,
    tokens: &TokenSigner,
    dkim: Option<&DkimSigner>,
    recipient: &Recipient,
    topic_names: &[String],
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let email = Transactional::Confirm { topic_names };
    transactional_message(settings, tokens, dkim, recipient, &email, now)
}

/// The link to the preferences page, through the one transactional builder, without DKIM.
fn preferences_link_message(
    settings: &Settings,
    tokens: &TokenSigner,
    recipient: &Recipient,
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, RenderError> {
    let email = Transactional::PreferencesLink;
    transactional_message(settings, tokens, None, recipient, &email, now)
}

struct Parsed {
    headers: Vec<(String, String)>,
    parts: Vec<String>,
    text: String,
    html: String,
    subject: String,
}

fn parse(raw: &[u8]) -> Parsed {
    let msg = MessageParser::default().parse(raw).expect("message parses");
    let headers = msg
        .headers()
        .iter()
        .map(|h| {
            let name = h.name().to_string();
            let value = msg
                .header_raw(h.name())
                .map(|v| v.trim().to_string())
                .unwrap_or_default();
            (name, value)
        })
        .collect();
    let parts = msg
        .parts
        .iter()
        .filter_map(|p| p.content_type())
        .map(|ct| format!("{}/{}", ct.ctype(), ct.subtype().unwrap_or_default()))
        .collect();
    Parsed {
        headers,
        parts,
        text: msg.body_text(0).unwrap_or_default().into_owned(),
        html: msg.body_html(0).unwrap_or_default().into_owned(),
        subject: msg.subject().unwrap_or_default().to_string(),
    }
}

impl Parsed {
    fn count(&self, name: &str) -> usize {
        self.headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .count()
    }
    fn header(&self, name: &str) -> &str {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .unwrap_or("")
    }
}

/// Text as css-inline's serialiser writes it in element content.
fn html_text(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn unsubscribe_url_of(p: &Parsed) -> String {
    let v = p.header("List-Unsubscribe");
    v.trim_start_matches('<').trim_end_matches('>').to_string()
}

#[test]
fn digest_message_has_exactly_one_of_each_required_header() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(5), now())
        .unwrap();
    let p = parse(&out.raw);
    for name in ["From", "To", "Date", "Subject", "Message-ID", "Reply-To"] {
        assert_eq!(p.count(name), 1, "{name}: {:?}", p.headers);
    }
    assert_eq!(p.header("To"), "reader5@example.net");
    assert!(p.header("From").contains("digest@example.com"));
    assert!(p.header("Reply-To").contains("editors@example.com"));
    assert_eq!(out.envelope_from, "digest@example.com");
    assert_eq!(out.to.as_str(), "reader5@example.net");
    assert_eq!(p.header("Message-ID"), out.message_id);
    // CRLF only, lines within 998 octets.
    let raw = String::from_utf8(out.raw.clone()).unwrap();
    assert!(!raw.replace("\r\n", "").contains('\n'));
    assert!(!raw.replace("\r\n", "").contains('\r'));
    assert!(raw.split("\r\n").all(|l| l.len() <= 998));
}

#[test]
fn text_part_comes_first_and_both_parts_carry_the_same_titles_and_links() {
    let d = twenty();
    let prepared = PreparedDigest::prepare(&settings(), &d, None).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(5), now())
        .unwrap();
    let p = parse(&out.raw);
    assert_eq!(
        p.parts,
        vec!["multipart/alternative", "text/plain", "text/html"],
        "{:?}",
        p.parts
    );
    let unsubscribe = unsubscribe_url_of(&p);
    assert!(p.text.contains(&unsubscribe), "text lacks {unsubscribe}");
    assert!(
        p.html.contains(&format!("href=\"{unsubscribe}\"")),
        "html lacks {unsubscribe}"
    );
    for e in &d.entries {
        assert!(p.text.contains(&e.title), "text lacks {}", e.title);
        assert!(
            p.html.contains(&html_text(&e.title)),
            "html lacks {}",
            e.title
        );
        let url = safe_url(&e.url).unwrap();
        assert!(p.text.contains(&url), "text lacks {url}");
        assert!(
            p.html.contains(&format!("href=\"{}\"", escape_html(&url))),
            "html lacks {url}"
        );
    }
    for part in [&p.text, &p.html] {
        assert!(part.contains("https://news.example.com/archive/distributed-systems/17"));
        assert!(part.contains("https://news.example.com/preferences/"));
        assert!(part.contains("1 Example Street"));
        assert!(
            part.contains(
                "You receive this because you subscribed to Distributed Systems on Tidings"
            )
        );
    }
}

#[test]
fn list_headers_are_exact_and_the_token_leaves_the_digest_topic() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let tokens = signer();
    let out = prepared
        .message_for(&tokens, &recipient(42), now())
        .unwrap();
    let p = parse(&out.raw);
    let token = tokens.unsubscribe(42, "distributed-systems");
    assert_eq!(
        p.header("List-Unsubscribe"),
        format!("<https://news.example.com/unsubscribe/{token}>")
    );
    assert_eq!(
        p.header("List-Unsubscribe-Post"),
        "List-Unsubscribe=One-Click"
    );
    assert_eq!(p.header("List-Id"), "<distributed-systems.example.com>");
    for name in ["List-Unsubscribe", "List-Unsubscribe-Post", "List-Id"] {
        assert_eq!(p.count(name), 1, "{name}");
    }
    let claims = tokens.verify(&token, Purpose::Unsubscribe, now()).unwrap();
    assert_eq!(claims.subscriber_id, 42);
    assert_eq!(claims.topic.as_deref(), Some("distributed-systems"));
    // The preferences link in the body carries a preferences token for the same subscriber.
    let prefs = format!(
        "https://news.example.com/preferences/{}",
        tokens.preferences(42)
    );
    assert!(p.text.contains(&prefs));
}

#[test]
fn message_id_is_stable_across_calls_and_unique_per_subscriber_and_issue() {
    let s = settings();
    let prepared = PreparedDigest::prepare(&s, &twenty(), None).unwrap();
    let tokens = signer();
    let a1 = prepared.message_for(&tokens, &recipient(1), now()).unwrap();
    let a2 = prepared
        .message_for(&tokens, &recipient(1), now() + Duration::hours(2))
        .unwrap();
    let b = prepared.message_for(&tokens, &recipient(2), now()).unwrap();
    assert_eq!(a1.message_id, a2.message_id);
    assert_ne!(a1.message_id, b.message_id);
    let mut next_issue = twenty();
    next_issue.issue_id = Some(18);
    let other = PreparedDigest::prepare(&s, &next_issue, None).unwrap();
    let c = other.message_for(&tokens, &recipient(1), now()).unwrap();
    assert_ne!(a1.message_id, c.message_id);
    // RFC 5322 msg-id shape: <left@right> with no spaces.
    for id in [&a1.message_id, &b.message_id, &c.message_id] {
        assert!(id.starts_with('<') && id.ends_with('>'), "{id}");
        let inner = &id[1..id.len() - 1];
        assert_eq!(inner.matches('@').count(), 1, "{id}");
        assert!(!inner.contains([' ', '<', '>']), "{id}");
        assert!(inner.ends_with("@example.com"), "{id}");
    }
}

#[test]
fn subject_names_the_top_title_and_how_many_more() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    assert_eq!(
        prepared.subject(),
        "Distributed Systems: Don't rent the cloud, own instead and 19 more"
    );
    let single = digest(vec![entry(1, "Only one", "https://example.org/1", None)]);
    let prepared = PreparedDigest::prepare(&settings(), &single, None).unwrap();
    assert_eq!(prepared.subject(), "Distributed Systems: Only one");
    let out = prepared
        .message_for(&signer(), &recipient(1), now())
        .unwrap();
    assert_eq!(parse(&out.raw).subject, "Distributed Systems: Only one");
}

#[test]
fn hostile_titles_are_escaped_stripped_and_capped() {
    let hostile = [
        "<script>alert('x')</script> Totally normal",
        "\"><img src=x onerror=alert(1)> broken out",
        "Line one\r\nBcc: victim@example.org\r\n\r\nbody",
        &"A".repeat(10 * 1024),
    ];
    let mut entries: Vec<DigestEntry> = hostile
        .iter()
        .enumerate()
        .map(|(i, t)| entry(i as u32 + 1, t, "https://example.org/x", Some(1)))
        .collect();
    entries[1].url = "javascript:alert(document.cookie)".into();
    entries[2].summary = "<b>bold</b>\r\n".repeat(2000);
    entries[3].sources[0].name = "Evil\r\nSource<script>".into();
    entries[3].sources[0].discussion_url = Some("data:text/html,<script>alert(1)</script>".into());
    let d = digest(entries);
    let prepared = PreparedDigest::prepare(&settings(), &d, None).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(9), now())
        .unwrap();
    let p = parse(&out.raw);

    let lower = p.html.to_lowercase();
    assert!(!lower.contains("<script"), "script tag in html");
    assert!(!lower.contains("<img"), "img tag in html");
    assert!(!lower.contains("javascript:alert"), "javascript link kept");
    assert!(!lower.contains("href=\"data:"), "data link kept");
    assert!(lower.contains("&lt;script&gt;"), "script not shown escaped");
    assert!(!regex_like_event_handler(&p.html), "on* attribute in html");
    // The hostile title's CR/LF never reach a header; the subject is one capped line.
    assert!(!p.subject.contains(['\r', '\n']));
    assert!(p.subject.chars().count() <= text::MAX_SUBJECT_CHARS);
    assert_eq!(p.count("Bcc"), 0);
    assert!(p.text.contains("Line one Bcc: victim@example.org body"));
    // 10 KB titles and long summaries are capped.
    let longest_a_run = p
        .text
        .split(|c: char| c != 'A')
        .map(str::len)
        .max()
        .unwrap();
    assert!(longest_a_run <= text::MAX_TITLE_CHARS, "{longest_a_run}");
    assert!(
        p.text
            .contains(&format!("{}…", "A".repeat(text::MAX_TITLE_CHARS - 1)))
    );
    assert!(out.raw.len() < 64 * 1024, "{} bytes", out.raw.len());
}

/// `<tag ... onsomething=` anywhere in markup (check-email.py's rule).
fn regex_like_event_handler(html: &str) -> bool {
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        let tail = &rest[start + 1..];
        let end = tail.find('>').unwrap_or(tail.len());
        let tag = tail[..end].to_lowercase();
        let mut words = tag.split(|c: char| c.is_whitespace());
        words.next();
        if words.any(|w| {
            w.starts_with("on")
                && w[2..].chars().take_while(char::is_ascii_lowercase).count() > 0
                && w.contains('=')
        }) {
            return true;
        }
        rest = &tail[end..];
    }
    false
}

#[test]
fn html_is_an_inlined_table_layout_with_dark_mode_and_a_preheader() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let html = prepared.html_for(&signer(), &recipient(3));
    assert!(html.starts_with("<!DOCTYPE html>"), "{}", &html[..40]);
    assert!(html.contains("role=\"presentation\""));
    assert!(html.contains("width=\"640\""));
    assert!(
        html.contains("max-width: 640px"),
        "container width not inlined"
    );
    assert!(html.contains("<meta name=\"color-scheme\" content=\"light dark\">"));
    assert!(
        html.contains("prefers-color-scheme: dark"),
        "dark-mode rules dropped"
    );
    // Regular rules are inlined: the class rule for titles became a style attribute.
    assert!(html.contains("class=\"title\" style=\""), "css not inlined");
    assert!(!html.contains(".title {"), "inlined rules kept in <style>");
    let pre_start = html.find("class=\"preheader\"").unwrap();
    let pre = &html[pre_start..pre_start + 600];
    assert!(pre.contains("display: none"), "{pre}");
    assert!(pre.contains("Don't rent the cloud, own instead"), "{pre}");
    assert!(pre.contains("The Day the Telnet Died"));
    assert!(!html.to_lowercase().contains("<script"));
    assert!(!html.to_lowercase().contains("<link"));
    assert!(!html.contains('\u{1}'), "placeholder left in html");
}

#[test]
fn digest_text_follows_the_shared_layout() {
    let mut e = entry(
        1,
        "Don't rent the cloud, own instead",
        "https://blog.comma.ai/datacenter/",
        Some(302),
    );
    e.published_at = at(2026, 2, 3);
    e.summary = "In this detailed overview, Harald Schäfer, CTO of comma.ai, advocates for companies to build and operate their own data centers rather than relying on cloud providers.".into();
    e.sources.push(SourceLine {
        name: "Lobsters".into(),
        points: Some(41),
        comments: None,
        discussion_url: None,
    });
    let mut e2 = entry(
        2,
        "Untitled feed item",
        "https://feeds.example.org/item",
        None,
    );
    e2.published_at = at(2026, 2, 10);
    e2.summary = String::new();
    e2.sources[0].name = "Some Feed".into();
    let mut d = digest(vec![e2, e]);
    d.topic_description = "Consensus and fault tolerance.".into();
    let text = digest_text(&d, "Tidings");
    // As the example digest opens: the newsletter's title line, the topic, its description and
    // the period, each a paragraph.
    let expected = "\
Tidings

Distributed Systems

Consensus and fault tolerance.

Articles from the last 7 days

01  Tuesday, February 3, 2026
Don't rent the cloud, own instead
https://blog.comma.ai/datacenter/

In this detailed overview, Harald Schäfer, CTO of comma.ai, advocates
for companies to build and operate their own data centers rather than
relying on cloud providers.

Sources: Hacker News 302 pts · Lobsters 41 pts

02  Tuesday, February 10, 2026
Untitled feed item
https://feeds.example.org/item

Sources: Some Feed
";
    assert_eq!(text, expected);
    // The email's text part is that layout plus the footer.
    let prepared = PreparedDigest::prepare(&settings(), &d, None).unwrap();
    let part = prepared.text_for(&signer(), &recipient(1));
    assert!(part.starts_with(expected), "{part}");
    assert!(part.contains("Unsubscribe: https://news.example.com/unsubscribe/"));
}

#[test]
fn messages_for_many_subscribers_share_one_rendering() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let tokens = signer();
    let a = prepared.html_for(&tokens, &recipient(1));
    let b = prepared.html_for(&tokens, &recipient(2));
    assert_ne!(a, b);
    // Only the personal links differ.
    let strip = |s: &str, id: i64| {
        s.replace(&tokens.unsubscribe(id, "distributed-systems"), "U")
            .replace(&tokens.preferences(id), "P")
    };
    assert_eq!(strip(&a, 1), strip(&b, 2));
}

#[test]
fn prepared_digests_and_signers_can_be_shared_between_workers() {
    fn shared<T: Send + Sync + Clone>() {}
    shared::<PreparedDigest>();
    shared::<DkimSigner>();
    shared::<TokenSigner>();
}

#[test]
fn prepare_refuses_a_digest_without_issue_id_or_articles() {
    let mut d = twenty();
    d.issue_id = None;
    let e = PreparedDigest::prepare(&settings(), &d, None).unwrap_err();
    assert!(matches!(e, RenderError::MissingIssueId { .. }), "{e}");
    let e = PreparedDigest::prepare(&settings(), &digest(vec![]), None).unwrap_err();
    assert!(e.to_string().contains("no articles"), "{e}");
}

/// The settings refuse such names when they load (`config` unit tests); a mailbox built in code
/// with one is cleaned, never a header injection or a panic in lettre.
#[test]
fn display_names_with_line_breaks_are_cleaned_not_panicked_on() {
    use lettre::message::Mailbox;
    let mut s = settings();
    s.newsletter.from = Mailbox::new(
        Some("Evil\r\nBcc: victim@example.org".into()),
        "digest@example.com".parse().unwrap(),
    );
    s.newsletter.reply_to = Some(Mailbox::new(
        Some("Evil\0Name".into()),
        "r@example.com".parse().unwrap(),
    ));
    let prepared = PreparedDigest::prepare(&s, &twenty(), None).unwrap();
    let digest = prepared
        .message_for(&signer(), &recipient(1), now())
        .unwrap();
    let confirmation =
        confirmation_message(&s, &signer(), None, &recipient(1), &[], now()).unwrap();
    for out in [digest, confirmation] {
        let raw = String::from_utf8_lossy(&out.raw).to_string();
        let head = raw.split("\r\n\r\n").next().unwrap();
        assert!(!head.lines().any(|l| l.starts_with("Bcc:")), "{head}");
        assert!(!head.contains('\0'), "{head}");
    }
}

#[test]
fn confirmation_message_links_to_a_confirm_token_valid_for_seven_days() {
    let tokens = signer();
    let topics = vec!["Distributed Systems".to_string(), "Rust".to_string()];
    let out =
        confirmation_message(&settings(), &tokens, None, &recipient(77), &topics, now()).unwrap();
    let p = parse(&out.raw);
    for name in ["From", "To", "Date", "Subject", "Message-ID"] {
        assert_eq!(p.count(name), 1, "{name}");
    }
    assert_eq!(
        p.parts,
        vec!["multipart/alternative", "text/plain", "text/html"]
    );
    assert_eq!(p.subject, "Confirm your subscription to Tidings");
    let token = tokens.confirm(77, now());
    let link = format!("https://news.example.com/confirm/{token}");
    assert!(p.text.contains(&link));
    assert!(p.html.contains(&format!("href=\"{link}\"")));
    assert!(p.text.contains("Distributed Systems and Rust"));
    let claims = tokens
        .verify(&token, Purpose::Confirm, now() + Duration::days(6))
        .unwrap();
    assert_eq!(claims.subscriber_id, 77);
    assert!(
        tokens
            .verify(&token, Purpose::Confirm, now() + Duration::days(8))
            .is_err()
    );
    assert_eq!(p.count("List-Unsubscribe"), 0);
}

#[test]
fn archive_html_has_the_articles_but_no_personal_links() {
    let d = twenty();
    let html = archive_html(&d);
    assert!(html.contains("Don&#39;t rent the cloud"), "{html}");
    assert!(html.contains("href=\"https://blog.comma.ai/datacenter/\""));
    assert!(!html.contains("unsubscribe"));
    assert!(!html.contains("preferences"));
    assert!(!html.contains('\u{1}'));
    assert!(!html.contains("<html"));
}

/// The `style` attribute of the first element whose attributes contain `marker`.
fn style_of<'a>(html: &'a str, marker: &str) -> &'a str {
    let at = html
        .find(marker)
        .unwrap_or_else(|| panic!("no {marker} in {html}"));
    let tag_start = html[..=at].rfind('<').unwrap();
    let tag_end = at + html[at..].find('>').unwrap();
    let tag = &html[tag_start..tag_end];
    let Some(style) = tag.find("style=\"") else {
        return "";
    };
    let rest = &tag[style + 7..];
    &rest[..rest.find('"').unwrap_or(rest.len())]
}

/// The pixel value of `property` in a `style` attribute (`padding: 13px 10px` gives the first).
fn px(style: &str, property: &str) -> Option<f64> {
    style.split(';').find_map(|decl| {
        let (name, value) = decl.split_once(':')?;
        if name.trim() != property {
            return None;
        }
        value
            .split_whitespace()
            .next()?
            .trim_end_matches("px")
            .parse()
            .ok()
    })
}

fn preferences_link_html() -> String {
    let out = preferences_link_message(&settings(), &signer(), &recipient(8), now()).unwrap();
    parse(&out.raw).html
}

fn confirmation_html() -> String {
    let out = confirmation_message(
        &settings(),
        &signer(),
        None,
        &recipient(6),
        &["Distributed Systems".into()],
        now(),
    )
    .unwrap();
    parse(&out.raw).html
}

#[test]
fn digest_titles_are_styled_as_links() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let html = prepared.html_for(&signer(), &recipient(3));
    let title = style_of(&html, "class=\"title-link\"");
    assert!(title.contains("text-decoration: underline"), "{title}");
    let text = style_of(&html, "class=\"summary\"");
    let colour = |s: &str| {
        s.split(';')
            .find(|d| d.trim().starts_with("color:"))
            .map(|d| d.trim().to_string())
    };
    assert!(colour(title).is_some(), "{title}");
    assert_ne!(colour(title), colour(text), "titles look like body text");
    // Dark mode gives them a link colour too.
    assert!(
        html.contains(".title-link { color: #"),
        "no dark-mode link colour"
    );
}

#[test]
fn footer_links_are_44px_targets_apart_from_each_other() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let html = prepared.html_for(&signer(), &recipient(3));
    let footer = &html[html.find("class=\"footer\"").unwrap()..];
    let links: Vec<&str> = footer
        .match_indices("<a ")
        .map(|(i, _)| &footer[i..])
        .collect();
    assert_eq!(
        links.len(),
        3,
        "view in browser, manage topics, unsubscribe"
    );
    for link in links {
        let style = style_of(link, "<a ");
        assert!(style.contains("display: inline-block"), "{style}");
        let line = px(style, "line-height").unwrap_or(0.0);
        let padding = px(style, "padding").unwrap_or(0.0);
        assert!(
            line + 2.0 * padding >= 44.0,
            "target shorter than 44 px: {style}"
        );
        assert!(
            px(style, "margin-right").unwrap_or(0.0) >= 8.0,
            "no space between: {style}"
        );
    }
    assert!(
        !footer.contains("</a> · <a"),
        "links packed together with a dot"
    );
}

#[test]
fn preheaders_are_hidden_without_colour_tricks() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), None).unwrap();
    let digest = prepared.html_for(&signer(), &recipient(3));
    for (name, html) in [
        ("digest", digest),
        ("confirmation", confirmation_html()),
        ("preferences link", preferences_link_html()),
    ] {
        let style = style_of(&html, "class=\"preheader\"");
        assert!(style.contains("display: none"), "{name}: {style}");
        assert!(style.contains("mso-hide: all"), "{name}: {style}");
        assert!(style.contains("overflow: hidden"), "{name}: {style}");
        assert!(
            !style.contains("color"),
            "{name}: coloured like the background: {style}"
        );
        assert!(!style.contains("opacity"), "{name}: {style}");
    }
}

#[test]
fn long_links_in_emails_can_wrap_on_a_phone() {
    for (name, html) in [
        ("confirmation", confirmation_html()),
        ("preferences link", preferences_link_html()),
    ] {
        let style = style_of(&html, "class=\"long-link\"");
        assert!(style.contains("word-break: break-all"), "{name}: {style}");
        assert!(
            html.contains(
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            ),
            "{name}: no viewport"
        );
    }
}

#[test]
fn archive_html_leaves_layout_and_colours_to_the_page() {
    let html = archive_html(&twenty());
    assert!(
        !html.contains("style="),
        "inline styles beat the page's phone and dark rules"
    );
    assert!(html.contains("class=\"entry\""));
}

// ---- DKIM ----

mod dns {
    //! A one-record TXT "resolver cache" so mail-auth verifies without touching the network.
    use mail_auth::{ResolverCache, Txt};
    use std::borrow::Borrow;
    use std::collections::HashMap;
    use std::hash::Hash;
    use std::sync::Mutex;
    use std::time::Instant;

    pub struct Records(pub Mutex<HashMap<Box<str>, Txt>>);

    impl ResolverCache<Box<str>, Txt> for Records {
        fn get<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().get(name).cloned()
        }
        fn remove<Q>(&self, name: &Q) -> Option<Txt>
        where
            Box<str>: Borrow<Q>,
            Q: Hash + Eq + ?Sized,
        {
            self.0.lock().unwrap().remove(name)
        }
        fn insert(&self, key: Box<str>, value: Txt, _: Instant) {
            self.0.lock().unwrap().insert(key, value);
        }
    }
}

/// Runs mail-auth's DKIM verifier on `raw` with the test key published for
/// `tidings2026._domainkey.example.com`; returns each signature's result and signed headers.
fn verify_dkim(raw: &[u8]) -> Vec<(mail_auth::DkimResult, Vec<String>)> {
    use mail_auth::common::parse::TxtRecordParser;
    use mail_auth::common::verify::DomainKey;
    use mail_auth::{AuthenticatedMessage, MessageAuthenticator, Parameters, Txt};

    let record = format!("v=DKIM1; k=rsa; p={}", KEY_PUBLIC_B64.trim());
    let key = DomainKey::parse(record.as_bytes()).expect("test DNS record parses");
    let txt: Txt = key.into();
    let records = dns::Records(Default::default());
    for name in [
        "tidings2026._domainkey.example.com.",
        "tidings2026._domainkey.example.com",
    ] {
        records.0.lock().unwrap().insert(name.into(), txt.clone());
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        // The resolver is never asked: the record is in the cache above.
        let authenticator = MessageAuthenticator::new_cloudflare().unwrap();
        let message = AuthenticatedMessage::parse(raw).expect("mail-auth parses the message");
        let params = Parameters::new(&message).with_txt_cache(&records);
        authenticator
            .verify_dkim(params)
            .await
            .into_iter()
            .map(|o| {
                let headers = o.signature().map(|s| s.h.clone()).unwrap_or_default();
                (o.result().clone(), headers)
            })
            .collect()
    })
}

#[test]
fn dkim_signature_verifies_with_an_independent_implementation() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), Some(dkim())).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(5), now())
        .unwrap();
    let results = verify_dkim(&out.raw);
    assert_eq!(results.len(), 1, "{results:?}");
    let (result, signed) = &results[0];
    assert_eq!(*result, mail_auth::DkimResult::Pass, "{result:?}");
    let signed: Vec<String> = signed.iter().map(|h| h.to_ascii_lowercase()).collect();
    for required in [
        "from",
        "to",
        "subject",
        "date",
        "message-id",
        "list-unsubscribe",
        "list-unsubscribe-post",
    ] {
        assert!(
            signed.iter().any(|h| h == required),
            "{required} not signed: {signed:?}"
        );
    }
    let raw = String::from_utf8(out.raw.clone()).unwrap();
    assert!(raw.contains("c=relaxed/relaxed"), "canonicalization");
    assert!(raw.contains("d=example.com") && raw.contains("s=tidings2026"));
}

#[test]
fn dkim_survives_non_ascii_subjects_and_names() {
    let mut s = settings();
    s.newsletter.from = "Tidings – Wöchentlich <digest@example.com>"
        .parse()
        .unwrap();
    let mut d = twenty();
    d.topic_name = "Verteilte Systeme — Übersicht".into();
    d.entries[0].title = format!("Schäfer: {} — the cloud", "ünïcödé ".repeat(12));
    let prepared = PreparedDigest::prepare(&s, &d, Some(dkim())).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(5), now())
        .unwrap();
    let results = verify_dkim(&out.raw);
    assert_eq!(results[0].0, mail_auth::DkimResult::Pass, "{results:?}");
    let out = confirmation_message(
        &s,
        &signer(),
        Some(&dkim()),
        &recipient(6),
        &["Rust".into()],
        now(),
    )
    .unwrap();
    let results = verify_dkim(&out.raw);
    assert_eq!(results[0].0, mail_auth::DkimResult::Pass, "{results:?}");
}

#[test]
fn changing_a_signed_list_header_breaks_the_dkim_signature() {
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), Some(dkim())).unwrap();
    let tokens = signer();
    let out = prepared.message_for(&tokens, &recipient(5), now()).unwrap();
    let raw = String::from_utf8(out.raw).unwrap();
    let own = tokens.unsubscribe(5, "distributed-systems");
    let other = tokens.unsubscribe(6, "distributed-systems");
    let tampered = raw.replacen(
        &format!("List-Unsubscribe: <https://news.example.com/unsubscribe/{own}>"),
        &format!("List-Unsubscribe: <https://news.example.com/unsubscribe/{other}>"),
        1,
    );
    assert_ne!(tampered, raw);
    let results = verify_dkim(tampered.as_bytes());
    assert!(
        matches!(results[0].0, mail_auth::DkimResult::Fail(_)),
        "{results:?}"
    );
}

#[test]
fn bad_dkim_keys_give_an_error_naming_the_setting() {
    let dir = tempfile::tempdir().unwrap();
    let file = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        path
    };
    let missing = dir.path().join("missing.pem");
    let garbage = file(
        "garbage.pem",
        "-----BEGIN RSA PRIVATE KEY-----\nnot base64!\n-----END RSA PRIVATE KEY-----\n",
    );
    let pkcs8 = file("pkcs8.pem", KEY_PKCS8_PEM);
    let text = file("text.pem", "hello");
    let good = file("good.pem", KEY_PEM);
    let seed = "nWGxne/9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A=";
    let ed_good = file("ed.key", &format!("{seed}\n"));
    let short = file("short.key", "AAAA\n");
    let rsa = |path: &std::path::Path| DkimSettings {
        domain: "example.com".into(),
        selector: "tidings2026".into(),
        private_key_path: path.display().to_string(),
        ..DkimSettings::default()
    };
    // The Ed25519 key beside the good RSA one.
    let dual = |path: &std::path::Path| DkimSettings {
        ed25519_selector: "ed2026".into(),
        ed25519_private_key_path: path.display().to_string(),
        ..rsa(&good)
    };
    let (rsa_key, ed_key) = ("dkim.private_key_path", "dkim.ed25519_private_key_path");
    for (d, setting, hint) in [
        (rsa(&missing), rsa_key, "cannot be read"),
        (rsa(&garbage), rsa_key, "cannot be parsed"),
        (rsa(&pkcs8), rsa_key, "PKCS#8"),
        (rsa(&text), rsa_key, "PKCS#1"),
        (dual(&missing), ed_key, "cannot be read"),
        (dual(&short), ed_key, "not the 32 of a seed"),
        (dual(&text), ed_key, "not an Ed25519 private key"),
        (dual(&good), ed_key, "not an Ed25519 private key"),
        (
            DkimSettings {
                ed25519_selector: "tidings2026".into(),
                ..dual(&ed_good)
            },
            "dkim.ed25519_selector",
            "its own selector",
        ),
    ] {
        let e = DkimSigner::from_settings(&d).unwrap_err().to_string();
        assert!(e.contains(setting), "{e}");
        assert!(e.contains(hint), "{e}");
        assert!(
            !e.contains("MII") && !e.contains(seed),
            "key material in error: {e}"
        );
    }
    assert!(
        DkimSigner::from_settings(&DkimSettings::default())
            .unwrap()
            .is_none()
    );
    let signer = DkimSigner::from_settings(&rsa(&good)).unwrap().unwrap();
    let shown = format!("{signer:?}");
    assert!(!shown.contains("MII") && shown.contains("***"), "{shown}");
    let signer = DkimSigner::from_settings(&dual(&ed_good)).unwrap().unwrap();
    let shown = format!("{signer:?}");
    assert!(
        !shown.contains("MII") && !shown.contains(seed) && shown.contains("ed2026"),
        "{shown}"
    );
}

/// Writes sample messages for checking by hand: set TIDINGS_SAMPLE_EML_DIR to keep them
/// (`python3 check-email.py --allow-http DIR`); otherwise they go to a temporary directory.
#[test]
fn writes_sample_eml_files() {
    let keep = std::env::var_os("TIDINGS_SAMPLE_EML_DIR").map(std::path::PathBuf::from);
    let tmp = tempfile::tempdir().unwrap();
    let dir = keep.unwrap_or_else(|| tmp.path().to_path_buf());
    std::fs::create_dir_all(&dir).unwrap();
    let prepared = PreparedDigest::prepare(&settings(), &twenty(), Some(dkim())).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(5), now())
        .unwrap();
    std::fs::write(dir.join("digest.eml"), &out.raw).unwrap();
    std::fs::write(
        dir.join("digest.html"),
        prepared.html_for(&signer(), &recipient(5)),
    )
    .unwrap();
    let out = confirmation_message(
        &settings(),
        &signer(),
        Some(&dkim()),
        &recipient(6),
        &["Distributed Systems".into()],
        now(),
    )
    .unwrap();
    std::fs::write(dir.join("confirm.eml"), &out.raw).unwrap();
    let out = preferences_link_message(&settings(), &signer(), &recipient(8), now()).unwrap();
    std::fs::write(dir.join("preferences-link.eml"), &out.raw).unwrap();
    let mut hostile = twenty();
    hostile.entries[0].title = "<script>alert(1)</script>\r\nBcc: x@example.org".into();
    hostile.entries[1].title = "\"><img src=x onerror=alert(1)>".into();
    hostile.entries[1].url = "javascript:alert(1)".into();
    hostile.entries[2].title = "B".repeat(10 * 1024);
    let prepared = PreparedDigest::prepare(&settings(), &hostile, Some(dkim())).unwrap();
    let out = prepared
        .message_for(&signer(), &recipient(7), now())
        .unwrap();
    std::fs::write(dir.join("hostile.eml"), &out.raw).unwrap();
    assert!(dir.join("digest.eml").metadata().unwrap().len() > 10_000);
}

// ---- Transactional emails: one builder for every kind ----

/// Every transactional kind, each with the path its link leads to.
fn transactional_kinds(topic_names: &[String]) -> Vec<(Transactional<'_>, &'static str)> {
    vec![
        (Transactional::Confirm { topic_names }, "/confirm/"),
        (Transactional::PreferencesLink, "/preferences/"),
    ]
}

#[test]
fn transactional_kinds_cover_every_transactional_delivery_kind() {
    let topics = vec!["Rust".to_string()];
    let mut covered: Vec<&str> = transactional_kinds(&topics)
        .iter()
        .map(|(kind, _)| kind.delivery_kind().as_str())
        .collect();
    covered.sort_unstable();
    let mut expected: Vec<&str> = DeliveryKind::ALL
        .into_iter()
        .filter(|k| *k != DeliveryKind::Digest)
        .map(DeliveryKind::as_str)
        .collect();
    expected.sort_unstable();
    assert_eq!(covered, expected);
}

#[test]
fn every_transactional_kind_has_the_same_headers_and_a_text_and_html_pair() {
    let tokens = signer();
    let topics = vec!["Distributed Systems".to_string()];
    for (kind, path) in transactional_kinds(&topics) {
        let name = kind.delivery_kind().as_str();
        let out = transactional_message(&settings(), &tokens, None, &recipient(31), &kind, now())
            .unwrap();
        let p = parse(&out.raw);
        for header in ["From", "Reply-To", "To", "Date", "Subject", "Message-ID"] {
            assert_eq!(p.count(header), 1, "{name}: {header}: {:?}", p.headers);
        }
        // Transactional, not list mail: no List-* headers, and no signature unless configured.
        for header in [
            "List-Id",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "DKIM-Signature",
        ] {
            assert_eq!(p.count(header), 0, "{name}: {header}");
        }
        assert!(p.header("From").contains("digest@example.com"), "{name}");
        assert!(
            p.header("Reply-To").contains("editors@example.com"),
            "{name}"
        );
        assert_eq!(p.header("To"), "reader31@example.net", "{name}");
        assert_eq!(out.to.as_str(), "reader31@example.net");
        assert_eq!(out.envelope_from, "digest@example.com", "{name}");
        let date = mail_parser::MessageParser::default()
            .parse(&out.raw)
            .and_then(|m| m.date().map(|d| d.to_timestamp()))
            .unwrap();
        assert_eq!(date, now().timestamp(), "{name}: Date is the send time");
        assert_eq!(p.header("Message-ID"), out.message_id, "{name}");
        let prefix = format!("<tidings.{name}.31.");
        assert!(out.message_id.starts_with(&prefix), "{}", out.message_id);
        assert!(
            out.message_id.ends_with("@example.com>"),
            "{}",
            out.message_id
        );
        assert!(!out.message_id.contains(' '), "{}", out.message_id);
        assert_eq!(
            p.parts,
            vec!["multipart/alternative", "text/plain", "text/html"],
            "{name}"
        );
        // Both parts carry the link, the title and the postal address; the HTML is inlined
        // and fits a phone.
        let link = format!("https://news.example.com{path}");
        for part in [&p.text, &p.html] {
            assert!(part.contains(&link), "{name}: no {link} in {part}");
            assert!(part.contains("Tidings"), "{name}");
            assert!(part.contains("1 Example Street"), "{name}");
        }
        assert!(p.html.starts_with("<!DOCTYPE html>"), "{name}");
        assert!(p.html.contains("<title>"), "{name}");
        assert!(
            p.html.contains("class=\"text\" style=\""),
            "{name}: css not inlined"
        );
        assert!(!p.html.contains("{{") && !p.text.contains("{{"), "{name}");
        // CRLF only, lines within 998 octets.
        let raw = String::from_utf8(out.raw.clone()).unwrap();
        assert!(!raw.replace("\r\n", "").contains(['\r', '\n']), "{name}");
        assert!(raw.split("\r\n").all(|l| l.len() <= 998), "{name}");
    }
}

#[test]
fn every_transactional_kind_is_dkim_signed_when_configured() {
    let tokens = signer();
    let topics = vec!["Rust".to_string()];
    let key = dkim();
    for (kind, _) in transactional_kinds(&topics) {
        let name = kind.delivery_kind().as_str();
        let out = transactional_message(
            &settings(),
            &tokens,
            Some(&key),
            &recipient(4),
            &kind,
            now(),
        )
        .unwrap();
        let results = verify_dkim(&out.raw);
        assert_eq!(results.len(), 1, "{name}: {results:?}");
        let (result, signed) = &results[0];
        assert_eq!(*result, mail_auth::DkimResult::Pass, "{name}: {result:?}");
        let signed: Vec<String> = signed.iter().map(|h| h.to_ascii_lowercase()).collect();
        for required in ["from", "reply-to", "to", "subject", "date", "message-id"] {
            assert!(
                signed.iter().any(|h| h == required),
                "{name}: {required} not signed: {signed:?}"
            );
        }
    }
}

#[test]
fn transactional_message_ids_are_unique_even_within_one_second() {
    let tokens = signer();
    let topics = vec!["Rust".to_string()];
    let mut seen = std::collections::BTreeSet::new();
    for (kind, _) in transactional_kinds(&topics) {
        for _ in 0..2 {
            let out =
                transactional_message(&settings(), &tokens, None, &recipient(5), &kind, now())
                    .unwrap();
            assert!(seen.insert(out.message_id.clone()), "{}", out.message_id);
        }
    }
}

#[test]
fn every_transactional_kind_cleans_names_from_settings_and_topics() {
    let mut s = settings();
    s.newsletter.title = format!(
        "Evil\r\nBcc: victim@example.org <script>alert(1)</script>{}",
        "T".repeat(5000)
    );
    s.newsletter.postal_address = "1 Road\u{202E}\r\nX-Injected: yes <b>bold</b>".into();
    let topics = vec![
        "Rust\r\n<img src=x onerror=alert(1)>".to_string(),
        "\u{0}".to_string(),
    ];
    let tokens = signer();
    for (kind, _) in transactional_kinds(&topics) {
        let name = kind.delivery_kind().as_str();
        let out = transactional_message(&s, &tokens, None, &recipient(12), &kind, now()).unwrap();
        let p = parse(&out.raw);
        assert!(!p.subject.contains(['\r', '\n']), "{name}: {:?}", p.subject);
        assert!(
            p.subject.chars().count() <= text::MAX_SUBJECT_CHARS,
            "{name}: {}",
            p.subject
        );
        assert_eq!(p.count("Bcc"), 0, "{name}");
        assert_eq!(p.count("X-Injected"), 0, "{name}");
        // The same cleaning as everywhere: one line, control and bidi characters out, capped.
        let title = clean_line(&s.newsletter.title, text::MAX_NAME_CHARS);
        assert!(title.ends_with('…'));
        assert!(p.text.contains(&title), "{name}: {}", p.text);
        assert!(
            p.text.contains("1 Road X-Injected: yes <b>bold</b>"),
            "{name}"
        );
        assert!(
            !p.text.contains('\u{202E}') && !p.html.contains('\u{202E}'),
            "{name}"
        );
        assert!(
            !p.text.contains(&"T".repeat(200)),
            "{name}: title not capped"
        );
        // askama escapes what the HTML part shows.
        let lower = p.html.to_lowercase();
        assert!(!lower.contains("<script"), "{name}");
        assert!(!lower.contains("<img"), "{name}");
        assert!(!lower.contains("<b>"), "{name}");
        assert!(lower.contains("&lt;script&gt;"), "{name}");
        assert!(!regex_like_event_handler(&p.html), "{name}");
        if matches!(kind, Transactional::Confirm { .. }) {
            assert!(
                p.text.contains("Rust <img src=x onerror=alert(1)> from"),
                "{name}: {}",
                p.text
            );
        }
    }
}
