//! Relevance over the demo directory: a labelled set of queries (need words,
//! plain-English phrases, typos, place names and outward codes) in `relevance.tsv`.
//!
//! A service is relevant to a query if it is tagged with one of the labelled needs or
//! activities and can be reached from the place: a venue within 5 km, or a service area
//! that covers the place's council. That is worked out here from the generated
//! directory, not from the index. recall@10 is the share of the relevant services (up
//! to 10) that appear in the first 10 results; its mean must be at least 0.9.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::locate::locate;
use kith_demo::places::PLACES;
use kith_domain::FixedClock;
use kith_domain::geo::Point;
use kith_search::sync::catch_up;
use kith_search::{SearchIndex, SearchQuery};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use uuid::Uuid;

const RADIUS_KM: f64 = 5.0;

struct Facts {
    codes: HashSet<String>,
    points: Vec<Point>,
    areas: Vec<String>,
}

#[tokio::test]
async fn recall_at_10_over_the_labelled_queries() {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now))).await;
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let geo = kith_demo::geography::geography(&batch, 2026);

    // The truth, from the generated directory.
    let term_codes: HashMap<Uuid, String> =
        batch.taxonomy_terms.iter().filter_map(|t| Some((t.id, t.code.clone()?))).collect();
    let venues: HashMap<Uuid, Point> =
        batch.locations.iter().filter_map(|l| Some((l.id, Point { lat: l.latitude?, lon: l.longitude? }))).collect();
    let facts: HashMap<Uuid, Facts> = batch
        .services
        .iter()
        .map(|s| {
            let codes = s.attributes.iter().filter_map(|a| term_codes.get(&a.taxonomy_term_id?).cloned()).collect();
            let points =
                s.service_at_locations.iter().filter_map(|sal| venues.get(&sal.location_id?).copied()).collect();
            let areas = s.service_areas.iter().filter_map(|a| a.extent.clone()).collect();
            (s.id, Facts { codes, points, areas })
        })
        .collect();

    t.store.put_postcodes(geo.postcodes).await.unwrap();
    t.store.put_places(geo.places).await.unwrap();
    t.store.write_batch(batch).await.unwrap();
    let index = SearchIndex::in_memory().unwrap();
    catch_up(&*t.store, &index).await.unwrap();

    let labelled = include_str!("relevance.tsv");
    let mut recalls = Vec::new();
    let mut misses = Vec::new();
    let mut empty = Vec::new();
    for line in labelled.lines().filter(|l| !l.starts_with('#') && !l.trim().is_empty()) {
        let parts: Vec<&str> = line.split('\t').collect();
        let (text, place, codes) = (parts[0], parts[1], parts[2]);
        let wanted: HashSet<&str> = codes.split(',').collect();
        // Where the place is, independently of the geography tables.
        let home = PLACES
            .iter()
            .find(|p| p.name == place || p.district == place)
            .unwrap_or_else(|| panic!("{place} is not a demo place or district"));
        let centre = Point { lat: home.lat, lon: home.lon };
        let relevant: HashSet<Uuid> = facts
            .iter()
            .filter(|(_, f)| f.codes.iter().any(|c| wanted.contains(c.as_str())))
            .filter(|(_, f)| {
                f.areas.iter().any(|a| a == home.area.council_code)
                    || f.points.iter().any(|p| centre.distance_km(*p) <= RADIUS_KM)
            })
            .map(|(id, _)| *id)
            .collect();
        if relevant.is_empty() {
            let elsewhere: Vec<&str> = PLACES
                .iter()
                .filter(|p| {
                    let c = Point { lat: p.lat, lon: p.lon };
                    facts.values().any(|f| {
                        f.codes.iter().any(|code| wanted.contains(code.as_str()))
                            && (f.areas.iter().any(|a| a == p.area.council_code)
                                || f.points.iter().any(|q| c.distance_km(*q) <= RADIUS_KM))
                    })
                })
                .map(|p| p.name)
                .collect();
            empty.push(format!("{text} @ {place} (there are some near {elsewhere:?})"));
            continue;
        }

        let located = locate(&*t.store, place).await.unwrap_or_else(|e| panic!("{place}: {e}"));
        let query = SearchQuery {
            text: Some(text.into()),
            near: Some(located.near(RADIUS_KM)),
            limit: 10,
            ..Default::default()
        };
        let hits = index.search(&query).unwrap().hits;
        let found = hits.iter().filter(|h| relevant.contains(&h.id)).count();
        let recall = found as f64 / relevant.len().min(10) as f64;
        if recall < 1.0 {
            misses.push(format!("{text} @ {place}: {found} of {}", relevant.len().min(10)));
        }
        recalls.push(recall);
    }
    assert!(empty.is_empty(), "labels with nothing relevant: {empty:#?}");
    assert!(recalls.len() >= 60, "the labelled set has {} queries", recalls.len());
    let mean = recalls.iter().sum::<f64>() / recalls.len() as f64;
    eprintln!("recall@10 = {mean:.3} over {} queries; below 1: {misses:#?}", recalls.len());
    assert!(mean >= 0.9, "recall@10 is {mean:.3}; queries below 1: {misses:#?}");
    t.cleanup().await;
}
