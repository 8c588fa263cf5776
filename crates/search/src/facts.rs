//! What the index needs to know about a service, read from its nested HSDS document.
//! Pure functions, so the rules are tested without an index.

use kith_domain::geo::Point;
use kith_domain::hsds::Service;

/// Ways of taking part.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Attending {
    InPerson,
    Online,
    Phone,
}

impl Attending {
    pub const ALL: [Attending; 3] = [Attending::InPerson, Attending::Online, Attending::Phone];

    pub fn as_str(self) -> &'static str {
        match self {
            Attending::InPerson => "in_person",
            Attending::Online => "online",
            Attending::Phone => "phone",
        }
    }

    pub fn parse(s: &str) -> Option<Attending> {
        let s = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        match s.as_str() {
            "in_person" | "venue" | "inperson" | "face_to_face" => Some(Attending::InPerson),
            "online" | "virtual" | "video" => Some(Attending::Online),
            "phone" | "telephone" => Some(Attending::Phone),
            _ => None,
        }
    }

    fn from_text(text: &str) -> Option<Attending> {
        let t = text.to_ascii_lowercase();
        if t.contains("person") || t.contains("venue") {
            Some(Attending::InPerson)
        } else if t.contains("online") || t.contains("virtual") || t.contains("video") {
            Some(Attending::Online)
        } else if t.contains("phone") {
            Some(Attending::Phone)
        } else {
            None
        }
    }
}

/// Accessibility features people filter by, recognised in locations' descriptions.
pub const ACCESSIBILITY: [(&str, &[&str]); 4] = [
    ("step_free", &["step-free", "step free", "wheelchair", "level access", "ramp"]),
    ("accessible_toilet", &["accessible toilet", "disabled toilet", "changing places"]),
    ("hearing_loop", &["hearing loop", "induction loop"]),
    ("blue_badge_parking", &["blue badge", "disabled parking"]),
];

/// A weekly opening: day 0 = Monday, minutes from midnight.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Slot {
    pub day: u8,
    pub opens: u16,
    pub closes: u16,
}

impl Slot {
    pub fn encode(self) -> u64 {
        (u64::from(self.day) << 22) | (u64::from(self.opens) << 11) | u64::from(self.closes)
    }

    pub fn decode(v: u64) -> Slot {
        Slot { day: ((v >> 22) & 0x7) as u8, opens: ((v >> 11) & 0x7ff) as u16, closes: (v & 0x7ff) as u16 }
    }

    /// Open at some point in `from..to` minutes.
    pub fn overlaps(self, from: u16, to: u16) -> bool {
        self.opens < to && self.closes > from
    }
}

/// Evenings start at half past five.
pub const EVENING_FROM: u16 = 17 * 60 + 30;

const DAYS: [&str; 7] = ["MO", "TU", "WE", "TH", "FR", "SA", "SU"];

/// Reads "MO,WE" or "1TU" (the first Tuesday of the month) into day numbers.
fn days(byday: &str) -> Vec<u8> {
    byday
        .split(',')
        .filter_map(|d| {
            let d = d.trim().trim_start_matches(|c: char| c.is_ascii_digit() || c == '-' || c == '+');
            DAYS.iter().position(|x| x.eq_ignore_ascii_case(d)).and_then(|p| u8::try_from(p).ok())
        })
        .collect()
}

/// Packs a point into a u64: 32 bits each of latitude and longitude, to about a metre.
pub fn encode_point(p: Point) -> u64 {
    let lat = ((p.lat + 90.0) * 1e7 / 180.0 * 2.0).round() as u64 & 0xffff_ffff;
    let lon = ((p.lon + 180.0) * 1e7 / 360.0 * 4.0).round() as u64 & 0xffff_ffff;
    (lat << 32) | lon
}

pub fn decode_point(v: u64) -> Point {
    let lat = (v >> 32) as f64 / 2.0 * 180.0 / 1e7 - 90.0;
    let lon = (v & 0xffff_ffff) as f64 / 4.0 * 360.0 / 1e7 - 180.0;
    Point { lat, lon }
}

/// Where a service sits on a space-filling curve (Morton order of its first venue), so
/// that the index keeps neighbours next to each other: a search round a point then
/// reads a few runs of documents instead of a few from every block. Services with no
/// venue sort last.
pub fn geo_key(points: &[Point]) -> u64 {
    let Some(p) = points.first() else { return u64::MAX };
    ((spread(u64::from(quantise_lat(p.lat))) << 1) | spread(u64::from(quantise_lon(p.lon)))).min(u64::MAX - 1)
}

/// Latitude on a grid of 2³² rows.
pub(crate) fn quantise_lat(lat: f64) -> u32 {
    (((lat + 90.0) / 180.0).clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32
}

/// Longitude on a grid of 2³² columns.
pub(crate) fn quantise_lon(lon: f64) -> u32 {
    (((lon + 180.0) / 360.0).clamp(0.0, 1.0) * f64::from(u32::MAX)) as u32
}

/// Spreads the low 32 bits of `v` to the even bits of the result, for interleaving.
pub(crate) fn spread(mut v: u64) -> u64 {
    v &= 0xffff_ffff;
    v = (v | (v << 16)) & 0x0000_ffff_0000_ffff;
    v = (v | (v << 8)) & 0x00ff_00ff_00ff_00ff;
    v = (v | (v << 4)) & 0x0f0f_0f0f_0f0f_0f0f;
    v = (v | (v << 2)) & 0x3333_3333_3333_3333;
    (v | (v << 1)) & 0x5555_5555_5555_5555
}

/// Everything the index keeps about one service.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ServiceFacts {
    pub name: String,
    pub body: String,
    pub organization: String,
    /// Names of the taxonomy terms the service is tagged with.
    pub taxonomy: String,
    /// Term ids and codes, lower case, for filtering by need.
    pub needs: Vec<String>,
    pub organization_id: Option<String>,
    /// Area codes the service covers ("S12000047", "national").
    pub areas: Vec<String>,
    pub points: Vec<Point>,
    pub slots: Vec<Slot>,
    pub attending: Vec<Attending>,
    pub languages: Vec<String>,
    pub accessibility: Vec<&'static str>,
    pub free: bool,
    /// Temporarily closed (the only other status the index holds is active).
    pub closed: bool,
    pub min_age: u64,
    pub max_age: u64,
    pub modified: i64,
    /// How many places it is offered at (its service-at-location entries).
    pub venues: u64,
}

/// The GSS codes in text, with the codes the same places have had or have now, so a
/// service filed under Sheffield's old code is found from a postcode giving its new one.
fn area_codes(text: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for code in text.split(|c: char| !c.is_ascii_alphanumeric()).filter(|w| kith_domain::geo::is_gss_code(w)) {
        out.push(code.to_owned());
        out.extend(kith_domain::geo::same_place(code).map(str::to_owned));
    }
    let lower = text.to_lowercase();
    let words: Vec<&str> = lower.split(|c: char| !c.is_alphanumeric()).collect();
    for (word, code) in [("scotland", "S92000003"), ("england", "E92000001"), ("wales", "W92000004")] {
        if words.contains(&word) {
            out.push(code.into());
        }
    }
    if ["national", "uk", "nationwide", "uk-wide"].iter().any(|w| words.contains(w)) || lower.contains("united kingdom")
    {
        out.push("national".into());
    }
    out
}

fn push(text: &mut String, part: Option<&str>) {
    if let Some(p) = part.map(str::trim).filter(|p| !p.is_empty()) {
        if !text.is_empty() {
            text.push_str(". ");
        }
        text.push_str(p);
    }
}

fn minutes(t: Option<&kith_domain::serde_util::TimeOfDay>) -> Option<u16> {
    use chrono::Timelike;
    t.and_then(|t| u16::try_from(t.0.hour() * 60 + t.0.minute()).ok())
}

/// Reads a fully nested service.
pub fn facts(s: &Service) -> ServiceFacts {
    let mut f =
        ServiceFacts { name: s.name.clone(), venues: s.service_at_locations.len() as u64, ..Default::default() };
    push(&mut f.body, s.alternate_name.as_deref());
    push(&mut f.body, s.description.as_deref());
    push(&mut f.body, s.eligibility_description.as_deref());
    if let Some(org) = &s.organization {
        f.organization = org.name.clone();
    }
    f.organization_id = s.organization_id.map(|id| id.to_string());

    for a in &s.attributes {
        if let Some(id) = a.taxonomy_term_id {
            f.needs.push(id.to_string());
        }
        if let Some(t) = &a.taxonomy_term {
            push(&mut f.taxonomy, Some(&t.name));
            if let Some(code) = &t.code {
                f.needs.push(code.to_lowercase());
            }
        }
    }
    f.needs.sort();
    f.needs.dedup();

    for area in &s.service_areas {
        let text = [&area.extent, &area.uri, &area.name].into_iter().flatten().cloned().collect::<Vec<_>>().join(" ");
        f.areas.extend(area_codes(&text));
        if area.extent_type.as_deref().is_some_and(|t| t.eq_ignore_ascii_case("national")) {
            f.areas.push("national".into());
        }
    }
    f.areas.sort();
    f.areas.dedup();

    let mut access = std::collections::BTreeSet::new();
    for sal in &s.service_at_locations {
        let Some(l) = &sal.location else { continue };
        if let (Some(lat), Some(lon)) = (l.latitude, l.longitude) {
            let p = Point { lat, lon };
            if p.in_uk() {
                f.points.push(p);
            }
        }
        f.attending.push(Attending::InPerson);
        for a in &l.accessibility {
            let text = [&a.description, &a.details].into_iter().flatten().cloned().collect::<Vec<_>>().join(" ");
            let text = text.to_lowercase();
            for (tag, words) in ACCESSIBILITY {
                if words.iter().any(|w| text.contains(w)) {
                    access.insert(tag);
                }
            }
        }
    }
    f.accessibility = access.into_iter().collect();

    for sch in &s.schedules {
        if let Some(mode) = sch.attending_type.as_deref().and_then(Attending::from_text) {
            f.attending.push(mode);
        }
        let Some(byday) = sch.byday.as_deref() else { continue };
        let opens = minutes(sch.opens_at.as_ref()).unwrap_or(0);
        let closes = minutes(sch.closes_at.as_ref()).unwrap_or(24 * 60);
        for day in days(byday) {
            f.slots.push(Slot { day, opens, closes: closes.max(opens) });
        }
    }
    f.attending.sort();
    f.attending.dedup();

    for l in &s.languages {
        for v in [&l.name, &l.code].into_iter().flatten() {
            let v = v.trim().to_lowercase();
            if !v.is_empty() {
                f.languages.push(v);
            }
        }
    }
    f.languages.sort();
    f.languages.dedup();

    f.free = is_free(s);
    f.closed = s.status != kith_domain::ServiceStatus::Active;
    f.min_age = s.minimum_age.filter(|a| *a >= 0.0).map_or(0, |a| a.floor() as u64);
    f.max_age = s.maximum_age.filter(|a| *a >= 0.0).map_or(200, |a| a.ceil() as u64);
    f.modified = s.last_modified.map_or(0, |t| t.timestamp());
    f
}

/// Free when a cost option says it costs nothing, or, with no cost options, when the
/// fees text says free.
pub fn is_free(s: &Service) -> bool {
    let says_free = |t: &Option<String>| t.as_deref().is_some_and(|t| t.to_lowercase().contains("free"));
    if s.cost_options.is_empty() {
        return says_free(&s.fees_description) || says_free(&s.fees);
    }
    s.cost_options.iter().any(|c| c.amount == Some(0.0) || says_free(&c.option) || says_free(&c.amount_description))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_and_slots() {
        assert_eq!(days("MO,WE, fr"), vec![0, 2, 4]);
        assert_eq!(days("1TU,-1SU"), vec![1, 6]);
        let s = Slot { day: 3, opens: 600, closes: 1290 };
        assert_eq!(Slot::decode(s.encode()), s);
        assert!(s.overlaps(EVENING_FROM, 24 * 60));
        assert!(!Slot { day: 3, opens: 600, closes: 720 }.overlaps(EVENING_FROM, 24 * 60));
    }

    #[test]
    fn points_round_trip_to_a_metre() {
        for p in [Point { lat: 55.8515, lon: -4.1967 }, Point { lat: 50.1, lon: 1.76 }] {
            let q = decode_point(encode_point(p));
            assert!(p.distance_km(q) < 0.002, "{p:?} {q:?}");
        }
    }

    #[test]
    fn area_codes_from_service_areas() {
        assert_eq!(area_codes("S12000047"), vec!["S12000047", "S12000015"]);
        assert_eq!(area_codes("E06000023"), vec!["E06000023"]);
        assert_eq!(
            area_codes("https://statistics.gov.scot/id/statistical-geography/S12000049"),
            vec!["S12000049", "S12000046"]
        );
        assert_eq!(area_codes("All of Scotland"), vec!["S92000003"]);
        assert_eq!(area_codes("United Kingdom"), vec!["national"]);
        assert!(area_codes("Fife").is_empty());
    }
}
