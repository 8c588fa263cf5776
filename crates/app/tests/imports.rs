//! `--strict` means all or nothing: every record is checked before anything is written,
//! and everything is written in one transaction, so a failure part way writes nothing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use kith_app::imports::{ImportFailure, Imports};
use kith_app::testing::TestApp;
use kith_store::Engine;
use serde_json::json;
use uuid::Uuid;

/// Two files, as a council's export often comes: its organisations, then its services.
fn two_files(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let org = Uuid::from_u128(0xA1);
    let organizations: Vec<_> = (0..30u128)
        .map(|i| json!({"id": Uuid::from_u128(0xA1 + i), "name": format!("Group {i}"), "description": "A group"}))
        .collect();
    let services: Vec<_> = (0..30u128)
        .map(|i| {
            json!({"id": Uuid::from_u128(0x5E00 + i), "name": format!("Walking group {i}"), "status": "active",
                   "organization_id": org})
        })
        .collect();
    let first = dir.join("organizations.json");
    let second = dir.join("services.json");
    std::fs::write(&first, serde_json::to_vec(&organizations).unwrap()).unwrap();
    std::fs::write(&second, serde_json::to_vec(&services).unwrap()).unwrap();
    vec![first, second]
}

#[tokio::test]
async fn a_strict_import_that_fails_part_way_writes_nothing_on_both_engines() {
    let mut apps = vec![TestApp::sqlite("strict_import").await];
    apps.extend(TestApp::on(Engine::Postgres, "strict_import").build().await);
    for t in apps {
        let engine = t.store().engine();
        let dir = tempfile::tempdir().unwrap();
        let files = two_files(dir.path());
        // The organisations write; the services' file fails, as a full disk would.
        t.test_store().refuse_inserts("services").await;
        let failed = Imports::new(t.store().clone()).files(files.clone(), true, vec![], |_| {}).await.unwrap_err();
        assert!(matches!(failed, ImportFailure::NothingWritten(_)), "{engine:?}: {failed}");
        let message = failed.to_string();
        assert!(message.contains("nothing was imported") && !message.contains("kept"), "{engine:?}: {message}");
        let counts = t.store().counts().await.unwrap();
        assert_eq!((counts.organizations, counts.services), (0, 0), "{engine:?}: nothing from either file");
        assert_eq!(t.store().last_seq().await.unwrap(), 0, "{engine:?}: no change in the feed either");

        // Once the database takes writes again, the same import writes everything.
        t.test_store().allow_inserts("services").await;
        let done = Imports::new(t.store().clone()).files(files, true, vec![], |_| {}).await.unwrap();
        assert_eq!((done.written.organizations, done.written.services), (30, 30), "{engine:?}");
        t.cleanup().await;
    }
}

/// A service naming an organisation that neither the import nor the directory holds is
/// imported with a warning that says so; one brought by a later file is not warned of.
#[tokio::test]
async fn a_service_naming_a_missing_organisation_is_warned_of_on_both_engines() {
    let mut apps = vec![TestApp::sqlite("missing_organisation").await];
    apps.extend(TestApp::on(Engine::Postgres, "missing_organisation").build().await);
    for t in apps {
        let engine = t.store().engine();
        let dir = tempfile::tempdir().unwrap();
        let (missing, later) = (Uuid::from_u128(0xDEAD), Uuid::from_u128(0x1A7E));
        let services = json!([
            {"id": Uuid::from_u128(0x5E01), "name": "Lunch club", "status": "active", "organization_id": missing},
            {"id": Uuid::from_u128(0x5E02), "name": "Supper club", "status": "active", "organization_id": missing},
            {"id": Uuid::from_u128(0x5E03), "name": "Walking group", "status": "active", "organization_id": later},
        ]);
        let organizations = json!([{"id": later, "name": "Ramblers", "description": "Walks"}]);
        let (first, second) = (dir.path().join("a-services.json"), dir.path().join("organizations.json"));
        std::fs::write(&first, services.to_string()).unwrap();
        std::fs::write(&second, organizations.to_string()).unwrap();
        for strict in [false, true] {
            let done = Imports::new(t.store().clone())
                .files(vec![first.clone(), second.clone()], strict, vec![], |_| {})
                .await;
            let report = done.unwrap().report;
            let about: Vec<&String> = report.warnings.iter().filter(|w| w.contains("names the organisation")).collect();
            assert_eq!(about.len(), 1, "{engine:?} strict={strict}: {:?} {:?}", report.warnings, report.rejected);
            assert!(
                about[0].contains(&missing.to_string()) && about[0].contains("(and 1 other service)"),
                "{}",
                about[0]
            );
        }
        t.cleanup().await;
    }
}
