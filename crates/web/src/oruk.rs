//! The Open Referral UK 3.0 read API, mounted at `/oruk`.
//!
//! Listings without a text search or place come straight from the store, in name
//! order; anything else goes through the search index, which returns ids in ranked
//! order, and the page is then read, fully nested, from the store.

use crate::{AppState, Unavailable};
use axum::Router;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use axum::routing::get;
use chrono::{DateTime, NaiveDate, Utc};
use kith_app::locate::{LocateError, Located};
use kith_domain::postcode::Postcode;
use kith_search::SearchQuery;
use kith_store::{Page, PageRequest, ServiceQuery, TermQuery};
use serde::Serialize;
use serde_json::{Value, json};
use std::collections::HashMap;
use uuid::Uuid;

/// The ORUK profile this API follows.
pub const PROFILE: &str = "https://github.com/OpenReferralUK/uk-profile/blob/main/docs/index.md";
const DEFAULT_PER_PAGE: u32 = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(root))
        .route("/openapi.json", get(openapi))
        .route("/services", get(services))
        .route("/services/{id}", get(service))
        .route("/service_at_locations", get(service_at_locations))
        .route("/organizations", get(organizations))
        .route("/organizations/{id}", get(organization))
        .route("/taxonomies", get(taxonomies))
        .route("/taxonomy_terms", get(taxonomy_terms))
        .fallback(unknown_endpoint)
        .layer(axum::middleware::map_response(cors))
}

/// The API's paths, for the route table (`/oruk/` itself is routed beside the nest).
pub const PATHS: &[&str] = &[
    "/oruk",
    "/oruk/",
    "/oruk/openapi.json",
    "/oruk/services",
    "/oruk/services/{id}",
    "/oruk/service_at_locations",
    "/oruk/organizations",
    "/oruk/organizations/{id}",
    "/oruk/taxonomies",
    "/oruk/taxonomy_terms",
];

/// An API path that does not exist answers in JSON, as the rest of the API does.
async fn unknown_endpoint(axum::extract::OriginalUri(uri): axum::extract::OriginalUri) -> ApiError {
    ApiError::NotFound(format!(
        "{} is not an endpoint of this API; see /oruk/openapi.json for those it has",
        uri.path()
    ))
}

/// Anyone may read the directory from any web page.
pub async fn cors(mut response: Response) -> Response {
    response.headers_mut().insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, HeaderValue::from_static("*"));
    response
}

/// A request Kith cannot answer as asked, with what to change.
#[derive(Debug)]
pub enum ApiError {
    BadRequest(String),
    NotFound(String),
    Unavailable(Unavailable),
}

impl From<kith_store::StoreError> for ApiError {
    fn from(e: kith_store::StoreError) -> Self {
        ApiError::Unavailable(Unavailable(e))
    }
}

impl From<kith_search::SearchError> for ApiError {
    fn from(e: kith_search::SearchError) -> Self {
        match e {
            kith_search::SearchError::Store(e) => ApiError::Unavailable(Unavailable(e)),
            other => ApiError::Unavailable(Unavailable(kith_store::StoreError::Database(other.to_string()))),
        }
    }
}

impl From<kith_app::directory::FindError> for ApiError {
    fn from(e: kith_app::directory::FindError) -> Self {
        match e {
            kith_app::directory::FindError::Store(e) => e.into(),
            kith_app::directory::FindError::Search(e) => e.into(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, message) = match self {
            ApiError::BadRequest(m) => (StatusCode::BAD_REQUEST, m),
            ApiError::NotFound(m) => (StatusCode::NOT_FOUND, m),
            ApiError::Unavailable(u) => return u.into_response(),
        };
        (status, Json(json!({ "status": status.as_u16(), "message": message }))).into_response()
    }
}

type ApiResult<T> = Result<T, ApiError>;

pub async fn root(headers: axum::http::HeaderMap) -> Json<Value> {
    // The schema wants an absolute URL; a proxy in front says how it was reached.
    let host = headers
        .get("x-forwarded-host")
        .or_else(|| headers.get(header::HOST))
        .and_then(|h| h.to_str().ok())
        .filter(|h| h.chars().all(|c| c.is_ascii_alphanumeric() || ".-:[]".contains(c)))
        .unwrap_or("localhost");
    let scheme = match headers.get("x-forwarded-proto").and_then(|h| h.to_str().ok()) {
        Some("https") => "https",
        _ => "http",
    };
    Json(json!({ "version": "3.0", "profile": PROFILE, "openapi_url": format!("{scheme}://{host}/oruk/openapi.json") }))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))], crate::openapi::DOCUMENT).into_response()
}

/// The query string, read by hand so that every bad value gets a message naming it.
#[derive(Debug)]
pub struct Params(HashMap<String, String>);

impl Params {
    fn str(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn parse<T>(&self, name: &str, what: &str, f: impl Fn(&str) -> Option<T>) -> ApiResult<Option<T>> {
        match self.str(name) {
            None => Ok(None),
            Some(v) => f(v).map(Some).ok_or_else(|| {
                let shown: String = v.chars().take(40).collect();
                ApiError::BadRequest(format!("{name} must be {what}; “{shown}” is not"))
            }),
        }
    }

    fn uuid(&self, name: &str) -> ApiResult<Option<Uuid>> {
        self.parse(name, "a UUID such as 3fa85f64-5717-4562-b3fc-2c963f66afa6", |v| Uuid::parse_str(v).ok())
    }

    fn number(&self, name: &str, max: u32) -> ApiResult<Option<u32>> {
        self.parse(name, &format!("a whole number from 0 to {max}"), |v| v.parse::<u32>().ok().filter(|n| *n <= max))
    }

    fn boolean(&self, name: &str) -> ApiResult<bool> {
        Ok(self
            .parse(name, "true or false", |v| match v.to_ascii_lowercase().as_str() {
                "true" | "1" | "yes" => Some(true),
                "false" | "0" | "no" => Some(false),
                _ => None,
            })?
            .unwrap_or(false))
    }

    fn page(&self) -> ApiResult<PageRequest> {
        let number = self.parse("page", "a whole number from 1", |v| v.parse::<u32>().ok().filter(|n| *n >= 1))?;
        let size = self.parse("per_page", &format!("a whole number from 1 to {}", PageRequest::MAX_SIZE), |v| {
            v.parse::<u32>().ok().filter(|n| (1..=PageRequest::MAX_SIZE).contains(n))
        })?;
        Ok(PageRequest::new(number.unwrap_or(1), size.unwrap_or(DEFAULT_PER_PAGE)))
    }

    fn modified_after(&self) -> ApiResult<Option<DateTime<Utc>>> {
        self.parse("modified_after", "a date or date-time such as 2026-01-31 or 2026-01-31T09:00:00Z", |v| {
            DateTime::parse_from_rfc3339(v).map(|d| d.with_timezone(&Utc)).ok().or_else(|| {
                NaiveDate::parse_from_str(v, "%Y-%m-%d").ok().map(|d| d.and_time(chrono::NaiveTime::MIN).and_utc())
            })
        })
    }

    fn time(&self, name: &str) -> ApiResult<Option<u16>> {
        self.parse(name, "a time such as 09:30", |v| {
            kith_domain::serde_util::TimeOfDay::parse(v).and_then(|t| {
                use chrono::Timelike;
                u16::try_from(t.0.hour() * 60 + t.0.minute()).ok()
            })
        })
    }

    fn day(&self) -> ApiResult<Option<u8>> {
        const DAYS: [[&str; 3]; 7] = [
            ["mo", "mon", "monday"],
            ["tu", "tue", "tuesday"],
            ["we", "wed", "wednesday"],
            ["th", "thu", "thursday"],
            ["fr", "fri", "friday"],
            ["sa", "sat", "saturday"],
            ["su", "sun", "sunday"],
        ];
        self.parse("day", "a day of the week such as MO or Monday", |v| {
            let v = v.to_ascii_lowercase();
            DAYS.iter().position(|names| names.contains(&v.as_str())).and_then(|p| u8::try_from(p).ok())
        })
    }

    fn reject_unknown(&self, known: &[&str]) -> ApiResult<()> {
        let mut unknown: Vec<&str> = self.0.keys().map(String::as_str).filter(|k| !known.contains(k)).collect();
        unknown.sort_unstable();
        match unknown.first() {
            None => Ok(()),
            Some(first) => Err(ApiError::BadRequest(format!(
                "unknown parameter {first}; this endpoint accepts {}",
                known.join(", ")
            ))),
        }
    }

    fn format(&self) -> ApiResult<()> {
        match self.str("format") {
            None => Ok(()),
            Some(f) if f.eq_ignore_ascii_case("json") => Ok(()),
            Some(f) => Err(ApiError::BadRequest(format!("format must be json; “{f}” is not offered"))),
        }
    }
}

fn params(Query(map): Query<HashMap<String, String>>) -> Params {
    Params(map)
}

/// An ORUK paged response.
#[derive(Debug, Serialize)]
pub struct Paged<T: Serialize> {
    total_items: u64,
    total_pages: u64,
    page_number: u32,
    size: u32,
    first_page: bool,
    last_page: bool,
    empty: bool,
    contents: Vec<T>,
}

fn paged<T: Serialize>(items: Vec<T>, total: u64, page: PageRequest) -> Paged<T> {
    let total_pages = total.div_ceil(u64::from(page.size));
    Paged {
        total_items: total,
        total_pages,
        page_number: page.number,
        size: u32::try_from(items.len()).unwrap_or(u32::MAX),
        first_page: page.number == 1,
        last_page: u64::from(page.number) >= total_pages,
        empty: items.is_empty(),
        contents: items,
    }
}

fn from_page<T: Serialize>(p: Page<T>) -> Paged<T> {
    let (total, request) = (p.total, p.request);
    paged(p.items, total, request)
}

const SERVICE_PARAMS: &[&str] = &[
    "search",
    "page",
    "per_page",
    "format",
    "taxonomy_term_id",
    "taxonomy_id",
    "organization_id",
    "modified_after",
    "minimal",
    "full",
    "minimum_age",
    "maximum_age",
    "day",
    "start_time",
    "end_time",
    "postcode",
    "proximity",
];

/// The services filters, read and checked.
struct ServiceFilters {
    query: SearchQuery,
    taxonomy_term_id: Option<Uuid>,
    indexed: bool,
}

async fn service_filters(state: &AppState, p: &Params, page: PageRequest) -> ApiResult<ServiceFilters> {
    p.format()?;
    let taxonomy_term_id = p.uuid("taxonomy_term_id")?;
    let taxonomy_id = p.uuid("taxonomy_id")?;
    let mut query = SearchQuery {
        // The API lists every service it holds, with its status, as ORUK expects.
        include_closed: true,
        text: p.str("search").map(|s| s.chars().take(200).collect()),
        organization_id: p.uuid("organization_id")?,
        modified_after: p.modified_after()?,
        minimum_age: p.number("minimum_age", 150)?,
        maximum_age: p.number("maximum_age", 150)?,
        day: p.day()?,
        start_minute: p.time("start_time")?,
        end_minute: p.time("end_time")?,
        offset: usize::try_from(page.offset()).unwrap_or(usize::MAX),
        limit: page.size as usize,
        // ORUK pages carry no facet counts.
        facets: false,
        ..Default::default()
    };
    if let (Some(lo), Some(hi)) = (query.minimum_age, query.maximum_age)
        && lo > hi
    {
        return Err(ApiError::BadRequest(format!("minimum_age ({lo}) is more than maximum_age ({hi})")));
    }
    if let (Some(s), Some(e)) = (query.start_minute, query.end_minute)
        && s >= e
    {
        return Err(ApiError::BadRequest("start_time must be before end_time".into()));
    }
    if let Some(id) = taxonomy_term_id {
        query.needs.push(id.to_string());
    }
    if let Some(taxonomy) = taxonomy_id {
        let terms = state
            .taxonomy_terms(&TermQuery {
                taxonomy_id: Some(taxonomy),
                parent_id: None,
                page: PageRequest::new(1, PageRequest::MAX_SIZE),
            })
            .await?;
        if terms.items.is_empty() {
            return Err(ApiError::BadRequest(format!("taxonomy_id {taxonomy} has no terms in this directory")));
        }
        query.needs.extend(terms.items.iter().map(|t| t.id.to_string()));
    }
    let proximity = p.parse("proximity", "a distance in metres from 1 to 200000", |v| {
        v.parse::<f64>().ok().filter(|m| m.is_finite() && *m >= 1.0 && *m <= 200_000.0)
    })?;
    if let Some(text) = p.str("postcode") {
        let located = locate_postcode(state, text).await?;
        let radius = proximity.map_or(kith_search::DEFAULT_RADIUS_KM, |m| m / 1000.0);
        let mut near = located.near(radius);
        if proximity.is_none() {
            // Without a proximity, ORUK asks for services whose area holds the postcode;
            // Kith also counts a venue within the default radius as local.
            near.radius_km = kith_search::DEFAULT_RADIUS_KM;
        }
        query.near = Some(near);
    } else if proximity.is_some() {
        return Err(ApiError::BadRequest("proximity needs a postcode to measure from".into()));
    }
    let indexed = query.text.is_some()
        || query.near.is_some()
        || query.minimum_age.is_some()
        || query.maximum_age.is_some()
        || query.day.is_some()
        || query.start_minute.is_some()
        || query.end_minute.is_some()
        || taxonomy_id.is_some();
    Ok(ServiceFilters { query, taxonomy_term_id, indexed })
}

async fn locate_postcode(state: &AppState, text: &str) -> ApiResult<Located> {
    let postcode = Postcode::parse(text).map_err(|e| ApiError::BadRequest(format!("postcode: {e}")))?;
    match state.locate(postcode.as_str()).await {
        Ok(found) => Ok(found),
        Err(LocateError::Store(e)) => Err(e.into()),
        Err(e) => Err(ApiError::BadRequest(format!("postcode: {e}"))),
    }
}

async fn services(State(state): State<AppState>, q: Query<HashMap<String, String>>) -> ApiResult<Response> {
    let p = params(q);
    p.reject_unknown(SERVICE_PARAMS)?;
    let page = p.page()?;
    let minimal = p.boolean("minimal")?;
    let _full = p.boolean("full")?;
    let f = service_filters(&state, &p, page).await?;
    let (items, total) = if f.indexed {
        if !minimal {
            let found = state.find_services_json(&f.query).await?;
            return Ok(Json(paged(found.services, found.total as u64, page)).into_response());
        }
        let found = state.find_services(&f.query).await?;
        (found.services.into_iter().map(|(s, _)| s).collect(), found.total as u64)
    } else {
        let found = state
            .list_services(&ServiceQuery {
                organization_id: f.query.organization_id,
                taxonomy_term_id: f.taxonomy_term_id,
                modified_after: f.query.modified_after,
                status: None,
                page,
            })
            .await?;
        (found.items, found.total)
    };
    if minimal {
        let minimal: Vec<Value> =
            items.iter().map(|s| json!({ "id": s.id, "last_modified": s.last_modified })).collect();
        return Ok(Json(paged(minimal, total, page)).into_response());
    }
    Ok(Json(paged(items, total, page)).into_response())
}

async fn service(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id = Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest(format!("“{id}” is not a service id (a UUID)")))?;
    match state.service(id).await? {
        Some(s) => Ok(Json(s).into_response()),
        None => Err(ApiError::NotFound(format!("there is no service {id}"))),
    }
}

async fn service_at_locations(State(state): State<AppState>, q: Query<HashMap<String, String>>) -> ApiResult<Response> {
    let p = params(q);
    p.reject_unknown(SERVICE_PARAMS)?;
    let page = p.page()?;
    let _full = p.boolean("full")?;
    let f = service_filters(&state, &p, page).await?;
    let start = page.offset();
    let found = state.find_service_at_locations(&f.query, start, page.size as usize).await?;
    let mut entries: Vec<Value> = Vec::new();
    for (service, range) in found.entries {
        let mut nested = service.clone();
        nested.service_at_locations.clear();
        let nested = serde_json::to_value(nested).unwrap_or(Value::Null);
        for sal in service.service_at_locations.get(range).unwrap_or_default() {
            let mut entry = serde_json::to_value(sal)
                .map_err(|e| ApiError::Unavailable(Unavailable(kith_store::StoreError::Database(e.to_string()))))?;
            if let Value::Object(map) = &mut entry {
                map.insert("service".into(), nested.clone());
                map.insert("service_id".into(), json!(service.id));
            }
            entries.push(entry);
        }
    }
    Ok(Json(paged(entries, found.total, page)).into_response())
}

async fn organizations(State(state): State<AppState>, q: Query<HashMap<String, String>>) -> ApiResult<Response> {
    let p = params(q);
    p.reject_unknown(&["page", "per_page", "format", "full_service", "search"])?;
    p.format()?;
    let _ = p.boolean("full_service")?;
    let page = p.page()?;
    Ok(Json(from_page(state.organizations(page).await?)).into_response())
}

async fn organization(State(state): State<AppState>, Path(id): Path<String>) -> ApiResult<Response> {
    let id =
        Uuid::parse_str(&id).map_err(|_| ApiError::BadRequest(format!("“{id}” is not an organization id (a UUID)")))?;
    match state.organization_with_services(id).await? {
        Some(org) => Ok(Json(org).into_response()),
        None => Err(ApiError::NotFound(format!("there is no organization {id}"))),
    }
}

async fn taxonomies(State(state): State<AppState>, q: Query<HashMap<String, String>>) -> ApiResult<Response> {
    let p = params(q);
    p.reject_unknown(&["page", "per_page", "format"])?;
    p.format()?;
    Ok(Json(from_page(state.taxonomies(p.page()?).await?)).into_response())
}

async fn taxonomy_terms(State(state): State<AppState>, q: Query<HashMap<String, String>>) -> ApiResult<Response> {
    let p = params(q);
    p.reject_unknown(&["page", "per_page", "format", "taxonomy_id", "parent_id", "top_only"])?;
    p.format()?;
    let top_only = p.boolean("top_only")?;
    let parent = p.uuid("parent_id")?;
    let query = TermQuery {
        taxonomy_id: p.uuid("taxonomy_id")?,
        parent_id: match (parent, top_only) {
            (Some(id), _) => Some(Some(id)),
            (None, true) => Some(None),
            (None, false) => None,
        },
        page: p.page()?,
    };
    Ok(Json(from_page(state.taxonomy_terms(&query).await?)).into_response())
}
