//! `GET /unsubscribe/{token}` (a page with a button; changes nothing) and
//! `POST /unsubscribe/{token}`, which is also the RFC 8058 one-click endpoint: mailbox providers
//! POST `List-Unsubscribe=One-Click` as multipart/form-data or urlencoded, with no cookie, CSRF
//! token or Origin. The signed token is the only credential, so any POST with a valid token
//! leaves the token's topic (or everything, with `scope=all` from our own page), answers 200
//! without a redirect, and repeating it changes nothing more.
//!
//! A POST whose body is neither `List-Unsubscribe=One-Click` nor our page's form (empty, another
//! content type, other fields, malformed multipart) is treated as one-click too, by choice: the
//! token already proves the link came from our email and a POST is the intent; refusing odd
//! bodies would risk ignoring a real unsubscribe from a provider that words it differently,
//! and it would protect nothing, since whoever holds the token can send the exact body. Such a
//! POST never does more than leave the token's topic: only an urlencoded `scope=all` (our own
//! page) leaves everything. Bodies over `[web] max_body_bytes` get 413 and change nothing.
//!
//! Cross-site posts: a POST whose body is `List-Unsubscribe=One-Click` (either encoding) is
//! never checked for its origin, since providers send it without one and some webmail sends it
//! from its own pages. Every other POST (our page's buttons, `scope=all`, the odd bodies) is
//! refused with 403 when its `Origin` or `Referer` names another site
//! ([`super::pages::check_same_site`]).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::WebError;
use super::pages::{Site, check_same_site, render_page, topic_name};
use crate::tokens::Purpose;

#[derive(Template)]
#[template(path = "web/unsubscribe.html")]
pub struct UnsubscribePage {
    pub site: Site,
    pub token: String,
    pub topic_name: Option<String>,
    pub preferences_path: String,
}

#[derive(Template)]
#[template(path = "web/unsubscribed.html")]
pub struct UnsubscribedPage {
    pub site: Site,
    pub left: Option<String>,
    pub remaining: Vec<String>,
    pub preferences_path: String,
}

/// `GET /unsubscribe/{token}`
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let claims = state
        .tokens
        .verify(&token, Purpose::Unsubscribe, state.now())?;
    let page = UnsubscribePage {
        site: Site::from_settings(&state.settings),
        token,
        topic_name: claims
            .topic
            .as_deref()
            .map(|t| topic_name(&state.settings, t)),
        preferences_path: format!(
            "/preferences/{}",
            state.tokens.preferences(claims.subscriber_id)
        ),
    };
    Ok(render_page(&page)?.into_response())
}

/// Whether our own page asked to leave everything (`scope=all`, urlencoded). One-click bodies,
/// in either encoding, never carry it.
fn wants_everything(headers: &HeaderMap, body: &[u8]) -> bool {
    let urlencoded = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        });
    urlencoded && url::form_urlencoded::parse(body).any(|(k, v)| k == "scope" && v == "all")
}

/// Whether the body is RFC 8058's `List-Unsubscribe=One-Click`, urlencoded or as a
/// multipart/form-data field.
fn is_one_click(headers: &HeaderMap, body: &[u8]) -> bool {
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_ascii_lowercase();
    if content_type.starts_with("multipart/form-data") {
        let text = String::from_utf8_lossy(body);
        return text.contains("name=\"List-Unsubscribe\"") && text.contains("One-Click");
    }
    url::form_urlencoded::parse(body).any(|(k, v)| k == "List-Unsubscribe" && v == "One-Click")
}

/// `POST /unsubscribe/{token}`
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let now = state.now();
    let claims = state.tokens.verify(&token, Purpose::Unsubscribe, now)?;
    let id = claims.subscriber_id;
    let everything = wants_everything(&headers, &body);
    if everything || !is_one_click(&headers, &body) {
        check_same_site(&state, &headers)?;
    }
    match claims.topic.as_deref().filter(|_| !everything) {
        Some(topic) => {
            let remaining = state.store.leave_topic(id, topic, now).await?;
            tracing::info!(subscriber = id, topic, "left a topic");
            let remaining: Vec<String> = remaining
                .iter()
                .map(|t| topic_name(&state.settings, t))
                .collect();
            unsubscribed_page(
                &state,
                id,
                Some(topic_name(&state.settings, topic)),
                &remaining,
            )
        }
        None => {
            state.store.unsubscribe_all(id, now).await?;
            tracing::info!(subscriber = id, "unsubscribed from everything");
            unsubscribed_page(&state, id, None, &[])
        }
    }
}

/// The "you are unsubscribed" page (also used by the preferences page).
pub fn unsubscribed_page(
    state: &AppState,
    id: i64,
    left: Option<String>,
    remaining: &[String],
) -> Result<Response, WebError> {
    let page = UnsubscribedPage {
        site: Site::from_settings(&state.settings),
        left,
        remaining: remaining.to_vec(),
        preferences_path: format!("/preferences/{}", state.tokens.preferences(id)),
    };
    Ok(render_page(&page)?.into_response())
}
