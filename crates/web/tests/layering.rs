//! The web crate does HTTP only: it asks the application (`kith_app::App` and its
//! services) and never calls the store itself, so every read of personal data goes
//! through the checks and the audit log in the application (ADR 0012).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

fn sources(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            sources(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

/// A call on the store: `.store()`, `.store.` or a `.store` ending a line before a call
/// on the next.
fn calls_the_store(line: &str) -> bool {
    let code = line.split("//").next().unwrap_or("");
    let mut rest = code;
    while let Some(at) = rest.find(".store") {
        let after = &rest[at + ".store".len()..];
        if after.is_empty() || after.starts_with('(') || after.starts_with('.') {
            return true;
        }
        rest = after;
    }
    false
}

#[test]
fn the_web_crate_never_calls_the_store() {
    let mut files = Vec::new();
    sources(&Path::new(env!("CARGO_MANIFEST_DIR")).join("src"), &mut files);
    assert!(files.len() > 10, "found the web crate's sources: {files:?}");
    let mut found = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).unwrap();
        // A module's own unit tests may set a store up.
        let text = text.split("#[cfg(test)]").next().unwrap_or("");
        for (n, line) in text.lines().enumerate() {
            if calls_the_store(line) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    assert!(found.is_empty(), "the web crate calls the store; ask kith_app::App instead:\n{}", found.join("\n"));
}

#[test]
fn the_check_sees_each_way_of_calling_the_store() {
    for line in ["state.store().service(id)", "let s = &state.store.user(id);", "        .store"] {
        assert!(calls_the_store(line), "{line}");
    }
    for line in ["state.service(id)", "// state.store().service(id)", "let store = open();", "a.stored"] {
        assert!(!calls_the_store(line), "{line}");
    }
}
