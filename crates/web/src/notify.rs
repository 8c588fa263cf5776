//! Sending what the outbox holds. [`Mailer`] is the way out: [`FileMailer`] writes each
//! email as an RFC 5322 `.eml` file into a folder (the default, for a single server whose
//! own mail system picks them up, and for trying Kith out); [`NotifyMailer`] sends through
//! GOV.UK Notify's API, which most NHS and council services already use.
//!
//! [`Outbox`] seals messages as they go in and delivers them in the background, retrying
//! with back-off; nothing is sent inside a request.

use crate::auth::Accounts;
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

/// Writes each email to `{dir}/{date}-{id}.eml`.
#[derive(Debug, Clone)]
pub struct FileMailer {
    pub dir: PathBuf,
    pub from: String,
}

/// A header value on one line, so a subject cannot add headers.
fn one_line(s: &str) -> String {
    s.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

impl FileMailer {
    pub fn new(dir: PathBuf) -> FileMailer {
        FileMailer { dir, from: "Kith <kith@localhost>".into() }
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
        let dir = self.dir.clone();
        let write = move || {
            std::fs::create_dir_all(&dir)?;
            std::fs::write(&path, text).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", path.display())))
        };
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

#[async_trait]
impl Mailer for NotifyMailer {
    async fn send(&self, email: &Email) -> Result<(), SendError> {
        let body = serde_json::json!({
            "email_address": email.to,
            "template_id": self.template_id,
            "reference": email.id.to_string(),
            "personalisation": { "subject": email.subject, "body": email.body },
        });
        let now = kith_domain::SystemClock.now().timestamp();
        let response = self
            .http
            .post(format!("{}/v2/notifications/email", self.base_url))
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

    /// Adds an email to the outbox.
    pub async fn email(&self, to: &str, subject: &str, body: &str, purpose: &str) -> kith_store::Result<Uuid> {
        let id = Uuid::new_v4();
        let keyring = self.accounts.keyring();
        self.store
            .enqueue(OutboxMessage {
                id,
                channel: Channel::Email,
                recipient: Sealed(keyring.seal(to, &context("outbox.recipient", id))),
                subject: subject.into(),
                body: Sealed(keyring.seal(body, &context("outbox.body", id))),
                purpose: purpose.into(),
                created_at: self.accounts.now(),
                attempts: 0,
            })
            .await?;
        Ok(id)
    }

    /// Sends what is due. Returns how many went.
    pub async fn deliver_due(&self, mailer: &dyn Mailer) -> kith_store::Result<usize> {
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
            let email = Email { id: m.id, to, subject: m.subject.clone(), body };
            let outcome = match m.channel {
                Channel::Email => mailer.send(&email).await,
                Channel::Sms => Err(SendError::Permanent("no text message sender is set up".into())),
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
