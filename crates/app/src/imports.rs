//! Bringing a directory in: files read and checked by `kith-datasets`, written to the
//! store the one way every caller shares (`kith import`, `kith demo` and feed pulls).
//! The search index is not touched here: each instance's change-feed follower picks up
//! what was written.
//!
//! A spreadsheet (`kith import FILE.csv --map MAP.toml`) is read by
//! `kith_datasets::sheet`, which needs nothing from the store; here its venues with a
//! postcode and no coordinates are placed at the postcode, from the store's postcode
//! table, and its need words include the search vocabulary's.

use crate::locate::LocateError;
use kith_datasets::import::{DEFAULT_CHUNK, StreamError, import_streaming_placed, window_for};
use kith_datasets::sheet::{NeedWords, Sheet, SheetMap, read_sheet};
use kith_datasets::{ImportError, ImportReport, Importer, store_batch};
use kith_domain::DirectoryBatch;
use kith_domain::geo::WholeArea;
use kith_domain::provenance::{Source, Stamp};
use kith_store::{Store, StoreError, WriteSummary};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use uuid::Uuid;

pub use kith_datasets::import::Progress;

/// Why an import stopped. Records rejected one by one are not failures: they are in the
/// [`ImportReport`].
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// A file could not be read at all (missing, not JSON, not a directory Kith knows).
    #[error(transparent)]
    Read(ImportError),
    /// A later file could not be read; what the earlier ones held is written and kept.
    #[error("the import stopped; what earlier files held is kept: {0}")]
    ReadAfterWriting(ImportError),
    /// The database refused a write. What was written before it is kept, and importing
    /// the same files again is safe: unchanged records are skipped.
    /// The reading thread stopped without an answer (it panicked).
    #[error("the import stopped unexpectedly: {0}")]
    Stopped(String),
    #[error(
        "writing to the database failed; records written before the failure are kept, and importing again is safe: {0}"
    )]
    Store(#[from] StoreError),
    /// The database refused a write of a strict import, so nothing was written.
    #[error(
        "writing to the database failed, so nothing was imported (with --strict, everything is written or nothing is): {0}"
    )]
    NothingWritten(StoreError),
}

/// What an import read and wrote.
#[derive(Debug)]
pub struct Imported {
    /// Every record read, with each rejection and warning by file and path.
    pub report: ImportReport,
    /// Records that were new or different and were written.
    pub written: WriteSummary,
}

impl Imported {
    /// Whether `--strict` refused the input, so nothing was written.
    pub fn refused_as_strict(&self, strict: bool) -> bool {
        strict && !self.report.rejected.is_empty()
    }
}

/// The imports use case. See the module's documentation.
#[derive(Clone)]
pub struct Imports {
    store: Arc<dyn Store>,
}

impl std::fmt::Debug for Imports {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Imports").finish_non_exhaustive()
    }
}

impl Imports {
    /// Imports into `store`. `kith import` needs no search index, so it is made from the
    /// store alone; a running server uses [`App::imports`](crate::App::imports).
    pub fn new(store: Arc<dyn Store>) -> Imports {
        Imports { store }
    }

    /// Reads `paths` (HSDS or ORUK files or directories) and writes what is accepted.
    ///
    /// With `strict`, every record is read and checked before anything is written, a
    /// single rejection means nothing is, and everything is written in one transaction,
    /// so a failure part way writes nothing either. Otherwise records are written a window at a time
    /// while the next is read, and rejected records are left out. A service with no venue
    /// and no service area is given `areas`, the places the whole input covers (none
    /// leaves it as it is). `progress` hears how far through each file the import is.
    pub async fn files(
        &self,
        paths: Vec<PathBuf>,
        strict: bool,
        areas: Vec<WholeArea>,
        mut progress: impl FnMut(Progress<'_>) + Send + 'static,
    ) -> Result<Imported, ImportFailure> {
        if strict {
            // Reading and checking is all CPU: on the blocking pool, with the callback
            // handed back for the writing that follows.
            let read = tokio::task::spawn_blocking(move || {
                let mut importer = Importer::new().with_areas(areas).with_round(Uuid::new_v4());
                let mut batches = Vec::new();
                for path in &paths {
                    let source = path.display().to_string();
                    progress(Progress { source: &source, done: 0, total: 0 });
                    match importer.read_file(path) {
                        Ok(batch) => batches.push(batch),
                        Err(e) => return (Err(e), progress),
                    }
                }
                (Ok((batches, importer.finish().1)), progress)
            })
            .await;
            let (read, mut progress) = read.map_err(|e| ImportFailure::Stopped(e.to_string()))?;
            let (batches, mut report) = read.map_err(ImportFailure::Read)?;
            if !report.rejected.is_empty() || report.records == 0 {
                return Ok(Imported { report, written: WriteSummary::default() });
            }
            let mut references = kith_datasets::import::OrganizationReferences::default();
            for batch in &batches {
                references.note(batch);
            }
            report.warnings.extend(references.warnings(&*self.store).await.map_err(ImportFailure::NothingWritten)?);
            // One transaction for everything: a failure (or the process killed) part way
            // leaves nothing written.
            let total: usize = batches.iter().map(DirectoryBatch::len).sum();
            progress(Progress { source: "checked records", done: 0, total });
            let written = self.store.write_batches(batches).await.map_err(ImportFailure::NothingWritten)?;
            progress(Progress { source: "checked records", done: total, total });
            return Ok(Imported { report, written });
        }
        let many = paths.len() > 1;
        match import_streaming_placed(&*self.store, paths, window_for(self.store.engine()), areas, progress).await {
            Ok(streamed) => Ok(Imported { report: streamed.report, written: streamed.written }),
            Err(StreamError::Read(e)) if many => Err(ImportFailure::ReadAfterWriting(e)),
            Err(StreamError::Read(e)) => Err(ImportFailure::Read(e)),
            Err(StreamError::Store(e)) => Err(ImportFailure::Store(e)),
        }
    }

    /// Reads spreadsheets saved as CSV through the map in `map_file`, places each venue
    /// that has a postcode and no coordinates at its postcode, and writes what is
    /// accepted. A postcode the postcode table does not hold leaves its venue unplaced,
    /// with a warning. `strict` and `areas` are as for [`Imports::files`]. Sheets are
    /// small: each is read whole, then written.
    pub async fn sheets(
        &self,
        paths: &[PathBuf],
        map_file: &Path,
        strict: bool,
        areas: &[WholeArea],
    ) -> Result<Imported, ImportFailure> {
        let read = |path: &Path| {
            std::fs::read(path)
                .map_err(|e| ImportFailure::Read(ImportError::Io { path: path.to_owned(), reason: e.to_string() }))
        };
        let map_text = String::from_utf8(read(map_file)?).map_err(|_| {
            ImportFailure::Read(ImportError::NotUtf8 {
                source_name: map_file.display().to_string(),
                line: 0,
                offset: 0,
            })
        })?;
        let map = SheetMap::parse(&map_text).map_err(|message| {
            ImportFailure::Read(ImportError::Shape { source_name: map_file.display().to_string(), message })
        })?;
        let needs = need_words();
        let round = Uuid::new_v4();
        let mut batches = Vec::new();
        let mut report = ImportReport::default();
        for path in paths {
            let source = path.display().to_string();
            let mut sheet = read_sheet(&read(path)?, &source, &map, &needs).map_err(ImportFailure::Read)?;
            self.use_postcode_table(&mut sheet, &source).await?;
            merge(&mut report, sheet.report);
            let mut batch = sheet.batch;
            report.placed += kith_domain::geo::place_without_venue(&mut batch.services, areas);
            // Each sheet is a source of its own: the store keeps which rows it listed.
            batch.stamp = Some(Stamp { source: Source::file(path), round });
            batches.push(batch);
        }
        if (strict && !report.rejected.is_empty()) || batches.iter().all(DirectoryBatch::is_empty) {
            return Ok(Imported { report, written: WriteSummary::default() });
        }
        if strict {
            let written = self.store.write_batches(batches).await.map_err(ImportFailure::NothingWritten)?;
            return Ok(Imported { report, written });
        }
        let mut written = WriteSummary::default();
        for batch in batches {
            written.add(self.write_batch(batch, &mut |_, _| {}).await?);
        }
        Ok(Imported { report, written })
    }

    /// Places a sheet's venues at their postcodes, and suggests known postcodes for the
    /// malformed ones, from the postcode table.
    async fn use_postcode_table(&self, sheet: &mut Sheet, source: &str) -> Result<(), StoreError> {
        for unplaced in std::mem::take(&mut sheet.unplaced) {
            match crate::locate::locate(&*self.store, unplaced.postcode.as_str()).await {
                Ok(found) => sheet.place(unplaced.location_id, found.point()),
                Err(LocateError::Store(e)) => return Err(e),
                Err(e) => {
                    let also = match e.suggestions().as_slice() {
                        [] => String::new(),
                        near => format!(" (near it: {})", near.join(", ")),
                    };
                    let message = format!(
                        "the postcode {} is not in Kith's postcode table{also}, so the venue has no map position and is not found by distance; load the postcodes with `kith geo import`, or give the latitude and longitude",
                        unplaced.postcode
                    );
                    sheet.warn(source, unplaced.line, &message);
                }
            }
        }
        // A slip's mending may not be a postcode that exists; known ones close by are
        // better advice, when the postcode table has them.
        for m in std::mem::take(&mut sheet.malformed) {
            if let Some(p) = &m.suggestion
                && self.store.postcode(p).await?.is_some()
            {
                continue;
            }
            let near = crate::locate::postcodes_near(&*self.store, &m.text).await?;
            let Some(reason) = sheet.report.rejected.get_mut(m.rejection).and_then(|r| r.reasons.get_mut(m.reason))
            else {
                continue;
            };
            if !near.is_empty() {
                if let Some(at) = reason.find(". Did you mean") {
                    reason.truncate(at);
                }
                reason.push_str(&crate::locate::did_you_mean(&near));
            }
        }
        Ok(())
    }

    /// Writes a directory already read (the demo's, a feed's), in chunks of one
    /// transaction each, calling `progress(done, total)` after every chunk. Returns what
    /// was new or different.
    pub async fn write_batch(
        &self,
        batch: DirectoryBatch,
        progress: &mut (dyn FnMut(usize, usize) + Send),
    ) -> Result<WriteSummary, StoreError> {
        Ok(store_batch(&*self.store, batch, DEFAULT_CHUNK, progress).await?.written)
    }
}

/// Adds one sheet's report to the import's.
fn merge(into: &mut ImportReport, from: ImportReport) {
    into.records += from.records;
    into.accepted += from.accepted;
    for (kind, n) in from.accepted_by_kind {
        *into.accepted_by_kind.entry(kind).or_default() += n;
    }
    for f in from.formats {
        if !into.formats.contains(&f) {
            into.formats.push(f);
        }
    }
    into.rejected.extend(from.rejected);
    into.warnings.extend(from.warnings);
    into.notes.extend(from.notes);
    into.placed += from.placed;
}

/// The need words a sheet may use: Kith's needs by code and name, and the words of the
/// search vocabulary ("lonely", "money worries") for the needs it names by Kith's codes.
pub fn need_words() -> NeedWords {
    let codes: Vec<&'static str> = kith_demo::needs::NEEDS.iter().map(|n| n.code).collect();
    let synonyms = kith_search::vocabulary::needs().iter().flat_map(|need| {
        let code = need.need.as_deref().and_then(|c| codes.iter().copied().find(|k| *k == c));
        need.say.iter().filter_map(move |word| code.map(|c| (word.clone(), c)))
    });
    NeedWords::kith().with_synonyms(synonyms.collect::<Vec<_>>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_search_vocabulary_reads_as_needs() {
        let words = need_words();
        for (word, code) in [
            ("lonely", "loneliness"),
            ("money worries", "money"),
            ("Benefits", "money"),
            ("depression", "mental-health"),
            ("keep fit", "physical-activity"),
            ("foodbank", "food"),
            ("food", "food"),
            ("Food banks", "food-bank"),
            ("carer", "carers"),
            ("gardening", "nature"),
            ("grief", "bereavement"),
            ("pensioners", "older-people"),
        ] {
            assert_eq!(words.code(word), Some(code), "{word}");
        }
        assert_eq!(words.code("xyzzy"), None);
    }
}
