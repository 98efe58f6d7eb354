//! `rls_initplan`: a policy calls a per-row function (`auth.uid()`, `current_setting(…)`, or any
//! configured one) outside a self-contained sub-select, so PostgreSQL calls it for every row
//! instead of once per statement. Decided on the stored expression tree (see `node_tree`), not
//! by matching the policy's text.

use crate::cmd::audit::catalog::{Catalog, Policy};
use crate::cmd::audit::finding::{quote, Finding, Level};
use crate::cmd::audit::node_tree;
use serde_json::json;
use std::collections::BTreeSet;

/// Names of the configured functions called per row in `tree`.
fn per_row_calls(tree: &str, cat: &Catalog) -> Result<BTreeSet<String>, String> {
    let parsed = node_tree::parse(tree)?;
    Ok(node_tree::calls(&parsed)
        .into_iter()
        .filter(|c| c.per_row)
        .filter_map(|c| cat.per_row_functions.get(&c.funcid).cloned())
        .collect())
}

fn clause(p: &Policy, tree: Option<&str>, which: &str, cat: &Catalog, notes: &mut Vec<String>) -> BTreeSet<String> {
    let Some(tree) = tree else { return BTreeSet::new() };
    per_row_calls(tree, cat).unwrap_or_else(|e| {
        notes.push(format!(
            "rls_initplan: could not read the {which} expression of policy {} on {}.{} ({e}); it was not checked",
            p.name, p.schema, p.table
        ));
        BTreeSet::new()
    })
}

fn example(f: &str) -> String {
    if f == "current_setting" {
        "current_setting('keel.org_id')::uuid → (SELECT current_setting('keel.org_id')::uuid)".to_owned()
    } else {
        format!("{f}() → (SELECT {f}())")
    }
}

pub(super) fn check(cat: &Catalog, notes: &mut Vec<String>) -> Vec<Finding> {
    let mut out = Vec::new();
    for p in &cat.policies {
        let using = clause(p, p.using_tree.as_deref(), "USING", cat, notes);
        let check = clause(p, p.check_tree.as_deref(), "WITH CHECK", cat, notes);
        if using.is_empty() && check.is_empty() {
            continue;
        }
        let all: BTreeSet<&String> = using.iter().chain(&check).collect();
        let names: Vec<String> = all.iter().map(|f| format!("{f}()")).collect();
        out.push(
            Finding::new("rls_initplan", Level::Warn, format!("{}.{}.{}", p.schema, p.table, p.name))
                .detail(format!(
                    "policy {} on {}.{} calls {} once per row",
                    p.name,
                    p.schema,
                    p.table,
                    names.join(", ")
                ))
                .why("outside a sub-select the function is re-evaluated for every row the query touches; wrapped as (SELECT f()) it runs once per statement as an InitPlan")
                .fix(format!(
                    "ALTER POLICY {} ON {} with every call to {} wrapped in a sub-select, e.g. {}; currently{}{}",
                    quote(&p.name),
                    p.qtable,
                    names.join(", "),
                    example(all.iter().next().map(|s| s.as_str()).unwrap_or("auth.uid")),
                    p.using_text.as_ref().map(|t| format!(" USING {t}")).unwrap_or_default(),
                    p.check_text.as_ref().map(|t| format!(" WITH CHECK {t}")).unwrap_or_default(),
                ))
                .metadata(json!({
                    "functions": all,
                    "using": p.using_text, "with_check": p.check_text,
                    "per_row_in_using": using, "per_row_in_with_check": check,
                })),
        );
    }
    out
}
