//! The referrals half of the storage contract: patients, signposts and referrals, and
//! each referral's timeline. Every [`Store`](crate::Store) is also a [`ReferralStore`].
//! Identifying fields arrive sealed; status moves are checked here and by the database.

use crate::Result;
use async_trait::async_trait;
use kith_domain::referral::{PatientRecord, ReferralEvent, ReferralRecord, TaskStatus};
use uuid::Uuid;

#[async_trait]
pub trait ReferralStore: Send + Sync {
    /// Adds a patient. The same NHS number (or local id) twice in one practice is a
    /// [`StoreError::Conflict`](crate::StoreError::Conflict).
    async fn put_patient(&self, patient: PatientRecord) -> Result<()>;
    async fn patient(&self, id: Uuid) -> Result<Option<PatientRecord>>;
    /// A practice's patient by the blind index of their NHS number.
    async fn patient_by_nhs_index(&self, organisation_id: Uuid, index: &str) -> Result<Option<PatientRecord>>;

    /// Adds a signpost or referral and the first step of its timeline, together.
    async fn create_referral(&self, referral: ReferralRecord, first: ReferralEvent) -> Result<()>;
    async fn referral(&self, id: Uuid) -> Result<Option<ReferralRecord>>;
    /// Referrals sent to a group, newest first.
    async fn referrals_for_group(&self, group_id: Uuid, limit: u32) -> Result<Vec<ReferralRecord>>;
    /// A patient's signposts and referrals, newest first.
    async fn referrals_for_patient(&self, patient_id: Uuid) -> Result<Vec<ReferralRecord>>;
    /// Moves a referral from `from` to `event.status` and adds the step to its timeline,
    /// together. Returns false, changing nothing, if the referral is no longer at `from`
    /// (someone else moved it first). A move the state machine forbids is refused.
    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent) -> Result<bool>;
    /// A referral's timeline, oldest first.
    async fn timeline(&self, referral_id: Uuid) -> Result<Vec<ReferralEvent>>;
}
