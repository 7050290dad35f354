//! The IMAP poller `serve` runs when `[bounces] imap_url` is set: every `poll_secs` it logs in
//! (implicit TLS through rustls with aws-lc-rs; plain only on loopback, as the configuration
//! allows), selects the mailbox, and in batches (50 messages, 8 MiB) fetches their bytes (at most
//! `bounce::MAX_MESSAGE_BYTES` each, without setting `\Seen`), stores each through the shared
//! [`Ingester::ingest`] and moves it to `processed_folder` when it matched a delivery or
//! subscriber, else to `unmatched_folder` (both created when missing). The move is `UID MOVE`;
//! without MOVE it is `UID COPY`, then `\Deleted` and an expunge, so no message is ever removed
//! before its copy exists. When the store fails the message stays in the mailbox and the poll
//! stops; the next poll tries again (an event already stored is recognised by its Message-ID).
//! A failed poll is logged, without the password, and the wait before the next one doubles up
//! to 15 minutes. The `stop` signal of `serve` ends the loop at once: a poll cut short leaves
//! each message either in the mailbox or moved.

use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::Arc;
use std::time::Duration;

use async_imap::Session;
use futures::TryStreamExt as _;
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::{self, ClientConfig, RootCertStore};

use super::{Ingester, Source};
use crate::bounce::MAX_MESSAGE_BYTES;
use crate::config::ImapSettings;

/// The longest any one network step (connect, handshake, one IMAP command) may take.
const STEP_TIMEOUT: Duration = Duration::from_secs(60);
/// Messages fetched, stored and moved together, one round trip per batch rather than per
/// message: at most this many...
const BATCH: usize = 50;
/// ...and at most this many bytes (as the server counts them, each capped at
/// `bounce::MAX_MESSAGE_BYTES`), unless one message alone is larger.
const BATCH_BYTES: u64 = 8 * 1024 * 1024;
/// The longest wait between polls after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(15 * 60);

/// Why a poll failed (nothing about the message store: see [`PollSummary::store_error`]).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    #[error("cannot connect to {what}: {source}")]
    Connect {
        what: String,
        source: std::io::Error,
    },
    #[error("TLS with {what}: {source}")]
    Tls {
        what: String,
        source: std::io::Error,
    },
    #[error("{what}: {source}")]
    Imap {
        what: &'static str,
        source: async_imap::error::Error,
    },
    #[error("{0}: no answer within {secs}s", secs = STEP_TIMEOUT.as_secs())]
    Timeout(&'static str),
    #[error("the server closed the connection before its greeting")]
    NoGreeting,
}

/// What one poll did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollSummary {
    /// Messages found in the mailbox.
    pub found: usize,
    /// Moved to `processed_folder` (they matched a delivery or subscriber).
    pub processed: usize,
    /// Moved to `unmatched_folder`.
    pub unmatched: usize,
    /// Left in the mailbox for the next poll because the store failed.
    pub left: usize,
    /// The store's error, when it failed.
    pub store_error: Option<String>,
}

/// The configured mailbox, its TLS set-up, and the ingest path.
pub struct Poller {
    settings: ImapSettings,
    tls: Option<TlsConnector>,
    ingester: Ingester,
}

impl Poller {
    /// Sets up TLS (the system's trust store, or `imap_ca_file`'s certificates); fails, naming
    /// the key, when the CA file cannot be read.
    pub fn new(settings: ImapSettings, ingester: Ingester) -> anyhow::Result<Poller> {
        let tls = if settings.tls {
            Some(TlsConnector::from(Arc::new(client_config(&settings)?)))
        } else {
            None
        };
        Ok(Poller {
            settings,
            tls,
            ingester,
        })
    }

    /// Polls every `poll_secs` until `stop` turns true; failures are logged and back off.
    pub async fn run(self, mut stop: tokio::sync::watch::Receiver<bool>) {
        let every = Duration::from_secs(self.settings.poll_secs);
        let mailbox = self.settings.label();
        tracing::info!(%mailbox, poll_secs = every.as_secs(), "polling the bounce mailbox");
        let mut wait = every;
        loop {
            let outcome = tokio::select! {
                outcome = self.poll_once() => outcome,
                _ = stop.wait_for(|s| *s) => break,
            };
            wait = match outcome {
                Ok(summary) if summary.store_error.is_none() => {
                    if summary.found > 0 {
                        tracing::info!(
                            %mailbox,
                            found = summary.found,
                            processed = summary.processed,
                            unmatched = summary.unmatched,
                            "bounce mailbox polled"
                        );
                    }
                    every
                }
                Ok(summary) => {
                    let next = (wait * 2).min(MAX_BACKOFF).max(every);
                    tracing::warn!(
                        %mailbox,
                        left = summary.left,
                        error = summary.store_error.as_deref().unwrap_or(""),
                        retry_secs = next.as_secs(),
                        "bounce mailbox: the database failed; messages left in the mailbox"
                    );
                    next
                }
                Err(e) => {
                    let next = (wait * 2).min(MAX_BACKOFF).max(every);
                    tracing::warn!(
                        %mailbox,
                        error = %e,
                        retry_secs = next.as_secs(),
                        "bounce mailbox poll failed"
                    );
                    next
                }
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop.wait_for(|s| *s) => break,
            }
        }
        tracing::info!(%mailbox, "bounce mailbox poller stopped");
    }

    /// One poll: log in, take every message of the mailbox through the ingest path, move it,
    /// log out.
    pub async fn poll_once(&self) -> Result<PollSummary, PollError> {
        let s = &self.settings;
        let what = || format!("{}:{}", s.host, s.port);
        let tcp = timed("connect", TcpStream::connect((s.host.as_str(), s.port)))
            .await?
            .map_err(|source| PollError::Connect {
                what: what(),
                source,
            })?;
        let _ = tcp.set_nodelay(true);
        match &self.tls {
            Some(tls) => {
                let name = ServerName::try_from(s.host.clone()).map_err(|e| PollError::Tls {
                    what: what(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidInput, e),
                })?;
                let stream = timed("TLS handshake", tls.connect(name, tcp))
                    .await?
                    .map_err(|source| PollError::Tls {
                        what: what(),
                        source,
                    })?;
                self.poll_on(stream).await
            }
            None => self.poll_on(tcp).await,
        }
    }

    async fn poll_on<T>(&self, stream: T) -> Result<PollSummary, PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
    {
        let s = &self.settings;
        let mut client = async_imap::Client::new(stream);
        let greeting = timed("greeting", client.read_response()).await?;
        match greeting {
            Ok(Some(_)) => {}
            Ok(None) => return Err(PollError::NoGreeting),
            Err(e) => {
                return Err(PollError::Imap {
                    what: "greeting",
                    source: e.into(),
                });
            }
        }
        let mut session = timed("LOGIN", client.login(&s.user, s.password.expose()))
            .await?
            .map_err(|(source, _)| PollError::Imap {
                what: "LOGIN",
                source,
            })?;
        let result = self.take_messages(&mut session).await;
        // Best effort: the work is done (or failed) either way.
        let _ = tokio::time::timeout(STEP_TIMEOUT, session.logout()).await;
        result
    }

    async fn take_messages<T>(&self, session: &mut Session<T>) -> Result<PollSummary, PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
    {
        let s = &self.settings;
        let caps = imap("CAPABILITY", session.capabilities()).await?;
        let can_move = caps.has_str("MOVE");
        let uidplus = caps.has_str("UIDPLUS");
        for folder in [&s.processed_folder, &s.unmatched_folder] {
            ensure_folder(session, folder).await?;
        }
        imap("SELECT", session.select(&s.mailbox)).await?;
        let mut uids: Vec<u32> = imap("UID SEARCH", session.uid_search("UNDELETED"))
            .await?
            .into_iter()
            .collect();
        uids.sort_unstable();
        let mut summary = PollSummary {
            found: uids.len(),
            ..PollSummary::default()
        };
        let sizes = if uids.is_empty() {
            HashMap::new()
        } else {
            sizes(session).await?
        };
        let mut done_before = 0;
        for batch in batches(&uids, &sizes) {
            let messages = fetch(session, batch).await?;
            let (mut processed, mut unmatched) = (Vec::new(), Vec::new());
            for (i, uid) in batch.iter().enumerate() {
                // A message gone since the search (another client moved it) is skipped.
                let Some(bytes) = messages.get(uid) else {
                    continue;
                };
                match self
                    .ingester
                    .ingest(bytes, Source::Imap, None, chrono::Utc::now())
                    .await
                {
                    Ok(done) if done.matched => processed.push(*uid),
                    Ok(_) => unmatched.push(*uid),
                    Err(e) => {
                        summary.left = uids.len() - done_before - i;
                        summary.store_error = Some(e.to_string());
                        break;
                    }
                }
            }
            // What was stored is filed even when the store failed later in the batch.
            self.file(session, &processed, &s.processed_folder, can_move, uidplus)
                .await?;
            self.file(session, &unmatched, &s.unmatched_folder, can_move, uidplus)
                .await?;
            summary.processed += processed.len();
            summary.unmatched += unmatched.len();
            if summary.store_error.is_some() {
                break;
            }
            done_before += batch.len();
        }
        Ok(summary)
    }

    /// Moves the messages `uids` to `folder`: `UID MOVE`, or without MOVE `UID COPY`, then
    /// `\Deleted` and `UID EXPUNGE` (a plain `EXPUNGE` without UIDPLUS), so nothing is removed
    /// before its copy exists.
    async fn file<T>(
        &self,
        session: &mut Session<T>,
        uids: &[u32],
        folder: &str,
        can_move: bool,
        uidplus: bool,
    ) -> Result<(), PollError>
    where
        T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
    {
        if uids.is_empty() {
            return Ok(());
        }
        let set = uid_set(uids);
        if can_move {
            return imap("UID MOVE", session.uid_mv(&set, folder)).await;
        }
        imap("UID COPY", session.uid_copy(&set, folder)).await?;
        drain(
            "UID STORE",
            session.uid_store(&set, "+FLAGS.SILENT (\\Deleted)"),
        )
        .await?;
        if uidplus {
            drain("UID EXPUNGE", session.uid_expunge(&set)).await
        } else {
            drain("EXPUNGE", session.expunge()).await
        }
    }
}

/// `uids` (in order) cut into batches of at most [`BATCH`] messages and [`BATCH_BYTES`] bytes by
/// `sizes` (an unknown size counts as the cap); a batch holds at least one message.
fn batches<'a>(uids: &'a [u32], sizes: &HashMap<u32, u32>) -> Vec<&'a [u32]> {
    let cap = MAX_MESSAGE_BYTES as u64;
    let mut out = Vec::new();
    let (mut start, mut bytes) = (0, 0u64);
    for (i, uid) in uids.iter().enumerate() {
        let size = sizes.get(uid).map_or(cap, |s| u64::from(*s).min(cap));
        if i > start && (i - start == BATCH || bytes + size > BATCH_BYTES) {
            out.push(&uids[start..i]);
            (start, bytes) = (i, 0);
        }
        bytes += size;
    }
    if start < uids.len() {
        out.push(&uids[start..]);
    }
    out
}

/// The size of every message in the selected mailbox, by UID.
async fn sizes<T>(session: &mut Session<T>) -> Result<HashMap<u32, u32>, PollError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let stream = imap("UID FETCH", session.uid_fetch("1:*", "(UID RFC822.SIZE)")).await?;
    let fetches = timed("UID FETCH", stream.try_collect::<Vec<_>>())
        .await?
        .map_err(|source| PollError::Imap {
            what: "UID FETCH",
            source,
        })?;
    Ok(fetches
        .iter()
        .filter_map(|f| Some((f.uid?, f.size?)))
        .collect())
}

/// `uids` as an IMAP sequence set ("3,4,9").
fn uid_set(uids: &[u32]) -> String {
    uids.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// The TLS client configuration: aws-lc-rs, and either the certificates of `imap_ca_file` or
/// the platform's verifier.
fn client_config(settings: &ImapSettings) -> anyhow::Result<ClientConfig> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| anyhow::anyhow!("bounces.imap_url: cannot set up TLS: {e}"))?;
    let config = match &settings.ca_file {
        Some(path) => {
            let mut roots = RootCertStore::empty();
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| {
                    anyhow::anyhow!("bounces.imap_ca_file: cannot read {}: {e}", path.display())
                })?;
            for cert in certs {
                roots.add(cert).map_err(|e| {
                    anyhow::anyhow!("bounces.imap_ca_file: {}: {e}", path.display())
                })?;
            }
            if roots.is_empty() {
                anyhow::bail!(
                    "bounces.imap_ca_file: {} holds no PEM certificate",
                    path.display()
                );
            }
            builder.with_root_certificates(roots).with_no_client_auth()
        }
        None => {
            use rustls_platform_verifier::BuilderVerifierExt as _;
            builder
                .with_platform_verifier()
                .map_err(|e| anyhow::anyhow!("bounces.imap_url: cannot set up TLS: {e}"))?
                .with_no_client_auth()
        }
    };
    Ok(config)
}

/// Creates `folder` unless the server lists it already.
async fn ensure_folder<T>(session: &mut Session<T>, folder: &str) -> Result<(), PollError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    // The configuration refuses '"', '\\' and control characters in folder names.
    let pattern = format!("\"{folder}\"");
    let listed = {
        let names = imap("LIST", session.list(None, Some(&pattern))).await?;
        timed("LIST", names.try_collect::<Vec<_>>())
            .await?
            .map_err(|source| PollError::Imap {
                what: "LIST",
                source,
            })?
    };
    if listed.is_empty() {
        imap("CREATE", session.create(folder)).await?;
        tracing::info!(folder, "created the folder in the bounce mailbox");
    }
    Ok(())
}

/// The bytes of the messages `uids` (at most [`MAX_MESSAGE_BYTES`] of each), by UID; a message
/// gone since the search is missing.
async fn fetch<T>(
    session: &mut Session<T>,
    uids: &[u32],
) -> Result<HashMap<u32, Vec<u8>>, PollError>
where
    T: AsyncRead + AsyncWrite + Unpin + Debug + Send,
{
    let query = format!("(UID BODY.PEEK[]<0.{MAX_MESSAGE_BYTES}>)");
    let fetches = {
        let stream = imap("UID FETCH", session.uid_fetch(uid_set(uids), &query)).await?;
        timed("UID FETCH", stream.try_collect::<Vec<_>>())
            .await?
            .map_err(|source| PollError::Imap {
                what: "UID FETCH",
                source,
            })?
    };
    Ok(fetches
        .iter()
        .filter_map(|f| Some((f.uid?, f.body()?.to_vec())))
        .collect())
}

/// One IMAP command, timed.
async fn imap<F, R>(what: &'static str, command: F) -> Result<R, PollError>
where
    F: Future<Output = async_imap::error::Result<R>>,
{
    timed(what, command)
        .await?
        .map_err(|source| PollError::Imap { what, source })
}

/// One IMAP command whose answer is a stream of untagged responses, read to its end.
async fn drain<F, S, I>(what: &'static str, command: F) -> Result<(), PollError>
where
    F: Future<Output = async_imap::error::Result<S>>,
    S: futures::Stream<Item = async_imap::error::Result<I>>,
{
    let stream = imap(what, command).await?;
    timed(what, stream.try_for_each(|_| async { Ok(()) }))
        .await?
        .map_err(|source| PollError::Imap { what, source })
}

/// `future` within [`STEP_TIMEOUT`].
async fn timed<F: Future>(what: &'static str, future: F) -> Result<F::Output, PollError> {
    tokio::time::timeout(STEP_TIMEOUT, future)
        .await
        .map_err(|_| PollError::Timeout(what))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_hold_at_most_fifty_messages_and_eight_mib() {
        let uids: Vec<u32> = (1..=120).collect();
        let small: HashMap<u32, u32> = uids.iter().map(|u| (*u, 2_000)).collect();
        let lens: Vec<usize> = batches(&uids, &small).iter().map(|b| b.len()).collect();
        assert_eq!(lens, [50, 50, 20]);
        // 3 MiB each: two fit in 8 MiB, a third does not.
        let big: HashMap<u32, u32> = uids.iter().map(|u| (*u, 3 << 20)).collect();
        let cut = batches(&uids[..5], &big);
        assert_eq!(cut, [&[1, 2][..], &[3, 4][..], &[5][..]]);
        // A message over the cap alone, counted at the cap; an unknown size counts as the cap.
        let huge: HashMap<u32, u32> = [(1, u32::MAX), (3, 10)].into_iter().collect();
        let cut = batches(&uids[..3], &huge);
        assert_eq!(cut, [&[1, 2][..], &[3][..]]);
        assert!(batches(&[], &huge).is_empty());
    }
}
