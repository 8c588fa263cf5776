//! Encryption at rest for fields that identify a person: AES-256-GCM, each value sealed
//! with a fresh 96-bit nonce under the newest key, and bound to the field it belongs to
//! (the table and column are the associated data, so a value moved to another field will
//! not open). Sealed values name their key, so older keys keep opening old values until
//! `kith keys rotate` re-seals them.
//!
//! A field that must be found by value (a user's email) also gets a *blind index*: an
//! HMAC-SHA256 of the normalised value under a separate lookup key, which is not rotated
//! with the encryption keys.
//!
//! The key file is text, one `name = base64` per line, newest encryption key last:
//!
//! ```text
//! # Kith field-encryption keys. Keep secret; back up apart from the database.
//! lookup = 9Wq...
//! k1 = 3Jx...
//! k2 = q0L...
//! ```

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::path::Path;

const FORMAT: &str = "v1";

/// The keys Kith encrypts with. Never printed: `Debug` shows only the key ids.
#[derive(Clone)]
pub struct Keyring {
    /// Encryption keys, oldest first; the last seals new values.
    keys: Vec<(String, [u8; 32])>,
    lookup: [u8; 32],
}

impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyring").field("key_ids", &self.key_ids()).finish_non_exhaustive()
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyringError {
    #[error("the key file {path} cannot be read: {reason}")]
    Read { path: String, reason: String },
    #[error("the key file {path} cannot be written: {reason}")]
    Write { path: String, reason: String },
    #[error("line {line} of the key file: {reason}")]
    Parse { line: usize, reason: String },
    #[error(
        "the key file has no encryption key; add a line such as `k1 = <32 random bytes in base64>` or run `kith keys new`"
    )]
    NoKey,
    #[error("the key file has no `lookup = ...` key for blind indexes")]
    NoLookup,
    #[error("a value is sealed with key {0}, which is not in the key file; restore that key to read it")]
    UnknownKey(String),
    #[error("a sealed value is damaged or belongs to another field")]
    Damaged,
}

impl Keyring {
    /// A new keyring: one lookup key and one encryption key, `k1`.
    pub fn generate() -> Keyring {
        Keyring { keys: vec![("k1".to_owned(), crate::random_bytes::<32>())], lookup: crate::random_bytes::<32>() }
    }

    /// Reads a key file's text.
    pub fn parse(text: &str) -> Result<Keyring, KeyringError> {
        let mut keys = Vec::new();
        let mut lookup = None;
        for (i, raw) in text.lines().enumerate() {
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let parse = |reason: &str| KeyringError::Parse { line: i + 1, reason: reason.to_owned() };
            let (name, value) = line.split_once('=').ok_or_else(|| parse("expected `name = base64 key`"))?;
            let (name, value) = (name.trim(), value.trim());
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
                return Err(parse("a key name may hold only letters, digits, - and _"));
            }
            let bytes = STANDARD.decode(value).map_err(|_| parse("the key is not valid base64"))?;
            let key: [u8; 32] = bytes.try_into().map_err(|_| parse("a key must be exactly 32 bytes"))?;
            if name == "lookup" {
                lookup = Some(key);
            } else if keys.iter().any(|(n, _)| n == name) {
                return Err(parse("this key name is used twice"));
            } else {
                keys.push((name.to_owned(), key));
            }
        }
        let lookup = lookup.ok_or(KeyringError::NoLookup)?;
        if keys.is_empty() {
            return Err(KeyringError::NoKey);
        }
        Ok(Keyring { keys, lookup })
    }

    /// The key file's text.
    pub fn to_text(&self) -> String {
        let mut out = String::from(
            "# Kith field-encryption keys. Keep this file secret, give every instance the same one,\n\
             # and back it up apart from the database: without it, encrypted fields cannot be read.\n\
             # The last key seals new values; older keys still open what they sealed.\n",
        );
        out.push_str(&format!("lookup = {}\n", STANDARD.encode(self.lookup)));
        for (name, key) in &self.keys {
            out.push_str(&format!("{name} = {}\n", STANDARD.encode(key)));
        }
        out
    }

    /// Reads a key file.
    pub fn load(path: &Path) -> Result<Keyring, KeyringError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| KeyringError::Read { path: path.display().to_string(), reason: e.to_string() })?;
        Keyring::parse(&text)
    }

    /// Writes the key file, readable by its owner only, replacing it atomically.
    pub fn save(&self, path: &Path) -> Result<(), KeyringError> {
        let fail = |e: std::io::Error| KeyringError::Write { path: path.display().to_string(), reason: e.to_string() };
        let tmp = path.with_extension("tmp");
        {
            use std::io::Write;
            let mut options = std::fs::OpenOptions::new();
            options.write(true).create(true).truncate(true);
            #[cfg(unix)]
            std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
            let mut file = options.open(&tmp).map_err(fail)?;
            file.write_all(self.to_text().as_bytes()).map_err(fail)?;
            file.sync_all().map_err(fail)?;
        }
        std::fs::rename(&tmp, path).map_err(fail)
    }

    /// Reads the key file at `path`, creating one with fresh keys if there is none.
    pub fn load_or_create(path: &Path) -> Result<Keyring, KeyringError> {
        if path.exists() {
            return Keyring::load(path);
        }
        let keyring = Keyring::generate();
        keyring.save(path)?;
        Ok(keyring)
    }

    /// Adds a new encryption key, which seals new values from now on. Returns its id.
    pub fn rotate(&mut self) -> String {
        let mut n = self.keys.len() + 1;
        while self.keys.iter().any(|(name, _)| *name == format!("k{n}")) {
            n += 1;
        }
        let id = format!("k{n}");
        self.keys.push((id.clone(), crate::random_bytes::<32>()));
        id
    }

    pub fn key_ids(&self) -> Vec<&str> {
        self.keys.iter().map(|(n, _)| n.as_str()).collect()
    }

    /// The key that seals new values.
    pub fn current_id(&self) -> &str {
        self.keys.last().map_or("", |(n, _)| n.as_str())
    }

    /// Encrypts `plain` for the field `context` ("users.email"):
    /// `v1.<key id>.<nonce>.<ciphertext and tag>`, base64url.
    pub fn seal(&self, plain: &str, context: &str) -> String {
        let Some((id, key)) = self.keys.last() else { return String::new() };
        let nonce_bytes = crate::random_bytes::<12>();
        let cipher = Aes256Gcm::new(&(*key).into());
        let nonce = Nonce::from(nonce_bytes);
        // Encryption with a valid key and nonce does not fail for inputs under 64 GiB.
        let sealed =
            cipher.encrypt(&nonce, Payload { msg: plain.as_bytes(), aad: context.as_bytes() }).unwrap_or_default();
        format!("{FORMAT}.{id}.{}.{}", URL_SAFE_NO_PAD.encode(nonce_bytes), URL_SAFE_NO_PAD.encode(sealed))
    }

    /// Decrypts a value [`seal`](Self::seal) made for the same field.
    pub fn open(&self, sealed: &str, context: &str) -> Result<String, KeyringError> {
        let mut parts = sealed.split('.');
        let (Some(FORMAT), Some(id), Some(nonce), Some(body), None) =
            (parts.next(), parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyringError::Damaged);
        };
        let key = self.keys.iter().find(|(n, _)| n == id).ok_or_else(|| KeyringError::UnknownKey(id.to_owned()))?;
        let nonce: [u8; 12] =
            URL_SAFE_NO_PAD.decode(nonce).ok().and_then(|b| b.try_into().ok()).ok_or(KeyringError::Damaged)?;
        let body = URL_SAFE_NO_PAD.decode(body).map_err(|_| KeyringError::Damaged)?;
        let cipher = Aes256Gcm::new(&key.1.into());
        let plain = cipher
            .decrypt(&Nonce::from(nonce), Payload { msg: &body, aad: context.as_bytes() })
            .map_err(|_| KeyringError::Damaged)?;
        String::from_utf8(plain).map_err(|_| KeyringError::Damaged)
    }

    /// Whether a sealed value was sealed under the current key (so rotation can skip it).
    pub fn is_current(&self, sealed: &str) -> bool {
        sealed.split('.').nth(1) == Some(self.current_id())
    }

    /// The blind index of a value for one purpose ("email"): found by equality, reveals
    /// nothing without the lookup key.
    pub fn blind_index(&self, purpose: &str, value: &str) -> String {
        let Ok(mut mac) = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.lookup) else {
            return String::new();
        };
        mac.update(purpose.as_bytes());
        mac.update(&[0]);
        mac.update(value.as_bytes());
        data_encoding::HEXLOWER.encode(&mac.finalize().into_bytes())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sealed_values_open_only_for_their_field_and_hide_the_text() {
        let keys = Keyring::generate();
        let sealed = keys.seal("Sam Patel", "users.name");
        assert!(sealed.starts_with("v1.k1."), "{sealed}");
        assert!(!sealed.contains("Sam"));
        assert_ne!(sealed, keys.seal("Sam Patel", "users.name"), "fresh nonce each time");
        assert_eq!(keys.open(&sealed, "users.name").unwrap(), "Sam Patel");
        assert_eq!(keys.open(&sealed, "users.email"), Err(KeyringError::Damaged));
        let mut tampered = sealed.clone();
        tampered.pop();
        tampered.push(if sealed.ends_with('A') { 'B' } else { 'A' });
        assert_eq!(keys.open(&tampered, "users.name"), Err(KeyringError::Damaged));
        assert_eq!(keys.open("plain text", "users.name"), Err(KeyringError::Damaged));
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_new_ones_with_the_new_key() {
        let mut keys = Keyring::generate();
        let old = keys.seal("07700 900123", "patients.phone");
        assert_eq!(keys.rotate(), "k2");
        assert!(!keys.is_current(&old));
        assert_eq!(keys.open(&old, "patients.phone").unwrap(), "07700 900123");
        let new = keys.seal("07700 900123", "patients.phone");
        assert!(keys.is_current(&new) && new.starts_with("v1.k2."));
        let without_k1 = Keyring::parse(&keys.to_text().replace("\nk1 = ", "\n# k1 = ")).unwrap();
        assert_eq!(without_k1.open(&old, "patients.phone"), Err(KeyringError::UnknownKey("k1".into())));
        assert_eq!(without_k1.open(&new, "patients.phone").unwrap(), "07700 900123");
    }

    #[test]
    fn key_files_round_trip_and_bad_ones_say_which_line() {
        let keys = Keyring::generate();
        let again = Keyring::parse(&keys.to_text()).unwrap();
        assert_eq!(again.blind_index("email", "a@b.org"), keys.blind_index("email", "a@b.org"));
        assert_ne!(keys.blind_index("email", "a@b.org"), keys.blind_index("phone", "a@b.org"));
        assert!(!format!("{keys:?}").contains(&STANDARD.encode(keys.lookup)));
        let err = Keyring::parse("lookup = AAAA\nk1 = zz").unwrap_err();
        assert_eq!(err, KeyringError::Parse { line: 1, reason: "a key must be exactly 32 bytes".into() });
        assert_eq!(Keyring::parse("").unwrap_err(), KeyringError::NoLookup);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("keys.txt");
        let created = Keyring::load_or_create(&path).unwrap();
        assert_eq!(Keyring::load_or_create(&path).unwrap().to_text(), created.to_text());
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
    }
}
