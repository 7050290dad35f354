//! `GET /confirm/{token}` shows a Confirm button and changes nothing (mail scanners fetch
//! links); `POST /confirm/{token}` confirms the pending subscriber and records consent: the time,
//! and the IP address and user agent when `[web] record_consent_ip` is on. A reader who had
//! unsubscribed and asked to rejoin comes off the suppression list here. The POST is refused
//! when posted from another site.

use askama::Template;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client_ip::{ClientIp, consent_evidence};
use super::error::WebError;
use super::pages::{self, Site, check_same_site, render_page, topic_names};
use crate::domain::{Step, SubscriberEvent, SubscriberStatus, transition};
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

/// The subscriber a confirmation link names.
async fn subscriber_for(state: &AppState, token: &str) -> Result<SubscriberRecord, WebError> {
    pages::subscriber_for(
        state,
        token,
        Purpose::Confirm,
        "This subscription no longer exists. Please subscribe again.",
    )
    .await
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
        topics: topic_names(&state.settings, &record.topics),
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
    check_same_site(&state, &headers)?;
    let record = subscriber_for(&state, &token).await?;
    match transition(Some(record.status), SubscriberEvent::Confirm).step {
        Step::Become(_) => {
            let (ip_text, ua) = consent_evidence(&state, ip, &headers);
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
        Step::Refuse(_) => {
            return Err(WebError::BadRequest(
                "This address has left the newsletter since the link was sent. Please subscribe again from the front page.".into(),
            ));
        }
        // Already confirmed.
        Step::Nothing | Step::Stay | Step::Create(_) => {}
    }
    confirmed_page(&state, &record)
}

fn confirmed_page(state: &AppState, record: &SubscriberRecord) -> Result<Response, WebError> {
    let page = ConfirmedPage {
        site: Site::from_settings(&state.settings),
        topics: topic_names(&state.settings, &record.topics),
        preferences_path: format!("/preferences/{}", state.tokens.preferences(record.id)),
    };
    Ok(render_page(&page)?.into_response())
}
