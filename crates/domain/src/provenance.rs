//! Where each record came from: the feed or file that stated it, its id there, when it
//! was first and last seen, and whether its source has stopped listing it.
//!
//! A record may have several sources (the same group in two councils' feeds, or a feed
//! and a spreadsheet): each is kept. A service that a feed stops serving is counted
//! missing at each complete pull and withdrawn once it has been missing from
//! [`DEFAULT_WITHDRAW_AFTER`] pulls in a row (a feed's own setting may say otherwise); it
//! is never deleted by a pull.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Complete pulls a service may be missing from its feed before it is withdrawn.
pub const DEFAULT_WITHDRAW_AFTER: u32 = 2;

/// A source of records: a registered feed (by its id, so renaming the feed keeps its
/// history) or a file, by its name.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Source {
    Feed(Uuid),
    File(String),
}

impl Source {
    /// The form the store keeps: `feed:UUID` or `file:NAME`.
    pub fn key(&self) -> String {
        match self {
            Source::Feed(id) => format!("feed:{id}"),
            Source::File(name) => format!("file:{name}"),
        }
    }

    /// Reads [`Source::key`]'s form back; `None` for anything else.
    pub fn from_key(key: &str) -> Option<Source> {
        if let Some(id) = key.strip_prefix("feed:") {
            return Uuid::parse_str(id).ok().map(Source::Feed);
        }
        key.strip_prefix("file:").filter(|n| !n.is_empty()).map(|n| Source::File(n.to_owned()))
    }

    /// A file's source, named by the file's own name (not the folder it was read from,
    /// so importing the same file from elsewhere is the same source).
    pub fn file(path: &std::path::Path) -> Source {
        let name = path.file_name().map_or_else(|| path.display().to_string(), |n| n.to_string_lossy().into_owned());
        Source::File(name)
    }
}

/// The source a batch of records is being written from, and the round (one pull of a
/// feed, one import of a file) that saw them: records the source held before and that
/// this round did not see are the ones missing from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stamp {
    pub source: Source,
    pub round: Uuid,
}

/// What kind of record a provenance entry is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Organization,
    Service,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Organization => "organization",
            RecordKind::Service => "service",
        }
    }

    pub fn parse(s: &str) -> Option<RecordKind> {
        match s {
            "organization" => Some(RecordKind::Organization),
            "service" => Some(RecordKind::Service),
            _ => None,
        }
    }
}

/// One source's account of one record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Provenance {
    pub kind: RecordKind,
    pub record_id: Uuid,
    pub source: Source,
    /// The record's id in its source.
    pub id_there: String,
    pub first_seen: DateTime<Utc>,
    pub last_seen: DateTime<Utc>,
    /// Complete pulls in a row the source has not listed it in.
    pub missing: u32,
    /// When Kith withdrew it because its source stopped listing it.
    pub withdrawn_at: Option<DateTime<Utc>>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_kept_as_keys_and_read_back() {
        let feed = Source::Feed(Uuid::from_u128(7));
        assert_eq!(Source::from_key(&feed.key()), Some(feed));
        let file = Source::file(std::path::Path::new("/data/in/bristol-services.json"));
        assert_eq!(file.key(), "file:bristol-services.json");
        assert_eq!(Source::from_key(&file.key()), Some(file));
        assert_eq!(Source::from_key("feed:not-a-uuid"), None);
        assert_eq!(Source::from_key("file:"), None);
        assert_eq!(Source::from_key("elsewhere"), None);
    }
}
