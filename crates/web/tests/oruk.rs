//! The ORUK API over the demo directory and the real Bristol feed: every response
//! validates against the official ORUK 3.0 schemas, and bad requests get a 400 that
//! says what to change.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_app::testing::TestApp;
use kith_domain::FixedClock;
use kith_store::testing::shared_dir;
use kith_web::{AppState, router};
use serde_json::Value;
use std::path::Path;
use std::sync::Arc;
use tower::ServiceExt;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

async fn demo_app(t: &TestApp) -> Router {
    let now = clock().now_utc();
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(now));
    let geo = kith_demo::geography::geography(&batch, 2026);
    t.store().put_postcodes(geo.postcodes).await.unwrap();
    t.store().put_places(geo.places).await.unwrap();
    t.store().write_batch(batch).await.unwrap();
    app(t).await
}

async fn app(t: &TestApp) -> Router {
    let state = AppState::new(t.app.clone());
    state.catch_up().await;
    router(state)
}

trait Now {
    fn now_utc(&self) -> chrono::DateTime<chrono::Utc>;
}
impl Now for Arc<FixedClock> {
    fn now_utc(&self) -> chrono::DateTime<chrono::Utc> {
        kith_domain::Clock::now(&**self)
    }
}

async fn call(app: &Router, method: Method, uri: &str) -> (StatusCode, axum::http::HeaderMap, Value) {
    let response =
        app.clone().oneshot(Request::builder().method(method).uri(uri).body(Body::empty()).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let json = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
    (status, headers, json)
}

async fn get(app: &Router, uri: &str) -> Value {
    let (status, headers, json) = call(app, Method::GET, uri).await;
    assert_eq!(status, StatusCode::OK, "{uri}: {json}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*", "{uri}");
    json
}

fn validator(shared: &Path, name: &str) -> jsonschema::Validator {
    let schema: Value =
        serde_json::from_slice(&std::fs::read(shared.join("schemas/oruk-3.0").join(name)).unwrap()).unwrap();
    jsonschema::options().should_validate_formats(true).should_ignore_unknown_formats(true).build(&schema).unwrap()
}

fn assert_valid(shared: &Path, schema: &str, value: &Value, label: &str) {
    let v = validator(shared, schema);
    let errors: Vec<String> =
        v.iter_errors(value).take(10).map(|e| format!("  {e} at {}", e.instance_path())).collect();
    assert!(errors.is_empty(), "{label} does not validate against {schema}:\n{}", errors.join("\n"));
}

/// Every endpoint, with and without filters, validated against its official schema.
async fn check_all_endpoints(app: &Router, shared: &Path) {
    assert_valid(shared, "api_details.json", &get(app, "/oruk/").await, "GET /oruk/");
    let list = get(app, "/oruk/services?per_page=20").await;
    assert_valid(shared, "service_list.json", &list, "services");
    let first = list["contents"][0]["id"].as_str().unwrap().to_owned();
    assert_valid(shared, "service.json", &get(app, &format!("/oruk/services/{first}")).await, "a service");
    let orgs = get(app, "/oruk/organizations?per_page=5").await;
    // The official organization_list.json describes one entry of the list (it requires
    // id, name and description at its root), so each entry is checked against it.
    for (i, org) in orgs["contents"].as_array().unwrap().iter().enumerate() {
        assert_valid(shared, "organization_list.json", org, &format!("organizations entry {i}"));
    }
    let org = orgs["contents"][0]["id"].as_str().unwrap().to_owned();
    assert_valid(
        shared,
        "organization.json",
        &get(app, &format!("/oruk/organizations/{org}")).await,
        "an organization",
    );
    assert_valid(shared, "taxonomy_list.json", &get(app, "/oruk/taxonomies").await, "taxonomies");
    assert_valid(shared, "taxonomy_term_list.json", &get(app, "/oruk/taxonomy_terms?per_page=100").await, "terms");
    let searched = get(app, "/oruk/services?search=advice&per_page=5").await;
    assert_valid(shared, "service_list.json", &searched, "a search");
    let last = get(app, "/oruk/services?per_page=1000&page=1000").await;
    assert_eq!(last["empty"], true);
    assert_valid(shared, "service_list.json", &last, "an empty page");
}

#[tokio::test]
async fn demo_responses_validate_against_the_oruk_schemas() {
    let Some(shared) = shared_dir("demo_responses_validate_against_the_oruk_schemas") else { return };
    let t = TestApp::sqlite("oruk").await;
    let app = demo_app(&t).await;
    check_all_endpoints(&app, &shared).await;
    let pc = t.store().postcodes_with_prefix("KY1 ", 1).await.unwrap()[0].postcode.to_string().replace(' ', "%20");
    let near = get(&app, &format!("/oruk/service_at_locations?postcode={pc}&proximity=3000&per_page=5")).await;
    assert!(near["total_items"].as_u64().unwrap() > 0);
    assert_valid(&shared, "service_at_location_list.json", &near, "service_at_locations near KY1");
    t.cleanup().await;
}

#[tokio::test]
async fn the_bristol_feed_served_back_validates() {
    let Some(shared) = shared_dir("the_bristol_feed_served_back_validates") else { return };
    let t = TestApp::sqlite("oruk").await;
    let mut importer = kith_datasets::Importer::new();
    importer.add_path(&shared.join("data/oruk-v1/bristol-services.json")).unwrap();
    let (batch, _) = importer.finish();
    t.store().write_batch(batch).await.unwrap();
    let app = app(&t).await;
    check_all_endpoints(&app, &shared).await;
    t.cleanup().await;
}

#[tokio::test]
async fn filters_combine_and_page() {
    let t = TestApp::sqlite("oruk").await;
    let app = demo_app(&t).await;
    let all = get(&app, "/oruk/services?per_page=1000").await;
    assert_eq!(all["total_items"], 450);
    assert_eq!(all["first_page"], true);
    assert_eq!(all["last_page"], true);

    let p1 = get(&app, "/oruk/services?per_page=10&page=1").await;
    let p2 = get(&app, "/oruk/services?per_page=10&page=2").await;
    assert_eq!(p1["total_pages"], 45);
    assert_eq!(p2["page_number"], 2);
    assert_ne!(p1["contents"][0]["id"], p2["contents"][0]["id"]);

    let pc = t.store().postcodes_with_prefix("G31 ", 1).await.unwrap()[0].postcode.to_string().replace(' ', "%20");
    let lonely = get(&app, &format!("/oruk/services?search=lonely&postcode={pc}&per_page=50")).await;
    let total = lonely["total_items"].as_u64().unwrap();
    assert!(total > 0);
    let tuesday_mornings = get(
        &app,
        &format!("/oruk/services?search=lonely&postcode={pc}&day=TU&start_time=09:00&end_time=12:00&per_page=50"),
    )
    .await;
    let narrowed = tuesday_mornings["total_items"].as_u64().unwrap();
    assert!(narrowed > 0 && narrowed < total, "{narrowed} of {total}");
    for s in tuesday_mornings["contents"].as_array().unwrap() {
        let open = s["schedules"].as_array().unwrap().iter().any(|sch| {
            let days = sch["byday"].as_str().unwrap_or("");
            let opens = sch["opens_at"].as_str().unwrap_or("00:00");
            let closes = sch["closes_at"].as_str().unwrap_or("23:59");
            days.contains("TU") && opens < "12:00" && closes > "09:00"
        });
        assert!(open, "{} is not open on Tuesday morning", s["name"]);
    }
    let children = get(&app, "/oruk/services?minimum_age=8&maximum_age=11&per_page=100").await;
    for s in children["contents"].as_array().unwrap() {
        assert!(s["minimum_age"].as_f64().unwrap_or(0.0) <= 11.0, "{}", s["name"]);
        assert!(s["maximum_age"].as_f64().unwrap_or(200.0) >= 8.0, "{}", s["name"]);
    }
    let org = all["contents"][0]["organization"]["id"].as_str().unwrap().to_owned();
    let by_org = get(&app, &format!("/oruk/services?organization_id={org}&per_page=100")).await;
    assert!(by_org["contents"].as_array().unwrap().iter().all(|s| s["organization_id"] == org.as_str()));
    let minimal = get(&app, "/oruk/services?minimal=true&per_page=3").await;
    assert_eq!(minimal["contents"][0].as_object().unwrap().len(), 2);
}

#[tokio::test]
async fn bad_requests_get_a_400_naming_the_parameter() {
    let t = TestApp::sqlite("oruk").await;
    let app = demo_app(&t).await;
    for (uri, needle) in [
        ("/oruk/services?page=0", "page"),
        ("/oruk/services?page=abc", "page"),
        ("/oruk/services?per_page=5000", "per_page"),
        ("/oruk/services?organization_id=nope", "organization_id"),
        ("/oruk/services?taxonomy_term_id=123", "taxonomy_term_id"),
        ("/oruk/services?modified_after=yesterday", "modified_after"),
        ("/oruk/services?minimum_age=-1", "minimum_age"),
        ("/oruk/services?minimum_age=30&maximum_age=20", "minimum_age"),
        ("/oruk/services?day=Funday", "day"),
        ("/oruk/services?start_time=25:99", "start_time"),
        ("/oruk/services?start_time=12:00&end_time=09:00", "start_time"),
        ("/oruk/services?postcode=NOTAPOSTCODE", "postcode"),
        ("/oruk/services?postcode=G31%209ZZ", "Did you mean"),
        ("/oruk/services?proximity=500", "proximity"),
        ("/oruk/services?postcode=G31%209ZZ&proximity=-4", "proximity"),
        ("/oruk/services?format=xml", "format"),
        ("/oruk/services?colour=blue", "unknown parameter colour"),
        ("/oruk/services/not-a-uuid", "service id"),
        ("/oruk/organizations/zzz", "organization id"),
        ("/oruk/taxonomy_terms?parent_id=x", "parent_id"),
    ] {
        let (status, headers, json) = call(&app, Method::GET, uri).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{uri}: {json}");
        assert!(json["message"].as_str().unwrap().contains(needle), "{uri}: {json}");
        assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    }
    let long = format!("/oruk/services?search={}", "a".repeat(5000));
    assert_eq!(call(&app, Method::GET, &long).await.0, StatusCode::OK);
    let (status, _, _) = call(&app, Method::GET, "/oruk/services/00000000-0000-0000-0000-000000000000").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, headers, json) = call(&app, Method::GET, "/oruk/servicez").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(json["message"].as_str().unwrap().contains("/oruk/servicez is not an endpoint"), "{json}");
    assert_eq!(headers[header::ACCESS_CONTROL_ALLOW_ORIGIN], "*");
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let (status, headers, _) = call(&app, method.clone(), "/oruk/services").await;
        assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED, "{method}");
        assert!(headers.contains_key(header::ALLOW));
    }
}

#[tokio::test]
async fn the_openapi_document_names_every_route_and_is_snapshot() {
    let t = TestApp::sqlite("oruk").await;
    let app = demo_app(&t).await;
    let doc = get(&app, "/oruk/openapi.json").await;
    assert_eq!(doc["openapi"], "3.1.0");
    let paths: Vec<&str> = doc["paths"].as_object().unwrap().keys().map(String::as_str).collect();
    for path in [
        "/",
        "/services",
        "/services/{id}",
        "/service_at_locations",
        "/organizations",
        "/organizations/{id}",
        "/taxonomies",
        "/taxonomy_terms",
    ] {
        assert!(paths.contains(&path), "{path} is missing from the OpenAPI document");
        let concrete = path.replace("{id}", "00000000-0000-0000-0000-000000000000");
        let (status, _, _) = call(&app, Method::GET, &format!("/oruk{concrete}")).await;
        assert!(status == StatusCode::OK || status == StatusCode::NOT_FOUND, "{path}: {status}");
    }
    insta::assert_json_snapshot!("oruk_openapi", doc);
}

/// `service_at_locations` pages through every service's places, however many services
/// there are (it stopped at 10,000 services, with a wrong `total_items`), and reads only
/// the services on the page.
#[tokio::test]
async fn service_at_locations_pages_through_every_entry_beyond_ten_thousand_services() {
    let t = TestApp::sqlite("oruk").await;
    let mut options = kith_demo::DemoOptions::new(clock().now_utc());
    options.services = 10_400;
    let batch = kith_demo::generate(&options);
    let mut expected: std::collections::HashSet<String> = std::collections::HashSet::new();
    for s in &batch.services {
        for sal in &s.service_at_locations {
            expected.insert(sal.id.to_string());
        }
    }
    assert!(batch.services.len() > 10_000);
    t.store().write_batch(batch).await.unwrap();
    let app = app(&t).await;

    let first = get(&app, "/oruk/service_at_locations?per_page=1000").await;
    assert_eq!(first["total_items"].as_u64().unwrap(), expected.len() as u64, "every entry counted");
    let pages = first["total_pages"].as_u64().unwrap();
    let mut seen: Vec<String> = Vec::new();
    for page in 1..=pages {
        let body = get(&app, &format!("/oruk/service_at_locations?per_page=1000&page={page}")).await;
        let contents = body["contents"].as_array().unwrap();
        assert_eq!(body["last_page"], page == pages, "page {page}");
        assert!(page == pages || contents.len() == 1000, "page {page}: {}", contents.len());
        for entry in contents {
            assert!(entry["service"]["id"].is_string() && entry["service_id"] == entry["service"]["id"]);
            seen.push(entry["id"].as_str().unwrap().to_owned());
        }
    }
    let unique: std::collections::HashSet<String> = seen.iter().cloned().collect();
    assert_eq!(seen.len(), unique.len(), "no entry on two pages");
    assert_eq!(unique, expected, "every entry, on some page");
    let beyond = get(&app, &format!("/oruk/service_at_locations?per_page=1000&page={}", pages + 1)).await;
    assert_eq!(beyond["empty"], true);
    t.cleanup().await;
}
