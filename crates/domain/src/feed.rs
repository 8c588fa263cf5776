//! Directory feeds: a council's or a group's ORUK API, registered once and pulled on a
//! schedule, with a record of every pull.

use crate::geo::WholeArea;
use crate::provenance::DEFAULT_WITHDRAW_AFTER;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// A feed Kith pulls: the API's address (services are at `URL/services`), the places
/// its services cover, and how often.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Feed {
    pub id: Uuid,
    /// What curators call it; unique.
    pub name: String,
    pub url: String,
    #[serde(default)]
    pub areas: Vec<WholeArea>,
    /// Hours between pulls.
    pub every_hours: u32,
    /// Complete pulls a service may be missing from the feed before it is withdrawn.
    #[serde(default = "default_withdraw_after")]
    pub withdraw_after: u32,
    pub created_at: DateTime<Utc>,
}

impl Feed {
    /// How often it is pulled, as in "every day", "every 6 hours", "every 7 days".
    pub fn every_text(&self) -> String {
        match self.every_hours {
            24 => "day".into(),
            h if h % 24 == 0 => format!("{} days", h / 24),
            1 => "hour".into(),
            h => format!("{h} hours"),
        }
    }
}

fn default_withdraw_after() -> u32 {
    DEFAULT_WITHDRAW_AFTER
}

/// Hours between pulls unless a feed says otherwise.
pub const DEFAULT_EVERY_HOURS: u32 = 24;
/// The longest a feed may go between pulls: 90 days.
pub const MAX_EVERY_HOURS: u32 = 24 * 90;

/// One pull of a feed: when, how long, what it found, and what went wrong.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FeedPull {
    pub id: Uuid,
    pub feed_id: Uuid,
    pub started_at: DateTime<Utc>,
    pub finished_at: DateTime<Utc>,
    /// Pages read.
    pub pages: u32,
    /// Services in the feed that Kith accepted.
    pub services: u64,
    /// Of those, new to Kith or different from what it held.
    pub written: u64,
    /// Of those written, services the feed had not listed before.
    #[serde(default)]
    pub new: u64,
    /// Services made inactive by this pull because the feed has stopped listing them.
    #[serde(default)]
    pub withdrawn: u64,
    /// Services read from their own page (`URL/services/{id}`) because the list said
    /// nothing of their venues, times, areas or contacts.
    #[serde(default)]
    pub details: u64,
    /// Records the feed served that Kith refused, each with its reason.
    pub rejected: u64,
    /// The first few refusals, as a person reads them.
    #[serde(default)]
    pub problems: Vec<String>,
    /// Why the pull stopped, when it did: nothing from it was written.
    #[serde(default)]
    pub error: Option<String>,
    /// Whether it asked for every service, or only those changed since an earlier pull
    /// (`modified_after`). Only a full pull counts services missing from the feed.
    #[serde(default = "full_by_default")]
    pub full: bool,
    /// The `modified_after` it asked with, for a pull of changes.
    #[serde(default)]
    pub since: Option<DateTime<Utc>>,
}

fn full_by_default() -> bool {
    true
}

/// How long Kith asks a feed only for what changed (`modified_after`) before it reads
/// the whole feed again, which is what finds services the feed no longer lists.
pub const FULL_PULL_EVERY_DAYS: i64 = 7;

impl FeedPull {
    pub fn succeeded(&self) -> bool {
        self.error.is_none()
    }

    /// Services the feed still served as before.
    pub fn unchanged(&self) -> u64 {
        self.services.saturating_sub(self.written)
    }

    /// Services the feed listed before and now serves differently.
    pub fn changed(&self) -> u64 {
        self.written.saturating_sub(self.new)
    }

    /// What the pull found, as a person reads it: "817 services: 3 new, 2 changed,
    /// 812 unchanged, 1 withdrawn, 0 refused", after "changes since 2 Dec 2026 09:00: "
    /// for a pull of changes, and with "; 40 read from their own pages" when the list
    /// left services' details to their pages.
    pub fn summary(&self) -> String {
        let asked = match self.since {
            Some(since) => format!("changes since {}: ", since.format("%-d %b %Y %H:%M")),
            None => String::new(),
        };
        format!(
            "{asked}{} services: {} new, {} changed, {} unchanged, {} withdrawn, {} refused",
            self.services,
            self.new,
            self.changed(),
            self.unchanged(),
            self.withdrawn,
            self.rejected
        ) + &match self.details {
            0 => String::new(),
            1 => "; 1 read from its own page".to_owned(),
            n => format!("; {n} read from their own pages"),
        }
    }

    /// "12 s", "2 min 5 s".
    pub fn took(&self) -> String {
        let seconds = (self.finished_at - self.started_at).num_seconds().max(0);
        if seconds < 60 { format!("{seconds} s") } else { format!("{} min {} s", seconds / 60, seconds % 60) }
    }
}

/// Checks a feed's name: what people type to pull or remove it.
pub fn check_name(name: &str) -> Result<String, String> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 60 {
        return Err("give the feed a name of 1 to 60 characters, like bristol".into());
    }
    if name.chars().any(|c| c.is_control() || c == '/') {
        return Err(format!("the feed name \"{name}\" holds a character it cannot: use letters, digits, - and _"));
    }
    Ok(name.to_owned())
}

/// Checks a feed's address: http or https, with a host, no credentials, no query. The
/// trailing `/services` (if given) is taken off, as Kith adds it.
pub fn check_url(url: &str) -> Result<String, String> {
    let url = url.trim().trim_end_matches('/');
    let url = url.strip_suffix("/services").unwrap_or(url);
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
        .ok_or_else(|| format!("the feed address \"{url}\" must start with https:// or http://"))?;
    let host = rest.split('/').next().unwrap_or_default();
    if host.is_empty()
        || host.contains('@')
        || url.contains('?')
        || url.contains('#')
        || url.chars().any(char::is_whitespace)
    {
        return Err(format!(
            "the feed address \"{url}\" is not one Kith can pull: give the API's base address, like https://example.org/api (Kith adds /services)"
        ));
    }
    Ok(url.to_owned())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn addresses_and_names_are_checked() {
        assert_eq!(check_url("https://example.org/api/services/").unwrap(), "https://example.org/api");
        assert_eq!(check_url("http://127.0.0.1:8080").unwrap(), "http://127.0.0.1:8080");
        assert!(check_url("ftp://example.org").unwrap_err().contains("https://"));
        assert!(check_url("https://user@example.org").is_err());
        assert!(check_url("https://example.org/api?page=1").is_err());
        assert_eq!(check_name(" bristol ").unwrap(), "bristol");
        assert!(check_name("").is_err());
        assert!(check_name("a/b").is_err());
    }

    #[test]
    fn how_often_reads_as_people_say_it() {
        let feed = |every_hours| Feed {
            id: Uuid::nil(),
            name: "bristol".into(),
            url: "https://example.org".into(),
            areas: vec![],
            every_hours,
            withdraw_after: DEFAULT_WITHDRAW_AFTER,
            created_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let said: Vec<String> = [1, 6, 24, 168].into_iter().map(|h| feed(h).every_text()).collect();
        assert_eq!(said, ["hour", "6 hours", "day", "7 days"]);
    }
}
