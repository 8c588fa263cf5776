//! The shortlist ("what we talked about"): services picked during a consultation, kept
//! in a cookie for the browser session, so it needs no account and holds no personal
//! data, only public service ids. It prints on one A4 page.

use super::form::Fields;
use super::view::{Card, Detail};
use super::{Layout, OrPage, PageError, PageResult, render};
use crate::AppState;
use askama::Template;
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Redirect, Response};
use kith_app::shortlists::{Handout, Row, SendShortlist, SendTo, Sender, ShortlistError};
use uuid::Uuid;

pub const COOKIE: &str = "kith_shortlist";
/// More than this is no longer a shortlist; a printed page holds four.
pub const MAX: usize = 10;

/// Service ids, in the order added.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Shortlist(Vec<Uuid>);

impl Shortlist {
    /// Reads the cookie; anything unreadable in it is dropped.
    pub fn from_headers(headers: &HeaderMap) -> Shortlist {
        let mut ids = Vec::new();
        for value in headers.get_all(header::COOKIE).iter().filter_map(|v| v.to_str().ok()) {
            for pair in value.split(';') {
                let Some((name, v)) = pair.trim().split_once('=') else { continue };
                if name == COOKIE {
                    ids.extend(v.split('.').filter_map(|id| Uuid::parse_str(id).ok()));
                }
            }
        }
        ids.dedup();
        ids.truncate(MAX);
        Shortlist(ids)
    }

    pub fn ids(&self) -> &[Uuid] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn contains(&self, id: Uuid) -> bool {
        self.0.contains(&id)
    }

    /// The `Set-Cookie` value: a session cookie, not readable by scripts.
    fn cookie(&self) -> String {
        let value: Vec<String> = self.0.iter().map(|id| id.simple().to_string()).collect();
        if value.is_empty() {
            format!("{COOKIE}=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax")
        } else {
            format!("{COOKIE}={}; Path=/; HttpOnly; SameSite=Lax", value.join("."))
        }
    }
}

#[derive(Template)]
#[template(path = "shortlist.html")]
struct ShortlistPage {
    layout: Layout,
    cards: Vec<Card>,
    full: bool,
    /// Practice staff refer from here, one screen to the referral form.
    can_refer: bool,
}

#[derive(Template)]
#[template(path = "print.html")]
struct PrintPage {
    layout: Layout,
    services: Vec<Detail>,
    date: String,
    /// Whether each service's name links to its page (not on paper).
    linked: bool,
}

#[derive(Template)]
#[template(path = "shared_list.html")]
struct SharedListPage {
    layout: Layout,
    services: Vec<Detail>,
    linked: bool,
}

async fn services(state: &AppState, list: &Shortlist) -> Result<Vec<kith_domain::hsds::Service>, PageError> {
    Ok(state.shortlist_services(list.ids()).await?)
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let list = Shortlist::from_headers(&headers);
    let found = services(&state, &list).await.or_page(&headers)?;
    let now = state.clock.now();
    let referring = state.organizations_taking_referrals().await.or_page(&headers)?;
    let mut cards: Vec<Card> = found.iter().map(|s| Card::new(s, None, now, true)).collect();
    super::mark_referrals(cards.iter_mut().zip(found.iter().map(|s| s.organization_id)), &referring);
    let page = ShortlistPage {
        layout: Layout::new("Your shortlist – Kith", &headers),
        cards,
        full: list.len() >= MAX,
        can_refer: super::may_refer(),
    };
    Ok(render(StatusCode::OK, &page))
}

pub async fn print(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let list = Shortlist::from_headers(&headers);
    let found = services(&state, &list).await.or_page(&headers)?;
    let now = state.clock.now();
    let page = PrintPage {
        layout: Layout::new("Services we talked about – Kith", &headers),
        services: found.iter().map(|s| Detail::new(s, now, true)).collect(),
        date: kith_domain::opening::uk_local(now).format("%-d %B %Y").to_string(),
        linked: false,
    };
    Ok(render(StatusCode::OK, &page))
}

/// `GET /l/{code}`: the services of a list sent by text, as they are listed now. The
/// code names services only, so the page is public.
pub async fn shared(State(state): State<AppState>, Path(code): Path<String>, headers: HeaderMap) -> PageResult {
    let Some(found) = state.shared_list(&code).await.or_page(&headers)? else {
        return Err(PageError::NotFound(
            "There is no list at this address. Check the link in your text message.".into(),
        )
        .into_page(&headers));
    };
    let now = state.clock.now();
    let page = SharedListPage {
        layout: Layout::new("Services we talked about – Kith", &headers),
        services: found.iter().map(|s| Detail::new(s, now, true)).collect(),
        linked: true,
    };
    Ok(render(StatusCode::OK, &page))
}

/// What a handout says about one service: the same as the printed page.
fn handout(d: &Detail) -> Handout {
    let mut rows = Vec::new();
    // A closed service says so first, and gives no times to turn up at.
    if let Some(closed) = d.card.closed {
        rows.push((Row::Status, format!("{closed}: check with them before going")));
    }
    if let Some(v) = d.venues.first() {
        rows.push((Row::Where, v.address.join(", ")));
    }
    let when = if d.card.closed.is_some() {
        Vec::new()
    } else if d.opening.is_empty() {
        d.venues.first().map(|v| v.opening.clone()).unwrap_or_default()
    } else {
        d.opening.clone()
    };
    if !when.is_empty() {
        rows.push((Row::When, when.join("; ")));
    }
    if let Some(p) = d.phones.first() {
        rows.push((Row::Phone, p.number.clone()));
    }
    match (&d.website, &d.email) {
        (Some(w), _) => rows.push((Row::Website, w.clone())),
        (None, Some(e)) => rows.push((Row::Email, e.clone())),
        (None, None) => {}
    }
    rows.push((Row::Cost, d.card.cost.clone()));
    // How to start going, and a warning when the listing has not been checked lately:
    // what the person needs on paper, as on the page.
    if let Some(how) = d.how_to_apply.as_deref().map(str::trim).filter(|h| !h.is_empty()) {
        rows.push((Row::HowToJoin, super::view::summary(how, 300)));
    }
    if d.card.verified.stale {
        rows.push((Row::CheckBeforeGoing, format!("this listing was last checked: {}", d.card.verified.text)));
    }
    Handout {
        name: d.card.name.clone(),
        organisation: d.card.organisation.clone(),
        summary: d.card.summary.clone(),
        rows,
    }
}

/// The leaflet's entry for a handout.
fn leaflet_entry(h: Handout) -> kith_pdf::Entry {
    kith_pdf::Entry {
        name: h.name,
        organisation: h.organisation,
        summary: h.summary,
        rows: h.rows.into_iter().map(|(row, value)| (row.label().to_owned(), value)).collect(),
    }
}

/// `GET /shortlist/leaflet.pdf`: the shortlist as a tagged PDF/UA-1 leaflet.
pub async fn leaflet(State(state): State<AppState>, headers: HeaderMap) -> PageResult {
    let list = Shortlist::from_headers(&headers);
    if list.is_empty() {
        return Err(PageError::BadRequest(
            "The shortlist is empty, so there is nothing to put in a leaflet. Add services to the shortlist first."
                .into(),
        )
        .into_page(&headers));
    }
    let found = services(&state, &list).await.or_page(&headers)?;
    let now = state.clock.now();
    let local = kith_domain::opening::uk_local(now);
    let date = local.date();
    use chrono::Datelike;
    let leaflet = kith_pdf::Leaflet {
        title: "Services we talked about".into(),
        subtitle: format!("Given to you on {}", date.format("%-d %B %Y")),
        footer: "Listings change: check with a service before you go.".into(),
        date: (date.year(), u8::try_from(date.month()).unwrap_or(1), u8::try_from(date.day()).unwrap_or(1)),
        entries: found.iter().map(|s| leaflet_entry(handout(&Detail::new(s, now, true)))).collect(),
    };
    let made = match tokio::task::spawn_blocking(move || leaflet.pdf()).await {
        Ok(Ok(typeset)) => (
            [
                (header::CONTENT_TYPE, "application/pdf"),
                (header::CONTENT_DISPOSITION, "attachment; filename=\"services-we-talked-about.pdf\""),
                (header::CACHE_CONTROL, "no-store"),
            ],
            typeset.pdf,
        )
            .into_response(),
        Ok(Err(e)) => {
            tracing::error!(error = %e, "leaflet failed");
            PageError::Unavailable("The leaflet could not be made just now. You can print the page instead.".into())
                .into_page(&headers)
        }
        Err(e) => {
            tracing::error!(error = %e, "leaflet task failed");
            PageError::Unavailable("The leaflet could not be made just now. You can print the page instead.".into())
                .into_page(&headers)
        }
    };
    Ok(made)
}

/// Only a path on this site, so a crafted form cannot send the person elsewhere.
fn local_path(back: &str) -> &str {
    if super::is_local_path(back) { back } else { "/shortlist" }
}

/// `POST /shortlist` with `change` add, remove or clear, an `id`, and where to go `back`
/// to. A script asking for JSON gets the new count instead of a redirect.
pub async fn change(headers: HeaderMap, body: Bytes) -> Response {
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let mut list = Shortlist::from_headers(&headers);
    let id = Uuid::parse_str(fields.get("id")).ok();
    let problem = |m: &str| PageError::BadRequest(m.to_owned()).into_page(&headers);
    match (fields.get("change"), id) {
        ("add", Some(id)) => {
            if !list.contains(id) {
                if list.len() >= MAX {
                    return problem(&format!(
                        "The shortlist holds up to {MAX} services. Remove one before adding another."
                    ));
                }
                list.0.push(id);
            }
        }
        ("remove", Some(id)) => list.0.retain(|x| *x != id),
        ("clear", _) => list.0.clear(),
        ("add" | "remove", None) => {
            return problem("This button did not say which service it was for. Go back and try again.");
        }
        _ => return problem("This form did not say what to do with the shortlist. Go back and try again."),
    }
    let cookie = HeaderValue::from_str(&list.cookie()).unwrap_or_else(|_| HeaderValue::from_static(""));
    let wants_json =
        headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("application/json"));
    let mut response = if wants_json {
        Json(serde_json::json!({ "count": list.len(), "in_shortlist": id.is_some_and(|id| list.contains(id)) }))
            .into_response()
    } else {
        Redirect::to(local_path(fields.get("back"))).into_response()
    };
    response.headers_mut().insert(header::SET_COOKIE, cookie);
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cookie_round_trips_and_drops_what_it_cannot_read() {
        let a = Uuid::from_u128(1);
        let b = Uuid::from_u128(2);
        let mut headers = HeaderMap::new();
        let cookie = format!("other=1; {COOKIE}={}.nonsense.{}", a.simple(), b.simple());
        headers.insert(header::COOKIE, HeaderValue::from_str(&cookie).unwrap());
        let list = Shortlist::from_headers(&headers);
        assert_eq!(list.ids(), &[a, b]);
        assert!(list.cookie().starts_with(&format!("{COOKIE}={}.{}; Path=/; HttpOnly", a.simple(), b.simple())));
    }

    #[test]
    fn only_local_paths_are_returned_to() {
        assert_eq!(local_path("/?q=lonely"), "/?q=lonely");
        assert_eq!(local_path("//evil.example"), "/shortlist");
        assert_eq!(local_path("https://evil.example"), "/shortlist");
        assert_eq!(local_path("/\\evil.example"), "/shortlist");
    }
}

#[derive(Template)]
#[template(path = "shortlist_send.html")]
struct SendPage {
    layout: Layout,
    count: usize,
    how: String,
    to: String,
    sent_to: Option<String>,
    /// Whether text messages are offered: to signed-in staff only, since a text costs
    /// the practice money and cannot be refused by the recipient.
    texts: bool,
    errors: Vec<super::search::FieldError>,
}

form_errors!(SendPage);

fn empty_list(headers: &HeaderMap) -> Response {
    PageError::BadRequest(
        "The shortlist is empty, so there is nothing to send. Add services to the shortlist first.".into(),
    )
    .into_page(headers)
}

/// `GET /shortlist/send`: the form.
pub async fn send_page(axum::Extension(viewer): axum::Extension<crate::auth::Viewer>, headers: HeaderMap) -> Response {
    let list = Shortlist::from_headers(&headers);
    if list.is_empty() {
        return empty_list(&headers);
    }
    let page = SendPage {
        layout: Layout::new("Send the shortlist – Kith", &headers),
        count: list.len(),
        how: "email".into(),
        to: String::new(),
        sent_to: None,
        texts: viewer.member().is_some(),
        errors: vec![],
    };
    render(StatusCode::OK, &page)
}

/// `POST /shortlist/send`: checks the address, queues the message, and says so.
pub async fn send(
    State(state): State<AppState>,
    axum::Extension(crate::auth::ClientIp(ip)): axum::Extension<crate::auth::ClientIp>,
    axum::Extension(viewer): axum::Extension<crate::auth::Viewer>,
    headers: HeaderMap,
    body: Bytes,
) -> PageResult {
    let list = Shortlist::from_headers(&headers);
    if list.is_empty() {
        return Ok(empty_list(&headers));
    }
    let fields = Fields::parse(std::str::from_utf8(&body).ok());
    let how = fields.get("how").to_owned();
    let to = fields.get("to").to_owned();
    let mut page = SendPage {
        layout: Layout::new("Error: Send the shortlist – Kith", &headers),
        count: list.len(),
        how: how.clone(),
        to: to.clone(),
        sent_to: None,
        texts: viewer.member().is_some(),
        errors: vec![],
    };
    let error =
        |field, message: &str| super::search::FieldError { field, message: message.into(), suggestions: vec![] };
    let to = match SendTo::parse(&how, &to, page.texts) {
        Ok(to) => to,
        Err((field, message)) => {
            page.errors.push(error(field.name(), message));
            return Ok(render(StatusCode::BAD_REQUEST, &page));
        }
    };
    let sender = match viewer.member() {
        Some(current) => Sender::Member(&current.user),
        None => Sender::Anyone { ip: ip.as_deref() },
    };
    let actor = viewer.actor(ip.clone());
    let send = SendShortlist { ids: list.ids(), to, sender, actor: &actor };
    let now = state.clock.now();
    match state.send_shortlist(send, |s| handout(&Detail::new(s, now, true))).await {
        Ok(masked) => {
            page.layout = Layout::new("Shortlist sent – Kith", &headers);
            page.sent_to = Some(masked);
            Ok(render(StatusCode::OK, &page))
        }
        Err(e @ (ShortlistError::TooManyToThisAddress | ShortlistError::TooManyFromHere)) => {
            page.errors.push(error("to", &e.to_string()));
            Ok(render(StatusCode::TOO_MANY_REQUESTS, &page))
        }
        Err(ShortlistError::Store(e)) => Err(PageError::from(e).into_page(&headers)),
    }
}
