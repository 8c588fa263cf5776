//! Provenance on PostgreSQL.

use super::{PostgresStore, load_service, save_service};
use crate::provenance::ProvenanceStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::provenance::{Provenance, RecordKind, Source};
use kith_domain::{DirectoryBatch, ServiceStatus};
use tokio_postgres::{Row, Transaction};
use uuid::Uuid;

const COLUMNS: &str = "kind, record_id, source, id_there, first_seen, last_seen, missing, withdrawn_at";

/// Records that the batch's source listed its organisations and services in its round.
pub(super) async fn record_sightings(tx: &Transaction<'_>, batch: &DirectoryBatch, now: DateTime<Utc>) -> Result<()> {
    let Some(stamp) = &batch.stamp else { return Ok(()) };
    let mut kinds = Vec::with_capacity(batch.organizations.len() + batch.services.len());
    let mut ids = Vec::with_capacity(kinds.capacity());
    for o in &batch.organizations {
        kinds.push(RecordKind::Organization.as_str());
        ids.push(o.id);
    }
    for s in &batch.services {
        kinds.push(RecordKind::Service.as_str());
        ids.push(s.id);
    }
    if ids.is_empty() {
        return Ok(());
    }
    tx.execute(
        "INSERT INTO provenance (kind, record_id, source, id_there, first_seen, last_seen, round, missing)
         SELECT u.kind, u.id, $3, u.id::text, $4, $4, $5, 0 FROM UNNEST($1::text[], $2::uuid[]) AS u(kind, id)
         ON CONFLICT (kind, record_id, source) DO UPDATE SET
            id_there = EXCLUDED.id_there, last_seen = EXCLUDED.last_seen, round = EXCLUDED.round,
            missing = 0, withdrawn_at = NULL",
        &[&kinds, &ids, &stamp.source.key(), &now, &stamp.round],
    )
    .await?;
    Ok(())
}

fn read(row: &Row) -> Result<Provenance> {
    let (kind, record_id, source): (String, Uuid, String) = (row.get(0), row.get(1), row.get(2));
    let corrupt = |reason: &str| StoreError::Corrupt {
        what: "provenance",
        id: format!("{record_id} from {source}"),
        reason: reason.to_owned(),
    };
    Ok(Provenance {
        kind: RecordKind::parse(&kind).ok_or_else(|| corrupt("unknown kind of record"))?,
        record_id,
        source: Source::from_key(&source).ok_or_else(|| corrupt("unknown source"))?,
        id_there: row.get(3),
        first_seen: row.get(4),
        last_seen: row.get(5),
        missing: u32::try_from(row.get::<_, i32>(6)).unwrap_or(0),
        withdrawn_at: row.get(7),
    })
}

#[async_trait]
impl ProvenanceStore for PostgresStore {
    async fn close_round(&self, source: &Source, round: Uuid, withdraw_after: u32) -> Result<Vec<Uuid>> {
        let source = source.key();
        let after = i32::try_from(withdraw_after.max(1)).unwrap_or(i32::MAX);
        let mut client = self.pool.get().await?;
        let tx = self.begin_write(&mut client).await?;
        let now = self.clock.now();
        tx.execute(
            "UPDATE provenance SET missing = missing + 1, round = $2 WHERE source = $1 AND round <> $2",
            &[&source, &round],
        )
        .await?;
        let due = tx
            .query(
                "UPDATE provenance SET withdrawn_at = $3
                 WHERE source = $1 AND kind = 'service' AND missing >= $2 AND withdrawn_at IS NULL
                 RETURNING record_id,
                    EXISTS (SELECT 1 FROM provenance o WHERE o.kind = 'service' AND o.record_id = provenance.record_id
                            AND o.source <> $1 AND o.missing = 0 AND o.withdrawn_at IS NULL) AS still_listed",
                &[&source, &after, &now],
            )
            .await?;
        let mut made_inactive = Vec::new();
        for row in due {
            let (id, still_listed): (Uuid, bool) = (row.get(0), row.get(1));
            if still_listed {
                continue;
            }
            let mut service = match load_service(&tx, id).await {
                Ok(service) => service,
                Err(StoreError::NotFound { .. }) => continue,
                Err(e) => return Err(e),
            };
            if service.status == ServiceStatus::Active || service.status == ServiceStatus::TemporarilyClosed {
                service.status = ServiceStatus::Inactive;
                service.last_modified = Some(now);
                save_service(&tx, service, now).await?;
                made_inactive.push(id);
            }
        }
        tx.commit().await?;
        Ok(made_inactive)
    }

    async fn provenance(&self, kind: RecordKind, ids: &[Uuid]) -> Result<Vec<Provenance>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM provenance WHERE kind = $1 AND record_id = ANY($2)
                     ORDER BY record_id, first_seen, source"
                ),
                &[&kind.as_str(), &ids],
            )
            .await?;
        rows.iter().map(read).collect()
    }

    async fn existing_services(&self, ids: &[Uuid]) -> Result<Vec<Uuid>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id FROM services WHERE id = ANY($1)", &[&ids]).await?;
        Ok(rows.iter().map(|r| r.get(0)).collect())
    }

    async fn withdrawn(&self, limit: u32) -> Result<Vec<Provenance>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM provenance WHERE withdrawn_at IS NOT NULL
                     ORDER BY withdrawn_at DESC, record_id LIMIT $1"
                ),
                &[&i64::from(limit)],
            )
            .await?;
        rows.iter().map(read).collect()
    }
}
