//! [`JobKey`]: one job encryption key, `ID:BASE64` (a short id and 32 random bytes).

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use rand::RngCore;
use std::fmt;
use zeroize::Zeroizing;

/// The longest key id: it is stored beside every ciphertext, so it stays short.
pub const MAX_KEY_ID_LEN: usize = 32;

/// How to make a key, quoted in every "bad key" message.
pub(crate) const KEY_HINT: &str =
    "use ID:BASE64, a short key id, a colon and 32 random bytes in base64, e.g. printf 'k1:%s' \"$(openssl rand -base64 32)\"";

/// A job encryption key and its id. The bytes never print: `Debug` shows the id only, and
/// they are wiped from memory when the key is dropped.
#[derive(Clone)]
pub struct JobKey {
    id: String,
    bytes: Zeroizing<[u8; 32]>,
}

impl fmt::Debug for JobKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobKey").field("id", &self.id).field("key", &"[redacted]").finish()
    }
}

impl JobKey {
    /// Parses `ID:BASE64`. The error says what is wrong and never repeats the value.
    pub fn parse(text: &str) -> Result<JobKey, String> {
        let text = text.trim();
        let Some((id, b64)) = text.split_once(':') else {
            return Err(format!("is not ID:BASE64; {KEY_HINT}"));
        };
        check_id(id)?;
        let decoded = Zeroizing::new(
            [STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD]
                .iter()
                .find_map(|e| e.decode(b64.trim()).ok())
                .ok_or_else(|| format!("key {id:?}: the part after the colon is not base64; {KEY_HINT}"))?,
        );
        let mut bytes = Zeroizing::new([0u8; 32]);
        if decoded.len() != bytes.len() {
            return Err(format!(
                "key {id:?} is {} bytes; it must be exactly 32 random bytes; {KEY_HINT}",
                decoded.len()
            ));
        }
        bytes.copy_from_slice(&decoded);
        Ok(JobKey { id: id.to_owned(), bytes })
    }

    /// A new random key with this id (from the operating system's generator through `rand`).
    pub fn generate(id: &str) -> Result<JobKey, String> {
        check_id(id)?;
        let mut bytes = Zeroizing::new([0u8; 32]);
        rand::rng().fill_bytes(bytes.as_mut());
        Ok(JobKey { id: id.to_owned(), bytes })
    }

    /// The key's id, stored beside each ciphertext it seals.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// `ID:BASE64`, the form [`JobKey::parse`] reads (for writing the development key file).
    pub(crate) fn to_config_text(&self) -> Zeroizing<String> {
        Zeroizing::new(format!("{}:{}", self.id, STANDARD.encode(self.bytes.as_ref())))
    }

    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.bytes
    }
}

fn check_id(id: &str) -> Result<(), String> {
    let ok = !id.is_empty()
        && id.len() <= MAX_KEY_ID_LEN
        && id.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "the key id (before the colon) must be 1 to {MAX_KEY_ID_LEN} letters, digits, '-', '_' or '.'; {KEY_HINT}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_id_and_32_bytes_in_any_base64_alphabet_and_never_echoes_the_value() {
        let raw = [7u8; 32];
        for text in [
            format!("k1:{}", STANDARD.encode(raw)),
            format!("k1:{}", URL_SAFE_NO_PAD.encode(raw)),
            format!("  k1:{}\n", STANDARD_NO_PAD.encode(raw)),
        ] {
            let k = JobKey::parse(&text).unwrap();
            assert_eq!((k.id(), k.bytes()), ("k1", &raw));
        }
        let secretish = STANDARD.encode([9u8; 16]);
        for bad in [
            secretish.clone(),
            format!(":{secretish}"),
            format!("bad id:{secretish}"),
            format!("{}:{}", "x".repeat(33), STANDARD.encode(raw)),
            format!("k1:{secretish}"),
            "k1:not base64 !!".to_owned(),
        ] {
            let e = JobKey::parse(&bad).unwrap_err();
            assert!(!e.contains(&secretish) && !e.contains("not base64 !!"), "{e}");
            assert!(e.contains("ID:BASE64"), "{e}");
        }
        assert!(JobKey::parse(&format!("k1:{secretish}")).unwrap_err().contains("16 bytes"));
        assert!(format!("{:?}", JobKey::parse(&format!("k1:{}", STANDARD.encode(raw))).unwrap()).contains("redacted"));
    }

    #[test]
    fn generated_keys_differ_and_round_trip_through_their_text() {
        let (a, b) = (JobKey::generate("dev").unwrap(), JobKey::generate("dev").unwrap());
        assert_ne!(a.bytes(), b.bytes());
        assert_eq!(JobKey::parse(&a.to_config_text()).unwrap().bytes(), a.bytes());
        assert!(JobKey::generate("no spaces").is_err());
    }
}
