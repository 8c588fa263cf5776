//! The rules a directory record must meet before Kith stores it.
//!
//! Types already enforce shape (a UUID is a UUID, a status is one of four). These are
//! the rules types cannot carry: a name that is not blank, an email that can receive
//! mail, an age range that is a range. Each problem names the JSON path of the field and
//! says what to do about it.

use crate::hsds::{Address, Attribute, Contact, Location, Organization, Phone, Schedule, Service, TaxonomyTerm};
use serde_json::Value;
use std::fmt;

/// The longest text Kith accepts in any one field. Generous for a description, and
/// small enough that a runaway value cannot fill the database or a results page.
pub const MAX_TEXT_CHARS: usize = 50_000;
/// The longest string Kith reads at all. Longer strings (a pasted image, a runaway
/// export) are rejected before a record is even parsed. Published HTML may exceed
/// [`MAX_TEXT_CHARS`] and still fit once its markup is gone, so text is checked again
/// after conversion.
pub const MAX_RAW_CHARS: usize = 1_000_000;
/// The longest name Kith accepts.
pub const MAX_NAME_CHARS: usize = 500;
/// The oldest age that makes sense as an eligibility limit.
pub const MAX_AGE: f64 = 130.0;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// The record is kept; the problem is reported.
    Warning,
    /// The record is not stored.
    Error,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Where the problem is, as a JSON path such as `$[3].contacts[0].email`.
    pub path: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Collects problems while walking a record, tracking the JSON path.
#[derive(Debug)]
pub struct Checker {
    path: Vec<String>,
    pub problems: Vec<Problem>,
}

impl Checker {
    pub fn new(root: impl Into<String>) -> Self {
        Checker { path: vec![root.into()], problems: Vec::new() }
    }

    fn here(&self, field: &str) -> String {
        let mut path = self.path.concat();
        if !field.is_empty() {
            path.push('.');
            path.push_str(field);
        }
        path
    }

    fn error(&mut self, field: &str, message: impl Into<String>) {
        let path = self.here(field);
        self.problems.push(Problem { path, message: message.into(), severity: Severity::Error });
    }

    fn warn(&mut self, field: &str, message: impl Into<String>) {
        let path = self.here(field);
        self.problems.push(Problem { path, message: message.into(), severity: Severity::Warning });
    }

    fn within<F: FnOnce(&mut Self)>(&mut self, segment: String, f: F) {
        self.path.push(segment);
        f(self);
        self.path.pop();
    }

    fn each<T, F: FnMut(&mut Self, &T)>(&mut self, field: &str, items: &[T], mut f: F) {
        for (i, item) in items.iter().enumerate() {
            self.within(format!(".{field}[{i}]"), |c| f(c, item));
        }
    }

    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    fn name(&mut self, field: &str, value: &str, what: &str) {
        if value.trim().is_empty() {
            self.error(field, format!("the {what} has no name; give it the name people know it by"));
        } else if value.chars().count() > MAX_NAME_CHARS {
            self.error(
                field,
                format!(
                    "the name is longer than {MAX_NAME_CHARS} characters; shorten it and put detail in the description"
                ),
            );
        }
    }

    fn email(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value
            && !is_email(value)
        {
            self.error(
                field,
                format!("{value:?} is not an email address; write it as name@example.org, or leave it out"),
            );
        }
    }

    fn url(&mut self, field: &str, value: Option<&str>) {
        if let Some(value) = value
            && !is_web_url(value)
        {
            self.error(
                    field,
                    format!("{value:?} is not a full web address; write it with http:// or https://, for example https://example.org/page"),
                );
        }
    }

    fn attributes(&mut self, attributes: &[Attribute]) {
        self.each("attributes", attributes, |c, a| {
            if a.term_id().is_none() && a.value.is_none() {
                c.warn("", "this attribute links to no taxonomy term and has no value, so it says nothing");
            }
            if let Some(term) = &a.taxonomy_term {
                c.within(".taxonomy_term".into(), |c| c.taxonomy_term(term));
            }
        });
    }

    fn phones(&mut self, phones: &[Phone]) {
        self.each("phones", phones, |c, p| {
            if p.number.trim().is_empty() {
                c.error("number", "the phone number is empty; give the number or leave the phone out");
            }
        });
    }

    fn contacts(&mut self, contacts: &[Contact]) {
        self.each("contacts", contacts, |c, contact| {
            c.email("email", contact.email.as_deref());
            c.phones(&contact.phones);
            c.attributes(&contact.attributes);
        });
    }

    fn schedules(&mut self, schedules: &[Schedule]) {
        self.each("schedules", schedules, |c, s| c.schedule(s));
    }

    fn schedule(&mut self, s: &Schedule) {
        if let Some(byday) = &s.byday {
            for day in byday.split(',').map(str::trim).filter(|d| !d.is_empty()) {
                if parse_byday(day).is_none() {
                    c_error_byday(self, day);
                }
            }
        }
        if let (Some(opens), Some(closes)) = (s.opens_at, s.closes_at)
            && closes < opens
        {
            self.warn("closes_at", format!("closes at {closes}, before it opens at {opens}; check the times"));
        }
        if let (Some(from), Some(to)) = (s.valid_from, s.valid_to)
            && to < from
        {
            self.error("valid_to", format!("valid_to {to} is before valid_from {from}"));
        }
        self.url("schedule_link", s.schedule_link.as_deref());
        self.attributes(&s.attributes);
    }

    fn address(&mut self, a: &Address) {
        if a.address_1.trim().is_empty() {
            self.warn("address_1", "the first line of the address is empty");
        }
        self.attributes(&a.attributes);
    }

    pub fn location(&mut self, l: &Location) {
        if let Some(name) = &l.name
            && name.chars().count() > MAX_NAME_CHARS
        {
            self.error("name", format!("the name is longer than {MAX_NAME_CHARS} characters"));
        }
        match (l.latitude, l.longitude) {
            (Some(lat), Some(lon)) => {
                if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
                    self.warn(
                        "latitude",
                        format!("({lat}, {lon}) is not a place on Earth; the location is kept but will not be found by distance"),
                    );
                }
            }
            (Some(_), None) | (None, Some(_)) => {
                self.warn("latitude", "only one of latitude and longitude is given; give both or neither");
            }
            (None, None) => {}
        }
        self.url("url", l.url.as_deref());
        self.each("addresses", &l.addresses, |c, a| c.address(a));
        self.contacts(&l.contacts);
        self.phones(&l.phones);
        self.schedules(&l.schedules);
        self.each("accessibility", &l.accessibility, |c, a| c.url("url", a.url.as_deref()));
        self.attributes(&l.attributes);
    }

    pub fn organization(&mut self, o: &Organization) {
        self.name("name", &o.name, "organisation");
        self.email("email", o.email.as_deref());
        self.url("website", o.website.as_deref());
        self.contacts(&o.contacts);
        self.phones(&o.phones);
        self.each("locations", &o.locations, |c, l| c.location(l));
        self.each("programs", &o.programs, |c, p| c.name("name", &p.name, "programme"));
        self.each("services", &o.services, |c, s| c.service(s));
        self.attributes(&o.attributes);
    }

    pub fn service(&mut self, s: &Service) {
        self.name("name", &s.name, "service");
        self.email("email", s.email.as_deref());
        self.email("assurer_email", s.assurer_email.as_deref());
        self.url("url", s.url.as_deref());
        for (field, age) in [("minimum_age", s.minimum_age), ("maximum_age", s.maximum_age)] {
            if let Some(age) = age
                && !(0.0..=MAX_AGE).contains(&age)
            {
                self.error(field, format!("{age} is not an age; use a number from 0 to {MAX_AGE}"));
            }
        }
        if let (Some(min), Some(max)) = (s.minimum_age, s.maximum_age)
            && min > max
        {
            self.error("maximum_age", format!("the maximum age {max} is below the minimum age {min}"));
        }
        self.phones(&s.phones);
        self.schedules(&s.schedules);
        self.contacts(&s.contacts);
        self.each("service_at_locations", &s.service_at_locations, |c, sal| {
            if sal.location_id.is_none() && sal.location.is_none() {
                c.error("location_id", "a service at a location needs a location_id or a nested location");
            }
            c.contacts(&sal.contacts);
            c.phones(&sal.phones);
            c.schedules(&sal.schedules);
            if let Some(location) = &sal.location {
                c.within(".location".into(), |c| c.location(location));
            }
        });
        self.each("required_documents", &s.required_documents, |c, d| c.url("uri", d.uri.as_deref()));
        if let Some(org) = &s.organization {
            self.within(".organization".into(), |c| c.organization(org));
        }
        if let Some(program) = &s.program {
            self.within(".program".into(), |c| c.name("name", &program.name, "programme"));
        }
        self.attributes(&s.attributes);
    }

    pub fn taxonomy_term(&mut self, t: &TaxonomyTerm) {
        self.name("name", &t.name, "taxonomy term");
        if t.parent_id == Some(t.id) {
            self.error("parent_id", "a term cannot be its own parent");
        }
    }
}

fn c_error_byday(c: &mut Checker, day: &str) {
    c.error(
        "byday",
        format!(
            "{day:?} is not a day; use MO, TU, WE, TH, FR, SA or SU, optionally with a week number such as 1MO or -1FR"
        ),
    );
}

/// Parses one `byday` entry: an optional signed ordinal (1 to 5) and a two-letter day.
pub fn parse_byday(s: &str) -> Option<(Option<i8>, crate::hsds::Weekday)> {
    use crate::hsds::Weekday::*;
    let s = s.trim();
    if s.len() < 2 || !s.is_ascii() {
        return None;
    }
    let (ordinal, day) = s.split_at(s.len() - 2);
    let day = match day.to_ascii_uppercase().as_str() {
        "MO" => MO,
        "TU" => TU,
        "WE" => WE,
        "TH" => TH,
        "FR" => FR,
        "SA" => SA,
        "SU" => SU,
        _ => return None,
    };
    if ordinal.is_empty() {
        return Some((None, day));
    }
    let n: i8 = ordinal.trim_start_matches('+').parse().ok()?;
    (n != 0 && (-5..=5).contains(&n)).then_some((Some(n), day))
}

/// A deliberately plain check: one `@`, something before it, a dotted domain after it,
/// and no spaces. It accepts every address that can receive mail and rejects the
/// mistakes people make ("email-example_com", "call us").
pub fn is_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && local.len() <= 64
        && domain.len() <= 253
        && !domain.contains('@')
        && !s.chars().any(|c| c.is_whitespace() || c.is_control())
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !domain.contains("..")
}

/// An absolute web address (RFC 3986) with the scheme `http` or `https`, such as
/// `https://example.org/page`. It must name a host, and a port must be a number. Only
/// the characters a URI may hold are allowed: anything else must be percent-encoded.
pub fn is_web_url(s: &str) -> bool {
    const ALLOWED: &str = "-._~:/?#[]@!$&'()*+,;=%";
    if !s.chars().all(|c| c.is_ascii_alphanumeric() || ALLOWED.contains(c)) {
        return false;
    }
    let Some((scheme, rest)) = s.split_once(':') else {
        return false;
    };
    let scheme_ok = scheme.chars().next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme.chars().all(|c| c.is_ascii_alphanumeric() || "+-.".contains(c));
    if !scheme_ok || rest.is_empty() {
        return false;
    }
    // Only web addresses: they are shown as links and passed on through ORUK and FHIR,
    // where `javascript:`, `data:` or `file:` would run or open something else.
    if !matches!(scheme.to_ascii_lowercase().as_str(), "http" | "https") {
        return false;
    }
    let Some(after) = rest.strip_prefix("//") else {
        return false;
    };
    let authority = after.split(['/', '?', '#']).next().unwrap_or("");
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, hp)| hp);
    let (host, port) = match host_port.rsplit_once(':') {
        Some((host, port)) if !host.ends_with(']') || host.starts_with('[') => (host, Some(port)),
        _ => (host_port, None),
    };
    let host_ok = !host.is_empty()
        && (host.starts_with('[') || host.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.'));
    host_ok && port.is_none_or(|p| p.chars().all(|c| c.is_ascii_digit()))
}

/// Whether `c` is a control character that text in Kith never keeps: every one but the
/// tab and the line breaks.
pub fn is_unwanted_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

/// `text` without [`is_unwanted_control`] characters, and the first one removed.
pub fn without_control_characters(text: &str) -> (String, Option<char>) {
    let first = text.chars().find(|c| is_unwanted_control(*c));
    match first {
        None => (text.to_owned(), None),
        Some(_) => (text.chars().filter(|c| !is_unwanted_control(*c)).collect(), first),
    }
}

/// Removes control characters from every string in `value` (keys included), with a
/// warning for each string changed, named by its path under `path`.
pub fn strip_control_characters(value: &mut Value, path: &mut String, out: &mut Vec<Problem>) {
    let mut note = |path: &str, c: char| {
        out.push(Problem {
            path: path.to_owned(),
            message: format!("held a control character (U+{:04X}), which was removed", u32::from(c)),
            severity: Severity::Warning,
        });
    };
    match value {
        Value::String(s) => {
            if let (cleaned, Some(c)) = without_control_characters(s) {
                *s = cleaned;
                note(path, c);
            }
        }
        Value::Array(items) => {
            for (i, item) in items.iter_mut().enumerate() {
                let len = path.len();
                path.push_str(&format!("[{i}]"));
                strip_control_characters(item, path, out);
                path.truncate(len);
            }
        }
        Value::Object(map) => {
            let dirty: Vec<String> = map.keys().filter(|k| k.chars().any(is_unwanted_control)).cloned().collect();
            for key in dirty {
                if let Some(item) = map.remove(&key) {
                    let (cleaned, c) = without_control_characters(&key);
                    note(&format!("{path}.{cleaned}"), c.unwrap_or('\0'));
                    map.insert(cleaned, item);
                }
            }
            for (key, item) in map.iter_mut() {
                let len = path.len();
                path.push('.');
                path.push_str(key);
                strip_control_characters(item, path, out);
                path.truncate(len);
            }
        }
        _ => {}
    }
}

/// Finds strings too long to store, before the value is turned into types, so that a
/// 10 MB field is reported by path rather than copied about.
pub fn oversized_strings(value: &Value, root: &str, limit: usize) -> Vec<Problem> {
    fn walk(value: &Value, path: &mut String, out: &mut Vec<Problem>, limit: usize) {
        match value {
            Value::String(s) if s.len() > limit => {
                let chars = s.chars().count();
                if chars > limit {
                    out.push(Problem {
                        path: path.clone(),
                        message: format!(
                            "this text is {chars} characters long; the most Kith accepts in one field is {MAX_TEXT_CHARS}"
                        ),
                        severity: Severity::Error,
                    });
                }
            }
            Value::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    let len = path.len();
                    path.push_str(&format!("[{i}]"));
                    walk(item, path, out, limit);
                    path.truncate(len);
                }
            }
            Value::Object(map) => {
                for (key, item) in map {
                    let len = path.len();
                    path.push('.');
                    path.push_str(key);
                    walk(item, path, out, limit);
                    path.truncate(len);
                }
            }
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(value, &mut root.to_owned(), &mut out, limit);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::ServiceStatus;
    use uuid::Uuid;

    #[test]
    fn emails() {
        assert!(is_email("help@parkhead.org.uk"));
        assert!(!is_email("email-example_com"));
        assert!(!is_email("call us on 0141"));
        assert!(!is_email("a@b"));
    }

    #[test]
    fn urls() {
        assert!(is_web_url("https://www.urban-yoga.net"));
        for other in ["mailto:help@example.org", "javascript:alert(1)", "JavaScript:alert(1)", "data:text/html,x"] {
            assert!(!is_web_url(other), "{other}: only http and https are links");
        }
        assert!(!is_web_url("example/counselling"));
        assert!(!is_web_url("www.example.org"));
        assert!(!is_web_url("https://"));
        assert!(!is_web_url("https://http:www.example.org"), "a port must be a number");
        assert!(!is_web_url("https://example.org/caf\u{e9}"), "non-ASCII must be percent-encoded");
        assert!(is_web_url("https://example.org:8080/a?b=c#d"));
    }

    #[test]
    fn byday_accepts_ordinals() {
        assert!(parse_byday("TU").is_some());
        assert!(parse_byday("-1FR").is_some());
        assert!(parse_byday("1MO").is_some());
        assert!(parse_byday("Tuesday").is_none());
        assert!(parse_byday("9MO").is_none());
    }

    #[test]
    fn a_service_with_a_bad_email_and_inverted_ages_is_rejected_by_path() {
        let mut s = Service::new(Uuid::nil(), "Counselling", ServiceStatus::Active);
        s.email = Some("email-example_com".into());
        s.minimum_age = Some(50.0);
        s.maximum_age = Some(18.0);
        let mut c = Checker::new("$[2]");
        c.service(&s);
        let paths: Vec<_> = c.problems.iter().map(|p| p.path.as_str()).collect();
        assert_eq!(paths, ["$[2].email", "$[2].maximum_age"]);
        assert!(c.has_errors());
    }

    #[test]
    fn oversized_strings_are_found_by_path() {
        let big = "x".repeat(MAX_TEXT_CHARS + 1);
        let v = serde_json::json!({"name": "ok", "contacts": [{"name": big}]});
        let problems = oversized_strings(&v, "$", MAX_TEXT_CHARS);
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].path, "$.contacts[0].name");
    }
}
