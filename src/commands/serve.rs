//! `tidings serve`: the web app on `[web] bind`, the scheduler and the delivery workers in one
//! process, so digests go out on schedule and a confirmation email leaves within seconds.
//! SIGTERM or Ctrl-C stops accepting work, lets in-flight requests and sends finish, then exits;
//! rows a worker had claimed but not sent are retaken when their lease expires.

use std::sync::Arc;

use anyhow::Context as _;

use super::{CommandResult, Context};
use crate::web::Application;

pub async fn run(ctx: &Context) -> CommandResult {
    let settings = Arc::new(ctx.settings.clone());
    let app = Application::build(settings.clone(), ctx.store.clone()).await?;
    let addr = app.local_addr().context("reading the bound address")?;
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
    let mut web_stop = stop_rx;
    let web = tokio::spawn(app.run_until(async move {
        let _ = web_stop.wait_for(|stop| *stop).await;
    }));

    shutdown_signal().await;
    tracing::info!("shutting down: finishing in-flight requests and sends");
    let _ = stop_tx.send(true);
    let web_result = web.await.context("the web task panicked")?;
    let worker_result = workers.await.context("the delivery workers panicked")?;
    let scheduler_result = scheduler.await.context("the scheduler panicked")?;
    web_result?;
    worker_result.context("the delivery workers failed")?;
    scheduler_result.context("the scheduler failed")?;
    Ok(())
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
