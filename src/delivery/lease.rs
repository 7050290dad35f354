//! Who holds a lease, and whether that process still runs. Each claim records its holder: the
//! host name, the process id, and the process's start, written as
//! `<boot id>/<pid namespace>/<start time in clock ticks>` from `/proc` (Linux). A lease whose
//! holder is on this host, in this boot and this PID namespace, and whose process id no longer
//! runs (or now belongs to a process started at another time) belongs to a process that died:
//! `send` takes its rows over at once instead of waiting for the lease to run out. Anything
//! else (another host, another container, a system without `/proc`) is waited for.

use crate::store::LeaseHolder;

/// This process as a lease holder.
pub fn current_process() -> LeaseHolder {
    let pid = std::process::id();
    LeaseHolder {
        host: host_name(),
        pid: i64::from(pid),
        process_start: process_start(pid),
    }
}

/// Whether `holder` is provably a process that no longer runs: it ran on this host, in this
/// boot and PID namespace, and its process id is gone or was reused by a later process. `me`
/// is this process ([`current_process`], read once by the caller).
pub fn is_gone(holder: &LeaseHolder, me: &LeaseHolder) -> bool {
    let (Some(theirs), Some(mine)) = (&holder.process_start, &me.process_start) else {
        return false;
    };
    if holder.host != me.host || same_process(holder, me) {
        return false;
    }
    // Same boot and PID namespace: the pid means the same thing here as it did for them.
    let Some((their_context, _)) = theirs.rsplit_once('/') else {
        return false;
    };
    let Some((my_context, _)) = mine.rsplit_once('/') else {
        return false;
    };
    if their_context != my_context {
        return false;
    }
    let Ok(pid) = u32::try_from(holder.pid) else {
        return false;
    };
    match process_start(pid) {
        // No such process, or a newer one with the same id.
        None => !std::path::Path::new(&format!("/proc/{pid}")).exists(),
        Some(now_there) => &now_there != theirs,
    }
}

fn same_process(a: &LeaseHolder, b: &LeaseHolder) -> bool {
    a.pid == b.pid && a.process_start == b.process_start
}

/// Why a lease held by `holder` is waited for by `me` (for the message `send` prints).
pub fn why_wait(holder: Option<&LeaseHolder>, me: &LeaseHolder) -> String {
    match holder {
        None => "the holder was not recorded, so whether it still runs cannot be told".into(),
        Some(h) if h.host != me.host => format!(
            "it is held by process {} on host {}, which may still be sending them",
            h.pid, h.host
        ),
        Some(h) if h.process_start.is_none() || me.process_start.is_none() => format!(
            "it is held by process {} on this host, and whether that process still runs \
             cannot be told here",
            h.pid
        ),
        Some(h) if same_process(h, me) => "this process holds it".into(),
        Some(h) => format!(
            "it is held by process {} on this host, which is still running (or runs in \
             another container or boot)",
            h.pid
        ),
    }
}

fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty()))
        .unwrap_or_else(|| "unknown-host".into())
}

/// `<boot id>/<pid namespace>/<start ticks>` of process `pid`, when `/proc` tells.
fn process_start(pid: u32) -> Option<String> {
    let boot = std::fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    let namespace = std::fs::read_link("/proc/self/ns/pid").ok()?;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let ticks = start_ticks(&stat)?;
    Some(format!("{}/{}/{ticks}", boot.trim(), namespace.display()))
}

/// Field 22 of `/proc/<pid>/stat` (the start time in clock ticks since boot); the command name
/// in field 2 may hold spaces and parentheses, so fields are counted after its last `)`.
fn start_ticks(stat: &str) -> Option<u64> {
    let (_, rest) = stat.rsplit_once(')')?;
    rest.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn start_ticks_count_fields_after_the_command_name() {
        let stat = "4242 (a b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 \
                    1000 10 18446744073709551615";
        assert_eq!(start_ticks(stat), Some(987654));
        assert_eq!(start_ticks("garbage"), None);
    }

    #[test]
    fn this_process_is_not_gone_and_a_dead_one_is() {
        let me = current_process();
        assert!(!is_gone(&me, &me));
        if me.process_start.is_none() {
            return; // no /proc here: nothing can be told
        }
        // A child that has exited and been reaped: its pid no longer runs.
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        let their_start = process_start(pid);
        child.wait().unwrap();
        let context = me
            .process_start
            .as_deref()
            .and_then(|s| s.rsplit_once('/'))
            .map(|(c, _)| c.to_string())
            .unwrap();
        let gone = LeaseHolder {
            host: me.host.clone(),
            pid: i64::from(pid),
            process_start: Some(their_start.unwrap_or_else(|| format!("{context}/1"))),
        };
        assert!(is_gone(&gone, &me));
        let elsewhere = LeaseHolder {
            host: format!("{}-other", me.host),
            ..gone
        };
        assert!(!is_gone(&elsewhere, &me));
    }
}
