//! Builds the web app's assets into the binary.
//!
//! The NHS design system comes from npm (`web/package.json`, pinned by its lock file). If
//! `web/node_modules` does not hold the locked version, this runs `npm ci` once. Then it
//! joins the NHS stylesheet with Kith's own (`web/src/kith.css`), drops the NHS web-font
//! rules (they load fonts from assets.nhs.uk, and Kith loads nothing from elsewhere; the
//! design system's own fallback is Arial), keeps only the icons the stylesheet uses, names
//! each file by a hash of its content so browsers can cache it for ever, and gzips it.
#![allow(clippy::expect_used, clippy::unwrap_used, clippy::print_stdout)] // A build script fails by panicking.

use flate2::Compression;
use flate2::write::GzEncoder;
use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::hash::{Hash, Hasher};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

const NHSUK: &str = "node_modules/nhsuk-frontend";

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").unwrap());
    let web = manifest.join("../../web").canonicalize().expect("the web/ folder beside crates/");
    let out = PathBuf::from(std::env::var("OUT_DIR").unwrap());
    for watched in ["package.json", "package-lock.json", "src", &format!("{NHSUK}/package.json")] {
        println!("cargo:rerun-if-changed={}", web.join(watched).display());
    }

    install(&web);
    let dist = web.join(NHSUK).join("dist/nhsuk");

    let nhs_css = read(&dist.join("nhsuk-frontend.min.css"));
    let css = format!("{}\n{}", without_remote_fonts(&nhs_css), read(&web.join("src/kith.css")));
    assert!(!css.contains("https://"), "the stylesheet still loads something from elsewhere");
    let js = read(&web.join("src/kith.js"));

    let mut files: Vec<(String, &str, Vec<u8>)> = Vec::new();
    files.push((hashed("kith", "css", css.as_bytes()), "text/css; charset=utf-8", css.clone().into_bytes()));
    files.push((hashed("kith", "js", js.as_bytes()), "text/javascript; charset=utf-8", js.into_bytes()));
    for icon in icons(&css) {
        let bytes = std::fs::read(dist.join("assets/images").join(&icon)).expect("an icon the stylesheet names");
        files.push((format!("images/{icon}"), "image/svg+xml", bytes));
    }
    for (name, mime) in [("favicon.ico", "image/x-icon"), ("favicon.svg", "image/svg+xml")] {
        files.push((name.to_owned(), mime, std::fs::read(dist.join("assets/images").join(name)).unwrap()));
    }

    let mut rust =
        String::from("/// Every embedded asset, by its path under `/assets/`.\npub static ASSETS: &[Asset] = &[\n");
    for (name, mime, bytes) in &files {
        let plain = out.join(name.replace('/', "_"));
        std::fs::write(&plain, bytes).unwrap();
        let gz = out.join(format!("{}.gz", name.replace('/', "_")));
        std::fs::write(&gz, gzip(bytes)).unwrap();
        writeln!(
            rust,
            "    Asset {{ path: {name:?}, content_type: {mime:?}, body: include_bytes!({plain:?}), gzip: include_bytes!({gz:?}) }},",
            plain = plain.display().to_string(),
            gz = gz.display().to_string(),
        )
        .unwrap();
    }
    rust.push_str("];\n");
    writeln!(rust, "/// The stylesheet's path, which changes whenever its content does.\npub const STYLESHEET: &str = \"/assets/{}\";", files[0].0).unwrap();
    writeln!(
        rust,
        "/// The script's path, which changes whenever its content does.\npub const SCRIPT: &str = \"/assets/{}\";",
        files[1].0
    )
    .unwrap();
    std::fs::write(out.join("assets.rs"), rust).unwrap();
}

/// Runs `npm ci` unless `node_modules` already holds the locked version.
fn install(web: &Path) {
    let lock = read(&web.join("package-lock.json"));
    let locked = version_after(&lock, &format!("\"{NHSUK}\"")).expect("nhsuk-frontend in web/package-lock.json");
    let installed =
        std::fs::read_to_string(web.join(NHSUK).join("package.json")).ok().and_then(|p| version_after(&p, "\"name\""));
    if installed.as_deref() == Some(locked.as_str()) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund", "--ignore-scripts"])
        .current_dir(web)
        .status()
        .unwrap_or_else(|e| {
            panic!("Kith's web assets need Node.js and npm to build ({e}); on Debian: apt install nodejs npm")
        });
    assert!(status.success(), "`npm ci` in {} failed", web.display());
}

/// The first `"version": "…"` after `marker`.
fn version_after(text: &str, marker: &str) -> Option<String> {
    let rest = &text[text.find(marker)?..];
    let rest = &rest[rest.find("\"version\"")? + 9..];
    let start = rest.find('"')? + 1;
    let end = start + rest[start..].find('"')?;
    Some(rest[start..end].to_owned())
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()))
}

/// The stylesheet without `@font-face` rules that fetch fonts from another site.
fn without_remote_fonts(css: &str) -> String {
    let mut out = String::with_capacity(css.len());
    let mut rest = css;
    while let Some(at) = rest.find("@font-face{") {
        let end = at + rest[at..].find('}').expect("a closed @font-face rule") + 1;
        out.push_str(&rest[..at]);
        if !rest[at..end].contains("https://") {
            out.push_str(&rest[at..end]);
        }
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

/// The icon files the stylesheet refers to as `url(/assets/images/NAME)`.
fn icons(css: &str) -> BTreeSet<String> {
    const PREFIX: &str = "url(/assets/images/";
    css.match_indices(PREFIX)
        .filter_map(|(at, _)| {
            let rest = &css[at + PREFIX.len()..];
            rest.find(')').map(|end| rest[..end].trim_matches(['"', '\'']).to_owned())
        })
        .collect()
}

fn hashed(stem: &str, ext: &str, bytes: &[u8]) -> String {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut h);
    format!("{stem}.{:012x}.{ext}", h.finish() & 0xffff_ffff_ffff)
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut enc = GzEncoder::new(Vec::new(), Compression::best());
    enc.write_all(bytes).unwrap();
    enc.finish().unwrap()
}
