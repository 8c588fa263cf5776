//! A directory listing (an HSDS service) as a HealthcareService.

use crate::datatypes::{
    CodeableConcept, Coding, ContactPoint, ContactSystem, ContactUse, Identifier, LANGUAGE, Reference, text,
};
use crate::resource::ResourceType;
use kith_domain::ServiceStatus;
use kith_domain::hsds::{Frequency, Schedule, Service};
use kith_domain::serde_util::TimeOfDay;
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Eligibility {
    pub comment: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AvailableTime {
    pub days_of_week: Vec<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_start_time: Option<TimeOfDay>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub available_end_time: Option<TimeOfDay>,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HealthcareService {
    pub resource_type: ResourceType,
    pub id: String,
    pub active: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provided_by: Option<Reference>,
    pub category: Vec<CodeableConcept>,
    /// The needs the service meets, from its taxonomy terms.
    #[serde(rename = "type", skip_serializing_if = "Vec::is_empty")]
    pub type_: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub location: Vec<Reference>,
    pub name: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub extra_details: Option<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub coverage_area: Vec<Reference>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub eligibility: Vec<Eligibility>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub program: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communication: Vec<CodeableConcept>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub available_time: Vec<AvailableTime>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub availability_exceptions: Option<String>,
}

/// The HealthcareService for a directory service; its id is the service's.
///
/// Only an `active` service is active; a temporarily closed one says so in
/// `availabilityExceptions`. The provider is identified by its HSDS organization id
/// (`{base}/Id/hsds-organization`), since Kith serves no Organization resource for it.
/// Locations and service areas are named, not referenced, for the same reason. Weekly
/// opening times become `availableTime`; other schedules are left to the listing.
pub fn healthcare_service(base: &str, service: &Service, org_name: Option<&str>) -> HealthcareService {
    let org_name = org_name.or(service.organization.as_ref().map(|o| o.name.as_str()));
    let provided_by = match service.organization_id.or(service.organization.as_ref().map(|o| o.id)) {
        Some(org) => Some(Reference {
            identifier: Some(Identifier {
                system: format!("{}/Id/hsds-organization", base.trim_end_matches('/')),
                value: org.to_string(),
            }),
            display: org_name.and_then(text),
            ..Reference::default()
        }),
        None => org_name.and_then(Reference::display),
    };
    let mut telecom: Vec<ContactPoint> = service
        .phones
        .iter()
        .filter_map(|p| ContactPoint::new(ContactSystem::Phone, &p.number, Some(ContactUse::Work)))
        .collect();
    telecom.extend(
        service.email.as_deref().and_then(|e| ContactPoint::new(ContactSystem::Email, e, Some(ContactUse::Work))),
    );
    telecom
        .extend(service.url.as_deref().and_then(|u| ContactPoint::new(ContactSystem::Url, u, Some(ContactUse::Work))));
    let mut types: Vec<CodeableConcept> = Vec::new();
    for term in service.attributes.iter().filter_map(|a| a.taxonomy_term.as_ref()) {
        let Some(name) = text(&term.name) else { continue };
        if types.iter().any(|t| t.text.as_deref() == Some(name.as_str())) {
            continue;
        }
        let system = term.taxonomy_detail.as_ref().and_then(|t| t.uri.as_deref()).and_then(text);
        let coding = match (system, term.code.as_deref().and_then(text)) {
            (Some(system), Some(code)) if !code.contains(char::is_whitespace) => {
                vec![Coding::new(system, code, name.clone())]
            }
            _ => Vec::new(),
        };
        types.push(CodeableConcept { coding, text: Some(name) });
    }
    let location = service
        .service_at_locations
        .iter()
        .filter_map(|sal| sal.location.as_ref())
        .filter_map(|l| {
            let name = [l.name.as_deref(), l.postcode()].into_iter().flatten().collect::<Vec<_>>().join(", ");
            Reference::display(&name)
        })
        .collect();
    let extra_details = [
        ("How to get a place", service.application_process.as_deref()),
        ("Cost", service.fees_description.as_deref()),
        ("Waiting time", service.wait_time.as_deref()),
    ]
    .into_iter()
    .filter_map(|(label, value)| value.and_then(text).map(|v| format!("**{label}:** {v}")))
    .collect::<Vec<_>>()
    .join("\n\n");
    HealthcareService {
        resource_type: ResourceType::HealthcareService,
        id: service.id.to_string(),
        active: service.status == ServiceStatus::Active,
        provided_by,
        category: CodeableConcept::text("Community service").into_iter().collect(),
        type_: types,
        location,
        name: text(&service.name).unwrap_or_else(|| "Unnamed service".to_owned()),
        comment: service.description.as_deref().and_then(text),
        extra_details: text(&extra_details),
        telecom,
        coverage_area: service
            .service_areas
            .iter()
            .filter_map(|a| a.name.as_deref().and_then(Reference::display))
            .collect(),
        eligibility: service
            .eligibility_description
            .as_deref()
            .and_then(text)
            .map(|comment| Eligibility { comment })
            .into_iter()
            .collect(),
        program: service.program.as_ref().and_then(|p| CodeableConcept::text(&p.name)).into_iter().collect(),
        communication: service
            .languages
            .iter()
            .filter_map(|l| {
                let name = l.name.as_deref().and_then(text);
                let code = l.code.as_deref().and_then(text).filter(|c| !c.contains(char::is_whitespace));
                let coding =
                    code.iter().map(|c| Coding::new(LANGUAGE, c.clone(), name.clone().unwrap_or_default())).collect();
                let text = name.or(code);
                text.is_some().then_some(CodeableConcept { coding, text })
            })
            .collect(),
        available_time: service.schedules.iter().filter_map(weekly).collect(),
        availability_exceptions: (service.status == ServiceStatus::TemporarilyClosed)
            .then(|| "Temporarily closed".to_owned()),
    }
}

/// A weekly schedule's days and hours; `None` for any other kind of schedule.
fn weekly(schedule: &Schedule) -> Option<AvailableTime> {
    if schedule.freq != Some(Frequency::Weekly) || schedule.interval.is_some_and(|i| i != 1.0) {
        return None;
    }
    let mut days = Vec::new();
    for day in schedule.byday.as_deref()?.split(',') {
        let day = match day.trim() {
            "MO" => "mon",
            "TU" => "tue",
            "WE" => "wed",
            "TH" => "thu",
            "FR" => "fri",
            "SA" => "sat",
            "SU" => "sun",
            _ => return None,
        };
        if !days.contains(&day) {
            days.push(day);
        }
    }
    (!days.is_empty()).then_some(AvailableTime {
        days_of_week: days,
        available_start_time: schedule.opens_at,
        available_end_time: schedule.closes_at,
    })
}
