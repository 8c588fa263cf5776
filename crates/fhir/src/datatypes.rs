//! The FHIR R4 data types Kith's resources are built from, and the code systems they use.
//!
//! FHIR forbids empty strings and arrays, so every optional value is an `Option` or a
//! `Vec` left out of the JSON when absent or empty, and text only becomes a value through
//! [`text`], which drops blank strings.

use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};

pub const SNOMED: &str = kith_domain::referral::snomed::SYSTEM;
pub const LOINC: &str = "http://loinc.org";
/// UK Core's NHS number identifier system.
pub const NHS_NUMBER: &str = "https://fhir.nhs.uk/Id/nhs-number";
/// BCP 47 language tags.
pub const LANGUAGE: &str = "urn:ietf:bcp:47";
pub const OBSERVATION_CATEGORY: &str = "http://terminology.hl7.org/CodeSystem/observation-category";
pub const TASK_CODE: &str = "http://hl7.org/fhir/CodeSystem/task-code";
pub const CONSENT_SCOPE: &str = "http://terminology.hl7.org/CodeSystem/consentscope";
pub const CONSENT_ACTION: &str = "http://terminology.hl7.org/CodeSystem/consentaction";
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
pub const V3_ACT_REASON: &str = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
pub const V3_PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";

/// The URL of one of Kith's own code systems, `{base}/CodeSystem/{name}`, for codes no
/// public terminology has (outcomes, end reasons, ONS4 questions).
pub fn kith_system(base: &str, name: &str) -> String {
    format!("{}/CodeSystem/{name}", base.trim_end_matches('/'))
}

/// Text as a FHIR string: trimmed, and `None` when nothing is left.
pub fn text(s: &str) -> Option<String> {
    let s = s.trim();
    (!s.is_empty()).then(|| s.to_owned())
}

/// A FHIR `dateTime` or `instant`: RFC 3339 in UTC to the second, `2026-11-26T09:30:00Z`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Instant(pub DateTime<Utc>);

impl Serialize for Instant {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&self.0.to_rfc3339_opts(SecondsFormat::Secs, true))
    }
}

impl From<DateTime<Utc>> for Instant {
    fn from(at: DateTime<Utc>) -> Self {
        Instant(at)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Meta {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_updated: Option<Instant>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coding {
    pub system: String,
    pub code: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Coding {
    pub fn new(system: impl Into<String>, code: impl Into<String>, display: impl Into<String>) -> Self {
        let display = display.into();
        Coding { system: system.into(), code: code.into(), display: text(&display) }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct CodeableConcept {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coding: Vec<Coding>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl CodeableConcept {
    /// One coding, with its display as the text.
    pub fn coded(coding: Coding) -> Self {
        CodeableConcept { text: coding.display.clone(), coding: vec![coding] }
    }

    /// Text alone, or `None` when it is blank.
    pub fn text(s: &str) -> Option<Self> {
        text(s).map(|t| CodeableConcept { coding: Vec::new(), text: Some(t) })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Reference {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reference: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub identifier: Option<Identifier>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub display: Option<String>,
}

impl Reference {
    /// A relative reference, `Type/id`, with an optional display.
    pub fn to(resource_type: &str, id: impl std::fmt::Display, display: Option<&str>) -> Self {
        Reference {
            reference: Some(format!("{resource_type}/{id}")),
            identifier: None,
            display: display.and_then(text),
        }
    }

    /// A reference that only names something Kith does not serve as a resource.
    pub fn display(name: &str) -> Option<Self> {
        text(name).map(|d| Reference { display: Some(d), ..Reference::default() })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Identifier {
    pub system: String,
    pub value: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Annotation {
    pub text: String,
}

impl Annotation {
    pub fn new(s: &str) -> Option<Self> {
        text(s).map(|text| Annotation { text })
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Period {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub start: Option<Instant>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub end: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactSystem {
    Phone,
    Email,
    Url,
    Sms,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ContactUse {
    Home,
    Work,
    Mobile,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ContactPoint {
    pub system: ContactSystem,
    pub value: String,
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<ContactUse>,
    /// 1 marks the way the person prefers to be contacted.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rank: Option<u32>,
}

impl ContactPoint {
    /// A contact point, or `None` when the value is blank.
    pub fn new(system: ContactSystem, value: &str, use_: Option<ContactUse>) -> Option<Self> {
        text(value).map(|value| ContactPoint { system, value, use_, rank: None })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HumanName {
    pub text: String,
}

/// An address, of which Kith keeps only the postcode.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Address {
    #[serde(rename = "use", skip_serializing_if = "Option::is_none")]
    pub use_: Option<ContactUse>,
    pub postal_code: String,
}
