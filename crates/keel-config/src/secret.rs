//! A string that must never be printed, compared only in constant time.

use std::fmt;

/// A password, token or key. `Debug` prints `Secret(***)` and there is no `Display`, so a
/// secret cannot reach a log line by accident; [`Secret::matches`] compares in constant time.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// Wraps a secret value.
    pub fn new(s: impl Into<String>) -> Self {
        Self(s.into())
    }

    /// The raw value, for the one place that must use it (hashing, signing, connecting).
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Constant-time comparison, so a caller probing a secret learns nothing from timing.
    pub fn matches(&self, candidate: &[u8]) -> bool {
        use subtle::ConstantTimeEq;
        // Length leaks by necessity; the contents do not.
        self.0.len() == candidate.len() && bool::from(self.0.as_bytes().ct_eq(candidate))
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}
