//! Problem reports on SQLite.

use super::SqliteStore;
use crate::doc::{parse_ts, ts};
use crate::{Result, StoreError};
use kith_domain::report::{ProblemKind, ProblemReport, ReportStatus};
use rusqlite::params;
use uuid::Uuid;

fn corrupt(id: &str, reason: &str) -> StoreError {
    StoreError::Corrupt { what: "problem report", id: id.to_owned(), reason: reason.to_owned() }
}

impl SqliteStore {
    pub(crate) async fn add_problem_report_impl(&self, report: ProblemReport) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO problem_reports (id, service_id, kind, details, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    report.id.to_string(),
                    report.service_id.to_string(),
                    report.kind.as_str(),
                    report.details,
                    report.status.as_str(),
                    ts(report.created_at)
                ],
            )?;
            Ok(())
        })
        .await
    }

    pub(crate) async fn problem_reports_impl(
        &self,
        service_id: Option<Uuid>,
        limit: u32,
    ) -> Result<Vec<ProblemReport>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, service_id, kind, details, status, created_at FROM problem_reports
                 WHERE ?1 IS NULL OR service_id = ?1 ORDER BY created_at DESC, id LIMIT ?2",
            )?;
            let rows = stmt.query_map(params![service_id.map(|id| id.to_string()), i64::from(limit)], |r| {
                Ok((
                    r.get::<_, String>(0)?,
                    r.get::<_, String>(1)?,
                    r.get::<_, String>(2)?,
                    r.get::<_, String>(3)?,
                    r.get::<_, String>(4)?,
                    r.get::<_, String>(5)?,
                ))
            })?;
            let mut out = Vec::new();
            for row in rows {
                let (id, service_id, kind, details, status, created_at) = row?;
                out.push(ProblemReport {
                    id: id.parse().map_err(|_| corrupt(&id, "bad id"))?,
                    service_id: service_id.parse().map_err(|_| corrupt(&id, "bad service id"))?,
                    kind: ProblemKind::parse(&kind).ok_or_else(|| corrupt(&id, "unknown kind"))?,
                    details,
                    status: ReportStatus::parse(&status).ok_or_else(|| corrupt(&id, "unknown status"))?,
                    created_at: parse_ts(&created_at)?,
                });
            }
            Ok(out)
        })
        .await
    }
}
