//! Local delivery time, pure: with a topic's `deliver_at_local = "08:00"`, each subscriber gets
//! an issue at the next 08:00 in their own zone after it was compiled (the schedule's zone for
//! subscribers without one). Handles days where that wall-clock time does not exist (a DST gap,
//! or a whole skipped day as in Pacific/Apia in 2011) and repeated hours (the first one wins).

use chrono::{DateTime, Duration, LocalResult, NaiveTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

/// The first instant at or after `compiled_at` whose wall-clock time in the subscriber's zone
/// (or `default_tz`) is `deliver_at`; the next day's when it has passed. When `deliver_at` falls
/// into a DST gap that day, it is read with the offset before the gap (02:30 becomes 03:30); a
/// day on which it does not exist at all is skipped.
pub fn local_not_before(
    deliver_at: NaiveTime,
    subscriber_tz: Option<Tz>,
    default_tz: Tz,
    compiled_at: DateTime<Utc>,
) -> DateTime<Utc> {
    let tz = subscriber_tz.unwrap_or(default_tz);
    let mut date = compiled_at.with_timezone(&tz).date_naive();
    // Three days cover any zone's skipped day; the fallback is unreachable in real zones.
    for _ in 0..4 {
        if let Some(at) = resolve(tz, date.and_time(deliver_at))
            && at >= compiled_at
        {
            return at;
        }
        match date.succ_opt() {
            Some(next) => date = next,
            None => break,
        }
    }
    compiled_at
}

/// A local wall-clock time as an instant: the earlier of two in a repeated hour; in a DST gap,
/// the time read with the offset in force before the gap (02:30 in a 02:00-03:00 gap is 03:30),
/// provided the zone existed 3 hours earlier; None for a wholly skipped stretch.
fn resolve(tz: Tz, local: chrono::NaiveDateTime) -> Option<DateTime<Utc>> {
    match tz.from_local_datetime(&local) {
        LocalResult::Single(t) => Some(t.with_timezone(&Utc)),
        LocalResult::Ambiguous(a, b) => Some(a.min(b).with_timezone(&Utc)),
        LocalResult::None => {
            let before = tz
                .from_local_datetime(&(local - Duration::hours(3)))
                .earliest()?;
            let offset = before.offset().fix().local_minus_utc();
            Some(Utc.from_utc_datetime(&(local - Duration::seconds(i64::from(offset)))))
        }
    }
}

/// Parses a zone as subscribers store it; None when absent or not an IANA name.
pub fn parse_timezone(raw: Option<&str>) -> Option<Tz> {
    raw.and_then(|s| s.trim().parse::<Tz>().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn eight() -> NaiveTime {
        NaiveTime::from_hms_opt(8, 0, 0).unwrap()
    }

    fn tz(name: &str) -> Tz {
        name.parse().unwrap()
    }

    #[test]
    fn later_the_same_day_when_eight_is_still_ahead() {
        // 05:00 in Berlin (CET): 08:00 the same day = 07:00Z.
        let got = local_not_before(
            eight(),
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-02-02T04:00:00Z"),
        );
        assert_eq!(got, utc("2026-02-02T07:00:00Z"));
    }

    #[test]
    fn next_day_when_eight_has_passed() {
        // 09:00 in Berlin: tomorrow 08:00.
        let got = local_not_before(
            eight(),
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-02-02T08:00:00Z"),
        );
        assert_eq!(got, utc("2026-02-03T07:00:00Z"));
        // Exactly 08:00 counts as now.
        let got = local_not_before(
            eight(),
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-02-02T07:00:00Z"),
        );
        assert_eq!(got, utc("2026-02-02T07:00:00Z"));
    }

    #[test]
    fn subscribers_without_a_zone_use_the_schedule_zone() {
        let ny = tz("America/New_York");
        let got = local_not_before(eight(), None, ny, utc("2026-02-02T12:00:00Z"));
        assert_eq!(got, utc("2026-02-02T13:00:00Z"));
    }

    #[test]
    fn across_the_spring_change_eight_is_local_time() {
        // Compiled Saturday 2026-03-28 10:00 Berlin (CET); next 08:00 is Sunday, already CEST.
        let got = local_not_before(
            eight(),
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-03-28T09:00:00Z"),
        );
        assert_eq!(got, utc("2026-03-29T06:00:00Z"));
        // New York: Saturday 2026-03-07 (EST) -> Sunday 08:00 EDT.
        let got = local_not_before(
            eight(),
            Some(tz("America/New_York")),
            Tz::UTC,
            utc("2026-03-07T15:00:00Z"),
        );
        assert_eq!(got, utc("2026-03-08T12:00:00Z"));
    }

    #[test]
    fn across_the_autumn_change_eight_is_local_time() {
        let got = local_not_before(
            eight(),
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-10-24T09:00:00Z"),
        );
        assert_eq!(got, utc("2026-10-25T07:00:00Z"));
        let got = local_not_before(
            eight(),
            Some(tz("America/New_York")),
            Tz::UTC,
            utc("2026-10-31T15:00:00Z"),
        );
        assert_eq!(got, utc("2026-11-01T13:00:00Z"));
    }

    #[test]
    fn a_time_inside_the_gap_moves_forward_by_the_gap() {
        // 02:30 does not exist in Berlin on 2026-03-29: 03:30 CEST = 01:30Z.
        let half_past_two = NaiveTime::from_hms_opt(2, 30, 0).unwrap();
        let got = local_not_before(
            half_past_two,
            Some(tz("Europe/Berlin")),
            Tz::UTC,
            utc("2026-03-28T22:00:00Z"),
        );
        assert_eq!(got, utc("2026-03-29T01:30:00Z"));
        // 01:30 happens twice in New York on 2026-11-01: the first (EDT) one.
        let half_past_one = NaiveTime::from_hms_opt(1, 30, 0).unwrap();
        let got = local_not_before(
            half_past_one,
            Some(tz("America/New_York")),
            Tz::UTC,
            utc("2026-11-01T04:00:00Z"),
        );
        assert_eq!(got, utc("2026-11-01T05:30:00Z"));
    }

    #[test]
    fn either_side_of_the_date_line() {
        let compiled = utc("2026-02-02T08:00:00Z"); // Monday
        // Kiritimati (UTC+14): already 22:00 Monday -> Tuesday 08:00 = Monday 18:00Z.
        let got = local_not_before(eight(), Some(tz("Pacific/Kiritimati")), Tz::UTC, compiled);
        assert_eq!(got, utc("2026-02-02T18:00:00Z"));
        // Pago Pago (UTC-11): still 21:00 Sunday -> Monday 08:00 = Monday 19:00Z.
        let got = local_not_before(eight(), Some(tz("Pacific/Pago_Pago")), Tz::UTC, compiled);
        assert_eq!(got, utc("2026-02-02T19:00:00Z"));
        // Both are within a day of compilation, and the later-in-UTC one is the western zone.
        assert!(got - compiled < Duration::days(1));
    }

    #[test]
    fn a_skipped_calendar_day_moves_to_the_next_day() {
        // Samoa skipped 2011-12-30 when it moved across the date line (UTC-10 -> UTC+14).
        // Compiled on 29 December at 20:00 local: the next 08:00 is on 31 December.
        let got = local_not_before(
            eight(),
            Some(tz("Pacific/Apia")),
            Tz::UTC,
            utc("2011-12-30T06:00:00Z"),
        );
        assert_eq!(got, utc("2011-12-30T18:00:00Z"));
    }

    #[test]
    fn unknown_zone_names_fall_back() {
        assert_eq!(parse_timezone(Some("Mars/Olympus")), None);
        assert_eq!(parse_timezone(None), None);
        assert_eq!(
            parse_timezone(Some(" Europe/Berlin ")),
            Some(tz("Europe/Berlin"))
        );
    }
}
