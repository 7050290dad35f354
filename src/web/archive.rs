//! The public archive: `GET /archive` (topics and their issues), `GET /archive/{topic}` (one
//! topic's issues: the Atom feed's alternate link), `GET /archive/{topic}/{issue}` (one digest
//! as a web page: the email's "view in browser" link) and `GET /archive/{topic}/feed.xml` (an
//! Atom feed of the topic's issues).

use askama::Template;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};

use super::AppState;
use super::error::WebError;
use super::pages::{Site, render_page};
use crate::render;

/// How many issues the feed carries.
const FEED_ENTRIES: i64 = 20;

pub struct IssueLink {
    pub path: String,
    pub label: String,
    pub article_count: i64,
}

pub struct TopicIssues {
    pub slug: String,
    /// `/archive/{topic}`
    pub path: String,
    pub name: String,
    pub description: String,
    pub feed_path: String,
    pub issues: Vec<IssueLink>,
}

#[derive(Template)]
#[template(path = "web/archive_index.html")]
pub struct ArchiveIndexPage {
    pub site: Site,
    pub topics: Vec<TopicIssues>,
}

#[derive(Template)]
#[template(path = "web/archive_topic.html")]
pub struct ArchiveTopicPage {
    pub site: Site,
    pub topic: TopicIssues,
}

#[derive(Template)]
#[template(path = "web/archive_issue.html")]
pub struct ArchiveIssuePage {
    pub site: Site,
    pub topic_name: String,
    pub period: String,
    pub topic_path: String,
    pub feed_path: String,
    /// HTML from `render::archive_html`, which escapes everything it takes from sources.
    pub body: String,
}

fn period(start: DateTime<Utc>, end: DateTime<Utc>) -> String {
    // The window is [start, end): the last day shown is the day before `end` at midnight.
    let last = end - chrono::Duration::seconds(1);
    format!(
        "{} to {}",
        start.format("%-d %B %Y"),
        last.format("%-d %B %Y")
    )
}

/// A topic and its issues among `all`.
fn topic_issues(
    t: &crate::config::TopicSettings,
    all: &[crate::store::IssueSummary],
) -> TopicIssues {
    TopicIssues {
        slug: t.slug.to_string(),
        path: format!("/archive/{}", t.slug),
        name: t.name.clone(),
        description: t.description.clone(),
        feed_path: format!("/archive/{}/feed.xml", t.slug),
        issues: all
            .iter()
            .filter(|i| i.topic == t.slug.as_str())
            .map(|i| IssueLink {
                path: format!("/archive/{}/{}", t.slug, i.id),
                label: period(i.window_start, i.window_end),
                article_count: i.article_count,
            })
            .collect(),
    }
}

/// `GET /archive`
pub async fn index(State(state): State<AppState>) -> Result<Response, WebError> {
    let all = state.store.list_issues(None).await?;
    let topics = state
        .settings
        .topics
        .iter()
        .map(|t| topic_issues(t, &all))
        .collect();
    let page = ArchiveIndexPage {
        site: Site::from_settings(&state.settings),
        topics,
    };
    Ok(render_page(&page)?.into_response())
}

/// `GET /archive/{topic}`
pub async fn topic(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Response, WebError> {
    let topic_settings = state.settings.topic(&topic).ok_or(WebError::NotFound)?;
    let all = state.store.list_issues(Some(&topic)).await?;
    let page = ArchiveTopicPage {
        site: Site::from_settings(&state.settings),
        topic: topic_issues(topic_settings, &all),
    };
    Ok(render_page(&page)?.into_response())
}

/// `GET /archive/{topic}/{issue}`
pub async fn issue(
    State(state): State<AppState>,
    Path((topic, issue)): Path<(String, String)>,
) -> Result<Response, WebError> {
    let topic_settings = state.settings.topic(&topic).ok_or(WebError::NotFound)?;
    let id: i64 = issue.parse().map_err(|_| WebError::NotFound)?;
    let stored = state
        .store
        .get_issue(id)
        .await?
        .filter(|i| i.topic == topic)
        .ok_or(WebError::NotFound)?;
    let page = ArchiveIssuePage {
        site: Site::from_settings(&state.settings),
        topic_name: topic_settings.name.clone(),
        period: period(stored.digest.window_start, stored.digest.window_end),
        topic_path: format!("/archive/{topic}"),
        feed_path: format!("/archive/{topic}/feed.xml"),
        body: render::archive_html(&stored.digest),
    };
    // The digest fragment carries no inline styles (the stylesheet lays it out), so the issue
    // page keeps the app's strict Content-Security-Policy like every other page.
    Ok(render_page(&page)?.into_response())
}

/// `GET /archive/{topic}/feed.xml`
pub async fn feed(
    State(state): State<AppState>,
    Path(topic): Path<String>,
) -> Result<Response, WebError> {
    let topic_settings = state.settings.topic(&topic).ok_or(WebError::NotFound)?;
    let issues = state.store.latest_issues(&topic, FEED_ENTRIES).await?;
    let base = state.base_url();
    let title = format!(
        "{}: {}",
        state.settings.newsletter.title, topic_settings.name
    );
    let updated = issues
        .iter()
        .map(|i| i.compiled_at)
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);
    let mut xml = String::with_capacity(4096);
    xml.push_str("<?xml version=\"1.0\" encoding=\"utf-8\"?>\n<feed xmlns=\"http://www.w3.org/2005/Atom\">\n");
    push_element(&mut xml, "title", &title);
    if !topic_settings.description.is_empty() {
        push_element(&mut xml, "subtitle", &topic_settings.description);
    }
    push_element(&mut xml, "id", &format!("{base}/archive/{topic}/feed.xml"));
    xml.push_str(&format!(
        "<link rel=\"self\" type=\"application/atom+xml\" href=\"{}\"/>\n<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
        escape_xml(&format!("{base}/archive/{topic}/feed.xml")),
        escape_xml(&format!("{base}/archive/{topic}")),
    ));
    push_element(&mut xml, "updated", &updated.to_rfc3339());
    xml.push_str("<author>");
    push_element(&mut xml, "name", &state.settings.newsletter.title);
    xml.push_str("</author>\n");
    for issue in &issues {
        let url = format!("{base}/archive/{topic}/{}", issue.id);
        xml.push_str("<entry>\n");
        push_element(
            &mut xml,
            "title",
            &format!(
                "{}, {}",
                topic_settings.name,
                period(issue.window_start, issue.window_end)
            ),
        );
        push_element(&mut xml, "id", &url);
        xml.push_str(&format!(
            "<link rel=\"alternate\" type=\"text/html\" href=\"{}\"/>\n",
            escape_xml(&url)
        ));
        push_element(&mut xml, "updated", &issue.compiled_at.to_rfc3339());
        push_element(
            &mut xml,
            "summary",
            &format!("{} articles", issue.digest.entries.len()),
        );
        let html = render::archive_html(&issue.digest);
        xml.push_str(&format!(
            "<content type=\"html\">{}</content>\n",
            escape_xml(&html)
        ));
        xml.push_str("</entry>\n");
    }
    xml.push_str("</feed>\n");
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/atom+xml; charset=utf-8"),
        )],
        xml,
    )
        .into_response())
}

fn push_element(xml: &mut String, name: &str, text: &str) {
    xml.push_str(&format!("<{name}>{}</{name}>\n", escape_xml(text)));
}

/// Escapes text for XML, dropping characters XML 1.0 cannot carry.
fn escape_xml(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            '\t' | '\n' | '\r' => out.push(c),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn xml_escaping_covers_markup_and_drops_control_characters() {
        assert_eq!(
            escape_xml("<a href=\"x\">&'\u{1}"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&apos;"
        );
    }
}
