//! Cache keys (always carrying an `OrgId`) and invalidation tags.

use crate::bucket::Bucket;
use keel_ids::OrgId;
use moka::Equivalent;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

/// Longest key accepted, so an invalidation naming one key always fits a NOTIFY payload.
pub const MAX_KEY_LEN: usize = 1024;
/// Longest tag accepted.
pub const MAX_TAG_LEN: usize = 64;

/// The owned key stored in moka: the org is part of the identity, so equal key strings in two
/// orgs are two different entries.
#[derive(Debug, Clone)]
pub(crate) struct CacheKey {
    pub(crate) org: OrgId,
    pub(crate) key: Arc<str>,
}

/// The borrowed form used for lookups, so a hit allocates nothing. Its `Hash` must match
/// `CacheKey`'s, which is why both are written out by hand in the same order.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KeyRef<'a> {
    pub(crate) org: OrgId,
    pub(crate) key: &'a str,
}

impl CacheKey {
    pub(crate) fn new(org: OrgId, key: &str) -> Self {
        Self { org, key: Arc::from(key) }
    }

    pub(crate) fn as_ref(&self) -> KeyRef<'_> {
        KeyRef { org: self.org, key: &self.key }
    }
}

impl Hash for CacheKey {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.org.hash(state);
        self.key.as_ref().hash(state);
    }
}

impl Hash for KeyRef<'_> {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.org.hash(state);
        self.key.hash(state);
    }
}

impl PartialEq for CacheKey {
    fn eq(&self, other: &Self) -> bool {
        self.org == other.org && self.key == other.key
    }
}

impl Eq for CacheKey {}

impl Equivalent<CacheKey> for KeyRef<'_> {
    fn equivalent(&self, key: &CacheKey) -> bool {
        self.org == key.org && self.key == &*key.key
    }
}

/// Why a key, tag or bucket was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NameError {
    /// The tag is empty, too long or holds other characters than `A-Z a-z 0-9 _ . : -`.
    #[error("cache tag must be 1 to {MAX_TAG_LEN} characters of A-Z a-z 0-9 _ . : -, got {0:?}")]
    Tag(String),
    /// The key is empty or longer than [`MAX_KEY_LEN`] bytes.
    #[error("cache key must be 1 to {MAX_KEY_LEN} bytes, got {0} bytes")]
    KeyLength(usize),
    /// The bucket name is empty, too long or holds other characters than `a-z 0-9 _ -`.
    #[error("cache bucket name must be 1 to 32 characters of a-z 0-9 _ -, got {0:?}")]
    Bucket(String),
    /// The bucket is not in the [`crate::CacheConfig`] this cache was built with.
    #[error("cache bucket \"{0}\" is not configured in this cache; add it to the CacheConfig")]
    UnknownBucket(Bucket),
}

pub(crate) fn check_key(key: &str) -> Result<(), NameError> {
    if key.is_empty() || key.len() > MAX_KEY_LEN {
        return Err(NameError::KeyLength(key.len()));
    }
    Ok(())
}

/// A label grouping entries for invalidation (`services`, `jobs`, `pricing`), like a surrogate
/// key. Built by parsing; the character set keeps tags safe inside invalidation messages.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Tag(Arc<str>);

impl Tag {
    /// The tag `s`: 1 to [`MAX_TAG_LEN`] characters of `A-Z a-z 0-9 _ . : -`.
    pub fn new(s: &str) -> Result<Tag, NameError> {
        let ok = !s.is_empty()
            && s.len() <= MAX_TAG_LEN
            && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b':' | b'-'));
        if ok {
            Ok(Tag(Arc::from(s)))
        } else {
            Err(NameError::Tag(s.chars().take(80).collect()))
        }
    }

    /// The tag's text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Tag {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::str::FromStr for Tag {
    type Err = NameError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Tag::new(s)
    }
}
