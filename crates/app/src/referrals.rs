//! The referrals service: patients, signposts and referrals, with the rules that keep
//! personal data safe. Every read and write of a patient is authorised here, by role and
//! organisation, and audited; identifying details are sealed before the store sees them.
//! The web pages and the FHIR API both go through this, never round it.

use crate::accounts::{Accounts, Actor};
use chrono::NaiveDate;
use chrono::{DateTime, Duration, Utc};
use kith_domain::account::{Grant, OrgKind, Permission, Role, Scope, Sealed, UserRecord};
use kith_domain::disclosure::{Shown, ShownLinks, withhold_small};
use kith_domain::outbox::OutboxMessage;
use kith_domain::postcode::Postcode;
pub use kith_domain::referral::{Consent, PatientDetails, ReferralDetails};
use kith_domain::referral::{
    ContactMethod, DeclineReason, FollowUp, GroupShare, Instrument, LinksCount, MeasureRecord, NhsNumber, Ons4,
    Outcome, PatientRecord, ReferralEvent, ReferralKind, ReferralRecord, Reminder, Stage, TaskStatus,
};
use kith_store::accounts::seal_context;
use kith_store::referrals::{NewReferralRows, OutcomeWrite, ReferralQuery};
use kith_store::{Alongside, Store, StoreError};
use serde::Serialize;
use std::sync::Arc;
use uuid::Uuid;

/// Days from a referral to its follow-up, unless an organisation sets its own.
pub const FOLLOW_UP_DAYS: i64 = 28;

#[derive(Debug, thiserror::Error)]
pub enum ReferralError {
    /// Something the person can put right; the message says what.
    #[error("{0}")]
    Invalid(String),
    /// Not this person's to see or change.
    #[error("{0}")]
    Forbidden(String),
    #[error("no such {0}")]
    NotFound(&'static str),
    /// A referral the group may no longer see, beyond that it ended.
    #[error("{0}")]
    Ended(String),
    /// What was entered, with every problem and the field it belongs to.
    #[error("{}", .0.first().map_or("", |p| p.message.as_str()))]
    Fields(Vec<FieldProblem>),
    /// Someone else changed the referral first.
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Store(StoreError),
    #[error("sealed details could not be opened: {0}")]
    Keys(#[from] kith_crypto::KeyringError),
}

impl From<StoreError> for ReferralError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Conflict(m) => ReferralError::Conflict(m),
            e => ReferralError::Store(e),
        }
    }
}

/// A new patient, as entered.
#[derive(Debug, Clone)]
pub struct NewPatient {
    pub organisation_id: Uuid,
    pub name: String,
    pub birth_date: Option<NaiveDate>,
    /// As typed; checked with Modulus 11.
    pub nhs_number: Option<String>,
    pub local_id: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
    pub postcode: Option<String>,
    pub contact_method: ContactMethod,
    pub language: Option<String>,
}

/// A field of the signpost or referral form, so a problem is shown beside the field it
/// belongs to and never found by searching its message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FormField {
    NhsNumber,
    Name,
    BirthDate,
    Mobile,
    Email,
    Postcode,
    Kind,
    Reason,
    Consent,
    /// What happened at follow-up.
    Outcome,
    /// Why they stopped or never went.
    EndReason,
    /// The well-being questions, by the first.
    Wellbeing,
    /// The service a referral is re-routed to.
    Service,
    RerouteConsent,
}

impl FormField {
    /// The form field's name, which is also its element id.
    pub fn name(self) -> &'static str {
        match self {
            FormField::NhsNumber => "nhs_number",
            FormField::Name => "name",
            FormField::BirthDate => "birth_date",
            FormField::Mobile => "mobile",
            FormField::Email => "email",
            FormField::Postcode => "postcode",
            FormField::Kind => "kind",
            FormField::Reason => "reason",
            FormField::Consent => "consent",
            FormField::Outcome => "outcome",
            FormField::EndReason => "reason",
            FormField::Wellbeing => "ons4-1",
            FormField::Service => "service",
            FormField::RerouteConsent => "reroute_consent",
        }
    }
}

/// One thing wrong with what was entered, and where.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldProblem {
    pub field: FormField,
    pub message: String,
}

fn problem(field: FormField, message: impl Into<String>) -> FieldProblem {
    FieldProblem { field, message: message.into() }
}

/// A new patient's details once checked.
struct CheckedPatient {
    name: String,
    birth_date: NaiveDate,
    nhs_number: Option<NhsNumber>,
    local_id: Option<String>,
    mobile: Option<String>,
    email: Option<String>,
    postcode: Option<Postcode>,
}

/// Every problem with a new patient's details at once (the form shows them all), or the
/// details, parsed.
fn check_patient(new: &NewPatient, today: NaiveDate) -> Result<CheckedPatient, Vec<FieldProblem>> {
    let mut problems = Vec::new();
    let name = new.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 200 {
        problems.push(problem(FormField::Name, "Enter the person's name"));
    }
    let birth_date = match new.birth_date {
        None => {
            problems.push(problem(FormField::BirthDate, "Enter the person's date of birth"));
            None
        }
        Some(d) if d > today => {
            problems.push(problem(FormField::BirthDate, "The date of birth must be in the past"));
            None
        }
        Some(d) => Some(d),
    };
    let nhs_number = match new.nhs_number.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(typed) => match NhsNumber::parse(typed) {
            Ok(n) => Some(n),
            Err(e) => {
                problems.push(problem(FormField::NhsNumber, e.to_string()));
                None
            }
        },
        None => None,
    };
    let local_id = new.local_id.as_deref().map(str::trim).filter(|l| !l.is_empty()).map(str::to_owned);
    let nhs_typed = new.nhs_number.as_deref().is_some_and(|n| !n.trim().is_empty());
    if !nhs_typed && local_id.is_none() {
        problems.push(problem(
            FormField::NhsNumber,
            "Enter the NHS number, or the practice's own id for someone without one",
        ));
    }
    let mobile = match new.mobile.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(m) => {
            let parsed = kith_domain::contact::uk_mobile(m);
            if parsed.is_none() {
                problems.push(problem(FormField::Mobile, "Enter a UK mobile number, like 07700 900123"));
            }
            parsed
        }
        None => None,
    };
    let email = new.email.as_deref().map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned);
    if email.as_deref().is_some_and(|e| !kith_domain::contact::plausible_email(e)) {
        problems.push(problem(FormField::Email, "Enter an email address in the correct format"));
    }
    let mobile_typed = new.mobile.as_deref().is_some_and(|m| !m.trim().is_empty());
    match new.contact_method {
        ContactMethod::Text if !mobile_typed => {
            problems.push(problem(FormField::Mobile, "Give a mobile number to contact them by text"));
        }
        ContactMethod::Email if email.is_none() => {
            problems.push(problem(FormField::Email, "Give an email address to contact them by email"));
        }
        _ => {}
    }
    let postcode = match new.postcode.as_deref().map(str::trim).filter(|s| !s.is_empty()) {
        Some(p) => match Postcode::parse(p) {
            Ok(p) => Some(p),
            Err(e) => {
                problems.push(problem(FormField::Postcode, e.to_string()));
                None
            }
        },
        None => None,
    };
    match birth_date {
        Some(birth_date) if problems.is_empty() => {
            Ok(CheckedPatient { name, birth_date, nhs_number, local_id, mobile, email, postcode })
        }
        _ => Err(problems),
    }
}

/// A new signpost or referral, as entered.
#[derive(Debug, Clone)]
pub struct NewReferral {
    pub kind: ReferralKind,
    pub patient_id: Uuid,
    pub service_id: Uuid,
    pub reason: String,
    pub what_matters: String,
    /// (what, with whom): required for a referral.
    pub consent: Option<(String, String)>,
    pub safeguarding_note: Option<String>,
    /// Follow a signpost up too (referrals always are).
    pub follow_up_signpost: bool,
    /// ONS4 answers taken at the time, as a baseline.
    pub baseline: Option<Vec<u8>>,
}

/// The Links measure over a period: overall, by service and by practice.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinksReport {
    pub overall: LinksCount,
    /// (service id, service name, counts), most referred first.
    pub by_service: Vec<(Uuid, String, LinksCount)>,
    /// (practice id, practice name, counts), by name.
    pub by_practice: Vec<(Uuid, String, LinksCount)>,
    /// Whether the reader is staff at every practice in it, and so may see small counts.
    pub own_patients: bool,
}

/// The Links report as it is shown and downloaded: counts from 1 to 4 withheld, with
/// secondary suppression, unless the reader is the practice's own staff.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PublishedLinks {
    pub overall: ShownLinks,
    pub by_service: Vec<(Uuid, String, ShownLinks)>,
    pub by_practice: Vec<(Uuid, String, ShownLinks)>,
    /// Whether any count was withheld.
    pub withheld: bool,
}

impl LinksReport {
    pub fn published(&self) -> PublishedLinks {
        if self.own_patients {
            let exact = |rows: &[(Uuid, String, LinksCount)]| {
                rows.iter().map(|(id, name, c)| (*id, name.clone(), ShownLinks::exact(c))).collect()
            };
            return PublishedLinks {
                overall: ShownLinks::exact(&self.overall),
                by_service: exact(&self.by_service),
                by_practice: exact(&self.by_practice),
                withheld: false,
            };
        }
        let table = |rows: &[(Uuid, String, LinksCount)]| {
            let counts: Vec<LinksCount> = rows.iter().map(|(_, _, c)| c.clone()).collect();
            let (overall, shown) = withhold_small(&self.overall, &counts);
            let rows = rows.iter().zip(shown).map(|((id, name, _), c)| (*id, name.clone(), c)).collect::<Vec<_>>();
            (overall, rows)
        };
        let (overall, by_service) = table(&self.by_service);
        let (_, by_practice) = table(&self.by_practice);
        let withheld =
            [&overall].into_iter().chain(by_service.iter().map(|r| &r.2)).chain(by_practice.iter().map(|r| &r.2)).any(
                |c| [c.signposts, c.referrals, c.followed_up, c.started, c.still_attending].contains(&Shown::Withheld),
            );
        PublishedLinks { overall, by_service, by_practice, withheld }
    }
}

/// Which side of a referral someone sees it from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Viewing {
    /// The staff of the practice that made it.
    Practice,
    /// A member of the group it was sent to, while it is open.
    Group,
}

/// One referral as someone allowed sees it, built once for the referral page and the
/// FHIR API by [`Referrals::view`].
#[derive(Debug, Clone)]
pub struct ReferralView {
    pub referral: ReferralRecord,
    /// The sealed details, opened; for the group, what the consent covers.
    pub details: ReferralDetails,
    /// The person; for the group, their name and contact details.
    pub patient: PatientDetails,
    pub contact_method: ContactMethod,
    pub viewing: Viewing,
    /// The referring practice's name.
    pub practice: String,
    /// The group's name, when the referral went to a group on Kith.
    pub group: Option<String>,
    /// The service's name, unless it has gone from the directory.
    pub service: Option<String>,
    pub timeline: Vec<ReferralEvent>,
    /// The follow-up; for the group, only what the group itself reported.
    pub follow_up: Option<FollowUp>,
    /// The well-being answers; none for the group.
    pub measures: Vec<MeasureRecord>,
}

/// A referral in a group's inbox.
#[derive(Debug, Clone)]
pub struct InboxEntry {
    pub referral: ReferralRecord,
    /// The service's name, unless it has gone from the directory.
    pub service: Option<String>,
    /// The referring practice's name, unless it has left Kith.
    pub practice: Option<String>,
    /// The person's name and how they would like to be contacted, while the referral is
    /// open to the group.
    pub person: Option<(String, ContactMethod)>,
}

#[derive(Debug, Clone)]
pub struct Referrals {
    store: Arc<dyn Store>,
    accounts: Arc<Accounts>,
    /// Where Kith is reached, for links in messages.
    public_url: String,
    /// Days from a referral to its follow-up.
    follow_up_days: i64,
}

/// Whether a move to the status a referral already has is refused (a person pressed a
/// button twice, or two people did) or done already (a system repeats its request).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Repeat {
    Refused,
    AlreadyThere,
}

/// How someone stands to a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Side {
    Practice,
    Group(GroupShare),
    Neither,
}

fn ended_message(referral: &ReferralRecord) -> String {
    format!(
        "This referral has ended ({}). Kith no longer shows the person's details to your group.",
        referral.status.label().to_lowercase()
    )
}

fn grants_in(user: &UserRecord, permission: Permission) -> impl Iterator<Item = &Grant> {
    user.grants.iter().filter(move |g| g.role.allows(permission))
}

/// `news` to follow a colon mid-sentence: its first letter in lower case, and the rest,
/// which may name a service, as it is.
fn lowercase_first(news: &str) -> String {
    let mut chars = news.chars();
    chars.next().map(|c| c.to_lowercase().chain(chars).collect()).unwrap_or_default()
}

/// One problem, with the field it belongs to.
fn one_problem(field: FormField, message: impl Into<String>) -> ReferralError {
    ReferralError::Fields(vec![problem(field, message)])
}

fn require(cond: bool, message: &str) -> Result<(), ReferralError> {
    if cond { Ok(()) } else { Err(ReferralError::Invalid(message.into())) }
}

impl Referrals {
    pub fn new(store: Arc<dyn Store>, accounts: Arc<Accounts>, public_url: &str) -> Referrals {
        Referrals {
            store,
            accounts,
            public_url: public_url.trim_end_matches('/').to_owned(),
            follow_up_days: FOLLOW_UP_DAYS,
        }
    }

    /// Follow-ups fall due `days` after the referral rather than 28.
    pub fn with_follow_up_days(mut self, days: i64) -> Referrals {
        self.follow_up_days = days.max(1);
        self
    }

    /// Days from a referral to its follow-up.
    pub fn follow_up_days(&self) -> i64 {
        self.follow_up_days
    }

    /// The outcome measures in use. ONS4 is built in; a licensed scale is added here where
    /// the organisation holds the licence.
    pub fn instrument(&self) -> &'static dyn Instrument {
        &Ons4
    }

    /// The email telling the referrer that their referral moved, written with the move.
    /// It names no patient: it links to the referral, behind sign-in.
    async fn referrer_message(
        &self,
        referral: &ReferralRecord,
        news: &str,
    ) -> Result<Vec<OutboxMessage>, ReferralError> {
        let Some(referrer) = self.store.user(referral.referrer_user).await? else { return Ok(Vec::new()) };
        let email = self.accounts.profile(&referrer).map_err(|e| ReferralError::Invalid(e.to_string()))?.email;
        let service = self.store.service(referral.service_id).await?.map_or_else(|| "a service".to_owned(), |s| s.name);
        let body = format!(
            "A referral you made to {service}: {}.\n\nSee it in Kith: {}/referrals/{}\n",
            lowercase_first(news),
            self.public_url,
            referral.id
        );
        let outbox = self.outbox();
        Ok(vec![outbox.email_message(&email, &format!("Referral update: {news}"), &body, "referral_update")])
    }

    /// The outbox this service's messages are sealed for.
    fn outbox(&self) -> crate::notify::Outbox {
        crate::notify::Outbox::new(self.store.clone(), self.accounts.clone())
    }

    /// Who follows a referral up: the referrer if they are a link worker at the practice,
    /// otherwise the practice's first link worker, otherwise the referrer.
    async fn follow_up_assignee(&self, referrer: &UserRecord, practice: Uuid) -> Result<Uuid, ReferralError> {
        let link_worker = |u: &UserRecord| {
            !u.disabled
                && u.grants.iter().any(|g| g.role == Role::LinkWorker && g.scope == Scope::Organisation(practice))
        };
        if link_worker(referrer) {
            return Ok(referrer.id);
        }
        let mut workers: Vec<UserRecord> = self.store.users().await?.into_iter().filter(link_worker).collect();
        workers.sort_by_key(|u| (u.created_at, u.id));
        Ok(workers.first().map_or(referrer.id, |u| u.id))
    }

    /// The emails telling the group's members that a referral has come in, written with
    /// the referral. They name no one: they point to a page where a member asks for a link
    /// that opens the referral, or signs in.
    async fn group_messages(
        &self,
        referral: &ReferralRecord,
        service: &str,
    ) -> Result<Vec<OutboxMessage>, ReferralError> {
        let Some(group) = referral.group_id else { return Ok(Vec::new()) };
        let outbox = self.outbox();
        let body = format!(
            "A practice has referred someone to {service} through Kith.\n\nTo see who, and why, open {}/referrals/{}/link and ask for a link that opens it, or sign in to Kith and look in your group's referrals.\n\nThis email holds no personal details.\n\nKith\n",
            self.public_url, referral.id
        );
        let mut messages = Vec::new();
        for user in self.store.users().await? {
            if user.disabled || !user.member_of(group) {
                continue;
            }
            let Ok(profile) = self.accounts.profile(&user) else { continue };
            messages.push(outbox.email_message(
                &profile.email,
                &format!("A new referral to {service}"),
                &body,
                "new_referral",
            ));
        }
        Ok(messages)
    }

    /// How `user` stands to `referral`: its practice's staff see all of it; the group it
    /// was sent to, what the consent covers while it is open.
    fn side(user: &UserRecord, referral: &ReferralRecord) -> Side {
        if user.works_at(referral.referrer_org) {
            Side::Practice
        } else if referral.group_id.is_some_and(|g| user.member_of(g)) {
            Side::Group(referral.group_share())
        } else {
            Side::Neither
        }
    }

    fn seal<T: Serialize>(&self, field: &str, id: Uuid, value: &T) -> Result<Sealed, ReferralError> {
        let json = serde_json::to_string(value).map_err(|e| ReferralError::Invalid(e.to_string()))?;
        Ok(Sealed(self.accounts.keyring().seal(&json, &seal_context(field, id))))
    }

    fn open<T: serde::de::DeserializeOwned>(&self, field: &str, id: Uuid, sealed: &Sealed) -> Result<T, ReferralError> {
        let json = self.accounts.keyring().open(&sealed.0, &seal_context(field, id))?;
        serde_json::from_str(&json).map_err(|e| ReferralError::Invalid(format!("sealed details are damaged: {e}")))
    }

    /// Adds a (synthetic, in every test and demo) patient to a practice.
    pub async fn add_patient(
        &self,
        user: &UserRecord,
        actor: &Actor,
        new: NewPatient,
    ) -> Result<PatientRecord, ReferralError> {
        if !user.works_at(new.organisation_id) {
            return Err(ReferralError::Forbidden("Only staff of the practice can add its patients".into()));
        }
        let CheckedPatient { name, birth_date, nhs_number, local_id, mobile, email, postcode } =
            check_patient(&new, self.accounts.now().date_naive()).map_err(ReferralError::Fields)?;
        let (decile, neighbourhood) = match &postcode {
            Some(p) => match self.store.postcode(p).await? {
                Some(info) => (info.deprivation.first().map(|d| d.decile), info.place.ward.clone()),
                None => (None, None),
            },
            None => (None, None),
        };
        let id = Uuid::new_v4();
        let keyring = self.accounts.keyring();
        let details = PatientDetails {
            name,
            birth_date: Some(birth_date),
            nhs_number: nhs_number.clone(),
            local_id: local_id.clone(),
            email,
            mobile,
            phone: new.phone.map(|p| p.trim().to_owned()).filter(|p| !p.is_empty()),
            postcode: postcode.map(|p| p.as_str().to_owned()),
        };
        let record = PatientRecord {
            id,
            organisation_id: new.organisation_id,
            nhs_number_index: nhs_number.as_ref().map(|n| keyring.blind_index("nhs_number", n.as_str())),
            local_id_index: local_id
                .as_ref()
                .map(|l| keyring.blind_index("local_id", &format!("{}:{l}", new.organisation_id))),
            details: self.seal("patients.details", id, &details)?,
            contact_method: new.contact_method,
            language: new.language.filter(|l| !l.trim().is_empty()),
            deprivation_decile: decile,
            neighbourhood,
            created_at: self.accounts.now(),
        };
        let audit = self.accounts.audit_event(actor, "patient.create", "patient", Some(id.to_string()), "new patient");
        self.store.put_patient(record.clone(), Alongside::audited(audit)).await?;
        Ok(record)
    }

    /// The patient practice `practice` already holds with this NHS number, for its own
    /// staff, so a second record is not made for the same person. Finding one is audited
    /// as a read.
    pub async fn patient_with_nhs_number(
        &self,
        user: &UserRecord,
        actor: &Actor,
        practice: Uuid,
        nhs_number: &NhsNumber,
    ) -> Result<Option<PatientRecord>, ReferralError> {
        if !user.works_at(practice) {
            return Err(ReferralError::Forbidden("Only the practice's staff can look up its patients".into()));
        }
        let index = self.accounts.keyring().blind_index("nhs_number", nhs_number.as_str());
        let found = self.store.patient_by_nhs_index(practice, &index).await?;
        if let Some(p) = &found {
            self.accounts
                .audit_read(actor, "patient.read", "patient", Some(p.id.to_string()), "found by NHS number")
                .await?;
        }
        Ok(found)
    }

    /// A patient's details, for someone allowed to see them: staff of their practice, or
    /// a member of a group the patient has been referred to with consent.
    pub async fn patient_details(
        &self,
        user: &UserRecord,
        actor: &Actor,
        patient_id: Uuid,
        why: &str,
    ) -> Result<PatientDetails, ReferralError> {
        Ok(self.patient(user, actor, patient_id, why).await?.1)
    }

    /// A patient's record and their details opened, for someone allowed to see them: all
    /// of it for staff of their practice; for a member of a group the patient has been
    /// referred to with consent, only what the consent covers.
    pub async fn patient(
        &self,
        user: &UserRecord,
        actor: &Actor,
        patient_id: Uuid,
        why: &str,
    ) -> Result<(PatientRecord, PatientDetails), ReferralError> {
        let patient = self.store.patient(patient_id).await?.ok_or(ReferralError::NotFound("patient"))?;
        let practice = user.works_at(patient.organisation_id);
        let group = !practice && {
            let referrals = self.store.referrals_for_patient(patient_id).await?;
            referrals.iter().any(|r| Self::side(user, r) == Side::Group(GroupShare::Consented))
        };
        if !practice && !group {
            self.accounts.audit(actor, "patient.read_refused", "patient", Some(patient_id.to_string()), why).await;
            return Err(ReferralError::Forbidden("You cannot see this person's details".into()));
        }
        let reason = if practice { why.to_owned() } else { format!("{why}: what the consent covers") };
        self.accounts.audit_read(actor, "patient.read", "patient", Some(patient_id.to_string()), &reason).await?;
        let details: PatientDetails = self.open("patients.details", patient.id, &patient.details)?;
        let details = if practice { details } else { details.shared_with_group() };
        let patient = if practice {
            patient
        } else {
            // What the group is shown carries no place: not even the decile or the
            // neighbourhood the postcode gave.
            PatientRecord { deprivation_decile: None, neighbourhood: None, ..patient }
        };
        Ok((patient, details))
    }

    /// One referral as `user` may see it, read for `why` ("referral page", "FHIR API"):
    /// the same view for the referral page and the FHIR API, with every read audited. The
    /// practice that made it sees all of it; the group it was sent to sees, while it is
    /// open, what the consent covers: the person's name and contact details, the reason,
    /// the timeline and what the group itself reported, never the practice's follow-up or
    /// the well-being answers.
    pub async fn view(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        why: &str,
    ) -> Result<ReferralView, ReferralError> {
        // One audited read covers the referral, its timeline, its follow-up and, for the
        // practice, the well-being answers; the person's details are a read of their own.
        let (referral, details, side) = self.open_referral(user, actor, referral_id, "details and timeline").await?;
        let (record, patient) = self.patient(user, actor, referral.patient_id, why).await?;
        let viewing = if side == Side::Practice { Viewing::Practice } else { Viewing::Group };
        let measures = if viewing == Viewing::Practice { self.store.measures(referral_id).await? } else { Vec::new() };
        let follow_up = self.store.follow_up(referral_id).await?;
        let mut timeline = self.store.timeline(referral_id).await?;
        let follow_up = match (viewing, follow_up) {
            (Viewing::Group, Some(f)) => {
                // The practice's own follow-up is not the group's to read: its entry in
                // the timeline says only that it was recorded.
                for event in &mut timeline {
                    if f.outcome_at == Some(event.at) && f.outcome_by.is_some() && event.actor == f.outcome_by {
                        event.note = "The practice recorded its follow-up".to_owned();
                    }
                }
                Some(FollowUp {
                    reminded_at: None,
                    escalated_at: None,
                    outcome: None,
                    outcome_at: None,
                    outcome_by: None,
                    assignee: Uuid::nil(),
                    ..f
                })
            }
            (_, f) => f,
        };
        let name = |id: Uuid| async move { self.store.organisation(id).await.map(|o| o.map(|o| o.name)) };
        let practice = name(referral.referrer_org).await?.unwrap_or_else(|| "A practice no longer on Kith".into());
        let group = match referral.group_id {
            Some(g) => name(g).await?,
            None => None,
        };
        let service = self.store.service(referral.service_id).await?.map(|s| s.name);
        Ok(ReferralView {
            contact_method: record.contact_method,
            referral,
            details,
            patient,
            viewing,
            practice,
            group,
            service,
            timeline,
            follow_up,
            measures,
        })
    }

    /// A group's inboxes: the referrals sent to each group `user` is a member of, newest
    /// first, with who the person is while the referral is open to the group. Each
    /// person's details read is audited.
    pub async fn inboxes(&self, user: &UserRecord, actor: &Actor) -> Result<Vec<InboxEntry>, ReferralError> {
        let groups: Vec<Uuid> = user.groups().collect();
        let organisations = self.store.organisations().await?;
        let mut out = Vec::new();
        for group in groups {
            let inbox = self.inbox(user, actor, group).await?;
            let ids: Vec<Uuid> = inbox.iter().map(|r| r.service_id).collect();
            let names: std::collections::HashMap<Uuid, String> =
                self.store.service_names(&ids).await?.into_iter().collect();
            for referral in inbox {
                // Who, only while the referral is open to the group.
                let person = match referral.group_share() {
                    GroupShare::Consented => match self.patient(user, actor, referral.patient_id, "inbox").await {
                        Ok((record, details)) => Some((details.name, record.contact_method)),
                        Err(ReferralError::Forbidden(_) | ReferralError::NotFound(_)) => None,
                        Err(e) => return Err(e),
                    },
                    _ => None,
                };
                out.push(InboxEntry {
                    service: names.get(&referral.service_id).cloned(),
                    practice: organisations.iter().find(|o| o.id == referral.referrer_org).map(|o| o.name.clone()),
                    person,
                    referral,
                });
            }
        }
        Ok(out)
    }

    /// An outcome measure by its id, for the staff of the practice that recorded it.
    pub async fn measure(
        &self,
        user: &UserRecord,
        actor: &Actor,
        measure_id: Uuid,
    ) -> Result<MeasureRecord, ReferralError> {
        let measure = self.store.measure(measure_id).await?.ok_or(ReferralError::NotFound("measure"))?;
        // The practice's record: the consent does not cover it, so no group sees it.
        self.measures(user, actor, measure.referral_id).await?;
        Ok(measure)
    }

    /// Moves a referral to `to`, as [`act`](Self::act) does, unless it is there already.
    pub async fn move_to(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        to: TaskStatus,
        note: &str,
    ) -> Result<(), ReferralError> {
        self.change(user, actor, referral_id, to, note, Repeat::AlreadyThere).await.map(|_| ())
    }

    /// Checks what a signpost or referral needs before anything is written: a reason
    /// of sensible length, consent for a referral, and a service that takes referrals
    /// through Kith. A form calls this before it adds a new patient, so a refused
    /// referral leaves no patient behind.
    pub async fn check_new(
        &self,
        kind: ReferralKind,
        service_id: Uuid,
        reason: &str,
        consent: Option<&(String, String)>,
    ) -> Result<(), ReferralError> {
        let service = self.store.service(service_id).await?.ok_or(ReferralError::NotFound("service"))?;
        self.referral_problems(kind, &service, reason, consent).await
    }

    /// [`check_new`](Self::check_new) for a service already read: every problem at once.
    async fn referral_problems(
        &self,
        kind: ReferralKind,
        service: &kith_domain::hsds::Service,
        reason: &str,
        consent: Option<&(String, String)>,
    ) -> Result<(), ReferralError> {
        let reason = reason.trim();
        let mut problems = Vec::new();
        if reason.chars().count() > 2000 {
            problems.push(problem(FormField::Reason, "Keep the reason to 2000 characters"));
        }
        if kind == ReferralKind::Referral {
            match consent {
                None => problems.push(problem(
                    FormField::Consent,
                    "Record the person's consent to share their details with the group before referring",
                )),
                Some((what, _)) if what.trim().is_empty() => {
                    problems.push(problem(FormField::Consent, "Say what the person agreed to share"));
                }
                Some((_, with_whom)) if with_whom.trim().is_empty() => {
                    problems.push(problem(FormField::Consent, "Say who the person agreed to share it with"));
                }
                Some(_) => {}
            }
            if reason.is_empty() {
                problems.push(problem(FormField::Reason, "Give the reason for the referral"));
            }
            if self.group_for(service).await?.is_none() {
                problems.push(problem(
                    FormField::Kind,
                    format!(
                        "{} does not take referrals through Kith yet; signpost the person to it instead",
                        service.name
                    ),
                ));
            }
        }
        if problems.is_empty() { Ok(()) } else { Err(ReferralError::Fields(problems)) }
    }

    /// Every problem with a new patient's details, for a form that shows them all at once.
    pub fn patient_problems(&self, new: &NewPatient) -> Vec<FieldProblem> {
        check_patient(new, self.accounts.now().date_naive()).err().unwrap_or_default()
    }

    /// Records a signpost, or sends a referral with consent. The group that runs the
    /// service receives a referral in its inbox.
    pub async fn refer(
        &self,
        user: &UserRecord,
        actor: &Actor,
        new: NewReferral,
    ) -> Result<ReferralRecord, ReferralError> {
        let patient = self.store.patient(new.patient_id).await?.ok_or(ReferralError::NotFound("patient"))?;
        if !user.works_at(patient.organisation_id) {
            return Err(ReferralError::Forbidden("Only staff of the person's practice can refer them".into()));
        }
        let service = self.store.service(new.service_id).await?.ok_or(ReferralError::NotFound("service"))?;
        self.referral_problems(new.kind, &service, &new.reason, new.consent.as_ref()).await?;
        let reason = new.reason.trim().to_owned();
        let now = self.accounts.now();
        let consent = match (new.kind, new.consent) {
            (ReferralKind::Referral, Some((what, with_whom))) => {
                Some(Consent { what, with_whom, given_at: now, recorded_by: user.id })
            }
            _ => None,
        };
        let group = self.group_for(&service).await?.map(|(id, _)| id);
        let id = Uuid::new_v4();
        let details = ReferralDetails {
            reason,
            what_matters: new.what_matters.trim().to_owned(),
            consent,
            safeguarding_note: new.safeguarding_note.clone().filter(|n| !n.trim().is_empty()),
        };
        let (status, note) = match new.kind {
            ReferralKind::Referral => (TaskStatus::Requested, "Referral sent"),
            ReferralKind::Signpost => (TaskStatus::Completed, "Information given"),
        };
        let record = ReferralRecord {
            id,
            kind: new.kind,
            patient_id: patient.id,
            service_id: service.id,
            // A signpost is the practice's own record: no group sees it.
            group_id: group.filter(|_| new.kind == ReferralKind::Referral),
            referrer_user: user.id,
            referrer_org: patient.organisation_id,
            status,
            details: self.seal("referrals.details", id, &details)?,
            safeguarding: details.safeguarding_note.is_some(),
            created_at: now,
            follow_up_due: (new.kind == ReferralKind::Referral || new.follow_up_signpost)
                .then(|| now + Duration::days(self.follow_up_days)),
        };
        let baseline = match new.baseline {
            Some(answers) => {
                self.instrument().check(&answers).map_err(|m| one_problem(FormField::Wellbeing, m))?;
                Some(MeasureRecord {
                    id: Uuid::new_v4(),
                    referral_id: id,
                    patient_id: patient.id,
                    instrument: self.instrument().id().to_owned(),
                    stage: Stage::Baseline,
                    answers,
                    taken_at: now,
                    recorded_by: user.id,
                })
            }
            None => None,
        };
        let assignee = self.follow_up_assignee(user, patient.organisation_id).await?;
        let follow_up = record.follow_up_due.map(|due_at| FollowUp::new(id, due_at, assignee));
        let first = ReferralEvent { seq: 0, referral_id: id, at: now, actor: Some(user.id), status, note: note.into() };
        // The referral, its audit entry and the group's emails go together or not at all.
        let action = format!("{}.create", new.kind.as_str());
        let also = Alongside {
            audit: vec![self.accounts.audit_event(actor, &action, "referral", Some(id.to_string()), &service.name)],
            outbox: self.group_messages(&record, &service.name).await?,
        };
        self.store
            .create_referrals(vec![NewReferralRows { referral: record.clone(), first, follow_up, baseline }], also)
            .await?;
        Ok(record)
    }

    /// Moves a referral on: the group accepts, declines or waitlists it; the referrer
    /// cancels it. Only those two sides may, and only by the state machine's rules.
    pub async fn act(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        to: TaskStatus,
        note: &str,
    ) -> Result<ReferralRecord, ReferralError> {
        self.change(user, actor, referral_id, to, note, Repeat::Refused).await
    }

    /// [`act`](Self::act) and [`move_to`](Self::move_to): one read of the referral, the
    /// checks of who may move it, then the move unless `repeat` allows it to be there.
    async fn change(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        to: TaskStatus,
        note: &str,
        repeat: Repeat,
    ) -> Result<ReferralRecord, ReferralError> {
        let referral = self.store.referral(referral_id).await?.ok_or(ReferralError::NotFound("referral"))?;
        let side = Self::side(user, &referral);
        if side == Side::Group(GroupShare::Ended) {
            return Err(ReferralError::Ended(ended_message(&referral)));
        }
        let group_side = side == Side::Group(GroupShare::Consented);
        let referrer_side = user.works_at(referral.referrer_org);
        let allowed = match to {
            TaskStatus::Received
            | TaskStatus::Accepted
            | TaskStatus::Rejected
            | TaskStatus::OnHold
            | TaskStatus::InProgress => group_side,
            TaskStatus::Cancelled => referrer_side,
            TaskStatus::Completed | TaskStatus::Failed => group_side || referrer_side,
            TaskStatus::Requested => false,
        };
        if !allowed {
            self.accounts
                .audit(actor, "referral.change_refused", "referral", Some(referral_id.to_string()), to.code())
                .await;
            return Err(ReferralError::Forbidden("This referral is not yours to change".into()));
        }
        if repeat == Repeat::AlreadyThere && referral.status == to {
            return Ok(referral);
        }
        referral.status.transition(to).map_err(|e| ReferralError::Invalid(e.to_string()))?;
        if to == TaskStatus::Rejected {
            require(!note.trim().is_empty(), "Choose why the referral is declined")?;
        }
        // The timeline is stored in the clear, so it holds a reason from the list, never
        // free text that could say something about the person.
        let note = match DeclineReason::from_note(note) {
            Some(reason) => reason.label(),
            None if note.trim().is_empty() => "",
            None => {
                return Err(ReferralError::Invalid(
                    "Choose a reason from the list. Kith keeps no free-text note on the timeline; write anything more in your own records".into(),
                ));
            }
        };
        let now = self.accounts.now();
        let event = ReferralEvent { seq: 0, referral_id, at: now, actor: Some(user.id), status: to, note: note.into() };
        let also = Alongside {
            audit: vec![self.accounts.audit_event(
                actor,
                "referral.status",
                "referral",
                Some(referral_id.to_string()),
                to.code(),
            )],
            outbox: if user.id == referral.referrer_user {
                Vec::new()
            } else {
                self.referrer_message(&referral, to.label()).await?
            },
        };
        if !self.store.move_referral(referral_id, referral.status, event, also).await? {
            return Err(ReferralError::Conflict(
                "Someone else changed this referral a moment ago. Look at it again before you change it.".into(),
            ));
        }
        Ok(ReferralRecord { status: to, ..referral })
    }

    /// The sealed part of a referral, for its referrer's practice or its group.
    pub async fn referral_details(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
    ) -> Result<(ReferralRecord, ReferralDetails), ReferralError> {
        let (referral, details, _) = self.open_referral(user, actor, referral_id, "details").await?;
        Ok((referral, details))
    }

    /// A referral and its sealed details opened, with how `user` stands to it, once the
    /// read is allowed and audited (`what` says what was read); refused and audited as
    /// refused otherwise.
    async fn open_referral(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        what: &str,
    ) -> Result<(ReferralRecord, ReferralDetails, Side), ReferralError> {
        let referral = self.store.referral(referral_id).await?.ok_or(ReferralError::NotFound("referral"))?;
        let side = Self::side(user, &referral);
        match side {
            Side::Practice | Side::Group(GroupShare::Consented) => {}
            Side::Group(GroupShare::Ended) => {
                self.accounts
                    .audit(actor, "referral.read_refused", "referral", Some(referral_id.to_string()), "ended")
                    .await;
                return Err(ReferralError::Ended(ended_message(&referral)));
            }
            Side::Group(GroupShare::Nothing) | Side::Neither => {
                self.accounts
                    .audit(actor, "referral.read_refused", "referral", Some(referral_id.to_string()), what)
                    .await;
                return Err(ReferralError::Forbidden("You cannot see this referral".into()));
            }
        }
        self.accounts.audit_read(actor, "referral.read", "referral", Some(referral_id.to_string()), what).await?;
        let details: ReferralDetails = self.open("referrals.details", referral.id, &referral.details)?;
        let details = if side == Side::Practice { details } else { details.shared_with_group() };
        Ok((referral, details, side))
    }

    /// A referral's outcome measures (ONS4 answers) and its follow-up, for the staff of
    /// the practice that made it. The consent does not cover them, so a group never sees
    /// them.
    pub async fn measures(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
    ) -> Result<(ReferralRecord, Vec<MeasureRecord>, Option<FollowUp>), ReferralError> {
        let referral = self.store.referral(referral_id).await?.ok_or(ReferralError::NotFound("referral"))?;
        if Self::side(user, &referral) != Side::Practice {
            self.accounts
                .audit(actor, "referral.read_refused", "referral", Some(referral_id.to_string()), "measures")
                .await;
            return Err(ReferralError::Forbidden("Only the person's practice sees their well-being answers".into()));
        }
        let (measures, follow_up) = (self.store.measures(referral_id).await?, self.store.follow_up(referral_id).await?);
        self.accounts.audit_read(actor, "referral.read", "referral", Some(referral_id.to_string()), "measures").await?;
        Ok((referral, measures, follow_up))
    }

    /// A group's inbox: the referrals sent to it, for its members only.
    pub async fn inbox(
        &self,
        user: &UserRecord,
        actor: &Actor,
        group_id: Uuid,
    ) -> Result<Vec<ReferralRecord>, ReferralError> {
        if !user.member_of(group_id) {
            return Err(ReferralError::Forbidden("You can see only your own group's referrals".into()));
        }
        self.accounts.audit_read(actor, "referral.inbox", "organisation", Some(group_id.to_string()), "inbox").await?;
        Ok(self.store.referrals_for_group(group_id, 500).await?)
    }

    /// The community group that takes referrals for a service, if it is on Kith.
    pub async fn group_for(
        &self,
        service: &kith_domain::hsds::Service,
    ) -> Result<Option<(Uuid, String)>, ReferralError> {
        let orgs = self.store.organisations().await?;
        Ok(orgs
            .into_iter()
            .find(|o| o.kind == OrgKind::Vcs && o.directory_id.is_some() && o.directory_id == service.organization_id)
            .map(|o| (o.id, o.name)))
    }

    /// Records how the person got on. The referrer's practice records the follow-up
    /// (closing it, with ONS4 answers if the person gave them); the group reports
    /// attendance. The referral moves where the outcome says, if the state machine allows.
    pub async fn record_outcome(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        outcome: Outcome,
        answers: Option<Vec<u8>>,
    ) -> Result<ReferralRecord, ReferralError> {
        let referral = self.store.referral(referral_id).await?.ok_or(ReferralError::NotFound("referral"))?;
        let referrer_side = user.works_at(referral.referrer_org);
        let group_side = Self::side(user, &referral) == Side::Group(GroupShare::Consented);
        if !referrer_side && !group_side {
            self.accounts
                .audit(actor, "referral.outcome_refused", "referral", Some(referral_id.to_string()), outcome.code())
                .await;
            return Err(ReferralError::Forbidden("This referral is not yours to follow up".into()));
        }
        let follow_up = self.store.follow_up(referral_id).await?.ok_or_else(|| {
            ReferralError::Invalid("This signpost has no follow-up; there is nothing to record".into())
        })?;
        let by_group = !referrer_side;
        if !by_group && !follow_up.is_open() {
            return Err(ReferralError::Invalid(
                "The follow-up has been recorded already; look at the timeline for what was found".into(),
            ));
        }
        let now = self.accounts.now();
        let measure = match answers {
            Some(_) if by_group => {
                return Err(one_problem(
                    FormField::Wellbeing,
                    "Well-being answers are recorded by the person's practice",
                ));
            }
            Some(answers) => {
                self.instrument().check(&answers).map_err(ReferralError::Invalid)?;
                Some(MeasureRecord {
                    id: Uuid::new_v4(),
                    referral_id,
                    patient_id: referral.patient_id,
                    instrument: self.instrument().id().to_owned(),
                    stage: Stage::FollowUp,
                    answers,
                    taken_at: now,
                    recorded_by: user.id,
                })
            }
            None => None,
        };
        let to = outcome.status().filter(|s| referral.status.can_become(*s)).unwrap_or(referral.status);
        let note = if by_group {
            format!("{} (reported by the group)", outcome.describe())
        } else {
            format!("Follow-up: {}", outcome.describe())
        };
        let event =
            ReferralEvent { seq: 0, referral_id, at: now, actor: Some(user.id), status: to, note: note.clone() };
        let write = OutcomeWrite { referral_id, outcome, by_group, from: referral.status, event, measure };
        let also = Alongside {
            audit: vec![self.accounts.audit_event(
                actor,
                "referral.outcome",
                "referral",
                Some(referral_id.to_string()),
                outcome.code(),
            )],
            outbox: if by_group { self.referrer_message(&referral, &note).await? } else { Vec::new() },
        };
        if !self.store.record_outcome(write, also).await? {
            return Err(ReferralError::Conflict(
                "Someone else changed this referral a moment ago. Look at it again before you record this.".into(),
            ));
        }
        Ok(ReferralRecord { status: to, ..referral })
    }

    /// Sends the referral on to another service: this one is declined as re-routed, and a
    /// new referral, with the same details, goes to the group that runs the other. The
    /// person must have agreed to their details going to the new group.
    pub async fn reroute(
        &self,
        user: &UserRecord,
        actor: &Actor,
        referral_id: Uuid,
        service_id: Uuid,
        consent_confirmed: bool,
    ) -> Result<ReferralRecord, ReferralError> {
        let (referral, details) = self.referral_details(user, actor, referral_id).await?;
        referral.status.transition(TaskStatus::Rejected).map_err(|e| ReferralError::Invalid(e.to_string()))?;
        require(referral.kind == ReferralKind::Referral, "Only a referral can be re-routed")?;
        require(service_id != referral.service_id, "Choose a different service to re-route to")?;
        let service = self.store.service(service_id).await?.ok_or_else(|| {
            ReferralError::Invalid("There is no service with that id; copy it from the service's page".into())
        })?;
        let Some((group, group_name)) = self.group_for(&service).await? else {
            return Err(ReferralError::Invalid(format!(
                "{} does not take referrals through Kith yet; choose another service",
                service.name
            )));
        };
        if !consent_confirmed {
            return Err(one_problem(
                FormField::RerouteConsent,
                "Confirm the person agreed to their details going to the new group",
            ));
        }
        let from = self.store.service(referral.service_id).await?.map_or_else(|| "a service".to_owned(), |s| s.name);
        let now = self.accounts.now();
        let id = Uuid::new_v4();
        let moved = ReferralDetails {
            consent: details.consent.map(|c| Consent {
                with_whom: group_name,
                given_at: now,
                recorded_by: user.id,
                ..c
            }),
            ..details
        };
        let record = ReferralRecord {
            id,
            service_id,
            group_id: Some(group),
            status: TaskStatus::Requested,
            details: self.seal("referrals.details", id, &moved)?,
            created_at: now,
            follow_up_due: Some(now + Duration::days(self.follow_up_days)),
            ..referral.clone()
        };
        let assignee = self.store.follow_up(referral_id).await?.map_or(referral.referrer_user, |f| f.assignee);
        let follow_up = FollowUp::new(id, now + Duration::days(self.follow_up_days), assignee);
        let first = ReferralEvent {
            seq: 0,
            referral_id: id,
            at: now,
            actor: Some(user.id),
            status: TaskStatus::Requested,
            note: format!("Re-routed from {from}"),
        };
        let declined = ReferralEvent {
            seq: 0,
            referral_id,
            at: now,
            actor: Some(user.id),
            status: TaskStatus::Rejected,
            note: format!("Re-routed to {}", service.name),
        };
        let rows = NewReferralRows { referral: record.clone(), first, follow_up: Some(follow_up), baseline: None };
        let also = Alongside {
            audit: vec![self.accounts.audit_event(
                actor,
                "referral.reroute",
                "referral",
                Some(referral_id.to_string()),
                &id.to_string(),
            )],
            outbox: if user.id == referral.referrer_user {
                Vec::new()
            } else {
                self.referrer_message(&referral, &format!("re-routed to {}", service.name)).await?
            },
        };
        if !self.store.reroute_referral(referral_id, referral.status, declined, rows, also).await? {
            return Err(ReferralError::Conflict(
                "Someone else changed this referral a moment ago. Look at it again before you re-route it.".into(),
            ));
        }
        Ok(record)
    }

    /// The practices whose patients `user` works with directly.
    fn practices_of(user: &UserRecord) -> Vec<Uuid> {
        user.practices().collect()
    }

    /// The organisations whose referrals `user` may see: the practices they work at and
    /// the groups they belong to.
    pub fn visible_to(user: &UserRecord) -> Vec<Uuid> {
        let mut orgs = Self::practices_of(user);
        orgs.extend(user.groups());
        orgs.sort();
        orgs.dedup();
        orgs
    }

    /// Referrals `user` may see, matching `query` (whose `visible_to` is replaced).
    pub async fn search(
        &self,
        user: &UserRecord,
        actor: &Actor,
        mut query: ReferralQuery,
    ) -> Result<Vec<ReferralRecord>, ReferralError> {
        query.visible_to = Self::visible_to(user);
        if query.visible_to.is_empty() {
            return Err(ReferralError::Forbidden("You cannot see referrals".into()));
        }
        self.accounts.audit_read(actor, "referral.search", "referral", None, "search").await?;
        Ok(self.store.search_referrals(&query).await?)
    }

    /// The follow-ups open at the practices `user` works at, soonest due first, with
    /// their referrals.
    pub async fn follow_ups(
        &self,
        user: &UserRecord,
        actor: &Actor,
    ) -> Result<Vec<(FollowUp, ReferralRecord)>, ReferralError> {
        let practices = Self::practices_of(user);
        if practices.is_empty() {
            return Err(ReferralError::Forbidden("Follow-ups are for practice staff".into()));
        }
        let mut out = Vec::new();
        for practice in practices {
            for f in self.store.open_follow_ups(practice, 500).await? {
                if let Some(r) = self.store.referral(f.referral_id).await? {
                    out.push((f, r));
                }
            }
        }
        out.sort_by_key(|(f, _)| f.due_at);
        self.accounts.audit_read(actor, "referral.follow_ups", "referral", None, "follow-ups").await?;
        Ok(out)
    }

    /// Sends the follow-up reminders now due, through the outbox: to the person it is
    /// assigned to when due, and to them, the referrer and the practice's link workers a
    /// week later.
    /// Each is sent once, however many instances sweep. Returns how many were sent.
    pub async fn send_reminders(&self) -> Result<usize, ReferralError> {
        let now = self.accounts.now();
        let outbox = self.outbox();
        let mut sent = 0;
        for (follow_up, which) in self.store.reminders_due(now, 200).await? {
            if !self.store.mark_reminded(follow_up.referral_id, which, now).await? {
                continue;
            }
            let Some(referral) = self.store.referral(follow_up.referral_id).await? else { continue };
            let service =
                self.store.service(referral.service_id).await?.map_or_else(|| "a service".to_owned(), |s| s.name);
            let link = format!("{}/referrals/{}", self.public_url, referral.id);
            let made = kith_domain::opening::uk_local(referral.created_at).format("%-d %B %Y");
            let mut to = vec![follow_up.assignee];
            if which == Reminder::Overdue {
                to.push(referral.referrer_user);
            }
            let (subject, body) = match which {
                Reminder::Due => (
                    "A follow-up is due".to_owned(),
                    format!(
                        "It is time to ask how someone got on with {service}, which they were referred to on {made}.\n\nRecord what they say in Kith: {link}\n"
                    ),
                ),
                Reminder::Overdue => {
                    let users = self.store.users().await?;
                    to.extend(
                        users
                            .iter()
                            .filter(|u| {
                                u.grants.iter().any(|g| {
                                    g.role == Role::LinkWorker && g.scope == Scope::Organisation(referral.referrer_org)
                                })
                            })
                            .map(|u| u.id),
                    );
                    (
                        "A follow-up is overdue".to_owned(),
                        format!(
                            "A follow-up is a week overdue: the referral to {service} on {made}. Could you, or a link worker at the practice, ask how they got on?\n\nRecord it in Kith: {link}\n"
                        ),
                    )
                }
            };
            to.sort();
            to.dedup();
            for id in to {
                let Some(person) = self.store.user(id).await? else { continue };
                let Ok(profile) = self.accounts.profile(&person) else { continue };
                outbox.email(&profile.email, &subject, &body, "follow_up_reminder").await?;
                sent += 1;
            }
        }
        Ok(sent)
    }

    /// How referrals to a service turned out over the last year, for those who look after
    /// the listing or fund services: curators, report readers, and the group that runs it.
    /// `None` for anyone else. Counts only; nobody is named.
    pub async fn service_outcomes(
        &self,
        user: &UserRecord,
        service: &kith_domain::hsds::Service,
    ) -> Result<Option<LinksCount>, ReferralError> {
        let curates =
            user.grants.iter().any(|g| g.role.allows(Permission::Curate) || g.role.allows(Permission::Reports));
        let runs_it = match self.group_for(service).await? {
            Some((group, _)) => user.member_of(group),
            None => false,
        };
        if !curates && !runs_it {
            return Ok(None);
        }
        let now = self.accounts.now();
        Ok(Some(self.store.links_for_service(service.id, now - Duration::days(365), now + Duration::days(1)).await?))
    }

    /// The practices whose figures `user` may see: every practice in the scope of a grant
    /// that allows reports.
    async fn report_practices(&self, user: &UserRecord) -> Result<Vec<(Uuid, String)>, ReferralError> {
        let orgs = self.store.organisations().await?;
        let mut out: Vec<(Uuid, String)> = orgs
            .into_iter()
            .filter(|o| o.kind == OrgKind::Practice)
            .filter(|o| {
                grants_in(user, Permission::Reports).any(|g| match g.scope {
                    Scope::Organisation(id) => id == o.id,
                    Scope::Area(area) => o.areas.contains(&area),
                })
            })
            .map(|o| (o.id, o.name))
            .collect();
        out.sort_by(|a, b| a.1.cmp(&b.1));
        Ok(out)
    }

    /// The Links measure for signposts and referrals made in `[from, before)`: how many
    /// were signposted and referred, followed up, started, and still attending at the
    /// follow-up, overall, by service and by practice.
    pub async fn links_report(
        &self,
        user: &UserRecord,
        actor: &Actor,
        from: DateTime<Utc>,
        before: DateTime<Utc>,
    ) -> Result<LinksReport, ReferralError> {
        let practices = self.report_practices(user).await?;
        if practices.is_empty() {
            return Err(ReferralError::Forbidden("The Links report is for link workers and commissioners".into()));
        }
        let rows = self.store.links_counts(from, before).await?;
        let own_patients = practices.iter().all(|(id, _)| user.works_at(*id));
        let mut report = LinksReport { own_patients, ..LinksReport::default() };
        let mut by_service: std::collections::HashMap<Uuid, LinksCount> = std::collections::HashMap::new();
        let mut by_practice: std::collections::HashMap<Uuid, LinksCount> = std::collections::HashMap::new();
        for row in rows.iter().filter(|r| practices.iter().any(|(id, _)| *id == r.practice)) {
            report.overall.add(&row.count);
            by_service.entry(row.service).or_default().add(&row.count);
            by_practice.entry(row.practice).or_default().add(&row.count);
        }
        for (id, name) in &practices {
            if let Some(count) = by_practice.remove(id) {
                report.by_practice.push((*id, name.clone(), count));
            }
        }
        let services = self.store.service_names(&by_service.keys().copied().collect::<Vec<_>>()).await?;
        for (id, count) in by_service {
            let name = services
                .iter()
                .find(|(s, _)| *s == id)
                .map_or_else(|| "A service no longer listed".to_owned(), |(_, name)| name.clone());
            report.by_service.push((id, name, count));
        }
        report.by_service.sort_by(|a, b| {
            (b.2.referrals + b.2.signposts).cmp(&(a.2.referrals + a.2.signposts)).then_with(|| a.1.cmp(&b.1))
        });
        self.accounts.audit(actor, "report.links", "report", None, "links").await;
        Ok(report)
    }
}
