//! `tidings serve`: the web app on `[web] bind`, the scheduler and the delivery workers in one
//! process, so digests go out on schedule and a confirmation email leaves within seconds.
//! SIGTERM or Ctrl-C stops accepting work, lets in-flight requests finish for at most
//! `[web] shutdown_grace_secs` (then closes the connections still open) and sends finish, then
//! exits; rows a worker had claimed but not sent are retaken when their lease expires. At start
//! it warns when a loopback `newsletter.base_url` names another port than the one it listens on.
//! With `[bounces] imap_url` set it also polls that bounce mailbox (`crate::inbound::imap`),
//! and stops the poller with the rest.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::Context as _;

use super::{CommandResult, Context};
use crate::web::Application;

pub async fn run(ctx: &Context) -> CommandResult {
    let settings = Arc::new(ctx.settings.clone());
    // Before binding: a CA file that cannot be read stops the start, naming the key.
    let poller = match &settings.bounces.imap {
        Some(imap) => Some(
            crate::inbound::imap::Poller::new(
                imap.clone(),
                crate::inbound::Ingester::new(&settings, ctx.store.clone()),
            )
            .map_err(|e| crate::config::ConfigError(format!("{e:#}")))?,
        ),
        None => None,
    };
    let app = Application::build(settings.clone(), ctx.store.clone()).await?;
    let addr = app.local_addr().context("reading the bound address")?;
    if let Some(warning) = base_url_misses_bind(&settings.newsletter.base_url, addr) {
        eprintln!("tidings serve: warning: {warning}");
    }
    tracing::info!(%addr, "web app listening");
    eprintln!("tidings serve: listening on http://{addr}");

    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let scheduler = tokio::spawn(crate::scheduler::run(
        settings.clone(),
        ctx.store.clone(),
        Arc::new(crate::scheduler::SystemClock),
        stop_rx.clone(),
    ));
    let worker_store = ctx.store.clone();
    let worker_stop = stop_rx.clone();
    let workers = tokio::spawn(async move {
        crate::delivery::run_workers(&settings, &worker_store, worker_stop).await
    });
    let poller = poller.map(|p| tokio::spawn(p.run(stop_rx.clone())));
    let mut web_stop = stop_rx;
    let web = tokio::spawn(app.run_until(async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    }));

    shutdown_signal().await;
    tracing::info!(
        grace_secs = ctx.settings.web.shutdown_grace_secs,
        "shutting down: no new connections; finishing in-flight requests and sends"
    );
    let _ = stop_tx.send(true);
    let web_result = web.await.context("the web task panicked")?;
    let worker_result = workers.await.context("the delivery workers panicked")?;
    let scheduler_result = scheduler.await.context("the scheduler panicked")?;
    if let Some(poller) = poller {
        poller.await.context("the bounce mailbox poller panicked")?;
    }
    web_result?;
    worker_result.context("the delivery workers failed")?;
    scheduler_result.context("the scheduler failed")?;
    Ok(())
}

/// Why links would miss the web app: `base_url` names a loopback address (so the app is meant
/// to be reached directly, not through a proxy) on another port than the one `serve` listens
/// on. `None` when they agree or `base_url` is not a loopback address.
fn base_url_misses_bind(base_url: &str, bound: SocketAddr) -> Option<String> {
    let url = url::Url::parse(base_url).ok()?;
    let loopback = match url.host()? {
        url::Host::Domain(name) => {
            let name = name.to_ascii_lowercase();
            name == "localhost" || name.ends_with(".localhost")
        }
        url::Host::Ipv4(ip) => ip.is_loopback(),
        url::Host::Ipv6(ip) => ip.is_loopback(),
    };
    let port = url.port_or_known_default()?;
    (loopback && port != bound.port()).then(|| {
        format!(
            "newsletter.base_url {base_url} is a loopback address on port {port}, but web.bind \
             listens on {bound}: links in emails and on pages will point at a port nobody \
             listens on (set base_url to http://localhost:{}, or web.bind to port {port})",
            bound.port()
        )
    })
}

/// Resolves on Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        if let Err(e) = tokio::signal::ctrl_c().await {
            tracing::error!(error = %e, "cannot listen for Ctrl-C");
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(e) => {
                tracing::error!(error = %e, "cannot listen for SIGTERM");
                std::future::pending::<()>().await;
            }
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bound(text: &str) -> SocketAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_loopback_base_url_must_name_the_bound_port() {
        let at_8080 = bound("127.0.0.1:8080");
        assert_eq!(base_url_misses_bind("http://localhost:8080", at_8080), None);
        assert_eq!(
            base_url_misses_bind("http://127.0.0.1:8080/", at_8080),
            None
        );
        assert_eq!(base_url_misses_bind("http://[::1]:8080", at_8080), None);
        for wrong in [
            "http://localhost",
            "http://localhost:3000",
            "http://127.0.0.2:9",
            "https://[::1]",
            "http://news.localhost:80",
        ] {
            let warning = base_url_misses_bind(wrong, at_8080).expect(wrong);
            assert!(warning.contains("web.bind"), "{warning}");
            assert!(warning.contains(wrong), "{warning}");
        }
    }

    #[test]
    fn a_public_base_url_is_the_proxy_s_business() {
        let at_8080 = bound("127.0.0.1:8080");
        assert_eq!(
            base_url_misses_bind("https://news.example.org", at_8080),
            None
        );
        assert_eq!(base_url_misses_bind("http://192.0.2.10:80", at_8080), None);
    }
}
