//! What Kith's FHIR API offers, for `GET /fhir/metadata`.

use crate::datatypes::Instant;
use crate::resource::ResourceType;
use chrono::{DateTime, Utc};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Software {
    pub name: &'static str,
    pub version: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Implementation {
    pub description: &'static str,
    pub url: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Interaction {
    /// `read`, `search-type`, `update` or `patch`.
    pub code: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<&'static str>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchParam {
    pub name: &'static str,
    /// The SearchParameter's canonical URL in FHIR R4.
    pub definition: &'static str,
    #[serde(rename = "type")]
    pub type_: &'static str,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RestResource {
    #[serde(rename = "type")]
    pub type_: ResourceType,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub documentation: Option<&'static str>,
    pub interaction: Vec<Interaction>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub search_param: Vec<SearchParam>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rest {
    /// `server`.
    pub mode: &'static str,
    pub documentation: &'static str,
    pub resource: Vec<RestResource>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CapabilityStatement {
    pub resource_type: ResourceType,
    pub name: &'static str,
    pub title: &'static str,
    pub status: &'static str,
    pub date: Instant,
    pub publisher: &'static str,
    pub kind: &'static str,
    pub software: Software,
    pub implementation: Implementation,
    pub fhir_version: &'static str,
    pub format: Vec<&'static str>,
    pub patch_format: Vec<&'static str>,
    pub rest: Vec<Rest>,
}

const READ: Interaction = Interaction { code: "read", documentation: None };
const SEARCH: Interaction = Interaction { code: "search-type", documentation: None };

const fn param(name: &'static str, definition: &'static str, type_: &'static str) -> SearchParam {
    SearchParam { name, definition, type_ }
}

/// The CapabilityStatement of the Kith server at `base`, dated `now`.
///
/// Every resource can be read; ServiceRequest, Task, HealthcareService and Observation
/// searched; and a Task's status changed, by PUT of the Task or by a JSON Patch of
/// `/status` and `/statusReason` (see [`crate::requested_status`]).
pub fn capability_statement(base: &str, now: DateTime<Utc>) -> CapabilityStatement {
    let resource = |type_, documentation, interaction, search_param| RestResource {
        type_,
        documentation,
        interaction,
        search_param,
    };
    let patient = param("patient", "http://hl7.org/fhir/SearchParameter/clinical-patient", "reference");
    CapabilityStatement {
        resource_type: ResourceType::CapabilityStatement,
        name: "KithFhirApi",
        title: "Kith FHIR API",
        status: "active",
        date: now.into(),
        publisher: "Kith",
        kind: "instance",
        software: Software { name: "Kith", version: env!("CARGO_PKG_VERSION") },
        implementation: Implementation {
            description: "Kith: social prescribing referrals between GP practices and community groups",
            url: base.trim_end_matches('/').to_owned(),
        },
        fhir_version: "4.0.1",
        format: vec!["json"],
        patch_format: vec!["application/json-patch+json"],
        rest: vec![Rest {
            mode: "server",
            documentation: "Referrals (ServiceRequest and Task), their consent, patients, outcome measures and \
                            follow-up outcomes (Observation), and the directory's services (HealthcareService).",
            resource: vec![
                resource(
                    ResourceType::ServiceRequest,
                    Some("A signpost (intent proposal) or referral (intent order)."),
                    vec![READ, SEARCH],
                    vec![
                        patient.clone(),
                        param("status", "http://hl7.org/fhir/SearchParameter/ServiceRequest-status", "token"),
                        param("authored", "http://hl7.org/fhir/SearchParameter/ServiceRequest-authored", "date"),
                    ],
                ),
                resource(
                    ResourceType::Task,
                    Some("A referral's progress. Only its status, with a reason, can be changed."),
                    vec![
                        READ,
                        SEARCH,
                        Interaction {
                            code: "update",
                            documentation: Some("Send the Task with a new status and, to decline, a statusReason."),
                        },
                        Interaction {
                            code: "patch",
                            documentation: Some("JSON Patch replacing /status and, optionally, /statusReason."),
                        },
                    ],
                    vec![
                        param("patient", "http://hl7.org/fhir/SearchParameter/Task-patient", "reference"),
                        param("status", "http://hl7.org/fhir/SearchParameter/Task-status", "token"),
                        param("authored-on", "http://hl7.org/fhir/SearchParameter/Task-authored-on", "date"),
                    ],
                ),
                resource(ResourceType::HealthcareService, None, vec![READ], Vec::new()),
                resource(ResourceType::Patient, None, vec![READ], Vec::new()),
                resource(ResourceType::Consent, Some("The consent recorded with a referral."), vec![READ], Vec::new()),
                resource(
                    ResourceType::Observation,
                    Some("Outcome measures such as ONS4, and follow-up outcomes."),
                    vec![READ, SEARCH],
                    vec![patient],
                ),
            ],
        }],
    }
}
