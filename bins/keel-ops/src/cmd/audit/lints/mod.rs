//! The lints: pure functions from the catalog snapshot to findings, one file each.

mod duplicate_index;
mod function_search_path;
mod multiple_permissive;
mod no_primary_key;
mod rls_initplan;
mod rls_tenant;
mod security_definer_view;
mod unindexed_fk;
mod unused_index;

use super::catalog::Catalog;
use super::finding::Finding;

/// What the lints can be told.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) unused_index_min_size: u64,
}

pub(crate) use unindexed_fk::covers as index_covers_foreign_key;

pub(crate) fn run_all(cat: &Catalog, cfg: &Config, notes: &mut Vec<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    out.extend(duplicate_index::check(cat));
    out.extend(unused_index::check(cat, cfg));
    out.extend(unindexed_fk::check(cat));
    out.extend(security_definer_view::check(cat));
    out.extend(rls_initplan::check(cat, notes));
    out.extend(multiple_permissive::check(cat));
    out.extend(rls_tenant::check(cat));
    out.extend(no_primary_key::check(cat));
    out.extend(function_search_path::check(cat));
    out
}
