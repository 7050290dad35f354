//! The worker pool: `[delivery] concurrency` tasks, each claiming a batch of due rows under a
//! lease, rendering and sending them one by one (a global `max_per_second` limit shared by all),
//! and recording each outcome while its lease is still held. No database transaction is open
//! while a message is being sent, so each task has at most one message whose outcome is
//! unknown at any moment: a crash repeats at most `concurrency` messages. Each claim records
//! this process as the lease holder; `deliver_until_idle` takes over at once the leases of a
//! process on this host that no longer runs, and says how long it waits for any other.
//!
//! The envelope sender is chosen here, per claimed row: with `[bounces] address` it is the VERP
//! address naming the row (`bounces+<tag>@...`, [`TokenSigner::verp_address`]), for digests and
//! transactional mail alike; without it, `newsletter.from`'s address. Rendering never sees it.

use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context as _;
use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tokio::sync::{Mutex, watch};

use super::transport::{Sender, Transport};
use super::{Clock, DeliveryOutcome, RetryPolicy};
use crate::config::Settings;
use crate::domain::{DeliveryStatus, SubscriberEmail};
use crate::render::{DkimSigner, OutgoingMessage, PreparedDigest, Recipient};
use crate::store::{ClaimedDelivery, DeliveryKind, HeldLease, LeaseHolder, Store};
use crate::tokens::TokenSigner;

/// How many rendered issues a worker pool keeps.
const PREPARED_CACHE: usize = 8;

/// Called once per settled message with its new status (for progress bars).
pub type Progress = Arc<dyn Fn(DeliveryStatus) + Send + Sync>;

/// What one run of the workers did.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct DeliveryReport {
    pub sent: u64,
    pub deferred: u64,
    pub failed: u64,
    /// Failed with a 5.1.x reply: the subscriber is now bounced.
    pub bounced: u64,
    /// Attempts with no SMTP reply at all (refused or dropped connection, timeout).
    pub unknown: u64,
    /// Messages recorded with the status `unknown`: no reply after their data went out, and
    /// the resends `delivery.unknown_retries` allows used up. Neither sent nor failed.
    pub undetermined: u64,
    /// Outcomes not recorded because the lease had expired (another worker owns the row).
    pub lease_lost: u64,
    /// The run stopped early because the server could not be reached at all.
    pub aborted: bool,
    /// The last error or negative reply, for the summary.
    pub last_error: Option<String>,
}

impl DeliveryReport {
    pub fn attempted(&self) -> u64 {
        self.sent + self.deferred + self.failed + self.undetermined
    }

    /// True when messages were attempted and none got any SMTP reply: the relay is unreachable.
    pub fn unreachable(&self) -> bool {
        self.sent == 0 && self.unknown > 0 && self.unknown == self.attempted()
    }
}

#[derive(Default)]
struct Counters {
    sent: AtomicU64,
    deferred: AtomicU64,
    failed: AtomicU64,
    bounced: AtomicU64,
    unknown: AtomicU64,
    undetermined: AtomicU64,
    lease_lost: AtomicU64,
    consecutive_unknown: AtomicU64,
}

/// Everything the tasks of one worker pool share.
struct Engine {
    settings: Settings,
    store: Store,
    transport: Transport,
    tokens: TokenSigner,
    dkim: Option<DkimSigner>,
    envelope_from: String,
    /// `bounces.address`: the base of each row's VERP envelope sender, when set.
    verp_base: Option<lettre::Address>,
    /// Rendered issues, least recently used first.
    prepared: Mutex<Vec<(i64, Arc<PreparedDigest>)>>,
    limiter: Option<DefaultDirectRateLimiter>,
    policy: RetryPolicy,
    owner: String,
    /// This process, recorded on each claim.
    holder: LeaseHolder,
    clock: Clock,
    progress: Option<Progress>,
    counters: Counters,
    abort: AtomicBool,
    /// Idle mode (`send`): stop when the relay cannot be reached at all.
    stop_when_unreachable: bool,
    last_error: std::sync::Mutex<Option<String>>,
}

impl Engine {
    fn new(
        settings: &Settings,
        store: &Store,
        owner: &str,
        clock: Clock,
        progress: Option<Progress>,
    ) -> anyhow::Result<Engine> {
        let transport = Transport::from_settings(settings)?;
        let dkim = DkimSigner::from_settings(&settings.dkim).context("dkim")?;
        let limiter = NonZeroU32::new(settings.delivery.max_per_second)
            .map(|n| RateLimiter::direct(Quota::per_second(n).allow_burst(NonZeroU32::MIN)));
        Ok(Engine {
            settings: settings.clone(),
            store: store.clone(),
            transport,
            tokens: TokenSigner::from_settings(&settings.newsletter),
            dkim,
            envelope_from: settings.newsletter.from.email.to_string(),
            verp_base: settings.bounces.address.clone(),
            prepared: Mutex::new(Vec::new()),
            limiter,
            policy: RetryPolicy::from_settings(&settings.delivery),
            owner: owner.to_string(),
            holder: super::lease::current_process(),
            clock,
            progress,
            counters: Counters::default(),
            abort: AtomicBool::new(false),
            stop_when_unreachable: true,
            last_error: std::sync::Mutex::new(None),
        })
    }

    fn lease(&self) -> chrono::Duration {
        chrono::Duration::seconds(
            i64::try_from(self.settings.delivery.lease_secs.max(1)).unwrap_or(300),
        )
    }

    fn report(&self) -> DeliveryReport {
        let c = &self.counters;
        DeliveryReport {
            sent: c.sent.load(Ordering::Relaxed),
            deferred: c.deferred.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            bounced: c.bounced.load(Ordering::Relaxed),
            unknown: c.unknown.load(Ordering::Relaxed),
            undetermined: c.undetermined.load(Ordering::Relaxed),
            lease_lost: c.lease_lost.load(Ordering::Relaxed),
            aborted: self.abort.load(Ordering::Relaxed),
            last_error: self.last_error.lock().ok().and_then(|g| g.clone()),
        }
    }

    /// The digest of `issue_id`, rendered once per worker pool. The cache keeps the
    /// `PREPARED_CACHE` issues used last, so a long-running `serve` does not keep every issue
    /// it ever sent (issues are frozen: one dropped is simply rendered again).
    async fn prepared(&self, issue_id: i64) -> anyhow::Result<Arc<PreparedDigest>> {
        let mut cache = self.prepared.lock().await;
        if let Some(i) = cache.iter().position(|(id, _)| *id == issue_id) {
            let entry = cache.remove(i);
            let prepared = entry.1.clone();
            cache.push(entry);
            return Ok(prepared);
        }
        let issue = self
            .store
            .get_issue(issue_id)
            .await?
            .ok_or_else(|| anyhow::anyhow!("issue {issue_id} does not exist"))?;
        let prepared = Arc::new(PreparedDigest::prepare(
            &self.settings,
            &issue.digest,
            self.dkim.clone(),
        )?);
        if cache.len() >= PREPARED_CACHE {
            cache.remove(0);
        }
        cache.push((issue_id, prepared.clone()));
        Ok(prepared)
    }

    /// The message of a claimed row, with its envelope sender: the row's VERP address when
    /// `bounces.address` is set.
    async fn message_for(&self, claim: &ClaimedDelivery) -> anyhow::Result<OutgoingMessage> {
        let mut message = self.rendered(claim).await?;
        if let Some(base) = &self.verp_base {
            message.envelope_from = self.tokens.verp_address(base, claim.id);
        }
        Ok(message)
    }

    async fn rendered(&self, claim: &ClaimedDelivery) -> anyhow::Result<OutgoingMessage> {
        let to = SubscriberEmail::parse(&claim.email)
            .map_err(|e| anyhow::anyhow!("recipient address: {e}"))?;
        match claim.kind {
            DeliveryKind::Digest => {
                let issue_id = claim
                    .issue_id
                    .ok_or_else(|| anyhow::anyhow!("digest delivery {} has no issue", claim.id))?;
                let prepared = self.prepared(issue_id).await?;
                let recipient = Recipient {
                    subscriber_id: claim.subscriber_id.unwrap_or(0),
                    email: to,
                };
                Ok(prepared.message_for(&self.tokens, &recipient, (self.clock)())?)
            }
            DeliveryKind::Confirm | DeliveryKind::Preferences => {
                let raw = claim.payload.clone().ok_or_else(|| {
                    anyhow::anyhow!("delivery {} has no message payload", claim.id)
                })?;
                Ok(OutgoingMessage {
                    message_id: claim.message_id.clone(),
                    to,
                    envelope_from: self.envelope_from.clone(),
                    raw,
                })
            }
        }
    }

    /// Renders, sends and records one claimed row. The send must end by `deadline` (inside the
    /// claim's lease): if it has not, it is abandoned as an unknown outcome, so that its outcome
    /// is recorded while the lease still holds and no other worker sends the row meanwhile.
    async fn process(
        &self,
        sender: &mut Sender<'_>,
        claim: &ClaimedDelivery,
        deadline: Instant,
    ) -> anyhow::Result<()> {
        let (outcome, no_reply) = match self.message_for(claim).await {
            Ok(message) => {
                if let Some(limiter) = &self.limiter {
                    limiter.until_ready().await;
                }
                let deadline = tokio::time::Instant::from_std(deadline);
                match tokio::time::timeout_at(deadline, sender.send(&message)).await {
                    Ok(result) => (result.outcome, result.no_reply),
                    Err(_) => (
                        DeliveryOutcome::Unknown {
                            reply: "unknown outcome: the send did not finish within the claim's \
                                    lease (delivery.lease_secs)"
                                .into(),
                        },
                        true,
                    ),
                }
            }
            Err(e) => (
                DeliveryOutcome::Failed {
                    reply: format!("cannot render: {e:#}"),
                    bounce: false,
                },
                false,
            ),
        };
        let c = &self.counters;
        if no_reply {
            c.unknown.fetch_add(1, Ordering::Relaxed);
            let n = c.consecutive_unknown.fetch_add(1, Ordering::Relaxed) + 1;
            let threshold = u64::try_from(self.settings.delivery.concurrency.max(1) * 2)
                .unwrap_or(8)
                .max(8);
            if self.stop_when_unreachable && n >= threshold && c.sent.load(Ordering::Relaxed) == 0 {
                self.abort.store(true, Ordering::Relaxed);
            }
        } else {
            c.consecutive_unknown.store(0, Ordering::Relaxed);
        }
        match &outcome {
            DeliveryOutcome::Sent { .. } => {}
            DeliveryOutcome::Deferred { reply }
            | DeliveryOutcome::Unknown { reply }
            | DeliveryOutcome::Failed { reply, .. } => {
                tracing::warn!(delivery = claim.id, attempt = claim.attempts, reply = %reply, "delivery not accepted");
                if let Ok(mut g) = self.last_error.lock() {
                    *g = Some(reply.clone());
                }
            }
        }
        let now = (self.clock)();
        let settlement = self.policy.settle(claim, &outcome, now);
        match self.store.record_outcome(claim, &settlement, now).await? {
            Some(status) => {
                match status {
                    DeliveryStatus::Sent => c.sent.fetch_add(1, Ordering::Relaxed),
                    DeliveryStatus::Deferred => c.deferred.fetch_add(1, Ordering::Relaxed),
                    DeliveryStatus::Unknown => {
                        tracing::warn!(
                            delivery = claim.id,
                            attempts = claim.attempts,
                            "outcome still unknown after the allowed resends \
                             (delivery.unknown_retries): recorded as unknown, not sent again"
                        );
                        c.undetermined.fetch_add(1, Ordering::Relaxed)
                    }
                    _ => c.failed.fetch_add(1, Ordering::Relaxed),
                };
                if settlement.bounce {
                    c.bounced.fetch_add(1, Ordering::Relaxed);
                }
                if let Some(progress) = &self.progress {
                    progress(status);
                }
            }
            None => {
                c.lease_lost.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(
                    delivery = claim.id,
                    "the lease expired before the outcome was recorded"
                );
            }
        }
        Ok(())
    }

    fn stopping(&self, shutdown: Option<&watch::Receiver<bool>>) -> bool {
        self.abort.load(Ordering::Relaxed) || shutdown.is_some_and(|s| *s.borrow())
    }

    /// One task: claim a batch, send it row by row over the task's own connection; in idle
    /// mode return when nothing is due, otherwise poll until `shutdown` turns true. Unsent
    /// claims are given back on a stop, or when half the lease has gone by (so a slow batch
    /// never outlives its lease).
    async fn task(self: Arc<Self>, shutdown: Option<watch::Receiver<bool>>) -> anyhow::Result<()> {
        let mut sender = self.transport.sender();
        let result = self.task_with(&mut sender, shutdown).await;
        sender.close().await;
        result
    }

    async fn task_with(
        &self,
        sender: &mut Sender<'_>,
        mut shutdown: Option<watch::Receiver<bool>>,
    ) -> anyhow::Result<()> {
        loop {
            match self.claim_and_send(sender, shutdown.as_mut()).await {
                Ok(()) => return Ok(()),
                // A long-running pool outlives database hiccups: log, pause, go on.
                Err(e) if shutdown.is_some() => {
                    tracing::error!(error = %format!("{e:#}"), "delivery worker error; retrying in 5 s");
                    if let Some(rx) = shutdown.as_mut() {
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
                            _ = rx.changed() => {}
                        }
                    }
                }
                Err(e) => return Err(e),
            }
        }
    }

    async fn claim_and_send(
        &self,
        sender: &mut Sender<'_>,
        mut shutdown: Option<&mut watch::Receiver<bool>>,
    ) -> anyhow::Result<()> {
        let lease = self.lease();
        let lease_std = lease.to_std().unwrap_or(Duration::from_secs(300));
        let half_lease = lease_std / 2;
        // Time kept back at the end of the lease to record the last outcome.
        let margin = (lease_std / 10).min(Duration::from_secs(30));
        let limit = self.settings.delivery.batch_size.max(1);
        loop {
            if self.stopping(shutdown.as_deref()) {
                return Ok(());
            }
            let claimed_at = Instant::now();
            let batch = self
                .store
                .claim_due_as(
                    &self.owner,
                    Some(&self.holder),
                    (self.clock)(),
                    lease,
                    limit,
                )
                .await?;
            if batch.is_empty() {
                match shutdown.as_mut() {
                    None => return Ok(()),
                    Some(rx) => {
                        sender.close_if_idle().await;
                        tokio::select! {
                            _ = tokio::time::sleep(Duration::from_millis(500)) => {}
                            _ = rx.changed() => {}
                        }
                        continue;
                    }
                }
            }
            let mut rows = batch.iter();
            for claim in rows.by_ref() {
                if self.stopping(shutdown.as_deref()) || claimed_at.elapsed() > half_lease {
                    self.store.release_claim(claim, (self.clock)()).await?;
                    break;
                }
                self.process(sender, claim, claimed_at + lease_std - margin)
                    .await?;
            }
            for claim in rows {
                self.store.release_claim(claim, (self.clock)()).await?;
            }
        }
    }
}

async fn run_pool(
    engine: &Arc<Engine>,
    shutdown: Option<&watch::Receiver<bool>>,
) -> anyhow::Result<()> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..engine.settings.delivery.concurrency.max(1) {
        tasks.spawn(engine.clone().task(shutdown.cloned()));
    }
    let mut first_error = None;
    while let Some(joined) = tasks.join_next().await {
        let result = joined.map_err(anyhow::Error::from).and_then(|r| r);
        if let Err(e) = result {
            tracing::error!(error = %format!("{e:#}"), "delivery worker stopped");
            engine.abort.store(true, Ordering::Relaxed);
            first_error.get_or_insert(e);
        }
    }
    match first_error {
        Some(e) => Err(e),
        None => Ok(()),
    }
}

/// Delivers everything due now and returns when the outbox is idle: nothing due, and nothing
/// in flight under another worker's lease. Rows leased by a process on this host that no longer
/// runs are taken over at once; for any other holder it says (a warning on stderr) how long it
/// will wait and why, and waits for the lease to run out, at most twice `lease_secs`. Stops
/// early when the relay cannot be reached at all.
pub async fn deliver_until_idle(
    settings: &Settings,
    store: &Store,
    owner: &str,
    clock: Clock,
) -> anyhow::Result<DeliveryReport> {
    deliver_until_idle_with(settings, store, owner, clock, None).await
}

/// [`deliver_until_idle`] with a progress callback.
pub async fn deliver_until_idle_with(
    settings: &Settings,
    store: &Store,
    owner: &str,
    clock: Clock,
    progress: Option<Progress>,
) -> anyhow::Result<DeliveryReport> {
    let engine = Arc::new(Engine::new(
        settings,
        store,
        owner,
        clock.clone(),
        progress,
    )?);
    let max_wait = Duration::from_secs(
        settings
            .delivery
            .lease_secs
            .saturating_mul(2)
            .saturating_add(10),
    );
    let mut waiting_since: Option<Instant> = None;
    let mut announced: Vec<Option<LeaseHolder>> = Vec::new();
    loop {
        run_pool(&engine, None).await?;
        if engine.abort.load(Ordering::Relaxed) {
            break;
        }
        let now = clock();
        let held = store.held_leases(now).await?;
        if take_over_dead_leases(store, &held, &engine.holder, now).await? > 0 {
            continue;
        }
        match store.next_lease_expiry().await? {
            Some(_) => {
                let since = *waiting_since.get_or_insert_with(Instant::now);
                announce_wait(held, &engine.holder, now, &mut announced);
                if since.elapsed() > max_wait {
                    tracing::warn!("gave up waiting for messages leased by another worker");
                    break;
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            None => break,
        }
    }
    Ok(engine.report())
}

/// Ends the leases `held` by processes on this host that no longer run (`me` is this
/// process); returns how many rows were freed.
async fn take_over_dead_leases(
    store: &Store,
    held: &[HeldLease],
    me: &LeaseHolder,
    now: chrono::DateTime<Utc>,
) -> anyhow::Result<u64> {
    let mut freed = 0;
    for holder in held.iter().filter_map(|h| h.holder.as_ref()) {
        if !super::lease::is_gone(holder, me) {
            continue;
        }
        let n = store.expire_leases_of(holder, now).await?;
        if n > 0 {
            tracing::warn!(
                "taking over {n} message(s) leased by process {} on this host, which no longer \
                 runs (its send was interrupted); the message each of its workers was sending \
                 may arrive twice",
                holder.pid
            );
        }
        freed += n;
    }
    Ok(freed)
}

/// Says, once per holder of the leases `held`, how long `send` (`me`) will wait for the rows
/// it has leased and why.
fn announce_wait(
    held: Vec<HeldLease>,
    me: &LeaseHolder,
    now: chrono::DateTime<Utc>,
    announced: &mut Vec<Option<LeaseHolder>>,
) {
    for held in held {
        if announced.contains(&held.holder) {
            continue;
        }
        let secs = (held.expires_at - now).num_seconds().max(0);
        tracing::warn!(
            "waiting up to {secs} s (until {}) for {} message(s) under another worker's lease: {}; \
             they are taken over when the lease runs out (delivery.lease_secs)",
            held.expires_at.format("%Y-%m-%d %H:%M:%S UTC"),
            held.rows,
            super::lease::why_wait(held.holder.as_ref(), me)
        );
        announced.push(held.holder);
    }
}

/// Runs the worker pool until `shutdown` becomes true (for `tidings serve`): polls for due
/// rows, finishes the messages in flight on shutdown and gives back unsent claims.
pub async fn run_workers(
    settings: &Settings,
    store: &Store,
    shutdown: watch::Receiver<bool>,
) -> anyhow::Result<DeliveryReport> {
    let owner = super::worker_owner("serve");
    let mut engine = Engine::new(settings, store, &owner, Arc::new(Utc::now), None)?;
    engine.stop_when_unreachable = false;
    let engine = Arc::new(engine);
    run_pool(&engine, Some(&shutdown)).await?;
    Ok(engine.report())
}
