//! `kith-model` as scripts/install-model runs it. (The vectors it writes are read back
//! by kith-search's tests, with the model installed.)

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

#[test]
fn it_explains_itself_and_names_a_missing_model_folder() {
    let help = Command::new(env!("CARGO_BIN_EXE_kith-model")).arg("--help").output().unwrap();
    assert!(help.status.success());
    let text = String::from_utf8_lossy(&help.stdout);
    assert!(text.contains("--from") && text.contains("--to") && text.contains("--words"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("nothing-here");
    let out = Command::new(env!("CARGO_BIN_EXE_kith-model"))
        .args(["--from", missing.to_str().unwrap(), "--to", dir.path().to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("config.json") && err.contains("nothing-here"), "{err}");
}
