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
