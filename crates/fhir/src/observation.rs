//! Outcome measures (ONS4 and licensed scales) and follow-up outcomes as Observations.

use crate::datatypes::{CodeableConcept, Coding, Instant, OBSERVATION_CATEGORY, Reference, kith_system};
use crate::resource::ResourceType;
use kith_domain::referral::{FollowUp, Instrument, MeasureRecord, Outcome, Stage};
use serde::Serialize;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum ObservationStatus {
    Final,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ObservationComponent {
    pub code: CodeableConcept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_integer: Option<i64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Observation {
    pub resource_type: ResourceType,
    pub id: String,
    pub based_on: Vec<Reference>,
    pub status: ObservationStatus,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub effective_date_time: Instant,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value_codeable_concept: Option<CodeableConcept>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub component: Vec<ObservationComponent>,
}

/// A completed measure; its id is the measure's.
///
/// The whole instrument is the code, `{base}/CodeSystem/{instrument id}` code
/// `{instrument id}`, and each answer a component coded `q1`, `q2`, … in the same code
/// system, with the question as its text. The category says `survey` and, in Kith's
/// `kith-measure-stage` code system, whether it is the baseline or the follow-up.
pub fn measure_observation(base: &str, measure: &MeasureRecord, instrument: &dyn Instrument) -> Observation {
    let system = kith_system(base, instrument.id());
    let stage = match measure.stage {
        Stage::Baseline => "Baseline",
        Stage::FollowUp => "Follow-up",
    };
    Observation {
        resource_type: ResourceType::Observation,
        id: measure.id.to_string(),
        based_on: vec![Reference::to("ServiceRequest", measure.referral_id, None)],
        status: ObservationStatus::Final,
        category: vec![
            CodeableConcept::coded(Coding::new(OBSERVATION_CATEGORY, "survey", "Survey")),
            CodeableConcept::coded(Coding::new(kith_system(base, "kith-measure-stage"), measure.stage.as_str(), stage)),
        ],
        code: CodeableConcept::coded(Coding::new(system.clone(), instrument.id(), instrument.name())),
        subject: Reference::to("Patient", measure.patient_id, None),
        effective_date_time: measure.taken_at.into(),
        value_codeable_concept: None,
        component: instrument
            .questions()
            .iter()
            .zip(&measure.answers)
            .enumerate()
            .map(|(i, (question, answer))| ObservationComponent {
                code: CodeableConcept::coded(Coding::new(system.clone(), format!("q{}", i + 1), question.text)),
                value_integer: Some(i64::from(*answer)),
                value_codeable_concept: None,
            })
            .collect(),
    }
}

/// The id of a referral's follow-up outcome Observation: there is one per referral.
pub fn outcome_observation_id(referral_id: Uuid) -> String {
    format!("outcome-{referral_id}")
}

/// The follow-up's outcome, or `None` while there is none. Its id is
/// [`outcome_observation_id`]; the value is coded in Kith's `kith-outcome` code system,
/// and why someone stopped or never went is a component coded in `kith-end-reason`.
pub fn outcome_observation(base: &str, follow_up: &FollowUp, patient_id: Uuid) -> Option<Observation> {
    let outcome = follow_up.outcome?;
    let component = outcome
        .reason()
        .map(|reason| ObservationComponent {
            code: CodeableConcept::coded(Coding::new(
                kith_system(base, "kith-observation"),
                "end-reason",
                "Why they stopped or never went",
            )),
            value_integer: None,
            value_codeable_concept: Some(CodeableConcept::coded(Coding::new(
                kith_system(base, "kith-end-reason"),
                reason.code(),
                reason.label(),
            ))),
        })
        .into_iter()
        .collect();
    Some(Observation {
        resource_type: ResourceType::Observation,
        id: outcome_observation_id(follow_up.referral_id),
        based_on: vec![Reference::to("ServiceRequest", follow_up.referral_id, None)],
        status: ObservationStatus::Final,
        category: Vec::new(),
        code: CodeableConcept::coded(follow_up_outcome_code(base)),
        subject: Reference::to("Patient", patient_id, None),
        effective_date_time: follow_up.outcome_at.unwrap_or(follow_up.due_at).into(),
        value_codeable_concept: Some(outcome_concept(base, outcome)),
        component,
    })
}

/// "Social prescribing follow-up outcome", in Kith's `kith-observation` code system.
pub(crate) fn follow_up_outcome_code(base: &str) -> Coding {
    Coding::new(kith_system(base, "kith-observation"), "follow-up-outcome", "Social prescribing follow-up outcome")
}

/// An outcome coded in `kith-outcome`, with the timeline's wording as its text.
pub(crate) fn outcome_concept(base: &str, outcome: Outcome) -> CodeableConcept {
    CodeableConcept {
        coding: vec![Coding::new(kith_system(base, "kith-outcome"), outcome.code(), outcome.label())],
        text: Some(outcome.describe()),
    }
}
