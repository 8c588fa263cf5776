//! The person's consent to share their details with the group, as a FHIR Consent.

use crate::datatypes::{
    CONSENT_ACTION, CONSENT_SCOPE, CodeableConcept, Coding, Instant, LOINC, Period, Reference, V3_ACT_CODE,
    V3_ACT_REASON, V3_PARTICIPATION_TYPE, text,
};
use crate::resource::ResourceType;
use crate::service_request::ReferralNames;
use kith_domain::referral::{Consent as ConsentRecord, ReferralRecord};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ConsentStatus {
    Active,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ProvisionType {
    Permit,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ConsentActor {
    pub role: CodeableConcept,
    pub reference: Reference,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Provision {
    #[serde(rename = "type")]
    pub type_: ProvisionType,
    pub period: Period,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub actor: Vec<ConsentActor>,
    pub action: Vec<CodeableConcept>,
    pub purpose: Vec<Coding>,
    /// What may be shared, in the words recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub code: Vec<CodeableConcept>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Consent {
    pub resource_type: ResourceType,
    pub id: String,
    pub status: ConsentStatus,
    pub scope: CodeableConcept,
    pub category: Vec<CodeableConcept>,
    pub patient: Reference,
    pub date_time: Instant,
    pub performer: Vec<Reference>,
    pub organization: Vec<Reference>,
    pub policy_rule: CodeableConcept,
    pub provision: Provision,
}

/// The Consent recorded with a referral; its id is the referral's.
///
/// The person (the performer) permits their practice to disclose to the group (actor,
/// role IRCP "information recipient") for coordination of care. What they agreed to
/// share is free text, so it is `provision.code[].text`: the data the permission covers.
/// The group is referenced when the referral names one; otherwise the recipient is
/// named as recorded.
pub fn consent(record: &ReferralRecord, given: &ConsentRecord, names: &ReferralNames<'_>) -> Consent {
    let recipient = match record.group_id {
        Some(group) => Some(Reference::to("Organization", group, names.group.or(Some(&given.with_whom)))),
        None => Reference::display(&given.with_whom),
    };
    Consent {
        resource_type: ResourceType::Consent,
        id: record.id.to_string(),
        status: ConsentStatus::Active,
        scope: CodeableConcept::coded(Coding::new(CONSENT_SCOPE, "patient-privacy", "Privacy Consent")),
        category: vec![CodeableConcept::coded(Coding::new(LOINC, "59284-0", "Patient Consent"))],
        patient: Reference::to("Patient", record.patient_id, Some(names.patient)),
        date_time: given.given_at.into(),
        performer: vec![Reference::to("Patient", record.patient_id, Some(names.patient))],
        organization: vec![Reference::to("Organization", record.referrer_org, Some(names.practice))],
        policy_rule: CodeableConcept::coded(Coding::new(V3_ACT_CODE, "OPTIN", "opt-in")),
        provision: Provision {
            type_: ProvisionType::Permit,
            period: Period { start: Some(given.given_at.into()), end: None },
            actor: recipient
                .map(|reference| ConsentActor {
                    role: CodeableConcept::coded(Coding::new(V3_PARTICIPATION_TYPE, "IRCP", "information recipient")),
                    reference,
                })
                .into_iter()
                .collect(),
            action: vec![CodeableConcept::coded(Coding::new(CONSENT_ACTION, "disclose", "Disclose"))],
            purpose: vec![Coding::new(V3_ACT_REASON, "COC", "coordination of care")],
            code: text(&given.what)
                .map(|what| CodeableConcept { coding: Vec::new(), text: Some(what) })
                .into_iter()
                .collect(),
        },
    }
}
