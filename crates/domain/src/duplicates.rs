//! The same group or service stated by two sources under different ids.
//!
//! Records are matched by keys, never compared pair by pair, so finding duplicates in a
//! directory of a million services is a few hash lookups per record: organisations by
//! charity number, company number, or normalised name with a postcode; services by
//! organisation, normalised name and venue or area. A *certain* match (the same
//! registered number; the same organisation, name and venue) is merged without asking; a
//! *likely* one waits for a curator, whose decision is kept.

use crate::hsds::{Organization, Service};
use crate::postcode::Postcode;
use crate::provenance::RecordKind;
use serde::{Deserialize, Serialize};
use std::collections::{HashMap, HashSet};
use uuid::Uuid;

/// A name as duplicates are matched by: lower case, `&` as "and", no punctuation, no
/// leading "the", no trailing legal form ("ltd", "limited", "cic", "cio", "charity"),
/// single spaces. "The Parkhead Trust Ltd." and "parkhead  trust" are the same.
pub fn normalise_name(name: &str) -> String {
    let spaced: String = name
        .to_lowercase()
        .replace('&', " and ")
        .chars()
        .map(|c| if c.is_alphanumeric() || c.is_whitespace() { c } else { ' ' })
        .collect();
    let mut words: Vec<&str> = spaced.split_whitespace().collect();
    if words.len() > 1 && words[0] == "the" {
        words.remove(0);
    }
    while words.len() > 1 && words.last().is_some_and(|w| ["ltd", "limited", "cic", "cio", "charity"].contains(w)) {
        words.pop();
    }
    words.join(" ")
}

/// Charity registers (org-id.guide schemes) whose numbers identify one charity.
const CHARITY_SCHEMES: [&str; 3] = ["GB-CHC", "GB-SC", "GB-NIC"];
/// Companies House.
const COMPANY_SCHEME: &str = "GB-COH";

/// A registered number an organisation states, in a form two sources agree on.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Registration {
    Charity { scheme: String, number: String },
    Company(String),
}

impl Registration {
    fn reason(&self) -> String {
        match self {
            Registration::Charity { number, .. } => format!("Same charity number, {number}"),
            Registration::Company(number) => format!("Same company number, {number}"),
        }
    }
}

/// An organisation's charity and company numbers, from its HSDS `organization_identifiers`.
pub fn registrations(org: &Organization) -> Vec<Registration> {
    let mut out = Vec::new();
    for i in &org.organization_identifiers {
        let number: String = i.identifier.split_whitespace().collect::<String>().to_uppercase();
        if number.is_empty() {
            continue;
        }
        match i.identifier_scheme.as_deref().map(str::to_uppercase) {
            Some(s) if CHARITY_SCHEMES.contains(&s.as_str()) => {
                out.push(Registration::Charity { scheme: s, number });
            }
            Some(s) if s == COMPANY_SCHEME => out.push(Registration::Company(number)),
            _ => {}
        }
    }
    out
}

/// The postcodes of an organisation's own addresses.
pub fn organization_postcodes(org: &Organization) -> Vec<String> {
    org.locations
        .iter()
        .flat_map(|l| &l.addresses)
        .filter_map(|a| Postcode::parse(&a.postal_code).ok())
        .map(|p| p.as_str().to_owned())
        .collect()
}

/// A place a service is given, and whether its source stated it.
pub type Place = (String, bool);

/// Where a service is given: each venue by its postcode (or, with none, by its id), and
/// each area it covers by code. A place is *stated* when its source gave it; the whole
/// area Kith gives a service with no venue (`--area`) is a guess, so two services matched
/// only by it are likely duplicates, never certain ones.
pub fn service_places(service: &Service) -> Vec<Place> {
    let mut out = Vec::new();
    for sal in &service.service_at_locations {
        let postcode = sal
            .location
            .as_ref()
            .into_iter()
            .flat_map(|l| &l.addresses)
            .find_map(|a| Postcode::parse(&a.postal_code).ok());
        match (postcode, sal.location_id) {
            (Some(p), _) => out.push((format!("postcode {}", p.as_str()), true)),
            (None, Some(id)) => out.push((format!("venue {id}"), true)),
            (None, None) => {}
        }
    }
    for area in &service.service_areas {
        if let Some(code) = area.extent.as_deref().map(str::trim).filter(|c| !c.is_empty()) {
            let placed = area.id == Uuid::new_v5(&service.id, format!("kith:whole-area:{code}").as_bytes());
            out.push((format!("area {}", code.to_uppercase()), !placed));
        }
    }
    out.sort_unstable();
    out.dedup_by(|later, first| later.0 == first.0);
    out
}

/// Two records that may be one. `a` sorts before `b`; merging keeps `a`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Candidate {
    pub kind: RecordKind,
    pub a: Uuid,
    pub b: Uuid,
    /// Why they match, for the curator.
    pub reason: String,
    /// Merged without asking: the same registered number, or the same organisation, name
    /// and venue.
    pub certain: bool,
}

impl Candidate {
    fn new(kind: RecordKind, x: Uuid, y: Uuid, reason: String, certain: bool) -> Candidate {
        let (a, b) = if x < y { (x, y) } else { (y, x) };
        Candidate { kind, a, b, reason, certain }
    }

    /// The pair's id: the same two records always give the same id, in either order.
    pub fn pair_id(&self) -> Uuid {
        pair_id(self.kind, self.a, self.b)
    }
}

/// The id of the pair of `x` and `y`, in either order.
pub fn pair_id(kind: RecordKind, x: Uuid, y: Uuid) -> Uuid {
    let (a, b) = if x < y { (x, y) } else { (y, x) };
    Uuid::new_v5(&a, format!("kith:duplicate:{}:{b}", kind.as_str()).as_bytes())
}

/// Where a pair of likely duplicates stands. A pair moves once, from waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PairState {
    Waiting,
    Merged,
    KeptApart,
}

impl PairState {
    pub const ALL: [PairState; 3] = [PairState::Waiting, PairState::Merged, PairState::KeptApart];

    pub fn as_str(self) -> &'static str {
        match self {
            PairState::Waiting => "waiting",
            PairState::Merged => "merged",
            PairState::KeptApart => "kept_apart",
        }
    }

    pub fn parse(s: &str) -> Option<PairState> {
        PairState::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// Only a waiting pair is decided, and only once.
    pub fn can_become(self, to: PairState) -> bool {
        self == PairState::Waiting && to != PairState::Waiting
    }
}

/// A pair as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DuplicatePair {
    pub id: Uuid,
    pub kind: RecordKind,
    pub a: Uuid,
    pub b: Uuid,
    pub reason: String,
    pub state: PairState,
    pub found_at: chrono::DateTime<chrono::Utc>,
    pub decided_by: Option<String>,
    pub decided_at: Option<chrono::DateTime<chrono::Utc>>,
    pub note: Option<String>,
}

/// Collects records and groups them by their keys. Add every organisation and service,
/// then ask for the candidates: the work grows with the records, not with their pairs.
#[derive(Debug, Default)]
pub struct Detector {
    org_registrations: HashMap<Registration, Vec<Uuid>>,
    org_names: HashMap<Uuid, String>,
    org_postcodes: HashMap<Uuid, HashSet<String>>,
    /// Each service's id, organisation as stated, name and places.
    services: Vec<(Uuid, Option<Uuid>, String, Vec<Place>)>,
}

/// A service and the organisation that runs it.
type Run = (Uuid, Option<Uuid>);

/// Finds the group a record was merged into, following merges of merges.
fn root(merged: &HashMap<Uuid, Uuid>, mut id: Uuid) -> Uuid {
    while let Some(&to) = merged.get(&id) {
        if to == id {
            break;
        }
        id = to;
    }
    id
}

/// Each record of a group paired with the group's first: a group of n gives n - 1 pairs.
fn anchor_pairs(ids: &mut Vec<Uuid>) -> impl Iterator<Item = (Uuid, Uuid)> + '_ {
    ids.sort_unstable();
    ids.dedup();
    let first = ids.first().copied();
    ids.iter().skip(1).filter_map(move |b| first.map(|a| (a, *b)))
}

impl Detector {
    pub fn new() -> Detector {
        Detector::default()
    }

    pub fn add_organization(&mut self, org: &Organization) {
        for r in registrations(org) {
            self.org_registrations.entry(r).or_default().push(org.id);
        }
        let name = normalise_name(&org.name);
        if !name.is_empty() {
            self.org_names.insert(org.id, name);
        }
        let postcodes = organization_postcodes(org);
        if !postcodes.is_empty() {
            self.org_postcodes.entry(org.id).or_default().extend(postcodes);
        }
    }

    /// A service, and its venues' postcodes as places its organisation is found at.
    pub fn add_service(&mut self, service: &Service) {
        let places = service_places(service);
        if let Some(org) = service.organization_id {
            let postcodes = places.iter().filter_map(|(p, _)| p.strip_prefix("postcode ")).map(str::to_owned);
            self.org_postcodes.entry(org).or_default().extend(postcodes);
        }
        let name = normalise_name(&service.name);
        if !name.is_empty() {
            self.services.push((service.id, service.organization_id, name, places));
        }
    }

    /// Every candidate pair: organisations first, then services, each certain pair
    /// before the likely ones. Services are matched as if the certain organisation
    /// matches were already merged, so one pass finds both.
    pub fn candidates(self) -> Vec<Candidate> {
        let mut out = Vec::new();
        let org = RecordKind::Organization;
        // Certain: the same registered number.
        let mut org_merged: HashMap<Uuid, Uuid> = HashMap::new();
        let mut registrations: Vec<_> = self.org_registrations.into_iter().collect();
        registrations.sort_unstable_by_key(|(_, ids)| ids.iter().min().copied());
        for (registration, mut ids) in registrations {
            for (a, b) in anchor_pairs(&mut ids) {
                let (ra, rb) = (root(&org_merged, a), root(&org_merged, b));
                if ra == rb {
                    continue;
                }
                let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
                org_merged.insert(gone, keep);
                out.push(Candidate::new(org, keep, gone, registration.reason(), true));
            }
        }
        // Likely: the same name at the same postcode.
        let mut by_name_postcode: HashMap<(&str, &str), Vec<Uuid>> = HashMap::new();
        for (id, postcodes) in &self.org_postcodes {
            let Some(name) = self.org_names.get(id) else { continue };
            for p in postcodes {
                by_name_postcode.entry((name.as_str(), p.as_str())).or_default().push(*id);
            }
        }
        let mut likely: HashMap<(Uuid, Uuid), String> = HashMap::new();
        for ((name, postcode), mut ids) in by_name_postcode {
            for (a, b) in anchor_pairs(&mut ids) {
                if root(&org_merged, a) != root(&org_merged, b) {
                    likely.entry((a, b)).or_insert_with(|| format!("Same name, “{name}”, at {postcode}"));
                }
            }
        }
        let mut likely: Vec<_> = likely.into_iter().collect();
        likely.sort_unstable();
        out.extend(likely.into_iter().map(|((a, b), reason)| Candidate::new(org, a, b, reason, false)));

        // Services, their organisations as they will be after merging.
        let service = RecordKind::Service;
        let mut certain: HashMap<(Uuid, &str, &str), Vec<Uuid>> = HashMap::new();
        let mut same_place: HashMap<(&str, &str), Vec<Run>> = HashMap::new();
        for (id, organization, name, places) in &self.services {
            let organization = organization.map(|o| root(&org_merged, o));
            for (place, stated) in places {
                if let Some(o) = organization
                    && *stated
                {
                    certain.entry((o, name.as_str(), place.as_str())).or_default().push(*id);
                }
                same_place.entry((name.as_str(), place.as_str())).or_default().push((*id, organization));
            }
        }
        let mut service_merged: HashMap<Uuid, Uuid> = HashMap::new();
        let mut certain: Vec<_> = certain.into_iter().collect();
        certain.sort_unstable_by_key(|((o, n, p), _)| (*o, *n, *p));
        for ((_, name, place), mut ids) in certain {
            for (a, b) in anchor_pairs(&mut ids) {
                let (ra, rb) = (root(&service_merged, a), root(&service_merged, b));
                if ra == rb {
                    continue;
                }
                let (keep, gone) = if ra < rb { (ra, rb) } else { (rb, ra) };
                service_merged.insert(gone, keep);
                let reason = format!("Same organisation and name, “{name}”, at {place}");
                out.push(Candidate::new(service, keep, gone, reason, true));
            }
        }
        let mut likely: HashMap<(Uuid, Uuid), String> = HashMap::new();
        for ((name, place), mut members) in same_place {
            members.sort_unstable();
            members.dedup();
            let Some(&(first, first_org)) = members.first() else { continue };
            for &(other, other_org) in &members[1..] {
                if root(&service_merged, first) == root(&service_merged, other) {
                    continue;
                }
                let whose = if first_org == other_org { "the same organisation" } else { "different organisations" };
                likely
                    .entry((first, other))
                    .or_insert_with(|| format!("Same name, “{name}”, at {place}, from {whose}"));
            }
        }
        let mut likely: Vec<_> = likely.into_iter().collect();
        likely.sort_unstable();
        out.extend(likely.into_iter().map(|((a, b), reason)| Candidate::new(service, a, b, reason, false)));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ServiceStatus;
    use crate::hsds::{Address, AddressType, Location, LocationType, OrganizationIdentifier, ServiceAtLocation};

    fn id(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn org(n: u128, name: &str, ids: &[(&str, &str)]) -> Organization {
        let mut o = Organization::new(id(n), name, "");
        for (i, (scheme, number)) in ids.iter().enumerate() {
            o.organization_identifiers.push(OrganizationIdentifier {
                id: id(n * 100 + i as u128),
                organization_id: Some(id(n)),
                identifier_scheme: Some((*scheme).into()),
                identifier_type: "Number".into(),
                identifier: (*number).into(),
                attributes: vec![],
                metadata: vec![],
            });
        }
        o
    }

    fn at(n: u128, postcode: &str) -> Location {
        let mut l = Location::new(id(n), LocationType::Physical);
        l.addresses.push(Address {
            id: id(n + 1),
            location_id: Some(id(n)),
            attention: None,
            address_1: "1 High Street".into(),
            address_2: None,
            city: "Bristol".into(),
            region: None,
            state_province: String::new(),
            postal_code: postcode.into(),
            country: "GB".into(),
            address_type: AddressType::Physical,
            attributes: vec![],
            metadata: vec![],
        });
        l
    }

    fn service(n: u128, name: &str, org: u128, venue: Option<Location>) -> Service {
        let mut s = Service::new(id(n), name, ServiceStatus::Active);
        s.organization_id = Some(id(org));
        if let Some(l) = venue {
            let mut sal = ServiceAtLocation::new(id(n + 5000), l.id);
            sal.location = Some(l);
            s.service_at_locations.push(sal);
        }
        s
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(normalise_name("The Parkhead Trust Ltd."), "parkhead trust");
        assert_eq!(normalise_name("  parkhead   TRUST "), "parkhead trust");
        assert_eq!(normalise_name("Knit & Natter"), "knit and natter");
        assert_eq!(normalise_name("Age UK Bristol (Charity)"), "age uk bristol");
        assert_eq!(normalise_name("Food Hub CIC Limited"), "food hub");
        assert_eq!(normalise_name("St. Paul's Learning Centre CIO"), "st paul s learning centre");
        assert_eq!(normalise_name("The"), "the", "a name that is only a leading word keeps it");
        assert_eq!(normalise_name("Charity"), "charity");
    }

    #[test]
    fn registered_numbers_are_read_from_their_schemes() {
        let o = org(1, "A", &[("GB-CHC", " 1100 001"), ("GB-COH", "sc123456"), ("XI-OTHER", "9")]);
        assert_eq!(
            registrations(&o),
            [
                Registration::Charity { scheme: "GB-CHC".into(), number: "1100001".into() },
                Registration::Company("SC123456".into())
            ]
        );
    }

    #[test]
    fn the_same_charity_number_is_certain_and_a_name_at_a_postcode_likely() {
        let mut d = Detector::new();
        d.add_organization(&org(1, "Parkhead Trust", &[("GB-CHC", "1100001")]));
        d.add_organization(&org(2, "The Parkhead Trust Ltd", &[("GB-CHC", "1100001")]));
        d.add_organization(&org(3, "Knit & Natter", &[]));
        d.add_organization(&org(4, "Knit and Natter", &[]));
        d.add_organization(&org(5, "Knit and Natter", &[]));
        d.add_service(&service(10, "Knitting", 3, Some(at(100, "bs1 1ad"))));
        d.add_service(&service(11, "Knitting circle", 4, Some(at(101, "BS1 1AD"))));
        d.add_service(&service(12, "Knitting", 5, Some(at(102, "BS2 0AA"))));
        let found = d.candidates();
        let orgs: Vec<_> = found.iter().filter(|c| c.kind == RecordKind::Organization).collect();
        assert_eq!(orgs.len(), 2, "{orgs:?}");
        assert_eq!((orgs[0].a, orgs[0].b, orgs[0].certain), (id(1), id(2), true));
        assert_eq!(orgs[0].reason, "Same charity number, 1100001");
        assert_eq!((orgs[1].a, orgs[1].b, orgs[1].certain), (id(3), id(4), false), "not 5, elsewhere");
    }

    #[test]
    fn services_of_one_organisation_with_one_name_at_one_venue_are_certain() {
        let mut d = Detector::new();
        d.add_organization(&org(1, "Parkhead Trust", &[("GB-COH", "01234567")]));
        d.add_organization(&org(2, "Parkhead Trust", &[("GB-COH", "01234567")]));
        d.add_organization(&org(3, "Other Group", &[]));
        // Both sources' organisations will be one, so their walks at one venue are one.
        d.add_service(&service(10, "Tollcross Walk", 1, Some(at(100, "G31 4QA"))));
        d.add_service(&service(11, "The Tollcross Walk", 2, Some(at(200, "G31 4QA"))));
        d.add_service(&service(12, "Tollcross walk", 1, Some(at(201, "G31 4QA"))));
        // Another organisation's walk of that name there: likely, not certain.
        d.add_service(&service(13, "Tollcross Walk", 3, Some(at(202, "G31 4QA"))));
        // The same walk elsewhere is another service.
        d.add_service(&service(14, "Tollcross Walk", 1, Some(at(203, "G32 8RR"))));
        let services: Vec<_> = d.candidates().into_iter().filter(|c| c.kind == RecordKind::Service).collect();
        let pairs: Vec<_> = services.iter().map(|c| (c.a, c.b, c.certain)).collect();
        assert_eq!(pairs, [(id(10), id(11), true), (id(10), id(12), true), (id(10), id(13), false)]);
    }

    #[test]
    fn services_with_no_venue_match_by_area_certainly_only_where_their_source_gave_it() {
        let Ok(area) = crate::geo::WholeArea::parse("E06000023=Bristol") else { panic!("a whole area") };
        let mut stated = Detector::new();
        let mut placed = Detector::new();
        for n in [10, 11] {
            let mut s = service(n, "Befriending", 1, None);
            let mut given = area.service_area(s.id);
            given.id = id(n + 900);
            s.service_areas.push(given);
            stated.add_service(&s);
            let mut s = service(n, "Befriending", 1, None);
            s.service_areas.push(area.service_area(s.id));
            placed.add_service(&s);
        }
        let found = stated.candidates();
        assert_eq!(found.len(), 1);
        assert!(found[0].certain);
        assert_eq!(found[0].reason, "Same organisation and name, “befriending”, at area E06000023");
        let found = placed.candidates();
        assert_eq!(found.len(), 1);
        assert!(!found[0].certain, "Kith's own guess at the area is not enough to merge");
        assert_eq!(found[0].reason, "Same name, “befriending”, at area E06000023, from the same organisation");
    }

    #[test]
    fn pairs_have_one_id_in_either_order_and_states_move_once() {
        assert_eq!(pair_id(RecordKind::Service, id(1), id(2)), pair_id(RecordKind::Service, id(2), id(1)));
        assert_ne!(pair_id(RecordKind::Service, id(1), id(2)), pair_id(RecordKind::Organization, id(1), id(2)));
        for s in PairState::ALL {
            assert_eq!(PairState::parse(s.as_str()), Some(s));
        }
        assert!(PairState::Waiting.can_become(PairState::KeptApart));
        assert!(!PairState::KeptApart.can_become(PairState::Merged));
        assert!(!PairState::Merged.can_become(PairState::Waiting));
    }
}
