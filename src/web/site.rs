//! The frame of every page: the newsletter's name, postal address and `[theme]` (logo, footer
//! line, accent stylesheet) in the header and footer ([`Site`]), the accent stylesheet itself
//! (`GET /static/theme.css`, [`theme_stylesheet`]: the pages' strict Content-Security-Policy
//! allows no inline style), and rendering a template into an HTML response ([`render_page`]).
//! It uses no other page module, so the error pages (`error.rs`) and the pages' shared helpers
//! (`pages.rs`) both build on it without needing each other.

use askama::Template;
use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

use super::AppState;
use crate::config::{Settings, ThemeSettings};

/// The newsletter's name, postal address and looks shown on every page.
#[derive(Clone, Debug)]
pub struct Site {
    pub title: String,
    pub postal_address: String,
    /// `theme.logo_url`, shown before the title in the header.
    pub logo_url: Option<String>,
    /// `theme.footer`, shown above the postal address.
    pub footer: Option<String>,
    /// Whether `theme.accent_color` is set, so the pages link `/static/theme.css`.
    pub themed: bool,
}

impl Site {
    pub fn from_settings(settings: &Settings) -> Site {
        let theme = &settings.theme;
        Site {
            title: settings.newsletter.title.clone(),
            postal_address: settings.newsletter.postal_address.clone(),
            logo_url: theme.logo_url.as_ref().map(|u| u.as_str().to_string()),
            footer: theme.footer.clone(),
            themed: theme.accent_color.is_some(),
        }
    }

    /// For pages rendered without the settings at hand (errors; [`super::error::brand_error_page`]
    /// fills in the real one on the way out).
    pub fn generic() -> Site {
        Site {
            title: String::new(),
            postal_address: String::new(),
            logo_url: None,
            footer: None,
            themed: false,
        }
    }
}

/// Renders `page` into an HTML response body.
pub fn render_page<T: Template>(page: &T) -> Result<Html<String>, askama::Error> {
    page.render().map(Html)
}

/// The rules `theme.accent_color` adds to `templates/web/style.css`, or `None` without one: a
/// stripe above the header and the buttons (with white or near-black text, whichever reads
/// better) in both colour schemes; in the light scheme the links and focus rings too, when
/// the colour reads on white. The dark scheme keeps its own link colour.
pub fn theme_css(theme: &ThemeSettings) -> Option<String> {
    let accent = theme.accent_color?;
    let (hex, ink) = (accent.hex(), accent.ink().hex());
    let mut css = format!(
        "/* [theme] accent_color */\n\
         header.site {{ border-top: 4px solid {hex}; }}\n\
         button {{ background: {hex}; border-color: {hex}; color: {ink}; }}\n\
         button.secondary {{ background: var(--paper); border-color: {hex}; color: var(--ink); }}\n"
    );
    if accent.readable_on_white() {
        css.push_str(&format!(
            "@media not all and (prefers-color-scheme: dark) {{\n  :root {{ --accent: {hex}; --accent-ink: {ink}; }}\n}}\n"
        ));
    }
    Some(css)
}

/// `GET /static/theme.css`: the accent rules of [`theme_css`]; 404 without `theme.accent_color`.
pub async fn theme_stylesheet(State(state): State<AppState>) -> Response {
    match theme_css(&state.settings.theme) {
        Some(css) => (
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
            css,
        )
            .into_response(),
        None => StatusCode::NOT_FOUND.into_response(),
    }
}
