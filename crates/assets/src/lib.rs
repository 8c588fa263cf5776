//! The web app's stylesheet, script and icons, built from npm and `web/src` by this
//! crate's build script and embedded in the binary, each with a gzipped copy. Kept in a
//! crate of its own so that editing the server does not rebuild them.
#![deny(clippy::unwrap_used, clippy::expect_used)]

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    /// The path under `/assets/`: `kith.0123456789ab.css`, `images/nhsuk-icon-cross.svg`.
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset at a path under `/assets/`.
pub fn get(path: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|a| a.path == path)
}

/// Whether the asset's name carries its content hash, so it can be cached for ever.
pub fn is_immutable(asset: &Asset) -> bool {
    asset.path == STYLESHEET.trim_start_matches("/assets/") || asset.path == SCRIPT.trim_start_matches("/assets/")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stylesheet_and_script_are_embedded_and_load_nothing_from_elsewhere() {
        let css = get(STYLESHEET.trim_start_matches("/assets/")).unwrap();
        let text = std::str::from_utf8(css.body).unwrap();
        assert!(text.contains(".nhsuk-header"), "the NHS design system is in the stylesheet");
        assert!(text.contains(".kith-"), "Kith's own rules follow it");
        assert!(!text.contains("assets.nhs.uk") && !text.contains("https://"));
        assert!(css.gzip.len() < css.body.len() / 4);
        assert!(get(SCRIPT.trim_start_matches("/assets/")).is_some());
        for asset in ASSETS {
            assert!(!asset.body.is_empty(), "{} is empty", asset.path);
        }
    }

    #[test]
    fn every_icon_the_stylesheet_names_is_embedded() {
        let text = std::str::from_utf8(get(STYLESHEET.trim_start_matches("/assets/")).unwrap().body).unwrap();
        for (at, _) in text.match_indices("url(/assets/") {
            let rest = &text[at + 12..];
            let path = &rest[..rest.find(')').unwrap()];
            assert!(get(path).is_some(), "{path} is named by the stylesheet but not embedded");
        }
    }
}
