//! Printable leaflets of a shortlist ("what we talked about"), typeset with typst into a
//! tagged PDF that conforms to PDF/UA-1: A4, large clear type (DejaVu Sans, embedded),
//! up to four services a page.
//!
//! Names and details in other scripts (Bengali, Gurmukhi, Gujarati, Devanagari, Tamil,
//! Arabic, Chinese, emoji) are typeset with the Noto fonts `scripts/install-fonts` puts
//! in a folder, read once with [`use_fonts`]; typst embeds only the glyphs a leaflet
//! uses. A character no font holds is printed as a replacement mark (U+FFFD), so a
//! leaflet is always made: PDF/UA forbids missing glyphs, and would otherwise fail it.
//!
//! Kept in a crate of its own because typst is heavy to build; nothing else in Kith
//! depends on typst's types.
#![deny(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;
use std::sync::OnceLock;
use typst::diag::{FileError, FileResult};
use typst::foundations::{Bytes, Datetime, Dict, IntoValue, Str};
use typst::syntax::{FileId, RootedPath, Source, VirtualPath, VirtualRoot};
use typst::text::{Font, FontBook};
use typst::utils::LazyHash;
use typst::{Library, LibraryExt, World};
use typst_layout::PagedDocument;
use typst_pdf::{PdfOptions, PdfStandard, PdfStandards};

const TEMPLATE: &str = include_str!("leaflet.typ");

/// One service on the leaflet.
#[derive(Debug, Clone, Default)]
pub struct Entry {
    pub name: String,
    pub organisation: Option<String>,
    pub summary: Option<String>,
    /// Label and value: ("Where", "Parkhead Library, …"), ("When", "Tuesdays 10:00–12:00").
    pub rows: Vec<(String, String)>,
}

/// A leaflet: a title, a dated subtitle, the services, and a footer line.
#[derive(Debug, Clone)]
pub struct Leaflet {
    pub title: String,
    pub subtitle: String,
    pub footer: String,
    /// The date printed on it and stored in its metadata: (year, month, day).
    pub date: (i32, u8, u8),
    pub entries: Vec<Entry>,
}

/// A typeset leaflet.
#[derive(Debug, Clone)]
pub struct Typeset {
    pub pdf: Vec<u8>,
    pub pages: usize,
}

#[derive(Debug, thiserror::Error)]
pub enum LeafletError {
    #[error("the leaflet could not be typeset: {0}")]
    Typeset(String),
    #[error("the leaflet could not be written as PDF/UA-1: {0}")]
    Pdf(String),
}

fn json_string(s: &str) -> String {
    let s = printable(s);
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn json_opt(s: Option<&str>) -> String {
    s.map_or_else(|| "null".to_owned(), json_string)
}

impl Leaflet {
    /// The data the template reads, as JSON.
    fn to_json(&self) -> String {
        let entries: Vec<String> = self
            .entries
            .iter()
            .map(|e| {
                let rows: Vec<String> =
                    e.rows.iter().map(|(k, v)| format!("[{},{}]", json_string(k), json_string(v))).collect();
                format!(
                    "{{\"name\":{},\"organisation\":{},\"summary\":{},\"rows\":[{}]}}",
                    json_string(&e.name),
                    json_opt(e.organisation.as_deref()),
                    json_opt(e.summary.as_deref()),
                    rows.join(",")
                )
            })
            .collect();
        format!(
            "{{\"title\":{},\"subtitle\":{},\"footer\":{},\"year\":{},\"month\":{},\"day\":{},\"services\":[{}]}}",
            json_string(&self.title),
            json_string(&self.subtitle),
            json_string(&self.footer),
            self.date.0,
            self.date.1,
            self.date.2,
            entries.join(",")
        )
    }

    /// Typesets the leaflet as a tagged PDF conforming to PDF/UA-1.
    pub fn pdf(&self) -> Result<Typeset, LeafletError> {
        let world = LeafletWorld::new(self)?;
        let document = typst::compile::<PagedDocument>(&world).output.map_err(|errors| {
            LeafletError::Typeset(errors.iter().map(|e| e.message.to_string()).collect::<Vec<_>>().join("; "))
        })?;
        let standards =
            PdfStandards::new(&[PdfStandard::Ua_1]).map_err(|e| LeafletError::Pdf(e.message().to_string()))?;
        let date = Datetime::from_ymd_hms(self.date.0, self.date.1, self.date.2, 12, 0, 0);
        let options = PdfOptions {
            standards,
            tagged: true,
            timestamp: date.map(typst_pdf::Timestamp::new_utc),
            ..PdfOptions::default()
        };
        let pdf = typst_pdf::pdf(&document, &options).map_err(|errors| {
            LeafletError::Pdf(errors.iter().map(|e| e.message.to_string()).collect::<Vec<_>>().join("; "))
        })?;
        Ok(Typeset { pdf, pages: document.pages().len() })
    }
}

/// The fonts: DejaVu Sans (built in) and whatever [`use_fonts`] found, parsed once.
struct Fonts {
    book: LazyHash<FontBook>,
    fonts: Vec<Font>,
}

static FONTS: OnceLock<Fonts> = OnceLock::new();

fn fonts() -> &'static Fonts {
    FONTS.get_or_init(|| Fonts::with(Vec::new()))
}

impl Fonts {
    fn with(extra: Vec<Font>) -> Fonts {
        let mut fonts: Vec<Font> = [dejavu::sans::regular(), dejavu::sans::bold(), dejavu::sans::oblique()]
            .into_iter()
            .flat_map(|data| Font::iter(Bytes::new(data)))
            .collect();
        fonts.extend(extra);
        Fonts { book: LazyHash::new(FontBook::from_fonts(&fonts)), fonts }
    }

    /// Whether some font has a glyph for `c`.
    fn covers(&self, c: char) -> bool {
        self.fonts.iter().any(|f| f.info().coverage.contains(u32::from(c)))
    }
}

/// What [`use_fonts`] found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FontsFound {
    /// Font faces read from the folder.
    pub faces: usize,
    /// Their families, as typst names them ("Noto Sans Bengali").
    pub families: Vec<String>,
}

/// Reads every TrueType and OpenType font (`.ttf`, `.otf`, `.ttc`) in `dir` for the
/// leaflets, beside the built-in DejaVu Sans. Call once, before the first leaflet; a
/// later call changes nothing and returns `None`, as does a folder that cannot be read.
pub fn use_fonts(dir: &Path) -> Option<FontsFound> {
    let mut paths: Vec<_> = std::fs::read_dir(dir)
        .ok()?
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| ["ttf", "otf", "ttc"].contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect();
    paths.sort();
    let extra: Vec<Font> =
        paths.iter().filter_map(|p| std::fs::read(p).ok()).flat_map(|data| Font::iter(Bytes::new(data))).collect();
    let mut families: Vec<String> = extra.iter().map(|f| f.info().family.clone()).collect();
    families.dedup();
    let found = FontsFound { faces: extra.len(), families };
    FONTS.set(Fonts::with(extra)).ok()?;
    Some(found)
}

/// `text` with every character no font holds replaced by U+FFFD. Joiners, variation
/// selectors and other format characters, which shape rather than show, are kept.
fn printable(text: &str) -> String {
    let fonts = fonts();
    if text.chars().all(|c| c.is_ascii() || fonts.covers(c)) {
        return text.to_owned();
    }
    text.chars()
        .map(|c| {
            let shapes = matches!(c, '\u{200c}' | '\u{200d}' | '\u{fe00}'..='\u{fe0f}' | '\u{e0100}'..='\u{e01ef}');
            if c.is_ascii() || c.is_whitespace() || shapes || fonts.covers(c) { c } else { '\u{fffd}' }
        })
        .collect()
}

/// Everything typst may read: the template and the fonts, nothing from disk or network.
struct LeafletWorld {
    library: LazyHash<Library>,
    main: Source,
}

impl LeafletWorld {
    fn new(leaflet: &Leaflet) -> Result<LeafletWorld, LeafletError> {
        let path = VirtualPath::new("leaflet.typ").map_err(|e| LeafletError::Typeset(format!("{e:?}")))?;
        let id = RootedPath::new(VirtualRoot::Project, path).intern();
        let mut inputs = Dict::new();
        inputs.insert(Str::from("data"), Str::from(leaflet.to_json()).into_value());
        let library = Library::builder().with_inputs(inputs).build();
        Ok(LeafletWorld { library: LazyHash::new(library), main: Source::new(id, TEMPLATE.to_owned()) })
    }
}

impl World for LeafletWorld {
    fn library(&self) -> &LazyHash<Library> {
        &self.library
    }

    fn book(&self) -> &LazyHash<FontBook> {
        &fonts().book
    }

    fn main(&self) -> FileId {
        self.main.id()
    }

    fn source(&self, id: FileId) -> FileResult<Source> {
        if id == self.main.id() { Ok(self.main.clone()) } else { Err(FileError::AccessDenied) }
    }

    fn file(&self, _id: FileId) -> FileResult<Bytes> {
        Err(FileError::AccessDenied)
    }

    fn font(&self, index: usize) -> Option<Font> {
        fonts().fonts.get(index).cloned()
    }

    fn today(&self, _offset: Option<typst::foundations::Duration>) -> Option<Datetime> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(n: usize) -> Leaflet {
        Leaflet {
            title: "Services we talked about".into(),
            subtitle: "25 November 2026".into(),
            footer: "From Kith".into(),
            date: (2026, 11, 25),
            entries: (0..n)
                .map(|i| Entry {
                    name: format!("Lunch club {i} \"Café\" #1 $5 * _x_ @home"),
                    organisation: Some("Parkhead Community Trust".into()),
                    summary: Some("A hot meal and good company every week.".into()),
                    rows: vec![
                        ("Where".into(), "Parkhead Library, 64 Tollcross Road, Glasgow G31 4XA".into()),
                        ("When".into(), "Tuesdays 12:00–14:00".into()),
                        ("Phone".into(), "0141 555 0100".into()),
                        ("Cost".into(), "£2 a meal".into()),
                    ],
                })
                .collect(),
        }
    }

    #[test]
    fn a_leaflet_is_a_tagged_pdf_ua_document_holding_the_services() {
        let typeset = sample(3).pdf().unwrap();
        assert!(typeset.pdf.starts_with(b"%PDF-"));
        assert_eq!(typeset.pages, 1);
        let text = String::from_utf8_lossy(&typeset.pdf);
        assert!(text.contains("pdfuaid"), "PDF/UA identification in the XMP metadata");
        assert!(text.contains("/StructTreeRoot"), "tagged");
        assert!(text.contains("/Lang"), "language set");
    }

    #[test]
    fn markup_characters_in_listings_are_text_not_code() {
        // `#`, `$`, `*`, `_`, `@` and quotes would be typst markup if written into the
        // template; they arrive as data, so this typesets rather than fails.
        assert!(sample(1).pdf().is_ok());
    }

    /// Names in the UK's common scripts, and joined emoji, always make a leaflet: with the
    /// fonts of `scripts/install-fonts` (in `KITH_FONTS_DIR`) they are typeset in Noto,
    /// and without them each character no font holds becomes a replacement mark.
    #[test]
    fn names_in_every_common_script_make_a_leaflet_never_an_error() {
        let names = [
            "সুরমা মহিলা সমিতি",       // Bengali
            "ਪੰਜਾਬੀ ਸੱਭਿਆਚਾਰਕ ਕੇਂਦਰ",   // Punjabi (Gurmukhi)
            "ગુજરાતી સમાજ",          // Gujarati
            "हिंदी सत्संग मंडल",        // Hindi (Devanagari)
            "தமிழ் சங்கம்",            // Tamil
            "华人社区中心",         // Chinese
            "مرکز خواتین",          // Urdu (Arabic script)
            "Family day 👩‍👩‍👧‍👦 and 👍🏽", // joined emoji, with a skin tone
        ];
        let mut leaflet = sample(0);
        leaflet.entries = names
            .iter()
            .map(|n| Entry { name: (*n).to_owned(), organisation: Some((*n).to_owned()), ..Entry::default() })
            .collect();
        let wanted = std::env::var_os("KITH_FONTS_DIR");
        let found = wanted.as_ref().and_then(|dir| use_fonts(Path::new(dir)));
        if found.is_none() {
            assert!(
                std::env::var_os("KITH_REQUIRE_FONTS").is_none(),
                "KITH_FONTS_DIR holds no fonts; run scripts/install-fonts"
            );
            eprintln!("without KITH_FONTS_DIR: checking only that the leaflet is made");
        }
        let typeset = leaflet.pdf().unwrap();
        assert!(typeset.pdf.starts_with(b"%PDF-"));
        if let Some(found) = found {
            for family in ["Noto Sans Bengali", "Noto Sans Gurmukhi", "Noto Sans Tamil", "Noto Sans SC", "Noto Emoji"] {
                assert!(found.families.iter().any(|f| f == family), "{family} in {:?}", found.families);
            }
            let text = String::from_utf8_lossy(&typeset.pdf);
            for embedded in ["NotoSansBengali", "NotoSansGurmukhi", "NotoSansGujarati", "NotoSansTamil", "NotoSansSC"] {
                assert!(text.contains(embedded), "{embedded} is embedded (subset)");
            }
            assert!(!printable(names[0]).contains('\u{fffd}'), "Bengali is printed as written");
            assert!(typeset.pdf.len() < 400_000, "only the glyphs used: {} bytes", typeset.pdf.len());
        }
    }

    #[test]
    fn a_character_no_font_holds_becomes_a_replacement_mark() {
        // Linear B is in no font Kith installs.
        assert_eq!(printable("Café 𐀀 club"), "Café \u{fffd} club");
        assert_eq!(printable("plain"), "plain");
    }

    #[test]
    fn four_services_fit_a_page_and_a_fifth_starts_another() {
        assert_eq!(sample(4).pdf().unwrap().pages, 1);
        assert_eq!(sample(5).pdf().unwrap().pages, 2);
    }
}
