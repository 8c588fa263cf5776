//! Referrals: the heart of Kith. A *signpost* records that information was given; a
//! *referral* sends a person to a service, with their consent, and is followed until
//! four weeks later someone can say whether they are still attending.
//!
//! The states are those of a FHIR R4 Task, and the moves between them are fixed here:
//! [`TaskStatus::can_become`] is the one rule the web, the FHIR API and the database CHECK
//! all follow.

use serde::{Deserialize, Serialize};
use std::fmt;

/// SNOMED CT (UK edition) codes for social prescribing.
pub mod snomed {
    pub const SYSTEM: &str = "http://snomed.info/sct";
    /// "Referral to social prescribing service (procedure)".
    pub const REFERRAL_TO_SOCIAL_PRESCRIBING: &str = "871731000000106";
    pub const REFERRAL_TO_SOCIAL_PRESCRIBING_DISPLAY: &str = "Referral to social prescribing service";
    /// "Social prescribing declined (situation)".
    pub const SOCIAL_PRESCRIBING_DECLINED: &str = "871711000000103";
    pub const SOCIAL_PRESCRIBING_DECLINED_DISPLAY: &str = "Social prescribing declined";
}

/// An NHS number: ten digits whose last is a Modulus 11 check digit. Numbers starting
/// 999 are reserved for testing and are what Kith's demo and tests use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("An NHS number has 10 digits, like 943 476 5919")]
    Length,
    #[error("That is not a valid NHS number: check each digit again")]
    CheckDigit,
}

impl NhsNumber {
    /// Reads an NHS number as people write it: spaces and dashes are fine.
    pub fn parse(input: &str) -> Result<NhsNumber, NhsNumberError> {
        let digits: String = input.chars().filter(|c| !matches!(c, ' ' | '-')).collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(NhsNumberError::Length);
        }
        let values: Vec<u32> = digits.bytes().map(|b| u32::from(b - b'0')).collect();
        let sum: u32 = values[..9].iter().zip((2..=10).rev()).map(|(d, w)| d * w).sum();
        let check = match 11 - sum % 11 {
            11 => 0,
            10 => return Err(NhsNumberError::CheckDigit),
            c => c,
        };
        if check != values[9] {
            return Err(NhsNumberError::CheckDigit);
        }
        Ok(NhsNumber(digits))
    }

    /// The ten digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// As the NHS writes it: `943 476 5919`.
    pub fn formatted(&self) -> String {
        format!("{} {} {}", &self.0[..3], &self.0[3..6], &self.0[6..])
    }

    /// Whether it is from the range reserved for testing (999…).
    pub fn is_test_number(&self) -> bool {
        self.0.starts_with("999")
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = NhsNumberError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        NhsNumber::parse(&s)
    }
}

impl From<NhsNumber> for String {
    fn from(n: NhsNumber) -> String {
        n.0
    }
}

/// Where a referral has got to: the FHIR R4 Task status codes Kith uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum TaskStatus {
    /// Sent; the group has not opened it.
    Requested,
    /// The group has seen it.
    Received,
    Accepted,
    /// Declined by the group, with a reason.
    Rejected,
    /// The person has started.
    InProgress,
    /// Waitlisted, or paused.
    OnHold,
    Completed,
    /// Withdrawn by the referrer or the person.
    Cancelled,
    /// Did not work out: the person stopped or never went.
    Failed,
}

impl TaskStatus {
    pub const ALL: [TaskStatus; 9] = [
        TaskStatus::Requested,
        TaskStatus::Received,
        TaskStatus::Accepted,
        TaskStatus::Rejected,
        TaskStatus::InProgress,
        TaskStatus::OnHold,
        TaskStatus::Completed,
        TaskStatus::Cancelled,
        TaskStatus::Failed,
    ];

    /// The FHIR code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            TaskStatus::Requested => "requested",
            TaskStatus::Received => "received",
            TaskStatus::Accepted => "accepted",
            TaskStatus::Rejected => "rejected",
            TaskStatus::InProgress => "in-progress",
            TaskStatus::OnHold => "on-hold",
            TaskStatus::Completed => "completed",
            TaskStatus::Cancelled => "cancelled",
            TaskStatus::Failed => "failed",
        }
    }

    pub fn parse(code: &str) -> Option<TaskStatus> {
        TaskStatus::ALL.into_iter().find(|s| s.code() == code)
    }

    /// How the status reads on a timeline.
    pub fn label(self) -> &'static str {
        match self {
            TaskStatus::Requested => "Sent",
            TaskStatus::Received => "Seen by the group",
            TaskStatus::Accepted => "Accepted",
            TaskStatus::Rejected => "Declined",
            TaskStatus::InProgress => "Started",
            TaskStatus::OnHold => "Waiting list",
            TaskStatus::Completed => "Completed",
            TaskStatus::Cancelled => "Cancelled",
            TaskStatus::Failed => "Did not work out",
        }
    }

    /// No move leads out of these.
    pub fn is_final(self) -> bool {
        matches!(self, TaskStatus::Rejected | TaskStatus::Completed | TaskStatus::Cancelled | TaskStatus::Failed)
    }

    /// The statuses a referral may move to from this one.
    pub fn next(self) -> &'static [TaskStatus] {
        use TaskStatus::*;
        match self {
            Requested => &[Received, Accepted, Rejected, OnHold, Cancelled],
            Received => &[Accepted, Rejected, OnHold, Cancelled],
            Accepted => &[InProgress, OnHold, Completed, Cancelled, Failed],
            OnHold => &[Accepted, InProgress, Rejected, Cancelled, Failed],
            InProgress => &[OnHold, Completed, Cancelled, Failed],
            Rejected | Completed | Cancelled | Failed => &[],
        }
    }

    pub fn can_become(self, next: TaskStatus) -> bool {
        self.next().contains(&next)
    }

    /// Checks a move, with a message a person can act on.
    pub fn transition(self, next: TaskStatus) -> Result<TaskStatus, TransitionError> {
        if self.can_become(next) { Ok(next) } else { Err(TransitionError { from: self, to: next }) }
    }
}

impl fmt::Display for TaskStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A move the state machine does not allow.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub struct TransitionError {
    pub from: TaskStatus,
    pub to: TaskStatus,
}

impl fmt::Display for TransitionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.from.is_final() {
            write!(
                f,
                "This referral is {} and cannot be changed now; make a new referral instead",
                self.from.label().to_lowercase()
            )
        } else {
            let allowed: Vec<&str> = self.from.next().iter().map(|s| s.label()).collect();
            write!(
                f,
                "A referral that is {} cannot become {}; it can become: {}",
                self.from.label().to_lowercase(),
                self.to.label().to_lowercase(),
                allowed.join(", ").to_lowercase()
            )
        }
    }
}

/// Why a group declined a referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeclineReason {
    NoCapacity,
    NotEligible,
    OutOfArea,
    NotRunning,
    PersonDeclined,
    Other,
}

impl DeclineReason {
    pub const ALL: [DeclineReason; 6] = [
        DeclineReason::NoCapacity,
        DeclineReason::NotEligible,
        DeclineReason::OutOfArea,
        DeclineReason::NotRunning,
        DeclineReason::PersonDeclined,
        DeclineReason::Other,
    ];

    /// The reason a note gives: one of the labels, as the web's list sends it, or its
    /// snake_case name. Anything else is free text, which Kith does not keep in the clear.
    pub fn from_note(note: &str) -> Option<DeclineReason> {
        let note = note.trim();
        DeclineReason::ALL.into_iter().find(|r| {
            note.eq_ignore_ascii_case(r.label())
                || serde_json::to_value(r).ok().and_then(|v| v.as_str().map(|c| c == note)).unwrap_or(false)
        })
    }

    pub fn label(self) -> &'static str {
        match self {
            DeclineReason::NoCapacity => "No space just now",
            DeclineReason::NotEligible => "The service is not for this person",
            DeclineReason::OutOfArea => "The person lives outside the area we cover",
            DeclineReason::NotRunning => "The service is not running",
            DeclineReason::PersonDeclined => "The person did not want to go ahead",
            DeclineReason::Other => "Another reason",
        }
    }
}

/// Why someone stopped going, or never went. A fixed list, so that reports can count the
/// reasons and no free text about a person is kept outside the sealed fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    NotSuitable,
    Health,
    Transport,
    Cost,
    Timing,
    MovedAway,
    LostInterest,
    ServiceChanged,
    Other,
}

impl EndReason {
    pub const ALL: [EndReason; 9] = [
        EndReason::NotSuitable,
        EndReason::Health,
        EndReason::Transport,
        EndReason::Cost,
        EndReason::Timing,
        EndReason::MovedAway,
        EndReason::LostInterest,
        EndReason::ServiceChanged,
        EndReason::Other,
    ];

    pub fn code(self) -> &'static str {
        match self {
            EndReason::NotSuitable => "not_suitable",
            EndReason::Health => "health",
            EndReason::Transport => "transport",
            EndReason::Cost => "cost",
            EndReason::Timing => "timing",
            EndReason::MovedAway => "moved_away",
            EndReason::LostInterest => "lost_interest",
            EndReason::ServiceChanged => "service_changed",
            EndReason::Other => "other",
        }
    }

    pub fn parse(code: &str) -> Option<EndReason> {
        EndReason::ALL.into_iter().find(|r| r.code() == code)
    }

    pub fn label(self) -> &'static str {
        match self {
            EndReason::NotSuitable => "It was not right for them",
            EndReason::Health => "Their health got in the way",
            EndReason::Transport => "Getting there was too hard",
            EndReason::Cost => "It cost too much",
            EndReason::Timing => "The times did not suit them",
            EndReason::MovedAway => "They moved away",
            EndReason::LostInterest => "They lost interest",
            EndReason::ServiceChanged => "The service changed or stopped",
            EndReason::Other => "Another reason",
        }
    }
}

/// What the four-week follow-up found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", content = "reason", rename_all = "snake_case")]
pub enum Outcome {
    Started,
    StillAttending,
    Stopped(EndReason),
    NeverAttended(EndReason),
    CouldNotContact,
}

/// What is wrong with an outcome as given, naming the part to put right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum OutcomeError {
    #[error("Choose what happened: still attending, started, stopped, never went, or could not contact")]
    NoOutcome,
    /// Stopping and never attending need a reason from the list.
    #[error("Choose why they stopped, or why they never went")]
    NoReason,
}

impl Outcome {
    /// The outcome codes, as stored, in the order a form offers them.
    pub const CODES: [&'static str; 5] =
        ["still_attending", "started", "stopped", "never_attended", "could_not_contact"];

    /// The code, as stored.
    pub fn code(self) -> &'static str {
        match self {
            Outcome::Started => "started",
            Outcome::StillAttending => "still_attending",
            Outcome::Stopped(_) => "stopped",
            Outcome::NeverAttended(_) => "never_attended",
            Outcome::CouldNotContact => "could_not_contact",
        }
    }

    pub fn reason(self) -> Option<EndReason> {
        match self {
            Outcome::Stopped(r) | Outcome::NeverAttended(r) => Some(r),
            _ => None,
        }
    }

    /// Reads a stored or submitted outcome. Stopping and never attending need a reason.
    pub fn parse(code: &str, reason: Option<&str>) -> Result<Outcome, OutcomeError> {
        let reason = || reason.and_then(EndReason::parse).ok_or(OutcomeError::NoReason);
        match code {
            "started" => Ok(Outcome::Started),
            "still_attending" => Ok(Outcome::StillAttending),
            "stopped" => Ok(Outcome::Stopped(reason()?)),
            "never_attended" => Ok(Outcome::NeverAttended(reason()?)),
            "could_not_contact" => Ok(Outcome::CouldNotContact),
            _ => Err(OutcomeError::NoOutcome),
        }
    }

    pub fn label(self) -> &'static str {
        Outcome::label_of(self.code())
    }

    /// The label for an outcome code.
    pub fn label_of(code: &str) -> &'static str {
        match code {
            "started" => "Started going",
            "still_attending" => "Still attending",
            "stopped" => "Stopped going",
            "never_attended" => "Never went",
            "could_not_contact" => "Could not contact them",
            _ => "Unknown",
        }
    }

    /// A line for the timeline: the outcome and any reason.
    pub fn describe(self) -> String {
        match self.reason() {
            Some(r) => format!("{}: {}", self.label(), r.label().to_lowercase()),
            None => self.label().to_owned(),
        }
    }

    /// The status a referral moves to when this is recorded, if it moves: a person who
    /// has started is in progress; one who stopped or never went did not work out.
    pub fn status(self) -> Option<TaskStatus> {
        match self {
            Outcome::Started | Outcome::StillAttending => Some(TaskStatus::InProgress),
            Outcome::Stopped(_) | Outcome::NeverAttended(_) => Some(TaskStatus::Failed),
            Outcome::CouldNotContact => None,
        }
    }

    /// The person went at least once.
    pub fn started(self) -> bool {
        matches!(self, Outcome::Started | Outcome::StillAttending | Outcome::Stopped(_))
    }

    /// Counts towards "still attending at four weeks" (the Links measure).
    pub fn still_attending(self) -> bool {
        matches!(self, Outcome::StillAttending)
    }
}

/// The follow-up of a signpost or referral: due some weeks after it, assigned to the
/// referrer, reminded when due and escalated when overdue, closed by an outcome. The
/// group may report attendance too, which the report counts alongside.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FollowUp {
    pub referral_id: uuid::Uuid,
    pub due_at: chrono::DateTime<chrono::Utc>,
    /// Who is asked to follow up: the referrer, unless a link worker takes it on.
    pub assignee: uuid::Uuid,
    pub reminded_at: Option<chrono::DateTime<chrono::Utc>>,
    pub escalated_at: Option<chrono::DateTime<chrono::Utc>>,
    /// The follow-up's outcome, which closes it.
    pub outcome: Option<Outcome>,
    pub outcome_at: Option<chrono::DateTime<chrono::Utc>>,
    pub outcome_by: Option<uuid::Uuid>,
    /// Attendance as the group last reported it.
    pub attendance: Option<Outcome>,
    pub attendance_at: Option<chrono::DateTime<chrono::Utc>>,
}

impl FollowUp {
    /// A follow-up, due at `due_at`, with nothing yet sent or recorded.
    pub fn new(referral_id: uuid::Uuid, due_at: chrono::DateTime<chrono::Utc>, assignee: uuid::Uuid) -> FollowUp {
        FollowUp {
            referral_id,
            due_at,
            assignee,
            reminded_at: None,
            escalated_at: None,
            outcome: None,
            outcome_at: None,
            outcome_by: None,
            attendance: None,
            attendance_at: None,
        }
    }

    pub fn is_open(&self) -> bool {
        self.outcome.is_none()
    }

    /// Days after the due date before an open follow-up is escalated.
    pub const ESCALATE_AFTER_DAYS: i64 = 7;

    pub fn is_overdue(&self, now: chrono::DateTime<chrono::Utc>) -> bool {
        self.is_open() && now >= self.due_at + chrono::Duration::days(Self::ESCALATE_AFTER_DAYS)
    }
}

/// Which reminder a sweep found due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reminder {
    /// The follow-up is due: the assignee is asked.
    Due,
    /// It is a week overdue: the assignee and the practice's link workers are told.
    Overdue,
}

/// When an outcome measure was taken.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Stage {
    Baseline,
    FollowUp,
}

impl Stage {
    pub fn as_str(self) -> &'static str {
        match self {
            Stage::Baseline => "baseline",
            Stage::FollowUp => "follow_up",
        }
    }

    pub fn parse(s: &str) -> Option<Stage> {
        match s {
            "baseline" => Some(Stage::Baseline),
            "follow_up" => Some(Stage::FollowUp),
            _ => None,
        }
    }
}

/// A completed outcome measure (ONS4, or a licensed scale), kept with the patient data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MeasureRecord {
    pub id: uuid::Uuid,
    pub referral_id: uuid::Uuid,
    pub patient_id: uuid::Uuid,
    /// The [`Instrument::id`].
    pub instrument: String,
    pub stage: Stage,
    /// One answer per question, in order.
    pub answers: Vec<u8>,
    pub taken_at: chrono::DateTime<chrono::Utc>,
    pub recorded_by: uuid::Uuid,
}

/// One row of the Links measure: counts for one practice and one service.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct LinksCount {
    pub signposts: u64,
    pub referrals: u64,
    /// Followed up: an outcome recorded, by the referrer or the group.
    pub followed_up: u64,
    /// Went at least once.
    pub started: u64,
    /// Still attending at the follow-up (four weeks by default).
    pub still_attending: u64,
}

impl LinksCount {
    pub fn add(&mut self, other: &LinksCount) {
        self.signposts += other.signposts;
        self.referrals += other.referrals;
        self.followed_up += other.followed_up;
        self.started += other.started;
        self.still_attending += other.still_attending;
    }
}

/// The Links counts for one practice (the referrer's organisation) and one service.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinksRow {
    pub practice: uuid::Uuid,
    pub service: uuid::Uuid,
    pub count: LinksCount,
}

/// An outcome measure: a fixed set of questions, each answered on a scale. ONS4 is built
/// in; licensed scales (SWEMWBS, MYCaW) plug in here where an organisation holds a licence.
pub trait Instrument: Send + Sync {
    fn id(&self) -> &'static str;
    fn name(&self) -> &'static str;
    fn questions(&self) -> &[Question];
    /// Checks a full set of answers, one per question, in order.
    fn check(&self, answers: &[u8]) -> Result<(), String> {
        let questions = self.questions();
        if answers.len() != questions.len() {
            return Err(format!("Answer all {} questions", questions.len()));
        }
        for (q, a) in questions.iter().zip(answers) {
            if !(q.min..=q.max).contains(a) {
                return Err(format!("Answer “{}” with a number from {} to {}", q.text, q.min, q.max));
            }
        }
        Ok(())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Question {
    pub text: &'static str,
    /// A few words for tables and charts: "Life satisfaction".
    pub short: &'static str,
    pub min: u8,
    pub max: u8,
    /// What the lowest and highest answers mean.
    pub anchors: (&'static str, &'static str),
}

/// The ONS personal well-being questions (ONS4), each 0–10.
#[derive(Debug, Clone, Copy, Default)]
pub struct Ons4;

const ONS4_QUESTIONS: [Question; 4] = [
    Question {
        text: "Overall, how satisfied are you with your life nowadays?",
        short: "Life satisfaction",
        min: 0,
        max: 10,
        anchors: ("Not at all", "Completely"),
    },
    Question {
        text: "Overall, to what extent do you feel that the things you do in your life are worthwhile?",
        short: "Worthwhile",
        min: 0,
        max: 10,
        anchors: ("Not at all", "Completely"),
    },
    Question {
        text: "Overall, how happy did you feel yesterday?",
        short: "Happiness",
        min: 0,
        max: 10,
        anchors: ("Not at all", "Completely"),
    },
    Question {
        text: "Overall, how anxious did you feel yesterday?",
        short: "Anxiety",
        min: 0,
        max: 10,
        anchors: ("Not at all", "Completely"),
    },
];

impl Instrument for Ons4 {
    fn id(&self) -> &'static str {
        "ons4"
    }

    fn name(&self) -> &'static str {
        "ONS personal well-being (ONS4)"
    }

    fn questions(&self) -> &[Question] {
        &ONS4_QUESTIONS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nhs_numbers_are_checked_with_modulus_11() {
        let n = NhsNumber::parse("943 476 5919").unwrap();
        assert_eq!((n.as_str(), n.formatted().as_str()), ("9434765919", "943 476 5919"));
        assert!(!n.is_test_number());
        assert!(NhsNumber::parse("999-000-0018").unwrap().is_test_number());
        assert_eq!(NhsNumber::parse("9434765918"), Err(NhsNumberError::CheckDigit));
        assert_eq!(NhsNumber::parse("943476591"), Err(NhsNumberError::Length));
        assert_eq!(NhsNumber::parse("94347659ab"), Err(NhsNumberError::Length));
        // A remainder that gives a check digit of 10 can never be valid.
        let ten = (0..1000u32)
            .map(|n| format!("999{n:06}"))
            .find(|nine| {
                let sum: u32 = nine.bytes().zip((2..=10).rev()).map(|(b, w)| u32::from(b - b'0') * w).sum();
                11 - sum % 11 == 10
            })
            .unwrap();
        for last in 0..=9 {
            assert_eq!(NhsNumber::parse(&format!("{ten}{last}")), Err(NhsNumberError::CheckDigit));
        }
        let json = serde_json::to_string(&n).unwrap();
        assert_eq!(json, "\"9434765919\"");
        assert!(serde_json::from_str::<NhsNumber>("\"9434765918\"").is_err());
    }

    #[test]
    fn the_state_machine_allows_only_its_moves() {
        use TaskStatus::*;
        assert!(Requested.can_become(Accepted));
        assert!(Received.can_become(OnHold), "waitlisting");
        assert!(OnHold.can_become(Accepted));
        assert!(!Cancelled.can_become(Accepted));
        assert!(!Requested.can_become(Completed));
        let err = Cancelled.transition(Accepted).unwrap_err();
        assert_eq!(
            err.to_string(),
            "This referral is cancelled and cannot be changed now; make a new referral instead"
        );
        let err = Requested.transition(InProgress).unwrap_err();
        assert!(err.to_string().starts_with("A referral that is sent cannot become started; it can become:"));
        for s in TaskStatus::ALL {
            assert_eq!(TaskStatus::parse(s.code()), Some(s));
            assert_eq!(s.is_final(), s.next().is_empty(), "{s}");
            assert!(!s.can_become(s), "{s} does not move to itself");
        }
        assert_eq!(serde_json::to_string(&InProgress).unwrap(), "\"in-progress\"");
    }

    #[test]
    fn outcomes_move_the_referral_and_ons4_is_checked() {
        assert_eq!(Outcome::StillAttending.status(), Some(TaskStatus::InProgress));
        assert_eq!(Outcome::NeverAttended(EndReason::MovedAway).status(), Some(TaskStatus::Failed));
        assert_eq!(Outcome::CouldNotContact.status(), None);
        assert!(Outcome::StillAttending.still_attending() && !Outcome::Started.still_attending());
        assert!(Outcome::Stopped(EndReason::Cost).started() && !Outcome::NeverAttended(EndReason::Cost).started());
        for code in Outcome::CODES {
            let o = Outcome::parse(code, Some("transport")).unwrap();
            assert_eq!(o.code(), code);
            assert_ne!(o.label(), "Unknown");
        }
        assert_eq!(Outcome::parse("stopped", None), Err(OutcomeError::NoReason));
        assert_eq!(Outcome::parse("stopped", Some("bored")), Err(OutcomeError::NoReason));
        assert_eq!(Outcome::parse("gone", None), Err(OutcomeError::NoOutcome));
        assert!(OutcomeError::NoOutcome.to_string().starts_with("Choose what happened"));
        assert_eq!(Outcome::Stopped(EndReason::Cost).describe(), "Stopped going: it cost too much");
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.code()), Some(r));
        }
        assert!(Ons4.check(&[7, 8, 6, 3]).is_ok());
        assert_eq!(Ons4.check(&[7, 8, 6]).unwrap_err(), "Answer all 4 questions");
        assert!(Ons4.check(&[7, 8, 6, 11]).unwrap_err().contains("from 0 to 10"));
        assert_eq!(snomed::REFERRAL_TO_SOCIAL_PRESCRIBING, "871731000000106");
    }
}

/// How a person would like to be contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ContactMethod {
    Phone,
    Text,
    Email,
    Letter,
}

impl ContactMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            ContactMethod::Phone => "phone",
            ContactMethod::Text => "text",
            ContactMethod::Email => "email",
            ContactMethod::Letter => "letter",
        }
    }

    pub fn parse(s: &str) -> Option<ContactMethod> {
        [ContactMethod::Phone, ContactMethod::Text, ContactMethod::Email, ContactMethod::Letter]
            .into_iter()
            .find(|m| m.as_str() == s)
    }
}

/// A patient as the store keeps them: everything that identifies them is sealed; the NHS
/// number (or local id) is found by its blind index. Synthetic in every test and demo.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PatientRecord {
    pub id: uuid::Uuid,
    /// The practice that holds the record.
    pub organisation_id: uuid::Uuid,
    pub nhs_number_index: Option<String>,
    pub local_id_index: Option<String>,
    /// Sealed JSON of the identifying fields: name, date of birth, NHS number or local id,
    /// contact details, postcode.
    pub details: crate::account::Sealed,
    pub contact_method: ContactMethod,
    pub language: Option<String>,
    /// From the postcode, kept unsealed for reports: a decile and a neighbourhood name
    /// identify nobody on their own.
    pub deprivation_decile: Option<u8>,
    pub neighbourhood: Option<String>,
    pub created_at: chrono::DateTime<chrono::Utc>,
}

/// Whether information was given or a person was sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralKind {
    /// Information given, from the shortlist; nothing shared with the group.
    Signpost,
    /// The person sent to the service, with consent.
    Referral,
}

impl ReferralKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ReferralKind::Signpost => "signpost",
            ReferralKind::Referral => "referral",
        }
    }

    pub fn parse(s: &str) -> Option<ReferralKind> {
        match s {
            "signpost" => Some(ReferralKind::Signpost),
            "referral" => Some(ReferralKind::Referral),
            _ => None,
        }
    }
}

/// A signpost or referral as the store keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralRecord {
    pub id: uuid::Uuid,
    pub kind: ReferralKind,
    pub patient_id: uuid::Uuid,
    pub service_id: uuid::Uuid,
    /// The community group it goes to (a member organisation), which alone may see it.
    pub group_id: Option<uuid::Uuid>,
    pub referrer_user: uuid::Uuid,
    pub referrer_org: uuid::Uuid,
    pub status: TaskStatus,
    /// Sealed JSON: the reason, "what matters to you", consent (what, with whom, when, by
    /// whom), and any safeguarding note.
    pub details: crate::account::Sealed,
    pub safeguarding: bool,
    pub created_at: chrono::DateTime<chrono::Utc>,
    pub follow_up_due: Option<chrono::DateTime<chrono::Utc>>,
}

/// One step on a referral's timeline.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReferralEvent {
    pub seq: i64,
    pub referral_id: uuid::Uuid,
    pub at: chrono::DateTime<chrono::Utc>,
    pub actor: Option<uuid::Uuid>,
    pub status: TaskStatus,
    /// A decline reason, an outcome, or a note; never personal details.
    pub note: String,
}

/// What identifies a patient: sealed as one JSON document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PatientDetails {
    pub name: String,
    /// Always held by the practice; `None` only in what a group is shown.
    #[serde(default)]
    pub birth_date: Option<chrono::NaiveDate>,
    pub nhs_number: Option<NhsNumber>,
    pub local_id: Option<String>,
    pub email: Option<String>,
    pub mobile: Option<String>,
    pub phone: Option<String>,
    pub postcode: Option<String>,
}

impl PatientDetails {
    /// What a group to which the person was referred may see under the consent Kith
    /// records ("name, contact details and the reason for referral"): their name and how
    /// to reach them. Never the NHS number, local id, date of birth or postcode.
    pub fn shared_with_group(&self) -> PatientDetails {
        PatientDetails {
            name: self.name.clone(),
            birth_date: None,
            nhs_number: None,
            local_id: None,
            email: self.email.clone(),
            mobile: self.mobile.clone(),
            phone: self.phone.clone(),
            postcode: None,
        }
    }
}

/// Whether what was typed could be the stored person: the same name (ignoring case,
/// spaces and punctuation) and date of birth.
pub fn same_person(stored: &PatientDetails, name: &str, birth_date: Option<chrono::NaiveDate>) -> bool {
    let fold = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_lowercase).collect::<String>();
    fold(&stored.name) == fold(name) && stored.birth_date.is_some() && stored.birth_date == birth_date
}

/// A name partly hidden, for checking it is the right person without showing it whole:
/// "Jo Synthetic" becomes "J• S••••••••".
pub fn masked_name(name: &str) -> String {
    name.split_whitespace()
        .map(|word| {
            let mut chars = word.chars();
            let first = chars.next().map(String::from).unwrap_or_default();
            first + &"\u{2022}".repeat(chars.count())
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// A phone number with all but its last three digits hidden.
pub fn masked_number(number: &str) -> String {
    let digits: Vec<char> = number.chars().filter(char::is_ascii_digit).collect();
    let keep = digits.len().saturating_sub(3);
    digits.iter().enumerate().map(|(i, d)| if i < keep { '\u{2022}' } else { *d }).collect()
}

/// What of a referral a community group may see.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupShare {
    /// A referral, with consent, still open to the group: what the consent covers.
    Consented,
    /// Declined, cancelled or re-routed: only that it ended.
    Ended,
    /// A signpost, or a referral not sent to a group: nothing.
    Nothing,
}

impl ReferralRecord {
    /// What the group it was sent to may see of it. A signpost shares nothing; a referral
    /// shares what the consent covers until it is declined, cancelled or re-routed (a
    /// re-routed referral is declined here and sent on as a new one).
    pub fn group_share(&self) -> GroupShare {
        match (self.kind, self.group_id, self.status) {
            (ReferralKind::Signpost, _, _) | (_, None, _) => GroupShare::Nothing,
            (_, Some(_), TaskStatus::Rejected | TaskStatus::Cancelled) => GroupShare::Ended,
            (_, Some(_), _) => GroupShare::Consented,
        }
    }
}

/// Consent to share, as recorded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Consent {
    /// What may be shared ("name, contact details and the reason for referral").
    pub what: String,
    /// With whom (the group).
    pub with_whom: String,
    pub given_at: chrono::DateTime<chrono::Utc>,
    pub recorded_by: uuid::Uuid,
}

/// The sealed part of a referral.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReferralDetails {
    pub reason: String,
    /// "What matters to you", in the person's words.
    pub what_matters: String,
    pub consent: Option<Consent>,
    pub safeguarding_note: Option<String>,
}

impl ReferralDetails {
    /// What the group sees: the reason for referral and the consent itself. "What
    /// matters" and the safeguarding note stay with the practice (the record's
    /// `safeguarding` flag tells the group to speak to the practice first).
    pub fn shared_with_group(&self) -> ReferralDetails {
        ReferralDetails {
            reason: self.reason.clone(),
            what_matters: String::new(),
            consent: self.consent.clone(),
            safeguarding_note: None,
        }
    }
}
