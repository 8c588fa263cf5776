//! Pulling feeds from a real HTTP server on 127.0.0.1 that serves Bristol's real ORUK v1
//! feed a page at a time, and broken variants of it. Both engines.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::feeds::{Feeds, Politeness};
use kith_app::testing::TestApp;
use kith_domain::feed::Feed;
use kith_domain::geo::WholeArea;
use kith_domain::provenance::{RecordKind, Source};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// What the stand-in server answers: status, content type and body, for a path and query.
type Answer = Arc<dyn Fn(&str) -> (u16, &'static str, Vec<u8>) + Send + Sync>;

/// A real HTTP/1.1 server on a free port of 127.0.0.1, one connection at a time, each
/// closed after its answer. Returns its base address.
async fn serve(answer: Answer) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else { return };
            let answer = answer.clone();
            tokio::spawn(async move {
                let mut request = Vec::new();
                let mut buf = [0u8; 4096];
                while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                    match socket.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => request.extend_from_slice(&buf[..n]),
                    }
                }
                let head = String::from_utf8_lossy(&request);
                let target = head.split_whitespace().nth(1).unwrap_or("/").to_owned();
                // Kith names itself to the feeds it reads.
                let named = head.to_lowercase().contains("\r\nuser-agent: kith/");
                let (status, kind, body) =
                    if named { answer(&target) } else { (400, "text/plain", b"who are you?".to_vec()) };
                let head = format!(
                    "HTTP/1.1 {status} X\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                    body.len()
                );
                let _ = socket.write_all(head.as_bytes()).await;
                let _ = socket.write_all(&body).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    format!("http://127.0.0.1:{port}")
}

fn query(target: &str, key: &str) -> Option<i64> {
    let (_, q) = target.split_once('?')?;
    q.split('&').find_map(|p| p.strip_prefix(&format!("{key}="))).and_then(|v| v.parse().ok())
}

/// Bristol's services as a Spring page: `content`, `number` from 0, `totalPages`.
fn spring_page(services: &[Value], target: &str) -> Vec<u8> {
    let size = query(target, "size").unwrap_or(20) as usize;
    let number = query(target, "page").unwrap_or(0) as usize;
    let total_pages = services.len().div_ceil(size);
    let content: Vec<Value> = services.iter().skip(number * size).take(size).cloned().collect();
    let body = json!({
        "content": content, "totalElements": services.len(), "totalPages": total_pages,
        "number": number, "size": size, "first": number == 0, "last": number + 1 >= total_pages,
    });
    serde_json::to_vec(&body).unwrap()
}

/// A service's own page, given its place in the feed and its list record.
type Detail = fn(usize, &Value) -> Option<Value>;

/// What most v1 APIs serve for a service's own page when it has nothing more to say:
/// the list's record.
fn as_listed(_: usize, service: &Value) -> Option<Value> {
    Some(service.clone())
}

/// An ORUK v1 API over `services`: `…/services?…` a Spring page of them, and
/// `…/services/{id}` each one's own page as `detail` gives it (404 for an id it does not
/// list, 500 where `detail` gives nothing). Every target asked for is logged.
fn v1_api(
    services: Arc<std::sync::Mutex<Vec<Value>>>,
    detail: Detail,
    log: Arc<std::sync::Mutex<Vec<String>>>,
) -> Answer {
    Arc::new(move |target: &str| {
        log.lock().unwrap().push(target.to_owned());
        let services = services.lock().unwrap();
        let path = target.split('?').next().unwrap_or_default();
        match path.rsplit_once("/services/") {
            Some((_, id)) => match services.iter().position(|s| s["id"] == id) {
                Some(i) => match detail(i, &services[i]) {
                    Some(page) => (200, "application/json", serde_json::to_vec(&page).unwrap()),
                    None => (500, "text/plain", b"oops".to_vec()),
                },
                None => (404, "text/plain", Vec::new()),
            },
            None => (200, "application/json", spring_page(&services, target)),
        }
    })
}

/// [`v1_api`] with each service's page as listed, and no log kept.
fn as_listed_by(services: &[Value]) -> Answer {
    v1_api(Arc::new(std::sync::Mutex::new(services.to_vec())), as_listed, Arc::default())
}

fn bristol() -> Option<Vec<Value>> {
    let shared = kith_store::testing::shared_dir("feeds")?;
    let bytes = std::fs::read(shared.join("data/oruk-v1/bristol-services.json")).unwrap();
    Some(serde_json::from_slice(&bytes).unwrap())
}

fn quick() -> Politeness {
    Politeness { backoff: Duration::from_millis(20), timeout: Duration::from_secs(5), ..Politeness::default() }
}

fn feeds(t: &TestApp, politeness: Politeness) -> Feeds {
    Feeds::with_politeness(t.store().clone(), t.clock.clone(), politeness).unwrap()
}

async fn services(t: &TestApp) -> u64 {
    t.store().counts().await.unwrap().services
}

async fn last_seq(t: &TestApp) -> i64 {
    let mut seq = 0;
    loop {
        let changes = t.store().changes_since(seq, 10_000).await.unwrap();
        match changes.last() {
            Some(c) => seq = c.seq,
            None => return seq,
        }
    }
}

async fn bristols_feed_pulled_page_by_page(t: &TestApp) {
    let Some(all) = bristol() else { return };
    let named = all.iter().filter(|s| s["name"].as_str().is_some_and(|n| !n.trim().is_empty())).count();
    let served = Arc::new(all);
    let url = serve(as_listed_by(&served)).await;
    let feeds = feeds(t, Politeness { per_page: 50, ..quick() });
    let area = WholeArea::parse("E06000023").unwrap();
    let feed = feeds.add(&format!("{url}/services"), Some("bristol"), vec![area.clone()], None, None).await.unwrap();
    assert_eq!(feed.url, url, "Kith adds /services itself");

    let pull = feeds.pull(&feed).await.unwrap();
    assert_eq!(pull.error, None);
    assert_eq!(pull.pages, served.len().div_ceil(50) as u32, "every page, once");
    assert!(pull.services as usize * 100 >= named * 95, "{} of {named} named services", pull.services);
    assert_eq!(services(t).await, pull.services);
    assert_eq!(pull.rejected, 2, "the real feed's two unusable records: {:?}", pull.problems);
    let first_named = served.iter().find(|s| s["name"].as_str().is_some_and(|n| !n.trim().is_empty())).unwrap();
    let stored = t.store().services_by_ids(&[uuid_of(first_named)]).await.unwrap();
    assert_eq!(stored[0].service_areas[0].description.as_deref(), Some("Serves all of Bristol"));

    // Pulled again unchanged: nothing is written, the change feed does not move.
    let seq = last_seq(t).await;
    t.clock.advance(chrono::Duration::hours(24));
    let again = feeds.pull(&feed).await.unwrap();
    assert_eq!((again.error.as_deref(), again.written, again.unchanged()), (None, 0, pull.services));
    assert_eq!(last_seq(t).await, seq, "no change-feed entries");

    // The same feed at a second address adds no duplicate service.
    let mirror = feeds.add(&format!("{url}/mirror"), Some("mirror"), vec![area], None, None).await;
    let mirror = mirror.unwrap();
    let mirrored = serve(as_listed_by(&served)).await;
    let mirror = Feed { url: mirrored, ..mirror };
    t.clock.advance(chrono::Duration::hours(1));
    assert_eq!(feeds.pull(&mirror).await.unwrap().written, 0);
    assert_eq!(services(t).await, pull.services);

    let listed = feeds.list().await.unwrap();
    assert_eq!(listed.iter().map(|s| s.feed.name.as_str()).collect::<Vec<_>>(), ["bristol", "mirror"]);
    assert_eq!(listed[0].last.as_ref().map(|p| p.id), Some(again.id), "the latest pull is shown");
    let one = uuid_of(first_named);
    let sources = t.store().provenance(RecordKind::Service, &[one]).await.unwrap();
    let sources: Vec<Source> = sources.into_iter().map(|p| p.source).collect();
    assert_eq!(sources, [Source::Feed(feed.id), Source::Feed(mirror.id)], "both feeds are kept as its sources");

    // Both addresses stop listing the first ten services. A service is withdrawn only
    // after two complete pulls without it, and only once no source lists it.
    let gone: Vec<uuid::Uuid> = t
        .store()
        .services_by_ids(&served.iter().take(10).map(uuid_of).collect::<Vec<_>>())
        .await
        .unwrap()
        .into_iter()
        .filter(|s| s.status == kith_domain::ServiceStatus::Active)
        .map(|s| s.id)
        .collect();
    let fewer: Vec<Value> = served.iter().skip(10).cloned().collect();
    let shrunk = serve(as_listed_by(&fewer)).await;
    let (feed, mirror) = (Feed { url: shrunk.clone(), ..feed }, Feed { url: shrunk, ..mirror });
    let mut withdrawn = Vec::new();
    for puller in [&feed, &feed, &mirror, &mirror] {
        // A week on, so each is a full pull: only those count what a feed no longer lists.
        t.clock.advance(chrono::Duration::days(8));
        let pull = feeds.pull(puller).await.unwrap();
        assert_eq!((pull.error.as_deref(), pull.full), (None, true));
        withdrawn.push(pull.withdrawn);
    }
    assert_eq!(
        withdrawn,
        [0, 0, 0, gone.len() as u64],
        "withdrawn at the second miss, once the mirror misses them too"
    );
    assert!(gone.len() >= 8, "of the first ten, those stored and active: {}", gone.len());
    let stored = t.store().services_by_ids(&gone).await.unwrap();
    assert_eq!(stored.len(), gone.len(), "withdrawn, never deleted");
    assert!(stored.iter().all(|s| s.status == kith_domain::ServiceStatus::Inactive));
    let shown: Vec<uuid::Uuid> = t.store().withdrawn(100).await.unwrap().iter().map(|p| p.record_id).collect();
    assert!(gone.iter().all(|id| shown.contains(id)), "shown to curators");
    let taken = feeds.add(&url, Some("bristol"), vec![], None, None).await.unwrap_err();
    assert!(taken.to_string().contains("already"), "{taken}");
}

fn uuid_of(service: &Value) -> uuid::Uuid {
    // The ORUK v1 ids are UUIDs in Bristol's feed.
    uuid::Uuid::parse_str(service["id"].as_str().unwrap()).unwrap()
}

async fn a_broken_feed_is_recorded_and_nothing_stored_is_lost(t: &TestApp) {
    let Some(all) = bristol() else { return };
    let served = Arc::new(all);
    let url = serve(as_listed_by(&served)).await;
    let feeds_ = feeds(t, Politeness { per_page: 100, max_page_bytes: 2 * 1024 * 1024, ..quick() });
    let feed = feeds_.add(&url, Some("bristol"), vec![], None, None).await.unwrap();
    assert_eq!(feeds_.pull(&feed).await.unwrap().error, None);
    let held = services(t).await;
    let seq = last_seq(t).await;

    let s = served.clone();
    let truncated: Answer = Arc::new(move |target: &str| {
        let mut page = spring_page(&s, target);
        if query(target, "page") == Some(3) {
            page.truncate(page.len() / 2);
        }
        (200, "application/json", page)
    });
    let s = served.clone();
    let looping: Answer = Arc::new(move |_: &str| (200, "application/json", spring_page(&s, "/services?size=100")));
    let s = served.clone();
    let huge: Answer = Arc::new(move |target: &str| {
        if query(target, "page") == Some(2) {
            let mut big = s[1].clone();
            big["description"] = json!("x".repeat(3 * 1024 * 1024));
            return (
                200,
                "application/json",
                serde_json::to_vec(&json!({"content": [big], "number": 2, "totalPages": 9})).unwrap(),
            );
        }
        (200, "application/json", spring_page(&s, target))
    });
    let cases: Vec<(&str, Answer, &str)> = vec![
        (
            "failing",
            Arc::new(|_: &str| (500, "text/plain", b"oops".to_vec())),
            "answered 500 Internal Server Error (tried 3 times)",
        ),
        (
            "html",
            Arc::new(|_: &str| (200, "text/html", b"<!doctype html><p>Sign in".to_vec())),
            "web page (HTML), not JSON",
        ),
        ("truncated", truncated, "truncated"),
        ("looping", looping, "paging loops"),
        ("huge", huge, "more than 2 MB in one page"),
        ("gone", Arc::new(|_: &str| (404, "text/plain", Vec::new())), "404 Not Found: check the feed's address"),
    ];
    for (name, answer, expected) in cases {
        let broken = serve(answer).await;
        let feed = Feed { url: broken, ..feed.clone() };
        let pull = feeds_.pull(&feed).await.unwrap();
        let error = pull.error.unwrap_or_default();
        assert!(error.contains(expected), "{name}: {error}");
        assert_eq!(services(t).await, held, "{name}: nothing stored is lost");
        assert_eq!(last_seq(t).await, seq, "{name}: nothing is half-updated");
    }
    // A host that does not answer at all.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let feed = Feed { url: format!("http://127.0.0.1:{port}"), ..feed.clone() };
    let error = feeds_.pull(&feed).await.unwrap().error.unwrap_or_default();
    assert!(error.contains("cannot reach") && error.contains("tried 3 times"), "{error}");
    let pulls = t.store().pulls(feed.id, 20).await.unwrap();
    assert_eq!(pulls.len(), 8, "every pull is recorded, failed or not");
}

/// After a full pull Kith asks only for what changed (`modified_after`); a pull of
/// changes withdraws nothing, and a week on the whole feed is read again.
async fn later_pulls_ask_only_for_changes_and_the_whole_feed_is_read_weekly(t: &TestApp) {
    let Some(all) = bristol() else { return };
    let served = Arc::new(all);
    let asked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let (pages, log) = (served.clone(), asked.clone());
    // A feed that supports modified_after: nothing has changed since.
    let url = serve(Arc::new(move |target: &str| {
        log.lock().unwrap().push(target.to_owned());
        if let Some((_, id)) = target.rsplit_once("/services/") {
            let page = pages.iter().find(|s| s["id"] == id).map(|s| serde_json::to_vec(s).unwrap());
            return page.map_or((404, "text/plain", Vec::new()), |p| (200, "application/json", p));
        }
        let changed: &[Value] = if target.contains("modified_after=") { &[] } else { &pages };
        (200, "application/json", spring_page(changed, target))
    }))
    .await;
    let feeds = feeds(t, Politeness { per_page: 50, ..quick() });
    let feed = feeds.add(&url, Some("bristol"), vec![], None, None).await.unwrap();
    let first = feeds.pull(&feed).await.unwrap();
    assert!(first.full && first.since.is_none() && first.services > 800, "{first:?}");
    let held = services(t).await;

    let pulled_at = first.started_at;
    let mut sent = Vec::new();
    for _ in 0..3 {
        t.clock.advance(chrono::Duration::days(1));
        asked.lock().unwrap().clear();
        let pull = feeds.pull(&feed).await.unwrap();
        assert_eq!((pull.error.as_deref(), pull.full, pull.services, pull.withdrawn), (None, false, 0, 0));
        sent.push(asked.lock().unwrap().clone());
    }
    let since = (pulled_at - chrono::Duration::hours(1)).format("%Y-%m-%dT%H:%M:%SZ").to_string();
    assert!(sent[0].iter().all(|t| t.contains(&format!("modified_after={since}"))), "{:?}", sent[0]);
    assert_eq!(sent[0].len(), 1, "one page, empty: nothing changed");
    assert_eq!(services(t).await, held, "a pull of changes withdraws nothing");
    assert!(t.store().withdrawn(10).await.unwrap().is_empty());

    // A week after the last full pull, the whole feed again.
    t.clock.advance(chrono::Duration::days(5));
    let weekly = feeds.pull(&feed).await.unwrap();
    assert!(weekly.full && weekly.since.is_none(), "{weekly:?}");
    assert_eq!((weekly.services, weekly.written, weekly.withdrawn), (first.services, 0, 0));
    // And by hand, whenever asked.
    let by_hand = feeds.pull_everything(&feed).await.unwrap();
    assert!(by_hand.full);
}

/// Bristol's list says nothing of venues or times; each service's own page does. Every
/// third page here adds a venue and its opening times (real Bristol places), one page
/// fails and one describes another service.
fn with_venues(i: usize, service: &Value) -> Option<Value> {
    const VENUES: &[(&str, &str, f64, f64, &str)] = &[
        ("venue-1", "The Park Centre", 51.422496, -2.597993, "BS4 1QP"),
        ("venue-2", "Easton Community Centre", 51.467742, -2.561527, "BS5 6DP"),
        // A venue with no position: placed by its postcode, if Kith knows it.
        ("venue-3", "Southmead Community Centre", 0.0, 0.0, "BS10 6BQ"),
    ];
    let mut page = service.clone();
    match i {
        5 => return None,
        7 => page["id"] = json!("00000000-0000-4000-8000-000000000007"),
        i if i % 3 == 0 => {
            let (id, name, lat, lon, postcode) = VENUES[(i / 3) % VENUES.len()];
            page["service_at_locations"] = json!([{
                "id": format!("sal-{i}"),
                "location": {
                    "id": id, "name": name, "latitude": lat, "longitude": lon,
                    "physical_addresses": [{"id": format!("{id}-address"), "address_1": name, "city": "Bristol", "postal_code": postcode, "country": "GB"}]
                },
                "regular_schedules": [{"id": format!("sch-{i}"), "opens_at": "10:00:00", "closes_at": "12:00:00", "byday": "TU", "freq": "WEEKLY", "interval": 1}]
            }]);
            page["contacts"] = json!([{"id": format!("c-{i}"), "name": "Duty worker", "phones": [{"id": format!("p-{i}"), "number": "0117 922 2000"}]}]);
        }
        _ => {}
    }
    Some(page)
}

async fn a_list_without_venues_is_completed_from_each_services_own_page(t: &TestApp) {
    let Some(all) = bristol() else { return };
    let first: Vec<Value> =
        all.into_iter().filter(|s| s["name"].as_str().is_some_and(|n| !n.trim().is_empty())).take(120).collect();
    let shared = kith_store::testing::shared_dir("feeds").unwrap();
    let postcodes = std::fs::File::open(shared.join("data/geo/postcodes-bristol.csv")).unwrap();
    let postcodes = kith_datasets::geo::read_postcodes(postcodes, "postcodes-bristol.csv").unwrap();
    t.store().put_postcodes(postcodes.rows).await.unwrap();
    let served = Arc::new(std::sync::Mutex::new(first.clone()));
    let log = Arc::new(std::sync::Mutex::new(Vec::new()));
    let url = serve(v1_api(served.clone(), with_venues, log.clone())).await;
    let feeds = feeds(t, Politeness { per_page: 50, ..quick() });
    let area = WholeArea::parse("E06000023").unwrap();
    let feed = feeds.add(&url, Some("bristol"), vec![area], None, None).await.unwrap();
    // Services whose own page was asked for (a failing page is tried three times).
    let pages_asked = |log: &std::sync::Mutex<Vec<String>>| {
        let mut log = log.lock().unwrap();
        let asked: std::collections::HashSet<String> = log.drain(..).filter(|t| t.contains("/services/")).collect();
        asked.len()
    };

    let pull = feeds.pull(&feed).await.unwrap();
    assert_eq!((pull.error.as_deref(), pull.services), (None, 120), "{:?}", pull.problems);
    assert_eq!(pages_asked(&log), 120, "one request for each service's page, none twice");
    assert_eq!(pull.details, 118, "all but the page that failed and the one describing another service");
    assert!(pull.summary().ends_with("; 118 read from their own pages"), "{}", pull.summary());
    let problems = pull.problems.join("\n");
    assert!(problems.contains("answered 500") && problems.contains("kept as the list gives it"), "{problems}");
    assert!(problems.contains("not the service"), "{problems}");

    let ids: Vec<uuid::Uuid> = first.iter().map(uuid_of).collect();
    let stored = t.store().services_by_ids(&ids).await.unwrap();
    assert_eq!(stored.len(), 120, "a service whose page failed is kept as listed");
    let venue = stored[0].service_at_locations[0].location.as_ref().unwrap();
    assert_eq!((venue.name.as_deref(), venue.latitude), (Some("The Park Centre"), Some(51.422496)));
    let placed = stored[6].service_at_locations[0].location.as_ref().unwrap();
    assert_eq!(
        (placed.name.as_deref(), placed.latitude),
        (Some("Southmead Community Centre"), Some(51.503764)),
        "a venue with no position is placed at its postcode"
    );
    assert_eq!(stored[0].service_at_locations[0].schedules[0].byday.as_deref(), Some("TU"));
    assert_eq!(stored[0].contacts[0].phones[0].number, "0117 922 2000");
    assert!(stored[0].service_areas.is_empty(), "a service with a venue is not given the whole area");
    assert_eq!(stored[3].service_at_locations[0].location_id, stored[12].service_at_locations[0].location_id);
    for i in [1, 5, 7] {
        assert_eq!(stored[i].service_areas[0].description.as_deref(), Some("Serves all of Bristol"), "service {i}");
    }

    // A day on, the list is as it was: no service's page is asked for again and
    // nothing is written.
    let seq = last_seq(t).await;
    t.clock.advance(chrono::Duration::hours(24));
    let again = feeds.pull(&feed).await.unwrap();
    assert_eq!((again.error.as_deref(), again.written, again.details), (None, 0, 0), "{:?}", again.problems);
    assert_eq!(pages_asked(&log), 0, "unchanged services are kept as stored");
    assert_eq!(last_seq(t).await, seq, "no change-feed entries");
    let kept = t.store().services_by_ids(&ids[..1]).await.unwrap();
    assert_eq!(kept[0].service_at_locations.len(), 1, "the venue stays");

    // The group changes its listing: only its page is read again.
    served.lock().unwrap()[0]["pc_metadata"]["date_modified"] = json!("2030-01-01");
    served.lock().unwrap()[0]["description"] = json!("<p>Now on Tuesdays and Thursdays.</p>");
    t.clock.advance(chrono::Duration::hours(24));
    let changed = feeds.pull(&feed).await.unwrap();
    assert_eq!((changed.error.as_deref(), changed.written, changed.details), (None, 1, 1), "{:?}", changed.problems);
    assert_eq!(pages_asked(&log), 1);
    let updated = t.store().services_by_ids(&ids[..1]).await.unwrap();
    assert_eq!(updated[0].description.as_deref(), Some("Now on Tuesdays and Thursdays."));
    assert_eq!(updated[0].service_at_locations.len(), 1);

    // When the pages stop answering, what Kith read from them is kept.
    let broken = v1_api(served.clone(), |_, _| None, log.clone());
    let feed = Feed { url: serve(broken).await, ..feed };
    served.lock().unwrap()[3]["pc_metadata"]["date_modified"] = json!("2030-01-02");
    t.clock.advance(chrono::Duration::days(8));
    let failing = feeds.pull(&feed).await.unwrap();
    assert_eq!(failing.error, None);
    assert!(failing.problems.iter().any(|p| p.contains("kept as Kith held it")), "{:?}", failing.problems);
    assert!(failing.problems.iter().any(|p| p.contains("asked for no more")), "{:?}", failing.problems);
    assert_eq!(pages_asked(&log), 5, "Kith stops asking after five failures in a row");
    let held = t.store().services_by_ids(&ids).await.unwrap();
    assert!(held.iter().step_by(3).all(|s| s.service_at_locations.len() == 1), "no venue is lost");

    // A service the feed stops listing is withdrawn; listed again, unchanged, it comes
    // back as it was, venue and all.
    let feed = Feed { url: url.clone(), ..feed };
    let everything = served.lock().unwrap().clone();
    served.lock().unwrap().remove(0);
    for _ in 0..2 {
        t.clock.advance(chrono::Duration::days(8));
        assert_eq!(feeds.pull(&feed).await.unwrap().error, None);
    }
    let gone = t.store().services_by_ids(&ids[..1]).await.unwrap();
    assert_eq!(gone[0].status, kith_domain::ServiceStatus::Inactive, "withdrawn after two pulls without it");
    *served.lock().unwrap() = everything;
    t.clock.advance(chrono::Duration::days(8));
    assert_eq!(feeds.pull(&feed).await.unwrap().error, None);
    let back = t.store().services_by_ids(&ids[..1]).await.unwrap();
    assert_eq!(back[0].status, kith_domain::ServiceStatus::Active, "listed again, it comes back");
    assert_eq!(back[0].service_at_locations.len(), 1);
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use kith_app::testing::TestApp;
                use kith_store::Engine;

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn sqlite() {
                    let t = TestApp::on(Engine::Sqlite, stringify!($name)).build().await.unwrap();
                    super::$name(&t).await;
                }

                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn postgres() {
                    let Some(t) = TestApp::on(Engine::Postgres, stringify!($name)).build().await else { return };
                    super::$name(&t).await;
                    t.cleanup().await;
                }
            }
        )*
    };
}

on_both_engines!(
    bristols_feed_pulled_page_by_page,
    a_broken_feed_is_recorded_and_nothing_stored_is_lost,
    later_pulls_ask_only_for_changes_and_the_whole_feed_is_read_weekly,
    a_list_without_venues_is_completed_from_each_services_own_page,
);
