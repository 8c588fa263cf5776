//! `kith import` streams: records are written a window at a time while the next
//! window is read. These tests use windows of two records (a file's first window is a
//! tenth of that, so one), so that every rule about a whole import (duplicates,
//! repeats, counts, the report) is checked across windows.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use kith_datasets::import::{Progress, import_streaming};
use kith_datasets::{Importer, store_batch};
use kith_domain::FixedClock;
use serde_json::json;
use std::sync::{Arc, Mutex};
use uuid::Uuid;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

fn id(n: u32) -> String {
    format!("9b2d7c1e-0000-4000-8000-{n:012}")
}

fn service(n: u32, name: &str) -> serde_json::Value {
    json!({
        "id": id(n),
        "name": name,
        "status": "active",
        "organization": {"id": id(900), "name": "Shettleston Community Trust", "description": "Local charity"},
    })
}

fn write(dir: &tempfile::TempDir, name: &str, value: &serde_json::Value) -> std::path::PathBuf {
    let path = dir.path().join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(value).unwrap()).unwrap();
    path
}

#[tokio::test]
async fn a_streamed_import_stores_what_reading_everything_first_stores() {
    let dir = tempfile::tempdir().unwrap();
    let services: Vec<_> = (1..=7).map(|n| service(n, &format!("Walking group {n}"))).collect();
    let file = write(&dir, "services.json", &json!({"total_items": 7, "contents": services}));

    let streamed_store = kith_store::testing::sqlite(clock()).await;
    let seen: Arc<Mutex<Vec<(usize, usize)>>> = Arc::default();
    let log = seen.clone();
    let streamed = import_streaming(&*streamed_store.store, vec![file.clone()], 2, move |at: Progress<'_>| {
        log.lock().unwrap().push((at.done, at.total));
    })
    .await
    .unwrap();

    let whole_store = kith_store::testing::sqlite(clock()).await;
    let mut importer = Importer::new();
    importer.add_path(&file).unwrap();
    let (batch, report) = importer.finish();
    let whole = store_batch(&*whole_store.store, batch, 100, &mut |_, _| {}).await.unwrap();

    assert_eq!(streamed.report.records, 7);
    assert_eq!(streamed.report.accepted, report.accepted);
    assert!(streamed.report.rejected.is_empty(), "{:#?}", streamed.report.rejected);
    assert_eq!(streamed.written.services, whole.written.services);
    assert_eq!(streamed.written.organizations, 1, "the shared organisation is new only once");
    assert_eq!(streamed_store.store.counts().await.unwrap(), whole_store.store.counts().await.unwrap());
    assert_eq!(
        *seen.lock().unwrap(),
        [(1, 7), (3, 7), (5, 7), (7, 7)],
        "progress after every window; the first is a tenth of the rest, rounded up"
    );
}

#[tokio::test]
async fn duplicates_are_told_from_repeats_after_the_first_was_written() {
    let dir = tempfile::tempdir().unwrap();
    // The first of each pair is in an earlier window than the second, and may already be
    // written when the second is read.
    let input = json!([
        service(1, "Craft Club"),
        service(2, "Men's Shed"),
        service(3, "Lunch Club"),
        service(1, "Knit and Natter"),
        service(2, "Men's Shed"),
    ]);
    let file = write(&dir, "services.json", &input);
    let store = kith_store::testing::sqlite(clock()).await;
    let streamed = import_streaming(&*store.store, vec![file], 2, |_| {}).await.unwrap();
    let report = &streamed.report;

    assert_eq!(report.rejected.len(), 1, "{:#?}", report.rejected);
    let reason = report.rejected[0].reasons.join("; ");
    assert_eq!(report.rejected[0].path, "$[3]");
    assert!(reason.contains("duplicate") && reason.contains("$[0]"), "{reason}");
    assert!(report.notes.iter().any(|n| n.contains("$[4] repeats") && n.contains("$[1]")), "{:#?}", report.notes);
    assert_eq!(report.records, 4, "an exact repeat is not counted again");
    let first = store.store.service(Uuid::parse_str(&id(1)).unwrap()).await.unwrap().unwrap();
    assert_eq!(first.name, "Craft Club", "the first of a conflicting pair is kept");
    assert_eq!(store.store.counts().await.unwrap().services, 3);
}

#[tokio::test]
async fn a_folder_is_read_with_what_services_refer_to_first() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir,
        "services.json",
        &json!([{"id": id(1), "name": "Craft Club", "status": "active", "organization_id": id(900)}]),
    );
    write(
        &dir,
        "organizations.json",
        &json!([{"id": id(900), "name": "Shettleston Community Trust", "description": "Local charity"}]),
    );
    let sources: Arc<Mutex<Vec<String>>> = Arc::default();
    let log = sources.clone();
    let store = kith_store::testing::sqlite(clock()).await;
    let streamed = import_streaming(&*store.store, vec![dir.path().to_owned()], 2, move |at: Progress<'_>| {
        log.lock().unwrap().push(at.source.rsplit('/').next().unwrap().to_owned());
    })
    .await
    .unwrap();
    assert_eq!(streamed.report.accepted, 2);
    assert_eq!(*sources.lock().unwrap(), ["organizations.json", "services.json"]);
}

#[tokio::test]
async fn an_unreadable_file_stops_the_import_and_keeps_what_came_before() {
    let dir = tempfile::tempdir().unwrap();
    let good = write(&dir, "a.json", &json!([service(1, "Craft Club")]));
    let bad = dir.path().join("b.json");
    std::fs::write(&bad, br#"[{"id": "6d1f", "name": "Walking gro"#).unwrap();
    let store = kith_store::testing::sqlite(clock()).await;
    let err = import_streaming(&*store.store, vec![good, bad], 2, |_| {}).await.unwrap_err();
    assert!(err.to_string().contains("truncated"), "{err}");
    assert_eq!(store.store.counts().await.unwrap().services, 1, "the first file's service is kept");
}
