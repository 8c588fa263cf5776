//! Kith's records as FHIR R4 resources, for the FHIR API (`/fhir`). Pure: every function
//! takes the records and the names to show, and returns a resource to serialise.
//!
//! | Kith | FHIR |
//! |---|---|
//! | a signpost or referral | [`ServiceRequest`] (and, for a referral, its progress as a [`Task`]) |
//! | the consent recorded with a referral | [`Consent`] |
//! | a patient | [`Patient`] |
//! | a directory service | [`HealthcareService`] |
//! | an outcome measure (ONS4), a follow-up outcome | [`Observation`] |
//! | search results, errors, `/fhir/metadata` | [`Bundle`], [`OperationOutcome`], [`CapabilityStatement`] |
//!
//! The shapes follow the HL7 Gravity SDOH Clinical Care IG (ServiceRequest and Task for
//! referral management) and UK Core (the NHS number). Codes that no public terminology
//! has are in Kith's own code systems, `{base}/CodeSystem/{name}`, where `base` is the
//! FHIR API's base URL, such as `https://kith.example/fhir`. A signpost, a referral, its
//! Task and its Consent all share the referral's id.
//!
//! [`requested_status`] reads a client's Task update. The `schema` feature adds
//! [`schema::FhirSchema`], which tests use to check output against the official schema.
#![deny(clippy::unwrap_used, clippy::expect_used)]

mod bundle;
mod capability;
mod consent;
pub mod datatypes;
mod healthcare_service;
mod observation;
mod operation_outcome;
mod patient;
mod resource;
#[cfg(feature = "schema")]
pub mod schema;
mod service_request;
mod task;
mod task_update;

pub use bundle::{Bundle, BundleEntry, BundleLink, BundleSearch, BundleType, SearchMode, bundle_searchset};
pub use capability::{CapabilityStatement, capability_statement};
pub use consent::{Consent, ConsentActor, ConsentStatus, Provision, ProvisionType, consent};
pub use healthcare_service::{AvailableTime, Eligibility, HealthcareService, healthcare_service};
pub use observation::{
    Observation, ObservationComponent, ObservationStatus, measure_observation, outcome_observation,
    outcome_observation_id,
};
pub use operation_outcome::{Issue, IssueSeverity, IssueType, OperationOutcome, operation_outcome};
pub use patient::{Patient, PatientCommunication, patient};
pub use resource::{Resource, ResourceType};
pub use service_request::{ReferralNames, RequestIntent, RequestStatus, ServiceRequest, service_request};
pub use task::{Task, TaskIntent, TaskOutput, TaskRestriction, decline_code, decline_reason, task};
pub use task_update::{TaskUpdateError, requested_status};
