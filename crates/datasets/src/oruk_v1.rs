//! The ORUK v1 service list, as most English councils still publish it, mapped to HSDS 3.0.
//!
//! | v1 | HSDS 3.0 / Kith |
//! |---|---|
//! | `description` (HTML) | `description`, as plain text |
//! | `fees` | `fees_description`, and a cost option with the same words |
//! | `assured_date` | `assured_date` and Kith's `last_verified_at` |
//! | `pc_metadata.assured_by` | Kith's `last_verified_by`: the assurer's organisation (the email's domain), never a person's address |
//! | `pc_metadata.date_modified` | `last_modified` |
//! | `organization` | the organisation, kept once however many services name it; `url` becomes `website` |
//! | `pc_targetAudience` | attributes linking to terms of an "ORUK v1 target audience" taxonomy |
//! | `deliverable_type`, `attending_type`, `attending_access` | kept under the extension field `oruk_v1` |
//!
//! Empty strings mean "no value" in v1 and become absent fields. A service's own page
//! (`/services/{id}`) says more than the list: see [`detail`] for how that is mapped.

use crate::html;
use chrono::{NaiveTime, TimeZone, Utc};
use kith_domain::ServiceStatus;
use kith_domain::hsds::{Attribute, CostOption, Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::serde_util::Date;
use kith_domain::validate::{self, Problem, Severity};
use serde_json::{Map, Value};
use uuid::Uuid;

pub mod detail;
pub use detail::has_detail;

/// Kith's namespace for ids it derives from other identifiers (UUID v5).
pub const KITH_NAMESPACE: Uuid = Uuid::from_u128(0x8c1f_4e0a_6b2d_5c7e_9a14_3d6f_0b8e_2c51);

/// The taxonomy v1 target audiences become terms of.
pub fn audience_taxonomy() -> Taxonomy {
    Taxonomy {
        id: Uuid::new_v5(&KITH_NAMESPACE, b"oruk-v1:target-audience"),
        name: "ORUK v1 target audience".into(),
        description: "Who a service is for, as published in an Open Referral UK v1 feed (pc_targetAudience)".into(),
        uri: None,
        version: Some("1".into()),
        metadata: vec![],
        extra: Map::new(),
    }
}

fn text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    obj.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

fn rich_text(obj: &Map<String, Value>, key: &str) -> Option<String> {
    text(obj, key).map(|t| if html::looks_like_html(&t) { html::to_text(&t) } else { t }).filter(|t| !t.is_empty())
}

fn error(path: String, message: impl Into<String>) -> Problem {
    Problem { path, message: message.into(), severity: Severity::Error }
}

fn warning(path: String, message: impl Into<String>) -> Problem {
    Problem { path, message: message.into(), severity: Severity::Warning }
}

fn uuid_at(obj: &Map<String, Value>, key: &str, path: &str) -> Result<Uuid, Problem> {
    let raw = obj.get(key).and_then(Value::as_str).ok_or_else(|| {
        error(format!("{path}.{key}"), format!("the required field `{key}` is missing or not a string"))
    })?;
    Uuid::parse_str(raw.trim()).map_err(|e| error(format!("{path}.{key}"), format!("{raw:?} is not a UUID ({e})")))
}

/// A web address as v1 feeds write them: "www.example.org" gains "https://". Text that
/// is not an address at all ("Warmley Community Centre") is kept under `oruk_v1` as
/// published rather than thrown away or allowed to sink the whole service.
fn web_address(
    raw: Option<String>,
    field: &str,
    path: &str,
    kept: &mut Map<String, Value>,
    notes: &mut Vec<Problem>,
) -> Option<String> {
    let raw = raw?;
    if validate::is_web_url(&raw) {
        return Some(raw);
    }
    // "www.example.org", "//example.org" and "http:www.example.org" all mean a website.
    let bare = ["https:", "http:"]
        .iter()
        .find_map(|p| raw.get(..p.len()).filter(|s| s.eq_ignore_ascii_case(p)).map(|_| &raw[p.len()..]))
        .unwrap_or(&raw)
        .trim_start_matches('/');
    let looks_like_host = bare.contains('.') && !bare.contains(' ') && !bare.contains('@');
    let fixed = format!("https://{bare}");
    if looks_like_host && validate::is_web_url(&fixed) {
        notes.push(warning(
            format!("{path}.{field}"),
            format!("{raw:?} has no http:// or https://; imported as {fixed:?}"),
        ));
        return Some(fixed);
    }
    notes.push(warning(
        format!("{path}.{field}"),
        format!("{raw:?} is not a web address; kept as oruk_v1.{field}_as_published and left out of {field}"),
    ));
    kept.insert(format!("{field}_as_published"), Value::String(raw));
    None
}

/// An email as v1 feeds write them: a trailing full stop is dropped; anything that is
/// still not an address is kept under `oruk_v1` as published.
fn email_address(
    raw: Option<String>,
    path: &str,
    kept: &mut Map<String, Value>,
    notes: &mut Vec<Problem>,
) -> Option<String> {
    let raw = raw?;
    let trimmed = raw.trim_end_matches('.').to_owned();
    if validate::is_email(&trimmed) {
        if trimmed != raw {
            notes.push(warning(
                format!("{path}.email"),
                format!("{raw:?} ended with a full stop; imported as {trimmed:?}"),
            ));
        }
        return Some(trimmed);
    }
    notes.push(warning(
        format!("{path}.email"),
        format!("{raw:?} is not an email address; kept as oruk_v1.email_as_published and left out of email"),
    ));
    kept.insert("email_as_published".into(), Value::String(raw));
    None
}

fn audience_attribute(
    service_id: Uuid,
    term_id: Uuid,
    name: &str,
    key: &str,
    parent_id: Option<Uuid>,
    taxonomy: &Taxonomy,
) -> Attribute {
    Attribute {
        id: Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:audience:{service_id}:{key}").as_bytes()),
        link_id: Some(service_id),
        taxonomy_term_id: Some(term_id),
        link_type: Some("target_audience".into()),
        link_entity: Some("service".into()),
        value: None,
        taxonomy_term: Some(TaxonomyTerm {
            id: term_id,
            code: Some(key.to_owned()),
            name: name.to_owned(),
            description: format!("Services for {name}"),
            parent_id,
            taxonomy: Some(taxonomy.name.clone()),
            taxonomy_detail: Some(taxonomy.clone()),
            language: None,
            taxonomy_id: Some(taxonomy.id),
            term_uri: None,
            metadata: vec![],
            extra: Map::new(),
        }),
        metadata: vec![],
        extra: Map::new(),
    }
}

/// Maps one v1 service. Returns the service and notes (warnings), or the problem that
/// stops it being imported.
pub fn service(record: &Value, path: &str) -> Result<(Service, Vec<Problem>), Problem> {
    let obj = record.as_object().ok_or_else(|| error(path.to_owned(), "expected an object"))?;
    let mut notes = Vec::new();
    let mut v1 = Map::new();
    let id = uuid_at(obj, "id", path)?;
    let status = match text(obj, "status") {
        None => ServiceStatus::Active,
        Some(s) => s
            .to_ascii_lowercase()
            .parse()
            .map_err(|e: kith_domain::status::UnknownStatus| error(format!("{path}.status"), e.to_string()))?,
    };
    let name = obj.get("name").and_then(Value::as_str).map(|n| html::to_text(n.trim())).unwrap_or_default();
    let mut s = Service::new(id, name, status);
    s.description = rich_text(obj, "description");
    s.url = web_address(text(obj, "url"), "url", path, &mut v1, &mut notes);
    s.email = email_address(text(obj, "email"), path, &mut v1, &mut notes);
    s.accreditations = rich_text(obj, "accreditations");
    if let Some(fees) = rich_text(obj, "fees") {
        s.cost_options.push(CostOption {
            id: Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:fees:{id}").as_bytes()),
            service_id: Some(id),
            valid_from: None,
            valid_to: None,
            option: Some("Fees".into()),
            currency: Some("GBP".into()),
            amount: None,
            amount_description: Some(fees.clone()),
            attributes: vec![],
            metadata: vec![],
        });
        s.fees_description = Some(fees);
    }
    if let Some(raw) = text(obj, "assured_date") {
        match Date::parse(&raw) {
            Some(date) => {
                s.assured_date = Some(date);
                s.last_verified_at = Some(Utc.from_utc_datetime(&date.0.and_time(NaiveTime::MIN)));
            }
            None => notes.push(warning(format!("{path}.assured_date"), format!("{raw:?} is not a date; left out"))),
        }
    }
    if let Some(meta) = obj.get("pc_metadata").and_then(Value::as_object) {
        if let Some(modified) = text(meta, "date_modified").and_then(|d| Date::parse(&d)) {
            s.last_modified = Some(Utc.from_utc_datetime(&modified.0.and_time(NaiveTime::MIN)));
        }
        // A staff member's address is personal data and says less than their employer.
        if let Some(by) = text(meta, "assured_by") {
            s.last_verified_by = Some(match by.split_once('@') {
                Some((_, domain)) => domain.to_ascii_lowercase(),
                None => by,
            });
        }
    }
    if let Some(org) = obj.get("organization").filter(|v| !v.is_null()) {
        let org_path = format!("{path}.organization");
        let org_obj = org.as_object().ok_or_else(|| error(org_path.clone(), "expected an object"))?;
        let org_id = uuid_at(org_obj, "id", &org_path)?;
        let org_name = text(org_obj, "name").unwrap_or_default();
        let mut o = Organization::new(org_id, org_name, rich_text(org_obj, "description").unwrap_or_default());
        let mut org_v1 = Map::new();
        o.website = web_address(
            text(org_obj, "url").or_else(|| text(org_obj, "website")),
            "url",
            &org_path,
            &mut org_v1,
            &mut notes,
        );
        o.logo = text(org_obj, "logo");
        o.uri = web_address(text(org_obj, "uri"), "uri", &org_path, &mut org_v1, &mut notes);
        if !org_v1.is_empty() {
            o.extra.insert("oruk_v1".into(), Value::Object(org_v1));
        }
        s.organization_id = Some(org_id);
        s.organization = Some(Box::new(o));
    }
    if let Some(audiences) = obj.get("pc_targetAudience").and_then(Value::as_array) {
        let taxonomy = audience_taxonomy();
        for (i, audience) in audiences.iter().enumerate() {
            let Some(label) = audience.as_object().and_then(|a| text(a, "audienceType")) else {
                notes.push(warning(
                    format!("{path}.pc_targetAudience[{i}]"),
                    "an audience with no audienceType; left out",
                ));
                continue;
            };
            // "Sensory Impaired>Visually Impaired" is a path: the service is linked to
            // each level, and each level's term is the child of the one before.
            let mut parent = None;
            let mut key = String::new();
            for level in label.split('>').map(str::trim).filter(|l| !l.is_empty()) {
                if !key.is_empty() {
                    key.push('>');
                }
                key.push_str(&level.to_lowercase());
                let term_id = Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:audience:{key}").as_bytes());
                if s.attributes.iter().all(|a| a.taxonomy_term_id != Some(term_id)) {
                    s.attributes.push(audience_attribute(id, term_id, level, &key, parent, &taxonomy));
                }
                parent = Some(term_id);
            }
        }
    }
    for (from, to) in [
        ("deliverable_type", "deliverable_type"),
        ("attending_type", "attending_type"),
        ("attending_access", "attending_access"),
        ("pc_attendingAccess_additionalInfo", "attending_access_info"),
    ] {
        if let Some(value) = rich_text(obj, from) {
            v1.insert(to.into(), Value::String(value));
        }
    }
    notes.extend(detail::add(obj, &mut s, path, &mut v1));
    if !v1.is_empty() {
        s.extra.insert("oruk_v1".into(), Value::Object(v1));
    }
    Ok((s, notes))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn maps_a_v1_service() {
        let record = json!({
            "id": "2af617e5-4532-bebe-1036-ffdf2e93ce55",
            "name": "Yoga for Fitness &amp; Wellbeing",
            "description": "<p>Keep&nbsp;fit.</p>",
            "url": "www.urban-yoga.net",
            "email": "",
            "status": "active",
            "fees": "",
            "attending_type": "Venue",
            "assured_date": "2021-06-10",
            "organization": {"id": "da87250d-76bf-e321-ee11-796c8b7f7934", "name": "Urban Yoga", "description": "", "url": "https://www.urban-yoga.net", "logo": "", "uri": ""},
            "pc_metadata": {"date_modified": "2021-06-10", "assured_by": "someone@thecareforum.org.uk"},
            "pc_targetAudience": [{"id": "ChronicallyIll", "audienceType": "Dementia "}, {"id": "22538", "audienceType": "Sensory Impaired>Visually Impaired"}]
        });
        let (s, notes) = service(&record, "$[0]").unwrap();
        assert_eq!(s.name, "Yoga for Fitness & Wellbeing");
        assert_eq!(s.description.as_deref(), Some("Keep fit."));
        assert_eq!(s.url.as_deref(), Some("https://www.urban-yoga.net"));
        assert_eq!(notes.len(), 1, "the added https:// is reported");
        assert!(s.email.is_none());
        assert!(s.cost_options.is_empty());
        assert_eq!(s.last_verified_by.as_deref(), Some("thecareforum.org.uk"));
        assert_eq!(s.assured_date.map(|d| d.to_string()).as_deref(), Some("2021-06-10"));
        assert_eq!(s.organization.as_ref().and_then(|o| o.website.as_deref()), Some("https://www.urban-yoga.net"));
        let terms: Vec<_> = s.attributes.iter().filter_map(|a| a.taxonomy_term.as_ref()).collect();
        assert_eq!(
            terms.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(),
            ["Dementia", "Sensory Impaired", "Visually Impaired"]
        );
        assert_eq!(terms[2].parent_id, Some(terms[1].id), "a > path becomes a hierarchy");
        assert_eq!(s.extra["oruk_v1"]["attending_type"], "Venue");
    }

    #[test]
    fn a_services_own_page_brings_its_venues_times_contacts_and_terms() {
        let record = json!({
            "id": "2af617e5-4532-bebe-1036-ffdf2e93ce55",
            "name": "Lunch club",
            "status": "active",
            "deliverable_type": "",
            "pc_metadata": {"date_modified": "2024-11-02"},
            "service_at_locations": [{
                "id": "sal-1",
                "location": {
                    "id": "venue-17", "name": "St  Paul's\nLearning Centre", "latitude": "51.4613", "longitude": -2.5853,
                    "physical_addresses": [{"id": "a1", "address_1": "94 Grosvenor Road", "city": "Bristol", "postal_code": "bs2 8xj", "country": "GB"}],
                    "accessibility_for_disabilities": [{"id": "ac1", "accessibility": "Step-free entrance"}]
                },
                "regular_schedules": [{"id": "r1", "opens_at": "12:00:00", "closes_at": "13:30:00", "byday": "tu, th", "freq": "weekly", "interval": 1}]
            }, {"id": "sal-2", "location": {"id": "venue-0", "latitude": 0, "longitude": 0}}],
            "regular_schedules": [{"id": "r2", "byday": "Every other Friday", "description": "Lunch"}],
            "contacts": [{"id": "c1", "name": "Pat", "title": "Coordinator", "email": "pat@example.org.", "phones": [{"id": "p1", "number": "0117 000 0000"}]}],
            "service_areas": [{"id": "sa1", "service_area": "Bristol"}],
            "languages": [{"id": "l1", "language": "Somali"}],
            "eligibilitys": [{"id": "e1", "eligibility": "Over 60s", "minimum_age": 60}],
            "service_taxonomys": [{"id": "st1", "taxonomy": {"id": "T12", "name": "Older people", "vocabulary": "Bristol Categories", "parent": "T1"}}],
            "cost_options": [{"id": "co1", "option": "Lunch", "amount": 3.5}],
            "holiday_schedules": [{"id": "h1", "closed": true, "start_date": "2024-12-24"}]
        });
        let (s, notes) = service(&record, "$").unwrap();
        assert_eq!(s.service_at_locations.len(), 2);
        let venue = s.service_at_locations[0].location.as_ref().unwrap();
        assert_eq!(venue.name.as_deref(), Some("St Paul's Learning Centre"));
        assert_eq!((venue.latitude, venue.longitude), (Some(51.4613), Some(-2.5853)));
        assert_eq!(venue.addresses[0].postal_code, "BS2 8XJ");
        assert_eq!(venue.accessibility[0].description.as_deref(), Some("Step-free entrance"));
        assert_eq!(venue.id, Uuid::new_v5(&KITH_NAMESPACE, b"oruk-v1:location:venue-17"), "a venue's id is its own");
        let at_venue = &s.service_at_locations[0].schedules[0];
        assert_eq!(at_venue.byday.as_deref(), Some("TU,TH"));
        assert_eq!(at_venue.opens_at.map(|t| t.to_string()).as_deref(), Some("12:00:00"));
        let unplaced = s.service_at_locations[1].location.as_ref().unwrap();
        assert_eq!(unplaced.latitude, None, "0, 0 is no position");
        assert_eq!(s.schedules[0].byday, None);
        assert_eq!(s.schedules[0].description.as_deref(), Some("Lunch (Every other Friday)"));
        assert_eq!(s.contacts[0].email.as_deref(), Some("pat@example.org"));
        assert_eq!(s.contacts[0].phones[0].number, "0117 000 0000");
        assert_eq!(s.service_areas[0].name.as_deref(), Some("Bristol"));
        assert_eq!(s.languages[0].name.as_deref(), Some("Somali"));
        assert_eq!((s.eligibility_description.as_deref(), s.minimum_age), (Some("Over 60s"), Some(60.0)));
        let term = s.attributes[0].taxonomy_term.as_ref().unwrap();
        assert_eq!((term.name.as_str(), term.taxonomy.as_deref()), ("Older people", Some("Bristol Categories")));
        assert_eq!(s.cost_options[0].amount, Some(3.5));
        assert_eq!(s.extra["oruk_v1"]["holiday_schedules"][0]["start_date"], "2024-12-24");
        let said: Vec<&str> = notes.iter().map(|n| n.path.as_str()).collect();
        assert!(said.contains(&"$.service_at_locations[1].location.latitude"), "{said:?}");
        assert!(said.contains(&"$.regular_schedules[0].byday"), "{said:?}");
        let mut checker = validate::Checker::new("$");
        checker.service(&s);
        assert!(!checker.has_errors(), "{:?}", checker.problems);
        assert!(has_detail(record.as_object().unwrap()));
        assert!(!has_detail(json!({"id": "x", "service_at_locations": []}).as_object().unwrap()));
    }

    #[test]
    fn a_bad_id_names_the_field() {
        let err = service(&json!({"id": "42", "name": "x"}), "$[7]").unwrap_err();
        assert_eq!(err.path, "$[7].id");
    }
}
