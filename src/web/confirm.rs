//! `GET /confirm/{token}` shows a Confirm button and changes nothing (mail scanners fetch
//! links); `POST /confirm/{token}` confirms the pending subscriber and records consent: the time,
//! and the IP address and user agent when `[web] record_consent_ip` is on.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client_ip::{ClientIp, user_agent};
use super::error::WebError;
use super::pages::{Site, render_page, topic_name};
use crate::domain::SubscriberStatus;
use crate::store::SubscriberRecord;
use crate::tokens::Purpose;

#[derive(Template)]
#[template(path = "web/confirm.html")]
pub struct ConfirmPage {
    pub site: Site,
    pub token: String,
    pub email: String,
    pub topics: Vec<String>,
}

#[derive(Template)]
#[template(path = "web/confirmed.html")]
pub struct ConfirmedPage {
    pub site: Site,
    pub topics: Vec<String>,
    pub preferences_path: String,
}

async fn subscriber_for(state: &AppState, token: &str) -> Result<SubscriberRecord, WebError> {
    let claims = state.tokens.verify(token, Purpose::Confirm, state.now())?;
    state
        .store
        .get_subscriber(claims.subscriber_id)
        .await?
        .ok_or_else(|| {
            WebError::BadRequest(
                "This subscription no longer exists. Please subscribe again.".into(),
            )
        })
}

fn topic_names(state: &AppState, record: &SubscriberRecord) -> Vec<String> {
    record
        .topics
        .iter()
        .map(|t| topic_name(&state.settings, t))
        .collect()
}

/// `GET /confirm/{token}`
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let record = subscriber_for(&state, &token).await?;
    if record.status == SubscriberStatus::Confirmed {
        return confirmed_page(&state, &record);
    }
    let page = ConfirmPage {
        site: Site::from_settings(&state.settings),
        email: record.email.clone(),
        topics: topic_names(&state, &record),
        token,
    };
    Ok(render_page(&page)?.into_response())
}

/// `POST /confirm/{token}`
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
) -> Result<Response, WebError> {
    let record = subscriber_for(&state, &token).await?;
    match record.status {
        SubscriberStatus::Pending => {
            let record_ip = state.settings.web.record_consent_ip;
            let ip_text = record_ip.then(|| ip.to_string());
            let ua = if record_ip {
                user_agent(&headers)
            } else {
                None
            };
            state
                .store
                .confirm_subscriber(
                    record.id,
                    &[],
                    state.now(),
                    ip_text.as_deref(),
                    ua.as_deref(),
                )
                .await?;
            tracing::info!(subscriber = record.id, "subscription confirmed");
        }
        SubscriberStatus::Confirmed => {}
        SubscriberStatus::Unsubscribed
        | SubscriberStatus::Bounced
        | SubscriberStatus::Complained => {
            return Err(WebError::BadRequest(
                "This address has left the newsletter since the link was sent. Please subscribe again from the front page.".into(),
            ));
        }
    }
    confirmed_page(&state, &record)
}

fn confirmed_page(state: &AppState, record: &SubscriberRecord) -> Result<Response, WebError> {
    let page = ConfirmedPage {
        site: Site::from_settings(&state.settings),
        topics: topic_names(state, record),
        preferences_path: format!("/preferences/{}", state.tokens.preferences(record.id)),
    };
    Ok(render_page(&page)?.into_response())
}
