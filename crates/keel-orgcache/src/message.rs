//! The invalidation message exchanged between instances, and its compact text form.
//!
//! `ko1 <origin> <org> <bucket|*> <epoch> <scope>`, for example
//! `ko1 9f2c4e1a7b3d5e61 0190f6a4-6c2e-7d4b-9a51-3c6f0e2b9a10 reference 42 t:services`.
//! `origin` is the sending instance (16 hex digits), `epoch` that instance's invalidation
//! counter for the org (a jump means a message was lost), and `scope` one of `*` (everything
//! in the bucket, or in every bucket when the bucket is `*`), `t:<tag>` or `k:<key>` with the
//! key percent-encoded. The longest message (a 1024-byte key, fully escaped) stays far under
//! NOTIFY's 8000-byte limit.

use crate::bucket::Bucket;
use crate::key::{check_key, Tag};
use keel_ids::OrgId;
use std::fmt::{self, Write as _};

const VERSION: &str = "ko1";

/// What an invalidation removes within one org.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every entry of the org in the bucket (or in all buckets).
    All,
    /// The entries carrying this tag.
    Tag(Tag),
    /// One key; requires a bucket.
    Key(String),
}

/// One invalidation as exchanged between instances (see the module docs for its text form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invalidation {
    /// The sending instance ([`crate::OrgCache::origin`]).
    pub origin: u64,
    /// The org whose entries go.
    pub org: OrgId,
    /// `None`: every bucket.
    pub bucket: Option<Bucket>,
    /// Which entries of the org go.
    pub scope: Scope,
    /// The sender's invalidation counter for this org: a jump means a message was lost.
    pub epoch: u64,
}

/// A message that could not be read. `org` is set when the org field was readable, so the
/// receiver can flush just that org; otherwise it flushes everything.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unreadable cache invalidation message ({reason}): {excerpt:?}")]
pub struct MessageError {
    /// The org, when its field could be read.
    pub org: Option<OrgId>,
    /// What was wrong.
    pub reason: &'static str,
    /// The start of the message, for logs.
    pub excerpt: String,
}

impl Invalidation {
    /// The text form sent over the bus.
    pub fn encode(&self) -> String {
        let mut s = String::with_capacity(96);
        let bucket = self.bucket.map_or("*", Bucket::name);
        let _ = write!(s, "{VERSION} {:016x} {} {bucket} {} ", self.origin, self.org, self.epoch);
        match &self.scope {
            Scope::All => s.push('*'),
            Scope::Tag(t) => {
                s.push_str("t:");
                s.push_str(t.as_str());
            }
            Scope::Key(k) => {
                s.push_str("k:");
                escape_into(k, &mut s);
            }
        }
        s
    }

    /// Reads a message; `known` are the receiving cache's buckets, and a message naming another
    /// bucket is unreadable (its org is still reported, so the receiver can flush just that org).
    pub fn parse(text: &str, known: &[Bucket]) -> Result<Invalidation, MessageError> {
        let err = |org, reason| MessageError { org, reason, excerpt: text.chars().take(120).collect() };
        let fields: Vec<&str> = text.trim().split(' ').collect();
        // The org is read first so that any later problem can still be confined to it.
        let org = fields.get(2).and_then(|s| OrgId::parse(s).ok());
        if fields.len() != 6 {
            return Err(err(org, "expected 6 space-separated fields"));
        }
        if fields[0] != VERSION {
            return Err(err(org, "unknown version, expected ko1"));
        }
        let origin = u64::from_str_radix(fields[1], 16).map_err(|_| err(org, "origin is not hex"))?;
        let Some(org) = org else { return Err(err(None, "org is not a UUID")) };
        let bucket = match fields[3] {
            "*" => None,
            b => Some(known.iter().copied().find(|k| k.name() == b).ok_or_else(|| err(Some(org), "unknown bucket"))?),
        };
        let epoch: u64 = fields[4].parse().map_err(|_| err(Some(org), "epoch is not a number"))?;
        let scope = match fields[5] {
            "*" => Scope::All,
            s if s.starts_with("t:") => Scope::Tag(Tag::new(&s[2..]).map_err(|_| err(Some(org), "invalid tag"))?),
            s if s.starts_with("k:") => {
                let key = unescape(&s[2..]).ok_or_else(|| err(Some(org), "invalid key escape"))?;
                check_key(&key).map_err(|_| err(Some(org), "invalid key length"))?;
                if bucket.is_none() {
                    return Err(err(Some(org), "a key invalidation needs a bucket"));
                }
                Scope::Key(key)
            }
            _ => return Err(err(Some(org), "scope must be *, t:<tag> or k:<key>")),
        };
        Ok(Invalidation { origin, org, bucket, scope, epoch })
    }
}

impl fmt::Display for Invalidation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.encode())
    }
}

fn keeps(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-' | b'/')
}

fn escape_into(key: &str, out: &mut String) {
    for b in key.bytes() {
        if keeps(b) {
            out.push(b as char);
        } else {
            let _ = write!(out, "%{b:02X}");
        }
    }
}

fn unescape(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' => {
                let hex = s.get(i + 1..i + 3).filter(|h| h.bytes().all(|c| c.is_ascii_hexdigit()))?;
                out.push(u8::from_str_radix(hex, 16).ok()?);
                i += 3;
            }
            b if keeps(b) => {
                out.push(b);
                i += 1;
            }
            _ => return None,
        }
    }
    String::from_utf8(out).ok()
}
