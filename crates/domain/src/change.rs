//! The change feed: every directory write appends one entry, in the same transaction,
//! so that search indexes and other instances can catch up by sequence number.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::str::FromStr;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ObjectType {
    Organization,
    Service,
    Location,
    Taxonomy,
    TaxonomyTerm,
}

impl ObjectType {
    pub const ALL: [ObjectType; 5] = [
        ObjectType::Organization,
        ObjectType::Service,
        ObjectType::Location,
        ObjectType::Taxonomy,
        ObjectType::TaxonomyTerm,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ObjectType::Organization => "organization",
            ObjectType::Service => "service",
            ObjectType::Location => "location",
            ObjectType::Taxonomy => "taxonomy",
            ObjectType::TaxonomyTerm => "taxonomy_term",
        }
    }
}

impl FromStr for ObjectType {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|t| t.as_str() == s).ok_or_else(|| format!("unknown object type {s:?}"))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ChangeOp {
    Upsert,
    Delete,
}

impl ChangeOp {
    pub fn as_str(self) -> &'static str {
        match self {
            ChangeOp::Upsert => "upsert",
            ChangeOp::Delete => "delete",
        }
    }
}

impl FromStr for ChangeOp {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "upsert" => Ok(ChangeOp::Upsert),
            "delete" => Ok(ChangeOp::Delete),
            other => Err(format!("unknown change operation {other:?}")),
        }
    }
}

/// One entry of the change feed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// Strictly increasing within one database.
    pub seq: i64,
    pub object_type: ObjectType,
    pub object_id: Uuid,
    pub op: ChangeOp,
    pub at: DateTime<Utc>,
}
