//! [`Keyring`]: the key that seals now and the older keys that still open.

use super::{JobKey, SealError};
use base64::engine::general_purpose::{STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use base64::Engine;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{Key, XChaCha20Poly1305, XNonce};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::Sha256;
use std::fmt;

/// XChaCha20's nonce: 24 bytes, random per seal (collisions are negligible at any volume).
const NONCE_LEN: usize = 24;

/// Job encryption keys: the current one seals, it and the older ones open. Give one to the
/// store (`StoreOptions::keyring`) and every process that enqueues or runs sealed jobs has it.
#[derive(Clone)]
pub struct Keyring {
    current: JobKey,
    older: Vec<JobKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring").field("current", &self.current.id()).field("ids", &self.ids()).finish()
    }
}

impl Keyring {
    /// A keyring sealing with `current` and also opening with `older`. Two different keys
    /// under one id are refused: an envelope names its key by id alone.
    pub fn new(current: JobKey, older: impl IntoIterator<Item = JobKey>) -> Result<Keyring, SealError> {
        let mut ring = Keyring { current, older: Vec::new() };
        for k in older {
            match ring.key(k.id()) {
                Some(have) if have.bytes() == k.bytes() => {}
                Some(_) => {
                    return Err(SealError::BadKey {
                        source_name: super::DECRYPTION_KEYS_VAR.to_owned(),
                        message: format!(
                            "key id {:?} is given twice with different keys; every key needs its own id",
                            k.id()
                        ),
                    })
                }
                None => ring.older.push(k),
            }
        }
        Ok(ring)
    }

    /// The id of the key that seals.
    pub fn current_id(&self) -> &str {
        self.current.id()
    }

    /// Every key id this keyring opens with, the current one first.
    pub fn ids(&self) -> Vec<&str> {
        std::iter::once(&self.current).chain(&self.older).map(JobKey::id).collect()
    }

    fn key(&self, id: &str) -> Option<&JobKey> {
        std::iter::once(&self.current).chain(&self.older).find(|k| k.id() == id)
    }

    /// Seals `plaintext` bound to `aad`: (key id, base64 of nonce and ciphertext).
    pub(crate) fn seal(&self, plaintext: &[u8], aad: &[u8]) -> Result<(String, String), SealError> {
        let mut nonce = [0u8; NONCE_LEN];
        rand::rng().fill_bytes(&mut nonce);
        let cipher = XChaCha20Poly1305::new(&Key::from(*self.current.bytes()));
        let ct = cipher
            .encrypt(&XNonce::from(nonce), Payload { msg: plaintext, aad })
            .map_err(|_| SealError::Malformed("the value is too large to seal".into()))?;
        let mut out = Vec::with_capacity(NONCE_LEN + ct.len());
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ct);
        Ok((self.current.id().to_owned(), STANDARD_NO_PAD.encode(out)))
    }

    /// Opens what [`Keyring::seal`] made, with the key the envelope names.
    pub(crate) fn open(&self, kid: &str, ct: &str, aad: &[u8], field: &str) -> Result<Vec<u8>, SealError> {
        let key =
            self.key(kid).ok_or_else(|| SealError::UnknownKey { kid: kid.to_owned(), held: self.ids().join(", ") })?;
        let tampered = || SealError::Tampered { field: field.to_owned(), kid: kid.to_owned() };
        let raw = STANDARD_NO_PAD.decode(ct.trim_end_matches('=')).map_err(|_| tampered())?;
        if raw.len() < NONCE_LEN {
            return Err(tampered());
        }
        let (nonce, body) = raw.split_at(NONCE_LEN);
        let nonce: [u8; NONCE_LEN] = nonce.try_into().map_err(|_| tampered())?;
        XChaCha20Poly1305::new(&Key::from(*key.bytes()))
            .decrypt(&XNonce::from(nonce), Payload { msg: body, aad })
            .map_err(|_| tampered())
    }

    /// A keyed hash of `data` (HMAC-SHA256 under a key derived from the current key), for
    /// dedupe keys and lookups over values that must not be stored in clear: the same input
    /// gives the same text, and without the key a guessed input cannot be confirmed. The
    /// text changes when the current key rotates. `purpose` keeps uses apart.
    pub fn keyed_hash(&self, purpose: &str, data: &[u8]) -> String {
        let derived = mac(self.current.bytes(), &[b"keel-queue keyed-hash v1"]);
        URL_SAFE_NO_PAD.encode(mac(&derived, &[purpose.as_bytes(), b"\0", data]))
    }
}

fn mac(key: &[u8], parts: &[&[u8]]) -> [u8; 32] {
    let mut m =
        <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!("HMAC takes any key length"));
    for p in parts {
        m.update(p);
    }
    m.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(id: &str, b: u8) -> JobKey {
        JobKey::parse(&format!("{id}:{}", base64::engine::general_purpose::STANDARD.encode([b; 32]))).unwrap()
    }

    #[test]
    fn seals_with_the_current_key_and_opens_with_any_key_it_holds() {
        let old = Keyring::new(key("k1", 1), []).unwrap();
        let (kid, ct) = old.seal(b"jane@example.com", b"aad").unwrap();
        assert_eq!(kid, "k1");
        assert!(!ct.contains("jane"));
        let rotated = Keyring::new(key("k2", 2), [key("k1", 1)]).unwrap();
        assert_eq!(rotated.open(&kid, &ct, b"aad", "email").unwrap(), b"jane@example.com");
        assert_eq!(rotated.seal(b"x", b"a").unwrap().0, "k2");
        let forgot = Keyring::new(key("k2", 2), []).unwrap();
        let e = forgot.open(&kid, &ct, b"aad", "email").unwrap_err();
        assert!(matches!(&e, SealError::UnknownKey { kid, held } if kid == "k1" && held == "k2"), "{e}");
        assert!(e.to_string().contains("KEEL_JOB_DECRYPTION_KEYS"), "{e}");
        assert!(matches!(rotated.open(&kid, &ct, b"other", "email"), Err(SealError::Tampered { .. })));
        let wrong_bytes = Keyring::new(key("k1", 9), []).unwrap();
        assert!(matches!(wrong_bytes.open(&kid, &ct, b"aad", "email"), Err(SealError::Tampered { .. })));
        assert!(Keyring::new(key("k1", 1), [key("k1", 2)]).is_err(), "one id, two keys");
        assert_eq!(Keyring::new(key("k1", 1), [key("k1", 1)]).unwrap().ids(), ["k1"]);
    }

    #[test]
    fn keyed_hashes_are_stable_per_key_and_purpose() {
        let a = Keyring::new(key("k1", 1), []).unwrap();
        assert_eq!(a.keyed_hash("p", b"x"), a.keyed_hash("p", b"x"));
        assert_ne!(a.keyed_hash("p", b"x"), a.keyed_hash("q", b"x"));
        assert_ne!(a.keyed_hash("p", b"x"), Keyring::new(key("k2", 2), []).unwrap().keyed_hash("p", b"x"));
        assert_eq!(a.keyed_hash("p", b"x").len(), 43);
    }
}
