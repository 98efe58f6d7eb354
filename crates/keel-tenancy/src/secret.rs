//! Random secrets shown once and stored as hashes.

use rand::RngCore;
use sha2::{Digest, Sha256};

/// 32 random bytes as 64 hex characters: 256 bits, unguessable, safe in cookies and headers.
pub fn new_secret() -> String {
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    hex::encode(b)
}

/// SHA-256 of a high-entropy secret. A fast hash is right here: the input is random, so there
/// is nothing to brute-force, and lookups by hash stay one index probe.
pub fn hash_secret(secret: &str) -> String {
    hex::encode(Sha256::digest(secret.as_bytes()))
}
