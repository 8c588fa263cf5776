//! Provenance on SQLite.

use super::{SqliteStore, json_ids, load_service, save_service};
use crate::doc::{parse_ts, ts};
use crate::provenance::ProvenanceStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use kith_domain::provenance::{Provenance, RecordKind, Source};
use kith_domain::{DirectoryBatch, ServiceStatus};
use rusqlite::{Row, Transaction, params};
use uuid::Uuid;

const COLUMNS: &str = "kind, record_id, source, id_there, first_seen, last_seen, missing, withdrawn_at";

/// Records that the batch's source listed its organisations and services in its round.
pub(super) fn record_sightings(tx: &Transaction<'_>, batch: &DirectoryBatch, now: &str) -> Result<()> {
    let Some(stamp) = &batch.stamp else { return Ok(()) };
    let (source, round) = (stamp.source.key(), stamp.round.to_string());
    let mut stmt = tx.prepare_cached(
        "INSERT INTO provenance (kind, record_id, source, id_there, first_seen, last_seen, round, missing)
         VALUES (?1, ?2, ?3, ?2, ?4, ?4, ?5, 0)
         ON CONFLICT (kind, record_id, source) DO UPDATE SET
            id_there = excluded.id_there, last_seen = excluded.last_seen, round = excluded.round,
            missing = 0, withdrawn_at = NULL",
    )?;
    let organizations = batch.organizations.iter().map(|o| (RecordKind::Organization, o.id));
    for (kind, id) in organizations.chain(batch.services.iter().map(|s| (RecordKind::Service, s.id))) {
        stmt.execute(params![kind.as_str(), id.to_string(), source, now, round])?;
    }
    Ok(())
}

/// A provenance row as SQLite holds it.
struct Raw {
    kind: String,
    record_id: String,
    source: String,
    id_there: String,
    first_seen: String,
    last_seen: String,
    missing: i64,
    withdrawn_at: Option<String>,
}

fn row(r: &Row<'_>) -> rusqlite::Result<Raw> {
    Ok(Raw {
        kind: r.get(0)?,
        record_id: r.get(1)?,
        source: r.get(2)?,
        id_there: r.get(3)?,
        first_seen: r.get(4)?,
        last_seen: r.get(5)?,
        missing: r.get(6)?,
        withdrawn_at: r.get(7)?,
    })
}

fn read(raw: Raw) -> Result<Provenance> {
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: "provenance",
        id: format!("{} from {}", raw.record_id, raw.source),
        reason: reason.to_owned(),
    };
    Ok(Provenance {
        kind: RecordKind::parse(&raw.kind).ok_or_else(|| corrupt("unknown kind of record"))?,
        record_id: Uuid::parse_str(&raw.record_id).map_err(|e| corrupt(&e.to_string()))?,
        source: Source::from_key(&raw.source).ok_or_else(|| corrupt("unknown source"))?,
        first_seen: parse_ts(&raw.first_seen)?,
        last_seen: parse_ts(&raw.last_seen)?,
        missing: u32::try_from(raw.missing).unwrap_or(0),
        withdrawn_at: raw.withdrawn_at.as_deref().map(parse_ts).transpose()?,
        id_there: raw.id_there,
    })
}

#[async_trait]
impl ProvenanceStore for SqliteStore {
    async fn close_round(&self, source: &Source, round: Uuid, withdraw_after: u32) -> Result<Vec<Uuid>> {
        let (source, round) = (source.key(), round.to_string());
        self.write(move |tx, now| {
            tx.execute(
                "UPDATE provenance SET missing = missing + 1, round = ?2 WHERE source = ?1 AND round <> ?2",
                params![source, round],
            )?;
            let due: Vec<String> = {
                let mut stmt = tx.prepare_cached(
                    "SELECT record_id FROM provenance
                     WHERE source = ?1 AND kind = 'service' AND missing >= ?2 AND withdrawn_at IS NULL",
                )?;
                let rows = stmt.query_map(params![source, withdraw_after.max(1)], |r| r.get(0))?;
                rows.collect::<rusqlite::Result<_>>()?
            };
            let mut made_inactive = Vec::new();
            for id in due {
                tx.execute(
                    "UPDATE provenance SET withdrawn_at = ?3 WHERE kind = 'service' AND record_id = ?1 AND source = ?2",
                    params![id, source, ts(now)],
                )?;
                let still_listed: bool = tx.query_row(
                    "SELECT EXISTS (SELECT 1 FROM provenance WHERE kind = 'service' AND record_id = ?1
                                    AND source <> ?2 AND missing = 0 AND withdrawn_at IS NULL)",
                    params![id, source],
                    |r| r.get(0),
                )?;
                let Ok(uuid) = Uuid::parse_str(&id) else { continue };
                if still_listed {
                    continue;
                }
                let mut service = match load_service(tx, uuid) {
                    Ok(service) => service,
                    Err(StoreError::NotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                if service.status == ServiceStatus::Active || service.status == ServiceStatus::TemporarilyClosed {
                    service.status = ServiceStatus::Inactive;
                    service.last_modified = Some(now);
                    save_service(tx, service, now)?;
                    made_inactive.push(uuid);
                }
            }
            Ok(made_inactive)
        })
        .await
    }

    async fn provenance(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<Provenance>> {
        let ids = json_ids(ids)?;
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM provenance
                 WHERE kind = ?1 AND record_id IN (SELECT value FROM json_each(?2))
                 ORDER BY record_id, first_seen, source"
            ))?;
            let rows = stmt.query_map(params![kind.as_str(), ids], row)?;
            rows.map(|r| read(r?)).collect()
        })
        .await
    }

    async fn existing_services(&self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        let ids = json_ids(ids)?;
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id FROM services WHERE id IN (SELECT value FROM json_each(?1))")?;
            let rows = stmt.query_map([ids], |r| r.get::<_, String>(0))?;
            let mut out = Vec::new();
            for id in rows {
                let id = id?;
                out.push(Uuid::parse_str(&id).map_err(|e| StoreError::Corrupt {
                    what: "service",
                    id,
                    reason: e.to_string(),
                })?);
            }
            Ok(out)
        })
        .await
    }

    async fn withdrawn(&self, limit: u32) -> Result<Vec<Provenance>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {COLUMNS} FROM provenance WHERE withdrawn_at IS NOT NULL
                 ORDER BY withdrawn_at DESC, record_id LIMIT ?1"
            ))?;
            let rows = stmt.query_map([limit], row)?;
            rows.map(|r| read(r?)).collect()
        })
        .await
    }
}
