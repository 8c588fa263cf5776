//! Writing the directory out as HSDS 3.0 JSON: one file per kind of record, each an
//! HSDS paged response holding every record on one page, so any HSDS or ORUK client
//! (and `kith import`) can read it back. Each organisation and service carries where it
//! came from as `metadata` entries (see [`kith_domain::provenance::SOURCE_FIELD`]).

use kith_domain::provenance::{RecordKind, set_source_metadata};
use kith_store::{Page, PageRequest, ServiceQuery, Store, StoreError, TermQuery};
use serde::Serialize;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The files an HSDS export writes.
pub const SERVICES_FILE: &str = "services.json";
pub const ORGANIZATIONS_FILE: &str = "organizations.json";
pub const LOCATIONS_FILE: &str = "locations.json";
pub const TAXONOMIES_FILE: &str = "taxonomies.json";
pub const TAXONOMY_TERMS_FILE: &str = "taxonomy_terms.json";

const READ_PAGE: u32 = 500;

#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    #[error("cannot write {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// How many records of each kind went out.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ExportSummary {
    pub services: u64,
    pub organizations: u64,
    pub locations: u64,
    pub taxonomies: u64,
    pub taxonomy_terms: u64,
}

/// Writes an HSDS paged response, one record at a time, so a national directory never
/// has to sit in memory whole.
struct ListWriter {
    path: PathBuf,
    out: BufWriter<File>,
    written: u64,
}

impl ListWriter {
    fn create(path: PathBuf, total: u64) -> Result<Self, ExportError> {
        let io = |e: std::io::Error, path: &Path| ExportError::Io { path: path.to_owned(), reason: e.to_string() };
        let file = File::create(&path).map_err(|e| io(e, &path))?;
        let mut out = BufWriter::with_capacity(1 << 20, file);
        write!(
            out,
            "{{\"total_items\":{total},\"total_pages\":1,\"page_number\":1,\"size\":{total},\"first_page\":true,\"last_page\":true,\"empty\":{},\"contents\":[",
            total == 0
        )
        .map_err(|e| io(e, &path))?;
        Ok(ListWriter { path, out, written: 0 })
    }

    fn io(&self, e: &dyn std::fmt::Display) -> ExportError {
        ExportError::Io { path: self.path.clone(), reason: e.to_string() }
    }

    fn push<T: Serialize>(&mut self, item: &T) -> Result<(), ExportError> {
        if self.written > 0 {
            self.out.write_all(b",").map_err(|e| self.io(&e))?;
        }
        serde_json::to_writer(&mut self.out, item).map_err(|e| self.io(&e))?;
        self.written += 1;
        Ok(())
    }

    fn finish(mut self) -> Result<u64, ExportError> {
        self.out.write_all(b"]}\n").map_err(|e| self.io(&e))?;
        self.out.flush().map_err(|e| self.io(&e))?;
        Ok(self.written)
    }
}

/// Pages through a listing, writing each record.
async fn write_all<T, F, Fut>(
    path: PathBuf,
    mut fetch: F,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<u64, ExportError>
where
    T: Serialize,
    F: FnMut(PageRequest) -> Fut,
    Fut: Future<Output = Result<Page<T>, StoreError>>,
{
    let first = fetch(PageRequest::new(1, READ_PAGE)).await?;
    let mut writer = ListWriter::create(path, first.total)?;
    let pages = first.total_pages();
    let mut page = first;
    let mut number = 1;
    loop {
        for item in &page.items {
            writer.push(item)?;
        }
        progress(page.items.len() as u64);
        number += 1;
        if u64::from(number) > pages {
            break;
        }
        page = fetch(PageRequest::new(number, READ_PAGE)).await?;
    }
    writer.finish()
}

/// Writes the whole directory to `dir` as HSDS 3.0 JSON. `progress` is called with the
/// number of records written since its last call.
pub async fn export_hsds(
    store: &dyn Store,
    dir: &Path,
    progress: &mut (dyn FnMut(u64) + Send),
) -> Result<ExportSummary, ExportError> {
    std::fs::create_dir_all(dir).map_err(|e| ExportError::Io { path: dir.to_owned(), reason: e.to_string() })?;
    let taxonomies = write_all(dir.join(TAXONOMIES_FILE), |p| store.taxonomies(p), progress).await?;
    let taxonomy_terms = write_all(
        dir.join(TAXONOMY_TERMS_FILE),
        |page| async move { store.taxonomy_terms(&TermQuery { page, ..Default::default() }).await },
        progress,
    )
    .await?;
    let organizations = write_all(
        dir.join(ORGANIZATIONS_FILE),
        |page| async move {
            let mut found = store.organizations(page).await?;
            let ids: Vec<Uuid> = found.items.iter().map(|o| o.id).collect();
            let sources = store.provenance(RecordKind::Organization, &ids).await?;
            for o in &mut found.items {
                set_source_metadata(&mut o.metadata, o.id, &sources);
            }
            Ok(found)
        },
        progress,
    )
    .await?;
    let locations = write_all(dir.join(LOCATIONS_FILE), |p| store.locations(p), progress).await?;
    let services = write_all(
        dir.join(SERVICES_FILE),
        |page| async move {
            let mut found = store.services(&ServiceQuery { page, ..Default::default() }).await?;
            let ids: Vec<Uuid> = found.items.iter().map(|s| s.id).collect();
            let sources = store.provenance(RecordKind::Service, &ids).await?;
            for s in &mut found.items {
                set_source_metadata(&mut s.metadata, s.id, &sources);
            }
            Ok(found)
        },
        progress,
    )
    .await?;
    Ok(ExportSummary { services, organizations, locations, taxonomies, taxonomy_terms })
}
