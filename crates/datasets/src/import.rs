//! Reading directory data: HSDS 3.0 / ORUK 3.0 JSON (one object, a list, or a paged
//! API response) and the ORUK v1 service list most English councils still publish.
//!
//! Reading is separate from storing. [`Importer`] turns files into a [`DirectoryBatch`]
//! and an [`ImportReport`] that names every record it could not take, by JSON path,
//! with the reason. [`store_batch`] then writes what was accepted, in chunks.
//! [`import_streaming`], which `kith import` uses, does both a window at a time, writing
//! one window while it reads the next.

use crate::oruk_v1;
use kith_domain::DirectoryBatch;
use kith_domain::geo::WholeArea;
use kith_domain::hsds::{Location, Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::provenance::{Source, Stamp};
use kith_domain::validate::{Checker, MAX_RAW_CHARS, MAX_TEXT_CHARS, Problem, Severity, oversized_strings};
use kith_store::{Store, StoreError, WriteSummary};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde::de::IgnoredAny;
use serde_json::Value;
use serde_json::value::RawValue;
use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// The kinds of record Kith imports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordKind {
    Service,
    Organization,
    Location,
    Taxonomy,
    TaxonomyTerm,
}

impl RecordKind {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordKind::Service => "service",
            RecordKind::Organization => "organization",
            RecordKind::Location => "location",
            RecordKind::Taxonomy => "taxonomy",
            RecordKind::TaxonomyTerm => "taxonomy term",
        }
    }

    /// The kind a file name suggests (`services.json`, `taxonomy_terms.json`, ...), which
    /// settles records too sparse to tell apart by their fields.
    pub fn from_file_name(path: &Path) -> Option<RecordKind> {
        let stem = path.file_stem()?.to_str()?.to_ascii_lowercase();
        match stem.as_str() {
            "services" | "service" | "service_list" | "service_full" => Some(RecordKind::Service),
            "organizations" | "organisations" | "organization" | "organization_list" | "organization_full" => {
                Some(RecordKind::Organization)
            }
            "locations" | "location" => Some(RecordKind::Location),
            "taxonomies" | "taxonomy" | "taxonomy_list" => Some(RecordKind::Taxonomy),
            "taxonomy_terms" | "taxonomy_term" | "taxonomy_term_list" => Some(RecordKind::TaxonomyTerm),
            _ => None,
        }
    }
}

/// The shape a record arrived in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum SourceFormat {
    #[serde(rename = "HSDS 3.0")]
    Hsds3,
    #[serde(rename = "ORUK v1")]
    OrukV1,
    /// A spreadsheet saved as CSV, read through a map (`kith import --map`).
    #[serde(rename = "CSV")]
    Csv,
}

/// A record Kith did not import, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Rejection {
    pub source: String,
    /// JSON path of the record, such as `$[373]` or `$.contents[2]`; for a sheet, its
    /// line, such as `line 4`.
    pub path: String,
    pub id: Option<String>,
    pub name: Option<String>,
    /// Each reason names the field's own path.
    pub reasons: Vec<String>,
}

impl fmt::Display for Rejection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.source, self.path)?;
        match (&self.name, &self.id) {
            (Some(name), _) if !name.trim().is_empty() => write!(f, " ({name:?})")?,
            (_, Some(id)) => write!(f, " (id {id})")?,
            _ => {}
        }
        write!(f, ": {}", self.reasons.join("; "))
    }
}

/// What reading the input found.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ImportReport {
    /// Top-level records seen, in every file, not counting exact repeats.
    pub records: usize,
    pub accepted: usize,
    pub accepted_by_kind: HashMap<&'static str, usize>,
    pub formats: Vec<SourceFormat>,
    pub rejected: Vec<Rejection>,
    /// Problems in records that were imported anyway.
    pub warnings: Vec<String>,
    /// Things worth saying about a file that are not about one record.
    pub notes: Vec<String>,
    /// Services with no venue and no service area given the area their source covers
    /// (`--area`).
    #[serde(skip_serializing_if = "is_zero")]
    pub placed: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// A file Kith cannot read at all. Nothing from it is imported.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("cannot read {path}: {reason}")]
    Io { path: PathBuf, reason: String },

    #[error("{source_name} is not valid UTF-8 (line {line}, byte {offset}); save it as UTF-8 and import it again")]
    NotUtf8 { source_name: String, line: usize, offset: usize },

    #[error("{source_name} ends too early at line {line}, column {column}: the file looks truncated ({message})")]
    Truncated { source_name: String, line: usize, column: usize, message: String },

    #[error("{source_name} is not valid JSON at line {line}, column {column}: {message}")]
    Json { source_name: String, line: usize, column: usize, message: String },

    #[error("{source_name}: {message}")]
    Shape { source_name: String, message: String },

    /// Writing failed, so reading stopped; the write's own error says why.
    #[error("reading stopped because writing to the database failed")]
    Stopped,
}

/// Reads one or more files into a batch and a report.
#[derive(Debug, Default)]
pub struct Importer {
    batch: DirectoryBatch,
    report: ImportReport,
    /// Where each top-level id was first seen, and a fingerprint of its text, to tell
    /// an exact repeat from a conflicting duplicate after the first was written.
    seen: HashMap<(RecordKind, uuid::Uuid), Seen>,
    /// The places the whole input covers, given to services that name none.
    areas: Vec<WholeArea>,
    /// The round (this import) that batches handed out are stamped with, and the file
    /// being read: what the store records as where each record came from.
    round: Option<uuid::Uuid>,
    source: Option<Source>,
}

#[derive(Debug)]
struct Seen {
    at: String,
    fingerprint: Fingerprint,
}

/// The first 128 bits of a record text's SHA-256.
type Fingerprint = [u8; 16];

fn fingerprint(record: &str) -> Fingerprint {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(record.as_bytes());
    let mut out = [0; 16];
    out.copy_from_slice(&digest[..16]);
    out
}

/// Hands each window of accepted records on (to be written) while reading goes on,
/// with how far through its file reading is.
pub type Flush<'a> = dyn FnMut(DirectoryBatch, Progress<'_>) -> Result<(), ImportError> + Send + 'a;

/// How far reading has got through one file.
#[derive(Debug, Clone, Copy)]
pub struct Progress<'s> {
    pub source: &'s str,
    /// Records of this file read so far.
    pub done: usize,
    /// Records in this file.
    pub total: usize,
}

/// Records read at a time when reading streams into the store: enough to keep both
/// cores busy and each write transaction large, few enough that only the file's text
/// and a few windows are in memory at once.
pub const WINDOW: usize = DEFAULT_CHUNK;

/// The window for `kith import` into `engine`. PostgreSQL's writer is the slower side
/// (the server parses every document), so smaller windows start it sooner and leave
/// less for it at the end: 5,000 records imported about 8 % faster than 20,000 there
/// (docs/BENCHMARKS.md), where SQLite measured no better.
pub fn window_for(engine: kith_store::Engine) -> usize {
    match engine {
        kith_store::Engine::Sqlite => WINDOW,
        kith_store::Engine::Postgres => 5_000,
    }
}

impl Importer {
    pub fn new() -> Self {
        Self::default()
    }

    /// Gives each service with no venue and no service area the places in `areas` (the
    /// places its source covers), so that search finds it from any postcode inside.
    pub fn with_areas(mut self, areas: Vec<WholeArea>) -> Self {
        self.areas = areas;
        self
    }

    /// Stamps every batch handed out with the file it was read from (the name given on
    /// the command line, a folder's name for a folder) and `round`, so the store keeps
    /// where each record came from.
    pub fn with_round(mut self, round: uuid::Uuid) -> Self {
        self.round = Some(round);
        self
    }

    fn place(&mut self) {
        self.report.placed += kith_domain::geo::place_without_venue(&mut self.batch.services, &self.areas);
    }

    /// What has been read so far and not yet handed out, placed and stamped.
    fn take(&mut self) -> DirectoryBatch {
        self.place();
        let mut batch = std::mem::take(&mut self.batch);
        if let (Some(round), Some(source)) = (self.round, &self.source) {
            batch.stamp = Some(Stamp { source: source.clone(), round });
        }
        batch
    }

    /// Reads `path` like [`Importer::add_path`] and hands back what it held, stamped
    /// with its source, while the report and the check for repeated ids go on across
    /// files.
    pub fn read_file(&mut self, path: &Path) -> Result<DirectoryBatch, ImportError> {
        self.source = Some(Source::file(path));
        self.read_path(path, None)?;
        Ok(self.take())
    }

    /// Reads a file, or every `.json` file in a directory: taxonomies, terms,
    /// organisations and locations first, then services, then the rest, each by name.
    pub fn add_path(&mut self, path: &Path) -> Result<(), ImportError> {
        self.read_path(path, None)
    }

    /// Reads like [`Importer::add_path`], handing accepted records to `flush` after
    /// every `window` records (a file's first window is a tenth of that) instead of keeping
    /// them all.
    pub fn stream_path(&mut self, path: &Path, window: usize, flush: &mut Flush<'_>) -> Result<(), ImportError> {
        self.source = Some(Source::file(path));
        self.read_path(path, Some((window.max(1), flush)))
    }

    fn read_path(&mut self, path: &Path, mut flush: Option<(usize, &mut Flush<'_>)>) -> Result<(), ImportError> {
        let io = |e: std::io::Error| ImportError::Io { path: path.to_owned(), reason: e.to_string() };
        if path.is_dir() {
            let mut files: Vec<PathBuf> = std::fs::read_dir(path)
                .map_err(io)?
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")))
                .collect();
            // What services refer to first, so that each is stored before what uses it.
            files.sort_by_key(|f| (file_rank(f), f.clone()));
            if files.is_empty() {
                return Err(ImportError::Shape {
                    source_name: path.display().to_string(),
                    message: "the folder holds no .json files to import".into(),
                });
            }
            for file in files {
                self.read_path(&file, flush.as_mut().map(|(window, f)| (*window, &mut **f)))?;
            }
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(io)?;
        self.read_bytes(&bytes, &path.display().to_string(), RecordKind::from_file_name(path), flush)
    }

    /// Reads one JSON document. `hint` says what its records are when their fields do
    /// not.
    pub fn add_bytes(&mut self, bytes: &[u8], source: &str, hint: Option<RecordKind>) -> Result<(), ImportError> {
        self.read_bytes(bytes, source, hint, None)
    }

    fn read_bytes(
        &mut self,
        bytes: &[u8],
        source: &str,
        hint: Option<RecordKind>,
        mut flush: Option<(usize, &mut Flush<'_>)>,
    ) -> Result<(), ImportError> {
        let text = as_text(bytes, source)?;
        // Records are kept as slices of the input and each is parsed straight into its
        // type: no intermediate tree of the whole file.
        let shape_error = || ImportError::Shape {
            source_name: source.to_owned(),
            message: "expected a JSON object, a list of objects, or a paged response with `contents` (or `content`)"
                .into(),
        };
        let records: Vec<(String, &RawValue)> = match text.trim_start().as_bytes().first() {
            Some(b'[') => {
                let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|e| json_error(&e, source))?;
                items.into_iter().enumerate().map(|(i, v)| (format!("$[{i}]"), v)).collect()
            }
            Some(b'{') => {
                let top: TopObject<'_> = serde_json::from_str(text).map_err(|e| json_error(&e, source))?;
                match top.contents {
                    Some(items) => {
                        let key = top.contents_key;
                        items.into_iter().enumerate().map(|(i, v)| (format!("$.{key}[{i}]"), v)).collect()
                    }
                    None if top.fields.contains_key("openapi_url") && !top.fields.contains_key("id") => {
                        let version = top
                            .fields
                            .get("version")
                            .and_then(|v| serde_json::from_str::<String>(v.get()).ok())
                            .unwrap_or_else(|| "unknown".into());
                        self.report.notes.push(format!(
                            "{source}: this is an API root document (version {version}), which describes an API and holds no records"
                        ));
                        Vec::new()
                    }
                    None => {
                        let whole: &RawValue = serde_json::from_str(text).map_err(|e| json_error(&e, source))?;
                        vec![("$".to_owned(), whole)]
                    }
                }
            }
            _ => {
                // Say what is wrong with text that is not JSON; refuse JSON of the wrong shape.
                serde_json::from_str::<&RawValue>(text).map_err(|e| json_error(&e, source))?;
                return Err(shape_error());
            }
        };
        let window = flush.as_ref().map_or(records.len().max(1), |(window, _)| *window);
        // Writing waits for the first window, so it is a tenth of the others: the writer
        // starts that much sooner, and reading, the faster side, soon keeps ahead again.
        let mut size = if flush.is_some() { window.div_ceil(10) } else { window };
        let total = records.len();
        let mut done = 0;
        let mut records = records.into_iter();
        loop {
            let part: Vec<(String, &RawValue)> = records.by_ref().take(size).collect();
            size = window;
            if part.is_empty() {
                return Ok(());
            }
            done += part.len();
            let outcomes = read_records(&part, hint);
            for ((path, record), outcome) in part.into_iter().zip(outcomes) {
                self.add_record(record.get(), source, path, outcome);
            }
            if let Some((_, flush)) = flush.as_mut() {
                flush(self.take(), Progress { source, done, total })?;
            }
        }
    }

    fn reject(&mut self, source: &str, path: String, record: &str, reasons: Vec<String>) {
        let record: Value = serde_json::from_str(record).unwrap_or(Value::Null);
        let text = |key: &str| record.get(key).and_then(Value::as_str).map(str::to_owned);
        let name = text("name").map(|n| n.chars().take(120).collect());
        self.report.rejected.push(Rejection { source: source.to_owned(), path, id: text("id"), name, reasons });
    }

    fn add_record(&mut self, record: &str, source: &str, path: String, outcome: Outcome) {
        self.report.records += 1;
        let (parsed, kind, format, problems, fingerprint) = match outcome {
            Outcome::Rejected(reasons) => {
                self.reject(source, path, record, reasons);
                return;
            }
            Outcome::Accepted { parsed, kind, format, problems, fingerprint } => {
                (parsed, kind, format, problems, fingerprint)
            }
        };
        let id = parsed.id();
        let here = format!("{source} {path}");
        if let Some(Seen { at: first, fingerprint: first_print }) = self.seen.get(&(kind, id)) {
            // A record repeated word for word (as in paged feeds that overlap) is no
            // conflict: it is already imported, so say so and move on. The first may
            // already be written, so its text's fingerprint stands in for it.
            let mut alone = DirectoryBatch::new();
            parsed.add_to(&mut alone);
            if *first_print == fingerprint || self.batch.includes(&alone) {
                self.report.notes.push(format!("{source} {path} repeats {first} exactly; imported once"));
                self.report.records -= 1;
                return;
            }
            let reason = format!(
                "{path}.id: {id} is a duplicate of the {} at {first}; the first was imported and this one was not. Give each {} its own id",
                kind.as_str(),
                kind.as_str()
            );
            self.reject(source, path, record, vec![reason]);
            return;
        }
        self.seen.insert((kind, id), Seen { at: here, fingerprint });
        self.report.warnings.extend(problems.iter().map(|p| format!("{source} {p}")));
        if !self.report.formats.contains(&format) {
            self.report.formats.push(format);
        }
        self.report.accepted += 1;
        *self.report.accepted_by_kind.entry(kind.as_str()).or_default() += 1;
        parsed.add_to(&mut self.batch);
    }

    pub fn report(&self) -> &ImportReport {
        &self.report
    }

    /// Services read so far that say nothing of where, when or whom to ask (no venue,
    /// schedule, service area or contact), with when their source last changed them and
    /// the status it gives: a feed's list often leaves the rest to each service's page.
    pub fn lacking_detail(
        &self,
    ) -> Vec<(uuid::Uuid, Option<chrono::DateTime<chrono::Utc>>, kith_domain::ServiceStatus)> {
        self.batch
            .services
            .iter()
            .filter(|s| {
                s.service_at_locations.is_empty()
                    && s.schedules.is_empty()
                    && s.service_areas.is_empty()
                    && s.contacts.is_empty()
            })
            .map(|s| (s.id, s.last_modified, s.status))
            .collect()
    }

    /// Reads the service `id`'s own page in place of what the list said of it. A page
    /// that cannot be read, or describes another service, leaves the list's record as
    /// it was and says why.
    pub fn add_detail(&mut self, id: uuid::Uuid, bytes: &[u8], source: &str) -> Result<(), String> {
        let text = as_text(bytes, source).map_err(|e| e.to_string())?;
        if !text.trim_start().starts_with('{') {
            return Err(format!("{source}: expected one service (a JSON object)"));
        }
        match read_record(text, "$", Some(RecordKind::Service)) {
            Outcome::Rejected(reasons) => Err(format!("{source}: {}", reasons.join("; "))),
            Outcome::Accepted { parsed, kind, format, problems, fingerprint } => {
                if kind != RecordKind::Service || parsed.id() != id {
                    return Err(format!(
                        "{source}: the page describes {} {}, not the service {id}",
                        kind.as_str(),
                        parsed.id()
                    ));
                }
                if let Some(seen) = self.seen.get_mut(&(RecordKind::Service, id)) {
                    seen.fingerprint = fingerprint;
                }
                self.report.warnings.extend(problems.iter().map(|p| format!("{source} {p}")));
                if !self.report.formats.contains(&format) {
                    self.report.formats.push(format);
                }
                parsed.add_to(&mut self.batch);
                Ok(())
            }
        }
    }

    /// Keeps the stored `service` in place of the list's record of it, when the list
    /// says it has not changed since Kith last read its page. What it nests (its
    /// organisation, venues and terms) is left as stored.
    pub fn keep_stored(&mut self, mut service: Service) {
        service.organization = None;
        for sal in &mut service.service_at_locations {
            if let Some(location) = sal.location.take() {
                sal.location_id.get_or_insert(location.id);
            }
        }
        for attribute in &mut service.attributes {
            if let Some(term) = attribute.taxonomy_term.take() {
                attribute.taxonomy_term_id.get_or_insert(term.id);
            }
        }
        self.batch.add_service(service);
    }

    pub fn finish(mut self) -> (DirectoryBatch, ImportReport) {
        let batch = self.take();
        (batch, self.report)
    }
}

/// What reading one record gave: a typed, validated record, or the reasons it cannot
/// be imported. Computed independently for each record, so records are read in parallel.
enum Outcome {
    Accepted {
        parsed: Parsed,
        kind: RecordKind,
        format: SourceFormat,
        problems: Vec<Problem>,
        fingerprint: Fingerprint,
    },
    Rejected(Vec<String>),
}

fn read_record(record: &str, path: &str, hint: Option<RecordKind>) -> Outcome {
    // JSON text cannot hold a raw control character, only an escaped one.
    if record.contains("\\u000") || record.contains("\\u001") || record.contains("\\u007") {
        return read_with_controls(record, path, hint);
    }
    read_plain_record(record, path, hint)
}

/// A record whose text escapes a control character. Text with one is stored without it
/// (U+0000 cannot be stored in PostgreSQL at all, and none of them means anything in a
/// listing), each named as a warning; tabs and line breaks are kept.
fn read_with_controls(record: &str, path: &str, hint: Option<RecordKind>) -> Outcome {
    let mut value: Value = match serde_json::from_str(record) {
        Ok(v) => v,
        Err(e) => return Outcome::Rejected(vec![format!("{path}: {e}")]),
    };
    let mut removed = Vec::new();
    kith_domain::validate::strip_control_characters(&mut value, &mut path.to_owned(), &mut removed);
    if removed.is_empty() {
        return read_plain_record(record, path, hint);
    }
    let cleaned = value.to_string();
    match read_plain_record(&cleaned, path, hint) {
        Outcome::Accepted { parsed, kind, format, mut problems, fingerprint } => {
            problems.extend(removed);
            Outcome::Accepted { parsed, kind, format, problems, fingerprint }
        }
        rejected => rejected,
    }
}

fn read_plain_record(record: &str, path: &str, hint: Option<RecordKind>) -> Outcome {
    let kind = match top_level_keys(record) {
        Some(keys) => classify(|k| keys.contains(&k), hint),
        // Not a plain object, or a key with an escape in it: the parser decides.
        None => {
            let Ok(keys) = serde_json::from_str::<HashMap<Cow<'_, str>, IgnoredAny>>(record) else {
                let found = serde_json::from_str::<Value>(record).map_or("something else", |v| json_type(&v));
                return Outcome::Rejected(vec![format!("{path}: expected an object, found {found}")]);
            };
            classify(|k| keys.contains_key(k), hint)
        }
    };
    let Some((kind, format)) = kind else {
        let reason = format!(
            "{path}: cannot tell what kind of record this is; Kith imports HSDS services, organizations, locations, taxonomies and taxonomy terms"
        );
        return Outcome::Rejected(vec![reason]);
    };
    // Only a record longer than the longest allowed text can hold an oversized string.
    let mut recheck_length = false;
    let mut tree = None;
    if record.len() > MAX_TEXT_CHARS || format == SourceFormat::OrukV1 {
        let value: Value = match serde_json::from_str(record) {
            Ok(v) => v,
            Err(e) => {
                return Outcome::Rejected(vec![format!("{path}: {e}")]);
            }
        };
        tree = Some(value);
    }
    if let Some(value) = tree.as_ref().filter(|_| record.len() > MAX_TEXT_CHARS) {
        let oversized = oversized_strings(value, path, MAX_RAW_CHARS);
        if !oversized.is_empty() {
            let reasons = oversized.iter().map(ToString::to_string).collect();
            return Outcome::Rejected(reasons);
        }
        // Long raw text may shrink once HTML is turned into text; check what is stored.
        recheck_length = !oversized_strings(value, path, MAX_TEXT_CHARS).is_empty();
    }
    let mut checker = Checker::new(path);
    let parsed = match (kind, format) {
        (RecordKind::Service, SourceFormat::OrukV1) => oruk_v1::service(tree.as_ref().unwrap_or(&Value::Null), path)
            .map(|(s, notes)| {
                checker.problems.extend(notes);
                checker.service(&s);
                Parsed::Service(Box::new(s))
            }),
        (RecordKind::Service, _) => typed::<Service>(record, path).map(|s| {
            checker.service(&s);
            Parsed::Service(Box::new(s))
        }),
        (RecordKind::Organization, _) => typed::<Organization>(record, path).map(|o| {
            checker.organization(&o);
            Parsed::Organization(Box::new(o))
        }),
        (RecordKind::Location, _) => typed::<Location>(record, path).map(|l| {
            checker.location(&l);
            Parsed::Location(Box::new(l))
        }),
        (RecordKind::Taxonomy, _) => typed::<Taxonomy>(record, path).map(|t| {
            if t.name.trim().is_empty() {
                checker.problems.push(Problem {
                    path: format!("{path}.name"),
                    message: "the taxonomy has no name".into(),
                    severity: Severity::Error,
                });
            }
            Parsed::Taxonomy(t)
        }),
        (RecordKind::TaxonomyTerm, _) => typed::<TaxonomyTerm>(record, path).map(|t| {
            checker.taxonomy_term(&t);
            Parsed::Term(Box::new(t))
        }),
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(problem) => {
            return Outcome::Rejected(vec![problem.to_string()]);
        }
    };
    if recheck_length {
        checker.problems.extend(oversized_strings(&parsed.to_value(), path, MAX_TEXT_CHARS));
    }
    if checker.has_errors() {
        let reasons =
            checker.problems.iter().filter(|p| p.severity == Severity::Error).map(ToString::to_string).collect();
        return Outcome::Rejected(reasons);
    }
    Outcome::Accepted { parsed, kind, format, problems: checker.problems, fingerprint: fingerprint(record) }
}

/// The keys of an object's own fields, found by skimming its text rather than parsing
/// it, to tell what kind of record it is before the one full parse. `None` when the
/// text does not open as an object or a key holds an escape. The skim checks nothing
/// else: the full parse that follows rejects what is not JSON.
fn top_level_keys(record: &str) -> Option<Vec<&str>> {
    let bytes = record.as_bytes();
    let start = bytes.iter().position(|b| !b.is_ascii_whitespace())?;
    if bytes[start] != b'{' {
        return None;
    }
    let mut keys = Vec::with_capacity(32);
    let mut depth = 0usize;
    let mut expect_key = true;
    let mut i = start + 1;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'"' => {
                let open = i + 1;
                let mut end = open;
                let mut escaped = false;
                loop {
                    end += bytes.get(end..)?.iter().position(|&c| c == b'"' || c == b'\\')?;
                    if bytes[end] == b'"' {
                        break;
                    }
                    escaped = true;
                    end += 2;
                }
                if depth == 0 && expect_key {
                    if escaped {
                        return None;
                    }
                    keys.push(record.get(open..end)?);
                    expect_key = false;
                }
                i = end + 1;
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' if depth == 0 => return Some(keys),
            b'}' | b']' => depth -= 1,
            b',' if depth == 0 => expect_key = true,
            _ => {}
        }
        i += 1;
    }
    None
}

/// Files of what services refer to come first: taxonomies, terms, organisations, locations.
fn file_rank(path: &Path) -> u8 {
    match RecordKind::from_file_name(path) {
        Some(RecordKind::Taxonomy) => 0,
        Some(RecordKind::TaxonomyTerm) => 1,
        Some(RecordKind::Organization) => 2,
        Some(RecordKind::Location) => 3,
        Some(RecordKind::Service) => 4,
        None => 5,
    }
}

/// Reads every record, on all cores when there are enough to be worth it.
fn read_records(records: &[(String, &RawValue)], hint: Option<RecordKind>) -> Vec<Outcome> {
    const PER_THREAD_MIN: usize = 500;
    let threads =
        std::thread::available_parallelism().map_or(1, usize::from).min(records.len() / PER_THREAD_MIN).max(1);
    if threads == 1 {
        return records.iter().map(|(path, raw)| read_record(raw.get(), path, hint)).collect();
    }
    let per = records.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = records
            .chunks(per)
            .map(|chunk| {
                scope.spawn(move || {
                    chunk.iter().map(|(path, raw)| read_record(raw.get(), path, hint)).collect::<Vec<_>>()
                })
            })
            .collect();
        handles.into_iter().flat_map(|h| h.join().unwrap_or_else(|panic| std::panic::resume_unwind(panic))).collect()
    })
}

enum Parsed {
    Service(Box<Service>),
    Organization(Box<Organization>),
    Location(Box<Location>),
    Taxonomy(Taxonomy),
    Term(Box<TaxonomyTerm>),
}

impl Parsed {
    fn add_to(self, batch: &mut DirectoryBatch) {
        match self {
            Parsed::Service(s) => batch.add_service(*s),
            Parsed::Organization(o) => batch.add_organization(*o),
            Parsed::Location(l) => batch.add_location(*l),
            Parsed::Taxonomy(t) => batch.add_taxonomy(t),
            Parsed::Term(t) => batch.add_taxonomy_term(*t),
        }
    }

    fn to_value(&self) -> Value {
        let value = match self {
            Parsed::Service(s) => serde_json::to_value(s),
            Parsed::Organization(o) => serde_json::to_value(o),
            Parsed::Location(l) => serde_json::to_value(l),
            Parsed::Taxonomy(t) => serde_json::to_value(t),
            Parsed::Term(t) => serde_json::to_value(t),
        };
        value.unwrap_or(Value::Null)
    }

    fn id(&self) -> uuid::Uuid {
        match self {
            Parsed::Service(s) => s.id,
            Parsed::Organization(o) => o.id,
            Parsed::Location(l) => l.id,
            Parsed::Taxonomy(t) => t.id,
            Parsed::Term(t) => t.id,
        }
    }
}

/// A file's top-level object, read in one pass: the records of its `contents` list, when
/// it is a paged response (ORUK 3.0; `content` in the Spring pages of ORUK v1 APIs), and
/// its other fields.
struct TopObject<'a> {
    contents: Option<Vec<&'a RawValue>>,
    /// `contents` or `content`, for the records' paths.
    contents_key: &'static str,
    fields: HashMap<Cow<'a, str>, &'a RawValue>,
}

impl<'de> serde::Deserialize<'de> for TopObject<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Top;
        impl<'de> serde::de::Visitor<'de> for Top {
            type Value = TopObject<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a JSON object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                let mut top = TopObject { contents: None, contents_key: "contents", fields: HashMap::new() };
                while let Some(key) = map.next_key::<Cow<'de, str>>()? {
                    if key == "contents" || (key == "content" && top.contents.is_none()) {
                        let items = map.next_value::<Contents<'de>>()?.0;
                        if items.is_some() {
                            top.contents = items;
                            top.contents_key = if key == "contents" { "contents" } else { "content" };
                        }
                    } else {
                        top.fields.insert(key, map.next_value()?);
                    }
                }
                Ok(top)
            }
        }
        deserializer.deserialize_map(Top)
    }
}

/// A `contents` field: its items when it is a list, `None` for anything else.
struct Contents<'a>(Option<Vec<&'a RawValue>>);

impl<'de> serde::Deserialize<'de> for Contents<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct List;
        impl<'de> serde::de::Visitor<'de> for List {
            type Value = Contents<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("any JSON value")
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
                let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0));
                while let Some(item) = seq.next_element::<&'de RawValue>()? {
                    items.push(item);
                }
                Ok(Contents(Some(items)))
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Self::Value, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Contents(None))
            }
            fn visit_bool<E>(self, _: bool) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
            fn visit_i64<E>(self, _: i64) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
            fn visit_u64<E>(self, _: u64) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
            fn visit_f64<E>(self, _: f64) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
            fn visit_str<E>(self, _: &str) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
            fn visit_unit<E>(self) -> Result<Self::Value, E> {
                Ok(Contents(None))
            }
        }
        deserializer.deserialize_any(List)
    }
}

fn json_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "true or false",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "a list",
        Value::Object(_) => "an object",
    }
}

/// The input as text: UTF-8 (or refused whole, with where it went wrong), without a
/// byte-order mark.
fn as_text<'a>(bytes: &'a [u8], source: &str) -> Result<&'a str, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|e| {
        let offset = e.valid_up_to();
        let line = bytes[..offset].iter().filter(|&&b| b == b'\n').count() + 1;
        ImportError::NotUtf8 { source_name: source.to_owned(), line, offset }
    })
}

fn json_error(e: &serde_json::Error, source: &str) -> ImportError {
    let message = e.to_string();
    let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m).to_owned();
    let (line, column) = (e.line(), e.column());
    if e.is_eof() {
        ImportError::Truncated { source_name: source.to_owned(), line, column, message }
    } else {
        ImportError::Json { source_name: source.to_owned(), line, column, message }
    }
}

/// Turns a JSON value into a typed record, reporting the path of the first field that
/// does not fit.
fn typed<T: DeserializeOwned>(record: &str, path: &str) -> Result<T, Problem> {
    // Most records are fine: read them at full speed, and only trace the path of the
    // field at fault (which costs a second read) when there is one.
    if let Ok(value) = serde_json::from_str(record) {
        return Ok(value);
    }
    let mut de = serde_json::Deserializer::from_str(record);
    serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let field = e.path().to_string();
        let at = if field == "." { path.to_owned() } else { format!("{path}.{field}") };
        let message = e.into_inner().to_string();
        // The position is within this record, which would mislead; the path says where.
        let message = message.rsplit_once(" at line ").map_or(message.as_str(), |(m, _)| m);
        Problem { path: at, message: friendly(message), severity: Severity::Error }
    })
}

/// Rewords serde's messages for people who edit spreadsheets, not Rust.
fn friendly(message: &str) -> String {
    if let Some(field) = message.strip_prefix("missing field ") {
        return format!("the required field {field} is missing");
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        return format!("wrong type: {rest}");
    }
    if message.starts_with("UUID parsing failed")
        || message.starts_with("invalid character")
        || message.contains("invalid length")
    {
        return format!("not a UUID ({message}); ids look like 3f7b145d-84af-42d7-8fae-eaca714b02b2");
    }
    message.to_owned()
}

/// Decides what a record is from its fields, falling back on the file name's hint.
fn classify(has_key: impl Fn(&str) -> bool, hint: Option<RecordKind>) -> Option<(RecordKind, SourceFormat)> {
    const ORUK_V1: &[&str] =
        &["pc_metadata", "pc_targetAudience", "deliverable_type", "attending_access", "attending_type"];
    const SERVICE: &[&str] = &[
        "status",
        "service_at_locations",
        "service_areas",
        "cost_options",
        "eligibility_description",
        "application_process",
        "fees_description",
        "required_documents",
        "program",
        "assured_date",
    ];
    const ORGANIZATION: &[&str] = &[
        "services",
        "organization_identifiers",
        "website",
        "locations",
        "programs",
        "legal_status",
        "tax_status",
        "year_incorporated",
        "parent_organization_id",
    ];
    const TERM: &[&str] = &["taxonomy_id", "parent_id", "term_uri", "taxonomy_detail", "taxonomy", "code"];
    let has = |keys: &[&str]| keys.iter().any(|k| has_key(k));
    if has(ORUK_V1) {
        return Some((RecordKind::Service, SourceFormat::OrukV1));
    }
    let kind = if has(SERVICE) {
        RecordKind::Service
    } else if has_key("location_type") {
        RecordKind::Location
    } else if has(ORGANIZATION) {
        RecordKind::Organization
    } else if has(TERM) {
        RecordKind::TaxonomyTerm
    } else if let Some(hint) = hint {
        hint
    } else if has_key("version") {
        RecordKind::Taxonomy
    } else {
        return None;
    };
    // A sparse record in a file named for another kind follows the file.
    let kind = match (kind, hint) {
        (RecordKind::TaxonomyTerm | RecordKind::Taxonomy, Some(RecordKind::Taxonomy)) => RecordKind::Taxonomy,
        (k, _) => k,
    };
    Some((kind, SourceFormat::Hsds3))
}

/// Records per write transaction. Large, because each commit rewrites every index page it
/// touched and ids arrive in random order, so small commits rewrite the same pages over
/// and over (see docs/BENCHMARKS.md); small enough that a chunk is a few seconds of work.
pub const DEFAULT_CHUNK: usize = 20_000;

/// The result of storing an import.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct StoreOutcome {
    /// Records that were new or different and were written.
    pub written: WriteSummary,
    /// False when `--strict` found rejections, so nothing was written.
    pub wrote_anything: bool,
}

/// Writes a batch in chunks of `chunk_size` records, one transaction each, calling
/// `progress(done, total)` after every chunk.
pub async fn store_batch(
    store: &dyn Store,
    batch: DirectoryBatch,
    chunk_size: usize,
    progress: &mut (dyn FnMut(usize, usize) + Send),
) -> Result<StoreOutcome, StoreError> {
    let total = batch.len();
    let mut written = WriteSummary::default();
    let mut done = 0;
    progress(0, total);
    for chunk in batch.into_chunks(chunk_size) {
        done += chunk.len();
        written.add(store.write_batch(chunk).await?);
        progress(done, total);
    }
    Ok(StoreOutcome { written, wrote_anything: total > 0 })
}

/// The organisations an import's services name, to warn of those neither the import
/// nor the store holds (the service is stored, and shown without an organisation).
/// Checked at the end, since a later file or window may bring the organisation.
#[derive(Debug, Default)]
pub struct OrganizationReferences {
    brought: std::collections::HashSet<uuid::Uuid>,
    /// Each organisation named but not brought: the first service naming it, and how
    /// many do.
    named: std::collections::BTreeMap<uuid::Uuid, (uuid::Uuid, String, usize)>,
}

impl OrganizationReferences {
    /// Notes what `batch` brings and names.
    pub fn note(&mut self, batch: &DirectoryBatch) {
        self.brought.extend(batch.organizations.iter().map(|o| o.id));
        for s in &batch.services {
            if let Some(org) = s.organization_id
                && !self.brought.contains(&org)
            {
                self.named.entry(org).or_insert_with(|| (s.id, s.name.clone(), 0)).2 += 1;
            }
        }
    }

    /// A warning for each organisation named that neither the import brought nor the
    /// store holds.
    pub async fn warnings(self, store: &dyn Store) -> Result<Vec<String>, StoreError> {
        let mut out = Vec::new();
        for (org, (service, name, count)) in self.named {
            if self.brought.contains(&org) || store.organization(org).await?.is_some() {
                continue;
            }
            let others = match count {
                1 => String::new(),
                2 => " (and 1 other service)".to_owned(),
                n => format!(" (and {} other services)", n - 1),
            };
            out.push(format!(
                "service {service} ({name}){others} names the organisation {org}, which is neither in this import nor in Kith; it is listed without an organisation until one with that id is imported"
            ));
        }
        Ok(out)
    }
}

/// What a streamed import read and wrote.
#[derive(Debug)]
pub struct Streamed {
    pub report: ImportReport,
    pub written: WriteSummary,
    /// Time spent reading and checking (on its own thread, alongside writing).
    pub reading: Duration,
    /// Time spent writing.
    pub writing: Duration,
}

/// Why a streamed import stopped. Windows written before it stopped are kept.
#[derive(Debug, thiserror::Error)]
pub enum StreamError {
    #[error(transparent)]
    Read(#[from] ImportError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Reads `paths` and writes what is accepted as it goes: a window of records
/// ([`window_for`] the store, for `kith import`) is written while the next is read,
/// so both cores work and memory stays flat however large the input. Each window is
/// one transaction. A file that cannot be read at all stops the import there; what
/// earlier files held stays written, and importing again is safe because records are
/// updated by id.
pub async fn import_streaming(
    store: &dyn Store,
    paths: Vec<PathBuf>,
    window: usize,
    progress: impl FnMut(Progress<'_>) + Send + 'static,
) -> Result<Streamed, StreamError> {
    import_streaming_placed(store, paths, window, Vec::new(), progress).await
}

/// [`import_streaming`], giving services with no venue and no service area the places
/// in `areas` (see [`Importer::with_areas`]).
pub async fn import_streaming_placed(
    store: &dyn Store,
    paths: Vec<PathBuf>,
    window: usize,
    areas: Vec<WholeArea>,
    mut progress: impl FnMut(Progress<'_>) + Send + 'static,
) -> Result<Streamed, StreamError> {
    // One window waits while one is written: reading runs ahead by at most that.
    let (tx, mut rx) = tokio::sync::mpsc::channel::<DirectoryBatch>(1);
    let reader = tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut importer = Importer::new().with_areas(areas).with_round(uuid::Uuid::new_v4());
        let mut flush = |batch: DirectoryBatch, at: Progress<'_>| {
            progress(at);
            if batch.is_empty() {
                return Ok(());
            }
            tx.blocking_send(batch).map_err(|_| ImportError::Stopped)
        };
        for path in &paths {
            importer.stream_path(path, window, &mut flush)?;
        }
        let (_, report) = importer.finish();
        Ok::<_, ImportError>((report, started.elapsed()))
    });
    let mut written = WriteSummary::default();
    let mut writing = Duration::ZERO;
    let mut failed = None;
    let mut references = OrganizationReferences::default();
    while let Some(batch) = rx.recv().await {
        let started = Instant::now();
        references.note(&batch);
        // One transaction a window, whatever it holds: a window of services brings its
        // organisations and locations along, and splitting off those few cost a commit.
        match store.write_batch(batch).await {
            Ok(summary) => written.add(summary),
            Err(e) => {
                failed = Some(e);
                break;
            }
        }
        writing += started.elapsed();
    }
    drop(rx);
    let read = reader.await.unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()));
    if let Some(e) = failed {
        return Err(StreamError::Store(e));
    }
    let (mut report, reading) = read?;
    report.warnings.extend(references.warnings(store).await?);
    Ok(Streamed { report, written, reading, writing })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::top_level_keys;

    #[test]
    fn skimming_finds_an_objects_own_keys_and_not_nested_ones() {
        let record = r#" {"id": "a", "name": "Say \"hello\", {[not nested]}", "organization": {"id": "b", "services": []},
            "service_at_locations": [{"location": {"location_type": "physical"}}], "status" : "active"} "#;
        assert_eq!(top_level_keys(record).unwrap(), ["id", "name", "organization", "service_at_locations", "status"]);
        assert_eq!(top_level_keys("{}").unwrap(), Vec::<&str>::new());
        assert_eq!(top_level_keys(r#"{"a\\b": 1}"#), None, "a key with an escape is left to the parser");
        assert_eq!(top_level_keys("[1, 2]"), None, "not an object");
        assert_eq!(top_level_keys(r#"{"id": "unterminated"#), None);
        assert_eq!(top_level_keys(r#"{"id": 1, "x": [1, {"y": 2}"#), None, "an object never closed");
    }
}
