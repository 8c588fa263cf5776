//! Stopping a running server: SIGTERM while a request is half-read and a message is on
//! its way to GOV.UK Notify. Both finish, the process exits 0, and the message is marked
//! sent, so nothing is lost and nothing is sent twice.
#![cfg(unix)]
#![allow(clippy::unwrap_used, clippy::expect_used)] // Tests fail loudly by design.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long the stand-in for Notify takes to answer: long enough to send SIGTERM while it
/// is still thinking.
const NOTIFY_TAKES: Duration = Duration::from_secs(3);

/// A stand-in for GOV.UK Notify's API on 127.0.0.1: it records each request's path and
/// body, says so on `arrived`, then answers 201 after [`NOTIFY_TAKES`].
/// Each request Notify was sent: its path and its body.
type Seen = Arc<Mutex<Vec<(String, String)>>>;

fn slow_notify() -> (String, Seen, mpsc::Receiver<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (arrived, arrivals) = mpsc::channel();
    let record = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(stream) = stream else { continue };
            let record = record.clone();
            let arrived = arrived.clone();
            std::thread::spawn(move || {
                let mut reader = BufReader::new(stream);
                let mut request_line = String::new();
                reader.read_line(&mut request_line).unwrap();
                let mut length = 0;
                loop {
                    let mut line = String::new();
                    reader.read_line(&mut line).unwrap();
                    if line == "\r\n" || line.is_empty() {
                        break;
                    }
                    if let Some((name, value)) = line.split_once(':')
                        && name.eq_ignore_ascii_case("content-length")
                    {
                        length = value.trim().parse().unwrap();
                    }
                }
                let mut body = vec![0; length];
                reader.read_exact(&mut body).unwrap();
                let path = request_line.split_whitespace().nth(1).unwrap_or_default().to_owned();
                record.lock().unwrap().push((path, String::from_utf8(body).unwrap()));
                let _ = arrived.send(());
                std::thread::sleep(NOTIFY_TAKES);
                let mut stream = reader.into_inner();
                let answer = "HTTP/1.1 201 Created\r\nContent-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{}";
                stream.write_all(answer.as_bytes()).unwrap();
            });
        }
    });
    (base, seen, arrivals)
}

fn kith(data_dir: &Path) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_kith"));
    cmd.arg("--data-dir").arg(data_dir).env_remove("KITH_DATABASE_URL").env_remove("KITH_LISTEN");
    cmd
}

fn wait_for_port(port: u16, child: &mut Child) {
    for _ in 0..200 {
        if TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        assert!(child.try_wait().unwrap().is_none(), "kith serve exited before it listened");
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("kith serve did not start on port {port}");
}

fn request(port: u16, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(stream, "{head}Content-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
    let mut response = String::new();
    stream.read_to_string(&mut response).unwrap();
    response
}

fn wait_exit(child: &mut Child, within: Duration) -> std::process::ExitStatus {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("kith serve did not stop within {within:?} of SIGTERM");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn sigterm_lets_a_slow_request_and_a_running_job_finish_then_exits_0() {
    let data = tempfile::tempdir().unwrap();
    let loaded =
        kith(data.path()).args(["demo", "--load-only", "--services", "20", "--caseload", "0"]).output().unwrap();
    assert!(loaded.status.success(), "{}", String::from_utf8_lossy(&loaded.stderr));
    let (notify, seen, arrivals) = slow_notify();

    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let key = "kith_test-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0";
    let mut server = kith(data.path())
        .args(["serve", "--listen", &format!("127.0.0.1:{port}"), "--notify-url", &notify])
        .args(["--notify-api-key", key, "--notify-email-template", "f33517ff-2a88-4f6e-b855-c550268ce08a"])
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    wait_for_port(port, &mut server);

    // A service to put on a shortlist, from the ORUK API.
    let listing = request(port, "GET /oruk/services?per_page=1 HTTP/1.1\r\nHost: localhost\r\n", "");
    let json = &listing[listing.find("\r\n\r\n").unwrap() + 4..];
    let json: serde_json::Value = serde_json::from_str(json).unwrap();
    let service = json["contents"][0]["id"].as_str().unwrap().to_owned();
    let cookie = format!("Cookie: kith_shortlist={service}\r\n");

    // A job under way: the shortlist is emailed, and Notify is slow to take it.
    let sent = request(
        port,
        &format!(
            "POST /shortlist/send HTTP/1.1\r\nHost: localhost\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\n"
        ),
        "how=email&to=sam%40example.org",
    );
    assert!(sent.starts_with("HTTP/1.1 200"), "the list is queued: {sent}");
    arrivals.recv_timeout(Duration::from_secs(15)).expect("the outbox hands the email to Notify");

    // A request under way: its headers are in, half its body is not.
    let body = "how=email&to=jo%40example.org";
    let mut slow = TcpStream::connect(("127.0.0.1", port)).unwrap();
    write!(
        slow,
        "POST /shortlist/send HTTP/1.1\r\nHost: localhost\r\n{cookie}Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{}",
        body.len(),
        &body[..10]
    )
    .unwrap();
    slow.flush().unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let pid = server.id().to_string();
    assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
    std::thread::sleep(Duration::from_millis(500));
    // Still running: the rest of the slow request arrives and is answered.
    slow.write_all(&body.as_bytes()[10..]).unwrap();
    let mut answer = String::new();
    slow.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200"), "the request under way is answered: {answer}");
    let status = wait_exit(&mut server, Duration::from_secs(15));
    assert!(status.success(), "kith serve exits 0 on SIGTERM: {status:?}");

    // Notify saw the first email exactly once, and Kith recorded that it went.
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 1, "one email reached Notify before the stop: {seen:?}");
    assert_eq!(seen[0].0, "/v2/notifications/email");
    assert!(seen[0].1.contains("sam@example.org"), "{}", seen[0].1);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    let counts = runtime.block_on(async {
        let clock = Arc::new(kith_domain::SystemClock);
        let store = kith_store::open(None, data.path(), clock).await.unwrap();
        store.outbox_counts().await.unwrap()
    });
    assert_eq!(counts.sent, 1, "the email Notify took is marked sent, so it is not sent again: {counts:?}");
    assert_eq!(counts.pending, 1, "the list queued during the stop waits for the next start: {counts:?}");
    assert_eq!(counts.failed, 0, "{counts:?}");
}
