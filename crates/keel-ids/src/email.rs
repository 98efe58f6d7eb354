//! Email addresses: normalised on parse, masked whenever they reach a log line.

use crate::ParseError;
use serde::{Deserialize, Deserializer, Serialize};
use std::fmt;

/// An email address, trimmed and lowercased. `Display` prints it masked (`j***@example.com`),
/// so formatting one into a log line cannot leak it; `as_str` is the deliberate way to get it whole.
#[derive(Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Email(String);

/// RFC 5321 caps a forward path at 254 octets.
const MAX_LEN: usize = 254;

impl Email {
    /// Trims and lowercases `s`, then checks its shape (one `@`, a dotted domain, at most 254
    /// bytes, no spaces or angle brackets). Not a deliverability check: that takes sending mail.
    pub fn parse(s: &str) -> Result<Self, ParseError> {
        let s = s.trim().to_lowercase();
        if s.is_empty() {
            return Err(ParseError::Email("is empty"));
        }
        if s.len() > MAX_LEN {
            return Err(ParseError::Email("is longer than 254 characters"));
        }
        let Some((local, domain)) = s.rsplit_once('@') else {
            return Err(ParseError::Email("must contain @, like name@example.com"));
        };
        if local.is_empty() || local.contains('@') {
            return Err(ParseError::Email("must have exactly one @ with a name before it"));
        }
        if domain.len() < 3
            || !domain.contains('.')
            || domain.starts_with('.')
            || domain.ends_with('.')
            || domain.contains("..")
        {
            return Err(ParseError::Email("must have a domain like example.com after the @"));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control() || c == '<' || c == '>') {
            return Err(ParseError::Email("must not contain spaces, control characters or angle brackets"));
        }
        Ok(Self(s))
    }

    /// The whole address, for sending mail or looking up an account. Never log this.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address with its local part hidden (`j***@example.com`), safe for logs.
    pub fn masked(&self) -> String {
        mask_email(&self.0)
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.masked())
    }
}

impl fmt::Debug for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Email({})", self.masked())
    }
}

impl<'de> Deserialize<'de> for Email {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        Self::parse(&s).map_err(serde::de::Error::custom)
    }
}

/// Masks every email-looking token in free text: `jane@example.com` becomes `j***@example.com`.
/// Used on anything that might carry a recipient (errors, payloads) before it is logged.
pub fn mask_email(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for token in text.split_inclusive(is_boundary) {
        let (body, tail) = match token.char_indices().last() {
            Some((idx, c)) if is_boundary(c) => token.split_at(idx),
            _ => (token, ""),
        };
        match body.find('@') {
            Some(at) if at > 0 && body[at + 1..].contains('.') => {
                let first = body.chars().next().unwrap_or('*');
                out.push(first);
                out.push_str("***");
                out.push_str(&body[at..]);
            }
            _ => out.push_str(body),
        }
        out.push_str(tail);
    }
    out
}

fn is_boundary(c: char) -> bool {
    c.is_whitespace() || matches!(c, '"' | '\'' | '<' | '>' | ',' | ';' | '(' | ')' | '[' | ']' | '{' | '}' | ':' | '=')
}
