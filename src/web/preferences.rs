//! `GET /preferences/{token}` and `POST /preferences/{token}`: choose topics and a time zone, or
//! leave everything. Every digest and the "already subscribed" email link here. A reader who
//! had unsubscribed and ticks topics again is back (the link came to their mailbox, which is
//! the same proof of consent as a confirmation link).

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client_ip::{ClientIp, consent_evidence};
use super::error::WebError;
use super::pages::{self, Site, TopicChoice, render_page};
use super::unsubscribe::unsubscribed_page;
use crate::domain::{SubscriberEmail, SubscriberStatus, TopicSlug};
use crate::store::SubscriberRecord;
use crate::tokens::Purpose;

#[derive(Template)]
#[template(path = "web/preferences.html")]
pub struct PreferencesPage {
    pub site: Site,
    pub token: String,
    pub email: String,
    pub topics: Vec<TopicChoice>,
    pub timezone: String,
    pub unsubscribed: bool,
    pub saved: bool,
    pub error: Option<String>,
}

#[derive(Debug, Default)]
struct PreferencesForm {
    topics: Vec<String>,
    timezone: String,
    unsubscribe_all: bool,
}

fn parse_form(body: &[u8]) -> PreferencesForm {
    let mut form = PreferencesForm::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "topic" => form.topics.push(value.into_owned()),
            "timezone" => form.timezone = value.trim().to_string(),
            "action" => form.unsubscribe_all = value == "unsubscribe_all",
            _ => {}
        }
    }
    form
}

/// The subscriber a preferences link names.
async fn subscriber_for(state: &AppState, token: &str) -> Result<SubscriberRecord, WebError> {
    pages::subscriber_for(
        state,
        token,
        Purpose::Preferences,
        "This subscription no longer exists.",
    )
    .await
}

fn page(state: &AppState, token: String, record: &SubscriberRecord) -> PreferencesPage {
    PreferencesPage {
        site: Site::from_settings(&state.settings),
        token,
        email: record.email.clone(),
        topics: TopicChoice::all(&state.settings, |slug| {
            record.topics.iter().any(|t| t == slug)
        }),
        timezone: record.timezone.clone().unwrap_or_default(),
        unsubscribed: record.status.is_suppressed(),
        saved: false,
        error: None,
    }
}

/// `GET /preferences/{token}`
pub async fn show(
    State(state): State<AppState>,
    Path(token): Path<String>,
) -> Result<Response, WebError> {
    let record = subscriber_for(&state, &token).await?;
    Ok(render_page(&page(&state, token, &record))?.into_response())
}

/// `POST /preferences/{token}`
pub async fn submit(
    State(state): State<AppState>,
    Path(token): Path<String>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    let record = subscriber_for(&state, &token).await?;
    let form = parse_form(&body);
    let now = state.now();
    if form.unsubscribe_all {
        state.store.unsubscribe_all(record.id, now).await?;
        tracing::info!(
            subscriber = record.id,
            "unsubscribed from everything on the preferences page"
        );
        return unsubscribed_page(&state, record.id, None, &[]);
    }
    let (topics, timezone) = match validate(&state, &form) {
        Ok(valid) => valid,
        Err(message) => {
            let mut p = page(&state, token, &record);
            p.topics = TopicChoice::all(&state.settings, |slug| {
                form.topics.iter().any(|t| t == slug)
            });
            p.timezone = form
                .timezone
                .chars()
                .filter(|c| !c.is_control())
                .take(64)
                .collect();
            p.error = Some(message);
            return Ok((StatusCode::BAD_REQUEST, render_page(&p)?).into_response());
        }
    };
    match record.status {
        SubscriberStatus::Confirmed | SubscriberStatus::Pending => {}
        SubscriberStatus::Unsubscribed if !topics.is_empty() => {
            let email = SubscriberEmail::parse(&record.email)
                .map_err(|e| anyhow::anyhow!("stored address of subscriber {}: {e}", record.id))?;
            let (ip_text, ua) = consent_evidence(&state, ip, &headers);
            state
                .store
                .resubscribe_from_web(
                    record.id,
                    &email,
                    &topics,
                    &state.settings.newsletter.consent_version,
                    now,
                    ip_text.as_deref(),
                    ua.as_deref(),
                )
                .await?;
            tracing::info!(
                subscriber = record.id,
                "resubscribed on the preferences page"
            );
        }
        SubscriberStatus::Unsubscribed => return unsubscribed_page(&state, record.id, None, &[]),
        SubscriberStatus::Bounced | SubscriberStatus::Complained => {
            return Err(WebError::BadRequest(
                "Mail to this address could not be delivered, so it cannot be changed here. Please contact us.".into(),
            ));
        }
    }
    state
        .store
        .set_preferences(record.id, &topics, timezone.as_deref(), now)
        .await?;
    if topics.is_empty() {
        return unsubscribed_page(&state, record.id, None, &[]);
    }
    let updated = state
        .store
        .get_subscriber(record.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber {} vanished while saving", record.id))?;
    let mut p = page(&state, token, &updated);
    p.saved = true;
    Ok(render_page(&p)?.into_response())
}

fn validate(
    state: &AppState,
    form: &PreferencesForm,
) -> Result<(Vec<TopicSlug>, Option<String>), String> {
    let mut topics = Vec::new();
    for raw in &form.topics {
        let slug = TopicSlug::parse(raw)
            .ok()
            .filter(|s| state.settings.topic(s.as_str()).is_some())
            .ok_or_else(|| "One of the chosen topics does not exist.".to_string())?;
        if !topics.contains(&slug) {
            topics.push(slug);
        }
    }
    let timezone = if form.timezone.is_empty() {
        None
    } else {
        let tz = form.timezone.parse::<chrono_tz::Tz>().map_err(|_| {
            "The time zone is not known. Use a name such as Europe/Berlin or America/New_York."
                .to_string()
        })?;
        Some(tz.name().to_string())
    };
    Ok((topics, timezone))
}
