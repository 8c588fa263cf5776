//! Every resource Kith writes, built from synthetic records and checked against the
//! official FHIR R4 JSON schema (from e2e's npm packages; see `kith_fhir::schema`), plus
//! the codes a GP system or a group's system relies on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use kith_domain::ServiceStatus;
use kith_domain::account::Sealed;
use kith_domain::hsds::Service;
use kith_domain::referral::{
    Consent as ConsentRecord, ContactMethod, DeclineReason, EndReason, FollowUp, MeasureRecord, NhsNumber, Ons4,
    Outcome, PatientDetails, PatientRecord, ReferralDetails, ReferralEvent, ReferralKind, ReferralRecord, Stage,
    TaskStatus,
};
use kith_fhir::schema::FhirSchema;
use kith_fhir::{
    IssueSeverity, IssueType, ReferralNames, Resource, TaskUpdateError, bundle_searchset, capability_statement,
    consent, healthcare_service, measure_observation, operation_outcome, outcome_observation, patient,
    requested_status, service_request, task,
};
use serde_json::{Value, json};
use std::sync::LazyLock;
use uuid::Uuid;

const BASE: &str = "https://kith.example/fhir";
const NHS_NUMBERS: [&str; 3] = ["9990000018", "9990000026", "9990000034"];

static SCHEMA: LazyLock<Option<FhirSchema>> = LazyLock::new(|| FhirSchema::load().unwrap_or_else(|e| panic!("{e}")));

/// Serialises a resource, checks it against the FHIR R4 schema (when installed) and that
/// it has no empty value, which FHIR forbids but the schema does not always catch.
fn valid(resource: impl serde::Serialize, label: &str) -> Value {
    let json = serde_json::to_value(resource).unwrap();
    if let Some(schema) = SCHEMA.as_ref()
        && let Err(errors) = schema.validate(&json)
    {
        panic!("{label} is not valid FHIR R4:\n  {}\n{json:#}", errors.join("\n  "));
    }
    assert_no_empty_values(&json, label, "");
    json
}

fn assert_no_empty_values(value: &Value, label: &str, at: &str) {
    match value {
        Value::String(s) => assert!(!s.trim().is_empty(), "{label}: {at} is blank"),
        Value::Array(items) => {
            assert!(!items.is_empty(), "{label}: {at} is an empty array");
            for (i, item) in items.iter().enumerate() {
                assert_no_empty_values(item, label, &format!("{at}/{i}"));
            }
        }
        Value::Object(fields) => {
            assert!(!fields.is_empty(), "{label}: {at} is an empty object");
            for (name, field) in fields {
                assert_no_empty_values(field, label, &format!("{at}/{name}"));
            }
        }
        _ => {}
    }
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x5e55_0000_0000_4000_8000_0000_0000_0000 + n)
}

fn at(day: u32, hour: u32) -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, day, hour, 30, 0).unwrap()
}

const REFERRAL: u128 = 1;
const PATIENT: u128 = 2;
const SERVICE: u128 = 3;
const GROUP: u128 = 4;
const PRACTICE: u128 = 6;

const NAMES: ReferralNames<'static> = ReferralNames {
    patient: "Alex Synthetic",
    practice: "Riverside Surgery",
    group: Some("Walk and Talk Group"),
    service: "Walk and Talk",
};

fn record(kind: ReferralKind, status: TaskStatus) -> ReferralRecord {
    ReferralRecord {
        id: id(REFERRAL),
        kind,
        patient_id: id(PATIENT),
        service_id: id(SERVICE),
        group_id: Some(id(GROUP)),
        referrer_user: id(5),
        referrer_org: id(PRACTICE),
        status,
        details: Sealed("sealed".into()),
        safeguarding: false,
        created_at: at(2, 9),
        follow_up_due: (kind == ReferralKind::Referral).then(|| at(30, 9)),
    }
}

fn given_consent() -> ConsentRecord {
    ConsentRecord {
        what: "Name, contact details and the reason for referral".into(),
        with_whom: "Walk and Talk Group".into(),
        given_at: at(2, 9),
        recorded_by: id(5),
    }
}

fn details(kind: ReferralKind) -> ReferralDetails {
    ReferralDetails {
        reason: "Lonely since moving to the area".into(),
        what_matters: "Getting out of the house and meeting people".into(),
        consent: (kind == ReferralKind::Referral).then(given_consent),
        safeguarding_note: Some("Not for FHIR".into()),
    }
}

fn events(status: TaskStatus, note: &str) -> Vec<ReferralEvent> {
    let first = ReferralEvent {
        seq: 1,
        referral_id: id(REFERRAL),
        at: at(2, 9),
        actor: Some(id(5)),
        status: TaskStatus::Requested,
        note: "Referral sent".into(),
    };
    let mut events = vec![first.clone()];
    if status != TaskStatus::Requested {
        events.push(ReferralEvent { seq: 2, at: at(3, 10), status, note: note.into(), ..first });
    }
    events
}

fn follow_up(outcome: Option<Outcome>) -> FollowUp {
    FollowUp {
        referral_id: id(REFERRAL),
        due_at: at(30, 9),
        assignee: id(5),
        reminded_at: None,
        escalated_at: None,
        outcome,
        outcome_at: outcome.map(|_| at(30, 14)),
        outcome_by: outcome.map(|_| id(5)),
        attendance: None,
        attendance_at: None,
    }
}

fn codes(concept: &Value) -> Vec<(String, String)> {
    concept["coding"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| (c["system"].as_str().unwrap().to_owned(), c["code"].as_str().unwrap().to_owned()))
        .collect()
}

fn snomed(code: &str) -> (String, String) {
    ("http://snomed.info/sct".to_owned(), code.to_owned())
}

#[test]
fn service_requests_for_every_status_and_kind_are_valid() {
    for kind in [ReferralKind::Referral, ReferralKind::Signpost] {
        for status in TaskStatus::ALL {
            let label = format!("ServiceRequest for a {} that is {status}", kind.as_str());
            let sr = valid(service_request(BASE, &record(kind, status), &details(kind), &NAMES), &label);
            let expected = match status {
                TaskStatus::OnHold => "on-hold",
                TaskStatus::Completed => "completed",
                TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::Failed => "revoked",
                _ => "active",
            };
            assert_eq!(sr["status"], expected, "{label}");
            assert_eq!(sr["id"], id(REFERRAL).to_string());
            assert_eq!(
                sr["subject"],
                json!({"reference": format!("Patient/{}", id(PATIENT)), "display": "Alex Synthetic"})
            );
            assert_eq!(sr["requester"]["reference"], format!("Organization/{}", id(PRACTICE)));
            assert_eq!(sr["authoredOn"], "2026-11-02T09:30:00Z");
            assert_eq!(sr["reasonCode"][0]["text"], "Lonely since moving to the area");
            assert_eq!(sr["note"][0]["text"], "Getting out of the house and meeting people");
            assert_eq!(codes(&sr["category"][0]), vec![snomed("410606002")]);
            assert!(!sr.to_string().contains("Not for FHIR"), "the safeguarding note stays out");
            let performers: Vec<&str> =
                sr["performer"].as_array().unwrap().iter().map(|p| p["reference"].as_str().unwrap()).collect();
            let service = format!("HealthcareService/{}", id(SERVICE));
            let group = format!("Organization/{}", id(GROUP));
            match kind {
                ReferralKind::Referral => {
                    assert_eq!(sr["intent"], "order");
                    assert_eq!(codes(&sr["code"]), vec![snomed("871731000000106")]);
                    assert_eq!(performers, [group.as_str(), service.as_str()]);
                    assert_eq!(sr["supportingInfo"], json!([{"reference": format!("Consent/{}", id(REFERRAL))}]));
                }
                ReferralKind::Signpost => {
                    assert_eq!(sr["intent"], "proposal");
                    assert_eq!(
                        codes(&sr["code"]),
                        vec![(format!("{BASE}/CodeSystem/kith-referral-kind"), "signpost".to_owned())]
                    );
                    assert_eq!(performers, [service.as_str()], "a signpost shares nothing with the group");
                    assert!(sr.get("supportingInfo").is_none());
                }
            }
        }
    }
    // Blank free text is left out rather than written empty.
    let blank = ReferralDetails { reason: " ".into(), what_matters: String::new(), ..details(ReferralKind::Signpost) };
    let sr = valid(
        service_request(BASE, &record(ReferralKind::Signpost, TaskStatus::Completed), &blank, &NAMES),
        "a signpost with no reason",
    );
    assert!(sr.get("reasonCode").is_none() && sr.get("note").is_none());
}

#[test]
fn tasks_for_every_status_are_valid_and_point_at_the_request() {
    for status in TaskStatus::ALL {
        let label = format!("Task that is {status}");
        let events = events(status, "A note from the group");
        let t =
            valid(task(BASE, &record(ReferralKind::Referral, status), &events, Some(&follow_up(None)), &NAMES), &label);
        assert_eq!(t["resourceType"], "Task");
        assert_eq!(t["id"], id(REFERRAL).to_string());
        assert_eq!(t["status"], status.code(), "{label}");
        assert_eq!(t["intent"], "order");
        assert_eq!(t["businessStatus"]["text"], status.label());
        assert_eq!(codes(&t["code"]), [("http://hl7.org/fhir/CodeSystem/task-code".to_owned(), "fulfill".to_owned())]);
        assert_eq!(t["focus"], json!({"reference": format!("ServiceRequest/{}", id(REFERRAL))}));
        assert_eq!(t["for"]["reference"], format!("Patient/{}", id(PATIENT)));
        assert_eq!(
            t["owner"],
            json!({"reference": format!("Organization/{}", id(GROUP)), "display": "Walk and Talk Group"})
        );
        assert_eq!(t["requester"]["reference"], format!("Organization/{}", id(PRACTICE)));
        assert_eq!(t["authoredOn"], "2026-11-02T09:30:00Z");
        let last = if status == TaskStatus::Requested { "2026-11-02T09:30:00Z" } else { "2026-11-03T10:30:00Z" };
        assert_eq!((&t["lastModified"], &t["meta"]["lastUpdated"]), (&json!(last), &json!(last)));
        assert_eq!(t["restriction"]["period"]["end"], "2026-11-30T09:30:00Z", "the follow-up is due");
        assert!(t.get("output").is_none(), "no outcome yet");
        let reason_expected =
            matches!(status, TaskStatus::Rejected | TaskStatus::Cancelled | TaskStatus::OnHold | TaskStatus::Failed);
        assert_eq!(t.get("statusReason").is_some(), reason_expected, "{label}");
    }
}

#[test]
fn a_person_declining_is_coded_in_snomed_and_other_declines_in_kith_codes() {
    let rejected = record(ReferralKind::Referral, TaskStatus::Rejected);
    let declined = DeclineReason::PersonDeclined.label();
    let t = valid(task(BASE, &rejected, &events(TaskStatus::Rejected, declined), None, &NAMES), "person declined");
    assert_eq!(t["statusReason"]["text"], declined);
    assert_eq!(
        codes(&t["statusReason"]),
        [snomed("871711000000103"), (format!("{BASE}/CodeSystem/kith-decline-reason"), "person_declined".to_owned())]
    );
    assert_eq!(t["statusReason"]["coding"][0]["display"], "Social prescribing declined");
    // The follow-up date comes from the record when no follow-up is given.
    assert_eq!(t["restriction"]["period"]["end"], "2026-11-30T09:30:00Z");

    let full = DeclineReason::NoCapacity.label();
    let t = valid(task(BASE, &rejected, &events(TaskStatus::Rejected, full), None, &NAMES), "no capacity");
    assert_eq!(
        codes(&t["statusReason"]),
        [(format!("{BASE}/CodeSystem/kith-decline-reason"), "no_capacity".to_owned())]
    );

    let t = valid(
        task(BASE, &rejected, &events(TaskStatus::Rejected, "We only meet in Welsh"), None, &NAMES),
        "free-text decline",
    );
    assert_eq!(t["statusReason"], json!({"text": "We only meet in Welsh"}));

    // A Task Kith wrote reads back as the same request.
    assert_eq!(requested_status(&t), Ok((TaskStatus::Rejected, Some("We only meet in Welsh".to_owned()))));
    let coded_only = json!({"resourceType": "Task", "status": "rejected", "statusReason": {"coding": [
        {"system": "http://snomed.info/sct", "code": "871711000000103"}]}});
    assert_eq!(requested_status(&coded_only), Ok((TaskStatus::Rejected, Some(declined.to_owned()))));

    // A cancellation without a note has no reason to give.
    let cancelled = record(ReferralKind::Referral, TaskStatus::Cancelled);
    let t = valid(task(BASE, &cancelled, &events(TaskStatus::Cancelled, "  "), None, &NAMES), "cancelled, no note");
    assert!(t.get("statusReason").is_none());
}

#[test]
fn outcomes_are_task_outputs_and_observations() {
    let outcomes = [
        Outcome::Started,
        Outcome::StillAttending,
        Outcome::Stopped(EndReason::Cost),
        Outcome::NeverAttended(EndReason::Transport),
        Outcome::CouldNotContact,
    ];
    for outcome in outcomes {
        let label = format!("outcome {}", outcome.code());
        let status = outcome.status().unwrap_or(TaskStatus::Accepted);
        let fu = follow_up(Some(outcome));
        let t = valid(
            task(
                BASE,
                &record(ReferralKind::Referral, status),
                &events(status, &outcome.describe()),
                Some(&fu),
                &NAMES,
            ),
            &format!("Task with {label}"),
        );
        let output = &t["output"][0];
        assert_eq!(
            codes(&output["type"]),
            [(format!("{BASE}/CodeSystem/kith-observation"), "follow-up-outcome".into())]
        );
        assert_eq!(
            codes(&output["valueCodeableConcept"]),
            [(format!("{BASE}/CodeSystem/kith-outcome"), outcome.code().into())]
        );
        assert_eq!(output["valueCodeableConcept"]["text"], outcome.describe());

        let obs = valid(outcome_observation(BASE, &fu, id(PATIENT)).unwrap(), &format!("Observation of {label}"));
        assert_eq!(obs["id"], format!("outcome-{}", id(REFERRAL)));
        assert_eq!(obs["status"], "final");
        assert_eq!(obs["code"]["coding"][0]["display"], "Social prescribing follow-up outcome");
        assert_eq!(obs["basedOn"][0]["reference"], format!("ServiceRequest/{}", id(REFERRAL)));
        assert_eq!(obs["subject"]["reference"], format!("Patient/{}", id(PATIENT)));
        assert_eq!(obs["effectiveDateTime"], "2026-11-30T14:30:00Z");
        assert_eq!(obs["valueCodeableConcept"]["coding"][0]["code"], outcome.code());
        match outcome.reason() {
            Some(reason) => {
                let component = &obs["component"][0];
                assert_eq!(component["code"]["coding"][0]["code"], "end-reason");
                assert_eq!(
                    codes(&component["valueCodeableConcept"]),
                    [(format!("{BASE}/CodeSystem/kith-end-reason"), reason.code().into())]
                );
            }
            None => assert!(obs.get("component").is_none(), "{label}"),
        }
    }
    assert!(outcome_observation(BASE, &follow_up(None), id(PATIENT)).is_none(), "no outcome, no Observation");
}

#[test]
fn consent_permits_sharing_with_the_group() {
    let referral = record(ReferralKind::Referral, TaskStatus::Requested);
    let c = valid(consent(&referral, &given_consent(), &NAMES), "Consent");
    assert_eq!(c["id"], id(REFERRAL).to_string(), "the ServiceRequest's supportingInfo points here");
    assert_eq!(c["status"], "active");
    assert_eq!(
        codes(&c["scope"]),
        [("http://terminology.hl7.org/CodeSystem/consentscope".into(), "patient-privacy".into())]
    );
    assert_eq!(codes(&c["category"][0]), [("http://loinc.org".into(), "59284-0".into())]);
    assert_eq!(codes(&c["policyRule"]), [("http://terminology.hl7.org/CodeSystem/v3-ActCode".into(), "OPTIN".into())]);
    assert_eq!(c["patient"]["reference"], format!("Patient/{}", id(PATIENT)));
    assert_eq!(c["performer"][0]["reference"], format!("Patient/{}", id(PATIENT)));
    assert_eq!(c["organization"][0]["reference"], format!("Organization/{}", id(PRACTICE)));
    assert_eq!(c["dateTime"], "2026-11-02T09:30:00Z");
    let provision = &c["provision"];
    assert_eq!(provision["type"], "permit");
    assert_eq!(provision["actor"][0]["reference"]["reference"], format!("Organization/{}", id(GROUP)));
    assert_eq!(
        codes(&provision["actor"][0]["role"]),
        [("http://terminology.hl7.org/CodeSystem/v3-ParticipationType".into(), "IRCP".into())]
    );
    assert_eq!(provision["code"][0]["text"], "Name, contact details and the reason for referral");

    // Without a group on record, the recipient is named as the consent recorded it.
    let no_group = ReferralRecord { group_id: None, ..referral };
    let c = valid(consent(&no_group, &given_consent(), &ReferralNames { group: None, ..NAMES }), "Consent, no group");
    assert_eq!(c["provision"]["actor"][0]["reference"], json!({"display": "Walk and Talk Group"}));
}

fn patient_record(n: u128, contact_method: ContactMethod, language: Option<&str>) -> PatientRecord {
    PatientRecord {
        id: id(100 + n),
        organisation_id: id(PRACTICE),
        nhs_number_index: None,
        local_id_index: None,
        details: Sealed("sealed".into()),
        contact_method,
        language: language.map(str::to_owned),
        deprivation_decile: Some(3),
        neighbourhood: Some("Riverside".into()),
        created_at: at(1, 9),
    }
}

#[test]
fn patients_carry_their_nhs_number_or_local_id() {
    let people = [
        ("Alex Synthetic", ContactMethod::Text, Some("pl")),
        ("Sam Synthetic", ContactMethod::Email, Some("Polish")),
        ("Jo Synthetic", ContactMethod::Phone, None),
    ];
    for (n, ((name, method, language), nhs)) in people.into_iter().zip(NHS_NUMBERS).enumerate() {
        let details = PatientDetails {
            name: name.into(),
            birth_date: NaiveDate::from_ymd_opt(1950, 1, 1 + n as u32),
            nhs_number: Some(NhsNumber::parse(nhs).unwrap()),
            local_id: None,
            email: Some(format!("person{n}@example.org")),
            mobile: Some("07700 900123".into()),
            phone: (n == 2).then(|| "0161 496 0000".to_owned()),
            postcode: Some("M1 1AE".into()),
        };
        let p = valid(patient(BASE, &patient_record(n as u128, method, language), &details, "Riverside Surgery"), name);
        assert_eq!(p["identifier"], json!([{"system": "https://fhir.nhs.uk/Id/nhs-number", "value": nhs}]));
        assert_eq!(p["name"], json!([{"text": name}]));
        assert_eq!(p["birthDate"], format!("1950-01-0{}", n + 1));
        assert_eq!(p["address"], json!([{"use": "home", "postalCode": "M1 1AE"}]));
        assert_eq!(p["managingOrganization"]["reference"], format!("Organization/{}", id(PRACTICE)));
        let ranked: Vec<&Value> = p["telecom"].as_array().unwrap().iter().filter(|c| c["rank"] == 1).collect();
        let preferred = match method {
            ContactMethod::Text => "07700 900123",
            ContactMethod::Email => "person1@example.org",
            _ => "0161 496 0000",
        };
        assert_eq!(ranked.len(), 1, "{name}");
        assert_eq!(ranked[0]["value"], preferred, "{name}");
        match language {
            Some("pl") => {
                assert_eq!(
                    p["communication"][0]["language"]["coding"][0],
                    json!({"system": "urn:ietf:bcp:47", "code": "pl"})
                );
            }
            Some(written) => assert_eq!(p["communication"][0]["language"], json!({"text": written})),
            None => assert!(p.get("communication").is_none()),
        }
    }
    let local = PatientDetails {
        name: "Chris Synthetic".into(),
        birth_date: NaiveDate::from_ymd_opt(1988, 2, 29 - 1),
        nhs_number: None,
        local_id: Some("RS-0042".into()),
        email: None,
        mobile: None,
        phone: None,
        postcode: None,
    };
    let p =
        valid(patient(BASE, &patient_record(9, ContactMethod::Letter, None), &local, "Riverside Surgery"), "local id");
    assert_eq!(p["identifier"], json!([{"system": format!("{BASE}/Id/local-patient-id"), "value": "RS-0042"}]));
    assert!(p.get("telecom").is_none() && p.get("address").is_none());
}

#[test]
fn directory_services_are_healthcare_services() {
    let full: Service = serde_json::from_value(json!({
        "id": id(SERVICE),
        "organization_id": id(40),
        "name": "Walk and Talk",
        "description": "A gentle weekly walk round the park, then tea.",
        "url": "https://walkandtalk.example.org",
        "email": "hello@walkandtalk.example.org",
        "status": "active",
        "application_process": "Phone Sam, or ask your GP to refer you.",
        "fees_description": "Free",
        "eligibility_description": "Adults who can walk a mile",
        "phones": [{"id": id(41), "number": "0161 496 0001"}],
        "schedules": [
            {"id": id(42), "freq": "WEEKLY", "interval": 1, "byday": "TU,TH", "opens_at": "10:00", "closes_at": "11:30"},
            {"id": id(43), "freq": "MONTHLY", "byday": "1SA", "opens_at": "10:00", "closes_at": "12:00"}
        ],
        "service_areas": [{"id": id(44), "name": "Manchester"}],
        "languages": [{"id": id(45), "name": "English", "code": "en"}, {"id": id(46), "name": "Urdu"}],
        "service_at_locations": [{"id": id(47), "location": {"id": id(48), "location_type": "physical", "name": "Platt Fields Park",
            "addresses": [{"id": id(49), "address_1": "Platt Fields", "city": "Manchester", "state_province": "",
                "postal_code": "M14 6LA", "country": "GB", "address_type": "physical"}]}}],
        "attributes": [{"id": id(50), "taxonomy_term": {"id": id(51), "code": "loneliness", "name": "Loneliness",
            "description": "Feeling alone", "taxonomy_detail": {"id": id(52), "name": "Kith needs",
            "description": "Needs", "uri": "https://kith.example/taxonomy/needs"}}}],
        "program": {"id": id(53), "name": "Healthy Hulme", "description": "A programme"}
    }))
    .unwrap();
    let hs = valid(healthcare_service(BASE, &full, Some("Hulme Walkers")), "full HealthcareService");
    assert_eq!(hs["id"], id(SERVICE).to_string());
    assert_eq!(hs["active"], true);
    assert_eq!(hs["name"], "Walk and Talk");
    assert_eq!(hs["comment"], "A gentle weekly walk round the park, then tea.");
    assert_eq!(
        hs["providedBy"],
        json!({"identifier": {"system": format!("{BASE}/Id/hsds-organization"), "value": id(40).to_string()},
            "display": "Hulme Walkers"})
    );
    let telecom: Vec<(&str, &str)> = hs["telecom"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["system"].as_str().unwrap(), c["value"].as_str().unwrap()))
        .collect();
    assert_eq!(
        telecom,
        [
            ("phone", "0161 496 0001"),
            ("email", "hello@walkandtalk.example.org"),
            ("url", "https://walkandtalk.example.org")
        ]
    );
    assert_eq!(
        hs["availableTime"],
        json!([{"daysOfWeek": ["tue", "thu"], "availableStartTime": "10:00:00", "availableEndTime": "11:30:00"}]),
        "the monthly session is left to the listing"
    );
    assert_eq!(hs["type"][0]["coding"][0]["code"], "loneliness");
    assert_eq!(hs["location"], json!([{"display": "Platt Fields Park, M14 6LA"}]));
    assert_eq!(hs["communication"][0]["coding"][0]["code"], "en");
    assert_eq!(hs["communication"][1], json!({"text": "Urdu"}));
    assert!(hs["extraDetails"].as_str().unwrap().contains("**Cost:** Free"));

    let closed = Service::new(id(60), "Knit and Natter", ServiceStatus::TemporarilyClosed);
    let hs = valid(healthcare_service(BASE, &closed, None), "a closed, bare service");
    assert_eq!(hs["active"], false);
    assert_eq!(hs["availabilityExceptions"], "Temporarily closed");
    assert!(hs.get("providedBy").is_none() && hs.get("telecom").is_none());
}

#[test]
fn ons4_measures_are_survey_observations() {
    for (n, stage) in [Stage::Baseline, Stage::FollowUp].into_iter().enumerate() {
        let measure = MeasureRecord {
            id: id(70 + n as u128),
            referral_id: id(REFERRAL),
            patient_id: id(PATIENT),
            instrument: "ons4".into(),
            stage,
            answers: vec![7, 8, 6, 0],
            taken_at: at(2 + 28 * n as u32, 11),
            recorded_by: id(5),
        };
        let obs = valid(measure_observation(BASE, &measure, &Ons4), &format!("ONS4 at {}", stage.as_str()));
        assert_eq!(obs["id"], measure.id.to_string());
        assert_eq!(obs["status"], "final");
        assert_eq!(
            codes(&obs["category"][0]),
            [("http://terminology.hl7.org/CodeSystem/observation-category".into(), "survey".into())]
        );
        assert_eq!(
            codes(&obs["category"][1]),
            [(format!("{BASE}/CodeSystem/kith-measure-stage"), stage.as_str().into())]
        );
        assert_eq!(codes(&obs["code"]), [(format!("{BASE}/CodeSystem/ons4"), "ons4".into())]);
        assert_eq!(obs["code"]["text"], "ONS personal well-being (ONS4)");
        assert_eq!(obs["basedOn"][0]["reference"], format!("ServiceRequest/{}", id(REFERRAL)));
        let components = obs["component"].as_array().unwrap();
        assert_eq!(components.len(), 4);
        assert_eq!(components[3]["code"]["coding"][0]["code"], "q4");
        assert_eq!(components[3]["code"]["text"], "Overall, how anxious did you feel yesterday?");
        assert_eq!(components[3]["valueInteger"], 0, "a zero is an answer, not a gap");
        assert_eq!(components[0]["valueInteger"], 7);
    }
}

#[test]
fn search_results_are_a_searchset_bundle() {
    let referral = record(ReferralKind::Referral, TaskStatus::Accepted);
    let resources: Vec<Resource> = vec![
        service_request(BASE, &referral, &details(ReferralKind::Referral), &NAMES).into(),
        task(BASE, &referral, &events(TaskStatus::Accepted, ""), None, &NAMES).into(),
        consent(&referral, &given_consent(), &NAMES).into(),
        healthcare_service(BASE, &Service::new(id(SERVICE), "Walk and Talk", ServiceStatus::Active), None).into(),
        outcome_observation(BASE, &follow_up(Some(Outcome::StillAttending)), id(PATIENT)).unwrap().into(),
        operation_outcome(IssueSeverity::Warning, IssueType::TooCostly, "Only the first 2 pages are shown").into(),
    ];
    let self_url = format!("{BASE}/ServiceRequest?patient=Patient/{}&_count=6", id(PATIENT));
    let next = format!("{self_url}&_page=2");
    let bundle = valid(bundle_searchset(BASE, &self_url, 9, resources, Some(next.clone())), "searchset Bundle");
    assert_eq!(bundle["type"], "searchset");
    assert_eq!(bundle["total"], 9);
    assert_eq!(bundle["link"], json!([{"relation": "self", "url": self_url}, {"relation": "next", "url": next}]));
    let entries = bundle["entry"].as_array().unwrap();
    assert_eq!(entries.len(), 6);
    assert_eq!(entries[0]["fullUrl"], format!("{BASE}/ServiceRequest/{}", id(REFERRAL)));
    assert_eq!(entries[1]["fullUrl"], format!("{BASE}/Task/{}", id(REFERRAL)));
    assert_eq!(entries[4]["fullUrl"], format!("{BASE}/Observation/outcome-{}", id(REFERRAL)));
    assert_eq!(entries[0]["search"]["mode"], "match");
    assert_eq!(entries[5]["search"]["mode"], "outcome");
    assert!(entries[5].get("fullUrl").is_none());

    let empty = valid(bundle_searchset(BASE, &self_url, 0, Vec::new(), None), "empty searchset");
    assert!(empty.get("entry").is_none());
    assert_eq!(empty["link"].as_array().unwrap().len(), 1);
}

#[test]
fn errors_and_the_capability_statement_are_valid() {
    let oo = valid(
        operation_outcome(IssueSeverity::Error, IssueType::BusinessRule, "This referral is cancelled"),
        "OperationOutcome",
    );
    assert_eq!(
        oo["issue"],
        json!([{"severity": "error", "code": "business-rule", "diagnostics": "This referral is cancelled"}])
    );
    let bare = valid(operation_outcome(IssueSeverity::Error, IssueType::NotFound, ""), "OperationOutcome, no text");
    assert_eq!(bare["issue"], json!([{"severity": "error", "code": "not-found"}]));

    let cs = valid(capability_statement(BASE, at(26, 9)), "CapabilityStatement");
    assert_eq!(
        (&cs["fhirVersion"], &cs["kind"], &cs["status"]),
        (&json!("4.0.1"), &json!("instance"), &json!("active"))
    );
    assert_eq!(cs["date"], "2026-11-26T09:30:00Z");
    assert_eq!(cs["implementation"]["url"], BASE);
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let find = |t: &str| resources.iter().find(|r| r["type"] == t).unwrap_or_else(|| panic!("{t} listed"));
    let interactions = |t: &str| -> Vec<String> {
        find(t)["interaction"].as_array().unwrap().iter().map(|i| i["code"].as_str().unwrap().to_owned()).collect()
    };
    let params = |t: &str| -> Vec<String> {
        find(t)["searchParam"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    for t in ["ServiceRequest", "Task", "HealthcareService", "Patient", "Consent", "Observation"] {
        assert!(interactions(t).contains(&"read".to_owned()), "{t} can be read");
    }
    assert_eq!(interactions("Task"), ["read", "search-type", "update", "patch"]);
    assert_eq!(params("Task"), ["patient", "status", "authored-on"]);
    assert_eq!(params("ServiceRequest"), ["patient", "status", "authored"]);
    assert!(params("HealthcareService").is_empty());
    assert_eq!(interactions("HealthcareService"), ["read"]);
    assert_eq!(params("Observation"), ["patient"]);
    assert_eq!(interactions("Patient"), ["read"]);
}

/// The validator has teeth: it rejects what FHIR forbids, and says where.
#[test]
fn the_schema_rejects_broken_resources() {
    let Some(schema) = SCHEMA.as_ref() else { return };
    let referral = record(ReferralKind::Referral, TaskStatus::Accepted);
    let good = serde_json::to_value(task(BASE, &referral, &events(TaskStatus::Accepted, ""), None, &NAMES)).unwrap();
    assert_eq!(schema.validate(&good), Ok(()));

    let broken = |pointer: &str, value: Value| {
        let mut t = good.clone();
        *t.pointer_mut(pointer).unwrap() = value;
        schema.validate(&t).expect_err(pointer)
    };
    let errors = broken("/status", json!("bogus"));
    assert!(errors.iter().any(|e| e.starts_with("/status:") && e.contains("bogus")), "{errors:?}");
    let errors = broken("/authoredOn", json!("26/11/2026 09:30"));
    assert!(errors.iter().any(|e| e.starts_with("/authoredOn:")), "{errors:?}");
    let errors = broken("/businessStatus/text", json!(""));
    assert!(errors.iter().any(|e| e.starts_with("/businessStatus/text:")), "{errors:?}");
    let errors = broken("/id", json!("not an id!"));
    assert!(errors.iter().any(|e| e.starts_with("/id:")), "{errors:?}");
    let mut extra = good.clone();
    extra["colour"] = json!("blue");
    assert!(schema.validate(&extra).unwrap_err().iter().any(|e| e.contains("colour")));

    let bundle = json!({"resourceType": "Bundle", "type": "searchset",
        "entry": [{"resource": {"resourceType": "Task", "status": "bogus", "intent": "order"}}]});
    let errors = schema.validate(&bundle).unwrap_err();
    assert!(errors.iter().any(|e| e.starts_with("/entry/0/resource/status:")), "{errors:?}");
    let errors = schema.validate(&json!({"resourceType": "Referral"})).unwrap_err();
    assert!(errors[0].contains("no resource type \"Referral\""), "{errors:?}");
}

fn update_error(body: &Value) -> String {
    requested_status(body).unwrap_err().to_string()
}

#[test]
fn a_task_update_is_read_from_a_whole_task() {
    let body = json!({"resourceType": "Task", "id": id(REFERRAL), "status": "accepted", "intent": "order"});
    assert_eq!(requested_status(&body), Ok((TaskStatus::Accepted, None)));
    let body = json!({"resourceType": "Task", "status": "rejected", "statusReason": {"text": " No space just now "}});
    assert_eq!(requested_status(&body), Ok((TaskStatus::Rejected, Some("No space just now".into()))));
    let body = json!({"resourceType": "Task", "status": "on-hold", "note": [{"text": "Waiting list until March"}]});
    assert_eq!(requested_status(&body), Ok((TaskStatus::OnHold, Some("Waiting list until March".into()))));
    let body = json!({"resourceType": "Task", "status": "rejected", "statusReason": {"coding": [
        {"system": format!("{BASE}/CodeSystem/kith-decline-reason"), "code": "out_of_area"}]}});
    assert_eq!(requested_status(&body), Ok((TaskStatus::Rejected, Some(DeclineReason::OutOfArea.label().into()))));
    for status in TaskStatus::ALL {
        assert_eq!(requested_status(&json!({"resourceType": "Task", "status": status.code()})), Ok((status, None)));
    }
}

#[test]
fn a_task_update_is_read_from_a_json_patch() {
    let body = json!([{"op": "replace", "path": "/status", "value": "in-progress"}]);
    assert_eq!(requested_status(&body), Ok((TaskStatus::InProgress, None)));
    let body = json!([
        {"op": "replace", "path": "/status", "value": "rejected"},
        {"op": "add", "path": "/statusReason", "value": {"text": "The person lives outside the area we cover"}}
    ]);
    assert_eq!(requested_status(&body), Ok((TaskStatus::Rejected, Some(DeclineReason::OutOfArea.label().into()))));
    let body = json!([
        {"op": "replace", "path": "/statusReason/text", "value": "Moved away"},
        {"op": "replace", "path": "/status", "value": "cancelled"}
    ]);
    assert_eq!(requested_status(&body), Ok((TaskStatus::Cancelled, Some("Moved away".into()))));
}

#[test]
fn a_bad_task_update_says_what_to_send() {
    let codes = "requested, received, accepted, rejected, in-progress, on-hold, completed, cancelled, failed";
    assert_eq!(update_error(&json!({"resourceType": "Task"})), format!("The Task needs a status, one of: {codes}"));
    assert_eq!(
        update_error(&json!({"resourceType": "Task", "status": "bogus"})),
        format!("\"bogus\" is not a Task status Kith uses; use one of: {codes}")
    );
    assert_eq!(
        update_error(&json!({"resourceType": "Task", "status": 3})),
        format!("3 is not a Task status Kith uses; use one of: {codes}")
    );
    assert_eq!(
        update_error(&json!({"resourceType": "Patient", "status": "accepted"})),
        "This is a Patient, not a Task: send the Task with its new status"
    );
    for body in [json!({"status": "accepted"}), json!("accepted"), Value::Null] {
        assert!(update_error(&body).starts_with("Send the Task resource (\"resourceType\": \"Task\")"));
    }
    assert!(
        update_error(&json!({"resourceType": "Task", "status": "rejected", "statusReason": "No space"}))
            .starts_with("statusReason must be a CodeableConcept")
    );
    assert!(
        update_error(&json!({"resourceType": "Task", "status": "rejected", "note": "x"})).starts_with("note must be")
    );
    assert_eq!(
        update_error(&json!([{"op": "replace", "path": "/owner", "value": {"reference": "Organization/1"}}])),
        "Only /status and /statusReason can be changed, not /owner"
    );
    assert_eq!(
        update_error(&json!([{"op": "replace", "path": "/statusReason/text", "value": "No space"}])),
        format!("The patch needs to replace /status with one of: {codes}")
    );
    assert_eq!(update_error(&json!([])), format!("The patch needs to replace /status with one of: {codes}"));
    assert_eq!(
        update_error(&json!([{"op": "test", "path": "/status", "value": "requested"}])),
        "Kith cannot apply \"test\" patch operations; use \"replace\" on /status and /statusReason"
    );
    assert!(
        update_error(&json!([{"path": "/status", "value": "accepted"}]))
            .starts_with("Patch operation 0 needs an \"op\"")
    );
    assert_eq!(
        requested_status(&json!([{"op": "replace", "path": "/status", "value": "draft"}])),
        Err(TaskUpdateError::UnknownStatus("\"draft\"".into()))
    );
}

/// What a GP system reads for one referral, whole, so that any change to the mapping shows
/// up in review as a change to these snapshots.
#[test]
fn a_referral_in_fhir_snapshots() {
    let referral = record(ReferralKind::Referral, TaskStatus::InProgress);
    let closed = follow_up(Some(Outcome::StillAttending));
    insta::assert_json_snapshot!(
        "service_request",
        valid(service_request(BASE, &referral, &details(ReferralKind::Referral), &NAMES), "ServiceRequest")
    );
    insta::assert_json_snapshot!(
        "task",
        valid(task(BASE, &referral, &events(TaskStatus::InProgress, "Started going"), Some(&closed), &NAMES), "Task")
    );
    insta::assert_json_snapshot!("consent", valid(consent(&referral, &given_consent(), &NAMES), "Consent"));
    insta::assert_json_snapshot!(
        "outcome_observation",
        valid(outcome_observation(BASE, &closed, id(PATIENT)).unwrap(), "Observation")
    );
    insta::assert_json_snapshot!(
        "capability_statement",
        valid(capability_statement(BASE, at(26, 9)), "CapabilityStatement")
    );
}
