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
    }
}
