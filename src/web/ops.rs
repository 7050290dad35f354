//! Operations endpoints: `GET /healthz` (the database answers), `GET /metrics` (Prometheus text,
//! behind `Authorization: Bearer {[web] metrics_token}` when one is set) and the stylesheet.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::error::WebError;
use crate::domain::{DeliveryStatus, SubscriberStatus};

/// The one stylesheet every page shares.
pub const STYLESHEET: &str = include_str!("../../templates/web/style.css");

/// `GET /static/style.css`
pub async fn stylesheet() -> Response {
    (
        [
            (
                header::CONTENT_TYPE,
                HeaderValue::from_static("text/css; charset=utf-8"),
            ),
            (
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            ),
        ],
        STYLESHEET,
    )
        .into_response()
}

/// `GET /healthz`
pub async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.ping().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(e) => {
            tracing::error!(error = %e, "health check: database unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unreachable\n").into_response()
        }
    }
}

fn authorized(state: &AppState, headers: &HeaderMap) -> bool {
    let expected = state.settings.web.metrics_token.expose();
    if expected.is_empty() {
        return true;
    }
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    bool::from(given.as_bytes().ct_eq(expected.as_bytes()))
}

/// `GET /metrics`
pub async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    if !authorized(&state, &headers) {
        return Err(WebError::Unauthorized);
    }
    let store = &state.store;
    let subscribers = with_zeros(
        store.subscriber_counts_by_status().await?,
        SubscriberStatus::ALL.iter().map(|s| s.as_str()),
    );
    let deliveries = with_zeros(
        store.delivery_status_counts().await?,
        DeliveryStatus::ALL.iter().map(|s| s.as_str()),
    );
    let issues = with_zeros(
        store.issue_counts_by_topic().await?,
        state.settings.topics.iter().map(|t| t.slug.as_str()),
    );
    let mut out = String::new();
    family(
        &mut out,
        "tidings_subscribers",
        "Subscribers by status.",
        "status",
        &subscribers,
    );
    family(
        &mut out,
        "tidings_deliveries",
        "Outbox messages by status.",
        "status",
        &deliveries,
    );
    family(
        &mut out,
        "tidings_issues",
        "Compiled digest issues per topic.",
        "topic",
        &issues,
    );
    Ok((
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        out,
    )
        .into_response())
}

fn with_zeros<'a>(
    mut counts: BTreeMap<String, i64>,
    keys: impl Iterator<Item = &'a str>,
) -> BTreeMap<String, i64> {
    for k in keys {
        counts.entry(k.to_string()).or_insert(0);
    }
    counts
}

fn family(out: &mut String, name: &str, help: &str, label: &str, values: &BTreeMap<String, i64>) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} gauge");
    for (key, value) in values {
        let key = key
            .replace('\\', "\\\\")
            .replace('"', "\\\"")
            .replace('\n', "\\n");
        let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {value}");
    }
}
