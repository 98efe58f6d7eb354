//! Skipping writes that would not change anything (managed alert rows rewritten on every
//! poll caused realtime feedback loops in the seed): compare a fingerprint of the new value
//! with the last one written for the same org and key.

use keel_ids::OrgId;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::time::Duration;

/// A 128-bit hash of a value (two independently prefixed SipHash runs), so a collision that
/// would skip a real change is out of practical reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Fingerprint(u64, u64);

impl Fingerprint {
    /// The fingerprint of `value`.
    pub fn of<T: Hash + ?Sized>(value: &T) -> Fingerprint {
        let run = |salt: u8| {
            let mut h = DefaultHasher::new();
            salt.hash(&mut h);
            value.hash(&mut h);
            h.finish()
        };
        Fingerprint(run(0x5a), run(0xa5))
    }
}

/// Remembers the fingerprint of the last successful write per org and key (bounded; a
/// forgotten key only costs one redundant write).
pub struct ChangeFilter {
    seen: moka::future::Cache<(OrgId, String), Fingerprint>,
}

impl ChangeFilter {
    /// Remembers up to `max_keys` fingerprints, each for at most `remember_for`.
    pub fn new(max_keys: u64, remember_for: Duration) -> ChangeFilter {
        ChangeFilter { seen: moka::future::Cache::builder().max_capacity(max_keys).time_to_live(remember_for).build() }
    }

    /// `None` when `value` equals what was last written for this org and key: skip the write.
    /// Otherwise the fingerprint to pass to [`ChangeFilter::record`] once the write succeeded,
    /// so a failed write is retried rather than skipped next time.
    pub async fn check<T: Hash + ?Sized>(&self, org: OrgId, key: &str, value: &T) -> Option<Fingerprint> {
        let fp = Fingerprint::of(value);
        match self.seen.get(&(org, key.to_owned())).await {
            Some(last) if last == fp => None,
            _ => Some(fp),
        }
    }

    /// Remembers `fingerprint` as written for this org and key.
    pub async fn record(&self, org: OrgId, key: &str, fingerprint: Fingerprint) {
        self.seen.insert((org, key.to_owned()), fingerprint).await;
    }

    /// Forgets a key, for example when the row was changed by someone else.
    pub async fn forget(&self, org: OrgId, key: &str) {
        self.seen.invalidate(&(org, key.to_owned())).await;
    }
}
