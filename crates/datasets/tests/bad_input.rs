//! Bad input gets a clear error, never a panic, and nothing already stored is lost.
//! Each test starts from a stored directory, imports something broken, and checks the
//! message a person would read and that the stored records are untouched.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use kith_datasets::{ImportError, ImportReport, Importer, store_batch};
use kith_domain::FixedClock;
use kith_store::testing::TestStore;
use serde_json::json;
use std::sync::Arc;
use uuid::Uuid;

const KEPT: &str = "3f0e8a52-6b1c-4d0e-9a7b-2c5d8e1f4a60";

async fn stored_directory() -> TestStore {
    let clock = Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()));
    let store = kith_store::testing::sqlite(clock).await;
    let mut importer = Importer::new();
    let good =
        json!([{"id": KEPT, "name": "Shettleston Lunch Club", "status": "active", "description": "Soup and company"}]);
    importer.add_bytes(good.to_string().as_bytes(), "seed.json", None).unwrap();
    let (batch, report) = importer.finish();
    assert!(report.rejected.is_empty());
    store_batch(&*store.store, batch, 100, &mut |_, _| {}).await.unwrap();
    store
}

/// Imports `bytes` into `store` the way `kith import` does, returning the report or the
/// file-level error.
async fn import(store: &TestStore, bytes: &[u8]) -> Result<ImportReport, ImportError> {
    let mut importer = Importer::new();
    importer.add_bytes(bytes, "input.json", None)?;
    let (batch, report) = importer.finish();
    store_batch(&*store.store, batch, 100, &mut |_, _| {}).await.unwrap();
    Ok(report)
}

async fn assert_nothing_lost(store: &TestStore) {
    let kept = store.store.service(Uuid::parse_str(KEPT).unwrap()).await.unwrap().expect("the stored service survives");
    assert_eq!(kept.name, "Shettleston Lunch Club");
    assert_eq!(kept.status, kith_domain::ServiceStatus::Active);
    assert_eq!(store.store.counts().await.unwrap().services, 1);
}

fn only_reason(report: &ImportReport) -> String {
    assert_eq!(report.rejected.len(), 1, "{:#?}", report.rejected);
    report.rejected[0].reasons.join("; ")
}

#[tokio::test]
async fn truncated_json_is_refused_whole_with_its_position() {
    let store = stored_directory().await;
    let err = import(&store, br#"[{"id": "6d1f", "name": "Walking gro"#).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ImportError::Truncated { line: 1, .. }), "{message}");
    assert!(message.contains("truncated") && message.contains("line 1"), "{message}");
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn a_wrong_type_names_the_field_and_what_was_expected() {
    let store = stored_directory().await;
    let input = json!([{"id": KEPT, "name": 42, "status": "active"}]);
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    let reason = only_reason(&report);
    assert!(reason.starts_with("$[0].name: wrong type: integer `42`, expected a string"), "{reason}");
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn an_unknown_enum_value_lists_the_allowed_ones() {
    let store = stored_directory().await;
    let input = json!([
        {"id": KEPT, "name": "Shettleston Lunch Club", "status": "closed"},
        {"id": "9b2d7c1e-0000-4000-8000-000000000001", "location_type": "building"}
    ]);
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    assert_eq!(report.rejected.len(), 2);
    let status = report.rejected[0].reasons.join("; ");
    assert!(status.starts_with("$[0].status: unknown variant `closed`"), "{status}");
    assert!(status.contains("`temporarily closed`"), "{status}");
    let location = report.rejected[1].reasons.join("; ");
    assert!(location.starts_with("$[1].location_type: unknown variant `building`"), "{location}");
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn a_ten_megabyte_string_is_rejected_by_path_without_storing_it() {
    let store = stored_directory().await;
    let huge = "x".repeat(10 * 1024 * 1024);
    let input = json!([
        {"id": "9b2d7c1e-0000-4000-8000-000000000002", "name": "Fine", "status": "active"},
        {"id": KEPT, "name": "Shettleston Lunch Club", "status": "active", "description": huge}
    ]);
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    let reason = only_reason(&report);
    assert!(reason.starts_with("$[1].description: this text is 10485760 characters long"), "{reason}");
    assert_eq!(report.accepted, 1, "the good record beside it still imports");
    let kept = store.store.service(Uuid::parse_str(KEPT).unwrap()).await.unwrap().unwrap();
    assert_eq!(kept.description.as_deref(), Some("Soup and company"));
}

#[tokio::test]
async fn a_duplicate_id_keeps_the_first_and_reports_the_second() {
    let store = stored_directory().await;
    let id = "9b2d7c1e-0000-4000-8000-000000000003";
    let input = json!([
        {"id": id, "name": "Craft Club", "status": "active"},
        {"id": id, "name": "Knit and Natter", "status": "active"}
    ]);
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    let reason = only_reason(&report);
    assert!(reason.contains("$[1].id") && reason.contains("duplicate") && reason.contains("$[0]"), "{reason}");
    let stored = store.store.service(Uuid::parse_str(id).unwrap()).await.unwrap().unwrap();
    assert_eq!(stored.name, "Craft Club");
    assert_eq!(store.store.counts().await.unwrap().services, 2);
}

#[tokio::test]
async fn bad_utf8_is_refused_whole_with_its_line() {
    let store = stored_directory().await;
    let mut bytes = b"[\n{\"id\": \"9b2d7c1e-0000-4000-8000-000000000004\",\n\"name\": \"Caf".to_vec();
    bytes.extend_from_slice(&[0xE9, 0x20]); // Latin-1 "é", not UTF-8.
    bytes.extend_from_slice(b"Club\", \"status\": \"active\"}]");
    let err = import(&store, &bytes).await.unwrap_err();
    let message = err.to_string();
    assert!(matches!(err, ImportError::NotUtf8 { line: 3, .. }), "{message}");
    assert!(message.contains("not valid UTF-8") && message.contains("save it as UTF-8"), "{message}");
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn a_missing_required_field_is_named() {
    let store = stored_directory().await;
    let input = json!({"contents": [{"id": KEPT, "status": "active", "description": "no name"}]});
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    let reason = only_reason(&report);
    assert_eq!(reason, "$.contents[0]: the required field `name` is missing");
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn a_bad_uuid_a_non_object_and_an_unknown_shape_are_each_explained() {
    let store = stored_directory().await;
    let input = json!([
        {"id": "not-a-uuid", "name": "Choir", "status": "active"},
        "just a string",
        {"colour": "blue"}
    ]);
    let report = import(&store, input.to_string().as_bytes()).await.unwrap();
    assert_eq!(report.rejected.len(), 3);
    assert!(report.rejected[0].reasons[0].starts_with("$[0].id: not a UUID"), "{}", report.rejected[0]);
    assert!(report.rejected[1].reasons[0].contains("expected an object, found a string"), "{}", report.rejected[1]);
    assert!(report.rejected[2].reasons[0].contains("cannot tell what kind of record"), "{}", report.rejected[2]);
    assert_nothing_lost(&store).await;
}

#[tokio::test]
async fn a_scalar_document_is_refused_with_what_was_expected() {
    let store = stored_directory().await;
    let err = import(&store, b"42").await.unwrap_err();
    assert!(err.to_string().contains("expected a JSON object, a list of objects, or a paged response"), "{err}");
    assert_nothing_lost(&store).await;
}

/// A NUL (U+0000) or another control character in a record's text is taken out, with a
/// warning naming the record and the field, and the record is imported on both engines:
/// PostgreSQL cannot store a NUL at all, and once refused the whole import.
#[tokio::test]
async fn control_characters_are_taken_out_and_named_on_both_engines() {
    let clock = Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()));
    let mut stores = vec![kith_store::testing::sqlite(clock.clone()).await];
    stores.extend(kith_store::testing::postgres(clock, "control_characters_are_taken_out_and_named").await);
    let id = "0b6c7a1e-5f3d-4b2a-9c8e-7d6f5e4a3b21";
    let feed = format!(
        r#"[{{"id": "{KEPT}", "name": "Lunch club", "status": "active"}},
            {{"id": "{id}", "name": "Walking\u0000 group", "status": "active", "description": "Tuesdays\u0007 at ten\nby the park\u001f"}}]"#
    );
    for store in stores {
        let report = import(&store, feed.as_bytes()).await.unwrap();
        assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
        assert_eq!(report.accepted, 2);
        let warnings = report.warnings.join("\n");
        assert!(warnings.contains("[1].name: held a control character (U+0000), which was removed"), "{warnings}");
        assert!(warnings.contains("[1].description: held a control character (U+0007)"), "{warnings}");
        let s = store.store.service(Uuid::parse_str(id).unwrap()).await.unwrap().unwrap();
        assert_eq!(s.name, "Walking group");
        assert_eq!(s.description.as_deref(), Some("Tuesdays at ten\nby the park"));
        store.cleanup().await;
    }
}
