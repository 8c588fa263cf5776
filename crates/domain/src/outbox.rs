//! Messages waiting to be sent: the outbox. A request that needs to tell someone
//! something (a sign-in link, later a referral's news) adds a message in the same moment
//! it acts; a worker sends it afterwards and tries again if the sender is down. Nothing
//! is emailed inside a request.

use crate::account::Sealed;
use chrono::{DateTime, Utc};
use uuid::Uuid;

/// Attempts before a message is given up on.
pub const MAX_ATTEMPTS: u32 = 8;

/// How a message goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Channel {
    Email,
    Sms,
}

impl Channel {
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Email => "email",
            Channel::Sms => "sms",
        }
    }

    pub fn parse(s: &str) -> Option<Channel> {
        match s {
            "email" => Some(Channel::Email),
            "sms" => Some(Channel::Sms),
            _ => None,
        }
    }
}

/// A message in the outbox. The recipient and the body may identify a person or hold a
/// secret (a sign-in link), so they are sealed, and erased once the message is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxMessage {
    pub id: Uuid,
    pub channel: Channel,
    pub recipient: Sealed,
    pub subject: String,
    pub body: Sealed,
    /// Why it is sent, for the record: "magic_link", "referral_update"...
    pub purpose: String,
    pub created_at: DateTime<Utc>,
    pub attempts: u32,
}

/// When to try again after `attempts` failures: a minute, doubling, at most six hours.
pub fn retry_delay(attempts: u32) -> chrono::Duration {
    chrono::Duration::minutes((1i64 << attempts.min(9)).min(360))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retries_back_off() {
        assert_eq!(retry_delay(0), chrono::Duration::minutes(1));
        assert_eq!(retry_delay(3), chrono::Duration::minutes(8));
        assert_eq!(retry_delay(20), chrono::Duration::minutes(360));
        assert_eq!(Channel::parse("email"), Some(Channel::Email));
    }
}
