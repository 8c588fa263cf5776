//! Kith's security primitives, kept apart from the web and the store so each can be read
//! and tested on its own:
//!
//! - [`password`]: argon2id hashes to OWASP's settings, and the password policy;
//! - [`totp`]: RFC 6238 one-time codes for two-factor sign-in, and recovery codes;
//! - [`token`]: unguessable tokens (session ids, magic links) stored only as digests;
//! - [`keyring`]: AES-256-GCM encryption of fields that identify a person, with key ids
//!   so keys can be rotated, and keyed blind indexes for looking such fields up.
#![deny(clippy::unwrap_used, clippy::expect_used)]

pub mod keyring;
pub mod password;
pub mod token;
pub mod totp;

pub use keyring::{Keyring, KeyringError};
pub use totp::constant_time_eq;

/// Fills `buf` from the operating system's secure random source.
///
/// # Panics
/// Never in practice: the OS source fails only on a broken system, and then nothing that
/// needs randomness (sessions, keys) may go on.
pub(crate) fn random_bytes<const N: usize>() -> [u8; N] {
    let mut buf = [0u8; N];
    if let Err(e) = getrandom::fill(&mut buf) {
        #[allow(clippy::panic)]
        {
            panic!("the operating system's random number source failed: {e}");
        }
    }
    buf
}
