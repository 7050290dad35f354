//! Handler failures and the status codes and pages they become. Users see a short page that
//! names the problem in their terms; internals (the cause chain) only go to the log.

use askama::Template;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use super::site::{Site, render_page};
use crate::store::StoreError;
use crate::tokens::TokenError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum WebError {
    /// A tampered, truncated, expired or wrong-purpose link token.
    #[error("invalid link: {0}")]
    InvalidLink(#[from] TokenError),
    /// The request itself is wrong; the message is shown to the user.
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("not found")]
    NotFound,
    #[error("missing or wrong bearer token")]
    Unauthorized,
    /// A state-changing form posted from another site (its `Origin` or `Referer` names a site
    /// other than `newsletter.base_url`).
    #[error("form posted from another site")]
    CrossSite,
    #[error("too many requests; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// Anything else: logged with its cause chain, shown as a plain 500 page.
    #[error(transparent)]
    Unexpected(#[from] anyhow::Error),
}

/// The page a failed request shows: a heading and a message in the user's terms.
#[derive(Clone, Template)]
#[template(path = "web/error.html")]
struct ErrorPage {
    site: Site,
    heading: String,
    message: String,
}

impl From<StoreError> for WebError {
    fn from(e: StoreError) -> Self {
        WebError::Unexpected(e.into())
    }
}

impl From<askama::Error> for WebError {
    fn from(e: askama::Error) -> Self {
        WebError::Unexpected(anyhow::Error::new(e).context("rendering a page"))
    }
}

impl WebError {
    /// 429, to be retried after `wait` rounded up to whole seconds.
    pub fn rate_limited_for(wait: std::time::Duration) -> WebError {
        WebError::RateLimited {
            retry_after_secs: wait.as_secs() + u64::from(wait.subsec_nanos() > 0),
        }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            WebError::InvalidLink(_) | WebError::BadRequest(_) => StatusCode::BAD_REQUEST,
            WebError::NotFound => StatusCode::NOT_FOUND,
            WebError::Unauthorized => StatusCode::UNAUTHORIZED,
            WebError::CrossSite => StatusCode::FORBIDDEN,
            WebError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            WebError::Unexpected(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn page(&self) -> ErrorPage {
        let (heading, message) = match self {
            WebError::InvalidLink(TokenError::Expired) => (
                "This link has expired",
                format!(
                    "Confirmation links work for {} days. Subscribe again to get a new one.",
                    crate::tokens::CONFIRM_VALIDITY_DAYS
                ),
            ),
            WebError::InvalidLink(_) => (
                "This link is not valid",
                "The link may have been cut off or changed. Copy the whole link from the email and try again.".to_string(),
            ),
            WebError::BadRequest(msg) => ("Something is wrong with the request", msg.clone()),
            WebError::NotFound => ("Page not found", "There is nothing at this address.".to_string()),
            WebError::Unauthorized => ("Not allowed", "This page needs a valid token.".to_string()),
            WebError::CrossSite => (
                "This form came from another site",
                "For your safety we only accept this form from our own pages. Please open the page on our site and try again.".to_string(),
            ),
            WebError::RateLimited { .. } => (
                "Too many requests",
                "Please wait a minute and try again.".to_string(),
            ),
            WebError::Unexpected(_) => (
                "Something went wrong",
                "The problem is on our side and has been logged. Please try again later.".to_string(),
            ),
        };
        ErrorPage {
            site: Site::generic(),
            heading: heading.to_string(),
            message,
        }
    }
}

impl IntoResponse for WebError {
    fn into_response(self) -> Response {
        match &self {
            WebError::Unexpected(e) => tracing::error!(error = format!("{e:#}"), "request failed"),
            WebError::InvalidLink(e) => tracing::info!(reason = %e, "rejected a link token"),
            other => tracing::debug!(error = %other, "request refused"),
        }
        let status = self.status();
        let page = self.page();
        let body = render_page(&page).unwrap_or_else(|_| {
            Html(format!(
                "<!doctype html><title>{status}</title><p>{status}</p>"
            ))
        });
        let mut response = (status, body).into_response();
        // `IntoResponse` has no settings at hand: keep the page so `brand_error_page` can render
        // it again with the site's name and postal address.
        response.extensions_mut().insert(page);
        match self {
            WebError::RateLimited { retry_after_secs } => {
                if let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string()) {
                    response.headers_mut().insert(header::RETRY_AFTER, v);
                }
            }
            WebError::Unauthorized => {
                response
                    .headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            _ => {}
        }
        response
            .headers_mut()
            .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        response
    }
}

/// The fallback for unknown paths.
pub async fn not_found() -> WebError {
    WebError::NotFound
}

/// Response middleware: re-renders error pages with the newsletter's name and postal address
/// (an error page looks like every other page of the site).
pub async fn brand_error_page(State(state): State<AppState>, mut response: Response) -> Response {
    let Some(mut page) = response.extensions_mut().remove::<ErrorPage>() else {
        return response;
    };
    page.site = Site::from_settings(&state.settings);
    match render_page(&page) {
        Ok(Html(html)) => {
            let (mut parts, _) = response.into_parts();
            parts.headers.remove(header::CONTENT_LENGTH);
            Response::from_parts(parts, Body::from(html))
        }
        Err(_) => response,
    }
}
