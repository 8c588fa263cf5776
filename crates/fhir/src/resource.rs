//! Any of Kith's resources, for search results.

use crate::{
    CapabilityStatement, Consent, HealthcareService, Observation, OperationOutcome, Patient, ServiceRequest, Task,
};
use serde::Serialize;

/// The `resourceType` of each resource Kith writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum ResourceType {
    Bundle,
    CapabilityStatement,
    Consent,
    HealthcareService,
    Observation,
    OperationOutcome,
    Patient,
    ServiceRequest,
    Task,
}

impl ResourceType {
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Bundle => "Bundle",
            ResourceType::CapabilityStatement => "CapabilityStatement",
            ResourceType::Consent => "Consent",
            ResourceType::HealthcareService => "HealthcareService",
            ResourceType::Observation => "Observation",
            ResourceType::OperationOutcome => "OperationOutcome",
            ResourceType::Patient => "Patient",
            ResourceType::ServiceRequest => "ServiceRequest",
            ResourceType::Task => "Task",
        }
    }
}

impl std::fmt::Display for ResourceType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One resource of any type, as a search result or a [`crate::Bundle`] entry.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(untagged)]
pub enum Resource {
    ServiceRequest(Box<ServiceRequest>),
    Task(Box<Task>),
    HealthcareService(Box<HealthcareService>),
    Patient(Box<Patient>),
    Consent(Box<Consent>),
    Observation(Box<Observation>),
    OperationOutcome(Box<OperationOutcome>),
    CapabilityStatement(Box<CapabilityStatement>),
}

impl Resource {
    pub fn resource_type(&self) -> ResourceType {
        match self {
            Resource::ServiceRequest(r) => r.resource_type,
            Resource::Task(r) => r.resource_type,
            Resource::HealthcareService(r) => r.resource_type,
            Resource::Patient(r) => r.resource_type,
            Resource::Consent(r) => r.resource_type,
            Resource::Observation(r) => r.resource_type,
            Resource::OperationOutcome(r) => r.resource_type,
            Resource::CapabilityStatement(r) => r.resource_type,
        }
    }

    /// The logical id; an OperationOutcome or CapabilityStatement has none.
    pub fn id(&self) -> Option<&str> {
        match self {
            Resource::ServiceRequest(r) => Some(&r.id),
            Resource::Task(r) => Some(&r.id),
            Resource::HealthcareService(r) => Some(&r.id),
            Resource::Patient(r) => Some(&r.id),
            Resource::Consent(r) => Some(&r.id),
            Resource::Observation(r) => Some(&r.id),
            Resource::OperationOutcome(_) | Resource::CapabilityStatement(_) => None,
        }
    }
}

macro_rules! into_resource {
    ($($t:ident),*) => {$(
        impl From<$t> for Resource {
            fn from(r: $t) -> Self {
                Resource::$t(Box::new(r))
            }
        }
    )*};
}

into_resource!(
    ServiceRequest,
    Task,
    HealthcareService,
    Patient,
    Consent,
    Observation,
    OperationOutcome,
    CapabilityStatement
);
