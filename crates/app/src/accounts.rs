//! The accounts service: everything sign-in does with the store, the keyring and the
//! clock, used by the web pages and by `kith users`. Names and emails are sealed before
//! they reach the store and opened only here.

use chrono::{DateTime, Duration, Utc};
use kith_crypto::totp::{self, Secret};
use kith_crypto::{Keyring, password, token};
use kith_domain::Clock;
use kith_domain::account::{
    Area, AuditEvent, AuditQuery, Grant, LinkPurpose, LinkUse, MagicLink, Organisation, Permission, Scope, Sealed,
    SessionRecord, SessionStage, UserRecord, areas_with, people_within,
};
use kith_store::accounts::{AccountWrite, SEALED_FIELDS, seal_context};
use kith_store::{Alongside, Store, StoreError};
use std::collections::HashMap;
use std::sync::Arc;
use uuid::Uuid;

/// Failed sign-ins for one account from one address allowed in [`WINDOW_MINUTES`] before
/// Kith makes the next one from there wait. Someone guessing from elsewhere does not lock
/// the owner out.
pub const FREE_FAILURES: u32 = 5;
/// Failed sign-ins for one account from every address together before every attempt on
/// it waits: the slow-down that holds when guesses come from many addresses.
pub const FREE_FAILURES_PER_ACCOUNT: u32 = 50;
/// Failed sign-ins from one address allowed in the window, across all accounts.
pub const FREE_FAILURES_PER_ADDRESS: u32 = 30;
/// Password hashes checked at once. Each takes 19 MiB and tens of milliseconds of a core,
/// so they run on the blocking pool, a few at a time, never on the threads that answer
/// requests.
const HASHES_AT_ONCE: usize = 4;
/// Magic-link requests for one address in the window.
pub const LINK_REQUESTS: u32 = 3;
pub const WINDOW_MINUTES: i64 = 15;
const MAX_LOCKOUT_MINUTES: i64 = 60;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// Something the person can fix; the message says what.
    #[error("{0}")]
    Invalid(String),
    /// Too many attempts: try again after this many minutes.
    #[error("There have been too many attempts. Wait {0} minutes, then try again.")]
    Locked(i64),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("a sealed field could not be opened: {0}")]
    Keys(#[from] kith_crypto::KeyringError),
}

/// How often a session in use is marked as seen (its idle time counts from then): at most
/// once a minute, to spare the database a write per request.
pub const TOUCH_EVERY_SECONDS: i64 = 60;

/// A session in force, with its account and the account's name, opened from its sealed
/// form.
#[derive(Debug, Clone)]
pub struct LiveSession {
    pub session: SessionRecord,
    pub user: UserRecord,
    pub name: String,
}

/// One step of signing in, for [`Accounts::sign_in`].
#[derive(Debug, Clone, Copy)]
pub struct SignInStep<'a> {
    pub stage: SessionStage,
    /// What a link session is for; `None` for a full sign-in.
    pub purpose: Option<(LinkPurpose, Uuid)>,
    /// Whether a second factor began the session.
    pub second_factor: bool,
    /// How: "password", "password and code", "magic link", "oidc …".
    pub how: &'a str,
}

/// What a person gives to create an account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub email: String,
    pub name: String,
    pub password: Option<String>,
    pub grants: Vec<Grant>,
}

/// Where an action came from, for the audit log.
#[derive(Debug, Clone, Default)]
pub struct Actor {
    pub user: Option<Uuid>,
    pub roles: String,
    pub ip: Option<String>,
}

impl Actor {
    pub fn cli() -> Actor {
        Actor { user: None, roles: "cli".into(), ip: None }
    }

    pub fn anonymous(ip: Option<String>) -> Actor {
        Actor { user: None, roles: "anonymous".into(), ip }
    }

    pub fn of(user: &UserRecord, ip: Option<String>) -> Actor {
        Actor { user: Some(user.id), roles: roles_label(&user.grants), ip }
    }
}

/// "receptionist@organisation:…, curator@area:…"
pub fn roles_label(grants: &[Grant]) -> String {
    if grants.is_empty() {
        return "none".into();
    }
    grants.iter().map(|g| format!("{}@{}:{}", g.role, g.scope.kind(), g.scope.id())).collect::<Vec<_>>().join(", ")
}

/// The outcome of a right password.
#[derive(Debug)]
pub enum PasswordOutcome {
    /// Signed in.
    Complete(UserRecord),
    /// A code from the authenticator app is needed.
    NeedsCode(UserRecord),
    /// The account's roles need two factors and none is set up yet.
    NeedsEnrolment(UserRecord),
}

/// A person's readable details.
#[derive(Debug, Clone)]
pub struct Profile {
    pub email: String,
    pub name: String,
}

#[derive(Debug, Clone)]
pub struct Accounts {
    store: Arc<dyn Store>,
    keyring: Arc<Keyring>,
    clock: Arc<dyn Clock>,
    hashing: Arc<tokio::sync::Semaphore>,
}

/// The part of a client's address that limits count: an IPv4 address whole, an IPv6
/// address by its /64 (one household or phone is given a whole /64, so counting single
/// IPv6 addresses would give each guesser billions of fresh starts).
pub fn limit_address(ip: &str) -> String {
    match ip.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V6(v6)) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        },
        Ok(std::net::IpAddr::V4(v4)) => v4.to_string(),
        Err(_) => ip.to_owned(),
    }
}

/// Emails are compared lower-cased and trimmed.
pub fn normalise_email(email: &str) -> String {
    email.trim().to_lowercase()
}

fn valid_email(email: &str) -> bool {
    let Some((local, domain)) = email.split_once('@') else { return false };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && email.len() <= 254
        && !email.chars().any(|c| c.is_whitespace() || c.is_control())
}

impl Accounts {
    pub fn new(store: Arc<dyn Store>, keyring: Arc<Keyring>, clock: Arc<dyn Clock>) -> Accounts {
        Accounts { store, keyring, clock, hashing: Arc::new(tokio::sync::Semaphore::new(HASHES_AT_ONCE)) }
    }

    pub fn keyring(&self) -> &Keyring {
        &self.keyring
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }

    pub fn email_index(&self, email: &str) -> String {
        self.keyring.blind_index("email", &normalise_email(email))
    }

    fn seal(&self, field: &str, id: Uuid, value: &str) -> Sealed {
        Sealed(self.keyring.seal(value, &seal_context(field, id)))
    }

    fn open(&self, field: &str, id: Uuid, value: &Sealed) -> Result<String, AccountsError> {
        Ok(self.keyring.open(&value.0, &seal_context(field, id))?)
    }

    pub fn profile(&self, user: &UserRecord) -> Result<Profile, AccountsError> {
        Ok(Profile {
            email: self.open("users.email", user.id, &user.email)?,
            name: self.open("users.name", user.id, &user.name)?,
        })
    }

    pub async fn audit(&self, actor: &Actor, action: &str, record_type: &str, record_id: Option<String>, reason: &str) {
        let event = self.audit_event(actor, action, record_type, record_id, reason);
        if let Err(e) = self.store.append_audit(event).await {
            // An action that cannot be audited still happened; say so loudly.
            tracing::error!(error = %e, action, "the audit log could not be written");
        }
    }

    /// An audit entry, to be written in the same transaction as the change it records
    /// (see [`kith_store::Alongside`]).
    pub fn audit_event(
        &self,
        actor: &Actor,
        action: &str,
        record_type: &str,
        record_id: Option<String>,
        reason: &str,
    ) -> AuditEvent {
        AuditEvent {
            seq: 0,
            at: self.clock.now(),
            actor: actor.user,
            actor_roles: actor.roles.clone(),
            action: action.into(),
            record_type: record_type.into(),
            record_id,
            ip: actor.ip.clone(),
            reason: reason.into(),
        }
    }

    /// Records a read of personal data before it is shown. Unlike [`audit`](Self::audit)
    /// this fails closed: a read that cannot be audited is not made.
    pub async fn audit_read(
        &self,
        actor: &Actor,
        action: &str,
        record_type: &str,
        record_id: Option<String>,
        reason: &str,
    ) -> Result<(), StoreError> {
        let event = self.audit_event(actor, action, record_type, record_id, reason);
        self.store.append_audit(event).await.map(|_| ()).inspect_err(|e| {
            tracing::error!(error = %e, action, "the audit log could not be written; the read is refused");
        })
    }

    /// Creates an account. The email must be new; a password, if given, must meet the
    /// policy.
    pub async fn create_user(&self, new: NewUser, actor: &Actor) -> Result<UserRecord, AccountsError> {
        let email = normalise_email(&new.email);
        if !valid_email(&email) {
            return Err(AccountsError::Invalid(format!("{:?} is not an email address", new.email)));
        }
        let name = new.name.trim();
        if name.is_empty() || name.chars().count() > 200 {
            return Err(AccountsError::Invalid("Give the person's name (up to 200 characters)".into()));
        }
        let password_hash = match &new.password {
            Some(p) => {
                password::check_policy(p, &email).map_err(|e| AccountsError::Invalid(e.to_string()))?;
                Some(password::hash(p).map_err(|e| AccountsError::Invalid(e.to_string()))?)
            }
            None => None,
        };
        let id = Uuid::new_v4();
        let user = UserRecord {
            id,
            email_index: self.email_index(&email),
            email: self.seal("users.email", id, &email),
            name: self.seal("users.name", id, name),
            password_hash,
            totp_secret: None,
            totp_last_step: None,
            grants: new.grants,
            disabled: false,
            created_at: self.clock.now(),
        };
        let audit = self.audit_event(actor, "user.create", "user", Some(id.to_string()), &roles_label(&user.grants));
        self.store.write_account(AccountWrite::user(user.clone()), Alongside::audited(audit)).await.map_err(
            |e| match e {
                StoreError::Conflict(m) => AccountsError::Invalid(m),
                e => AccountsError::Store(e),
            },
        )?;
        Ok(user)
    }

    pub async fn user_by_email(&self, email: &str) -> Result<Option<UserRecord>, AccountsError> {
        Ok(self.store.user_by_email_index(&self.email_index(email)).await?)
    }

    /// Sets a new password, clears two-factor sign-in (it must be set up again) and ends
    /// every session. For `kith users reset`.
    pub async fn reset(&self, email: &str, new_password: &str, actor: &Actor) -> Result<UserRecord, AccountsError> {
        let mut user = self
            .user_by_email(email)
            .await?
            .ok_or_else(|| AccountsError::Invalid(format!("there is no user with the email {email}")))?;
        password::check_policy(new_password, &normalise_email(email))
            .map_err(|e| AccountsError::Invalid(e.to_string()))?;
        user.password_hash = Some(password::hash(new_password).map_err(|e| AccountsError::Invalid(e.to_string()))?);
        user.totp_secret = None;
        user.totp_last_step = None;
        user.disabled = false;
        let audit = self.audit_event(actor, "user.reset", "user", Some(user.id.to_string()), "every session ended");
        let write = AccountWrite { user: user.clone(), recovery_codes: Some(Vec::new()), end_sessions: true };
        self.store.write_account(write, Alongside::audited(audit)).await?;
        Ok(user)
    }

    /// Gives an account one more role, in one place. Returns false when it held it there
    /// already (nothing is written).
    pub async fn grant(&self, user: &UserRecord, grant: Grant, actor: &Actor) -> Result<bool, AccountsError> {
        if user.grants.contains(&grant) {
            return Ok(false);
        }
        let mut user = user.clone();
        user.grants.push(grant);
        let audit =
            self.audit_event(actor, "user.grant", "user", Some(user.id.to_string()), &roles_label(&user.grants));
        self.store.write_account(AccountWrite::user(user), Alongside::audited(audit)).await?;
        Ok(true)
    }

    /// How long to wait before another attempt under `key`, if at all.
    async fn lockout(&self, key: &str, free: u32) -> Result<Option<i64>, AccountsError> {
        let now = self.clock.now();
        let (failures, last) = self.store.failures_since(key, now - Duration::minutes(WINDOW_MINUTES)).await?;
        if failures < free {
            return Ok(None);
        }
        // One minute after the free attempts, doubling with each further failure.
        let extra = failures - free;
        let wait = Duration::minutes((1i64 << extra.min(6)).min(MAX_LOCKOUT_MINUTES));
        let until = last.unwrap_or(now) + wait;
        Ok((until > now).then(|| ((until - now).num_seconds() + 59) / 60))
    }

    /// Checks a password on the blocking pool, a few at a time; `None` checks against a
    /// dummy hash so an unknown account takes as long as a known one.
    async fn verify_password(&self, given: &str, hash: Option<String>) -> Result<bool, AccountsError> {
        let _permit = self
            .hashing
            .acquire()
            .await
            .map_err(|_| AccountsError::Invalid("Kith is shutting down; try again in a minute".into()))?;
        let given = given.to_owned();
        let check = move || match hash {
            Some(hash) => password::verify(&given, &hash),
            None => {
                password::verify_against_nothing(&given);
                false
            }
        };
        tokio::task::spawn_blocking(check)
            .await
            .map_err(|e| AccountsError::Invalid(format!("the password could not be checked: {e}")))
    }

    /// Audits a refusal under `key` at most once a minute, so a flood of refused
    /// attempts cannot fill the append-only log.
    async fn audit_refusal(&self, actor: &Actor, key: &str) -> Result<(), AccountsError> {
        let now = self.clock.now();
        let seen = format!("refused:{key}");
        if self.store.attempts_since(&seen, now - Duration::minutes(1)).await? == 0 {
            self.store.record_attempt(&seen, now, false).await?;
            self.audit(actor, "sign_in_refused", "user", None, "locked out after repeated failures").await;
        }
        Ok(())
    }

    /// Checks an email and password. Refuses without checking while the account is
    /// locked for this address, the account has failed too often from everywhere, or the
    /// address has failed too often across accounts. Every outcome is recorded.
    pub async fn check_password(
        &self,
        email: &str,
        given: &str,
        ip: Option<String>,
    ) -> Result<PasswordOutcome, AccountsError> {
        let index = self.email_index(email);
        let from = ip.as_deref().map_or_else(|| "-".to_owned(), limit_address);
        let pair_key = format!("email:{index}|{from}");
        let account_key = format!("email:{index}");
        let address_key = ip.as_deref().map(|_| format!("ip:{from}"));
        let actor = Actor::anonymous(ip.clone());
        let mut locked = self.lockout(&pair_key, FREE_FAILURES).await?;
        locked = locked.max(self.lockout(&account_key, FREE_FAILURES_PER_ACCOUNT).await?);
        if let Some(key) = &address_key {
            locked = locked.max(self.lockout(key, FREE_FAILURES_PER_ADDRESS).await?);
        }
        if let Some(minutes) = locked {
            self.audit_refusal(&actor, &pair_key).await?;
            return Err(AccountsError::Locked(minutes));
        }
        let user = self.store.user_by_email_index(&index).await?;
        let hash = user.as_ref().filter(|u| !u.disabled).and_then(|u| u.password_hash.clone());
        let known = hash.is_some();
        let ok = self.verify_password(given, hash).await? && known;
        let now = self.clock.now();
        for key in [Some(&pair_key), Some(&account_key), address_key.as_ref()].into_iter().flatten() {
            self.store.record_attempt(key, now, ok).await?;
        }
        let user = match (ok, user) {
            (true, Some(user)) => user,
            (_, user) => {
                let id = user.map(|u| u.id.to_string());
                self.audit(&actor, "sign_in_failed", "user", id, "wrong email or password").await;
                return Err(AccountsError::Invalid("Enter a correct email address and password".into()));
            }
        };
        Ok(if user.totp_secret.is_some() {
            PasswordOutcome::NeedsCode(user)
        } else if user.requires_two_factor() {
            PasswordOutcome::NeedsEnrolment(user)
        } else {
            PasswordOutcome::Complete(user)
        })
    }

    /// Checks a code from the authenticator app, or one of the recovery codes. A code is
    /// accepted once. Failures count towards the account's lockout.
    pub async fn check_code(&self, user: &UserRecord, code: &str, actor: &Actor) -> Result<bool, AccountsError> {
        // Only someone past the password reaches this, so it is counted by account.
        let key = format!("code:{}", user.email_index);
        if let Some(minutes) = self.lockout(&key, FREE_FAILURES).await? {
            return Err(AccountsError::Locked(minutes));
        }
        let now = self.clock.now();
        let mut ok = false;
        if let Some(sealed) = &user.totp_secret {
            let secret = Secret::from_base32(&self.open("users.totp_secret", user.id, sealed)?);
            if let Some(step) = secret.and_then(|s| s.verify(code, now.timestamp(), user.totp_last_step)) {
                ok = self.store.use_totp_step(user.id, step).await?;
            }
        }
        if !ok {
            let index = self.keyring.blind_index("recovery", &totp::normalise_recovery_code(code));
            if self.store.use_recovery_code(user.id, &index).await? {
                ok = true;
                self.audit(actor, "recovery_code.used", "user", Some(user.id.to_string()), "second factor").await;
            }
        }
        self.store.record_attempt(&key, now, ok).await?;
        if !ok {
            self.audit(actor, "second_factor_failed", "user", Some(user.id.to_string()), "wrong code").await;
        }
        Ok(ok)
    }

    /// Turns on two-factor sign-in with `secret` once the person shows a code from it.
    /// Returns fresh recovery codes, to be shown once.
    pub async fn enrol_totp(
        &self,
        user: &UserRecord,
        secret: &Secret,
        code: &str,
        actor: &Actor,
    ) -> Result<Vec<String>, AccountsError> {
        let now = self.clock.now().timestamp();
        let Some(step) = secret.verify(code, now, None) else {
            return Err(AccountsError::Invalid(
                "Enter the 6-digit code your authenticator app shows now; if it has changed, use the new one".into(),
            ));
        };
        let mut updated = user.clone();
        updated.totp_secret = Some(self.seal("users.totp_secret", user.id, &secret.to_base32()));
        updated.totp_last_step = Some(step);
        let codes = totp::recovery_codes();
        let indexes =
            codes.iter().map(|c| self.keyring.blind_index("recovery", &totp::normalise_recovery_code(c))).collect();
        let audit = self.audit_event(actor, "two_factor.enrol", "user", Some(user.id.to_string()), "authenticator app");
        let write = AccountWrite { user: updated, recovery_codes: Some(indexes), end_sessions: false };
        self.store.write_account(write, Alongside::audited(audit)).await?;
        Ok(codes)
    }

    /// One account.
    pub async fn user(&self, id: Uuid) -> Result<Option<UserRecord>, AccountsError> {
        Ok(self.store.user(id).await?)
    }

    /// Every account.
    pub async fn users(&self) -> Result<Vec<UserRecord>, AccountsError> {
        Ok(self.store.users().await?)
    }

    /// The practices and community groups on Kith.
    pub async fn organisations(&self) -> Result<Vec<Organisation>, AccountsError> {
        Ok(self.store.organisations().await?)
    }

    /// A practice's or group's name.
    /// Roles as a person reads them: "Link worker at Parkhead Surgery, Curator for
    /// Glasgow East PCN". A place Kith no longer has is named by its id.
    pub async fn describe_grants(&self, grants: &[Grant]) -> Result<String, AccountsError> {
        if grants.is_empty() {
            return Ok("no roles".into());
        }
        let areas = self.store.areas().await?;
        let mut out = Vec::new();
        for g in grants {
            let place = match g.scope {
                Scope::Organisation(id) => {
                    let name =
                        self.store.organisation(id).await?.map_or_else(|| format!("organisation {id}"), |o| o.name);
                    format!("at {name}")
                }
                Scope::Area(id) => {
                    let name =
                        areas.iter().find(|a| a.id == id).map_or_else(|| format!("area {id}"), |a| a.name.clone());
                    format!("for {name}")
                }
            };
            out.push(format!("{} {place}", g.role.label()));
        }
        Ok(out.join(", "))
    }

    pub async fn organisation_name(&self, id: Uuid) -> Result<Option<String>, AccountsError> {
        Ok(self.store.organisation(id).await?.map(|o| o.name))
    }

    /// The areas Kith's organisations are grouped in.
    pub async fn areas(&self) -> Result<Vec<Area>, AccountsError> {
        Ok(self.store.areas().await?)
    }

    /// How many unused recovery codes an account has.
    pub async fn recovery_codes_left(&self, user: &UserRecord) -> Result<u32, AccountsError> {
        Ok(self.store.recovery_codes_left(user.id).await?)
    }

    /// The session a cookie's token names, with its account and the account's name, or
    /// `None` when there is none (malformed, unknown, expired or its account disabled: the
    /// cookie can go). A session that has expired is ended here; one seen a while ago is
    /// marked as seen.
    pub async fn session_for(&self, token: &str) -> Result<Option<LiveSession>, AccountsError> {
        if !token::well_formed(token) {
            return Ok(None);
        }
        let digest = token::digest(token);
        let Some(session) = self.store.session(&digest).await? else { return Ok(None) };
        let now = self.clock.now();
        if session.expired(now) {
            if let Err(e) = self.store.delete_session(&digest, Alongside::none()).await {
                tracing::warn!(error = %e, "an expired session could not be removed");
            }
            return Ok(None);
        }
        let user = match self.store.user(session.user_id).await? {
            Some(u) if !u.disabled => u,
            _ => return Ok(None),
        };
        if (now - session.last_seen_at).num_seconds() >= TOUCH_EVERY_SECONDS
            && let Err(e) = self.store.touch_session(&digest, now).await
        {
            tracing::warn!(error = %e, "a session could not be marked as seen");
        }
        let name = self.profile(&user).map(|p| p.name).unwrap_or_default();
        Ok(Some(LiveSession { session, user, name }))
    }

    /// Ends one session, as signing out of this browser does.
    /// Signs out of one browser: the session ends with its audit entry, or neither.
    pub async fn end_session(&self, session: &SessionRecord, actor: &Actor) -> Result<(), AccountsError> {
        let audit = self.audit_event(actor, "sign_out", "user", Some(session.user_id.to_string()), "this browser");
        Ok(self.store.delete_session(&session.digest, Alongside::audited(audit)).await?)
    }

    /// Ends every session of an account, in every browser, with its audit entry; returns
    /// how many ended.
    pub async fn end_every_session(&self, user: &UserRecord, actor: &Actor) -> Result<u64, AccountsError> {
        let audit = self.audit_event(actor, "sign_out_everywhere", "user", Some(user.id.to_string()), "every browser");
        Ok(self.store.delete_user_sessions(user.id, Alongside::audited(audit)).await?)
    }

    /// The audit log as `admin` may read it: only the events of people with a grant in
    /// the areas they administer (none for anyone else). Reading it is itself recorded,
    /// as `action` ("audit.view", "audit.export") for `reason`, before it is shown.
    pub async fn audit_log(
        &self,
        admin: &UserRecord,
        actor: &Actor,
        mut query: AuditQuery,
        action: &str,
        reason: &str,
    ) -> Result<Vec<AuditEvent>, AccountsError> {
        let areas = areas_with(admin, Permission::Audit);
        query.people = Some(if areas.is_empty() {
            Vec::new()
        } else {
            people_within(&self.store.users().await?, &self.store.organisations().await?, &areas)
        });
        let events = self.store.audit(&query).await?;
        self.audit_read(actor, action, "audit_log", None, reason).await?;
        Ok(events)
    }

    /// Names for the people who acted in `events`, opened from their sealed form; one
    /// whose name cannot be opened is shown by id.
    pub async fn actor_names(&self, events: &[AuditEvent]) -> HashMap<Uuid, String> {
        let mut out = HashMap::new();
        for id in events.iter().filter_map(|e| e.actor) {
            if out.contains_key(&id) {
                continue;
            }
            let name = match self.store.user(id).await {
                Ok(Some(user)) => self.profile(&user).map(|p| p.name).unwrap_or_else(|_| id.to_string()),
                _ => id.to_string(),
            };
            out.insert(id, name);
        }
        out
    }

    /// Starts a session; returns the token for the cookie.
    /// Starts a session. A complete session with no purpose counts as having had every
    /// factor its account needs; one begun by a password alone is started with
    /// [`start_session_with`](Self::start_session_with) and `second_factor: false`.
    pub async fn start_session(
        &self,
        user_id: Uuid,
        stage: SessionStage,
        purpose: Option<(LinkPurpose, Uuid)>,
    ) -> Result<(String, SessionRecord), AccountsError> {
        let second_factor = stage == SessionStage::Complete && purpose.is_none();
        self.start_session_with(user_id, stage, purpose, second_factor).await
    }

    /// Starts a session, saying whether a second factor began it.
    pub async fn start_session_with(
        &self,
        user_id: Uuid,
        stage: SessionStage,
        purpose: Option<(LinkPurpose, Uuid)>,
        second_factor: bool,
    ) -> Result<(String, SessionRecord), AccountsError> {
        let (token, digest) = token::new_token();
        let now = self.clock.now();
        let session =
            SessionRecord { digest, user_id, stage, purpose, second_factor, created_at: now, last_seen_at: now };
        self.store.create_session(session.clone(), None, Alongside::none()).await?;
        Ok((token, session))
    }

    /// Signs `user` in, a step at a time: a new session (and token) for this step, which
    /// replaces the session of the step before (`replacing`), written in one transaction
    /// with its audit entry ("sign_in", or "sign_in_password" for a password still waiting
    /// for its second factor; `how` says by what). Returns the token for the cookie.
    pub async fn sign_in(
        &self,
        user: &UserRecord,
        replacing: Option<&SessionRecord>,
        step: SignInStep<'_>,
        actor: &Actor,
    ) -> Result<String, AccountsError> {
        let (token, digest) = token::new_token();
        let now = self.clock.now();
        let SignInStep { stage, purpose, second_factor, how } = step;
        let session = SessionRecord {
            digest,
            user_id: user.id,
            stage,
            purpose,
            second_factor,
            created_at: now,
            last_seen_at: now,
        };
        let action = if stage == SessionStage::Complete { "sign_in" } else { "sign_in_password" };
        let (record_type, record_id) = match purpose {
            Some((purpose, target)) => (purpose.as_str(), target.to_string()),
            None => ("user", user.id.to_string()),
        };
        let entry = self.audit_event(actor, action, record_type, Some(record_id), how);
        let replacing = replacing.map(|s| s.digest.clone());
        self.store.create_session(session, replacing, Alongside::audited(entry)).await?;
        Ok(token)
    }

    /// A single-use link for one purpose. Returns the token for the URL. `messages`
    /// builds, from the token, the messages that carry it (none when the caller shows the
    /// link itself); the link, its audit entry and its messages are written together.
    pub async fn issue_magic_link(
        &self,
        user: &UserRecord,
        purpose: LinkPurpose,
        target: Uuid,
        actor: &Actor,
        messages: impl FnOnce(&str) -> Vec<kith_domain::outbox::OutboxMessage>,
    ) -> Result<String, AccountsError> {
        if user.disabled {
            return Err(AccountsError::Invalid("This account is switched off".into()));
        }
        let (token, digest) = token::new_token();
        let now = self.clock.now();
        self.store
            .create_magic_link(
                MagicLink {
                    digest,
                    user_id: user.id,
                    purpose,
                    target,
                    created_at: now,
                    expires_at: now + Duration::minutes(purpose.lifetime_minutes()),
                    used_at: None,
                },
                Alongside {
                    audit: vec![self.audit_event(
                        actor,
                        "magic_link.issue",
                        purpose.as_str(),
                        Some(target.to_string()),
                        "sign-in link",
                    )],
                    outbox: messages(&token),
                },
            )
            .await?;
        Ok(token)
    }

    /// Whether another magic-link request for `who` (an email, or `ip:ADDRESS`) may go
    /// ahead now; records it.
    pub async fn allow_link_request(&self, who: &str) -> Result<bool, AccountsError> {
        match who.strip_prefix("ip:") {
            Some(ip) => self.allow_attempt(&format!("link-ip:{ip}"), LINK_REQUESTS * 10).await,
            None => self.allow_attempt(&format!("link:{}", self.email_index(who)), LINK_REQUESTS).await,
        }
    }

    /// Whether another attempt under `key` may go ahead: fewer than `limit` in the last
    /// [`WINDOW_MINUTES`]. Records it.
    pub async fn allow_attempt(&self, key: &str, limit: u32) -> Result<bool, AccountsError> {
        let now = self.clock.now();
        if self.store.attempts_since(key, now - Duration::minutes(WINDOW_MINUTES)).await? >= limit {
            return Ok(false);
        }
        self.store.record_attempt(key, now, true).await?;
        Ok(true)
    }

    /// Uses a magic link's token.
    pub async fn use_magic_link(&self, token: &str) -> Result<LinkUse, AccountsError> {
        if !token::well_formed(token) {
            return Ok(LinkUse::Unknown);
        }
        Ok(self.store.use_magic_link(&token::digest(token), self.clock.now()).await?)
    }

    /// Re-seals every sealed value that is not under the keyring's current key. Returns
    /// how many values changed.
    pub async fn reseal_all(&self) -> Result<u64, AccountsError> {
        let mut after = None;
        let mut changed = 0;
        loop {
            let batch = self.store.sealed_fields(after, 500).await?;
            let Some(last) = batch.last().map(|f| f.row_id) else { break };
            let mut stale = Vec::new();
            for mut f in batch.into_iter().filter(|f| !self.keyring.is_current(&f.value.0)) {
                debug_assert!(SEALED_FIELDS.contains(&f.field));
                let plain = self.open(f.field, f.row_id, &f.value)?;
                f.value = self.seal(f.field, f.row_id, &plain);
                stale.push(f);
            }
            changed += self.store.replace_sealed(stale).await?;
            after = Some(last);
        }
        Ok(changed)
    }
}
