//! The web app through its router: search, service pages, the shortlist cookie, the PDF
//! leaflet, problem reports, assets, and the protections every page has. The same journeys
//! run in a real browser in e2e/.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_app::testing::TestApp;
use kith_domain::{Clock, FixedClock};
use kith_web::{AppState, router};
use std::sync::Arc;
use tower::ServiceExt;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

async fn demo_app(t: &TestApp) -> Router {
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(clock().now()));
    let geo = kith_demo::geography::geography(&batch, 2026);
    t.store().put_postcodes(geo.postcodes).await.unwrap();
    t.store().put_places(geo.places).await.unwrap();
    t.store().write_batch(batch).await.unwrap();
    let state = AppState::new(t.app.clone());
    state.catch_up().await;
    router(state)
}

struct Page {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
    bytes: Vec<u8>,
}

async fn send(app: &Router, request: Request<Body>) -> Page {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes().to_vec();
    // Attribute values are escaped; the checks read them as a browser would.
    let body = String::from_utf8_lossy(&bytes).replace("&#38;", "&").replace("&amp;", "&");
    Page { status, headers, body, bytes }
}

async fn get(app: &Router, uri: &str) -> Page {
    send(app, Request::get(uri).body(Body::empty()).unwrap()).await
}

async fn get_with_cookie(app: &Router, uri: &str, cookie: &str) -> Page {
    send(app, Request::get(uri).header(header::COOKIE, cookie).body(Body::empty()).unwrap()).await
}

fn form_post(uri: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(Method::POST)
        .uri(uri)
        .header(header::HOST, "kith.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "same-origin")
        .header(header::ORIGIN, "http://kith.test")
}

async fn post(app: &Router, uri: &str, body: &str, cookie: Option<&str>) -> Page {
    let mut request = form_post(uri);
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    send(app, request.body(Body::from(body.to_owned())).unwrap()).await
}

/// The ids of the services in a results page, in order.
fn result_ids(html: &str) -> Vec<String> {
    html.match_indices("id=\"service-").map(|(at, _)| html[at + 12..at + 48].to_owned()).collect()
}

fn cookie_from(page: &Page) -> String {
    let set = page.headers[header::SET_COOKIE].to_str().unwrap();
    set.split(';').next().unwrap().to_owned()
}

#[tokio::test]
async fn a_postcode_and_a_need_find_local_services_with_the_facts_to_choose() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let page = get(&app, "/?where=g31+2er&q=lonely").await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("services for “lonely” near G31 2ER"), "the postcode is normalised");
    let ids = result_ids(&page.body);
    assert_eq!(ids.len(), 10, "a page of ten");
    for fact in ["Where", "Next open", "Cost", "Last verified"] {
        assert!(page.body.contains(&format!("<dt>{fact}</dt>")), "{fact}");
    }
    assert!(page.body.contains("miles away"));
    assert!(page.body.contains("rel=\"next\""), "more pages");
    // Facet counts sit beside the needs.
    assert!(page.body.contains("Loneliness and social isolation <span class=\"kith-chip-count\">("));
    let second = get(&app, "/?where=g31+2er&q=lonely&page=2").await;
    let later = result_ids(&second.body);
    assert!(later.iter().all(|id| !ids.contains(id)), "page 2 follows page 1");
    t.cleanup().await;
}

/// A temporarily closed service is left out of search unless asked for, and wherever it
/// is shown it says it is closed, never when it next opens (security.md, finding 8).
#[tokio::test]
async fn a_closed_service_is_never_shown_as_open() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let batch = kith_demo::generate(&kith_demo::DemoOptions::new(clock().now()));
    let closed = batch
        .services
        .iter()
        .find(|s| s.status == kith_domain::ServiceStatus::TemporarilyClosed && !s.service_at_locations.is_empty())
        .expect("the demo has a temporarily closed service with a venue");
    let id = closed.id.to_string();
    let name = closed.name.replace(' ', "+");
    let page = get(&app, &format!("/?q={name}")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(!result_ids(&page.body).contains(&id), "left out of search");
    let asked = get(&app, &format!("/?q={name}&closed=yes")).await;
    assert!(result_ids(&asked.body).contains(&id), "found when asked for");
    let card = asked.body.split(&format!("id=\"service-{id}\"")).nth(1).unwrap().split("</li>").next().unwrap();
    assert!(card.contains("Temporarily closed") && !card.contains("Next open"), "{card}");
    let service = get(&app, &format!("/services/{id}")).await;
    assert!(service.body.contains("Temporarily closed") && !service.body.contains("Next open"), "{}", service.body);
    // On the shortlist, printed, and in the leaflet's rows.
    let added = post(&app, "/shortlist", &format!("change=add&id={id}&back=/shortlist"), None).await;
    let cookie = cookie_from(&added);
    for uri in ["/shortlist", "/shortlist/print"] {
        let page = get_with_cookie(&app, uri, &cookie).await;
        assert!(page.body.contains("closed") && !page.body.contains("Next open"), "{uri}: {}", page.body);
    }
}

/// Whether a service takes referrals through Kith is shown before any form: on results and
/// service pages, as a filter, and in what the form offers (security.md, finding 10).
#[tokio::test]
async fn referral_or_signpost_is_known_before_the_form() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let page = get(&app, "/?where=G31+2ER&q=lonely").await;
    assert!(!page.body.contains("Takes referrals through Kith</strong>"), "no group has an account yet");
    let none = get(&app, "/?where=G31+2ER&q=lonely&referrals=yes").await;
    assert_eq!(result_ids(&none.body).len(), 0, "no service takes referrals yet");
    let first = result_ids(&page.body)[0].clone();
    let service = t.store().service(first.parse().unwrap()).await.unwrap().unwrap();
    let group = kith_domain::account::Organisation {
        id: uuid::Uuid::from_u128(0xabc),
        kind: kith_domain::account::OrgKind::Vcs,
        name: "A group with an account".into(),
        ods_code: None,
        directory_id: service.organization_id,
        areas: vec![],
    };
    t.store().put_organisation(group).await.unwrap();
    let page = get(&app, "/?where=G31+2ER&q=lonely").await;
    let card = page.body.split(&format!("id=\"service-{first}\"")).nth(1).unwrap().split("</li>").next().unwrap();
    assert!(card.contains("Takes referrals through Kith"), "{card}");
    let only = get(&app, "/?where=G31+2ER&q=lonely&referrals=yes").await;
    let ids = result_ids(&only.body);
    assert!(ids.contains(&first), "{}", only.body);
    for id in &ids {
        let s = t.store().service(id.parse().unwrap()).await.unwrap().unwrap();
        assert_eq!(s.organization_id, service.organization_id, "only services whose group takes referrals");
    }
    let service_page = get(&app, &format!("/services/{first}")).await;
    assert!(service_page.body.contains("Takes referrals through Kith"));
    let other = result_ids(&page.body).into_iter().find(|id| !ids.contains(id)).unwrap();
    let other_page = get(&app, &format!("/services/{other}")).await;
    assert!(other_page.body.contains("does not take referrals through Kith yet"));
}

#[tokio::test]
async fn bad_input_is_explained_on_the_page_with_a_400() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    for (uri, message) in [
        ("/?where=G31+2ER&age=old", "Enter age as a whole number"),
        ("/?where=G31+2ER&miles=7", "Choose a distance from the list"),
        ("/?where=G31+2ER&page=0", "The page number in this link is not right"),
        ("/?where=ZZ99+9ZZ&q=lonely", "We could not find the postcode ZZ99 9ZZ"),
        ("/?where=G31+2EX&q=lonely", "We could not find the postcode G31 2EX"),
        ("/?where=%21%21%21", "We could not find a place called “!!!”"),
    ] {
        let page = get(&app, uri).await;
        assert_eq!(page.status, StatusCode::BAD_REQUEST, "{uri}");
        assert!(page.body.contains(message), "{uri}: expected “{message}”");
        assert!(page.body.contains("There is a problem"), "{uri}: an error summary");
        assert!(page.body.contains("<title>Error: "), "{uri}: the title says so");
    }
    let typo = get(&app, "/?where=G31+2EX&q=lonely").await;
    assert!(typo.body.contains(">G31 2ER</a>"), "the nearest postcode is offered as a link");
    let long = format!("/?q={}", "a".repeat(5000));
    let page = get(&app, &long).await;
    assert_eq!(page.status, StatusCode::BAD_REQUEST);
    assert!(page.body.contains("200 characters or fewer"));
    t.cleanup().await;
}

#[tokio::test]
async fn odd_queries_answer_with_a_page_never_an_error() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let only_small_words = get(&app, "/?where=G31+2ER&q=i+and+the+for").await;
    assert_eq!(only_small_words.status, StatusCode::OK);
    assert!(only_small_words.body.contains("0 services"));
    assert!(only_small_words.body.contains("are not searched on their own"), "says why, and what to type");
    for q in [
        "%F0%9F%98%A2%F0%9F%91%8D%F0%9F%8F%BD",  // emoji, with a skin tone
        "lonely%27%3B+DROP+TABLE+services%3B--", // SQL
        "lonely%00%07%1B",                       // control characters
        "%E2%80%9Ccan%E2%80%99t+sleep%E2%80%9D", // curly quotes and apostrophe
        "+++",                                   // only spaces
    ] {
        let page = get(&app, &format!("/?where=G31+2ER&q={q}")).await;
        assert!(page.status == StatusCode::OK || page.status == StatusCode::BAD_REQUEST, "{q}: {}", page.status);
        assert!(page.body.contains("<h1"), "{q}: a page a person can read");
    }
    t.cleanup().await;
}

#[tokio::test]
async fn a_search_can_explain_how_it_read_the_words_and_why_each_result_ranked_there() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let plain = get(&app, "/?where=G31+2ER&q=my+husband+died").await;
    assert!(!plain.body.contains("How this search was read") && !plain.body.contains("Why here"));
    let page = get(&app, "/?where=G31+2ER&q=my+husband+died&explain=yes").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("How this search was read"));
    assert!(
        page.body.contains("Left out &quot;my&quot;") || page.body.contains("Left out &#34;my&#34;"),
        "{}",
        page.body
    );
    assert!(page.body.contains("bereavement"), "the vocabulary's reading is shown");
    assert!(page.body.contains("Why here:</strong> words"), "each result says its score's parts");
    // Paging and the form keep explaining.
    assert!(page.body.contains(r#"name="explain" value="yes""#));
    t.cleanup().await;
}

#[tokio::test]
async fn nothing_found_suggests_a_wider_search() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let page = get(&app, "/?where=G31+2ER&q=xylophone+zeppelin&free=yes").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("0 services"));
    assert!(page.body.contains("Search within 5 miles instead"));
    assert!(page.body.contains("Search again without filters"));
    t.cleanup().await;
}

#[tokio::test]
async fn the_shortlist_lives_in_a_cookie_and_prints_and_makes_a_leaflet() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let results = get(&app, "/?where=G31+2ER&q=lonely").await;
    let ids = result_ids(&results.body);

    let empty = get(&app, "/shortlist/leaflet.pdf").await;
    assert_eq!(empty.status, StatusCode::BAD_REQUEST, "an empty shortlist makes no leaflet");

    let mut cookie = String::new();
    for id in &ids[..3] {
        let body = format!("change=add&id={id}&back=%2F%3Fwhere%3DG31%2B2ER");
        let page = post(&app, "/shortlist", &body, Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        assert_eq!(page.headers[header::LOCATION], "/?where=G31+2ER");
        let set = page.headers[header::SET_COOKIE].to_str().unwrap();
        assert!(set.contains("HttpOnly") && set.contains("SameSite=Lax"));
        cookie = cookie_from(&page);
    }
    let list = get_with_cookie(&app, "/shortlist", &cookie).await;
    assert_eq!(result_ids(&list.body), ids[..3].to_vec(), "in the order added");
    assert!(list.body.contains("data-shortlist-count>3<"));

    let print = get_with_cookie(&app, "/shortlist/print", &cookie).await;
    assert_eq!(print.body.matches("class=\"kith-print__service\"").count(), 3);

    let pdf = get_with_cookie(&app, "/shortlist/leaflet.pdf", &cookie).await;
    assert_eq!(pdf.status, StatusCode::OK);
    assert_eq!(pdf.headers[header::CONTENT_TYPE], "application/pdf");
    assert!(pdf.bytes.starts_with(b"%PDF-"));

    // A script asks for JSON instead of a redirect.
    let request = form_post("/shortlist")
        .header(header::ACCEPT, "application/json")
        .header(header::COOKIE, &cookie)
        .body(Body::from(format!("change=remove&id={}", ids[0])))
        .unwrap();
    let removed = send(&app, request).await;
    assert_eq!(removed.status, StatusCode::OK);
    assert_eq!(removed.body, r#"{"count":2,"in_shortlist":false}"#);

    // Only local paths are returned to.
    let away = post(&app, "/shortlist", &format!("change=add&id={}&back=https://evil.example", ids[4]), None).await;
    assert_eq!(away.headers[header::LOCATION], "/shortlist");
    // A tab (which browsers drop, leaving `//evil.example`) or any control character in
    // `back` stays on the site, with no 500 (finding 6).
    // Other control characters are left out of what a form sends, leaving "/" here.
    for (back, to) in
        [("/%09/evil.example", "/shortlist"), ("/%0D%0ALocation:x", "/shortlist"), ("/%01", "/"), ("/%7F", "/")]
    {
        let page = post(&app, "/shortlist", &format!("change=add&id={}&back={back}", ids[4]), None).await;
        assert_eq!(
            (page.status, page.headers[header::LOCATION].to_str().unwrap()),
            (StatusCode::SEE_OTHER, to),
            "{back}"
        );
    }
    // A form that says nothing useful gets a page that says so.
    let bad = post(&app, "/shortlist", "change=add&id=nonsense", None).await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    t.cleanup().await;
}

#[tokio::test]
async fn a_post_from_another_site_is_refused() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let cross_site = Request::builder()
        .method(Method::POST)
        .uri("/shortlist")
        .header(header::HOST, "kith.test")
        .header("sec-fetch-site", "cross-site")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .body(Body::from("change=clear"))
        .unwrap();
    assert_eq!(send(&app, cross_site).await.status, StatusCode::FORBIDDEN);
    let foreign_origin = Request::builder()
        .method(Method::POST)
        .uri("/shortlist")
        .header(header::HOST, "kith.test")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from("change=clear"))
        .unwrap();
    assert_eq!(send(&app, foreign_origin).await.status, StatusCode::FORBIDDEN);
    t.cleanup().await;
}

#[tokio::test]
async fn a_service_page_says_how_to_get_there_and_takes_problem_reports() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let results = get(&app, "/?where=G31+2ER&q=walking+group").await;
    let id = result_ids(&results.body)[0].clone();
    let page = get(&app, &format!("/services/{id}?from=where%3DG31%2B2ER%26q%3Dwalking%2Bgroup")).await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route=%3B"));
    assert!(page.body.contains("href=\"/?where=G31+2ER&q=walking+group\">Back to search"));
    assert!(page.body.contains("Last verified:"));

    let uri = format!("/services/{id}/report");
    let form = get(&app, &uri).await;
    assert_eq!(form.status, StatusCode::OK);
    let missing = post(&app, &uri, "details=", None).await;
    assert_eq!(missing.status, StatusCode::BAD_REQUEST);
    assert!(missing.body.contains("Select what is wrong with the listing"));
    let other = post(&app, &uri, "kind=other&details=", None).await;
    assert!(other.body.contains("Tell us what is wrong"));
    let sent = post(&app, &uri, "kind=times&details=Thursdays+now", None).await;
    assert_eq!(sent.status, StatusCode::OK);
    assert!(sent.body.contains("Thank you"));
    let kept = t.store().problem_reports(Some(id.parse().unwrap()), 10).await.unwrap();
    assert_eq!(kept.len(), 1);
    assert_eq!(kept[0].details, "Thursdays now");
    assert_eq!(kept[0].created_at, clock().now(), "stamped by the injected clock");
    // Reports are limited by address: a flood stops with a clear 429 (security.md, finding 5).
    for n in 2..=5 {
        let sent = post(&app, &uri, &format!("kind=times&details=report+{n}"), None).await;
        assert_eq!(sent.status, StatusCode::OK, "report {n}");
    }
    let flood = post(&app, &uri, "kind=times&details=one+too+many", None).await;
    assert_eq!(flood.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(flood.body.contains("wait 15 minutes"), "{}", flood.body);
    assert_eq!(t.store().problem_reports(Some(id.parse().unwrap()), 10).await.unwrap().len(), 5);

    assert_eq!(get(&app, "/services/not-an-id").await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, &format!("/services/{}", uuid::Uuid::nil())).await.status, StatusCode::NOT_FOUND);
    assert_eq!(get(&app, "/services/not-an-id/report").await.status, StatusCode::NOT_FOUND);
    t.cleanup().await;
}

#[tokio::test]
async fn assets_are_embedded_gzipped_and_cached_and_pages_are_compressed() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    let home = get(&app, "/").await;
    let at = home.body.find("href=\"/assets/kith.").unwrap() + 6;
    let css_path = &home.body[at..at + home.body[at..].find('"').unwrap()];
    let request = Request::get(css_path).header(header::ACCEPT_ENCODING, "gzip, br").body(Body::empty()).unwrap();
    let css = send(&app, request).await;
    assert_eq!(css.status, StatusCode::OK);
    assert_eq!(css.headers[header::CONTENT_ENCODING], "gzip");
    assert_eq!(css.headers[header::CONTENT_TYPE], "text/css; charset=utf-8");
    assert!(css.headers[header::CACHE_CONTROL].to_str().unwrap().contains("immutable"));
    assert!(css.bytes.len() < 40_000, "the whole stylesheet gzipped is {} bytes", css.bytes.len());
    assert_eq!(get(&app, "/assets/nothing.css").await.status, StatusCode::NOT_FOUND);

    let request =
        Request::get("/?where=G31+2ER&q=lonely").header(header::ACCEPT_ENCODING, "gzip").body(Body::empty()).unwrap();
    let page = send(&app, request).await;
    assert_eq!(page.headers[header::CONTENT_ENCODING], "gzip");
    t.cleanup().await;
}

#[tokio::test]
async fn every_page_has_a_strict_policy_and_only_the_widget_may_be_framed() {
    let t = TestApp::sqlite("pages").await;
    let app = demo_app(&t).await;
    for uri in ["/", "/?where=G31+2ER&q=lonely", "/shortlist", "/shortlist/print", "/nowhere", "/readyz", "/oruk/"] {
        let page = get(&app, uri).await;
        let csp = page.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap();
        assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{uri}: {csp}");
        assert!(!csp.contains("unsafe-inline"), "{uri}");
        assert_eq!(page.headers[header::X_FRAME_OPTIONS], "DENY", "{uri}");
        assert_eq!(page.headers[header::X_CONTENT_TYPE_OPTIONS], "nosniff", "{uri}");
        assert!(!page.body.contains("<script>") && !page.body.contains(" style=\""), "{uri}: nothing inline");
    }
    let widget = get(&app, "/widget").await;
    assert!(widget.headers[header::CONTENT_SECURITY_POLICY].to_str().unwrap().contains("frame-ancestors *"));
    assert!(!widget.headers.contains_key(header::X_FRAME_OPTIONS));
    let script = get(&app, "/widget.js").await;
    assert!(script.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/javascript"));
    let ready = get(&app, "/readyz").await;
    assert_eq!(ready.status, StatusCode::OK);
    assert!(ready.body.contains("\"status\":\"ready\""));
    let missing = get(&app, "/nowhere").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);
    assert!(missing.body.contains("Page not found"));
    t.cleanup().await;
}

/// A NUL or another control character typed or pasted into the place box, a problem
/// report or an API query never gives a 5xx, on either engine: pages leave it out, the
/// APIs refuse it with a 400 in their own form.
#[tokio::test]
async fn control_characters_never_give_a_server_error_on_either_engine() {
    let mut apps = vec![TestApp::sqlite("control_characters").await];
    apps.extend(TestApp::on(kith_store::Engine::Postgres, "control_characters").at(clock().now()).build().await);
    for t in apps {
        let app = demo_app(&t).await;
        let engine = t.store().engine();
        let place = get(&app, "/?where=G31%002ER&q=lonely%00").await;
        assert_eq!(place.status, StatusCode::OK, "{engine:?}: {}", place.body);
        assert!(!result_ids(&place.body).is_empty(), "{engine:?}: the search runs without the NUL");
        let id = result_ids(&get(&app, "/?where=G31+2ER&q=walking+group").await.body)[0].clone();
        let sent = post(&app, &format!("/services/{id}/report"), "kind=times&details=Thursdays%00+now%07", None).await;
        assert_eq!(sent.status, StatusCode::OK, "{engine:?}: {}", sent.body);
        let kept = t.store().problem_reports(Some(id.parse().unwrap()), 10).await.unwrap();
        assert_eq!(kept[0].details, "Thursdays now", "{engine:?}");
        for uri in ["/oruk/services?text=lonely%00", "/oruk/services?postcode=G31%002ER", "/fhir/Task?status=%00"] {
            let answer = get(&app, uri).await;
            assert_eq!(answer.status, StatusCode::BAD_REQUEST, "{engine:?} {uri}: {}", answer.body);
            assert!(answer.body.contains("control character"), "{engine:?} {uri}: {}", answer.body);
        }
        t.cleanup().await;
    }
}

/// A service named in Bengali, Tamil or Chinese, or with joined emoji, makes a leaflet
/// (it answered 503: the font had no such characters). With the fonts of
/// scripts/install-fonts in `KITH_FONTS_DIR`, they print in Noto.
#[tokio::test]
async fn a_leaflet_of_services_named_in_other_scripts_is_made() {
    if let Some(dir) = std::env::var_os("KITH_FONTS_DIR") {
        kith_web::use_leaflet_fonts(std::path::Path::new(&dir));
    }
    let t = TestApp::sqlite("pages").await;
    let names = ["সুরমা মহিলা সমিতি", "தமிழ் சங்கம்", "华人社区中心", "Family day 👩‍👩‍👧‍👦"];
    for (i, name) in names.iter().enumerate() {
        let s = kith_domain::hsds::Service::new(
            uuid::Uuid::from_u128(0xF0 + i as u128),
            *name,
            kith_domain::ServiceStatus::Active,
        );
        t.store().put_service(s).await.unwrap();
    }
    let state = AppState::new(t.app.clone());
    state.catch_up().await;
    let app = router(state);
    let mut cookie = String::new();
    for i in 0..names.len() {
        let id = uuid::Uuid::from_u128(0xF0 + i as u128);
        let page = post(&app, "/shortlist", &format!("change=add&id={id}&back=%2F"), Some(&cookie)).await;
        assert_eq!(page.status, StatusCode::SEE_OTHER);
        cookie = cookie_from(&page);
    }
    let pdf = get_with_cookie(&app, "/shortlist/leaflet.pdf", &cookie).await;
    assert_eq!(pdf.status, StatusCode::OK, "{}", pdf.body);
    assert!(pdf.bytes.starts_with(b"%PDF-"));
    if std::env::var_os("KITH_FONTS_DIR").is_some() {
        assert!(
            pdf.body.contains("NotoSansBengali")
                && pdf.body.contains("NotoSansTamil")
                && pdf.body.contains("NotoSansSC")
        );
    }
    t.cleanup().await;
}
