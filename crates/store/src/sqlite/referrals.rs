//! Patients and referrals on SQLite.

use super::SqliteStore;
use crate::doc::{parse_ts, ts};
use crate::referrals::ReferralStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use kith_domain::account::Sealed;
use kith_domain::referral::{ContactMethod, PatientRecord, ReferralEvent, ReferralKind, ReferralRecord, TaskStatus};
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

#[async_trait]
impl ReferralStore for SqliteStore {
    async fn put_patient(&self, p: PatientRecord) -> Result<()> {
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
            Ok(())
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

    async fn create_referral(&self, r: ReferralRecord, first: ReferralEvent) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                &format!(
                    "INSERT INTO referrals ({REFERRAL_COLUMNS}, updated_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?11)"
                ),
                params![
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
                ],
            )
            .map_err(|e| conflict(e, "the referral names a patient, person or organisation Kith does not have"))?;
            add_event(tx, &first)?;
            Ok(())
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

    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent) -> Result<bool> {
        from.transition(event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        self.write(move |tx, _| {
            let moved = tx.execute(
                "UPDATE referrals SET status = ?3, updated_at = ?4 WHERE id = ?1 AND status = ?2",
                params![id.to_string(), from.code(), event.status.code(), ts(event.at)],
            )?;
            if moved == 0 {
                return Ok(false);
            }
            add_event(tx, &event)?;
            Ok(true)
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
}
