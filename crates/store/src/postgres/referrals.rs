//! Patients and referrals on PostgreSQL.

use super::PostgresStore;
use crate::referrals::ReferralStore;
use crate::{Result, StoreError};
use async_trait::async_trait;
use kith_domain::account::Sealed;
use kith_domain::referral::{ContactMethod, PatientRecord, ReferralEvent, ReferralKind, ReferralRecord, TaskStatus};
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

async fn add_event(tx: &deadpool_postgres::Transaction<'_>, e: &ReferralEvent) -> Result<()> {
    tx.execute(
        "INSERT INTO referral_events (referral_id, at, actor, status, note) VALUES ($1, $2, $3, $4, $5)",
        &[&e.referral_id, &e.at, &e.actor, &e.status.code(), &e.note],
    )
    .await?;
    Ok(())
}

#[async_trait]
impl ReferralStore for PostgresStore {
    async fn put_patient(&self, p: PatientRecord) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
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

    async fn create_referral(&self, r: ReferralRecord, first: ReferralEvent) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
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
        add_event(&tx, &first).await?;
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

    async fn move_referral(&self, id: Uuid, from: TaskStatus, event: ReferralEvent) -> Result<bool> {
        from.transition(event.status).map_err(|e| StoreError::Conflict(e.to_string()))?;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let moved = tx
            .execute(
                "UPDATE referrals SET status = $3, updated_at = $4 WHERE id = $1 AND status = $2",
                &[&id, &from.code(), &event.status.code(), &event.at],
            )
            .await?;
        if moved == 0 {
            return Ok(false);
        }
        add_event(&tx, &event).await?;
        tx.commit().await?;
        Ok(true)
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
}
