//! `unused_index`: never scanned since the statistics were last reset, and big enough to matter.
//! Indexes that enforce a constraint or cover a foreign key are left alone (the first are
//! needed for correctness; the second are used by deletes on the parent that may simply not
//! have happened yet).

use super::Config;
use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;

fn age(secs: Option<f64>) -> String {
    match secs {
        None => "statistics have never been reset".to_owned(),
        Some(s) if s < 3600.0 => format!("statistics were reset {:.0} minutes ago", s / 60.0),
        Some(s) if s < 2.0 * 86_400.0 => format!("statistics were reset {:.1} hours ago", s / 3600.0),
        Some(s) => format!("statistics were reset {:.0} days ago", s / 86_400.0),
    }
}

pub(super) fn check(cat: &Catalog, cfg: &Config) -> Vec<Finding> {
    let floor = i64::try_from(cfg.unused_index_min_size).unwrap_or(i64::MAX);
    let stats = age(cat.stats_age_secs);
    cat.indexes
        .iter()
        .filter(|i| i.valid && i.scans == Some(0) && !i.unique && !i.primary && !i.constraint && i.size >= floor)
        .filter(|i| !cat.foreign_keys.iter().any(|fk| super::index_covers_foreign_key(i, fk)))
        .map(|i| {
            Finding::new("unused_index", Level::Info, i.object())
                .detail(format!("index {} on {}.{} ({}) has never been scanned; {stats}", i.name, i.schema, i.table, i.size_pretty))
                .why("an index no query uses still slows every write and takes cache; scans on replicas are not counted here, so check them before dropping")
                .fix(format!("after confirming no replica or rare job uses it: DROP INDEX CONCURRENTLY {};", i.qname))
                .metadata(json!({
                    "size_bytes": i.size, "size": i.size_pretty, "scans": 0,
                    "stats_age_seconds": cat.stats_age_secs, "definition": i.definition,
                }))
        })
        .collect()
}
