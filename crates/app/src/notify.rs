//! Sending what the outbox holds. [`Mailer`] is the way out: [`FileMailer`] writes each
//! email as an RFC 5322 `.eml` file into a folder (the default, for a single server whose
//! own mail system picks them up, and for trying Kith out); [`NotifyMailer`] sends through
//! GOV.UK Notify's API, which most NHS and council services already use.
//!
//! [`Outbox`] seals messages as they go in and delivers them in the background, retrying
//! with back-off; nothing is sent inside a request.

use crate::accounts::Accounts;
use async_trait::async_trait;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use kith_domain::Clock;
use kith_domain::account::Sealed;
use kith_domain::outbox::{Channel, MAX_ATTEMPTS, OutboxMessage, retry_delay};
use kith_store::Store;
use std::path::PathBuf;
use std::sync::Arc;
use uuid::Uuid;

/// An email, readable, on its way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Email {
    pub id: Uuid,
    pub to: String,
    pub subject: String,
    pub body: String,
}

/// Why a message did not go.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SendError {
    /// Worth trying again later (the service is down, a rate limit).
    #[error("{0}")]
    Temporary(String),
    /// Will never work (the address is invalid, the key is wrong).
    #[error("{0}")]
    Permanent(String),
}

#[async_trait]
pub trait Mailer: Send + Sync + std::fmt::Debug {
    async fn send(&self, email: &Email) -> Result<(), SendError>;
}

/// A text message, readable, on its way out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Text {
    pub id: Uuid,
    /// A UK mobile number, as `07700900123`.
    pub to: String,
    pub body: String,
}

#[async_trait]
pub trait Texter: Send + Sync + std::fmt::Debug {
    async fn send_text(&self, text: &Text) -> Result<(), SendError>;
}

/// Where each kind of message goes.
#[derive(Debug, Clone)]
pub struct Senders {
    pub mail: Arc<dyn Mailer>,
    /// `None`: text messages wait in the outbox until a sender is set up.
    pub text: Option<Arc<dyn Texter>>,
}

/// Sends email over SMTP: `smtp://user:password@host:587` (STARTTLS required),
/// `smtps://…:465` (TLS), or `smtp://host:25?tls=none` on a trusted network only.
#[derive(Debug, Clone)]
pub struct SmtpMailer {
    transport: lettre::AsyncSmtpTransport<lettre::Tokio1Executor>,
    from: lettre::message::Mailbox,
}

impl SmtpMailer {
    pub fn new(url: &str, from: &str) -> Result<SmtpMailer, String> {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let url = if url.starts_with("smtp://") && url.contains("tls=none") {
            // In the clear, asked for by name (a relay on the same machine or network).
            url.replace("?tls=none&", "?").replace("?tls=none", "").replace("&tls=none", "")
        } else if url.starts_with("smtp://") && !url.contains("tls=") {
            // Never send in the clear by accident: STARTTLS unless told otherwise.
            format!("{url}{}tls=required", if url.contains('?') { '&' } else { '?' })
        } else {
            url.to_owned()
        };
        let transport = lettre::AsyncSmtpTransport::<lettre::Tokio1Executor>::from_url(&url)
            .map_err(|e| format!("the SMTP URL is not usable: {e}"))?
            .timeout(Some(std::time::Duration::from_secs(20)))
            .build();
        let from = from.parse().map_err(|e| format!("the sender address {from:?} is not usable: {e}"))?;
        Ok(SmtpMailer { transport, from })
    }
}

#[async_trait]
impl Mailer for SmtpMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        use lettre::AsyncTransport;
        let to = email.to.parse().map_err(|e| SendError::Permanent(format!("the address is not usable: {e}")))?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(one_line(&email.subject))
            .message_id(Some(format!("<{}@kith>", email.id)))
            .header(lettre::message::header::ContentType::TEXT_PLAIN)
            .body(email.body.clone())
            .map_err(|e| SendError::Permanent(e.to_string()))?;
        match self.transport.send(message).await {
            Ok(_) => Ok(()),
            Err(e) if e.is_permanent() => Err(SendError::Permanent(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

/// Writes each email to `{dir}/{date}-{id}.eml`.
#[derive(Debug, Clone)]
pub struct FileMailer {
    pub dir: PathBuf,
    pub from: String,
    /// How long a written message is kept before it is deleted. Messages hold sign-in
    /// links and patients' numbers, so they are readable by Kith's own user only and do
    /// not pile up.
    pub keep_for: std::time::Duration,
}

/// How long [`FileMailer`] keeps what it writes, unless told otherwise.
pub const FILE_MAILER_KEEPS: std::time::Duration = std::time::Duration::from_secs(24 * 60 * 60);

/// Writes `text` to `path` in `dir`, readable and writable by this user only, and
/// deletes earlier messages in `dir` older than `keep_for`.
fn write_private(
    dir: &std::path::Path,
    path: &std::path::Path,
    text: &str,
    keep_for: std::time::Duration,
) -> std::io::Result<()> {
    use std::io::Write;
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(dir)?;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(path).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))?;
    file.write_all(text.as_bytes())?;
    for entry in std::fs::read_dir(dir)?.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if !(name.ends_with(".eml") || name.ends_with(".sms.txt")) {
            continue;
        }
        let old = entry.metadata().and_then(|m| m.modified()).ok().and_then(|at| at.elapsed().ok());
        if old.is_some_and(|age| age > keep_for) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// A header value on one line, so a subject cannot add headers.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl FileMailer {
    pub fn new(dir: PathBuf) -> FileMailer {
        FileMailer { dir, from: "Kith <kith@localhost>".into(), keep_for: FILE_MAILER_KEEPS }
    }

    /// The message as RFC 5322 text, UTF-8 body in quoted-printable-free 8bit.
    pub fn render(&self, email: &Email, date: DateTime<Utc>) -> String {
        format!(
            "From: {}\r\nTo: {}\r\nSubject: {}\r\nDate: {}\r\nMessage-ID: <{}@kith>\r\nMIME-Version: 1.0\r\n\
             Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n{}\r\n",
            one_line(&self.from),
            one_line(&email.to),
            one_line(&email.subject),
            date.to_rfc2822(),
            email.id,
            email.body.replace("\r\n", "\n").replace('\n', "\r\n")
        )
    }
}

#[async_trait]
impl Mailer for FileMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let now = kith_domain::SystemClock.now();
        let text = self.render(email, now);
        let path = self.dir.join(format!("{}-{}.eml", now.format("%Y%m%dT%H%M%S"), email.id));
        let (dir, keep_for) = (self.dir.clone(), self.keep_for);
        let write = move || write_private(&dir, &path, &text, keep_for);
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Temporary(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

#[async_trait]
impl Texter for FileMailer {
    async fn send_text(&self, text: &Text) -> Result<(), SendError> {
        let now = kith_domain::SystemClock.now();
        let content = format!("To: {}\n\n{}\n", one_line(&text.to), text.body);
        let path = self.dir.join(format!("{}-{}.sms.txt", now.format("%Y%m%dT%H%M%S"), text.id));
        let (dir, keep_for) = (self.dir.clone(), self.keep_for);
        let write = move || write_private(&dir, &path, &content, keep_for);
        match tokio::task::spawn_blocking(write).await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(SendError::Temporary(e.to_string())),
            Err(e) => Err(SendError::Temporary(e.to_string())),
        }
    }
}

/// GOV.UK Notify: one email template whose subject is `((subject))` and body `((body))`.
#[derive(Debug, Clone)]
pub struct NotifyMailer {
    service_id: String,
    secret: String,
    pub template_id: String,
    /// A text message template whose content is `((body))`.
    pub sms_template_id: Option<String>,
    /// Notify's id for the text message sender to use (the name a phone shows, like
    /// `ParkheadHC`); Notify's default sender when `None`.
    pub sms_sender_id: Option<String>,
    /// Notify's id for the email reply-to address to use; the service's default when `None`.
    pub email_reply_to_id: Option<String>,
    pub base_url: String,
    http: reqwest::Client,
}

impl NotifyMailer {
    /// From an API key as Notify shows it: `{name}-{service id}-{secret}`, where the last
    /// two are UUIDs.
    pub fn new(api_key: &str, template_id: &str, base_url: &str) -> Result<NotifyMailer, String> {
        let key = api_key.trim();
        if key.len() < 74 {
            return Err("the GOV.UK Notify API key is too short; copy the whole key from Notify".into());
        }
        let secret = &key[key.len() - 36..];
        let service_id = &key[key.len() - 73..key.len() - 37];
        if Uuid::parse_str(secret).is_err() || Uuid::parse_str(service_id).is_err() {
            return Err("the GOV.UK Notify API key does not end with a service id and a secret".into());
        }
        if Uuid::parse_str(template_id).is_err() {
            return Err(format!("the GOV.UK Notify template id {template_id:?} is not a UUID"));
        }
        let _ = rustls::crypto::ring::default_provider().install_default();
        let http = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| format!("cannot set up HTTPS: {e}"))?;
        Ok(NotifyMailer {
            service_id: service_id.into(),
            secret: secret.into(),
            template_id: template_id.into(),
            sms_template_id: None,
            sms_sender_id: None,
            email_reply_to_id: None,
            base_url: base_url.trim_end_matches('/').into(),
            http,
        })
    }

    /// Notify's bearer token: a JWT signed with HMAC-SHA256, `iss` the service id.
    fn token(&self, now: i64) -> String {
        let header = URL_SAFE_NO_PAD.encode(r#"{"alg":"HS256","typ":"JWT"}"#);
        let claims = URL_SAFE_NO_PAD.encode(serde_json::json!({ "iss": self.service_id, "iat": now }).to_string());
        let input = format!("{header}.{claims}");
        let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, self.secret.as_bytes());
        let tag = ring::hmac::sign(&key, input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(tag.as_ref()))
    }
}

impl NotifyMailer {
    /// The same, also sending text messages with this template.
    pub fn with_sms_template(mut self, template_id: &str) -> Result<NotifyMailer, String> {
        if Uuid::parse_str(template_id).is_err() {
            return Err(format!("the GOV.UK Notify text message template id {template_id:?} is not a UUID"));
        }
        self.sms_template_id = Some(template_id.into());
        Ok(self)
    }

    /// The same, sending from this text message sender and with this email reply-to
    /// address, each as Notify's id for it (Settings, in Notify).
    pub fn with_senders(mut self, sms_sender: Option<&str>, reply_to: Option<&str>) -> Result<NotifyMailer, String> {
        for (what, id) in [("text message sender", sms_sender), ("email reply-to address", reply_to)] {
            if let Some(id) = id.filter(|id| Uuid::parse_str(id).is_err()) {
                return Err(format!(
                    "the GOV.UK Notify {what} id {id:?} is not a UUID; copy it from Notify's settings"
                ));
            }
        }
        self.sms_sender_id = sms_sender.map(str::to_owned);
        self.email_reply_to_id = reply_to.map(str::to_owned);
        Ok(self)
    }

    async fn post(&self, kind: &str, body: serde_json::Value) -> Result<(), SendError> {
        let now = kith_domain::SystemClock.now().timestamp();
        let response = self
            .http
            .post(format!("{}/v2/notifications/{kind}", self.base_url))
            .bearer_auth(self.token(now))
            .json(&body)
            .send()
            .await
            .map_err(|e| SendError::Temporary(e.to_string()))?;
        let status = response.status();
        if status.is_success() {
            return Ok(());
        }
        let detail = response.text().await.unwrap_or_default().chars().take(300).collect::<String>();
        let message = format!("GOV.UK Notify answered {status}: {detail}");
        if status.as_u16() == 429 || status.is_server_error() {
            Err(SendError::Temporary(message))
        } else {
            Err(SendError::Permanent(message))
        }
    }
}

#[async_trait]
impl Mailer for NotifyMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let mut body = serde_json::json!({
            "email_address": email.to,
            "template_id": self.template_id,
            "reference": email.id.to_string(),
            "personalisation": { "subject": email.subject, "body": email.body },
        });
        if let Some(id) = &self.email_reply_to_id {
            body["email_reply_to_id"] = id.clone().into();
        }
        self.post("email", body).await
    }
}

#[async_trait]
impl Texter for NotifyMailer {
    async fn send_text(&self, text: &Text) -> Result<(), SendError> {
        let Some(template) = &self.sms_template_id else {
            return Err(SendError::Permanent("no GOV.UK Notify text message template is set".into()));
        };
        let mut body = serde_json::json!({
            "phone_number": text.to,
            "template_id": template,
            "reference": text.id.to_string(),
            "personalisation": { "body": text.body },
        });
        if let Some(id) = &self.sms_sender_id {
            body["sms_sender_id"] = id.clone().into();
        }
        self.post("sms", body).await
    }
}

/// Puts messages in the outbox, sealed, and sends them.
#[derive(Debug, Clone)]
pub struct Outbox {
    store: Arc<dyn Store>,
    accounts: Arc<Accounts>,
}

fn context(field: &str, id: Uuid) -> String {
    kith_store::accounts::seal_context(field, id)
}

impl Outbox {
    pub fn new(store: Arc<dyn Store>, accounts: Arc<Accounts>) -> Outbox {
        Outbox { store, accounts }
    }

    /// An email, sealed, to be written in the same transaction as the change that sends
    /// it (see [`kith_store::Alongside`]).
    pub fn email_message(&self, to: &str, subject: &str, body: &str, purpose: &str) -> OutboxMessage {
        self.message(Channel::Email, to, subject, body, purpose)
    }

    /// A text message, sealed, to be written with its change.
    pub fn text_message(&self, to: &str, body: &str, purpose: &str) -> OutboxMessage {
        self.message(Channel::Sms, to, "", body, purpose)
    }

    fn message(&self, channel: Channel, to: &str, subject: &str, body: &str, purpose: &str) -> OutboxMessage {
        let id = Uuid::new_v4();
        let keyring = self.accounts.keyring();
        OutboxMessage {
            id,
            channel,
            recipient: Sealed(keyring.seal(to, &context("outbox.recipient", id))),
            subject: subject.into(),
            body: Sealed(keyring.seal(body, &context("outbox.body", id))),
            purpose: purpose.into(),
            created_at: self.accounts.now(),
            attempts: 0,
        }
    }

    /// Adds an email to the outbox, on its own.
    pub async fn email(&self, to: &str, subject: &str, body: &str, purpose: &str) -> kith_store::Result<Uuid> {
        let message = self.email_message(to, subject, body, purpose);
        let id = message.id;
        self.store.enqueue(kith_store::Alongside::message(message)).await?;
        Ok(id)
    }

    /// Adds a text message to the outbox, on its own.
    pub async fn text(&self, to: &str, body: &str, purpose: &str) -> kith_store::Result<Uuid> {
        let message = self.text_message(to, body, purpose);
        let id = message.id;
        self.store.enqueue(kith_store::Alongside::message(message)).await?;
        Ok(id)
    }

    /// Adds `message` to the outbox with the audit entry that records it, in one
    /// transaction: if the entry cannot be written, the message is not queued either.
    pub async fn queue_audited(
        &self,
        message: OutboxMessage,
        audit: kith_domain::account::AuditEvent,
    ) -> kith_store::Result<Uuid> {
        let id = message.id;
        self.store.enqueue(kith_store::Alongside { audit: vec![audit], outbox: vec![message] }).await?;
        Ok(id)
    }

    /// Sends what is due. Returns how many went.
    pub async fn deliver_due(&self, senders: &Senders) -> kith_store::Result<usize> {
        let now = self.accounts.now();
        let mut sent = 0;
        for m in self.store.claim_due(now, 20).await? {
            let keyring = self.accounts.keyring();
            let opened = keyring
                .open(&m.recipient.0, &context("outbox.recipient", m.id))
                .and_then(|to| Ok((to, keyring.open(&m.body.0, &context("outbox.body", m.id))?)));
            let Ok((to, body)) = opened else {
                self.store.mark_failed(m.id, "the message cannot be opened with these keys", None).await?;
                continue;
            };
            let outcome = match (m.channel, &senders.text) {
                (Channel::Email, _) => {
                    senders.mail.send(&Email { id: m.id, to, subject: m.subject.clone(), body }).await
                }
                (Channel::Sms, Some(texter)) => texter.send_text(&Text { id: m.id, to, body }).await,
                (Channel::Sms, None) => Err(SendError::Temporary("no text message sender is set up".into())),
            };
            match outcome {
                Ok(()) => {
                    self.store.mark_sent(m.id, self.accounts.now()).await?;
                    sent += 1;
                }
                Err(SendError::Temporary(e)) if m.attempts < MAX_ATTEMPTS => {
                    tracing::warn!(id = %m.id, error = %e, "a message did not go; trying again later");
                    self.store.mark_failed(m.id, &e, Some(now + retry_delay(m.attempts))).await?;
                }
                Err(e) => {
                    tracing::error!(id = %m.id, error = %e, "a message could not be sent and has been given up");
                    self.store.mark_failed(m.id, &e.to_string(), None).await?;
                }
            }
        }
        Ok(sent)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_render_as_rfc_5322_without_header_injection() {
        let mailer = FileMailer::new(PathBuf::from("/tmp"));
        let email = Email {
            id: Uuid::nil(),
            to: "sam@example.org".into(),
            subject: "Hello\r\nBcc: evil@example.org".into(),
            body: "Line one\nLine two".into(),
        };
        let text = mailer.render(&email, DateTime::from_timestamp(1_780_000_000, 0).unwrap_or_default());
        assert!(text.contains("Subject: Hello  Bcc: evil@example.org\r\n"), "{text}");
        assert!(!text.contains("\r\nBcc:"));
        assert!(text.ends_with("Line one\r\nLine two\r\n"));
    }

    /// Written messages are private to Kith's user and deleted once old (finding 6).
    #[tokio::test]
    async fn written_messages_are_private_and_do_not_pile_up() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let outbox = dir.path().join("outbox");
        let mut mailer = FileMailer::new(outbox.clone());
        let email = |n: u128| Email {
            id: Uuid::from_u128(n),
            to: "sam@example.org".into(),
            subject: "Hi".into(),
            body: "x".into(),
        };
        Mailer::send(&mailer, &email(1)).await.unwrap();
        let files: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|f| f.unwrap().path()).collect();
        assert_eq!(files.len(), 1);
        assert_eq!(std::fs::metadata(&files[0]).unwrap().permissions().mode() & 0o777, 0o600);
        assert_eq!(std::fs::metadata(&outbox).unwrap().permissions().mode() & 0o777, 0o700);
        mailer.keep_for = std::time::Duration::ZERO;
        std::thread::sleep(std::time::Duration::from_millis(20));
        Texter::send_text(&mailer, &Text { id: Uuid::from_u128(2), to: "07700900123".into(), body: "y".into() })
            .await
            .unwrap();
        let left: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|f| f.unwrap().file_name()).collect();
        assert!(left.is_empty(), "older messages are deleted, the newest too once past its time: {left:?}");
    }

    #[test]
    fn notify_keys_are_read_and_tokens_signed() {
        let key = "kith_test-26785a09-ab16-4eb0-8407-a37497a57506-3d844edf-8d35-48ac-975b-e847b4f122b0";
        let mailer =
            NotifyMailer::new(key, "f33517ff-2a88-4f6e-b855-c550268ce08a", "https://api.notifications.service.gov.uk/")
                .unwrap();
        assert_eq!(mailer.service_id, "26785a09-ab16-4eb0-8407-a37497a57506");
        let token = mailer.token(1_780_000_000);
        let claims = token.split('.').nth(1).unwrap();
        let claims: serde_json::Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(claims).unwrap()).unwrap();
        assert_eq!(claims["iss"], "26785a09-ab16-4eb0-8407-a37497a57506");
        assert!(NotifyMailer::new("short", "x", "https://x").is_err());
    }
}
