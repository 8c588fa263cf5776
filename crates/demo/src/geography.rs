//! A geography consistent with the demo directory: every venue's postcode, more
//! postcodes round each neighbourhood (for the synthetic patients and searches of
//! later issues), the neighbourhoods as place names, and a deprivation rank for each
//! neighbourhood's small areas.
//!
//! The small-area codes are made up ("S01DEMO…", "E01DEMO…") so they can never be
//! mistaken for real data zones or LSOAs, and the ranks are on the real scale of
//! each index (SIMD 2020v2 in Scotland, IMD 2019 in England).

use crate::places::{AREAS, PLACES};
use crate::rng::Rng;
use kith_domain::DirectoryBatch;
use kith_domain::geo::{Deprivation, DeprivationIndex, Place, PostcodePlace};
use kith_domain::postcode::Postcode;
use std::collections::BTreeMap;

/// Postcodes generated round each neighbourhood, besides the venues' own.
pub const POSTCODES_PER_PLACE: usize = 60;
/// Small areas (data zones or LSOAs) per neighbourhood.
const AREAS_PER_PLACE: usize = 4;

#[derive(Debug, Clone, Default)]
pub struct DemoGeography {
    pub postcodes: Vec<PostcodePlace>,
    pub places: Vec<Place>,
    pub deprivation: Vec<Deprivation>,
}

fn small_area(scotland: bool, place: usize, n: usize) -> String {
    format!("{}01DEMO{:02}{:02}", if scotland { "S" } else { "E" }, place, n)
}

/// The geography of the directory `batch` (from [`crate::generate`] with `seed`).
/// Postcodes the demo always has, for examples and tests: one in each demo area.
pub const LANDMARKS: [(&str, &str); 3] = [("G31 2ER", "Parkhead"), ("KY1 1XT", "Kirkcaldy"), ("S4 7QQ", "Burngreave")];

pub fn geography(batch: &DirectoryBatch, seed: u64) -> DemoGeography {
    let mut rng = Rng::new(seed ^ 0x6765_6f67);
    let mut postcodes: BTreeMap<Postcode, PostcodePlace> = BTreeMap::new();
    let mut deprivation = Vec::new();
    let place_of = |district: &str, lat: f64, lon: f64| {
        PLACES
            .iter()
            .enumerate()
            .filter(|(_, p)| p.district == district)
            .min_by(|(_, a), (_, b)| {
                let d = |p: &crate::places::Place| (p.lat - lat).powi(2) + (p.lon - lon).powi(2);
                d(a).total_cmp(&d(b))
            })
            .map(|(i, _)| i)
    };

    for (i, place) in PLACES.iter().enumerate() {
        let scotland = place.area.council_code.starts_with('S');
        // Deprivation varies by neighbourhood as it does in life: the East End of
        // Glasgow and north-east Sheffield are among the most deprived areas in Britain.
        let (index, areas) =
            if scotland { (DeprivationIndex::Simd2020v2, 6976) } else { (DeprivationIndex::Imd2019, 32_844) };
        let base = match place.name {
            "St Andrews" | "Cupar" | "Hillsborough" | "Heeley" | "Rosyth" => 0.6,
            "Dennistoun" | "Dunfermline" | "Sharrow" | "Gleadless" | "Leven" | "Baillieston" => 0.35,
            _ => 0.08,
        };
        for n in 0..AREAS_PER_PLACE {
            let fraction: f64 = base + rng.jitter(0.5).abs() * 0.5;
            let rank = ((fraction.clamp(0.0, 0.999) * f64::from(areas)) as u32).max(1);
            if let Some(d) = Deprivation::from_rank(index, small_area(scotland, i, n), rank, areas) {
                deprivation.push(d);
            }
        }
        let letters = b"ABDEFGHJLNPQRSTUWXYZ";
        for n in 0..POSTCODES_PER_PLACE {
            let inward = format!(
                "{}{}{}",
                1 + (i + n) % 9,
                char::from(letters[rng.below(letters.len())]),
                char::from(letters[rng.below(letters.len())])
            );
            let Ok(postcode) = Postcode::parse(&format!("{} {inward}", place.district)) else { continue };
            let lat = place.lat + rng.jitter(0.01);
            let lon = place.lon + rng.jitter(0.016);
            postcodes.entry(postcode.clone()).or_insert_with(|| postcode_place(postcode, lat, lon, i, n));
        }
    }
    // Postcodes the README and the browser tests name, at the middle of their place.
    for (code, place_name) in LANDMARKS {
        let Some(i) = PLACES.iter().position(|p| p.name == place_name) else { continue };
        let Ok(postcode) = Postcode::parse(code) else { continue };
        let (lat, lon) = (PLACES[i].lat, PLACES[i].lon);
        postcodes.insert(postcode.clone(), postcode_place(postcode, lat, lon, i, 0));
    }
    // Every venue's own postcode, at the venue.
    for l in &batch.locations {
        let (Some(lat), Some(lon)) = (l.latitude, l.longitude) else { continue };
        for a in &l.addresses {
            let Ok(postcode) = Postcode::parse(&a.postal_code) else { continue };
            if let Some(i) = place_of(postcode.outward(), lat, lon) {
                postcodes.insert(postcode.clone(), postcode_place(postcode, lat, lon, i, 0));
            }
        }
    }

    let mut places: Vec<Place> = PLACES
        .iter()
        .map(|p| Place {
            name: p.name.into(),
            latitude: p.lat,
            longitude: p.lon,
            local_authority: Some(p.area.council_code.into()),
        })
        .collect();
    for area in AREAS {
        let members: Vec<_> = PLACES.iter().filter(|p| std::ptr::eq(p.area, area)).collect();
        let n = members.len().max(1) as f64;
        places.push(Place {
            name: area.name.into(),
            latitude: members.iter().map(|p| p.lat).sum::<f64>() / n,
            longitude: members.iter().map(|p| p.lon).sum::<f64>() / n,
            local_authority: Some(area.council_code.into()),
        });
    }
    DemoGeography { postcodes: postcodes.into_values().collect(), places, deprivation }
}

fn postcode_place(postcode: Postcode, lat: f64, lon: f64, place: usize, n: usize) -> PostcodePlace {
    let p = &PLACES[place];
    let scotland = p.area.council_code.starts_with('S');
    PostcodePlace {
        postcode,
        latitude: (lat * 1e6).round() / 1e6,
        longitude: (lon * 1e6).round() / 1e6,
        country: Some(if scotland { "S92000003" } else { "E92000001" }.into()),
        local_authority: Some(p.area.council_code.into()),
        health_area: Some(p.area.health_code.into()),
        hscp: None,
        ward: None,
        lsoa11: Some(small_area(scotland, place, n % AREAS_PER_PLACE)),
        lsoa21: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DemoOptions, generate};

    #[test]
    fn every_venue_postcode_is_in_the_geography_and_every_area_is_ranked() {
        let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let batch = generate(&DemoOptions::new(now));
        let geo = geography(&batch, 2026);
        let known: std::collections::HashSet<&str> = geo.postcodes.iter().map(|p| p.postcode.as_str()).collect();
        for l in &batch.locations {
            for a in &l.addresses {
                assert!(known.contains(a.postal_code.as_str()), "{} is missing", a.postal_code);
            }
        }
        let ranked: std::collections::HashSet<&str> = geo.deprivation.iter().map(|d| d.area_code.as_str()).collect();
        assert!(geo.postcodes.iter().all(|p| p.lsoa11.as_deref().is_some_and(|c| ranked.contains(c))));
        assert!(geo.postcodes.len() > PLACES.len() * 40);
        for (code, _) in LANDMARKS {
            assert!(known.contains(code), "the demo always has {code}");
        }
        // Deprivation is spread, with the most deprived decile well represented.
        assert!(geo.deprivation.iter().any(|d| d.decile == 1));
        assert!(geo.deprivation.iter().any(|d| d.decile >= 8));
        assert_eq!(geography(&batch, 2026).postcodes, geo.postcodes, "deterministic");
    }
}
