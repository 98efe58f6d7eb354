//! Names of kinds, queues and scheduled tasks: short, lowercase, safe in logs, SQL and env names.

use crate::QueueError;

pub(crate) const MAX_NAME_LEN: usize = 64;

/// Accepts `email.send`, `default`, `background_job`: 1 to 64 characters of `a-z 0-9 . _ -`,
/// starting with a letter or digit.
pub(crate) fn check_name(field: &'static str, s: &str) -> Result<(), QueueError> {
    let ok = !s.is_empty()
        && s.len() <= MAX_NAME_LEN
        && s.bytes().next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'));
    if ok {
        Ok(())
    } else {
        Err(QueueError::invalid(
            field,
            format!("{s:?} must be 1 to {MAX_NAME_LEN} characters of a-z, 0-9, '.', '_' or '-', starting with a letter or digit (like email.send)"),
        ))
    }
}

/// The environment-variable form of a name: upper-cased, every other character as `_`
/// (`email.send` → `EMAIL_SEND`, `background_job` → `BACKGROUND_JOB`).
pub fn env_name(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect()
}
