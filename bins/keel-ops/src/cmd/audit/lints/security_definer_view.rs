//! `security_definer_view`: a view reads tables with row-level security but runs with its
//! owner's rights (no `security_invoker` on PostgreSQL 15+; before 15 every view does), so the
//! callers' policies never apply and every tenant's rows show through it.

use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;

/// PostgreSQL's boolean spellings (`parse_bool`): true, yes, on, 1 and unique prefixes.
pub(super) fn pg_true(v: &str) -> bool {
    let v = v.trim().to_ascii_lowercase();
    (!v.is_empty() && ("true".starts_with(&v) || "yes".starts_with(&v))) || v == "on" || v == "1"
}

fn security_invoker(options: &[String]) -> bool {
    options.iter().any(|o| o.split_once('=').is_some_and(|(k, v)| k.trim() == "security_invoker" && pg_true(v)))
}

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    // Compared as a number: "9.6" < "15" as strings is false.
    let supports_invoker = cat.server_version_num >= 150_000;
    cat.views
        .iter()
        .filter(|v| !(supports_invoker && security_invoker(&v.options)))
        .map(|v| {
            let fix = if supports_invoker {
                format!("ALTER VIEW {} SET (security_invoker = true);", v.qname)
            } else {
                format!("upgrade to PostgreSQL 15+ and ALTER VIEW {} SET (security_invoker = true), or replace the view with a SECURITY INVOKER function", v.qname)
            };
            Finding::new("security_definer_view", Level::Error, format!("{}.{}", v.schema, v.name))
                .detail(format!(
                    "view {}.{} runs with its owner's rights over tables with row-level security: {}",
                    v.schema, v.name, v.rls_tables.join(", ")
                ))
                .why("the policies are checked against the view's owner (usually the table owner, who bypasses them), not the caller: anyone who can select from the view sees every tenant's rows")
                .fix(fix)
                .metadata(json!({"rls_tables": v.rls_tables, "options": v.options}))
        })
        .collect()
}
