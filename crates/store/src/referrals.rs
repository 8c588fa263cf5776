//! The referrals half of the storage contract: patients, signposts and referrals, each
//! referral's timeline, follow-ups and outcome measures, and the Links counts. Every
//! [`Store`](crate::Store) is also a [`ReferralStore`]. Identifying fields arrive sealed;
//! status moves are checked here and by the database.

use crate::{Alongside, Result};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::referral::{
    FollowUp, LinksCount, LinksRow, MeasureRecord, Outcome, PatientRecord, ReferralEvent, ReferralKind, ReferralRecord,
    Reminder, TaskStatus,
};
use uuid::Uuid;

/// The five Links counts over `referrals r LEFT JOIN follow_ups f`: the follow-up's
/// outcome where there is one, otherwise the group's report; the group's "still attending"
/// counts only once the follow-up is due.
macro_rules! links_counts {
    () => {
        "SUM(CASE WHEN r.kind = 'signpost' THEN 1 ELSE 0 END), SUM(CASE WHEN r.kind = 'referral' THEN 1 ELSE 0 END), SUM(CASE WHEN COALESCE(f.outcome, f.attendance) IS NOT NULL THEN 1 ELSE 0 END), SUM(CASE WHEN COALESCE(f.outcome, f.attendance) IN ('started', 'still_attending', 'stopped') THEN 1 ELSE 0 END), SUM(CASE WHEN f.outcome = 'still_attending' OR (f.outcome IS NULL AND f.attendance = 'still_attending' AND f.attendance_at >= f.due_at) THEN 1 ELSE 0 END)"
    };
}
pub(crate) use links_counts;

/// Everything a new signpost or referral writes, together or not at all.
#[derive(Debug, Clone)]
pub struct NewReferralRows {
    pub referral: ReferralRecord,
    /// The first step of its timeline.
    pub first: ReferralEvent,
    pub follow_up: Option<FollowUp>,
    /// An outcome measure taken at the time of referral.
    pub baseline: Option<MeasureRecord>,
}

/// An outcome, recorded at follow-up (closing it) or reported by the group.
#[derive(Debug, Clone)]
pub struct OutcomeWrite {
    pub referral_id: Uuid,
    pub outcome: Outcome,
    /// Reported by the group, as attendance, rather than by the referrer's side.
    pub by_group: bool,
    /// The referral's status when the person looked; `event.status` is where it goes (the
    /// same, if the outcome does not move it).
    pub from: TaskStatus,
    pub event: ReferralEvent,
    pub measure: Option<MeasureRecord>,
}

/// Which referrals to list, for someone who may see only some.
#[derive(Debug, Clone, Default)]
pub struct ReferralQuery {
    /// Only referrals made by these organisations, or sent to them: a group is sent
    /// referrals only (never signposts) and only until they are declined or cancelled.
    pub visible_to: Vec<Uuid>,
    pub patient: Option<Uuid>,
    pub status: Option<TaskStatus>,
    pub kind: Option<ReferralKind>,
    /// Made at or after.
    pub from: Option<DateTime<Utc>>,
    /// Made before.
    pub before: Option<DateTime<Utc>>,
    pub limit: u32,
    pub offset: u32,
}

#[async_trait]
pub trait ReferralStore: Send + Sync {
    /// Adds a patient. The same NHS number (or local id) twice in one practice is a
    /// [`StoreError::Conflict`](crate::StoreError::Conflict).
    /// With `also` (its audit entry) in the same transaction.
    async fn put_patient(&self, patient: PatientRecord, also: Alongside) -> Result<()>;
    async fn patient(&self, id: Uuid) -> Result<Option<PatientRecord>>;
    /// A practice's patient by the blind index of their NHS number.
    async fn patient_by_nhs_index(&self, organisation_id: Uuid, index: &str) -> Result<Option<PatientRecord>>;

    /// Adds signposts or referrals, each with the first step of its timeline, its
    /// follow-up (as given: a caseload brought from elsewhere may have its outcomes) and
    /// any baseline measure, and `also`: all of them, or none.
    async fn create_referrals(&self, rows: Vec<NewReferralRows>, also: Alongside) -> Result<()>;
    /// Adds one signpost or referral, with no follow-up or measure.
    async fn create_referral(&self, referral: ReferralRecord, first: ReferralEvent) -> Result<()> {
        self.create_referrals(
            vec![NewReferralRows { referral, first, follow_up: None, baseline: None }],
            Alongside::none(),
        )
        .await
    }
    async fn referral(&self, id: Uuid) -> Result<Option<ReferralRecord>>;
    /// Referrals sent to a group, newest first.
    async fn referrals_for_group(&self, group_id: Uuid, limit: u32) -> Result<Vec<ReferralRecord>>;
    /// A patient's signposts and referrals, newest first.
    async fn referrals_for_patient(&self, patient_id: Uuid) -> Result<Vec<ReferralRecord>>;
    /// Referrals matching `query`, newest first.
    async fn search_referrals(&self, query: &ReferralQuery) -> Result<Vec<ReferralRecord>>;
    /// Moves a referral from `from` to `event.status` and adds the step to its timeline,
    /// together with `also`. Returns false, changing nothing, if the referral is no longer at
    /// `from` (someone else moved it first). A move the state machine forbids is refused.
    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent, also: Alongside) -> Result<bool>;
    /// Re-routes a referral: moves it (to rejected, with the step `event`) and adds the
    /// new referral to another service, together with `also`. False, changing nothing, if
    /// the referral is no longer at `from`.
    async fn reroute_referral(
        &self,
        id: Uuid,
        from: TaskStatus,
        event: ReferralEvent,
        new: NewReferralRows,
        also: Alongside,
    ) -> Result<bool>;
    /// A referral's timeline, oldest first.
    async fn timeline(&self, referral_id: Uuid) -> Result<Vec<ReferralEvent>>;

    async fn follow_up(&self, referral_id: Uuid) -> Result<Option<FollowUp>>;
    /// A practice's open follow-ups, soonest due first.
    async fn open_follow_ups(&self, practice: Uuid, limit: u32) -> Result<Vec<FollowUp>>;
    /// Open follow-ups with a reminder due at `now`: those due and not yet reminded, and
    /// those a week overdue and not yet escalated.
    async fn reminders_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(FollowUp, Reminder)>>;
    /// Stamps a reminder as sent. False if another instance stamped it first.
    async fn mark_reminded(&self, referral_id: Uuid, which: Reminder, at: DateTime<Utc>) -> Result<bool>;
    /// Records an outcome, its step on the timeline, any status move and any measure,
    /// together with `also`. False, changing nothing, if the referral is no longer at `write.from` or
    /// (for the referrer's side) the follow-up is already closed.
    async fn record_outcome(&self, write: OutcomeWrite, also: Alongside) -> Result<bool>;
    async fn measures(&self, referral_id: Uuid) -> Result<Vec<MeasureRecord>>;
    async fn measure(&self, id: Uuid) -> Result<Option<MeasureRecord>>;

    /// The Links measure for signposts and referrals made in `[from, before)`, counted per
    /// practice and service. The follow-up's outcome counts where there is one, otherwise
    /// the group's report; "still attending" by the group counts only once the follow-up
    /// is due.
    async fn links_counts(&self, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<Vec<LinksRow>>;
    /// The Links measure for one service's signposts and referrals made in `[from, before)`.
    async fn links_for_service(&self, service: Uuid, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<LinksCount>;
    /// The names of these services, for reports; ids not in the directory are left out.
    async fn service_names(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>>;
}
