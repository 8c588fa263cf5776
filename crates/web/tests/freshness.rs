//! A write to the directory shows up in search within a second or so: each instance's
//! jobs runner follows the change feed into its own index, on SQLite and on a second
//! instance sharing the PostgreSQL database. Search requests only read the index.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::Request;
use http_body_util::BodyExt;
use kith_app::jobs::{Jobs, Schedule};
use kith_app::notify::Senders;
use kith_app::testing::Captured;
use kith_domain::hsds::Service;
use kith_domain::{FixedClock, ServiceStatus};
use kith_store::Store;
use kith_web::{App, AppState, router};
use serde_json::Value;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tower::ServiceExt;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

/// An instance as `kith serve` runs one: caught up, then its jobs running on the real
/// schedule. The jobs stop when the returned handle is dropped.
async fn instance(store: Arc<dyn Store>) -> (Router, Jobs) {
    let state = AppState::new(App::new(store, Arc::new(kith_search::SearchIndex::in_memory().unwrap())));
    state.catch_up().await;
    let senders = Senders { mail: Arc::new(Captured::default()), text: None };
    let jobs = Jobs::start(&state, senders, Schedule::default());
    (router(state), jobs)
}

async fn found(app: &Router, word: &str) -> u64 {
    let uri = format!("/oruk/services?search={word}");
    let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    json["total_items"].as_u64().unwrap()
}

/// Polls until the word is found, returning how long that took.
async fn time_until_found(app: &Router, word: &str, limit: Duration) -> Duration {
    let started = Instant::now();
    while found(app, word).await == 0 {
        assert!(started.elapsed() < limit, "{word} not searchable after {limit:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    started.elapsed()
}

fn service(n: u128, name: &str) -> Service {
    Service::new(uuid::Uuid::from_u128(n), name, ServiceStatus::Active)
}

#[tokio::test]
async fn a_write_is_searchable_within_a_second_or_so_on_sqlite() {
    let t = kith_store::testing::sqlite(clock()).await;
    let (app, _jobs) = instance(t.store.clone()).await;
    assert_eq!(found(&app, "quokka").await, 0);
    t.store.put_service(service(1, "Quokka Knitting Circle")).await.unwrap();
    let took = time_until_found(&app, "quokka", Duration::from_secs(3)).await;
    assert!(took < Duration::from_secs(3), "{took:?}");
    t.cleanup().await;
}

#[tokio::test]
async fn a_write_reaches_a_second_instance_on_postgres() {
    let Some(t) = kith_store::testing::postgres(clock(), "a_write_reaches_a_second_instance").await else { return };
    let other: Arc<dyn Store> = Arc::new(
        kith_store::postgres::PostgresStore::connect_with(t.postgres_config().unwrap(), clock()).await.unwrap(),
    );
    let (a, _jobs_a) = instance(t.store.clone()).await;
    let (b, _jobs_b) = instance(other.clone()).await;
    assert_eq!(found(&b, "axolotl").await, 0);

    t.store.put_service(service(2, "Axolotl Allotment Society")).await.unwrap();
    let on_a = time_until_found(&a, "axolotl", Duration::from_secs(3)).await;
    let on_b = time_until_found(&b, "axolotl", Duration::from_secs(5)).await;
    assert!(on_a < Duration::from_secs(3) && on_b < Duration::from_secs(5), "{on_a:?} {on_b:?}");

    // And a delete on the second instance leaves the first.
    other.delete_service(uuid::Uuid::from_u128(2)).await.unwrap();
    let started = Instant::now();
    while found(&a, "axolotl").await > 0 {
        assert!(started.elapsed() < Duration::from_secs(5), "the delete did not reach the first instance");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    t.cleanup().await;
}

/// The first service a search for `word` answers with, as the API writes it out.
async fn first_found(app: &Router, word: &str) -> Value {
    let uri = format!("/oruk/services?search={word}");
    let response = app.clone().oneshot(Request::get(uri).body(Body::empty()).unwrap()).await.unwrap();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    let json: Value = serde_json::from_slice(&body).unwrap();
    json["contents"][0].clone()
}

/// Search answers reuse each service's JSON; an edit to the service, or to a place it
/// shows, must appear in the first answer after the index has followed it (here, one
/// round of the feed follower), not a copy kept from before.
#[tokio::test]
async fn an_edit_shows_in_the_next_answer_not_a_kept_copy() {
    use kith_domain::hsds::{Location, LocationType, ServiceAtLocation};
    let t = kith_store::testing::sqlite(clock()).await;
    let state = AppState::new(App::new(t.store.clone(), Arc::new(kith_search::SearchIndex::in_memory().unwrap())));
    state.catch_up().await;
    let app = router(state.clone());

    let mut hall = Location::new(uuid::Uuid::from_u128(30), LocationType::Physical);
    hall.name = Some("Old Hall".into());
    let mut circle = service(3, "Quokka Knitting Circle");
    circle.description = Some("Tuesdays".into());
    circle.service_at_locations.push(ServiceAtLocation::new(uuid::Uuid::from_u128(31), hall.id));
    let mut batch = kith_domain::DirectoryBatch::new();
    batch.add_location(hall.clone());
    batch.add_service(circle.clone());
    t.store.write_batch(batch).await.unwrap();
    state.catch_up().await;

    let first = first_found(&app, "quokka").await;
    assert_eq!(first["description"], "Tuesdays");
    assert_eq!(first["service_at_locations"][0]["location"]["name"], "Old Hall");
    assert_eq!(first_found(&app, "quokka").await, first, "the second answer is the kept copy");
    assert_eq!(state.rendered.stats().hits, 1);

    circle.description = Some("Thursdays".into());
    t.store.put_service(circle).await.unwrap();
    state.catch_up().await;
    assert_eq!(first_found(&app, "quokka").await["description"], "Thursdays");

    hall.name = Some("New Hall".into());
    let mut batch = kith_domain::DirectoryBatch::new();
    batch.add_location(hall);
    t.store.write_batch(batch).await.unwrap();
    state.catch_up().await;
    assert_eq!(first_found(&app, "quokka").await["service_at_locations"][0]["location"]["name"], "New Hall");
    t.cleanup().await;
}
