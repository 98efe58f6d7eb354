//! `Bucket`: a class of cached data named by the user, with one freshness rule per bucket.

use crate::key::NameError;
use serde::{Serialize, Serializer};
use std::fmt;

/// The longest bucket name accepted (it travels in every invalidation message and metric label).
pub const MAX_BUCKET_LEN: usize = 32;

/// A class of cached data with one TTL and one capacity, named by the user: each service
/// defines its own, usually as constants, and gives each one its settings in
/// [`crate::CacheConfig`]. Every bucket is partitioned by org.
///
/// ```
/// use keel_orgcache::Bucket;
///
/// const SETTINGS: Bucket = Bucket::new("settings");
/// assert_eq!(SETTINGS.name(), "settings");
/// assert!(Bucket::try_new("Not Valid").is_err());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Bucket {
    name: &'static str,
}

/// Why a name is refused; `None` when it is fine. Usable in `const` context.
const fn problem(name: &str) -> Option<&'static str> {
    let b = name.as_bytes();
    if b.is_empty() || b.len() > MAX_BUCKET_LEN {
        return Some("a bucket name must be 1 to 32 characters");
    }
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if !(c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_' || c == b'-') {
            return Some("a bucket name may only hold a-z, 0-9, '_' and '-'");
        }
        i += 1;
    }
    None
}

impl Bucket {
    /// A bucket named `name` (1 to 32 characters of `a-z 0-9 _ -`), for names written in code:
    /// in a `const` item an invalid name is a compile error, as with
    /// `http::HeaderName::from_static`. Called at run time with an invalid name it panics; names
    /// that come from input go through [`Bucket::try_new`].
    pub const fn new(name: &'static str) -> Bucket {
        if let Some(why) = problem(name) {
            panic!("{}", why);
        }
        Bucket { name }
    }

    /// A bucket named `name`, or why the name is refused.
    pub fn try_new(name: &'static str) -> Result<Bucket, NameError> {
        match problem(name) {
            None => Ok(Bucket { name }),
            Some(_) => Err(NameError::Bucket(name.to_owned())),
        }
    }

    /// The name, as in invalidation messages, metrics and settings.
    pub const fn name(self) -> &'static str {
        self.name
    }
}

impl fmt::Display for Bucket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name)
    }
}

impl Serialize for Bucket {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.name)
    }
}
