//! Operations endpoints: `GET /healthz` (the database answers and would take a write, within
//! [`HEALTH_DEADLINE`]; the header `X-Tidings-Instance` names the instance for `tidings
//! doctor`), `GET /metrics` (Prometheus text, behind
//! `Authorization: Bearer {[web] metrics_token}` when one is set, else only for loopback and
//! trusted proxies; subscribers, deliveries and issues as gauges, stored bounce events as the
//! counter `tidings_bounce_events_total` by kind and source) and the stylesheet.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use subtle::ConstantTimeEq;

use super::AppState;
use super::client_ip::ClientIp;
use super::error::WebError;
use crate::domain::{DeliveryStatus, SubscriberStatus};

/// How long `/healthz` waits for the database before answering 503: a monitor gets its answer
/// within a second even when the database is gone and the pool would keep retrying.
pub const HEALTH_DEADLINE: Duration = Duration::from_millis(800);

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

/// `GET /healthz`: 200 when the database answers and would take a write (a read-only database
/// fails), 503 otherwise or when it does not answer within [`HEALTH_DEADLINE`].
/// Every answer carries [`INSTANCE_HEADER`] with [`instance_id`], so `tidings doctor` can tell
/// that `base_url` reaches a tidings holding the same `newsletter.secret`, not another service.
pub async fn healthz(State(state): State<AppState>) -> Response {
    let mut response = healthz_answer(&state).await;
    if let Ok(id) = HeaderValue::from_str(&instance_id(&state.settings.newsletter.secret)) {
        response.headers_mut().insert(INSTANCE_HEADER, id);
    }
    response
}

/// The header of `/healthz` that names the instance.
pub const INSTANCE_HEADER: &str = "x-tidings-instance";

/// A name for the instances that share a `newsletter.secret`: the first 12 bytes of
/// HMAC-SHA256(secret, "tidings healthz instance v1"), in hex. It reveals nothing that a
/// signed link in any email does not (both are HMACs under the secret).
pub fn instance_id(secret: &crate::config::Secret) -> String {
    use hmac::{Hmac, Mac};
    // HMAC takes a key of any length; new_from_slice cannot fail for it.
    let Ok(mut mac) = Hmac::<sha2::Sha256>::new_from_slice(secret.expose().as_bytes()) else {
        return String::new();
    };
    mac.update(b"tidings healthz instance v1");
    hex::encode(&mac.finalize().into_bytes()[..12])
}

async fn healthz_answer(state: &AppState) -> Response {
    match tokio::time::timeout(HEALTH_DEADLINE, state.store.check_writable()).await {
        Ok(Ok(())) => (StatusCode::OK, "ok\n").into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "health check: the database refuses writes or is unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "database unavailable\n").into_response()
        }
        Err(_) => {
            tracing::error!(
                deadline_ms = HEALTH_DEADLINE.as_millis(),
                "health check: the database did not answer in time"
            );
            (StatusCode::SERVICE_UNAVAILABLE, "database not answering\n").into_response()
        }
    }
}

/// Who may read `/metrics`.
#[derive(Debug, PartialEq, Eq)]
enum MetricsAccess {
    Allowed,
    /// A token is set and the request does not carry it.
    Unauthorized,
    /// No token is set and the client is neither on loopback nor a trusted proxy.
    Forbidden,
}

/// The bearer token of an `Authorization` header; the scheme is case-insensitive (RFC 9110).
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_start_matches(' '))
}

/// With `[web] metrics_token` set, the token decides. Without it, only a client on loopback or
/// listed in `trusted_proxies` is answered; a request from loopback that carries forwarding
/// headers is refused too (a proxy not listed in `trusted_proxies` relayed it for someone else).
fn metrics_access(state: &AppState, headers: &HeaderMap, client: IpAddr) -> MetricsAccess {
    let expected = state.settings.web.metrics_token.expose();
    if !expected.is_empty() {
        let given = bearer_token(headers).unwrap_or("");
        return if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
            MetricsAccess::Allowed
        } else {
            MetricsAccess::Unauthorized
        };
    }
    let client = client.to_canonical();
    let trusted = state
        .settings
        .web
        .trusted_proxies
        .iter()
        .any(|p| p.to_canonical() == client);
    let forwarded = ["x-forwarded-for", "forwarded", "x-real-ip"]
        .iter()
        .any(|name| headers.contains_key(*name));
    if trusted || (client.is_loopback() && !forwarded) {
        MetricsAccess::Allowed
    } else {
        MetricsAccess::Forbidden
    }
}

/// `GET /metrics`
pub async fn metrics(
    State(state): State<AppState>,
    ClientIp(client): ClientIp,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    match metrics_access(&state, &headers, client) {
        MetricsAccess::Allowed => {}
        MetricsAccess::Unauthorized => return Err(WebError::Unauthorized),
        MetricsAccess::Forbidden => {
            return Ok((
                StatusCode::FORBIDDEN,
                "metrics answer loopback and web.trusted_proxies only; set web.metrics_token to read them from elsewhere\n",
            )
                .into_response());
        }
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
    let _ = writeln!(
        out,
        "# HELP tidings_bounce_events_total Inbound reports stored, by kind and source.\n\
         # TYPE tidings_bounce_events_total counter"
    );
    for (kind, source, n) in store.bounce_event_counts().await? {
        let _ = writeln!(
            out,
            "tidings_bounce_events_total{{kind=\"{}\",source=\"{}\"}} {n}",
            label_value(&kind),
            label_value(&source)
        );
    }
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
        let key = label_value(key);
        let _ = writeln!(out, "{name}{{{label}=\"{key}\"}} {value}");
    }
}

/// A Prometheus label value, escaped.
fn label_value(raw: &str) -> String {
    raw.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}
