//! Search over the demo directory, through the store and the change feed, as a
//! receptionist would use it.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::locate::locate;
use kith_domain::FixedClock;
use kith_domain::geo::Point;
use kith_search::sync::catch_up;
use kith_search::{Attending, Near, SearchIndex, SearchQuery, SearchResults};
use kith_store::testing::TestStore;
use std::collections::HashMap;
use std::sync::Arc;

struct Demo {
    t: TestStore,
    index: SearchIndex,
    names: HashMap<uuid::Uuid, (String, Vec<String>)>,
}

async fn demo() -> Demo {
    let now = chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap();
    let t = kith_store::testing::sqlite(Arc::new(FixedClock::new(now))).await;
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let geo = kith_demo::geography::geography(&batch, 2026);
    let names = batch
        .services
        .iter()
        .map(|s| (s.id, (s.name.clone(), s.service_areas.iter().filter_map(|a| a.extent.clone()).collect())))
        .collect();
    t.store.put_postcodes(geo.postcodes).await.unwrap();
    t.store.put_places(geo.places).await.unwrap();
    t.store.put_deprivation(geo.deprivation).await.unwrap();
    t.store.write_batch(batch).await.unwrap();
    let index = SearchIndex::in_memory().unwrap();
    let caught = catch_up(&*t.store, &index).await.unwrap();
    assert!(caught.rebuilt);
    assert_eq!(index.len(), 450);
    assert_eq!(index.seq(), t.store.last_seq().await.unwrap());
    Demo { t, index, names }
}

impl Demo {
    async fn near(&self, place: &str, km: f64) -> Near {
        locate(&*self.t.store, place).await.unwrap().near(km)
    }

    fn names(&self, r: &SearchResults) -> Vec<String> {
        r.hits.iter().map(|h| self.names[&h.id].0.clone()).collect()
    }
}

#[tokio::test]
async fn lonely_near_parkhead_finds_befriending_and_area_wide_services_but_not_fife() {
    let d = demo().await;
    let near = d.near("Parkhead", 5.0).await;
    let r = d
        .index
        .search(&SearchQuery { text: Some("lonely".into()), near: Some(near), limit: 50, ..Default::default() })
        .unwrap();
    let names = d.names(&r);
    assert!(r.total >= 5, "{names:?}");
    assert!(
        names
            .iter()
            .take(10)
            .any(|n| n.contains("Befriending") || n.contains("Friendship") || n.contains("Good Neighbours")),
        "{names:?}"
    );
    // Glasgow-wide services come back too; nothing is from Fife or Sheffield.
    assert!(r.hits.iter().any(|h| h.covers_area), "{names:?}");
    for h in &r.hits {
        let (name, areas) = &d.names[&h.id];
        assert!(!areas.iter().any(|a| a == "S12000047" || a == "E08000039"), "{name} is not near Parkhead");
        if let Some(km) = h.distance_km.filter(|_| !h.covers_area) {
            assert!(km <= 5.0, "{name} is {km} km away");
        }
    }
    // Nearer services rank above the same kind of service further away.
    let scores: Vec<f64> = r.hits.iter().map(|h| h.score).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]));
}

/// A temporarily closed service is not somewhere to send someone today: left out unless
/// the query asks for it.
#[tokio::test]
async fn temporarily_closed_services_are_found_only_when_asked_for() {
    let d = demo().await;
    let all = SearchQuery { limit: 1000, facets: false, include_closed: true, ..Default::default() };
    let with_closed = d.index.search(&all).unwrap();
    let open_only = d.index.search(&SearchQuery { include_closed: false, ..all }).unwrap();
    assert_eq!(with_closed.total, 450);
    let closed = with_closed.total - open_only.total;
    assert!(closed > 0, "the demo has temporarily closed services");
    let lonely = SearchQuery { text: Some("lonely".into()), limit: 1000, facets: false, ..Default::default() };
    let asked = d.index.search(&SearchQuery { include_closed: true, ..lonely.clone() }).unwrap();
    let not_asked = d.index.search(&lonely).unwrap();
    assert!(not_asked.hits.iter().all(|h| asked.hits.iter().any(|a| a.id == h.id)));
    assert!(asked.total >= not_asked.total);
}

#[tokio::test]
async fn the_needs_vocabulary_and_typos() {
    let d = demo().await;
    let near = d.near("G31", 8.0).await;
    let search =
        |text: &str| SearchQuery { text: Some(text.into()), near: Some(near.clone()), limit: 10, ..Default::default() };
    let money = d.names(&d.index.search(&search("money worries")).unwrap());
    assert!(
        money.iter().take(5).any(|n| n.contains("Debt") || n.contains("Welfare") || n.contains("Money")),
        "{money:?}"
    );
    let bereaved = d.names(&d.index.search(&search("bereavment")).unwrap());
    assert!(bereaved.iter().take(5).any(|n| n.to_lowercase().contains("bereave")), "{bereaved:?}");
    // A typo still finds gardening, whatever the groups call themselves.
    let garden = d.index.search(&search("gardning")).unwrap();
    assert!(garden.total > 0);
    for hit in garden.hits.iter().take(5) {
        let s = d.t.store.service(hit.id).await.unwrap().unwrap();
        let taxonomy = kith_search::facts::facts(&s).taxonomy;
        assert!(taxonomy.contains("gardening"), "{}: {taxonomy}", s.name);
    }
    let walking = d.names(&d.index.search(&search("walking group")).unwrap());
    assert!(walking[0].to_lowercase().contains("walk"), "{walking:?}");
    assert_eq!(d.index.search(&search("qwertyuiop")).unwrap().total, 0);
}

#[tokio::test]
async fn filters_combine_and_facets_count_what_matches() {
    let d = demo().await;
    let near = d.near("Kirkcaldy", 10.0).await;
    let base = SearchQuery { near: Some(near), limit: 500, ..Default::default() };
    let all = d.index.search(&base).unwrap();
    assert!(all.total > 20);

    let free = d.index.search(&SearchQuery { free: true, ..base.clone() }).unwrap();
    assert_eq!(free.total as u64, all.facets.free);
    assert!(free.total < all.total);

    let evenings = d.index.search(&SearchQuery { evenings: true, ..base.clone() }).unwrap();
    assert_eq!(evenings.total as u64, all.facets.evenings);

    let online = d.index.search(&SearchQuery { attending: vec![Attending::Online], ..base.clone() }).unwrap();
    let online_facet = all.facets.attending.iter().find(|(k, _)| k == "online").map_or(0, |(_, n)| *n);
    assert_eq!(online.total as u64, online_facet);

    let tuesday = d.index.search(&SearchQuery { day: Some(1), ..base.clone() }).unwrap();
    assert_eq!(tuesday.total as u64, all.facets.days[1]);

    let need = &all.facets.needs[0];
    let by_need = d.index.search(&SearchQuery { needs: vec![need.0.clone()], ..base.clone() }).unwrap();
    assert_eq!(by_need.total as u64, need.1);

    // A child of ten: only services that take children.
    let child = d.index.search(&SearchQuery { minimum_age: Some(10), maximum_age: Some(10), ..base.clone() }).unwrap();
    assert!(child.total < all.total && child.total > 0);

    // Combined with AND.
    let both = d.index.search(&SearchQuery { free: true, evenings: true, ..base.clone() }).unwrap();
    assert!(both.total <= free.total.min(evenings.total));

    // Paging: page 2 continues page 1 without overlap.
    let p1 = d.index.search(&SearchQuery { limit: 10, ..base.clone() }).unwrap();
    let p2 = d.index.search(&SearchQuery { limit: 10, offset: 10, ..base }).unwrap();
    assert_eq!(p1.total, p2.total);
    assert!(p1.hits.iter().all(|h| !p2.hits.contains(h)));
    assert_eq!(p1.hits[..], all.hits[..10]);
}

#[tokio::test]
async fn the_index_follows_the_change_feed() {
    let d = demo().await;
    let store = &*d.t.store;
    let query = SearchQuery { text: Some("befriending".into()), limit: 500, ..Default::default() };
    let before = d.index.search(&query).unwrap();
    let victim = before.hits[0].id;
    let mut renamed = store.service(victim).await.unwrap().unwrap();
    renamed.name = "Zebra Crossing Befriending".into();
    store.put_service(renamed).await.unwrap();
    let gone = before.hits[1].id;
    store.delete_service(gone).await.unwrap();
    let caught = catch_up(store, &d.index).await.unwrap();
    assert!(!caught.rebuilt);
    assert_eq!(caught.services, 1);

    let zebra = d.index.search(&SearchQuery { text: Some("zebra".into()), ..Default::default() }).unwrap();
    assert_eq!(zebra.hits.iter().map(|h| h.id).collect::<Vec<_>>(), vec![victim]);
    let after = d.index.search(&query).unwrap();
    assert_eq!(after.total, before.total - 1);
    assert!(after.hits.iter().all(|h| h.id != gone));
    assert_eq!(d.index.seq(), store.last_seq().await.unwrap());
    // Nothing new: nothing to do.
    assert_eq!(catch_up(store, &d.index).await.unwrap().changes, 0);
}

#[tokio::test]
async fn a_moved_venue_or_renamed_organisation_re_indexes_only_the_services_that_show_it() {
    let d = demo().await;
    let store = &*d.t.store;
    // A service with a venue in Glasgow, none of whose service areas reach Fife.
    let glasgow = d.near("Parkhead", 5.0).await;
    let all = d.index.search(&SearchQuery { near: Some(glasgow.clone()), limit: 500, ..Default::default() }).unwrap();
    let mut moved = None;
    for hit in &all.hits {
        let s = store.service(hit.id).await.unwrap().unwrap();
        if s.service_areas.is_empty()
            && let [only] = &s.service_at_locations[..]
            && let Some(venue) = only.location.clone()
        {
            moved = Some((s.id, venue));
            break;
        }
    }
    let (service_id, mut venue) = moved.expect("a Glasgow service with a venue and no service area");
    let kirkcaldy = Near { point: Point { lat: 56.1107, lon: -3.1674 }, radius_km: 1.0, area_codes: vec![] };
    let near_kirkcaldy = SearchQuery { near: Some(kirkcaldy), limit: 500, ..Default::default() };
    assert!(!d.index.search(&near_kirkcaldy).unwrap().hits.iter().any(|h| h.id == service_id));

    // The venue moves to Kirkcaldy.
    venue.latitude = Some(56.1107);
    venue.longitude = Some(-3.1674);
    let mut batch = kith_domain::DirectoryBatch::new();
    batch.add_location(venue.clone());
    store.write_batch(batch).await.unwrap();
    let sharing =
        store.services_showing(&kith_store::Shown { locations: vec![venue.id], ..Default::default() }).await.unwrap();
    assert!(sharing.contains(&service_id));
    let caught = catch_up(store, &d.index).await.unwrap();
    assert!(!caught.rebuilt, "a moved venue re-indexes its services, not the whole index");
    assert_eq!(caught.services, sharing.len() as u64);
    assert!(d.index.search(&near_kirkcaldy).unwrap().hits.iter().any(|h| h.id == service_id));
    let still = d.index.search(&SearchQuery { near: Some(glasgow), limit: 500, ..Default::default() }).unwrap();
    assert!(!still.hits.iter().any(|h| h.id == service_id), "and it is no longer found at its old place");
    assert_eq!(d.index.len(), 450);

    // Its organisation takes a new name, which search then finds.
    let org_id = store.service(service_id).await.unwrap().unwrap().organization_id.unwrap();
    let mut org = store.organization(org_id).await.unwrap().unwrap();
    org.name = "Quixotic Neighbours Collective".into();
    let mut batch = kith_domain::DirectoryBatch::new();
    batch.add_organization(org);
    store.write_batch(batch).await.unwrap();
    let caught = catch_up(store, &d.index).await.unwrap();
    assert!(!caught.rebuilt);
    let found = d.index.search(&SearchQuery { text: Some("quixotic".into()), ..Default::default() }).unwrap();
    assert!(found.hits.iter().any(|h| h.id == service_id));
    assert_eq!(found.total as u64, caught.services, "every service of the organisation, and only those");
}

#[tokio::test]
async fn an_index_on_disk_remembers_where_it_got_to() {
    let d = demo().await;
    let dir = tempfile::tempdir().unwrap();
    {
        let index = SearchIndex::open(dir.path()).unwrap();
        catch_up(&*d.t.store, &index).await.unwrap();
        assert_eq!(index.len(), 450);
    }
    let index = SearchIndex::open(dir.path()).unwrap();
    assert_eq!(index.len(), 450);
    assert_eq!(index.seq(), d.t.store.last_seq().await.unwrap());
    assert_eq!(catch_up(&*d.t.store, &index).await.unwrap().changes, 0);
}

/// A service that covers the whole council area ranks below a venue of the same
/// relevance nearby, and above the same venue far away (as a venue about 5 km off).
#[tokio::test]
async fn a_service_for_the_whole_area_ranks_below_the_same_service_with_a_venue_nearby() {
    let d = demo().await;
    let store = &*d.t.store;
    let parkhead = d.near("Parkhead", 30.0).await;
    let council = parkhead.area_codes.iter().find(|c| c.starts_with("S12")).expect("Parkhead's council").clone();
    let twin = |n: u128, name: &str| {
        let mut s = kith_domain::hsds::Service::new(
            uuid::Uuid::from_u128(0x7a11_0000 + n),
            name,
            kith_domain::ServiceStatus::Active,
        );
        s.description = Some("A warm lunch and company every Thursday.".into());
        s
    };
    let venue = |n: u128, lat: f64, lon: f64| {
        let mut l = kith_domain::hsds::Location::new(
            uuid::Uuid::from_u128(0x7a12_0000 + n),
            kith_domain::hsds::LocationType::Physical,
        );
        (l.latitude, l.longitude) = (Some(lat), Some(lon));
        l
    };
    let here = parkhead.point;
    let mut batch = kith_domain::DirectoryBatch::new();
    let mut near_by = twin(1, "Zebrafinch Lunch Club");
    let close = venue(1, here.lat + 0.005, here.lon);
    near_by
        .service_at_locations
        .push(kith_domain::hsds::ServiceAtLocation::new(uuid::Uuid::from_u128(0x7a13_0001), close.id));
    let mut far = twin(2, "Zebrafinch Lunch Club");
    let distant = venue(2, here.lat + 0.2, here.lon);
    far.service_at_locations
        .push(kith_domain::hsds::ServiceAtLocation::new(uuid::Uuid::from_u128(0x7a13_0002), distant.id));
    let mut whole = twin(3, "Zebrafinch Lunch Club");
    whole
        .service_areas
        .push(kith_domain::geo::WholeArea::parse(&format!("{council}=Glasgow")).unwrap().service_area(whole.id));
    batch.add_location(close);
    batch.add_location(distant);
    for s in [near_by.clone(), far.clone(), whole.clone()] {
        batch.add_service(s);
    }
    store.write_batch(batch).await.unwrap();
    catch_up(store, &d.index).await.unwrap();
    let r = d
        .index
        .search(&SearchQuery { text: Some("zebrafinch".into()), near: Some(parkhead), limit: 10, ..Default::default() })
        .unwrap();
    let order: Vec<uuid::Uuid> = r.hits.iter().map(|h| h.id).collect();
    assert_eq!(order, [near_by.id, whole.id, far.id], "the venue nearby, the whole area, then the venue 22 km off");
}
