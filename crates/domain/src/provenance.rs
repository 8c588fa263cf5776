//! Where each record came from: the feed or file that stated it, its id there, when it
//! was first and last seen, and whether its source has stopped listing it.
//!
//! A record may have several sources (the same group in two councils' feeds, or a feed
//! and a spreadsheet): each is kept. A service that a feed stops serving is counted
//! missing at each complete pull and withdrawn once it has been missing from
//! [`DEFAULT_WITHDRAW_AFTER`] pulls in a row (a feed's own setting may say otherwise); it
//! is never deleted by a pull.

use crate::hsds::Metadata;
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

/// The `field_name` of the HSDS `metadata` entries that carry a record's sources in an
/// export: one entry per source, `replacement_value` its id there, `updated_by` the
/// source, `last_action_date` when it last listed the record.
pub const SOURCE_FIELD: &str = "kith:source";

impl Provenance {
    /// This source's account as an HSDS `metadata` entry, with an id derived from the
    /// record and the source so exporting twice gives the same entry.
    pub fn metadata(&self) -> Metadata {
        let key = self.source.key();
        Metadata {
            id: Uuid::new_v5(&self.record_id, format!("{SOURCE_FIELD}:{key}").as_bytes()),
            resource_id: Some(self.record_id),
            resource_type: Some(self.kind.as_str().to_owned()),
            last_action_date: self.withdrawn_at.unwrap_or(self.last_seen).date_naive().to_string(),
            last_action_type: if self.withdrawn_at.is_some() { "withdrawn" } else { "listed" }.to_owned(),
            field_name: SOURCE_FIELD.to_owned(),
            previous_value: String::new(),
            replacement_value: self.id_there.clone(),
            updated_by: key,
        }
    }
}

/// Replaces the source entries in a record's `metadata` with `sources` (those about
/// other records are ignored), leaving every other entry as it was.
pub fn set_source_metadata(metadata: &mut Vec<Metadata>, record_id: Uuid, sources: &[Provenance]) {
    metadata.retain(|m| m.field_name != SOURCE_FIELD);
    metadata.extend(sources.iter().filter(|p| p.record_id == record_id).map(Provenance::metadata));
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn sources_go_out_as_metadata_once_each() {
        let at = Utc.with_ymd_and_hms(2026, 11, 30, 8, 0, 0).single().unwrap_or_default();
        let record_id = Uuid::from_u128(1);
        let listed = Provenance {
            kind: RecordKind::Service,
            record_id,
            source: Source::Feed(Uuid::from_u128(2)),
            id_there: "abc".into(),
            first_seen: at,
            last_seen: at,
            missing: 0,
            withdrawn_at: None,
        };
        let other = Provenance { record_id: Uuid::from_u128(3), ..listed.clone() };
        let mut metadata = vec![listed.metadata(), other.metadata()];
        metadata[1].field_name = "name".into();
        set_source_metadata(&mut metadata, record_id, &[listed.clone(), other]);
        assert_eq!(metadata.len(), 2, "the old source entry is replaced, the other entry kept");
        let entry = &metadata[1];
        assert_eq!(
            (entry.last_action_date.as_str(), entry.last_action_type.as_str(), entry.replacement_value.as_str()),
            ("2026-11-30", "listed", "abc")
        );
        assert_eq!(entry.updated_by, format!("feed:{}", Uuid::from_u128(2)));
        assert_eq!(entry.id, listed.metadata().id, "the same entry each time");
    }

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
