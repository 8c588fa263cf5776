//! The referrals service on SQLite and PostgreSQL: who may add, see, refer and act, and
//! bad input refused with nothing half-written. Patients here are synthetic, with NHS
//! numbers from the 999 range reserved for testing.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::{Duration, NaiveDate};
use kith_app::accounts::{Actor, NewUser};
use kith_app::referrals::{NewPatient, NewReferral, ReferralError};
use kith_app::testing::TestApp;
use kith_domain::account::{Area, AreaKind, Grant, OrgKind, Organisation, Role, Scope, UserRecord};
use kith_domain::hsds::{Organization, Service};
use kith_domain::referral::{ContactMethod, ReferralKind, TaskStatus};
use kith_domain::{Clock, DirectoryBatch, FixedClock, ServiceStatus};
use kith_store::Alongside;
use kith_web::AppState;
use std::sync::Arc;
use uuid::Uuid;

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

async fn caseload(t: &TestApp) -> Caseload {
    let store = t.store().clone();
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
    let clock = t.clock.clone();
    let state = AppState::new(t.app.clone());
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

async fn referral_rules_on_a_synthetic_caseload(t: &TestApp) {
    let c = caseload(t).await;
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
        follow_up_signpost: false,
        baseline: None,
    };
    let refused = referrals.refer(rec, &actor(rec), to_a(None)).await.unwrap_err();
    assert!(refused.to_string().contains("consent"), "{refused}");
    assert!(c.state.store().referrals_for_patient(patient.id).await.unwrap().is_empty());

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
    // Free text never reaches the timeline, which is stored in the clear (finding 6).
    let free =
        referrals.act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::Accepted, "See Jo Tuesday").await;
    assert!(matches!(&free, Err(ReferralError::Invalid(m)) if m.contains("from the list")), "{free:?}");
    referrals.act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::Accepted, "").await.unwrap();
    referrals.act(rec, &actor(rec), referral.id, TaskStatus::Cancelled, "person_declined").await.unwrap();
    let late =
        referrals.act(&c.member_a, &actor(&c.member_a), referral.id, TaskStatus::InProgress, "").await.unwrap_err();
    assert!(matches!(&late, ReferralError::Ended(m) if m.contains("ended (cancelled)")), "{late}");
    // The group was told of the new referral, and the referrer when the group accepted
    // (not when they cancelled themselves). Neither email names the person.
    assert_eq!(c.state.store().outbox_counts().await.unwrap().pending, 2);
    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(kith_app::notify::FileMailer::new(dir.path().to_owned()));
    let senders = kith_app::notify::Senders { mail: files, text: None };
    assert_eq!(c.state.outbox().deliver_due(&senders).await.unwrap(), 2);
    let emails: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect();
    let to_group = emails.iter().find(|e| e.contains("To: a@example.org")).unwrap();
    assert!(to_group.contains("Subject: A new referral to Walking group"), "{to_group}");
    assert!(to_group.contains(&format!("/referrals/{}/link", referral.id)), "{to_group}");
    let email = emails.iter().find(|e| e.contains("To: rec@example.org")).unwrap();
    assert!(email.contains("Subject: Referral update: Accepted"), "{email}");
    for email in &emails {
        assert!(!email.contains("Jo Synthetic") && !email.contains("Lonely"), "no patient details by email: {email}");
    }
    let timeline = c.state.store().timeline(referral.id).await.unwrap();
    let steps: Vec<TaskStatus> = timeline.iter().map(|e| e.status).collect();
    assert_eq!(steps, [TaskStatus::Requested, TaskStatus::Accepted, TaskStatus::Cancelled]);
    assert_eq!(timeline[2].note, "The person did not want to go ahead", "stored as the reason's label");

    // Every read and refusal of personal data is in the audit log.
    let audit =
        c.state.store().audit(&kith_domain::account::AuditQuery { limit: 200, ..Default::default() }).await.unwrap();
    let count = |action: &str| audit.iter().filter(|e| e.action == action).count();
    assert_eq!(count("patient.create"), 1);
    assert_eq!(count("patient.read"), 1);
    assert_eq!(count("patient.read_refused"), 2);
    assert_eq!(count("referral.status"), 2);
    assert!(count("referral.change_refused") >= 1);
}

/// The group's pages: the inbox lists the referral, the referral page shows what the
/// person agreed to share, and accepting moves it on; another group is refused.
async fn the_group_answers_a_referral_in_its_inbox(t: &TestApp) {
    use axum::body::Body;
    use axum::http::{Method, Request, StatusCode, header};
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let c = caseload(t).await;
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
        follow_up_signpost: false,
        baseline: None,
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
    let call = |method: Method, uri: String, cookie: String, body: &str| {
        let app = app.clone();
        let body = body.to_owned();
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
    // Every problem at once, each beside its field (security.md, item 13), and nothing
    // written.
    let all_wrong = "kind=referral&nhs_number=123&name=&birth_day=31&birth_month=2&birth_year=1950&mobile=0141+123+4567&email=nope&postcode=XX&contact=text&reason=&what_matters=Company";
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), all_wrong).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    for (field, says) in [
        ("nhs_number", "An NHS number has 10 digits"),
        ("name", "Enter the person's name"),
        ("birth_date", "Enter the person's date of birth"),
        ("mobile", "Enter a UK mobile number"),
        ("email", "Enter an email address in the correct format"),
        ("consent", "Record the person's consent"),
        ("reason", "Give the reason for the referral"),
    ] {
        assert!(page.contains(&format!("href=\"#{field}\"")), "{field} in the error summary: {page}");
        assert!(page.contains(says), "{says}");
    }
    assert!(page.contains("id=\"birth_day\"") && page.contains("value=\"31\""), "the date input keeps what was typed");
    assert_eq!(c.state.store().referrals_for_group(id(VCS_A), 10).await.unwrap().len(), 1, "nothing written");
    let bad_nhs = "kind=referral&nhs_number=9990000019&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company&consent=yes";
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), bad_nhs).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("not a valid NHS number"), "{page}");
    let no_consent = "kind=referral&nhs_number=9990000026&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company";
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), no_consent).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("Record the person's consent"), "{page}");
    let good = "kind=referral&nhs_number=9990000026&name=Sam+Synthetic&birth_date=1960-01-02&mobile=07700900456&contact=text&reason=Isolated&what_matters=Company&consent=yes";
    // Every answer is read back before anything is written (item 13: check your answers).
    let (status, check) = call(Method::POST, form_uri.clone(), r.clone(), good).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert!(check.contains("Check your answers before sending the referral"), "{check}");
    assert!(check.contains("999 000 0026") && check.contains("2 January 1960") && check.contains("By text"), "{check}");
    assert!(check.contains("Referring them to Walking group trust") && check.contains("Yes, in 28 days"), "{check}");
    assert!(check.contains("name=\"change\" value=\"reason\""), "each answer can be changed: {check}");
    assert_eq!(c.state.store().referrals_for_group(id(VCS_A), 10).await.unwrap().len(), 1, "nothing written yet");
    // "Change" goes back to the form with every answer kept.
    let (status, form) = call(Method::POST, form_uri.clone(), r.clone(), &format!("{good}&change=reason")).await;
    assert_eq!(status, StatusCode::OK);
    assert!(form.contains("Refer or signpost someone") && form.contains(">Isolated</textarea>"), "{form}");
    let (status, sent) = call(Method::POST, form_uri.clone(), r.clone(), &format!("{good}&step=send")).await;
    assert_eq!(status, StatusCode::SEE_OTHER, "{sent}");
    let sams = c.state.store().referrals_for_group(id(VCS_A), 10).await.unwrap();
    assert_eq!(sams.len(), 2, "the earlier referral and Sam's");
    // Then a confirmation page says what happens next, to the referring practice only.
    let sams_id = sams.iter().find(|s| s.id != referral.id).unwrap().id;
    let (status, page) = call(Method::GET, format!("/referrals/{sams_id}/sent"), r.clone(), "").await;
    assert_eq!(status, StatusCode::OK, "{page}");
    assert!(page.contains("Referral sent") && page.contains("What happens next"), "{page}");
    assert!(page.contains("A follow-up is due on") && !page.contains("Sam Synthetic"), "{page}");
    let (status, _) = call(Method::GET, format!("/referrals/{sams_id}/sent"), cookie(&c.member_a).await, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "the group has its inbox, not the referrer's page");
    // The same NHS number with another name and birth date: never Sam's record silently
    // (security.md, finding 9). Kith asks, showing what it holds partly hidden.
    let other = "kind=referral&nhs_number=999+000+0026&name=Pat+Other&birth_date=1971-05-06&mobile=07700900999&contact=text&reason=Isolated&what_matters=Company&consent=yes";
    let (status, check) = call(Method::POST, form_uri.clone(), r.clone(), other).await;
    assert_eq!(status, StatusCode::OK, "{check}");
    assert!(check.contains("Is this the right person?") && check.contains("The details you entered are different"));
    assert!(
        check.contains("S\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}")
            && !check.contains("Sam Synthetic"),
        "{check}"
    );
    assert!(
        check.contains("\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}\u{2022}456")
            && check.contains("January 1960"),
        "{check}"
    );
    assert_eq!(c.state.store().referrals_for_group(id(VCS_A), 10).await.unwrap().len(), 2, "nothing made yet");
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), &format!("{other}&same_person=no")).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(page.contains("belongs to someone your practice already holds"), "{page}");
    // A confirmation for another record does not carry over.
    let forged = format!("{other}&same_person={}", Uuid::new_v4());
    let (status, page) = call(Method::POST, form_uri.clone(), r.clone(), &forged).await;
    assert!(status == StatusCode::OK && page.contains("Is this the right person?"), "{page}");
    // Confirmed: the stored record is used, with its own details.
    let sam = hidden_value(&check, "same_person");
    let confirmed = format!("{other}&same_person={sam}");
    let (status, check) = call(Method::POST, form_uri.clone(), r.clone(), &confirmed).await;
    assert_eq!(status, StatusCode::OK);
    assert!(check.contains("The one your practice already holds") && !check.contains(">Pat Other<"), "{check}");
    let (status, _) = call(Method::POST, form_uri.clone(), r.clone(), &format!("{confirmed}&step=send")).await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let sams = c.state.store().referrals_for_group(id(VCS_A), 10).await.unwrap();
    assert_eq!(sams.len(), 3);
    assert_eq!(sams.iter().filter(|s| s.patient_id.to_string() == sam).count(), 2, "both are Sam's");
    let (status, _) = call(Method::GET, form_uri, cookie(&c.member_a).await, "").await;
    assert_eq!(status, StatusCode::FORBIDDEN, "groups do not refer");

    let a = cookie(&c.member_a).await;
    let (status, inbox) = call(Method::GET, "/inbox".into(), a.clone(), "").await;
    assert_eq!(status, StatusCode::OK);
    assert!(inbox.contains("Walking group") && inbox.contains(&referral.id.to_string()), "{inbox}");
    // What the group needs at a glance (security.md, item 14): initials, not names; the
    // referring practice; how to make contact; a status coloured by what it means.
    assert!(inbox.contains("J. S.") && !inbox.contains("Jo Synthetic"), "{inbox}");
    assert!(inbox.contains("Parkhead Health Centre") && inbox.contains("By text"), "{inbox}");
    assert!(inbox.contains("nhsuk-tag nhsuk-tag--blue\">Sent"), "{inbox}");
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
    assert_eq!(c.state.store().referral(referral.id).await.unwrap().unwrap().status, TaskStatus::Accepted);
    // The practice records the follow-up a week early; the page says so (item 14).
    c.clock.advance(Duration::days(21));
    let r = cookie(rec).await;
    let (status, _) = call(Method::POST, format!("{page_uri}/outcome"), r.clone(), "outcome=still_attending").await;
    assert_eq!(status, StatusCode::SEE_OTHER);
    let (_, page) = call(Method::GET, page_uri.clone(), r, "").await;
    assert!(page.contains("recorded 7 days before it was due"), "{page}");
    assert!(!page.contains("If you decline, why?"), "the group's own fields are not the referrer's");
}

/// The value of the first hidden input called `name`.
fn hidden_value(html: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = html.find(&marker).unwrap_or_else(|| panic!("no {name} in {html}")) + marker.len();
    html[at..].split('"').next().unwrap().to_owned()
}

/// A signpost shares nothing with the group that runs the service; a referral shares
/// only what the consent covers, and only until it ends (security.md, finding 2). Through
/// the referrals service and through FHIR.
async fn groups_see_only_what_the_consent_covers(t: &TestApp) {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use kith_domain::account::SessionStage;
    use tower::ServiceExt;

    let c = caseload(t).await;
    let referrals = c.state.referrals();
    let rec = &c.receptionist;
    let member = &c.member_a;
    let app = kith_web::router(c.state.clone());
    let (token, _) = c.state.accounts.start_session(member.id, SessionStage::Complete, None).await.unwrap();
    let cookie = format!("__Host-kith_session={token}");
    let fhir = |uri: String| {
        let app = app.clone();
        let cookie = cookie.clone();
        async move {
            let request = Request::get(&uri).header(header::HOST, "kith.test").header(header::COOKIE, cookie);
            let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
            let status = response.status();
            // Personal data is never kept by a browser or proxy (finding 6).
            assert_eq!(response.headers()[header::CACHE_CONTROL], "no-store", "{uri}");
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };

    // Signposted only, to the group's own service, with everything a practice records.
    let mut signposted = new_patient("999 000 0018");
    signposted.postcode = Some("G31 2ER".into());
    let signposted = referrals.add_patient(rec, &actor(rec), signposted).await.unwrap();
    let signpost = NewReferral {
        kind: ReferralKind::Signpost,
        patient_id: signposted.id,
        service_id: id(SERVICE_A),
        reason: "Drinking more since the divorce".into(),
        what_matters: "Seeing my grandchildren".into(),
        consent: None,
        safeguarding_note: Some("Partner is controlling".into()),
        follow_up_signpost: true,
        baseline: Some(vec![3, 4, 2, 8]),
    };
    let signpost = referrals.refer(rec, &actor(rec), signpost).await.unwrap();
    let stored = c.state.store().referral(signpost.id).await.unwrap().unwrap();
    assert_eq!(stored.group_id, None, "a signpost is not stored with the group");
    assert!(matches!(
        referrals.referral_details(member, &actor(member), signpost.id).await,
        Err(ReferralError::Forbidden(_))
    ));
    assert!(matches!(
        referrals.patient_details(member, &actor(member), signposted.id, "test").await,
        Err(ReferralError::Forbidden(_))
    ));
    assert!(matches!(referrals.measures(member, &actor(member), signpost.id).await, Err(ReferralError::Forbidden(_))));
    // The database refuses a signpost with a group, whatever the code above it does.
    let mut forced = stored.clone();
    forced.id = Uuid::new_v4();
    forced.group_id = Some(id(VCS_A));
    let first = kith_domain::referral::ReferralEvent {
        seq: 0,
        referral_id: forced.id,
        at: c.clock.now(),
        actor: None,
        status: forced.status,
        note: String::new(),
    };
    let rows = kith_store::referrals::NewReferralRows { referral: forced, first, follow_up: None, baseline: None };
    assert!(
        c.state.store().create_referrals(vec![rows], Alongside::none()).await.is_err(),
        "the store keeps signposts from groups"
    );

    // Referred, with consent.
    let mut referred = new_patient("999 000 0026");
    referred.name = "Ray Synthetic".into();
    referred.postcode = Some("G31 2ER".into());
    let referred = referrals.add_patient(rec, &actor(rec), referred).await.unwrap();
    let consent = Some(("Name, contact details and the reason for referral".to_owned(), "Walking group".to_owned()));
    let referral = NewReferral {
        kind: ReferralKind::Referral,
        patient_id: referred.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent,
        safeguarding_note: Some("Lives with a violent son".into()),
        follow_up_signpost: false,
        baseline: Some(vec![5, 5, 5, 5]),
    };
    let referral = referrals.refer(rec, &actor(rec), referral).await.unwrap();
    let seen = referrals.patient_details(member, &actor(member), referred.id, "test").await.unwrap();
    assert_eq!((seen.name.as_str(), seen.mobile.as_deref()), ("Ray Synthetic", Some("07700900123")));
    assert_eq!((seen.nhs_number, seen.birth_date, seen.postcode), (None, None, None), "beyond the consent");
    let full = referrals.patient_details(rec, &actor(rec), referred.id, "test").await.unwrap();
    assert!(full.nhs_number.is_some() && full.birth_date.is_some() && full.postcode.is_some(), "the practice sees all");
    let (record, details) = referrals.referral_details(member, &actor(member), referral.id).await.unwrap();
    assert_eq!(details.reason, "Lonely since moving");
    assert!(details.what_matters.is_empty() && details.safeguarding_note.is_none(), "{details:?}");
    assert!(record.safeguarding, "the group is told there is a concern, to speak to the practice");
    assert!(matches!(referrals.measures(member, &actor(member), referral.id).await, Err(ReferralError::Forbidden(_))));

    // FHIR: the signpost-only patient no longer refuses the whole search; the Patient
    // carries no NHS number, birth date or address; no Observation reaches the group.
    let (status, body) = fhir("/fhir/ServiceRequest".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains(&referral.id.to_string()) && !body.contains(&signpost.id.to_string()), "{body}");
    assert!(!body.contains("Getting out of the house") && !body.contains("violent"), "{body}");
    let (status, body) = fhir(format!("/fhir/Patient/{}", referred.id)).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Ray Synthetic") && body.contains("07700900123"), "{body}");
    for beyond in ["9990000026", "birthDate", "postalCode", "G31"] {
        assert!(!body.contains(beyond), "{beyond} in {body}");
    }
    let (status, body) = fhir(format!("/fhir/Patient/{}", signposted.id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    for patient in [signposted.id, referred.id] {
        let (status, body) = fhir(format!("/fhir/Observation?patient=Patient/{patient}")).await;
        assert!(status == StatusCode::OK || status == StatusCode::FORBIDDEN, "{status} {body}");
        assert!(!body.contains("\"Observation\""), "no well-being answers for the group: {body}");
    }
    let measures = c.state.store().measures(signpost.id).await.unwrap();
    let (status, _) = fhir(format!("/fhir/Observation/{}", measures[0].id)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    // Declined: the group knows it ended, and no more.
    referrals.act(member, &actor(member), referral.id, TaskStatus::Rejected, "no_capacity").await.unwrap();
    let ended = referrals.referral_details(member, &actor(member), referral.id).await.unwrap_err();
    assert!(matches!(&ended, ReferralError::Ended(m) if m.contains("declined")), "{ended}");
    assert!(matches!(
        referrals.patient_details(member, &actor(member), referred.id, "test").await,
        Err(ReferralError::Forbidden(_))
    ));
    let (status, body) = fhir("/fhir/ServiceRequest".into()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("Ray Synthetic"), "{body}");
    let (status, body) = fhir(format!("/fhir/ServiceRequest/{}", referral.id)).await;
    assert_eq!(status, StatusCode::GONE, "{body}");
    assert!(body.contains("ended") && !body.contains("Lonely"), "{body}");
    let inbox = referrals.inbox(member, &actor(member), id(VCS_A)).await.unwrap();
    assert_eq!(inbox.len(), 1, "the inbox still lists it, with its status");
}

/// Each test, on a fresh application on SQLite and on PostgreSQL, in a module named
/// after the test.
macro_rules! on_both_engines {
    ($($name:ident),* $(,)?) => {
        $(
            mod $name {
                use kith_app::testing::TestApp;
                use kith_store::Engine;

                #[tokio::test]
                async fn sqlite() {
                    let t = TestApp::on(Engine::Sqlite, stringify!($name)).build().await.unwrap();
                    super::$name(&t).await;
                }

                #[tokio::test]
                async fn postgres() {
                    let Some(t) = TestApp::on(Engine::Postgres, stringify!($name)).build().await else { return };
                    super::$name(&t).await;
                    t.cleanup().await;
                }
            }
        )*
    };
}

/// Follow-up on an injected clock: a baseline, re-routing, the group's report of
/// attendance, reminders when due and when overdue, and the outcome with ONS4. Someone
/// else's referral, a bad answer and a second outcome are refused, changing nothing.
async fn follow_ups_remind_escalate_and_record_outcomes(t: &TestApp) {
    use kith_domain::referral::{EndReason, Outcome};
    let c = caseload(t).await;
    let referrals = c.state.referrals();
    let rec = &c.receptionist;
    let link_worker = c
        .state
        .accounts
        .create_user(
            NewUser {
                email: "lw@example.org".into(),
                name: "Lee Link".into(),
                password: None,
                grants: vec![Grant { role: Role::LinkWorker, scope: Scope::Organisation(id(PRACTICE)) }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    let patient = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0018")).await.unwrap();
    let consent = Some(("Name, mobile and reason".to_owned(), "Walking group trust".to_owned()));
    let new = |baseline: Option<Vec<u8>>| NewReferral {
        kind: ReferralKind::Referral,
        patient_id: patient.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent: consent.clone(),
        safeguarding_note: None,
        follow_up_signpost: false,
        baseline,
    };
    let bad = referrals.refer(rec, &actor(rec), new(Some(vec![4, 5, 3, 11]))).await.unwrap_err();
    assert!(bad.to_string().contains("from 0 to 10"), "{bad}");
    assert!(c.state.store().referrals_for_patient(patient.id).await.unwrap().is_empty(), "nothing half-written");
    let first = referrals.refer(rec, &actor(rec), new(Some(vec![4, 5, 3, 8]))).await.unwrap();
    assert_eq!(c.state.store().measures(first.id).await.unwrap()[0].answers, [4, 5, 3, 8]);

    // The group re-routes it to the lunch club, with the person's agreement.
    let a = &c.member_a;
    let no = referrals.reroute(a, &actor(a), first.id, id(SERVICE_B), false).await.unwrap_err();
    assert!(no.to_string().contains("Confirm the person agreed"), "{no}");
    let same = referrals.reroute(a, &actor(a), first.id, id(SERVICE_A), true).await.unwrap_err();
    assert!(same.to_string().contains("different service"), "{same}");
    let moved = referrals.reroute(a, &actor(a), first.id, id(SERVICE_B), true).await.unwrap();
    assert_eq!((moved.group_id, moved.status, moved.referrer_user), (Some(id(VCS_B)), TaskStatus::Requested, rec.id));
    assert_eq!(c.state.store().referral(first.id).await.unwrap().unwrap().status, TaskStatus::Rejected);
    let again = referrals.reroute(a, &actor(a), first.id, id(SERVICE_B), true).await.unwrap_err();
    assert!(matches!(&again, ReferralError::Ended(m) if m.contains("ended (declined)")), "{again}");
    let (_, details) = referrals.referral_details(&c.member_b, &actor(&c.member_b), moved.id).await.unwrap();
    assert_eq!(details.consent.unwrap().with_whom, "Lunch club trust");
    let notes: Vec<String> = c.state.store().timeline(first.id).await.unwrap().into_iter().map(|e| e.note).collect();
    assert_eq!(notes.last().unwrap(), "Re-routed to Lunch club");

    // The new group accepts and reports that the person has started; the old group
    // cannot record anything on it.
    let b = &c.member_b;
    referrals.act(b, &actor(b), moved.id, TaskStatus::Accepted, "").await.unwrap();
    let stranger = referrals.record_outcome(a, &actor(a), moved.id, Outcome::StillAttending, None).await;
    assert!(matches!(stranger, Err(ReferralError::Forbidden(_))), "someone else's referral");
    let group_ons4 = referrals.record_outcome(b, &actor(b), moved.id, Outcome::Started, Some(vec![5, 5, 5, 5])).await;
    assert!(group_ons4.unwrap_err().to_string().contains("recorded by the person's practice"));
    let started = referrals.record_outcome(b, &actor(b), moved.id, Outcome::Started, None).await.unwrap();
    assert_eq!(started.status, TaskStatus::InProgress);
    let f = c.state.store().follow_up(moved.id).await.unwrap().unwrap();
    assert_eq!((f.attendance, f.is_open()), (Some(Outcome::Started), true));

    // Reminders: none before 28 days; then one to the referrer; a week later, to the
    // referrer and the practice's link worker. Each once.
    // The jobs run as a server runs them, and the emails are what each person receives.
    t.run_jobs().await;
    let earlier = t.take_emails();
    let rerouted = earlier.iter().find(|m| m.subject.contains("re-routed")).unwrap();
    assert!(
        rerouted.body.starts_with("A referral you made to Walking group: re-routed to Lunch club."),
        "{rerouted:?}"
    );
    let mut earlier: Vec<(String, String)> = earlier.into_iter().map(|m| (m.to, m.subject)).collect();
    // Written at the same moment on the test's clock, so sent in no set order.
    earlier.sort();
    let said = |to: &str, subject: &str| (to.to_owned(), subject.to_owned());
    assert_eq!(
        earlier,
        [
            said("a@example.org", "A new referral to Walking group"),
            said("rec@example.org", "Referral update: Accepted"),
            said("rec@example.org", "Referral update: Started going (reported by the group)"),
            said("rec@example.org", "Referral update: re-routed to Lunch club"),
        ],
        "the group's news and the referrer's updates, each once"
    );
    assert_eq!(t.store().outbox_counts().await.unwrap().pending, 0, "all sent");
    c.clock.advance(Duration::days(27));
    assert_eq!(t.run_jobs().await.reminders, 0);
    c.clock.advance(Duration::days(1));
    assert_eq!(t.run_jobs().await, kith_app::jobs::Round { reminders: 1, sent: 1, feeds: 0 });
    assert_eq!(t.run_jobs().await.reminders, 0, "once");
    let due = t.take_emails();
    assert_eq!(due.len(), 1);
    assert_eq!((due[0].to.as_str(), due[0].subject.as_str()), ("lw@example.org", "A follow-up is due"));
    assert!(due[0].body.contains(&format!("/referrals/{}", moved.id)) && !due[0].body.contains("Jo Synthetic"));
    c.clock.advance(Duration::days(7));
    assert_eq!(t.run_jobs().await.reminders, 2, "the link worker and the referrer");
    let overdue = t.take_emails();
    for to in ["lw@example.org", "rec@example.org"] {
        assert!(overdue.iter().any(|m| m.to == to && m.body.contains("overdue")), "{overdue:?}");
    }
    let open = referrals.follow_ups(&link_worker, &actor(&link_worker)).await.unwrap();
    assert_eq!(open.iter().map(|(f, _)| f.referral_id).collect::<Vec<_>>(), [moved.id]);
    assert!(open[0].0.is_overdue(c.clock.now()));
    assert!(matches!(referrals.follow_ups(b, &actor(b)).await, Err(ReferralError::Forbidden(_))));

    // The link worker records "still attending" with ONS4; a second outcome is refused.
    let bad = referrals
        .record_outcome(&link_worker, &actor(&link_worker), moved.id, Outcome::StillAttending, Some(vec![7, 7]))
        .await
        .unwrap_err();
    assert!(bad.to_string().contains("Answer all 4 questions"), "{bad}");
    let steps = c.state.store().timeline(moved.id).await.unwrap().len();
    assert_eq!(c.state.store().measures(moved.id).await.unwrap().len(), 0);
    referrals
        .record_outcome(&link_worker, &actor(&link_worker), moved.id, Outcome::StillAttending, Some(vec![7, 7, 6, 4]))
        .await
        .unwrap();
    let f = c.state.store().follow_up(moved.id).await.unwrap().unwrap();
    assert_eq!((f.outcome, f.outcome_by), (Some(Outcome::StillAttending), Some(link_worker.id)));
    let timeline = c.state.store().timeline(moved.id).await.unwrap();
    assert_eq!(timeline.len(), steps + 1);
    assert_eq!(timeline.last().unwrap().note, "Follow-up: Still attending");
    assert_eq!(c.state.store().measures(moved.id).await.unwrap()[0].answers, [7, 7, 6, 4]);
    let twice = referrals
        .record_outcome(rec, &actor(rec), moved.id, Outcome::Stopped(EndReason::Cost), None)
        .await
        .unwrap_err();
    assert!(twice.to_string().contains("recorded already"), "{twice}");
    assert!(referrals.follow_ups(rec, &actor(rec)).await.unwrap().is_empty());
    assert_eq!(referrals.send_reminders().await.unwrap(), 0);

    // The Links measure, for the commissioner over the area: two referrals (the first,
    // re-routed, and the second), one followed up, started and still attending.
    let from = c.clock.now() - Duration::days(60);
    let report = referrals.links_report(&c.commissioner, &actor(&c.commissioner), from, c.clock.now()).await.unwrap();
    assert_eq!(
        (report.overall.referrals, report.overall.followed_up, report.overall.started, report.overall.still_attending),
        (2, 1, 1, 1)
    );
    assert_eq!(report.by_practice.len(), 1);
    assert_eq!(
        report.by_service.iter().map(|(_, n, c)| (n.as_str(), c.referrals)).collect::<Vec<_>>(),
        [("Lunch club", 1), ("Walking group", 1)]
    );
    assert!(matches!(
        referrals.links_report(b, &actor(b), from, c.clock.now()).await,
        Err(ReferralError::Forbidden(_))
    ));
}

/// One view of a referral, for its page and for FHIR: the practice sees its follow-up and
/// the well-being answers; the group sees that the practice recorded a follow-up, what
/// the group itself reported, and nothing more, on the page, in FHIR's Task, and in the
/// view both are built from.
async fn the_practices_follow_up_is_not_the_groups(t: &TestApp) {
    use axum::body::Body;
    use axum::http::{Request, StatusCode, header};
    use http_body_util::BodyExt;
    use kith_app::referrals::Viewing;
    use kith_domain::account::SessionStage;
    use kith_domain::referral::Outcome;
    use tower::ServiceExt;

    let c = caseload(t).await;
    let referrals = c.state.referrals();
    let (rec, member) = (&c.receptionist, &c.member_a);
    let patient = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0018")).await.unwrap();
    let new = NewReferral {
        kind: ReferralKind::Referral,
        patient_id: patient.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent: Some(("Name, contact details and the reason for referral".into(), "Walking group".into())),
        safeguarding_note: None,
        follow_up_signpost: false,
        baseline: Some(vec![5, 5, 5, 5]),
    };
    let referral = referrals.refer(rec, &actor(rec), new).await.unwrap();
    referrals.act(member, &actor(member), referral.id, TaskStatus::Accepted, "").await.unwrap();
    c.clock.advance(Duration::days(14));
    referrals.record_outcome(member, &actor(member), referral.id, Outcome::Started, None).await.unwrap();
    c.clock.advance(Duration::days(14));
    let answers = Some(vec![8, 7, 8, 2]);
    referrals.record_outcome(rec, &actor(rec), referral.id, Outcome::StillAttending, answers).await.unwrap();

    let practice = referrals.view(rec, &actor(rec), referral.id, "test").await.unwrap();
    assert_eq!(practice.viewing, Viewing::Practice);
    let f = practice.follow_up.as_ref().unwrap();
    assert_eq!((f.outcome, f.attendance), (Some(Outcome::StillAttending), Some(Outcome::Started)));
    assert_eq!(practice.measures.len(), 2, "the baseline and the follow-up");
    assert!(practice.timeline.iter().any(|e| e.note == "Follow-up: Still attending"), "{:?}", practice.timeline);
    assert_eq!(practice.details.what_matters, "Getting out of the house");

    let group = referrals.view(member, &actor(member), referral.id, "test").await.unwrap();
    assert_eq!(group.viewing, Viewing::Group);
    let f = group.follow_up.as_ref().unwrap();
    assert_eq!((f.outcome, f.outcome_at, f.attendance), (None, None, Some(Outcome::Started)), "{f:?}");
    assert!(group.measures.is_empty());
    assert!(!group.timeline.iter().any(|e| e.note.contains("Still attending")), "{:?}", group.timeline);
    assert!(group.timeline.iter().any(|e| e.note == "The practice recorded its follow-up"));
    assert!(group.details.what_matters.is_empty() && group.patient.nhs_number.is_none());
    assert_eq!(group.timeline.len(), practice.timeline.len(), "the same events, one said less of");

    let app = kith_web::router(c.state.clone());
    let get = |user: &UserRecord, uri: String| {
        let (app, state, user) = (app.clone(), c.state.clone(), user.id);
        async move {
            let (token, _) = state.accounts.start_session(user, SessionStage::Complete, None).await.unwrap();
            let request = Request::get(&uri)
                .header(header::HOST, "kith.test")
                .header(header::COOKIE, format!("__Host-kith_session={token}"));
            let response = app.oneshot(request.body(Body::empty()).unwrap()).await.unwrap();
            let status = response.status();
            let bytes = response.into_body().collect().await.unwrap().to_bytes();
            (status, String::from_utf8_lossy(&bytes).into_owned())
        }
    };
    let (status, task) = get(rec, format!("/fhir/Task/{}", referral.id)).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert!(task.contains("\"output\""), "the practice's Task carries its outcome: {task}");
    let (status, task) = get(member, format!("/fhir/Task/{}", referral.id)).await;
    assert_eq!(status, StatusCode::OK, "{task}");
    assert!(!task.contains("\"output\""), "the group's Task carries no follow-up outcome: {task}");
    let (status, page) = get(member, format!("/referrals/{}", referral.id)).await;
    assert_eq!(status, StatusCode::OK, "{page}");
    // ("Still attending" is also one of the answers the group's own attendance form offers.)
    assert!(page.contains("The practice recorded its follow-up"), "{page}");
    assert!(!page.contains("Follow-up: Still attending") && !page.contains("Follow-up outcome"), "{page}");
    let (_, page) = get(rec, format!("/referrals/{}", referral.id)).await;
    assert!(page.contains("Follow-up: Still attending") && page.contains("Follow-up outcome"), "{page}");
}

on_both_engines!(
    referral_rules_on_a_synthetic_caseload,
    the_group_answers_a_referral_in_its_inbox,
    follow_ups_remind_escalate_and_record_outcomes,
    groups_see_only_what_the_consent_covers,
    the_practices_follow_up_is_not_the_groups,
);

/// A change and what must go with it, its audit entry and its emails, are written in one
/// transaction: if either cannot be written, neither is the change (ADR 0007, ADR 0008).
/// A read of personal data whose audit entry cannot be written is refused.
async fn a_change_its_audit_entry_and_its_messages_go_together(t: &TestApp) {
    let c = caseload(t).await;
    let referrals = c.state.referrals();
    let (rec, member) = (&c.receptionist, &c.member_a);
    let patient = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0018")).await.unwrap();
    let to_a = || NewReferral {
        kind: ReferralKind::Referral,
        patient_id: patient.id,
        service_id: id(SERVICE_A),
        reason: "Lonely since moving".into(),
        what_matters: "Getting out of the house".into(),
        consent: Some(("Name, mobile and reason".into(), "Walking group trust".into())),
        safeguarding_note: None,
        follow_up_signpost: false,
        baseline: None,
    };
    let audited = |action: &'static str| {
        let store = t.store().clone();
        async move {
            let query = kith_domain::account::AuditQuery { limit: 1000, ..Default::default() };
            store.audit(&query).await.unwrap().iter().filter(|e| e.action == action).count()
        }
    };
    let pending = || async { t.store().outbox_counts().await.unwrap().pending };

    // The group's email cannot be queued: no referral, no audit entry.
    t.test_store().refuse_inserts("outbox").await;
    let failed = referrals.refer(rec, &actor(rec), to_a()).await.unwrap_err();
    assert!(matches!(failed, ReferralError::Store(_)), "{failed:?}");
    assert!(t.store().referrals_for_patient(patient.id).await.unwrap().is_empty(), "no referral");
    assert_eq!(audited("referral.create").await, 0, "no audit entry");
    t.test_store().allow_inserts("outbox").await;

    // The audit entry cannot be written: no referral, no email, and no new patient.
    t.test_store().refuse_inserts("audit_log").await;
    let failed = referrals.refer(rec, &actor(rec), to_a()).await.unwrap_err();
    assert!(matches!(failed, ReferralError::Store(_)), "{failed:?}");
    assert!(t.store().referrals_for_patient(patient.id).await.unwrap().is_empty(), "no referral");
    assert_eq!(pending().await, 0, "no email");
    let unaudited = referrals.add_patient(rec, &actor(rec), new_patient("999 000 0026")).await;
    assert!(unaudited.is_err(), "a patient is not added unaudited");
    t.test_store().allow_inserts("audit_log").await;

    // Both can be written: all three are.
    let referral = referrals.refer(rec, &actor(rec), to_a()).await.unwrap();
    assert_eq!(audited("referral.create").await, 1);
    assert_eq!(pending().await, 1, "the group's member is told");

    // A status move and an outcome roll back with their audit entry or email too.
    t.test_store().refuse_inserts("outbox").await;
    let failed = referrals.act(member, &actor(member), referral.id, TaskStatus::Accepted, "").await.unwrap_err();
    assert!(matches!(failed, ReferralError::Store(_)), "{failed:?}");
    let stored = t.store().referral(referral.id).await.unwrap().unwrap();
    assert_eq!(stored.status, TaskStatus::Requested, "not moved");
    assert_eq!(t.store().timeline(referral.id).await.unwrap().len(), 1, "no step on the timeline");
    t.test_store().allow_inserts("outbox").await;
    t.test_store().refuse_inserts("audit_log").await;
    let failed = referrals.act(member, &actor(member), referral.id, TaskStatus::Accepted, "").await.unwrap_err();
    assert!(matches!(failed, ReferralError::Store(_)), "{failed:?}");
    assert_eq!(t.store().referral(referral.id).await.unwrap().unwrap().status, TaskStatus::Requested);
    assert_eq!(pending().await, 1, "the referrer is not told of a move that did not happen");

    // And personal data is not read unaudited.
    let read = referrals.referral_details(member, &actor(member), referral.id).await;
    assert!(matches!(read, Err(ReferralError::Store(_))), "{read:?}");
    let read = referrals.patient_details(rec, &actor(rec), patient.id, "test").await;
    assert!(matches!(read, Err(ReferralError::Store(_))), "{read:?}");
    t.test_store().allow_inserts("audit_log").await;
    assert!(referrals.referral_details(member, &actor(member), referral.id).await.is_ok());
    referrals.act(member, &actor(member), referral.id, TaskStatus::Accepted, "").await.unwrap();
    assert_eq!(pending().await, 2, "now the referrer is told");

    // A sign-in link goes with its audit entry and its email, or not at all.
    let outbox = c.state.outbox();
    let accounts = &c.state.accounts;
    let link_email =
        |_: &str| vec![outbox.email_message("shed@example.org", "Check the listing", "Open it", "magic_link")];
    t.test_store().refuse_inserts("audit_log").await;
    let purpose = kith_domain::account::LinkPurpose::UpdateListing;
    let failed = accounts.issue_magic_link(member, purpose, id(SERVICE_A), &actor(member), link_email).await;
    assert!(failed.is_err(), "a link is not issued unaudited");
    assert_eq!(pending().await, 2, "and its email is not queued");
    // A shortlist sent to someone: the message with its audit entry.
    let message = outbox.email_message("sam@example.org", "Services we talked about", "…", "shortlist");
    let event = accounts.audit_event(&actor(rec), "shortlist.send", "outbox", Some(message.id.to_string()), "email");
    assert!(outbox.queue_audited(message, event).await.is_err());
    assert_eq!(pending().await, 2, "a list is not sent unaudited");
    t.test_store().allow_inserts("audit_log").await;
    t.test_store().refuse_inserts("outbox").await;
    let failed = accounts.issue_magic_link(member, purpose, id(SERVICE_A), &actor(member), link_email).await;
    assert!(failed.is_err(), "no link without its email");
    assert_eq!(audited("magic_link.issue").await, 0, "and no audit entry for it");
    t.test_store().allow_inserts("outbox").await;
    accounts.issue_magic_link(member, purpose, id(SERVICE_A), &actor(member), link_email).await.unwrap();
    assert_eq!((audited("magic_link.issue").await, pending().await), (1, 3));

    // A sign-in is written with its audit entry: with the log refusing, no session starts,
    // and the session it would have replaced is kept.
    use kith_app::accounts::SignInStep;
    use kith_domain::account::SessionStage;
    let (_, before) = accounts.start_session(member.id, SessionStage::SecondFactor, None).await.unwrap();
    let step =
        SignInStep { stage: SessionStage::Complete, purpose: None, second_factor: true, how: "password and code" };
    t.test_store().refuse_inserts("audit_log").await;
    assert!(accounts.sign_in(member, Some(&before), step, &actor(member)).await.is_err());
    assert!(t.store().session(&before.digest).await.unwrap().is_some(), "the step before is kept");
    assert_eq!(t.store().delete_user_sessions(member.id, Alongside::none()).await.unwrap(), 1, "and no new session");
    t.test_store().allow_inserts("audit_log").await;
    let (_, before) = accounts.start_session(member.id, SessionStage::SecondFactor, None).await.unwrap();
    accounts.sign_in(member, Some(&before), step, &actor(member)).await.unwrap();
    assert!(t.store().session(&before.digest).await.unwrap().is_none(), "replaced");
    assert_eq!(audited("sign_in").await, 1);

    // Signing out, here or everywhere, and a new role: each with its audit entry, or none.
    let (_, open) = accounts.start_session(member.id, SessionStage::Complete, None).await.unwrap();
    let role = rec.grants[0];
    t.test_store().refuse_inserts("audit_log").await;
    assert!(accounts.end_session(&open, &actor(member)).await.is_err());
    assert!(accounts.end_every_session(member, &actor(member)).await.is_err());
    assert!(t.store().session(&open.digest).await.unwrap().is_some(), "still signed in: nothing was recorded");
    assert!(accounts.grant(member, role, &Actor::cli()).await.is_err());
    assert!(!t.store().user(member.id).await.unwrap().unwrap().grants.contains(&role), "no role unaudited");
    t.test_store().allow_inserts("audit_log").await;
    accounts.end_session(&open, &actor(member)).await.unwrap();
    assert!(t.store().session(&open.digest).await.unwrap().is_none());
    assert!(accounts.grant(member, role, &Actor::cli()).await.unwrap());
    assert!(t.store().user(member.id).await.unwrap().unwrap().grants.contains(&role));
    assert_eq!(accounts.end_every_session(member, &actor(member)).await.unwrap(), 1);
    assert_eq!(
        (audited("sign_out").await, audited("user.grant").await, audited("sign_out_everywhere").await),
        (1, 1, 1)
    );
}

on_both_engines!(a_change_its_audit_entry_and_its_messages_go_together);
