//! Problem reports: anyone reading a listing can say it is wrong ("it has closed", "the
//! times are wrong"). Curators and the group see them and fix the listing. A report holds
//! no personal data: the form asks people not to include any.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// The longest report Kith keeps, in characters.
pub const MAX_DETAILS: usize = 2000;

/// What is wrong with a listing.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ProblemKind {
    Closed,
    Times,
    Contact,
    Place,
    Other,
}

impl ProblemKind {
    pub const ALL: [ProblemKind; 5] =
        [ProblemKind::Closed, ProblemKind::Times, ProblemKind::Contact, ProblemKind::Place, ProblemKind::Other];

    pub fn as_str(self) -> &'static str {
        match self {
            ProblemKind::Closed => "closed",
            ProblemKind::Times => "times",
            ProblemKind::Contact => "contact",
            ProblemKind::Place => "place",
            ProblemKind::Other => "other",
        }
    }

    pub fn parse(s: &str) -> Option<ProblemKind> {
        ProblemKind::ALL.into_iter().find(|k| k.as_str() == s)
    }

    /// How the form puts it.
    pub fn label(self) -> &'static str {
        match self {
            ProblemKind::Closed => "It has closed or stopped running",
            ProblemKind::Times => "The days or times are wrong",
            ProblemKind::Contact => "The phone number, email or website is wrong",
            ProblemKind::Place => "The address or place is wrong",
            ProblemKind::Other => "Something else",
        }
    }
}

/// Whether a report has been dealt with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReportStatus {
    Open,
    Resolved,
}

impl ReportStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ReportStatus::Open => "open",
            ReportStatus::Resolved => "resolved",
        }
    }

    pub fn parse(s: &str) -> Option<ReportStatus> {
        match s {
            "open" => Some(ReportStatus::Open),
            "resolved" => Some(ReportStatus::Resolved),
            _ => None,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProblemReport {
    pub id: Uuid,
    pub service_id: Uuid,
    pub kind: ProblemKind,
    pub details: String,
    pub status: ReportStatus,
    pub created_at: DateTime<Utc>,
}

/// Why a report cannot be taken, worded for the person filling in the form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    #[error("Select what is wrong with the listing")]
    NoKind,
    #[error("Tell us what is wrong")]
    NoDetails,
    #[error("Your description must be {MAX_DETAILS} characters or fewer")]
    TooLong,
}

impl ProblemReport {
    /// A new open report, checked.
    pub fn new(
        id: Uuid,
        service_id: Uuid,
        kind: Option<ProblemKind>,
        details: &str,
        now: DateTime<Utc>,
    ) -> Result<ProblemReport, Vec<ReportError>> {
        let details = details.trim();
        let mut errors = Vec::new();
        if kind.is_none() {
            errors.push(ReportError::NoKind);
        }
        if kind == Some(ProblemKind::Other) && details.is_empty() {
            errors.push(ReportError::NoDetails);
        }
        if details.chars().count() > MAX_DETAILS {
            errors.push(ReportError::TooLong);
        }
        match kind {
            Some(kind) if errors.is_empty() => Ok(ProblemReport {
                id,
                service_id,
                kind,
                details: details.to_owned(),
                status: ReportStatus::Open,
                created_at: now,
            }),
            _ => Err(errors),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_report_needs_a_kind_and_for_other_some_words() {
        let now = DateTime::from_timestamp(1_780_000_000, 0).unwrap();
        let id = Uuid::from_u128(1);
        assert_eq!(ProblemReport::new(id, id, None, "", now).unwrap_err(), vec![ReportError::NoKind]);
        assert_eq!(
            ProblemReport::new(id, id, Some(ProblemKind::Other), "  ", now).unwrap_err(),
            vec![ReportError::NoDetails]
        );
        let long = "x".repeat(MAX_DETAILS + 1);
        assert_eq!(
            ProblemReport::new(id, id, Some(ProblemKind::Times), &long, now).unwrap_err(),
            vec![ReportError::TooLong]
        );
        let ok = ProblemReport::new(id, id, Some(ProblemKind::Closed), " Shut in May ", now).unwrap();
        assert_eq!(ok.details, "Shut in May");
        assert_eq!(ok.status, ReportStatus::Open);
        for kind in ProblemKind::ALL {
            assert_eq!(ProblemKind::parse(kind.as_str()), Some(kind));
        }
    }
}
