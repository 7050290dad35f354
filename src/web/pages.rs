//! What every page shares: the site header and footer and rendering a template ([`Site`] and
//! [`render_page`], defined in `site.rs` so that `error.rs` can use them without this module),
//! topic checkboxes and names, the subscriber a link names ([`subscriber_for`]), and the
//! same-site check of state-changing form posts ([`check_same_site`]).

use axum::http::{HeaderMap, header};

use super::AppState;
use super::error::WebError;
pub use super::site::{Site, render_page};
use crate::config::Settings;
use crate::store::SubscriberRecord;
use crate::tokens::Purpose;

/// One topic checkbox.
#[derive(Clone, Debug)]
pub struct TopicChoice {
    pub slug: String,
    pub name: String,
    pub description: String,
    pub checked: bool,
}

impl TopicChoice {
    /// Every configured topic, checked when `is_checked` says so.
    pub fn all(settings: &Settings, is_checked: impl Fn(&str) -> bool) -> Vec<TopicChoice> {
        settings
            .topics
            .iter()
            .map(|t| TopicChoice {
                slug: t.slug.to_string(),
                name: t.name.clone(),
                description: t.description.clone(),
                checked: is_checked(&t.slug),
            })
            .collect()
    }
}

/// A topic's display name, or the slug when it is no longer configured.
pub fn topic_name(settings: &Settings, slug: &str) -> String {
    settings
        .topic(slug)
        .map(|t| t.name.clone())
        .unwrap_or_else(|| slug.to_string())
}

/// The display names of `slugs` (`String`s or `TopicSlug`s), in order.
pub fn topic_names(
    settings: &Settings,
    slugs: &[impl std::ops::Deref<Target = str>],
) -> Vec<String> {
    slugs.iter().map(|t| topic_name(settings, t)).collect()
}

/// The subscriber a link token of `purpose` names; `gone` is the message when they no longer
/// exist.
pub async fn subscriber_for(
    state: &AppState,
    token: &str,
    purpose: Purpose,
    gone: &str,
) -> Result<SubscriberRecord, WebError> {
    let claims = state.tokens.verify(token, purpose, state.now())?;
    state
        .store
        .get_subscriber(claims.subscriber_id)
        .await?
        .ok_or_else(|| WebError::BadRequest(gone.into()))
}

/// Refuses a state-changing form post sent from another site: its `Origin` header, or when it
/// has none its `Referer`, must name the origin of `newsletter.base_url`. `Origin: null` (a
/// sandboxed frame, a `no-referrer` page elsewhere) is refused too. Our pages send
/// `Referrer-Policy: same-origin`, under which browsers put our origin in `Origin` on the
/// forms' POSTs.
///
/// *Choice:* a request with neither header is accepted. Every browser in use sends `Origin` on
/// a cross-site POST, so a forged form post from another site always carries one; a request
/// with neither comes from a program (which could write any header) or through a privacy
/// proxy that strips both, and refusing it would lock such readers out for no protection.
pub fn check_same_site(state: &AppState, headers: &HeaderMap) -> Result<(), WebError> {
    let claimed = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER));
    let Some(claimed) = claimed else {
        return Ok(());
    };
    let ours = url::Url::parse(state.base_url()).map(|u| u.origin());
    let theirs = claimed
        .to_str()
        .ok()
        .and_then(|v| url::Url::parse(v.trim()).ok())
        .map(|u| u.origin());
    match (ours, theirs) {
        (Ok(ours), Some(theirs)) if ours.is_tuple() && ours == theirs => Ok(()),
        _ => {
            tracing::info!("refused a form posted from another site");
            Err(WebError::CrossSite)
        }
    }
}
