//! The scale-out engine: PostgreSQL, shared by several Kith instances.
//!
//! Writes send each table's rows as arrays and insert them with `UNNEST`, so a batch of
//! a thousand services is a handful of round trips rather than thousands. Each write
//! transaction first takes an advisory lock, which orders change-feed sequence numbers
//! by commit (see the migration for why).

mod accounts;
mod duplicates;
mod feeds;
mod geo;
mod outbox;
mod provenance;
mod referrals;
mod reports;

use crate::doc::{self, Wanted, with_modified};
use crate::migrate::POSTGRES;
use crate::{
    Counts, Engine, GeoCounts, OutwardArea, Page, PageRequest, Result, ServiceQuery, Shown, Store, StoreError,
    TermQuery, WriteSummary,
};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Transaction};
use kith_domain::directory::{service_location_ids, service_term_ids};
use kith_domain::geo::{Deprivation, Place, PostcodeInfo, PostcodePlace};
use kith_domain::hsds::{Accessibility, Location, LocationType, Organization, Service, Taxonomy, TaxonomyTerm};
use kith_domain::postcode::{Outward, Postcode};
use kith_domain::report::ProblemReport;
use kith_domain::{Change, ChangeOp, Clock, DirectoryBatch, ObjectType, ServiceStatus};
use serde::de::DeserializeOwned;
use std::str::FromStr;
use std::sync::Arc;
use tokio_postgres::types::Json;
use tokio_postgres::{NoTls, Row};
use uuid::Uuid;

/// Serialises change-feed appends across every instance sharing the database.
const FEED_LOCK: i64 = 0x6b69_7468_6665_6564; // "kithfeed"
/// Keeps two instances starting at once from both running a migration.
const MIGRATION_LOCK: i64 = 0x6b69_7468_6d69_6772; // "kithmigr"

#[derive(Clone)]
pub struct PostgresStore {
    pool: Pool,
    clock: Arc<dyn Clock>,
}

impl std::fmt::Debug for PostgresStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PostgresStore").field("pool", &self.pool.status()).finish()
    }
}

impl PostgresStore {
    /// Connects, checks the server answers, and applies pending migrations.
    pub async fn connect(url: &str, clock: Arc<dyn Clock>) -> Result<Self> {
        let config = parse_url(url)?;
        Self::connect_with(config, clock).await
    }

    /// Connects with a parsed configuration (tests use this to pick a fresh database).
    pub async fn connect_with(config: tokio_postgres::Config, clock: Arc<dyn Clock>) -> Result<Self> {
        let described = describe(&config);
        let manager = Manager::from_config(config, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(16)
            .build()
            .map_err(|e| StoreError::Config(format!("cannot set up the connection pool: {e}")))?;
        let store = PostgresStore { pool, clock };
        let mut client =
            store.pool.get().await.map_err(|e| {
                StoreError::Connect(format!("PostgreSQL at {described} did not accept a connection: {e}"))
            })?;
        migrate(&mut client).await?;
        Ok(store)
    }

    /// One page of a whole table, ordered by name then id (bytewise, as SQLite orders).
    async fn list<T: DeserializeOwned>(
        &self,
        table: &'static str,
        what: &'static str,
        page: PageRequest,
    ) -> Result<Page<T>> {
        let client = self.pool.get().await?;
        let total = count(&**client, &format!("SELECT count(*) FROM {table}")).await?;
        let (limit, offset) = page_params(page);
        let rows = client
            .query(
                &format!("SELECT id, doc FROM {table} ORDER BY name COLLATE \"C\", id LIMIT $1 OFFSET $2"),
                &[&limit, &offset],
            )
            .await?;
        let items = rows.iter().map(|r| decode(what, r)).collect::<Result<_>>()?;
        Ok(Page { items, total, request: page })
    }

    /// Starts a write transaction holding the change-feed lock.
    /// A read-only transaction that sees one snapshot, so that a page, its total and
    /// what it nests agree.
    async fn begin_read(client: &mut deadpool_postgres::Client) -> Result<Transaction<'_>> {
        Ok(client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?)
    }

    async fn begin_write<'c>(&self, client: &'c mut deadpool_postgres::Client) -> Result<Transaction<'c>> {
        let tx = client.transaction().await?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&FEED_LOCK]).await?;
        Ok(tx)
    }
}

/// Parses a `postgres://` URL, with a message that names what is wrong.
pub fn parse_url(url: &str) -> Result<tokio_postgres::Config> {
    tokio_postgres::Config::from_str(url)
        .map_err(|e| StoreError::Config(format!("the database URL {:?} is not valid: {e}", crate::redact_url(url))))
}

fn describe(config: &tokio_postgres::Config) -> String {
    let host = config
        .get_hosts()
        .first()
        .map(|h| match h {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        })
        .unwrap_or_else(|| "localhost".into());
    let port = config.get_ports().first().copied().unwrap_or(5432);
    format!("{host}:{port}/{}", config.get_dbname().unwrap_or("(default)"))
}

async fn migrate(client: &mut deadpool_postgres::Client) -> Result<()> {
    let tx = client.transaction().await?;
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATION_LOCK]).await?;
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS kith_migrations (
            version bigint PRIMARY KEY,
            name text NOT NULL,
            applied_at timestamptz NOT NULL DEFAULT now()
        )",
    )
    .await?;
    let applied: i64 = tx.query_one("SELECT coalesce(max(version), 0) FROM kith_migrations", &[]).await?.get(0);
    for m in POSTGRES.iter().filter(|m| m.version > applied) {
        let fail = |e: tokio_postgres::Error| StoreError::Migration {
            version: m.version,
            name: m.name,
            reason: StoreError::from(e).to_string(),
        };
        tx.batch_execute(m.sql).await.map_err(fail)?;
        tx.execute("INSERT INTO kith_migrations (version, name) VALUES ($1, $2)", &[&m.version, &m.name])
            .await
            .map_err(fail)?;
    }
    tx.commit().await?;
    Ok(())
}

fn decode<T: DeserializeOwned>(what: &'static str, row: &Row) -> Result<T> {
    let id: Uuid = row.get("id");
    // Straight from the document's text into the type: no tree of values between.
    let Json(value): Json<T> =
        row.try_get("doc").map_err(|e| StoreError::Corrupt { what, id: id.to_string(), reason: e.to_string() })?;
    Ok(value)
}

fn to_u64(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn page_params(page: PageRequest) -> (i64, i64) {
    (i64::from(page.size), i64::try_from(page.offset()).unwrap_or(i64::MAX))
}

/// Appends one feed row per changed id, returned by the upsert before it.
const FEED_FROM_CHANGED: &str = "INSERT INTO change_feed (object_type, object_id, op, at)
     SELECT $1, id, 'upsert', $2 FROM changed ORDER BY id RETURNING object_id";

async fn write_batch(tx: &Transaction<'_>, batch: &DirectoryBatch, now: DateTime<Utc>) -> Result<WriteSummary> {
    let mut summary = WriteSummary::default();
    let feed = |t: ObjectType| t.as_str();

    if !batch.taxonomies.is_empty() {
        let ids: Vec<Uuid> = batch.taxonomies.iter().map(|t| t.id).collect();
        let names: Vec<&str> = batch.taxonomies.iter().map(|t| t.name.as_str()).collect();
        let docs: Vec<Json<&Taxonomy>> = batch.taxonomies.iter().map(Json).collect();
        let rows = tx
            .query(
                &format!(
                    "WITH changed AS (
                        INSERT INTO taxonomies AS t (id, name, doc, modified_at)
                        SELECT u.id, u.name, u.doc, $2 FROM UNNEST($3::uuid[], $4::text[], $5::jsonb[]) AS u(id, name, doc)
                        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, doc = EXCLUDED.doc, modified_at = EXCLUDED.modified_at
                        WHERE t.doc IS DISTINCT FROM EXCLUDED.doc
                        RETURNING t.id)
                     {FEED_FROM_CHANGED}"
                ),
                &[&feed(ObjectType::Taxonomy), &now, &ids, &names, &docs],
            )
            .await?;
        summary.taxonomies = rows.len() as u64;
    }

    if !batch.taxonomy_terms.is_empty() {
        let terms = &batch.taxonomy_terms;
        let ids: Vec<Uuid> = terms.iter().map(|t| t.id).collect();
        let taxonomy_ids: Vec<Option<Uuid>> = terms.iter().map(|t| t.taxonomy_id).collect();
        let parent_ids: Vec<Option<Uuid>> = terms.iter().map(|t| t.parent_id).collect();
        let codes: Vec<Option<&str>> = terms.iter().map(|t| t.code.as_deref()).collect();
        let names: Vec<&str> = terms.iter().map(|t| t.name.as_str()).collect();
        let docs: Vec<Json<&TaxonomyTerm>> = terms.iter().map(Json).collect();
        let rows = tx
            .query(
                &format!(
                    "WITH changed AS (
                        INSERT INTO taxonomy_terms AS t (id, taxonomy_id, parent_id, code, name, doc, modified_at)
                        SELECT u.id, u.taxonomy_id, u.parent_id, u.code, u.name, u.doc, $2
                        FROM UNNEST($3::uuid[], $4::uuid[], $5::uuid[], $6::text[], $7::text[], $8::jsonb[])
                             AS u(id, taxonomy_id, parent_id, code, name, doc)
                        ON CONFLICT (id) DO UPDATE SET taxonomy_id = EXCLUDED.taxonomy_id, parent_id = EXCLUDED.parent_id,
                            code = EXCLUDED.code, name = EXCLUDED.name, doc = EXCLUDED.doc, modified_at = EXCLUDED.modified_at
                        WHERE t.doc IS DISTINCT FROM EXCLUDED.doc
                        RETURNING t.id)
                     {FEED_FROM_CHANGED}"
                ),
                &[&feed(ObjectType::TaxonomyTerm), &now, &ids, &taxonomy_ids, &parent_ids, &codes, &names, &docs],
            )
            .await?;
        summary.taxonomy_terms = rows.len() as u64;
    }

    if !batch.organizations.is_empty() {
        let orgs = &batch.organizations;
        let ids: Vec<Uuid> = orgs.iter().map(|o| o.id).collect();
        let names: Vec<&str> = orgs.iter().map(|o| o.name.as_str()).collect();
        let docs: Vec<Json<&Organization>> = orgs.iter().map(Json).collect();
        let rows = tx
            .query(
                &format!(
                    "WITH changed AS (
                        INSERT INTO organizations AS t (id, name, doc, modified_at)
                        SELECT u.id, u.name, u.doc, $2 FROM UNNEST($3::uuid[], $4::text[], $5::jsonb[]) AS u(id, name, doc)
                        ON CONFLICT (id) DO UPDATE SET name = EXCLUDED.name, doc = EXCLUDED.doc, modified_at = EXCLUDED.modified_at
                        WHERE t.doc IS DISTINCT FROM EXCLUDED.doc
                        RETURNING t.id)
                     {FEED_FROM_CHANGED}"
                ),
                &[&feed(ObjectType::Organization), &now, &ids, &names, &docs],
            )
            .await?;
        summary.organizations = rows.len() as u64;
    }

    if !batch.locations.is_empty() {
        let locs = &batch.locations;
        let ids: Vec<Uuid> = locs.iter().map(|l| l.id).collect();
        let org_ids: Vec<Option<Uuid>> = locs.iter().map(|l| l.organization_id).collect();
        let names: Vec<Option<&str>> = locs.iter().map(|l| l.name.as_deref()).collect();
        let columns: Vec<_> = locs.iter().map(doc::location_columns).collect();
        let postcodes: Vec<Option<&str>> = columns.iter().map(|c| c.0.as_deref()).collect();
        let lats: Vec<Option<f64>> = columns.iter().map(|c| c.1).collect();
        let lons: Vec<Option<f64>> = columns.iter().map(|c| c.2).collect();
        let docs: Vec<Json<&Location>> = locs.iter().map(Json).collect();
        let rows = tx
            .query(
                &format!(
                    "WITH changed AS (
                        INSERT INTO locations AS t (id, organization_id, name, latitude, longitude, postcode, doc, modified_at)
                        SELECT u.id, u.organization_id, u.name, u.latitude, u.longitude, u.postcode, u.doc, $2
                        FROM UNNEST($3::uuid[], $4::uuid[], $5::text[], $6::float8[], $7::float8[], $8::text[], $9::jsonb[])
                             AS u(id, organization_id, name, latitude, longitude, postcode, doc)
                        ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
                            latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude, postcode = EXCLUDED.postcode,
                            doc = EXCLUDED.doc, modified_at = EXCLUDED.modified_at
                        WHERE t.doc IS DISTINCT FROM EXCLUDED.doc
                        RETURNING t.id)
                     {FEED_FROM_CHANGED}"
                ),
                &[&feed(ObjectType::Location), &now, &ids, &org_ids, &names, &lats, &lons, &postcodes, &docs],
            )
            .await?;
        summary.locations = rows.len() as u64;
    }

    if !batch.services.is_empty() {
        let services = &batch.services;
        let ids: Vec<Uuid> = services.iter().map(|s| s.id).collect();
        let org_ids: Vec<Option<Uuid>> = services.iter().map(|s| s.organization_id).collect();
        let names: Vec<&str> = services.iter().map(|s| s.name.as_str()).collect();
        let statuses: Vec<&str> = services.iter().map(|s| s.status.as_str()).collect();
        let verified_at: Vec<Option<DateTime<Utc>>> = services.iter().map(|s| s.last_verified_at).collect();
        let verified_by: Vec<Option<&str>> = services.iter().map(|s| s.last_verified_by.as_deref()).collect();
        let docs: Vec<Json<&Service>> = services.iter().map(Json).collect();
        let rows = tx
            .query(
                &format!(
                    "WITH changed AS (
                        INSERT INTO services AS t (id, organization_id, name, status, last_verified_at, last_verified_by, doc, modified_at)
                        SELECT u.id, u.organization_id, u.name, u.status, u.last_verified_at, u.last_verified_by, u.doc, $2
                        FROM UNNEST($3::uuid[], $4::uuid[], $5::text[], $6::text[], $7::timestamptz[], $8::text[], $9::jsonb[])
                             AS u(id, organization_id, name, status, last_verified_at, last_verified_by, doc)
                        ON CONFLICT (id) DO UPDATE SET organization_id = EXCLUDED.organization_id, name = EXCLUDED.name,
                            status = EXCLUDED.status, last_verified_at = EXCLUDED.last_verified_at,
                            last_verified_by = EXCLUDED.last_verified_by, doc = EXCLUDED.doc, modified_at = EXCLUDED.modified_at
                        WHERE t.doc IS DISTINCT FROM EXCLUDED.doc
                        RETURNING t.id)
                     {FEED_FROM_CHANGED}"
                ),
                &[&feed(ObjectType::Service), &now, &ids, &org_ids, &names, &statuses, &verified_at, &verified_by, &docs],
            )
            .await?;
        let changed: std::collections::HashSet<Uuid> = rows.iter().map(|r| r.get(0)).collect();
        summary.services = changed.len() as u64;
        if !changed.is_empty() {
            let changed_ids: Vec<Uuid> = changed.iter().copied().collect();
            tx.execute("DELETE FROM service_locations WHERE service_id = ANY($1)", &[&changed_ids]).await?;
            tx.execute("DELETE FROM service_taxonomy_terms WHERE service_id = ANY($1)", &[&changed_ids]).await?;
            let mut shown_by = Vec::new();
            let mut shown = Vec::new();
            let mut term_services = Vec::new();
            let mut term_ids = Vec::new();
            for s in services.iter().filter(|s| changed.contains(&s.id)) {
                for location_id in service_location_ids(s) {
                    shown_by.push(s.id);
                    shown.push(location_id);
                }
                for term in service_term_ids(s) {
                    term_services.push(s.id);
                    term_ids.push(term);
                }
            }
            tx.execute(
                "INSERT INTO service_locations (service_id, location_id)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
                &[&shown_by, &shown],
            )
            .await?;
            tx.execute(
                "INSERT INTO service_taxonomy_terms (service_id, taxonomy_term_id)
                 SELECT * FROM UNNEST($1::uuid[], $2::uuid[]) ON CONFLICT DO NOTHING",
                &[&term_services, &term_ids],
            )
            .await?;
        }
    }
    provenance::record_sightings(tx, batch, now).await?;
    Ok(summary)
}

async fn load_service(tx: &Transaction<'_>, id: Uuid) -> Result<Service> {
    let row = tx
        .query_opt("SELECT id, doc FROM services WHERE id = $1 FOR UPDATE", &[&id])
        .await?
        .ok_or(StoreError::NotFound { what: "service", id })?;
    decode("service", &row)
}

async fn save_service(tx: &Transaction<'_>, service: Service, now: DateTime<Utc>) -> Result<()> {
    let mut batch = DirectoryBatch::new();
    batch.add_service(service);
    write_batch(tx, &batch, now).await.map(|_| ())
}

async fn by_ids<T: DeserializeOwned>(
    client: &impl tokio_postgres::GenericClient,
    table: &'static str,
    what: &'static str,
    ids: &[Uuid],
) -> Result<Vec<T>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client.query(&format!("SELECT id, doc FROM {table} WHERE id = ANY($1)"), &[&ids]).await?;
    rows.iter().map(|row| decode(what, row)).collect()
}

/// Organisations with only their id and name, from the name column.
async fn organization_names(client: &impl tokio_postgres::GenericClient, ids: &[Uuid]) -> Result<Vec<Organization>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client.query("SELECT id, name FROM organizations WHERE id = ANY($1)", &[&ids]).await?;
    Ok(rows.iter().map(|r| Organization::new(r.get(0), r.get::<_, String>(1), "")).collect())
}

/// Locations with only their id, position (from the columns) and accessibility (the
/// one part of the document read).
async fn venues(client: &impl tokio_postgres::GenericClient, ids: &[Uuid]) -> Result<Vec<Location>> {
    if ids.is_empty() {
        return Ok(Vec::new());
    }
    let rows = client
        .query("SELECT id, latitude, longitude, doc -> 'accessibility' FROM locations WHERE id = ANY($1)", &[&ids])
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in &rows {
        let mut venue = Location::new(r.get(0), LocationType::Physical);
        venue.latitude = r.get(1);
        venue.longitude = r.get(2);
        let accessibility: Option<Json<Vec<Accessibility>>> = r.try_get(3).map_err(|e| StoreError::Corrupt {
            what: "location",
            id: venue.id.to_string(),
            reason: e.to_string(),
        })?;
        venue.accessibility = accessibility.map(|Json(a)| a).unwrap_or_default();
        out.push(venue);
    }
    Ok(out)
}

async fn nest(client: &impl tokio_postgres::GenericClient, services: Vec<Service>) -> Result<Vec<Service>> {
    let Wanted { organizations, locations, taxonomy_terms } = doc::wanted(&services);
    let organizations = by_ids(client, "organizations", "organization", &organizations).await?;
    let locations = by_ids(client, "locations", "location", &locations).await?;
    let terms = by_ids(client, "taxonomy_terms", "taxonomy term", &taxonomy_terms).await?;
    Ok(doc::nest_all(services, organizations, locations, terms))
}

/// Up to `limit` services after `after` in id order, not yet nested.
async fn services_in_id_order(
    client: &impl tokio_postgres::GenericClient,
    after: Option<Uuid>,
    limit: u32,
) -> Result<Vec<Service>> {
    let rows = client
        .query(
            "SELECT id, doc, modified_at FROM services WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
            &[&after, &i64::from(limit)],
        )
        .await?;
    service_rows(&rows)
}

fn service_rows(rows: &[Row]) -> Result<Vec<Service>> {
    rows.iter().map(|row| Ok(with_modified(decode("service", row)?, row.get("modified_at")))).collect()
}

async fn count(client: &impl tokio_postgres::GenericClient, sql: &str) -> Result<u64> {
    Ok(to_u64(client.query_one(sql, &[]).await?.get(0)))
}

#[async_trait]
impl Store for PostgresStore {
    fn engine(&self) -> Engine {
        Engine::Postgres
    }

    async fn write_batch(&self, batch: DirectoryBatch) -> Result<WriteSummary> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let mut batch = batch;
        let redirected = duplicates::redirect_merged(&tx, &mut batch).await?;
        let summary = write_batch(&tx, &batch, now).await?;
        duplicates::record_redirected(&tx, batch.stamp.as_ref(), &redirected, now).await?;
        tx.commit().await?;
        Ok(summary)
    }

    async fn write_batches(&self, batches: Vec<DirectoryBatch>) -> Result<WriteSummary> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let mut summary = WriteSummary::default();
        for mut batch in batches {
            let redirected = duplicates::redirect_merged(&tx, &mut batch).await?;
            summary.add(write_batch(&tx, &batch, now).await?);
            duplicates::record_redirected(&tx, batch.stamp.as_ref(), &redirected, now).await?;
        }
        tx.commit().await?;
        Ok(summary)
    }

    async fn delete_service(&self, id: Uuid) -> Result<bool> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let deleted = tx.execute("DELETE FROM services WHERE id = $1", &[&id]).await? > 0;
        tx.execute("DELETE FROM provenance WHERE kind = 'service' AND record_id = $1", &[&id]).await?;
        if deleted {
            tx.execute(
                "INSERT INTO change_feed (object_type, object_id, op, at) VALUES ($1, $2, $3, $4)",
                &[&ObjectType::Service.as_str(), &id, &ChangeOp::Delete.as_str(), &self.clock.now()],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(deleted)
    }

    async fn set_service_status(&self, id: Uuid, status: ServiceStatus) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let mut service = load_service(&tx, id).await?;
        service.status = status;
        service.last_modified = Some(now);
        save_service(&tx, service, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn mark_service_verified(&self, id: Uuid, by: &str) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        let mut service = load_service(&tx, id).await?;
        service.last_verified_at = Some(now);
        service.last_verified_by = Some(by.to_owned());
        service.assured_date = Some(kith_domain::serde_util::Date(now.date_naive()));
        save_service(&tx, service, now).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn service(&self, id: Uuid) -> Result<Option<Service>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id, doc, modified_at FROM services WHERE id = $1", &[&id]).await?;
        let services = service_rows(&rows)?;
        Ok(nest(&**client, services).await?.pop())
    }

    async fn services_by_ids(&self, ids: &[Uuid]) -> Result<Vec<Service>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let mut client = self.pool.get().await?;
        let tx = Self::begin_read(&mut client).await?;
        let rows = tx.query("SELECT id, doc, modified_at FROM services WHERE id = ANY($1)", &[&ids]).await?;
        let services = nest(&*tx, service_rows(&rows)?).await?;
        tx.commit().await?;
        Ok(doc::in_order(services, ids))
    }

    async fn services(&self, q: &ServiceQuery) -> Result<Page<Service>> {
        const FILTER: &str = "FROM services s
            WHERE ($1::uuid IS NULL OR s.organization_id = $1)
              AND ($2::timestamptz IS NULL OR s.modified_at > $2)
              AND ($3::text IS NULL OR s.status = $3)
              AND ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM service_taxonomy_terms t
                                               WHERE t.service_id = s.id AND t.taxonomy_term_id = $4))";
        let mut client = self.pool.get().await?;
        let tx = Self::begin_read(&mut client).await?;
        let status = q.status.map(ServiceStatus::as_str);
        let total: i64 = tx
            .query_one(
                &format!("SELECT count(*) {FILTER}"),
                &[&q.organization_id, &q.modified_after, &status, &q.taxonomy_term_id],
            )
            .await?
            .get(0);
        let (limit, offset) = page_params(q.page);
        let rows = tx
            .query(
                &format!(
                    "SELECT s.id, s.doc, s.modified_at {FILTER} ORDER BY s.name COLLATE \"C\", s.id LIMIT $5 OFFSET $6"
                ),
                &[&q.organization_id, &q.modified_after, &status, &q.taxonomy_term_id, &limit, &offset],
            )
            .await?;
        let items = nest(&*tx, service_rows(&rows)?).await?;
        tx.commit().await?;
        Ok(Page { items, total: to_u64(total), request: q.page })
    }

    async fn organizations_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Organization>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, doc FROM organizations WHERE $1::uuid IS NULL OR id > $1 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| decode("organization", r)).collect()
    }

    async fn services_after(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>> {
        let mut client = self.pool.get().await?;
        let tx = Self::begin_read(&mut client).await?;
        let items = nest(&*tx, services_in_id_order(&*tx, after, limit).await?).await?;
        tx.commit().await?;
        Ok(items)
    }

    async fn services_after_for_index(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<Service>> {
        let mut client = self.pool.get().await?;
        let tx = Self::begin_read(&mut client).await?;
        let services = services_in_id_order(&*tx, after, limit).await?;
        let Wanted { organizations, locations, taxonomy_terms } = doc::wanted(&services);
        let organizations = organization_names(&*tx, &organizations).await?;
        let locations = venues(&*tx, &locations).await?;
        let terms = doc::terms_for_index(by_ids(&*tx, "taxonomy_terms", "taxonomy term", &taxonomy_terms).await?);
        tx.commit().await?;
        Ok(doc::nest_all(services, organizations, locations, terms))
    }

    async fn services_showing(&self, shown: &Shown) -> Result<Vec<Uuid>> {
        if shown.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.pool.get().await?;
        // The derived tables have no index by location (migration 8): a location
        // changes rarely, and a scan keeps imports lean.
        let rows = client
            .query(
                "SELECT id FROM services WHERE organization_id = ANY($1)
                 UNION
                 SELECT service_id FROM service_locations WHERE location_id = ANY($2)
                 UNION
                 SELECT service_id FROM service_taxonomy_terms WHERE taxonomy_term_id = ANY($3)
                 ORDER BY 1",
                &[&shown.organizations, &shown.locations, &shown.taxonomy_terms],
            )
            .await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn organization(&self, id: Uuid) -> Result<Option<Organization>> {
        let client = self.pool.get().await?;
        Ok(by_ids(&**client, "organizations", "organization", &[id]).await?.pop())
    }

    async fn organizations(&self, page: PageRequest) -> Result<Page<Organization>> {
        self.list("organizations", "organization", page).await
    }

    async fn location(&self, id: Uuid) -> Result<Option<Location>> {
        let client = self.pool.get().await?;
        Ok(by_ids(&**client, "locations", "location", &[id]).await?.pop())
    }

    async fn locations(&self, page: PageRequest) -> Result<Page<Location>> {
        self.list("locations", "location", page).await
    }

    async fn taxonomies(&self, page: PageRequest) -> Result<Page<Taxonomy>> {
        self.list("taxonomies", "taxonomy", page).await
    }

    async fn taxonomy_term(&self, id: Uuid) -> Result<Option<TaxonomyTerm>> {
        let client = self.pool.get().await?;
        Ok(by_ids(&**client, "taxonomy_terms", "taxonomy term", &[id]).await?.pop())
    }

    async fn taxonomy_terms(&self, q: &TermQuery) -> Result<Page<TaxonomyTerm>> {
        const FILTER: &str = "FROM taxonomy_terms
            WHERE ($1::uuid IS NULL OR taxonomy_id = $1)
              AND (NOT $2::bool OR parent_id IS NOT DISTINCT FROM $3::uuid)";
        let client = self.pool.get().await?;
        let by_parent = q.parent_id.is_some();
        let parent = q.parent_id.flatten();
        let total: i64 = client
            .query_one(&format!("SELECT count(*) {FILTER}"), &[&q.taxonomy_id, &by_parent, &parent])
            .await?
            .get(0);
        let (limit, offset) = page_params(q.page);
        let rows = client
            .query(
                &format!("SELECT id, doc {FILTER} ORDER BY name COLLATE \"C\", id LIMIT $4 OFFSET $5"),
                &[&q.taxonomy_id, &by_parent, &parent, &limit, &offset],
            )
            .await?;
        let items = rows.iter().map(|r| decode("taxonomy term", r)).collect::<Result<_>>()?;
        Ok(Page { items, total: to_u64(total), request: q.page })
    }

    async fn changes_since(&self, after: i64, limit: u32) -> Result<Vec<Change>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, object_type, object_id, op, at FROM change_feed WHERE seq > $1 ORDER BY seq LIMIT $2",
                &[&after, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let seq: i64 = r.get(0);
                let corrupt = |reason: String| StoreError::Corrupt { what: "change", id: seq.to_string(), reason };
                Ok(Change {
                    seq,
                    object_type: r.get::<_, &str>(1).parse().map_err(corrupt)?,
                    object_id: r.get(2),
                    op: r.get::<_, &str>(3).parse().map_err(corrupt)?,
                    at: r.get(4),
                })
            })
            .collect()
    }

    async fn last_seq(&self) -> Result<i64> {
        let client = self.pool.get().await?;
        Ok(client.query_one("SELECT coalesce(max(seq), 0)::bigint FROM change_feed", &[]).await?.get(0))
    }

    async fn counts(&self) -> Result<Counts> {
        let client = self.pool.get().await?;
        let row = client
            .query_one(
                "SELECT (SELECT count(*) FROM taxonomies), (SELECT count(*) FROM taxonomy_terms),
                        (SELECT count(*) FROM organizations), (SELECT count(*) FROM locations),
                        (SELECT count(*) FROM services)",
                &[],
            )
            .await?;
        Ok(Counts {
            taxonomies: to_u64(row.get(0)),
            taxonomy_terms: to_u64(row.get(1)),
            organizations: to_u64(row.get(2)),
            locations: to_u64(row.get(3)),
            services: to_u64(row.get(4)),
        })
    }

    async fn put_postcodes(&self, postcodes: Vec<PostcodePlace>) -> Result<u64> {
        geo::put_postcodes(&self.pool, postcodes).await
    }

    async fn put_deprivation(&self, rows: Vec<Deprivation>) -> Result<u64> {
        geo::put_deprivation(&self.pool, rows).await
    }

    async fn put_places(&self, places: Vec<Place>) -> Result<u64> {
        geo::put_places(&self.pool, places).await
    }

    async fn postcode(&self, postcode: &Postcode) -> Result<Option<PostcodeInfo>> {
        geo::postcode(&self.pool, postcode).await
    }

    async fn postcodes_with_prefix(&self, prefix: &str, limit: u32) -> Result<Vec<PostcodePlace>> {
        geo::postcodes_with_prefix(&self.pool, prefix, limit).await
    }

    async fn outward(&self, outward: &Outward) -> Result<Option<OutwardArea>> {
        geo::outward(&self.pool, outward).await
    }

    async fn places_named(&self, name: &str, limit: u32) -> Result<Vec<Place>> {
        geo::places_named(&self.pool, name, limit).await
    }

    async fn geo_counts(&self) -> Result<GeoCounts> {
        geo::geo_counts(&self.pool).await
    }

    async fn add_problem_report(&self, report: ProblemReport) -> Result<()> {
        reports::add(&self.pool, report).await
    }

    async fn problem_reports(&self, service_id: Option<Uuid>, limit: u32) -> Result<Vec<ProblemReport>> {
        reports::list(&self.pool, service_id, limit).await
    }
}
