#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;
use kith_domain::opening::describe;

const MAP: &str = r#"
[columns]
name = "Group"
organization = "Run by"
charity_number = "Charity no."
description = "About"
address = "Address"
postcode = "Postcode"
lat_long = "Where"
need = "Helps with"
schedule = "When"
email = "Email"
url = "Website"
phone = "Phone"

[fixed]
need = "food"

[skip]
column = "Closed?"
equals = "True"
"#;

const HEADER: &str =
    "Group,Run by,Charity no.,About,Address,Postcode,Where,Helps with,When,Email,Website,Phone,Closed?\n";

fn read(rows: &str) -> Sheet {
    read_with(MAP, rows)
}

fn read_with(map: &str, rows: &str) -> Sheet {
    let map = SheetMap::parse(map).unwrap();
    let text = format!("{HEADER}{rows}");
    read_sheet(text.as_bytes(), "groups.csv", &map, &NeedWords::kith()).unwrap()
}

fn service<'a>(sheet: &'a Sheet, name: &str) -> &'a Service {
    sheet.batch.services.iter().find(|s| s.name == name).unwrap_or_else(|| panic!("no service {name}"))
}

fn location<'a>(sheet: &'a Sheet, s: &Service) -> &'a Location {
    let id = s.service_at_locations[0].location_id.unwrap();
    sheet.batch.locations.iter().find(|l| l.id == id).unwrap()
}

#[test]
fn columns_become_a_service_its_organisation_and_its_venue() {
    let sheet = read(
        "Lunch Club,Easton Community Trust,1100001,Hot lunch and company,\"St Mark's Hall\n1 St Mark's Rd\nEaston, Bristol\",bs5 6jh,,lonely; Lunch clubs,Thursdays 12:00-14:00,hello@example.org.,www.example.org,0117 496 0000,\n",
    );
    assert!(sheet.report.rejected.is_empty(), "{:?}", sheet.report.rejected);
    let s = service(&sheet, "Lunch Club");
    assert_eq!(s.description.as_deref(), Some("Hot lunch and company"));
    assert_eq!(s.email.as_deref(), Some("hello@example.org"), "a trailing full stop is dropped");
    assert_eq!(s.url.as_deref(), Some("https://www.example.org"));
    assert_eq!(s.phones[0].number, "0117 496 0000");
    let org = &sheet.batch.organizations[0];
    assert_eq!(s.organization_id, Some(org.id));
    assert_eq!(org.name, "Easton Community Trust");
    let charity = &org.organization_identifiers[0];
    assert_eq!(
        (charity.identifier_scheme.as_deref(), charity.identifier_type.as_str(), charity.identifier.as_str()),
        (Some("GB-CHC"), "Charity number", "1100001")
    );
    let l = location(&sheet, s);
    let a = &l.addresses[0];
    assert_eq!(
        (a.address_1.as_str(), a.address_2.as_deref(), a.city.as_str()),
        ("St Mark's Hall", Some("1 St Mark's Rd"), "Easton, Bristol")
    );
    assert_eq!(a.postal_code, "BS5 6JH");
    assert_eq!(l.latitude, None, "placed later, from the postcode table");
    assert_eq!(
        sheet.unplaced,
        [Unplaced { location_id: l.id, postcode: Postcode::parse("BS5 6JH").unwrap(), line: 2 }]
    );
    assert_eq!(describe(&s.schedules[0]).unwrap(), "Thursdays 12:00–14:00");
    let needs: Vec<Uuid> = s.attributes.iter().filter_map(|a| a.taxonomy_term_id).collect();
    assert_eq!(needs, [kith_demo::need_term_id("lunch-club"), kith_demo::need_term_id("food")]);
    assert_eq!(sheet.report.warnings.len(), 3, "{:?}", sheet.report.warnings);
    assert!(
        sheet
            .report
            .warnings
            .iter()
            .any(|w| w.starts_with("groups.csv line 2: the need \"lonely\" is not one Kith knows"))
    );
    assert!(sheet.report.warnings.iter().any(|w| w.contains("\"www.example.org\" has no https://")));
    let codes: Vec<&str> = sheet.batch.taxonomy_terms.iter().filter_map(|t| t.code.as_deref()).collect();
    assert_eq!(codes.len(), 3, "lunch clubs, their need (loneliness) and food: {codes:?}");
    assert_eq!(sheet.report.formats, [SourceFormat::Csv]);
}

#[test]
fn lat_long_in_one_column_and_addresses_separated_by_commas() {
    let sheet = read(concat!(
        "Walk,Trust,,,\"Park Gate, Victoria Park, Bristol\",,\"51.4412, -2.5873\",,,,,,\n",
        "Swim,Trust,,,,,51.45 -2.58,,,,,,\n",
    ));
    let walk = service(&sheet, "Walk");
    let l = location(&sheet, walk);
    assert_eq!((l.latitude, l.longitude), (Some(51.4412), Some(-2.5873)));
    assert_eq!(l.addresses[0].address_1, "Park Gate");
    assert_eq!(l.addresses[0].city, "Bristol");
    let swim = location(&sheet, service(&sheet, "Swim"));
    assert_eq!((swim.latitude, swim.longitude), (Some(51.45), Some(-2.58)));
    assert!(swim.addresses.is_empty());
    assert_eq!(sheet.batch.organizations.len(), 1, "an organisation named by several rows is kept once");
    assert!(sheet.unplaced.is_empty());
}

#[test]
fn rows_named_in_skip_are_left_out_and_fixed_values_fill_every_row() {
    let sheet = read(concat!("Pantry,Trust,,,,,,,,,,, true \n", "Larder,Trust,,,,,,,,,,,False\n", ",,,,,,,,,,,,\n",));
    assert_eq!(sheet.batch.services.len(), 1);
    assert_eq!(sheet.report.records, 1, "skipped and blank rows are not records");
    assert_eq!(sheet.report.notes, ["groups.csv: 1 row left out by the map's [skip]"]);
    let larder = service(&sheet, "Larder");
    assert_eq!(larder.attributes[0].taxonomy_term_id, Some(kith_demo::need_term_id("food")));
}

#[test]
fn refused_rows_are_named_by_their_line() {
    let sheet = read(concat!(
        "Lunch Club,Trust,,\"Two\nline description\",,bs5 6jh,,,,,,,\n",
        ",Trust,,,,,,,,,,,\n",
        "Cafe,Trust,,,,BS1 STR,,,,,,,\n",
        "Dance,Trust,,,,,\"north, west\",,,,,,\n",
        "Choir,Trust,,,,,\"-2.58, 51.45\",,,,,,\n",
        "lunch  club,TRUST,,,,,,,,,,,\n",
    ));
    let refused: Vec<String> = sheet.report.rejected.iter().map(ToString::to_string).collect();
    assert_eq!(refused.len(), 5, "{refused:#?}");
    // Line 2's quoted cell spans two lines, so the next row is on line 4.
    assert_eq!(
        refused[0],
        "groups.csv line 4: no name: the \"Group\" column is empty; every service needs the name people know it by"
    );
    assert!(
        refused[1].starts_with("groups.csv line 5 (\"Cafe\"): the \"Postcode\" column: “BS1 STR” is not a postcode"),
        "{}",
        refused[1]
    );
    assert!(refused[1].ends_with("Did you mean BS1 5TR?"), "{}", refused[1]);
    let m = &sheet.malformed[0];
    assert_eq!((m.rejection, m.reason, m.text.as_str()), (1, 0, "BS1 STR"));
    assert_eq!(m.suggestion.as_ref().map(Postcode::as_str), Some("BS1 5TR"));
    assert!(
        refused[2].starts_with(
            "groups.csv line 6 (\"Dance\"): the \"Where\" column: (north, west) is not a latitude and longitude"
        ),
        "{}",
        refused[2]
    );
    assert!(
        refused[3].contains("line 7") && refused[3].contains("looks like longitude then latitude"),
        "{}",
        refused[3]
    );
    assert!(
        refused[4].starts_with("groups.csv line 8 (\"lunch  club\"): line 2 already gives a service with this name"),
        "{}",
        refused[4]
    );
    assert_eq!(sheet.report.records, 6);
    assert_eq!(sheet.report.accepted, 1);
}

#[test]
fn ids_come_from_what_a_row_says_not_where_it_is() {
    let rows = "Walk,Trust,,,,BS5 6JH,,,,,,,\nSwim,Trust,,,,BS5 6JH,,,,,,,\n";
    let first = read(rows);
    let reordered = read("Swim,Trust,,,,BS5 6JH,,,,,,,\nNew,Trust,,,,,,,,,,,\nWalk,Trust,,,,BS5 6JH,,,,,,,\n");
    for name in ["Walk", "Swim"] {
        assert_eq!(service(&first, name).id, service(&reordered, name).id);
    }
    assert_eq!(first.batch.locations.len(), 1, "two services at one venue share it");
    assert_eq!(first.unplaced.len(), 1);
}

#[test]
fn schedules_and_need_words() {
    let sheet = read(concat!(
        "A,T,,,,,,Food banks; mental health,\"Tuesdays 10-12; First Monday of the month 18:30-20:00\",,,,\n",
        "B,T,,,,,,xyzzy,by appointment,,,,\n",
    ));
    let a = service(&sheet, "A");
    let times: Vec<String> = a.schedules.iter().filter_map(describe).collect();
    assert_eq!(times, ["Tuesdays 10:00–12:00", "First Monday of the month 18:30–20:00"]);
    let terms: Vec<Uuid> = a.attributes.iter().filter_map(|x| x.taxonomy_term_id).collect();
    assert_eq!(terms, ["food-bank", "mental-health", "food"].map(kith_demo::need_term_id));
    let b = service(&sheet, "B");
    assert_eq!(describe(&b.schedules[0]).as_deref(), Some("by appointment"), "kept as words");
    let warned: Vec<&String> = sheet.report.warnings.iter().filter(|w| w.contains("line 3")).collect();
    assert_eq!(warned.len(), 2, "{warned:?}");
    assert!(warned.iter().any(|w| w.contains("the need \"xyzzy\" is not one Kith knows")));
    assert!(warned.iter().any(|w| w.contains("cannot read the opening times \"by appointment\"")));

    let synonyms = NeedWords::kith().with_synonyms([("xyzzy".to_owned(), "money")]);
    let map = SheetMap::parse(MAP).unwrap();
    let text = format!("{HEADER}B,T,,,,,,xyzzy,,,,,\n");
    let sheet = read_sheet(text.as_bytes(), "groups.csv", &map, &synonyms).unwrap();
    assert!(sheet.report.warnings.is_empty(), "{:?}", sheet.report.warnings);
}

#[test]
fn latitude_and_longitude_columns_and_no_organisation() {
    let map = "[columns]\nname = \"Group\"\nlatitude = \"Lat\"\nlongitude = \"Long\"\n";
    let text = "Group,Lat,Long\nWalk,51.45,-2.58\nSwim,fifty,-2.58\n";
    let sheet = read_sheet(text.as_bytes(), "s.csv", &SheetMap::parse(map).unwrap(), &NeedWords::kith()).unwrap();
    let walk = service(&sheet, "Walk");
    assert_eq!(walk.organization_id, None);
    assert_eq!(location(&sheet, walk).latitude, Some(51.45));
    assert_eq!(sheet.report.rejected[0].path, "line 3");
    assert!(sheet.report.rejected[0].reasons[0].contains("\"Lat\" column and the \"Long\" column: (fifty, -2.58)"));
}

#[test]
fn a_map_naming_a_column_the_sheet_lacks_refuses_the_sheet() {
    let map = SheetMap::parse("[columns]\nname = \"Group name\"\n").unwrap();
    let e = read_sheet(b"Group,Postcode\nA,BS1 1AA\n", "s.csv", &map, &NeedWords::kith()).unwrap_err();
    assert_eq!(
        e.to_string(),
        "s.csv: the map names a column the sheet does not have: \"Group name\" (for name). The sheet's columns are \"Group\", \"Postcode\"; correct the map to name it as the header does"
    );
    let e = read_sheet(
        b"Group\n\xff\n",
        "s.csv",
        &SheetMap::parse("[columns]\nname = \"Group\"\n").unwrap(),
        &NeedWords::kith(),
    );
    assert!(matches!(e, Err(ImportError::NotUtf8 { line: 2, .. })), "{e:?}");
}

#[test]
fn the_postcode_may_end_the_address() {
    let map = "[columns]\nname = \"Group\"\naddress = \"Address\"\n";
    let text = "Group,Address\nWalk,\"1 High St\nBristol\nbs1 5tr\"\n";
    let sheet = read_sheet(text.as_bytes(), "s.csv", &SheetMap::parse(map).unwrap(), &NeedWords::kith()).unwrap();
    let a = &location(&sheet, service(&sheet, "Walk")).addresses[0];
    assert_eq!((a.address_1.as_str(), a.city.as_str(), a.postal_code.as_str()), ("1 High St", "Bristol", "BS1 5TR"));
    assert_eq!(sheet.unplaced.len(), 1);
}
