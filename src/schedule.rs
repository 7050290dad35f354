//! Pure schedule arithmetic: parsing 6-field cron expressions (seconds first) and finding the
//! next and previous run in an IANA time zone, computed in local time so that a weekly 08:00
//! Europe/Berlin job stays at 08:00 across daylight-saving changes. No I/O, no clock: callers
//! pass `now`.

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use croner::Cron;
use croner::parser::{CronParser, Seconds};

/// A parsed schedule: a cron expression evaluated in a time zone.
#[derive(Clone, Debug)]
pub struct Schedule {
    cron: Cron,
    tz: Tz,
    text: String,
}

/// Parses a 6-field cron expression: `sec min hour day-of-month month day-of-week`.
pub fn parse_cron(text: &str) -> Result<Cron, String> {
    let fields = text.split_whitespace().count();
    if fields != 6 {
        return Err(format!(
            "{text:?} has {fields} fields; tidings wants 6 (seconds first, e.g. \"0 0 8 * * Mon\")"
        ));
    }
    CronParser::builder()
        .seconds(Seconds::Required)
        .build()
        .parse(text)
        .map_err(|e| format!("{text:?} is not a valid cron expression: {e}"))
}

impl Schedule {
    /// A 6-field cron expression evaluated in `tz`. The settings parse every configured cron
    /// with this once (`crate::config`); the rest of the program reads the parsed values.
    pub fn parse(cron: &str, tz: Tz) -> Result<Schedule, String> {
        Ok(Schedule {
            cron: parse_cron(cron)?,
            tz,
            text: cron.to_string(),
        })
    }

    /// Like [`Schedule::parse`] with the zone's IANA name (tests and tools).
    pub fn new(cron: &str, timezone: &str) -> Result<Schedule, String> {
        let tz: Tz = timezone
            .parse()
            .map_err(|_| format!("{timezone:?} is not an IANA time zone"))?;
        Schedule::parse(cron, tz)
    }

    pub fn timezone(&self) -> Tz {
        self.tz
    }

    pub fn expression(&self) -> &str {
        &self.text
    }

    /// The first run strictly after `after`. Runs fall on whole seconds whatever the fractions
    /// of a second in `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_seconds(after).with_timezone(&self.tz);
        self.cron
            .find_next_occurrence(&local, false)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }

    /// The most recent run at or before `at`, on a whole second: `12:00:00.5` and `12:00:00`
    /// find the same run, so two runs in one period meet the same issue.
    pub fn latest_at_or_before(&self, at: DateTime<Utc>) -> Option<DateTime<Utc>> {
        let local = whole_seconds(at).with_timezone(&self.tz);
        self.cron
            .find_previous_occurrence(&local, true)
            .ok()
            .map(|t| t.with_timezone(&Utc))
    }
}

/// `t` without its fractions of a second. croner keeps the fractions of the time it starts
/// from, so a search from `12:00:00.5` would find a run at `12:00:00.5`.
fn whole_seconds(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp(t.timestamp(), 0).unwrap_or(t)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn weekly_berlin_stays_at_eight_local_across_spring_change() {
        // DST starts in Europe/Berlin on 2026-03-29.
        let s = Schedule::new("0 0 8 * * Mon", "Europe/Berlin").unwrap();
        let first = s.next_after(utc("2026-03-20T00:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-03-23T07:00:00Z")); // CET, UTC+1
        let second = s.next_after(first).unwrap();
        assert_eq!(second, utc("2026-03-30T06:00:00Z")); // CEST, UTC+2
    }

    #[test]
    fn weekly_berlin_stays_at_eight_local_across_autumn_change() {
        // DST ends in Europe/Berlin on 2026-10-25.
        let s = Schedule::new("0 0 8 * * Mon", "Europe/Berlin").unwrap();
        let first = s.next_after(utc("2026-10-20T00:00:00Z")).unwrap();
        assert_eq!(first, utc("2026-10-26T07:00:00Z"));
        let before = s.next_after(utc("2026-10-13T00:00:00Z")).unwrap();
        assert_eq!(before, utc("2026-10-19T06:00:00Z"));
    }

    #[test]
    fn new_york_daily_across_both_changes() {
        // America/New_York: DST from 2026-03-08 to 2026-11-01.
        let s = Schedule::new("0 30 7 * * *", "America/New_York").unwrap();
        assert_eq!(
            s.next_after(utc("2026-03-07T13:00:00Z")).unwrap(),
            utc("2026-03-08T11:30:00Z")
        );
        assert_eq!(
            s.next_after(utc("2026-03-06T13:00:00Z")).unwrap(),
            utc("2026-03-07T12:30:00Z")
        );
        assert_eq!(
            s.next_after(utc("2026-10-31T12:00:00Z")).unwrap(),
            utc("2026-11-01T12:30:00Z")
        );
        assert_eq!(
            s.next_after(utc("2026-10-30T12:00:00Z")).unwrap(),
            utc("2026-10-31T11:30:00Z")
        );
    }

    #[test]
    fn latest_at_or_before_is_inclusive() {
        let s = Schedule::new("0 0 8 * * Mon", "UTC").unwrap();
        let monday = Utc.with_ymd_and_hms(2026, 2, 2, 8, 0, 0).unwrap();
        assert_eq!(s.latest_at_or_before(monday).unwrap(), monday);
        let later = Utc.with_ymd_and_hms(2026, 2, 5, 12, 0, 0).unwrap();
        assert_eq!(s.latest_at_or_before(later).unwrap(), monday);
        let just_before = monday - chrono::Duration::seconds(1);
        assert_eq!(
            s.latest_at_or_before(just_before).unwrap(),
            monday - chrono::Duration::days(7)
        );
    }

    #[test]
    fn runs_fall_on_whole_seconds_whatever_the_fractions_of_now() {
        let s = Schedule::new("0 0 12 * * *", "Europe/Berlin").unwrap();
        let noon = utc("2026-02-28T11:00:00Z");
        for at in [
            "2026-02-28T11:00:00Z",
            "2026-02-28T11:00:00.5Z",
            "2026-02-28T17:45:30.999Z",
        ] {
            assert_eq!(s.latest_at_or_before(utc(at)).unwrap(), noon, "{at}");
        }
        assert_eq!(
            s.next_after(utc("2026-02-27T11:00:00.25Z")).unwrap(),
            noon,
            "from just after a run"
        );
        assert_eq!(
            s.next_after(utc("2026-02-28T10:59:59.75Z")).unwrap(),
            noon,
            "from the last fraction before a run"
        );
    }

    #[test]
    fn rejects_five_field_cron() {
        assert!(parse_cron("0 8 * * Mon").unwrap_err().contains("6"));
        assert!(parse_cron("0 0 25 * * *").is_err());
    }
}
