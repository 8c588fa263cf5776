//! The Store contract. Every test here runs on SQLite and on PostgreSQL, through the
//! `Store` trait alone, so the two engines cannot drift apart.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use chrono::{Duration, TimeZone, Utc};
use kith_domain::account::{
    Area, AreaKind, AuditEvent, AuditQuery, Grant, LinkPurpose, LinkUse, MagicLink, OrgKind, Organisation, Role, Scope,
    Sealed, SessionRecord, SessionStage, UserRecord,
};
use kith_domain::geo::{Deprivation, DeprivationIndex, Place, PostcodePlace};
use kith_domain::hsds::{
    Attribute, Location, LocationType, Organization, Service, ServiceAtLocation, Taxonomy, TaxonomyTerm,
};
use kith_domain::postcode::{Outward, Postcode};
use kith_domain::referral::{PatientRecord, ReferralEvent, ReferralKind, ReferralRecord, TaskStatus};
use kith_domain::{ChangeOp, Clock, DirectoryBatch, FixedClock, ObjectType, ServiceStatus};
use kith_store::accounts::SealedField;
use kith_store::{Alongside, PageRequest, ServiceQuery, Shown, Store, StoreError, TermQuery};
use std::sync::Arc;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6b69_7468_0000_0000_0000_0000_0000_0000 + n)
}

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(Utc.with_ymd_and_hms(2026, 3, 2, 9, 30, 0).unwrap()))
}

const TAXONOMY: u128 = 1;
const NEED_ACTIVITY: u128 = 10;
const WALKING: u128 = 11;
const SWIMMING: u128 = 12;
const NEED_MONEY: u128 = 13;
const ORG_TRUST: u128 = 20;
const ORG_ADVICE: u128 = 21;
const HALL: u128 = 30;
const PARK: u128 = 31;

fn term(n: u128, name: &str, parent: Option<u128>) -> TaxonomyTerm {
    TaxonomyTerm {
        id: id(n),
        code: Some(name.to_lowercase().replace(' ', "-")),
        name: name.into(),
        description: format!("Services for {name}"),
        parent_id: parent.map(id),
        taxonomy: Some("Kith needs".into()),
        taxonomy_detail: None,
        language: None,
        taxonomy_id: Some(id(TAXONOMY)),
        term_uri: None,
        metadata: vec![],
        extra: Default::default(),
    }
}

fn attribute(n: u128, term_id: u128) -> Attribute {
    Attribute {
        id: id(n),
        link_id: None,
        taxonomy_term_id: Some(id(term_id)),
        link_type: None,
        link_entity: Some("service".into()),
        value: None,
        taxonomy_term: None,
        metadata: vec![],
        extra: Default::default(),
    }
}

fn place(n: u128, name: &str, lat: f64, lon: f64) -> Location {
    let mut l = Location::new(id(n), LocationType::Physical);
    l.name = Some(name.into());
    l.latitude = Some(lat);
    l.longitude = Some(lon);
    l
}

fn service(n: u128, name: &str, org: u128, at: u128, terms: &[u128]) -> Service {
    let mut s = Service::new(id(n), name, ServiceStatus::Active);
    s.organization_id = Some(id(org));
    s.description = Some(format!("{name}, every week"));
    s.service_at_locations.push(ServiceAtLocation::new(id(n + 1000), id(at)));
    s.attributes = terms.iter().enumerate().map(|(i, t)| attribute(n * 10 + i as u128 + 2000, *t)).collect();
    s
}

/// A small directory: one taxonomy of two needs with children, two organisations, two
/// places and four services.
fn directory() -> DirectoryBatch {
    let mut b = DirectoryBatch::new();
    b.add_taxonomy(Taxonomy {
        id: id(TAXONOMY),
        name: "Kith needs".into(),
        description: "What people come for".into(),
        uri: None,
        version: Some("1".into()),
        metadata: vec![],
        extra: Default::default(),
    });
    b.add_taxonomy_term(term(NEED_ACTIVITY, "Physical activity", None));
    b.add_taxonomy_term(term(WALKING, "Walking groups", Some(NEED_ACTIVITY)));
    b.add_taxonomy_term(term(SWIMMING, "Swimming", Some(NEED_ACTIVITY)));
    b.add_taxonomy_term(term(NEED_MONEY, "Money and debt", None));
    b.add_organization(Organization::new(id(ORG_TRUST), "Parkhead Community Trust", "Run by local people"));
    b.add_organization(Organization::new(id(ORG_ADVICE), "East End Advice Centre", "Free, confidential advice"));
    b.add_location(place(HALL, "Parkhead Community Hall", 55.851, -4.196));
    b.add_location(place(PARK, "Tollcross Park", 55.846, -4.175));
    b.add_service(service(100, "Tollcross Walking Group", ORG_TRUST, PARK, &[NEED_ACTIVITY, WALKING]));
    b.add_service(service(101, "Aqua Fit for Over 50s", ORG_TRUST, HALL, &[NEED_ACTIVITY, SWIMMING]));
    b.add_service(service(102, "Benefits and Debt Advice", ORG_ADVICE, HALL, &[NEED_MONEY]));
    b.add_service(service(103, "Chair-based Exercise", ORG_TRUST, HALL, &[NEED_ACTIVITY]));
    b
}

async fn writes_a_directory_and_reads_services_fully_nested(store: &dyn Store, _clock: &FixedClock) {
    let summary = store.write_batch(directory()).await.unwrap();
    assert_eq!(
        (summary.taxonomies, summary.taxonomy_terms, summary.organizations, summary.locations, summary.services),
        (1, 4, 2, 2, 4)
    );
    let counts = store.counts().await.unwrap();
    assert_eq!((counts.services, counts.organizations, counts.locations, counts.taxonomy_terms), (4, 2, 2, 4));

    let walk = store.service(id(100)).await.unwrap().expect("the walking group");
    assert_eq!(walk.name, "Tollcross Walking Group");
    assert_eq!(walk.organization.as_ref().map(|o| o.name.as_str()), Some("Parkhead Community Trust"));
    let location = walk.service_at_locations[0].location.as_ref().expect("the nested location");
    assert_eq!(location.name.as_deref(), Some("Tollcross Park"));
    assert_eq!(location.latitude, Some(55.846));
    let terms: Vec<_> =
        walk.attributes.iter().filter_map(|a| a.taxonomy_term.as_ref()).map(|t| t.name.as_str()).collect();
    assert_eq!(terms, ["Physical activity", "Walking groups"]);
    assert!(store.service(id(999)).await.unwrap().is_none());
}

async fn reads_a_page_of_services_by_id_in_the_order_asked(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let found = store.services_by_ids(&[id(103), id(999), id(100)]).await.unwrap();
    let names: Vec<&str> = found.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Chair-based Exercise", "Tollcross Walking Group"],
        "in the order asked, the unknown id left out"
    );
    assert_eq!(found[1], store.service(id(100)).await.unwrap().unwrap(), "as fully nested as one read");
    assert!(store.services_by_ids(&[]).await.unwrap().is_empty());
}

async fn lists_the_services_that_show_an_organisation_a_place_or_a_term(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let showing = |organizations: &[u128], locations: &[u128], taxonomy_terms: &[u128]| {
        let shown = Shown {
            organizations: organizations.iter().copied().map(id).collect(),
            locations: locations.iter().copied().map(id).collect(),
            taxonomy_terms: taxonomy_terms.iter().copied().map(id).collect(),
        };
        async move { store.services_showing(&shown).await.unwrap() }
    };
    let ids = |ns: &[u128]| ns.iter().copied().map(id).collect::<Vec<_>>();
    assert_eq!(showing(&[ORG_ADVICE], &[], &[]).await, ids(&[102]), "by organisation");
    assert_eq!(showing(&[], &[HALL], &[]).await, ids(&[101, 102, 103]), "by place, in id order");
    assert_eq!(showing(&[], &[], &[WALKING, SWIMMING]).await, ids(&[100, 101]), "by term");
    assert_eq!(
        showing(&[ORG_ADVICE], &[PARK], &[NEED_MONEY]).await,
        ids(&[100, 102]),
        "all three together, each service once"
    );
    assert!(showing(&[], &[], &[]).await.is_empty());
    assert!(showing(&[999], &[998], &[997]).await.is_empty(), "unknown ids show nothing");

    // A service moved elsewhere no longer shows its old place.
    store.put_service(service(103, "Chair-based Exercise", ORG_TRUST, PARK, &[NEED_ACTIVITY])).await.unwrap();
    assert_eq!(showing(&[], &[HALL], &[]).await, ids(&[101, 102]));
    store.delete_service(id(101)).await.unwrap();
    assert_eq!(showing(&[], &[HALL], &[]).await, ids(&[102]), "nor does a deleted one");

    // A publisher that gives two services the same service-at-location id, or lists one
    // place twice in a service, still has each service show each place it names.
    let mut twice = service(104, "Singing for the Brain", ORG_TRUST, HALL, &[]);
    twice.service_at_locations.push(ServiceAtLocation::new(id(1102), id(HALL)));
    twice.service_at_locations.push(ServiceAtLocation::new(id(1105), id(PARK)));
    store.put_service(twice).await.unwrap();
    assert_eq!(showing(&[], &[HALL], &[]).await, ids(&[102, 104]), "102's service-at-location id reused by 104");
    assert_eq!(showing(&[], &[PARK], &[]).await, ids(&[100, 103, 104]));
}

async fn reads_for_the_search_index_what_it_needs_without_whole_documents(store: &dyn Store, _clock: &FixedClock) {
    let mut batch = directory();
    let mut hall = place(HALL, "Parkhead Community Hall", 55.851, -4.196);
    hall.accessibility.push(kith_domain::hsds::Accessibility {
        id: id(40),
        location_id: Some(id(HALL)),
        description: Some("Step-free entrance".into()),
        details: Some("Hearing loop at reception".into()),
        url: None,
        attributes: vec![],
        metadata: vec![],
        extra: Default::default(),
    });
    batch.add_location(hall);
    store.write_batch(batch).await.unwrap();
    let full = store.services_after(None, 100).await.unwrap();
    let lean = store.services_after_for_index(None, 100).await.unwrap();
    assert_eq!(lean.len(), 4);
    for (f, l) in full.iter().zip(&lean) {
        assert_eq!((f.id, &f.name, &f.description), (l.id, &l.name, &l.description), "the service itself in full");
        let terms = |s: &Service| {
            s.attributes
                .iter()
                .map(|a| a.taxonomy_term.as_ref().map(|t| (t.id, t.name.clone(), t.code.clone())))
                .collect::<Vec<_>>()
        };
        assert_eq!(terms(f), terms(l), "with its taxonomy terms' names and codes");
        let org = |s: &Service| s.organization.as_ref().map(|o| (o.id, o.name.clone()));
        assert_eq!(org(f), org(l), "the organisation's name");
        let venue = |s: &Service| {
            s.service_at_locations
                .iter()
                .map(|sal| sal.location.as_ref().map(|v| (v.id, v.latitude, v.longitude, v.accessibility.clone())))
                .collect::<Vec<_>>()
        };
        assert_eq!(venue(f), venue(l), "each venue's place and accessibility");
    }
    let in_hall = lean.iter().find(|s| s.id == id(101)).unwrap();
    let access = &in_hall.service_at_locations[0].location.as_ref().unwrap().accessibility;
    assert_eq!(access[0].details.as_deref(), Some("Hearing loop at reception"));
    let after = store.services_after_for_index(Some(id(101)), 100).await.unwrap();
    assert_eq!(after.iter().map(|s| s.id).collect::<Vec<_>>(), [id(102), id(103)], "by keyset, as services_after");
}

async fn writing_the_same_records_again_changes_nothing(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let seq = store.last_seq().await.unwrap();
    let again = store.write_batch(directory()).await.unwrap();
    assert_eq!(again.total(), 0, "an identical import stores nothing new");
    assert_eq!(store.last_seq().await.unwrap(), seq, "and adds nothing to the change feed");
    assert_eq!(store.counts().await.unwrap().services, 4);
}

async fn updates_by_id_and_records_the_change(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let seq = store.last_seq().await.unwrap();
    let mut renamed = service(100, "Tollcross Park Health Walk", ORG_TRUST, PARK, &[WALKING]);
    renamed.extra.insert("x_funder".into(), serde_json::json!({"name": "Glasgow Life"}));
    let summary = store.put_service(renamed).await.unwrap();
    assert_eq!(summary.services, 1);

    let stored = store.service(id(100)).await.unwrap().unwrap();
    assert_eq!(stored.name, "Tollcross Park Health Walk");
    assert_eq!(
        stored.extra.get("x_funder"),
        Some(&serde_json::json!({"name": "Glasgow Life"})),
        "extension fields survive"
    );
    let changes = store.changes_since(seq, 100).await.unwrap();
    assert_eq!(changes.len(), 1);
    assert_eq!(
        (changes[0].object_type, changes[0].object_id, changes[0].op),
        (ObjectType::Service, id(100), ChangeOp::Upsert)
    );

    // The service lost its "Physical activity" link, so the filter no longer finds it.
    let activity = ServiceQuery { taxonomy_term_id: Some(id(NEED_ACTIVITY)), ..Default::default() };
    let names: Vec<_> = store.services(&activity).await.unwrap().items.into_iter().map(|s| s.name).collect();
    assert_eq!(names, ["Aqua Fit for Over 50s", "Chair-based Exercise"]);
}

async fn the_change_feed_is_ordered_and_pages(store: &dyn Store, clock: &FixedClock) {
    assert_eq!(store.last_seq().await.unwrap(), 0);
    assert!(store.changes_since(0, 10).await.unwrap().is_empty());
    store.write_batch(directory()).await.unwrap();
    let all = store.changes_since(0, 1000).await.unwrap();
    assert_eq!(all.len(), 13, "1 taxonomy, 4 terms, 2 organisations, 2 places, 4 services");
    assert!(all.windows(2).all(|w| w[0].seq < w[1].seq));
    assert!(all.iter().all(|c| c.at == clock.now_for_test()));
    assert_eq!(all.iter().filter(|c| c.object_type == ObjectType::Service).count(), 4);
    assert_eq!(store.last_seq().await.unwrap(), all.last().unwrap().seq);

    let first = store.changes_since(0, 5).await.unwrap();
    let rest = store.changes_since(first.last().unwrap().seq, 1000).await.unwrap();
    assert_eq!(first.len() + rest.len(), all.len());
    assert_eq!(rest.first().map(|c| c.seq), all.get(5).map(|c| c.seq));
}

trait NowForTest {
    fn now_for_test(&self) -> chrono::DateTime<Utc>;
}
impl NowForTest for FixedClock {
    fn now_for_test(&self) -> chrono::DateTime<Utc> {
        Clock::now(self)
    }
}

async fn deletes_a_service_and_its_links(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    assert!(store.delete_service(id(102)).await.unwrap());
    assert!(!store.delete_service(id(102)).await.unwrap(), "a second delete finds nothing");
    assert!(store.service(id(102)).await.unwrap().is_none());
    let money = ServiceQuery { taxonomy_term_id: Some(id(NEED_MONEY)), ..Default::default() };
    assert_eq!(store.services(&money).await.unwrap().total, 0);
    let last = store.changes_since(store.last_seq().await.unwrap() - 1, 10).await.unwrap();
    assert_eq!((last[0].object_id, last[0].op), (id(102), ChangeOp::Delete));
    assert_eq!(store.counts().await.unwrap().services, 3);
}

async fn status_changes_and_filters(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    store.set_service_status(id(101), ServiceStatus::TemporarilyClosed).await.unwrap();
    let closed = ServiceQuery { status: Some(ServiceStatus::TemporarilyClosed), ..Default::default() };
    let page = store.services(&closed).await.unwrap();
    assert_eq!(page.items.iter().map(|s| s.id).collect::<Vec<_>>(), [id(101)]);
    assert_eq!(page.items[0].status, ServiceStatus::TemporarilyClosed);
    let active = ServiceQuery { status: Some(ServiceStatus::Active), ..Default::default() };
    assert_eq!(store.services(&active).await.unwrap().total, 3);

    match store.set_service_status(id(999), ServiceStatus::Inactive).await {
        Err(StoreError::NotFound { what: "service", id: missing }) => assert_eq!(missing, id(999)),
        other => panic!("expected NotFound, got {other:?}"),
    }
}

async fn verification_uses_the_injected_clock(store: &dyn Store, clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    clock.advance(Duration::days(30));
    store.mark_service_verified(id(100), "Parkhead Community Trust").await.unwrap();
    let s = store.service(id(100)).await.unwrap().unwrap();
    assert_eq!(s.last_verified_at, Some(clock.now_for_test()));
    assert_eq!(s.last_verified_by.as_deref(), Some("Parkhead Community Trust"));
    assert_eq!(s.assured_date.map(|d| d.to_string()).as_deref(), Some("2026-04-01"));
}

async fn lists_services_with_filters_combined_and_pages(store: &dyn Store, clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let all = store.services(&ServiceQuery::default()).await.unwrap();
    let names: Vec<_> = all.items.iter().map(|s| s.name.as_str()).collect();
    assert_eq!(
        names,
        ["Aqua Fit for Over 50s", "Benefits and Debt Advice", "Chair-based Exercise", "Tollcross Walking Group"],
        "ordered by name"
    );
    assert!(all.items.iter().all(|s| s.organization.is_some()), "list items are nested too");

    let by_org = ServiceQuery { organization_id: Some(id(ORG_ADVICE)), ..Default::default() };
    assert_eq!(store.services(&by_org).await.unwrap().items[0].id, id(102));

    let both = ServiceQuery {
        organization_id: Some(id(ORG_TRUST)),
        taxonomy_term_id: Some(id(SWIMMING)),
        ..Default::default()
    };
    assert_eq!(store.services(&both).await.unwrap().items.iter().map(|s| s.id).collect::<Vec<_>>(), [id(101)]);

    let paged = ServiceQuery { page: PageRequest::new(2, 3), ..Default::default() };
    let page = store.services(&paged).await.unwrap();
    assert_eq!((page.total, page.total_pages(), page.items.len()), (4, 2, 1));
    assert_eq!(page.items[0].name, "Tollcross Walking Group");

    let before = clock.now_for_test();
    clock.advance(Duration::hours(1));
    store
        .put_service(service(103, "Chair-based Exercise (Thursdays)", ORG_TRUST, HALL, &[NEED_ACTIVITY]))
        .await
        .unwrap();
    let recent = ServiceQuery { modified_after: Some(before), ..Default::default() };
    let page = store.services(&recent).await.unwrap();
    assert_eq!(page.items.iter().map(|s| s.id).collect::<Vec<_>>(), [id(103)]);
    assert!(page.items[0].last_modified.is_some());
}

async fn organizations_locations_and_taxonomies(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let orgs = store.organizations(PageRequest::new(1, 1)).await.unwrap();
    assert_eq!((orgs.total, orgs.items[0].name.as_str()), (2, "East End Advice Centre"));
    assert_eq!(store.organization(id(ORG_TRUST)).await.unwrap().unwrap().description, "Run by local people");
    assert!(store.organization(id(999)).await.unwrap().is_none());
    assert_eq!(store.location(id(PARK)).await.unwrap().unwrap().name.as_deref(), Some("Tollcross Park"));

    let taxonomies = store.taxonomies(PageRequest::default()).await.unwrap();
    assert_eq!(taxonomies.items.iter().map(|t| t.name.as_str()).collect::<Vec<_>>(), ["Kith needs"]);
    let top = TermQuery { parent_id: Some(None), ..Default::default() };
    let names = |p: kith_store::Page<TaxonomyTerm>| p.items.into_iter().map(|t| t.name).collect::<Vec<_>>();
    assert_eq!(names(store.taxonomy_terms(&top).await.unwrap()), ["Money and debt", "Physical activity"]);
    let children = TermQuery { parent_id: Some(Some(id(NEED_ACTIVITY))), ..Default::default() };
    assert_eq!(names(store.taxonomy_terms(&children).await.unwrap()), ["Swimming", "Walking groups"]);
    let in_taxonomy = TermQuery { taxonomy_id: Some(id(TAXONOMY)), ..Default::default() };
    assert_eq!(store.taxonomy_terms(&in_taxonomy).await.unwrap().total, 4);
    let elsewhere = TermQuery { taxonomy_id: Some(id(999)), ..Default::default() };
    assert_eq!(store.taxonomy_terms(&elsewhere).await.unwrap().total, 0);
    assert_eq!(store.taxonomy_term(id(WALKING)).await.unwrap().unwrap().parent_id, Some(id(NEED_ACTIVITY)));
}

async fn nested_documents_are_split_and_kept_once(store: &dyn Store, _clock: &FixedClock) {
    // A service as publishers send it: organisation and location nested inside.
    let mut s = Service::new(id(200), "Men's Shed", ServiceStatus::Active);
    s.organization = Some(Box::new(Organization::new(id(201), "Shettleston Men's Shed", "Woodwork and company")));
    let mut sal = service(0, "", 0, 0, &[]).service_at_locations.remove(0);
    sal.id = id(202);
    sal.location_id = None;
    sal.location = Some(place(203, "The Shed, Old Shettleston Road", 55.853, -4.16));
    s.service_at_locations.push(sal);
    store.put_service(s.clone()).await.unwrap();
    let mut sibling = s.clone();
    sibling.id = id(204);
    sibling.name = "Men's Shed Tuesday Club".into();
    sibling.service_at_locations[0].id = id(205);
    store.put_service(sibling).await.unwrap();

    let counts = store.counts().await.unwrap();
    assert_eq!((counts.services, counts.organizations, counts.locations), (2, 1, 1));
    let back = store.service(id(200)).await.unwrap().unwrap();
    assert_eq!(back.organization_id, Some(id(201)));
    assert_eq!(back.service_at_locations[0].location_id, Some(id(203)));
}

async fn reopening_runs_no_migration_twice_and_keeps_data(store: &dyn Store, _clock: &FixedClock) {
    // Migrations ran when the store opened; writing and reading proves the schema is
    // complete. Reopening is covered by the engine-specific test below.
    store.write_batch(directory()).await.unwrap();
    assert_eq!(store.counts().await.unwrap().services, 4);
}

fn pc(s: &str) -> Postcode {
    Postcode::parse(s).unwrap()
}

fn postcode_place(code: &str, lat: f64, lon: f64, la: &str, dz: &str) -> PostcodePlace {
    PostcodePlace {
        postcode: pc(code),
        latitude: lat,
        longitude: lon,
        country: Some("S92000003".into()),
        local_authority: Some(la.into()),
        health_area: Some("S08000031".into()),
        hscp: None,
        ward: Some("S13002976".into()),
        lsoa11: Some(dz.into()),
        lsoa21: None,
    }
}

async fn geography_postcodes_deprivation_and_places(store: &dyn Store, _clock: &FixedClock) {
    let glasgow = "S12000049";
    let written = store
        .put_postcodes(vec![
            postcode_place("G31 2ER", 55.8587, -4.2163, glasgow, "S01010001"),
            postcode_place("G31 2ES", 55.8590, -4.2170, glasgow, "S01010002"),
            postcode_place("G31 3AA", 55.8620, -4.2100, glasgow, "S01010002"),
            postcode_place("G3 6AA", 55.8650, -4.2800, glasgow, "S01010003"),
            postcode_place("KY16 9SS", 56.3398, -2.7967, "S12000047", "S01009999"),
        ])
        .await
        .unwrap();
    assert_eq!(written, 5);
    // Loading again replaces rather than duplicates.
    store.put_postcodes(vec![postcode_place("G31 2ER", 55.8588, -4.2163, glasgow, "S01010001")]).await.unwrap();

    let simd = |dz: &str, rank| Deprivation::from_rank(DeprivationIndex::Simd2020v2, dz.into(), rank, 6976).unwrap();
    store.put_deprivation(vec![simd("S01010001", 12), simd("S01010002", 5000)]).await.unwrap();
    store.put_deprivation(vec![simd("S01010001", 10)]).await.unwrap();

    let info = store.postcode(&pc("g312er")).await.unwrap().unwrap();
    assert_eq!(info.place.postcode.as_str(), "G31 2ER");
    assert!((info.place.latitude - 55.8588).abs() < 1e-9);
    assert_eq!(info.place.local_authority.as_deref(), Some(glasgow));
    assert_eq!(info.deprivation, vec![simd("S01010001", 10)]);
    assert_eq!(info.deprivation[0].decile, 1);
    assert!(store.postcode(&pc("G31 9ZZ")).await.unwrap().is_none());
    let no_rank = store.postcode(&pc("G3 6AA")).await.unwrap().unwrap();
    assert!(no_rank.deprivation.is_empty());

    // "G3 " must not match "G31 …": prefixes end at the space.
    let g3: Vec<String> =
        store.postcodes_with_prefix("G3 ", 10).await.unwrap().into_iter().map(|p| p.postcode.to_string()).collect();
    assert_eq!(g3, ["G3 6AA"]);
    let sector: Vec<String> =
        store.postcodes_with_prefix("G31 2", 10).await.unwrap().into_iter().map(|p| p.postcode.to_string()).collect();
    assert_eq!(sector, ["G31 2ER", "G31 2ES"]);
    assert_eq!(store.postcodes_with_prefix("G31 ", 1).await.unwrap().len(), 1);

    let g31 = store.outward(&Outward::parse("g31").unwrap()).await.unwrap().unwrap();
    assert_eq!(g31.postcodes, 3);
    assert_eq!(g31.local_authority.as_deref(), Some(glasgow));
    assert!((g31.centre.lat - (55.8588 + 55.8590 + 55.8620) / 3.0).abs() < 1e-9);
    assert!(store.outward(&Outward::parse("G99").unwrap()).await.unwrap().is_none());

    let place = |name: &str, la: Option<&str>| Place {
        name: name.into(),
        latitude: 55.85,
        longitude: -4.2,
        local_authority: la.map(Into::into),
    };
    store
        .put_places(vec![
            place("Parkhead", Some(glasgow)),
            place("Park", None),
            place("Dennistoun", Some(glasgow)),
            place("St Andrews", Some("S12000047")),
        ])
        .await
        .unwrap();
    let names = |v: Vec<Place>| v.into_iter().map(|p| p.name).collect::<Vec<_>>();
    assert_eq!(names(store.places_named("PARK", 10).await.unwrap()), ["Park", "Parkhead"]);
    assert_eq!(names(store.places_named("  st   andrews", 10).await.unwrap()), ["St Andrews"]);
    assert!(store.places_named("Nowhere", 10).await.unwrap().is_empty());
    assert_eq!(store.places_named("Park", 10).await.unwrap()[0].local_authority, None);

    let counts = store.geo_counts().await.unwrap();
    assert_eq!((counts.postcodes, counts.deprivation, counts.places), (5, 2, 4));
}

async fn reads_every_service_in_id_order_by_keyset(store: &dyn Store, _clock: &FixedClock) {
    store.write_batch(directory()).await.unwrap();
    let mut seen = Vec::new();
    let mut after = None;
    loop {
        let page = store.services_after(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        assert!(page.len() <= 3);
        assert!(page.iter().all(|s| s.organization.is_some()), "fully nested");
        after = Some(last.id);
        seen.extend(page.iter().map(|s| s.id));
    }
    let mut expected: Vec<Uuid> = (100..104).map(id).collect();
    expected.sort();
    assert_eq!(seen, expected, "each service once, in id order");
    assert!(store.services_after(Some(Uuid::max()), 10).await.unwrap().is_empty());

    let mut organizations = Vec::new();
    let mut after = None;
    loop {
        let page = store.organizations_after(after, 1).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some(last.id);
        organizations.extend(page.iter().map(|o| o.id));
    }
    let mut expected: Vec<Uuid> = directory().organizations.iter().map(|o| o.id).collect();
    expected.sort();
    assert!(expected.len() > 1);
    assert_eq!(organizations, expected, "each organisation once, in id order");
}

async fn problem_reports_are_kept_newest_first_by_service(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::report::{ProblemKind, ProblemReport, ReportStatus};
    store.write_batch(directory()).await.unwrap();
    let walking = id(100);
    let swimming = id(101);
    let at = |minutes: i64| clock.now() + Duration::minutes(minutes);
    let report = |n: u128, service, kind, details: &str, minutes| {
        ProblemReport::new(id(n), service, Some(kind), details, at(minutes)).unwrap()
    };
    store.add_problem_report(report(900, walking, ProblemKind::Times, "Now on Thursdays", 0)).await.unwrap();
    store.add_problem_report(report(901, walking, ProblemKind::Closed, "", 5)).await.unwrap();
    store
        .add_problem_report(report(902, swimming, ProblemKind::Other, "Pool shut for repairs ‘until May’", 10))
        .await
        .unwrap();

    let on_walking = store.problem_reports(Some(walking), 10).await.unwrap();
    assert_eq!(on_walking.iter().map(|r| r.kind).collect::<Vec<_>>(), vec![ProblemKind::Closed, ProblemKind::Times]);
    assert_eq!(on_walking[1].details, "Now on Thursdays");
    assert_eq!(on_walking[1].created_at, at(0));
    assert_eq!(on_walking[1].status, ReportStatus::Open);
    let all = store.problem_reports(None, 2).await.unwrap();
    assert_eq!(all.len(), 2, "the limit holds");
    assert_eq!(all[0].details, "Pool shut for repairs ‘until May’");
    // The same id twice is refused, and the first report is kept.
    assert!(store.add_problem_report(report(900, walking, ProblemKind::Place, "again", 20)).await.is_err());
    assert_eq!(store.problem_reports(Some(walking), 10).await.unwrap().len(), 2);
}

fn area(n: u128, name: &str) -> Area {
    Area { id: id(n), kind: AreaKind::Pcn, name: name.into() }
}

fn org(n: u128, kind: OrgKind, name: &str, ods: Option<&str>, areas: &[u128]) -> Organisation {
    Organisation {
        id: id(n),
        kind,
        name: name.into(),
        ods_code: ods.map(str::to_owned),
        directory_id: None,
        areas: areas.iter().map(|a| id(*a)).collect(),
    }
}

fn user(n: u128, email_index: &str, grants: Vec<Grant>, at: chrono::DateTime<Utc>) -> UserRecord {
    UserRecord {
        id: id(n),
        email_index: email_index.into(),
        email: Sealed(format!("v1.k1.sealed-email-{n}")),
        name: Sealed(format!("v1.k1.sealed-name-{n}")),
        password_hash: Some("$argon2id$v=19$m=19456,t=2,p=1$c2FsdA$aGFzaA".into()),
        totp_secret: None,
        totp_last_step: None,
        grants,
        disabled: false,
        created_at: at,
    }
}

async fn organisations_areas_and_users_with_roles(store: &dyn Store, clock: &FixedClock) {
    store.put_area(area(700, "East End PCN")).await.unwrap();
    store.put_area(area(701, "Burngreave neighbourhood")).await.unwrap();
    let practice = org(710, OrgKind::Practice, "Parkhead Health Centre", Some("43210"), &[700]);
    store.put_organisation(practice.clone()).await.unwrap();
    let group = org(711, OrgKind::Vcs, "Men's Shed", None, &[700, 701]);
    store.put_organisation(group.clone()).await.unwrap();
    assert_eq!(store.organisation(id(711)).await.unwrap(), Some(group.clone()));
    let names: Vec<String> = store.organisations().await.unwrap().into_iter().map(|o| o.name).collect();
    assert_eq!(names, ["Men's Shed", "Parkhead Health Centre"]);
    assert_eq!(
        store.areas().await.unwrap().iter().map(|a| a.name.as_str()).collect::<Vec<_>>(),
        ["Burngreave neighbourhood", "East End PCN"]
    );
    // Leaving an area replaces the memberships.
    let mut moved = group.clone();
    moved.areas = vec![id(701)];
    store.put_organisation(moved.clone()).await.unwrap();
    assert_eq!(store.organisation(id(711)).await.unwrap().unwrap().areas, vec![id(701)]);

    let clash = org(712, OrgKind::Practice, "Another practice", Some("43210"), &[]);
    assert!(matches!(store.put_organisation(clash).await, Err(StoreError::Conflict(m)) if m.contains("43210")));
    let nowhere = org(713, OrgKind::Vcs, "Nowhere group", None, &[799]);
    assert!(matches!(store.put_organisation(nowhere).await, Err(StoreError::Conflict(_))));
    assert!(store.organisation(id(713)).await.unwrap().is_none(), "nothing half-written");

    let grants = vec![
        Grant { role: Role::Receptionist, scope: Scope::Organisation(id(710)) },
        Grant { role: Role::Curator, scope: Scope::Area(id(700)) },
    ];
    let sam = user(720, "idx-sam", grants.clone(), clock.now());
    store.put_user(sam.clone()).await.unwrap();
    let mut read = store.user(id(720)).await.unwrap().unwrap();
    read.grants.sort_by_key(|g| g.role);
    assert_eq!(read.grants, grants);
    assert_eq!(read.email, sam.email);
    assert_eq!(store.user_by_email_index("idx-sam").await.unwrap().map(|u| u.id), Some(id(720)));
    assert!(store.user_by_email_index("idx-nobody").await.unwrap().is_none());

    let mut demoted = sam.clone();
    demoted.grants = vec![Grant { role: Role::Commissioner, scope: Scope::Area(id(700)) }];
    demoted.disabled = true;
    store.put_user(demoted.clone()).await.unwrap();
    let read = store.user(id(720)).await.unwrap().unwrap();
    assert_eq!((read.grants, read.disabled), (demoted.grants, true));

    let twin = user(721, "idx-sam", vec![], clock.now());
    assert!(matches!(store.put_user(twin).await, Err(StoreError::Conflict(m)) if m.contains("email")));
    assert_eq!(store.users().await.unwrap().len(), 1);
}

async fn sessions_rotate_expire_and_end_everywhere(store: &dyn Store, clock: &FixedClock) {
    store.put_user(user(730, "idx-a", vec![], clock.now())).await.unwrap();
    let t0 = clock.now();
    let session = |digest: &str, stage| SessionRecord {
        digest: digest.into(),
        user_id: id(730),
        stage,
        purpose: None,
        second_factor: stage == SessionStage::Complete,
        created_at: t0,
        last_seen_at: t0,
    };
    store.create_session(session("d1", SessionStage::SecondFactor), None, Alongside::none()).await.unwrap();
    let password_only =
        SessionRecord { digest: "d0".into(), second_factor: false, ..session("d0", SessionStage::Complete) };
    store.create_session(password_only.clone(), None, Alongside::none()).await.unwrap();
    assert_eq!(store.session("d0").await.unwrap(), Some(password_only), "which factors began it is kept");
    store.delete_session("d0", Alongside::none()).await.unwrap();
    store.create_session(session("d2", SessionStage::Complete), None, Alongside::none()).await.unwrap();
    let mut linked = session("d3", SessionStage::Complete);
    linked.purpose = Some((LinkPurpose::UpdateListing, id(1)));
    store.create_session(linked.clone(), None, Alongside::none()).await.unwrap();
    assert_eq!(store.session("d3").await.unwrap(), Some(linked));
    assert!(
        store.create_session(session("d1", SessionStage::Complete), None, Alongside::none()).await.is_err(),
        "digests are unique"
    );

    store.touch_session("d2", t0 + Duration::minutes(10)).await.unwrap();
    store.touch_session("d2", t0 + Duration::minutes(5)).await.unwrap();
    assert_eq!(store.session("d2").await.unwrap().unwrap().last_seen_at, t0 + Duration::minutes(10));

    store.delete_session("d1", Alongside::none()).await.unwrap();
    assert!(store.session("d1").await.unwrap().is_none());

    // A step up in sign-in: the new session replaces the old, and its audit entry is
    // written with it, or none of it is.
    let signed_in = AuditEvent {
        seq: 0,
        at: t0,
        actor: Some(id(730)),
        actor_roles: String::new(),
        action: "sign_in".into(),
        record_type: "user".into(),
        record_id: Some(id(730).to_string()),
        ip: None,
        reason: "password and code".into(),
    };
    let audited = || async {
        let q = AuditQuery { action: Some("sign_in".into()), limit: 10, ..Default::default() };
        store.audit(&q).await.unwrap().len()
    };
    let clash = session("d3", SessionStage::Complete);
    let failed = store.create_session(clash, Some("d2".into()), Alongside::audited(signed_in.clone())).await;
    assert!(failed.is_err(), "a digest in use");
    assert!(store.session("d2").await.unwrap().is_some(), "the old session is kept when the new one fails");
    assert_eq!(audited().await, 0, "and no sign-in is recorded");
    store
        .create_session(session("d4", SessionStage::Complete), Some("d2".into()), Alongside::audited(signed_in))
        .await
        .unwrap();
    assert!(store.session("d2").await.unwrap().is_none() && store.session("d4").await.unwrap().is_some());
    assert_eq!(audited().await, 1);

    assert_eq!(store.delete_user_sessions(id(730), Alongside::none()).await.unwrap(), 2);
    assert!(store.session("d4").await.unwrap().is_none());
}

async fn magic_links_work_once_and_expire(store: &dyn Store, clock: &FixedClock) {
    store.put_user(user(740, "idx-b", vec![], clock.now())).await.unwrap();
    let now = clock.now();
    let link = |digest: &str| MagicLink {
        digest: digest.into(),
        user_id: id(740),
        purpose: LinkPurpose::UpdateListing,
        target: id(1),
        created_at: now,
        expires_at: now + Duration::minutes(30),
        used_at: None,
    };
    store.create_magic_link(link("m1"), Alongside::none()).await.unwrap();
    store.create_magic_link(link("m2"), Alongside::none()).await.unwrap();
    match store.use_magic_link("m1", now + Duration::minutes(1)).await.unwrap() {
        LinkUse::Accepted(l) => {
            assert_eq!((l.user_id, l.purpose, l.target), (id(740), LinkPurpose::UpdateListing, id(1)));
            assert_eq!(l.used_at, Some(now + Duration::minutes(1)));
        }
        other => panic!("expected the link to work: {other:?}"),
    }
    assert_eq!(store.use_magic_link("m1", now + Duration::minutes(2)).await.unwrap(), LinkUse::AlreadyUsed);
    assert_eq!(store.use_magic_link("m2", now + Duration::minutes(30)).await.unwrap(), LinkUse::Expired);
    assert_eq!(store.use_magic_link("nope", now).await.unwrap(), LinkUse::Unknown);
}

async fn totp_steps_and_recovery_codes_are_single_use(store: &dyn Store, clock: &FixedClock) {
    store.put_user(user(750, "idx-c", vec![], clock.now())).await.unwrap();
    assert!(store.use_totp_step(id(750), 100).await.unwrap());
    assert!(!store.use_totp_step(id(750), 100).await.unwrap(), "the same step twice");
    assert!(!store.use_totp_step(id(750), 99).await.unwrap(), "an earlier step");
    assert!(store.use_totp_step(id(750), 101).await.unwrap());
    assert_eq!(store.user(id(750)).await.unwrap().unwrap().totp_last_step, Some(101));

    store.set_recovery_codes(id(750), vec!["r1".into(), "r2".into(), "r3".into()]).await.unwrap();
    assert_eq!(store.recovery_codes_left(id(750)).await.unwrap(), 3);
    assert!(store.use_recovery_code(id(750), "r2").await.unwrap());
    assert!(!store.use_recovery_code(id(750), "r2").await.unwrap());
    assert!(!store.use_recovery_code(id(751), "r1").await.unwrap(), "another user's code");
    assert_eq!(store.recovery_codes_left(id(750)).await.unwrap(), 2);
    store.set_recovery_codes(id(750), vec!["r9".into()]).await.unwrap();
    assert!(!store.use_recovery_code(id(750), "r1").await.unwrap(), "replaced codes are gone");
}

async fn sign_in_attempts_are_counted_in_a_window(store: &dyn Store, clock: &FixedClock) {
    let t0 = clock.now();
    for minute in 0..4 {
        store.record_attempt("email:x", t0 + Duration::minutes(minute), false).await.unwrap();
    }
    store.record_attempt("email:x", t0 + Duration::minutes(4), true).await.unwrap();
    store.record_attempt("email:y", t0, false).await.unwrap();
    let (n, last) = store.failures_since("email:x", t0 + Duration::minutes(1)).await.unwrap();
    assert_eq!((n, last), (3, Some(t0 + Duration::minutes(3))));
    assert_eq!(store.failures_since("email:z", t0).await.unwrap(), (0, None));
    assert_eq!(store.attempts_since("email:x", t0).await.unwrap(), 5);
}

async fn the_audit_log_appends_and_reads_newest_first(store: &dyn Store, clock: &FixedClock) {
    let event = |actor: Option<Uuid>, action: &str, minutes: i64| AuditEvent {
        seq: 0,
        at: clock.now() + Duration::minutes(minutes),
        actor,
        actor_roles: "area_admin@area:x".into(),
        action: action.into(),
        record_type: "user".into(),
        record_id: Some("r".into()),
        ip: Some("192.0.2.1".into()),
        reason: "POST /signin".into(),
    };
    let first = store.append_audit(event(Some(id(1)), "sign_in", 0)).await.unwrap();
    let second = store.append_audit(event(None, "sign_in_failed", 1)).await.unwrap();
    let third = store.append_audit(event(Some(id(1)), "audit.view", 2)).await.unwrap();
    assert!(first < second && second < third);
    let all = store.audit(&AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.iter().map(|e| e.seq).collect::<Vec<_>>(), [third, second, first]);
    assert_eq!(all[2], AuditEvent { seq: first, ..event(Some(id(1)), "sign_in", 0) });
    let by_actor = store.audit(&AuditQuery { actor: Some(id(1)), limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(by_actor.len(), 2);
    let older = store.audit(&AuditQuery { before_seq: Some(third), limit: 1, ..Default::default() }).await.unwrap();
    assert_eq!(older[0].seq, second);
    let failed =
        store.audit(&AuditQuery { action: Some("sign_in_failed".into()), limit: 10, ..Default::default() }).await;
    assert_eq!(failed.unwrap().len(), 1);
    let recent = AuditQuery { since: Some(clock.now() + Duration::minutes(1)), limit: 10, ..Default::default() };
    assert_eq!(store.audit(&recent).await.unwrap().len(), 2);
}

async fn sealed_fields_page_and_are_replaced(store: &dyn Store, clock: &FixedClock) {
    for n in 760..765 {
        let mut u = user(n, &format!("idx-{n}"), vec![], clock.now());
        if n == 761 {
            u.totp_secret = Some(Sealed("v1.k1.totp".into()));
        }
        store.put_user(u).await.unwrap();
    }
    let first = store.sealed_fields(None, 2).await.unwrap();
    assert_eq!(first.len(), 5, "two users' email and name, and one TOTP secret");
    assert!(first.iter().any(|f| f.field == "users.totp_secret" && f.row_id == id(761)));
    let rest = store.sealed_fields(Some(id(761)), 100).await.unwrap();
    assert_eq!(rest.len(), 6);
    assert!(rest.iter().all(|f| f.row_id > id(761)));
    let resealed: Vec<SealedField> =
        rest.into_iter().map(|f| SealedField { value: Sealed(f.value.0.replace("k1", "k2")), ..f }).collect();
    assert_eq!(store.replace_sealed(resealed).await.unwrap(), 6);
    assert_eq!(store.user(id(764)).await.unwrap().unwrap().name, Sealed("v1.k2.sealed-name-764".into()));
    assert_eq!(store.user(id(760)).await.unwrap().unwrap().name, Sealed("v1.k1.sealed-name-760".into()));
}

async fn the_outbox_claims_once_retries_and_erases_what_it_sent(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::outbox::{Channel, OutboxMessage};
    let t0 = clock.now();
    let message = |n: u128, minutes: i64| OutboxMessage {
        id: id(n),
        channel: Channel::Email,
        recipient: Sealed(format!("sealed-recipient-{n}")),
        subject: "Your link".into(),
        body: Sealed(format!("sealed-body-{n}")),
        purpose: "magic_link".into(),
        created_at: t0 + Duration::minutes(minutes),
        attempts: 0,
    };
    store.enqueue(Alongside::message(message(800, 0))).await.unwrap();
    store.enqueue(Alongside::message(message(801, 1))).await.unwrap();
    store.enqueue(Alongside::message(message(802, 10))).await.unwrap();
    assert!(store.enqueue(Alongside::message(message(800, 0))).await.is_err(), "ids are unique");

    let now = t0 + Duration::minutes(2);
    let claimed = store.claim_due(now, 10).await.unwrap();
    assert_eq!(claimed.iter().map(|m| m.id).collect::<Vec<_>>(), [id(800), id(801)], "due ones, oldest first");
    assert_eq!(claimed[0].attempts, 1);
    assert_eq!(claimed[0].body, Sealed("sealed-body-800".into()));
    assert!(store.claim_due(now, 10).await.unwrap().is_empty(), "claimed messages are not claimed twice");

    store.mark_sent(id(800), now).await.unwrap();
    store.mark_failed(id(801), "the mail server said no", Some(now + Duration::minutes(5))).await.unwrap();
    assert!(store.claim_due(now + Duration::minutes(4), 10).await.unwrap().is_empty());
    let later = now + Duration::minutes(15);
    let retried = store.claim_due(later, 10).await.unwrap();
    assert_eq!(retried.iter().map(|m| (m.id, m.attempts)).collect::<Vec<_>>(), [(id(801), 2), (id(802), 1)]);
    store.mark_failed(id(801), "still no", None).await.unwrap();
    // A worker that stopped mid-send loses its claim after the lease.
    let lapsed = store.claim_due(later + Duration::seconds(kith_store::outbox::LEASE_SECONDS + 1), 10).await.unwrap();
    assert_eq!(lapsed.iter().map(|m| m.id).collect::<Vec<_>>(), [id(802)]);
    store.mark_sent(id(802), later).await.unwrap();
    let counts = store.outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent, counts.failed), (0, 2, 1));
}

async fn shared_lists_keep_their_services_in_order_under_one_code(store: &dyn Store, clock: &FixedClock) {
    let services = [id(903), id(901), id(902)];
    store.put_shared_list("K7QW2M9XHP", &services, clock.now()).await.unwrap();
    assert_eq!(store.shared_list("K7QW2M9XHP").await.unwrap().unwrap(), services);
    assert_eq!(store.shared_list("k7qw2m9xhp").await.unwrap(), None, "codes are exact");
    assert_eq!(store.shared_list("NOSUCHCODE").await.unwrap(), None);
    let taken = store.put_shared_list("K7QW2M9XHP", &[id(904)], clock.now()).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    assert_eq!(store.shared_list("K7QW2M9XHP").await.unwrap().unwrap(), services, "unchanged");
}

async fn feeds_are_claimed_by_one_puller_when_due_and_keep_their_pulls(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::feed::{Feed, FeedPull};
    let now = clock.now();
    let feed = |n: u128, name: &str| Feed {
        id: id(n),
        name: name.into(),
        url: format!("https://{name}.example/api"),
        areas: vec![kith_domain::geo::WholeArea::parse("E06000023").unwrap()],
        every_hours: 24,
        withdraw_after: 3,
        created_at: now,
    };
    store.add_feed(&feed(950, "bristol")).await.unwrap();
    store.add_feed(&feed(951, "another")).await.unwrap();
    let taken = store.add_feed(&feed(952, "bristol")).await;
    assert!(matches!(taken, Err(StoreError::Conflict(_))), "{taken:?}");
    let names: Vec<String> = store.feeds().await.unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(names, ["another", "bristol"]);
    assert_eq!(store.feeds().await.unwrap()[1], feed(950, "bristol"), "read back as written");

    // Both are due; each is claimed once while its lease runs.
    let first = store.claim_due_feed(now, 600).await.unwrap().unwrap();
    let second = store.claim_due_feed(now, 600).await.unwrap().unwrap();
    assert_ne!(first.id, second.id);
    assert_eq!(store.claim_due_feed(now, 600).await.unwrap(), None, "both are claimed");
    // A claim whose holder stopped lapses.
    let lapsed = store.claim_due_feed(now + Duration::seconds(601), 600).await.unwrap().unwrap();
    assert_eq!(lapsed.id, first.id);

    let pull = FeedPull {
        id: id(960),
        feed_id: id(950),
        started_at: now,
        finished_at: now + Duration::seconds(3),
        pages: 17,
        services: 817,
        written: 817,
        new: 800,
        withdrawn: 1,
        details: 40,
        rejected: 2,
        problems: vec!["a service with no name".into()],
        error: None,
        full: true,
        since: None,
    };
    store.record_pull(&pull, now + Duration::hours(24)).await.unwrap();
    let later = FeedPull {
        id: id(961),
        started_at: now + Duration::hours(24),
        error: Some("the host did not answer".into()),
        ..pull.clone()
    };
    store.record_pull(&later, now + Duration::hours(48)).await.unwrap();
    assert_eq!(store.pulls(id(950), 10).await.unwrap(), [later.clone(), pull.clone()], "newest first");
    assert_eq!(store.pulls(id(950), 1).await.unwrap(), [later]);
    // Recorded: not due again until its next pull, whoever asks.
    let due: Vec<Uuid> = [store.claim_due_feed(now + Duration::seconds(1300), 600).await.unwrap()]
        .into_iter()
        .flatten()
        .map(|f| f.id)
        .collect();
    assert!(!due.contains(&id(950)), "bristol is not due until its next pull");
    let gone = FeedPull { id: id(962), feed_id: id(999), ..pull };
    assert!(matches!(store.record_pull(&gone, now).await, Err(StoreError::NotFound { .. })));

    assert!(store.remove_feed(id(950)).await.unwrap());
    assert!(!store.remove_feed(id(950)).await.unwrap());
    assert!(store.pulls(id(950), 10).await.unwrap().is_empty(), "its pulls go with it");
}

/// A practice, a group, a referrer and a patient, for the referral tests.
async fn caseload_setup(store: &dyn Store, clock: &FixedClock) -> (PatientRecord, Uuid, Uuid, Uuid) {
    use kith_domain::referral::ContactMethod;
    store.put_organisation(org(900, OrgKind::Practice, "Parkhead Health Centre", Some("43210"), &[])).await.unwrap();
    store.put_organisation(org(901, OrgKind::Vcs, "Men's Shed", None, &[])).await.unwrap();
    let referrer = user(
        902,
        "idx-referrer",
        vec![Grant { role: Role::LinkWorker, scope: Scope::Organisation(id(900)) }],
        clock.now(),
    );
    store.put_user(referrer).await.unwrap();
    let patient = PatientRecord {
        id: id(903),
        organisation_id: id(900),
        nhs_number_index: Some("idx-nhs-9990000018".into()),
        local_id_index: None,
        details: Sealed("v1.k1.sealed-patient".into()),
        contact_method: ContactMethod::Text,
        language: Some("en".into()),
        deprivation_decile: Some(1),
        neighbourhood: Some("Parkhead".into()),
        created_at: clock.now(),
    };
    store.put_patient(patient.clone(), Alongside::none()).await.unwrap();
    (patient, id(900), id(901), id(902))
}

fn referral_record(
    n: u128,
    kind: ReferralKind,
    patient: Uuid,
    group: Uuid,
    referrer: Uuid,
    practice: Uuid,
    at: chrono::DateTime<Utc>,
) -> ReferralRecord {
    ReferralRecord {
        id: id(n),
        kind,
        patient_id: patient,
        service_id: id(1),
        // A signpost is the practice's own: the store refuses one with a group.
        group_id: (kind == ReferralKind::Referral).then_some(group),
        referrer_user: referrer,
        referrer_org: practice,
        status: TaskStatus::Requested,
        details: Sealed(format!("v1.k1.sealed-referral-{n}")),
        safeguarding: false,
        created_at: at,
        follow_up_due: Some(at + Duration::days(28)),
    }
}

fn step(referral: u128, status: TaskStatus, at: chrono::DateTime<Utc>, note: &str) -> ReferralEvent {
    ReferralEvent { seq: 0, referral_id: id(referral), at, actor: None, status, note: note.into() }
}

async fn referrals_move_by_the_rules_with_a_timeline(store: &dyn Store, clock: &FixedClock) {
    let (patient, practice, group, referrer) = caseload_setup(store, clock).await;
    let t0 = clock.now();
    assert_eq!(store.patient(patient.id).await.unwrap(), Some(patient.clone()));
    assert_eq!(
        store.patient_by_nhs_index(practice, "idx-nhs-9990000018").await.unwrap().map(|p| p.id),
        Some(patient.id)
    );
    assert!(store.patient_by_nhs_index(group, "idx-nhs-9990000018").await.unwrap().is_none(), "another practice's");
    let twin = PatientRecord { id: id(904), ..patient.clone() };
    assert!(matches!(store.put_patient(twin, Alongside::none()).await, Err(StoreError::Conflict(_))));

    let referral = referral_record(910, ReferralKind::Referral, patient.id, group, referrer, practice, t0);
    store.create_referral(referral.clone(), step(910, TaskStatus::Requested, t0, "sent")).await.unwrap();
    let signpost = ReferralRecord {
        status: TaskStatus::Completed,
        ..referral_record(911, ReferralKind::Signpost, patient.id, group, referrer, practice, t0 + Duration::minutes(1))
    };
    store.create_referral(signpost.clone(), step(911, TaskStatus::Completed, t0, "information given")).await.unwrap();
    // A signpost shares nothing with a group: the database itself refuses one with a group.
    let shared = ReferralRecord { id: id(913), group_id: Some(group), ..signpost };
    assert!(store.create_referral(shared, step(913, TaskStatus::Completed, t0, "x")).await.is_err());
    assert!(store.referral(id(913)).await.unwrap().is_none());
    assert_eq!(store.referral(id(910)).await.unwrap(), Some(referral.clone()));
    assert_eq!(
        store.referrals_for_group(group, 10).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        [id(910)],
        "the group sees referrals, not signposts"
    );
    assert_eq!(store.referrals_for_patient(patient.id).await.unwrap().len(), 2);

    // Nothing half-written: a referral for nobody leaves no timeline either.
    let orphan = referral_record(912, ReferralKind::Referral, id(999), group, referrer, practice, t0);
    assert!(matches!(
        store.create_referral(orphan, step(912, TaskStatus::Requested, t0, "sent")).await,
        Err(StoreError::Conflict(_))
    ));
    assert!(store.timeline(id(912)).await.unwrap().is_empty());

    let t1 = t0 + Duration::hours(2);
    assert!(
        store
            .move_referral(
                id(910),
                TaskStatus::Requested,
                step(910, TaskStatus::Accepted, t1, "accepted"),
                Alongside::none()
            )
            .await
            .unwrap()
    );
    // Someone else moved it first: nothing changes.
    assert!(
        !store
            .move_referral(
                id(910),
                TaskStatus::Requested,
                step(910, TaskStatus::Rejected, t1, "no capacity"),
                Alongside::none()
            )
            .await
            .unwrap()
    );
    assert_eq!(store.referral(id(910)).await.unwrap().unwrap().status, TaskStatus::Accepted);
    assert!(
        store
            .move_referral(
                id(910),
                TaskStatus::Accepted,
                step(910, TaskStatus::Cancelled, t1, "withdrawn"),
                Alongside::none()
            )
            .await
            .unwrap()
    );
    let refused = store
        .move_referral(id(910), TaskStatus::Cancelled, step(910, TaskStatus::Accepted, t1, "again"), Alongside::none())
        .await;
    assert!(matches!(refused, Err(StoreError::Conflict(m)) if m.contains("cannot be changed now")));
    let timeline = store.timeline(id(910)).await.unwrap();
    let steps: Vec<(TaskStatus, &str)> = timeline.iter().map(|e| (e.status, e.note.as_str())).collect();
    assert_eq!(
        steps,
        [(TaskStatus::Requested, "sent"), (TaskStatus::Accepted, "accepted"), (TaskStatus::Cancelled, "withdrawn")]
    );
    assert!(timeline.windows(2).all(|w| w[0].seq < w[1].seq));
}

fn follow_up_for(referral: &ReferralRecord) -> kith_domain::referral::FollowUp {
    kith_domain::referral::FollowUp::new(referral.id, referral.created_at + Duration::days(28), referral.referrer_user)
}

fn rows(referral: ReferralRecord, note: &str, follow_up: bool) -> kith_store::referrals::NewReferralRows {
    let first = ReferralEvent {
        seq: 0,
        referral_id: referral.id,
        at: referral.created_at,
        actor: Some(referral.referrer_user),
        status: referral.status,
        note: note.into(),
    };
    let follow_up = follow_up.then(|| follow_up_for(&referral));
    kith_store::referrals::NewReferralRows { referral, first, follow_up, baseline: None }
}

async fn follow_ups_remind_escalate_and_close_with_an_outcome(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::referral::{EndReason, MeasureRecord, Outcome, Reminder, Stage};
    use kith_store::referrals::OutcomeWrite;
    let (patient, practice, group, referrer) = caseload_setup(store, clock).await;
    let t0 = clock.now();
    let referral = referral_record(920, ReferralKind::Referral, patient.id, group, referrer, practice, t0);
    let mut with_baseline = rows(referral.clone(), "sent", true);
    let baseline = MeasureRecord {
        id: id(930),
        referral_id: id(920),
        patient_id: patient.id,
        instrument: "ons4".into(),
        stage: Stage::Baseline,
        answers: vec![4, 5, 3, 8],
        taken_at: t0,
        recorded_by: referrer,
    };
    with_baseline.baseline = Some(baseline.clone());
    let other =
        referral_record(921, ReferralKind::Referral, patient.id, group, referrer, practice, t0 + Duration::days(3));
    store.create_referrals(vec![with_baseline, rows(other, "sent", true)], Alongside::none()).await.unwrap();
    assert_eq!(store.measures(id(920)).await.unwrap(), std::slice::from_ref(&baseline));
    assert_eq!(store.measure(id(930)).await.unwrap(), Some(baseline));
    let f = store.follow_up(id(920)).await.unwrap().unwrap();
    assert_eq!((f.due_at, f.assignee, f.is_open()), (t0 + Duration::days(28), referrer, true));
    assert_eq!(store.open_follow_ups(practice, 10).await.unwrap().len(), 2);
    assert!(store.open_follow_ups(group, 10).await.unwrap().is_empty(), "another organisation's");

    // Nothing is due for 28 days; then the first is reminded once, then escalated once.
    assert!(store.reminders_due(t0 + Duration::days(27), 10).await.unwrap().is_empty());
    let due = store.reminders_due(t0 + Duration::days(28), 10).await.unwrap();
    assert_eq!(due.iter().map(|(f, w)| (f.referral_id, *w)).collect::<Vec<_>>(), [(id(920), Reminder::Due)]);
    let at = t0 + Duration::days(28);
    assert!(store.mark_reminded(id(920), Reminder::Due, at).await.unwrap());
    assert!(!store.mark_reminded(id(920), Reminder::Due, at).await.unwrap(), "another instance sent it");
    assert!(
        store.reminders_due(at + Duration::days(6), 10).await.unwrap().iter().all(|(f, _)| f.referral_id != id(920))
    );
    let late = t0 + Duration::days(35);
    let due = store.reminders_due(late, 10).await.unwrap();
    assert!(due.contains(&(store.follow_up(id(920)).await.unwrap().unwrap(), Reminder::Overdue)));
    assert!(store.mark_reminded(id(920), Reminder::Overdue, late).await.unwrap());

    // The group reports attendance; the follow-up stays open until the referrer's side closes it.
    store
        .move_referral(
            id(920),
            TaskStatus::Requested,
            step(920, TaskStatus::Accepted, t0, "accepted"),
            Alongside::none(),
        )
        .await
        .unwrap();
    let attending = OutcomeWrite {
        referral_id: id(920),
        outcome: Outcome::Started,
        by_group: true,
        from: TaskStatus::Accepted,
        event: step(920, TaskStatus::InProgress, t0 + Duration::days(7), "Started going"),
        measure: None,
    };
    assert!(store.record_outcome(attending, Alongside::none()).await.unwrap());
    let f = store.follow_up(id(920)).await.unwrap().unwrap();
    assert_eq!((f.attendance, f.is_open()), (Some(Outcome::Started), true));

    // A write from a stale status changes nothing.
    let stale = OutcomeWrite {
        referral_id: id(920),
        outcome: Outcome::StillAttending,
        by_group: false,
        from: TaskStatus::Accepted,
        event: step(920, TaskStatus::InProgress, late, "Still attending"),
        measure: None,
    };
    assert!(!store.record_outcome(stale, Alongside::none()).await.unwrap());
    let follow_up_measure = MeasureRecord {
        id: id(931),
        stage: Stage::FollowUp,
        answers: vec![7, 7, 6, 4],
        taken_at: late,
        ..store.measures(id(920)).await.unwrap()[0].clone()
    };
    let closing = OutcomeWrite {
        referral_id: id(920),
        outcome: Outcome::StillAttending,
        by_group: false,
        from: TaskStatus::InProgress,
        event: ReferralEvent { actor: Some(referrer), ..step(920, TaskStatus::InProgress, late, "Still attending") },
        measure: Some(follow_up_measure),
    };
    assert!(store.record_outcome(closing.clone(), Alongside::none()).await.unwrap());
    let f = store.follow_up(id(920)).await.unwrap().unwrap();
    assert_eq!((f.outcome, f.outcome_at, f.outcome_by), (Some(Outcome::StillAttending), Some(late), Some(referrer)));
    assert!(
        store.reminders_due(late + Duration::days(30), 10).await.unwrap().iter().all(|(f, _)| f.referral_id != id(920))
    );
    assert_eq!(store.open_follow_ups(practice, 10).await.unwrap().len(), 1);
    assert_eq!(store.measures(id(920)).await.unwrap().len(), 2);
    // Closed: a second outcome is refused and leaves no trace on the timeline.
    let steps = store.timeline(id(920)).await.unwrap().len();
    assert!(matches!(store.record_outcome(closing, Alongside::none()).await, Err(StoreError::Conflict(_))));
    assert_eq!(store.timeline(id(920)).await.unwrap().len(), steps);
    assert_eq!(store.measures(id(920)).await.unwrap().len(), 2);

    // An outcome that moves the referral to failed, with a reason kept as a code.
    store
        .move_referral(
            id(921),
            TaskStatus::Requested,
            step(921, TaskStatus::Accepted, t0, "accepted"),
            Alongside::none(),
        )
        .await
        .unwrap();
    let never = OutcomeWrite {
        referral_id: id(921),
        outcome: Outcome::NeverAttended(EndReason::Transport),
        by_group: false,
        from: TaskStatus::Accepted,
        event: step(921, TaskStatus::Failed, late, "Never went"),
        measure: None,
    };
    assert!(store.record_outcome(never, Alongside::none()).await.unwrap());
    assert_eq!(store.referral(id(921)).await.unwrap().unwrap().status, TaskStatus::Failed);
    assert_eq!(
        store.follow_up(id(921)).await.unwrap().unwrap().outcome,
        Some(Outcome::NeverAttended(EndReason::Transport))
    );

    // A caseload brought from elsewhere keeps its follow-ups as they were.
    let history = referral_record(922, ReferralKind::Referral, patient.id, group, referrer, practice, t0);
    let mut rows_922 = rows(history, "imported", true);
    let done = kith_domain::referral::FollowUp {
        reminded_at: Some(t0 + Duration::days(28)),
        outcome: Some(Outcome::Stopped(EndReason::Timing)),
        outcome_at: Some(t0 + Duration::days(30)),
        outcome_by: Some(referrer),
        attendance: Some(Outcome::Started),
        attendance_at: Some(t0 + Duration::days(9)),
        ..follow_up_for(&rows_922.referral)
    };
    rows_922.follow_up = Some(done.clone());
    store.create_referrals(vec![rows_922], Alongside::none()).await.unwrap();
    assert_eq!(store.follow_up(id(922)).await.unwrap(), Some(done));
}

async fn referrals_are_searched_rerouted_and_counted(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::referral::{LinksCount, Outcome};
    use kith_store::referrals::{OutcomeWrite, ReferralQuery};
    let (patient, practice, group, referrer) = caseload_setup(store, clock).await;
    store.put_organisation(org(905, OrgKind::Vcs, "Walking group", None, &[])).await.unwrap();
    let t0 = clock.now();
    let mut batch = Vec::new();
    for n in 0..6u128 {
        let mut r = referral_record(
            940 + n,
            ReferralKind::Referral,
            patient.id,
            group,
            referrer,
            practice,
            t0 + Duration::hours(n as i64),
        );
        if n == 5 {
            r.kind = ReferralKind::Signpost;
            r.status = TaskStatus::Completed;
            r.service_id = id(2);
            r.group_id = None;
        }
        batch.push(rows(r, "sent", true));
    }
    store.create_referrals(batch, Alongside::none()).await.unwrap();
    let query = ReferralQuery { visible_to: vec![practice], limit: 100, ..Default::default() };
    assert_eq!(store.search_referrals(&query).await.unwrap().len(), 6);
    assert_eq!(
        store.search_referrals(&ReferralQuery { visible_to: vec![group], ..query.clone() }).await.unwrap().len(),
        5,
        "the group is sent the referrals, never the signpost"
    );
    assert!(
        store.search_referrals(&ReferralQuery { visible_to: vec![id(905)], ..query.clone() }).await.unwrap().is_empty()
    );
    assert!(store.search_referrals(&ReferralQuery { visible_to: vec![], ..query.clone() }).await.unwrap().is_empty());
    let signposts = ReferralQuery { kind: Some(ReferralKind::Signpost), ..query.clone() };
    assert_eq!(store.search_referrals(&signposts).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(), [id(945)]);
    let window =
        ReferralQuery { from: Some(t0 + Duration::hours(1)), before: Some(t0 + Duration::hours(3)), ..query.clone() };
    assert_eq!(
        store.search_referrals(&window).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        [id(942), id(941)]
    );
    let paged = ReferralQuery { limit: 2, offset: 2, status: Some(TaskStatus::Requested), ..query.clone() };
    assert_eq!(
        store.search_referrals(&paged).await.unwrap().iter().map(|r| r.id).collect::<Vec<_>>(),
        [id(942), id(941)]
    );

    // Re-routed: the first is declined and a new referral goes to the other group, together.
    let mut onward =
        referral_record(950, ReferralKind::Referral, patient.id, id(905), referrer, practice, t0 + Duration::days(1));
    onward.service_id = id(3);
    let declined = step(940, TaskStatus::Rejected, t0 + Duration::days(1), "Re-routed to another service");
    assert!(
        store
            .reroute_referral(
                id(940),
                TaskStatus::Requested,
                declined.clone(),
                rows(onward.clone(), "re-routed", true),
                Alongside::none()
            )
            .await
            .unwrap()
    );
    assert_eq!(store.referral(id(940)).await.unwrap().unwrap().status, TaskStatus::Rejected);
    assert_eq!(store.referrals_for_group(id(905), 10).await.unwrap().len(), 1);
    let again = ReferralRecord { id: id(951), ..onward };
    assert!(
        !store
            .reroute_referral(
                id(940),
                TaskStatus::Requested,
                declined,
                rows(again, "re-routed", true),
                Alongside::none()
            )
            .await
            .unwrap()
    );
    assert!(store.referral(id(951)).await.unwrap().is_none(), "nothing half-written");

    // Outcomes: 941 still attending (referrer), 942 stopped, 943 attending by the group's
    // word after the due date, 944 attending by the group's word before it.
    let outcome = |n: u128, outcome: Outcome, by_group: bool, days: i64| OutcomeWrite {
        referral_id: id(n),
        outcome,
        by_group,
        from: TaskStatus::Requested,
        event: step(n, TaskStatus::Requested, t0 + Duration::days(days), outcome.label()),
        measure: None,
    };
    for w in [
        outcome(941, Outcome::StillAttending, false, 29),
        outcome(942, Outcome::Stopped(kith_domain::referral::EndReason::Cost), false, 29),
        outcome(943, Outcome::StillAttending, true, 30),
        outcome(944, Outcome::StillAttending, true, 10),
    ] {
        assert!(store.record_outcome(w, Alongside::none()).await.unwrap());
    }
    let mut counts = store.links_counts(t0, t0 + Duration::days(60)).await.unwrap();
    counts.sort_by_key(|r| r.service);
    let found: Vec<(Uuid, Uuid, LinksCount)> = counts.into_iter().map(|r| (r.practice, r.service, r.count)).collect();
    assert_eq!(
        found,
        [
            (
                practice,
                id(1),
                LinksCount { signposts: 0, referrals: 5, followed_up: 4, started: 4, still_attending: 2 }
            ),
            (
                practice,
                id(2),
                LinksCount { signposts: 1, referrals: 0, followed_up: 0, started: 0, still_attending: 0 }
            ),
            (
                practice,
                id(3),
                LinksCount { signposts: 0, referrals: 1, followed_up: 0, started: 0, still_attending: 0 }
            ),
        ]
    );
    assert!(store.links_counts(t0 + Duration::days(2), t0 + Duration::days(60)).await.unwrap().is_empty());
    let one = store.links_for_service(id(1), t0, t0 + Duration::days(60)).await.unwrap();
    assert_eq!(one, LinksCount { signposts: 0, referrals: 5, followed_up: 4, started: 4, still_attending: 2 });
    assert_eq!(store.links_for_service(id(4), t0, t0 + Duration::days(60)).await.unwrap(), LinksCount::default());
}

async fn provenance_is_kept_per_source_and_a_service_a_feed_stops_listing_is_withdrawn(
    store: &dyn Store,
    clock: &FixedClock,
) {
    use kith_domain::provenance::{RecordKind, Source, Stamp};
    let council = Source::Feed(id(970));
    let sheet = Source::File("groups.csv".into());
    let stamped = |source: &Source, round: u128, services: &[u128]| {
        let mut b = directory();
        b.services.retain(|s| services.iter().any(|n| s.id == id(*n)));
        b.stamp = Some(Stamp { source: source.clone(), round: id(round) });
        b
    };
    let first_seen = clock.now();
    store.write_batch(stamped(&council, 971, &[100, 101, 102])).await.unwrap();
    clock.advance(Duration::hours(24));
    // The second pull no longer lists the swimming group; a spreadsheet lists the advice
    // service too.
    let seq = store.last_seq().await.unwrap();
    store.write_batch(stamped(&council, 972, &[100, 102])).await.unwrap();
    assert_eq!(store.last_seq().await.unwrap(), seq, "seeing unchanged records again is not a change");
    store.write_batch(stamped(&sheet, 973, &[102])).await.unwrap();
    assert!(store.close_round(&council, id(972), 2).await.unwrap().is_empty(), "missing once is not withdrawn");
    assert!(store.close_round(&council, id(972), 2).await.unwrap().is_empty(), "a round counts once");

    let kept = store.provenance(RecordKind::Service, &[id(101), id(102)]).await.unwrap();
    let summary: Vec<(Uuid, Source, u32)> = kept.iter().map(|p| (p.record_id, p.source.clone(), p.missing)).collect();
    assert_eq!(
        summary,
        [(id(101), council.clone(), 1), (id(102), council.clone(), 0), (id(102), sheet.clone(), 0)],
        "one entry per record and source"
    );
    assert_eq!(kept[0].id_there, id(101).to_string());
    assert_eq!((kept[0].first_seen, kept[0].last_seen), (first_seen, first_seen));
    assert_eq!(kept[1].last_seen, first_seen + Duration::hours(24), "last seen moves with each sighting");
    let organisations = store.provenance(RecordKind::Organization, &[id(ORG_TRUST)]).await.unwrap();
    assert_eq!(organisations.len(), 2, "organisations keep their sources too");

    // Third pull: the swimming group is missing again, and so is the advice service, which
    // the spreadsheet still lists.
    clock.advance(Duration::hours(24));
    store.write_batch(stamped(&council, 974, &[100])).await.unwrap();
    let seq = store.last_seq().await.unwrap();
    assert_eq!(store.close_round(&council, id(974), 2).await.unwrap(), [id(101)], "withdrawn after two missing pulls");
    assert!(store.last_seq().await.unwrap() > seq, "through the change feed, so the index follows");
    let swimming = store.service(id(101)).await.unwrap().expect("withdrawn, never deleted");
    assert_eq!(swimming.status, ServiceStatus::Inactive);
    assert_eq!(store.service(id(102)).await.unwrap().unwrap().status, ServiceStatus::Active, "another source lists it");
    let withdrawn: Vec<Uuid> = store.withdrawn(10).await.unwrap().iter().map(|p| p.record_id).collect();
    assert_eq!(withdrawn, [id(101)]);

    // The feed lists it again: it is back, and no longer withdrawn.
    clock.advance(Duration::hours(24));
    store.write_batch(stamped(&council, 975, &[100, 101])).await.unwrap();
    assert!(store.close_round(&council, id(975), 2).await.unwrap().is_empty());
    assert_eq!(store.service(id(101)).await.unwrap().unwrap().status, ServiceStatus::Active);
    let withdrawn: Vec<(Uuid, Source)> =
        store.withdrawn(10).await.unwrap().into_iter().map(|p| (p.record_id, p.source)).collect();
    assert_eq!(withdrawn, [(id(102), council.clone())], "the council has stopped listing the advice service");
    assert_eq!(store.service(id(102)).await.unwrap().unwrap().status, ServiceStatus::Active, "the sheet still does");

    // Deleting a service forgets where it came from.
    store.delete_service(id(102)).await.unwrap();
    assert!(store.provenance(RecordKind::Service, &[id(102)]).await.unwrap().is_empty());
}

macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let clock = super::clock();
                    let t = kith_store::testing::sqlite(clock.clone()).await;
                    super::$name(&*t.store, &clock).await;
                    t.cleanup().await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let clock = super::clock();
                    let Some(t) = kith_store::testing::postgres(clock.clone(), stringify!($name)).await else { return };
                    super::$name(&*t.store, &clock).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

contract!(
    writes_a_directory_and_reads_services_fully_nested,
    reads_a_page_of_services_by_id_in_the_order_asked,
    lists_the_services_that_show_an_organisation_a_place_or_a_term,
    reads_for_the_search_index_what_it_needs_without_whole_documents,
    writing_the_same_records_again_changes_nothing,
    updates_by_id_and_records_the_change,
    the_change_feed_is_ordered_and_pages,
    deletes_a_service_and_its_links,
    status_changes_and_filters,
    verification_uses_the_injected_clock,
    lists_services_with_filters_combined_and_pages,
    organizations_locations_and_taxonomies,
    nested_documents_are_split_and_kept_once,
    reopening_runs_no_migration_twice_and_keeps_data,
    geography_postcodes_deprivation_and_places,
    problem_reports_are_kept_newest_first_by_service,
    reads_every_service_in_id_order_by_keyset,
    organisations_areas_and_users_with_roles,
    sessions_rotate_expire_and_end_everywhere,
    magic_links_work_once_and_expire,
    totp_steps_and_recovery_codes_are_single_use,
    sign_in_attempts_are_counted_in_a_window,
    the_audit_log_appends_and_reads_newest_first,
    sealed_fields_page_and_are_replaced,
    the_outbox_claims_once_retries_and_erases_what_it_sent,
    shared_lists_keep_their_services_in_order_under_one_code,
    feeds_are_claimed_by_one_puller_when_due_and_keep_their_pulls,
    provenance_is_kept_per_source_and_a_service_a_feed_stops_listing_is_withdrawn,
    two_sources_of_one_group_merge_into_one_record_that_keeps_both,
    referrals_move_by_the_rules_with_a_timeline,
    follow_ups_remind_escalate_and_close_with_an_outcome,
    referrals_are_searched_rerouted_and_counted,
);

/// The status CHECK holds in SQLite even for a write that bypasses Kith.
#[tokio::test]
async fn sqlite_rejects_an_unknown_status_and_reopens_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    store.write_batch(directory()).await.unwrap();
    drop(store);
    let again = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    assert_eq!(again.counts().await.unwrap().services, 4);

    let conn = rusqlite::Connection::open(&path).unwrap();
    let err = conn
        .execute(
            "INSERT INTO services (id, name, status, doc, modified_at) VALUES ('x', 'x', 'closed', '{}', '2026')",
            [],
        )
        .unwrap_err();
    assert!(err.to_string().contains("CHECK"), "{err}");
    let journal: String = conn.query_row("PRAGMA journal_mode", [], |r| r.get(0)).unwrap();
    assert_eq!(journal, "wal");
}

/// Checkpoints run on a thread of the store's own. Dropping the last handle waits for
/// it, so then every write is in the database file, no connection holds it open, and
/// the write-ahead log is gone, as SQLite leaves it when its last connection closes.
#[tokio::test]
async fn sqlite_closes_completely_when_its_last_handle_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let wal = dir.path().join("kith.db-wal");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    let handle = store.clone();
    store.write_batch(directory()).await.unwrap();
    drop(store);
    assert!(wal.exists(), "another handle still has the database open");
    drop(handle);
    assert!(!wal.exists(), "the last connection to close checkpoints and removes the log");

    let conn = rusqlite::Connection::open(&path).unwrap();
    let services: i64 = conn.query_row("SELECT count(*) FROM services", [], |r| r.get(0)).unwrap();
    assert_eq!(services, 4);
}

/// While another process writes to the same SQLite file (`kith import` beside `kith
/// serve`), the store's writes wait their turn and never fail with "database is locked".
#[tokio::test]
async fn sqlite_writes_wait_their_turn_behind_another_process() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    store.write_batch(directory()).await.unwrap();
    let other = rusqlite::Connection::open(&path).unwrap();
    other.busy_timeout(std::time::Duration::from_secs(30)).unwrap();
    other.execute_batch("CREATE TABLE other_process (n INTEGER)").unwrap();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let stopping = stop.clone();
    // The other process: one write transaction after another, each held a while, with a
    // moment between them, as `kith import` writes its windows.
    let writer = std::thread::spawn(move || {
        let mut n = 0;
        while !stopping.load(std::sync::atomic::Ordering::Relaxed) {
            other.execute_batch("BEGIN IMMEDIATE").unwrap();
            other.execute("INSERT INTO other_process (n) VALUES (?1)", [n]).unwrap();
            std::thread::sleep(std::time::Duration::from_millis(40));
            other.execute_batch("COMMIT").unwrap();
            std::thread::sleep(std::time::Duration::from_millis(15));
            n += 1;
        }
        n
    });
    let mut failures = Vec::new();
    for i in 0..60u128 {
        let mut s = Service::new(Uuid::from_u128(70_000 + i), "Walking group", ServiceStatus::Active);
        s.description = Some(format!("round {i}"));
        if let Err(e) = store.put_service(s).await {
            failures.push(e.to_string());
        }
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let theirs = writer.join().unwrap();
    assert!(theirs > 0, "the other process wrote meanwhile");
    assert!(failures.is_empty(), "{} of 60 writes failed: {:?}", failures.len(), failures.first());
    assert_eq!(store.counts().await.unwrap().services, 64);
}

/// The status CHECK holds in PostgreSQL too, and a second connect migrates nothing.
#[tokio::test]
async fn postgres_rejects_an_unknown_status_and_reconnects_cleanly() {
    let Some(t) = kith_store::testing::postgres(clock(), "postgres_rejects_an_unknown_status").await else {
        return;
    };
    t.store.write_batch(directory()).await.unwrap();
    let config = t.postgres_config().unwrap();
    let again = kith_store::postgres::PostgresStore::connect_with(config.clone(), clock()).await.unwrap();
    assert_eq!(again.counts().await.unwrap().services, 4);
    let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let row = client
        .query_one("SELECT count(*), count(DISTINCT version), max(version) FROM kith_migrations", &[])
        .await
        .unwrap();
    let (rows, distinct, newest): (i64, i64, i64) = (row.get(0), row.get(1), row.get(2));
    assert_eq!((rows, distinct), (newest, newest), "one row per migration, each applied once");
    let err = client
        .execute(
            "INSERT INTO services (id, name, status, doc, modified_at) VALUES (gen_random_uuid(), 'x', 'closed', '{}', now())",
            &[],
        )
        .await
        .unwrap_err();
    assert!(err.as_db_error().is_some_and(|e| e.code().code() == "23514"), "check_violation: {err}");
    drop(again);
    t.cleanup().await;
}

/// The audit log is append-only in SQLite, whoever sends the SQL.
#[tokio::test]
async fn sqlite_audit_log_refuses_update_and_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    the_audit_log_appends_and_reads_newest_first(&store, &clock()).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    for sql in
        ["UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log", "DELETE FROM audit_log WHERE seq = 1"]
    {
        let err = conn.execute(sql, []).unwrap_err();
        assert!(err.to_string().contains("append-only"), "{sql}: {err}");
    }
    let n: i64 = conn.query_row("SELECT count(*) FROM audit_log", [], |r| r.get(0)).unwrap();
    assert_eq!(n, 3);
}

/// The audit log is append-only in PostgreSQL, even for the owner (triggers), and for a
/// role that is not the owner by privilege as well.
#[tokio::test]
async fn postgres_audit_log_refuses_update_delete_and_truncate() {
    let Some(t) = kith_store::testing::postgres(clock(), "postgres_audit_log_refuses_update_delete_and_truncate").await
    else {
        return;
    };
    the_audit_log_appends_and_reads_newest_first(&*t.store, &clock()).await;
    let (client, conn) = t.postgres_config().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    for sql in ["UPDATE audit_log SET action = 'nothing'", "DELETE FROM audit_log", "TRUNCATE audit_log"] {
        let err = client.batch_execute(sql).await.unwrap_err();
        assert!(err.as_db_error().is_some_and(|e| e.message().contains("append-only")), "{sql}: {err}");
    }
    let n: i64 = client.query_one("SELECT count(*) FROM audit_log", &[]).await.unwrap().get(0);
    assert_eq!(n, 3);
    drop(client);
    t.cleanup().await;
}

/// Sent and abandoned messages keep no recipient or body.
#[tokio::test]
async fn sqlite_outbox_erases_sent_messages() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    the_outbox_claims_once_retries_and_erases_what_it_sent(&store, &clock()).await;
    let conn = rusqlite::Connection::open(&path).unwrap();
    let kept: i64 = conn
        .query_row(
            "SELECT count(*) FROM outbox WHERE status IN ('sent', 'failed') AND (recipient <> '' OR body <> '')",
            [],
            |r| r.get(0),
        )
        .unwrap();
    assert_eq!(kept, 0);
}

/// Every (from, to) pair tried with raw SQL: the database allows exactly the moves the
/// domain's state machine allows.
async fn every_move_through_sql(store: &dyn Store, mut update: impl AsyncFnMut(&str, &str, &str) -> bool) {
    let clock = clock();
    let (patient, practice, group, referrer) = caseload_setup(store, &clock).await;
    let mut n = 1000;
    for from in TaskStatus::ALL {
        for to in TaskStatus::ALL {
            n += 1;
            let r = ReferralRecord {
                status: from,
                ..referral_record(n, ReferralKind::Referral, patient.id, group, referrer, practice, clock.now())
            };
            store.create_referral(r, step(n, from, clock.now(), "set up")).await.unwrap();
            let allowed = update(&id(n).to_string(), from.code(), to.code()).await;
            assert_eq!(allowed, from == to || from.can_become(to), "{from} -> {to}");
        }
    }
}

#[tokio::test]
async fn sqlite_allows_exactly_the_state_machine_moves() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    let conn = rusqlite::Connection::open(&path).unwrap();
    every_move_through_sql(&store, async |id: &str, _from: &str, to: &str| {
        conn.execute("UPDATE referrals SET status = ?2 WHERE id = ?1", [id, to]).is_ok()
    })
    .await;
}

#[tokio::test]
async fn postgres_allows_exactly_the_state_machine_moves() {
    let Some(t) = kith_store::testing::postgres(clock(), "postgres_allows_exactly_the_state_machine_moves").await
    else {
        return;
    };
    let (client, conn) = t.postgres_config().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    every_move_through_sql(&*t.store, async |id: &str, _from: &str, to: &str| {
        let id: Uuid = id.parse().unwrap();
        client.execute("UPDATE referrals SET status = $2 WHERE id = $1", &[&id, &to]).await.is_ok()
    })
    .await;
    drop(client);
    t.cleanup().await;
}

async fn two_sources_of_one_group_merge_into_one_record_that_keeps_both(store: &dyn Store, clock: &FixedClock) {
    use kith_domain::duplicates::{Candidate, PairState};
    use kith_domain::provenance::{RecordKind, Source, Stamp};
    let council = Source::Feed(id(980));
    let sheet = Source::File("groups.csv".into());
    let stamped = |source: &Source, round: u128, services: Vec<Service>| {
        let mut b = DirectoryBatch::new();
        b.add_organization(Organization::new(id(ORG_TRUST), "Parkhead Community Trust", "Run by local people"));
        b.add_location(place(HALL, "Parkhead Community Hall", 55.851, -4.196));
        for s in services {
            b.add_service(s);
        }
        b.stamp = Some(Stamp { source: source.clone(), round: id(round) });
        b
    };
    let walk = |n: u128| service(n, "Tollcross Walking Group", ORG_TRUST, HALL, &[]);
    store.write_batch(stamped(&council, 981, vec![walk(200)])).await.unwrap();
    store.write_batch(stamped(&sheet, 982, vec![walk(201)])).await.unwrap();
    assert_eq!(store.counts().await.unwrap().services, 2, "two sources, two ids");

    let pair = Candidate { kind: RecordKind::Service, a: id(200), b: id(201), reason: "same".into(), certain: false };
    assert_eq!(store.put_duplicate_pairs(std::slice::from_ref(&pair)).await.unwrap(), [pair.pair_id()]);
    assert_eq!(store.put_duplicate_pairs(std::slice::from_ref(&pair)).await.unwrap().len(), 1, "queued once");
    let waiting = store.waiting_pairs(10).await.unwrap();
    assert_eq!((waiting.len(), waiting[0].a, waiting[0].state), (1, id(200), PairState::Waiting));

    let seq = store.last_seq().await.unwrap();
    let audit = AuditEvent {
        seq: 0,
        at: clock.now(),
        actor: None,
        actor_roles: "curator".into(),
        action: "duplicates.merge".into(),
        record_type: "service".into(),
        record_id: Some(id(201).to_string()),
        ip: None,
        reason: "test".into(),
    };
    let decided =
        store.decide_pair(pair.pair_id(), PairState::Merged, "curator", None, Alongside::audited(audit)).await.unwrap();
    assert!(decided);
    assert!(
        !store.decide_pair(pair.pair_id(), PairState::KeptApart, "curator", None, Alongside::none()).await.unwrap(),
        "a pair is decided once"
    );
    assert_eq!(store.counts().await.unwrap().services, 1, "one record");
    assert!(store.service(id(201)).await.unwrap().is_none());
    let changes = store.changes_since(seq, 10).await.unwrap();
    assert!(changes.iter().any(|c| c.object_id == id(201) && c.op == ChangeOp::Delete), "the index follows");
    let audited = store.audit(&AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert!(audited.iter().any(|e| e.action == "duplicates.merge"), "audited with the merge");
    let sources = store.provenance(RecordKind::Service, &[id(200)]).await.unwrap();
    let sources: Vec<(Source, String)> = sources.into_iter().map(|p| (p.source, p.id_there)).collect();
    assert_eq!(sources, [(council.clone(), id(200).to_string()), (sheet.clone(), id(201).to_string())]);
    assert_eq!(store.merged_into(RecordKind::Service, &[id(200), id(201)]).await.unwrap(), [(id(201), id(200))]);

    // The sheet is imported again, still listing its id: the duplicate stays merged, and
    // the sheet still counts as listing the walk.
    clock.advance(Duration::hours(24));
    store.write_batch(stamped(&sheet, 983, vec![walk(201)])).await.unwrap();
    assert!(store.service(id(201)).await.unwrap().is_none(), "not written back");
    assert_eq!(store.counts().await.unwrap().services, 1);
    assert!(store.close_round(&sheet, id(983), 1).await.unwrap().is_empty(), "the sheet still lists it");
    let from_sheet = store.provenance(RecordKind::Service, &[id(200)]).await.unwrap();
    let from_sheet = from_sheet.iter().find(|p| p.source == sheet).unwrap();
    assert_eq!((from_sheet.last_seen, from_sheet.missing), (clock.now(), 0), "the sighting is the survivor's");
    assert_eq!(from_sheet.id_there, id(201).to_string());

    // A pair kept apart is never queued again.
    store.write_batch(stamped(&sheet, 984, vec![walk(201), walk(202)])).await.unwrap();
    let apart = Candidate { b: id(202), ..pair.clone() };
    assert_eq!(store.put_duplicate_pairs(std::slice::from_ref(&apart)).await.unwrap().len(), 1);
    assert!(
        store
            .decide_pair(apart.pair_id(), PairState::KeptApart, "curator", Some("two walks".into()), Alongside::none())
            .await
            .unwrap()
    );
    assert!(store.put_duplicate_pairs(std::slice::from_ref(&apart)).await.unwrap().is_empty(), "not re-queued");
    assert!(store.waiting_pairs(10).await.unwrap().is_empty());
    let kept = store.duplicate_pair(apart.pair_id()).await.unwrap().unwrap();
    assert_eq!((kept.state, kept.note.as_deref()), (PairState::KeptApart, Some("two walks")));
    assert_eq!(store.counts().await.unwrap().services, 2);

    // Organisations: the services of the merged one move to the survivor.
    let mut b = DirectoryBatch::new();
    b.add_organization(Organization::new(id(ORG_ADVICE), "Parkhead Community Trust Ltd", ""));
    b.add_service(service(203, "Advice", ORG_ADVICE, HALL, &[]));
    store.write_batch(b).await.unwrap();
    store.merge(RecordKind::Organization, id(ORG_TRUST), id(ORG_ADVICE), Alongside::none()).await.unwrap();
    assert!(store.organization(id(ORG_ADVICE)).await.unwrap().is_none());
    assert_eq!(store.service(id(203)).await.unwrap().unwrap().organization_id, Some(id(ORG_TRUST)));
    let mut again = DirectoryBatch::new();
    again.add_organization(Organization::new(id(ORG_ADVICE), "Parkhead Community Trust Ltd", ""));
    again.add_service(service(204, "Debt advice", ORG_ADVICE, HALL, &[]));
    store.write_batch(again).await.unwrap();
    assert!(store.organization(id(ORG_ADVICE)).await.unwrap().is_none(), "not written back");
    assert_eq!(store.service(id(204)).await.unwrap().unwrap().organization_id, Some(id(ORG_TRUST)));
}
