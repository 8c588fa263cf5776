//! Sign-in with the organisation's OpenID Connect provider (NHS CIS2, or any other):
//! `/signin/oidc` sends the person there; `/signin/oidc/callback` is where they come back.

use super::PageError;
use super::form::Fields;
use super::signin::{begin_session, complete, redirect_with_cookie, safe_next};
use crate::AppState;
use crate::auth::session::{ClientIp, Viewer};
use axum::Extension;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Redirect, Response};
use kith_app::oidc::Pending;

/// The cookie that carries a sign-in in progress, sealed. `SameSite=Lax` lets it come
/// back with the provider's redirect, which is a top-level GET.
const COOKIE: &str = "__Host-kith_oidc";
const SEAL_CONTEXT: &str = "oidc-pending";

fn pending_from(state: &AppState, headers: &HeaderMap) -> Option<Pending> {
    let sealed = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(name, _)| *name == COOKIE)
        .map(|(_, value)| value.to_owned())?;
    let json = state.accounts.keyring().open(&sealed, SEAL_CONTEXT).ok()?;
    serde_json::from_str(&json).ok()
}

fn not_configured(headers: &HeaderMap) -> Response {
    PageError::NotFound(
        "This Kith does not offer sign-in with another service. Sign in with your email and password.".into(),
    )
    .into_page(headers)
}

pub async fn begin(State(state): State<AppState>, RawQuery(query): RawQuery, headers: HeaderMap) -> Response {
    let Some(oidc) = state.oidc.clone() else { return not_configured(&headers) };
    let next = safe_next(Fields::parse(query.as_deref()).get("next"));
    match oidc.begin(&next, state.clock.now().timestamp()).await {
        Ok((url, pending)) => {
            let sealed =
                state.accounts.keyring().seal(&serde_json::to_string(&pending).unwrap_or_default(), SEAL_CONTEXT);
            let cookie = format!(
                "{COOKIE}={sealed}; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age={}",
                kith_app::oidc::PENDING_SECONDS
            );
            let mut response = Redirect::to(&url).into_response();
            if let Ok(value) = HeaderValue::from_str(&cookie) {
                response.headers_mut().append(header::SET_COOKIE, value);
            }
            response
        }
        Err(e) => {
            tracing::warn!(error = %e, "OIDC sign-in could not start");
            PageError::Unavailable(format!(
                "Sign-in with {} is not working just now ({e}). Sign in with your email and password, or try again later.",
                oidc.config.label
            ))
            .into_page(&headers)
        }
    }
}

fn failed(state: &AppState, headers: &HeaderMap, why: &str) -> Response {
    let label = state.oidc.as_ref().map_or("your organisation", |o| o.config.label.as_str());
    let mut response = PageError::BadRequest(format!(
        "Signing in with {label} did not work: {why}. Go back to the sign-in page and try again."
    ))
    .into_page(headers);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("__Host-kith_oidc=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"),
    );
    response
}

pub async fn callback(
    State(state): State<AppState>,
    Extension(viewer): Extension<Viewer>,
    Extension(ClientIp(ip)): Extension<ClientIp>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    let Some(oidc) = state.oidc.clone() else { return not_configured(&headers) };
    let fields = Fields::parse(query.as_deref());
    let actor = viewer.actor(ip.clone());
    if fields.has("error") {
        let why = format!(
            "the sign-in service said {:?}",
            fields.get("error_description").chars().take(200).collect::<String>()
        );
        state.accounts.audit(&actor, "sign_in_failed", "oidc", None, fields.get("error")).await;
        return failed(&state, &headers, &why);
    }
    let Some(pending) = pending_from(&state, &headers) else {
        return failed(&state, &headers, "this browser did not start that sign-in, or it has already finished");
    };
    let identity =
        match oidc.complete(fields.get("code"), fields.get("state"), &pending, state.clock.now().timestamp()).await {
            Ok(identity) => identity,
            Err(e) => {
                tracing::warn!(error = %e, "OIDC sign-in refused");
                state.accounts.audit(&actor, "sign_in_failed", "oidc", None, &e.to_string()).await;
                return failed(&state, &headers, &e.to_string());
            }
        };
    let user = match state.accounts.user_by_email(&identity.email).await {
        Ok(Some(user)) if !user.disabled => user,
        Ok(_) => {
            state.accounts.audit(&actor, "sign_in_failed", "oidc", None, "no Kith account for this person").await;
            return failed(
                &state,
                &headers,
                "there is no Kith account for you yet; ask your area administrator to add you",
            );
        }
        Err(e) => {
            tracing::error!(error = %e, "OIDC sign-in could not read accounts");
            return PageError::Unavailable("Kith cannot sign you in just now.".into()).into_page(&headers);
        }
    };
    // The provider has checked who this is, to its own standard (CIS2: a smartcard or
    // equivalent); Kith does not ask for its own second factor on top.
    // The provider asked for its own second factor (CIS2: a smartcard or an authenticator).
    let signed_in = kith_app::accounts::Actor::of(&user, ip);
    let how = format!("oidc {}", oidc.config.issuer);
    let token = match begin_session(&state, &viewer, &user, complete(&how), &signed_in).await {
        Ok(token) => token,
        Err(e) => {
            tracing::error!(error = %e, "an OIDC session could not start");
            return PageError::Unavailable("Kith cannot sign you in just now.".into()).into_page(&headers);
        }
    };
    let mut response = redirect_with_cookie(&pending.next, &token);
    response.headers_mut().append(
        header::SET_COOKIE,
        HeaderValue::from_static("__Host-kith_oidc=; Path=/; HttpOnly; Secure; SameSite=Lax; Max-Age=0"),
    );
    response
}

/// Kith's public key as a JSON Web Key Set, for the provider to check Kith's client
/// assertions against (CIS2 asks relying parties to publish one).
pub async fn jwks(State(state): State<AppState>, headers: HeaderMap) -> Response {
    match &state.oidc {
        Some(oidc) => axum::Json(serde_json::json!({ "keys": [oidc.config.key.public_jwk()] })).into_response(),
        None => not_configured(&headers),
    }
}
