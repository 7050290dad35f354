//! `GET /` (the subscribe form) and `POST /subscribe`.
//!
//! The answer to a valid POST is the same page whatever the address's history, so the form
//! cannot be used to learn who subscribes. Nothing about a known address changes here: a new
//! address becomes pending and gets a confirmation link; a pending one gets the link again; a
//! confirmed or unsubscribed one gets a link to its preferences. Every email is queued in the
//! outbox, at most one per address per hour and at most `[web] confirmations_per_hour` in all
//! (429 beyond it); the form is rate-limited per client IP (per /64 network for IPv6) and
//! refused when posted from another site.

use std::collections::BTreeSet;

use askama::Template;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use governor::clock::{Clock as _, DefaultClock};

use super::AppState;
use super::client_ip::{ClientIp, consent_evidence, network_key};
use super::error::WebError;
use super::pages::{Site, TopicChoice, check_same_site, render_page, topic_names};
use crate::domain::{
    ConsentSource, SubscriberEmail, SubscriberEvent, SubscriberMail, SubscriberStatus, TopicSlug,
    transition,
};
use crate::render::{self, OutgoingMessage, Recipient, Transactional};
use crate::store::{
    AddOutcome, DeliveryKind, MailLimits, MailSlot, NewSubscriber, QueueOutcome, WebMail,
};

/// At most one email per address in this window (subscription bombing).
pub const CONFIRMATION_GAP: chrono::Duration = chrono::Duration::hours(1);

/// Retry-After when the hourly cap filled up between the check and the queueing.
pub const CAP_RACE_RETRY_SECS: u64 = 60;

/// The limits of mail asked for through a form or page, from the settings.
pub fn mail_limits(state: &AppState, slot: MailSlot) -> MailLimits {
    MailLimits {
        slot,
        min_gap: CONFIRMATION_GAP,
        per_hour: state.settings.web.confirmations_per_hour,
    }
}

/// Answers 429 while the hourly cap on mail sent on request is reached.
pub async fn check_mail_cap(state: &AppState) -> Result<(), WebError> {
    let per_hour = state.settings.web.confirmations_per_hour;
    match state.store.web_mail_cap_wait(state.now(), per_hour).await? {
        None => Ok(()),
        Some(wait) => {
            tracing::warn!(
                per_hour,
                "the hourly cap on confirmation emails is reached; refusing sign-ups"
            );
            Err(WebError::rate_limited_for(wait))
        }
    }
}

#[derive(Template)]
#[template(path = "web/subscribe.html")]
pub struct SubscribePage {
    pub site: Site,
    pub topics: Vec<TopicChoice>,
    pub email: String,
    pub error: Option<String>,
}

#[derive(Template)]
#[template(path = "web/subscribed.html")]
pub struct SubscribedPage {
    pub site: Site,
    pub email: String,
}

/// The fields of the subscribe form, as sent.
#[derive(Debug, Default)]
struct SubscribeForm {
    email: String,
    topics: Vec<String>,
    /// The hidden honeypot; people leave it empty.
    website: String,
}

fn parse_form(body: &[u8]) -> SubscribeForm {
    let mut form = SubscribeForm::default();
    for (key, value) in url::form_urlencoded::parse(body) {
        match key.as_ref() {
            "email" => form.email = value.into_owned(),
            "topic" => form.topics.push(value.into_owned()),
            "website" => form.website = value.into_owned(),
            _ => {}
        }
    }
    form
}

/// `GET /`
pub async fn form(State(state): State<AppState>) -> Result<Response, WebError> {
    let single = state.settings.topics.len() == 1;
    let page = SubscribePage {
        site: Site::from_settings(&state.settings),
        topics: TopicChoice::all(&state.settings, |_| single),
        email: String::new(),
        error: None,
    };
    Ok(render_page(&page)?.into_response())
}

/// `POST /subscribe`
pub async fn submit(
    State(state): State<AppState>,
    ClientIp(ip): ClientIp,
    headers: HeaderMap,
    body: Bytes,
) -> Result<Response, WebError> {
    check_same_site(&state, &headers)?;
    if let Some(limiter) = &state.subscribe_limiter
        && let Err(not_until) = limiter.check_key(&network_key(ip))
    {
        return Err(WebError::rate_limited_for(
            not_until.wait_time_from(DefaultClock::default().now()),
        ));
    }
    let form = parse_form(&body);
    let (email, topics) = match validate(&state, &form) {
        Ok(valid) => valid,
        Err(message) => return form_with_error(&state, &form, message),
    };
    // Before anything about the address is looked at, so every address gets the same answer.
    check_mail_cap(&state).await?;
    if !form.website.is_empty() {
        tracing::info!(%ip, "subscribe form honeypot filled; ignored");
    } else {
        let (ip_text, ua) = consent_evidence(&state, ip, &headers);
        subscribe(&state, &email, &topics, ip_text, ua).await?;
    }
    let page = SubscribedPage {
        site: Site::from_settings(&state.settings),
        email: email.to_string(),
    };
    Ok(render_page(&page)?.into_response())
}

/// Checks the address and topics; the error is a sentence for the form.
fn validate(
    state: &AppState,
    form: &SubscribeForm,
) -> Result<(SubscriberEmail, Vec<TopicSlug>), String> {
    let email = SubscriberEmail::parse(&form.email)
        .map_err(|e| format!("Please check the email address: {e}."))?;
    let mut topics = BTreeSet::new();
    for raw in &form.topics {
        let known = state.settings.topic(raw).is_some();
        let slug = TopicSlug::parse(raw)
            .ok()
            .filter(|_| known)
            .ok_or_else(|| {
                "One of the chosen topics does not exist. Please choose from the list.".to_string()
            })?;
        topics.insert(slug);
    }
    if topics.is_empty() {
        return Err("Please choose at least one topic.".into());
    }
    Ok((email, topics.into_iter().collect()))
}

fn form_with_error(
    state: &AppState,
    form: &SubscribeForm,
    message: String,
) -> Result<Response, WebError> {
    let chosen: Vec<&str> = form.topics.iter().map(String::as_str).collect();
    let page = SubscribePage {
        site: Site::from_settings(&state.settings),
        topics: TopicChoice::all(&state.settings, |slug| chosen.contains(&slug)),
        // Shown back in the field, but never more than an address can be.
        email: form
            .email
            .chars()
            .filter(|c| !c.is_control())
            .take(254)
            .collect(),
        error: Some(message),
    };
    Ok((StatusCode::BAD_REQUEST, render_page(&page)?).into_response())
}

async fn subscribe(
    state: &AppState,
    email: &SubscriberEmail,
    topics: &[TopicSlug],
    ip: Option<String>,
    user_agent: Option<String>,
) -> Result<(), WebError> {
    let store = &state.store;
    let Some(known) = store.find_subscriber(email).await? else {
        // A new address: `add_subscriber` takes the decision, suppression list included, in its
        // transaction.
        let new = NewSubscriber {
            email: email.clone(),
            topics: topics.to_vec(),
            status: SubscriberStatus::Pending,
            timezone: None,
            source: ConsentSource::Web,
            consent_version: state.settings.newsletter.consent_version.clone(),
            consented_at: None,
            resubscribe: false,
            ip,
            user_agent,
        };
        return match store.add_subscriber(&new, state.now()).await? {
            AddOutcome::Created { id } => {
                let names = topic_names(&state.settings, topics);
                let mail = Transactional::Confirm {
                    topic_names: &names,
                };
                send(state, id, email, &mail).await
            }
            // Created by a concurrent request a moment ago: that request sends the link.
            AddOutcome::Updated { .. } => Ok(()),
            // An erased address (or erased a moment ago): it stays quiet.
            AddOutcome::Suppressed { .. } => Ok(()),
        };
    };
    // For a known address the suppression list changes nothing (see `transition`'s table).
    let decision = transition(
        Some(known.status),
        SubscriberEvent::WebSignup { listed: false },
    );
    match decision.mail {
        Some(SubscriberMail::Confirmation) => {
            let names = topic_names(&state.settings, &known.topics);
            let mail = Transactional::Confirm {
                topic_names: &names,
            };
            send(state, known.id, email, &mail).await
        }
        Some(SubscriberMail::PreferencesLink) => {
            send(state, known.id, email, &Transactional::PreferencesLink).await
        }
        // Bounced or complained: it stays quiet.
        None => Ok(()),
    }
}

/// Renders `mail` for subscriber `id` at `now`.
pub fn render_mail(
    state: &AppState,
    id: i64,
    email: &SubscriberEmail,
    mail: &Transactional<'_>,
    now: DateTime<Utc>,
) -> Result<OutgoingMessage, WebError> {
    let recipient = Recipient {
        subscriber_id: id,
        email: email.clone(),
    };
    render::transactional_message(
        &state.settings,
        &state.tokens,
        state.dkim.as_ref(),
        &recipient,
        mail,
        now,
    )
    .map_err(|e| {
        let kind = mail.delivery_kind().as_str();
        anyhow::Error::new(e)
            .context(format!("rendering the {kind} email"))
            .into()
    })
}

/// The outbox row of `msg`, a message of `kind` for subscriber `id`.
pub fn web_mail(kind: DeliveryKind, id: i64, msg: &OutgoingMessage) -> WebMail<'_> {
    WebMail {
        kind,
        subscriber_id: id,
        to: msg.to.as_str(),
        message_id: &msg.message_id,
        payload: &msg.raw,
    }
}

/// Queues `mail` for subscriber `id`, unless the address had a message within
/// `CONFIRMATION_GAP`. Claiming the address's hourly slot and queueing the message are one
/// transaction, so a failure leaves the slot free. Beyond the hourly cap it is 429.
async fn send(
    state: &AppState,
    id: i64,
    email: &SubscriberEmail,
    mail: &Transactional<'_>,
) -> Result<(), WebError> {
    let now = state.now();
    let kind = mail.delivery_kind();
    let msg = render_mail(state, id, email, mail, now)?;
    match state
        .store
        .queue_web_mail(
            &web_mail(kind, id, &msg),
            mail_limits(state, MailSlot::Form),
            now,
        )
        .await?
    {
        QueueOutcome::Queued => {
            tracing::info!(subscriber = id, kind = kind.as_str(), "email queued");
            Ok(())
        }
        QueueOutcome::TooSoon => {
            tracing::debug!(
                subscriber = id,
                "a message went out within the hour; not again"
            );
            Ok(())
        }
        QueueOutcome::OverCap => Err(WebError::RateLimited {
            retry_after_secs: CAP_RACE_RETRY_SECS,
        }),
    }
}
