//! The outbox half of the storage contract. Every [`Store`](crate::Store) is also an
//! [`OutboxStore`]; the contract suite runs it on both engines.

use crate::{Alongside, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::outbox::OutboxMessage;
use uuid::Uuid;

/// How long a claimed message is held by the worker that claimed it. If that worker
/// stops, another may claim the message after this.
pub const LEASE_SECONDS: i64 = 120;

/// How many messages are in each state.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboxCounts {
    pub pending: u64,
    pub sent: u64,
    pub failed: u64,
}

#[async_trait]
pub trait OutboxStore: Send + Sync {
    /// Adds messages, due now, with the audit entries that record them (a list sent to
    /// someone), in one transaction: all of them or none.
    async fn enqueue(&self, messages: Alongside) -> Result<()>;
    /// Claims up to `limit` messages that are due at `now` (or whose claim has lapsed),
    /// so no other worker sends them meanwhile. Each claim counts as an attempt.
    async fn claim_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<OutboxMessage>>;
    /// The message went: its recipient and body are erased.
    async fn mark_sent(&self, id: Uuid, at: DateTime<Utc>) -> Result<()>;
    /// The message did not go: try again at `retry_at`, or give up when `None`.
    async fn mark_failed(&self, id: Uuid, error: &str, retry_at: Option<DateTime<Utc>>) -> Result<()>;
    async fn outbox_counts(&self) -> Result<OutboxCounts>;
    /// Keeps the services of a shortlist sent by text under a short code. A code already
    /// taken is a [`StoreError::Conflict`](crate::StoreError), and nothing changes.
    async fn put_shared_list(&self, code: &str, services: &[Uuid], at: DateTime<Utc>) -> Result<()>;
    /// The services kept under a code, in their order, or `None`.
    async fn shared_list(&self, code: &str) -> Result<Option<Vec<Uuid>>>;
}
