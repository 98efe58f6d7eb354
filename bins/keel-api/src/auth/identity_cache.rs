//! A short-lived map from API token id to user id, so the admin rate limiter can key bearer
//! requests by user without a database round trip. Authorization never trusts it: every
//! request's token is still verified in the database by the `Principal` extractor.

use keel_ids::UserId;
use std::time::Duration;

/// Long enough to absorb a client's burst, short enough that a revoked token stops being
/// keyed as its user soon after (it is refused by authorization at once regardless).
const TTL: Duration = Duration::from_secs(30);
/// Bounds memory under a flood of distinct tokens.
const CAPACITY: u64 = 100_000;

#[derive(Clone)]
pub(crate) struct IdentityCache(moka::sync::Cache<String, UserId>);

impl IdentityCache {
    pub(crate) fn new() -> Self {
        Self(moka::sync::Cache::builder().max_capacity(CAPACITY).time_to_live(TTL).build())
    }

    /// Keyed by the hash of the whole token, so a guessed token id with a wrong secret is never
    /// counted against the real owner's budget.
    pub(crate) fn get(&self, token: &str) -> Option<UserId> {
        self.0.get(&keel_tenancy::hash_secret(token))
    }

    pub(crate) fn put(&self, token: &str, user: UserId) {
        self.0.insert(keel_tenancy::hash_secret(token), user);
    }
}
