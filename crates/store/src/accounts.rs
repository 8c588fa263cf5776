//! The accounts half of the storage contract: organisations and areas, users and their
//! roles, sessions, magic links, sign-in attempts and the audit log. Every [`Store`](crate::Store)
//! is also an [`AccountStore`], and the contract suite runs these on both engines.
//!
//! The store never sees a readable name or email: those arrive [`Sealed`].

use crate::Result;
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::{
    Area, AuditEvent, AuditQuery, LinkUse, MagicLink, Organisation, Sealed, SessionRecord, UserRecord,
};
use uuid::Uuid;

/// One sealed value somewhere in the database, for re-sealing under a new key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SealedField {
    /// `table.column`, which is also the value's associated data.
    pub field: &'static str,
    pub row_id: Uuid,
    pub value: Sealed,
}

/// Every column that holds sealed values.
pub const SEALED_FIELDS: &[&str] = &["users.email", "users.name", "users.totp_secret"];

/// The associated data a sealed value is bound to: its field and its row.
pub fn seal_context(field: &str, row_id: Uuid) -> String {
    format!("{field}:{row_id}")
}

/// An account and what changes with it, written together by
/// [`AccountStore::write_account`].
#[derive(Debug, Clone)]
pub struct AccountWrite {
    pub user: UserRecord,
    /// Replaces the account's recovery codes (blind indexes; empty clears them).
    pub recovery_codes: Option<Vec<String>>,
    /// Ends every session the account has.
    pub end_sessions: bool,
}

impl AccountWrite {
    /// The account alone.
    pub fn user(user: UserRecord) -> AccountWrite {
        AccountWrite { user, recovery_codes: None, end_sessions: false }
    }
}

#[async_trait]
pub trait AccountStore: Send + Sync {
    /// Adds or replaces an area.
    async fn put_area(&self, area: Area) -> Result<()>;
    async fn areas(&self) -> Result<Vec<Area>>;

    /// Adds or replaces an organisation and its area memberships.
    async fn put_organisation(&self, org: Organisation) -> Result<()>;
    async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>>;
    /// Every organisation, by name.
    async fn organisations(&self) -> Result<Vec<Organisation>>;

    /// Adds a user, or replaces one with the same id, with their grants. An email
    /// already used by another user is a [`StoreError::Conflict`](crate::StoreError::Conflict).
    async fn put_user(&self, user: UserRecord) -> Result<()> {
        self.write_account(AccountWrite::user(user), crate::Alongside::none()).await.map(|_| ())
    }
    /// Writes an account as [`put_user`](Self::put_user) does, with what changes beside it
    /// (its recovery codes, its sessions) and its audit entry, in one transaction.
    /// Returns how many sessions ended.
    async fn write_account(&self, write: AccountWrite, also: crate::Alongside) -> Result<u64>;
    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>>;
    async fn user_by_email_index(&self, email_index: &str) -> Result<Option<UserRecord>>;
    /// Every user, oldest first.
    async fn users(&self) -> Result<Vec<UserRecord>>;
    /// Records that a TOTP step was used, if it is later than the last one. Returns
    /// false when it is not, so a code is accepted once even across instances.
    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool>;
    /// Replaces a user's recovery codes (stored as blind indexes).
    async fn set_recovery_codes(&self, user_id: Uuid, code_indexes: Vec<String>) -> Result<()>;
    /// Uses up one recovery code. Returns whether it was there.
    async fn use_recovery_code(&self, user_id: Uuid, code_index: &str) -> Result<bool>;
    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32>;

    /// Starts a session, ending the one it replaces (`replacing`, by digest) and writing
    /// what goes with it (its sign-in audit entry) in the same transaction.
    async fn create_session(
        &self,
        session: SessionRecord,
        replacing: Option<String>,
        also: crate::Alongside,
    ) -> Result<()>;
    async fn session(&self, digest: &str) -> Result<Option<SessionRecord>>;
    /// Notes activity on a session, for the idle timeout.
    async fn touch_session(&self, digest: &str, at: DateTime<Utc>) -> Result<()>;
    /// Ends one session, with what goes beside it (its sign-out audit entry).
    async fn delete_session(&self, digest: &str, also: crate::Alongside) -> Result<()>;
    /// Ends every session a user has ("sign out everywhere"), with what goes beside it.
    /// Returns how many.
    async fn delete_user_sessions(&self, user_id: Uuid, also: crate::Alongside) -> Result<u64>;

    /// Keeps a new magic link with what goes beside it (its audit entry, the email that
    /// carries it), in one transaction.
    async fn create_magic_link(&self, link: MagicLink, also: crate::Alongside) -> Result<()>;
    /// Uses a magic link at `now`: at most once, and only before it expires.
    async fn use_magic_link(&self, digest: &str, now: DateTime<Utc>) -> Result<LinkUse>;

    /// Records a sign-in (or magic-link) attempt under a key such as `email:<index>`.
    async fn record_attempt(&self, key: &str, at: DateTime<Utc>, ok: bool) -> Result<()>;
    /// Failed attempts under `key` since `since`, and when the latest was.
    async fn failures_since(&self, key: &str, since: DateTime<Utc>) -> Result<(u32, Option<DateTime<Utc>>)>;
    /// Attempts of any outcome under `key` since `since`.
    async fn attempts_since(&self, key: &str, since: DateTime<Utc>) -> Result<u32>;

    /// Appends to the audit log and returns the entry's sequence number.
    async fn append_audit(&self, event: AuditEvent) -> Result<i64>;
    /// Audit entries, newest first.
    async fn audit(&self, query: &AuditQuery) -> Result<Vec<AuditEvent>>;

    /// Sealed values in id order after `after`, at most `limit`, across [`SEALED_FIELDS`].
    async fn sealed_fields(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<SealedField>>;
    /// Writes re-sealed values back, in one transaction. Returns how many changed.
    async fn replace_sealed(&self, fields: Vec<SealedField>) -> Result<u64>;
}
