//! The referrals service on SQLite and PostgreSQL: who may add, see, refer and act, and
//! bad input refused with nothing half-written. Patients here are synthetic, with NHS
//! numbers from the 999 range reserved for testing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDate};
use kith_domain::account::{Area, AreaKind, Grant, OrgKind, Organisation, Role, Scope, UserRecord};
use kith_domain::hsds::{Organization, Service};
use kith_domain::referral::{ContactMethod, ReferralKind, TaskStatus};
use kith_domain::{Clock, DirectoryBatch, FixedClock, ServiceStatus};
use kith_store::Store;
use kith_web::AppState;
use kith_web::auth::{Actor, NewUser};
use kith_web::referrals::{NewPatient, NewReferral, ReferralError};
use std::sync::Arc;
use uuid::Uuid;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6b69_7468_0000_0000_0000_0000_0000_0000 + n)
}

const SERVICE_A: u128 = 1;
const SERVICE_B: u128 = 2;
const PRACTICE: u128 = 21;
const VCS_A: u128 = 22;
const VCS_B: u128 = 23;

struct Caseload {
    state: AppState,
    clock: Arc<FixedClock>,
    receptionist: UserRecord,
    member_a: UserRecord,
    member_b: UserRecord,
    commissioner: UserRecord,
}

async fn caseload(store: Arc<dyn Store>) -> Caseload {
    let mut batch = DirectoryBatch::new();
    for (org, service, name) in [(11, SERVICE_A, "Walking group"), (12, SERVICE_B, "Lunch club")] {
        batch.add_organization(Organization::new(id(org), format!("{name} trust"), "A local charity"));
        let mut s = Service::new(id(service), name, ServiceStatus::Active);
        s.organization_id = Some(id(org));
        batch.add_service(s);
    }
    store.write_batch(batch).await.unwrap();
    store.put_area(Area { id: id(20), kind: AreaKind::Pcn, name: "East End PCN".into() }).await.unwrap();
    for (n, kind, name, ods, dir) in [
        (PRACTICE, OrgKind::Practice, "Parkhead Health Centre", Some("43210"), None),
        (VCS_A, OrgKind::Vcs, "Walking group trust", None, Some(11)),
        (VCS_B, OrgKind::Vcs, "Lunch club trust", None, Some(12)),
    ] {
        let org = Organisation {
            id: id(n),
            kind,
            name: name.into(),
            ods_code: ods.map(Into::into),
            directory_id: dir.map(id),
            areas: vec![id(20)],
        };
        store.put_organisation(org).await.unwrap();
    }
    let clock = clock();
    let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
    let state = AppState::new(store, search).with_clock(clock.clone());
    let user = |email: &str, role, scope| {
        let accounts = state.accounts.clone();
        let new =
            NewUser { email: email.into(), name: email.into(), password: None, grants: vec![Grant { role, scope }] };
        async move { accounts.create_user(new, &Actor::cli()).await.unwrap() }
    };
    Caseload {
        receptionist: user("rec@example.org", Role::Receptionist, Scope::Organisation(id(PRACTICE))).await,
        member_a: user("a@example.org", Role::VcsMember, Scope::Organisation(id(VCS_A))).await,
        member_b: user("b@example.org", Role::VcsMember, Scope::Organisation(id(VCS_B))).await,
        commissioner: user("com@example.org", Role::Commissioner, Scope::Area(id(20))).await,
        state,
        clock,
    }
}

fn new_patient(nhs: &str) -> NewPatient {
    NewPatient {
        organisation_id: id(PRACTICE),
        name: "Jo Synthetic".into(),
        birth_date: NaiveDate::from_ymd_opt(1950, 4, 1),
        nhs_number: Some(nhs.into()),
        local_id: None,
        email: None,
        mobile: Some("07700 900123".into()),
        phone: None,
        postcode: None,
        contact_method: ContactMethod::Text,
        language: Some("en".into()),
    }
}

fn actor(user: &UserRecord) -> Actor {
    Actor::of(user, None)
}

async fn referral_rules_on_a_synthetic_caseload(store: Arc<dyn Store>) {
    let c = caseload(store).await;
    let referrals = c.state.referrals();
    let rec = &c.receptionist;

    // Bad input is refused with a reason, and nothing is stored.
    let wrong = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0019")).await.unwrap_err();
    assert!(wrong.to_string().contains("not a valid NHS number"), "{wrong}");
    let mut nameless = new_patient("999 000 0018");
    nameless.nhs_number = None;
    let none = referrals.add_patient(rec, &actor(rec), nameless).await.unwrap_err();
    assert!(none.to_string().contains("NHS number, or the practice's own id"));
    let by_group = referrals.add_patient(&c.member_a, &actor(&c.member_a), new_patient("999 000 0018")).await;
    assert!(matches!(by_group, Err(ReferralError::Forbidden(_))));

    let patient = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0018")).await.unwrap();
    assert!(!patient.details.0.contains("Jo Synthetic"), "sealed");
    let twice = referrals.add_patient(rec, &actor(rec), new_patient("9990000018")).await.unwrap_err();
    assert!(matches!(twice, ReferralError::Conflict(_)), "{twice}");

    // A referral needs consent; refused without it, and nothing is half-written.
    let to_a = |consent: Option<(String, String)>| NewReferral {
        kind: ReferralKind::Referral,
        patient_id: patient.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent,
        safeguarding_note: None,
    };
    let refused = referrals.refer(rec, &actor(rec), to_a(None)).await.unwrap_err();
    assert!(refused.to_string().contains("consent"), "{refused}");
    assert!(c.state.store.referrals_for_patient(patient.id).await.unwrap().is_empty());

    let consent = Some(("Name, contact details and reason".to_owned(), "Walking group trust".to_owned()));
    let referral = referrals.refer(rec, &actor(rec), to_a(consent)).await.unwrap();
    assert_eq!((referral.status, referral.group_id), (TaskStatus::Requested, Some(id(VCS_A))));
    assert_eq!(referral.follow_up_due, Some(c.clock.now() + Duration::days(28)));
    let signpost = NewReferral {
        kind: ReferralKind::Signpost,
        service_id: id(SERVICE_B),
        reason: String::new(),
        consent: None,
        ..to_a(None)
    };
    let signposted = referrals.refer(rec, &actor(rec), signpost).await.unwrap();
    assert_eq!(signposted.status, TaskStatus::Completed);

    // Each group sees its own referrals only; the signpost shares nothing.
    assert_eq!(referrals.inbox(&c.member_a, &actor(&c.member_a), id(VCS_A)).await.unwrap().len(), 1);
    assert!(referrals.inbox(&c.member_b, &actor(&c.member_b), id(VCS_B)).await.unwrap().is_empty());
    assert!(matches!(
        referrals.inbox(&c.member_b, &actor(&c.member_b), id(VCS_A)).await,
        Err(ReferralError::Forbidden(_))
    ));
    let why = "reading the referral";
    assert_eq!(
        referrals.patient_details(&c.member_a, &actor(&c.member_a), patient.id, why).await.unwrap().name,
        "Jo Synthetic"
    );
    for outsider in [&c.member_b, &c.commissioner] {
        let seen = referrals.patient_details(outsider, &actor(outsider), patient.id, why).await;
        assert!(matches!(seen, Err(ReferralError::Forbidden(_))), "{outsider:?}");
        assert!(matches!(
            referrals.referral_details(outsider, &actor(outsider), referral.id).await,
            Err(ReferralError::Forbidden(_))
        ));
    }
    let (_, details) = referrals.referral_details(&c.member_a, &actor(&c.member_a), referral.id).await.unwrap();
    assert_eq!(details.consent.unwrap().with_whom, "Walking group trust");

    // The group acts; the other group and the commissioner cannot.
    let other = referrals.act(&c.member_b, &actor(&c.member_b), referral.id, TaskStatus::Accepted, "").await;
    assert!(matches!(other, Err(ReferralError::Forbidden(_))));
    let no_reason = referrals.act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::Rejected, " ").await;
    assert!(no_reason.unwrap_err().to_string().contains("why"));
    referrals
        .act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::Accepted, "See you Tuesday")
        .await
        .unwrap();
    referrals.act(rec, &actor(rec), referral.id, TaskStatus::Cancelled, "Moved away").await.unwrap();
    let late =
        referrals.act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::InProgress, "").await.unwrap_err();
    assert!(late.to_string().contains("cancelled and cannot be changed now"), "{late}");
    // The referrer was told when the group accepted (not when they cancelled themselves).
    assert_eq!(c.state.store.outbox_counts().await.unwrap().pending, 1);
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(kith_web::notify::FileMailer::new(dir.path().to_owned()));
    let senders = kith_web::notify::Senders { mail: files, text: None };
    assert_eq!(c.state.outbox().deliver_due(&senders).await.unwrap(), 1);
    let email = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap())
        .next()
        .unwrap();
    assert!(email.contains("To: rec@example.org") && email.contains("Subject: Referral update: Accepted"), "{email}");
    assert!(!email.contains("Jo Synthetic") && !email.contains("Lonely"), "no patient details by email: {email}");
    let steps: Vec<TaskStatus> = c.state.store.timeline(referral.id).await.unwrap().iter().map(|e| e.status).collect();
    assert_eq!(steps, [TaskStatus::Requested, TaskStatus::Accepted, TaskStatus::Cancelled]);

    // Every read and refusal of personal data is in the audit log.
    let audit =
        c.state.store.audit(&kith_domain::account::AuditQuery { limit: 200, ..Default::default() }).await.unwrap();
    let count = |action: &str| audit.iter().filter(|e| e.action == action).count();
    assert_eq!(count("patient.create"), 1);
    assert_eq!(count("patient.read"), 1);
    assert_eq!(count("patient.read_refused"), 2);
    assert_eq!(count("referral.status"), 2);
    assert!(count("referral.change_refused") >= 1);
}

/// The group's pages: the inbox lists the referral, the referral page shows what the
/// person agreed to share, and accepting moves it on; another group is refused.
async fn the_group_answers_a_referral_in_its_inbox(store: Arc<dyn Store>) {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let c = caseload(store).await;
    let referrals = c.state.referrals();
    let rec = &c.receptionist;
    let patient = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0018")).await.unwrap();
    let consent = Some(("Name, mobile and reason".to_owned(), "Walking group trust".to_owned()));
    let new = NewReferral {
        kind: ReferralKind::Referral,
        patient_id: patient.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent,
        safeguarding_note: None,
    };
    let referral = referrals.refer(rec, &actor(rec), new).await.unwrap();
    let app = kith_web::router(c.state.clone());
    let cookie = |user: &UserRecord| {
        let accounts = c.state.accounts.clone();
        let id = user.id;
        async move {
            let (token, _) =
                accounts.start_session(id, kith_domain::account::SessionStage::Complete, None).await.unwrap();
            format!("__Host-kith_session={token}")
        }
    };
    let call = |method: Method, uri: String, cookie: String, body: &'static str| {
        let app = app.clone();
        async move {
            let request = Request::builder()
                .method(method)
                .uri(uri)
                .header(header::HOST, "kith.test")
                .header(header::ORIGIN, "http://kith.test")
                .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
                .header(header::COOKIE, cookie)
                .body(Body::from(body))
                .unwrap();
            let response = app.oneshot(request).await.unwrap();
            let status = response.status();
            let body = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&body).replace("&#39;", "'"))
        }
    };
    // The receptionist refers from the service page: one form, then the referral.
    let r = cookie(rec).await;
    let form_uri = format!("/refer/{}", id(SERVICE_A));
    let (status, form) = call(Method::GET, form_uri.clone(), r.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{form}");
    assert!(form.contains("They agree to share") && form.contains("Walking group trust"));
    let bad_nhs = "kind=referral&nhs_number=9990000019&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company&consent=yes";
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), bad_nhs).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not a valid NHS number"), "{page}");
    let no_consent = "kind=referral&nhs_number=9990000026&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company";
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), no_consent).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Record the person's consent"), "{page}");
    let good = "kind=referral&nhs_number=9990000026&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company&consent=yes";
    let (status, _) = call(Method::POST, form_uri.clone(), r.clone(), good).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let sams = c.state.store.referrals_for_group(id(VCS_A), 10).await.unwrap();
    assert_eq!(sams.len(), 2, "the earlier referral and Sam's");
    let (status, _) = call(Method::GET, form_uri, cookie(&c.member_a).await, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "groups do not refer");

    let a = cookie(&c.member_a).await;
    let (status, inbox) = call(Method::GET, "/inbox".into(), a.clone(), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox.contains("Walking group") && inbox.contains(&referral.id.to_string()), "{inbox}");
    let page_uri = format!("/referrals/{}", referral.id);
    let (status, page) = call(Method::GET, page_uri.clone(), a.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Jo Synthetic") && page.contains("07700900123") && page.contains("Name, mobile and reason"));
    let (status, page) = call(Method::POST, format!("{page_uri}/status"), a.clone(), "to=rejected&note=").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Choose why the referral is declined"), "{page}");
    let (status, _) = call(Method::POST, format!("{page_uri}/status"), a.clone(), "to=accepted&note=").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = call(Method::GET, page_uri.clone(), a, "").await;
    assert!(page.contains("Accepted"));
    let b = cookie(&c.member_b).await;
    let (status, _) = call(Method::GET, page_uri.clone(), b.clone(), "").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    let (status, _) = call(Method::POST, format!("{page_uri}/status"), b, "to=in-progress&note=").await;
    assert_eq!(status, StatusCode::FORBIDDEN);
    assert_eq!(c.state.store.referral(referral.id).await.unwrap().unwrap().status, TaskStatus::Accepted);
}

macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test]
                async fn $name() {
                    let t = kith_store::testing::sqlite(super::clock()).await;
                    super::$name(t.store.clone()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test]
                async fn $name() {
                    let Some(t) = kith_store::testing::postgres(super::clock(), stringify!($name)).await else { return };
                    super::$name(t.store.clone()).await;
                    t.cleanup().await;
                }
            )*
        }
    };
}

on_both_engines!(referral_rules_on_a_synthetic_caseload, the_group_answers_a_referral_in_its_inbox);
