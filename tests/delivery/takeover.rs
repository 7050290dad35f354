//! A `tidings send` killed with SIGKILL in the middle of delivering, then a second `send`: the
//! second one sees that the leases belong to a process on this host that no longer runs, takes
//! them over at once (instead of waiting `lease_secs` for them to run out) and reaches everyone.
//! A lease held by a process on another host, or by one still running here, is waited for, and
//! `send` says how long and why.

use std::time::Duration;

use chrono::Utc;
use tidings::store::{LeaseHolder, Store};

use super::{TOPIC, issue, reader, recipients, status_of};
use crate::support::cli::{Workers, send_command};
use crate::support::db::{Backend, per_backend};
use crate::support::smtp::{Faults, SmtpServer};

/// How long the second `send` may take at most. The leases last 600 s, so a `send` that waited
/// for them to run out would be far past this.
const DEADLINE: Duration = Duration::from_secs(60);

per_backend!(a_second_send_takes_over_the_leases_of_a_killed_one_at_once);
async fn a_second_send_takes_over_the_leases_of_a_killed_one_at_once(backend: Backend) {
    let Some((label, url)) = backend.url().await else {
        return;
    };
    let url = url.as_str();
    let server = SmtpServer::start(Faults {
        delay: Some(Duration::from_millis(50)),
        ..Faults::default()
    })
    .await;
    let store = Store::open(url, 5).await.unwrap();
    let total = 30;
    for i in 0..total {
        reader(&store, &format!("k{i}@example.org")).await;
    }
    let issue = issue(&store, TOPIC, 1).await;
    let command = || {
        send_command(
            url,
            server.port,
            issue,
            &Workers {
                concurrency: 2,
                batch_size: 8,
                lease_secs: 600,
            },
        )
    };
    let mut child = command().spawn().unwrap();
    server.wait_for(3, Duration::from_secs(60)).await;
    child.start_kill().unwrap(); // SIGKILL
    let _ = child.wait().await;
    let before = server.received().len();
    assert!(before < total, "{label}: killed too late ({before})");
    let leased = store.counts_by_status(Some(issue)).await.unwrap();
    assert!(
        leased.get("sending").copied().unwrap_or(0) > 0,
        "{label}: the killed send left leased rows: {leased:?}"
    );

    let out = tokio::time::timeout(DEADLINE, command().output())
        .await
        .unwrap_or_else(|_| {
            panic!("{label}: the second send still waits for the dead process's leases")
        })
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{label}: {stderr}");
    assert!(
        stderr.contains("no longer runs"),
        "{label}: it says why it took over: {stderr}"
    );
    let by_rcpt = recipients(&server.received());
    assert_eq!(by_rcpt.len(), total, "{label}: everyone reached");
    let duplicates: usize = by_rcpt.values().map(|n| n - 1).sum();
    assert!(duplicates <= 2, "{label}: {duplicates} duplicates");
    assert_eq!(
        status_of(&store, issue).await.get("sent"),
        Some(&(total as i64)),
        "{label}"
    );
}

#[tokio::test]
async fn send_says_how_long_it_waits_for_leases_held_elsewhere_or_by_a_running_process() {
    let dir = tempfile::tempdir().unwrap().keep();
    let url = format!("sqlite://{}", dir.join("t.db").display());
    let server = SmtpServer::start(Faults::default()).await;
    let store = Store::open(&url, 5).await.unwrap();
    reader(&store, "a@example.org").await;
    reader(&store, "b@example.org").await;
    let issue = issue(&store, TOPIC, 1).await;
    store.enqueue_issue(issue, TOPIC, Utc::now()).await.unwrap();
    // One row leased for 2 s by a process on another host, one by this test process.
    let elsewhere = LeaseHolder {
        host: "another-box.example".into(),
        pid: 4242,
        process_start: Some("boot/pid:[1]/12345".into()),
    };
    let lease = chrono::Duration::seconds(2);
    let here = tidings::delivery::current_process();
    for holder in [&elsewhere, &here] {
        let claimed = store
            .claim_due_as("other-worker", Some(holder), Utc::now(), lease, 1)
            .await
            .unwrap();
        assert_eq!(claimed.len(), 1);
    }

    let out = tokio::time::timeout(
        DEADLINE,
        send_command(
            &url,
            server.port,
            issue,
            &Workers {
                concurrency: 2,
                batch_size: 8,
                lease_secs: 2,
            },
        )
        .output(),
    )
    .await
    .expect("send finishes once the leases run out")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let waits: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("waiting up to"))
        .collect();
    assert_eq!(waits.len(), 2, "one notice per holder: {stderr}");
    assert!(
        waits
            .iter()
            .any(|l| l.contains("process 4242 on host another-box.example")),
        "{stderr}"
    );
    assert!(
        waits.iter().any(
            |l| l.contains(&format!("process {} on this host", here.pid))
                && l.contains("still running")
        ),
        "{stderr}"
    );
    assert_eq!(
        recipients(&server.received()).len(),
        2,
        "both sent after the leases ran out"
    );
}
