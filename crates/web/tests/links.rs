//! The Links measure over a seeded synthetic caseload, on SQLite and PostgreSQL: the
//! report's figures, overall, by service and by practice, match those counted here from
//! the seeder's own log of what happened to each person.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use chrono::Duration;
use kith_app::accounts::{Actor, NewUser};
use kith_app::demo_caseload::{self, SeededCase};
use kith_app::testing::TestApp;
use kith_domain::account::{Grant, Role, Scope};
use kith_domain::referral::{LinksCount, Outcome, ReferralKind};
use kith_web::AppState;
use std::collections::BTreeMap;
use uuid::Uuid;

fn now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()
}

/// The Links measure, counted the way the report defines it: the follow-up's outcome
/// where there is one, otherwise the group's; the group's "still attending" only once due.
fn tally(cases: &[&SeededCase]) -> LinksCount {
    let mut c = LinksCount::default();
    for case in cases {
        match case.kind {
            ReferralKind::Signpost => c.signposts += 1,
            ReferralKind::Referral => c.referrals += 1,
        }
        let effective = case.follow_up.or(case.group_report.map(|(o, _)| o));
        if let Some(o) = effective {
            c.followed_up += 1;
            if matches!(o, Outcome::Started | Outcome::StillAttending | Outcome::Stopped(_)) {
                c.started += 1;
            }
        }
        let still = match (case.follow_up, case.group_report) {
            (Some(o), _) => o == Outcome::StillAttending,
            (None, Some((o, once_due))) => o == Outcome::StillAttending && once_due,
            (None, None) => false,
        };
        c.still_attending += u64::from(still);
    }
    c
}

async fn the_links_report_matches_a_count_of_the_seeded_caseload(t: &TestApp) {
    let options = kith_demo::DemoOptions { seed: 7, services: 120, now: now() };
    t.store().write_batch(kith_demo::generate(&options)).await.unwrap();
    let state = AppState::new(t.app.clone());
    let log = demo_caseload::seed(&state, 7, 300, 120, now()).await.unwrap().expect("a first seeding");
    assert_eq!(log.len(), 300);
    assert!(demo_caseload::seed(&state, 7, 300, 120, now()).await.unwrap().is_none(), "seeded once");
    // Enough of every kind of case that the comparison means something.
    assert!(log.iter().filter(|c| c.follow_up == Some(Outcome::StillAttending)).count() > 10);
    assert!(log.iter().filter(|c| matches!(c.group_report, Some((Outcome::StillAttending, true)))).count() > 3);
    assert!(log.iter().filter(|c| matches!(c.group_report, Some((_, false)))).count() > 3);
    assert!(log.iter().filter(|c| c.kind == ReferralKind::Signpost).count() > 50);

    let commissioner = state
        .accounts
        .create_user(
            NewUser {
                email: "commissioner@example.org".into(),
                name: "Casey Commissioner".into(),
                password: None,
                grants: vec![Grant {
                    role: Role::Commissioner,
                    scope: Scope::Area(Uuid::from_u128(0x6b69_7468_6465_6d6f_0000_0000_0000_0000 + 1)),
                }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    let referrals = state.referrals();
    let actor = Actor::of(&commissioner, None);
    let (from, before) = (now() - Duration::days(400), now() + Duration::days(1));
    let report = referrals.links_report(&commissioner, &actor, from, before).await.unwrap();
    assert_eq!(report.overall, tally(&log.iter().collect::<Vec<_>>()));

    let mut by_service: BTreeMap<Uuid, Vec<&SeededCase>> = BTreeMap::new();
    let mut by_practice: BTreeMap<Uuid, Vec<&SeededCase>> = BTreeMap::new();
    for case in &log {
        by_service.entry(case.service).or_default().push(case);
        by_practice.entry(case.practice).or_default().push(case);
    }
    let got: BTreeMap<Uuid, LinksCount> = report.by_service.iter().map(|(id, _, c)| (*id, c.clone())).collect();
    let want: BTreeMap<Uuid, LinksCount> = by_service.iter().map(|(id, cases)| (*id, tally(cases))).collect();
    assert_eq!(got, want);
    let got: BTreeMap<Uuid, LinksCount> = report.by_practice.iter().map(|(id, _, c)| (*id, c.clone())).collect();
    let want: BTreeMap<Uuid, LinksCount> = by_practice.iter().map(|(id, cases)| (*id, tally(cases))).collect();
    assert_eq!(got, want);
    assert_eq!(report.by_practice.len(), 2);

    // Small numbers (security.md, finding 7): a commissioner never sees a count from 1 to
    // 4, and a column never has just one withheld; the practice's own staff see them all.
    use kith_domain::disclosure::Shown;
    assert!(!report.own_patients);
    let published = report.published();
    assert!(published.withheld, "a seeded caseload by service has small counts");
    let cells = |c: &kith_domain::disclosure::ShownLinks| {
        [c.signposts, c.referrals, c.followed_up, c.started, c.still_attending]
    };
    for (_, _, c) in published.by_service.iter().chain(&published.by_practice) {
        assert!(cells(c).iter().all(|n| n.count().is_none_or(|n| n == 0 || n >= 5)), "{c:?}");
    }
    for column in 0..5 {
        let withheld = published.by_service.iter().filter(|(_, _, c)| cells(c)[column] == Shown::Withheld).count();
        assert_ne!(withheld, 1, "column {column}: one withheld count alone could be worked out from the total");
    }
    let worker = state
        .accounts
        .create_user(
            NewUser {
                email: "worker@example.org".into(),
                name: "Lee Worker".into(),
                password: None,
                grants: vec![Grant { role: Role::LinkWorker, scope: Scope::Organisation(log[0].practice) }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    let own = referrals.links_report(&worker, &Actor::of(&worker, None), from, before).await.unwrap();
    assert!(own.own_patients);
    let own_practice: Vec<&SeededCase> = log.iter().filter(|c| c.practice == log[0].practice).collect();
    assert_eq!(own.published().overall.signposts, Shown::Count(tally(&own_practice).signposts));
    assert!(!own.published().withheld, "their own patients, in full");

    // Each service's page shows its curators how referrals there turned out; nobody else.
    let curator = state
        .accounts
        .create_user(
            NewUser {
                email: "curator@example.org".into(),
                name: "Cal Curator".into(),
                password: None,
                grants: vec![Grant {
                    role: Role::Curator,
                    scope: Scope::Area(Uuid::from_u128(0x6b69_7468_6465_6d6f_0000_0000_0000_0000 + 1)),
                }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    let (busiest, cases) = by_service.iter().max_by_key(|(_, cases)| cases.len()).unwrap();
    let service = t.store().service(*busiest).await.unwrap().unwrap();
    let mut recent = cases.clone();
    recent.retain(|c| c.made_at >= now() - Duration::days(365));
    assert_eq!(referrals.service_outcomes(&curator, &service).await.unwrap(), Some(tally(&recent)));
    let receptionist = state
        .accounts
        .create_user(
            NewUser {
                email: "reception@example.org".into(),
                name: "Rae Reception".into(),
                password: None,
                grants: vec![Grant { role: Role::Receptionist, scope: Scope::Organisation(log[0].practice) }],
            },
            &Actor::cli(),
        )
        .await
        .unwrap();
    assert_eq!(referrals.service_outcomes(&receptionist, &service).await.unwrap(), None, "not a receptionist's to see");
    let app = kith_web::router(state.clone());
    let page = |cookie: Option<String>| {
        let app = app.clone();
        let uri = format!("/services/{}", service.id);
        async move {
            use tower::ServiceExt;
            let mut request = axum::http::Request::get(uri);
            if let Some(c) = cookie {
                request = request.header(axum::http::header::COOKIE, c);
            }
            let response = app.oneshot(request.body(axum::body::Body::empty()).unwrap()).await.unwrap();
            let bytes = http_body_util::BodyExt::collect(response.into_body()).await.unwrap().to_bytes();
            String::from_utf8_lossy(&bytes).into_owned()
        }
    };
    let (token, _) =
        state.accounts.start_session(curator.id, kith_domain::account::SessionStage::Complete, None).await.unwrap();
    let made = recent.len();
    assert!(
        page(Some(format!("__Host-kith_session={token}")))
            .await
            .contains(&format!("Of {made} people signposted or referred here"))
    );
    assert!(!page(None).await.contains("How referrals here turned out"));

    // A period counts only what was made in it.
    let recent = now() - Duration::days(30);
    let report = referrals.links_report(&commissioner, &actor, recent, before).await.unwrap();
    let cases: Vec<&SeededCase> = log.iter().filter(|c| c.made_at >= recent).collect();
    assert_eq!(report.overall, tally(&cases));
}

mod sqlite {
    #[tokio::test]
    async fn the_links_report_matches_a_count_of_the_seeded_caseload() {
        let t = super::TestApp::on(kith_store::Engine::Sqlite, "links_report").at(super::now()).build().await.unwrap();
        super::the_links_report_matches_a_count_of_the_seeded_caseload(&t).await;
    }
}

mod postgres {
    #[tokio::test]
    async fn the_links_report_matches_a_count_of_the_seeded_caseload() {
        let t = super::TestApp::on(kith_store::Engine::Postgres, "links_report").at(super::now());
        let Some(t) = t.build().await else { return };
        super::the_links_report_matches_a_count_of_the_seeded_caseload(&t).await;
        t.cleanup().await;
    }
}
