//! Problem reports on PostgreSQL.

use crate::{Result, StoreError};
use deadpool_postgres::Pool;
use kith_domain::report::{ProblemKind, ProblemReport, ReportStatus};
use uuid::Uuid;

pub(super) async fn add(pool: &Pool, report: ProblemReport) -> Result<()> {
    let client = pool.get().await?;
    client
        .execute(
            "INSERT INTO problem_reports (id, service_id, kind, details, status, created_at)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &report.id,
                &report.service_id,
                &report.kind.as_str(),
                &report.details,
                &report.status.as_str(),
                &report.created_at,
            ],
        )
        .await?;
    Ok(())
}

pub(super) async fn list(pool: &Pool, service_id: Option<Uuid>, limit: u32) -> Result<Vec<ProblemReport>> {
    let client = pool.get().await?;
    let rows = client
        .query(
            "SELECT id, service_id, kind, details, status, created_at FROM problem_reports
             WHERE $1::uuid IS NULL OR service_id = $1 ORDER BY created_at DESC, id LIMIT $2",
            &[&service_id, &i64::from(limit)],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            let corrupt = |reason: &str| StoreError::Corrupt {
                what: "problem report",
                id: id.to_string(),
                reason: reason.into(),
            };
            Ok(ProblemReport {
                id,
                service_id: r.get(1),
                kind: ProblemKind::parse(r.get(2)).ok_or_else(|| corrupt("unknown kind"))?,
                details: r.get(3),
                status: ReportStatus::parse(r.get(4)).ok_or_else(|| corrupt("unknown status"))?,
                created_at: r.get(5),
            })
        })
        .collect()
}
