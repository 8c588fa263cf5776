//! Signing in and out: password, then a code from an authenticator app (set up on first
//! sign-in for roles that see personal data), with recovery codes for a lost phone.
//! Each step up issues a new session, so a session id fixed before sign-in is useless.

use super::form::Fields;
use super::search::FieldError;
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use crate::auth::session::{self, ClientIp, Viewer};
use askama::Template;
use axum::Extension;
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kith_app::accounts::{AccountsError, PasswordOutcome, SignInStep};
use kith_crypto::totp::Secret;
use kith_domain::account::{SessionStage, UserRecord};

/// Where to go after signing in: a path on this site only, never another site.
pub fn safe_next(next: &str) -> String {
    let ok = super::is_local_path(next) && !next.starts_with("/signin") && !next.starts_with("/signout");
    if ok { next.to_owned() } else { "/home".to_owned() }
}

fn field_error(field: &'static str, message: impl Into<String>) -> FieldError {
    FieldError { field, message: message.into(), suggestions: Vec::new() }
}

#[derive(Template)]
#[template(path = "signin.html")]
struct SignInPage {
    layout: Layout,
    /// "Sign in with …", when an OIDC provider is configured.
    oidc: Option<(String, String)>,
    next: String,
    email: String,
    notice: Option<&'static str>,
    errors: Vec<FieldError>,
}

form_errors!(SignInPage);

fn signin_page(
    state: &AppState,
    headers: &HeaderMap,
    next: String,
    email: String,
    errors: Vec<FieldError>,
) -> SignInPage {
    let title = if errors.is_empty() { "Sign in – Kith" } else { "Error: Sign in – Kith" };
    let href = format!("/signin/oidc?{}", super::query_string(&[("next", next.clone())]));
    let oidc = state.oidc.as_ref().map(|o| (o.config.label.clone(), href));
    SignInPage { layout: Layout::new(title, headers), oidc, next, email, notice: None, errors }
}

/// Starts a new session for this step of signing in, replacing the one the browser
/// holds, if any, and recording the sign-in with it: the one place sessions begin, so
/// rotation and the audit entry cannot be forgotten.
pub(super) async fn begin_session(
    state: &AppState,
    viewer: &Viewer,
    user: &UserRecord,
    step: SignInStep<'_>,
    actor: &kith_app::accounts::Actor,
) -> Result<String, AccountsError> {
    state.accounts.sign_in(user, viewer.current().map(|c| &c.session), step, actor).await
}

/// A step that completes sign-in, begun with a second factor (or a provider's own).
pub(super) fn complete(how: &str) -> SignInStep<'_> {
    SignInStep { stage: SessionStage::Complete, purpose: None, second_factor: true, how }
}

/// A 303 to `to`, setting the session cookie.
pub(super) fn redirect_with_cookie(to: &str, token: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(token));
    response
}

fn unavailable(e: &AccountsError, headers: &HeaderMap) -> Response {
    tracing::error!(error = %e, "sign-in could not reach the store");
    PageError::Unavailable("Kith cannot sign you in just now. Please try again in a minute.".into()).into_page(headers)
}

pub async fn page(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let fields = Fields::parse(query.as_deref());
    if viewer.member().is_some() {
        return Redirect::to(&safe_next(fields.get("next"))).into_response();
    }
    let mut page = signin_page(&state, &headers, safe_next(fields.get("next")), String::new(), Vec::new());
    if fields.get("signed_out") == "everywhere" {
        page.notice = Some("You have been signed out everywhere.");
    } else if fields.get("signed_out") == "yes" {
        page.notice = Some("You have signed out.");
    }
    render(StatusCode::OK, &page)
}

pub async fn submit(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let next = safe_next(fields.get("next"));
    let email = fields.get("email").to_owned();
    let password = fields.raw("password").to_owned();
    let mut errors = Vec::new();
    if email.is_empty() {
        errors.push(field_error("email", "Enter your email address"));
    } else if email.chars().count() > 254 || !email.contains('@') {
        errors.push(field_error("email", "Enter an email address in the correct format, like name@example.org"));
    }
    if password.is_empty() {
        errors.push(field_error("password", "Enter your password"));
    } else if password.chars().count() > kith_crypto::password::MAX_LENGTH {
        errors.push(field_error("password", "Enter a correct email address and password"));
    }
    if !errors.is_empty() {
        return Ok(render(StatusCode::BAD_REQUEST, &signin_page(&state, &headers, next, email, errors)));
    }
    let outcome = match state.accounts.check_password(&email, &password, ip.clone()).await {
        Ok(outcome) => outcome,
        Err(AccountsError::Invalid(message)) => {
            let errors = vec![field_error("email", message)];
            return Ok(render(StatusCode::BAD_REQUEST, &signin_page(&state, &headers, next, email, errors)));
        }
        Err(locked @ AccountsError::Locked(_)) => {
            let errors = vec![field_error("email", locked.to_string())];
            return Ok(render(StatusCode::TOO_MANY_REQUESTS, &signin_page(&state, &headers, next, email, errors)));
        }
        Err(e) => return Err(unavailable(&e, &headers)),
    };
    let (user, stage, to) = match outcome {
        PasswordOutcome::Complete(user) => (user, SessionStage::Complete, next.clone()),
        PasswordOutcome::NeedsCode(user) => {
            (user, SessionStage::SecondFactor, format!("/signin/code?{}", super::query_string(&[("next", next)])))
        }
        PasswordOutcome::NeedsEnrolment(user) => {
            (user, SessionStage::SecondFactor, format!("/signin/two-factor?{}", super::query_string(&[("next", next)])))
        }
    };
    // A password alone: if the account's roles come to need a second factor while this
    // session is open, it is asked for then.
    let actor = kith_app::accounts::Actor::of(&user, ip);
    let step = SignInStep { stage, purpose: None, second_factor: false, how: "password" };
    let token = begin_session(&state, &viewer, &user, step, &actor).await.map_err(|e| unavailable(&e, &headers))?;
    Ok(redirect_with_cookie(&to, &token))
}

#[derive(Template)]
#[template(path = "signin_code.html")]
struct CodePage {
    layout: Layout,
    next: String,
    errors: Vec<FieldError>,
}

form_errors!(CodePage);

pub async fn code_page(RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let next = safe_next(Fields::parse(query.as_deref()).get("next"));
    render(
        StatusCode::OK,
        &CodePage { layout: Layout::new("Enter your security code – Kith", &headers), next, errors: vec![] },
    )
}

pub async fn code_submit(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let next = safe_next(fields.get("next"));
    let Some(current) = viewer.current() else { return Ok(Redirect::to("/signin").into_response()) };
    let user = current.user.clone();
    let fail = |status, message: String| {
        let page = CodePage {
            layout: Layout::new("Error: Enter your security code – Kith", &headers),
            next: next.clone(),
            errors: vec![field_error("code", message)],
        };
        render(status, &page)
    };
    let code = fields.get("code");
    if code.is_empty() {
        return Ok(fail(StatusCode::BAD_REQUEST, "Enter the 6-digit code from your authenticator app".into()));
    }
    let actor = viewer.actor(ip);
    match state.accounts.check_code(&user, code, &actor).await {
        Ok(true) => {}
        Ok(false) => {
            return Ok(fail(
                StatusCode::BAD_REQUEST,
                "That code is not right. Enter the code your app shows now, or a recovery code".into(),
            ));
        }
        Err(locked @ AccountsError::Locked(_)) => return Ok(fail(StatusCode::TOO_MANY_REQUESTS, locked.to_string())),
        Err(e) => return Err(unavailable(&e, &headers)),
    }
    let token = begin_session(&state, &viewer, &user, complete("password and code"), &actor)
        .await
        .map_err(|e| unavailable(&e, &headers))?;
    Ok(redirect_with_cookie(&next, &token))
}

#[derive(Template)]
#[template(path = "two_factor.html")]
struct TwoFactorPage {
    layout: Layout,
    next: String,
    secret: String,
    uri: String,
    /// The `otpauth:` address as a QR code, inline SVG drawn here: no script, no image
    /// fetched from anywhere.
    qr: String,
    sealed: String,
    errors: Vec<FieldError>,
}

form_errors!(TwoFactorPage);

#[derive(Template)]
#[template(path = "recovery_codes.html")]
struct RecoveryPage {
    layout: Layout,
    codes: Vec<String>,
    next: String,
}

/// The secret being set up travels in the form, sealed to this session so no other
/// session can use it.
fn enrol_context(viewer: &Viewer) -> String {
    format!("enrol:{}", viewer.current().map_or("", |c| c.session.digest.as_str()))
}

fn two_factor_page(
    state: &AppState,
    viewer: &Viewer,
    headers: &HeaderMap,
    next: String,
    secret: &Secret,
    errors: Vec<FieldError>,
) -> TwoFactorPage {
    let account =
        viewer.current().and_then(|c| state.accounts.profile(&c.user).ok()).map(|p| p.email).unwrap_or_default();
    let title =
        if errors.is_empty() { "Set up two-step sign-in – Kith" } else { "Error: Set up two-step sign-in – Kith" };
    let uri = secret.uri("Kith", &account);
    TwoFactorPage {
        layout: Layout::new(title, headers),
        next,
        secret: secret.grouped(),
        qr: qr_svg(&uri),
        uri,
        sealed: state.accounts.keyring().seal(&secret.to_base32(), &enrol_context(viewer)),
        errors,
    }
}

/// `text` as a QR code in SVG, without the XML prolog so it sits inside the page. Empty if
/// the text is too long for a QR code (an `otpauth:` address never is).
fn qr_svg(text: &str) -> String {
    let Ok(code) = qrcode::QrCode::new(text.as_bytes()) else { return String::new() };
    let svg = code.render::<qrcode::render::svg::Color<'_>>().min_dimensions(200, 200).build();
    match svg.find("<svg") {
        Some(at) => svg[at..].replacen("<svg ", "<svg aria-hidden=\"true\" focusable=\"false\" ", 1),
        None => String::new(),
    }
}

pub async fn two_factor_page_handler(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let next = safe_next(Fields::parse(query.as_deref()).get("next"));
    if viewer.current().is_some_and(|c| c.user.totp_secret.is_some()) {
        return Redirect::to("/account").into_response();
    }
    render(StatusCode::OK, &two_factor_page(&state, &viewer, &headers, next, &Secret::generate(), vec![]))
}

pub async fn two_factor_submit(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let next = safe_next(fields.get("next"));
    // The route's rule has already refused link sessions; this keeps the rule next to the
    // step that begins a full session, should the route ever change.
    let Some(current) = viewer.current().filter(|_| viewer.may_enrol()) else {
        return Ok(Redirect::to("/signin").into_response());
    };
    if current.user.totp_secret.is_some() {
        return Ok(Redirect::to("/account").into_response());
    }
    let opened = state.accounts.keyring().open(fields.get("enrol"), &enrol_context(&viewer)).ok();
    let Some(secret) = opened.as_deref().and_then(Secret::from_base32) else {
        return Err(PageError::BadRequest("This form has expired. Start setting up two-step sign-in again.".into())
            .into_page(&headers));
    };
    let user = current.user.clone();
    let actor = viewer.actor(ip);
    let codes = match state.accounts.enrol_totp(&user, &secret, fields.get("code"), &actor).await {
        Ok(codes) => codes,
        Err(AccountsError::Invalid(message)) => {
            let errors = vec![field_error("code", message)];
            let page = two_factor_page(&state, &viewer, &headers, next, &secret, errors);
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
        Err(e) => return Err(unavailable(&e, &headers)),
    };
    let token = begin_session(&state, &viewer, &user, complete("password and new code"), &actor)
        .await
        .map_err(|e| unavailable(&e, &headers))?;
    let page = RecoveryPage { layout: Layout::new("Two-step sign-in is on – Kith", &headers), codes, next };
    let mut response = render(StatusCode::OK, &page);
    response.headers_mut().append(header::SET_COOKIE, session::set_cookie(&token));
    Ok(response)
}

/// Clears the cookie and the shortlist (a shared desk's next person must not see the last
/// one's services), and asks the browser to forget what it cached while signed in.
fn signed_out(to: &str) -> Response {
    let mut response = Redirect::to(to).into_response();
    response.headers_mut().append(header::SET_COOKIE, session::clear_cookie());
    response.headers_mut().append(
        header::SET_COOKIE,
        axum::http::HeaderValue::from_static("kith_shortlist=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"),
    );
    response.headers_mut().insert(
        axum::http::HeaderName::from_static("clear-site-data"),
        axum::http::HeaderValue::from_static("\"cache\", \"storage\""),
    );
    response
}

pub async fn sign_out(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
) -> Response {
    if let Some(current) = viewer.current() {
        // The cookie goes either way: a session the store could not end lapses on its own.
        if let Err(e) = state.accounts.end_session(&current.session, &viewer.actor(ip)).await {
            tracing::error!(error = %e, "a session could not be ended");
        }
    }
    signed_out("/signin?signed_out=yes")
}

pub async fn sign_out_everywhere(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    headers: HeaderMap,
) -> PageResult {
    let Some(current) = viewer.member() else { return Ok(Redirect::to("/signin").into_response()) };
    state.accounts.end_every_session(&current.user, &viewer.actor(ip)).await.or_page(&headers)?;
    Ok(signed_out("/signin?signed_out=everywhere"))
}

#[cfg(test)]
mod tests {
    use super::safe_next;

    #[test]
    fn next_stays_on_this_site() {
        assert_eq!(safe_next("/admin/audit?x=1"), "/admin/audit?x=1");
        for bad in ["https://evil.example", "//evil.example", "/\\evil.example", "", "/signin", "javascript:x"] {
            assert_eq!(safe_next(bad), "/home", "{bad}");
        }
    }
}
