//! Unguessable tokens: session ids and magic links. The holder keeps the token; Kith
//! keeps only its SHA-256 digest, so a copy of the database signs nobody in.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// A new token (256 random bits, URL-safe) and the digest to store for it.
pub fn new_token() -> (String, String) {
    let token = URL_SAFE_NO_PAD.encode(crate::random_bytes::<32>());
    let digest = digest(&token);
    (token, digest)
}

/// The letters of a short code: Crockford's base 32, which leaves out I, L, O and U so a
/// code read aloud or retyped from a phone is not mistaken.
const CODE_LETTERS: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";

/// A short code for a public link (50 random bits in 10 letters). Only for what is safe
/// to be found by guessing: it names no person and signs nobody in.
pub fn short_code() -> String {
    let bytes = crate::random_bytes::<10>();
    bytes.iter().map(|b| char::from(CODE_LETTERS[usize::from(b & 31)])).collect()
}

/// Whether `code` looks like a [`short_code`].
pub fn well_formed_code(code: &str) -> bool {
    code.len() == 10 && code.bytes().all(|b| CODE_LETTERS.contains(&b))
}

/// The digest Kith stores for a token, in hex.
pub fn digest(token: &str) -> String {
    data_encoding::HEXLOWER.encode(&Sha256::digest(token.as_bytes()))
}

/// Whether `token` looks like one Kith issued; anything else is refused before any
/// database lookup.
pub fn well_formed(token: &str) -> bool {
    token.len() == 43 && token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_well_formed_and_stored_as_digests() {
        let (a, da) = new_token();
        let (b, _) = new_token();
        assert_ne!(a, b);
        assert!(well_formed(&a), "{a}");
        assert_eq!(da, digest(&a));
        assert_eq!(da.len(), 64);
        assert!(!da.contains(&a));
        assert!(!well_formed("x"));
        assert!(!well_formed(&format!("{}'", &a[..42])));
        let code = short_code();
        assert!(well_formed_code(&code) && code != short_code(), "{code}");
        assert!(!well_formed_code("K7QW2M9XHI") && !well_formed_code("k7qw2m9xhp"));
    }
}
