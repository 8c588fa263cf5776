//! Accounts and security through the router, on SQLite and PostgreSQL: the authorisation
//! matrix (every route × every role), sign-in with two factors, session rotation,
//! lockouts, magic links, the audit log, encryption at rest, headers and body limits.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Method, Request, StatusCode, header};
use chrono::Duration;
use http_body_util::BodyExt;
use kith_app::accounts::{Actor, NewUser};
use kith_crypto::totp::Secret;
use kith_domain::account::{
    Area, AreaKind, Grant, LinkPurpose, OrgKind, Organisation, Role, Scope, SessionStage, UserRecord,
};
use kith_domain::hsds::{Organization, Service};
use kith_domain::{Clock, DirectoryBatch, FixedClock, ServiceStatus};
use kith_store::Store;
use kith_web::auth::Access;
use kith_web::{App, AppState, router};
use std::collections::BTreeSet;
use std::sync::Arc;
use tower::ServiceExt;
use uuid::Uuid;

const PASSWORD: &str = "violet kettle orbit";

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

fn id(n: u128) -> Uuid {
    Uuid::from_u128(0x6b69_7468_0000_0000_0000_0000_0000_0000 + n)
}

const SERVICE_A: u128 = 1;
const SERVICE_B: u128 = 2;
const GROUP_A: u128 = 11;
const GROUP_B: u128 = 12;
const AREA: u128 = 20;
const PRACTICE: u128 = 21;
const VCS_A: u128 = 22;
const VCS_B: u128 = 23;

struct Kith {
    app: Router,
    state: AppState,
    clock: Arc<FixedClock>,
}

/// Two groups with a service each, an area with a practice and the two groups.
async fn kith(store: Arc<dyn Store>) -> Kith {
    let mut batch = DirectoryBatch::new();
    for (org, service, name) in [(GROUP_A, SERVICE_A, "Walking group"), (GROUP_B, SERVICE_B, "Lunch club")] {
        batch.add_organization(Organization::new(id(org), format!("{name} trust"), "A local charity"));
        let mut s = Service::new(id(service), name, ServiceStatus::Active);
        s.organization_id = Some(id(org));
        batch.add_service(s);
    }
    store.write_batch(batch).await.unwrap();
    store.put_area(Area { id: id(AREA), kind: AreaKind::Pcn, name: "East End PCN".into() }).await.unwrap();
    let org = |n, kind, name: &str, ods: Option<&str>, dir: Option<u128>| Organisation {
        id: id(n),
        kind,
        name: name.into(),
        ods_code: ods.map(Into::into),
        directory_id: dir.map(id),
        areas: vec![id(AREA)],
    };
    store
        .put_organisation(org(PRACTICE, OrgKind::Practice, "Parkhead Health Centre", Some("43210"), None))
        .await
        .unwrap();
    store.put_organisation(org(VCS_A, OrgKind::Vcs, "Walking group trust", None, Some(GROUP_A))).await.unwrap();
    store.put_organisation(org(VCS_B, OrgKind::Vcs, "Lunch club trust", None, Some(GROUP_B))).await.unwrap();
    let clock = clock();
    let search = Arc::new(kith_search::SearchIndex::in_memory().unwrap());
    let state = AppState::new(App::new(store, search).with_clock(clock.clone()));
    state.catch_up().await;
    Kith { app: router(state.clone()), state, clock }
}

impl Kith {
    async fn user(&self, email: &str, role: Role, scope: Scope) -> UserRecord {
        let new = NewUser {
            email: email.into(),
            name: format!("{role} person"),
            password: Some(PASSWORD.into()),
            grants: vec![Grant { role, scope }],
        };
        self.state.accounts.create_user(new, &Actor::cli()).await.unwrap()
    }

    async fn session(&self, user: &UserRecord, stage: SessionStage, purpose: Option<(LinkPurpose, Uuid)>) -> String {
        let (token, _) = self.state.accounts.start_session(user.id, stage, purpose).await.unwrap();
        format!("{}={token}", kith_web::auth::session::SESSION_COOKIE)
    }
}

struct Reply {
    status: StatusCode,
    headers: HeaderMap,
    body: String,
}

impl Reply {
    fn location(&self) -> &str {
        self.headers.get(header::LOCATION).map_or("", |v| v.to_str().unwrap())
    }

    /// The session cookie this reply sets, as a Cookie header value.
    fn session_cookie(&self) -> Option<String> {
        self.headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .find(|v| v.starts_with("__Host-kith_session=") && !v.contains("Max-Age=0"))
            .map(|v| v.split(';').next().unwrap().to_owned())
    }
}

async fn send(app: &Router, method: Method, uri: &str, cookie: Option<&str>, body: &str) -> Reply {
    let mut request = Request::builder()
        .method(method.clone())
        .uri(uri)
        .header(header::HOST, "kith.test")
        .header(header::ACCEPT, "text/html");
    if method == Method::POST {
        request = request
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .header("sec-fetch-site", "same-origin")
            .header(header::ORIGIN, "http://kith.test");
    }
    if let Some(c) = cookie {
        request = request.header(header::COOKIE, c);
    }
    let response = app.clone().oneshot(request.body(Body::from(body.to_owned())).unwrap()).await.unwrap();
    let status = response.status();
    let headers = response.headers().clone();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    Reply { status, headers, body: String::from_utf8_lossy(&bytes).replace("&#38;", "&").replace("&amp;", "&") }
}

/// Who asks, in the matrix.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Who {
    Anonymous,
    /// Password right, code not yet given.
    Pending,
    /// Signed in by a magic link for service A.
    LinkA,
    /// Signed in by a magic link for one referral (whose id is service A's, so the
    /// referral routes' ids match it).
    LinkReferral,
    Receptionist,
    Clinician,
    LinkWorker,
    /// A member of the group that runs service A.
    VcsA,
    /// A member of the other group.
    VcsB,
    Curator,
    AreaAdmin,
    Commissioner,
}

const EVERYONE: &[Who] = &[
    Who::Anonymous,
    Who::Pending,
    Who::LinkA,
    Who::LinkReferral,
    Who::Receptionist,
    Who::Clinician,
    Who::LinkWorker,
    Who::VcsA,
    Who::VcsB,
    Who::Curator,
    Who::AreaAdmin,
    Who::Commissioner,
];

const MEMBERS: &[Who] = &[
    Who::Receptionist,
    Who::Clinician,
    Who::LinkWorker,
    Who::VcsA,
    Who::VcsB,
    Who::Curator,
    Who::AreaAdmin,
    Who::Commissioner,
];

/// Who may use each route, written out by hand. A route the router has and this table
/// lacks fails the test: a new route needs a decision here.
fn expected(method: &Method, path: &str) -> Vec<Who> {
    let public = EVERYONE.to_vec();
    let any_session: Vec<Who> = EVERYONE.iter().copied().filter(|w| *w != Who::Anonymous).collect();
    match (method.as_str(), path) {
        (_, "/" | "/healthz" | "/readyz" | "/metrics" | "/widget" | "/widget.js" | "/assets/{*path}")
        | (_, "/services/{id}" | "/services/{id}/report" | "/signin" | "/link/{token}")
        | (_, "/signin/oidc" | "/signin/oidc/callback" | "/oidc/jwks.json" | "/services/{id}/link")
        | (_, "/shortlist" | "/shortlist/print" | "/shortlist/leaflet.pdf" | "/shortlist/send" | "/l/{code}") => public,
        (_, p) if p.starts_with("/oruk") => public,
        (_, "/fhir/metadata" | "/fhir/HealthcareService/{id}" | "/referrals/{id}/link") => public,
        (_, p) if p.starts_with("/fhir/") => {
            vec![Who::Receptionist, Who::Clinician, Who::LinkWorker, Who::VcsA, Who::VcsB]
        }
        (_, "/signin/code") => vec![Who::Pending],
        // A link session never sets up two-step sign-in: that would make it a full session.
        (_, "/signin/two-factor") => {
            any_session.into_iter().filter(|w| !matches!(w, Who::LinkA | Who::LinkReferral)).collect()
        }
        (_, "/signout") => any_session,
        (_, "/account") => any_session.into_iter().filter(|w| *w != Who::Pending).collect(),
        ("POST", "/signout/everywhere") | ("GET", "/home") => MEMBERS.to_vec(),
        (_, "/referrals/{id}" | "/referrals/{id}/status" | "/referrals/{id}/outcome") => {
            vec![Who::LinkReferral, Who::Receptionist, Who::Clinician, Who::LinkWorker, Who::VcsA, Who::VcsB]
        }
        (_, "/services/{id}/update" | "/services/{id}/verify") => {
            vec![Who::LinkA, Who::VcsA, Who::Curator, Who::AreaAdmin]
        }
        (_, "/admin/audit" | "/admin/audit.csv") => vec![Who::AreaAdmin],
        ("GET", "/curation/feeds" | "/curation/duplicates") | ("POST", "/curation/duplicates/{id}") => {
            vec![Who::Curator, Who::AreaAdmin]
        }
        ("GET", "/inbox") => vec![Who::VcsA, Who::VcsB],
        (_, "/refer/{id}") | ("GET", "/referrals/{id}/sent") => {
            vec![Who::Receptionist, Who::Clinician, Who::LinkWorker]
        }
        ("GET", "/follow-ups") => vec![Who::Receptionist, Who::Clinician, Who::LinkWorker],
        ("GET", "/reports/links") => vec![Who::LinkWorker, Who::AreaAdmin, Who::Commissioner],
        ("POST", "/referrals/{id}/reroute") => {
            vec![Who::Receptionist, Who::Clinician, Who::LinkWorker, Who::VcsA, Who::VcsB]
        }
        (m, p) => panic!("no expectation for {m} {p}: decide who may use it and add it to expected()"),
    }
}

fn concrete(path: &str) -> String {
    let (token, _) = kith_crypto::token::new_token();
    path.replace("/oruk/organizations/{id}", &format!("/oruk/organizations/{}", id(GROUP_A)))
        .replace("{id}", &id(SERVICE_A).to_string())
        .replace("{token}", &token)
        .replace("{code}", &kith_crypto::token::short_code())
        .replace("{*path}", "no-such-file.css")
}

/// Denied: 401 or 403, or sent to sign in.
fn denied(reply: &Reply) -> bool {
    let to = reply.location();
    matches!(reply.status, StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN)
        || (reply.status.is_redirection()
            && (to == "/signin"
                || to.starts_with("/signin?next=")
                || to == "/signin/code"
                || to == "/signin/two-factor"))
}

async fn authorisation_matrix_covers_every_route_for_every_role(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let org = |n| Scope::Organisation(id(n));
    let area = Scope::Area(id(AREA));
    let mut users = Vec::new();
    for (who, role, scope) in [
        (Who::Receptionist, Role::Receptionist, org(PRACTICE)),
        (Who::Clinician, Role::Clinician, org(PRACTICE)),
        (Who::LinkWorker, Role::LinkWorker, org(PRACTICE)),
        (Who::VcsA, Role::VcsMember, org(VCS_A)),
        (Who::VcsB, Role::VcsMember, org(VCS_B)),
        (Who::Curator, Role::Curator, area),
        (Who::AreaAdmin, Role::AreaAdmin, area),
        (Who::Commissioner, Role::Commissioner, area),
        (Who::Pending, Role::Clinician, org(PRACTICE)),
        (Who::LinkA, Role::VcsMember, org(VCS_B)),
        (Who::LinkReferral, Role::VcsMember, org(VCS_A)),
    ] {
        users.push((who, k.user(&format!("{who:?}@example.org").to_lowercase(), role, scope).await));
    }
    let (_, rules) = kith_web::routes().into_parts();
    assert!(rules.len() >= 38, "every route is in the table: {}", rules.len());
    let mut seen = BTreeSet::new();
    for rule in &rules {
        assert!(seen.insert((rule.method.to_string(), rule.path)), "{} {} twice", rule.method, rule.path);
        let allowed = expected(&rule.method, rule.path);
        if rule.access == Access::Public {
            assert_eq!(allowed, EVERYONE, "{} {} is public in the router", rule.method, rule.path);
        }
        for who in EVERYONE {
            // A fresh session for every request: some routes end the session they are given.
            let cookie = match who {
                Who::Anonymous => None,
                Who::Pending => {
                    let user = &users.iter().find(|(w, _)| w == who).unwrap().1;
                    Some(k.session(user, SessionStage::SecondFactor, None).await)
                }
                Who::LinkA => {
                    let user = &users.iter().find(|(w, _)| w == who).unwrap().1;
                    let purpose = Some((LinkPurpose::UpdateListing, id(SERVICE_A)));
                    Some(k.session(user, SessionStage::Complete, purpose).await)
                }
                Who::LinkReferral => {
                    let user = &users.iter().find(|(w, _)| w == who).unwrap().1;
                    let purpose = Some((LinkPurpose::AnswerReferral, id(SERVICE_A)));
                    Some(k.session(user, SessionStage::Complete, purpose).await)
                }
                _ => {
                    let user = &users.iter().find(|(w, _)| w == who).unwrap().1;
                    Some(k.session(user, SessionStage::Complete, None).await)
                }
            };
            let uri = concrete(rule.path);
            let reply = send(&k.app, rule.method.clone(), &uri, cookie.as_deref(), "x=1").await;
            let want = allowed.contains(who);
            assert_eq!(
                !denied(&reply),
                want,
                "{who:?} {} {uri}: {} {} {}",
                rule.method,
                reply.status,
                reply.location(),
                &reply.body.chars().take(300).collect::<String>()
            );
            assert!(reply.status.as_u16() < 500, "{who:?} {} {uri}: {}", rule.method, reply.status);
            for h in [header::CONTENT_SECURITY_POLICY, header::X_CONTENT_TYPE_OPTIONS, header::REFERRER_POLICY] {
                assert!(reply.headers.contains_key(&h), "{who:?} {} {uri} lacks {h}", rule.method);
            }
        }
    }
    // Refusals of signed-in people are audited.
    let refusals =
        kith_domain::account::AuditQuery { action: Some("access_denied".into()), limit: 1000, ..Default::default() };
    let refused = k.state.store().audit(&refusals).await.unwrap();
    assert!(refused.iter().any(|e| e.record_id.as_deref() == Some("GET /admin/audit") && e.actor.is_some()));
    // A magic-link session for service A cannot touch service B.
    let link_user = &users.iter().find(|(w, _)| *w == Who::LinkA).unwrap().1;
    let cookie = k.session(link_user, SessionStage::Complete, Some((LinkPurpose::UpdateListing, id(SERVICE_A)))).await;
    let other = format!("/services/{}/verify", id(SERVICE_B));
    assert_eq!(send(&k.app, Method::POST, &other, Some(&cookie), "").await.status, StatusCode::FORBIDDEN);
    let vcs_a = &users.iter().find(|(w, _)| *w == Who::VcsA).unwrap().1;
    let cookie = k.session(vcs_a, SessionStage::Complete, None).await;
    assert_eq!(
        send(&k.app, Method::GET, &format!("/services/{}/update", id(SERVICE_B)), Some(&cookie), "").await.status,
        StatusCode::FORBIDDEN
    );
}

/// The form fields of a page, by name.
fn hidden(body: &str, name: &str) -> String {
    let marker = format!("name=\"{name}\" value=\"");
    let at = body.find(&marker).unwrap_or_else(|| panic!("no {name} in {body}")) + marker.len();
    body[at..].split('"').next().unwrap().to_owned()
}

fn form(pairs: &[(&str, &str)]) -> String {
    serde_urlencoded::to_string(pairs).unwrap()
}

async fn sign_in_with_two_factors_rotates_the_session(store: Arc<dyn Store>) {
    let k = kith(store).await;
    k.user("ada@example.org", Role::AreaAdmin, Scope::Area(id(AREA))).await;

    // A session id planted before sign-in (session fixation) is not honoured after it.
    let planted = format!("__Host-kith_session={}", kith_crypto::token::new_token().0);
    let body = form(&[("email", "Ada@Example.org "), ("password", PASSWORD), ("next", "/admin/audit")]);
    let reply = send(&k.app, Method::POST, "/signin", Some(&planted), &body).await;
    assert_eq!(reply.status, StatusCode::SEE_OTHER, "{}", reply.body);
    assert!(reply.location().starts_with("/signin/two-factor?next=%2Fadmin%2Faudit"), "{}", reply.location());
    let set = reply.headers.get(header::SET_COOKIE).unwrap().to_str().unwrap();
    for attribute in ["HttpOnly", "Secure", "SameSite=Lax", "Path=/"] {
        assert!(set.contains(attribute), "{set}");
    }
    let pending = reply.session_cookie().unwrap();
    assert_ne!(pending, planted);
    assert!(denied(&send(&k.app, Method::GET, "/admin/audit", Some(&planted), "").await));
    // Partway through, nothing but the next step is open: setting up the app.
    let audit = send(&k.app, Method::GET, "/admin/audit", Some(&pending), "").await;
    assert_eq!(audit.location(), "/signin/two-factor");

    let setup = send(&k.app, Method::GET, "/signin/two-factor?next=/admin/audit", Some(&pending), "").await;
    assert_eq!(setup.status, StatusCode::OK);
    // A QR code drawn on the server, inline: no script, nothing fetched (finding 16).
    let qr = setup.body.split("class=\"kith-qr\">").nth(1).unwrap().split("</div>").next().unwrap();
    assert!(qr.starts_with("<svg aria-hidden=\"true\"") && qr.contains("<path") && !qr.contains("<script"), "{qr}");
    let secret =
        Secret::from_base32(setup.body.split("id=\"secret\">").nth(1).unwrap().split('<').next().unwrap()).unwrap();
    let sealed = hidden(&setup.body, "enrol");
    let wrong = send(
        &k.app,
        Method::POST,
        "/signin/two-factor",
        Some(&pending),
        &form(&[("enrol", &sealed), ("code", "000000")]),
    )
    .await;
    assert_eq!(wrong.status, StatusCode::BAD_REQUEST);
    assert!(wrong.body.contains("Enter the 6-digit code"));
    let code = secret.code_at(k.clock.now().timestamp());
    let body = form(&[("enrol", &sealed), ("code", &code), ("next", "/admin/audit")]);
    let done = send(&k.app, Method::POST, "/signin/two-factor", Some(&pending), &body).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    assert_eq!(done.body.matches("<li><code>").count(), 10, "ten recovery codes, shown once");
    assert!(done.body.contains("Print the codes"));
    let recovery = done.body.split("<li><code>").nth(1).unwrap().split('<').next().unwrap().to_owned();
    let signed_in = done.session_cookie().unwrap();
    assert_ne!(signed_in, pending, "a new session id on sign-in");
    assert!(denied(&send(&k.app, Method::GET, "/account", Some(&pending), "").await), "the old id is dead");
    let account = send(&k.app, Method::GET, "/account", Some(&signed_in), "").await;
    assert_eq!(account.status, StatusCode::OK);
    assert!(account.body.contains("ada@example.org") && account.body.contains("Area administrator at East End PCN"));
    assert!(account.body.contains("10 recovery codes left"));

    // Next time: password, then a code, which works once.
    k.clock.advance(Duration::minutes(1));
    let reply =
        send(&k.app, Method::POST, "/signin", None, &form(&[("email", "ada@example.org"), ("password", PASSWORD)]))
            .await;
    assert!(reply.location().starts_with("/signin/code"), "{}", reply.location());
    let pending = reply.session_cookie().unwrap();
    let code = secret.code_at(k.clock.now().timestamp());
    let ok =
        send(&k.app, Method::POST, "/signin/code", Some(&pending), &form(&[("code", &code), ("next", "/account")]))
            .await;
    assert_eq!((ok.status, ok.location()), (StatusCode::SEE_OTHER, "/account"));
    let second = ok.session_cookie().unwrap();
    let reply =
        send(&k.app, Method::POST, "/signin", None, &form(&[("email", "ada@example.org"), ("password", PASSWORD)]))
            .await;
    let pending = reply.session_cookie().unwrap();
    let replay = send(&k.app, Method::POST, "/signin/code", Some(&pending), &form(&[("code", &code)])).await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST, "a code works once");
    let by_recovery =
        send(&k.app, Method::POST, "/signin/code", Some(&pending), &form(&[("code", &recovery.to_lowercase())])).await;
    assert_eq!(by_recovery.status, StatusCode::SEE_OTHER, "{}", by_recovery.body);
    let third = by_recovery.session_cookie().unwrap();

    // Sign out everywhere ends both sessions.
    let out = send(&k.app, Method::POST, "/signout/everywhere", Some(&second), "").await;
    assert_eq!(out.location(), "/signin?signed_out=everywhere");
    assert_eq!(out.headers["clear-site-data"], "\"cache\", \"storage\"");
    assert!(denied(&send(&k.app, Method::GET, "/account", Some(&third), "").await));
    assert!(denied(&send(&k.app, Method::GET, "/account", Some(&second), "").await));

    // Idle sessions end after 30 minutes.
    let reply =
        send(&k.app, Method::POST, "/signin", None, &form(&[("email", "ada@example.org"), ("password", PASSWORD)]))
            .await;
    let pending = reply.session_cookie().unwrap();
    k.clock.advance(Duration::minutes(31));
    assert!(denied(&send(&k.app, Method::GET, "/signin/code", Some(&pending), "").await));
}

async fn repeated_wrong_passwords_lock_the_account_out(store: Arc<dyn Store>) {
    let k = kith(store).await;
    k.user("cam@example.org", Role::Commissioner, Scope::Area(id(AREA))).await;
    let attempt = |password: &'static str| form(&[("email", "cam@example.org"), ("password", password)]);
    for n in 1..=5 {
        let reply = send(&k.app, Method::POST, "/signin", None, &attempt("wrong password here")).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "attempt {n}");
        assert!(reply.body.contains("Enter a correct email address and password"));
        k.clock.advance(Duration::seconds(5));
    }
    // The sixth within a minute is refused, even with the right password.
    let sixth = send(&k.app, Method::POST, "/signin", None, &attempt(PASSWORD)).await;
    assert_eq!(sixth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(sixth.body.contains("too many attempts"), "{}", sixth.body);
    assert!(sixth.session_cookie().is_none());
    // After the wait, the right password works; an unknown email is refused the same way
    // as a wrong password.
    k.clock.advance(Duration::minutes(2));
    let later = send(&k.app, Method::POST, "/signin", None, &attempt(PASSWORD)).await;
    assert_eq!((later.status, later.location()), (StatusCode::SEE_OTHER, "/home"));
    let nobody =
        send(&k.app, Method::POST, "/signin", None, &form(&[("email", "nobody@example.org"), ("password", PASSWORD)]))
            .await;
    assert_eq!(nobody.status, StatusCode::BAD_REQUEST);
    assert!(nobody.body.contains("Enter a correct email address and password"));
    let audit =
        k.state.store().audit(&kith_domain::account::AuditQuery { limit: 100, ..Default::default() }).await.unwrap();
    let actions: Vec<&str> = audit.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions.iter().filter(|a| **a == "sign_in_failed").count(), 6);
    assert!(actions.contains(&"sign_in_refused") && actions.contains(&"sign_in"));
}

async fn magic_links_work_once_for_one_listing(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let member = k.user("shed@example.org", Role::VcsMember, Scope::Organisation(id(VCS_A))).await;
    let actor = Actor::cli();
    let token = k
        .state
        .accounts
        .issue_magic_link(&member, LinkPurpose::UpdateListing, id(SERVICE_A), &actor, |_| Vec::new())
        .await
        .unwrap();
    let landing = send(&k.app, Method::GET, &format!("/link/{token}"), None, "").await;
    assert_eq!(landing.status, StatusCode::OK, "opening the link does not use it");
    let used = send(&k.app, Method::POST, &format!("/link/{token}"), None, "").await;
    assert_eq!(
        (used.status, used.location()),
        (StatusCode::SEE_OTHER, format!("/services/{}/update", id(SERVICE_A)).as_str())
    );
    let cookie = used.session_cookie().unwrap();
    let page = send(&k.app, Method::GET, used.location(), Some(&cookie), "").await;
    assert!(page.body.contains("Is the listing for Walking group still right?"), "{}", page.body);
    let verified = send(&k.app, Method::POST, &format!("/services/{}/verify", id(SERVICE_A)), Some(&cookie), "").await;
    assert!(verified.body.contains("marked as checked today"));
    let service = k.state.store().service(id(SERVICE_A)).await.unwrap().unwrap();
    assert_eq!(service.last_verified_at, Some(k.clock.now()));

    let again = send(&k.app, Method::POST, &format!("/link/{token}"), None, "").await;
    assert_eq!(again.status, StatusCode::GONE);
    assert!(again.body.contains("already been used"), "{}", again.body);

    let late = k
        .state
        .accounts
        .issue_magic_link(&member, LinkPurpose::UpdateListing, id(SERVICE_A), &actor, |_| Vec::new())
        .await
        .unwrap();
    k.clock.advance(Duration::minutes(31));
    let expired = send(&k.app, Method::POST, &format!("/link/{late}"), None, "").await;
    assert_eq!(expired.status, StatusCode::GONE);
    assert!(expired.body.contains("expired") && expired.body.contains("30 minutes"), "{}", expired.body);
    let made_up = send(&k.app, Method::POST, &format!("/link/{}", kith_crypto::token::new_token().0), None, "").await;
    assert_eq!(made_up.status, StatusCode::NOT_FOUND);
    assert!(made_up.body.contains("not one Kith recognises"));
    // Requests for links are limited per address.
    for _ in 0..3 {
        assert!(k.state.accounts.allow_link_request("shed@example.org").await.unwrap());
    }
    assert!(!k.state.accounts.allow_link_request("Shed@example.org").await.unwrap());
}

async fn the_audit_log_records_and_exports_for_area_admins(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let admin = k.user("ada@example.org", Role::AreaAdmin, Scope::Area(id(AREA))).await;
    let cookie = k.session(&admin, SessionStage::Complete, None).await;
    send(&k.app, Method::POST, "/signin", None, &form(&[("email", "x@example.org"), ("password", "nope nope nope")]))
        .await;
    let page = send(&k.app, Method::GET, "/admin/audit?action=sign_in_failed", Some(&cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("sign_in_failed"));
    let csv = send(&k.app, Method::GET, "/admin/audit.csv", Some(&cookie), "").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert!(csv.headers[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/csv"));
    let lines: Vec<&str> = csv.body.lines().collect();
    assert!(lines[0].starts_with("seq,at,actor_id,actor_name"));
    assert!(lines.iter().any(|l| l.contains(",audit.view,") && l.contains("area_admin person")), "{}", csv.body);
    assert!(lines.iter().any(|l| l.contains(",user.create,")));
    let bad = send(&k.app, Method::GET, "/admin/audit?action=drop%20table", Some(&cookie), "").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
}

async fn personal_fields_are_sealed_at_rest_and_keys_rotate(store: Arc<dyn Store>) -> Kith {
    let k = kith(store).await;
    let user = k.user("zainab.hussain@example.org", Role::LinkWorker, Scope::Organisation(id(PRACTICE))).await;
    let raw = k.state.store().user(user.id).await.unwrap().unwrap();
    assert!(raw.email.0.starts_with("v1.k1.") && !raw.email.0.contains("zainab"));
    assert!(raw.name.0.starts_with("v1.k1."));
    let mut keyring = k.state.accounts.keyring().clone();
    keyring.rotate();
    let rotated = AppState::new(
        App::new(k.state.store().clone(), k.state.search.clone()).with_clock(k.clock.clone()).with_keyring(keyring),
    );
    assert_eq!(rotated.accounts.reseal_all().await.unwrap(), 2);
    let raw = rotated.store().user(user.id).await.unwrap().unwrap();
    assert!(raw.email.0.starts_with("v1.k2."));
    assert_eq!(rotated.accounts.profile(&raw).unwrap().email, "zainab.hussain@example.org");
    assert_eq!(
        rotated.accounts.user_by_email("ZAINAB.HUSSAIN@example.org").await.unwrap().map(|u| u.id),
        Some(user.id)
    );
    assert_eq!(rotated.accounts.reseal_all().await.unwrap(), 0, "nothing left to re-seal");
    k
}

/// A one-time link keeps its limit through every step of sign-in: it cannot set up a
/// second factor, which would have started a full session without a password
/// (security.md, finding 1).
async fn link_sessions_cannot_enrol_a_second_factor(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let member = k.user("shed@example.org", Role::VcsMember, Scope::Organisation(id(VCS_A))).await;
    for purpose in [(LinkPurpose::UpdateListing, id(SERVICE_A)), (LinkPurpose::AnswerReferral, id(SERVICE_A))] {
        let cookie = k.session(&member, SessionStage::Complete, Some(purpose)).await;
        let setup = send(&k.app, Method::GET, "/signin/two-factor", Some(&cookie), "").await;
        assert!(denied(&setup), "{purpose:?}: {} {}", setup.status, setup.body);
        assert!(!setup.body.contains("name=\"enrol\""), "no secret is offered to a link session");
        // Even with a secret sealed to this session, the step is refused.
        let digest = kith_crypto::token::digest(cookie.split('=').nth(1).unwrap());
        let secret = Secret::generate();
        let sealed = k.state.accounts.keyring().seal(&secret.to_base32(), &format!("enrol:{digest}"));
        let code = secret.code_at(k.clock.now().timestamp());
        let body = form(&[("enrol", &sealed), ("code", &code)]);
        let submit = send(&k.app, Method::POST, "/signin/two-factor", Some(&cookie), &body).await;
        assert!(denied(&submit), "{purpose:?}: {} {}", submit.status, submit.body);
        assert!(submit.session_cookie().is_none(), "no new session");
        let inbox = send(&k.app, Method::GET, "/inbox", Some(&cookie), "").await;
        assert!(denied(&inbox), "the link session still cannot open the inbox");
        let user = k.state.store().user(member.id).await.unwrap().unwrap();
        assert!(user.totp_secret.is_none(), "no second factor was set up");
    }
}

/// An area administrator reads and exports only their own area's events (finding 3).
async fn the_audit_log_is_scoped_to_the_admins_area(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let other_area = id(30);
    let other_practice = id(31);
    k.state.store().put_area(Area { id: other_area, kind: AreaKind::Pcn, name: "North PCN".into() }).await.unwrap();
    k.state
        .store()
        .put_organisation(Organisation {
            id: other_practice,
            kind: OrgKind::Practice,
            name: "Northside Surgery".into(),
            ods_code: Some("98765".into()),
            directory_id: None,
            areas: vec![other_area],
        })
        .await
        .unwrap();
    let ours = k.user("ada@example.org", Role::AreaAdmin, Scope::Area(id(AREA))).await;
    let theirs = k.user("nora@example.org", Role::AreaAdmin, Scope::Area(other_area)).await;
    let our_worker = k.user("lw@example.org", Role::LinkWorker, Scope::Organisation(id(PRACTICE))).await;
    let their_worker = k.user("north@example.org", Role::LinkWorker, Scope::Organisation(other_practice)).await;
    for (user, what) in [(&our_worker, "ours-marker"), (&their_worker, "theirs-marker")] {
        k.state.accounts.audit(&Actor::of(user, None), "patient.read", "patient", Some(what.into()), what).await;
    }
    // A failed sign-in against a user of the other area.
    let wrong = form(&[("email", "north@example.org"), ("password", "not the password")]);
    send(&k.app, Method::POST, "/signin", None, &wrong).await;
    let ours_cookie = k.session(&ours, SessionStage::Complete, None).await;
    let page = send(&k.app, Method::GET, "/admin/audit", Some(&ours_cookie), "").await;
    assert_eq!(page.status, StatusCode::OK);
    assert!(page.body.contains("ours-marker"), "{}", page.body);
    assert!(!page.body.contains("theirs-marker"), "another area's events are not shown");
    let csv = send(&k.app, Method::GET, "/admin/audit.csv", Some(&ours_cookie), "").await;
    assert!(csv.body.contains("ours-marker") && !csv.body.contains("theirs-marker"), "{}", csv.body);
    assert!(!csv.body.contains(&their_worker.id.to_string()), "nor their failed sign-ins");
    let theirs_cookie = k.session(&theirs, SessionStage::Complete, None).await;
    let csv = send(&k.app, Method::GET, "/admin/audit.csv", Some(&theirs_cookie), "").await;
    assert!(csv.body.contains("theirs-marker") && !csv.body.contains("ours-marker"), "{}", csv.body);
    assert!(
        csv.body.lines().any(|l| l.contains(",sign_in_failed,") && l.contains(&their_worker.id.to_string())),
        "{}",
        csv.body
    );
}

/// The Links report refuses dates at the calendar's edges with a message (it panicked),
/// and its CSV is never cached (finding 6).
async fn the_links_report_refuses_extreme_dates(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let worker = k.user("lw@example.org", Role::LinkWorker, Scope::Organisation(id(PRACTICE))).await;
    let cookie = k.session(&worker, SessionStage::Complete, None).await;
    for query in ["from=-262143-01-01", "to=262142-12-31", "from=0001-01-01&to=0001-01-02", "to=+99999-01-01"] {
        let reply = send(&k.app, Method::GET, &format!("/reports/links?{query}"), Some(&cookie), "").await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{query}: {}", reply.body);
        assert!(reply.body.contains("from 1900 to 2999"), "{query}");
    }
    let csv = send(&k.app, Method::GET, "/reports/links?format=csv", Some(&cookie), "").await;
    assert_eq!(csv.status, StatusCode::OK);
    assert_eq!(csv.headers[header::CACHE_CONTROL], "no-store");
}

/// Guesses from one address lock that address out of the account, not the owner
/// elsewhere; IPv6 counts by /64; many addresses together slow every attempt; refusals
/// are audited once a minute, not once each (security.md, finding 4).
async fn lockouts_hold_by_account_and_address(store: Arc<dyn Store>) {
    use kith_app::accounts::AccountsError;
    let k = kith(store).await;
    k.user("cam@example.org", Role::Commissioner, Scope::Area(id(AREA))).await;
    let accounts = &k.state.accounts;
    let try_from = |ip: &str, password: &str| {
        let (ip, password) = (ip.to_owned(), password.to_owned());
        async move { accounts.check_password("cam@example.org", &password, Some(ip)).await }
    };
    for _ in 0..5 {
        assert!(matches!(try_from("203.0.113.5", "wrong password here").await, Err(AccountsError::Invalid(_))));
    }
    assert!(matches!(try_from("203.0.113.5", PASSWORD).await, Err(AccountsError::Locked(_))), "that address waits");
    assert!(try_from("198.51.100.7", PASSWORD).await.is_ok(), "the owner, elsewhere, signs in");
    // A flood of refused attempts leaves one audit entry a minute.
    for _ in 0..200 {
        assert!(matches!(try_from("203.0.113.5", "wrong password here").await, Err(AccountsError::Locked(_))));
    }
    let refused =
        kith_domain::account::AuditQuery { action: Some("sign_in_refused".into()), limit: 1000, ..Default::default() };
    assert_eq!(k.state.store().audit(&refused).await.unwrap().len(), 1);
    // IPv6: one /64 is one address.
    for n in 1..=5 {
        let _ = try_from(&format!("2001:db8:1:2::{n}"), "wrong password here").await;
    }
    assert!(matches!(try_from("2001:db8:1:2:ffff::9", PASSWORD).await, Err(AccountsError::Locked(_))));
    assert!(try_from("2001:db8:1:3::1", PASSWORD).await.is_ok(), "another /64");
    // Guesses from many addresses slow the account down everywhere.
    k.clock.advance(Duration::minutes(kith_app::accounts::WINDOW_MINUTES + 1));
    for n in 0..kith_app::accounts::FREE_FAILURES_PER_ACCOUNT {
        let _ = try_from(&format!("192.0.2.{}", n % 250), "wrong password here").await;
        if n % 4 == 3 {
            k.clock.advance(Duration::seconds(1));
        }
    }
    assert!(matches!(try_from("198.51.100.8", PASSWORD).await, Err(AccountsError::Locked(_))), "every address waits");
    assert_eq!(kith_app::accounts::limit_address("2001:db8:aa:bb:cc:dd:ee:ff"), "2001:db8:aa:bb::/64");
    assert_eq!(kith_app::accounts::limit_address("::ffff:192.0.2.1"), "192.0.2.1");
}

/// A role that needs two factors, granted while a password-only session is open, asks for
/// the second factor before that session may use it (security.md, finding 6).
async fn a_new_role_that_needs_two_factors_steps_the_session_up(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let user = k.user("cam@example.org", Role::Commissioner, Scope::Area(id(AREA))).await;
    let signed_in =
        send(&k.app, Method::POST, "/signin", None, &form(&[("email", "cam@example.org"), ("password", PASSWORD)]))
            .await;
    assert_eq!(signed_in.location(), "/home", "a commissioner may sign in with a password alone");
    let cookie = signed_in.session_cookie().unwrap();
    assert_eq!(send(&k.app, Method::GET, "/reports/links", Some(&cookie), "").await.status, StatusCode::OK);
    // An administrator makes them a receptionist too, which needs two factors.
    let mut granted = k.state.store().user(user.id).await.unwrap().unwrap();
    granted.grants.push(Grant { role: Role::Receptionist, scope: Scope::Organisation(id(PRACTICE)) });
    k.state.store().put_user(granted).await.unwrap();
    for path in ["/follow-ups", "/reports/links", "/account"] {
        let reply = send(&k.app, Method::GET, path, Some(&cookie), "").await;
        assert_eq!(reply.location(), "/signin/two-factor", "{path}: {} {}", reply.status, reply.body);
    }
    let fhir = send(&k.app, Method::GET, "/fhir/Task", Some(&cookie), "").await;
    assert!(denied(&fhir), "{}", fhir.status);
    // Setting up the app completes the session.
    let setup = send(&k.app, Method::GET, "/signin/two-factor", Some(&cookie), "").await;
    assert_eq!(setup.status, StatusCode::OK);
    let secret =
        Secret::from_base32(setup.body.split("id=\"secret\">").nth(1).unwrap().split('<').next().unwrap()).unwrap();
    let body = form(&[("enrol", &hidden(&setup.body, "enrol")), ("code", &secret.code_at(k.clock.now().timestamp()))]);
    let done = send(&k.app, Method::POST, "/signin/two-factor", Some(&cookie), &body).await;
    assert_eq!(done.status, StatusCode::OK, "{}", done.body);
    let full = done.session_cookie().unwrap();
    assert_eq!(send(&k.app, Method::GET, "/follow-ups", Some(&full), "").await.status, StatusCode::OK);
}

/// A shared reception desk: sign-in lands on a home with the day's work, the header leads
/// to each kind of work, "Next patient" clears the shortlist, and signing out clears it
/// too (security.md, item 12).
async fn a_shared_desk_starts_afresh_for_the_next_patient(store: Arc<dyn Store>) {
    let k = kith(store).await;
    let receptionist = k.user("desk@example.org", Role::Receptionist, Scope::Organisation(id(PRACTICE))).await;
    let commissioner = k.user("cam@example.org", Role::Commissioner, Scope::Area(id(AREA))).await;
    let shortlist = format!("kith_shortlist={}", id(SERVICE_A).simple());
    let session = k.session(&receptionist, SessionStage::Complete, None).await;
    let cookie = format!("{shortlist}; {session}");
    let home = send(&k.app, Method::GET, "/home", Some(&cookie), "").await;
    assert_eq!(home.status, StatusCode::OK, "{}", home.body);
    assert!(home.body.contains("No follow-ups are due") && home.body.contains("Your recent signposts and referrals"));
    for link in ["href=\"/home\">Home", "href=\"/follow-ups\">Follow-ups"] {
        assert!(home.body.contains(link), "{link}");
    }
    assert!(!home.body.contains("href=\"/admin/audit\">Audit log</a></li>"));
    assert!(home.body.contains("Next patient"), "the desk's button");
    let next = send(&k.app, Method::POST, "/shortlist", Some(&cookie), "change=clear&back=/").await;
    assert_eq!(next.location(), "/");
    assert!(next.headers[header::SET_COOKIE].to_str().unwrap().starts_with("kith_shortlist=; Path=/; Max-Age=0"));
    let out = send(&k.app, Method::POST, "/signout", Some(&cookie), "").await;
    let cleared: Vec<&str> = out.headers.get_all(header::SET_COOKIE).iter().map(|v| v.to_str().unwrap()).collect();
    assert!(cleared.iter().any(|c| c.starts_with("kith_shortlist=; Path=/; Max-Age=0")), "{cleared:?}");
    // A commissioner's header leads to reports, not to patients' follow-ups.
    let cookie = k.session(&commissioner, SessionStage::Complete, None).await;
    let home = send(&k.app, Method::GET, "/home", Some(&cookie), "").await;
    assert!(home.body.contains("href=\"/reports/links\">Reports") && !home.body.contains("href=\"/follow-ups\""));
    assert!(!home.body.contains("Next patient"));
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

async fn a_group_member_asks_for_a_link_by_email(store: Arc<dyn Store>) {
    let k = kith(store).await;
    k.user("shed@example.org", Role::VcsMember, Scope::Organisation(id(VCS_A))).await;
    let state = AppState::new(k.state.app().clone().with_public_url("https://kith.example.org/"));
    let app = router(state.clone());
    let path = format!("/services/{}/link", id(SERVICE_A));
    let form_page = send(&app, Method::GET, &path, None, "").await;
    assert!(form_page.body.contains("Email me a link"));
    let bad = send(&app, Method::POST, &path, None, "email=nope").await;
    assert_eq!(bad.status, StatusCode::BAD_REQUEST);
    assert!(bad.body.contains("correct format"));

    let asked = send(&app, Method::POST, &path, None, "email=Shed%40example.org").await;
    assert_eq!(asked.status, StatusCode::OK);
    assert!(asked.body.contains("Check your email"));
    // A stranger gets the same reply, and nothing is sent.
    let stranger = send(&app, Method::POST, &path, None, "email=stranger%40example.org").await;
    assert_eq!(stranger.status, StatusCode::OK);
    assert!(stranger.body.contains("Check your email"));
    // So does a member of another group.
    k.user("lunch@example.org", Role::VcsMember, Scope::Organisation(id(VCS_B))).await;
    send(&app, Method::POST, &path, None, "email=lunch%40example.org").await;
    assert_eq!(state.store().outbox_counts().await.unwrap().pending, 1, "only the member gets a link");

    let dir = tempfile::tempdir().unwrap();
    let mailer = Arc::new(kith_app::notify::FileMailer::new(dir.path().join("outbox")));
    let senders = kith_app::notify::Senders { mail: mailer, text: None };
    assert_eq!(state.outbox().deliver_due(&senders).await.unwrap(), 1);
    let files: Vec<_> = std::fs::read_dir(dir.path().join("outbox")).unwrap().map(|f| f.unwrap().path()).collect();
    assert_eq!(files.len(), 1);
    let eml = std::fs::read_to_string(&files[0]).unwrap();
    assert!(
        eml.contains("To: Shed@example.org\r\n") && eml.contains("Subject: Check the listing for Walking group"),
        "{eml}"
    );
    let url = eml.lines().find(|l| l.starts_with("https://kith.example.org/link/")).unwrap().trim();
    let used = send(&app, Method::POST, url.trim_start_matches("https://kith.example.org"), None, "").await;
    assert_eq!(used.location(), format!("/services/{}/update", id(SERVICE_A)));
    let counts = state.store().outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent), (0, 1));

    // Three requests per address in fifteen minutes; the fourth waits.
    send(&app, Method::POST, &path, None, "email=shed%40example.org").await;
    send(&app, Method::POST, &path, None, "email=shed%40example.org").await;
    let fourth = send(&app, Method::POST, &path, None, "email=shed%40example.org").await;
    assert_eq!(fourth.status, StatusCode::TOO_MANY_REQUESTS);
    assert!(fourth.body.contains("Wait 15 minutes"));
}

on_both_engines!(
    a_group_member_asks_for_a_link_by_email,
    authorisation_matrix_covers_every_route_for_every_role,
    link_sessions_cannot_enrol_a_second_factor,
    the_audit_log_is_scoped_to_the_admins_area,
    the_links_report_refuses_extreme_dates,
    lockouts_hold_by_account_and_address,
    a_new_role_that_needs_two_factors_steps_the_session_up,
    a_shared_desk_starts_afresh_for_the_next_patient,
    sign_in_with_two_factors_rotates_the_session,
    repeated_wrong_passwords_lock_the_account_out,
    magic_links_work_once_for_one_listing,
    the_audit_log_records_and_exports_for_area_admins,
);

/// Names and emails never reach the SQLite file in the clear.
#[tokio::test]
async fn sqlite_file_holds_no_readable_personal_fields() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("kith.db");
    let store = kith_store::sqlite::SqliteStore::open(&path, clock()).await.unwrap();
    let k = personal_fields_are_sealed_at_rest_and_keys_rotate(Arc::new(store)).await;
    drop(k);
    let mut bytes = std::fs::read(&path).unwrap();
    if let Ok(wal) = std::fs::read(dir.path().join("kith.db-wal")) {
        bytes.extend(wal);
    }
    let text = String::from_utf8_lossy(&bytes).to_lowercase();
    assert!(text.contains("walking group"), "the directory itself is readable");
    for secret in ["zainab", "hussain", "link_worker person"] {
        assert!(!text.contains(secret), "{secret} is in the database file");
    }
}

/// And PostgreSQL holds only sealed text, as any SQL client would see it.
#[tokio::test]
async fn postgres_holds_no_readable_personal_fields() {
    let Some(t) = kith_store::testing::postgres(clock(), "postgres_holds_no_readable_personal_fields").await else {
        return;
    };
    personal_fields_are_sealed_at_rest_and_keys_rotate(t.store.clone()).await;
    let (client, conn) = t.postgres_config().unwrap().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(conn);
    let rows = client.query("SELECT email, name, email_index FROM users", &[]).await.unwrap();
    assert_eq!(rows.len(), 1);
    for column in 0..3 {
        let value: String = rows[0].get(column);
        assert!(!value.to_lowercase().contains("zainab"), "{value}");
    }
    drop(client);
    t.cleanup().await;
}

#[tokio::test]
async fn cross_site_posts_and_oversized_bodies_are_refused() {
    let t = kith_store::testing::sqlite(clock()).await;
    let k = kith(t.store.clone()).await;
    k.user("cam@example.org", Role::Commissioner, Scope::Area(id(AREA))).await;
    let body = form(&[("email", "cam@example.org"), ("password", PASSWORD)]);
    let request = Request::post("/signin")
        .header(header::HOST, "kith.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header("sec-fetch-site", "cross-site")
        .header(header::ORIGIN, "https://evil.example")
        .body(Body::from(body))
        .unwrap();
    let response = k.app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert!(response.headers().get(header::SET_COOKIE).is_none(), "no session from a cross-site form");
    let huge = format!("email=cam%40example.org&password={}", "a".repeat(kith_web::MAX_BODY_BYTES));
    let reply = send(&k.app, Method::POST, "/signin", None, &huge).await;
    assert_eq!(reply.status, StatusCode::PAYLOAD_TOO_LARGE);
}

/// A small OpenID Connect provider for the tests: discovery, keys, an authorisation
/// endpoint that signs in whoever the test says, and a token endpoint that checks the
/// client's `private_key_jwt` assertion and PKCE as a real provider must.
mod provider {
    use axum::extract::{Query, State};
    use axum::http::StatusCode;
    use axum::response::{IntoResponse, Redirect, Response};
    use axum::routing::{get, post};
    use axum::{Json, Router};
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use kith_app::oidc::ClientKey;
    use serde_json::{Value, json};
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    pub const NOW: i64 = 1_780_000_000;

    /// What an authorisation code stands for: the nonce, the PKCE challenge, and who.
    type Issued = (String, String, String);

    #[derive(Clone)]
    pub struct Provider {
        pub base: String,
        pub key: ClientKey,
        pub client_jwk: Value,
        pub client_id: String,
        pub email: Arc<Mutex<String>>,
        /// How to spoil the next ID token, to see Kith refuse it.
        pub spoil: Arc<Mutex<Option<&'static str>>>,
        pub other_key: ClientKey,
        codes: Arc<Mutex<HashMap<String, Issued>>>,
    }

    /// An RSA key made by OpenSSL, as an organisation would make its own.
    pub fn rsa_key(dir: &std::path::Path, name: &str, alg: kith_app::oidc::JwsAlg) -> ClientKey {
        let path = dir.join(format!("{name}.pem"));
        let status = std::process::Command::new("openssl")
            .args(["genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out"])
            .arg(&path)
            .stderr(std::process::Stdio::null())
            .status()
            .expect("openssl makes test keys");
        assert!(status.success());
        ClientKey::from_pem(&std::fs::read_to_string(path).unwrap(), name, alg).unwrap()
    }

    pub async fn start(dir: &std::path::Path, client: &ClientKey, client_id: &str) -> Provider {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let provider = Provider {
            base,
            key: rsa_key(dir, "provider", kith_app::oidc::JwsAlg::Rs256),
            other_key: rsa_key(dir, "impostor", kith_app::oidc::JwsAlg::Rs256),
            client_jwk: client.public_jwk(),
            client_id: client_id.into(),
            email: Arc::new(Mutex::new(String::new())),
            spoil: Arc::new(Mutex::new(None)),
            codes: Arc::new(Mutex::new(HashMap::new())),
        };
        let app = Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/jwks", get(jwks))
            .route("/authorize", get(authorize))
            .route("/token", post(token))
            .with_state(provider.clone());
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        provider
    }

    async fn discovery(State(p): State<Provider>) -> Json<Value> {
        Json(json!({
            "issuer": p.base,
            "authorization_endpoint": format!("{}/authorize", p.base),
            "token_endpoint": format!("{}/token", p.base),
            "jwks_uri": format!("{}/jwks", p.base),
            "token_endpoint_auth_methods_supported": ["private_key_jwt"],
            "id_token_signing_alg_values_supported": ["RS256"],
        }))
    }

    async fn jwks(State(p): State<Provider>) -> Json<Value> {
        Json(json!({ "keys": [p.key.public_jwk()] }))
    }

    async fn authorize(State(p): State<Provider>, Query(q): Query<HashMap<String, String>>) -> Response {
        assert_eq!(q["response_type"], "code");
        assert_eq!(q["client_id"], p.client_id);
        assert_eq!(q["code_challenge_method"], "S256");
        assert!(q["scope"].split(' ').any(|s| s == "openid"));
        let code = kith_crypto::token::new_token().0;
        let email = p.email.lock().unwrap().clone();
        p.codes.lock().unwrap().insert(code.clone(), (q["nonce"].clone(), q["code_challenge"].clone(), email));
        let query = serde_urlencoded::to_string([("code", code.as_str()), ("state", q["state"].as_str())]).unwrap();
        Redirect::to(&format!("{}?{query}", q["redirect_uri"])).into_response()
    }

    fn refuse(why: &str) -> Response {
        (StatusCode::BAD_REQUEST, Json(json!({ "error": "invalid_grant", "error_description": why }))).into_response()
    }

    /// Checks the client's signed assertion with the public key it registered.
    fn assertion_ok(p: &Provider, jwt: &str) -> bool {
        let parts: Vec<&str> = jwt.split('.').collect();
        let [h, c, s] = parts[..] else { return false };
        let header: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap()).unwrap();
        let claims: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(c).unwrap()).unwrap();
        let public = ring::signature::RsaPublicKeyComponents {
            n: URL_SAFE_NO_PAD.decode(p.client_jwk["n"].as_str().unwrap()).unwrap(),
            e: URL_SAFE_NO_PAD.decode(p.client_jwk["e"].as_str().unwrap()).unwrap(),
        };
        header["alg"] == "RS512"
            && header["kid"] == p.client_jwk["kid"]
            && public
                .verify(
                    &ring::signature::RSA_PKCS1_2048_8192_SHA512,
                    format!("{h}.{c}").as_bytes(),
                    &URL_SAFE_NO_PAD.decode(s).unwrap(),
                )
                .is_ok()
            && claims["iss"] == p.client_id.as_str()
            && claims["sub"] == p.client_id.as_str()
            && claims["aud"] == format!("{}/token", p.base)
            && claims["exp"].as_i64().unwrap() > NOW
            && claims["jti"].as_str().is_some_and(|j| j.len() >= 32)
    }

    async fn token(State(p): State<Provider>, body: String) -> Response {
        let f: HashMap<String, String> = serde_urlencoded::from_str(&body).unwrap();
        if f.get("grant_type").map(String::as_str) != Some("authorization_code")
            || f.get("client_assertion_type").map(String::as_str)
                != Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        {
            return refuse("unsupported request");
        }
        if !assertion_ok(&p, &f["client_assertion"]) {
            return (StatusCode::UNAUTHORIZED, Json(json!({ "error": "invalid_client" }))).into_response();
        }
        let Some((nonce, challenge, email)) = p.codes.lock().unwrap().remove(&f["code"]) else {
            return refuse("the code is unknown or used");
        };
        let computed =
            URL_SAFE_NO_PAD.encode(ring::digest::digest(&ring::digest::SHA256, f["code_verifier"].as_bytes()));
        if computed != challenge {
            return refuse("PKCE verifier does not match");
        }
        let spoil = p.spoil.lock().unwrap().take();
        let mut claims = json!({
            "iss": p.base, "sub": format!("cis2-{email}"), "aud": p.client_id, "iat": NOW, "exp": NOW + 300,
            "nonce": nonce, "email": email, "email_verified": true,
        });
        let mut signer = &p.key;
        match spoil {
            Some("nonce") => claims["nonce"] = json!("someone-else"),
            Some("expired") => claims["exp"] = json!(NOW - 3600),
            Some("audience") => claims["aud"] = json!("another-app"),
            Some("signature") => signer = &p.other_key,
            Some("unverified") => claims["email_verified"] = json!(false),
            Some("unstated") => {
                claims.as_object_mut().unwrap().remove("email_verified");
            }
            _ => {}
        }
        let mut id_token = signer.sign(&claims).unwrap();
        if spoil == Some("signature") {
            // Signed by a key the provider does not publish, under the provider's key id.
            let parts: Vec<&str> = id_token.split('.').collect();
            let header = URL_SAFE_NO_PAD.encode(json!({ "alg": "RS256", "typ": "JWT", "kid": "provider" }).to_string());
            id_token = format!("{header}.{}.{}", parts[1], parts[2]);
        }
        Json(json!({ "id_token": id_token, "access_token": "not-used", "token_type": "Bearer" })).into_response()
    }
}

#[tokio::test]
async fn oidc_sign_in_with_private_key_jwt() {
    use kith_app::oidc::{JwsAlg, Oidc, OidcConfig};
    let dir = tempfile::tempdir().unwrap();
    let client_key = provider::rsa_key(dir.path(), "kith-client", JwsAlg::Rs512);
    let idp = provider::start(dir.path(), &client_key, "kith-test").await;
    let t = kith_store::testing::sqlite(clock()).await;
    let mut k = kith(t.store.clone()).await;
    let config = OidcConfig {
        issuer: idp.base.clone(),
        client_id: "kith-test".into(),
        redirect_url: "http://127.0.0.1/signin/oidc/callback".into(),
        key: client_key,
        label: "NHS Care Identity".into(),
        scopes: "openid email profile".into(),
    };
    k.state = AppState::new(k.state.app().clone().with_oidc(Oidc::new(config).unwrap()));
    k.app = router(k.state.clone());
    k.user("ada@example.org", Role::AreaAdmin, Scope::Area(id(AREA))).await;
    let http = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();

    let jwks = send(&k.app, Method::GET, "/oidc/jwks.json", None, "").await;
    let published: serde_json::Value = serde_json::from_str(&jwks.body).unwrap();
    assert_eq!(published["keys"][0], idp.client_jwk, "Kith publishes the key its assertions are signed with");
    let page = send(&k.app, Method::GET, "/signin?next=/admin/audit", None, "").await;
    assert!(page.body.contains("Sign in with NHS Care Identity"), "{}", page.body);

    // One round trip: Kith → provider → Kith, returning the callback's reply.
    let round_trip = |email: &'static str, spoil: Option<&'static str>| {
        let (k, idp, http) = (&k, &idp, &http);
        async move {
            *idp.email.lock().unwrap() = email.into();
            *idp.spoil.lock().unwrap() = spoil;
            let start = send(&k.app, Method::GET, "/signin/oidc?next=%2Fadmin%2Faudit", None, "").await;
            assert_eq!(start.status, StatusCode::SEE_OTHER);
            assert!(start.location().starts_with(&format!("{}/authorize?", idp.base)), "{}", start.location());
            let cookie = start.headers[header::SET_COOKIE].to_str().unwrap().split(';').next().unwrap().to_owned();
            let back = http.get(start.location()).send().await.unwrap();
            let callback = back.headers()[header::LOCATION].to_str().unwrap().to_owned();
            let path = callback.trim_start_matches("http://127.0.0.1");
            (send(&k.app, Method::GET, path, Some(&cookie), "").await, path.to_owned(), cookie)
        }
    };

    let (reply, callback, cookie) = round_trip("ada@example.org", None).await;
    assert_eq!((reply.status, reply.location()), (StatusCode::SEE_OTHER, "/admin/audit"), "{}", reply.body);
    let session = reply.session_cookie().unwrap();
    let audit = send(&k.app, Method::GET, "/admin/audit", Some(&session), "").await;
    assert_eq!(audit.status, StatusCode::OK, "signed in fully: the provider did the second factor");
    assert!(audit.body.contains("oidc http://127.0.0.1"), "the sign-in is audited");

    // The same reply again: the provider refuses a used code.
    let replay = send(&k.app, Method::GET, &callback, Some(&cookie), "").await;
    assert_eq!(replay.status, StatusCode::BAD_REQUEST);
    assert!(replay.body.contains("did not work") && replay.body.contains("unknown or used"), "{}", replay.body);
    // A reply this browser did not ask for.
    let forged = callback.replace("state=", "state=x");
    assert!(send(&k.app, Method::GET, &forged, Some(&cookie), "").await.body.contains("does not match"));
    assert!(send(&k.app, Method::GET, &callback, None, "").await.body.contains("did not start that sign-in"));

    for (spoil, says) in [
        ("nonce", "not issued for this sign-in"),
        ("expired", "has expired"),
        ("audience", "for another application"),
        ("signature", "signature does not match"),
        // An email the provider does not vouch for could be anyone's (finding 6).
        ("unverified", "has not verified this person"),
        ("unstated", "has not verified this person"),
    ] {
        let (reply, _, _) = round_trip("ada@example.org", Some(spoil)).await;
        assert_eq!(reply.status, StatusCode::BAD_REQUEST, "{spoil}");
        assert!(reply.body.contains(says), "{spoil}: {}", reply.body);
        assert!(reply.session_cookie().is_none(), "{spoil}");
    }
    let (stranger, _, _) = round_trip("stranger@example.org", None).await;
    assert!(stranger.body.contains("no Kith account for you yet"), "{}", stranger.body);
}
