//! The frame of every page: the newsletter's name and postal address in the header and footer
//! ([`Site`]) and rendering a template into an HTML response ([`render_page`]). It uses no other
//! web module, so the error pages (`error.rs`) and the pages' shared helpers (`pages.rs`) both
//! build on it without needing each other.

use askama::Template;
use axum::response::Html;

use crate::config::Settings;

/// The newsletter's name and postal address shown on every page.
#[derive(Clone, Debug)]
pub struct Site {
    pub title: String,
    pub postal_address: String,
}

impl Site {
    pub fn from_settings(settings: &Settings) -> Site {
        Site {
            title: settings.newsletter.title.clone(),
            postal_address: settings.newsletter.postal_address.clone(),
        }
    }

    /// For pages rendered without the settings at hand (errors; [`super::error::brand_error_page`]
    /// fills in the real one on the way out).
    pub fn generic() -> Site {
        Site {
            title: String::new(),
            postal_address: String::new(),
        }
    }
}

/// Renders `page` into an HTML response body.
pub fn render_page<T: Template>(page: &T) -> Result<Html<String>, askama::Error> {
    page.render().map(Html)
}
