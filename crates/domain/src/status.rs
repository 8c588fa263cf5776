//! Workflow states are non-null enums, mirrored by a CHECK constraint in both databases.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// Whether a service can be used now. HSDS 3.0 defines these four values; Kith shows
/// `active` and `temporarily closed` services and keeps the others for the record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ServiceStatus {
    #[serde(rename = "active")]
    Active,
    #[serde(rename = "temporarily closed")]
    TemporarilyClosed,
    #[serde(rename = "inactive")]
    Inactive,
    #[serde(rename = "defunct")]
    Defunct,
}

impl ServiceStatus {
    pub const ALL: [ServiceStatus; 4] =
        [ServiceStatus::Active, ServiceStatus::TemporarilyClosed, ServiceStatus::Inactive, ServiceStatus::Defunct];

    /// The value stored in the database and written in HSDS JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceStatus::Active => "active",
            ServiceStatus::TemporarilyClosed => "temporarily closed",
            ServiceStatus::Inactive => "inactive",
            ServiceStatus::Defunct => "defunct",
        }
    }
}

impl fmt::Display for ServiceStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status string that is not one of the four HSDS values.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown service status {0:?}; use one of: active, temporarily closed, inactive, defunct")]
pub struct UnknownStatus(pub String);

impl FromStr for ServiceStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL.into_iter().find(|status| status.as_str() == s).ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_status_through_its_string() {
        for status in ServiceStatus::ALL {
            assert_eq!(status.as_str().parse::<ServiceStatus>(), Ok(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
    }

    #[test]
    fn rejects_unknown_status_with_the_allowed_values() {
        let err = "closed".parse::<ServiceStatus>().unwrap_err();
        assert!(err.to_string().contains("temporarily closed"));
    }
}
