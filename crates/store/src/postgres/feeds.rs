//! Feeds on PostgreSQL: instances claim a due feed with SKIP LOCKED and a lease, so each
//! feed is pulled by one of them.

use super::{PostgresStore, decode};
use crate::feeds::FeedStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Duration, Utc};
use kith_domain::feed::{Feed, FeedPull};
use tokio_postgres::types::Json;
use uuid::Uuid;

#[async_trait]
impl FeedStore for PostgresStore {
    async fn add_feed(&self, feed: &Feed) -> Result<()> {
        let client = self.pool.get().await?;
        let added = client
            .execute(
                "INSERT INTO feeds (id, name, doc, next_pull_at) VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING",
                &[&feed.id, &feed.name, &Json(feed), &feed.created_at],
            )
            .await?;
        if added == 0 {
            return Err(StoreError::Conflict(format!("a feed named {} is registered already", feed.name)));
        }
        Ok(())
    }

    async fn feeds(&self) -> Result<Vec<Feed>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id, doc FROM feeds ORDER BY name", &[]).await?;
        rows.iter().map(|r| decode("feed", r)).collect()
    }

    async fn remove_feed(&self, id: Uuid) -> Result<bool> {
        let client = self.pool.get().await?;
        Ok(client.execute("DELETE FROM feeds WHERE id = $1", &[&id]).await? > 0)
    }

    async fn claim_due_feed(&self, now: DateTime<Utc>, lease_seconds: i64) -> Result<Option<Feed>> {
        let client = self.pool.get().await?;
        let until = now + Duration::seconds(lease_seconds);
        let row = client
            .query_opt(
                "UPDATE feeds SET lease_until = $2
                 WHERE id = (SELECT id FROM feeds
                             WHERE next_pull_at <= $1 AND (lease_until IS NULL OR lease_until < $1)
                             ORDER BY next_pull_at, name LIMIT 1 FOR UPDATE SKIP LOCKED)
                 RETURNING id, doc",
                &[&now, &until],
            )
            .await?;
        row.map(|r| decode("feed", &r)).transpose()
    }

    async fn record_pull(&self, pull: &FeedPull, next_at: DateTime<Utc>) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let known = tx
            .execute("UPDATE feeds SET next_pull_at = $2, lease_until = NULL WHERE id = $1", &[&pull.feed_id, &next_at])
            .await?;
        if known == 0 {
            return Err(StoreError::NotFound { what: "feed", id: pull.feed_id });
        }
        tx.execute(
            "INSERT INTO feed_pulls (id, feed_id, started_at, doc) VALUES ($1, $2, $3, $4)",
            &[&pull.id, &pull.feed_id, &pull.started_at, &Json(pull)],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn pulls(&self, feed_id: Uuid, limit: u32) -> Result<Vec<FeedPull>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, doc FROM feed_pulls WHERE feed_id = $1 ORDER BY started_at DESC, id LIMIT $2",
                &[&feed_id, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(|r| decode("feed pull", r)).collect()
    }
}
