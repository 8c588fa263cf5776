//! A referral's progress as a Task: the group is asked to fulfil the ServiceRequest, and
//! the Task's status is the referral's (Kith's states are FHIR's Task codes). Shaped after
//! the Gravity SDOH Clinical Care "Task for referral management".

use crate::datatypes::{
    CodeableConcept, Coding, Instant, Meta, Period, Reference, SNOMED, TASK_CODE, kith_system, text,
};
use crate::observation::{follow_up_outcome_code, outcome_concept};
use crate::resource::ResourceType;
use crate::service_request::ReferralNames;
use kith_domain::referral::{DeclineReason, FollowUp, ReferralEvent, ReferralRecord, TaskStatus, snomed};
use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskIntent {
    Order,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TaskRestriction {
    pub period: Period,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TaskOutput {
    #[serde(rename = "type")]
    pub type_: CodeableConcept,
    pub value_codeable_concept: CodeableConcept,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Task {
    pub resource_type: ResourceType,
    pub id: String,
    pub meta: Meta,
    pub status: TaskStatus,
    /// Why it was declined, cancelled, put on hold or did not work out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status_reason: Option<CodeableConcept>,
    /// The status as Kith's pages show it.
    pub business_status: CodeableConcept,
    pub intent: TaskIntent,
    pub code: CodeableConcept,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    pub focus: Reference,
    #[serde(rename = "for")]
    pub for_: Reference,
    pub authored_on: Instant,
    pub last_modified: Instant,
    pub requester: Reference,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub owner: Option<Reference>,
    /// When the follow-up is due.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restriction: Option<TaskRestriction>,
    /// The follow-up's outcome, once recorded.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub output: Vec<TaskOutput>,
}

/// The Task for a referral; its id is the referral's, and it is last modified at the
/// latest of `events`. A signpost asks nobody to act, so the FHIR API serves no Task
/// for one, though this maps it all the same.
///
/// A declined referral carries the decline note as `statusReason.text`, coded in Kith's
/// `kith-decline-reason` code system when the note starts with a [`DeclineReason`] label,
/// and SNOMED CT 871711000000103 "Social prescribing declined" when the person declined.
/// The follow-up due date is `restriction.period.end` (from `follow_up`, else the record),
/// and a recorded outcome is an `output`.
pub fn task(
    base: &str,
    record: &ReferralRecord,
    events: &[ReferralEvent],
    follow_up: Option<&FollowUp>,
    names: &ReferralNames<'_>,
) -> Task {
    let last_modified = events.iter().map(|e| e.at).max().unwrap_or(record.created_at).max(record.created_at);
    let due = follow_up.map(|f| f.due_at).or(record.follow_up_due);
    let output = follow_up
        .and_then(|f| f.outcome)
        .map(|outcome| TaskOutput {
            type_: CodeableConcept::coded(follow_up_outcome_code(base)),
            value_codeable_concept: outcome_concept(base, outcome),
        })
        .into_iter()
        .collect();
    Task {
        resource_type: ResourceType::Task,
        id: record.id.to_string(),
        meta: Meta { last_updated: Some(last_modified.into()) },
        status: record.status,
        status_reason: status_reason(base, record.status, events),
        business_status: CodeableConcept { coding: Vec::new(), text: Some(record.status.label().to_owned()) },
        intent: TaskIntent::Order,
        code: CodeableConcept::coded(Coding::new(TASK_CODE, "fulfill", "Fulfill the focal request")),
        description: text(names.service).map(|s| format!("Referral to {s}")),
        focus: Reference::to("ServiceRequest", record.id, None),
        for_: Reference::to("Patient", record.patient_id, Some(names.patient)),
        authored_on: record.created_at.into(),
        last_modified: last_modified.into(),
        requester: Reference::to("Organization", record.referrer_org, Some(names.practice)),
        owner: record.group_id.map(|g| Reference::to("Organization", g, names.group)),
        restriction: due.map(|end| TaskRestriction { period: Period { start: None, end: Some(end.into()) } }),
        output,
    }
}

const DECLINE_REASONS: [(DeclineReason, &str); 6] = [
    (DeclineReason::NoCapacity, "no_capacity"),
    (DeclineReason::NotEligible, "not_eligible"),
    (DeclineReason::OutOfArea, "out_of_area"),
    (DeclineReason::NotRunning, "not_running"),
    (DeclineReason::PersonDeclined, "person_declined"),
    (DeclineReason::Other, "other"),
];

/// The decline reason a note starts with: the web's decline form records the label.
pub fn decline_reason(note: &str) -> Option<DeclineReason> {
    let note = note.trim();
    DECLINE_REASONS.iter().map(|(r, _)| *r).find(|r| note.starts_with(r.label()))
}

/// Kith's code for a decline reason, in `{base}/CodeSystem/kith-decline-reason`.
pub fn decline_code(reason: DeclineReason) -> &'static str {
    DECLINE_REASONS.iter().find(|(r, _)| *r == reason).map_or("other", |(_, code)| code)
}

/// The decline reason for a Kith decline code.
pub(crate) fn decline_from_code(code: &str) -> Option<DeclineReason> {
    DECLINE_REASONS.iter().find(|(_, c)| *c == code).map(|(r, _)| *r)
}

/// The note on the latest move to the current status, for the statuses that need a reason.
fn status_reason(base: &str, status: TaskStatus, events: &[ReferralEvent]) -> Option<CodeableConcept> {
    if !matches!(status, TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::OnHold | TaskStatus::Failed) {
        return None;
    }
    let note = &events.iter().filter(|e| e.status == status).max_by_key(|e| (e.seq, e.at))?.note;
    let mut concept = CodeableConcept::text(note)?;
    if status == TaskStatus::Rejected
        && let Some(reason) = decline_reason(note)
    {
        if reason == DeclineReason::PersonDeclined {
            concept.coding.push(Coding::new(
                SNOMED,
                snomed::SOCIAL_PRESCRIBING_DECLINED,
                snomed::SOCIAL_PRESCRIBING_DECLINED_DISPLAY,
            ));
        }
        concept.coding.push(Coding::new(
            kith_system(base, "kith-decline-reason"),
            decline_code(reason),
            reason.label(),
        ));
    }
    Some(concept)
}
