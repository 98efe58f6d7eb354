//! The `X-Request-Id` value: accepted from the client only when well-formed, generated otherwise.

use crate::ParseError;
use std::fmt;

/// A request's correlation id, safe to echo in a response header and write into a log line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RequestId(String);

impl RequestId {
    /// Accepts what a proxy or client may reasonably send; anything else (too long, odd
    /// characters that could forge log lines) is refused so the caller generates a fresh one.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let ok = !s.is_empty()
            && s.len() <= 128
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'));
        if ok {
            Ok(Self(s.to_owned()))
        } else {
            Err(ParseError::RequestId)
        }
    }

    /// A fresh time-ordered (v7 UUID) id, for a request that arrived without a usable one.
    pub fn generate() -> Self {
        Self(uuid::Uuid::now_v7().to_string())
    }

    /// The id's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
