//! `duplicate_index`: an index another index already provides, identically or as a leading
//! prefix (pghero's rule, made exact): same table, method and predicate, and the same column or
//! expression, operator class and collation in every position. A unique, primary-key or
//! exclusion index is never the redundant one: it enforces a constraint.

use crate::cmd::audit::catalog::{Catalog, Index, IndexColumn};
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;

fn same_column(a: &IndexColumn, b: &IndexColumn) -> bool {
    a.def == b.def && a.opclass == b.opclass && a.collation == b.collation
}

/// Does `big` serve every lookup and ordering `small` serves?
fn covers(big: &Index, small: &Index) -> bool {
    if big.table_oid != small.table_oid || big.method != small.method || big.predicate != small.predicate {
        return false;
    }
    let (bk, sk) = (big.keys(), small.keys());
    let prefix_ok = if big.method == "btree" {
        // A backward scan flips every column's direction and null placement at once, so the
        // prefix must match position by position either as written or entirely flipped.
        sk.len() <= bk.len()
            && sk.iter().zip(bk).all(|(s, b)| same_column(s, b))
            && (sk.iter().zip(bk).all(|(s, b)| s.option == b.option)
                || sk.iter().zip(bk).all(|(s, b)| s.option == b.option ^ 3))
    } else {
        // Other methods do not serve prefixes the way a B-tree does: only identical keys count.
        sk.len() == bk.len() && sk.iter().zip(bk).all(|(s, b)| same_column(s, b) && s.option == b.option)
    };
    // INCLUDE columns of the smaller index must be available from the bigger one too.
    prefix_ok && small.includes().iter().all(|i| big.columns.iter().any(|c| c.def == i.def))
}

fn identical(a: &Index, b: &Index) -> bool {
    covers(a, b) && covers(b, a) && a.keys().len() == b.keys().len()
}

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for small in cat.indexes.iter().filter(|i| i.valid && !i.unique && !i.primary && !i.constraint) {
        let cover = cat.indexes.iter().filter(|b| b.valid && b.name != small.name && covers(b, small)).find(|b| {
            // Of two identical droppable indexes, report only one (the later name).
            !identical(b, small) || b.unique || b.primary || b.constraint || small.name > b.name
        });
        let Some(big) = cover else { continue };
        let kind = if identical(big, small) { "identical to" } else { "a leading prefix of" };
        out.push(
            Finding::new("duplicate_index", Level::Warn, small.object())
                .detail(format!(
                    "index {} on {}.{} is {kind} {}",
                    small.name, small.schema, small.table, big.name
                ))
                .why(format!(
                    "every write to {}.{} maintains both indexes and both compete for cache, while {} already serves every query {} can",
                    small.schema, small.table, big.name, small.name
                ))
                .fix(format!("DROP INDEX CONCURRENTLY {};", small.qname))
                .metadata(json!({
                    "redundant": {"index": small.name, "definition": small.definition, "size_bytes": small.size},
                    "covered_by": {"index": big.name, "definition": big.definition, "unique": big.unique || big.primary},
                })),
        );
    }
    out
}
