//! Small serde adapters for the value shapes HSDS uses.

use chrono::{NaiveDate, NaiveTime};
use serde::{Deserialize, Deserializer, Serialize, Serializer, de};
use std::fmt;

/// HSDS numbers (ages, coordinates, amounts) are JSON numbers. Kith holds them as `f64`
/// but writes whole numbers without a fraction, so `12` stays `12` rather than `12.0`.
pub mod number {
    use super::*;

    pub fn serialize<S: Serializer>(value: &Option<f64>, s: S) -> Result<S::Ok, S::Error> {
        match value {
            None => s.serialize_none(),
            Some(v) if v.fract() == 0.0 && v.abs() < 9.0e15 => {
                #[allow(clippy::cast_possible_truncation)] // Whole and well inside i64.
                s.serialize_i64(*v as i64)
            }
            Some(v) => s.serialize_f64(*v),
        }
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
        let value = Option::<f64>::deserialize(d)?;
        match value {
            Some(v) if !v.is_finite() => Err(de::Error::custom("expected a finite number")),
            other => Ok(other),
        }
    }
}

/// A calendar date, written `YYYY-MM-DD`. Also reads a full RFC 3339 timestamp and keeps
/// its date, because published feeds often use one where HSDS expects the other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Date(pub NaiveDate);

impl Date {
    pub fn parse(s: &str) -> Option<Date> {
        let s = s.trim();
        if let Ok(d) = NaiveDate::parse_from_str(s, "%Y-%m-%d") {
            return Some(Date(d));
        }
        chrono::DateTime::parse_from_rfc3339(s)
            .ok()
            .map(|dt| Date(dt.date_naive()))
            .or_else(|| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok().map(|dt| Date(dt.date())))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%Y-%m-%d"))
    }
}

impl Serialize for Date {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Date {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        Date::parse(&s).ok_or_else(|| {
            de::Error::custom(format!("{s:?} is not a date; write it as YYYY-MM-DD, for example 2025-04-01"))
        })
    }
}

/// A time of day, written `HH:MM:SS`. Reads `HH:MM`, `HH:MM:SS` and a trailing `Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct TimeOfDay(pub NaiveTime);

impl TimeOfDay {
    pub fn parse(s: &str) -> Option<TimeOfDay> {
        let s = s.trim().trim_end_matches('Z');
        NaiveTime::parse_from_str(s, "%H:%M:%S").or_else(|_| NaiveTime::parse_from_str(s, "%H:%M")).ok().map(TimeOfDay)
    }

    pub fn hm(h: u32, m: u32) -> Option<TimeOfDay> {
        NaiveTime::from_hms_opt(h, m, 0).map(TimeOfDay)
    }
}

impl fmt::Display for TimeOfDay {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0.format("%H:%M:%S"))
    }
}

impl Serialize for TimeOfDay {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for TimeOfDay {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        TimeOfDay::parse(&s).ok_or_else(|| {
            de::Error::custom(format!("{s:?} is not a time of day; write it as HH:MM, for example 09:30"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_accept_plain_dates_and_timestamps() {
        assert_eq!(Date::parse("2021-01-06").unwrap().to_string(), "2021-01-06");
        assert_eq!(Date::parse("2023-03-15T10:30:45.123Z").unwrap().to_string(), "2023-03-15");
        assert!(Date::parse("06/01/2021").is_none());
    }

    #[test]
    fn times_accept_minutes_or_seconds() {
        assert_eq!(TimeOfDay::parse("9:30").unwrap().to_string(), "09:30:00");
        assert_eq!(TimeOfDay::parse("10:00:00").unwrap().to_string(), "10:00:00");
        assert!(TimeOfDay::parse("25:00").is_none());
    }
}
