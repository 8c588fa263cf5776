//! What pages show of a service, worded for the person reading: opening times in plain
//! English, cost, who it is for, how to get there, and when it was last checked.

use chrono::{DateTime, NaiveDateTime, Utc};
use kith_domain::hsds::{Location, Service};
use kith_domain::opening;
use kith_domain::validate::is_web_url;
use kith_search::Hit;

/// Listings not verified for this long are marked as possibly out of date.
const STALE_AFTER_DAYS: i64 = 365;
const KM_PER_MILE: f64 = 1.609_344;

/// "Last verified 3 March 2026", or that nobody has checked it yet.
#[derive(Debug, Clone)]
pub struct Verified {
    pub text: String,
    /// ISO date for `<time datetime>`, when there is one.
    pub iso: Option<String>,
    pub stale: bool,
}

impl Verified {
    pub fn of(s: &Service, now: DateTime<Utc>) -> Verified {
        match s.last_verified_at {
            Some(at) => Verified {
                text: at.format("%-d %B %Y").to_string(),
                iso: Some(at.format("%Y-%m-%d").to_string()),
                stale: (now - at).num_days() > STALE_AFTER_DAYS,
            },
            None => Verified { text: "not yet verified".into(), iso: None, stale: true },
        }
    }
}

/// One result in a list, or one entry on the shortlist.
#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    pub name: String,
    pub organisation: Option<String>,
    pub summary: Option<String>,
    /// "0.4 miles away", "Serves all of Bristol", "Online or by phone".
    pub place: Option<String>,
    /// The next opening; never for a service that is not running.
    pub next: Option<String>,
    /// "Temporarily closed", "Closed": shown in place of the next opening.
    pub closed: Option<&'static str>,
    pub cost: String,
    pub attending: String,
    pub verified: Verified,
    pub in_shortlist: bool,
    /// Run by a group that takes referrals through Kith (it has an account); otherwise a
    /// person can only be signposted to it.
    pub takes_referrals: bool,
    /// Why it ranked where it did, when the search was asked to explain.
    pub why: Option<String>,
}

impl Card {
    pub fn new(s: &Service, hit: Option<&Hit>, now: DateTime<Utc>, in_shortlist: bool) -> Card {
        let local = opening::uk_local(now);
        let place = hit.and_then(|h| match (h.distance_km, h.covers_area) {
            (Some(km), false) => Some(miles_away(km)),
            (Some(km), true) if km <= 1.0 => Some(miles_away(km)),
            (_, true) => Some(
                s.service_areas
                    .iter()
                    .find_map(|a| a.name.as_deref())
                    .map_or_else(|| "Covers your area".to_owned(), |name| format!("Serves all of {name}")),
            ),
            (None, false) => None,
        });
        let place = place.or_else(|| s.service_at_locations.is_empty().then(|| "Online or by phone".to_owned()));
        Card {
            id: s.id.to_string(),
            name: s.name.clone(),
            organisation: s.organization.as_ref().map(|o| o.name.clone()),
            summary: s.description.as_deref().map(|d| summary(d, 200)),
            place,
            next: next_opening(s, local),
            closed: closed_label(s.status),
            cost: cost(s),
            attending: attending(s),
            verified: Verified::of(s, now),
            in_shortlist,
            takes_referrals: false,
            why: None,
        }
    }
}

fn miles_away(km: f64) -> String {
    let miles = km / KM_PER_MILE;
    if miles < 0.1 { "Less than 0.1 miles away".into() } else { format!("{miles:.1} miles away") }
}

/// What to say in place of opening times for a service that is not running.
pub fn closed_label(status: kith_domain::ServiceStatus) -> Option<&'static str> {
    match status {
        kith_domain::ServiceStatus::Active => None,
        kith_domain::ServiceStatus::TemporarilyClosed => Some("Temporarily closed"),
        kith_domain::ServiceStatus::Inactive | kith_domain::ServiceStatus::Defunct => Some("Closed"),
    }
}

/// "Open now", "Tomorrow at 18:30", … from the service's and its venues' schedules.
/// Nothing for a service that is closed, whatever its schedules say.
pub fn next_opening(s: &Service, local_now: NaiveDateTime) -> Option<String> {
    if closed_label(s.status).is_some() {
        return None;
    }
    let mut schedules = s.schedules.clone();
    for sal in &s.service_at_locations {
        schedules.extend(sal.schedules.iter().cloned());
        if let Some(l) = &sal.location {
            schedules.extend(l.schedules.iter().cloned());
        }
    }
    opening::next_opening(&schedules, local_now).map(|at| opening::when_words(at, local_now))
}

/// The first sentences of a description, up to `max` characters, cut at a word.
pub fn summary(text: &str, max: usize) -> String {
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if text.chars().count() <= max {
        return text;
    }
    let cut: String = text.chars().take(max).collect();
    let at = cut.rfind(". ").map(|i| i + 1).or_else(|| cut.rfind(' ')).unwrap_or(cut.len());
    let mut out = cut[..at].trim_end().to_owned();
    if !out.ends_with('.') {
        out.push('…');
    }
    out
}

fn money(amount: f64) -> String {
    if amount.fract() == 0.0 { format!("£{amount:.0}") } else { format!("£{amount:.2}") }
}

/// "Free", "£3 per session", or what the listing says about fees.
pub fn cost(s: &Service) -> String {
    if kith_search::facts::is_free(s) {
        return "Free".into();
    }
    let options: Vec<String> = cost_lines(s);
    if let Some(first) = options.first() {
        return first.clone();
    }
    s.fees_description.clone().or_else(|| s.fees.clone()).unwrap_or_else(|| "Ask about cost".into())
}

pub fn cost_lines(s: &Service) -> Vec<String> {
    let mut lines: Vec<String> = s
        .cost_options
        .iter()
        .filter_map(|c| {
            let amount = c.amount.map(|a| if a == 0.0 { "Free".to_owned() } else { money(a) });
            let described = c.amount_description.clone().filter(|d| !d.trim().is_empty());
            let mut text = described.or(amount)?;
            if let Some(option) = c.option.as_deref().filter(|o| !text.to_lowercase().contains(&o.to_lowercase())) {
                text = format!("{text} ({option})");
            }
            Some(text)
        })
        .collect();
    if lines.is_empty() {
        lines.extend(s.fees_description.clone().or_else(|| s.fees.clone()));
    }
    lines
}

/// "In person, online", from how the service says people attend.
pub fn attending(s: &Service) -> String {
    let facts = kith_search::facts::facts(s);
    facts.attending.iter().map(|a| kith_search::attending_label(*a)).collect::<Vec<_>>().join(", ")
}

/// "Ages 18 and over", "Ages 5 to 11", or nothing when anyone can come.
pub fn ages(s: &Service) -> Option<String> {
    let whole = |a: f64| a.round() as i64;
    match (s.minimum_age, s.maximum_age) {
        (Some(min), Some(max)) => Some(format!("Ages {} to {}", whole(min), whole(max))),
        (Some(min), None) if min > 0.0 => Some(format!("Ages {} and over", whole(min))),
        (None, Some(max)) => Some(format!("Ages up to {}", whole(max))),
        _ => None,
    }
}

/// A place the service runs, with how to get there.
#[derive(Debug, Clone)]
pub struct Venue {
    pub name: String,
    pub address: Vec<String>,
    pub directions: Option<String>,
    pub transport: Option<String>,
    pub accessibility: Vec<String>,
    pub opening: Vec<String>,
}

impl Venue {
    pub fn new(l: &Location, extra_schedules: &[kith_domain::hsds::Schedule]) -> Venue {
        let mut address = Vec::new();
        if let Some(a) = l.addresses.first() {
            address.extend([a.address_1.clone()]);
            address.extend(a.address_2.clone());
            address.push(a.city.clone());
            address.push(a.postal_code.clone());
        }
        let address: Vec<String> = address.into_iter().filter(|l| !l.trim().is_empty()).collect();
        let directions = match (l.latitude, l.longitude) {
            (Some(lat), Some(lon)) => Some(format!(
                "https://www.openstreetmap.org/directions?engine=fossgis_osrm_foot&route=%3B{lat:.5}%2C{lon:.5}"
            )),
            _ => None,
        };
        let opening = extra_schedules.iter().chain(&l.schedules).filter_map(opening::describe).collect();
        Venue {
            name: l.name.clone().unwrap_or_else(|| address.first().cloned().unwrap_or_default()),
            address,
            directions,
            transport: l.transportation.clone(),
            accessibility: l
                .accessibility
                .iter()
                .filter_map(|a| {
                    let parts: Vec<String> = [a.description.clone(), a.details.clone()].into_iter().flatten().collect();
                    (!parts.is_empty()).then(|| parts.join(": "))
                })
                .collect(),
            opening,
        }
    }
}

/// A phone number with its `tel:` link.
#[derive(Debug, Clone)]
pub struct PhoneLine {
    pub number: String,
    pub tel: String,
    pub note: Option<String>,
}

pub fn phones(s: &Service) -> Vec<PhoneLine> {
    let mut out: Vec<PhoneLine> = Vec::new();
    let org_phones = s.organization.iter().flat_map(|o| o.phones.iter());
    for p in s.phones.iter().chain(s.contacts.iter().flat_map(|c| c.phones.iter())).chain(org_phones) {
        let tel: String = p.number.chars().filter(|c| c.is_ascii_digit() || *c == '+').collect();
        if tel.is_empty() || out.iter().any(|o| o.tel == tel) {
            continue;
        }
        out.push(PhoneLine { number: p.number.clone(), tel, note: p.description.clone() });
    }
    out
}

/// Everything the service page shows.
#[derive(Debug, Clone)]
pub struct Detail {
    pub card: Card,
    pub paragraphs: Vec<String>,
    pub alert: Option<String>,
    pub organisation_url: Option<String>,
    pub opening: Vec<String>,
    pub venues: Vec<Venue>,
    pub costs: Vec<String>,
    pub who: Vec<String>,
    pub languages: Vec<String>,
    pub areas: Vec<String>,
    pub phones: Vec<PhoneLine>,
    pub email: Option<String>,
    pub website: Option<String>,
    pub contacts: Vec<String>,
    pub how_to_apply: Option<String>,
    pub verified_by: Option<String>,
}

impl Detail {
    pub fn new(s: &Service, now: DateTime<Utc>, in_shortlist: bool) -> Detail {
        let paragraphs = s
            .description
            .as_deref()
            .unwrap_or("")
            .split("\n\n")
            .map(|p| p.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|p| !p.is_empty())
            .collect();
        let mut who: Vec<String> = ages(s).into_iter().collect();
        who.extend(s.eligibility_description.clone());
        let venues = s
            .service_at_locations
            .iter()
            .filter_map(|sal| sal.location.as_ref().map(|l| Venue::new(l, &sal.schedules)))
            .collect();
        let contacts = s
            .contacts
            .iter()
            .filter_map(|c| {
                let parts: Vec<String> = [c.name.clone(), c.title.clone()].into_iter().flatten().collect();
                (!parts.is_empty()).then(|| parts.join(", "))
            })
            .collect();
        Detail {
            card: Card::new(s, None, now, in_shortlist),
            paragraphs,
            alert: s.alert.clone(),
            // Only web addresses become links, whatever an older import stored.
            organisation_url: s.organization.as_ref().and_then(|o| o.website.clone()).filter(|u| is_web_url(u)),
            opening: s.schedules.iter().filter_map(opening::describe).collect(),
            venues,
            costs: cost_lines(s),
            who,
            languages: s.languages.iter().filter_map(|l| l.name.clone().or_else(|| l.code.clone())).collect(),
            areas: s.service_areas.iter().filter_map(|a| a.name.clone().or_else(|| a.description.clone())).collect(),
            phones: phones(s),
            email: s.email.clone().or_else(|| s.organization.as_ref().and_then(|o| o.email.clone())),
            website: s.url.clone().filter(|u| is_web_url(u)),
            contacts,
            how_to_apply: s.application_process.clone(),
            verified_by: s.last_verified_by.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summaries_cut_at_a_sentence_or_word() {
        assert_eq!(summary("Short.", 200), "Short.");
        assert_eq!(summary("One two. Three four five six", 15), "One two.");
        assert_eq!(summary("Alpha beta gamma delta", 12), "Alpha beta…");
    }

    #[test]
    fn costs_say_it_once() {
        let mut s = Service::new(uuid::Uuid::nil(), "Lunch club", kith_domain::ServiceStatus::Active);
        s.cost_options.push(kith_domain::hsds::CostOption {
            id: uuid::Uuid::nil(),
            service_id: None,
            valid_from: None,
            valid_to: None,
            option: Some("Per session".into()),
            currency: Some("GBP".into()),
            amount: Some(5.0),
            amount_description: Some("£5 per session".into()),
            attributes: vec![],
            metadata: vec![],
        });
        assert_eq!(cost(&s), "£5 per session");
        s.cost_options[0].amount_description = None;
        assert_eq!(cost(&s), "£5 (Per session)");
    }

    #[test]
    fn distances_read_in_miles() {
        assert_eq!(miles_away(1.609_344), "1.0 miles away");
        assert_eq!(miles_away(0.05), "Less than 0.1 miles away");
    }
}
