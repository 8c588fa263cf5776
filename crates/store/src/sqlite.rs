//! The embedded default: one SQLite file in WAL mode. One writer connection behind a
//! lock (SQLite allows one writer at a time anyway) and a small pool of readers, all used
//! from blocking tasks so the async runtime never waits on disk.

mod accounts;
mod checkpoint;
mod duplicates;
mod feeds;
mod geo;
mod outbox;
mod provenance;
mod referrals;
mod reports;

use crate::doc::{self, Wanted, decode, encode, parse_ts, ts};
use crate::migrate::SQLITE;
use crate::{
    Counts, Engine, GeoCounts, OutwardArea, Page, PageRequest, Result, ServiceQuery, Shown, Store, StoreError,
    TermQuery, WriteSummary,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::directory::{service_location_ids, service_term_ids};
use kith_domain::geo::{Deprivation, Place, PostcodeInfo, PostcodePlace};
use kith_domain::hsds::{Location, LocationType, Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::postcode::{Outward, Postcode};
use kith_domain::report::ProblemReport;
use kith_domain::{Change, ChangeOp, Clock, DirectoryBatch, ObjectType, ServiceStatus};
use rusqlite::{Connection, OpenFlags, OptionalExtension, Transaction, params};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use uuid::Uuid;

/// Reads that run at once, each on its own connection, kept open with its page cache.
/// More would only queue for the cores, and each extra connection would start with a
/// cold cache of its own (up to 64 MB once warm).
fn readers_at_once() -> usize {
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    (2 * cores).clamp(4, 8)
}

#[derive(Debug, Clone)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    writer: Mutex<Connection>,
    readers: Mutex<Vec<Connection>>,
    /// A turn to read: as many as there are reader connections.
    reader_turns: Arc<tokio::sync::Semaphore>,
    clock: Arc<dyn Clock>,
    /// Declared last, so it is dropped after the writer, whose commits wake it.
    _checkpointer: checkpoint::Checkpointer,
}

fn configure(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "PRAGMA page_size = 16384;
         PRAGMA journal_mode = WAL;
         PRAGMA synchronous = NORMAL;
         PRAGMA foreign_keys = ON;
         PRAGMA cache_size = -65536;
         PRAGMA temp_store = MEMORY;
         PRAGMA wal_autocheckpoint = 4000;
         PRAGMA journal_size_limit = 67108864;",
    )?;
    conn.busy_handler(Some(wait_for_the_lock))?;
    Ok(())
}

/// How often a write waiting for another process's (a `kith import` beside the server)
/// looks again; SQLite's own timeout looks every 100 ms once it has waited a while, and
/// so missed the moments between an import's windows.
const LOCK_POLL: std::time::Duration = std::time::Duration::from_millis(5);
/// How long a write waits for the lock before it fails: a minute.
const LOCK_TRIES: i32 = 12_000;

/// The busy handler: wait a moment and try again, for up to [`LOCK_TRIES`] times.
fn wait_for_the_lock(tries: i32) -> bool {
    std::thread::sleep(LOCK_POLL);
    tries < LOCK_TRIES
}

/// After a large write, the writer lets go for this long, so that a write waiting in
/// another process gets its turn between one window of an import and the next.
const TURN_BETWEEN_LARGE_WRITES: std::time::Duration = std::time::Duration::from_millis(15);

/// A read-write connection to the database at `path`.
fn open_read_write(path: &Path) -> Result<Connection> {
    Connection::open(path)
        .map_err(|e| StoreError::Connect(format!("cannot open the SQLite database {}: {e}", path.display())))
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // A panic while holding the lock leaves a connection that is still usable: SQLite
    // rolls back the unfinished transaction when the next one begins.
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path` and applies pending migrations.
    pub async fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        let path = path.to_owned();
        tokio::task::spawn_blocking(move || Self::open_blocking(&path, clock)).await?
    }

    fn open_blocking(path: &Path, clock: Arc<dyn Clock>) -> Result<Self> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).map_err(|e| {
                StoreError::Config(format!("cannot create the directory {} for the database: {e}", dir.display()))
            })?;
        }
        let mut writer = open_read_write(path)?;
        configure(&mut writer)?;
        migrate(&mut writer)?;
        let mut checkpoints = open_read_write(path)?;
        configure(&mut checkpoints)?;
        let checkpointer = checkpoint::Checkpointer::start(&mut writer, checkpoints)?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path: path.to_owned(),
                writer: Mutex::new(writer),
                readers: Mutex::new(Vec::new()),
                reader_turns: Arc::new(tokio::sync::Semaphore::new(readers_at_once())),
                clock,
                _checkpointer: checkpointer,
            }),
        })
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    async fn write<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Transaction<'_>, DateTime<Utc>) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let now = inner.clock.now();
            let mut conn = lock(&inner.writer);
            // Immediate: the write lock is taken (waiting its turn behind another
            // process's writes) before anything is read. A deferred transaction that read
            // first fails at once if another process wrote meanwhile.
            let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            let out = f(&tx, now)?;
            tx.commit()?;
            Ok(out)
        })
        .await?
    }

    async fn read<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        let turn = inner
            .reader_turns
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Database("the database is closing".into()))?;
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let pooled = lock(&inner.readers).pop();
            let conn = match pooled {
                Some(conn) => conn,
                None => {
                    let mut conn = Connection::open_with_flags(
                        &inner.path,
                        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
                    )?;
                    configure(&mut conn)?;
                    conn
                }
            };
            // Each read is one transaction, so a page and its total agree.
            conn.execute_batch("BEGIN")?;
            let out = f(&conn);
            let _ = conn.execute_batch("COMMIT");
            let mut idle = lock(&inner.readers);
            idle.push(conn);
            out
        })
        .await?
    }
}

fn migrate(conn: &mut Connection) -> Result<()> {
    conn.execute_batch(
        "CREATE TABLE IF NOT EXISTS kith_migrations (
            version INTEGER PRIMARY KEY NOT NULL,
            name TEXT NOT NULL,
            applied_at TEXT NOT NULL DEFAULT (strftime('%Y-%m-%dT%H:%M:%fZ', 'now'))
        ) STRICT",
    )?;
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let applied: i64 = tx.query_row("SELECT coalesce(max(version), 0) FROM kith_migrations", [], |r| r.get(0))?;
    for m in SQLITE.iter().filter(|m| m.version > applied) {
        let fail =
            |e: rusqlite::Error| StoreError::Migration { version: m.version, name: m.name, reason: e.to_string() };
        tx.execute_batch(m.sql).map_err(fail)?;
        tx.execute("INSERT INTO kith_migrations (version, name) VALUES (?1, ?2)", params![m.version, m.name])
            .map_err(fail)?;
    }
    tx.commit()?;
    Ok(())
}

fn feed(tx: &Transaction<'_>, object_type: ObjectType, id: Uuid, op: ChangeOp, now: &str) -> Result<()> {
    let mut stmt =
        tx.prepare_cached("INSERT INTO change_feed (object_type, object_id, op, at) VALUES (?1, ?2, ?3, ?4)")?;
    stmt.execute(params![object_type.as_str(), id.to_string(), op.as_str(), now])?;
    Ok(())
}

fn write_batch(tx: &Transaction<'_>, batch: &DirectoryBatch, now: DateTime<Utc>) -> Result<WriteSummary> {
    let now = ts(now);
    let mut summary = WriteSummary::default();

    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO taxonomies (id, name, doc, modified_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc, modified_at = excluded.modified_at
             WHERE taxonomies.doc IS NOT excluded.doc",
        )?;
        for t in &batch.taxonomies {
            if stmt.execute(params![t.id.to_string(), t.name, encode(t)?, now])? > 0 {
                feed(tx, ObjectType::Taxonomy, t.id, ChangeOp::Upsert, &now)?;
                summary.taxonomies += 1;
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO taxonomy_terms (id, taxonomy_id, parent_id, code, name, doc, modified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)
             ON CONFLICT (id) DO UPDATE SET taxonomy_id = excluded.taxonomy_id, parent_id = excluded.parent_id,
                code = excluded.code, name = excluded.name, doc = excluded.doc, modified_at = excluded.modified_at
             WHERE taxonomy_terms.doc IS NOT excluded.doc",
        )?;
        for t in &batch.taxonomy_terms {
            let changed = stmt.execute(params![
                t.id.to_string(),
                t.taxonomy_id.map(|id| id.to_string()),
                t.parent_id.map(|id| id.to_string()),
                t.code,
                t.name,
                encode(t)?,
                now
            ])?;
            if changed > 0 {
                feed(tx, ObjectType::TaxonomyTerm, t.id, ChangeOp::Upsert, &now)?;
                summary.taxonomy_terms += 1;
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO organizations (id, name, doc, modified_at) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (id) DO UPDATE SET name = excluded.name, doc = excluded.doc, modified_at = excluded.modified_at
             WHERE organizations.doc IS NOT excluded.doc",
        )?;
        for o in &batch.organizations {
            if stmt.execute(params![o.id.to_string(), o.name, encode(o)?, now])? > 0 {
                feed(tx, ObjectType::Organization, o.id, ChangeOp::Upsert, &now)?;
                summary.organizations += 1;
            }
        }
    }
    {
        let mut stmt = tx.prepare_cached(
            "INSERT INTO locations (id, organization_id, name, latitude, longitude, postcode, doc, modified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name,
                latitude = excluded.latitude, longitude = excluded.longitude, postcode = excluded.postcode,
                doc = excluded.doc, modified_at = excluded.modified_at
             WHERE locations.doc IS NOT excluded.doc",
        )?;
        for l in &batch.locations {
            let (postcode, lat, lon) = doc::location_columns(l);
            let changed = stmt.execute(params![
                l.id.to_string(),
                l.organization_id.map(|id| id.to_string()),
                l.name,
                lat,
                lon,
                postcode,
                encode(l)?,
                now
            ])?;
            if changed > 0 {
                feed(tx, ObjectType::Location, l.id, ChangeOp::Upsert, &now)?;
                summary.locations += 1;
            }
        }
    }
    {
        let mut upsert = tx.prepare_cached(
            "INSERT INTO services (id, organization_id, name, status, last_verified_at, last_verified_by, doc, modified_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
             ON CONFLICT (id) DO UPDATE SET organization_id = excluded.organization_id, name = excluded.name,
                status = excluded.status, last_verified_at = excluded.last_verified_at,
                last_verified_by = excluded.last_verified_by, doc = excluded.doc, modified_at = excluded.modified_at
             WHERE services.doc IS NOT excluded.doc",
        )?;
        // Services are written in id order, and their derived rows after them, so each
        // index keyed by a service id is filled from one end rather than at random
        // places, and each derived row's check of its service finds a page just read.
        // Deleting old derived rows and logging changes take one statement per batch.
        let mut changed: Vec<String> = Vec::new();
        let mut shown: Vec<[String; 2]> = Vec::new();
        let mut terms: Vec<[String; 2]> = Vec::new();
        let mut in_order: Vec<&Service> = batch.services.iter().collect();
        in_order.sort_unstable_by_key(|s| s.id);
        doc::encode_alongside(&in_order, |s, doc| {
            let id = s.id.to_string();
            let written = upsert.execute(params![
                id,
                s.organization_id.map(|id| id.to_string()),
                s.name,
                s.status.as_str(),
                s.last_verified_at.map(ts),
                s.last_verified_by,
                doc,
                now
            ])?;
            if written == 0 {
                return Ok(());
            }
            for location_id in service_location_ids(s) {
                shown.push([id.clone(), location_id.to_string()]);
            }
            for term in service_term_ids(s) {
                terms.push([id.clone(), term.to_string()]);
            }
            changed.push(id);
            Ok(())
        })?;
        if !changed.is_empty() {
            let changed_json = encode(&changed)?;
            tx.prepare_cached("DELETE FROM service_locations WHERE service_id IN (SELECT value FROM json_each(?1))")?
                .execute([&changed_json])?;
            tx.prepare_cached(
                "DELETE FROM service_taxonomy_terms WHERE service_id IN (SELECT value FROM json_each(?1))",
            )?
            .execute([&changed_json])?;
            insert_pairs(
                tx,
                "INSERT OR IGNORE INTO service_locations (service_id, location_id) VALUES (?1, ?2)",
                &shown,
            )?;
            insert_pairs(
                tx,
                "INSERT OR IGNORE INTO service_taxonomy_terms (service_id, taxonomy_term_id) VALUES (?1, ?2)",
                &terms,
            )?;
            tx.prepare_cached(
                "INSERT INTO change_feed (object_type, object_id, op, at)
                 SELECT ?2, value, 'upsert', ?3 FROM json_each(?1)",
            )?
            .execute(params![changed_json, ObjectType::Service.as_str(), now])?;
            summary.services = changed.len() as u64;
        }
    }
    provenance::record_sightings(tx, batch, &now)?;
    Ok(summary)
}

/// Inserts rows of two columns with one prepared statement: in half the time, here,
/// than one statement reading the rows from a JSON array, whose every element is
/// parsed twice more to take its two values out.
fn insert_pairs(tx: &Transaction<'_>, sql: &str, rows: &[[String; 2]]) -> Result<()> {
    let mut stmt = tx.prepare_cached(sql)?;
    for [a, b] in rows {
        stmt.execute([a, b])?;
    }
    Ok(())
}

fn load_service(tx: &Transaction<'_>, id: Uuid) -> Result<Service> {
    let id_text = id.to_string();
    let doc: Option<String> =
        tx.query_row("SELECT doc FROM services WHERE id = ?1", [&id_text], |r| r.get(0)).optional()?;
    let doc = doc.ok_or(StoreError::NotFound { what: "service", id })?;
    decode("service", &id_text, &doc)
}

fn save_service(tx: &Transaction<'_>, service: Service, now: DateTime<Utc>) -> Result<()> {
    let mut batch = DirectoryBatch::new();
    batch.add_service(service);
    write_batch(tx, &batch, now).map(|_| ())
}

/// Rows of `(id, doc)` for the ids given, decoded.
fn by_ids<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &'static str,
    what: &'static str,
    ids: &[Uuid],
) -> Result<Vec<T>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let sql = format!("SELECT id, doc FROM {table} WHERE id IN (SELECT value FROM json_each(?1))");
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map([json_ids(ids)?], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::with_capacity(ids.len());
    for row in rows {
        let (id, doc) = row?;
        out.push(decode(what, &id, &doc)?);
    }
    Ok(out)
}

/// The ids as the JSON array `json_each` reads.
fn json_ids(ids: &[Uuid]) -> Result<String> {
    serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
        .map_err(|e| StoreError::Database(e.to_string()))
}

fn parse_id(what: &'static str, id: &str) -> Result<Uuid> {
    Uuid::parse_str(id).map_err(|e| StoreError::Corrupt { what, id: id.to_owned(), reason: e.to_string() })
}

/// Organisations with only their id and name, from the name column.
fn organization_names(conn: &Connection, ids: &[Uuid]) -> Result<Vec<Organization>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt =
        conn.prepare_cached("SELECT id, name FROM organizations WHERE id IN (SELECT value FROM json_each(?1))")?;
    let rows = stmt.query_map([json_ids(ids)?], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut out = Vec::with_capacity(ids.len());
    for row in rows {
        let (id, name) = row?;
        out.push(Organization::new(parse_id("organization", &id)?, name, ""));
    }
    Ok(out)
}

/// Locations with only their id, position (from the columns) and accessibility (the
/// one part of the document read).
fn venues(conn: &Connection, ids: &[Uuid]) -> Result<Vec<Location>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let mut stmt = conn.prepare_cached(
        "SELECT id, latitude, longitude, json_extract(doc, '$.accessibility') FROM locations
         WHERE id IN (SELECT value FROM json_each(?1))",
    )?;
    let rows = stmt.query_map([json_ids(ids)?], |r| {
        Ok((
            r.get::<_, String>(0)?,
            r.get::<_, Option<f64>>(1)?,
            r.get::<_, Option<f64>>(2)?,
            r.get::<_, Option<String>>(3)?,
        ))
    })?;
    let mut out = Vec::with_capacity(ids.len());
    for row in rows {
        let (id, latitude, longitude, accessibility) = row?;
        let mut venue = Location::new(parse_id("location", &id)?, LocationType::Physical);
        venue.latitude = latitude;
        venue.longitude = longitude;
        if let Some(text) = accessibility {
            venue.accessibility = decode("location", &id, &text)?;
        }
        out.push(venue);
    }
    Ok(out)
}

fn nest(conn: &Connection, services: Vec<Service>) -> Result<Vec<Service>> {
    let Wanted { organizations, locations, taxonomy_terms } = doc::wanted(&services);
    let organizations = by_ids(conn, "organizations", "organization", &organizations)?;
    let locations = by_ids(conn, "locations", "location", &locations)?;
    let terms = by_ids(conn, "taxonomy_terms", "taxonomy term", &taxonomy_terms)?;
    Ok(doc::nest_all(services, organizations, locations, terms))
}

/// Up to `limit` services after `after` in id order, not yet nested.
fn services_in_id_order(conn: &Connection, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>> {
    // Ids are stored in their hyphenated lower-case form, which sorts as the UUID does.
    let mut stmt = conn
        .prepare_cached("SELECT id, doc, modified_at FROM services WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2")?;
    let rows = stmt.query_map(params![after.map(|id| id.to_string()), i64::from(limit)], |r| {
        Ok((r.get(0)?, r.get(1)?, r.get(2)?))
    })?;
    service_rows(rows)
}

fn service_rows(
    rows: rusqlite::MappedRows<'_, impl FnMut(&rusqlite::Row<'_>) -> rusqlite::Result<(String, String, String)>>,
) -> Result<Vec<Service>> {
    let mut out = Vec::new();
    for row in rows {
        let (id, body, modified_at) = row?;
        let service: Service = decode("service", &id, &body)?;
        out.push(doc::with_modified(service, parse_ts(&modified_at)?));
    }
    Ok(out)
}

fn count(conn: &Connection, sql: &str) -> Result<u64> {
    let n: i64 = conn.query_row(sql, [], |r| r.get(0))?;
    Ok(u64::try_from(n).unwrap_or(0))
}

/// One page of a whole table, ordered by name then id.
fn list<T: serde::de::DeserializeOwned>(
    conn: &Connection,
    table: &'static str,
    what: &'static str,
    page: PageRequest,
) -> Result<Page<T>> {
    let total = count(conn, &format!("SELECT count(*) FROM {table}"))?;
    let (limit, offset) = page_params(page);
    let mut stmt = conn.prepare_cached(&format!("SELECT id, doc FROM {table} ORDER BY name, id LIMIT ?1 OFFSET ?2"))?;
    let rows = stmt.query_map(params![limit, offset], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))?;
    let mut items = Vec::new();
    for row in rows {
        let (id, body) = row?;
        items.push(decode(what, &id, &body)?);
    }
    Ok(Page { items, total, request: page })
}

fn page_params(page: PageRequest) -> (i64, i64) {
    (i64::from(page.size), i64::try_from(page.offset()).unwrap_or(i64::MAX))
}

#[async_trait]
impl Store for SqliteStore {
    fn engine(&self) -> Engine {
        Engine::Sqlite
    }

    async fn write_batch(&self, mut batch: DirectoryBatch) -> Result<WriteSummary> {
        let (summary, batch) = self
            .write(move |tx, now| {
                let redirected = duplicates::redirect_merged(tx, &mut batch)?;
                let summary = write_batch(tx, &batch, now)?;
                duplicates::record_redirected(tx, batch.stamp.as_ref(), &redirected, &ts(now))?;
                Ok((summary, batch))
            })
            .await?;
        if batch.len() > 1_000 {
            doc::free_aside(batch);
            tokio::time::sleep(TURN_BETWEEN_LARGE_WRITES).await;
        }
        Ok(summary)
    }

    async fn write_batches(&self, mut batches: Vec<DirectoryBatch>) -> Result<WriteSummary> {
        let (summary, batches) = self
            .write(move |tx, now| {
                let mut summary = WriteSummary::default();
                for batch in &mut batches {
                    let redirected = duplicates::redirect_merged(tx, batch)?;
                    summary.add(write_batch(tx, batch, now)?);
                    duplicates::record_redirected(tx, batch.stamp.as_ref(), &redirected, &ts(now))?;
                }
                Ok((summary, batches))
            })
            .await?;
        for batch in batches.into_iter().filter(|b| b.len() > 1_000) {
            doc::free_aside(batch);
        }
        Ok(summary)
    }

    async fn delete_service(&self, id: Uuid) -> Result<bool> {
        self.write(move |tx, now| {
            let deleted = tx.execute("DELETE FROM services WHERE id = ?1", [id.to_string()])? > 0;
            tx.execute("DELETE FROM provenance WHERE kind = 'service' AND record_id = ?1", [id.to_string()])?;
            if deleted {
                feed(tx, ObjectType::Service, id, ChangeOp::Delete, &ts(now))?;
            }
            Ok(deleted)
        })
        .await
    }

    async fn set_service_status(&self, id: Uuid, status: ServiceStatus) -> Result<()> {
        self.write(move |tx, now| {
            let mut service = load_service(tx, id)?;
            service.status = status;
            service.last_modified = Some(now);
            save_service(tx, service, now)
        })
        .await
    }

    async fn mark_service_verified(&self, id: Uuid, by: &str) -> Result<()> {
        let by = by.to_owned();
        self.write(move |tx, now| {
            let mut service = load_service(tx, id)?;
            service.last_verified_at = Some(now);
            service.last_verified_by = Some(by);
            service.assured_date = Some(kith_domain::serde_util::Date(now.date_naive()));
            save_service(tx, service, now)
        })
        .await
    }

    async fn service(&self, id: Uuid) -> Result<Option<Service>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached("SELECT id, doc, modified_at FROM services WHERE id = ?1")?;
            let rows = stmt.query_map([id.to_string()], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let services = service_rows(rows)?;
            Ok(nest(conn, services)?.pop())
        })
        .await
    }

    async fn services_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Service>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let ids = ids.to_vec();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, doc, modified_at FROM services WHERE id IN (SELECT value FROM json_each(?1))",
            )?;
            let rows = stmt.query_map([json_ids(&ids)?], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            let services = nest(conn, service_rows(rows)?)?;
            Ok(doc::in_order(services, &ids))
        })
        .await
    }

    async fn services(&self, query: &ServiceQuery) -> Result<Page<Service>> {
        let q = query.clone();
        self.read(move |conn| {
            const FILTER: &str = "FROM services s
                WHERE (?1 IS NULL OR s.organization_id = ?1)
                  AND (?2 IS NULL OR s.modified_at > ?2)
                  AND (?3 IS NULL OR s.status = ?3)
                  AND (?4 IS NULL OR EXISTS (SELECT 1 FROM service_taxonomy_terms t
                                             WHERE t.service_id = s.id AND t.taxonomy_term_id = ?4))";
            let org = q.organization_id.map(|id| id.to_string());
            let after = q.modified_after.map(ts);
            let status = q.status.map(ServiceStatus::as_str);
            let term = q.taxonomy_term_id.map(|id| id.to_string());
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) {FILTER}"))?
                .query_row(params![org, after, status, term], |r| r.get(0))?;
            let (limit, offset) = page_params(q.page);
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT s.id, s.doc, s.modified_at {FILTER} ORDER BY s.name, s.id LIMIT ?5 OFFSET ?6"
            ))?;
            let rows = stmt.query_map(params![org, after, status, term, limit, offset], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?))
            })?;
            let services = service_rows(rows)?;
            Ok(Page { items: nest(conn, services)?, total: u64::try_from(total).unwrap_or(0), request: q.page })
        })
        .await
    }

    async fn organizations_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Organization>> {
        self.read(move |conn| {
            let mut stmt = conn
                .prepare_cached("SELECT id, doc FROM organizations WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2")?;
            let rows = stmt.query_map(params![after.map(|id| id.to_string()), i64::from(limit)], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, body) = row?;
                out.push(decode("organization", &id, &body)?);
            }
            Ok(out)
        })
        .await
    }

    async fn services_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>> {
        self.read(move |conn| nest(conn, services_in_id_order(conn, after, limit)?)).await
    }

    async fn services_after_for_index(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>> {
        self.read(move |conn| {
            let services = services_in_id_order(conn, after, limit)?;
            let Wanted { organizations, locations, taxonomy_terms } = doc::wanted(&services);
            let organizations = organization_names(conn, &organizations)?;
            let locations = venues(conn, &locations)?;
            let terms = doc::terms_for_index(by_ids(conn, "taxonomy_terms", "taxonomy term", &taxonomy_terms)?);
            Ok(doc::nest_all(services, organizations, locations, terms))
        })
        .await
    }

    async fn services_showing(&self, shown: &Shown) -> Result<Vec<Uuid>> {
        if shown.is_empty() {
            return Ok(Vec::new());
        }
        let shown = shown.clone();
        self.read(move |conn| {
            // Only the organisation has an index to look services up by; locations and
            // terms are rare changes, and a scan of the derived table keeps imports lean
            // (migration 8).
            let lookups: [(&[Uuid], &str); 3] = [
                (
                    &shown.organizations,
                    "SELECT id FROM services WHERE organization_id IN (SELECT value FROM json_each(?1))",
                ),
                (
                    &shown.locations,
                    "SELECT service_id FROM service_locations WHERE location_id IN (SELECT value FROM json_each(?1))",
                ),
                (
                    &shown.taxonomy_terms,
                    "SELECT service_id FROM service_taxonomy_terms
                     WHERE taxonomy_term_id IN (SELECT value FROM json_each(?1))",
                ),
            ];
            let mut found = std::collections::BTreeSet::new();
            for (ids, sql) in lookups {
                if ids.is_empty() {
                    continue;
                }
                let mut stmt = conn.prepare_cached(sql)?;
                for id in stmt.query_map([json_ids(ids)?], |r| r.get::<_, String>(0))? {
                    found.insert(parse_id("service", &id?)?);
                }
            }
            Ok(found.into_iter().collect())
        })
        .await
    }

    async fn organization(&self, id: Uuid) -> Result<Option<Organization>> {
        self.read(move |conn| Ok(by_ids(conn, "organizations", "organization", &[id])?.pop())).await
    }

    async fn organizations(&self, page: PageRequest) -> Result<Page<Organization>> {
        self.read(move |conn| list(conn, "organizations", "organization", page)).await
    }

    async fn location(&self, id: Uuid) -> Result<Option<Location>> {
        self.read(move |conn| Ok(by_ids(conn, "locations", "location", &[id])?.pop())).await
    }

    async fn locations(&self, page: PageRequest) -> Result<Page<Location>> {
        self.read(move |conn| list(conn, "locations", "location", page)).await
    }

    async fn taxonomies(&self, page: PageRequest) -> Result<Page<Taxonomy>> {
        self.read(move |conn| list(conn, "taxonomies", "taxonomy", page)).await
    }

    async fn taxonomy_term(&self, id: Uuid) -> Result<Option<TaxonomyTerm>> {
        self.read(move |conn| Ok(by_ids(conn, "taxonomy_terms", "taxonomy term", &[id])?.pop())).await
    }

    async fn taxonomy_terms(&self, query: &TermQuery) -> Result<Page<TaxonomyTerm>> {
        let q = query.clone();
        self.read(move |conn| {
            const FILTER: &str = "FROM taxonomy_terms
                WHERE (?1 IS NULL OR taxonomy_id = ?1)
                  AND (?2 = 0 OR parent_id IS ?3)";
            let taxonomy = q.taxonomy_id.map(|id| id.to_string());
            let by_parent = i64::from(q.parent_id.is_some());
            let parent = q.parent_id.flatten().map(|id| id.to_string());
            let total: i64 = conn
                .prepare_cached(&format!("SELECT count(*) {FILTER}"))?
                .query_row(params![taxonomy, by_parent, parent], |r| r.get(0))?;
            let (limit, offset) = page_params(q.page);
            let mut stmt =
                conn.prepare_cached(&format!("SELECT id, doc {FILTER} ORDER BY name, id LIMIT ?4 OFFSET ?5"))?;
            let rows = stmt.query_map(params![taxonomy, by_parent, parent, limit, offset], |r| {
                Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?))
            })?;
            let mut items = Vec::new();
            for row in rows {
                let (id, body) = row?;
                items.push(decode("taxonomy term", &id, &body)?);
            }
            Ok(Page { items, total: u64::try_from(total).unwrap_or(0), request: q.page })
        })
        .await
    }

    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, object_type, object_id, op, at FROM change_feed WHERE seq > ?1 ORDER BY seq LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![after, i64::from(limit)], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (seq, object_type, object_id, op, at) = row?;
                let corrupt = |reason: String| StoreError::Corrupt { what: "change", id: seq.to_string(), reason };
                out.push(Change {
                    seq,
                    object_type: object_type.parse().map_err(corrupt)?,
                    object_id: object_id.parse().map_err(|e: uuid::Error| corrupt(e.to_string()))?,
                    op: op.parse().map_err(corrupt)?,
                    at: parse_ts(&at)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn last_seq(&self) -> Result<i64> {
        self.read(|conn| Ok(conn.query_row("SELECT coalesce(max(seq), 0) FROM change_feed", [], |r| r.get(0))?)).await
    }

    async fn counts(&self) -> Result<Counts> {
        self.read(|conn| {
            Ok(Counts {
                taxonomies: count(conn, "SELECT count(*) FROM taxonomies")?,
                taxonomy_terms: count(conn, "SELECT count(*) FROM taxonomy_terms")?,
                organizations: count(conn, "SELECT count(*) FROM organizations")?,
                locations: count(conn, "SELECT count(*) FROM locations")?,
                services: count(conn, "SELECT count(*) FROM services")?,
            })
        })
        .await
    }

    async fn put_postcodes(&self, postcodes: Vec<PostcodePlace>) -> Result<u64> {
        self.put_postcodes_impl(postcodes).await
    }

    async fn put_deprivation(&self, rows: Vec<Deprivation>) -> Result<u64> {
        self.put_deprivation_impl(rows).await
    }

    async fn put_places(&self, places: Vec<Place>) -> Result<u64> {
        self.put_places_impl(places).await
    }

    async fn postcode(&self, postcode: &Postcode) -> Result<Option<PostcodeInfo>> {
        self.postcode_impl(postcode).await
    }

    async fn postcodes_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<PostcodePlace>> {
        self.postcodes_with_prefix_impl(prefix, limit).await
    }

    async fn outward(&self, outward: &Outward) -> Result<Option<OutwardArea>> {
        self.outward_impl(outward).await
    }

    async fn places_named(&self, name: &str, limit: u32) -> Result<Vec<Place>> {
        self.places_named_impl(name, limit).await
    }

    async fn geo_counts(&self) -> Result<GeoCounts> {
        self.geo_counts_impl().await
    }

    async fn add_problem_report(&self, report: ProblemReport) -> Result<()> {
        self.add_problem_report_impl(report).await
    }

    async fn problem_reports(&self, service_id: Option<Uuid>, limit: u32) -> Result<Vec<ProblemReport>> {
        self.problem_reports_impl(service_id, limit).await
    }
}
