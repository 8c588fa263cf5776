//! Geography: where a postcode is, which areas hold it, and how deprived its
//! neighbourhood is.

use crate::postcode::Postcode;
use serde::{Deserialize, Serialize};

/// One postcode, in the ONS Postcode Directory's terms.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostcodePlace {
    pub postcode: Postcode,
    pub latitude: f64,
    pub longitude: f64,
    /// `ctry`: E92000001 England, S92000003 Scotland, W92000004 Wales, N92000002 NI.
    pub country: Option<String>,
    /// `oslaua` / `lad`: the council.
    pub local_authority: Option<String>,
    /// `oshlthau` / `hlthau`: the NHS health board in Scotland; the ICB (or former
    /// health authority) in England.
    pub health_area: Option<String>,
    /// `hscp`: Scotland's health and social care partnership, where present.
    pub hscp: Option<String>,
    /// `osward` / `ward`.
    pub ward: Option<String>,
    /// `lsoa11`: LSOA 2011 in England and Wales, data zone 2011 in Scotland.
    pub lsoa11: Option<String>,
    /// `lsoa21`: LSOA 2021 (England and Wales), which IMD 2025 uses.
    pub lsoa21: Option<String>,
}

impl PostcodePlace {
    /// The area codes this postcode lies in, for matching services' service areas.
    pub fn area_codes(&self) -> impl Iterator<Item = &str> {
        [&self.country, &self.local_authority, &self.health_area, &self.hscp, &self.ward, &self.lsoa11, &self.lsoa21]
            .into_iter()
            .filter_map(|c| c.as_deref())
    }

    pub fn point(&self) -> Point {
        Point { lat: self.latitude, lon: self.longitude }
    }
}

/// A named place (a town, village or neighbourhood) people search by.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Place {
    pub name: String,
    pub latitude: f64,
    pub longitude: f64,
    pub local_authority: Option<String>,
}

/// A deprivation index and the version of it. Ranks compare only within one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DeprivationIndex {
    /// English Indices of Deprivation 2019, by LSOA 2011.
    Imd2019,
    /// English Indices of Deprivation 2025, by LSOA 2021.
    Imd2025,
    /// Scottish Index of Multiple Deprivation 2020v2, by data zone 2011.
    Simd2020v2,
}

impl DeprivationIndex {
    pub const ALL: [DeprivationIndex; 3] =
        [DeprivationIndex::Imd2019, DeprivationIndex::Imd2025, DeprivationIndex::Simd2020v2];

    pub fn as_str(self) -> &'static str {
        match self {
            DeprivationIndex::Imd2019 => "imd2019",
            DeprivationIndex::Imd2025 => "imd2025",
            DeprivationIndex::Simd2020v2 => "simd2020v2",
        }
    }

    pub fn parse(s: &str) -> Option<DeprivationIndex> {
        DeprivationIndex::ALL.into_iter().find(|i| i.as_str().eq_ignore_ascii_case(s.trim()))
    }

    pub fn label(self) -> &'static str {
        match self {
            DeprivationIndex::Imd2019 => "IMD 2019 (England)",
            DeprivationIndex::Imd2025 => "IMD 2025 (England)",
            DeprivationIndex::Simd2020v2 => "SIMD 2020v2 (Scotland)",
        }
    }

    /// Whether the index is keyed by a postcode's `lsoa21` (else its `lsoa11`).
    pub fn uses_lsoa21(self) -> bool {
        matches!(self, DeprivationIndex::Imd2025)
    }
}

/// How deprived one small area is, on one index.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deprivation {
    pub index: DeprivationIndex,
    /// The LSOA or data zone code.
    pub area_code: String,
    /// 1 is the most deprived.
    pub rank: u32,
    /// 1 (most deprived 10 %) to 10, within the country.
    pub decile: u8,
    /// 1 (most deprived 20 %) to 5, within the country.
    pub quintile: u8,
}

impl Deprivation {
    /// A rank out of `areas` areas, with its decile and quintile: the most deprived
    /// tenth of areas is decile 1 (`ceil(rank × 10 / areas)`, as the published files do).
    pub fn from_rank(index: DeprivationIndex, area_code: String, rank: u32, areas: u32) -> Option<Deprivation> {
        if rank == 0 || rank > areas {
            return None;
        }
        let tile = |n: u64| u8::try_from((u64::from(rank) * n).div_ceil(u64::from(areas))).ok();
        Some(Deprivation { index, area_code, rank, decile: tile(10)?, quintile: tile(5)? })
    }
}

/// A postcode with the deprivation of its neighbourhood on each index loaded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PostcodeInfo {
    #[serde(flatten)]
    pub place: PostcodePlace,
    pub deprivation: Vec<Deprivation>,
}

/// A point on the earth, in WGS84 degrees.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Point {
    pub lat: f64,
    pub lon: f64,
}

impl Point {
    /// Great-circle distance in kilometres (haversine; within 0.5 % of the ellipsoid).
    pub fn distance_km(self, other: Point) -> f64 {
        const EARTH_RADIUS_KM: f64 = 6371.0088;
        let (p1, p2) = (self.lat.to_radians(), other.lat.to_radians());
        let dp = p2 - p1;
        let dl = (other.lon - self.lon).to_radians();
        let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * a.sqrt().asin()
    }

    /// Whether the point is plausibly in the UK, Channel Islands or Isle of Man.
    pub fn in_uk(self) -> bool {
        (49.0..=61.0).contains(&self.lat) && (-8.7..=2.0).contains(&self.lon)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deciles_and_quintiles_follow_the_published_rule() {
        let d = |rank| Deprivation::from_rank(DeprivationIndex::Simd2020v2, "S01".into(), rank, 6976);
        assert_eq!(d(1).map(|d| (d.decile, d.quintile)), Some((1, 1)));
        assert_eq!(d(697).map(|d| d.decile), Some(1));
        assert_eq!(d(698).map(|d| d.decile), Some(2));
        assert_eq!(d(4691).map(|d| d.decile), Some(7));
        assert_eq!(d(6976).map(|d| (d.decile, d.quintile)), Some((10, 5)));
        assert_eq!(d(0), None);
        assert_eq!(d(6977), None);
    }

    #[test]
    fn distances() {
        let glasgow = Point { lat: 55.8607, lon: -4.2444 };
        let edinburgh = Point { lat: 55.9533, lon: -3.1883 };
        let d = glasgow.distance_km(edinburgh);
        assert!((d - 66.6).abs() < 1.0, "{d}");
        assert!(glasgow.in_uk());
        assert!(!Point { lat: 48.85, lon: 2.35 }.in_uk());
    }
}

/// A place a whole source of services covers, by its GSS code (a council, health board,
/// ICB or country): `kith import --area E06000023`, or `--area E06000099=Somewhere` for a
/// place whose name Kith does not know.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WholeArea {
    pub code: String,
    pub name: String,
}

/// Codes that name the same place: a council or health board given a new code when its
/// boundary changed. Either finds services filed under the other.
const SAME_PLACE: &[(&str, &str)] = &[
    ("E08000019", "E08000039"), // Sheffield
    ("E08000020", "E08000037"), // Gateshead
    ("E06000048", "E06000057"), // Northumberland
    ("S12000015", "S12000047"), // Fife
    ("S12000024", "S12000048"), // Perth and Kinross
    ("S12000046", "S12000049"), // Glasgow City
    ("S12000044", "S12000050"), // North Lanarkshire
    ("S08000018", "S08000029"), // NHS Fife
    ("S08000027", "S08000030"), // NHS Tayside
    ("S08000021", "S08000031"), // NHS Greater Glasgow and Clyde
    ("S08000023", "S08000032"), // NHS Lanarkshire
];

/// Names of the places Kith's own geography covers, so `--area CODE` needs no name.
const NAMES: &[(&str, &str)] = &[
    ("E06000023", "Bristol"),
    ("E08000019", "Sheffield"),
    ("E08000039", "Sheffield"),
    ("S12000046", "Glasgow"),
    ("S12000049", "Glasgow"),
    ("S12000015", "Fife"),
    ("S12000047", "Fife"),
    ("S08000018", "NHS Fife"),
    ("S08000029", "NHS Fife"),
    ("S08000021", "NHS Greater Glasgow and Clyde"),
    ("S08000031", "NHS Greater Glasgow and Clyde"),
    ("E92000001", "England"),
    ("S92000003", "Scotland"),
    ("W92000004", "Wales"),
    ("N92000002", "Northern Ireland"),
];

/// Whether text is shaped like a GSS code: a letter, two digits, six digits ("S12000049").
pub fn is_gss_code(s: &str) -> bool {
    let b = s.as_bytes();
    b.len() == 9 && b[0].is_ascii_uppercase() && b[1..].iter().all(u8::is_ascii_digit)
}

/// The other codes the place `code` has had or has now (not `code` itself).
pub fn same_place(code: &str) -> impl Iterator<Item = &'static str> + '_ {
    SAME_PLACE.iter().filter_map(move |&(old, new)| match code {
        c if c == old => Some(new),
        c if c == new => Some(old),
        _ => None,
    })
}

impl WholeArea {
    /// Reads `CODE` or `CODE=Name`. A code Kith does not know needs its name.
    pub fn parse(text: &str) -> Result<WholeArea, String> {
        let (code, name) = match text.split_once('=') {
            Some((code, name)) => (code.trim().to_uppercase(), Some(name.trim())),
            None => (text.trim().to_uppercase(), None),
        };
        if !is_gss_code(&code) {
            return Err(format!(
                "\"{}\" is not a GSS area code: give one like E06000023 (a council, health board, ICB or country), optionally with its name as E06000023=Bristol",
                text.trim()
            ));
        }
        let known = NAMES.iter().find(|(c, _)| *c == code).map(|(_, n)| (*n).to_owned());
        match name.filter(|n| !n.is_empty()).map(str::to_owned).or(known) {
            Some(name) => Ok(WholeArea { code, name }),
            None => Err(format!("Kith does not know the name of {code}; give it as {code}=Name, like {code}=Bristol")),
        }
    }

    /// The service area a service with no venue is given: the whole place, found by
    /// its code (and the codes it has had) from any postcode inside it. The same service
    /// and place always give the same id, so importing again changes nothing.
    pub fn service_area(&self, service_id: uuid::Uuid) -> crate::hsds::ServiceArea {
        let id = uuid::Uuid::new_v5(&service_id, format!("kith:whole-area:{}", self.code).as_bytes());
        crate::hsds::ServiceArea {
            id,
            service_id: Some(service_id),
            name: Some(self.name.clone()),
            description: Some(format!("Serves all of {}", self.name)),
            extent: Some(self.code.clone()),
            extent_type: Some("kith:area".into()),
            uri: Some(format!("http://statistics.data.gov.uk/id/statistical-geography/{}", self.code)),
            attributes: Vec::new(),
            metadata: Vec::new(),
            extra: crate::hsds::Extra::default(),
        }
    }
}

/// Gives each service with no venue and no service area one area per place in `areas`,
/// the places its source covers. A service with no venue whose areas are only named
/// ("Bristol", as ORUK v1 feeds give them) has each area that names one of `areas`
/// given that place's code, so search finds it too. Returns how many services were
/// placed.
pub fn place_without_venue(services: &mut [crate::hsds::Service], areas: &[WholeArea]) -> usize {
    if areas.is_empty() {
        return 0;
    }
    let mut placed = 0;
    for s in services.iter_mut().filter(|s| s.service_at_locations.is_empty()) {
        if s.service_areas.is_empty() {
            s.service_areas = areas.iter().map(|a| a.service_area(s.id)).collect();
            placed += 1;
            continue;
        }
        let mut named = false;
        for area in s.service_areas.iter_mut().filter(|a| a.extent.is_none() && a.extent_type.is_none()) {
            let Some(place) =
                areas.iter().find(|p| area.name.as_deref().is_some_and(|n| n.trim().eq_ignore_ascii_case(&p.name)))
            else {
                continue;
            };
            area.extent = Some(place.code.clone());
            area.extent_type = Some("kith:area".into());
            area.description.get_or_insert_with(|| format!("Serves all of {}", place.name));
            named = true;
        }
        placed += usize::from(named);
    }
    placed
}

#[cfg(test)]
mod whole_area_tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_code_is_read_with_or_without_its_name() {
        assert_eq!(
            WholeArea::parse("e06000023").unwrap(),
            WholeArea { code: "E06000023".into(), name: "Bristol".into() }
        );
        assert_eq!(WholeArea::parse("E06000099=Somewhere").unwrap().name, "Somewhere");
        assert!(WholeArea::parse("E06000099").unwrap_err().contains("E06000099=Name"));
        assert!(WholeArea::parse("Bristol").unwrap_err().contains("not a GSS area code"));
    }

    #[test]
    fn old_and_new_codes_name_the_same_place() {
        assert_eq!(same_place("E08000019").collect::<Vec<_>>(), ["E08000039"]);
        assert_eq!(same_place("E08000039").collect::<Vec<_>>(), ["E08000019"]);
        assert_eq!(same_place("E06000023").count(), 0);
    }

    #[test]
    fn only_a_service_with_no_venue_and_no_area_is_placed_and_always_the_same_way() {
        let bristol = WholeArea::parse("E06000023").unwrap();
        let mut services = vec![crate::hsds::Service::new(
            uuid::Uuid::from_u128(1),
            "Lunch club",
            crate::status::ServiceStatus::Active,
        )];
        let mut with_area = services[0].clone();
        with_area.id = uuid::Uuid::from_u128(2);
        with_area.service_areas = vec![bristol.service_area(uuid::Uuid::from_u128(9))];
        services.push(with_area.clone());
        assert_eq!(place_without_venue(&mut services, std::slice::from_ref(&bristol)), 1);
        assert_eq!(services[0].service_areas[0].description.as_deref(), Some("Serves all of Bristol"));
        assert_eq!(services[1], with_area);
        let again = bristol.service_area(uuid::Uuid::from_u128(1));
        assert_eq!(services[0].service_areas[0], again);
    }

    #[test]
    fn an_area_named_as_the_source_s_place_is_given_its_code() {
        let bristol = WholeArea::parse("E06000023").unwrap();
        let mut service =
            crate::hsds::Service::new(uuid::Uuid::from_u128(1), "Lunch club", crate::status::ServiceStatus::Active);
        let mut named = bristol.service_area(service.id);
        (named.extent, named.extent_type, named.description, named.name) = (None, None, None, Some(" bristol".into()));
        let mut elsewhere = named.clone();
        elsewhere.name = Some("South Gloucestershire".into());
        service.service_areas = vec![named, elsewhere.clone()];
        let mut services = vec![service];
        assert_eq!(place_without_venue(&mut services, std::slice::from_ref(&bristol)), 1);
        let areas = &services[0].service_areas;
        assert_eq!(
            (areas[0].extent.as_deref(), areas[0].extent_type.as_deref()),
            (Some("E06000023"), Some("kith:area"))
        );
        assert_eq!(areas[0].description.as_deref(), Some("Serves all of Bristol"));
        assert_eq!(areas[1], elsewhere, "an area naming another place is left as published");
    }
}
