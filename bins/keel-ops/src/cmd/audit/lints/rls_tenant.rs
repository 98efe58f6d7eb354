//! `rls_disabled_tenant_table`: a table holds tenant data (it has a tenant column, `org_id` by
//! default) but row-level security is off (error) or on but not forced (warn: the table's owner,
//! often the application's own role, bypasses every policy).

use crate::cmd::audit::catalog::Catalog;
use crate::cmd::audit::finding::{Finding, Level};
use serde_json::json;

pub(super) fn check(cat: &Catalog) -> Vec<Finding> {
    let mut out = Vec::new();
    for t in cat.tables.iter().filter(|t| !t.tenant_columns.is_empty()) {
        let cols = t.tenant_columns.join(", ");
        let object = format!("{}.{}", t.schema, t.name);
        let meta = json!({"tenant_columns": t.tenant_columns, "rls": t.rls, "forced": t.force_rls, "policies": t.policy_count});
        if !t.rls {
            out.push(
                Finding::new("rls_disabled_tenant_table", Level::Error, object)
                    .detail(format!("{}.{} has tenant column {cols} but row-level security is off", t.schema, t.name))
                    .why("isolation rests on every query remembering its WHERE clause; one forgotten filter leaks another tenant's rows")
                    .fix(format!(
                        "ALTER TABLE {q} ENABLE ROW LEVEL SECURITY; ALTER TABLE {q} FORCE ROW LEVEL SECURITY; CREATE POLICY tenant_isolation ON {q} USING ({c} = (SELECT current_setting('keel.org_id')::uuid)) WITH CHECK ({c} = (SELECT current_setting('keel.org_id')::uuid));",
                        q = t.qname,
                        c = t.tenant_columns[0]
                    ))
                    .metadata(meta),
            );
        } else if !t.force_rls {
            out.push(
                Finding::new("rls_disabled_tenant_table", Level::Warn, object)
                    .detail(format!("{}.{} has row-level security on but not forced", t.schema, t.name))
                    .why("the table's owner bypasses its policies; if the application connects as the owner, the policies never run")
                    .fix(format!("ALTER TABLE {} FORCE ROW LEVEL SECURITY;", t.qname))
                    .metadata(meta),
            );
        }
    }
    out
}
