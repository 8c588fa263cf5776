//! Kith's own demo directory: a deterministic, realistic set of community services in
//! Glasgow East, Fife and Sheffield, organised by a social-prescribing taxonomy of needs.
//!
//! The same seed always gives the same directory, id for id, so demo data, tests and
//! benchmarks agree. [`generate`] makes several hundred services by default; ask for more
//! and it keeps filling the same neighbourhoods (the benchmarks use 100,000).
//!
//! Phone numbers come from Ofcom's ranges reserved for drama, and web and email
//! addresses use `example.org`, so nothing here reaches a real person.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod geography;
pub mod needs;
pub mod places;
mod rng;
pub use rng::Rng;

use chrono::{DateTime, Duration, NaiveTime, Utc};
use kith_domain::hsds::{
    Accessibility, Address, AddressType, Attribute, Contact, CostOption, Language, Location, LocationType,
    Organization, Phone, Schedule, Service, ServiceArea, ServiceAtLocation, Taxonomy, TaxonomyTerm,
};
use kith_domain::serde_util::{Date, TimeOfDay};
use kith_domain::{DirectoryBatch, ServiceStatus};
use needs::{Activity, Mode, NEEDS, Need};
use places::{AREAS, Area, PLACES, Place, STREETS, VENUES};
use uuid::Uuid;

/// Ids Kith derives for demo records (UUID v5 in this namespace).
pub const DEMO_NAMESPACE: Uuid = Uuid::from_u128(0x4b69_7468_2d64_656d_6f2d_6e73_0000_0001);

/// The number of services `kith demo` loads.
pub const DEFAULT_SERVICES: usize = 450;

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub seed: u64,
    pub services: usize,
    /// "Now", for verification dates. Passed in so the output is reproducible.
    pub now: DateTime<Utc>,
}

impl DemoOptions {
    pub fn new(now: DateTime<Utc>) -> Self {
        DemoOptions { seed: 2026, services: DEFAULT_SERVICES, now }
    }
}

fn uuid(parts: &str) -> Uuid {
    Uuid::new_v5(&DEMO_NAMESPACE, parts.as_bytes())
}

fn slug(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.ends_with('-') && !out.is_empty() {
            out.push('-');
        }
    }
    out.trim_end_matches('-').to_owned()
}

/// The id of a need's taxonomy term (stable across seeds).
pub fn need_term_id(code: &str) -> Uuid {
    uuid(&format!("taxonomy-term:{code}"))
}

/// Kith's taxonomy of social-prescribing needs.
pub fn taxonomy() -> (Taxonomy, Vec<TaxonomyTerm>) {
    let taxonomy = Taxonomy {
        id: uuid("taxonomy:kith-needs"),
        name: "Kith social prescribing needs".into(),
        description: "What people come to social prescribing for, and the kinds of community service that help".into(),
        uri: None,
        version: Some("2026.1".into()),
        metadata: vec![],
        extra: Default::default(),
    };
    let term = |code: &str, name: &str, description: &str, parent: Option<Uuid>| TaxonomyTerm {
        id: need_term_id(code),
        code: Some(code.into()),
        name: name.into(),
        description: description.into(),
        parent_id: parent,
        taxonomy: Some(taxonomy.name.clone()),
        taxonomy_detail: None,
        language: Some("en".into()),
        taxonomy_id: Some(taxonomy.id),
        term_uri: None,
        metadata: vec![],
        extra: Default::default(),
    };
    let mut terms = Vec::new();
    for need in NEEDS {
        let need_id = need_term_id(need.code);
        terms.push(term(need.code, need.name, need.description, None));
        for a in need.activities {
            terms.push(term(a.code, a.name, a.about, Some(need_id)));
        }
    }
    (taxonomy, terms)
}

const DAYS: [(&str, &str); 7] = [
    ("MO", "Monday"),
    ("TU", "Tuesday"),
    ("WE", "Wednesday"),
    ("TH", "Thursday"),
    ("FR", "Friday"),
    ("SA", "Saturday"),
    ("SU", "Sunday"),
];

fn day_name(code: &str) -> &'static str {
    DAYS.iter().find(|(c, _)| *c == code).map_or("day", |(_, n)| n)
}

/// Opening times in plain English: "Tuesdays 10:00–12:00", "Monday to Friday 9:00–17:00".
fn describe_times(byday: &str, opens: u32, closes: u32, monthly: bool) -> String {
    let days: Vec<&str> = byday.split(',').collect();
    let hours = format!("{opens:02}:00–{closes:02}:00");
    if monthly {
        return format!("First {} of the month, {hours}", day_name(days[0]));
    }
    match days.as_slice() {
        [one] => format!("{}s {hours}", day_name(one)),
        ["MO", "TU", "WE", "TH", "FR"] => format!("Monday to Friday {hours}"),
        ["MO", "TU", "WE", "TH", "FR", "SA", "SU"] => format!("Every day {hours}"),
        many => {
            let names: Vec<String> = many.iter().map(|d| format!("{}s", day_name(d))).collect();
            let (last, rest) = names.split_last().map_or((String::new(), &[][..]), |(l, r)| (l.clone(), r));
            format!("{} and {last} {hours}", rest.join(", "))
        }
    }
}

struct Venue {
    location: Location,
    name: String,
}

fn venue(place: &Place, index: usize, rng: &mut Rng) -> Venue {
    let kind = VENUES[index % VENUES.len()];
    let name = format!("{} {kind}", place.name);
    let id = uuid(&format!("location:{}:{kind}", place.name));
    let mut l = Location::new(id, LocationType::Physical);
    l.name = Some(name.clone());
    l.latitude = Some(((place.lat + rng.jitter(0.008)) * 1e5).round() / 1e5);
    l.longitude = Some(((place.lon + rng.jitter(0.012)) * 1e5).round() / 1e5);
    l.description = Some(format!("{kind} in {}", place.name));
    l.transportation = Some(format!("Buses stop nearby on {}.", STREETS[(index + 3) % STREETS.len()]));
    let scotland = place.area.council_code.starts_with('S');
    let city = match place.area.key {
        "glasgow-east" => "Glasgow",
        "sheffield" => "Sheffield",
        _ => place.name,
    };
    let letters = b"ABDEFGHJLNPQRSTUWXYZ";
    let inward = format!(
        "{}{}{}",
        1 + index % 9,
        char::from(letters[rng.below(letters.len())]),
        char::from(letters[rng.below(letters.len())])
    );
    l.addresses.push(Address {
        id: uuid(&format!("address:{id}")),
        location_id: Some(id),
        attention: None,
        address_1: format!("{} {}", 1 + rng.below(180), STREETS[index % STREETS.len()]),
        address_2: Some(place.name.into()),
        city: city.into(),
        region: Some(place.area.council_name.into()),
        state_province: if scotland { "Scotland".into() } else { "England".into() },
        postal_code: format!("{} {inward}", place.district),
        country: "GB".into(),
        address_type: AddressType::Physical,
        attributes: vec![],
        metadata: vec![],
    });
    let features = ["Step-free access", "Accessible toilet", "Hearing loop", "Parking for blue badge holders"];
    for (i, feature) in features.iter().enumerate() {
        if rng.chance(0.55) {
            l.accessibility.push(Accessibility {
                id: uuid(&format!("accessibility:{id}:{i}")),
                location_id: Some(id),
                description: Some((*feature).into()),
                details: None,
                url: None,
                attributes: vec![],
                metadata: vec![],
                extra: Default::default(),
            });
        }
    }
    Venue { location: l, name }
}

fn organization(name: &str, area: &Area, phone: String) -> Organization {
    let id = uuid(&format!("organization:{name}"));
    let mut o = Organization::new(
        id,
        name,
        format!("A community organisation working across {} since {}.", area.name, 1975 + (id.as_u128() % 45) as u32),
    );
    let s = slug(name);
    o.website = Some(format!("https://{s}.example.org"));
    o.email = Some(format!("hello@{s}.example.org"));
    o.legal_status = Some("Registered charity".into());
    o.phones.push(Phone { organization_id: Some(id), ..Phone::voice(uuid(&format!("phone:{id}")), phone) });
    o
}

fn phone_number(area: &Area, rng: &mut Rng) -> String {
    format!("{}{:03}", area.phone_prefix, rng.below(1000))
}

fn term_attribute(service_id: Uuid, code: &str) -> Attribute {
    Attribute {
        id: uuid(&format!("attribute:{service_id}:{code}")),
        link_id: Some(service_id),
        taxonomy_term_id: Some(need_term_id(code)),
        link_type: Some("need".into()),
        link_entity: Some("service".into()),
        value: None,
        taxonomy_term: None,
        metadata: vec![],
        extra: Default::default(),
    }
}

/// Which organisation runs an area-wide service for a need.
fn area_org_name(need: &Need, area: &Area) -> String {
    match need.code {
        "money" | "housing" => format!("Citizens Advice {}", area.name),
        "carers" => format!("{} Carers Centre", area.name),
        "older-people" | "dementia" => format!("Age UK {}", area.name),
        "addiction" => format!("{} Recovery Network", area.name),
        "learning" | "employment" => format!("{} Community Learning Partnership", area.name),
        "mental-health" | "bereavement" => format!("{} Association for Mental Health", area.name),
        _ => format!("{} Voluntary Action", area.name),
    }
}

const LOCAL_ORGS: [&str; 5] = [
    "{place} Community Trust",
    "{place} Development Trust",
    "{place} Churches Together",
    "{place} Healthy Living Centre",
    "{place} Residents' Association",
];

struct Builder<'a> {
    opts: &'a DemoOptions,
    rng: Rng,
    batch: DirectoryBatch,
    made: usize,
}

impl Builder<'_> {
    #[allow(clippy::too_many_arguments)]
    fn service(
        &mut self,
        title: &str,
        need: &Need,
        activity: &Activity,
        org: &Organization,
        area: &Area,
        at: Option<&Venue>,
        covers: Option<(&str, &str)>,
    ) {
        let n = self.made;
        self.made += 1;
        let rng = &mut self.rng;
        let id = uuid(&format!("service:{}:{n}", self.opts.seed));
        let mut s = Service::new(id, title, ServiceStatus::Active);
        if rng.chance(0.03) {
            s.status = ServiceStatus::TemporarilyClosed;
            s.alert = Some("Closed for refurbishment; reopening next month.".into());
        }
        s.organization_id = Some(org.id);
        let where_ = match (at, activity.mode) {
            (Some(v), Mode::InPerson) => format!(" Meets at {}.", v.name),
            (_, Mode::Online) => " Takes place online, by video call; we help you join the first time.".to_owned(),
            (_, Mode::Phone) => " By phone: call us and we will call you back.".to_owned(),
            (None, Mode::InPerson) => String::new(),
        };
        s.description = Some(format!("{}{where_}", activity.about));
        let org_slug = slug(&org.name);
        if rng.chance(0.5) {
            s.url = Some(format!("https://{org_slug}.example.org/{}", slug(title)));
        }
        if rng.chance(0.6) {
            s.email = Some(format!("{}@{org_slug}.example.org", activity.code));
        }
        s.minimum_age = activity.min_age.map(f64::from);
        s.maximum_age = activity.max_age.map(f64::from);
        s.eligibility_description = Some(match (activity.min_age, activity.max_age) {
            (Some(min), Some(max)) => format!("For people aged {min} to {max}."),
            (Some(min), None) if min >= 50 => format!("For people aged {min} and over."),
            (Some(min), None) => format!("For adults and young people aged {min} and over."),
            _ => "Open to everyone.".into(),
        });
        s.application_process = Some(match activity.mode {
            Mode::InPerson if rng.chance(0.6) => {
                "Just turn up, or ask your GP practice or link worker to refer you.".into()
            }
            Mode::InPerson => {
                "Call or email to book a place; referrals from GP practices and link workers welcome.".into()
            }
            Mode::Online => "Register by email or phone and we will send you a link.".into(),
            Mode::Phone => "Call us, or ask your GP practice or link worker to refer you.".into(),
        });
        let cost = activity.cost + u32::from(activity.cost > 0 && rng.chance(0.3));
        s.fees_description = Some(if cost == 0 {
            "Free".into()
        } else {
            format!("£{cost} per session; free for anyone who cannot pay")
        });
        s.cost_options.push(CostOption {
            id: uuid(&format!("cost:{id}")),
            service_id: Some(id),
            valid_from: None,
            valid_to: None,
            option: Some(if cost == 0 { "Free".into() } else { "Per session".into() }),
            currency: Some("GBP".into()),
            amount: Some(f64::from(cost)),
            amount_description: Some(if cost == 0 { "Free".into() } else { format!("£{cost} per session") }),
            attributes: vec![],
            metadata: vec![],
        });

        // Opening times: the activity's usual slot, varied a little.
        let shift = if activity.opens >= 10 && activity.closes <= 20 { rng.below(2) as u32 } else { 0 };
        let (opens, closes) = (activity.opens + shift, activity.closes + shift);
        let byday = if !activity.day.contains(',') && rng.chance(0.35) {
            DAYS[rng.below(5)].0.to_owned()
        } else {
            activity.day.to_owned()
        };
        let monthly = !byday.contains(',') && rng.chance(0.12);
        let mut schedule = Schedule::weekly(
            uuid(&format!("schedule:{id}")),
            &byday,
            TimeOfDay::hm(opens, 0).unwrap_or(TimeOfDay(NaiveTime::MIN)),
            TimeOfDay::hm(closes.min(23), 0).unwrap_or(TimeOfDay(NaiveTime::MIN)),
        );
        if monthly {
            schedule.freq = Some(kith_domain::hsds::Frequency::Monthly);
            schedule.byday = Some(format!("1{byday}"));
        }
        schedule.service_id = Some(id);
        schedule.description = Some(describe_times(&byday, opens, closes, monthly));
        schedule.attending_type = Some(activity.mode.label().into());
        s.schedules.push(schedule);

        s.phones.push(Phone {
            service_id: Some(id),
            ..Phone::voice(uuid(&format!("phone:{id}")), phone_number(area, rng))
        });
        if rng.chance(0.4) {
            let first = ["Ann", "Mo", "Priya", "Tom", "Agnieszka", "Craig", "Fatima", "Linda", "Jamal", "Eilidh"];
            let role = ["Group leader", "Volunteer coordinator", "Project worker", "Development officer"];
            s.contacts.push(Contact {
                id: uuid(&format!("contact:{id}")),
                organization_id: None,
                service_id: Some(id),
                service_at_location_id: None,
                location_id: None,
                name: Some(first[rng.below(first.len())].into()),
                title: Some(role[rng.below(role.len())].into()),
                department: None,
                email: s.email.clone(),
                phones: vec![],
                attributes: vec![],
                metadata: vec![],
            });
        }
        let mut languages = vec![("English", "en")];
        if activity.code == "esol" || rng.chance(0.12) {
            let others = [
                ("Urdu", "ur"),
                ("Polish", "pl"),
                ("Arabic", "ar"),
                ("Slovak", "sk"),
                ("Punjabi", "pa"),
                ("Romanian", "ro"),
            ];
            languages.push(others[rng.below(others.len())]);
        }
        for (name, code) in languages {
            s.languages.push(Language {
                id: uuid(&format!("language:{id}:{code}")),
                service_id: Some(id),
                location_id: None,
                phone_id: None,
                name: Some(name.into()),
                code: Some(code.into()),
                note: None,
                attributes: vec![],
                metadata: vec![],
            });
        }
        s.attributes.push(term_attribute(id, need.code));
        s.attributes.push(term_attribute(id, activity.code));
        for also in activity.also {
            s.attributes.push(term_attribute(id, also));
        }
        if let Some((extent, name)) = covers {
            s.service_areas.push(ServiceArea {
                id: uuid(&format!("service-area:{id}")),
                service_id: Some(id),
                name: Some(name.into()),
                description: Some(format!("Everyone living in {name}")),
                extent: Some(extent.into()),
                extent_type: Some("kith:area".into()),
                uri: None,
                attributes: vec![],
                metadata: vec![],
                extra: Default::default(),
            });
        }
        if let (Some(v), Mode::InPerson) = (at, activity.mode) {
            s.service_at_locations.push(ServiceAtLocation {
                service_id: Some(id),
                ..ServiceAtLocation::new(uuid(&format!("service-at-location:{id}")), v.location.id)
            });
        }
        // Some listings were checked last week, some not for over a year.
        let verified = self.opts.now - Duration::days(rng.below(420) as i64) - Duration::minutes(rng.below(600) as i64);
        s.last_verified_at = Some(verified);
        s.last_verified_by = Some(org.name.clone());
        s.assured_date = Some(Date(verified.date_naive()));
        s.last_modified = Some(verified);
        self.batch.add_service(s);
    }
}

/// Generates the demo directory.
pub fn generate(opts: &DemoOptions) -> DirectoryBatch {
    let mut b = Builder { opts, rng: Rng::new(opts.seed), batch: DirectoryBatch::new(), made: 0 };
    let (taxonomy, terms) = taxonomy();
    b.batch.add_taxonomy(taxonomy);
    for t in terms {
        b.batch.add_taxonomy_term(t);
    }

    // Venues and local organisations for every neighbourhood.
    let mut venues: Vec<Vec<Venue>> = Vec::new();
    let mut local_orgs: Vec<Vec<Organization>> = Vec::new();
    for (p, place) in PLACES.iter().enumerate() {
        let start = b.rng.below(VENUES.len());
        let vs: Vec<Venue> = (0..4).map(|i| venue(place, start + i + p, &mut b.rng)).collect();
        for v in &vs {
            b.batch.add_location(v.location.clone());
        }
        venues.push(vs);
        let orgs: Vec<Organization> = LOCAL_ORGS
            .iter()
            .map(|t| {
                let phone = phone_number(place.area, &mut b.rng);
                organization(&t.replace("{place}", place.name), place.area, phone)
            })
            .collect();
        for o in &orgs {
            b.batch.add_organization(o.clone());
        }
        local_orgs.push(orgs);
    }

    // Area-wide services: one per "{area}" activity per area, covering the council area.
    'areas: for area in AREAS {
        let home = PLACES.iter().position(|p| std::ptr::eq(p.area, area)).unwrap_or(0);
        for need in NEEDS {
            for activity in need.activities {
                for title in activity.titles.iter().filter(|t| t.contains("{area}")) {
                    if b.made >= opts.services {
                        break 'areas;
                    }
                    let org_name = area_org_name(need, area);
                    let phone = phone_number(area, &mut b.rng);
                    let org = organization(&org_name, area, phone);
                    b.batch.add_organization(org.clone());
                    let v = venues.get(home).and_then(|vs| vs.first());
                    let title = title.replace("{area}", area.name).replace("{place}", PLACES[home].name);
                    b.service(&title, need, activity, &org, area, v, Some((area.council_code, area.council_name)));
                }
            }
        }
    }

    // Neighbourhood services, round the places, until there are enough.
    let local: Vec<(&Need, &Activity, &str)> = NEEDS
        .iter()
        .flat_map(|n| n.activities.iter().map(move |a| (n, a)))
        .flat_map(|(n, a)| a.titles.iter().filter(|t| !t.contains("{area}")).map(move |t| (n, a, *t)))
        .collect();
    let mut round = 0usize;
    while b.made < opts.services && !local.is_empty() {
        for (p, place) in PLACES.iter().enumerate() {
            if b.made >= opts.services {
                break;
            }
            let (need, activity, title) = local[(p * 7 + round * 13 + b.rng.below(5)) % local.len()];
            let mut title = title.replace("{place}", place.name);
            if round >= local.len() / 2 {
                title = format!("{title} ({})", round / (local.len() / 2) + 1);
            }
            let org = &local_orgs[p][b.rng.below(LOCAL_ORGS.len())].clone();
            let v = &venues[p][b.rng.below(4)];
            let v = Venue { location: v.location.clone(), name: v.name.clone() };
            b.service(&title, need, activity, org, place.area, Some(&v), None);
        }
        round += 1;
    }
    b.batch
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 25, 9, 0, 0).unwrap()
    }

    #[test]
    fn the_same_seed_gives_the_same_directory() {
        let a = generate(&DemoOptions::new(now()));
        let b = generate(&DemoOptions::new(now()));
        assert_eq!(a, b);
        assert_eq!(a.services.len(), DEFAULT_SERVICES);
    }

    #[test]
    fn every_need_has_many_kinds_of_service_in_every_area() {
        let batch = generate(&DemoOptions::new(now()));
        for need in NEEDS {
            let term = need_term_id(need.code);
            let tagged: Vec<&Service> = batch
                .services
                .iter()
                .filter(|s| s.attributes.iter().any(|a| a.taxonomy_term_id == Some(term)))
                .collect();
            assert!(tagged.len() >= 8, "{} has only {} services", need.code, tagged.len());
            let distinct_names: std::collections::HashSet<_> = tagged.iter().map(|s| s.name.as_str()).collect();
            assert!(distinct_names.len() >= 6, "{} has too little variety", need.code);
        }
    }

    #[test]
    fn every_record_passes_validation() {
        let batch = generate(&DemoOptions::new(now()));
        for s in &batch.services {
            let mut c = kith_domain::validate::Checker::new(s.name.clone());
            c.service(s);
            assert!(c.problems.is_empty(), "{:?}", c.problems);
        }
        for l in &batch.locations {
            let mut c = kith_domain::validate::Checker::new("location");
            c.location(l);
            assert!(c.problems.is_empty(), "{:?}", c.problems);
        }
    }

    #[test]
    fn scales_to_many_services_with_unique_ids() {
        let batch = generate(&DemoOptions { seed: 7, services: 5000, now: now() });
        assert_eq!(batch.services.len(), 5000);
        let ids: std::collections::HashSet<_> = batch.services.iter().map(|s| s.id).collect();
        assert_eq!(ids.len(), 5000);
    }

    #[test]
    fn opening_times_read_as_plain_english() {
        assert_eq!(describe_times("TU", 10, 12, false), "Tuesdays 10:00–12:00");
        assert_eq!(describe_times("MO,TU,WE,TH,FR", 9, 17, false), "Monday to Friday 09:00–17:00");
        assert_eq!(describe_times("MO,TH", 10, 15, false), "Mondays and Thursdays 10:00–15:00");
        assert_eq!(describe_times("WE", 10, 12, true), "First Wednesday of the month, 10:00–12:00");
    }
}
