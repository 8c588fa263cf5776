//! Passwords: argon2id with OWASP's recommended settings (19 MiB, 2 passes, 1 lane), and
//! the policy a new password must meet (ASVS V2.1: at least 12 characters, at most 128,
//! any characters, not a well-known password, not the user's own email).

use argon2::password_hash::phc::PasswordHash;
use argon2::password_hash::{PasswordHasher, PasswordVerifier};
use argon2::{Algorithm, Argon2, Params, Version};

pub const MIN_LENGTH: usize = 12;
pub const MAX_LENGTH: usize = 128;

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, Params::DEFAULT)
}

/// Hashes a password to a PHC string (`$argon2id$v=19$m=19456,t=2,p=1$...`), with a
/// fresh random salt.
pub fn hash(password: &str) -> Result<String, PasswordError> {
    let salt = crate::random_bytes::<16>();
    argon2()
        .hash_password_with_salt(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| PasswordError::Hash(e.to_string()))
}

/// Whether `password` matches the stored hash. A malformed hash never matches.
pub fn verify(password: &str, stored: &str) -> bool {
    match PasswordHash::new(stored) {
        Ok(parsed) => argon2().verify_password(password.as_bytes(), &parsed).is_ok(),
        Err(_) => false,
    }
}

/// A hash to check against when there is no such user, so that a wrong email takes as
/// long to refuse as a wrong password and does not reveal which accounts exist.
pub fn verify_against_nothing(password: &str) {
    static DUMMY: std::sync::OnceLock<Option<String>> = std::sync::OnceLock::new();
    if let Some(stored) = DUMMY.get_or_init(|| hash("kith-timing-equaliser").ok()) {
        let _ = verify(password, stored);
    }
}

/// Passwords so common that no length makes them safe.
const COMMON: &[&str] = &[
    "password1234",
    "passwordpassword",
    "123456789012",
    "qwertyuiopas",
    "iloveyou1234",
    "welcome12345",
    "letmein12345",
    "changeme1234",
    "administrator",
    "kithkithkith",
];

/// Checks a new password against the policy. The message says what to change.
pub fn check_policy(password: &str, email: &str) -> Result<(), PasswordError> {
    let length = password.chars().count();
    if length < MIN_LENGTH {
        return Err(PasswordError::Policy(format!(
            "Use at least {MIN_LENGTH} characters; three or four random words make a strong password that is easy to remember"
        )));
    }
    if length > MAX_LENGTH {
        return Err(PasswordError::Policy(format!("Use at most {MAX_LENGTH} characters")));
    }
    let lower = password.to_lowercase();
    if COMMON.contains(&lower.as_str()) || lower.chars().all(|c| lower.starts_with(c)) {
        return Err(PasswordError::Policy("That password is too easy to guess; choose another".into()));
    }
    let email = email.trim().to_lowercase();
    if !email.is_empty()
        && (lower.contains(&email) || email.split('@').next().is_some_and(|l| l.len() >= 4 && lower == l))
    {
        return Err(PasswordError::Policy("Do not use your email address in your password".into()));
    }
    Ok(())
}

#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("{0}")]
    Policy(String),
    #[error("the password could not be hashed: {0}")]
    Hash(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashes_are_argon2id_to_owasp_settings_and_verify() {
        let h = hash("correct horse battery staple").unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"), "{h}");
        assert!(verify("correct horse battery staple", &h));
        assert!(!verify("correct horse battery stapler", &h));
        assert!(!verify("anything", "not a hash"));
        assert_ne!(h, hash("correct horse battery staple").unwrap(), "salts differ");
    }

    #[test]
    fn the_policy_explains_itself() {
        assert!(check_policy("short", "a@b.org").unwrap_err().to_string().contains("at least 12"));
        assert!(check_policy(&"x".repeat(129), "a@b.org").is_err());
        assert!(check_policy("aaaaaaaaaaaaaa", "a@b.org").is_err());
        assert!(check_policy("Password1234", "a@b.org").is_err());
        assert!(check_policy("my sam@example.org pass", "Sam@example.org").is_err());
        assert!(check_policy("violet kettle orbit", "sam@example.org").is_ok());
        assert!(check_policy("ünïcödé påsswörd ✓", "sam@example.org").is_ok());
    }
}
