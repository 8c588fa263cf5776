//! Accounts on SQLite.

use super::SqliteStore;
use crate::accounts::{AccountStore, AccountWrite, SealedField};
use crate::doc::{parse_ts, ts};
use crate::{Result, StoreError};
use async_trait::async_trait;
use chrono::{DateTime, Utc};
use kith_domain::account::{
    Area, AreaKind, AuditEvent, AuditQuery, Grant, LinkPurpose, LinkUse, MagicLink, OrgKind, Organisation, Role, Scope,
    Sealed, SessionRecord, SessionStage, UserRecord,
};
use rusqlite::{Connection, OptionalExtension, Row, params};
use uuid::Uuid;

fn replace_recovery_codes(tx: &rusqlite::Transaction<'_>, user_id: &str, code_indexes: &[String]) -> Result<()> {
    tx.execute("DELETE FROM recovery_codes WHERE user_id = ?1", [user_id])?;
    let mut stmt = tx.prepare_cached("INSERT OR IGNORE INTO recovery_codes (user_id, code_index) VALUES (?1, ?2)")?;
    for code in code_indexes {
        stmt.execute(params![user_id, code])?;
    }
    Ok(())
}

fn corrupt(what: &'static str, id: &str, reason: &str) -> StoreError {
    StoreError::Corrupt { what, id: id.to_owned(), reason: reason.to_owned() }
}

fn uuid(what: &'static str, text: &str) -> Result<Uuid> {
    text.parse().map_err(|_| corrupt(what, text, "not a UUID"))
}

fn opt_ts(text: Option<&str>) -> Result<Option<DateTime<Utc>>> {
    text.map(parse_ts).transpose()
}

const USER_COLUMNS: &str =
    "id, email_index, email, name, password_hash, totp_secret, totp_last_step, disabled, created_at";

fn read_user(conn: &Connection, row: &Row<'_>) -> Result<UserRecord> {
    let id: String = row.get(0)?;
    let user_id = uuid("user", &id)?;
    let mut stmt =
        conn.prepare_cached("SELECT role, scope_kind, scope_id FROM user_grants WHERE user_id = ?1 ORDER BY 1, 2, 3")?;
    let grants = stmt
        .query_map([&id], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get::<_, String>(2)?)))?
        .map(|row| {
            let (role, kind, scope_id) = row?;
            let role = Role::parse(&role).ok_or_else(|| corrupt("user", &id, "unknown role"))?;
            let scope = Scope::from_parts(&kind, uuid("user", &scope_id)?)
                .ok_or_else(|| corrupt("user", &id, "unknown scope"))?;
            Ok(Grant { role, scope })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(UserRecord {
        id: user_id,
        email_index: row.get(1)?,
        email: Sealed(row.get(2)?),
        name: Sealed(row.get(3)?),
        password_hash: row.get(4)?,
        totp_secret: row.get::<_, Option<String>>(5)?.map(Sealed),
        totp_last_step: row.get(6)?,
        grants,
        disabled: row.get::<_, i64>(7)? != 0,
        created_at: parse_ts(&row.get::<_, String>(8)?)?,
    })
}

fn query_users(conn: &Connection, sql: &str, param: Option<&str>) -> Result<Vec<UserRecord>> {
    let mut stmt = conn.prepare_cached(sql)?;
    let mut rows = match param {
        Some(p) => stmt.query([p])?,
        None => stmt.query([])?,
    };
    let mut out = Vec::new();
    while let Some(row) = rows.next()? {
        out.push(read_user(conn, row)?);
    }
    Ok(out)
}

fn read_session(row: &Row<'_>) -> Result<SessionRecord> {
    let digest: String = row.get(0)?;
    let stage: String = row.get(2)?;
    let purpose = match (row.get::<_, Option<String>>(3)?, row.get::<_, Option<String>>(4)?) {
        (Some(p), Some(t)) => Some((
            LinkPurpose::parse(&p).ok_or_else(|| corrupt("session", "(hidden)", "unknown purpose"))?,
            uuid("session", &t)?,
        )),
        _ => None,
    };
    Ok(SessionRecord {
        user_id: uuid("session", &row.get::<_, String>(1)?)?,
        stage: SessionStage::parse(&stage).ok_or_else(|| corrupt("session", "(hidden)", "unknown stage"))?,
        purpose,
        created_at: parse_ts(&row.get::<_, String>(5)?)?,
        last_seen_at: parse_ts(&row.get::<_, String>(6)?)?,
        second_factor: row.get(7)?,
        digest,
    })
}

fn read_org(conn: &Connection, row: &Row<'_>) -> Result<Organisation> {
    let id: String = row.get(0)?;
    let kind: String = row.get(1)?;
    let mut stmt = conn.prepare_cached("SELECT area_id FROM area_members WHERE organisation_id = ?1 ORDER BY 1")?;
    let areas = stmt
        .query_map([&id], |r| r.get::<_, String>(0))?
        .map(|a| uuid("organisation", &a?))
        .collect::<Result<Vec<_>>>()?;
    Ok(Organisation {
        id: uuid("organisation", &id)?,
        kind: OrgKind::parse(&kind).ok_or_else(|| corrupt("organisation", &id, "unknown kind"))?,
        name: row.get(2)?,
        ods_code: row.get(3)?,
        directory_id: row.get::<_, Option<String>>(4)?.map(|d| uuid("organisation", &d)).transpose()?,
        areas,
    })
}

fn read_audit(row: &Row<'_>) -> Result<AuditEvent> {
    Ok(AuditEvent {
        seq: row.get(0)?,
        at: parse_ts(&row.get::<_, String>(1)?)?,
        actor: row.get::<_, Option<String>>(2)?.map(|a| uuid("audit entry", &a)).transpose()?,
        actor_roles: row.get(3)?,
        action: row.get(4)?,
        record_type: row.get(5)?,
        record_id: row.get(6)?,
        ip: row.get(7)?,
        reason: row.get(8)?,
    })
}

fn is_unique_violation(e: &rusqlite::Error) -> bool {
    matches!(e, rusqlite::Error::SqliteFailure(f, _) if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

#[async_trait]
impl AccountStore for SqliteStore {
    async fn put_area(&self, area: Area) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO areas (id, kind, name) VALUES (?1, ?2, ?3)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name",
                params![area.id.to_string(), area.kind.as_str(), area.name],
            )?;
            Ok(())
        })
        .await
    }

    async fn areas(&self) -> Result<Vec<Area>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached("SELECT id, kind, name FROM areas ORDER BY name, id")?;
            let rows = stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?, r.get(2)?)))?;
            rows.map(|row| {
                let (id, kind, name) = row?;
                Ok(Area {
                    kind: AreaKind::parse(&kind).ok_or_else(|| corrupt("area", &id, "unknown kind"))?,
                    id: uuid("area", &id)?,
                    name,
                })
            })
            .collect()
        })
        .await
    }

    async fn put_organisation(&self, org: Organisation) -> Result<()> {
        self.write(move |tx, _| {
            let id = org.id.to_string();
            tx.execute(
                "INSERT INTO member_organisations (id, kind, name, ods_code, directory_id) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT (id) DO UPDATE SET kind = excluded.kind, name = excluded.name,
                    ods_code = excluded.ods_code, directory_id = excluded.directory_id",
                params![id, org.kind.as_str(), org.name, org.ods_code, org.directory_id.map(|d| d.to_string())],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict(format!(
                        "another organisation already has the ODS code {}",
                        org.ods_code.as_deref().unwrap_or_default()
                    ))
                } else {
                    e.into()
                }
            })?;
            tx.execute("DELETE FROM area_members WHERE organisation_id = ?1", [&id])?;
            for area in &org.areas {
                tx.execute(
                    "INSERT INTO area_members (area_id, organisation_id) VALUES (?1, ?2)",
                    params![area.to_string(), id],
                )
                .map_err(|e| match e {
                    rusqlite::Error::SqliteFailure(f, _)
                        if f.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_FOREIGNKEY =>
                    {
                        StoreError::Conflict(format!("there is no area with id {area}"))
                    }
                    e => e.into(),
                })?;
            }
            Ok(())
        })
        .await
    }

    async fn organisation(&self, id: Uuid) -> Result<Option<Organisation>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, name, ods_code, directory_id FROM member_organisations WHERE id = ?1",
            )?;
            let mut rows = stmt.query([id.to_string()])?;
            rows.next()?.map(|row| read_org(conn, row)).transpose()
        })
        .await
    }

    async fn organisations(&self) -> Result<Vec<Organisation>> {
        self.read(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, kind, name, ods_code, directory_id FROM member_organisations ORDER BY name, id",
            )?;
            let mut rows = stmt.query([])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(read_org(conn, row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn write_account(&self, write: AccountWrite, also: crate::Alongside) -> Result<u64> {
        self.write(move |tx, _| {
            let user = &write.user;
            let id = user.id.to_string();
            tx.execute(
                "INSERT INTO users (id, email_index, email, name, password_hash, totp_secret, totp_last_step, disabled, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
                 ON CONFLICT (id) DO UPDATE SET email_index = excluded.email_index, email = excluded.email,
                    name = excluded.name, password_hash = excluded.password_hash, totp_secret = excluded.totp_secret,
                    totp_last_step = excluded.totp_last_step, disabled = excluded.disabled",
                params![
                    id,
                    user.email_index,
                    user.email.0,
                    user.name.0,
                    user.password_hash,
                    user.totp_secret.as_ref().map(|s| s.0.as_str()),
                    user.totp_last_step,
                    i64::from(user.disabled),
                    ts(user.created_at)
                ],
            )
            .map_err(|e| {
                if is_unique_violation(&e) {
                    StoreError::Conflict("another user already has that email address".into())
                } else {
                    e.into()
                }
            })?;
            tx.execute("DELETE FROM user_grants WHERE user_id = ?1", [&id])?;
            let mut stmt = tx.prepare_cached(
                "INSERT OR IGNORE INTO user_grants (user_id, role, scope_kind, scope_id) VALUES (?1, ?2, ?3, ?4)",
            )?;
            for g in &user.grants {
                stmt.execute(params![id, g.role.as_str(), g.scope.kind(), g.scope.id().to_string()])?;
            }
            if let Some(codes) = &write.recovery_codes {
                replace_recovery_codes(tx, &id, codes)?;
            }
            let ended =
                if write.end_sessions { tx.execute("DELETE FROM sessions WHERE user_id = ?1", [&id])? as u64 } else { 0 };
            super::outbox::write_alongside(tx, &also)?;
            Ok(ended)
        })
        .await
    }

    async fn user(&self, id: Uuid) -> Result<Option<UserRecord>> {
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = ?1");
            Ok(query_users(conn, &sql, Some(&id.to_string()))?.pop())
        })
        .await
    }

    async fn user_by_email_index(&self, email_index: &str) -> Result<Option<UserRecord>> {
        let email_index = email_index.to_owned();
        self.read(move |conn| {
            let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE email_index = ?1");
            Ok(query_users(conn, &sql, Some(&email_index))?.pop())
        })
        .await
    }

    async fn users(&self) -> Result<Vec<UserRecord>> {
        self.read(|conn| query_users(conn, &format!("SELECT {USER_COLUMNS} FROM users ORDER BY created_at, id"), None))
            .await
    }

    async fn use_totp_step(&self, user_id: Uuid, step: i64) -> Result<bool> {
        self.write(move |tx, _| {
            let changed = tx.execute(
                "UPDATE users SET totp_last_step = ?2 WHERE id = ?1 AND (totp_last_step IS NULL OR totp_last_step < ?2)",
                params![user_id.to_string(), step],
            )?;
            Ok(changed == 1)
        })
        .await
    }

    async fn set_recovery_codes(&self, user_id: Uuid, code_indexes: Vec<String>) -> Result<()> {
        self.write(move |tx, _| replace_recovery_codes(tx, &user_id.to_string(), &code_indexes)).await
    }

    async fn use_recovery_code(&self, user_id: Uuid, code_index: &str) -> Result<bool> {
        let code_index = code_index.to_owned();
        self.write(move |tx, _| {
            let n = tx.execute(
                "DELETE FROM recovery_codes WHERE user_id = ?1 AND code_index = ?2",
                params![user_id.to_string(), code_index],
            )?;
            Ok(n == 1)
        })
        .await
    }

    async fn recovery_codes_left(&self, user_id: Uuid) -> Result<u32> {
        self.read(move |conn| {
            let n: i64 =
                conn.query_row("SELECT count(*) FROM recovery_codes WHERE user_id = ?1", [user_id.to_string()], |r| {
                    r.get(0)
                })?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn create_session(&self, s: SessionRecord, replacing: Option<String>, also: crate::Alongside) -> Result<()> {
        self.write(move |tx, _| {
            if let Some(old) = &replacing {
                tx.execute("DELETE FROM sessions WHERE digest = ?1", [old])?;
            }
            tx.execute(
                "INSERT INTO sessions (digest, user_id, stage, purpose, target, created_at, last_seen_at, second_factor)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                params![
                    s.digest,
                    s.user_id.to_string(),
                    s.stage.as_str(),
                    s.purpose.map(|(p, _)| p.as_str()),
                    s.purpose.map(|(_, t)| t.to_string()),
                    ts(s.created_at),
                    ts(s.last_seen_at),
                    s.second_factor
                ],
            )?;
            super::outbox::write_alongside(tx, &also)
        })
        .await
    }

    async fn session(&self, digest: &str) -> Result<Option<SessionRecord>> {
        let digest = digest.to_owned();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT digest, user_id, stage, purpose, target, created_at, last_seen_at, second_factor FROM sessions WHERE digest = ?1",
            )?;
            let mut rows = stmt.query([&digest])?;
            rows.next()?.map(read_session).transpose()
        })
        .await
    }

    async fn touch_session(&self, digest: &str, at: DateTime<Utc>) -> Result<()> {
        let digest = digest.to_owned();
        self.write(move |tx, _| {
            tx.execute(
                "UPDATE sessions SET last_seen_at = ?2 WHERE digest = ?1 AND last_seen_at < ?2",
                params![digest, ts(at)],
            )?;
            Ok(())
        })
        .await
    }

    async fn delete_session(&self, digest: &str, also: crate::Alongside) -> Result<()> {
        let digest = digest.to_owned();
        self.write(move |tx, _| {
            tx.execute("DELETE FROM sessions WHERE digest = ?1", [&digest])?;
            super::outbox::write_alongside(tx, &also)
        })
        .await
    }

    async fn delete_user_sessions(&self, user_id: Uuid, also: crate::Alongside) -> Result<u64> {
        self.write(move |tx, _| {
            let ended = tx.execute("DELETE FROM sessions WHERE user_id = ?1", [user_id.to_string()])? as u64;
            super::outbox::write_alongside(tx, &also)?;
            Ok(ended)
        })
        .await
    }

    async fn create_magic_link(&self, link: MagicLink, also: crate::Alongside) -> Result<()> {
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO magic_links (digest, user_id, purpose, target, created_at, expires_at, used_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                params![
                    link.digest,
                    link.user_id.to_string(),
                    link.purpose.as_str(),
                    link.target.to_string(),
                    ts(link.created_at),
                    ts(link.expires_at),
                    link.used_at.map(ts)
                ],
            )?;
            super::outbox::write_alongside(tx, &also)
        })
        .await
    }

    async fn use_magic_link(&self, digest: &str, now: DateTime<Utc>) -> Result<LinkUse> {
        let digest = digest.to_owned();
        self.write(move |tx, _| {
            let row = tx
                .query_row(
                    "SELECT user_id, purpose, target, created_at, expires_at, used_at FROM magic_links WHERE digest = ?1",
                    [&digest],
                    |r| {
                        Ok((
                            r.get::<_, String>(0)?,
                            r.get::<_, String>(1)?,
                            r.get::<_, String>(2)?,
                            r.get::<_, String>(3)?,
                            r.get::<_, String>(4)?,
                            r.get::<_, Option<String>>(5)?,
                        ))
                    },
                )
                .optional()?;
            let Some((user_id, purpose, target, created_at, expires_at, used_at)) = row else {
                return Ok(LinkUse::Unknown);
            };
            if used_at.is_some() {
                return Ok(LinkUse::AlreadyUsed);
            }
            let expires_at = parse_ts(&expires_at)?;
            if now >= expires_at {
                return Ok(LinkUse::Expired);
            }
            tx.execute("UPDATE magic_links SET used_at = ?2 WHERE digest = ?1", params![digest, ts(now)])?;
            Ok(LinkUse::Accepted(MagicLink {
                user_id: uuid("magic link", &user_id)?,
                purpose: LinkPurpose::parse(&purpose).ok_or_else(|| corrupt("magic link", "(hidden)", "unknown purpose"))?,
                target: uuid("magic link", &target)?,
                created_at: parse_ts(&created_at)?,
                expires_at,
                used_at: Some(now),
                digest,
            }))
        })
        .await
    }

    async fn record_attempt(&self, key: &str, at: DateTime<Utc>, ok: bool) -> Result<()> {
        let key = key.to_owned();
        self.write(move |tx, _| {
            tx.execute(
                "INSERT INTO sign_in_attempts (key, at, ok) VALUES (?1, ?2, ?3)",
                params![key, ts(at), i64::from(ok)],
            )?;
            // Old attempts say nothing about rate limits; keep a day for the record.
            tx.execute(
                "DELETE FROM sign_in_attempts WHERE key = ?1 AND at < ?2",
                params![key, ts(at - chrono::Duration::days(1))],
            )?;
            Ok(())
        })
        .await
    }

    async fn failures_since(&self, key: &str, since: DateTime<Utc>) -> Result<(u32, Option<DateTime<Utc>>)> {
        let key = key.to_owned();
        self.read(move |conn| {
            let (n, last): (i64, Option<String>) = conn.query_row(
                "SELECT count(*), max(at) FROM sign_in_attempts WHERE key = ?1 AND at >= ?2 AND ok = 0",
                params![key, ts(since)],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            Ok((u32::try_from(n).unwrap_or(u32::MAX), opt_ts(last.as_deref())?))
        })
        .await
    }

    async fn attempts_since(&self, key: &str, since: DateTime<Utc>) -> Result<u32> {
        let key = key.to_owned();
        self.read(move |conn| {
            let n: i64 = conn.query_row(
                "SELECT count(*) FROM sign_in_attempts WHERE key = ?1 AND at >= ?2",
                params![key, ts(since)],
                |r| r.get(0),
            )?;
            Ok(u32::try_from(n).unwrap_or(u32::MAX))
        })
        .await
    }

    async fn append_audit(&self, e: AuditEvent) -> Result<i64> {
        self.write(move |tx, _| super::outbox::insert_audit(tx, &e)).await
    }

    async fn audit(&self, q: &AuditQuery) -> Result<Vec<AuditEvent>> {
        let q = q.clone();
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT seq, at, actor, actor_roles, action, record_type, record_id, ip, reason FROM audit_log
                 WHERE (?1 IS NULL OR actor = ?1) AND (?2 IS NULL OR at >= ?2) AND (?3 IS NULL OR action = ?3)
                   AND (?4 IS NULL OR seq < ?4)
                   AND (?6 IS NULL OR actor IN (SELECT value FROM json_each(?6))
                        OR (record_type = 'user' AND record_id IN (SELECT value FROM json_each(?6))))
                 ORDER BY seq DESC LIMIT ?5",
            )?;
            let people = q
                .people
                .as_ref()
                .map(|ids| serde_json::Value::from(ids.iter().map(Uuid::to_string).collect::<Vec<_>>()).to_string());
            let mut rows = stmt.query(params![
                q.actor.map(|a| a.to_string()),
                q.since.map(ts),
                q.action,
                q.before_seq,
                i64::from(q.limit),
                people
            ])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                out.push(read_audit(row)?);
            }
            Ok(out)
        })
        .await
    }

    async fn sealed_fields(&self, after: Option<Uuid>, limit: u32) -> Result<Vec<SealedField>> {
        self.read(move |conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT id, email, name, totp_secret FROM users WHERE ?1 IS NULL OR id > ?1 ORDER BY id LIMIT ?2",
            )?;
            let mut rows = stmt.query(params![after.map(|a| a.to_string()), i64::from(limit)])?;
            let mut out = Vec::new();
            while let Some(row) = rows.next()? {
                let row_id = uuid("user", &row.get::<_, String>(0)?)?;
                out.push(SealedField { field: "users.email", row_id, value: Sealed(row.get(1)?) });
                out.push(SealedField { field: "users.name", row_id, value: Sealed(row.get(2)?) });
                if let Some(secret) = row.get::<_, Option<String>>(3)? {
                    out.push(SealedField { field: "users.totp_secret", row_id, value: Sealed(secret) });
                }
            }
            Ok(out)
        })
        .await
    }

    async fn replace_sealed(&self, fields: Vec<SealedField>) -> Result<u64> {
        self.write(move |tx, _| {
            let mut changed = 0;
            for f in &fields {
                let sql = match f.field {
                    "users.email" => "UPDATE users SET email = ?2 WHERE id = ?1",
                    "users.name" => "UPDATE users SET name = ?2 WHERE id = ?1",
                    "users.totp_secret" => "UPDATE users SET totp_secret = ?2 WHERE id = ?1",
                    other => return Err(StoreError::Config(format!("{other} is not a sealed field"))),
                };
                changed += tx.prepare_cached(sql)?.execute(params![f.row_id.to_string(), f.value.0])? as u64;
            }
            Ok(changed)
        })
        .await
    }
}
