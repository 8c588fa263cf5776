//! A patient, minimally, after UK Core: who they are and how to reach them. Nothing Kith
//! does not hold (gender, full address) is made up.

use crate::datatypes::{
    Address, CodeableConcept, Coding, ContactPoint, ContactSystem, ContactUse, HumanName, Identifier, LANGUAGE,
    NHS_NUMBER, Reference, text,
};
use crate::resource::ResourceType;
use chrono::NaiveDate;
use kith_domain::referral::{ContactMethod, PatientDetails, PatientRecord};
use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PatientCommunication {
    pub language: CodeableConcept,
    pub preferred: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Patient {
    pub resource_type: ResourceType,
    pub id: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub identifier: Vec<Identifier>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub name: Vec<HumanName>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub telecom: Vec<ContactPoint>,
    /// Absent in what a community group is shown: the consent does not cover it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub birth_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub address: Vec<Address>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub communication: Vec<PatientCommunication>,
    pub managing_organization: Reference,
}

/// The Patient for a record and its opened details; its id is the record's.
///
/// The NHS number is identified by UK Core's system; a local id, when there is no NHS
/// number, by `{base}/Id/local-patient-id`. The way the person prefers to be contacted
/// has `rank` 1 (a text goes to the mobile; a letter to the postcode's address).
pub fn patient(base: &str, record: &PatientRecord, details: &PatientDetails, practice: &str) -> Patient {
    let mut identifier = Vec::new();
    if let Some(nhs) = &details.nhs_number {
        identifier.push(Identifier { system: NHS_NUMBER.to_owned(), value: nhs.as_str().to_owned() });
    }
    if let Some(local) = details.local_id.as_deref().and_then(text) {
        identifier
            .push(Identifier { system: format!("{}/Id/local-patient-id", base.trim_end_matches('/')), value: local });
    }
    let mobile =
        details.mobile.as_deref().and_then(|m| ContactPoint::new(ContactSystem::Phone, m, Some(ContactUse::Mobile)));
    let phone =
        details.phone.as_deref().and_then(|p| ContactPoint::new(ContactSystem::Phone, p, Some(ContactUse::Home)));
    let email =
        details.email.as_deref().and_then(|e| ContactPoint::new(ContactSystem::Email, e, Some(ContactUse::Home)));
    let mut telecom: Vec<ContactPoint> = [mobile, phone, email].into_iter().flatten().collect();
    let preferred = match record.contact_method {
        ContactMethod::Text => telecom.iter_mut().find(|c| c.use_ == Some(ContactUse::Mobile)),
        ContactMethod::Phone => {
            let i = telecom
                .iter()
                .position(|c| c.system == ContactSystem::Phone && c.use_ == Some(ContactUse::Home))
                .or_else(|| telecom.iter().position(|c| c.system == ContactSystem::Phone));
            i.and_then(|i| telecom.get_mut(i))
        }
        ContactMethod::Email => telecom.iter_mut().find(|c| c.system == ContactSystem::Email),
        ContactMethod::Letter => None,
    };
    if let Some(c) = preferred {
        c.rank = Some(1);
    }
    Patient {
        resource_type: ResourceType::Patient,
        id: record.id.to_string(),
        identifier,
        name: text(&details.name).map(|text| HumanName { text }).into_iter().collect(),
        telecom,
        birth_date: details.birth_date,
        address: details
            .postcode
            .as_deref()
            .and_then(text)
            .map(|postal_code| Address { use_: Some(ContactUse::Home), postal_code })
            .into_iter()
            .collect(),
        communication: record.language.as_deref().and_then(language).into_iter().collect(),
        managing_organization: Reference::to("Organization", record.organisation_id, Some(practice)),
    }
}

/// The person's language: coded when it is written as a BCP 47 tag ("pl", "pt-BR"),
/// as text otherwise ("Polish"). A capitalised word is taken as a name, not a tag.
fn language(written: &str) -> Option<PatientCommunication> {
    let written = text(written)?;
    let mut parts = written.split('-');
    let primary = parts.next().unwrap_or_default();
    let tag = (2..=3).contains(&primary.len())
        && primary.bytes().all(|b| b.is_ascii_lowercase())
        && parts.all(|p| (2..=8).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_alphanumeric()));
    let language = if tag {
        CodeableConcept { coding: vec![Coding::new(LANGUAGE, written.clone(), "")], text: Some(written) }
    } else {
        CodeableConcept { coding: Vec::new(), text: Some(written) }
    };
    Some(PatientCommunication { language, preferred: true })
}
