//! Errors and warnings as an OperationOutcome.

use crate::resource::ResourceType;
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueSeverity {
    Fatal,
    Error,
    Warning,
    Information,
}

/// The FHIR issue types Kith reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum IssueType {
    /// The content is not valid: a bad body, a bad search parameter.
    Invalid,
    Structure,
    Required,
    Value,
    /// Not allowed by the referral's rules: a move the state machine forbids.
    BusinessRule,
    /// Someone else changed it first.
    Conflict,
    NotFound,
    /// No longer available to this client (FHIR's `deleted`): a referral that ended.
    Deleted,
    Forbidden,
    Login,
    Security,
    NotSupported,
    TooCostly,
    Throttled,
    Processing,
    Exception,
    Informational,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Issue {
    pub severity: IssueSeverity,
    pub code: IssueType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub diagnostics: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct OperationOutcome {
    pub resource_type: ResourceType,
    pub issue: Vec<Issue>,
}

/// One issue, with a message a person can act on as its `diagnostics`.
pub fn operation_outcome(severity: IssueSeverity, code: IssueType, diagnostics: &str) -> OperationOutcome {
    OperationOutcome {
        resource_type: ResourceType::OperationOutcome,
        issue: vec![Issue { severity, code, diagnostics: crate::datatypes::text(diagnostics) }],
    }
}
