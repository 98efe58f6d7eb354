//! `function_search_path_mutable`: a function that does not pin `search_path`, so names in its
//! body resolve through whatever path the caller has. For SECURITY DEFINER functions that lets
//! a caller who can create objects in an earlier schema run code with the owner's rights
//! (warn); for others it still makes behaviour depend on the caller (info).

use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    cat.mutable_search_path
        .iter()
        .map(|f| {
            let level = if f.security_definer { Level::Warn } else { Level::Info };
            let kind = if f.security_definer { "SECURITY DEFINER function" } else { "function" };
            Finding::new("function_search_path_mutable", level, format!("{}.{}({})", f.schema, f.name, f.args))
                .detail(format!("{kind} {}.{}({}) does not set search_path", f.schema, f.name, f.args))
                .why("unqualified names in the body resolve through the caller's search_path, which the caller controls")
                .fix(format!("ALTER FUNCTION {}({}) SET search_path = pg_catalog, pg_temp; -- and schema-qualify names in the body", f.qname, f.args))
                .metadata(json!({"security_definer": f.security_definer, "language": f.language}))
        })
        .collect()
}
