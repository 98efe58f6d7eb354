//! Password hashing with Argon2id (memory-hard), run off the async threads.

use crate::TenancyError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;

pub const MIN_PASSWORD_LEN: usize = 10;
/// Bounds the work an attacker can make one sign-in request cost.
pub const MAX_PASSWORD_LEN: usize = 256;

pub(crate) fn check_policy(password: &str) -> Result<(), TenancyError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(TenancyError::invalid("password", format!("must be at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(TenancyError::invalid("password", format!("must be at most {MAX_PASSWORD_LEN} bytes")));
    }
    Ok(())
}

/// Hashes on the blocking pool: Argon2 takes tens of milliseconds of CPU by design.
pub async fn hash_password(password: &str) -> Result<String, TenancyError> {
    check_policy(password)?;
    let pw = password.to_owned();
    tokio::task::spawn_blocking(move || {
        let salt = SaltString::generate(&mut OsRng);
        Argon2::default().hash_password(pw.as_bytes(), &salt).map(|h| h.to_string())
    })
    .await
    .map_err(|e| TenancyError::Hash(e.to_string()))?
    .map_err(|e| TenancyError::Hash(e.to_string()))
}

/// Verifies on the blocking pool. With `hash = None` (no such user) it still spends the same
/// work against a fixed dummy hash, so response time does not reveal which emails exist.
pub async fn verify_password(password: &str, hash: Option<&str>) -> bool {
    if password.len() > MAX_PASSWORD_LEN {
        return false;
    }
    let pw = password.to_owned();
    let stored = hash.map(str::to_owned);
    tokio::task::spawn_blocking(move || {
        let dummy;
        let target = match &stored {
            Some(h) => h.as_str(),
            None => {
                dummy = dummy_hash();
                dummy.as_str()
            }
        };
        let ok = PasswordHash::new(target).map(|h| Argon2::default().verify_password(pw.as_bytes(), &h).is_ok());
        stored.is_some() && ok.unwrap_or(false)
    })
    .await
    .unwrap_or(false)
}

fn dummy_hash() -> String {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    DUMMY
        .get_or_init(|| {
            let salt = SaltString::generate(&mut OsRng);
            Argon2::default().hash_password(b"not-a-real-password", &salt).map(|h| h.to_string()).unwrap_or_default()
        })
        .clone()
}
