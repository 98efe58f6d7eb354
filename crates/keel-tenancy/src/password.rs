//! The password rule (one place: every path that sets a password calls [`check_password`]) and
//! hashing with Argon2id (memory-hard), run off the async threads.
//!
//! The rule: 10 characters to 256 bytes, and not guessable. Guessability is judged offline by
//! zxcvbn (Dropbox's estimator: dictionaries of common passwords, names and words, keyboard
//! patterns, repeats, sequences, dates, l33t substitutions), fed the user's own address as
//! something an attacker would try first. It must score at least 3 of 4, "safely unguessable:
//! moderate protection from offline slow-hash scenarios" (more than 10^8 guesses). Nothing is
//! sent anywhere, and the password is never logged or echoed in a message.

use crate::TenancyError;
use argon2::password_hash::{rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use keel_ids::Email;

/// The shortest password accepted, in characters.
pub const MIN_PASSWORD_LEN: usize = 10;
/// Bounds the work an attacker can make one sign-in request cost.
pub const MAX_PASSWORD_LEN: usize = 256;
/// The lowest zxcvbn score accepted (0 to 4): at least 10^8 estimated guesses.
pub const MIN_PASSWORD_SCORE: u8 = 3;
/// How many leading characters the estimator weighs. Its matching grows faster than linearly
/// with length (a 256-byte input costs hundreds of milliseconds unoptimised); a password whose
/// first 100 characters are not guessable is not guessable.
const ESTIMATED_CHARS: usize = 100;

fn check_length(password: &str) -> Result<(), TenancyError> {
    let n = password.chars().count();
    if n < MIN_PASSWORD_LEN {
        return Err(TenancyError::invalid("password", format!("must be at least {MIN_PASSWORD_LEN} characters")));
    }
    if password.len() > MAX_PASSWORD_LEN {
        return Err(TenancyError::invalid("password", format!("must be at most {MAX_PASSWORD_LEN} bytes")));
    }
    Ok(())
}

/// Checks a new password against the rule: [`TenancyError::Invalid`] with field `password` and
/// a message saying what to change (callers rename the field to their own input's name). Give
/// the user's address when known: a password built from it is refused. CPU-bound (up to some
/// milliseconds): async callers run it on the blocking pool, as [`crate::Tenancy`] does.
pub fn check_password(password: &str, email: Option<&Email>) -> Result<(), TenancyError> {
    let inputs: Vec<&str> = match email {
        Some(e) => {
            let local = e.as_str().split('@').next().unwrap_or_default();
            vec![e.as_str(), local]
        }
        None => Vec::new(),
    };
    check_strength(password, &inputs)
}

pub(crate) fn check_strength(password: &str, user_inputs: &[&str]) -> Result<(), TenancyError> {
    check_length(password)?;
    let weighed = match password.char_indices().nth(ESTIMATED_CHARS) {
        Some((end, _)) => &password[..end],
        None => password,
    };
    let estimate = zxcvbn::zxcvbn(weighed, user_inputs);
    if u8::from(estimate.score()) >= MIN_PASSWORD_SCORE {
        return Ok(());
    }
    let why = estimate.feedback().and_then(|f| f.warning()).map(|w| format!(" ({w})")).unwrap_or_default();
    Err(TenancyError::invalid(
        "password",
        format!(
            "is too easy to guess{why}; use a longer passphrase of several uncommon words, not a common password or your email address"
        ),
    ))
}

/// [`check_password`] on the blocking pool, so a long password never stalls the async threads.
pub(crate) async fn check_password_off_thread(password: &str, email: Option<&Email>) -> Result<(), TenancyError> {
    let (pw, email) = (password.to_owned(), email.cloned());
    tokio::task::spawn_blocking(move || check_password(&pw, email.as_ref()))
        .await
        .map_err(|e| TenancyError::Hash(e.to_string()))?
}

/// Hashes on the blocking pool: Argon2 takes tens of milliseconds of CPU by design. Checks the
/// length bounds only; callers setting a password check the whole rule with [`check_password`].
pub async fn hash_password(password: &str) -> Result<String, TenancyError> {
    check_length(password)?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(pw: &str, email: Option<&str>) -> bool {
        let e = email.map(|e| Email::parse(e).unwrap());
        matches!(check_password(pw, e.as_ref()), Err(TenancyError::Invalid { field: "password", .. }))
    }

    #[test]
    fn common_and_guessable_passwords_are_refused() {
        for pw in ["aaaaaaaaaa", "password123", "qwertyuiop", "1234567890", "Password1!", "iloveyou12"] {
            assert!(refused(pw, None), "{pw} should be refused");
        }
        assert!(refused("ann.smith@example.com", Some("ann.smith@example.com")), "the address itself");
        assert!(refused("annsmith2024", Some("annsmith@example.com")), "built on the local part");
        assert!(refused("short", None));
        assert!(refused(&"x".repeat(MAX_PASSWORD_LEN + 1), None));
    }

    #[test]
    fn strong_passphrases_pass() {
        for pw in ["violet kettle astronaut 42", "Tr4mpoline-Quarry-Oboe", "correct horse battery staple"] {
            assert!(check_password(pw, Email::parse("ann@example.com").ok().as_ref()).is_ok(), "{pw}");
        }
    }

    #[test]
    fn only_the_first_hundred_characters_are_weighed() {
        let strong = "violet kettle astronaut 42 ".repeat(4);
        let long = format!("{}{}", &strong[..100], "a".repeat(156));
        assert_eq!(long.len(), MAX_PASSWORD_LEN);
        assert!(check_password(&long, None).is_ok());
    }

    #[test]
    fn the_message_never_contains_the_password() {
        let Err(TenancyError::Invalid { message, .. }) = check_password("password123", None) else { panic!("refused") };
        assert!(!message.contains("password123"), "{message}");
    }
}
