//! The search page: where the person is, what they need, and filters; results with
//! distance or "covers your area", next opening, cost and when the listing was last
//! verified; facet counts, paging, and empty states that say what to try next.

use super::form::{Fields, query_string};
use super::view::Card;
use super::{Layout, PageError, render};
use crate::AppState;
use askama::Template;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use kith_app::locate::LocateError;
use kith_search::{Attending, SearchQuery};
use kith_store::{PageRequest, TermQuery};

const PAGE_SIZE: usize = 10;
/// The distances offered, in miles; the default is about the 5 km of a walk or short bus ride.
const MILES: [u32; 6] = [1, 3, 5, 10, 25, 50];
const DEFAULT_MILES: u32 = 3;
const MAX_TEXT: usize = 200;
const MAX_WHERE: usize = 100;
const ACCESS: [(&str, &str); 4] = [
    ("step_free", "Step-free access"),
    ("accessible_toilet", "Accessible toilet"),
    ("hearing_loop", "Hearing loop"),
    ("blue_badge_parking", "Blue Badge parking"),
];

/// A checkbox or radio choice, with how many results it would give.
#[derive(Debug, Clone)]
pub struct Chip {
    pub value: String,
    pub label: String,
    pub checked: bool,
    pub count: Option<u64>,
}

#[derive(Debug, Clone)]
pub struct Link {
    pub href: String,
    pub text: String,
}

/// A problem with one field, linked from the error summary.
#[derive(Debug, Clone)]
pub struct FieldError {
    pub field: &'static str,
    pub message: String,
    pub suggestions: Vec<Link>,
}

/// What was typed and chosen, to show back in the form.
#[derive(Debug, Clone, Default)]
pub struct Form {
    pub q: String,
    pub place: String,
    pub miles: u32,
    pub needs: Vec<String>,
    pub free: bool,
    /// Show temporarily closed services too (they are left out unless asked for).
    pub closed: bool,
    /// Only services whose group takes referrals through Kith.
    pub referrals: bool,
    pub open: String,
    pub age: String,
    pub access: Vec<String>,
    pub lang: String,
    pub attend: Vec<String>,
    pub page: usize,
    /// Say how the words were read and why each result ranked where it did (for
    /// curators checking the ranking; linked from the curation pages).
    pub explain: bool,
}

impl Form {
    fn read(f: &Fields, errors: &mut Vec<FieldError>) -> Form {
        let mut error = |field, message: &str| {
            errors.push(FieldError { field, message: message.to_owned(), suggestions: Vec::new() });
        };
        let q = f.get("q").to_owned();
        if q.chars().count() > MAX_TEXT {
            error("q", &format!("What the person needs must be {MAX_TEXT} characters or fewer"));
        }
        let place = f.get("where").to_owned();
        if place.chars().count() > MAX_WHERE {
            error("where", &format!("Postcode or place must be {MAX_WHERE} characters or fewer"));
        }
        let miles = match f.get("miles") {
            "" => DEFAULT_MILES,
            m => match m.parse::<u32>() {
                Ok(m) if MILES.contains(&m) => m,
                _ => {
                    error("miles", "Choose a distance from the list");
                    DEFAULT_MILES
                }
            },
        };
        let age = f.get("age").to_owned();
        if !age.is_empty() && !age.parse::<u32>().is_ok_and(|a| a <= 120) {
            error("age", "Enter age as a whole number of years, like 67");
        }
        let open = f.get("open").to_owned();
        if !["", "week", "evenings"].contains(&open.as_str()) {
            error("open", "Choose when the service should be open from the list");
        }
        let access: Vec<String> = f.all("access").into_iter().filter(|a| ACCESS.iter().any(|(v, _)| v == a)).collect();
        let attend: Vec<String> = f.all("attend").into_iter().filter(|a| Attending::parse(a).is_some()).collect();
        let page = match f.get("page") {
            "" => 1,
            p => p.parse::<usize>().ok().filter(|p| (1..=1000).contains(p)).unwrap_or_else(|| {
                error("page", "The page number in this link is not right; start from the first page");
                1
            }),
        };
        Form {
            q,
            place,
            miles,
            needs: f.all("need"),
            free: f.has("free"),
            closed: f.get("closed") == "yes",
            referrals: f.get("referrals") == "yes",
            open,
            age,
            access,
            lang: f.get("lang").to_owned(),
            attend,
            page,
            explain: f.get("explain") == "yes",
        }
    }

    fn searched(&self) -> bool {
        !self.q.is_empty() || !self.place.is_empty() || !self.needs.is_empty()
    }

    fn has_filters(&self) -> bool {
        self.free
            || self.closed
            || self.referrals
            || !self.open.is_empty()
            || !self.age.is_empty()
            || !self.access.is_empty()
            || !self.lang.is_empty()
            || !self.attend.is_empty()
    }

    /// The query string of this search with some fields changed.
    pub fn href(&self, change: impl FnOnce(&mut Form)) -> String {
        let mut f = self.clone();
        change(&mut f);
        let mut pairs: Vec<(&str, String)> = vec![("q", f.q.clone()), ("where", f.place.clone())];
        if f.miles != DEFAULT_MILES {
            pairs.push(("miles", f.miles.to_string()));
        }
        pairs.extend(f.needs.iter().map(|n| ("need", n.clone())));
        if f.free {
            pairs.push(("free", "yes".into()));
        }
        if f.closed {
            pairs.push(("closed", "yes".into()));
        }
        if f.referrals {
            pairs.push(("referrals", "yes".into()));
        }
        pairs.push(("open", f.open.clone()));
        pairs.push(("age", f.age.clone()));
        pairs.extend(f.access.iter().map(|a| ("access", a.clone())));
        pairs.push(("lang", f.lang.clone()));
        pairs.extend(f.attend.iter().map(|a| ("attend", a.clone())));
        if f.page > 1 {
            pairs.push(("page", f.page.to_string()));
        }
        if f.explain {
            pairs.push(("explain", "yes".into()));
        }
        format!("/?{}", query_string(&pairs))
    }
}

#[derive(Debug, Clone)]
pub struct Results {
    pub heading: String,
    pub total: usize,
    pub cards: Vec<Card>,
    pub previous: Option<String>,
    pub next: Option<String>,
    pub page: usize,
    pub pages: usize,
    /// For an empty result: a wider search, and what else to try.
    pub wider: Option<Link>,
    pub hints: Vec<String>,
    pub clear_filters: Option<String>,
    /// With `explain=yes`: how the query was read.
    pub reading: Vec<String>,
    /// The search index is still being prepared after a start: services may be missing.
    pub preparing: bool,
}

#[derive(Template)]
#[template(path = "search.html")]
struct SearchPage {
    layout: Layout,
    form: Form,
    miles: Vec<Chip>,
    needs: Vec<Chip>,
    access: Vec<Chip>,
    attend: Vec<Chip>,
    free: Chip,
    open: Vec<Chip>,
    errors: Vec<FieldError>,
    results: Option<Results>,
    /// Where the shortlist buttons return to.
    back: String,
    /// `?from=…` for links to service pages, so their "Back to search" returns here.
    from: String,
}

form_errors!(SearchPage);

fn need_value(term: &kith_domain::hsds::TaxonomyTerm) -> String {
    term.code.as_deref().map_or_else(|| term.id.to_string(), str::to_lowercase)
}

pub async fn page(State(state): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    match search(&state, &headers, raw.as_deref()).await {
        Ok(r) => r,
        Err(e) => e.into_page(&headers),
    }
}

async fn search(state: &AppState, headers: &HeaderMap, raw: Option<&str>) -> Result<Response, PageError> {
    let fields = Fields::parse(raw);
    let mut errors = Vec::new();
    let form = Form::read(&fields, &mut errors);
    let shortlist = super::shortlist::Shortlist::from_headers(headers);

    let terms = state
        .taxonomy_terms(&TermQuery { taxonomy_id: None, parent_id: Some(None), page: PageRequest::new(1, 40) })
        .await?;

    let mut near = None;
    if errors.is_empty() && !form.place.is_empty() {
        match state.locate(&form.place).await {
            Ok(place) => near = Some((place.near(f64::from(form.miles) * 1.609_344), place.label())),
            Err(e) if e.is_input() => errors.push(where_error(&form, &e)),
            Err(e) => return Err(e.into()),
        }
    }

    let mut results = None;
    let mut facets = None;
    if errors.is_empty() && form.searched() {
        let referring = state.organizations_taking_referrals().await?;
        let query = SearchQuery {
            text: Some(form.q.clone()).filter(|q| !q.is_empty()),
            needs: form.needs.clone(),
            near: near.as_ref().map(|(n, _)| n.clone()),
            free: form.free,
            include_closed: form.closed,
            minimum_age: form.age.parse().ok(),
            maximum_age: form.age.parse().ok(),
            evenings: form.open == "evenings",
            open_weekly: form.open == "week",
            attending: form.attend.iter().filter_map(|a| Attending::parse(a)).collect(),
            languages: Some(form.lang.to_lowercase()).filter(|l| !l.is_empty()).into_iter().collect(),
            accessibility: form.access.clone(),
            organizations: form.referrals.then(|| referring.clone()),
            offset: (form.page - 1) * PAGE_SIZE,
            limit: PAGE_SIZE,
            ..SearchQuery::default()
        };
        let found = state.find_services(&query).await?;
        let now = state.clock.now();
        let mut cards: Vec<(Card, Option<uuid::Uuid>)> = found
            .services
            .iter()
            .map(|(s, hit)| {
                let mut card = Card::new(s, Some(hit), now, shortlist.contains(s.id));
                if form.explain {
                    card.why = Some(kith_search::explain_hit(hit, query.blend));
                }
                (card, s.organization_id)
            })
            .collect();
        super::mark_referrals(cards.iter_mut().map(|(c, o)| (c, *o)), &referring);
        let cards = cards.into_iter().map(|(c, _)| c).collect();
        let mut found_results =
            results_for(&form, found.total, cards, near.as_ref().map(|(_, label)| label.as_str()), &terms.items);
        if form.explain && query.text.is_some() {
            found_results.reading = kith_search::explain_reading(&found.reading);
        }
        found_results.preparing = found.preparing;
        results = Some(found_results);
        facets = Some(found.facets);
    }

    let count = |key: &str, list: Option<&Vec<(String, u64)>>| {
        list.map(|l| l.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n))
    };
    let needs = terms
        .items
        .iter()
        .map(|t| {
            let value = need_value(t);
            Chip {
                checked: form.needs.contains(&value),
                count: count(&value, facets.as_ref().map(|f| &f.needs)),
                label: t.name.clone(),
                value,
            }
        })
        .collect();
    let access = ACCESS
        .iter()
        .map(|(v, label)| Chip {
            value: (*v).into(),
            label: (*label).into(),
            checked: form.access.iter().any(|a| a == v),
            count: count(v, facets.as_ref().map(|f| &f.accessibility)),
        })
        .collect();
    let attend = Attending::ALL
        .iter()
        .map(|a| Chip {
            value: a.as_str().into(),
            label: kith_search::attending_label(*a).into(),
            checked: form.attend.iter().any(|x| x == a.as_str()),
            count: count(a.as_str(), facets.as_ref().map(|f| &f.attending)),
        })
        .collect();
    let free =
        Chip { value: "yes".into(), label: "Free".into(), checked: form.free, count: facets.as_ref().map(|f| f.free) };
    let open = [("", "Any time"), ("week", "Open this week"), ("evenings", "Evenings (after 5:30pm)")]
        .iter()
        .map(|(v, label)| Chip {
            value: (*v).into(),
            label: (*label).into(),
            checked: form.open == *v,
            count: if *v == "evenings" { facets.as_ref().map(|f| f.evenings) } else { None },
        })
        .collect();
    let miles = MILES
        .iter()
        .map(|m| Chip {
            value: m.to_string(),
            label: if *m == 1 { "1 mile".into() } else { format!("{m} miles") },
            checked: form.miles == *m,
            count: None,
        })
        .collect();

    let title = match &results {
        Some(r) if errors.is_empty() => format!("{} – Kith", r.heading),
        _ if !errors.is_empty() => "Error: Find a local service – Kith".into(),
        _ => "Find a local service – Kith".into(),
    };
    let status = if errors.is_empty() { StatusCode::OK } else { StatusCode::BAD_REQUEST };
    let back = form.href(|_| {});
    let from = format!("?{}", query_string(&[("from", back.trim_start_matches("/?").to_owned())]));
    let page = SearchPage {
        layout: Layout::new(title, headers),
        form,
        miles,
        needs,
        access,
        attend,
        free,
        open,
        errors,
        results,
        back,
        from,
    };
    Ok(render(status, &page))
}

fn where_error(form: &Form, e: &LocateError) -> FieldError {
    let suggestions = e
        .suggestions()
        .into_iter()
        .take(3)
        .map(|s| Link {
            href: form.href(|f| {
                f.place = s.clone();
                f.page = 1;
            }),
            text: s,
        })
        .collect();
    FieldError { field: "where", message: e.headline(), suggestions }
}

fn results_for(
    form: &Form,
    total: usize,
    cards: Vec<Card>,
    place: Option<&str>,
    terms: &[kith_domain::hsds::TaxonomyTerm],
) -> Results {
    let mut heading = match total {
        1 => "1 service".to_owned(),
        n => format!("{n} services"),
    };
    if !form.q.is_empty() {
        heading.push_str(&format!(" for “{}”", form.q));
    }
    let need_names: Vec<&str> =
        terms.iter().filter(|t| form.needs.contains(&need_value(t))).map(|t| t.name.as_str()).collect();
    if !need_names.is_empty() {
        heading.push_str(&format!(" in {}", need_names.join(", ")));
    }
    if let Some(place) = place {
        heading.push_str(&format!(" near {place}"));
    }
    let pages = total.div_ceil(PAGE_SIZE).min(1000);
    let previous = (form.page > 1).then(|| form.href(|f| f.page -= 1));
    let next = (form.page < pages).then(|| form.href(|f| f.page += 1));

    let mut wider = None;
    let mut hints = Vec::new();
    if total == 0 {
        if let (Some(_), Some(m)) = (place, MILES.iter().find(|m| **m > form.miles)) {
            wider = Some(Link {
                href: form.href(|f| {
                    f.miles = *m;
                    f.page = 1;
                }),
                text: format!("Search within {m} miles instead"),
            });
        }
        let words = kith_search::vocabulary::words(&form.q);
        if !words.is_empty() && words.iter().all(|w| kith_search::vocabulary::is_function_word(w)) {
            hints.push(
                "Words like “and”, “for” and “I” are not searched on their own: say what the person needs, like “lonely” or “can’t pay the bills”."
                    .into(),
            );
        } else if !form.q.is_empty() {
            hints.push("Check the spelling, or use fewer or different words, like “lonely” or “walking”.".into());
        }
        if !form.needs.is_empty() && !form.q.is_empty() {
            hints.push("Untick the needs to search all services.".into());
        }
    }
    let clear_filters = (total == 0 && form.has_filters()).then(|| {
        form.href(|f| {
            f.free = false;
            f.closed = false;
            f.referrals = false;
            f.open.clear();
            f.age.clear();
            f.access.clear();
            f.lang.clear();
            f.attend.clear();
            f.page = 1;
        })
    });
    Results {
        heading,
        total,
        cards,
        previous,
        next,
        page: form.page,
        pages,
        wider,
        hints,
        clear_filters,
        reading: Vec::new(),
        preparing: false,
    }
}
