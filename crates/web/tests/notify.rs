//! Sending the shortlist by email and text message through the outbox, and the real
//! senders (SMTP, GOV.UK Notify) against servers that speak their protocols, run here.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use axum::Router;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use http_body_util::BodyExt;
use kith_app::notify::{Email, FileMailer, Mailer, NotifyMailer, Senders, SmtpMailer, Text, Texter};
use kith_app::testing::TestApp;
use kith_domain::hsds::Service;
use kith_domain::{DirectoryBatch, FixedClock, ServiceStatus};
use kith_web::{AppState, router};
use std::sync::{Arc, Mutex};
use tower::ServiceExt;
use uuid::Uuid;

fn clock() -> Arc<FixedClock> {
    Arc::new(FixedClock::new(chrono::DateTime::from_timestamp(1_780_000_000, 0).unwrap()))
}

async fn send(app: &Router, method: Method, uri: &str, cookie: &str, body: &str) -> (StatusCode, String) {
    let request = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::HOST, "kith.test")
        .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
        .header(header::ORIGIN, "http://kith.test")
        .header(header::COOKIE, cookie)
        .body(Body::from(body.to_owned()))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = response.into_body().collect().await.unwrap().to_bytes();
    (status, String::from_utf8_lossy(&bytes).into_owned())
}

#[tokio::test]
async fn the_shortlist_goes_by_email_and_text_through_the_outbox() {
    let t = TestApp::on(kith_store::Engine::Sqlite, "notify")
        .at(kith_domain::Clock::now(&*clock()))
        .public_url("https://kith.example.org")
        .build()
        .await
        .unwrap();
    let mut batch = DirectoryBatch::new();
    let ids = [Uuid::from_u128(1), Uuid::from_u128(2)];
    for (id, name) in ids.iter().zip(["Walking group", "Lunch club"]) {
        let mut s = Service::new(*id, name, ServiceStatus::Active);
        s.description = Some(format!("{name} every week"));
        batch.add_service(s);
    }
    t.store().write_batch(batch).await.unwrap();
    let state = AppState::new(t.app.clone());
    let app = router(state.clone());
    let shortlist = format!("kith_shortlist={}.{}", ids[0], ids[1]);
    // Without signing in, only email is offered (security.md, finding 5).
    let (status, body) = send(&app, Method::GET, "/shortlist/send", &shortlist, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(!body.contains("Text message"), "{body}");
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &shortlist, "how=text&to=07700+900123").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Sign in to send a text message"), "{body}");
    // Staff may send texts too.
    let grants = vec![kith_domain::account::Grant {
        role: kith_domain::account::Role::Receptionist,
        scope: kith_domain::account::Scope::Organisation(Uuid::from_u128(77)),
    }];
    state
        .store()
        .put_organisation(kith_domain::account::Organisation {
            id: Uuid::from_u128(77),
            kind: kith_domain::account::OrgKind::Practice,
            name: "Parkhead Health Centre".into(),
            ods_code: Some("S99001".into()),
            directory_id: None,
            areas: vec![],
        })
        .await
        .unwrap();
    let new =
        kith_app::accounts::NewUser { email: "rec@example.org".into(), name: "Rec".into(), password: None, grants };
    let receptionist = state.accounts.create_user(new, &kith_app::accounts::Actor::cli()).await.unwrap();
    let (token, _) = state
        .accounts
        .start_session(receptionist.id, kith_domain::account::SessionStage::Complete, None)
        .await
        .unwrap();
    let cookie = format!("{shortlist}; __Host-kith_session={token}");

    let (status, body) = send(&app, Method::GET, "/shortlist/send", &cookie, "").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("Send the shortlist") && body.contains("2 services") && body.contains("Text message"));
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &cookie, "how=text&to=0141+123+4567").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("Enter a UK mobile number"));
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &cookie, "how=email&to=not-an-address").await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert!(body.contains("correct format"));
    let (status, body) = send(&app, Method::POST, "/shortlist/send", "", "how=email&to=a%40example.org").await;
    assert_eq!(status, StatusCode::BAD_REQUEST, "an empty shortlist");
    assert!(body.contains("nothing to send"));

    let (status, body) = send(&app, Method::POST, "/shortlist/send", &cookie, "how=email&to=sam%40example.org").await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.contains("will go to s***@example.org"), "{body}");
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &cookie, "how=text&to=%2B44+7700+900123").await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.contains("07*** ***123"));
    assert_eq!(state.store().outbox_counts().await.unwrap().pending, 2, "queued, not sent in the request");

    let dir = tempfile::tempdir().unwrap();
    let files = Arc::new(FileMailer::new(dir.path().to_owned()));
    let senders = Senders { mail: files.clone(), text: Some(files) };
    assert_eq!(state.outbox().deliver_due(&senders).await.unwrap(), 2);
    let mut written: Vec<String> =
        std::fs::read_dir(dir.path()).unwrap().map(|f| std::fs::read_to_string(f.unwrap().path()).unwrap()).collect();
    written.sort_by_key(|m| m.starts_with("To: 07700900123"));
    let (email, text) = (&written[0], &written[1]);
    assert!(
        email.contains("To: sam@example.org\r\n") && email.contains("Subject: Services we talked about"),
        "{email}"
    );
    assert!(
        email.contains("Walking group\r\n") && email.contains("More: https://kith.example.org/services/"),
        "{email}"
    );
    // It names the practice that sent it, and keeps the listing's warning (item 15).
    assert!(email.contains("Services we talked about at Parkhead Health Centre"), "{email}");
    assert!(email.contains("Check before going: this listing was last checked: not yet verified"), "{email}");
    assert!(
        text.starts_with("To: 07700900123\n\nParkhead Health Centre: services we talked about:")
            && text.contains("1. Walking group")
            && text.contains("2. Lunch club")
    );
    // One short link to the list, live, and the whole text within two segments (item 15).
    let body = text.split_once("\n\n").unwrap().1;
    assert!(kith_domain::sms::segments(body) <= 2, "{body}");
    let link = body.rsplit_once("Details: https://kith.example.org").unwrap().1.trim();
    assert!(link.starts_with("/l/") && link.len() == 13, "{link}");
    let (status, listed) = send(&app, Method::GET, link, "", "").await;
    assert_eq!(status, StatusCode::OK, "{listed}");
    assert!(listed.contains("Walking group every week") && listed.contains("Lunch club"), "{listed}");
    let (status, _) = send(&app, Method::GET, "/l/K7QW2M9XHP", "", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    let (status, _) = send(&app, Method::GET, "/l/not-a-code", "", "").await;
    assert_eq!(status, StatusCode::NOT_FOUND);

    // Nothing of the address stays in the audit log or the outbox.
    let audit =
        state.store().audit(&kith_domain::account::AuditQuery { limit: 10, ..Default::default() }).await.unwrap();
    assert_eq!(audit.iter().filter(|e| e.action == "shortlist.send").count(), 2);
    assert!(audit.iter().all(|e| !format!("{e:?}").contains("sam@") && !format!("{e:?}").contains("900123")));
    let counts = state.store().outbox_counts().await.unwrap();
    assert_eq!((counts.pending, counts.sent), (0, 2));

    // One address is sent at most three lists in the window, whoever sends them.
    for n in 1..=3 {
        let (status, _) =
            send(&app, Method::POST, "/shortlist/send", &shortlist, "how=email&to=pat%40example.org").await;
        assert_eq!(status, StatusCode::OK, "list {n}");
    }
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &cookie, "how=email&to=PAT%40example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("This address has been sent several lists already"), "{body}");
    // And one address sends at most five without signing in: the three above, and two more.
    for to in ["jo", "kim"] {
        let body = format!("how=email&to={to}%40example.org");
        assert_eq!(send(&app, Method::POST, "/shortlist/send", &shortlist, &body).await.0, StatusCode::OK);
    }
    let (status, body) = send(&app, Method::POST, "/shortlist/send", &shortlist, "how=email&to=al%40example.org").await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(body.contains("Several lists have been sent from here already"), "{body}");
}

/// A minimal SMTP server: enough of RFC 5321 to take one message, without TLS.
async fn smtp_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let received = Arc::new(Mutex::new(Vec::new()));
    let store = received.clone();
    tokio::spawn(async move {
        loop {
            let (socket, _) = listener.accept().await.unwrap();
            let store = store.clone();
            tokio::spawn(async move {
                let (read, mut write) = socket.into_split();
                let mut lines = BufReader::new(read).lines();
                write.write_all(b"220 test.invalid ESMTP\r\n").await.unwrap();
                let mut data = None::<String>;
                let mut envelope = String::new();
                while let Ok(Some(line)) = lines.next_line().await {
                    if let Some(message) = data.as_mut() {
                        if line == "." {
                            store.lock().unwrap().push(format!("{envelope}{message}"));
                            data = None;
                            write.write_all(b"250 2.0.0 queued\r\n").await.unwrap();
                        } else {
                            message.push_str(&line);
                            message.push('\n');
                        }
                        continue;
                    }
                    let verb = line.split_whitespace().next().unwrap_or("").to_uppercase();
                    let reply: &[u8] = match verb.as_str() {
                        "EHLO" | "HELO" => b"250-test.invalid\r\n250 8BITMIME\r\n",
                        "MAIL" | "RCPT" => {
                            envelope.push_str(&line);
                            envelope.push('\n');
                            b"250 2.1.0 ok\r\n"
                        }
                        "DATA" => {
                            data = Some(String::new());
                            b"354 go ahead\r\n"
                        }
                        "QUIT" => {
                            write.write_all(b"221 bye\r\n").await.unwrap();
                            break;
                        }
                        "RSET" | "NOOP" => b"250 ok\r\n",
                        _ => b"502 not implemented\r\n",
                    };
                    write.write_all(reply).await.unwrap();
                }
            });
        }
    });
    (port, received)
}

#[tokio::test]
async fn smtp_sends_a_well_formed_message() {
    let (port, received) = smtp_server().await;
    let mailer = SmtpMailer::new(&format!("smtp://127.0.0.1:{port}?tls=none"), "Kith <kith@example.org>").unwrap();
    let email = Email {
        id: Uuid::from_u128(7),
        to: "sam@example.org".into(),
        subject: "Services we talked about".into(),
        body: "Walking group\nTuesdays 10:00–12:00".into(),
    };
    mailer.send(&email).await.unwrap();
    let got = received.lock().unwrap().clone();
    assert_eq!(got.len(), 1);
    let m = &got[0];
    assert!(m.contains("MAIL FROM:<kith@example.org>") && m.contains("RCPT TO:<sam@example.org>"), "{m}");
    assert!(
        m.contains("Subject: Services we talked about")
            && m.contains("Message-ID: <00000000-0000-0000-0000-000000000007@kith>"),
        "{m}"
    );
    assert!(m.contains("Walking group"), "{m}");
    // A refused address is permanent; a server that is not there is worth another try.
    let nowhere = SmtpMailer::new("smtp://127.0.0.1:1?tls=none", "kith@example.org").unwrap();
    assert!(matches!(nowhere.send(&email).await, Err(kith_app::notify::SendError::Temporary(_))));
    assert!(SmtpMailer::new("smtp://127.0.0.1:25", "not an address").is_err());
}

#[tokio::test]
async fn gov_uk_notify_gets_a_signed_request() {
    use axum::routing::post;
    let service = "26785a09-ab16-4eb0-8407-a37497a57506";
    let secret = "3d844edf-8d35-48ac-975b-e847b4f122b0";
    let seen = Arc::new(Mutex::new(Vec::<(String, String, serde_json::Value)>::new()));
    let record = seen.clone();
    let app = Router::new().route(
        "/v2/notifications/{kind}",
        post(
            move |axum::extract::Path(kind): axum::extract::Path<String>,
                  headers: axum::http::HeaderMap,
                  body: String| {
                let record = record.clone();
                async move {
                    let auth =
                        headers[header::AUTHORIZATION].to_str().unwrap().trim_start_matches("Bearer ").to_owned();
                    record.lock().unwrap().push((kind, auth, serde_json::from_str(&body).unwrap()));
                    (StatusCode::CREATED, "{}")
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });

    let key = format!("kith_live-{service}-{secret}");
    let notify = NotifyMailer::new(&key, "f33517ff-2a88-4f6e-b855-c550268ce08a", &base)
        .unwrap()
        .with_sms_template("0f1c2e4e-6c5a-4a63-8d0a-3b0f7c1c9b11")
        .unwrap()
        .with_senders(Some("8b1d0c2e-4f3a-4c5b-9d6e-7f8a9b0c1d2e"), Some("5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b"))
        .unwrap();
    // A sender is named by Notify's id for it (item 15: a configurable sender).
    let refused = NotifyMailer::new(&key, "f33517ff-2a88-4f6e-b855-c550268ce08a", &base)
        .unwrap()
        .with_senders(Some("ParkheadHC"), None)
        .unwrap_err();
    assert!(refused.contains("copy it from Notify's settings"), "{refused}");
    let email =
        Email { id: Uuid::from_u128(1), to: "sam@example.org".into(), subject: "Hello".into(), body: "Body".into() };
    notify.send(&email).await.unwrap();
    notify.send_text(&Text { id: Uuid::from_u128(2), to: "07700900123".into(), body: "Hi".into() }).await.unwrap();
    let seen = seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 2);
    let (kind, token, body) = &seen[0];
    assert_eq!(kind, "email");
    assert_eq!(body["email_address"], "sam@example.org");
    assert_eq!(body["personalisation"]["subject"], "Hello");
    // The token is an HS256 JWT from the service id, signed with the secret.
    let (input, signature) = token.rsplit_once('.').unwrap();
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    use base64::Engine;
    let signature = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(signature).unwrap();
    ring::hmac::verify(&key, input.as_bytes(), &signature).unwrap();
    assert!(input.contains('.'));
    assert_eq!(seen[1].0, "sms");
    assert_eq!(seen[1].2["phone_number"], "07700900123");
    assert_eq!(seen[1].2["sms_sender_id"], "8b1d0c2e-4f3a-4c5b-9d6e-7f8a9b0c1d2e");
    assert_eq!(seen[0].2["email_reply_to_id"], "5e6f7a8b-9c0d-4e1f-8a2b-3c4d5e6f7a8b");
}
