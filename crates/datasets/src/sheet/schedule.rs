//! Opening times as people type them in a spreadsheet ("Tuesdays 10:00-12:00", "Mon & Wed
//! 9.30am-12", "First Monday of the month 10-12", "Weekdays 9-5"), read into the weekly or
//! monthly rules HSDS schedules hold (`byday`, `opens_at`, `closes_at`), as
//! `kith_domain::opening` describes them back.

use kith_domain::hsds::{Frequency, Schedule};
use kith_domain::serde_util::TimeOfDay;
use uuid::Uuid;

/// One opening read from the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Opening {
    /// `TU`, `MO,WE`, `1MO`, `-1FR`.
    pub byday: String,
    pub monthly: bool,
    pub opens: Option<TimeOfDay>,
    pub closes: Option<TimeOfDay>,
}

impl Opening {
    pub fn schedule(&self, id: Uuid) -> Schedule {
        let mut s =
            Schedule::weekly(id, &self.byday, TimeOfDay(chrono::NaiveTime::MIN), TimeOfDay(chrono::NaiveTime::MIN));
        s.opens_at = self.opens;
        s.closes_at = self.closes;
        if self.monthly {
            s.freq = Some(Frequency::Monthly);
        }
        s
    }
}

const DAYS: [(&str, [&str; 4]); 7] = [
    ("MO", ["mon", "monday", "mondays", "mons"]),
    ("TU", ["tue", "tuesday", "tuesdays", "tues"]),
    ("WE", ["wed", "wednesday", "wednesdays", "weds"]),
    ("TH", ["thu", "thursday", "thursdays", "thurs"]),
    ("FR", ["fri", "friday", "fridays", "fris"]),
    ("SA", ["sat", "saturday", "saturdays", "sats"]),
    ("SU", ["sun", "sunday", "sundays", "suns"]),
];

fn day(word: &str) -> Option<usize> {
    let word = match word.trim_end_matches('.') {
        "thur" => "thu",
        w => w,
    };
    DAYS.iter().position(|(_, names)| names.contains(&word))
}

fn ordinal(word: &str) -> Option<i8> {
    match word {
        "first" | "1st" => Some(1),
        "second" | "2nd" => Some(2),
        "third" | "3rd" => Some(3),
        "fourth" | "4th" => Some(4),
        "last" => Some(-1),
        _ => None,
    }
}

/// Words that say nothing a rule needs.
const FILLER: &[&str] = &["and", "&", "every", "each", "on", "from", "of", "the", "at", "weekly", "week", "in"];

/// Reads every opening in `text`; several may be separated by `;` or new lines. The error
/// quotes the part that could not be read.
pub fn parse(text: &str) -> Result<Vec<Opening>, String> {
    let mut out = Vec::new();
    for part in text.split([';', '\n']).map(str::trim).filter(|p| !p.is_empty()) {
        out.push(parse_one(part).ok_or_else(|| {
            format!(
                "cannot read the opening times {part:?}; write them like \"Tuesdays 10:00-12:00\", \"Mon, Wed 9:30-11:30\" or \"First Monday of the month 10:00-12:00\""
            )
        })?);
    }
    Ok(out)
}

fn parse_one(part: &str) -> Option<Opening> {
    let mut text = part.to_lowercase().replace(['–', '—'], "-").replace(" to ", "-").replace(" until ", "-");
    while text.contains(" -") || text.contains("- ") {
        text = text.replace(" -", "-").replace("- ", "-");
    }
    let text = text.replace(" am", "am").replace(" pm", "pm");
    let mut days: Vec<String> = Vec::new();
    let mut times = None;
    let mut pending_ordinal = None;
    let mut monthly = false;
    for word in text.split(|c: char| c.is_whitespace() || c == ',' || c == '/').filter(|w| !w.is_empty()) {
        if FILLER.contains(&word) {
            continue;
        }
        if word == "month" || word == "monthly" {
            monthly = true;
            continue;
        }
        if let Some(n) = ordinal(word) {
            pending_ordinal = Some(n);
            continue;
        }
        if let Some(d) = day(word) {
            let code = DAYS[d].0;
            days.push(match pending_ordinal.take() {
                Some(n) => {
                    monthly = true;
                    format!("{n}{code}")
                }
                None => code.to_owned(),
            });
            continue;
        }
        if let Some((from, to)) = word.split_once('-')
            && let (Some(a), Some(b)) = (day(from), day(to))
        {
            // "mon-fri": every day from one to the other.
            let mut d = a;
            loop {
                days.push(DAYS[d].0.to_owned());
                if d == b {
                    break;
                }
                d = (d + 1) % 7;
            }
            continue;
        }
        match word {
            "weekdays" => days.extend(DAYS[..5].iter().map(|(c, _)| (*c).to_owned())),
            "weekends" | "weekend" => days.extend(DAYS[5..].iter().map(|(c, _)| (*c).to_owned())),
            "daily" | "day" | "days" | "everyday" => days.extend(DAYS.iter().map(|(c, _)| (*c).to_owned())),
            _ if times.is_none() && word.chars().next().is_some_and(|c| c.is_ascii_digit()) => {
                times = Some(time_range(word)?);
            }
            _ => return None,
        }
    }
    if days.is_empty() || pending_ordinal.is_some() {
        return None;
    }
    days.dedup();
    let (opens, closes) = times.map_or((None, None), |(o, c)| (Some(o), c));
    Some(Opening { byday: days.join(","), monthly, opens, closes })
}

/// "10:00-12:00", "10-12", "9.30am-1pm", "10-2" (10:00 to 14:00), "9-5", or one time ("10am").
fn time_range(word: &str) -> Option<(TimeOfDay, Option<TimeOfDay>)> {
    let Some((from, to)) = word.split_once('-') else {
        return Some((time(word)?.0, None));
    };
    let (opens, opens_marked) = time(from)?;
    let (mut closes, closes_marked) = time(to)?;
    let (mut opens, h) = (opens, 12 * 60);
    let minutes = |t: TimeOfDay| chrono::Timelike::hour(&t.0) * 60 + chrono::Timelike::minute(&t.0);
    // "10-2pm" and "9-5": an end before the start is in the afternoon.
    if !closes_marked && minutes(closes) <= minutes(opens) && minutes(closes) < h {
        closes = TimeOfDay::hm(chrono::Timelike::hour(&closes.0) + 12, chrono::Timelike::minute(&closes.0))?;
    }
    // "1-3pm": the start is in the afternoon too.
    if !opens_marked && closes_marked && minutes(opens) + h <= minutes(closes) && minutes(opens) < h {
        opens = TimeOfDay::hm(chrono::Timelike::hour(&opens.0) + 12, chrono::Timelike::minute(&opens.0))?;
    }
    Some((opens, Some(closes)))
}

/// One time, and whether it said am or pm.
fn time(word: &str) -> Option<(TimeOfDay, bool)> {
    let (digits, half) = if let Some(d) = word.strip_suffix("am") {
        (d, Some(false))
    } else if let Some(d) = word.strip_suffix("pm") {
        (d, Some(true))
    } else {
        (word, None)
    };
    let (h, m) = match digits.split_once([':', '.']) {
        Some((h, m)) if m.len() == 2 => (h.parse::<u32>().ok()?, m.parse::<u32>().ok()?),
        Some(_) => return None,
        // "1000" as 10:00; only digits, so the halves are whole characters ("1é0" is not).
        None if digits.len() == 4 && digits.bytes().all(|b| b.is_ascii_digit()) => {
            (digits[..2].parse().ok()?, digits[2..].parse().ok()?)
        }
        None if !digits.is_empty() && digits.len() <= 2 => (digits.parse().ok()?, 0),
        None => return None,
    };
    let h = match half {
        Some(_) if !(1..=12).contains(&h) => return None,
        Some(false) => h % 12,
        Some(true) => h % 12 + 12,
        None => h,
    };
    Some((TimeOfDay::hm(h, m)?, half.is_some()))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use kith_domain::opening::describe;

    /// Found by fuzzing: a four-byte time with a two-byte letter in it sliced a character.
    #[test]
    fn a_time_with_a_letter_of_two_bytes_is_not_a_time_and_never_a_panic() {
        assert_eq!(time("1é0"), None);
        assert!(parse("Mondays 1é0-12").is_err(), "refused, with a message, as any unreadable time is");
    }

    fn described(text: &str) -> Vec<String> {
        parse(text)
            .unwrap_or_else(|e| panic!("{e}"))
            .iter()
            .map(|o| describe(&o.schedule(Uuid::nil())).unwrap())
            .collect()
    }

    #[test]
    fn opening_times_as_people_type_them() {
        assert_eq!(described("Tuesdays 10:00-12:00"), ["Tuesdays 10:00–12:00"]);
        assert_eq!(described("tues 10-12"), ["Tuesdays 10:00–12:00"]);
        assert_eq!(described("Mon & Wed 9.30am - 12pm"), ["Mondays and Wednesdays 09:30–12:00"]);
        assert_eq!(described("Mon, Wed, Fri 9:00 to 17:00"), ["Mondays, Wednesdays and Fridays 09:00–17:00"]);
        assert_eq!(described("Weekdays 9-5"), ["Mondays, Tuesdays, Wednesdays, Thursdays and Fridays 09:00–17:00"]);
        assert_eq!(described("Mon-Wed 10-2"), ["Mondays, Tuesdays and Wednesdays 10:00–14:00"]);
        assert_eq!(described("Thursday 1-3pm"), ["Thursdays 13:00–15:00"]);
        assert_eq!(described("First Monday of the month 10:00–12:00"), ["First Monday of the month 10:00–12:00"]);
        assert_eq!(described("last fri of the month 7pm"), ["Last Friday of the month from 19:00"]);
        assert_eq!(
            described("Tuesdays 10-12; Thursdays 18:30-20:00"),
            ["Tuesdays 10:00–12:00", "Thursdays 18:30–20:00"]
        );
        assert_eq!(described("Saturdays"), ["Saturdays"]);
        let first = &parse("1st Mon 10-12").unwrap()[0];
        assert_eq!((first.byday.as_str(), first.monthly), ("1MO", true));
    }

    /// Every day, in each of its spellings, with every opening on the half hour and a
    /// closing later the same day, in 24-hour and in am/pm form, reads back as written.
    #[test]
    fn every_day_and_half_hour_reads_back() {
        let twelve = |h: u32, m: u32| {
            let half = if h < 12 { "am" } else { "pm" };
            let h12 = if h.is_multiple_of(12) { 12 } else { h % 12 };
            if m == 0 { format!("{h12}{half}") } else { format!("{h12}:{m:02}{half}") }
        };
        for (code, names) in DAYS {
            for name in names {
                for open in (0..46).map(|n| (n / 2, (n % 2) * 30)) {
                    for close in [(open.0 + 1, open.1), (23, 30)] {
                        let expected = Opening {
                            byday: code.to_owned(),
                            monthly: false,
                            opens: TimeOfDay::hm(open.0, open.1),
                            closes: TimeOfDay::hm(close.0, close.1),
                        };
                        let text = format!("{name} {:02}:{:02}-{:02}:{:02}", open.0, open.1, close.0, close.1);
                        assert_eq!(parse(&text), Ok(vec![expected.clone()]), "{text}");
                        let text = format!(
                            "{} {} - {}",
                            name.to_uppercase(),
                            twelve(open.0, open.1),
                            twelve(close.0, close.1)
                        );
                        assert_eq!(parse(&text), Ok(vec![expected]), "{text}");
                    }
                }
            }
        }
    }

    #[test]
    fn what_cannot_be_read_is_quoted() {
        for text in ["By appointment", "Tuesdays 25:00-26:00", "10-12", "first of the month", "Tuesday 10-12 and 14"] {
            let e = parse(text).unwrap_err();
            assert!(e.contains("cannot read the opening times"), "{text}: {e}");
        }
        let e = parse("Mondays 10-12; ring first").unwrap_err();
        assert!(e.contains("\"ring first\""), "{e}");
    }
}
