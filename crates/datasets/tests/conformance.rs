//! HSDS 3.0 / ORUK conformance: the official examples and mocks import, what Kith
//! exports validates against the official compiled schemas, the failing mock is
//! rejected by name, and the real Bristol ORUK v1 feed imports with every rejection
//! explained. Reads `../shared`; skips with a message when it is absent.

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use kith_datasets::{Importer, export_hsds, store_batch};
use kith_domain::FixedClock;
use kith_store::testing::{TestStore, shared_dir};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

fn read_json(path: &Path) -> Value {
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

struct Schemas {
    root: PathBuf,
}

impl Schemas {
    fn validator(&self, rel: &str) -> jsonschema::Validator {
        let schema = read_json(&self.root.join(rel));
        jsonschema::options()
            .should_validate_formats(true)
            .should_ignore_unknown_formats(true)
            .build(&schema)
            .unwrap_or_else(|e| panic!("the official schema {rel} compiles: {e}"))
    }

    /// Asserts `instance` validates against the schema at `rel`, listing every error.
    fn assert_valid(&self, rel: &str, instance: &Value, label: &str) {
        assert_valid_with(&self.validator(rel), rel, instance, label);
    }
}

/// Asserts `instance` validates, listing every error.
fn assert_valid_with(validator: &jsonschema::Validator, rel: &str, instance: &Value, label: &str) {
    let errors: Vec<String> =
        validator.iter_errors(instance).take(20).map(|e| format!("  {} at {}", e, e.instance_path())).collect();
    assert!(errors.is_empty(), "{label} does not validate against {rel}:\n{}", errors.join("\n"));
}

async fn import_paths(store: &TestStore, paths: &[PathBuf]) -> kith_datasets::ImportReport {
    let mut importer = Importer::new();
    for path in paths {
        importer.add_path(path).unwrap_or_else(|e| panic!("{e}"));
    }
    let (batch, report) = importer.finish();
    store_batch(&*store.store, batch, 500, &mut |_, _| {}).await.unwrap();
    report
}

async fn export(store: &TestStore) -> (tempfile::TempDir, kith_datasets::ExportSummary) {
    let dir = tempfile::tempdir().unwrap();
    let summary = export_hsds(&*store.store, dir.path(), &mut |_| {}).await.unwrap();
    (dir, summary)
}

/// Validates an export directory against the HSDS 3.0 and ORUK 3.0 compiled schemas.
/// (HSDS's `compiled/*_list.json` describe one record in tabular form, not a page, so
/// pages are checked with ORUK's list schemas and records with HSDS's record schemas.)
fn assert_export_conforms(schemas: &Schemas, dir: &Path, label: &str) {
    let services = read_json(&dir.join("services.json"));
    assert_page(&services, &format!("{label} services.json"));
    schemas.assert_valid("oruk-3.0/service_list.json", &services, &format!("{label} services.json"));
    let hsds_service = schemas.validator("hsds-3.0/compiled/service.json");
    let oruk_service = schemas.validator("oruk-3.0/service.json");
    for (i, service) in services["contents"].as_array().unwrap().iter().enumerate() {
        for (name, v) in [("HSDS", &hsds_service), ("ORUK", &oruk_service)] {
            let errors: Vec<String> =
                v.iter_errors(service).take(5).map(|e| format!("{e} at {}", e.instance_path())).collect();
            assert!(errors.is_empty(), "{label} service {i} ({}) fails the {name} schema: {errors:?}", service["name"]);
        }
    }
    let orgs = read_json(&dir.join("organizations.json"));
    assert_page(&orgs, &format!("{label} organizations.json"));
    let hsds_org = schemas.validator("hsds-3.0/compiled/organization.json");
    let oruk_org = schemas.validator("oruk-3.0/organization.json");
    for (i, org) in orgs["contents"].as_array().unwrap().iter().enumerate() {
        assert_valid_with(&hsds_org, "hsds-3.0/compiled/organization.json", org, &format!("{label} organization {i}"));
        assert_valid_with(&oruk_org, "oruk-3.0/organization.json", org, &format!("{label} organization {i}"));
    }
    let terms = read_json(&dir.join("taxonomy_terms.json"));
    assert_page(&terms, &format!("{label} taxonomy_terms.json"));
    schemas.assert_valid("oruk-3.0/taxonomy_term_list.json", &terms, &format!("{label} taxonomy_terms.json"));
    let taxonomies = read_json(&dir.join("taxonomies.json"));
    schemas.assert_valid("oruk-3.0/taxonomy_list.json", &taxonomies, &format!("{label} taxonomies.json"));
}

/// The ORUK page fields, with the types the ORUK API documents (its list schemas name
/// them under a "Page" key that JSON Schema does not read, so check them here).
fn assert_page(page: &Value, label: &str) {
    for key in ["total_items", "total_pages", "page_number", "size"] {
        assert!(page[key].is_u64(), "{label}: {key} is a whole number");
    }
    for key in ["first_page", "last_page", "empty"] {
        assert!(page[key].is_boolean(), "{label}: {key} is true or false");
    }
    let contents = page["contents"].as_array().unwrap_or_else(|| panic!("{label}: contents is a list"));
    assert_eq!(page["total_items"].as_u64(), Some(contents.len() as u64), "{label}: one page holds everything");
    assert_eq!(page["empty"].as_bool(), Some(contents.is_empty()), "{label}: empty");
}

/// Every leaf of `input` appears at the same place in `output`: the export lost nothing.
/// Objects in lists are matched by `id`. Numbers compare as numbers, timestamps as instants.
fn assert_contains(input: &Value, output: &Value, path: &str) {
    match (input, output) {
        (Value::Object(a), Value::Object(b)) => {
            for (key, value) in a {
                let here = format!("{path}.{key}");
                let other = b.get(key).unwrap_or_else(|| panic!("{here} is missing from the export"));
                assert_contains(value, other, &here);
            }
        }
        (Value::Array(a), Value::Array(b)) => {
            for (i, item) in a.iter().enumerate() {
                let here = format!("{path}[{i}]");
                let matched = match item.get("id") {
                    Some(id) => b.iter().find(|o| o.get("id") == Some(id)),
                    None => b.get(i),
                };
                assert_contains(item, matched.unwrap_or_else(|| panic!("{here} is missing from the export")), &here);
            }
        }
        (Value::Number(a), Value::Number(b)) => assert_eq!(a.as_f64(), b.as_f64(), "{path}"),
        (Value::String(a), Value::String(b)) if a != b => {
            let instant = |s: &str| chrono::DateTime::parse_from_rfc3339(s).ok();
            let time = |s: &str| chrono::NaiveTime::parse_from_str(s, "%H:%M:%S").ok();
            assert!(
                (instant(a).is_some() && instant(a) == instant(b)) || (time(a).is_some() && time(a) == time(b)),
                "{path}: {a:?} became {b:?}"
            );
        }
        (a, b) => assert_eq!(a, b, "{path}"),
    }
}

fn examples(shared: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = ["schemas/hsds-3.0-examples", "schemas/oruk-3.0-mocks/pass"]
        .iter()
        .flat_map(|dir| std::fs::read_dir(shared.join(dir)).unwrap().map(|e| e.unwrap().path()))
        .collect();
    files.sort();
    files
}

#[tokio::test]
async fn official_examples_import_and_export_valid_hsds_and_oruk() {
    let Some(shared) = shared_dir("official_examples_import_and_export_valid_hsds_and_oruk") else { return };
    let schemas = Schemas { root: shared.join("schemas") };
    for file in examples(&shared) {
        let store = kith_store::testing::sqlite(clock()).await;
        let report = import_paths(&store, std::slice::from_ref(&file)).await;
        let label = file.file_name().unwrap().to_string_lossy().to_string();
        // ORUK's list mock holds 128 different versions of one service under one id:
        // Kith imports the first and reports each conflicting repeat, by path.
        let not_duplicates: Vec<_> =
            report.rejected.iter().filter(|r| !r.reasons.iter().all(|x| x.contains("is a duplicate of"))).collect();
        assert!(not_duplicates.is_empty(), "{label}: {not_duplicates:#?}");
        let (dir, summary) = export(&store).await;
        assert_export_conforms(&schemas, dir.path(), &label);

        // Nothing the example said is lost on the way through.
        let original = read_json(&file);
        let exported = read_json(&dir.path().join("services.json"));
        let exported_services = exported["contents"].as_array().unwrap();
        let input_services: Vec<&Value> = match &original {
            Value::Object(m) if m.contains_key("contents") => m["contents"].as_array().unwrap().iter().collect(),
            Value::Object(m) if m.contains_key("status") => vec![&original],
            Value::Object(m) if m.contains_key("services") => m["services"].as_array().unwrap().iter().collect(),
            _ => vec![],
        };
        let distinct: std::collections::HashSet<_> = input_services.iter().map(|s| &s["id"]).collect();
        assert_eq!(summary.services as usize, distinct.len(), "{label}: every service is exported");
        let exported_orgs = read_json(&dir.path().join("organizations.json"));
        let exported_locations = read_json(&dir.path().join("locations.json"));
        let find =
            |list: &Value, id: &Value| list["contents"].as_array().unwrap().iter().find(|x| &x["id"] == id).cloned();
        let mut seen = std::collections::HashSet::new();
        for service in input_services.into_iter().filter(|s| seen.insert(s["id"].clone())) {
            let out = exported_services.iter().find(|s| s["id"] == service["id"]).expect("the service is exported");
            // An organisation's own locations are exported in locations.json, not
            // repeated inside every service (ORUK's nested organisation has none).
            let mut service = service.clone();
            if let Some(org) = service.get_mut("organization").and_then(Value::as_object_mut) {
                for location in org.remove("locations").and_then(|l| l.as_array().cloned()).unwrap_or_default() {
                    let out =
                        find(&exported_locations, &location["id"]).expect("the organisation's location is exported");
                    assert_contains(&location, &out, &format!("{label}$.organization.locations"));
                }
                let out = find(&exported_orgs, &org["id"]).expect("the organisation is exported");
                let mut org = Value::Object(org.clone());
                org.as_object_mut().unwrap().remove("services");
                assert_contains(&org, &out, &format!("{label}$.organization"));
            }
            assert_contains(&service, out, &format!("{label}$"));
        }
    }
}

#[tokio::test]
async fn the_failing_oruk_mock_is_rejected_naming_the_email_field() {
    let Some(shared) = shared_dir("the_failing_oruk_mock_is_rejected_naming_the_email_field") else { return };
    let mut importer = Importer::new();
    importer.add_path(&shared.join("schemas/oruk-3.0-mocks/fail/service_full.json")).unwrap();
    let (batch, report) = importer.finish();
    assert!(batch.is_empty());
    assert_eq!(report.rejected.len(), 1);
    let reasons = report.rejected[0].reasons.join("\n");
    assert!(reasons.contains("$.email: \"email-example_com\" is not an email address"), "{reasons}");
}

#[tokio::test]
async fn an_export_imports_back_to_the_same_export() {
    let Some(shared) = shared_dir("an_export_imports_back_to_the_same_export") else { return };
    let first = kith_store::testing::sqlite(clock()).await;
    import_paths(&first, &examples(&shared)).await;
    let (dir1, _) = export(&first).await;
    let second = kith_store::testing::sqlite(clock()).await;
    let report = import_paths(&second, &[dir1.path().to_owned()]).await;
    assert!(report.rejected.is_empty(), "{:#?}", report.rejected);
    let (dir2, _) = export(&second).await;
    for file in ["services.json", "organizations.json", "locations.json", "taxonomies.json", "taxonomy_terms.json"] {
        assert_eq!(read_json(&dir1.path().join(file)), read_json(&dir2.path().join(file)), "{file} round-trips");
    }
}

#[tokio::test]
async fn bristol_oruk_v1_feed_imports_with_each_rejection_explained() {
    let Some(shared) = shared_dir("bristol_oruk_v1_feed_imports_with_each_rejection_explained") else { return };
    let store = kith_store::testing::sqlite(clock()).await;
    let report = import_paths(&store, &[shared.join("data/oruk-v1/bristol-services.json")]).await;
    for r in &report.rejected {
        eprintln!("rejected: {r}");
    }
    eprintln!(
        "{} records, {} imported, {} rejected, {} warnings",
        report.records,
        report.accepted,
        report.rejected.len(),
        report.warnings.len()
    );
    assert_eq!(report.records, 819);
    assert_eq!(report.accepted + report.rejected.len(), 819, "every record is either imported or reported");
    let paths: Vec<&str> = report.rejected.iter().map(|r| r.path.as_str()).collect();
    assert!(paths.contains(&"$[0]"), "the service with an empty name is reported");
    let empty_name = report.rejected.iter().find(|r| r.path == "$[0]").unwrap();
    assert!(empty_name.reasons[0].contains("has no name"), "{empty_name}");
    let duplicate = report
        .rejected
        .iter()
        .find(|r| r.reasons.iter().any(|x| x.contains("duplicate")))
        .expect("the duplicate id is reported");
    assert_eq!(duplicate.path, "$[810]");
    assert!(duplicate.reasons[0].contains("$[373]"), "{duplicate}");

    let counts = store.store.counts().await.unwrap();
    assert_eq!(counts.services as usize, report.accepted);
    let (dir, _) = export(&store).await;
    let schemas = Schemas { root: shared.join("schemas") };
    assert_export_conforms(&schemas, dir.path(), "bristol");

    // HTML is gone from descriptions, and the staff member who assured a listing is
    // not published (unless the listing itself gives that address to the public).
    let services = read_json(&dir.path().join("services.json"));
    assert!(!services.to_string().contains("<p>") && !services.to_string().contains("&nbsp;"));
    let source = read_json(&shared.join("data/oruk-v1/bristol-services.json"));
    let mut checked = 0;
    for record in source.as_array().unwrap() {
        let Some(assurer) = record["pc_metadata"]["assured_by"].as_str().filter(|a| a.contains('@')) else { continue };
        let mut public = record.clone();
        public.as_object_mut().unwrap().remove("pc_metadata");
        if public.to_string().contains(assurer) {
            continue;
        }
        if let Some(out) = services["contents"].as_array().unwrap().iter().find(|s| s["id"] == record["id"]) {
            assert!(!out.to_string().contains(assurer), "{} publishes its assurer's address", out["name"]);
            checked += 1;
        }
    }
    assert!(checked > 700, "checked {checked} services for staff addresses");
}
