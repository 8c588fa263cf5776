//! The place part of a search against a brute-force answer: whatever order services
//! arrive in, however the index is split into segments and merged, a search round a
//! point finds exactly the services with a venue within the radius or a service area
//! holding the place.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_domain::ServiceStatus;
use kith_domain::directory::{Related, nest_service};
use kith_domain::geo::Point;
use kith_domain::hsds::Service;
use kith_search::facts::facts;
use kith_search::{Near, Position, SearchIndex, SearchQuery};
use std::collections::BTreeSet;
use uuid::Uuid;

fn services() -> Vec<Service> {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let related = Related {
        organizations: batch.organizations.iter().map(|o| (o.id, o.clone())).collect(),
        locations: batch.locations.iter().map(|l| (l.id, l.clone())).collect(),
        taxonomy_terms: batch.taxonomy_terms.iter().map(|t| (t.id, t.clone())).collect(),
    };
    let mut out: Vec<Service> = batch.services.iter().map(|s| nest_service(s.clone(), &related)).collect();
    // A deterministic shuffle, so documents arrive in no geographic order.
    let mut state = 0x2545_f491_4f6c_dd1du64;
    for i in (1..out.len()).rev() {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        out.swap(i, (state % (i as u64 + 1)) as usize);
    }
    out
}

fn brute_force(services: &[Service], gone: &BTreeSet<Uuid>, near: &Near) -> BTreeSet<Uuid> {
    services
        .iter()
        .filter(|s| !gone.contains(&s.id))
        .filter(|s| matches!(s.status, ServiceStatus::Active | ServiceStatus::TemporarilyClosed))
        .filter(|s| {
            let f = facts(s);
            let close = f.points.iter().any(|p| near.point.distance_km(*p) <= near.radius_km);
            let covers = f.areas.iter().any(|a| a == "national" || near.area_codes.contains(a));
            close || covers
        })
        .map(|s| s.id)
        .collect()
}

fn found(index: &SearchIndex, near: &Near) -> BTreeSet<Uuid> {
    // Geometry only: closed services too, as the brute force counts them.
    let q = SearchQuery {
        near: Some(near.clone()),
        limit: 10_000,
        facets: false,
        include_closed: true,
        ..Default::default()
    };
    let r = index.search(&q).unwrap();
    assert_eq!(r.total, r.hits.len(), "every match is returned at this limit");
    r.hits.iter().map(|h| h.id).collect()
}

#[test]
fn a_search_round_a_point_finds_exactly_what_is_near_or_covers_the_place() {
    let mut all = services();
    // One service with a second venue far from its first: found near either.
    let far = Point { lat: 55.95, lon: -3.19 };
    let scattered = all.iter().position(|s| !facts(s).points.is_empty()).unwrap();
    let mut second = all[scattered].service_at_locations[0].clone();
    second.id = Uuid::from_u128(1);
    if let Some(l) = &mut second.location {
        l.id = Uuid::from_u128(2);
        l.latitude = Some(far.lat);
        l.longitude = Some(far.lon);
    }
    all[scattered].service_at_locations.push(second);
    let scattered_id = all[scattered].id;

    let index = SearchIndex::in_memory().unwrap();
    // Nine commits make several segments, which the index merges as it goes.
    for (i, chunk) in all.chunks(all.len() / 9 + 1).enumerate() {
        index.apply(chunk, &[], &Position::unchecked(i as i64 + 1)).unwrap();
    }
    let gone: BTreeSet<Uuid> = all.iter().step_by(17).map(|s| s.id).filter(|id| *id != scattered_id).collect();
    index.apply(&[], &gone.iter().copied().collect::<Vec<_>>(), &Position::unchecked(20)).unwrap();

    let areas: Vec<String> = all.iter().flat_map(|s| facts(s).areas).filter(|a| a != "national").collect();
    let mut checked = 0;
    for s in all.iter().step_by(23) {
        let Some(point) = facts(s).points.first().copied() else { continue };
        for (radius_km, area_codes) in [(1.0, vec![]), (5.0, areas.iter().take(1).cloned().collect()), (25.0, vec![])] {
            let near = Near { point, radius_km, area_codes };
            let expected = brute_force(&all, &gone, &near);
            assert_eq!(found(&index, &near), expected, "round {point:?}, {radius_km} km");
            checked += 1;
        }
    }
    assert!(checked >= 30, "{checked}");

    let near_far = Near { point: far, radius_km: 1.0, area_codes: vec![] };
    assert!(found(&index, &near_far).contains(&scattered_id), "found by its second venue");

    // The same after a rebuild, which merges everything into one segment.
    index.start_rebuild().unwrap();
    let kept: Vec<Service> = all.iter().filter(|s| !gone.contains(&s.id)).cloned().collect();
    index.add(&kept).unwrap();
    index.finish_rebuild(&Position::unchecked(21), true).unwrap();
    assert_eq!(index.segments(), 1);
    assert_eq!(index.seq(), 21);
    for s in all.iter().step_by(29) {
        let Some(point) = facts(s).points.first().copied() else { continue };
        let near = Near { point, radius_km: 3.0, area_codes: vec![] };
        assert_eq!(found(&index, &near), brute_force(&all, &gone, &near));
    }
}
