//! A signpost or referral as a ServiceRequest: what was asked for, for whom, by whom and
//! why. Its progress is the [`crate::Task`]'s; the request's own status only says whether
//! it still stands. Shaped after the Gravity SDOH Clinical Care referral ServiceRequest.

use crate::datatypes::{Annotation, CodeableConcept, Coding, Instant, Reference, SNOMED, kith_system};
use crate::resource::ResourceType;
use kith_domain::referral::{ReferralDetails, ReferralKind, ReferralRecord, TaskStatus, snomed};
use serde::Serialize;

/// SNOMED CT "Social service procedure", the category of every Kith request.
pub const SOCIAL_SERVICE_PROCEDURE: &str = "410606002";

/// The names shown beside a referral's references. The ids come from the record.
#[derive(Debug, Clone, Copy)]
pub struct ReferralNames<'a> {
    pub patient: &'a str,
    /// The referrer's organisation: the GP practice.
    pub practice: &'a str,
    /// The community group the referral went to, if known.
    pub group: Option<&'a str>,
    pub service: &'a str,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestStatus {
    Active,
    OnHold,
    Revoked,
    Completed,
}

impl RequestStatus {
    /// Open referrals are active; one that ended without being fulfilled (declined,
    /// cancelled, or did not work out) is revoked; the Task says which.
    pub fn of(status: TaskStatus) -> Self {
        match status {
            TaskStatus::Requested | TaskStatus::Received | TaskStatus::Accepted | TaskStatus::InProgress => {
                RequestStatus::Active
            }
            TaskStatus::OnHold => RequestStatus::OnHold,
            TaskStatus::Completed => RequestStatus::Completed,
            TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::Failed => RequestStatus::Revoked,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum RequestIntent {
    /// A referral: the group is asked to act.
    Order,
    /// A signpost: information given, which nobody is asked to act on.
    Proposal,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceRequest {
    pub resource_type: ResourceType,
    pub id: String,
    pub status: RequestStatus,
    pub intent: RequestIntent,
    pub category: Vec<CodeableConcept>,
    pub code: CodeableConcept,
    pub subject: Reference,
    pub authored_on: Instant,
    pub requester: Reference,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub performer: Vec<Reference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub reason_code: Vec<CodeableConcept>,
    /// The Consent to share, for a referral.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub supporting_info: Vec<Reference>,
    /// "What matters to you", in the person's words.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub note: Vec<Annotation>,
}

/// The ServiceRequest for a signpost or referral; its id is the referral's.
///
/// A referral is an `order` coded SNOMED CT 871731000000106, performed by the group
/// and the service, with its Consent as supporting information. A signpost is a
/// `proposal` (information given; nobody is asked to act), coded in Kith's
/// `kith-referral-kind` code system because SNOMED CT has no signposting concept
/// Kith can rely on, and names only the service: nothing was shared with the group.
/// The safeguarding note is never included.
pub fn service_request(
    base: &str,
    record: &ReferralRecord,
    details: &ReferralDetails,
    names: &ReferralNames<'_>,
) -> ServiceRequest {
    let referral = record.kind == ReferralKind::Referral;
    let code = if referral {
        CodeableConcept::coded(Coding::new(
            SNOMED,
            snomed::REFERRAL_TO_SOCIAL_PRESCRIBING,
            snomed::REFERRAL_TO_SOCIAL_PRESCRIBING_DISPLAY,
        ))
    } else {
        CodeableConcept::coded(Coding::new(
            kith_system(base, "kith-referral-kind"),
            ReferralKind::Signpost.as_str(),
            "Signpost: information given about a service",
        ))
    };
    let mut performer = Vec::new();
    if referral && let Some(group) = record.group_id {
        performer.push(Reference::to("Organization", group, names.group));
    }
    performer.push(Reference::to("HealthcareService", record.service_id, Some(names.service)));
    let consent = details.consent.is_some() && referral;
    ServiceRequest {
        resource_type: ResourceType::ServiceRequest,
        id: record.id.to_string(),
        status: RequestStatus::of(record.status),
        intent: if referral { RequestIntent::Order } else { RequestIntent::Proposal },
        category: vec![CodeableConcept::coded(Coding::new(
            SNOMED,
            SOCIAL_SERVICE_PROCEDURE,
            "Social service procedure",
        ))],
        code,
        subject: Reference::to("Patient", record.patient_id, Some(names.patient)),
        authored_on: record.created_at.into(),
        requester: Reference::to("Organization", record.referrer_org, Some(names.practice)),
        performer,
        reason_code: CodeableConcept::text(&details.reason).into_iter().collect(),
        supporting_info: consent.then(|| Reference::to("Consent", record.id, None)).into_iter().collect(),
        note: Annotation::new(&details.what_matters).into_iter().collect(),
    }
}
