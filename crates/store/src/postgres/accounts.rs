//! Accounts on PostgreSQL.

use super::PostgresStore;
use crate::accounts::{AccountStore, AccountWrite, SealedField};
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::{
    Area, AreaKind, AuditEvent, AuditQuery, Grant, LinkPurpose, LinkUse, MagicLink, OrgKind, Organisation, Role, Scope,
    Sealed, SessionRecord, SessionStage, UserRecord,
};
use tokio_postgres::Row;
use tokio_postgres::error::SqlState;
use uuid::Uuid;

async fn replace_recovery_codes(tx: &tokio_postgres::Transaction<'_>, user_id: Uuid, codes: &[String]) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?;
    tx.execute(
        "INSERT INTO recovery_codes (user_id, code_index) SELECT $1, unnest($2::text[]) ON CONFLICT DO NOTHING",
        &[&user_id, &codes],
    )
    .await?;
    Ok(())
}

fn corrupt(what: &'static str, id: impl std::fmt::Display, reason: &str) -> StoreError {
    StoreError::Corrupt { what, id: id.to_string(), reason: reason.to_owned() }
}

fn conflict_or(e: tokio_postgres::Error, message: impl FnOnce() -> String) -> StoreError {
    match e.code() {
        Some(code) if *code == SqlState::UNIQUE_VIOLATION || *code == SqlState::FOREIGN_KEY_VIOLATION => {
            StoreError::Conflict(message())
        }
        _ => e.into(),
    }
}

const USER_COLUMNS: &str =
    "id, email_index, email, name, password_hash, totp_secret, totp_last_step, disabled, created_at";

async fn users_from(client: &impl tokio_postgres::GenericClient, rows: Vec<Row>) -> Result<Vec<UserRecord>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let grant_rows = client
        .query(
            "SELECT user_id, role, scope_kind, scope_id FROM user_grants WHERE user_id = ANY($1)
             ORDER BY user_id, role, scope_kind, scope_id",
            &[&ids],
        )
        .await?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let id: Uuid = r.get(0);
        let grants = grant_rows
            .iter()
            .filter(|g| g.get::<_, Uuid>(0) == id)
            .map(|g| {
                let role = Role::parse(g.get(1)).ok_or_else(|| corrupt("user", id, "unknown role"))?;
                let scope =
                    Scope::from_parts(g.get(2), g.get(3)).ok_or_else(|| corrupt("user", id, "unknown scope"))?;
                Ok(Grant { role, scope })
            })
            .collect::<Result<Vec<_>>>()?;
        out.push(UserRecord {
            id,
            email_index: r.get(1),
            email: Sealed(r.get(2)),
            name: Sealed(r.get(3)),
            password_hash: r.get(4),
            totp_secret: r.get::<_, Option<String>>(5).map(Sealed),
            totp_last_step: r.get(6),
            grants,
            disabled: r.get(7),
            created_at: r.get(8),
        });
    }
    Ok(out)
}

async fn orgs_from(client: &impl tokio_postgres::GenericClient, rows: Vec<Row>) -> Result<Vec<Organisation>> {
    let ids: Vec<Uuid> = rows.iter().map(|r| r.get(0)).collect();
    let members = client
        .query(
            "SELECT organisation_id, area_id FROM area_members WHERE organisation_id = ANY($1)
             ORDER BY organisation_id, area_id::text COLLATE \"C\"",
            &[&ids],
        )
        .await?;
    rows.iter()
        .map(|r| {
            let id: Uuid = r.get(0);
            Ok(Organisation {
                id,
                kind: OrgKind::parse(r.get(1)).ok_or_else(|| corrupt("organisation", id, "unknown kind"))?,
                name: r.get(2),
                ods_code: r.get(3),
                directory_id: r.get(4),
                areas: members.iter().filter(|m| m.get::<_, Uuid>(0) == id).map(|m| m.get(1)).collect(),
            })
        })
        .collect()
}

fn session_from(r: &Row) -> Result<SessionRecord> {
    let purpose = match (r.get::<_, Option<String>>(3), r.get::<_, Option<Uuid>>(4)) {
        (Some(p), Some(t)) => {
            Some((LinkPurpose::parse(&p).ok_or_else(|| corrupt("session", "(hidden)", "unknown purpose"))?, t))
        }
        _ => None,
    };
    Ok(SessionRecord {
        digest: r.get(0),
        user_id: r.get(1),
        stage: SessionStage::parse(r.get(2)).ok_or_else(|| corrupt("session", "(hidden)", "unknown stage"))?,
        purpose,
        created_at: r.get(5),
        last_seen_at: r.get(6),
        second_factor: r.get(7),
    })
}

#[async_trait]
impl AccountStore for PostgresStore {
    async fn put_area(&self, area: Area) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute(
                "INSERT INTO areas (id, kind, name) VALUES ($1, $2, $3)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name",
                &[&area.id, &area.kind.as_str(), &area.name],
            )
            .await?;
        Ok(())
    }

    async fn areas(&self) -> Result<Vec<Area>> {
        let client = self.pool.get().await?;
        let rows = client.query("SELECT id, kind, name FROM areas ORDER BY name COLLATE \"C\", id", &[]).await?;
        rows.iter()
            .map(|r| {
                let id: Uuid = r.get(0);
                Ok(Area {
                    id,
                    kind: AreaKind::parse(r.get(1)).ok_or_else(|| corrupt("area", id, "unknown kind"))?,
                    name: r.get(2),
                })
            })
            .collect()
    }

    async fn put_organisation(&self, org: Organisation) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO member_organisations (id, kind, name, ods_code, directory_id) VALUES ($1, $2, $3, $4, $5)
             ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                ods_code = excluded.ods_code, directory_id = excluded.directory_id",
            &[&org.id, &org.kind.as_str(), &org.name, &org.ods_code, &org.directory_id],
        )
        .await
        .map_err(|e| {
            conflict_or(e, || {
                format!("another organisation already has the ODS code {}", org.ods_code.as_deref().unwrap_or_default())
            })
        })?;
        tx.execute("DELETE FROM area_members WHERE organisation_id = $1", &[&org.id]).await?;
        for area in &org.areas {
            tx.execute("INSERT INTO area_members (area_id, organisation_id) VALUES ($1, $2)", &[area, &org.id])
                .await
                .map_err(|e| conflict_or(e, || format!("there is no area with id {area}")))?;
        }
        tx.commit().await?;
        Ok(())
    }

    async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>> {
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT id, kind, name, ods_code, directory_id FROM member_organisations WHERE id = $1", &[&id])
            .await?;
        Ok(orgs_from(&**client, rows).await?.pop())
    }

    async fn organisations(&self) -> Result<Vec<Organisation>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, kind, name, ods_code, directory_id FROM member_organisations ORDER BY name COLLATE \"C\", id",
                &[],
            )
            .await?;
        orgs_from(&**client, rows).await
    }

    async fn write_account(&self, write: AccountWrite, also: crate::Alongside) -> Result<u64> {
        let user = &write.user;
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO users (id, email_index, email, name, password_hash, totp_secret, totp_last_step, disabled, created_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (id) DO UPDATE SET email_index = excluded.email_index, email = excluded.email,
                name = excluded.name, password_hash = excluded.password_hash, totp_secret = excluded.totp_secret,
                totp_last_step = excluded.totp_last_step, disabled = excluded.disabled",
            &[
                &user.id,
                &user.email_index,
                &user.email.0,
                &user.name.0,
                &user.password_hash,
                &user.totp_secret.as_ref().map(|s| s.0.as_str()),
                &user.totp_last_step,
                &user.disabled,
                &user.created_at,
            ],
        )
        .await
        .map_err(|e| conflict_or(e, || "another user already has that email address".into()))?;
        tx.execute("DELETE FROM user_grants WHERE user_id = $1", &[&user.id]).await?;
        for g in &user.grants {
            tx.execute(
                "INSERT INTO user_grants (user_id, role, scope_kind, scope_id) VALUES ($1, $2, $3, $4)
                 ON CONFLICT DO NOTHING",
                &[&user.id, &g.role.as_str(), &g.scope.kind(), &g.scope.id()],
            )
            .await?;
        }
        if let Some(codes) = &write.recovery_codes {
            replace_recovery_codes(&tx, user.id, codes).await?;
        }
        let ended = if write.end_sessions {
            tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user.id]).await?
        } else {
            0
        };
        super::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1"), &[&id]).await?;
        Ok(users_from(&**client, rows).await?.pop())
    }

    async fn user_by_email_index(&self, email_index: &str) -> Result<Option<UserRecord>> {
        let client = self.pool.get().await?;
        let rows =
            client.query(&format!("SELECT {USER_COLUMNS} FROM users WHERE email_index = $1"), &[&email_index]).await?;
        Ok(users_from(&**client, rows).await?.pop())
    }

    async fn users(&self) -> Result<Vec<UserRecord>> {
        let client = self.pool.get().await?;
        let rows = client.query(&format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"), &[]).await?;
        users_from(&**client, rows).await
    }

    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute(
                "UPDATE users SET totp_last_step = $2 WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2)",
                &[&user_id, &step],
            )
            .await?;
        Ok(n == 1)
    }

    async fn set_recovery_codes(&self, user_id: Uuid, code_indexes: Vec<String>) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        replace_recovery_codes(&tx, user_id, &code_indexes).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_recovery_code(&self, user_id: Uuid, code_index: &str) -> Result<bool> {
        let client = self.pool.get().await?;
        let n = client
            .execute("DELETE FROM recovery_codes WHERE user_id = $1 AND code_index = $2", &[&user_id, &code_index])
            .await?;
        Ok(n == 1)
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32> {
        let client = self.pool.get().await?;
        let n: i64 =
            client.query_one("SELECT count(*) FROM recovery_codes WHERE user_id = $1", &[&user_id]).await?.get(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn create_session(&self, s: SessionRecord, replacing: Option<String>, also: crate::Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        if let Some(old) = &replacing {
            tx.execute("DELETE FROM sessions WHERE digest = $1", &[old]).await?;
        }
        tx.execute(
            "INSERT INTO sessions (digest, user_id, stage, purpose, target, created_at, last_seen_at, second_factor)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
            &[
                &s.digest,
                &s.user_id,
                &s.stage.as_str(),
                &s.purpose.map(|(p, _)| p.as_str()),
                &s.purpose.map(|(_, t)| t),
                &s.created_at,
                &s.last_seen_at,
                &s.second_factor,
            ],
        )
        .await?;
        super::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn session(&self, digest: &str) -> Result<Option<SessionRecord>> {
        let client = self.pool.get().await?;
        let row = client
            .query_opt(
                "SELECT digest, user_id, stage, purpose, target, created_at, last_seen_at, second_factor FROM sessions WHERE digest = $1",
                &[&digest],
            )
            .await?;
        row.as_ref().map(session_from).transpose()
    }

    async fn touch_session(&self, digest: &str, at: DateTime<Utc>) -> Result<()> {
        let client = self.pool.get().await?;
        client
            .execute("UPDATE sessions SET last_seen_at = $2 WHERE digest = $1 AND last_seen_at < $2", &[&digest, &at])
            .await?;
        Ok(())
    }

    async fn delete_session(&self, digest: &str, also: crate::Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute("DELETE FROM sessions WHERE digest = $1", &[&digest]).await?;
        super::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn delete_user_sessions(&self, user_id: Uuid, also: crate::Alongside) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let ended = tx.execute("DELETE FROM sessions WHERE user_id = $1", &[&user_id]).await?;
        super::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(ended)
    }

    async fn create_magic_link(&self, l: MagicLink, also: crate::Alongside) -> Result<()> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        tx.execute(
            "INSERT INTO magic_links (digest, user_id, purpose, target, created_at, expires_at, used_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
            &[&l.digest, &l.user_id, &l.purpose.as_str(), &l.target, &l.created_at, &l.expires_at, &l.used_at],
        )
        .await?;
        super::outbox::write_alongside(&tx, &also).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn use_magic_link(&self, digest: &str, now: DateTime<Utc>) -> Result<LinkUse> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        // The row lock makes two simultaneous uses of one link queue; the second sees it used.
        let Some(r) = tx
            .query_opt(
                "SELECT user_id, purpose, target, created_at, expires_at, used_at FROM magic_links
                 WHERE digest = $1 FOR UPDATE",
                &[&digest],
            )
            .await?
        else {
            return Ok(LinkUse::Unknown);
        };
        if r.get::<_, Option<DateTime<Utc>>>(5).is_some() {
            return Ok(LinkUse::AlreadyUsed);
        }
        let expires_at: DateTime<Utc> = r.get(4);
        if now >= expires_at {
            return Ok(LinkUse::Expired);
        }
        tx.execute("UPDATE magic_links SET used_at = $2 WHERE digest = $1", &[&digest, &now]).await?;
        tx.commit().await?;
        Ok(LinkUse::Accepted(MagicLink {
            digest: digest.to_owned(),
            user_id: r.get(0),
            purpose: LinkPurpose::parse(r.get(1))
                .ok_or_else(|| corrupt("magic link", "(hidden)", "unknown purpose"))?,
            target: r.get(2),
            created_at: r.get(3),
            expires_at,
            used_at: Some(now),
        }))
    }

    async fn record_attempt(&self, key: &str, at: DateTime<Utc>, ok: bool) -> Result<()> {
        let client = self.pool.get().await?;
        client.execute("INSERT INTO sign_in_attempts (key, at, ok) VALUES ($1, $2, $3)", &[&key, &at, &ok]).await?;
        let old = at - chrono::Duration::days(1);
        client.execute("DELETE FROM sign_in_attempts WHERE key = $1 AND at < $2", &[&key, &old]).await?;
        Ok(())
    }

    async fn failures_since(&self, key: &str, since: DateTime<Utc>) -> Result<(u32, Option<DateTime<Utc>>)> {
        let client = self.pool.get().await?;
        let r = client
            .query_one(
                "SELECT count(*), max(at) FROM sign_in_attempts WHERE key = $1 AND at >= $2 AND NOT ok",
                &[&key, &since],
            )
            .await?;
        Ok((u32::try_from(r.get::<_, i64>(0)).unwrap_or(u32::MAX), r.get(1)))
    }

    async fn attempts_since(&self, key: &str, since: DateTime<Utc>) -> Result<u32> {
        let client = self.pool.get().await?;
        let n: i64 = client
            .query_one("SELECT count(*) FROM sign_in_attempts WHERE key = $1 AND at >= $2", &[&key, &since])
            .await?
            .get(0);
        Ok(u32::try_from(n).unwrap_or(u32::MAX))
    }

    async fn append_audit(&self, e: AuditEvent) -> Result<i64> {
        let client = self.pool.get().await?;
        super::outbox::insert_audit(&**client, &e).await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT seq, at, actor, actor_roles, action, record_type, record_id, ip, reason FROM audit_log
                 WHERE ($1::uuid IS NULL OR actor = $1) AND ($2::timestamptz IS NULL OR at >= $2)
                   AND ($3::text IS NULL OR action = $3) AND ($4::bigint IS NULL OR seq < $4)
                   AND ($6::uuid[] IS NULL OR actor = ANY($6)
                        OR (record_type = 'user' AND record_id IN (SELECT p::text FROM unnest($6) AS p)))
                 ORDER BY seq DESC LIMIT $5",
                &[&q.actor, &q.since, &q.action, &q.before_seq, &i64::from(q.limit), &q.people],
            )
            .await?;
        Ok(rows
            .iter()
            .map(|r| AuditEvent {
                seq: r.get(0),
                at: r.get(1),
                actor: r.get(2),
                actor_roles: r.get(3),
                action: r.get(4),
                record_type: r.get(5),
                record_id: r.get(6),
                ip: r.get(7),
                reason: r.get(8),
            })
            .collect())
    }

    async fn sealed_fields(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<SealedField>> {
        let client = self.pool.get().await?;
        let rows = client
            .query(
                "SELECT id, email, name, totp_secret FROM users WHERE $1::uuid IS NULL OR id > $1
                 ORDER BY id LIMIT $2",
                &[&after, &i64::from(limit)],
            )
            .await?;
        let mut out = Vec::new();
        for r in &rows {
            let row_id: Uuid = r.get(0);
            out.push(SealedField { field: "users.email", row_id, value: Sealed(r.get(1)) });
            out.push(SealedField { field: "users.name", row_id, value: Sealed(r.get(2)) });
            if let Some(secret) = r.get::<_, Option<String>>(3) {
                out.push(SealedField { field: "users.totp_secret", row_id, value: Sealed(secret) });
            }
        }
        Ok(out)
    }

    async fn replace_sealed(&self, fields: Vec<SealedField>) -> Result<u64> {
        let mut client = self.pool.get().await?;
        let tx = client.transaction().await?;
        let mut changed = 0;
        for f in &fields {
            let sql = match f.field {
                "users.email" => "UPDATE users SET email = $2 WHERE id = $1",
                "users.name" => "UPDATE users SET name = $2 WHERE id = $1",
                "users.totp_secret" => "UPDATE users SET totp_secret = $2 WHERE id = $1",
                other => return Err(StoreError::Config(format!("{other} is not a sealed field"))),
            };
            changed += tx.execute(sql, &[&f.row_id, &f.value.0]).await?;
        }
        tx.commit().await?;
        Ok(changed)
    }
}
