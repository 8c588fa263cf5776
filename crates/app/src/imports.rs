//! Bringing a directory in: files read and checked by `kith-datasets`, written to the
//! store the one way every caller shares (`kith import`, `kith demo` and feed pulls).
//! The search index is not touched here: each instance's change-feed follower picks up
//! what was written.

use kith_datasets::import::{DEFAULT_CHUNK, StreamError, import_streaming_placed, window_for};
use kith_datasets::{ImportError, ImportReport, Importer, store_batch};
use kith_domain::DirectoryBatch;
use kith_domain::geo::WholeArea;
use kith_store::{Store, StoreError, WriteSummary};
use std::path::PathBuf;
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
    /// With `strict`, every record is read and checked before anything is written, and a
    /// single rejection means nothing is. Otherwise records are written a window at a time
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
            let (batches, report) = read.map_err(ImportFailure::Read)?;
            if !report.rejected.is_empty() || report.records == 0 {
                return Ok(Imported { report, written: WriteSummary::default() });
            }
            let total: usize = batches.iter().map(DirectoryBatch::len).sum();
            let mut written = WriteSummary::default();
            let mut before = 0;
            for batch in batches {
                let size = batch.len();
                let mut shown = |done, _| progress(Progress { source: "checked records", done: before + done, total });
                written.add(self.write_batch(batch, &mut shown).await?);
                before += size;
            }
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
