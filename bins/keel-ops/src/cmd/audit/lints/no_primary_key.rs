//! `no_primary_key`: a table without a primary key (partitions inherit their parent's).

use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    cat.tables
        .iter()
        .filter(|t| !t.has_primary_key && !t.partition)
        .map(|t| {
            Finding::new("no_primary_key", Level::Info, format!("{}.{}", t.schema, t.name))
                .detail(format!("{}.{} has no primary key", t.schema, t.name))
                .why("rows cannot be addressed reliably: duplicates creep in, logical replication cannot apply updates or deletes, and tools that diff or restore data have no identity to go by")
                .fix(format!("ALTER TABLE {} ADD PRIMARY KEY (…); -- or add an id column", t.qname))
        })
        .collect()
}
