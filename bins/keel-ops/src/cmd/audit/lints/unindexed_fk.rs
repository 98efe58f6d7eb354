//! `unindexed_foreign_key`: no valid, non-partial index has the foreign key's columns as its
//! leading key columns (in any order among themselves). Without one, every delete or key update
//! on the referenced table scans this table, holding locks while it does.

use crate::cmd::audit::catalog::{Catalog, ForeignKey, Index};
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;
use std::collections::BTreeSet;

/// Can `i` find the rows of `fk`'s table by the foreign key's columns?
pub(crate) fn covers(i: &Index, fk: &ForeignKey) -> bool {
    let n = fk.attnums.len();
    let usable_method = i.method == "btree" || (i.method == "hash" && n == 1);
    if i.table_oid != fk.table_oid || !i.valid || i.predicate.is_some() || !usable_method || i.keys().len() < n {
        return false;
    }
    let lead: BTreeSet<i16> = i.keys()[..n].iter().map(|c| c.attnum).collect();
    let want: BTreeSet<i16> = fk.attnums.iter().copied().collect();
    !lead.contains(&0) && lead == want
}

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    cat.foreign_keys
        .iter()
        .filter(|fk| !cat.indexes.iter().any(|i| covers(i, fk)))
        .map(|fk| {
            let cols = fk.columns.join(", ");
            Finding::new("unindexed_foreign_key", Level::Warn, format!("{}.{}.{}", fk.schema, fk.table, fk.name))
                .detail(format!("foreign key {} on {}.{} ({cols}) has no index starting with its columns", fk.name, fk.schema, fk.table))
                .why("deleting or re-keying a referenced row scans this whole table under lock; joins along the key cannot use an index")
                .fix(format!("CREATE INDEX CONCURRENTLY ON {} ({cols});", fk.qtable))
                .metadata(json!({"columns": fk.columns, "definition": fk.definition}))
        })
        .collect()
}
