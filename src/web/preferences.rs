//! `GET /preferences/{token}` and `POST /preferences/{token}`: choose topics and a time zone, or
//! leave everything. Every digest and the "already subscribed" email link here.
//!
//! A reader who is not confirmed (who unsubscribed, or never confirmed) and ticks topics is
//! not subscribed by the POST: the link may have been forwarded with a digest, so like a new
//! sign-up they become (or stay) pending and get a fresh confirmation email (double opt-in);
//! the address stays on the suppression list until they confirm. That confirmation has its own
//! once-an-hour slot per address and counts towards `[web] confirmations_per_hour`. The form is
//! refused when posted from another site.

use askama::Template;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::client_ip::{ClientIp, consent_evidence};
use super::error::WebError;
use super::pages::{self, Site, TopicChoice, check_same_site, render_page, topic_names};
use super::subscribe::{CAP_RACE_RETRY_SECS, check_mail_cap, mail_limits, render_mail, web_mail};
use super::unsubscribe::unsubscribed_page;
use crate::domain::{
    Step, SubscriberEmail, SubscriberEvent, SubscriberMail, SubscriberStatus, TopicSlug, transition,
};
use crate::render::Transactional;
use crate::store::{ConfirmationRequest, MailSlot, QueueOutcome, SubscriberRecord};
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
    /// Subscribed, but not confirmed yet.
    pub pending: bool,
    pub saved: bool,
    /// A confirmation email was queued just now.
    pub confirmation_sent: bool,
    /// A confirmation was asked for, but one went out less than an hour ago.
    pub confirmation_recent: bool,
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
        pending: record.status == SubscriberStatus::Pending,
        saved: false,
        confirmation_sent: false,
        confirmation_recent: false,
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
    check_same_site(&state, &headers)?;
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
    let mut confirmation = None;
    let event = SubscriberEvent::SavePreferences {
        any_topic: !topics.is_empty(),
    };
    let decision = transition(Some(record.status), event);
    match (decision.mail, decision.step) {
        // Not confirmed: become (or stay) pending with the topics and get a confirmation.
        (Some(SubscriberMail::Confirmation), _) => {
            let outcome =
                request_confirmation(&state, &record, &topics, timezone.as_deref(), ip, &headers)
                    .await?;
            confirmation = Some(outcome);
        }
        // Mail to the address failed or was reported as spam; not changed from the web.
        (_, Step::Refuse(_)) => {
            return Err(WebError::BadRequest(
                "Mail to this address could not be delivered, so it cannot be changed here. Please contact us.".into(),
            ));
        }
        // An unsubscribed reader who ticked nothing.
        (_, Step::Nothing) => {
            return unsubscribed_page(&state, record.id, None, &[]);
        }
        // Saved; no topics at all unsubscribes.
        (_, Step::Stay | Step::Become(_) | Step::Create(_)) => {
            state
                .store
                .set_preferences(record.id, &topics, timezone.as_deref(), now)
                .await?;
        }
    }
    if topics.is_empty() {
        return unsubscribed_page(&state, record.id, None, &[]);
    }
    let updated = state
        .store
        .get_subscriber(record.id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("subscriber {} vanished while saving", record.id))?;
    let mut p = page(&state, token, &updated);
    match confirmation {
        None => p.saved = true,
        Some(QueueOutcome::Queued) => p.confirmation_sent = true,
        Some(_) => p.confirmation_recent = true,
    }
    Ok(render_page(&p)?.into_response())
}

/// A reader who is not confirmed chose topics: they become (or stay) pending with those topics
/// and get a confirmation email, in one transaction. 429 beyond the hourly cap.
async fn request_confirmation(
    state: &AppState,
    record: &SubscriberRecord,
    topics: &[TopicSlug],
    timezone: Option<&str>,
    ip: std::net::IpAddr,
    headers: &HeaderMap,
) -> Result<QueueOutcome, WebError> {
    let now = state.now();
    let email = SubscriberEmail::parse(&record.email)
        .map_err(|e| anyhow::anyhow!("stored address of subscriber {}: {e}", record.id))?;
    let names = topic_names(&state.settings, topics);
    let confirmation = Transactional::Confirm {
        topic_names: &names,
    };
    let msg = render_mail(state, record.id, &email, &confirmation, now)?;
    let (ip_text, ua) = consent_evidence(state, ip, headers);
    let request = ConfirmationRequest {
        id: record.id,
        topics,
        timezone,
        consent_version: &state.settings.newsletter.consent_version,
        ip: ip_text.as_deref(),
        user_agent: ua.as_deref(),
    };
    let outcome = state
        .store
        .request_confirmation_from_web(
            &request,
            &web_mail(confirmation.delivery_kind(), record.id, &msg),
            mail_limits(state, MailSlot::Reconfirm),
            now,
        )
        .await?;
    match outcome {
        // Confirmed, bounced or complained a moment ago: nothing changed.
        None => Err(WebError::BadRequest(
            "This subscription changed while the page was open. Please open the link again.".into(),
        )),
        Some(QueueOutcome::OverCap) => {
            check_mail_cap(state).await?;
            Err(WebError::RateLimited {
                retry_after_secs: CAP_RACE_RETRY_SECS,
            })
        }
        Some(outcome) => {
            tracing::info!(
                subscriber = record.id,
                queued = outcome == QueueOutcome::Queued,
                "confirmation asked for on the preferences page"
            );
            Ok(outcome)
        }
    }
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
