//! A page's metadata: title, description, author, publication date and canonical address,
//! read from JSON-LD (Article, NewsArticle, BlogPosting... also inside `@graph`, authors by
//! `@id`), Open Graph and `article:*` properties, other meta tags (`author`, Dublin Core,
//! Parse.ly, Sailthru), `itemprop` microdata, `<time datetime>`, `<link rel=canonical>` and
//! `<title>` (without the site's name). Earlier sources win; every value is cleaned once here.

use std::collections::HashMap;
use std::sync::LazyLock;

use chrono::{DateTime, Datelike, NaiveDate, NaiveDateTime, Utc};
use scraper::{ElementRef, Html, Selector};
use serde_json::Value;
use url::Url;

use crate::sources::collapse;

/// Longest title, author and description kept, in characters.
pub const MAX_TITLE_CHARS: usize = 300;
pub const MAX_AUTHOR_CHARS: usize = 200;
pub const MAX_DESCRIPTION_CHARS: usize = 1000;

/// What a page says about itself.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Meta {
    pub title: Option<String>,
    pub description: Option<String>,
    pub author: Option<String>,
    pub published: Option<DateTime<Utc>>,
    /// `<link rel=canonical>` or `og:url`, made absolute against the page's own address.
    pub canonical: Option<String>,
}

fn sel(s: &str) -> Selector {
    // Only the constant selectors below come here; the unit tests parse every one of them.
    Selector::parse(s).expect("a constant CSS selector")
}

static META: LazyLock<Selector> = LazyLock::new(|| sel("meta[content]"));
static JSON_LD: LazyLock<Selector> =
    LazyLock::new(|| sel(r#"script[type="application/ld+json" i]"#));
static TITLE: LazyLock<Selector> = LazyLock::new(|| sel("title"));
static H1: LazyLock<Selector> = LazyLock::new(|| sel("h1"));
static CANONICAL: LazyLock<Selector> = LazyLock::new(|| sel(r#"link[rel~="canonical" i][href]"#));
static ITEMPROP_AUTHOR: LazyLock<Selector> =
    LazyLock::new(|| sel(r#"[itemprop~="author"], a[rel~="author"]"#));
static ITEMPROP_NAME: LazyLock<Selector> = LazyLock::new(|| sel(r#"[itemprop~="name"]"#));
static ITEMPROP_DATE: LazyLock<Selector> = LazyLock::new(|| sel(r#"[itemprop~="datePublished"]"#));
static TIME_IN_ARTICLE: LazyLock<Selector> =
    LazyLock::new(|| sel("article time[datetime], main time[datetime], time[pubdate]"));
static TIME: LazyLock<Selector> = LazyLock::new(|| sel("time[datetime]"));

/// Meta tag keys (`name`, `property` or `itemprop`, lower case) in order of preference.
const TITLE_KEYS: &[&str] = &[
    "og:title",
    "twitter:title",
    "parsely-title",
    "sailthru.title",
];
const DESCRIPTION_KEYS: &[&str] = &[
    "description",
    "og:description",
    "twitter:description",
    "dc.description",
];
const AUTHOR_KEYS: &[&str] = &[
    "author",
    "article:author",
    "parsely-author",
    "sailthru.author",
    "dc.creator",
    "dcterms.creator",
    "byl",
    "citation_author",
];
const DATE_KEYS: &[&str] = &[
    "article:published_time",
    "og:published_time",
    "datepublished",
    "published_time",
    "parsely-pub-date",
    "sailthru.date",
    "pubdate",
    "publishdate",
    "publish-date",
    "publish_date",
    "article.published",
    "dc.date.issued",
    "dcterms.issued",
    "dc.date",
    "dcterms.date",
    "dcterms.created",
    "citation_publication_date",
    "date",
];
const SITE_KEYS: &[&str] = &["og:site_name", "application-name", "twitter:site"];

/// JSON-LD types that describe the article itself.
fn is_article_type(t: &str) -> bool {
    let t = t.rsplit(['/', ':']).next().unwrap_or(t);
    t.ends_with("Article")
        || matches!(
            t,
            "BlogPosting" | "LiveBlogPosting" | "SocialMediaPosting" | "Report" | "Posting"
        )
}

/// Reads the metadata of a parsed page; `base` is the page's own address, for relative links.
pub fn read(doc: &Html, base: Option<&Url>) -> Meta {
    let tags = meta_tags(doc);
    let tag = |keys: &[&str]| keys.iter().find_map(|k| tags.get(*k)).cloned();
    let ld = JsonLd::read(doc);
    let site_name = tag(SITE_KEYS).or_else(|| ld.publisher.clone());

    let title = ld
        .title
        .clone()
        .or_else(|| tag(TITLE_KEYS))
        .or_else(|| page_title(doc, site_name.as_deref()))
        .map(|t| truncate(&t, MAX_TITLE_CHARS))
        .filter(|t| !t.is_empty());

    let description = DESCRIPTION_KEYS
        .iter()
        .filter_map(|k| tags.get(*k))
        .chain(ld.description.iter())
        .map(|d| truncate(d, MAX_DESCRIPTION_CHARS))
        .find(|d| !d.is_empty());

    let author = ld
        .author
        .clone()
        .or_else(|| {
            AUTHOR_KEYS
                .iter()
                .filter_map(|k| tags.get(*k))
                .find_map(|a| clean_author(a))
        })
        .or_else(|| microdata_author(doc))
        .map(|a| truncate(&a, MAX_AUTHOR_CHARS));

    let published = ld
        .published
        .or_else(|| {
            DATE_KEYS
                .iter()
                .filter_map(|k| tags.get(*k))
                .find_map(|d| parse_date(d))
        })
        .or_else(|| {
            doc.select(&ITEMPROP_DATE)
                .chain(doc.select(&TIME_IN_ARTICLE))
                .chain(doc.select(&TIME))
                .find_map(|e| {
                    let v = e.value();
                    v.attr("datetime")
                        .or_else(|| v.attr("content"))
                        .and_then(parse_date)
                })
        });

    let canonical = doc
        .select(&CANONICAL)
        .filter_map(|e| e.value().attr("href"))
        .chain(tags.get("og:url").map(String::as_str))
        .find_map(|href| absolute(href, base));

    Meta {
        title,
        description,
        author,
        published,
        canonical,
    }
}

/// Every `<meta>` content by its lower-cased `name`, `property` or `itemprop`; the first
/// non-empty one wins.
fn meta_tags(doc: &Html) -> HashMap<String, String> {
    let mut map = HashMap::new();
    for e in doc.select(&META) {
        let v = e.value();
        let Some(content) = v.attr("content").map(collapse).filter(|c| !c.is_empty()) else {
            continue;
        };
        for key in [v.attr("name"), v.attr("property"), v.attr("itemprop")]
            .into_iter()
            .flatten()
        {
            map.entry(key.trim().to_ascii_lowercase())
                .or_insert_with(|| content.clone());
        }
    }
    map
}

/// `<title>`, without the site's name when it is known ("Title | Site", "Site - Title"), or
/// else the page's first `<h1>` when the title starts with it and a separator follows.
fn page_title(doc: &Html, site: Option<&str>) -> Option<String> {
    let full = collapse(&doc.select(&TITLE).next()?.text().collect::<String>());
    if full.is_empty() {
        return None;
    }
    const SEPARATORS: &[&str] = &[" | ", " - ", " – ", " — ", " · ", " :: ", " » ", ": "];
    let h1 = doc
        .select(&H1)
        .next()
        .map(|h| collapse(&h.text().collect::<String>()))
        .filter(|h| !h.is_empty());
    let site = site.map(str::trim).filter(|s| !s.is_empty());
    for sep in SEPARATORS {
        let (Some((head, last)), Some((first, tail))) =
            (full.rsplit_once(sep), full.split_once(sep))
        else {
            continue;
        };
        if let Some(site) = site {
            if last.trim().eq_ignore_ascii_case(site) {
                return Some(head.trim().to_string());
            }
            if first.trim().eq_ignore_ascii_case(site) {
                return Some(tail.trim().to_string());
            }
        }
        if let Some(h1) = &h1
            && full
                .strip_prefix(h1.as_str())
                .is_some_and(|r| r.starts_with(sep))
        {
            return Some(h1.clone());
        }
    }
    Some(full)
}

/// An author from `[itemprop=author]` (its `name` part when it has one) or `a[rel=author]`.
fn microdata_author(doc: &Html) -> Option<String> {
    doc.select(&ITEMPROP_AUTHOR).find_map(|e: ElementRef<'_>| {
        let text = match e.value().attr("content") {
            Some(c) => c.to_string(),
            None => e
                .select(&ITEMPROP_NAME)
                .next()
                .unwrap_or(e)
                .text()
                .collect::<String>(),
        };
        clean_author(&text)
    })
}

/// A person's or organisation's name: "By " dropped, white space collapsed; links, handles
/// and sentences are not names.
fn clean_author(raw: &str) -> Option<String> {
    let s = collapse(raw);
    let s = ["By ", "by ", "BY ", "Written by ", "Posted by "]
        .iter()
        .find_map(|p| s.strip_prefix(p))
        .unwrap_or(&s)
        .trim()
        .trim_end_matches([',', ';', '|'])
        .trim();
    let looks_like_name = !s.is_empty()
        && s.chars().count() <= MAX_AUTHOR_CHARS
        && !s.contains("://")
        && !s.starts_with('@')
        && !s.starts_with('/')
        && s.split_whitespace().count() <= 12;
    looks_like_name.then(|| s.to_string())
}

fn truncate(s: &str, max: usize) -> String {
    let s = collapse(s);
    match s.char_indices().nth(max) {
        Some((i, _)) => format!("{}…", s[..i].trim_end()),
        None => s,
    }
}

/// `href` made absolute against `base`; only http(s) addresses.
fn absolute(href: &str, base: Option<&Url>) -> Option<String> {
    let href = href.trim();
    let url = match Url::parse(href) {
        Ok(u) => u,
        Err(url::ParseError::RelativeUrlWithoutBase) => base?.join(href).ok()?,
        Err(_) => return None,
    };
    matches!(url.scheme(), "http" | "https").then(|| url.to_string())
}

/// A publication date in the forms pages use: RFC 3339 / ISO 8601 with or without an offset
/// (no offset reads as UTC), a date alone (midnight UTC), RFC 2822.
pub fn parse_date(raw: &str) -> Option<DateTime<Utc>> {
    let s = raw.trim();
    let parsed = DateTime::parse_from_rfc3339(s)
        .ok()
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%dT%H:%M%z").ok())
        .or_else(|| DateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S%.f%z").ok())
        .or_else(|| DateTime::parse_from_rfc2822(s).ok())
        .map(|d| d.with_timezone(&Utc))
        .or_else(|| {
            [
                "%Y-%m-%dT%H:%M:%S%.f",
                "%Y-%m-%d %H:%M:%S%.f",
                "%Y-%m-%dT%H:%M",
                "%Y-%m-%d %H:%M",
            ]
            .iter()
            .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
            .map(|d| d.and_utc())
        })
        .or_else(|| {
            let day = s.get(..10)?;
            let rest = &s[10..];
            // "2024-05-01" alone, or followed by something the forms above did not take.
            (rest.is_empty() || rest.starts_with(['T', ' ']))
                .then(|| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
                .flatten()
                .and_then(|d| d.and_hms_opt(0, 0, 0))
                .map(|d| d.and_utc())
        })?;
    (1990..=2100).contains(&parsed.year()).then_some(parsed)
}

/// What the page's JSON-LD says about its article.
#[derive(Default)]
struct JsonLd {
    title: Option<String>,
    description: Option<String>,
    author: Option<String>,
    published: Option<DateTime<Utc>>,
    publisher: Option<String>,
}

impl JsonLd {
    fn read(doc: &Html) -> JsonLd {
        let mut nodes = Vec::new();
        for script in doc.select(&JSON_LD) {
            let raw: String = script.text().collect();
            if let Some(v) = parse_json_ld(&raw) {
                flatten(v, &mut nodes, 0);
            }
        }
        let by_id: HashMap<&str, &Value> = nodes
            .iter()
            .filter_map(|n| Some((n.get("@id")?.as_str()?, n)))
            .collect();
        let Some(article) = nodes.iter().find(|n| types(n).any(is_article_type)) else {
            return JsonLd::default();
        };
        let text = |key: &str| {
            article
                .get(key)
                .and_then(Value::as_str)
                .map(collapse)
                .filter(|s| !s.is_empty())
        };
        let authors = names(article.get("author"), &by_id);
        JsonLd {
            title: text("headline").or_else(|| text("name")),
            description: text("description"),
            author: (!authors.is_empty()).then(|| authors.join(", ")),
            published: text("datePublished")
                .or_else(|| text("dateCreated"))
                .and_then(|d| parse_date(&d)),
            publisher: names(article.get("publisher"), &by_id).into_iter().next(),
        }
    }
}

/// JSON-LD text as pages write it: HTML comments, CDATA markers and a trailing semicolon
/// around it, raw line breaks inside strings.
fn parse_json_ld(raw: &str) -> Option<Value> {
    let mut s = raw.trim();
    for (open, close) in [
        ("<!--", "-->"),
        ("//<![CDATA[", "//]]>"),
        ("<![CDATA[", "]]>"),
    ] {
        s = s.strip_prefix(open).unwrap_or(s).trim();
        s = s.strip_suffix(close).unwrap_or(s).trim();
    }
    let s = s.trim_end_matches(';');
    serde_json::from_str(s).ok().or_else(|| {
        let flat: String = s
            .chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect();
        serde_json::from_str(&flat).ok()
    })
}

/// Every object of a JSON-LD value: arrays and `@graph` opened, nesting bounded.
fn flatten(v: Value, out: &mut Vec<Value>, depth: usize) {
    if depth > 4 {
        return;
    }
    match v {
        Value::Array(items) => items.into_iter().for_each(|i| flatten(i, out, depth + 1)),
        Value::Object(mut map) => {
            if let Some(graph) = map.remove("@graph") {
                flatten(graph, out, depth + 1);
            }
            out.push(Value::Object(map));
        }
        _ => {}
    }
}

fn types(node: &Value) -> impl Iterator<Item = &str> {
    let t = node.get("@type");
    t.and_then(Value::as_str).into_iter().chain(
        t.and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(Value::as_str),
    )
}

/// The names in an `author` or `publisher` value: a string, a Person or Organization, a
/// reference by `@id` to one in the graph, or a list of these.
fn names(v: Option<&Value>, by_id: &HashMap<&str, &Value>) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let items: Vec<&Value> = match v {
        Some(Value::Array(a)) => a.iter().collect(),
        Some(other) => vec![other],
        None => Vec::new(),
    };
    for item in items {
        let name = match item {
            Value::String(s) => clean_author(s),
            Value::Object(o) => {
                let resolved = o
                    .get("@id")
                    .and_then(Value::as_str)
                    .and_then(|id| by_id.get(id).copied());
                o.get("name")
                    .or_else(|| resolved.and_then(|r| r.get("name")))
                    .and_then(Value::as_str)
                    .and_then(clean_author)
            }
            _ => None,
        };
        if let Some(n) = name
            && !out.contains(&n)
        {
            out.push(n);
        }
    }
    out
}
