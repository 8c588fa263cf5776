//! Patients and referrals on PostgreSQL.

use super::PostgresStore;
use super::outbox::write_alongside;
use crate::referrals::{NewReferralRows, OutcomeWrite, ReferralQuery, ReferralStore, links_counts};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::Sealed;
use kith_domain::referral::{
    ContactMethod, FollowUp, LinksCount, LinksRow, MeasureRecord, Outcome, PatientRecord, ReferralEvent, ReferralKind,
    ReferralRecord, Reminder, Stage, TaskStatus,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

fn corrupt(what: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt { what, id: "(hidden)".into(), reason: reason.into() }
}

fn conflict(e: tokio_postgres::Error, message: &str) -> StoreError {
    match e.code() {
        Some(c) if *c == SqlState::UNIQUE_VIOLATION || *c == SqlState::FOREIGN_KEY_VIOLATION => {
            StoreError::Conflict(message.into())
        }
        _ => e.into(),
    }
}

const PATIENT_COLUMNS: &str =
    "id, organisation_id, nhs_number_index, local_id_index, details, contact_method, language,
    deprivation_decile, neighbourhood, created_at";

fn patient_from(r: &Row) -> Result<PatientRecord> {
    Ok(PatientRecord {
        id: r.get(0),
        organisation_id: r.get(1),
        nhs_number_index: r.get(2),
        local_id_index: r.get(3),
        details: Sealed(r.get(4)),
        contact_method: ContactMethod::parse(r.get(5)).ok_or_else(|| corrupt("patient", "contact method"))?,
        language: r.get(6),
        deprivation_decile: r.get::<_, Option<i16>>(7).and_then(|d| u8::try_from(d).ok()),
        neighbourhood: r.get(8),
        created_at: r.get(9),
    })
}

const REFERRAL_COLUMNS: &str =
    "id, kind, patient_id, service_id, group_id, referrer_user, referrer_org, status, details,
    safeguarding, created_at, follow_up_due";

fn referral_from(r: &Row) -> Result<ReferralRecord> {
    Ok(ReferralRecord {
        id: r.get(0),
        kind: ReferralKind::parse(r.get(1)).ok_or_else(|| corrupt("referral", "kind"))?,
        patient_id: r.get(2),
        service_id: r.get(3),
        group_id: r.get(4),
        referrer_user: r.get(5),
        referrer_org: r.get(6),
        status: TaskStatus::parse(r.get(7)).ok_or_else(|| corrupt("referral", "status"))?,
        details: Sealed(r.get(8)),
        safeguarding: r.get(9),
        created_at: r.get(10),
        follow_up_due: r.get(11),
    })
}

async fn add_event(tx: &Tx<'_>, e: &ReferralEvent) -> Result<()> {
    tx.execute(
        "INSERT INTO referral_events (referral_id, at, actor, status, note) VALUES ($1, $2, $3, $4, $5)",
        &[&e.referral_id, &e.at, &e.actor, &e.status.code(), &e.note],
    )
    .await?;
    Ok(())
}

type Tx<'a> = deadpool_postgres::Transaction<'a>;

fn outcome(code: Option<&str>, reason: Option<&str>) -> Result<Option<Outcome>> {
    code.map(|c| Outcome::parse(c, reason).map_err(|e| corrupt("follow-up", &e.to_string()))).transpose()
}

/// A follow-up is dropped when its referral is declined or cancelled: nobody went.
const STILL_OPEN: &str = "NOT EXISTS (SELECT 1 FROM referrals r WHERE r.id = follow_ups.referral_id AND r.status IN ('rejected', 'cancelled'))";

const FOLLOW_UP_COLUMNS: &str = "referral_id, due_at, assignee, reminded_at, escalated_at, outcome, outcome_reason,
    outcome_at, outcome_by, attendance, attendance_reason, attendance_at";

fn follow_up_from(r: &Row) -> Result<FollowUp> {
    Ok(FollowUp {
        referral_id: r.get(0),
        due_at: r.get(1),
        assignee: r.get(2),
        reminded_at: r.get(3),
        escalated_at: r.get(4),
        outcome: outcome(r.get(5), r.get(6))?,
        outcome_at: r.get(7),
        outcome_by: r.get(8),
        attendance: outcome(r.get(9), r.get(10))?,
        attendance_at: r.get(11),
    })
}

const MEASURE_COLUMNS: &str = "id, referral_id, patient_id, instrument, stage, answers, taken_at, recorded_by";

fn measure_from(r: &Row) -> Result<MeasureRecord> {
    let answers: Vec<i16> = r.get(5);
    Ok(MeasureRecord {
        id: r.get(0),
        referral_id: r.get(1),
        patient_id: r.get(2),
        instrument: r.get(3),
        stage: Stage::parse(r.get(4)).ok_or_else(|| corrupt("measure", "stage"))?,
        answers: answers
            .into_iter()
            .map(|a| u8::try_from(a).map_err(|_| corrupt("measure", "answers")))
            .collect::<Result<_>>()?,
        taken_at: r.get(6),
        recorded_by: r.get(7),
    })
}

async fn add_measure(tx: &Tx<'_>, m: &MeasureRecord) -> Result<()> {
    let answers: Vec<i16> = m.answers.iter().map(|a| i16::from(*a)).collect();
    tx.execute(
        &format!("INSERT INTO measures ({MEASURE_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"),
        &[
            &m.id,
            &m.referral_id,
            &m.patient_id,
            &m.instrument,
            &m.stage.as_str(),
            &answers,
            &m.taken_at,
            &m.recorded_by,
        ],
    )
    .await?;
    Ok(())
}

async fn insert_referral(tx: &Tx<'_>, row: &NewReferralRows) -> Result<()> {
    let r = &row.referral;
    tx.execute(
        &format!(
            "INSERT INTO referrals ({REFERRAL_COLUMNS}, updated_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $11)"
        ),
        &[
            &r.id,
            &r.kind.as_str(),
            &r.patient_id,
            &r.service_id,
            &r.group_id,
            &r.referrer_user,
            &r.referrer_org,
            &r.status.code(),
            &r.details.0,
            &r.safeguarding,
            &r.created_at,
            &r.follow_up_due,
        ],
    )
    .await
    .map_err(|e| conflict(e, "the referral names a patient, person or organisation Kith does not have"))?;
    add_event(tx, &row.first).await?;
    if let Some(f) = &row.follow_up {
        tx.execute(
            "INSERT INTO follow_ups (referral_id, practice_id, due_at, assignee, reminded_at, escalated_at, outcome,
                 outcome_reason, outcome_at, outcome_by, attendance, attendance_reason, attendance_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)",
            &[
                &f.referral_id,
                &r.referrer_org,
                &f.due_at,
                &f.assignee,
                &f.reminded_at,
                &f.escalated_at,
                &f.outcome.map(Outcome::code),
                &f.outcome.and_then(Outcome::reason).map(|r| r.code()),
                &f.outcome_at,
                &f.outcome_by,
                &f.attendance.map(Outcome::code),
                &f.attendance.and_then(Outcome::reason).map(|r| r.code()),
                &f.attendance_at,
            ],
        )
        .await
        .map_err(|e| conflict(e, "the follow-up names a person Kith does not have"))?;
    }
    if let Some(m) = &row.baseline {
        add_measure(tx, m).await?;
    }
    Ok(())
}

/// Moves (or, when `to` is `from`, just touches) a referral if it is still at `from`.
async fn compare_and_move(tx: &Tx<'_>, id: Uuid, from: TaskStatus, to: TaskStatus, at: DateTime<Utc>) -> Result<bool> {
    let moved = tx
        .execute(
            "UPDATE referrals SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
            &[&id, &from.code(), &to.code(), &at],
        )
        .await?;
    Ok(moved == 1)
}

/// The Links measure; see [`ReferralStore::links_counts`].
/// Five counts from column `at` on; SUM over no rows is NULL, which is 0.
fn links_count(r: &Row, at: usize) -> LinksCount {
    let count = |i: usize| u64::try_from(r.get::<_, Option<i64>>(at + i).unwrap_or(0)).unwrap_or(0);
    LinksCount {
        signposts: count(0),
        referrals: count(1),
        followed_up: count(2),
        started: count(3),
        still_attending: count(4),
    }
}

/// The Links counts, per practice and service.
const LINKS_SQL: &str = concat!(
    "SELECT r.referrer_org, r.service_id, ",
    links_counts!(),
    " FROM referrals r LEFT JOIN follow_ups f ON f.referral_id = r.id
      WHERE r.created_at >= $1 AND r.created_at < $2
      GROUP BY r.referrer_org, r.service_id"
);

/// The Links counts for one service.
const SERVICE_LINKS_SQL: &str = concat!(
    "SELECT ",
    links_counts!(),
    " FROM referrals r LEFT JOIN follow_ups f ON f.referral_id = r.id
      WHERE r.service_id = $1 AND r.created_at >= $2 AND r.created_at < $3"
);

#[async_trait]
impl ReferralStore for PostgresStore {
    async fn put_patient(&self, p: PatientRecord, also: Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            &format!("INSERT INTO patients ({PATIENT_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"),
            &[
                &p.id,
                &p.organisation_id,
                &p.nhs_number_index,
                &p.local_id_index,
                &p.details.0,
                &p.contact_method.as_str(),
                &p.language,
                &p.deprivation_decile.map(i16::from),
                &p.neighbourhood,
                &p.created_at,
            ],
        )
        .await
        .map_err(|e| conflict(e, "this practice already has a patient with that NHS number or local id"))?;
        write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn patient(&self, id: Uuid) -> Result<Option<PatientRecord>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(patient_from).transpose()
    }

    async fn patient_by_nhs_index(&self, organisation_id: Uuid, index: &str) -> Result<Option<PatientRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                &format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE organisation_id = $1 AND nhs_number_index = $2"),
                &[&organisation_id, &index],
            )
            .await?;
        row.as_ref().map(patient_from).transpose()
    }

    async fn create_referrals(&self, rows: Vec<NewReferralRows>, also: Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        for row in &rows {
            insert_referral(&tx, row).await?;
        }
        write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn referral(&self, id: Uuid) -> Result<Option<ReferralRecord>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(referral_from).transpose()
    }

    async fn referrals_for_group(&self, group_id: Uuid, limit: u32) -> Result<Vec<ReferralRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE group_id = $1 AND kind = 'referral'
                     ORDER BY created_at DESC, id LIMIT $2"
                ),
                &[&group_id, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(referral_from).collect()
    }

    async fn referrals_for_patient(&self, patient_id: Uuid) -> Result<Vec<ReferralRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {REFERRAL_COLUMNS} FROM referrals WHERE patient_id = $1 ORDER BY created_at DESC, id"),
                &[&patient_id],
            )
            .await?;
        rows.iter().map(referral_from).collect()
    }

    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent, also: Alongside) -> Result<bool> {
        from.transition(event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !compare_and_move(&tx, id, from, event.status, event.at).await? {
            return Ok(false);
        }
        add_event(&tx, &event).await?;
        write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn reroute_referral(
        &self,
        id: Uuid,
        from: TaskStatus,
        event: ReferralEvent,
        new: NewReferralRows,
        also: Alongside,
    ) -> Result<bool> {
        from.transition(event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !compare_and_move(&tx, id, from, event.status, event.at).await? {
            return Ok(false);
        }
        add_event(&tx, &event).await?;
        insert_referral(&tx, &new).await?;
        write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn search_referrals(&self, q: &ReferralQuery) -> Result<Vec<ReferralRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {REFERRAL_COLUMNS} FROM referrals
                     WHERE (referrer_org = ANY($1)
                            OR (group_id = ANY($1) AND kind = 'referral' AND status NOT IN ('rejected', 'cancelled')))
                       AND ($2::uuid IS NULL OR patient_id = $2) AND ($3::text IS NULL OR status = $3)
                       AND ($4::text IS NULL OR kind = $4)
                       AND ($5::timestamptz IS NULL OR created_at >= $5) AND ($6::timestamptz IS NULL OR created_at < $6)
                     ORDER BY created_at DESC, id LIMIT $7 OFFSET $8"
                ),
                &[
                    &q.visible_to,
                    &q.patient,
                    &q.status.map(TaskStatus::code),
                    &q.kind.map(ReferralKind::as_str),
                    &q.from,
                    &q.before,
                    &i64::from(q.limit),
                    &i64::from(q.offset),
                ],
            )
            .await?;
        rows.iter().map(referral_from).collect()
    }

    async fn follow_up(&self, referral_id: Uuid) -> Result<Option<FollowUp>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(&format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE referral_id = $1"), &[&referral_id])
            .await?;
        row.as_ref().map(follow_up_from).transpose()
    }

    async fn open_follow_ups(&self, practice: Uuid, limit: u32) -> Result<Vec<FollowUp>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE practice_id = $1 AND outcome IS NULL AND {STILL_OPEN}
                     ORDER BY due_at, referral_id LIMIT $2"
                ),
                &[&practice, &i64::from(limit)],
            )
            .await?;
        rows.iter().map(follow_up_from).collect()
    }

    async fn reminders_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(FollowUp, Reminder)>> {
        let overdue_before = now - chrono::Duration::days(FollowUp::ESCALATE_AFTER_DAYS);
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!(
                    "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE outcome IS NULL AND {STILL_OPEN} AND due_at <= $1
                       AND (reminded_at IS NULL OR (escalated_at IS NULL AND due_at <= $2))
                     ORDER BY due_at, referral_id LIMIT $3"
                ),
                &[&now, &overdue_before, &i64::from(limit)],
            )
            .await?;
        rows.iter()
            .map(|r| {
                let f = follow_up_from(r)?;
                let which = if f.reminded_at.is_none() { Reminder::Due } else { Reminder::Overdue };
                Ok((f, which))
            })
            .collect()
    }

    async fn mark_reminded(&self, referral_id: Uuid, which: Reminder, at: DateTime<Utc>) -> Result<bool> {
        let client = self.pool.get().await?;
        let sql = match which {
            Reminder::Due => "UPDATE follow_ups SET reminded_at = $2 WHERE referral_id = $1 AND reminded_at IS NULL",
            Reminder::Overdue => {
                "UPDATE follow_ups SET escalated_at = $2 WHERE referral_id = $1 AND escalated_at IS NULL"
            }
        };
        Ok(client.execute(sql, &[&referral_id, &at]).await? == 1)
    }

    async fn record_outcome(&self, w: OutcomeWrite, also: Alongside) -> Result<bool> {
        if w.event.status != w.from {
            w.from.transition(w.event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        }
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if !compare_and_move(&tx, w.referral_id, w.from, w.event.status, w.event.at).await? {
            return Ok(false);
        }
        let reason = w.outcome.reason().map(|r| r.code());
        let changed = if w.by_group {
            tx.execute(
                "UPDATE follow_ups SET attendance = $2, attendance_reason = $3, attendance_at = $4 WHERE referral_id = $1",
                &[&w.referral_id, &w.outcome.code(), &reason, &w.event.at],
            )
            .await?
        } else {
            tx.execute(
                "UPDATE follow_ups SET outcome = $2, outcome_reason = $3, outcome_at = $4, outcome_by = $5
                 WHERE referral_id = $1 AND outcome IS NULL",
                &[&w.referral_id, &w.outcome.code(), &reason, &w.event.at, &w.event.actor],
            )
            .await?
        };
        if changed == 0 {
            // Dropping the transaction rolls back the touch above: nothing is half-written.
            return Err(StoreError::Conflict("this referral has no open follow-up".into()));
        }
        add_event(&tx, &w.event).await?;
        if let Some(m) = &w.measure {
            add_measure(&tx, m).await?;
        }
        write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(true)
    }

    async fn measures(&self, referral_id: Uuid) -> Result<Vec<MeasureRecord>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("SELECT {MEASURE_COLUMNS} FROM measures WHERE referral_id = $1 ORDER BY taken_at, id"),
                &[&referral_id],
            )
            .await?;
        rows.iter().map(measure_from).collect()
    }

    async fn measure(&self, id: Uuid) -> Result<Option<MeasureRecord>> {
        let client = self.pool.get().await?;
        let row = client.query_opt(&format!("SELECT {MEASURE_COLUMNS} FROM measures WHERE id = $1"), &[&id]).await?;
        row.as_ref().map(measure_from).transpose()
    }

    async fn links_counts(&self, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<Vec<LinksRow>> {
        let client = self.pool.get().await?;
        let rows = client.query(LINKS_SQL, &[&from, &before]).await?;
        Ok(rows.iter().map(|r| LinksRow { practice: r.get(0), service: r.get(1), count: links_count(r, 2) }).collect())
    }

    async fn links_for_service(&self, service: Uuid, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<LinksCount> {
        let client = self.pool.get().await?;
        let row = client.query_one(SERVICE_LINKS_SQL, &[&service, &from, &before]).await?;
        Ok(links_count(&row, 0))
    }

    async fn timeline(&self, referral_id: Uuid) -> Result<Vec<ReferralEvent>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, referral_id, at, actor, status, note FROM referral_events WHERE referral_id = $1 ORDER BY seq",
                &[&referral_id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(ReferralEvent {
                    seq: r.get(0),
                    referral_id: r.get(1),
                    at: r.get(2),
                    actor: r.get(3),
                    status: TaskStatus::parse(r.get(4)).ok_or_else(|| corrupt("referral event", "status"))?,
                    note: r.get(5),
                })
            })
            .collect()
    }

    async fn service_names(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id, name FROM services WHERE id = ANY($1)", &[&ids]).await?;
        Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
    }
}
