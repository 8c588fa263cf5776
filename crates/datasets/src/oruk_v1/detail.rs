//! What a v1 service's own page (`/services/{id}`) adds to the list: venues, opening
//! times, contacts, areas, languages, eligibility, taxonomy terms, costs and funding.
//!
//! | v1 | HSDS 3.0 / Kith |
//! |---|---|
//! | `service_at_locations[].location` (`name`, `description`, `latitude`, `longitude`) | a physical location, shared by every service that names the same id |
//! | `…location.physical_addresses[]` | the location's physical addresses |
//! | `…location.accessibility_for_disabilities[]` | the location's accessibility |
//! | `regular_schedules[]`, `service_at_locations[].regular_schedules[]` | schedules of the service, or of the service at that venue |
//! | `contacts[]` with `phones[]` | contacts with their phones |
//! | `service_areas[]` (`service_area`, `extent`, `uri`) | service areas by name |
//! | `languages[]` | languages |
//! | `eligibilitys[]` | `eligibility_description`, `minimum_age`, `maximum_age` |
//! | `service_taxonomys[].taxonomy` | attributes linking to terms of a taxonomy per `vocabulary` |
//! | `cost_options[]`, `fundings[]` | cost options, funding |
//! | `holiday_schedules[]`, `reviews[]` | kept under the extension field `oruk_v1`, as published |
//!
//! v1 ids of parts need not be UUIDs: Kith derives one from the published id (the
//! same published id gives the same UUID, so a venue two services share stays one), or
//! from the service and the part's place in it. A part that cannot be read is left out
//! with a warning naming its path; it never costs the service.

use super::{KITH_NAMESPACE, email_address, rich_text, text, warning};
use kith_domain::hsds::{
    Accessibility, Address, AddressType, Attribute, Contact, CostOption, Extra, Frequency, Funding, Language, Location,
    LocationType, Phone, Schedule, Service, ServiceArea, ServiceAtLocation, Taxonomy, TaxonomyTerm,
};
use kith_domain::serde_util::{Date, TimeOfDay};
use kith_domain::validate::{Problem, parse_byday};
use serde_json::{Map, Value};
use uuid::Uuid;

/// Whether a v1 record carries anything only a service's own page has: a list entry
/// without it is worth asking for the service's page.
pub fn has_detail(obj: &Map<String, Value>) -> bool {
    const DETAIL: &[&str] = &["service_at_locations", "regular_schedules", "service_areas", "contacts"];
    DETAIL.iter().any(|k| obj.get(*k).and_then(Value::as_array).is_some_and(|a| !a.is_empty()))
}

/// Everything a service's page says beyond the list, added to `s`.
pub(super) fn add(
    obj: &Map<String, Value>,
    s: &mut Service,
    path: &str,
    kept: &mut Map<String, Value>,
) -> Vec<Problem> {
    let mut parts = Parts { service: s.id, notes: Vec::new() };
    for (i, sal) in objects(obj, "service_at_locations", path, &mut parts.notes) {
        let at = format!("{path}.service_at_locations[{i}]");
        if let Some(sal) = parts.service_at_location(sal, i, &at) {
            s.service_at_locations.push(sal);
        }
    }
    for (i, schedule) in objects(obj, "regular_schedules", path, &mut parts.notes) {
        let at = format!("{path}.regular_schedules[{i}]");
        if let Some(mut schedule) = parts.schedule(schedule, &format!("schedule:{i}"), &at) {
            schedule.service_id = Some(s.id);
            s.schedules.push(schedule);
        }
    }
    for (i, contact) in objects(obj, "contacts", path, &mut parts.notes) {
        let at = format!("{path}.contacts[{i}]");
        s.contacts.push(parts.contact(contact, i, &at, kept));
    }
    for (i, area) in objects(obj, "service_areas", path, &mut parts.notes) {
        let name = text(area, "service_area").or_else(|| text(area, "name"));
        let extent = text(area, "extent");
        if name.is_none() && extent.is_none() {
            parts.notes.push(warning(format!("{path}.service_areas[{i}]"), "a service area with no name; left out"));
            continue;
        }
        s.service_areas.push(ServiceArea {
            id: parts.id(area, "area", i),
            service_id: Some(s.id),
            name,
            description: rich_text(area, "description"),
            extent,
            extent_type: None,
            uri: text(area, "uri"),
            attributes: vec![],
            metadata: vec![],
            extra: Extra::new(),
        });
    }
    for (i, language) in objects(obj, "languages", path, &mut parts.notes) {
        let Some(name) = text(language, "language").or_else(|| text(language, "name")) else { continue };
        s.languages.push(Language {
            id: parts.id(language, "language", i),
            service_id: Some(s.id),
            location_id: None,
            phone_id: None,
            name: Some(name),
            code: text(language, "code"),
            note: None,
            attributes: vec![],
            metadata: vec![],
        });
    }
    parts.eligibility(obj, s, path);
    parts.taxonomy_terms(obj, s, path);
    for (i, cost) in objects(obj, "cost_options", path, &mut parts.notes) {
        let at = format!("{path}.cost_options[{i}]");
        let (valid_from, valid_to) = parts.period(cost, &at);
        s.cost_options.push(CostOption {
            id: parts.id(cost, "cost", i),
            service_id: Some(s.id),
            valid_from,
            valid_to,
            option: rich_text(cost, "option"),
            currency: Some("GBP".into()),
            amount: number(cost.get("amount")).filter(|a| *a >= 0.0),
            amount_description: rich_text(cost, "amount_description"),
            attributes: vec![],
            metadata: vec![],
        });
    }
    for (i, funding) in objects(obj, "fundings", path, &mut parts.notes) {
        let Some(source) = rich_text(funding, "source") else { continue };
        s.funding.push(Funding {
            id: parts.id(funding, "funding", i),
            organization_id: None,
            service_id: Some(s.id),
            source: Some(source),
            attributes: vec![],
            metadata: vec![],
        });
    }
    for key in ["holiday_schedules", "reviews"] {
        if let Some(items) = obj.get(key).and_then(Value::as_array).filter(|a| !a.is_empty()) {
            kept.insert(key.into(), Value::Array(items.clone()));
        }
    }
    parts.notes
}

/// The objects of the list `key`, with their places; what is not an object is noted
/// and skipped.
fn objects<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
    notes: &mut Vec<Problem>,
) -> Vec<(usize, &'a Map<String, Value>)> {
    match obj.get(key) {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .filter_map(|(i, item)| match item.as_object() {
                Some(o) => Some((i, o)),
                None => {
                    notes.push(warning(format!("{path}.{key}[{i}]"), "expected an object; left out"));
                    None
                }
            })
            .collect(),
        Some(_) => {
            notes.push(warning(format!("{path}.{key}"), "expected a list; left out"));
            Vec::new()
        }
    }
}

/// A number as v1 feeds write them: a JSON number or a numeric string.
fn number(value: Option<&Value>) -> Option<f64> {
    match value? {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
    .filter(|n: &f64| n.is_finite())
}

/// Text on one line, its runs of spaces and line breaks made single spaces.
fn one_line(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

struct Parts {
    service: Uuid,
    notes: Vec<Problem>,
}

impl Parts {
    /// A part's id: its own when it is a UUID, else one derived from the published id,
    /// else from the service and the part's place in it.
    fn id(&self, obj: &Map<String, Value>, kind: &str, place: usize) -> Uuid {
        let raw = match obj.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(Value::Number(n)) => n.to_string(),
            _ => return Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:{kind}:{}:{place}", self.service).as_bytes()),
        };
        Uuid::parse_str(&raw)
            .unwrap_or_else(|_| Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:{kind}:{raw}").as_bytes()))
    }

    fn date(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<Date> {
        let raw = text(obj, key)?;
        // "2024-01-01T00:00:00" is a date at midnight.
        let day = raw.get(..10).unwrap_or(&raw);
        let date = Date::parse(day);
        if date.is_none() {
            self.notes.push(warning(format!("{path}.{key}"), format!("{raw:?} is not a date; left out")));
        }
        date
    }

    /// `valid_from` and `valid_to`, dropping both when they are the wrong way round.
    fn period(&mut self, obj: &Map<String, Value>, path: &str) -> (Option<Date>, Option<Date>) {
        let from = self.date(obj, "valid_from", path);
        let to = self.date(obj, "valid_to", path);
        match (from, to) {
            (Some(f), Some(t)) if t < f => {
                self.notes.push(warning(
                    format!("{path}.valid_to"),
                    format!("valid_to {t} is before valid_from {f}; both left out"),
                ));
                (None, None)
            }
            other => other,
        }
    }

    fn time(&mut self, obj: &Map<String, Value>, key: &str, path: &str) -> Option<TimeOfDay> {
        let raw = text(obj, key)?;
        let time = TimeOfDay::parse(&raw);
        if time.is_none() {
            self.notes.push(warning(format!("{path}.{key}"), format!("{raw:?} is not a time of day; left out")));
        }
        time
    }

    /// A regular schedule. Days that are not RFC 5545 days ("Mondays") are kept in the
    /// description rather than refusing the service.
    fn schedule(&mut self, obj: &Map<String, Value>, kind: &str, path: &str) -> Option<Schedule> {
        let opens_at = self.time(obj, "opens_at", path);
        let closes_at = self.time(obj, "closes_at", path);
        let mut description = rich_text(obj, "description");
        let mut byday = None;
        if let Some(raw) = text(obj, "byday") {
            let days: Vec<String> =
                raw.split(',').map(|d| d.trim().to_ascii_uppercase()).filter(|d| !d.is_empty()).collect();
            if !days.is_empty() && days.iter().all(|d| parse_byday(d).is_some()) {
                byday = Some(days.join(","));
            } else {
                self.notes.push(warning(
                    format!("{path}.byday"),
                    format!("{raw:?} is not a list of days such as MO,TH; kept in the schedule's description"),
                ));
                description = Some(match description {
                    Some(d) => format!("{d} ({raw})"),
                    None => raw,
                });
            }
        }
        let freq = match text(obj, "freq").map(|f| f.to_ascii_uppercase()) {
            None => None,
            Some(f) if f == "WEEKLY" => Some(Frequency::Weekly),
            Some(f) if f == "MONTHLY" => Some(Frequency::Monthly),
            Some(f) => {
                self.notes.push(warning(format!("{path}.freq"), format!("{f:?} is not WEEKLY or MONTHLY; left out")));
                None
            }
        };
        if opens_at.is_none() && closes_at.is_none() && byday.is_none() && description.is_none() {
            self.notes.push(warning(path.to_owned(), "a schedule with no times, days or description; left out"));
            return None;
        }
        let (valid_from, valid_to) = self.period(obj, path);
        let interval = number(obj.get("interval")).filter(|n| *n >= 1.0);
        Some(Schedule {
            id: self.id(obj, kind, 0),
            service_id: None,
            location_id: None,
            service_at_location_id: None,
            valid_from,
            valid_to,
            dtstart: self.date(obj, "dtstart", path),
            timezone: None,
            until: None,
            count: None,
            wkst: None,
            freq: freq.or(byday.as_ref().map(|_| Frequency::Weekly)),
            interval,
            byday,
            byweekno: None,
            bymonthday: text(obj, "bymonthday"),
            byyearday: None,
            description,
            opens_at,
            closes_at,
            schedule_link: None,
            attending_type: None,
            notes: None,
            attributes: Vec::new(),
            metadata: Vec::new(),
        })
    }

    fn service_at_location(&mut self, obj: &Map<String, Value>, place: usize, path: &str) -> Option<ServiceAtLocation> {
        let Some(loc) = obj.get("location").and_then(Value::as_object) else {
            self.notes.push(warning(format!("{path}.location"), "a service at a location with no location; left out"));
            return None;
        };
        let loc_path = format!("{path}.location");
        // A venue's id is the venue's, whichever service names it.
        let location_id = match loc.get("id") {
            Some(Value::String(s)) if !s.trim().is_empty() => Uuid::parse_str(s.trim())
                .unwrap_or_else(|_| Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:location:{}", s.trim()).as_bytes())),
            _ => Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:location:{}:{place}", self.service).as_bytes()),
        };
        let mut location = Location::new(location_id, LocationType::Physical);
        location.name = text(loc, "name").map(|n| one_line(&n));
        location.description = rich_text(loc, "description");
        match (number(loc.get("latitude")), number(loc.get("longitude"))) {
            // Many feeds write 0,0 for "not known".
            (Some(lat), Some(lon)) if lat == 0.0 && lon == 0.0 => {
                self.notes.push(warning(format!("{loc_path}.latitude"), "0, 0 is taken to mean no position; left out"));
            }
            (Some(lat), Some(lon)) if (-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) => {
                location.latitude = Some(lat);
                location.longitude = Some(lon);
            }
            (None, None) => {}
            (lat, lon) => self.notes.push(warning(
                format!("{loc_path}.latitude"),
                format!("({lat:?}, {lon:?}) is not a position; left out, and the venue is placed by its postcode if Kith knows it"),
            )),
        }
        for (i, a) in objects(loc, "physical_addresses", &loc_path, &mut self.notes) {
            let line = |key: &str| text(a, key).map(|t| one_line(&t)).unwrap_or_default();
            location.addresses.push(Address {
                id: self.id(a, "address", i),
                location_id: Some(location_id),
                attention: None,
                address_1: line("address_1"),
                address_2: text(a, "address_2"),
                city: line("city"),
                region: None,
                state_province: line("state_province"),
                postal_code: line("postal_code").to_uppercase(),
                country: text(a, "country").unwrap_or_else(|| "GB".into()),
                address_type: AddressType::Physical,
                attributes: vec![],
                metadata: vec![],
            });
        }
        for (i, a) in objects(loc, "accessibility_for_disabilities", &loc_path, &mut self.notes) {
            let Some(description) = rich_text(a, "accessibility") else { continue };
            location.accessibility.push(Accessibility {
                id: self.id(a, "accessibility", i),
                location_id: Some(location_id),
                description: Some(description),
                details: rich_text(a, "details"),
                url: None,
                attributes: vec![],
                metadata: vec![],
                extra: Extra::new(),
            });
        }
        let mut sal = ServiceAtLocation::new(self.id(obj, "service-at-location", place), location_id);
        sal.description = rich_text(obj, "description");
        for (i, schedule) in objects(obj, "regular_schedules", path, &mut self.notes) {
            let at = format!("{path}.regular_schedules[{i}]");
            if let Some(mut schedule) = self.schedule(schedule, &format!("schedule:{place}:{i}"), &at) {
                schedule.service_at_location_id = Some(sal.id);
                sal.schedules.push(schedule);
            }
        }
        sal.location = Some(location);
        Some(sal)
    }

    fn contact(
        &mut self,
        obj: &Map<String, Value>,
        place: usize,
        path: &str,
        kept: &mut Map<String, Value>,
    ) -> Contact {
        let id = self.id(obj, "contact", place);
        let mut phones = Vec::new();
        for (i, p) in objects(obj, "phones", path, &mut self.notes) {
            let Some(number) = text(p, "number") else { continue };
            phones.push(Phone { contact_id: Some(id), ..Phone::voice(self.id(p, "phone", i), number) });
        }
        // A contact's address that is not one is kept as published, as the service's is.
        let mut contact_kept = Map::new();
        let email = email_address(text(obj, "email"), path, &mut contact_kept, &mut self.notes);
        if let Some(raw) = contact_kept.remove("email_as_published") {
            kept.insert(format!("contact_{place}_email_as_published"), raw);
        }
        Contact {
            id,
            organization_id: None,
            service_id: Some(self.service),
            service_at_location_id: None,
            location_id: None,
            name: text(obj, "name"),
            title: text(obj, "title"),
            department: None,
            email,
            phones,
            attributes: vec![],
            metadata: vec![],
        }
    }

    /// Eligibility as v1 lists it: each entry's words, and the widest age range.
    fn eligibility(&mut self, obj: &Map<String, Value>, s: &mut Service, path: &str) {
        let mut words = Vec::new();
        let (mut min, mut max): (Option<f64>, Option<f64>) = (None, None);
        for (i, e) in objects(obj, "eligibilitys", path, &mut self.notes) {
            if let Some(w) = rich_text(e, "eligibility") {
                words.push(w);
            }
            let age = |key: &str| number(e.get(key)).filter(|a| (0.0..=130.0).contains(a));
            let (lo, hi) = (age("minimum_age"), age("maximum_age"));
            if let (Some(lo), Some(hi)) = (lo, hi)
                && hi < lo
            {
                self.notes.push(warning(
                    format!("{path}.eligibilitys[{i}]"),
                    format!("the maximum age {hi} is below the minimum age {lo}; the ages are left out"),
                ));
                continue;
            }
            min = match (min, lo) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            max = match (max, hi) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
        }
        if !words.is_empty() && s.eligibility_description.is_none() {
            s.eligibility_description = Some(words.join("; "));
        }
        if matches!((min, max), (Some(lo), Some(hi)) if hi < lo) {
            return;
        }
        s.minimum_age = s.minimum_age.or(min);
        s.maximum_age = s.maximum_age.or(max);
    }

    /// Taxonomy terms, each in a taxonomy named by its `vocabulary`.
    fn taxonomy_terms(&mut self, obj: &Map<String, Value>, s: &mut Service, path: &str) {
        for (i, link) in objects(obj, "service_taxonomys", path, &mut self.notes) {
            let Some(term) = link.get("taxonomy").and_then(Value::as_object) else { continue };
            let Some(name) = text(term, "name") else {
                self.notes.push(warning(format!("{path}.service_taxonomys[{i}]"), "a term with no name; left out"));
                continue;
            };
            let vocabulary = text(term, "vocabulary").unwrap_or_else(|| "ORUK v1 taxonomy".into());
            let taxonomy = Taxonomy {
                id: Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:vocabulary:{vocabulary}").as_bytes()),
                name: vocabulary.clone(),
                description: format!(
                    "Terms of the vocabulary {vocabulary}, as published in an Open Referral UK v1 feed"
                ),
                uri: None,
                version: None,
                metadata: vec![],
                extra: Map::new(),
            };
            let code = match term.get("id") {
                Some(Value::String(c)) if !c.trim().is_empty() => c.trim().to_owned(),
                Some(Value::Number(n)) => n.to_string(),
                _ => name.clone(),
            };
            let term_id = Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:term:{vocabulary}:{code}").as_bytes());
            if s.attributes.iter().any(|a| a.taxonomy_term_id == Some(term_id)) {
                continue;
            }
            let mut extra = Map::new();
            // The parent is named by its id alone and may not be in the feed: kept as
            // published, not linked.
            if let Some(parent) = term.get("parent").filter(|p| !p.is_null() && p.as_str() != Some("")) {
                extra.insert("oruk_v1_parent".into(), parent.clone());
            }
            s.attributes.push(Attribute {
                id: Uuid::new_v5(&KITH_NAMESPACE, format!("oruk-v1:term-link:{}:{term_id}", s.id).as_bytes()),
                link_id: Some(s.id),
                taxonomy_term_id: Some(term_id),
                link_type: Some("taxonomy".into()),
                link_entity: Some("service".into()),
                value: None,
                taxonomy_term: Some(TaxonomyTerm {
                    id: term_id,
                    code: Some(code),
                    name: name.clone(),
                    description: name,
                    parent_id: None,
                    taxonomy: Some(vocabulary),
                    taxonomy_detail: Some(taxonomy.clone()),
                    language: None,
                    taxonomy_id: Some(taxonomy.id),
                    term_uri: None,
                    metadata: vec![],
                    extra,
                }),
                metadata: vec![],
                extra: Map::new(),
            });
        }
    }
}
