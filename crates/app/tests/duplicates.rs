//! Finding duplicates across sources: certain matches merged, likely ones queued once,
//! a curator's decision kept and audited.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::Actor;
use kith_app::duplicates::{Decision, Detected};
use kith_app::testing::TestApp;
use kith_domain::account::AuditQuery;
use kith_domain::hsds::{
    Address, AddressType, Location, LocationType, Organization, OrganizationIdentifier, Service, ServiceAtLocation,
};
use kith_domain::provenance::{RecordKind, Source, Stamp};
use kith_domain::{DirectoryBatch, ServiceStatus};
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6475_7000_0000_0000_0000_0000_0000_0000 + n)
}

fn venue(n: u128, postcode: &str) -> Location {
    let mut l = Location::new(id(n), LocationType::Physical);
    l.name = Some("Community Hall".into());
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

/// One source's statement of a group with a charity number and one service at a venue.
fn source(
    org: u128,
    org_name: &str,
    charity: Option<&str>,
    service: (u128, &str),
    at: u128,
    from: &str,
) -> DirectoryBatch {
    let mut o = Organization::new(id(org), org_name, "");
    if let Some(number) = charity {
        o.organization_identifiers.push(OrganizationIdentifier {
            id: id(org + 50),
            organization_id: Some(id(org)),
            identifier_scheme: Some("GB-CHC".into()),
            identifier_type: "Charity number".into(),
            identifier: number.into(),
            attributes: vec![],
            metadata: vec![],
        });
    }
    let mut s = Service::new(id(service.0), service.1, ServiceStatus::Active);
    s.organization_id = Some(id(org));
    let mut sal = ServiceAtLocation::new(id(service.0 + 50), id(at));
    sal.location = Some(venue(at, "BS1 1AD"));
    s.service_at_locations.push(sal);
    let mut b = DirectoryBatch::new();
    b.add_organization(o);
    b.add_service(s);
    b.stamp = Some(Stamp { source: Source::File(from.into()), round: Uuid::new_v4() });
    b
}

#[tokio::test]
async fn certain_matches_merge_likely_ones_wait_and_a_decision_is_kept() {
    let t = TestApp::sqlite("duplicates_detect").await;
    let store = t.store();
    // Two sources state one charity under two ids, each with its walk at one hall; a
    // third group runs a walk of the same name there.
    store
        .write_batch(source(1, "Parkhead Trust", Some("1100001"), (10, "Tollcross Walk"), 100, "a.csv"))
        .await
        .unwrap();
    store
        .write_batch(source(2, "The Parkhead Trust Ltd", Some("1100001"), (11, "Tollcross walk"), 200, "b.csv"))
        .await
        .unwrap();
    store.write_batch(source(3, "Walkers Club", None, (12, "Tollcross Walk"), 300, "c.csv")).await.unwrap();

    let duplicates = t.app.duplicates();
    let detected = duplicates.detect().await.unwrap();
    assert_eq!(detected, Detected { organisations_merged: 1, services_merged: 1, waiting: 1 });
    assert_eq!(store.counts().await.unwrap().services, 2);
    assert_eq!(store.counts().await.unwrap().organizations, 2);
    let sources = store.provenance(RecordKind::Service, &[id(10)]).await.unwrap();
    assert_eq!(sources.len(), 2, "the merged walk keeps both sources");

    let again = duplicates.detect().await.unwrap();
    assert_eq!(again, Detected { organisations_merged: 0, services_merged: 0, waiting: 1 }, "nothing twice");

    let waiting = duplicates.waiting(10).await.unwrap();
    assert_eq!(waiting.len(), 1);
    assert_eq!((waiting[0].a.id, waiting[0].b.id), (id(10), id(12)));
    assert_eq!(waiting[0].a.address.as_deref(), Some("1 High Street, Bristol, BS1 1AD"));
    let curator = Actor { user: Some(id(900)), roles: "curator".into(), ip: None };
    duplicates.decide(&curator, waiting[0].pair.id, Decision::KeepApart, Some("two walks".into())).await.unwrap();
    assert!(duplicates.decide(&curator, waiting[0].pair.id, Decision::Merge, None).await.is_err(), "decided once");
    assert_eq!(duplicates.detect().await.unwrap().waiting, 0, "kept apart is not queued again");
    let audit = store.audit(&AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["duplicates.keep_apart", "duplicates.merge", "duplicates.merge"]);
}
