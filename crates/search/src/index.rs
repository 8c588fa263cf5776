//! The tantivy index: its schema, writing services into it, and the query.

use crate::collector::{Collected, Filters, QueryMeaning, ResultCollector, SegmentCache};
use crate::facts::{Attending, ServiceFacts, encode_point, facts, geo_key};
use crate::meaning::Meaning;
use crate::near::{NearQuery, grid_box, key_ranges};
use crate::vocabulary;
use crate::{Facets, Hit, SearchError, SearchQuery, SearchResults};
use kith_domain::Change;
use kith_domain::hsds::Service;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};
use tantivy::index::{IndexSettings, IndexSortByField, Order};
use tantivy::indexer::{LogMergePolicy, NoMergePolicy};
use tantivy::query::{AllQuery, BooleanQuery, BoostQuery, ConstScoreQuery, FuzzyTermQuery, Occur, Query, TermQuery};
use tantivy::schema::{FAST, Field, INDEXED, IndexRecordOption, STRING, Schema, TextFieldIndexing, TextOptions};
use tantivy::{Index, IndexReader, IndexWriter, ReloadPolicy, TantivyDocument, Term};
use uuid::Uuid;

/// Bumped whenever the schema or what goes into it changes; an index built by another
/// version is rebuilt from the store.
pub const SCHEMA_VERSION: u32 = 6;

#[derive(Debug, Clone, Copy)]
pub(crate) struct Fields {
    pub id: Field,
    pub id_hi: Field,
    pub id_lo: Field,
    pub name: Field,
    pub body: Field,
    pub organization: Field,
    pub taxonomy: Field,
    pub needs: Field,
    pub organization_id: Field,
    pub areas: Field,
    /// Marks a service with venues far apart, which its place on the curve (its first
    /// venue) does not stand for.
    pub scattered: Field,
    pub attending: Field,
    pub languages: Field,
    pub accessibility: Field,
    pub points: Field,
    pub slots: Field,
    pub free: Field,
    /// 1 for a temporarily closed service: found only when asked for.
    pub closed: Field,
    pub min_age: Field,
    pub max_age: Field,
    pub modified: Field,
    pub geo: Field,
    /// The service's meaning as a packed vector (see [`Meaning::encode`]); empty when
    /// the index is built without the model.
    pub meaning: Field,
    /// How many service-at-location entries the service has.
    pub venues: Field,
}

fn schema() -> (Schema, Fields) {
    let mut b = Schema::builder();
    let text = TextOptions::default().set_indexing_options(
        TextFieldIndexing::default()
            .set_tokenizer(crate::stem::ANALYZER)
            .set_index_option(IndexRecordOption::WithFreqs),
    );
    let fields = Fields {
        id: b.add_text_field("id", STRING),
        id_hi: b.add_u64_field("id_hi", FAST),
        id_lo: b.add_u64_field("id_lo", FAST),
        name: b.add_text_field("name", text.clone()),
        body: b.add_text_field("body", text.clone()),
        organization: b.add_text_field("organization", text.clone()),
        taxonomy: b.add_text_field("taxonomy", text),
        needs: b.add_text_field("needs", STRING | FAST),
        organization_id: b.add_text_field("organization_id", STRING),
        areas: b.add_text_field("areas", STRING | FAST),
        scattered: b.add_text_field("scattered", STRING),
        attending: b.add_text_field("attending", STRING | FAST),
        languages: b.add_text_field("languages", STRING),
        accessibility: b.add_text_field("accessibility", STRING | FAST),
        points: b.add_u64_field("points", FAST),
        slots: b.add_u64_field("slots", FAST),
        free: b.add_u64_field("free", FAST | INDEXED),
        closed: b.add_u64_field("closed", INDEXED),
        min_age: b.add_u64_field("min_age", FAST),
        max_age: b.add_u64_field("max_age", FAST),
        modified: b.add_i64_field("modified", FAST),
        geo: b.add_u64_field("geo", FAST),
        meaning: b.add_u64_field("meaning", FAST),
        venues: b.add_u64_field("venues", FAST),
    };
    (b.build(), fields)
}

/// Documents are kept in the order of [`geo_key`], segment by segment and through
/// merges, so a search round a point reads runs of neighbouring services.
fn settings() -> IndexSettings {
    IndexSettings {
        sort_by_field: Some(IndexSortByField { field: "geo".into(), order: Order::Asc }),
        ..IndexSettings::default()
    }
}

/// A search index over the directory's services. Clones share one index.
///
/// The index is kept in generations. Searches read the live one; a rebuild fills a new
/// generation beside it and swaps it in only when it is complete, so no search ever sees
/// a half-built index. On disk each generation is a folder of the index's directory, and
/// the file `current` there names the live one.
#[derive(Clone)]
pub struct SearchIndex {
    inner: Arc<Inner>,
}

struct Inner {
    live: RwLock<Arc<Generation>>,
    /// The generation a rebuild is filling.
    building: Mutex<Option<Arc<Generation>>>,
    /// The folder holding the generations; `None` in memory.
    home: Option<PathBuf>,
    fields: Fields,
    meaning: Option<Arc<Meaning>>,
    /// Why the live generation cannot be trusted, once a search has found it damaged;
    /// the next catch-up rebuilds it.
    damaged: Mutex<Option<String>>,
}

/// One whole index: its reader, its writer and the columns its searches keep open.
struct Generation {
    index: Index,
    reader: IndexReader,
    /// `None` after a write failed: the next write opens a fresh writer, so one failure
    /// (a full disk, no file handles left) does not stop the index following the feed.
    writer: Mutex<Option<IndexWriter>>,
    segments: Arc<SegmentCache>,
    /// Its folder's name in the index's directory; `None` in memory.
    name: Option<String>,
}

impl std::fmt::Debug for SearchIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SearchIndex").field("seq", &self.seq()).finish()
    }
}

/// The index's writer, held for one write. [`WriterGuard::discard`] drops it after a
/// failure, with whatever it had not committed.
struct WriterGuard<'a>(std::sync::MutexGuard<'a, Option<IndexWriter>>);

impl std::ops::Deref for WriterGuard<'_> {
    type Target = IndexWriter;
    fn deref(&self) -> &IndexWriter {
        match self.0.as_ref() {
            Some(w) => w,
            None => unreachable!("a guard is handed out only with a writer in it"),
        }
    }
}

impl std::ops::DerefMut for WriterGuard<'_> {
    fn deref_mut(&mut self) -> &mut IndexWriter {
        match self.0.as_mut() {
            Some(w) => w,
            None => unreachable!("a guard is handed out only with a writer in it"),
        }
    }
}

impl WriterGuard<'_> {
    fn discard(mut self) {
        *self.0 = None;
    }
}

/// Where in the store's change feed an index stands: the last change applied, and a mark
/// of that change. By the mark the index knows whether the database it follows is the
/// one it was built from: after a restore from an older backup, or pointed at another
/// database, the change at that position is missing or another one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub seq: i64,
    mark: String,
}

/// The mark of a position whose change is not known.
const NO_MARK: &str = "-";

impl Position {
    /// Just after `change`.
    pub fn of(change: &Change) -> Position {
        Position { seq: change.seq, mark: mark(change) }
    }

    /// Before the first change.
    pub fn start() -> Position {
        Position::unchecked(0)
    }

    /// At `seq`, without knowing its change (for tests and benchmarks that write the
    /// index directly); such a position is never found to disagree with the store.
    pub fn unchecked(seq: i64) -> Position {
        Position { seq, mark: NO_MARK.to_owned() }
    }

    /// Whether `change`, the store's change at this position's `seq`, is the one this
    /// position was taken after. An unchecked position agrees with any.
    pub fn agrees_with(&self, change: Option<&Change>) -> bool {
        match change {
            _ if self.seq == 0 => true,
            Some(c) => c.seq == self.seq && (self.mark == NO_MARK || mark(c) == self.mark),
            None => false,
        }
    }
}

fn mark(c: &Change) -> String {
    format!("{}.{}", c.object_id.simple(), c.at.timestamp_micros())
}

/// Why the index on disk cannot be used as it is.
enum Unusable {
    /// Damaged, from another version or built with other vectors: set it aside and
    /// rebuild, saying why.
    SetAside(String),
    /// Another process is writing to it.
    Busy,
}

/// The commit payload: which schema and which model's vectors built the index, and the
/// last change applied.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Payload {
    schema: u32,
    at: Position,
    model: String,
}

/// The payload's model for an index built without one.
const NO_MODEL: &str = "-";

impl Payload {
    fn parse(s: &str) -> Option<Payload> {
        let mut parts = s.splitn(4, ':');
        let schema = parts.next()?.parse().ok()?;
        let seq = parts.next()?.parse().ok()?;
        let mark = parts.next().unwrap_or(NO_MARK).to_owned();
        let model = parts.next().unwrap_or(NO_MODEL).to_owned();
        Some(Payload { schema, at: Position { seq, mark }, model })
    }
}

fn model_name(meaning: Option<&Arc<Meaning>>) -> &str {
    meaning.map_or(NO_MODEL, |m| m.fingerprint())
}

const WRITER_MEMORY: usize = 100_000_000;

/// The file naming the live generation, in the index's directory.
const CURRENT: &str = "current";

/// Venues further apart than this mark a service as scattered: found near any of them.
const SCATTERED_KM: f64 = 1.0;
const SCATTERED: &str = "1";

fn index_error(what: &str, path: &Path, e: impl std::fmt::Display) -> SearchError {
    SearchError::Index(format!("cannot {what} {}: {e}", path.display()))
}

impl Generation {
    fn new(index: Index, name: Option<String>) -> tantivy::Result<Generation> {
        index.tokenizers().register(crate::stem::ANALYZER, crate::stem::analyzer());
        let writer = index.writer(WRITER_MEMORY)?;
        let reader = index.reader_builder().reload_policy(ReloadPolicy::Manual).try_into()?;
        Ok(Generation { index, reader, writer: Mutex::new(Some(writer)), segments: Arc::default(), name })
    }

    fn payload(&self) -> Option<Payload> {
        self.index.load_metas().ok().and_then(|m| m.payload).and_then(|p| Payload::parse(&p))
    }

    /// The writer, opening a fresh one if the last write failed.
    fn writer(&self) -> Result<WriterGuard<'_>, SearchError> {
        let mut guard = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if guard.is_none() {
            tracing::warn!("the search index's writer failed before; opening a new one");
            *guard = Some(self.index.writer(WRITER_MEMORY)?);
        }
        Ok(WriterGuard(guard))
    }

    /// Runs a write; if it fails, the writer is dropped with what it had not committed,
    /// and the next write starts from the last commit with a new one.
    fn writing<T>(&self, write: impl FnOnce(&mut WriterGuard<'_>) -> Result<T, SearchError>) -> Result<T, SearchError> {
        let mut writer = self.writer()?;
        match write(&mut writer) {
            Ok(done) => Ok(done),
            Err(e) => {
                writer.discard();
                Err(e)
            }
        }
    }

    /// Reads every segment's columns and counts the documents, as a search would: a
    /// damaged index fails here (or panics inside tantivy) rather than in a search.
    fn probe(&self, fields: &Fields) -> Result<(), String> {
        let read = || -> Result<(), SearchError> {
            let searcher = self.reader.searcher();
            for segment in searcher.segment_readers() {
                self.segments.get(segment, fields)?;
            }
            searcher.search(&AllQuery, &tantivy::collector::Count)?;
            Ok(())
        };
        match std::panic::catch_unwind(std::panic::AssertUnwindSafe(read)) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(format!("it cannot be read ({e})")),
            Err(_) => Err("reading it fails inside the index library".to_owned()),
        }
    }

    /// Lets go of the writer, waiting for its merges, before the folder is removed.
    fn close(&self) {
        let writer = self.writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        if let Some(writer) = writer
            && let Err(e) = writer.wait_merging_threads()
        {
            tracing::debug!(error = %e, "an old search index generation's merges did not finish");
        }
    }
}

impl SearchIndex {
    /// An index in memory that searches by words alone, for tests and benchmarks.
    pub fn in_memory() -> Result<SearchIndex, SearchError> {
        Self::in_memory_with(None)
    }

    /// An index in memory, reading meaning with `meaning` when given.
    pub fn in_memory_with(meaning: Option<Arc<Meaning>>) -> Result<SearchIndex, SearchError> {
        let (_, fields) = schema();
        let live = Self::fresh(None, None, model_name(meaning.as_ref()))?;
        Ok(Self::from_live(live, None, fields, meaning))
    }

    /// Opens the index in `dir` that searches by words alone.
    pub fn open(dir: &Path) -> Result<SearchIndex, SearchError> {
        Self::open_with(dir, None)
    }

    /// Opens the index in `dir`, creating it. One built by another schema version or
    /// with other vectors (or none), or that is damaged or cannot be read, is set aside
    /// for an empty one, which the next catch-up rebuilds from the store.
    pub fn open_with(dir: &Path, meaning: Option<Arc<Meaning>>) -> Result<SearchIndex, SearchError> {
        let (schema, fields) = schema();
        std::fs::create_dir_all(dir).map_err(|e| index_error("create", dir, e))?;
        let live = match Self::open_current(dir, &schema, &fields, meaning.as_ref()) {
            Ok(live) => live,
            // Another process has it open for writing: it is not this one's to set aside.
            Err(Unusable::Busy) => {
                return Err(SearchError::Index(format!(
                    "the search index at {} is in use by another Kith process on this data directory (is `kith serve` running?)",
                    dir.display()
                )));
            }
            Err(Unusable::SetAside(why)) => {
                tracing::warn!("the search index at {} {why}; starting afresh and rebuilding it", dir.display());
                Self::clear(dir, None);
                let live = Self::fresh(Some(dir), Some(Self::next_name(dir)), model_name(meaning.as_ref()))?;
                Self::make_current(dir, &live)?;
                live
            }
        };
        // Generations left by a rebuild that did not finish, and an older version's files.
        Self::clear(dir, live.name.as_deref());
        Ok(Self::from_live(live, Some(dir.to_owned()), fields, meaning))
    }

    fn from_live(
        live: Generation,
        home: Option<PathBuf>,
        fields: Fields,
        meaning: Option<Arc<Meaning>>,
    ) -> SearchIndex {
        SearchIndex {
            inner: Arc::new(Inner {
                live: RwLock::new(Arc::new(live)),
                building: Mutex::new(None),
                home,
                fields,
                meaning,
                damaged: Mutex::new(None),
            }),
        }
    }

    /// The live generation named by `dir/current`, if it can be trusted; otherwise why not.
    fn open_current(
        dir: &Path,
        schema: &Schema,
        fields: &Fields,
        meaning: Option<&Arc<Meaning>>,
    ) -> Result<Generation, Unusable> {
        let aside = Unusable::SetAside;
        let name = std::fs::read_to_string(dir.join(CURRENT))
            .map_err(|_| aside("has no current generation (it is new, or from an older version)".to_owned()))?;
        let name = name.trim();
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            return Err(aside(format!("names its current generation as {name:?}, which is not one")));
        }
        let index = Index::open_in_dir(dir.join(name)).map_err(|e| aside(format!("cannot be opened ({e})")))?;
        let payload = index.load_metas().ok().and_then(|m| m.payload).and_then(|p| Payload::parse(&p));
        let model = model_name(meaning);
        match payload {
            Some(p)
                if p.schema == SCHEMA_VERSION
                    && index.schema() == *schema
                    && index.settings().sort_by_field == settings().sort_by_field =>
            {
                if p.model != model {
                    return Err(aside(format!("was built with other word vectors ({} rather than {model})", p.model)));
                }
            }
            _ => return Err(aside("is from another version".to_owned())),
        }
        match index.validate_checksum() {
            Ok(damaged) if damaged.is_empty() => {}
            Ok(damaged) => {
                let mut files: Vec<String> = damaged.iter().map(|p| p.display().to_string()).collect();
                files.sort();
                return Err(aside(format!("is damaged ({} fails its checksum)", files.join(", "))));
            }
            Err(e) => return Err(aside(format!("is damaged ({e})"))),
        }
        let generation = match Generation::new(index, Some(name.to_owned())) {
            Ok(g) => g,
            Err(tantivy::TantivyError::LockFailure(..)) => return Err(Unusable::Busy),
            Err(e) => return Err(aside(format!("cannot be read ({e})"))),
        };
        generation.probe(fields).map_err(|why| aside(format!("is damaged: {why}")))?;
        Ok(generation)
    }

    /// A new, empty generation: in memory, or in `home/name`.
    fn fresh(home: Option<&Path>, name: Option<String>, model: &str) -> Result<Generation, SearchError> {
        let (schema, _) = schema();
        let builder = Index::builder().schema(schema).settings(settings());
        let index = match (home, &name) {
            (Some(home), Some(name)) => {
                let dir = home.join(name);
                std::fs::create_dir_all(&dir).map_err(|e| index_error("create", &dir, e))?;
                builder.create_in_dir(&dir)?
            }
            _ => builder.create_in_ram()?,
        };
        let generation = Generation::new(index, name)?;
        // An empty index that says where it stands, as every commit does.
        generation.writing(|writer| {
            let mut commit = writer.prepare_commit()?;
            commit.set_payload(&format!("{SCHEMA_VERSION}:0:{NO_MARK}:{model}"));
            commit.commit()?;
            Ok(())
        })?;
        Ok(generation)
    }

    /// A generation's name not used in `dir`: one more than the largest there.
    fn next_name(dir: &Path) -> String {
        let largest = std::fs::read_dir(dir)
            .into_iter()
            .flatten()
            .flatten()
            .filter_map(|e| e.file_name().to_str().and_then(|n| n.parse::<u64>().ok()))
            .max()
            .unwrap_or(0);
        (largest + 1).to_string()
    }

    /// Names `generation` as the live one in `dir`, replacing the name at once.
    fn make_current(dir: &Path, generation: &Generation) -> Result<(), SearchError> {
        let Some(name) = &generation.name else { return Ok(()) };
        let next = dir.join("current.next");
        std::fs::write(&next, name).map_err(|e| index_error("write", &next, e))?;
        std::fs::rename(&next, dir.join(CURRENT)).map_err(|e| index_error("write", &dir.join(CURRENT), e))
    }

    /// Removes everything in `dir` but `current` and the generation `keep`.
    fn clear(dir: &Path, keep: Option<&str>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name == CURRENT || keep.is_some_and(|keep| name == keep) {
                continue;
            }
            let path = entry.path();
            let removed = if path.is_dir() { std::fs::remove_dir_all(&path) } else { std::fs::remove_file(&path) };
            if let Err(e) = removed {
                tracing::warn!(error = %e, "cannot remove {} from the search index's folder", path.display());
            }
        }
    }

    fn live(&self) -> Arc<Generation> {
        self.inner.live.read().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn building(&self) -> Result<Arc<Generation>, SearchError> {
        let building = self.inner.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        building.clone().ok_or_else(|| SearchError::Index("no rebuild has been started".to_owned()))
    }

    /// The word vectors this index reads meaning with, if any.
    pub fn meaning(&self) -> Option<&Arc<Meaning>> {
        self.inner.meaning.as_ref()
    }

    /// The last change-feed sequence number the index reflects (0 when empty).
    pub fn seq(&self) -> i64 {
        self.position().seq
    }

    /// Where in the change feed the index stands.
    pub fn position(&self) -> Position {
        self.live().payload().map_or_else(Position::start, |p| p.at)
    }

    /// How many services the index holds.
    pub fn len(&self) -> u64 {
        self.live().reader.searcher().num_docs()
    }

    /// How many segments the index is in (fewer is faster to search).
    pub fn segments(&self) -> usize {
        self.live().reader.searcher().segment_readers().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Why the index cannot be trusted, if a search found it damaged. The next catch-up
    /// rebuilds it beside the damaged one.
    pub fn damaged(&self) -> Option<String> {
        self.inner.damaged.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).clone()
    }

    fn set_damaged(&self, why: String) {
        tracing::error!("the search index is damaged ({why}); it will be rebuilt from the store");
        *self.inner.damaged.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(why);
    }

    /// Replaces the given services and removes the deleted ones, then commits as of
    /// `at`. Searches see the change when this returns.
    pub fn apply(&self, services: &[Service], deleted: &[Uuid], at: &Position) -> Result<(), SearchError> {
        let live = self.live();
        let x = self.inner.fields;
        live.writing(|writer| {
            for id in deleted {
                writer.delete_term(Term::from_field_text(x.id, &id.to_string()));
            }
            for s in services {
                writer.delete_term(Term::from_field_text(x.id, &s.id.to_string()));
                self.add_listed(writer, s)?;
            }
            self.commit_as_of(writer, at)
        })?;
        live.reader.reload()?;
        Ok(())
    }

    /// Starts a rebuild: a new, empty generation beside the live one, which searches go
    /// on reading until [`SearchIndex::finish_rebuild`] swaps the new one in. Merges are
    /// held back until then, and done once. A rebuild already started is dropped.
    pub fn start_rebuild(&self) -> Result<(), SearchError> {
        let name = self.inner.home.as_deref().map(Self::next_name);
        let generation = Self::fresh(self.inner.home.as_deref(), name, model_name(self.inner.meaning.as_ref()))?;
        generation.writer()?.set_merge_policy(Box::new(NoMergePolicy));
        let earlier =
            self.inner.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).replace(Arc::new(generation));
        if let Some(earlier) = earlier {
            self.discard(&earlier);
        }
        Ok(())
    }

    /// Adds services to the index being rebuilt, without committing. The index's writer
    /// threads work on them while the caller reads the next batch.
    pub fn add(&self, services: &[Service]) -> Result<(), SearchError> {
        let building = self.building()?;
        building.writing(|writer| {
            for s in services {
                self.add_listed(writer, s)?;
            }
            Ok(())
        })
    }

    /// Adds a service that people can be sent to (active or temporarily closed).
    fn add_listed(&self, writer: &IndexWriter, s: &Service) -> Result<(), SearchError> {
        if s.status == kith_domain::ServiceStatus::Active || s.status == kith_domain::ServiceStatus::TemporarilyClosed {
            writer.add_document(self.document(s.id, &facts(s)))?;
        }
        Ok(())
    }

    /// Ends a rebuild. When every service was added (`complete`), commits the new
    /// generation as of `at`, merges it into one segment (which a search reads with a
    /// fraction of the work of ten), and swaps it in for the live one. Otherwise drops it,
    /// and the live generation goes on as it was.
    pub fn finish_rebuild(&self, at: &Position, complete: bool) -> Result<(), SearchError> {
        let building = self.inner.building.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).take();
        let Some(building) = building else {
            return Err(SearchError::Index("no rebuild has been started".to_owned()));
        };
        if !complete {
            self.discard(&building);
            return Ok(());
        }
        let finished = building.writing(|writer| {
            self.commit_and_merge(&building, writer, at)?;
            writer.set_merge_policy(Box::<LogMergePolicy>::default());
            Ok(())
        });
        let ready = finished.and_then(|()| Ok(building.reader.reload()?));
        if let Err(e) = ready {
            self.discard(&building);
            return Err(e);
        }
        if let Some(home) = &self.inner.home
            && let Err(e) = Self::make_current(home, &building)
        {
            self.discard(&building);
            return Err(e);
        }
        let old = std::mem::replace(&mut *self.inner.live.write().unwrap_or_else(|p| p.into_inner()), building);
        *self.inner.damaged.lock().unwrap_or_else(|poisoned| poisoned.into_inner()) = None;
        self.discard(&old);
        Ok(())
    }

    /// Closes a generation no longer wanted and removes its folder. Searches still
    /// reading it finish: their files stay readable until they let go.
    fn discard(&self, generation: &Generation) {
        generation.close();
        if let (Some(home), Some(name)) = (&self.inner.home, &generation.name) {
            let dir = home.join(name);
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(error = %e, "cannot remove the old search index at {}", dir.display());
            }
        }
    }

    fn commit_and_merge(
        &self,
        generation: &Generation,
        writer: &mut IndexWriter,
        at: &Position,
    ) -> Result<(), SearchError> {
        self.commit_as_of(writer, at)?;
        let segments = generation.index.searchable_segment_ids()?;
        if segments.len() > 1 {
            writer.merge(&segments).wait()?;
        }
        Ok(())
    }

    fn document(&self, id: Uuid, f: &ServiceFacts) -> TantivyDocument {
        let x = &self.inner.fields;
        let mut d = TantivyDocument::default();
        d.add_text(x.id, id.to_string());
        let (hi, lo) = id.as_u64_pair();
        d.add_u64(x.id_hi, hi);
        d.add_u64(x.id_lo, lo);
        d.add_text(x.name, &f.name);
        d.add_text(x.body, &f.body);
        d.add_text(x.organization, &f.organization);
        d.add_text(x.taxonomy, &f.taxonomy);
        for need in &f.needs {
            d.add_text(x.needs, need);
        }
        if let Some(org) = &f.organization_id {
            d.add_text(x.organization_id, org);
        }
        for area in &f.areas {
            d.add_text(x.areas, area);
        }
        if let Some(first) = f.points.first()
            && f.points.iter().any(|p| first.distance_km(*p) > SCATTERED_KM)
        {
            d.add_text(x.scattered, SCATTERED);
        }
        for p in &f.points {
            d.add_u64(x.points, encode_point(*p));
        }
        for a in &f.attending {
            d.add_text(x.attending, a.as_str());
        }
        for l in &f.languages {
            d.add_text(x.languages, l);
        }
        for a in &f.accessibility {
            d.add_text(x.accessibility, *a);
        }
        for s in &f.slots {
            d.add_u64(x.slots, s.encode());
        }
        d.add_u64(x.free, u64::from(f.free));
        d.add_u64(x.closed, u64::from(f.closed));
        d.add_u64(x.min_age, f.min_age);
        d.add_u64(x.max_age, f.max_age);
        d.add_i64(x.modified, f.modified);
        d.add_u64(x.geo, geo_key(&f.points));
        d.add_u64(x.venues, f.venues);
        if let Some(v) = self.inner.meaning.as_ref().and_then(|m| m.embed_service(&f.name, &f.taxonomy, &f.body)) {
            for packed in Meaning::encode(&v) {
                d.add_u64(x.meaning, packed);
            }
        }
        d
    }

    /// Commits, recording the schema version, where in the feed it stands and the model.
    fn commit_as_of(&self, writer: &mut IndexWriter, at: &Position) -> Result<(), SearchError> {
        let mut commit = writer.prepare_commit()?;
        commit.set_payload(&format!(
            "{SCHEMA_VERSION}:{}:{}:{}",
            at.seq,
            at.mark,
            model_name(self.inner.meaning.as_ref())
        ));
        commit.commit()?;
        Ok(())
    }

    /// Runs a search on the live generation. A search that fails inside the index
    /// library marks the index damaged (the next catch-up rebuilds it) and answers with
    /// an error, never a panic.
    pub fn search(&self, q: &SearchQuery) -> Result<SearchResults, SearchError> {
        let started = std::time::Instant::now();
        let live = self.live();
        let run = || -> Result<SearchResults, SearchError> {
            let mut results = self.search_once(&live, q, false)?;
            // Words found fewer than the page wants: look again at every service near the
            // place, for those that mean what the query means without sharing a word. Only
            // then, since it reads every service near the place (25,000 in a town at 1M).
            if results.reading.meaning && q.near.is_some() && results.total < q.offset + q.limit {
                results = self.search_once(&live, q, true)?;
            }
            Ok(results)
        };
        let mut results = match std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)) {
            Ok(results) => results?,
            Err(_) => {
                self.set_damaged("a search failed inside the index library".to_owned());
                return Err(SearchError::Index("the search index is damaged and is being rebuilt".to_owned()));
            }
        };
        results.took = started.elapsed();
        Ok(results)
    }

    fn search_once(
        &self,
        live: &Generation,
        q: &SearchQuery,
        by_meaning_alone: bool,
    ) -> Result<SearchResults, SearchError> {
        let started = std::time::Instant::now();
        let searcher = live.reader.searcher();
        let x = self.inner.fields;
        let mut must: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        // Filters match or not; only the text query scores.
        let filter =
            |q: Box<dyn Query>| -> (Occur, Box<dyn Query>) { (Occur::Must, Box::new(ConstScoreQuery::new(q, 0.0))) };
        let text = q.text.as_deref().map(str::trim).filter(|t| !t.is_empty());
        let scored = text.is_some();
        let mut area_codes = Vec::new();
        let near = q.near.as_ref().map(|near| {
            // Near the point, or covering an area that holds it.
            area_codes = near.area_codes.clone();
            area_codes.push("national".into());
            let (lat, lon) = grid_box(near.point, near.radius_km);
            NearQuery::new(
                live.segments.clone(),
                x,
                key_ranges(lat, lon),
                vec![(x.areas, area_codes.clone()), (x.scattered, vec![SCATTERED.into()])],
            )
        });
        let mut meaning = None;
        let mut reading = crate::Reading::default();
        match (text, &near) {
            (Some(text), _) => {
                let t = self.text_query(live, &searcher, text, near.as_ref(), q.understanding, by_meaning_alone)?;
                must.push((Occur::Must, t.query));
                meaning = t.vector.map(|vector| QueryMeaning { vector, blend: q.blend });
                reading = t.reading;
            }
            (None, Some(near)) => must.push(filter(Box::new(near.clone()))),
            (None, None) => {}
        }
        let any_of = |field: Field, values: &[String]| -> Box<dyn Query> {
            let clauses: Vec<(Occur, Box<dyn Query>)> = values
                .iter()
                .map(|v| {
                    let q: Box<dyn Query> =
                        Box::new(TermQuery::new(Term::from_field_text(field, v), IndexRecordOption::Basic));
                    (Occur::Should, q)
                })
                .collect();
            Box::new(BooleanQuery::new(clauses))
        };
        if !q.needs.is_empty() {
            let needs: Vec<String> = q.needs.iter().map(|n| n.to_lowercase()).collect();
            must.push(filter(any_of(x.needs, &needs)));
        }
        if let Some(org) = q.organization_id {
            must.push(filter(any_of(x.organization_id, &[org.to_string()])));
        }
        if let Some(orgs) = &q.organizations {
            let ids: Vec<String> = orgs.iter().map(Uuid::to_string).collect();
            // No organisation at all: nothing can match, whatever else the query says.
            let ids = if ids.is_empty() { vec![String::new()] } else { ids };
            must.push(filter(any_of(x.organization_id, &ids)));
        }
        if !q.attending.is_empty() {
            let modes: Vec<String> = q.attending.iter().map(|a| a.as_str().to_owned()).collect();
            must.push(filter(any_of(x.attending, &modes)));
        }
        for language in &q.languages {
            must.push(filter(any_of(x.languages, &[language.to_lowercase()])));
        }
        for feature in &q.accessibility {
            must.push(filter(any_of(x.accessibility, std::slice::from_ref(feature))));
        }
        if q.free {
            must.push(filter(Box::new(TermQuery::new(Term::from_field_u64(x.free, 1), IndexRecordOption::Basic))));
        }
        // A temporarily closed service is not somewhere to send a person today.
        let open_only = !q.include_closed;
        let query: Box<dyn Query> = match (must.is_empty(), open_only) {
            (true, false) => Box::new(AllQuery),
            (empty, _) => {
                if empty {
                    must.push((Occur::Must, Box::new(AllQuery)));
                }
                if open_only {
                    let closed = TermQuery::new(Term::from_field_u64(x.closed, 1), IndexRecordOption::Basic);
                    must.push((Occur::MustNot, Box::new(closed)));
                }
                Box::new(BooleanQuery::new(must))
            }
        };

        let collector = ResultCollector {
            filters: Filters::from_query(q, area_codes),
            meaning,
            keep: q.offset + q.limit,
            scored,
            facets: q.facets,
            venues: q.venues,
            fields: x,
            segments: &live.segments,
        };
        let Collected { total, venues, mut hits, facets } = searcher.search(&query, &collector)?;
        let hits: Vec<Hit> = hits.drain(..).skip(q.offset).take(q.limit).collect();
        Ok(SearchResults { total, venues, hits, facets: Facets::from(facets), reading, took: started.elapsed() })
    }

    /// The person's words (exact, then forgiving a typo) and the vocabulary's expansions,
    /// and the query's meaning when the index reads meaning. `by_meaning_alone` (with
    /// meaning and a place) makes every service near the place a candidate (scored 0 by
    /// words), so one that means what the query means is found without sharing a word.
    ///
    /// With a place, each word is restricted to the place before the words are joined:
    /// the join then adds up scores only for documents near it. Joining first and
    /// restricting after scored every document of each stretch of the index the place
    /// touched, most of them out of the place; that was a sixth of a search's time.
    fn text_query(
        &self,
        live: &Generation,
        searcher: &tantivy::Searcher,
        text: &str,
        near: Option<&NearQuery>,
        understanding: crate::Understanding,
        by_meaning_alone: bool,
    ) -> Result<TextQuery, SearchError> {
        let x = self.inner.fields;
        let here = |q: Box<dyn Query>| -> Box<dyn Query> {
            match near {
                None => q,
                Some(near) => Box::new(BooleanQuery::new(vec![
                    (Occur::Must, q),
                    (Occur::Must, Box::new(ConstScoreQuery::new(Box::new(near.clone()), 0.0))),
                ])),
            }
        };
        let mut analyzer = live.index.tokenizer_for_field(x.name)?;
        let weighted = [(x.name, 1.0f32), (x.taxonomy, 2.0), (x.organization, 0.5), (x.body, 1.0)];
        let known = |analyzer: &mut tantivy::tokenizer::TextAnalyzer, word: &str| -> Result<bool, SearchError> {
            let mut stream = analyzer.token_stream(word);
            let mut tokens = Vec::new();
            while stream.advance() {
                tokens.push(stream.token().text.clone());
            }
            for token in tokens {
                for (field, _) in weighted {
                    if searcher.doc_freq(&Term::from_field_text(field, &token))? > 0 {
                        return Ok(true);
                    }
                }
            }
            Ok(false)
        };
        // A word the directory never uses, close to one the vocabulary knows, is read as
        // that word ("lonley" as "lonely"), which also brings in what it means.
        let mut words = vocabulary::words(text);
        words.truncate(24);
        let mut reading = crate::Reading::default();
        for word in words.iter_mut().filter(|_| understanding.typos) {
            if !vocabulary::is_function_word(word)
                && !known(&mut analyzer, word)?
                && let Some(fixed) = vocabulary::correct(word)
            {
                reading.corrected.push((word.clone(), fixed.to_owned()));
                *word = fixed.to_owned();
            }
        }
        if understanding.function_words {
            reading.left_out = words.iter().filter(|w| vocabulary::is_function_word(w)).cloned().collect();
        }
        let said = words.join(" ");
        // "i", "and", "for" and "can't" never match on their own.
        let (own, expansions) = match (understanding.vocabulary, understanding.function_words) {
            (true, _) => vocabulary::expand(&words),
            (false, true) => (words.into_iter().filter(|w| !vocabulary::is_function_word(w)).collect(), Vec::new()),
            (false, false) => (words, Vec::new()),
        };
        let own = own.join(" ");
        // The query's meaning: what the person said, and what the vocabulary says it means.
        let vector = match &self.inner.meaning {
            Some(m) if understanding.meaning => m.embed(&format!("{said} {}", expansions.join(" "))),
            _ => None,
        };
        reading.means = expansions.iter().map(|e| (*e).to_owned()).collect();
        reading.meaning = vector.is_some();
        let tokens = |analyzer: &mut tantivy::tokenizer::TextAnalyzer, s: &str| {
            let mut out = Vec::new();
            let mut stream = analyzer.token_stream(s);
            while stream.advance() {
                let t = stream.token().text.clone();
                if !out.contains(&t) {
                    out.push(t);
                }
            }
            out
        };
        let mut clauses: Vec<(Occur, Box<dyn Query>)> = Vec::new();
        reading.words = tokens(&mut analyzer, &own).into_iter().take(16).collect();
        for (i, token) in reading.words.clone().into_iter().enumerate() {
            // A word the directory uses is taken as typed; only an unknown word (most
            // likely a typo) is matched loosely, which also keeps the query fast.
            let mut known = false;
            for (field, _) in weighted {
                known |= searcher.doc_freq(&Term::from_field_text(field, &token))? > 0;
            }
            for (field, weight) in weighted {
                let term = Term::from_field_text(field, &token);
                let exact: Box<dyn Query> = Box::new(TermQuery::new(term.clone(), IndexRecordOption::WithFreqs));
                clauses.push((Occur::Should, here(Box::new(BoostQuery::new(exact, weight)))));
                let distance = match token.chars().count() {
                    0..=4 => 0,
                    5..=7 => 1,
                    _ => 2,
                };
                // Typos only on the few fields that name things, to keep the query fast.
                if understanding.typos && !known && distance > 0 && i < 6 && field != x.body {
                    let fuzzy: Box<dyn Query> = Box::new(FuzzyTermQuery::new(term, distance, true));
                    clauses.push((Occur::Should, here(Box::new(BoostQuery::new(fuzzy, weight * 0.3)))));
                }
            }
        }
        for expansion in expansions {
            for token in tokens(&mut analyzer, expansion) {
                // What services are called: names and taxonomy first; descriptions a
                // little, since a real directory's categories are often missing.
                for (field, weight) in [(x.taxonomy, 1.0f32), (x.name, 0.5), (x.body, 0.7)] {
                    let q: Box<dyn Query> =
                        Box::new(TermQuery::new(Term::from_field_text(field, &token), IndexRecordOption::WithFreqs));
                    clauses.push((Occur::Should, here(Box::new(BoostQuery::new(q, weight * 0.6)))));
                }
            }
        }
        if let (Some(_), Some(near), true) = (&vector, near, by_meaning_alone) {
            clauses.push((Occur::Should, Box::new(ConstScoreQuery::new(Box::new(near.clone()), 0.0))));
        }
        Ok(TextQuery { query: Box::new(BooleanQuery::new(clauses)), vector, reading })
    }
}

/// A query's words as the index searches them, its meaning, and how it was read.
struct TextQuery {
    query: Box<dyn Query>,
    vector: Option<Vec<f32>>,
    reading: crate::Reading,
}

/// Attending types as the facet names shown to people.
pub fn attending_label(a: Attending) -> &'static str {
    match a {
        Attending::InPerson => "In person",
        Attending::Online => "Online",
        Attending::Phone => "By phone",
    }
}
