//! A synthetic caseload for the demo and the tests: two practices in one primary care
//! network, a dozen community groups, and a few hundred signposts and referrals made over
//! recent months, each answered, followed up and reported on as real ones would be, by
//! the same [`Referrals`](crate::referrals::Referrals) service and its rules. Every person
//! is invented, with an NHS number from the 999 range reserved for testing.
//!
//! [`seed`] returns a log of what it did, so that a test can count the Links measure for
//! itself and compare it with the report.

use crate::App;
use crate::accounts::{Actor, NewUser};
use crate::referrals::{NewPatient, NewReferral, ReferralError};
use chrono::{DateTime, Duration, NaiveDate, Utc};
use kith_demo::Rng;
use kith_domain::FixedClock;
use kith_domain::account::{Area, AreaKind, Grant, OrgKind, Organisation, Role, Scope, UserRecord};
use kith_domain::referral::{ContactMethod, EndReason, NhsNumber, Outcome, ReferralKind, TaskStatus};
use std::sync::Arc;
use uuid::Uuid;

/// What happened to one seeded signpost or referral.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SeededCase {
    pub referral: Uuid,
    pub kind: ReferralKind,
    pub practice: Uuid,
    pub service: Uuid,
    pub made_at: DateTime<Utc>,
    /// What the practice recorded at follow-up.
    pub follow_up: Option<Outcome>,
    /// What the group reported, and whether it did so once the follow-up was due.
    pub group_report: Option<(Outcome, bool)>,
}

/// Ids are fixed, so that seeding twice is noticed and skipped.
fn fixed(n: u128) -> Uuid {
    Uuid::from_u128(0x6b69_7468_6465_6d6f_0000_0000_0000_0000 + n)
}

/// The demo's primary care network.
pub const DEMO_AREA: u128 = 1;

const FIRST_NAMES: [&str; 12] =
    ["Alex", "Sam", "Jo", "Pat", "Chris", "Morgan", "Robin", "Kim", "Lee", "Ash", "Jamie", "Toni"];

/// Ten-digit NHS numbers from the test range with valid check digits, in order.
fn test_nhs_numbers() -> impl Iterator<Item = NhsNumber> {
    (0u32..1_000_000).filter_map(|n| (0..10).find_map(|d| NhsNumber::parse(&format!("999{n:06}{d}")).ok()))
}

/// Seeds `cases` signposts and referrals made over the `days` before `now`, with
/// outcomes for those whose follow-up has come. Returns `None`, doing nothing, if the demo
/// caseload is there already.
pub async fn seed(
    app: &App,
    seed: u64,
    cases: usize,
    days: i64,
    now: DateTime<Utc>,
) -> Result<Option<Vec<SeededCase>>, ReferralError> {
    let store = app.store.clone();
    if store.organisation(fixed(10)).await?.is_some() {
        return Ok(None);
    }
    let mut rng = Rng::new(seed);
    let start = now - Duration::days(days);
    let clock = Arc::new(FixedClock::new(start));
    let app = app.clone().with_clock(clock.clone());
    let referrals = app.referrals();
    let cli = Actor::cli();

    store.put_area(Area { id: fixed(DEMO_AREA), kind: AreaKind::Pcn, name: "East End PCN (demo)".into() }).await?;
    let practices =
        [(fixed(10), "Parkhead Health Centre (demo)", "S99001"), (fixed(11), "Shettleston Surgery (demo)", "S99002")];
    let mut staff: Vec<(Uuid, UserRecord)> = Vec::new();
    for (i, (id, name, ods)) in practices.iter().enumerate() {
        store
            .put_organisation(Organisation {
                id: *id,
                kind: OrgKind::Practice,
                name: (*name).into(),
                ods_code: Some((*ods).into()),
                directory_id: None,
                areas: vec![fixed(DEMO_AREA)],
            })
            .await?;
        let user = app
            .accounts
            .create_user(
                NewUser {
                    email: format!("linkworker{}@demo.kith.invalid", i + 1),
                    name: format!("Demo link worker {}", i + 1),
                    password: None,
                    grants: vec![Grant { role: Role::LinkWorker, scope: Scope::Organisation(*id) }],
                },
                &cli,
            )
            .await
            .map_err(|e| ReferralError::Invalid(e.to_string()))?;
        staff.push((*id, user));
    }
    // A dozen groups that take referrals, each with a member; other services are signposted.
    // Groups that meet near the practices (in Glasgow, a G postcode) come first, so the
    // demo shows a whole referral from a practice to a group round the corner.
    let mut directory = store.services_after(None, 400).await?;
    let near_the_practices = |s: &kith_domain::hsds::Service| {
        s.service_at_locations.iter().filter_map(|sal| sal.location.as_ref()).any(|l| {
            l.addresses.iter().any(|a| {
                let p = a.postal_code.trim().to_ascii_uppercase();
                p.starts_with('G') && p.as_bytes().get(1).is_some_and(u8::is_ascii_digit)
            })
        })
    };
    directory.sort_by_key(|s| (!near_the_practices(s) || s.status != kith_domain::ServiceStatus::Active, s.id));
    let mut groups: Vec<(Uuid, UserRecord)> = Vec::new();
    let mut referable = Vec::new();
    for service in &directory {
        let Some(directory_id) = service.organization_id else { continue };
        if groups.len() == 12 || referable.iter().any(|(_, d): &(Uuid, Uuid)| *d == directory_id) {
            continue;
        }
        let id = fixed(100 + groups.len() as u128);
        let org_name = store.organization(directory_id).await?.map_or_else(|| service.name.clone(), |o| o.name);
        store
            .put_organisation(Organisation {
                id,
                kind: OrgKind::Vcs,
                name: org_name,
                ods_code: None,
                directory_id: Some(directory_id),
                areas: vec![fixed(DEMO_AREA)],
            })
            .await?;
        let member = app
            .accounts
            .create_user(
                NewUser {
                    email: format!("group{}@demo.kith.invalid", groups.len() + 1),
                    name: format!("Demo group member {}", groups.len() + 1),
                    password: None,
                    grants: vec![Grant { role: Role::VcsMember, scope: Scope::Organisation(id) }],
                },
                &cli,
            )
            .await
            .map_err(|e| ReferralError::Invalid(e.to_string()))?;
        groups.push((id, member));
        referable.push((service.id, directory_id));
    }
    if referable.is_empty() {
        return Err(ReferralError::Invalid("the directory has no services run by an organisation to refer to".into()));
    }

    // The cases, made in time order; then everything after, in time order.
    let mut numbers = test_nhs_numbers();
    let step = Duration::seconds(days * 86_400 / cases.max(1) as i64);
    let mut log = Vec::with_capacity(cases);
    enum Later {
        Accept(usize),
        Decline(usize),
        GroupReport(usize, Outcome),
        FollowUp(usize, Outcome, Option<Vec<u8>>),
    }
    let mut later: Vec<(DateTime<Utc>, Later)> = Vec::new();
    for i in 0..cases {
        let at = start + step * i as i32;
        clock.set(at);
        let (practice, user) = &staff[rng.below(staff.len())];
        let actor = Actor::of(user, None);
        let nhs = numbers.next().ok_or_else(|| ReferralError::Invalid("out of test NHS numbers".into()))?;
        let born =
            NaiveDate::from_ymd_opt(1940 + rng.below(60) as i32, 1 + rng.below(12) as u32, 1 + rng.below(28) as u32);
        let patient = referrals
            .add_patient(
                user,
                &actor,
                NewPatient {
                    organisation_id: *practice,
                    name: format!("{} Synthetic", FIRST_NAMES[rng.below(FIRST_NAMES.len())]),
                    birth_date: born,
                    nhs_number: Some(nhs.as_str().to_owned()),
                    local_id: None,
                    email: None,
                    mobile: Some(format!("07700 900{:03}", rng.below(1000))),
                    phone: None,
                    postcode: None,
                    contact_method: ContactMethod::Text,
                    language: None,
                },
            )
            .await?;
        let refer = rng.chance(0.7);
        let service =
            if refer { referable[rng.below(referable.len())].0 } else { directory[rng.below(directory.len())].id };
        let baseline = (refer && rng.chance(0.6)).then(|| (0..4).map(|_| rng.below(11) as u8).collect());
        let made = referrals
            .refer(
                user,
                &actor,
                NewReferral {
                    kind: if refer { ReferralKind::Referral } else { ReferralKind::Signpost },
                    patient_id: patient.id,
                    service_id: service,
                    reason: if refer { "Feeling isolated".into() } else { String::new() },
                    what_matters: "Meeting people".into(),
                    consent: refer.then(|| ("Name, mobile and reason".to_owned(), "the group".to_owned())),
                    safeguarding_note: None,
                    follow_up_signpost: !refer && rng.chance(0.3),
                    baseline,
                },
            )
            .await?;
        let n = log.len();
        log.push(SeededCase {
            referral: made.id,
            kind: made.kind,
            practice: *practice,
            service,
            made_at: at,
            follow_up: None,
            group_report: None,
        });
        let due = at + Duration::days(referrals.follow_up_days());
        if refer {
            if rng.chance(0.1) {
                later.push((at + Duration::days(2), Later::Decline(n)));
                continue;
            }
            later.push((at + Duration::days(2), Later::Accept(n)));
            if rng.chance(0.3) {
                let (outcome, when) = if rng.chance(0.5) {
                    (Outcome::Started, at + Duration::days(10))
                } else {
                    (Outcome::StillAttending, due + Duration::days(1))
                };
                later.push((when, Later::GroupReport(n, outcome)));
            }
        }
        if made.follow_up_due.is_some() && rng.chance(0.85) {
            let outcome = match rng.below(10) {
                0..=2 => Outcome::StillAttending,
                3 | 4 => Outcome::Started,
                5 => Outcome::Stopped(EndReason::ALL[rng.below(EndReason::ALL.len())]),
                6 | 7 => Outcome::NeverAttended(EndReason::ALL[rng.below(EndReason::ALL.len())]),
                _ => Outcome::CouldNotContact,
            };
            let answers = rng.chance(0.5).then(|| (0..4).map(|_| rng.below(11) as u8).collect());
            later.push((due + Duration::days(2 + rng.below(5) as i64), Later::FollowUp(n, outcome, answers)));
        }
    }
    later.sort_by_key(|(at, _)| *at);
    let group_of = |case: &SeededCase| {
        let directory_id = referable.iter().find(|(s, _)| *s == case.service).map(|(_, d)| *d);
        let at = referable.iter().position(|(_, d)| Some(*d) == directory_id);
        at.map(|i| &groups[i].1)
    };
    for (at, step) in later {
        if at > now {
            break;
        }
        clock.set(at);
        match step {
            Later::Accept(n) | Later::Decline(n) => {
                let Some(member) = group_of(&log[n]) else { continue };
                let (to, note) = match step {
                    Later::Accept(_) => (TaskStatus::Accepted, ""),
                    _ => (TaskStatus::Rejected, kith_domain::referral::DeclineReason::NoCapacity.label()),
                };
                referrals.act(member, &Actor::of(member, None), log[n].referral, to, note).await?;
            }
            Later::GroupReport(n, outcome) => {
                let Some(member) = group_of(&log[n]) else { continue };
                let due = log[n].made_at + Duration::days(referrals.follow_up_days());
                referrals.record_outcome(member, &Actor::of(member, None), log[n].referral, outcome, None).await?;
                log[n].group_report = Some((outcome, at >= due));
            }
            Later::FollowUp(n, outcome, answers) => {
                let user = &staff.iter().find(|(p, _)| *p == log[n].practice).map(|(_, u)| u.clone());
                let Some(user) = user else { continue };
                referrals.record_outcome(user, &Actor::of(user, None), log[n].referral, outcome, answers).await?;
                log[n].follow_up = Some(outcome);
            }
        }
    }
    Ok(Some(log))
}
