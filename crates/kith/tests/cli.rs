//! The `kith` command as users and scripts run it: a real process, real files, real
//! databases (SQLite always, PostgreSQL when KITH_TEST_DATABASE_URL is set).

#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{Read, Write};
use std::path::Path;
use std::process::{Command, Output};

fn kith(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove("KITH_DATABASE_URL")
        .env_remove("KITH_LISTEN")
        .output()
        .expect("kith runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn total(dir: &Path, file: &str) -> u64 {
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap();
    v["total_items"].as_u64().unwrap()
}

#[test]
fn every_command_has_help() {
    let dir = tempfile::tempdir().unwrap();
    for args in [
        &["--help"][..],
        &["serve", "--help"],
        &["demo", "--help"],
        &["import", "--help"],
        &["export", "--help"],
        &["users", "add", "--help"],
        &["orgs", "--help"],
        &["keys", "rotate", "--help"],
    ] {
        let out = kith(dir.path(), args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
        assert!(stdout(&out).contains("Usage: kith"), "{args:?}");
    }
    let import_help = stdout(&kith(dir.path(), &["import", "--help"]));
    assert!(import_help.contains("--strict") && import_help.contains("Exit status"));
    assert!(import_help.contains("--map <MAP.toml>") && import_help.contains("[columns]"), "{import_help}");
}

#[test]
fn search_from_the_command_line_explains_its_ranking() {
    let data = tempfile::tempdir().unwrap();
    let out = kith(data.path(), &["demo", "--load-only", "--caseload", "0"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let no_model = data.path().join("no-model");
    let out = kith(
        data.path(),
        &["--model-dir", no_model.to_str().unwrap(), "search", "my husband died", "--near", "G31 2ER", "--explain"],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let text = stdout(&out);
    assert!(text.contains(r#"Left out "my""#), "{text}");
    assert!(text.contains("bereavement"), "the vocabulary's reading: {text}");
    assert!(text.contains("By words alone"), "{text}");
    assert!(text.contains("found; the first") && text.contains("  1. "), "{text}");
    assert!(text.contains("words ") && text.contains(" km away"), "each result's score in parts: {text}");
    let nowhere = kith(data.path(), &["search", "lonely", "--near", "ZZ99 9ZZ"]);
    assert!(!nowhere.status.success());
    assert!(stderr(&nowhere).contains("ZZ99 9ZZ"), "{}", stderr(&nowhere));
    let too_far = kith(data.path(), &["search", "lonely", "--radius", "500"]);
    assert!(!too_far.status.success() && stderr(&too_far).contains("at most 200 km"), "{}", stderr(&too_far));
}

#[test]
fn demo_export_import_round_trip_on_sqlite() {
    let data = tempfile::tempdir().unwrap();
    let out = kith(data.path(), &["demo", "--load-only"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Demo directory: 450 services"), "{}", stdout(&out));
    assert!(data.path().join("kith.db").exists(), "SQLite lives in the data directory");

    let again = kith(data.path(), &["demo", "--load-only"]);
    assert!(
        stdout(&again).contains("(0 new or changed records)"),
        "loading the demo twice changes nothing: {}",
        stdout(&again)
    );

    let export = data.path().join("export");
    let out = kith(data.path(), &["export", "--format", "hsds", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(total(&export, "services.json"), 450);

    let fresh = tempfile::tempdir().unwrap();
    let out = kith(fresh.path(), &["import", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(0 rejected)"), "{}", stdout(&out));
    let second = fresh.path().join("export");
    kith(fresh.path(), &["export", second.to_str().unwrap()]);
    // The second export also says where its records came from: the first.
    let read = |dir: &Path, file: &str| -> serde_json::Value {
        serde_json::from_slice(&std::fs::read(dir.join(file)).unwrap()).unwrap()
    };
    let services = read(&second, "services.json");
    let source =
        services["contents"][0]["metadata"].as_array().unwrap().iter().find(|m| m["field_name"] == "kith:source");
    assert_eq!(source.map(|m| m["updated_by"].clone()), Some(serde_json::json!("file:export")));
    let without_sources = |mut v: serde_json::Value| {
        for record in v["contents"].as_array_mut().unwrap() {
            if let Some(metadata) = record.get_mut("metadata").and_then(|m| m.as_array_mut()) {
                metadata.retain(|m| m["field_name"] != "kith:source");
            }
            if record["metadata"].as_array().is_some_and(Vec::is_empty) {
                record.as_object_mut().unwrap().remove("metadata");
            }
        }
        v
    };
    for file in ["services.json", "organizations.json", "locations.json", "taxonomy_terms.json", "taxonomies.json"] {
        let same = without_sources(read(&export, file)) == without_sources(read(&second, file));
        assert!(same, "{file} differs after export, import and export again");
    }
}

#[test]
fn strict_import_of_a_file_with_one_bad_record_imports_nothing() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("feed.json");
    std::fs::write(
        &file,
        r#"[{"id": "0b1d7c1e-0000-4000-8000-000000000001", "name": "Choir", "status": "active"},
            {"id": "0b1d7c1e-0000-4000-8000-000000000002", "name": "Choir", "status": "open"}]"#,
    )
    .unwrap();
    let out = kith(data.path(), &["import", "--strict", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert!(err.contains("$[1].status: unknown variant `open`"), "{err}");
    assert!(err.lines().last().unwrap().starts_with("kith: nothing imported: 1 of 2 records are invalid"), "{err}");
    let export = data.path().join("export");
    assert!(kith(data.path(), &["export", export.to_str().unwrap()]).status.success());
    assert_eq!(total(&export, "services.json"), 0, "strict imported nothing");

    let out = kith(data.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2), "some rejected, the rest imported");
    assert!(stdout(&out).contains("Imported 1 of 2 records (1 rejected)"), "{}", stdout(&out));
}

/// An import where every record is refused imported nothing: it exits 1, as documented,
/// not 2 ("some rejected, the rest imported").
#[test]
fn an_import_where_every_record_is_refused_exits_1() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("feed.json");
    std::fs::write(
        &file,
        r#"[{"id": "0b1d7c1e-0000-4000-8000-000000000001", "name": "Choir", "status": "open"},
            {"id": "0b1d7c1e-0000-4000-8000-000000000002", "name": "", "status": "active"}]"#,
    )
    .unwrap();
    let out = kith(data.path(), &["import", file.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
    let err = stderr(&out);
    assert!(err.lines().last().unwrap().starts_with("kith: nothing imported: every one of the 2 records"), "{err}");
    assert!(!stdout(&out).contains("Imported"), "{}", stdout(&out));
}

#[test]
fn failures_exit_non_zero_with_one_line() {
    let data = tempfile::tempdir().unwrap();
    let cases: &[(&[&str], &str)] = &[
        (&["import", "/no/such/file.json"], "cannot read /no/such/file.json"),
        (&["--database-url", "mysql://db/kith", "export", "x"], "is not one Kith understands"),
        (&["serve", "--listen", "not-an-address"], "invalid value 'not-an-address'"),
        (&["export", "--format", "csv", "x"], "invalid value 'csv'"),
    ];
    for (args, expected) in cases {
        let out = kith(data.path(), args);
        assert!(!out.status.success(), "{args:?} should fail");
        let err = stderr(&out);
        assert!(err.contains(expected), "{args:?}: {err}");
    }
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = kith(data.path(), &["serve", "--listen", &addr]);
    assert_eq!(out.status.code(), Some(1));
    let err = stderr(&out);
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(err.starts_with(&format!("kith: cannot listen on {addr}")), "{err}");
}

/// A running `kith serve`, stopped when dropped (even when a test fails).
struct Server {
    child: std::process::Child,
    port: u16,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `kith serve` on a free port and waits until it accepts connections.
fn serve(data_dir: &Path, db: Option<(&str, &Path)>) -> Server {
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kith"));
    cmd.arg("--data-dir").arg(data_dir).args(["serve", "--listen", &format!("127.0.0.1:{port}")]);
    cmd.env_remove("KITH_DATABASE_URL");
    if let Some((url, key_file)) = db {
        cmd.env("KITH_DATABASE_URL", url).env("KITH_KEY_FILE", key_file);
    }
    let child = cmd.stdout(std::process::Stdio::null()).stderr(std::process::Stdio::null()).spawn().unwrap();
    let server = Server { child, port };
    for _ in 0..100 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return server;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("kith serve did not start on port {port}");
}

fn get(port: u16, path: &str) -> String {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

#[test]
fn serve_answers_over_http() {
    let data = tempfile::tempdir().unwrap();
    assert!(kith(data.path(), &["demo", "--load-only", "--services", "40"]).status.success());
    let server = serve(data.path(), None);
    let health = get(server.port, "/healthz");
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains("\"engine\":\"sqlite\"") && health.contains("\"services\":40"), "{health}");
}

/// SIGTERM (as a service manager or a container stops it) stops `kith serve` cleanly: it
/// stops accepting, finishes what is under way, and exits 0 within its grace.
#[test]
fn serve_stops_cleanly_on_sigterm() {
    let data = tempfile::tempdir().unwrap();
    assert!(kith(data.path(), &["demo", "--load-only", "--services", "40"]).status.success());
    let mut server = serve(data.path(), None);
    assert!(get(server.port, "/healthz").starts_with("HTTP/1.1 200"));
    let pid = server.child.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    let started = std::time::Instant::now();
    let status = loop {
        if let Some(status) = server.child.try_wait().unwrap() {
            break status;
        }
        assert!(started.elapsed() < std::time::Duration::from_secs(25), "still running after SIGTERM");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0), "a clean stop");
    assert!(std::net::TcpStream::connect(("127.0.0.1", server.port)).is_err(), "the port is closed");
}

#[tokio::test]
async fn the_same_commands_work_on_postgresql() {
    let test = kith_app::testing::TestApp::on(kith_store::Engine::Postgres, "the_same_commands_work_on_postgresql");
    let Some(t) = test.build().await else { return };
    let url = t.test_store().postgres_url().unwrap();
    let data = tempfile::tempdir().unwrap();
    let run = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kith"))
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env("KITH_DATABASE_URL", &url)
            .output()
            .unwrap()
    };
    let out = run(&["demo", "--load-only", "--services", "120"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("Demo caseload skipped: there is no key file"), "{}", stderr(&out));
    assert!(!data.path().join("kith.db").exists(), "nothing is written to SQLite when PostgreSQL is configured");
    let export = data.path().join("export");
    let out = run(&["export", export.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(total(&export, "services.json"), 120);
    let out = run(&["import", export.to_str().unwrap()]);
    assert!(
        stdout(&out).contains("New or changed: 0 services"),
        "re-importing an export changes nothing: {}",
        stdout(&out)
    );
    let sheet = data.path().join("sheet.csv");
    std::fs::write(&sheet, "Group,Run by,Where\nWalk,Trust,\"56.1, -3.2\"\nSwim,Trust,\n").unwrap();
    let map = data.path().join("sheet.toml");
    std::fs::write(&map, "[columns]\nname = \"Group\"\norganization = \"Run by\"\nlat_long = \"Where\"\n").unwrap();
    let (sheet, map) = (sheet.to_str().unwrap(), map.to_str().unwrap());
    let out = run(&["import", sheet, "--map", map]);
    assert!(stdout(&out).contains("New or changed: 2 services, 1 organisations, 1 locations"), "{}", stdout(&out));
    let out = run(&["import", sheet, "--map", map]);
    assert!(stdout(&out).contains("New or changed: 0 services, 0 organisations, 0 locations"), "{}", stdout(&out));

    // With PostgreSQL, instances share a key file made once; serving without one fails.
    let key_file = data.path().join("shared-keys.txt");
    let out = run(&["serve", "--listen", "127.0.0.1:0"]);
    assert!(stderr(&out).contains("kith keys new"), "{}", stderr(&out));
    let out = run(&["keys", "new", key_file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let with_keys = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kith"))
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env("KITH_DATABASE_URL", &url)
            .env("KITH_KEY_FILE", &key_file)
            .output()
            .unwrap()
    };
    let out = with_keys(&["orgs", "add-area", "Fife"]);
    let area = stdout(&out).rsplit(' ').next().unwrap().trim().to_owned();
    let out =
        with_keys(&["users", "add", "cam@example.org", "--name", "Cam", "--role", "commissioner", "--area", &area]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = with_keys(&["keys", "rotate"]);
    assert!(stdout(&out).contains("re-encrypted 2 fields"), "{}", stdout(&out));
    assert!(stdout(&with_keys(&["users", "list"])).contains("cam@example.org"));
    let out = with_keys(&["users", "grant", "cam@example.org", "--role", "curator", "--area", &area]);
    assert!(stdout(&out).contains("Commissioner for Fife, Curator for Fife"), "{}", stdout(&out));
    // Each change the commands made is on the record beside it.
    let query = kith_domain::account::AuditQuery { limit: 100, ..Default::default() };
    let recorded: Vec<String> = t.store().audit(&query).await.unwrap().into_iter().map(|e| e.action).collect();
    for action in ["user.create", "keys.rotate", "user.grant"] {
        assert!(recorded.iter().any(|a| a == action), "{action} in {recorded:?}");
    }

    let server = serve(data.path(), Some((&url, &key_file)));
    let health = get(server.port, "/healthz");
    drop(server);
    assert!(health.contains("\"engine\":\"postgres\"") && health.contains("\"services\":122"), "{health}");
    t.cleanup().await;
}

#[test]
fn users_orgs_and_keys_from_the_command_line() {
    let data = tempfile::tempdir().unwrap();
    let out = kith(data.path(), &["orgs", "add-area", "East End PCN"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let area = stdout(&out).rsplit(' ').next().unwrap().trim().to_owned();
    let out = kith(data.path(), &["orgs", "add", "Parkhead Health Centre", "--ods", "43210", "--area", &area]);
    assert!(out.status.success(), "{}", stderr(&out));
    let bad = kith(data.path(), &["orgs", "add", "Bad practice", "--ods", "no spaces!"]);
    assert!(!bad.status.success());
    assert!(stderr(&bad).contains("is not an ODS code"), "{}", stderr(&bad));

    let out = kith(
        data.path(),
        &["users", "add", "ada@example.org", "--name", "Ada Lovelace", "--role", "area-admin", "--area", &area],
    );
    assert!(out.status.success(), "{}", stderr(&out));
    let said = stdout(&out);
    assert!(said.contains("password, shown once: ") && said.contains("two-step sign-in"), "{said}");
    assert!(data.path().join("keys.txt").exists(), "a key file is made on first use");

    let again =
        kith(data.path(), &["users", "add", "ADA@example.org", "--name", "Ada", "--role", "curator", "--area", &area]);
    assert_eq!(again.status.code(), Some(1));
    assert_eq!(stderr(&again).trim(), "kith: another user already has that email address");
    let nowhere = kith(
        data.path(),
        &[
            "users",
            "add",
            "b@example.org",
            "--name",
            "B",
            "--role",
            "curator",
            "--area",
            "00000000-0000-0000-0000-000000000000",
        ],
    );
    assert!(stderr(&nowhere).contains("there is no area with id"), "{}", stderr(&nowhere));

    let mut reset = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["users", "reset", "ada@example.org", "--password-stdin"])
        .env_remove("KITH_DATABASE_URL")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    reset.stdin.take().unwrap().write_all(b"short\n").unwrap();
    let out = reset.wait_with_output().unwrap();
    assert!(stderr(&out).contains("at least 12 characters"), "{}", stderr(&out));

    // One person, two places.
    let out = kith(data.path(), &["orgs", "add", "Shettleston Health Centre", "--ods", "43211"]);
    let second = stdout(&out).rsplit(' ').next().unwrap().trim().to_owned();
    let out = kith(data.path(), &["users", "grant", "ada@example.org", "--role", "clinician", "--org", &second]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("Area administrator for East End PCN, Clinician at Shettleston Health Centre"),
        "{}",
        stdout(&out)
    );

    let db = data.path().join("kith.db");
    let raw = String::from_utf8_lossy(&std::fs::read(&db).unwrap()).to_lowercase();
    assert!(!raw.contains("lovelace"), "names are encrypted in the database file");
    let out = kith(data.path(), &["keys", "rotate"]);
    assert!(
        stdout(&out).contains("Added key k2") && stdout(&out).contains("re-encrypted 2 fields"),
        "{}",
        stdout(&out)
    );
    let list = stdout(&kith(data.path(), &["users", "list"]));
    assert!(list.contains("ada@example.org\tAda Lovelace\ttwo-step off\tarea_admin@area:"), "{list}");
    assert!(list.contains(" clinician@organisation:"), "{list}");
    let refused = kith(data.path(), &["keys", "new", data.path().join("keys.txt").to_str().unwrap()]);
    assert!(stderr(&refused).contains("will not replace a key file"));

    // Losing the key file is noticed, not papered over with a new one.
    std::fs::rename(data.path().join("keys.txt"), data.path().join("keys.bak")).unwrap();
    let out = kith(data.path(), &["users", "list"]);
    assert!(stderr(&out).contains("restore the key file from your backup"), "{}", stderr(&out));
}

#[test]
fn keys_can_come_from_the_environment() {
    let data = tempfile::tempdir().unwrap();
    let file = data.path().join("k.txt");
    assert!(kith(data.path(), &["keys", "new", file.to_str().unwrap()]).status.success());
    let text = std::fs::read_to_string(&file).unwrap();
    let env_keys: String = text.lines().filter(|l| !l.starts_with('#')).collect::<Vec<_>>().join(";");
    std::fs::remove_file(&file).unwrap();
    let run = |args: &[&str], keys: &str| {
        Command::new(env!("CARGO_BIN_EXE_kith"))
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env_remove("KITH_DATABASE_URL")
            .env("KITH_KEYS", keys)
            .output()
            .unwrap()
    };
    let out = run(&["orgs", "add-area", "Fife"], &env_keys);
    let area = stdout(&out).rsplit(' ').next().unwrap().trim().to_owned();
    let out = run(&["users", "add", "fi@example.org", "--name", "Fi", "--role", "curator", "--area", &area], &env_keys);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(!data.path().join("keys.txt").exists(), "no key file is made when the keys come from the environment");
    let rotated = run(&["keys", "rotate"], &env_keys);
    assert!(rotated.status.success(), "{}", stderr(&rotated));
    let new_keys = stdout(&rotated).trim().to_owned();
    assert!(new_keys.contains("k2 = ") && stderr(&rotated).contains("Re-encrypted 2 fields"), "{}", stderr(&rotated));
    assert!(stdout(&run(&["users", "list"], &new_keys)).contains("fi@example.org"));
    let bad = run(&["users", "list"], "lookup = nonsense");
    assert!(stderr(&bad).contains("cannot use the keys in KITH_KEYS"), "{}", stderr(&bad));
}

/// Bristol's real ORUK v1 feed lists no venues. Loaded the way a practice would, with the
/// place it covers, its services are found from a Bristol postcode and say where they
/// serve; loading it again changes nothing.
#[test]
fn a_real_feed_with_no_venues_is_found_near_a_postcode_in_the_place_it_covers() {
    let Some(shared) = kith_store::testing::shared_dir("a_real_feed_with_no_venues_is_found_near_a_postcode") else {
        return;
    };
    let data = tempfile::tempdir().unwrap();
    let postcodes = shared.join("data/geo/postcodes-bristol.csv");
    let feed = shared.join("data/oruk-v1/bristol-services.json");
    assert!(kith(data.path(), &["geo", "import", postcodes.to_str().unwrap()]).status.success());

    let refused = kith(data.path(), &["import", feed.to_str().unwrap(), "--area", "Bristol"]);
    assert!(!refused.status.success());
    assert!(stderr(&refused).contains("not a GSS area code"), "{}", stderr(&refused));

    let out = kith(data.path(), &["import", feed.to_str().unwrap(), "--area", "E06000023"]);
    assert_eq!(out.status.code(), Some(2), "two records in the real feed are refused: {}", stderr(&out));
    assert!(stdout(&out).contains("New or changed: 817 services"), "{}", stdout(&out));
    assert!(stdout(&out).contains("817 services with no venue or area of their own"), "{}", stdout(&out));
    let again = kith(data.path(), &["import", feed.to_str().unwrap(), "--area", "E06000023"]);
    assert!(stdout(&again).contains("New or changed: 0 services, 0 organisations"), "{}", stdout(&again));

    let server = serve(data.path(), None);
    // The server builds its index from the store as it starts: wait for it.
    let mut page = String::new();
    for _ in 0..100 {
        page = get(server.port, "/?q=lonely&where=BS1+5TR");
        if page.contains("Serves all of Bristol") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(page.contains("Serves all of Bristol"), "area-wide services are found near BS1 5TR");
    let found = page.split("services for “lonely” near BS1 5TR").next().unwrap_or_default();
    let count: usize = found.rsplit('>').next().unwrap_or_default().trim().parse().unwrap_or(0);
    assert!(count >= 5, "at least five services for \"lonely\" near BS1 5TR, found {count}");
    // A Sheffield postcode is not in Bristol: Kith does not know it, and says so.
    let elsewhere = get(server.port, "/?q=lonely&where=S1+1AA");
    assert!(!elsewhere.contains("Serves all of Bristol"), "a place outside Bristol finds none of them");
}

/// A real HTTP server on 127.0.0.1 serving `body` as JSON at every path, one connection
/// at a time. Returns its base address.
fn feed_server(body: Vec<u8>) -> String {
    feed_server_with(move |_| body.clone(), std::time::Duration::ZERO)
}

/// The same, answering each request target with `answer`, after `delay`.
fn feed_server_with(answer: impl Fn(&str) -> Vec<u8> + Send + 'static, delay: std::time::Duration) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            let mut request = Vec::new();
            let mut buf = [0u8; 4096];
            while !request.windows(4).any(|w| w == b"\r\n\r\n") {
                match stream.read(&mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(n) => request.extend_from_slice(&buf[..n]),
                }
            }
            let target = String::from_utf8_lossy(&request).split_whitespace().nth(1).unwrap_or("/").to_owned();
            std::thread::sleep(delay);
            let body = answer(&target);
            let head = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(head.as_bytes());
            let _ = stream.write_all(&body);
        }
    });
    url
}

#[test]
fn feeds_are_added_pulled_listed_and_removed() {
    let Some(shared) = kith_store::testing::shared_dir("feeds_are_added_pulled_listed_and_removed") else { return };
    let data = tempfile::tempdir().unwrap();
    let url = feed_server(std::fs::read(shared.join("data/oruk-v1/bristol-services.json")).unwrap());

    let out = kith(data.path(), &["feeds", "list"]);
    assert!(stdout(&out).contains("No feeds yet"), "{}", stdout(&out));
    let bad = kith(data.path(), &["feeds", "add", &url, "--every", "fortnightly"]);
    assert!(stderr(&bad).contains("give hours or days from 1h to 90d"), "{}", stderr(&bad));
    let bad = kith(data.path(), &["feeds", "add", "ftp://example.org"]);
    assert!(stderr(&bad).contains("must start with https:// or http://"), "{}", stderr(&bad));

    let out = kith(data.path(), &["feeds", "add", &url, "--name", "bristol", "--area", "E06000023", "--every", "7d"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("pulled every 7 days"), "{}", stdout(&out));
    let out = kith(data.path(), &["feeds", "pull", "bristol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stdout(&out).contains("bristol (1 page, ")
            && stdout(&out).contains("817 services: 817 new, 0 changed, 0 unchanged, 0 withdrawn, 2 refused"),
        "{}",
        stdout(&out)
    );
    let out = kith(data.path(), &["feeds", "pull"]);
    assert!(stdout(&out).contains("0 new, 0 changed, 817 unchanged"), "{}", stdout(&out));
    let out = kith(data.path(), &["feeds", "list"]);
    assert!(
        stdout(&out).contains("bristol\t") && stdout(&out).contains("817 services: 0 new, 0 changed"),
        "{}",
        stdout(&out)
    );
    // The export says where each service came from, in HSDS metadata.
    let out = kith(data.path(), &["export", "--format", "hsds", data.path().join("out").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let services: serde_json::Value =
        serde_json::from_slice(&std::fs::read(data.path().join("out/services.json")).unwrap()).unwrap();
    let first = &services["contents"][0];
    let sources: Vec<&serde_json::Value> =
        first["metadata"].as_array().unwrap().iter().filter(|m| m["field_name"] == "kith:source").collect();
    assert_eq!(sources.len(), 1, "{first}");
    assert!(sources[0]["updated_by"].as_str().unwrap().starts_with("feed:"), "{}", sources[0]);
    assert_eq!(sources[0]["replacement_value"], first["id"], "its id in the feed");
    assert_eq!(sources[0]["last_action_type"], "listed");

    let out = kith(data.path(), &["feeds", "pull", "nowhere"]);
    assert!(stderr(&out).contains("there is no feed named nowhere"), "{}", stderr(&out));
    assert!(kith(data.path(), &["feeds", "remove", "bristol"]).status.success());
    assert!(stdout(&kith(data.path(), &["feeds", "list"])).contains("No feeds yet"));
}

/// A pull killed half-way leaves the store as it was, and the next pull completes it.
#[test]
fn a_pull_killed_half_way_loses_nothing_and_the_next_completes_it() {
    let Some(shared) = kith_store::testing::shared_dir("a_pull_killed_half_way") else { return };
    let data = tempfile::tempdir().unwrap();
    let all: Vec<serde_json::Value> =
        serde_json::from_slice(&std::fs::read(shared.join("data/oruk-v1/bristol-services.json")).unwrap()).unwrap();
    // Spring pages of 50, numbered from 0, each a little slow.
    let url = feed_server_with(
        move |target| {
            let page: usize = target
                .split(['?', '&'])
                .find_map(|p| p.strip_prefix("page="))
                .and_then(|n| n.parse().ok())
                .unwrap_or(0);
            let total = all.len().div_ceil(50);
            let content: Vec<_> = all.iter().skip(page * 50).take(50).cloned().collect();
            let body =
                serde_json::json!({"content": content, "number": page, "totalPages": total, "last": page + 1 >= total});
            serde_json::to_vec(&body).unwrap()
        },
        std::time::Duration::from_millis(150),
    );
    assert!(kith(data.path(), &["feeds", "add", &url, "--name", "bristol", "--area", "E06000023"]).status.success());
    let mut pulling = Command::new(env!("CARGO_BIN_EXE_kith"))
        .arg("--data-dir")
        .arg(data.path())
        .args(["feeds", "pull", "bristol"])
        .env_remove("KITH_DATABASE_URL")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Several of its 17 pages in, and long before the last.
    std::thread::sleep(std::time::Duration::from_millis(1000));
    pulling.kill().unwrap();
    pulling.wait().unwrap();
    let out = kith(data.path(), &["export", "--format", "hsds", data.path().join("half").to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(total(&data.path().join("half"), "services.json"), 0, "nothing from the killed pull is written");

    let out = kith(data.path(), &["feeds", "pull", "bristol"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("(17 pages, ") && stdout(&out).contains("817 services: 817 new"), "{}", stdout(&out));
}

/// A community directory kept in a spreadsheet, as people keep them: addresses over several
/// lines in one cell, "lat,long" in one column, a closed flag, a mistyped postcode and a row
/// with no name. Rows with a postcode and no coordinates are placed at the postcode from the
/// real Bristol postcode table, found by search near it, and importing again changes nothing.
#[test]
fn a_spreadsheet_is_imported_through_a_map_of_its_columns() {
    let Some(shared) = kith_store::testing::shared_dir("a_spreadsheet_is_imported_through_a_map") else { return };
    let data = tempfile::tempdir().unwrap();
    let sheet = data.path().join("groups.csv");
    std::fs::write(
        &sheet,
        concat!(
            "Group,Run by,Charity no.,Address,Post code,Location,Helps with,When,Closed?\n",
            "Harbourside Lunch Club,Harbour Trust,1100001,\"Unit 1\nHarbour Road\nBristol\",bs1 1ad,,lonely; food,Thursdays 12:00-14:00,No\n",
            "Castle Park Walk,Harbour Trust,1100001,\"Castle Park, Bristol\",,\"51.4560, -2.5880\",exercise,Wednesdays 10-11,\n",
            "Old Choir,Harbour Trust,,,BS1 1AD,,music,,TRUE \n",
            "Quayside Cafe,Harbour Trust,,,BS1 IAD,,,,\n",
            ",Harbour Trust,,,BS1 1AD,,,,\n",
            "Knit and Natter,Harbour Trust,,\"Hall\nBristol\",BS1 9ZZ,,crafts; xyzzy,Tues 2-4pm,\n",
            "Book Club,Harbour Trust,,,BS1 1A,,,,\n",
        ),
    )
    .unwrap();
    let map = data.path().join("groups.toml");
    std::fs::write(
        &map,
        r#"
[columns]
name = "Group"
organization = "Run by"
charity_number = "Charity no."
address = "Address"
postcode = "Post code"
lat_long = "Location"
need = "Helps with"
schedule = "When"

[skip]
column = "Closed?"
equals = "True"
"#,
    )
    .unwrap();
    let (sheet, map) = (sheet.to_str().unwrap(), map.to_str().unwrap());
    let postcodes = shared.join("data/geo/postcodes-bristol.csv");
    assert!(kith(data.path(), &["geo", "import", postcodes.to_str().unwrap()]).status.success());
    let services = |dir: &Path| {
        let export = dir.join("export");
        let _ = std::fs::remove_dir_all(&export);
        assert!(kith(dir, &["export", export.to_str().unwrap()]).status.success());
        total(&export, "services.json")
    };

    let without_map = kith(data.path(), &["import", sheet]);
    assert!(
        stderr(&without_map).contains("give the map of its columns with --map MAP.toml"),
        "{}",
        stderr(&without_map)
    );
    let bad_map = data.path().join("bad.toml");
    std::fs::write(&bad_map, "[columns]\nname = \"Group name\"\n").unwrap();
    let out = kith(data.path(), &["import", sheet, "--map", bad_map.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stderr(&out).contains("\"Group name\" (for name). The sheet's columns are \"Group\", \"Run by\""),
        "{}",
        stderr(&out)
    );

    let strict = kith(data.path(), &["import", sheet, "--map", map, "--strict"]);
    assert_eq!(strict.status.code(), Some(1), "{}", stderr(&strict));
    assert!(stderr(&strict).contains("nothing imported: 3 of 6 records are invalid"), "{}", stderr(&strict));
    assert_eq!(services(data.path()), 0, "--strict imported nothing");

    let out = kith(data.path(), &["import", sheet, "--map", map]);
    let (said, err) = (stdout(&out), stderr(&out));
    assert_eq!(out.status.code(), Some(2), "some rows refused, the rest imported: {err}");
    // The first row's address spans lines 2 to 4, so the mistyped postcode is on line 7.
    assert!(
        err.contains("groups.csv line 7 (\"Quayside Cafe\"): the \"Post code\" column: “BS1 IAD” is not a postcode"),
        "{err}"
    );
    assert!(err.contains("Did you mean BS1 1AD?"), "{err}");
    assert!(err.contains("groups.csv line 8: no name: the \"Group\" column is empty"), "{err}");
    // Too short for a slip to explain: the nearest postcodes Kith knows are suggested.
    assert!(
        err.contains("groups.csv line 11 (\"Book Club\"): the \"Post code\" column: “BS1 1A” is not a postcode"),
        "{err}"
    );
    assert!(err.contains("Did you mean BS1 1AD, BS1 1DA or BS1 1EA?"), "{err}");
    assert!(err.contains("groups.csv line 9: the need \"xyzzy\" is not one Kith knows"), "{err}");
    assert!(err.contains("groups.csv line 9: the postcode BS1 9ZZ is not in Kith's postcode table"), "{err}");
    assert!(err.contains("1 row left out by the map's [skip]"), "{err}");
    assert!(
        said.contains("Imported 3 of 6 records (3 rejected). New or changed: 3 services, 1 organisations, 3 locations"),
        "{said}"
    );
    assert_eq!(services(data.path()), 3);

    let again = kith(data.path(), &["import", sheet, "--map", map]);
    assert!(
        stdout(&again)
            .contains("New or changed: 0 services, 0 organisations, 0 locations, 0 taxonomy terms, 0 taxonomies"),
        "{}",
        stdout(&again)
    );
    assert_eq!(services(data.path()), 3, "importing the same sheet again adds nothing");

    let export = data.path().join("export");
    let exported: serde_json::Value =
        serde_json::from_slice(&std::fs::read(export.join("services.json")).unwrap()).unwrap();
    let lunch =
        exported["contents"].as_array().unwrap().iter().find(|s| s["name"] == "Harbourside Lunch Club").unwrap();
    let venue = &lunch["service_at_locations"][0]["location"];
    assert_eq!(
        (venue["latitude"].as_f64(), venue["longitude"].as_f64()),
        (Some(51.458455), Some(-2.574166)),
        "placed at BS1 1AD"
    );
    assert_eq!(venue["addresses"][0]["address_2"], "Harbour Road");
    assert_eq!(lunch["organization"]["organization_identifiers"][0]["identifier_scheme"], "GB-CHC");
    let source = lunch["metadata"].as_array().unwrap().iter().find(|m| m["field_name"] == "kith:source").unwrap();
    assert_eq!(source["updated_by"], "file:groups.csv", "the sheet is kept as the service's source");

    let server = serve(data.path(), None);
    let mut page = String::new();
    for _ in 0..100 {
        page = get(server.port, "/?q=lunch&where=BS1+1AD");
        if page.contains("Harbourside Lunch Club") {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert!(page.contains("Harbourside Lunch Club"), "the sheet's lunch club is found near its postcode: {page}");
    let walk = get(server.port, "/?q=walk&where=BS1+1AD");
    assert!(walk.contains("Castle Park Walk"), "and the walk, placed by its own coordinates");
}

/// Every file of an export, read back, for comparing two directories' contents.
fn exported(dir: &Path) -> std::collections::BTreeMap<String, String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), std::fs::read_to_string(&p).unwrap()))
        .collect()
}

/// A backup restored into an empty data directory gives the same export, the same
/// people (their sealed fields readable with the key file kept apart) and the same search
/// answers; a restore never writes over a database that holds something.
#[test]
fn a_sqlite_backup_restored_into_an_empty_data_directory_is_the_same_directory() {
    let old = tempfile::tempdir().unwrap();
    let out = kith(old.path(), &["demo", "--load-only", "--services", "60", "--caseload", "12"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("kith-backup.db");
    let out = kith(old.path(), &["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Keep a copy of the key file"), "{}", stdout(&out));
    let again = kith(old.path(), &["backup", file.to_str().unwrap()]);
    assert_eq!(again.status.code(), Some(1), "a backup never writes over a file");

    let new = tempfile::tempdir().unwrap();
    let out = kith(new.path(), &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Restored 60 services"), "{}", stdout(&out));
    std::fs::copy(old.path().join("keys.txt"), new.path().join("keys.txt")).unwrap();
    let refused = kith(new.path(), &["restore", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("already exists; restore into an empty data directory"), "{}", stderr(&refused));

    for (what, args) in [
        ("export", vec!["export"]),
        ("people, with their sealed fields", vec!["users", "list"]),
        ("search", vec!["search", "lonely", "--near", "G31 2ER"]),
    ] {
        let run = |dir: &Path| {
            let mut args = args.clone();
            let to = dir.join("export");
            let to = to.to_str().unwrap().to_owned();
            if what == "export" {
                args.push(&to);
            }
            let out = kith(dir, &args);
            assert!(out.status.success(), "{what}: {}", stderr(&out));
            if what == "export" { format!("{:?}", exported(&dir.join("export"))) } else { stdout(&out) }
        };
        assert_eq!(run(old.path()), run(new.path()), "{what} is the same after the restore");
    }
}

#[tokio::test]
async fn a_postgresql_backup_restores_into_an_empty_database() {
    let test = kith_app::testing::TestApp::on(kith_store::Engine::Postgres, "a_postgresql_backup_restores");
    let Some(t) = test.build().await else { return };
    let url = t.test_store().postgres_url().unwrap();
    let admin = kith_store::testing::postgres_url().unwrap();
    let (client, connection) =
        kith_store::postgres::parse_url(&admin).unwrap().connect(tokio_postgres::NoTls).await.unwrap();
    tokio::spawn(connection);
    let empty = format!("kith_restore_{}", uuid::Uuid::new_v4().simple());
    client.batch_execute(&format!("CREATE DATABASE {empty}")).await.unwrap();
    let empty_url = format!("{}/{empty}", admin.rsplit_once('/').unwrap().0);

    let data = tempfile::tempdir().unwrap();
    let run = |db: &str, args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_kith"))
            .arg("--data-dir")
            .arg(data.path())
            .args(args)
            .env("KITH_DATABASE_URL", db)
            .output()
            .unwrap()
    };
    assert!(run(&url, &["demo", "--load-only", "--services", "50"]).status.success());
    let file = data.path().join("kith.dump");
    let out = run(&url, &["backup", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    let out = run(&empty_url, &["restore", file.to_str().unwrap()]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stdout(&out).contains("Restored 50 services"), "{}", stdout(&out));
    let refused = run(&url, &["restore", file.to_str().unwrap()]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(stderr(&refused).contains("restore into a new, empty database"), "{}", stderr(&refused));
    let (a, b) = (data.path().join("a"), data.path().join("b"));
    assert!(run(&url, &["export", a.to_str().unwrap()]).status.success());
    assert!(run(&empty_url, &["export", b.to_str().unwrap()]).status.success());
    assert_eq!(exported(&a), exported(&b), "the same directory");
    client.batch_execute(&format!("DROP DATABASE {empty} WITH (FORCE)")).await.unwrap();
    t.cleanup().await;
}
