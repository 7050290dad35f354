//! The web app's accept loop, on hyper's HTTP/1 server (axum's `serve` offers none of this):
//!
//! - a connection that has not sent a whole request head `[web] header_read_timeout_secs` after
//!   it opened, or after its previous answer (an idle keep-alive), is closed by hyper's header
//!   read timer;
//! - at most `[web] max_connections` are open, and at most `[web] max_connections_per_client`
//!   from one client address (an IPv6 /64 is one address; peers in `trusted_proxies` count only
//!   in the total): a connection beyond a cap is answered 503 or 429 and closed at once, so a
//!   single client cannot exhaust the process's file descriptors and the site keeps answering;
//! - on shutdown the listener is closed, every connection is asked to finish its request in
//!   flight and close, and whatever is still open `[web] shutdown_grace_secs` later is dropped.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tower::ServiceExt as _;

use super::client_ip::network_key;
use crate::config::WebSettings;

/// The limits of the accept loop, from `[web]`.
#[derive(Clone, Debug)]
pub struct ConnectionLimits {
    pub header_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_client: usize,
    pub shutdown_grace: Duration,
    /// Peers exempt from the per-client cap (`[web] trusted_proxies`, each exactly).
    pub exempt: Vec<IpAddr>,
}

impl ConnectionLimits {
    pub fn from_settings(web: &WebSettings) -> ConnectionLimits {
        ConnectionLimits {
            header_read_timeout: Duration::from_secs(web.header_read_timeout_secs),
            max_connections: web.max_connections,
            max_connections_per_client: web.max_connections_per_client,
            shutdown_grace: Duration::from_secs(web.shutdown_grace_secs),
            exempt: web
                .trusted_proxies
                .iter()
                .map(|ip| ip.to_canonical())
                .collect(),
        }
    }
}

/// Refused connections are logged at most this often (each one at debug level).
const REFUSAL_WARNING_EVERY: Duration = Duration::from_secs(60);

/// Serves `router` on `listener` until `shutdown` resolves, then drains connections for at most
/// the grace period.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let admission = Admission::new(&limits);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read_timeout);
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut connections = JoinSet::new();
    let mut last_warning: Option<Instant> = None;
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            () = &mut shutdown => break,
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(accepted) => accepted,
                    Err(e) => {
                        accept_error(e).await;
                        continue;
                    }
                };
                let slot = match admission.admit(peer.ip()) {
                    Ok(slot) => slot,
                    Err(refusal) => {
                        refuse(&stream, refusal);
                        if last_warning.is_none_or(|at| at.elapsed() >= REFUSAL_WARNING_EVERY) {
                            last_warning = Some(Instant::now());
                            tracing::warn!(
                                ?refusal,
                                %peer,
                                "refusing connections over web.max_connections or web.max_connections_per_client"
                            );
                        }
                        continue;
                    }
                };
                let _ = stream.set_nodelay(true);
                let connection = http.serve_connection(
                    TokioIo::new(stream),
                    hyper::service::service_fn(router_for_peer(router.clone(), peer)),
                );
                let mut stop = stop_rx.clone();
                connections.spawn(async move {
                    let _slot = slot;
                    tokio::pin!(connection);
                    tokio::select! {
                        result = connection.as_mut() => log_connection_end(result),
                        () = async { let _ = stop.wait_for(|stop| *stop).await; } => {
                            connection.as_mut().graceful_shutdown();
                            log_connection_end(connection.await);
                        }
                    }
                });
            }
        }
    }
    drop(listener);
    let _ = stop_tx.send(true);
    let drained = tokio::time::timeout(limits.shutdown_grace, async {
        while connections.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!(
            open = connections.len(),
            grace_secs = limits.shutdown_grace.as_secs(),
            "closing the connections still open after the shutdown grace period"
        );
        connections.shutdown().await;
    }
}

/// The per-request service of one connection: the router, told the peer's address.
fn router_for_peer(
    router: Router,
    peer: SocketAddr,
) -> impl Fn(hyper::Request<Incoming>) -> tower::util::Oneshot<Router, hyper::Request<Incoming>> + Clone
{
    move |mut request: hyper::Request<Incoming>| {
        request.extensions_mut().insert(ConnectInfo(peer));
        router.clone().oneshot(request)
    }
}

fn log_connection_end(result: Result<(), hyper::Error>) {
    if let Err(e) = result {
        tracing::debug!(error = %e, "connection ended");
    }
}

/// What `axum::serve` does on an accept error: per-connection errors are skipped; anything else
/// (EMFILE: out of file descriptors) is logged and retried a second later.
async fn accept_error(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    tracing::error!(error = %e, "accept error");
    tokio::time::sleep(Duration::from_secs(1)).await;
}

/// Why a connection was not admitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// `[web] max_connections` are open.
    Full,
    /// This client holds `[web] max_connections_per_client` already.
    ClientFull,
}

/// Answers a connection over a cap without waiting on it: one non-blocking write of a short
/// response (it fits an empty socket buffer), then the socket is closed by dropping it.
fn refuse(stream: &TcpStream, refusal: Refusal) {
    let response: &[u8] = match refusal {
        Refusal::Full => {
            tracing::debug!("connection refused: web.max_connections reached");
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
        }
        Refusal::ClientFull => {
            tracing::debug!("connection refused: web.max_connections_per_client reached");
            b"HTTP/1.1 429 Too Many Requests\r\nConnection: close\r\nRetry-After: 5\r\nContent-Type: text/plain\r\nContent-Length: 21\r\n\r\ntoo many connections\n"
        }
    };
    let _ = stream.try_write(response);
}

#[derive(Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

/// Counts open connections and admits new ones under the caps.
struct Admission {
    counts: Arc<Mutex<Counts>>,
    max_total: usize,
    max_per_client: usize,
    exempt: Vec<IpAddr>,
}

impl Admission {
    fn new(limits: &ConnectionLimits) -> Admission {
        Admission {
            counts: Arc::default(),
            max_total: limits.max_connections,
            max_per_client: limits.max_connections_per_client,
            exempt: limits.exempt.clone(),
        }
    }

    /// A slot for a connection from `peer`, released when dropped, or why there is none.
    fn admit(&self, peer: IpAddr) -> Result<Slot, Refusal> {
        let key = network_key(peer);
        let counted = !self.exempt.contains(&peer.to_canonical());
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        if counts.total >= self.max_total {
            return Err(Refusal::Full);
        }
        if counted {
            let held = counts.per_client.entry(key).or_insert(0);
            if *held >= self.max_per_client {
                return Err(Refusal::ClientFull);
            }
            *held += 1;
        }
        counts.total += 1;
        Ok(Slot {
            counts: self.counts.clone(),
            key: counted.then_some(key),
        })
    }
}

/// One admitted connection; dropping it frees its place.
struct Slot {
    counts: Arc<Mutex<Counts>>,
    /// The client key it counts against, unless exempt.
    key: Option<IpAddr>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        counts.total = counts.total.saturating_sub(1);
        if let Some(key) = self.key
            && let Some(held) = counts.per_client.get_mut(&key)
        {
            *held = held.saturating_sub(1);
            if *held == 0 {
                counts.per_client.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn admission(total: usize, per_client: usize, exempt: &[&str]) -> Admission {
        Admission::new(&ConnectionLimits {
            header_read_timeout: Duration::from_secs(1),
            max_connections: total,
            max_connections_per_client: per_client,
            shutdown_grace: Duration::from_secs(1),
            exempt: exempt.iter().map(|ip| ip.parse().unwrap()).collect(),
        })
    }

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn a_client_is_capped_and_its_places_come_back_when_connections_close() {
        let a = admission(10, 2, &[]);
        let first = a.admit(ip("198.51.100.1")).unwrap();
        let _second = a.admit(ip("198.51.100.1")).unwrap();
        assert_eq!(a.admit(ip("198.51.100.1")).err(), Some(Refusal::ClientFull));
        // Another client is not affected.
        let _other = a.admit(ip("198.51.100.2")).unwrap();
        drop(first);
        assert!(a.admit(ip("198.51.100.1")).is_ok());
    }

    #[test]
    fn the_total_cap_holds_across_clients_and_trusted_proxies() {
        let a = admission(3, 2, &["10.0.0.1"]);
        let held: Vec<Slot> = (0..3).map(|_| a.admit(ip("10.0.0.1")).unwrap()).collect();
        assert_eq!(a.admit(ip("198.51.100.7")).err(), Some(Refusal::Full));
        drop(held);
        assert!(a.admit(ip("198.51.100.7")).is_ok());
        assert_eq!(a.counts.lock().unwrap().per_client.len(), 0);
    }

    #[test]
    fn an_ipv6_slash_64_is_one_client_and_a_mapped_ipv4_is_its_ipv4() {
        let a = admission(10, 1, &[]);
        let _one = a.admit(ip("2001:db8:1:2::1")).unwrap();
        assert_eq!(
            a.admit(ip("2001:db8:1:2:ffff::9")).err(),
            Some(Refusal::ClientFull)
        );
        assert!(a.admit(ip("2001:db8:1:3::1")).is_ok());
        let _v4 = a.admit(ip("192.0.2.1")).unwrap();
        assert_eq!(
            a.admit(ip("::ffff:192.0.2.1")).err(),
            Some(Refusal::ClientFull)
        );
    }
}
