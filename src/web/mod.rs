//! The web app: subscribe, confirm, preferences, unsubscribe (RFC 8058), archive, health and metrics.
//!
//! [`router`] builds the whole app from an [`AppState`] (handlers are testable with tower's
//! `oneshot`); [`Application`] binds the listener from `[web] bind` and serves it (on the accept
//! loop of `listener.rs`: header timeout, connection caps, shutdown deadline) until a shutdown
//! future resolves. One file per page; [`error::WebError`] maps failures to status codes
//! and pages that never show internals. No page needs JavaScript and no GET changes state.

mod archive;
mod client_ip;
mod confirm;
mod error;
mod listener;
mod ops;
pub use ops::{INSTANCE_HEADER, instance_id};
mod pages;
mod preferences;
mod site;
mod subscribe;
mod unsubscribe;
mod webhooks;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use axum::Router;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::routing::{get, post};
use chrono::{DateTime, Utc};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::set_header::SetResponseHeaderLayer;
use tower_http::timeout::TimeoutLayer;
use tower_http::trace::TraceLayer;

pub use client_ip::ClientIp;
pub use error::WebError;
pub use webhooks::SnsCertFetcher;

use crate::config::Settings;
use crate::inbound::Ingester;
use crate::render::DkimSigner;
use crate::store::Store;
use crate::tokens::TokenSigner;

/// The content security policy of every page: no script at all, styles only from our stylesheet.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; style-src 'self'; img-src 'self' https: data:; \
     form-action 'self'; base-uri 'none'; frame-ancestors 'none'";

/// Where the time comes from; tests substitute a fixed clock.
pub type Clock = Arc<dyn Fn() -> DateTime<Utc> + Send + Sync>;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    pub settings: Arc<Settings>,
    pub store: Store,
    pub tokens: TokenSigner,
    pub dkim: Option<DkimSigner>,
    pub clock: Clock,
    /// Per-client-IP limit on `POST /subscribe`; `None` when `[web] subscribe_per_minute = 0`.
    pub subscribe_limiter: Option<Arc<DefaultKeyedRateLimiter<IpAddr>>>,
    /// Fetches SNS signing certificates for `POST /webhooks/ses` (tests substitute one that
    /// reaches a loopback server).
    pub sns: SnsCertFetcher,
    /// Matches and records webhook events (the path every bounce and complaint takes).
    pub ingester: Ingester,
}

impl AppState {
    /// Builds the state from validated settings and an open store, on the system clock.
    pub fn new(settings: Arc<Settings>, store: Store) -> anyhow::Result<AppState> {
        let tokens = TokenSigner::from_settings(&settings.newsletter);
        let dkim = DkimSigner::from_settings(&settings.dkim).context("loading the DKIM key")?;
        let subscribe_limiter =
            NonZeroU32::new(settings.web.subscribe_per_minute).map(|per_minute| {
                let burst = NonZeroU32::new(settings.web.subscribe_burst).unwrap_or(per_minute);
                Arc::new(RateLimiter::keyed(
                    Quota::per_minute(per_minute).allow_burst(burst),
                ))
            });
        let sns = SnsCertFetcher::new()?;
        let ingester = Ingester::new(&settings, store.clone());
        Ok(AppState {
            settings,
            ingester,
            store,
            tokens,
            dkim,
            clock: Arc::new(Utc::now),
            subscribe_limiter,
            sns,
        })
    }

    /// Replaces the clock (tests).
    pub fn with_clock(mut self, clock: Clock) -> AppState {
        self.clock = clock;
        self
    }

    pub fn now(&self) -> DateTime<Utc> {
        (self.clock)()
    }

    /// `newsletter.base_url` without a trailing slash.
    pub fn base_url(&self) -> &str {
        self.settings.newsletter.base_url.trim_end_matches('/')
    }
}

/// The whole web app as a router, with its middleware.
pub fn router(state: AppState) -> Router {
    let web = &state.settings.web;
    let timeout = Duration::from_secs(web.request_timeout_secs);
    let body_limit = web.max_body_bytes;
    Router::new()
        .route("/", get(subscribe::form))
        .route("/subscribe", post(subscribe::submit))
        .route("/confirm/{token}", get(confirm::show).post(confirm::submit))
        .route(
            "/preferences/{token}",
            get(preferences::show).post(preferences::submit),
        )
        .route(
            "/unsubscribe/{token}",
            get(unsubscribe::show).post(unsubscribe::submit),
        )
        .route("/archive", get(archive::index))
        .route("/archive/{topic}", get(archive::topic))
        .route("/archive/{topic}/feed.xml", get(archive::feed))
        .route("/archive/{topic}/{issue}", get(archive::issue))
        .route("/healthz", get(ops::healthz))
        .route("/metrics", get(ops::metrics))
        .route("/static/style.css", get(ops::stylesheet))
        .route("/static/theme.css", get(site::theme_stylesheet))
        .fallback(error::not_found)
        .layer(axum::middleware::map_response_with_state(
            state.clone(),
            error::brand_error_page,
        ))
        .with_state(state.clone())
        .layer(RequestBodyLimitLayer::new(body_limit))
        // Webhooks: their own body limits, no branded error pages.
        .merge(
            Router::new()
                .route("/webhooks/generic", post(webhooks::generic::receive))
                .route("/webhooks/postmark", post(webhooks::postmark::receive))
                .route("/webhooks/mailgun", post(webhooks::mailgun::receive))
                .layer(RequestBodyLimitLayer::new(webhooks::MAX_WEBHOOK_BYTES))
                .merge(
                    Router::new()
                        .route("/webhooks/ses", post(webhooks::ses::receive))
                        .layer(RequestBodyLimitLayer::new(webhooks::ses::MAX_BODY_BYTES)),
                )
                .merge(
                    Router::new()
                        .route("/webhooks/sendgrid", post(webhooks::sendgrid::receive))
                        .layer(RequestBodyLimitLayer::new(
                            webhooks::sendgrid::MAX_BODY_BYTES,
                        )),
                )
                .with_state(state),
        )
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            timeout,
        ))
        .layer(SetResponseHeaderLayer::if_not_present(
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        // `same-origin`, not `no-referrer`: under `no-referrer` browsers send `Origin: null` on
        // our own forms' POSTs, which the same-site check (`pages::check_same_site`) refuses.
        // Other sites still get no referrer, so link tokens never leave.
        .layer(SetResponseHeaderLayer::overriding(
            header::REFERRER_POLICY,
            HeaderValue::from_static("same-origin"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            header::X_FRAME_OPTIONS,
            HeaderValue::from_static("DENY"),
        ))
        .layer(SetResponseHeaderLayer::overriding(
            HeaderName::from_static("cross-origin-opener-policy"),
            HeaderValue::from_static("same-origin"),
        ))
        .layer(TraceLayer::new_for_http())
}

/// The web app bound to its listener, ready to serve.
pub struct Application {
    listener: tokio::net::TcpListener,
    router: Router,
    state: AppState,
}

impl Application {
    /// Binds `[web] bind` (port 0 picks a free port) and builds the router.
    pub async fn build(settings: Arc<Settings>, store: Store) -> anyhow::Result<Application> {
        let state = AppState::new(settings, store)?;
        Application::from_state(state).await
    }

    /// Like [`Application::build`] with a prepared state (tests use a fixed clock).
    pub async fn from_state(state: AppState) -> anyhow::Result<Application> {
        let bind = state.settings.web.bind;
        let listener = tokio::net::TcpListener::bind(bind)
            .await
            .with_context(|| format!("cannot listen on web.bind {bind}"))?;
        Ok(Application::from_listener(state, listener))
    }

    /// Serves on a listener bound elsewhere (tests that must know the port before the settings
    /// are final, since `newsletter.base_url` names it).
    pub fn from_listener(state: AppState, listener: tokio::net::TcpListener) -> Application {
        let router = router(state.clone());
        Application {
            listener,
            router,
            state,
        }
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// The port actually bound.
    pub fn port(&self) -> u16 {
        self.listener.local_addr().map(|a| a.port()).unwrap_or(0)
    }

    /// Serves until `shutdown` resolves, then lets in-flight requests finish for at most
    /// `[web] shutdown_grace_secs` (see [`listener`] for the timeouts and connection caps).
    pub async fn run_until(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let limiter = self.state.subscribe_limiter.clone();
        // Forget idle clients now and then so the limiter's memory stays bounded.
        let sweeper = tokio::spawn(async move {
            let Some(limiter) = limiter else { return };
            let mut tick = tokio::time::interval(Duration::from_secs(60));
            loop {
                tick.tick().await;
                limiter.retain_recent();
                limiter.shrink_to_fit();
            }
        });
        let limits = listener::ConnectionLimits::from_settings(&self.state.settings.web);
        listener::serve(self.listener, self.router, limits, shutdown).await;
        sweeper.abort();
        Ok(())
    }
}
