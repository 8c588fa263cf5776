//! Patients and referrals on SQLite.

use super::SqliteStore;
use super::outbox::write_alongside;
use crate::doc::{parse_ts, ts};
use crate::referrals::{NewReferralRows, OutcomeWrite, ReferralQuery, ReferralStore, links_counts};
use crate::{Alongside, Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::Sealed;
use kith_domain::referral::{
    ContactMethod, FollowUp, LinksCount, LinksRow, MeasureRecord, Outcome, PatientRecord, ReferralEvent, ReferralKind,
    ReferralRecord, Reminder, Stage, TaskStatus,
};
use rusqlite::{Connection, Row, Transaction, params};
use uuid::Uuid;

fn corrupt(what: &'static str, reason: &str) -> StoreError {
    StoreError::Corrupt { what, id: "(hidden)".into(), reason: reason.into() }
}

fn uuid(what: &'static str, s: &str) -> Result<Uuid> {
    s.parse().map_err(|_| corrupt(what, "bad id"))
}

const PATIENT_COLUMNS: &str =
    "id, organisation_id, nhs_number_index, local_id_index, details, contact_method, language,
    deprivation_decile, neighbourhood, created_at";

fn patient_from(r: &Row<'_>) -> Result<PatientRecord> {
    Ok(PatientRecord {
        id: uuid("patient", &r.get::<_, String>(0)?)?,
        organisation_id: uuid("patient", &r.get::<_, String>(1)?)?,
        nhs_number_index: r.get(2)?,
        local_id_index: r.get(3)?,
        details: Sealed(r.get(4)?),
        contact_method: ContactMethod::parse(&r.get::<_, String>(5)?)
            .ok_or_else(|| corrupt("patient", "contact method"))?,
        language: r.get(6)?,
        deprivation_decile: r.get::<_, Option<i64>>(7)?.and_then(|d| u8::try_from(d).ok()),
        neighbourhood: r.get(8)?,
        created_at: parse_ts(&r.get::<_, String>(9)?)?,
    })
}

const REFERRAL_COLUMNS: &str =
    "id, kind, patient_id, service_id, group_id, referrer_user, referrer_org, status, details,
    safeguarding, created_at, follow_up_due";

fn referral_from(r: &Row<'_>) -> Result<ReferralRecord> {
    Ok(ReferralRecord {
        id: uuid("referral", &r.get::<_, String>(0)?)?,
        kind: ReferralKind::parse(&r.get::<_, String>(1)?).ok_or_else(|| corrupt("referral", "kind"))?,
        patient_id: uuid("referral", &r.get::<_, String>(2)?)?,
        service_id: uuid("referral", &r.get::<_, String>(3)?)?,
        group_id: r.get::<_, Option<String>>(4)?.map(|g| uuid("referral", &g)).transpose()?,
        referrer_user: uuid("referral", &r.get::<_, String>(5)?)?,
        referrer_org: uuid("referral", &r.get::<_, String>(6)?)?,
        status: TaskStatus::parse(&r.get::<_, String>(7)?).ok_or_else(|| corrupt("referral", "status"))?,
        details: Sealed(r.get(8)?),
        safeguarding: r.get::<_, i64>(9)? != 0,
        created_at: parse_ts(&r.get::<_, String>(10)?)?,
        follow_up_due: r.get::<_, Option<String>>(11)?.as_deref().map(parse_ts).transpose()?,
    })
}

fn referrals(conn: &Connection, sql: &str, param: &str, limit: i64) -> Result<Vec<ReferralRecord>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = stmt.query(params![param, limit])?;
    let mut out = Vec::new();
    while let Some(r) = rows.next()? {
        out.push(referral_from(r)?);
    }
    Ok(out)
}

fn add_event(tx: &Transaction<'_>, e: &ReferralEvent) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO referral_events (referral_id, at, actor, status, note) VALUES (?1, ?2, ?3, ?4, ?5)",
    )?
    .execute(params![
        e.referral_id.to_string(),
        ts(e.at),
        e.actor.map(|a| a.to_string()),
        e.status.code(),
        e.note
    ])?;
    Ok(())
}

fn conflict(e: rusqlite::Error, message: &str) -> StoreError {
    match &e {
        rusqlite::Error::SqliteFailure(f, _)
            if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE
                || f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
        {
            StoreError::Conflict(message.into())
        }
        _ => e.into(),
    }
}

/// The Links measure: the follow-up's outcome where there is one, otherwise the group's
/// report; the group's "still attending" counts only once the follow-up is due.
/// The Links counts, per practice and service.
const LINKS_SQL: &str = concat!(
    "SELECT r.referrer_org, r.service_id, ",
    links_counts!(),
    " FROM referrals r LEFT JOIN follow_ups f ON f.referral_id = r.id
      WHERE r.created_at >= ?1 AND r.created_at < ?2
      GROUP BY r.referrer_org, r.service_id"
);

/// The Links counts for one service.
const SERVICE_LINKS_SQL: &str = concat!(
    "SELECT ",
    links_counts!(),
    " FROM referrals r LEFT JOIN follow_ups f ON f.referral_id = r.id
      WHERE r.service_id = ?1 AND r.created_at >= ?2 AND r.created_at < ?3"
);

/// Five counts from column `at` on; SUM over no rows is NULL, which is 0.
fn links_count(r: &Row<'_>, at: usize) -> Result<LinksCount> {
    let count =
        |i: usize| -> Result<u64> { Ok(u64::try_from(r.get::<_, Option<i64>>(at + i)?.unwrap_or(0)).unwrap_or(0)) };
    Ok(LinksCount {
        signposts: count(0)?,
        referrals: count(1)?,
        followed_up: count(2)?,
        started: count(3)?,
        still_attending: count(4)?,
    })
}

fn opt_ts(s: Option<String>) -> Result<Option<DateTime<Utc>>> {
    s.map(|s| parse_ts(&s)).transpose()
}

fn outcome(code: Option<String>, reason: Option<&str>) -> Result<Option<Outcome>> {
    code.map(|c| Outcome::parse(&c, reason).map_err(|e| corrupt("follow-up", &e.to_string()))).transpose()
}

/// A follow-up is dropped when its referral is declined or cancelled: nobody went.
const STILL_OPEN: &str = "NOT EXISTS (SELECT 1 FROM referrals r WHERE r.id = follow_ups.referral_id AND r.status IN ('rejected', 'cancelled'))";

const FOLLOW_UP_COLUMNS: &str = "referral_id, due_at, assignee, reminded_at, escalated_at, outcome, outcome_reason,
    outcome_at, outcome_by, attendance, attendance_reason, attendance_at";

fn follow_up_from(r: &Row<'_>) -> Result<FollowUp> {
    Ok(FollowUp {
        referral_id: uuid("follow-up", &r.get::<_, String>(0)?)?,
        due_at: parse_ts(&r.get::<_, String>(1)?)?,
        assignee: uuid("follow-up", &r.get::<_, String>(2)?)?,
        reminded_at: opt_ts(r.get(3)?)?,
        escalated_at: opt_ts(r.get(4)?)?,
        outcome: outcome(r.get(5)?, r.get::<_, Option<String>>(6)?.as_deref())?,
        outcome_at: opt_ts(r.get(7)?)?,
        outcome_by: r.get::<_, Option<String>>(8)?.map(|u| uuid("follow-up", &u)).transpose()?,
        attendance: outcome(r.get(9)?, r.get::<_, Option<String>>(10)?.as_deref())?,
        attendance_at: opt_ts(r.get(11)?)?,
    })
}

fn measure_from(r: &Row<'_>) -> Result<MeasureRecord> {
    let answers: Vec<u8> = serde_json::from_str(&r.get::<_, String>(5)?).map_err(|_| corrupt("measure", "answers"))?;
    Ok(MeasureRecord {
        id: uuid("measure", &r.get::<_, String>(0)?)?,
        referral_id: uuid("measure", &r.get::<_, String>(1)?)?,
        patient_id: uuid("measure", &r.get::<_, String>(2)?)?,
        instrument: r.get(3)?,
        stage: Stage::parse(&r.get::<_, String>(4)?).ok_or_else(|| corrupt("measure", "stage"))?,
        answers,
        taken_at: parse_ts(&r.get::<_, String>(6)?)?,
        recorded_by: uuid("measure", &r.get::<_, String>(7)?)?,
    })
}

const MEASURE_COLUMNS: &str = "id, referral_id, patient_id, instrument, stage, answers, taken_at, recorded_by";

fn add_measure(tx: &Transaction<'_>, m: &MeasureRecord) -> Result<()> {
    let answers = serde_json::to_string(&m.answers).map_err(|_| corrupt("measure", "answers"))?;
    tx.prepare_cached(&format!("INSERT INTO measures ({MEASURE_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)"))?
        .execute(params![
            m.id.to_string(),
            m.referral_id.to_string(),
            m.patient_id.to_string(),
            m.instrument,
            m.stage.as_str(),
            answers,
            ts(m.taken_at),
            m.recorded_by.to_string()
        ])?;
    Ok(())
}

fn insert_referral(tx: &Transaction<'_>, row: &NewReferralRows) -> Result<()> {
    let r = &row.referral;
    tx.prepare_cached(&format!(
        "INSERT INTO referrals ({REFERRAL_COLUMNS}, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)"
    ))?
    .execute(params![
        r.id.to_string(),
        r.kind.as_str(),
        r.patient_id.to_string(),
        r.service_id.to_string(),
        r.group_id.map(|g| g.to_string()),
        r.referrer_user.to_string(),
        r.referrer_org.to_string(),
        r.status.code(),
        r.details.0,
        i64::from(r.safeguarding),
        ts(r.created_at),
        r.follow_up_due.map(ts)
    ])
    .map_err(|e| conflict(e, "the referral names a patient, person or organisation Kith does not have"))?;
    add_event(tx, &row.first)?;
    if let Some(f) = &row.follow_up {
        tx.prepare_cached(
            "INSERT INTO follow_ups (referral_id, practice_id, due_at, assignee, reminded_at, escalated_at, outcome,
                 outcome_reason, outcome_at, outcome_by, attendance, attendance_reason, attendance_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)",
        )?
        .execute(params![
            f.referral_id.to_string(),
            r.referrer_org.to_string(),
            ts(f.due_at),
            f.assignee.to_string(),
            f.reminded_at.map(ts),
            f.escalated_at.map(ts),
            f.outcome.map(Outcome::code),
            f.outcome.and_then(Outcome::reason).map(|r| r.code()),
            f.outcome_at.map(ts),
            f.outcome_by.map(|u| u.to_string()),
            f.attendance.map(Outcome::code),
            f.attendance.and_then(Outcome::reason).map(|r| r.code()),
            f.attendance_at.map(ts)
        ])
        .map_err(|e| conflict(e, "the follow-up names a person Kith does not have"))?;
    }
    if let Some(m) = &row.baseline {
        add_measure(tx, m)?;
    }
    Ok(())
}

/// Moves (or, when `to` is `from`, just touches) a referral if it is still at `from`.
fn compare_and_move(
    tx: &Transaction<'_>,
    id: Uuid,
    from: TaskStatus,
    to: TaskStatus,
    at: DateTime<Utc>,
) -> Result<bool> {
    let moved = tx
        .prepare_cached("UPDATE referrals SET status = ?3, updated_at = ?4 WHERE id = ?1 AND status = ?2")?
        .execute(params![id.to_string(), from.code(), to.code(), ts(at)])?;
    Ok(moved == 1)
}

#[async_trait]
impl ReferralStore for SqliteStore {
    async fn put_patient(&self, p: PatientRecord, also: Alongside) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                &format!("INSERT INTO patients ({PATIENT_COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
                params![
                    p.id.to_string(),
                    p.organisation_id.to_string(),
                    p.nhs_number_index,
                    p.local_id_index,
                    p.details.0,
                    p.contact_method.as_str(),
                    p.language,
                    p.deprivation_decile.map(i64::from),
                    p.neighbourhood,
                    ts(p.created_at)
                ],
            )
            .map_err(|e| conflict(e, "this practice already has a patient with that NHS number or local id"))?;
            write_alongside(tx, &also)
        })
        .await
    }

    async fn patient(&self, id: Uuid) -> Result<Option<PatientRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {PATIENT_COLUMNS} FROM patients WHERE id = ?1"))?;
            let mut rows = stmt.query([id.to_string()])?;
            rows.next()?.map(patient_from).transpose()
        })
        .await
    }

    async fn patient_by_nhs_index(&self, organisation_id: Uuid, index: &str) -> Result<Option<PatientRecord>> {
        let index = index.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {PATIENT_COLUMNS} FROM patients WHERE organisation_id = ?1 AND nhs_number_index = ?2"
            ))?;
            let mut rows = stmt.query(params![organisation_id.to_string(), index])?;
            rows.next()?.map(patient_from).transpose()
        })
        .await
    }

    async fn create_referrals(&self, rows: Vec<NewReferralRows>, also: Alongside) -> Result<()> {
        self.write(move |tx, _| {
            for row in &rows {
                insert_referral(tx, row)?;
            }
            write_alongside(tx, &also)
        })
        .await
    }

    async fn referral(&self, id: Uuid) -> Result<Option<ReferralRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {REFERRAL_COLUMNS} FROM referrals WHERE id = ?1"))?;
            let mut rows = stmt.query([id.to_string()])?;
            rows.next()?.map(referral_from).transpose()
        })
        .await
    }

    async fn referrals_for_group(&self, group_id: Uuid, limit: u32) -> Result<Vec<ReferralRecord>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE group_id = ?1 AND kind = 'referral'
                 ORDER BY created_at DESC, id LIMIT ?2"
            );
            referrals(conn, &sql, &group_id.to_string(), i64::from(limit))
        })
        .await
    }

    async fn referrals_for_patient(&self, patient_id: Uuid) -> Result<Vec<ReferralRecord>> {
        self.read(move |conn| {
            let sql = format!(
                "SELECT {REFERRAL_COLUMNS} FROM referrals WHERE patient_id = ?1 ORDER BY created_at DESC, id LIMIT ?2"
            );
            referrals(conn, &sql, &patient_id.to_string(), i64::MAX)
        })
        .await
    }

    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent, also: Alongside) -> Result<bool> {
        from.transition(event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        self.write(move |tx, _| {
            if !compare_and_move(tx, id, from, event.status, event.at)? {
                return Ok(false);
            }
            add_event(tx, &event)?;
            write_alongside(tx, &also)?;
            Ok(true)
        })
        .await
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
        self.write(move |tx, _| {
            if !compare_and_move(tx, id, from, event.status, event.at)? {
                return Ok(false);
            }
            add_event(tx, &event)?;
            insert_referral(tx, &new)?;
            write_alongside(tx, &also)?;
            Ok(true)
        })
        .await
    }

    async fn search_referrals(&self, q: &ReferralQuery) -> Result<Vec<ReferralRecord>> {
        let visible = serde_json::to_string(&q.visible_to.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .map_err(|_| corrupt("query", "organisations"))?;
        let (patient, status, kind) =
            (q.patient.map(|p| p.to_string()), q.status.map(TaskStatus::code), q.kind.map(ReferralKind::as_str));
        let (from, before) = (q.from.map(ts), q.before.map(ts));
        let (limit, offset) = (i64::from(q.limit), i64::from(q.offset));
        self.read(move |conn| {
            let sql = format!(
                "SELECT {REFERRAL_COLUMNS} FROM referrals
                 WHERE (referrer_org IN (SELECT value FROM json_each(?1))
                        OR (group_id IN (SELECT value FROM json_each(?1)) AND kind = 'referral'
                            AND status NOT IN ('rejected', 'cancelled')))
                   AND (?2 IS NULL OR patient_id = ?2) AND (?3 IS NULL OR status = ?3) AND (?4 IS NULL OR kind = ?4)
                   AND (?5 IS NULL OR created_at >= ?5) AND (?6 IS NULL OR created_at < ?6)
                 ORDER BY created_at DESC, id LIMIT ?7 OFFSET ?8"
            );
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt.query(params![visible, patient, status, kind, from, before, limit, offset])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(referral_from(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn follow_up(&self, referral_id: Uuid) -> Result<Option<FollowUp>> {
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached(&format!("SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE referral_id = ?1"))?;
            let mut rows = stmt.query([referral_id.to_string()])?;
            rows.next()?.map(follow_up_from).transpose()
        })
        .await
    }

    async fn open_follow_ups(&self, practice: Uuid, limit: u32) -> Result<Vec<FollowUp>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE practice_id = ?1 AND outcome IS NULL AND {STILL_OPEN}
                 ORDER BY due_at, referral_id LIMIT ?2"
            ))?;
            let mut rows = stmt.query(params![practice.to_string(), i64::from(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(follow_up_from(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn reminders_due(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<(FollowUp, Reminder)>> {
        let overdue_before = now - chrono::Duration::days(FollowUp::ESCALATE_AFTER_DAYS);
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {FOLLOW_UP_COLUMNS} FROM follow_ups WHERE outcome IS NULL AND {STILL_OPEN} AND due_at <= ?1
                   AND (reminded_at IS NULL OR (escalated_at IS NULL AND due_at <= ?2))
                 ORDER BY due_at, referral_id LIMIT ?3"
            ))?;
            let mut rows = stmt.query(params![ts(now), ts(overdue_before), i64::from(limit)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                let f = follow_up_from(r)?;
                let which = if f.reminded_at.is_none() { Reminder::Due } else { Reminder::Overdue };
                out.push((f, which));
            }
            Ok(out)
        })
        .await
    }

    async fn mark_reminded(&self, referral_id: Uuid, which: Reminder, at: DateTime<Utc>) -> Result<bool> {
        self.write(move |tx, _| {
            let sql = match which {
                Reminder::Due => {
                    "UPDATE follow_ups SET reminded_at = ?2 WHERE referral_id = ?1 AND reminded_at IS NULL"
                }
                Reminder::Overdue => {
                    "UPDATE follow_ups SET escalated_at = ?2 WHERE referral_id = ?1 AND escalated_at IS NULL"
                }
            };
            Ok(tx.execute(sql, params![referral_id.to_string(), ts(at)])? == 1)
        })
        .await
    }

    async fn record_outcome(&self, w: OutcomeWrite, also: Alongside) -> Result<bool> {
        if w.event.status != w.from {
            w.from.transition(w.event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        }
        self.write(move |tx, _| {
            if !compare_and_move(tx, w.referral_id, w.from, w.event.status, w.event.at)? {
                return Ok(false);
            }
            let reason = w.outcome.reason().map(|r| r.code());
            let changed = if w.by_group {
                tx.execute(
                    "UPDATE follow_ups SET attendance = ?2, attendance_reason = ?3, attendance_at = ?4 WHERE referral_id = ?1",
                    params![w.referral_id.to_string(), w.outcome.code(), reason, ts(w.event.at)],
                )?
            } else {
                tx.execute(
                    "UPDATE follow_ups SET outcome = ?2, outcome_reason = ?3, outcome_at = ?4, outcome_by = ?5
                     WHERE referral_id = ?1 AND outcome IS NULL",
                    params![
                        w.referral_id.to_string(),
                        w.outcome.code(),
                        reason,
                        ts(w.event.at),
                        w.event.actor.map(|a| a.to_string())
                    ],
                )?
            };
            if changed == 0 {
                // Rolls back the touch above: nothing is half-written.
                return Err(StoreError::Conflict("this referral has no open follow-up".into()));
            }
            add_event(tx, &w.event)?;
            if let Some(m) = &w.measure {
                add_measure(tx, m)?;
            }
            write_alongside(tx, &also)?;
            Ok(true)
        })
        .await
    }

    async fn measures(&self, referral_id: Uuid) -> Result<Vec<MeasureRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!(
                "SELECT {MEASURE_COLUMNS} FROM measures WHERE referral_id = ?1 ORDER BY taken_at, id"
            ))?;
            let mut rows = stmt.query([referral_id.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(measure_from(r)?);
            }
            Ok(out)
        })
        .await
    }

    async fn measure(&self, id: Uuid) -> Result<Option<MeasureRecord>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(&format!("SELECT {MEASURE_COLUMNS} FROM measures WHERE id = ?1"))?;
            let mut rows = stmt.query([id.to_string()])?;
            rows.next()?.map(measure_from).transpose()
        })
        .await
    }

    async fn links_counts(&self, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<Vec<LinksRow>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(LINKS_SQL)?;
            let mut rows = stmt.query(params![ts(from), ts(before)])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(LinksRow {
                    practice: uuid("links", &r.get::<_, String>(0)?)?,
                    service: uuid("links", &r.get::<_, String>(1)?)?,
                    count: links_count(r, 2)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn links_for_service(&self, service: Uuid, from: DateTime<Utc>, before: DateTime<Utc>) -> Result<LinksCount> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(SERVICE_LINKS_SQL)?;
            let mut rows = stmt.query(params![service.to_string(), ts(from), ts(before)])?;
            match rows.next()? {
                Some(r) => links_count(r, 0),
                None => Ok(LinksCount::default()),
            }
        })
        .await
    }

    async fn timeline(&self, referral_id: Uuid) -> Result<Vec<ReferralEvent>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, referral_id, at, actor, status, note FROM referral_events WHERE referral_id = ?1 ORDER BY seq",
            )?;
            let mut rows = stmt.query([referral_id.to_string()])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push(ReferralEvent {
                    seq: r.get(0)?,
                    referral_id: uuid("referral event", &r.get::<_, String>(1)?)?,
                    at: parse_ts(&r.get::<_, String>(2)?)?,
                    actor: r.get::<_, Option<String>>(3)?.map(|a| uuid("referral event", &a)).transpose()?,
                    status: TaskStatus::parse(&r.get::<_, String>(4)?).ok_or_else(|| corrupt("referral event", "status"))?,
                    note: r.get(5)?,
                });
            }
            Ok(out)
        })
        .await
    }

    async fn service_names(&self, ids: &[Uuid]) -> Result<Vec<(Uuid, String)>> {
        let ids = serde_json::to_string(&ids.iter().map(Uuid::to_string).collect::<Vec<_>>())
            .map_err(|_| corrupt("query", "ids"))?;
        self.read(move |conn| {
            let mut stmt =
                conn.prepare_cached("SELECT id, name FROM services WHERE id IN (SELECT value FROM json_each(?1))")?;
            let mut rows = stmt.query([ids])?;
            let mut out = Vec::new();
            while let Some(r) = rows.next()? {
                out.push((uuid("service", &r.get::<_, String>(0)?)?, r.get(1)?));
            }
            Ok(out)
        })
        .await
    }
}
