//! Opening times in plain English ("Tuesdays 10:00–12:00", "First Monday of the month
//! 10:00–12:00") and the next time a service opens, from HSDS schedules.

use crate::hsds::{Frequency, Schedule};
use chrono::{Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime};

const DAYS: [(&str, &str); 7] = [
    ("MO", "Monday"),
    ("TU", "Tuesday"),
    ("WE", "Wednesday"),
    ("TH", "Thursday"),
    ("FR", "Friday"),
    ("SA", "Saturday"),
    ("SU", "Sunday"),
];

/// One day of a `byday` rule: Monday = 0, with its ordinal in the month if it has one
/// (`1MO` = first Monday, `-1FR` = last Friday).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuleDay {
    pub weekday: u8,
    pub ordinal: Option<i8>,
}

/// Reads `MO,WE`, `1TU`, `-1SU`; parts it does not understand are left out.
pub fn rule_days(byday: &str) -> Vec<RuleDay> {
    byday
        .split(',')
        .filter_map(|part| {
            let part = part.trim();
            let split = part.find(|c: char| c.is_ascii_alphabetic())?;
            let (ordinal, day) = part.split_at(split);
            let weekday = DAYS.iter().position(|(code, _)| code.eq_ignore_ascii_case(day))?;
            let ordinal = if ordinal.is_empty() { None } else { Some(ordinal.trim_start_matches('+').parse().ok()?) };
            Some(RuleDay { weekday: u8::try_from(weekday).ok()?, ordinal })
        })
        .collect()
}

fn ordinal_word(n: i8) -> &'static str {
    match n {
        1 => "First",
        2 => "Second",
        3 => "Third",
        4 => "Fourth",
        -1 => "Last",
        _ => "One",
    }
}

fn join_and(parts: &[String]) -> String {
    match parts {
        [] => String::new(),
        [one] => one.clone(),
        [init @ .., last] => format!("{} and {last}", init.join(", ")),
    }
}

fn hm(t: NaiveTime) -> String {
    t.format("%H:%M").to_string()
}

/// "Tuesdays 10:00–12:00", "Mondays, Wednesdays and Fridays 09:00–17:00", "First Monday
/// of the month 10:00–12:00". Falls back on the schedule's own description, and is
/// `None` when the schedule says nothing a person could use.
pub fn describe(s: &Schedule) -> Option<String> {
    let days = s.byday.as_deref().map(rule_days).unwrap_or_default();
    let times = match (&s.opens_at, &s.closes_at) {
        (Some(o), Some(c)) => Some(format!("{}–{}", hm(o.0), hm(c.0))),
        (Some(o), None) => Some(format!("from {}", hm(o.0))),
        _ => None,
    };
    let name = |d: &RuleDay| DAYS[usize::from(d.weekday)].1;
    let when = if days.is_empty() {
        None
    } else if days.iter().all(|d| d.ordinal.is_none()) {
        let every = matches!(s.interval, Some(i) if i > 1.0);
        let list = join_and(&days.iter().map(|d| format!("{}s", name(d))).collect::<Vec<_>>());
        Some(if every { format!("{list}, every {} weeks", s.interval.unwrap_or(1.0) as u32) } else { list })
    } else {
        let list: Vec<String> = days
            .iter()
            .map(|d| match d.ordinal {
                Some(n) => format!("{} {}", ordinal_word(n), name(d)),
                None => format!("{}s", name(d)),
            })
            .collect();
        Some(format!("{} of the month", join_and(&list)))
    };
    let described = match (when, times) {
        (Some(w), Some(t)) => Some(format!("{w} {t}")),
        (Some(w), None) => Some(w),
        (None, Some(t)) if s.freq == Some(Frequency::Weekly) => Some(format!("Every day {t}")),
        _ => None,
    };
    described.or_else(|| s.description.clone().filter(|d| !d.trim().is_empty()))
}

/// Whether the schedule holds on this date (ignoring the time of day).
fn holds_on(s: &Schedule, rule: &[RuleDay], date: NaiveDate) -> bool {
    if s.valid_from.as_ref().is_some_and(|f| date < f.0) || s.valid_to.as_ref().is_some_and(|t| date > t.0) {
        return false;
    }
    if s.until.as_ref().is_some_and(|u| date > u.0) {
        return false;
    }
    let weekday = u8::try_from(date.weekday().num_days_from_monday()).unwrap_or(0);
    rule.iter().any(|d| {
        d.weekday == weekday
            && match d.ordinal {
                None => true,
                Some(n) if n > 0 => (date.day0() / 7) as i8 + 1 == n,
                Some(n) => {
                    let days_in_month = days_in_month(date);
                    -(((days_in_month - date.day()) / 7) as i8) - 1 == n
                }
            }
    })
}

fn days_in_month(date: NaiveDate) -> u32 {
    let (y, m) = if date.month() == 12 { (date.year() + 1, 1) } else { (date.year(), date.month() + 1) };
    NaiveDate::from_ymd_opt(y, m, 1).and_then(|d| d.pred_opt()).map_or(28, |d| d.day())
}

/// When the service next opens at or after `now` (local time), looking up to eight weeks
/// ahead. A session under way counts as open now. `None` when the schedules give no
/// weekly or monthly days.
pub fn next_opening(schedules: &[Schedule], now: NaiveDateTime) -> Option<NaiveDateTime> {
    let mut best: Option<NaiveDateTime> = None;
    for s in schedules {
        let rule = s.byday.as_deref().map(rule_days).unwrap_or_default();
        if rule.is_empty() {
            continue;
        }
        let opens = s.opens_at.as_ref().map_or(NaiveTime::MIN, |t| t.0);
        let closes = s.closes_at.as_ref().map(|t| t.0);
        for offset in 0..56 {
            let date = now.date() + Duration::days(offset);
            if !holds_on(s, &rule, date) {
                continue;
            }
            let start = date.and_time(opens);
            let still_open = closes.is_none_or(|c| date.and_time(c) > now);
            if start >= now || (offset == 0 && still_open) {
                best = Some(best.map_or(start, |b| b.min(start)));
                break;
            }
        }
    }
    best
}

/// "Today at 10:00", "Tomorrow at 18:30", "Tuesday 3 December at 10:00"; "Open now"
/// when the opening has begun.
pub fn when_words(at: NaiveDateTime, now: NaiveDateTime) -> String {
    if at <= now {
        return "Open now".to_owned();
    }
    let days = (at.date() - now.date()).num_days();
    let time = hm(at.time());
    match days {
        0 => format!("Today at {time}"),
        1 => format!("Tomorrow at {time}"),
        _ => format!("{} at {time}", at.format("%A %-d %B")),
    }
}

/// Local time in the UK: GMT, or BST (GMT+1) from 01:00 GMT on the last Sunday of March
/// to 01:00 GMT on the last Sunday of October.
pub fn uk_local(t: chrono::DateTime<chrono::Utc>) -> NaiveDateTime {
    let year = t.year();
    let last_sunday = |month: u32| {
        let last = days_in_month(NaiveDate::from_ymd_opt(year, month, 1).unwrap_or_default());
        let date = NaiveDate::from_ymd_opt(year, month, last).unwrap_or_default();
        date - Duration::days(i64::from(date.weekday().num_days_from_sunday()))
    };
    let one = NaiveTime::from_hms_opt(1, 0, 0).unwrap_or(NaiveTime::MIN);
    let (start, end) = (last_sunday(3).and_time(one), last_sunday(10).and_time(one));
    let utc = t.naive_utc();
    if utc >= start && utc < end { utc + Duration::hours(1) } else { utc }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::serde_util::{Date, TimeOfDay};
    use uuid::Uuid;

    fn weekly(byday: &str, from: (u32, u32), to: (u32, u32)) -> Schedule {
        Schedule::weekly(Uuid::nil(), byday, TimeOfDay::hm(from.0, from.1).unwrap(), TimeOfDay::hm(to.0, to.1).unwrap())
    }

    fn at(y: i32, m: u32, d: u32, h: u32, min: u32) -> NaiveDateTime {
        NaiveDate::from_ymd_opt(y, m, d).unwrap().and_hms_opt(h, min, 0).unwrap()
    }

    #[test]
    fn weekly_openings_read_as_people_say_them() {
        assert_eq!(describe(&weekly("TU", (10, 0), (12, 0))).unwrap(), "Tuesdays 10:00–12:00");
        assert_eq!(
            describe(&weekly("MO,WE,FR", (9, 0), (17, 0))).unwrap(),
            "Mondays, Wednesdays and Fridays 09:00–17:00"
        );
        let mut fortnightly = weekly("TH", (18, 30), (20, 0));
        fortnightly.interval = Some(2.0);
        assert_eq!(describe(&fortnightly).unwrap(), "Thursdays, every 2 weeks 18:30–20:00");
    }

    #[test]
    fn monthly_openings_name_the_week() {
        let mut s = weekly("1MO", (10, 0), (12, 0));
        s.freq = Some(Frequency::Monthly);
        assert_eq!(describe(&s).unwrap(), "First Monday of the month 10:00–12:00");
        s.byday = Some("-1FR".into());
        assert_eq!(describe(&s).unwrap(), "Last Friday of the month 10:00–12:00");
    }

    #[test]
    fn a_schedule_without_days_falls_back_on_its_description() {
        let mut s = weekly("", (0, 0), (0, 0));
        s.byday = None;
        s.opens_at = None;
        s.closes_at = None;
        assert_eq!(describe(&s), None);
        s.description = Some("By appointment".into());
        assert_eq!(describe(&s).unwrap(), "By appointment");
    }

    #[test]
    fn the_next_opening_is_the_soonest_session_not_yet_over() {
        // Wednesday 25 November 2026.
        let now = at(2026, 11, 25, 11, 0);
        let tuesday = weekly("TU", (10, 0), (12, 0));
        assert_eq!(next_opening(std::slice::from_ref(&tuesday), now), Some(at(2026, 12, 1, 10, 0)));
        let wednesday = weekly("WE", (10, 0), (12, 0));
        assert_eq!(next_opening(&[tuesday.clone(), wednesday.clone()], now), Some(at(2026, 11, 25, 10, 0)));
        assert_eq!(when_words(at(2026, 11, 25, 10, 0), now), "Open now");
        let later = at(2026, 11, 25, 13, 0);
        assert_eq!(next_opening(&[tuesday, wednesday], later), Some(at(2026, 12, 1, 10, 0)));
        assert_eq!(when_words(at(2026, 12, 1, 10, 0), later), "Tuesday 1 December at 10:00");
        assert_eq!(when_words(at(2026, 11, 26, 18, 30), later), "Tomorrow at 18:30");
    }

    #[test]
    fn uk_local_time_follows_summer_time() {
        let utc = |y, m, d, h| chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, y, m, d, h, 0, 0).unwrap();
        assert_eq!(uk_local(utc(2026, 11, 25, 12)), at(2026, 11, 25, 12, 0));
        assert_eq!(uk_local(utc(2026, 7, 1, 12)), at(2026, 7, 1, 13, 0));
        // 2026: BST from 29 March to 25 October.
        assert_eq!(uk_local(utc(2026, 3, 29, 0)), at(2026, 3, 29, 0, 0));
        assert_eq!(uk_local(utc(2026, 3, 29, 1)), at(2026, 3, 29, 2, 0));
        assert_eq!(uk_local(utc(2026, 10, 25, 0)), at(2026, 10, 25, 1, 0));
        assert_eq!(uk_local(utc(2026, 10, 25, 1)), at(2026, 10, 25, 1, 0));
    }

    #[test]
    fn monthly_and_bounded_schedules() {
        let now = at(2026, 11, 25, 9, 0);
        let mut first_monday = weekly("1MO", (10, 0), (12, 0));
        first_monday.freq = Some(Frequency::Monthly);
        assert_eq!(next_opening(std::slice::from_ref(&first_monday), now), Some(at(2026, 12, 7, 10, 0)));
        let mut last_friday = weekly("-1FR", (10, 0), (12, 0));
        last_friday.freq = Some(Frequency::Monthly);
        assert_eq!(next_opening(std::slice::from_ref(&last_friday), now), Some(at(2026, 11, 27, 10, 0)));
        let mut ended = weekly("TH", (10, 0), (12, 0));
        ended.valid_to = Some(Date(NaiveDate::from_ymd_opt(2026, 11, 1).unwrap()));
        assert_eq!(next_opening(&[ended], now), None);
    }
}
