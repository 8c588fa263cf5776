//! The curators' duplicates queue through the router: a likely pair side by side, and
//! merging it from the page.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_app::accounts::{Actor, NewUser};
use kith_app::testing::TestApp;
use kith_domain::account::{Area, AreaKind, Grant, Role, Scope, SessionStage};
use kith_domain::hsds::{Address, AddressType, Location, LocationType, Organization, Service, ServiceAtLocation};
use kith_domain::provenance::{Source, Stamp};
use kith_domain::{DirectoryBatch, ServiceStatus};
use kith_web::{AppState, router};
use tower::ServiceExt;
use uuid::Uuid;

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6475_7000_0000_0000_0000_0000_0000_0000 + n)
}

/// One file's statement of a group and its lunch club at a hall in BS1 1AD.
fn sheet(n: u128, group: &str, file: &str) -> DirectoryBatch {
    let mut hall = Location::new(id(n + 1), LocationType::Physical);
    hall.name = Some("St Paul's Hall".into());
    hall.addresses.push(Address {
        id: id(n + 2),
        location_id: Some(id(n + 1)),
        attention: None,
        address_1: "1 Grosvenor Road".into(),
        address_2: None,
        city: "Bristol".into(),
        region: None,
        state_province: String::new(),
        postal_code: "BS1 1AD".into(),
        country: "GB".into(),
        address_type: AddressType::Physical,
        attributes: vec![],
        metadata: vec![],
    });
    let mut club = Service::new(id(n + 3), "Lunch Club", ServiceStatus::Active);
    club.organization_id = Some(id(n));
    let mut at = ServiceAtLocation::new(id(n + 4), hall.id);
    at.location = Some(hall);
    club.service_at_locations.push(at);
    let mut b = DirectoryBatch::new();
    b.add_organization(Organization::new(id(n), group, ""));
    b.add_service(club);
    b.stamp = Some(Stamp { source: Source::File(file.into()), round: Uuid::new_v4() });
    b
}

async fn send(app: &axum::Router, request: Request<Body>) -> (StatusCode, String) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn a_curator_sees_a_likely_pair_side_by_side_and_merging_it_leaves_one_service() {
    let t = TestApp::sqlite("duplicates_page").await;
    let store = t.store();
    store.write_batch(sheet(10, "St Paul's Lunch Club", "council.csv")).await.unwrap();
    store.write_batch(sheet(20, "Grosvenor Road Friends", "groups.csv")).await.unwrap();
    let found = t.app.duplicates().detect().await.unwrap();
    assert_eq!(found.waiting, 1, "two groups' lunch clubs at one hall: likely, not certain");

    store.put_area(Area { id: id(1), kind: AreaKind::Pcn, name: "Central PCN".into() }).await.unwrap();
    let state = AppState::new(t.app.clone());
    let curator = state
        .accounts
        .create_user(
            NewUser {
                email: "curator@example.org".into(),
                name: "Cal Curator".into(),
                password: None,
                grants: vec![Grant { role: Role::Curator, scope: Scope::Area(id(1)) }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    let (token, _) = state.accounts.start_session(curator.id, SessionStage::Complete, None).await.unwrap();
    let cookie = format!("__Host-kith_session={token}");
    let app = router(state);

    let get = Request::get("/curation/duplicates").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let (status, page) = send(&app, get).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    for shown in
        ["St Paul&#39;s Lunch Club", "Grosvenor Road Friends", "BS1 1AD", "file council.csv", "file groups.csv"]
    {
        assert!(page.contains(shown), "{shown} in {page}");
    }
    assert!(page.contains("href=\"/curation/duplicates\""), "in the navigation");
    let at = page.find("action=\"/curation/duplicates/").expect("a form to decide the pair") + 29;
    let pair = &page[at..at + 36];

    let post = Request::builder()
        .method(Method::POST)
        .uri(format!("/curation/duplicates/{pair}"))
        .header(header::HOST, "kith.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, "http://kith.test")
        .header(header::COOKIE, &cookie)
        .body(Body::from("decision=merge&note=one+club"))
        .unwrap();
    let (status, body) = send(&app, post).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{body}");
    assert_eq!(store.counts().await.unwrap().services, 1, "one service");
    assert!(store.service(id(23)).await.unwrap().is_none(), "the second is merged into the first");

    let get = Request::get("/curation/duplicates").header(header::COOKIE, &cookie).body(Body::empty()).unwrap();
    let (_, page) = send(&app, get).await;
    assert!(page.contains("Nothing to compare"), "{page}");
    t.cleanup().await;
}
