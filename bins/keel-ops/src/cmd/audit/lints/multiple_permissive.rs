//! `multiple_permissive_policies`: several permissive policies apply to the same role and
//! action on one table. PostgreSQL ORs them, so every one is evaluated for every row, and the
//! broadest silently decides (the narrower ones are dead code that looks like protection).

use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};

const ACTIONS: [(char, &str); 4] = [('r', "SELECT"), ('a', "INSERT"), ('w', "UPDATE"), ('d', "DELETE")];

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    // (schema, table) -> policies, in catalog order.
    let mut by_table: BTreeMap<(&str, &str), Vec<_>> = BTreeMap::new();
    for p in cat.policies.iter().filter(|p| p.permissive) {
        by_table.entry((p.schema.as_str(), p.table.as_str())).or_default().push(p);
    }
    let mut out = Vec::new();
    for ((schema, table), policies) in by_table {
        // Every role a policy names, plus PUBLIC; a PUBLIC policy applies to each of them.
        let roles: BTreeSet<&str> = policies
            .iter()
            .flat_map(|p| p.roles.iter().map(String::as_str))
            .chain(["PUBLIC"])
            .filter(|r| !cat.bypass_rls_roles.iter().any(|b| b == r))
            .collect();
        for role in roles {
            for (cmd, action) in ACTIONS {
                let hits: Vec<&str> = policies
                    .iter()
                    .filter(|p| p.command == cmd || p.command == '*')
                    .filter(|p| p.roles.iter().any(|r| r == role || r == "PUBLIC"))
                    .map(|p| p.name.as_str())
                    .collect();
                if hits.len() < 2 {
                    continue;
                }
                out.push(
                    Finding::new("multiple_permissive_policies", Level::Warn, format!("{schema}.{table}/{role}/{action}"))
                        .detail(format!(
                            "{} permissive policies apply to {action} by {role} on {schema}.{table}: {}",
                            hits.len(),
                            hits.join(", ")
                        ))
                        .why("permissive policies are ORed: each is evaluated for every row, and the broadest one decides, so the others protect nothing")
                        .fix("merge them into one policy for this role and action (or make the narrowing ones AS RESTRICTIVE), then drop the rest")
                        .metadata(json!({"role": role, "action": action, "policies": hits})),
                );
            }
        }
    }
    out
}
