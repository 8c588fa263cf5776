//! The outbox on PostgreSQL: workers on several instances claim with SKIP LOCKED, so each
//! message goes to one of them.

use super::PostgresStore;
use crate::outbox::{LEASE_SECONDS, OutboxCounts, OutboxStore};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::{AuditEvent, Sealed};
use kith_domain::outbox::{Channel, OutboxMessage};
use tokio_postgres::GenericClient;
use uuid::Uuid;

async fn insert_message(client: &impl GenericClient, m: &OutboxMessage) -> Result<()> {
    let attempts = i32::try_from(m.attempts).unwrap_or(i32::MAX);
    client
        .execute(
            "INSERT INTO outbox (id, channel, recipient, subject, body, purpose, attempts, next_attempt_at, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)",
            &[&m.id, &m.channel.as_str(), &m.recipient.0, &m.subject, &m.body.0, &m.purpose, &attempts, &m.created_at],
        )
        .await?;
    Ok(())
}

/// An audit entry, through `client` (a transaction, or not); its sequence number.
pub(crate) async fn insert_audit(client: &impl GenericClient, e: &AuditEvent) -> Result<i64> {
    let row = client
        .query_one(
            "INSERT INTO audit_log (at, actor, actor_roles, action, record_type, record_id, ip, reason)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING seq",
            &[&e.at, &e.actor, &e.actor_roles, &e.action, &e.record_type, &e.record_id, &e.ip, &e.reason],
        )
        .await?;
    Ok(row.get(0))
}

/// What a change writes beside it, in its transaction: an error rolls the change back.
pub(crate) async fn write_alongside(tx: &tokio_postgres::Transaction<'_>, also: &Alongside) -> Result<()> {
    for e in &also.audit {
        insert_audit(tx, e).await?;
    }
    for m in &also.outbox {
        insert_message(tx, m).await?;
    }
    Ok(())
}

#[async_trait]
impl OutboxStore for PostgresStore {
    async fn enqueue(&self, messages: Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        write_alongside(&tx, &messages).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn claim_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxMessage>> {
        let client = self.pool.get().await?;
        let lease = now + chrono::Duration::seconds(LEASE_SECONDS);
        let rows = client
            .query(
                "UPDATE outbox SET status = 'sending', lease_until = $2, attempts = attempts + 1
                 WHERE id IN (SELECT id FROM outbox
                              WHERE (status = 'pending' AND next_attempt_at <= $1)
                                 OR (status = 'sending' AND lease_until < $1)
                              ORDER BY next_attempt_at, id LIMIT $3
                              FOR UPDATE SKIP LOCKED)
                 RETURNING id, channel, recipient, subject, body, purpose, created_at, attempts",
                &[&now, &lease, &i64::from(limit)],
            )
            .await?;
        let mut out = rows
            .iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                let channel = Channel::parse(r.get(1)).ok_or_else(|| StoreError::Corrupt {
                    what: "outbox message",
                    id: id.to_string(),
                    reason: "unknown channel".into(),
                })?;
                Ok(OutboxMessage {
                    id,
                    channel,
                    recipient: Sealed(r.get(2)),
                    subject: r.get(3),
                    body: Sealed(r.get(4)),
                    purpose: r.get(5),
                    created_at: r.get(6),
                    attempts: u32::try_from(r.get::<_, i32>(7)).unwrap_or(0),
                })
            })
            .collect::<Result<Vec<_>>>()?;
        out.sort_by_key(|m| (m.created_at, m.id));
        Ok(out)
    }

    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "UPDATE outbox SET status = 'sent', sent_at = $2, recipient = '', body = '', lease_until = NULL,
                    last_error = NULL WHERE id = $1",
                &[&id, &at],
            )
            .await?;
        Ok(())
    }

    async fn mark_failed(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<()> {
        let client = self.pool.get().await?;
        let error: String = error.chars().take(500).collect();
        match retry_at {
            Some(at) => {
                client
                    .execute(
                        "UPDATE outbox SET status = 'pending', next_attempt_at = $2, lease_until = NULL, last_error = $3
                         WHERE id = $1",
                        &[&id, &at, &error],
                    )
                    .await?
            }
            None => {
                client
                    .execute(
                        "UPDATE outbox SET status = 'failed', recipient = '', body = '', lease_until = NULL, last_error = $2
                         WHERE id = $1",
                        &[&id, &error],
                    )
                    .await?
            }
        };
        Ok(())
    }

    async fn outbox_counts(&self) -> Result<OutboxCounts> {
        let client = self.pool.get().await?;
        let r = client
            .query_one(
                "SELECT count(*) FILTER (WHERE status IN ('pending', 'sending')), count(*) FILTER (WHERE status = 'sent'),
                        count(*) FILTER (WHERE status = 'failed') FROM outbox",
                &[],
            )
            .await?;
        let n = |v: i64| u64::try_from(v).unwrap_or(0);
        Ok(OutboxCounts { pending: n(r.get(0)), sent: n(r.get(1)), failed: n(r.get(2)) })
    }

    async fn put_shared_list(&self, code: &str, services: &[Uuid], at: DateTime<Utc>) -> Result<()> {
        let client = self.pool.get().await?;
        let added = client
            .execute(
                "INSERT INTO shared_lists (code, service_ids, created_at) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
                &[&code, &services, &at],
            )
            .await?;
        if added == 0 {
            return Err(StoreError::Conflict(format!("the list code {code} is taken")));
        }
        Ok(())
    }

    async fn shared_list(&self, code: &str) -> Result<Option<Vec<Uuid>>> {
        let client = self.pool.get().await?;
        let row = client.query_opt("SELECT service_ids FROM shared_lists WHERE code = $1", &[&code]).await?;
        Ok(row.map(|r| r.get(0)))
    }
}
