//! `tidings extract FILE|URL [--url URL] [--json]`: what tidings reads from one page (title,
//! description, author, publication date, main text) and the summary it makes of it, so an
//! operator can see why a summary came out as it did. A URL is fetched with the same guarded
//! HTTP client sources use (`[fetch]`: limits, `allow_private_addresses`), so this is the only
//! part that reads the configuration, and only when a configuration file is there; a file is
//! read as is, `--url` giving its own address. No database. Exit 2 when the file cannot be
//! read or the URL cannot be fetched as an HTML page, with a message naming it.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};

use serde_json::json;
use url::Url;

use super::{CommandError, CommandResult, usage};
use crate::cli::ExtractArgs;
use crate::config::Settings;
use crate::domain::{Article, PageInfo};
use crate::pipeline::summarize::{Summary, summary_with_source};
use crate::sources::http::HttpClient;
use crate::sources::page::{self, Page};

/// Largest local file read.
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Where the page comes from.
enum Input {
    File(PathBuf),
    Web(Url),
}

impl Input {
    /// An http(s) URL is fetched; anything else is a file name.
    fn parse(raw: &str) -> Input {
        let lower = raw.trim_start().to_ascii_lowercase();
        if (lower.starts_with("http://") || lower.starts_with("https://"))
            && let Ok(url) = Url::parse(raw.trim())
        {
            return Input::Web(url);
        }
        Input::File(PathBuf::from(raw))
    }
}

pub async fn run(args: ExtractArgs, config: Option<&Path>) -> CommandResult {
    let (html, address) = match Input::parse(&args.source) {
        Input::File(path) => {
            let address = match args.url.as_deref() {
                Some(raw) => Some(page_address(raw)?),
                None => None,
            };
            (read_file(&path)?, address)
        }
        Input::Web(url) => {
            if args.url.is_some() {
                return Err(usage(
                    "--url gives a local file's address; a fetched page's address is its URL",
                ));
            }
            let settings = Settings::load(config)?;
            let (html, final_url) = fetch(&settings, &url).await?;
            (html, Some(final_url))
        }
    };
    let page = page::extract_page(&html, address.as_ref());
    let url = address.map(String::from).or_else(|| page.canonical.clone());
    let summary = summary_with_source(&article(url.as_deref(), &page.info));
    let out = if args.json {
        json_line(url.as_deref(), &page, &summary)
    } else {
        report(url.as_deref(), &page, &summary)
    };
    std::io::stdout()
        .lock()
        .write_all(out.as_bytes())
        .map_err(|e| CommandError::Failed(e.into()))
}

/// `--url`: an absolute http(s) address.
fn page_address(raw: &str) -> Result<Url, CommandError> {
    Url::parse(raw.trim())
        .ok()
        .filter(|u| matches!(u.scheme(), "http" | "https"))
        .ok_or_else(|| usage(format!("--url {raw:?} is not an absolute http(s) URL")))
}

fn read_file(path: &Path) -> Result<String, CommandError> {
    let unreadable = |e: std::io::Error| usage(format!("cannot read {}: {e}", path.display()));
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .and_then(|f| f.take(MAX_FILE_BYTES + 1).read_to_end(&mut bytes))
        .map_err(unreadable)?;
    if bytes.len() as u64 > MAX_FILE_BYTES {
        return Err(usage(format!(
            "cannot read {}: larger than {MAX_FILE_BYTES} bytes",
            path.display()
        )));
    }
    Ok(page::decode(&bytes, None))
}

/// The page's text and its address after redirects.
async fn fetch(settings: &Settings, url: &Url) -> Result<(String, Url), CommandError> {
    let http = HttpClient::new(&settings.fetch)?;
    let body = http
        .get(
            url.as_str(),
            &[("accept", "text/html,application/xhtml+xml".to_string())],
        )
        .await
        .map_err(|e| usage(format!("cannot fetch {url}: {e}")))?;
    let content_type = body.header("content-type").unwrap_or_default();
    let lower = content_type.to_ascii_lowercase();
    if !(lower.is_empty() || lower.contains("html")) {
        return Err(usage(format!(
            "cannot extract {url}: not an HTML page ({content_type})"
        )));
    }
    let final_url = Url::parse(&body.final_url).unwrap_or_else(|_| url.clone());
    Ok((page::decode(&body.body, Some(&content_type)), final_url))
}

/// The article the pipeline would summarise: this page and no source.
fn article(url: Option<&str>, info: &PageInfo) -> Article {
    let url = url.unwrap_or_default();
    let domain = Url::parse(url)
        .ok()
        .and_then(|u| u.host_str().map(str::to_string))
        .unwrap_or_default();
    Article {
        id: 0,
        canonical_url: url.to_string(),
        url: url.to_string(),
        title: info.title.clone().unwrap_or_default(),
        domain,
        published_at: info.published.unwrap_or_else(chrono::Utc::now),
        sources: Vec::new(),
        page: Some(info.clone()),
    }
}

fn words(text: Option<&str>) -> usize {
    text.map_or(0, |t| t.split_whitespace().count())
}

fn json_line(url: Option<&str>, page: &Page, summary: &Summary) -> String {
    let info = &page.info;
    let value = json!({
        "url": url,
        "title": info.title,
        "description": info.description,
        "author": info.author,
        "published": info.published.map(|p| p.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)),
        "text": info.text.as_deref().unwrap_or_default(),
        "words": words(info.text.as_deref()),
        "summary": summary.text,
        "summary_source": summary.source.to_string(),
    });
    format!("{value}\n")
}

fn report(url: Option<&str>, page: &Page, summary: &Summary) -> String {
    let info = &page.info;
    let field = |v: Option<&str>| v.unwrap_or("-").to_string();
    let mut out = String::new();
    let mut line = |name: &str, value: String| out.push_str(&format!("{name:<12} {value}\n"));
    line("url:", field(url));
    line("title:", field(info.title.as_deref()));
    line("description:", field(info.description.as_deref()));
    line("author:", field(info.author.as_deref()));
    line(
        "published:",
        info.published.map_or_else(
            || "-".to_string(),
            |p| p.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
        ),
    );
    line("canonical:", field(page.canonical.as_deref()));
    line("extractor:", page.extractor.to_string());
    line("words:", words(info.text.as_deref()).to_string());
    out.push_str(&format!(
        "\nsummary ({}):\n{}\n",
        summary.source, summary.text
    ));
    out.push_str("\ntext:\n");
    out.push_str(info.text.as_deref().unwrap_or("-"));
    out.push('\n');
    out
}
