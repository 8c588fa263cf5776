//! Directories kept in spreadsheets, saved as CSV and read through a map
//! (`kith import FILE.csv --map MAP.toml`) into the same HSDS records as every other
//! import.
//!
//! Reading is pure: [`read_sheet`] turns the sheet's text into a [`Sheet`], a
//! [`DirectoryBatch`] with an [`ImportReport`] naming each refused row by its line, and
//! the venues still to be placed at their postcode, which needs the store's postcode
//! table (`kith_app::imports` does that and the writing).
//!
//! Ids are UUID v5 in [`KITH_NAMESPACE`], made from what the row says rather than where
//! it is, so that importing the same sheet again (sorted differently, with rows added)
//! updates the same records:
//!
//! - an organisation: its name, trimmed and in lower case;
//! - a service: its organisation's name and its own;
//! - a venue: its address and postcode, or its coordinates, so services meeting at the
//!   same place share it.
//!
//! Renaming a service in the sheet therefore makes a new one (the old stays until it is
//! removed), and two rows with the same name and organisation are one service: the second
//! is refused, naming the line of the first.

mod map;
mod needs;
mod schedule;

pub use map::{Columns, Field, SheetMap, Skip};
pub use needs::NeedWords;
pub use schedule::Opening;

use crate::import::{ImportError, ImportReport, Rejection, SourceFormat};
use crate::oruk_v1::KITH_NAMESPACE;
use kith_domain::DirectoryBatch;
use kith_domain::ServiceStatus;
use kith_domain::geo::Point;
use kith_domain::hsds::{
    Address, AddressType, Location, LocationType, Organization, OrganizationIdentifier, Phone, Schedule, Service,
    ServiceAtLocation,
};
use kith_domain::postcode::Postcode;
use kith_domain::validate::{self, MAX_NAME_CHARS, MAX_TEXT_CHARS};
use std::collections::{BTreeMap, HashMap, HashSet};
use uuid::Uuid;

/// What reading a sheet gave.
#[derive(Debug, Default)]
pub struct Sheet {
    pub batch: DirectoryBatch,
    pub report: ImportReport,
    /// Venues with a postcode and no coordinates, to be placed at the postcode.
    pub unplaced: Vec<Unplaced>,
    /// Rows refused for a malformed postcode, whose suggestion the postcode table can
    /// improve on.
    pub malformed: Vec<Malformed>,
}

/// A postcode that is not one, in a refused row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Malformed {
    /// Which of `report.rejected`, and which of its reasons, is about the postcode.
    pub rejection: usize,
    pub reason: usize,
    /// The postcode as the sheet has it.
    pub text: String,
    /// The postcode one letter-for-digit slip explains, if any.
    pub suggestion: Option<Postcode>,
}

/// A venue to be given its postcode's coordinates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unplaced {
    pub location_id: Uuid,
    pub postcode: Postcode,
    /// The first line of the sheet that gave it.
    pub line: u64,
}

impl Sheet {
    /// Gives the venue `location_id` the coordinates `at`.
    pub fn place(&mut self, location_id: Uuid, at: Point) {
        if let Some(l) = self.batch.locations.iter_mut().find(|l| l.id == location_id) {
            l.latitude = Some(at.lat);
            l.longitude = Some(at.lon);
        }
    }

    /// Notes a problem with a row that was imported anyway.
    pub fn warn(&mut self, source: &str, line: u64, message: &str) {
        self.report.warnings.push(format!("{source} line {line}: {message}"));
    }
}

/// Reads a sheet's CSV text (UTF-8, with or without a byte-order mark, the header on
/// line 1) through `map`. A map naming a column the sheet lacks refuses the whole sheet;
/// a row that cannot be imported is refused on its own, by its line.
pub fn read_sheet(bytes: &[u8], source: &str, map: &SheetMap, needs: &NeedWords) -> Result<Sheet, ImportError> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let shape = |message: String| ImportError::Shape { source_name: source.to_owned(), message };
    let mut reader = csv::ReaderBuilder::new().flexible(true).has_headers(true).from_reader(bytes);
    let header: Vec<String> = reader.headers().map_err(|e| csv_error(&e, source))?.iter().map(str::to_owned).collect();
    if header.iter().all(|h| h.trim().is_empty()) {
        return Err(shape("the sheet is empty: its first line should name its columns".into()));
    }
    let columns = map.check_header(&header).map_err(shape)?;
    let mut rows = Rows {
        source,
        map,
        columns: &columns,
        needs,
        sheet: Sheet::default(),
        organizations: BTreeMap::new(),
        services: HashMap::new(),
        locations: HashSet::new(),
        used_needs: Vec::new(),
    };
    let mut record = csv::StringRecord::new();
    let mut skipped = 0;
    loop {
        match reader.read_record(&mut record) {
            Ok(false) => break,
            Ok(true) => {}
            Err(e) => return Err(csv_error(&e, source)),
        }
        let line = record.position().map_or(0, csv::Position::line);
        if record.iter().any(|cell| cell.chars().any(validate::is_unwanted_control)) {
            record = without_controls(&record, |column, c| {
                let message =
                    format!("column {column} held a control character (U+{:04X}), which was removed", u32::from(c));
                rows.sheet.warn(source, line, &message);
            });
        }
        if record.iter().all(|cell| cell.trim().is_empty()) {
            continue;
        }
        if columns.skip.iter().any(|(i, equals)| record.get(*i).is_some_and(|v| v.trim().to_lowercase() == *equals)) {
            skipped += 1;
            continue;
        }
        rows.row(&record, line);
    }
    let mut sheet = rows.finish();
    if skipped > 0 {
        let rows = if skipped == 1 { "row" } else { "rows" };
        sheet.report.notes.push(format!("{source}: {skipped} {rows} left out by the map's [skip]"));
    }
    Ok(sheet)
}

/// The record with control characters (but tabs and line breaks) taken out of its cells,
/// telling `removed` of each cell changed (numbered from 1) and the first character.
fn without_controls(record: &csv::StringRecord, mut removed: impl FnMut(usize, char)) -> csv::StringRecord {
    let mut cleaned = csv::StringRecord::with_capacity(record.as_slice().len(), record.len());
    for (i, cell) in record.iter().enumerate() {
        let (text, first) = validate::without_control_characters(cell);
        if let Some(c) = first {
            removed(i + 1, c);
        }
        cleaned.push_field(&text);
    }
    cleaned.set_position(record.position().cloned());
    cleaned
}

fn csv_error(e: &csv::Error, source: &str) -> ImportError {
    let line = e.position().map_or(0, csv::Position::line);
    match e.kind() {
        csv::ErrorKind::Utf8 { pos, .. } => ImportError::NotUtf8 {
            source_name: source.to_owned(),
            line: pos.as_ref().map_or(line, csv::Position::line) as usize,
            offset: pos.as_ref().map_or(0, csv::Position::byte) as usize,
        },
        csv::ErrorKind::Io(io) => ImportError::Io { path: source.into(), reason: io.to_string() },
        _ => ImportError::Shape { source_name: source.to_owned(), message: format!("line {line}: {e}") },
    }
}

/// Compares names as people mean them: case and spacing aside.
fn name_key(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase()
}

fn v5(text: &str) -> Uuid {
    Uuid::new_v5(&KITH_NAMESPACE, text.as_bytes())
}

struct Rows<'a> {
    source: &'a str,
    map: &'a SheetMap,
    columns: &'a Columns,
    needs: &'a NeedWords,
    sheet: Sheet,
    organizations: BTreeMap<Uuid, Organization>,
    /// The line each service id was first given on.
    services: HashMap<Uuid, u64>,
    /// Venues already made, by id.
    locations: HashSet<Uuid>,
    used_needs: Vec<&'static str>,
}

/// One row's cells, by field: the column's text, or the map's fixed value when the cell
/// is empty.
struct Cells<'r> {
    record: &'r csv::StringRecord,
    map: &'r SheetMap,
    columns: &'r Columns,
}

impl Cells<'_> {
    fn get(&self, field: Field) -> Option<&str> {
        self.column(field).or_else(|| self.map.fixed.get(&field).map(String::as_str))
    }

    fn column(&self, field: Field) -> Option<&str> {
        let i = *self.columns.fields.get(&field)?;
        self.record.get(i).map(str::trim).filter(|v| !v.is_empty())
    }

    /// The header's name for a field's column, for messages.
    fn named(&self, field: Field) -> String {
        match self.map.columns.get(&field) {
            Some(column) => format!("the {column:?} column"),
            None => format!("[fixed] {field}"),
        }
    }
}

impl Rows<'_> {
    fn row(&mut self, record: &csv::StringRecord, line: u64) {
        self.sheet.report.records += 1;
        let cells = Cells { record, map: self.map, columns: self.columns };
        let mut reasons = Vec::new();
        let mut warnings = Vec::new();
        let name = cells.get(Field::Name).map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "));
        match &name {
            None => reasons.push(format!(
                "no name: {} is empty; every service needs the name people know it by",
                cells.named(Field::Name)
            )),
            Some(n) if n.chars().count() > MAX_NAME_CHARS => {
                reasons.push(format!("the name is longer than {MAX_NAME_CHARS} characters; shorten it"));
            }
            Some(_) => {}
        }
        let org_name = cells.get(Field::Organization).map(|n| n.split_whitespace().collect::<Vec<_>>().join(" "));
        let mut malformed = None;
        let postcode = match cells.get(Field::Postcode) {
            None => None,
            Some(text) => match Postcode::parse(text) {
                Ok(p) => Some(p),
                Err(e) => {
                    malformed = Some(Malformed {
                        rejection: self.sheet.report.rejected.len(),
                        reason: reasons.len(),
                        text: text.to_owned(),
                        suggestion: e.suggestion().cloned(),
                    });
                    reasons.push(format!("{}: {e}", cells.named(Field::Postcode)));
                    None
                }
            },
        };
        let point = match self.coordinates(&cells) {
            Ok(point) => point,
            Err(reason) => {
                reasons.push(reason);
                None
            }
        };
        let id = v5(&format!(
            "sheet:service:{}\u{1f}{}",
            org_name.as_deref().map(name_key).unwrap_or_default(),
            name.as_deref().map(name_key).unwrap_or_default()
        ));
        if name.is_some()
            && let Some(first) = self.services.get(&id)
        {
            reasons.push(format!(
                "line {first} already gives a service with this name and organisation; give each its own name (\"… (Tuesdays)\") or join the rows"
            ));
        }
        let description = cells.get(Field::Description).map(str::to_owned);
        if description.as_ref().is_some_and(|d| d.chars().count() > MAX_TEXT_CHARS) {
            reasons.push(format!("the description is longer than {MAX_TEXT_CHARS} characters; shorten it"));
        }
        let Some(name) = name.filter(|_| reasons.is_empty()) else {
            self.sheet.malformed.extend(malformed);
            self.sheet.report.rejected.push(Rejection {
                source: self.source.to_owned(),
                path: format!("line {line}"),
                id: None,
                name: cells.get(Field::Name).map(str::to_owned),
                reasons,
            });
            return;
        };
        self.services.insert(id, line);

        let mut s = Service::new(id, name, ServiceStatus::Active);
        s.description = description;
        s.url = cells.get(Field::Url).and_then(|u| web_address(u, &cells, &mut warnings));
        s.email = cells.get(Field::Email).and_then(|e| {
            let trimmed = e.trim_end_matches('.');
            if validate::is_email(trimmed) {
                if trimmed != e {
                    warnings.push(format!(
                        "{}: {e:?} ended with a full stop; imported as {trimmed:?}",
                        cells.named(Field::Email)
                    ));
                }
                Some(trimmed.to_owned())
            } else {
                warnings.push(format!("{}: {e:?} is not an email address; left out", cells.named(Field::Email)));
                None
            }
        });
        if let Some(number) = cells.get(Field::Phone) {
            s.phones.push(Phone { service_id: Some(id), ..Phone::voice(Uuid::new_v5(&id, b"sheet:phone"), number) });
        }
        if let Some(org_name) = org_name {
            s.organization_id = Some(self.organization(&org_name, &cells));
        } else if cells.get(Field::CharityNumber).is_some() || cells.get(Field::CompanyNumber).is_some() {
            warnings.push("a charity or company number with no organisation to give it to; left out".into());
        }
        if let Some(text) = cells.get(Field::Schedule) {
            match schedule::parse(text) {
                Ok(openings) => {
                    for (i, o) in openings.iter().enumerate() {
                        let mut schedule = o.schedule(Uuid::new_v5(&id, format!("sheet:schedule:{i}").as_bytes()));
                        schedule.service_id = Some(id);
                        s.schedules.push(schedule);
                    }
                }
                Err(e) => {
                    warnings.push(format!("{}: {e}; kept as the schedule's description", cells.named(Field::Schedule)));
                    let mut schedule = Schedule::weekly(
                        Uuid::new_v5(&id, b"sheet:schedule:0"),
                        "",
                        kith_domain::serde_util::TimeOfDay(chrono::NaiveTime::MIN),
                        kith_domain::serde_util::TimeOfDay(chrono::NaiveTime::MIN),
                    );
                    (schedule.freq, schedule.interval, schedule.byday) = (None, None, None);
                    (schedule.opens_at, schedule.closes_at) = (None, None);
                    schedule.service_id = Some(id);
                    schedule.description = Some(text.to_owned());
                    s.schedules.push(schedule);
                }
            }
        }
        self.attach_needs(&mut s, &cells, &mut warnings);
        if let Some(location) = self.location(&cells, postcode, point, line) {
            let mut at = ServiceAtLocation::new(Uuid::new_v5(&id, location.as_bytes()), location);
            at.service_id = Some(id);
            s.service_at_locations.push(at);
        }
        for w in warnings {
            self.sheet.warn(self.source, line, &w);
        }
        self.sheet.report.accepted += 1;
        *self.sheet.report.accepted_by_kind.entry("service").or_default() += 1;
        self.sheet.batch.add_service(s);
    }

    /// The row's coordinates, from `lat_long` or `latitude` and `longitude`.
    fn coordinates(&self, cells: &Cells<'_>) -> Result<Option<Point>, String> {
        let (lat, lon, what) = if let Some(both) = cells.get(Field::LatLong) {
            let parts: Vec<&str> =
                both.split(|c: char| c == ',' || c == ';' || c.is_whitespace()).filter(|p| !p.is_empty()).collect();
            let [lat, lon] = parts[..] else {
                return Err(format!(
                    "{}: {both:?} is not a latitude and longitude; write them as \"51.4545, -2.5879\"",
                    cells.named(Field::LatLong)
                ));
            };
            (lat, lon, cells.named(Field::LatLong))
        } else {
            match (cells.get(Field::Latitude), cells.get(Field::Longitude)) {
                (None, None) => return Ok(None),
                (Some(lat), Some(lon)) => {
                    (lat, lon, format!("{} and {}", cells.named(Field::Latitude), cells.named(Field::Longitude)))
                }
                _ => return Err("only one of latitude and longitude is given; give both, or neither".into()),
            }
        };
        let read =
            |text: &str, limit: f64| text.trim().parse::<f64>().ok().filter(|v| v.is_finite() && v.abs() <= limit);
        let (Some(lat), Some(lon)) = (read(lat, 90.0), read(lon, 180.0)) else {
            return Err(format!(
                "{what}: ({lat}, {lon}) is not a latitude and longitude; write them in degrees, like 51.4545, -2.5879"
            ));
        };
        let point = Point { lat, lon };
        if !point.in_uk() && (Point { lat: lon, lon: lat }).in_uk() {
            return Err(format!("{what}: ({lat}, {lon}) looks like longitude then latitude; give the latitude first"));
        }
        Ok(Some(point))
    }

    /// The organisation called `name`, kept once however many rows name it; a number one
    /// row gives is kept with the rest.
    fn organization(&mut self, name: &str, cells: &Cells<'_>) -> Uuid {
        let id = v5(&format!("sheet:organization:{}", name_key(name)));
        let org = self.organizations.entry(id).or_insert_with(|| Organization::new(id, name, ""));
        for (field, scheme, kind) in
            [(Field::CharityNumber, None, "Charity number"), (Field::CompanyNumber, Some("GB-COH"), "Company number")]
        {
            let Some(number) = cells.get(field) else { continue };
            let number = number.split_whitespace().collect::<String>().to_uppercase();
            // org-id.guide's registers: Scotland's (SC…) and Northern Ireland's (NIC…)
            // charities have their own; the rest are England and Wales's.
            let scheme = scheme.unwrap_or(if number.starts_with("SC") {
                "GB-SC"
            } else if number.starts_with("NI") {
                "GB-NIC"
            } else {
                "GB-CHC"
            });
            if org.organization_identifiers.iter().any(|i| i.identifier_scheme.as_deref() == Some(scheme)) {
                continue;
            }
            org.organization_identifiers.push(OrganizationIdentifier {
                id: Uuid::new_v5(&id, format!("sheet:{scheme}:{number}").as_bytes()),
                organization_id: Some(id),
                identifier_scheme: Some(scheme.to_owned()),
                identifier_type: kind.to_owned(),
                identifier: number,
                attributes: vec![],
                metadata: vec![],
            });
        }
        id
    }

    fn attach_needs(&mut self, s: &mut Service, cells: &Cells<'_>, warnings: &mut Vec<String>) {
        let column = cells.column(Field::Need);
        let fixed = cells.map.fixed.get(&Field::Need).map(String::as_str);
        for text in [column, fixed].into_iter().flatten() {
            for word in text.split([';', ',', '\n']).map(str::trim).filter(|w| !w.is_empty()) {
                match self.needs.code(word) {
                    Some(code) => {
                        if !self.used_needs.contains(&code) {
                            self.used_needs.push(code);
                        }
                        let attribute = needs::attribute(s.id, code);
                        if s.attributes.iter().all(|a| a.id != attribute.id) {
                            s.attributes.push(attribute);
                        }
                    }
                    None => warnings.push(format!(
                        "the need {word:?} is not one Kith knows; left out (Kith's needs are {})",
                        needs::need_codes().collect::<Vec<_>>().join(", ")
                    )),
                }
            }
        }
    }

    /// The row's venue, kept once for every row that gives the same address, postcode or
    /// coordinates.
    fn location(
        &mut self,
        cells: &Cells<'_>,
        postcode: Option<Postcode>,
        point: Option<Point>,
        line: u64,
    ) -> Option<Uuid> {
        let mut lines = address_lines(cells.get(Field::Address).unwrap_or_default());
        // A postcode written as the address's last line is the postcode, not a line.
        let postcode = match (postcode, lines.last().and_then(|l| Postcode::parse(l).ok())) {
            (Some(p), Some(last)) if p == last => {
                lines.pop();
                Some(p)
            }
            (None, Some(last)) if !cells.map.columns.contains_key(&Field::Postcode) => {
                lines.pop();
                Some(last)
            }
            (p, _) => p,
        };
        if lines.is_empty() && postcode.is_none() && point.is_none() {
            return None;
        }
        let key = match (&point, lines.is_empty() && postcode.is_none()) {
            (Some(p), true) => format!("sheet:location:{:.5},{:.5}", p.lat, p.lon),
            _ => format!(
                "sheet:location:{}\u{1f}{}",
                lines.iter().map(|l| name_key(l)).collect::<Vec<_>>().join("\u{1e}"),
                postcode.as_ref().map(Postcode::as_str).unwrap_or_default()
            ),
        };
        let id = v5(&key);
        if !self.locations.insert(id) {
            return Some(id);
        }
        let mut location = Location::new(id, LocationType::Physical);
        location.name = lines.first().cloned();
        if let Some(p) = point {
            location.latitude = Some(p.lat);
            location.longitude = Some(p.lon);
        } else if let Some(p) = &postcode {
            self.sheet.unplaced.push(Unplaced { location_id: id, postcode: p.clone(), line });
        }
        if !lines.is_empty() || postcode.is_some() {
            let (address_1, address_2, city) = match &lines[..] {
                [] => (String::new(), None, String::new()),
                [one] => (one.clone(), None, String::new()),
                [first, middle @ .., last] => {
                    (first.clone(), Some(middle.join(", ")).filter(|m| !m.is_empty()), last.clone())
                }
            };
            location.addresses.push(Address {
                id: Uuid::new_v5(&id, b"sheet:address"),
                location_id: Some(id),
                attention: None,
                address_1,
                address_2,
                city,
                region: None,
                state_province: String::new(),
                postal_code: postcode.map(String::from).unwrap_or_default(),
                country: "GB".into(),
                address_type: AddressType::Physical,
                attributes: vec![],
                metadata: vec![],
            });
        }
        self.sheet.batch.add_location(location);
        Some(id)
    }

    fn finish(mut self) -> Sheet {
        for org in std::mem::take(&mut self.organizations).into_values() {
            self.sheet.batch.add_organization(org);
        }
        if !self.used_needs.is_empty() {
            let (taxonomy, terms) = needs::terms(&self.used_needs);
            self.sheet.batch.add_taxonomy(taxonomy);
            for t in terms {
                self.sheet.batch.add_taxonomy_term(t);
            }
        }
        if self.sheet.report.accepted > 0 || !self.sheet.report.rejected.is_empty() {
            self.sheet.report.formats.push(SourceFormat::Csv);
        }
        self.sheet
    }
}

/// An address cell's lines: one a line, or separated by commas when it is all on one.
fn address_lines(text: &str) -> Vec<String> {
    let tidy = |l: &str| l.split_whitespace().collect::<Vec<_>>().join(" ");
    let lines: Vec<String> = text.lines().map(tidy).filter(|l| !l.is_empty()).collect();
    let lines =
        if lines.len() == 1 { lines[0].split(',').map(tidy).filter(|l| !l.is_empty()).collect() } else { lines };
    lines.into_iter().map(|l| l.trim_end_matches(',').trim().to_owned()).filter(|l| !l.is_empty()).collect()
}

/// A web address as sheets write them: "www.example.org" gains "https://"; text that is
/// not an address is left out. Either is reported.
fn web_address(raw: &str, cells: &Cells<'_>, warnings: &mut Vec<String>) -> Option<String> {
    if validate::is_web_url(raw) {
        return Some(raw.to_owned());
    }
    let fixed = format!("https://{}", raw.trim_start_matches('/'));
    if raw.contains('.') && !raw.contains(' ') && !raw.contains('@') && validate::is_web_url(&fixed) {
        warnings.push(format!("{}: {raw:?} has no https://; imported as {fixed:?}", cells.named(Field::Url)));
        return Some(fixed);
    }
    warnings.push(format!("{}: {raw:?} is not a web address; left out", cells.named(Field::Url)));
    None
}

#[cfg(test)]
mod tests;
