//! The keys a shared rate-limit policy denied most recently, from keel-ratelimit's
//! `keel_rate_limits` rows (one per policy and key, holding its last decision), addresses
//! masked. In-process policies keep no rows, so they list none.

use crate::ApiError;
use keel_storage::Db;
use std::collections::BTreeMap;

/// Denied keys read at most (across policies), and listed per policy at most.
const READ: i64 = 200;
const PER_POLICY: usize = 10;

/// An `email:` key shows its first character only (the key need not be a valid address, so
/// `mask_email` alone could leave it whole); anything else has addresses masked in place.
pub(crate) fn mask_key(key: &str) -> String {
    match key.strip_prefix("email:") {
        Some(addr) => format!("email:{}***", addr.chars().next().unwrap_or('*')),
        None => keel_ids::mask_email(key),
    }
}

/// policy -> its most recently denied keys, newest first.
pub(crate) async fn recent_denials(db: &Db) -> Result<BTreeMap<String, Vec<String>>, ApiError> {
    const SQL: &str = "SELECT policy, key FROM keel_rate_limits WHERE NOT allowed ORDER BY decided_ns DESC LIMIT ";
    let rows: Vec<(String, String)> = match db {
        Db::Postgres(p) => sqlx::query_as(&format!("{SQL}$1")).bind(READ).fetch_all(p).await?,
        Db::Sqlite(p) => sqlx::query_as(&format!("{SQL}?")).bind(READ).fetch_all(p).await?,
    };
    let mut out: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (policy, key) in rows {
        let keys = out.entry(policy).or_default();
        if keys.len() < PER_POLICY {
            keys.push(mask_key(&key));
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    #[test]
    fn addresses_in_keys_are_masked() {
        assert_eq!(super::mask_key("email:ann@example.com"), "email:a***");
        assert_eq!(super::mask_key("email:"), "email:****");
        assert_eq!(super::mask_key("ip:203.0.113.7"), "ip:203.0.113.7");
        assert!(!super::mask_key("user:ann@example.com").contains("ann@example.com"));
    }
}
