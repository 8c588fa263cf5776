//! Who uses Kith and what they may do: organisations (GP practices and community
//! groups), areas (a PCN or neighbourhood), users, and the roles each user holds in an
//! organisation or area. Also the records sign-in keeps: sessions, magic links and the
//! audit log.
//!
//! Fields that identify a person are [`Sealed`]: the store only ever sees them encrypted.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Declares a string-valued enum with its stored names, `as_str`, `parse` and `ALL`.
macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum $name { $($(#[$vmeta])* $variant),+ }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name stored in the database and used in URLs and JSON.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum! {
    /// What kind of organisation uses Kith.
    OrgKind { Practice = "practice", Vcs = "vcs" }
}

named_enum! {
    /// What kind of area groups organisations.
    AreaKind { Pcn = "pcn", Neighbourhood = "neighbourhood" }
}

named_enum! {
    /// A role a person holds in one organisation or area.
    Role {
        /// Reception and care navigation: finds services, signposts, refers.
        Receptionist = "receptionist",
        /// GP, nurse or other clinician.
        Clinician = "clinician",
        /// Link worker or social prescriber: holds a caseload.
        LinkWorker = "link_worker",
        /// A member of a community group: its listing and the referrals sent to it.
        VcsMember = "vcs_member",
        /// Keeps the shared directory true.
        Curator = "curator",
        /// Runs Kith for an area: users, organisations, the audit log.
        AreaAdmin = "area_admin",
        /// Sees aggregate figures only, never a patient.
        Commissioner = "commissioner",
    }
}

named_enum! {
    /// Something a role allows. Routes name the permission they need.
    Permission {
        /// Read and write patient and referral records of one's own organisation.
        PatientData = "patient_data",
        /// Edit listings and deal with problem reports.
        Curate = "curate",
        /// Confirm or update the listings of one's own group.
        OwnListing = "own_listing",
        /// Aggregate reports: reach, follow-up, gaps.
        Reports = "reports",
        /// Add users and organisations, assign roles.
        ManageUsers = "manage_users",
        /// Read and export the audit log.
        Audit = "audit",
    }
}

impl Role {
    /// How the role is named on screen.
    pub fn label(self) -> &'static str {
        match self {
            Role::Receptionist => "Receptionist or care navigator",
            Role::Clinician => "Clinician",
            Role::LinkWorker => "Link worker",
            Role::VcsMember => "Community group member",
            Role::Curator => "Curator",
            Role::AreaAdmin => "Area administrator",
            Role::Commissioner => "Commissioner",
        }
    }

    pub fn permissions(self) -> &'static [Permission] {
        use Permission::*;
        match self {
            Role::Receptionist | Role::Clinician => &[PatientData],
            Role::LinkWorker => &[PatientData, Reports],
            Role::VcsMember => &[PatientData, OwnListing],
            Role::Curator => &[Curate],
            Role::AreaAdmin => &[ManageUsers, Audit, Reports, Curate],
            Role::Commissioner => &[Reports],
        }
    }

    pub fn allows(self, permission: Permission) -> bool {
        self.permissions().contains(&permission)
    }

    /// Roles that can see personal data, or change who can, must sign in with a second
    /// factor (ASVS 2.2).
    pub fn requires_two_factor(self) -> bool {
        self.allows(Permission::PatientData) || self.allows(Permission::ManageUsers)
    }
}

/// Where a role holds: one organisation, or every organisation in an area.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "id", rename_all = "snake_case")]
pub enum Scope {
    Organisation(Uuid),
    Area(Uuid),
}

impl Scope {
    pub fn kind(self) -> &'static str {
        match self {
            Scope::Organisation(_) => "organisation",
            Scope::Area(_) => "area",
        }
    }

    pub fn id(self) -> Uuid {
        match self {
            Scope::Organisation(id) | Scope::Area(id) => id,
        }
    }

    pub fn from_parts(kind: &str, id: Uuid) -> Option<Scope> {
        match kind {
            "organisation" => Some(Scope::Organisation(id)),
            "area" => Some(Scope::Area(id)),
            _ => None,
        }
    }
}

/// A role held somewhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Grant {
    pub role: Role,
    pub scope: Scope,
}

/// A GP practice or community group that uses Kith.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Organisation {
    pub id: Uuid,
    pub kind: OrgKind,
    pub name: String,
    /// The practice's ODS code (England, Wales) or practice code (Scotland).
    pub ods_code: Option<String>,
    /// For a community group, its organisation in the directory.
    pub directory_id: Option<Uuid>,
    /// The areas it belongs to.
    pub areas: Vec<Uuid>,
}

/// A primary care network or neighbourhood.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Area {
    pub id: Uuid,
    pub kind: AreaKind,
    pub name: String,
}

/// Why an organisation or area record was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccountError {
    #[error("{0}")]
    Invalid(String),
}

impl Organisation {
    /// Checks the record: a name, and for a practice an ODS or practice code.
    pub fn validate(&self) -> Result<(), AccountError> {
        if self.name.trim().is_empty() {
            return Err(AccountError::Invalid("Give the organisation a name".into()));
        }
        match (&self.kind, &self.ods_code) {
            (OrgKind::Practice, None) => {
                Err(AccountError::Invalid("A GP practice needs its ODS code (such as A81001) or practice code".into()))
            }
            (_, Some(code)) if !valid_ods_code(code) => Err(AccountError::Invalid(format!(
                "{code:?} is not an ODS code: use 3 to 10 capital letters and digits, such as A81001"
            ))),
            _ => Ok(()),
        }
    }
}

/// ODS codes are short runs of capital letters and digits ("A81001", "Y02494"); Scottish
/// practice codes are five digits.
pub fn valid_ods_code(code: &str) -> bool {
    (3..=10).contains(&code.len()) && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// An encrypted value, as the store keeps it. Only the keyring opens it.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Sealed(pub String);

impl std::fmt::Debug for Sealed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Sealed(..)")
    }
}

/// A person who signs in, as stored: what identifies them is sealed; their email is
/// found by its blind index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserRecord {
    pub id: Uuid,
    pub email_index: String,
    pub email: Sealed,
    pub name: Sealed,
    /// An argon2id PHC string; `None` for someone who signs in only by OIDC or magic link.
    pub password_hash: Option<String>,
    pub totp_secret: Option<Sealed>,
    /// The last TOTP time step accepted, so a code cannot be used twice.
    pub totp_last_step: Option<i64>,
    pub grants: Vec<Grant>,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

impl UserRecord {
    pub fn requires_two_factor(&self) -> bool {
        self.grants.iter().any(|g| g.role.requires_two_factor())
    }

    /// The practices whose patients this person works with directly: where they hold a
    /// practice role that sees patient data (receptionist, clinician, link worker), granted
    /// for the practice itself rather than for an area.
    pub fn practices(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.grants.iter().filter_map(|g| match g.scope {
            Scope::Organisation(id) if g.role.allows(Permission::PatientData) && g.role != Role::VcsMember => Some(id),
            _ => None,
        })
    }

    /// Whether this person is on the staff of `practice`, in the sense of [`practices`](Self::practices).
    pub fn works_at(&self, practice: Uuid) -> bool {
        self.practices().any(|p| p == practice)
    }

    /// The community groups this person is a member of.
    pub fn groups(&self) -> impl Iterator<Item = Uuid> + '_ {
        self.grants.iter().filter_map(|g| match (g.role, g.scope) {
            (Role::VcsMember, Scope::Organisation(id)) => Some(id),
            _ => None,
        })
    }

    /// Whether this person is a member of community group `group`.
    pub fn member_of(&self, group: Uuid) -> bool {
        self.groups().any(|g| g == group)
    }
}

named_enum! {
    /// How far a session has got through sign-in.
    SessionStage {
        /// The password was right; a code from the authenticator app is still needed.
        SecondFactor = "second_factor",
        /// Signed in.
        Complete = "complete",
    }
}

named_enum! {
    /// What a magic link lets its holder do, and nothing else.
    LinkPurpose {
        /// Confirm or correct one listing.
        UpdateListing = "update_listing",
        /// Answer one referral.
        AnswerReferral = "answer_referral",
    }
}

impl LinkPurpose {
    /// A magic link works once, within this many minutes of being sent: long enough for a
    /// volunteer to open their email for a listing, which holds no personal data; the
    /// 10 minutes of ASVS 2.7.2 for a referral, which does.
    pub fn lifetime_minutes(self) -> i64 {
        match self {
            LinkPurpose::UpdateListing => 30,
            LinkPurpose::AnswerReferral => 10,
        }
    }
}

/// A signed-in (or signing-in) browser. The cookie holds a random token; the store holds
/// its digest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionRecord {
    pub digest: String,
    pub user_id: Uuid,
    pub stage: SessionStage,
    /// For a session from a magic link: what it may do, and to which record.
    pub purpose: Option<(LinkPurpose, Uuid)>,
    /// Whether a second factor was given to begin it (a code, or an identity provider
    /// that asks for one). A role that needs two factors, granted later, asks for it then.
    pub second_factor: bool,
    pub created_at: DateTime<Utc>,
    pub last_seen_at: DateTime<Utc>,
}

/// Sessions end after this long without a request (ASVS 3.3.2)...
pub const SESSION_IDLE_MINUTES: i64 = 30;
/// ...and this long after sign-in, however busy.
pub const SESSION_ABSOLUTE_HOURS: i64 = 12;

impl SessionRecord {
    /// Whether the session has run out at `now`, idle or absolute.
    pub fn expired(&self, now: DateTime<Utc>) -> bool {
        now - self.last_seen_at > chrono::Duration::minutes(SESSION_IDLE_MINUTES)
            || now - self.created_at > chrono::Duration::hours(SESSION_ABSOLUTE_HOURS)
    }
}

/// A single-use sign-in link for one purpose.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MagicLink {
    pub digest: String,
    pub user_id: Uuid,
    pub purpose: LinkPurpose,
    pub target: Uuid,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub used_at: Option<DateTime<Utc>>,
}

/// What became of an attempt to use a magic link.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LinkUse {
    /// It worked, and cannot be used again.
    Accepted(MagicLink),
    Expired,
    AlreadyUsed,
    Unknown,
}

/// One entry in the audit log: who did what, to which record, when, from where and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Assigned by the store, in order; 0 before it is stored.
    pub seq: i64,
    pub at: DateTime<Utc>,
    pub actor: Option<Uuid>,
    /// The actor's roles at the time, or "anonymous" or "cli".
    pub actor_roles: String,
    /// What happened: "sign_in", "sign_in_failed", "user.create", "audit.export"...
    pub action: String,
    pub record_type: String,
    pub record_id: Option<String>,
    /// The client's address, as the server saw it (or the proxy said).
    pub ip: Option<String>,
    /// Why: the purpose given, or the route.
    pub reason: String,
}

/// Which audit entries to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    pub actor: Option<Uuid>,
    pub since: Option<DateTime<Utc>>,
    pub action: Option<String>,
    /// Only entries before this sequence number, for paging back.
    pub before_seq: Option<i64>,
    /// Only entries by these users or about them (a user as the record): an area
    /// administrator's view. `None` reads every entry (the command line).
    pub people: Option<Vec<Uuid>>,
    pub limit: u32,
}

/// The areas in which `user` holds `permission` through an area-wide grant.
pub fn areas_with(user: &UserRecord, permission: Permission) -> Vec<Uuid> {
    user.grants
        .iter()
        .filter(|g| g.role.allows(permission))
        .filter_map(|g| match g.scope {
            Scope::Area(area) => Some(area),
            Scope::Organisation(_) => None,
        })
        .collect()
}

/// The people who belong to any of `areas`: a grant on the area itself, or on an
/// organisation in it. An area administrator's audit log is about these people.
pub fn people_within(users: &[UserRecord], organisations: &[Organisation], areas: &[Uuid]) -> Vec<Uuid> {
    let in_areas = |scope: Scope| match scope {
        Scope::Area(area) => areas.contains(&area),
        Scope::Organisation(org) => {
            organisations.iter().any(|o| o.id == org && o.areas.iter().any(|a| areas.contains(a)))
        }
    };
    users.iter().filter(|u| u.grants.iter().any(|g| in_areas(g.scope))).map(|u| u.id).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for role in Role::ALL {
            assert_eq!(Role::parse(role.as_str()), Some(*role));
        }
        assert_eq!(Role::parse("admin"), None);
        assert_eq!(Scope::from_parts("area", Uuid::nil()), Some(Scope::Area(Uuid::nil())));
    }

    #[test]
    fn commissioners_never_see_patients_and_patient_roles_need_two_factors() {
        assert!(!Role::Commissioner.allows(Permission::PatientData));
        assert!(!Role::Curator.allows(Permission::PatientData));
        for role in [Role::Receptionist, Role::Clinician, Role::LinkWorker, Role::VcsMember, Role::AreaAdmin] {
            assert!(role.requires_two_factor(), "{role}");
        }
        assert!(!Role::Commissioner.requires_two_factor());
    }

    #[test]
    fn practices_need_an_ods_code() {
        let mut org = Organisation {
            id: Uuid::nil(),
            kind: OrgKind::Practice,
            name: "Parkhead Health Centre".into(),
            ods_code: None,
            directory_id: None,
            areas: vec![],
        };
        assert!(org.validate().unwrap_err().to_string().contains("ODS code"));
        org.ods_code = Some("a81001".into());
        assert!(org.validate().is_err());
        org.ods_code = Some("A81001".into());
        assert!(org.validate().is_ok());
    }

    #[test]
    fn sessions_expire_when_idle_or_old() {
        let t0 = DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default();
        let mut s = SessionRecord {
            digest: "d".into(),
            user_id: Uuid::nil(),
            stage: SessionStage::Complete,
            purpose: None,
            second_factor: true,
            created_at: t0,
            last_seen_at: t0,
        };
        assert!(!s.expired(t0 + chrono::Duration::minutes(29)));
        assert!(s.expired(t0 + chrono::Duration::minutes(31)));
        s.last_seen_at = t0 + chrono::Duration::hours(12);
        assert!(s.expired(t0 + chrono::Duration::hours(12) + chrono::Duration::minutes(1)));
    }
}
