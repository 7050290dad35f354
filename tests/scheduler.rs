//! The scheduler against real databases with an injected clock: claims exactly once under
//! concurrency, catch-up once and not beyond the grace period, two scheduler loops on one
//! database compiling and queueing a due digest exactly once, a dead claimant's run repaired,
//! local delivery times per subscriber zone, housekeeping, and `tidings status`.

use std::sync::Arc;
use std::time::Duration as StdDuration;

use chrono::{DateTime, Duration, Utc};
use tidings::config::Settings;
use tidings::domain::SubscriberStatus;
use tidings::scheduler::{
    Clock, IssueToPublish, JobOutcome, ManualClock, OutcomeKind, Publication, digest_claim_key,
    publish,
};
use tidings::store::{NewSubscriber, RunEnd, Store};
use tokio::sync::{mpsc, watch};

use crate::support::cli::TestEnv;
use crate::support::db::{self, Backend, per_backend};
use crate::support::scheduler::{scheduler, seed_article};

fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// Monday 2026-02-02 08:00 Europe/Berlin (CET).
fn monday_slot() -> DateTime<Utc> {
    utc("2026-02-02T07:00:00Z")
}

/// A weekly Monday 08:00 Berlin digest for topic `rust`; other jobs disabled unless
/// `extra_schedule` (`key = value` lines of `[schedule]`) sets them.
fn settings(extra_schedule: &str, topic_extra: &str) -> Arc<Settings> {
    let defaults = [
        ("cron", "\"0 0 8 * * Mon\""),
        ("timezone", "\"Europe/Berlin\""),
        ("fetch_cron", "\"\""),
        ("retry_cron", "\"\""),
        ("housekeeping_cron", "\"\""),
        ("catch_up_hours", "24"),
    ];
    let mut schedule: Vec<String> = defaults
        .iter()
        .filter(|(k, _)| !extra_schedule.contains(&format!("{k} =")))
        .map(|(k, v)| format!("{k} = {v}"))
        .collect();
    schedule.push(extra_schedule.to_string());
    let text = format!(
        "[schedule]\n{}\n\n[[topics]]\nslug = \"rust\"\nname = \"Rust\"\nkeywords = [\"Rust\"]\n{topic_extra}\n",
        schedule.join("\n")
    );
    Arc::new(Settings::from_toml(&text).unwrap())
}

async fn subscribe(store: &Store, email: &str, timezone: Option<&str>, status: SubscriberStatus) {
    store
        .add_subscriber(
            &NewSubscriber {
                timezone: timezone.map(str::to_string),
                ..db::new_subscriber(email, &["rust"], status)
            },
            monday_slot() - Duration::days(40),
        )
        .await
        .unwrap();
}

fn digests(outcomes: &[JobOutcome]) -> Vec<&JobOutcome> {
    outcomes.iter().filter(|o| o.job == "digest:rust").collect()
}

per_backend!(claim_run_is_won_exactly_once_by_many_concurrent_claimers);
async fn claim_run_is_won_exactly_once_by_many_concurrent_claimers(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let now = monday_slot();
    let key = digest_claim_key("rust", now);
    let mut tasks = Vec::new();
    for i in 0..24 {
        let store = store.clone();
        let key = key.clone();
        tasks.push(tokio::spawn(async move {
            store
                .claim_run(&key, &format!("owner-{i}"), now, Duration::minutes(10))
                .await
                .unwrap()
        }));
    }
    let mut wins = 0;
    for t in tasks {
        if t.await.unwrap() {
            wins += 1;
        }
    }
    assert_eq!(wins, 1, "{label}: exactly one claimer wins");
    let holder = store.run_claim_holder(&key).await.unwrap().unwrap();
    assert_eq!(holder.expires_at, now + Duration::minutes(10), "{label}");

    // Still held a minute later; free once the lease has expired.
    let later = now + Duration::minutes(1);
    assert!(
        !store
            .claim_run(&key, "late", later, Duration::minutes(10))
            .await
            .unwrap(),
        "{label}"
    );
    let expired = now + Duration::minutes(10);
    assert!(
        store
            .claim_run(&key, "after-expiry", expired, Duration::minutes(10))
            .await
            .unwrap(),
        "{label}"
    );
    // A finished claim is held until its hold ends, whoever asks.
    assert!(
        store
            .finish_run(&key, "after-expiry", now + Duration::days(2))
            .await
            .unwrap(),
        "{label}"
    );
    assert!(
        !store
            .finish_run(&key, &holder.owner, now + Duration::days(3))
            .await
            .unwrap(),
        "{label}: a former holder cannot finish it"
    );
    assert!(
        !store
            .claim_run(&key, "x", now + Duration::days(1), Duration::minutes(10))
            .await
            .unwrap(),
        "{label}"
    );
    // Release only by the holder.
    assert!(!store.release_run(&key, "x").await.unwrap(), "{label}");
    assert!(
        store.release_run(&key, "after-expiry").await.unwrap(),
        "{label}"
    );
    assert!(
        store
            .claim_run(&key, "x", now, Duration::minutes(10))
            .await
            .unwrap(),
        "{label}"
    );
    // Housekeeping removes claims whose hold ended.
    assert_eq!(
        store
            .delete_expired_run_claims(now + Duration::hours(1))
            .await
            .unwrap(),
        1,
        "{label}"
    );
    assert!(
        store.run_claim_holder(&key).await.unwrap().is_none(),
        "{label}"
    );
}

per_backend!(job_runs_record_last_run_forward_only_and_next_run);
async fn job_runs_record_last_run_forward_only_and_next_run(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let t = monday_slot();
    store.set_next_run("fetch", Some(t), t).await.unwrap();
    store
        .record_job_run(
            "digest:rust",
            RunEnd::Done(t),
            "ok: issue #1",
            Some(t + Duration::days(7)),
            t,
        )
        .await
        .unwrap();
    // A late record of an older slot, and a failure, leave last_run_at where it was.
    store
        .record_job_run(
            "digest:rust",
            RunEnd::Skipped(t - Duration::days(7)),
            "skipped: old",
            None,
            t,
        )
        .await
        .unwrap();
    store
        .record_job_run(
            "digest:rust",
            RunEnd::Failed,
            "failed: boom",
            Some(t + Duration::days(7)),
            t,
        )
        .await
        .unwrap();
    let runs = store.last_runs().await.unwrap();
    assert_eq!(runs.len(), 2, "{label}");
    assert_eq!(runs[0].job, "digest:rust");
    assert_eq!(runs[0].last_run_at, Some(t), "{label}");
    assert_eq!(
        runs[0].last_result.as_deref(),
        Some("failed: boom"),
        "{label}"
    );
    assert_eq!(runs[0].next_run_at, Some(t + Duration::days(7)), "{label}");
    assert_eq!(
        (
            runs[0].last_completed_at,
            runs[0].last_completed_result.as_deref()
        ),
        (Some(t), Some("ok: issue #1")),
        "{label}: the skip and the failure keep the last completed run"
    );
    assert_eq!(runs[1].job, "fetch");
    assert_eq!(runs[1].last_run_at, None, "{label}");
    assert_eq!(runs[1].next_run_at, Some(t), "{label}");
}

per_backend!(catch_up_sends_a_missed_digest_once_after_downtime);
async fn catch_up_sends_a_missed_digest_once_after_downtime(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let s = settings("", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    subscribe(&store, "b@example.com", None, SubscriberStatus::Confirmed).await;
    subscribe(&store, "p@example.com", None, SubscriberStatus::Pending).await;
    // Nothing ran on Monday 08:00; an instance starts at 11:00 (3 h late, grace 24 h).
    let clock = Arc::new(ManualClock::new(monday_slot() + Duration::hours(3)));
    let mut first = scheduler(&s, &store, &clock, "first");
    first.start().await.unwrap();
    let ran = first.run_due().await;
    let d = digests(&ran);
    assert_eq!(d.len(), 1, "{label}: {ran:?}");
    assert_eq!(d[0].kind, OutcomeKind::Ran, "{label}: {ran:?}");
    assert_eq!(d[0].slot, monday_slot(), "{label}");
    assert!(
        d[0].summary.contains("2 deliveries queued"),
        "{label}: {}",
        d[0].summary
    );
    let counts = store.delivery_status_counts().await.unwrap();
    assert_eq!(counts.get("queued"), Some(&2), "{label}: {counts:?}");
    // Next regular run: the following Monday.
    assert_eq!(
        first.next_wake(),
        Some(monday_slot() + Duration::days(7)),
        "{label}"
    );
    let rec = store.job_run("digest:rust").await.unwrap().unwrap();
    assert_eq!(rec.last_run_at, Some(monday_slot()), "{label}");
    assert_eq!(
        rec.next_run_at,
        Some(monday_slot() + Duration::days(7)),
        "{label}"
    );

    // Restarting later the same day catches nothing up: never twice.
    clock.advance(Duration::hours(2));
    let mut second = scheduler(&s, &store, &clock, "second");
    second.start().await.unwrap();
    let ran = second.run_due().await;
    assert!(digests(&ran).is_empty(), "{label}: {ran:?}");
    let counts = store.delivery_status_counts().await.unwrap();
    assert_eq!(counts.get("queued"), Some(&2), "{label}: {counts:?}");
}

per_backend!(catch_up_skips_a_digest_missed_beyond_the_grace_period);
async fn catch_up_skips_a_digest_missed_beyond_the_grace_period(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let s = settings("", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    // Started on Tuesday 08:00:01 Berlin: Monday's run is 24 h + 1 s old.
    let clock = Arc::new(ManualClock::new(
        monday_slot() + Duration::hours(24) + Duration::seconds(1),
    ));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let mut sched = scheduler(&s, &store, &clock, "only").with_outcomes(tx);
    sched.start().await.unwrap();
    let skipped = rx.try_recv().unwrap();
    assert_eq!(skipped.kind, OutcomeKind::SkippedTooOld, "{label}");
    assert_eq!(skipped.slot, monday_slot(), "{label}");
    assert!(sched.run_due().await.is_empty(), "{label}");
    assert!(
        store.delivery_status_counts().await.unwrap().is_empty(),
        "{label}"
    );
    let rec = store.job_run("digest:rust").await.unwrap().unwrap();
    assert_eq!(
        rec.last_run_at,
        Some(monday_slot()),
        "{label}: recorded so it is not retried"
    );
    assert!(rec.last_result.unwrap().starts_with("skipped"), "{label}");

    // A restart does not log it again, and the next Monday runs normally.
    let mut again = scheduler(&s, &store, &clock, "again");
    again.start().await.unwrap();
    assert!(again.run_due().await.is_empty(), "{label}");
    clock.set(monday_slot() + Duration::days(7));
    let ran = again.run_due().await;
    assert_eq!(digests(&ran).len(), 1, "{label}: {ran:?}");
    assert_eq!(digests(&ran)[0].kind, OutcomeKind::Ran, "{label}");
}

per_backend!(two_scheduler_loops_on_one_database_run_a_due_digest_once);
/// Two scheduler loops share one database and one injected clock; when the digest falls due,
/// exactly one of them compiles and queues it, and every subscriber has exactly one delivery.
async fn two_scheduler_loops_on_one_database_run_a_due_digest_once(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    // Each loop gets its own pool, as two processes would.
    let store_a = Store::open(&url, 4).await.unwrap();
    seed_article(&store_a, monday_slot()).await;
    let store_b = Store::open(&url, 4).await.unwrap();
    for i in 0..5 {
        subscribe(
            &store_a,
            &format!("s{i}@example.com"),
            None,
            SubscriberStatus::Confirmed,
        )
        .await;
    }
    let s = settings("", "");
    let clock = Arc::new(ManualClock::new(monday_slot() - Duration::seconds(1)));
    let (tx, mut rx) = mpsc::unbounded_channel();
    let (stop, shutdown) = watch::channel(false);
    let a = scheduler(&s, &store_a, &clock, "instance-a").with_outcomes(tx.clone());
    let b = scheduler(&s, &store_b, &clock, "instance-b").with_outcomes(tx);
    let ha = tokio::spawn(a.run(shutdown.clone()));
    let hb = tokio::spawn(b.run(shutdown));

    // Both loops have planned Monday 08:00; make it due.
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    let planned = async {
        loop {
            let n = store_a
                .job_run("digest:rust")
                .await
                .unwrap()
                .and_then(|r| r.next_run_at);
            if n == Some(monday_slot()) {
                break;
            }
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    };
    tokio::time::timeout_at(deadline, planned)
        .await
        .expect("both loops started");
    clock.set(monday_slot() + Duration::milliseconds(500));

    let mut for_slot = Vec::new();
    while for_slot.len() < 2 {
        let o = tokio::time::timeout_at(deadline, rx.recv())
            .await
            .expect("both loops handle the due slot")
            .unwrap();
        if o.job == "digest:rust" && o.slot == monday_slot() {
            for_slot.push(o);
        }
    }
    let ran: Vec<_> = for_slot
        .iter()
        .filter(|o| o.kind == OutcomeKind::Ran)
        .collect();
    assert_eq!(
        ran.len(),
        1,
        "{label}: exactly one instance compiles: {for_slot:?}"
    );
    assert!(
        for_slot.iter().any(|o| matches!(
            o.kind,
            OutcomeKind::HeldElsewhere | OutcomeKind::AlreadyDone
        )),
        "{label}: {for_slot:?}"
    );
    let counts = store_a.delivery_status_counts().await.unwrap();
    assert_eq!(
        counts.get("queued"),
        Some(&5),
        "{label}: one delivery per subscriber: {counts:?}"
    );
    let issue = ran[0].issue_id.unwrap();
    assert_eq!(
        store_a.issue_delivery_schedule(issue).await.unwrap().len(),
        5,
        "{label}"
    );

    stop.send(true).unwrap();
    ha.await.unwrap().unwrap();
    hb.await.unwrap().unwrap();
    // Nothing else ran for the slot while the loops stopped.
    while let Ok(o) = rx.try_recv() {
        assert!(
            !(o.job == "digest:rust" && o.kind == OutcomeKind::Ran),
            "{label}: {o:?}"
        );
    }
    store_a.close().await;
    store_b.close().await;
}

per_backend!(a_dead_claimants_digest_is_repaired_when_its_lease_expires);
/// A claimant that died mid-run leaves its claim; another instance waits for the lease to end
/// and then does the run.
async fn a_dead_claimants_digest_is_repaired_when_its_lease_expires(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let s = settings("", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    let key = digest_claim_key("rust", monday_slot());
    assert!(
        store
            .claim_run(&key, "dead", monday_slot(), Duration::minutes(10))
            .await
            .unwrap()
    );
    let clock = Arc::new(ManualClock::new(monday_slot() + Duration::minutes(1)));
    let mut sched = scheduler(&s, &store, &clock, "survivor");
    sched.start().await.unwrap();
    let ran = sched.run_due().await;
    assert_eq!(digests(&ran).len(), 1, "{label}: {ran:?}");
    assert_eq!(digests(&ran)[0].kind, OutcomeKind::HeldElsewhere, "{label}");
    assert_eq!(
        sched.next_wake(),
        Some(monday_slot() + Duration::minutes(10)),
        "{label}"
    );
    assert!(
        store.delivery_status_counts().await.unwrap().is_empty(),
        "{label}"
    );

    clock.set(monday_slot() + Duration::minutes(10));
    let ran = sched.run_due().await;
    assert_eq!(digests(&ran).len(), 1, "{label}: {ran:?}");
    assert_eq!(digests(&ran)[0].kind, OutcomeKind::Ran, "{label}: {ran:?}");
    assert_eq!(
        store.delivery_status_counts().await.unwrap().get("queued"),
        Some(&1),
        "{label}"
    );
    let holder = store.run_claim_holder(&key).await.unwrap().unwrap();
    assert_eq!(holder.owner, "survivor", "{label}");
    assert!(
        holder.expires_at > monday_slot() + Duration::hours(24),
        "{label}: finished claims are held past the grace"
    );
}

per_backend!(local_delivery_time_holds_each_subscriber_until_eight_in_their_zone);
async fn local_delivery_time_holds_each_subscriber_until_eight_in_their_zone(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    // Compiled Monday 08:00 Berlin; deliver at 08:00 local; the schedule's zone is Berlin.
    let s = settings("", "deliver_at_local = \"08:00\"");
    for (email, zone) in [
        ("berlin@example.com", Some("Europe/Berlin")),
        ("ny@example.com", Some("America/New_York")),
        ("kiritimati@example.com", Some("Pacific/Kiritimati")),
        ("nozone@example.com", None),
        ("mars@example.com", Some("Mars/Olympus")),
    ] {
        subscribe(&store, email, zone, SubscriberStatus::Confirmed).await;
    }
    let clock = Arc::new(ManualClock::new(monday_slot()));
    let mut sched = scheduler(&s, &store, &clock, "only");
    sched.start().await.unwrap();
    let ran = sched.run_due().await;
    let d = digests(&ran);
    assert_eq!(d.len(), 1, "{label}: {ran:?}");
    assert!(
        d[0].summary
            .contains("5 held for local delivery in 5 zones"),
        "{label}: {}",
        d[0].summary
    );
    let rows = store
        .issue_delivery_schedule(d[0].issue_id.unwrap())
        .await
        .unwrap();
    let got: Vec<(&str, DateTime<Utc>)> = rows.iter().map(|(e, _, t)| (e.as_str(), *t)).collect();
    assert_eq!(
        got,
        [
            // 08:00 Berlin is now: right away.
            ("berlin@example.com", utc("2026-02-02T07:00:00Z")),
            // 21:00 on Monday in Kiritimati: Tuesday 08:00 there.
            ("kiritimati@example.com", utc("2026-02-02T18:00:00Z")),
            // Unknown zone: the schedule's.
            ("mars@example.com", utc("2026-02-02T07:00:00Z")),
            ("nozone@example.com", utc("2026-02-02T07:00:00Z")),
            // 02:00 in New York: 08:00 EST the same day.
            ("ny@example.com", utc("2026-02-02T13:00:00Z")),
        ],
        "{label}"
    );
}

per_backend!(housekeeping_purges_unconfirmed_subscribers_and_old_claims);
async fn housekeeping_purges_unconfirmed_subscribers_and_old_claims(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let s = settings("housekeeping_cron = \"0 30 3 * * *\"", "");
    // Created 40 days before the slot and never confirmed.
    subscribe(&store, "stale@example.com", None, SubscriberStatus::Pending).await;
    subscribe(
        &store,
        "kept@example.com",
        None,
        SubscriberStatus::Confirmed,
    )
    .await;
    assert!(
        store
            .claim_run(
                "digest:rust:old",
                "x",
                monday_slot() - Duration::days(9),
                Duration::days(1)
            )
            .await
            .unwrap()
    );
    // Tuesday 03:30 Berlin is the housekeeping time.
    let clock = Arc::new(ManualClock::new(utc("2026-02-03T02:29:59Z")));
    let mut sched = scheduler(&s, &store, &clock, "only");
    sched.start().await.unwrap();
    clock.set(utc("2026-02-03T02:30:00Z"));
    let ran = sched.run_due().await;
    let hk: Vec<_> = ran.iter().filter(|o| o.job == "housekeeping").collect();
    assert_eq!(hk.len(), 1, "{label}: {ran:?}");
    assert_eq!(hk[0].kind, OutcomeKind::Ran, "{label}");
    assert!(
        hk[0].summary.contains("1 unconfirmed subscribers purged"),
        "{label}: {}",
        hk[0].summary
    );
    assert!(
        hk[0].summary.contains("1 old claims removed"),
        "{label}: {}",
        hk[0].summary
    );
    let left = store.subscriber_counts_by_status().await.unwrap();
    assert_eq!(left.get("pending"), None, "{label}: {left:?}");
    assert_eq!(left.get("confirmed"), Some(&1), "{label}");
}

#[test]
fn status_shows_next_and_last_runs_queue_and_subscribers() {
    let env = TestEnv::new(
        &db::sqlite_url(),
        "[schedule]\ncron = \"0 0 8 * * Mon\"\ntimezone = \"Europe/Berlin\"\nretry_cron = \"\"\n",
    );
    let out = env.run(&[
        "subscribers",
        "add",
        "a@example.com",
        "--topic",
        "rust",
        "--confirmed",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = env.run(&["status"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    for want in [
        "schedule time zone Europe/Berlin",
        "fetch: cron \"0 15 * * * *\", next ",
        "digest:rust: cron \"0 0 8 * * Mon\", next ",
        "digest:distributed-systems: cron",
        "retry: disabled",
        "housekeeping: cron",
        "last: never",
        "deliveries: none",
        "subscribers: confirmed 1 (total 1)",
    ] {
        assert!(text.contains(want), "missing {want:?} in:\n{text}");
    }
    // The digest's next run is a Monday at 08:00 Berlin time.
    let line = text.lines().find(|l| l.contains("digest:rust:")).unwrap();
    assert!(line.contains(" 08:00:00 CE"), "{line}");
}

#[tokio::test]
async fn status_report_shows_the_last_result_with_counts() {
    let store = db::sqlite().await;
    seed_article(&store, monday_slot()).await;
    let s = settings("", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    let clock = Arc::new(ManualClock::new(monday_slot()));
    let mut sched = scheduler(&s, &store, &clock, "only");
    sched.start().await.unwrap();
    sched.run_due().await;
    let report = tidings::scheduler::status_report(&s, &store, clock.now())
        .await
        .unwrap();
    let text = report.to_string();
    assert!(
        text.contains("last: 2026-02-02 08:00:00 CET; ok: issue #"),
        "{text}"
    );
    assert!(text.contains("1 deliveries queued"), "{text}");
    assert!(text.contains("next 2026-02-09 08:00:00 CET"), "{text}");
    assert!(text.contains("deliveries: queued 1 (total 1)"), "{text}");
}

/// The long-running form on the wall clock: a digest every second is compiled and queued by
/// `tidings::scheduler::run`, which stops promptly when shutdown flips.
#[tokio::test]
async fn run_on_the_system_clock_runs_due_jobs_and_stops_on_shutdown() {
    let store = db::sqlite().await;
    seed_article(&store, Utc::now()).await;
    let s = settings("cron = \"* * * * * *\"\nretry_cron = \"*/2 * * * * *\"", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    let (stop, shutdown) = watch::channel(false);
    let clock: Arc<dyn Clock> = Arc::new(tidings::scheduler::SystemClock);
    let handle = tokio::spawn(tidings::scheduler::run(
        s.clone(),
        store.clone(),
        clock,
        shutdown,
    ));
    let deadline = tokio::time::Instant::now() + StdDuration::from_secs(30);
    let mut seen_ok = false;
    while !seen_ok {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no digest ran within 30 s"
        );
        let digest = store.job_run("digest:rust").await.unwrap();
        let retry = store.job_run("retry").await.unwrap();
        // The first slot compiles the issue; later slots find nothing new ("ok: no articles").
        let compiled = !store.list_issues(Some("rust")).await.unwrap().is_empty();
        seen_ok = compiled
            && digest.is_some_and(|r| r.last_result.is_some_and(|t| t.starts_with("ok: ")))
            && retry.is_some_and(|r| r.last_result.is_some_and(|t| t.contains("deliveries due")));
        tokio::time::sleep(StdDuration::from_millis(20)).await;
    }
    assert!(
        store
            .delivery_status_counts()
            .await
            .unwrap()
            .get("queued")
            .is_some_and(|n| *n >= 1)
    );
    stop.send(true).unwrap();
    tokio::time::timeout(StdDuration::from_secs(10), handle)
        .await
        .expect("the scheduler stops on shutdown")
        .unwrap()
        .unwrap();
}

per_backend!(publishing_again_after_the_local_time_leaves_released_rows_due);
/// Publishing an issue again (a repair run, a second `tidings send`) after a row's local
/// delivery time leaves the released row due, instead of holding it until the next day.
async fn publishing_again_after_the_local_time_leaves_released_rows_due(backend: Backend) {
    let Some((label, store)) = backend.store().await else {
        return;
    };
    seed_article(&store, monday_slot()).await;
    let s = settings("", "deliver_at_local = \"08:00\"");
    subscribe(
        &store,
        "a@example.com",
        Some("Europe/Berlin"),
        SubscriberStatus::Confirmed,
    )
    .await;
    let topic = s.topic("rust").unwrap();
    let compiled = tidings::pipeline::compile_period(&s, &store, topic, monday_slot(), false)
        .await
        .unwrap()
        .unwrap();
    // Published at 05:00 Berlin: held until 08:00 Berlin.
    let early = monday_slot() - Duration::hours(3);
    let frozen = || IssueToPublish::Frozen(compiled.clone());
    publish(&s, &store, topic, frozen(), &ManualClock::new(early))
        .await
        .unwrap();
    let first = store
        .issue_delivery_schedule(compiled.issue_id)
        .await
        .unwrap();
    assert_eq!(first[0].2, monday_slot(), "{label}: {first:?}");
    // Published again at 09:00 Berlin before any worker took the row.
    let late = ManualClock::new(monday_slot() + Duration::hours(1));
    publish(&s, &store, topic, frozen(), &late).await.unwrap();
    let again = store
        .issue_delivery_schedule(compiled.issue_id)
        .await
        .unwrap();
    assert_eq!(
        again, first,
        "{label}: still due at 08:00, not held until Tuesday"
    );
}

per_backend!(publish_freezes_nothing_empty_and_queues_an_issue_once);
/// The one publish path (`tidings run`, `tidings send` and the digest job): a period with nothing
/// on topic freezes no issue and queues nothing; a period with articles is compiled and queued
/// once, and publishing it again finds the same issue and queues nothing new.
async fn publish_freezes_nothing_empty_and_queues_an_issue_once(backend: Backend) {
    let Some((_, store)) = backend.store().await else {
        return;
    };
    let s = settings("", "");
    subscribe(&store, "a@example.com", None, SubscriberStatus::Confirmed).await;
    let topic = s.topic("rust").unwrap();
    let clock = ManualClock::new(monday_slot());
    let period = || IssueToPublish::Period(monday_slot());

    match publish(&s, &store, topic, period(), &clock).await.unwrap() {
        Publication::NothingOnTopic(empty) => assert_eq!(empty.window_end, monday_slot()),
        other => panic!("expected nothing on topic, got {other:?}"),
    }
    assert!(store.list_issues(Some("rust")).await.unwrap().is_empty());
    assert!(store.delivery_status_counts().await.unwrap().is_empty());

    seed_article(&store, monday_slot()).await;
    let Publication::Queued {
        issue: first,
        queued,
        local,
        queued_at,
    } = publish(&s, &store, topic, period(), &clock).await.unwrap()
    else {
        panic!("expected the issue queued");
    };
    assert!(first.newly_compiled);
    assert_eq!((queued, local, queued_at), (1, None, monday_slot()));
    let Publication::Queued {
        issue: again,
        queued,
        ..
    } = publish(&s, &store, topic, period(), &clock).await.unwrap()
    else {
        panic!("expected the issue queued");
    };
    assert_eq!(
        (again.issue_id, again.newly_compiled, queued),
        (first.issue_id, false, 0)
    );
    let counts = store.delivery_status_counts().await.unwrap();
    assert_eq!(counts.get("queued"), Some(&1), "{counts:?}");
}
