//! `keel-ops db audit` on a real PostgreSQL: for every lint a schema where it fires and the
//! corrected schema (the lint's own fix applied, plus near misses) where it stays silent.

use keel_testkit::TestDb;
use serde_json::Value;
use std::collections::BTreeSet;

async fn fixture(name: &str, sql: &str) -> Option<TestDb> {
    let db = TestDb::postgres_empty(name).await?;
    sqlx::raw_sql(sql).execute(db.db.pg().unwrap()).await.unwrap_or_else(|e| panic!("fixture {name}: {e}"));
    Some(db)
}

async fn exec(db: &TestDb, sql: &str) {
    sqlx::raw_sql(sql).execute(db.db.pg().unwrap()).await.unwrap_or_else(|e| panic!("{sql}: {e}"));
}

/// Runs the real binary with `--json` plus `extra` (and `--fail-on info` unless `extra` says
/// otherwise); returns (exit, report).
fn audit(db: &TestDb, extra: &[&str]) -> (i32, Value) {
    let mut args = vec!["db", "audit", "--json"];
    if !extra.contains(&"--fail-on") {
        args.extend(["--fail-on", "info"]);
    }
    args.extend_from_slice(extra);
    let (code, out, err) = super::ops(&args, &[("DATABASE_URL", db.url.as_str())]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}), exit {code}: {out}\n{err}"));
    (code, v)
}

fn of<'a>(v: &'a Value, lint: &str) -> Vec<&'a Value> {
    v["findings"].as_array().unwrap().iter().filter(|f| f["lint"] == lint).collect()
}

fn objects(v: &Value, lint: &str) -> BTreeSet<String> {
    of(v, lint).iter().map(|f| f["object"].as_str().unwrap().to_owned()).collect()
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn finding<'a>(v: &'a Value, lint: &str, object: &str) -> &'a Value {
    of(v, lint).into_iter().find(|f| f["object"] == object).unwrap_or_else(|| panic!("no {lint} {object}: {v:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn duplicate_index_identical_and_prefix_but_never_unique() {
    let Some(db) = fixture(
        "audit::duplicate_index",
        "CREATE TABLE notes (id bigint PRIMARY KEY, entity_id bigint NOT NULL, created_at timestamptz NOT NULL,
                             deleted_at timestamptz, email text);
         -- the seed's case: the same index created twice under two names
         CREATE INDEX notes_entity_date_idx ON notes (entity_id, created_at DESC) WHERE deleted_at IS NULL;
         CREATE INDEX notes_timeline_idx ON notes (entity_id, created_at DESC) WHERE deleted_at IS NULL;
         CREATE TABLE t (a int, b int, c int, p int, q int);
         CREATE INDEX t_a_idx ON t (a);                 -- prefix of t_ab_idx
         CREATE INDEX t_ab_idx ON t (a, b);
         CREATE INDEX t_c_desc_idx ON t (c DESC);       -- a backward scan of t_c_a_idx serves it
         CREATE INDEX t_c_a_idx ON t (c, a);
         CREATE TABLE u (a int, b int);
         CREATE UNIQUE INDEX u_a_key ON u (a);          -- unique: never the redundant one
         CREATE INDEX u_ab_idx ON u (a, b);
         CREATE INDEX u_a_idx ON u (a);                 -- identical to the unique index: redundant
         -- near misses, never reported:
         CREATE INDEX notes_entity_idx ON notes (entity_id);                                  -- other predicate
         CREATE INDEX notes_email_lower_idx ON notes (lower(email));                          -- expression vs column
         CREATE INDEX notes_email_idx ON notes (email);
         CREATE INDEX notes_email_hash_idx ON notes USING hash (email);                       -- other method
         CREATE INDEX t_b_idx ON t (b);                                                       -- not a leading prefix
         CREATE INDEX t_pq_idx ON t (p, q DESC);                                              -- mixed directions
         CREATE INDEX t_pq2_idx ON t (p, q);
         CREATE INDEX t_p_incl_idx ON t (p) INCLUDE (c);                                      -- INCLUDE c not in t_pq2
        ",
    )
    .await
    else {
        return;
    };
    let (code, v) = audit(&db, &[]);
    assert_eq!(code, 1, "warn findings with --fail-on info");
    assert_eq!(
        objects(&v, "duplicate_index"),
        set(&["public.notes_timeline_idx", "public.t_a_idx", "public.t_c_desc_idx", "public.u_a_idx"]),
        "{v:#}"
    );
    let f = finding(&v, "duplicate_index", "public.t_a_idx");
    assert_eq!(f["level"], "warn");
    assert!(f["detail"].as_str().unwrap().contains("prefix of t_ab_idx"), "{f}");
    assert_eq!(f["fix"], "DROP INDEX CONCURRENTLY public.t_a_idx;");
    assert!(finding(&v, "duplicate_index", "public.u_a_idx")["detail"]
        .as_str()
        .unwrap()
        .contains("identical to u_a_key"));

    exec(&db, "DROP INDEX notes_timeline_idx, t_a_idx, t_c_desc_idx, u_a_idx").await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "duplicate_index").is_empty(), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unused_index_respects_floor_constraints_foreign_keys_and_scans() {
    let Some(db) = fixture(
        "audit::unused_index",
        "CREATE TABLE parents (id int PRIMARY KEY);
         CREATE TABLE items (id int PRIMARY KEY, parent_id int REFERENCES parents (id), sku text, note text);
         CREATE INDEX items_parent_idx ON items (parent_id);   -- covers the foreign key: kept
         CREATE UNIQUE INDEX items_sku_key ON items (sku);     -- enforces uniqueness: kept
         CREATE INDEX items_note_idx ON items (note);
         INSERT INTO items (id, note) SELECT g, 'n' || g FROM generate_series(1, 500) g;",
    )
    .await
    else {
        return;
    };
    // Under the default 10MB floor a small index is not worth a finding.
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "unused_index").is_empty(), "{v:#}");

    let (_, v) = audit(&db, &["--unused-index-min-size", "0"]);
    assert_eq!(objects(&v, "unused_index"), set(&["public.items_note_idx"]), "{v:#}");
    let f = finding(&v, "unused_index", "public.items_note_idx");
    assert_eq!(f["level"], "info");
    assert!(f["metadata"]["size_bytes"].as_i64().unwrap() > 0);
    assert!(f["detail"].as_str().unwrap().contains("statistics"), "the stats age is shown: {f}");

    // Use it once, then make this backend publish its statistics before answering.
    let mut conn = db.db.pg().unwrap().acquire().await.unwrap();
    sqlx::raw_sql(
        "SET enable_seqscan = off; SET enable_bitmapscan = off; SELECT count(*) FROM items WHERE note = 'n7'",
    )
    .execute(&mut *conn)
    .await
    .unwrap();
    sqlx::query("SELECT pg_stat_force_next_flush()").execute(&mut *conn).await.unwrap();
    let (_, v) = audit(&db, &["--unused-index-min-size", "0"]);
    assert!(objects(&v, "unused_index").is_empty(), "scanned now: {v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unindexed_foreign_key_is_order_insensitive_and_ignores_partial_indexes() {
    let Some(db) = fixture(
        "audit::unindexed_foreign_key",
        "CREATE TABLE parents (id int PRIMARY KEY, k1 int, k2 int, UNIQUE (k1, k2));
         CREATE TABLE c_plain (id int PRIMARY KEY, parent_id int REFERENCES parents (id));
         CREATE TABLE c_partial (id int PRIMARY KEY, parent_id int REFERENCES parents (id), deleted_at timestamptz);
         CREATE INDEX c_partial_idx ON c_partial (parent_id) WHERE deleted_at IS NULL;
         CREATE TABLE c_trailing (id int PRIMARY KEY, x int, parent_id int REFERENCES parents (id));
         CREATE INDEX c_trailing_idx ON c_trailing (x, parent_id);
         -- covered: composite key by an index in the other order; a key leading the primary key
         CREATE TABLE c_pair (id int PRIMARY KEY, k1 int, k2 int, FOREIGN KEY (k1, k2) REFERENCES parents (k1, k2));
         CREATE INDEX c_pair_idx ON c_pair (k2, k1, id);
         CREATE TABLE c_pk (parent_id int REFERENCES parents (id), n int, PRIMARY KEY (parent_id, n));",
    )
    .await
    else {
        return;
    };
    let (_, v) = audit(&db, &[]);
    assert_eq!(
        objects(&v, "unindexed_foreign_key"),
        set(&[
            "public.c_partial.c_partial_parent_id_fkey",
            "public.c_plain.c_plain_parent_id_fkey",
            "public.c_trailing.c_trailing_parent_id_fkey"
        ]),
        "{v:#}"
    );
    let f = finding(&v, "unindexed_foreign_key", "public.c_plain.c_plain_parent_id_fkey");
    assert_eq!(f["level"], "warn");
    assert_eq!(f["fix"], "CREATE INDEX CONCURRENTLY ON public.c_plain (parent_id);");

    exec(
        &db,
        "CREATE INDEX ON c_plain (parent_id); CREATE INDEX ON c_partial (parent_id); CREATE INDEX ON c_trailing (parent_id);",
    )
    .await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "unindexed_foreign_key").is_empty(), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn security_definer_view_over_rls_tables_directly_or_through_views() {
    let Some(db) = fixture(
        "audit::security_definer_view",
        "CREATE TABLE docs (id int PRIMARY KEY, org_id uuid NOT NULL);
         ALTER TABLE docs ENABLE ROW LEVEL SECURITY;
         ALTER TABLE docs FORCE ROW LEVEL SECURITY;
         CREATE POLICY docs_org ON docs USING (org_id = (SELECT current_setting('keel.org_id')::uuid));
         CREATE VIEW doc_counts AS SELECT org_id, count(*) AS n FROM docs GROUP BY org_id;
         CREATE VIEW doc_counts_again AS SELECT * FROM doc_counts;
         -- silent: invoker rights already (spelled 'on'), and a view over a table without RLS
         CREATE VIEW doc_ids WITH (security_invoker = on) AS SELECT id FROM docs;
         CREATE TABLE plain (id int PRIMARY KEY);
         CREATE VIEW plain_ids AS SELECT id FROM plain;",
    )
    .await
    else {
        return;
    };
    let (code, v) = audit(&db, &["--fail-on", "error"]);
    assert_eq!(code, 1, "an error-level finding fails --fail-on error");
    assert_eq!(objects(&v, "security_definer_view"), set(&["public.doc_counts", "public.doc_counts_again"]), "{v:#}");
    let f = finding(&v, "security_definer_view", "public.doc_counts_again");
    assert_eq!(f["level"], "error");
    assert_eq!(f["metadata"]["rls_tables"], serde_json::json!(["public.docs"]));
    assert_eq!(f["fix"], "ALTER VIEW public.doc_counts_again SET (security_invoker = true);");

    exec(
        &db,
        "ALTER VIEW doc_counts SET (security_invoker = true); ALTER VIEW doc_counts_again SET (security_invoker = true);",
    )
    .await;
    let (code, v) = audit(&db, &["--fail-on", "error"]);
    assert!(objects(&v, "security_definer_view").is_empty(), "{v:#}");
    assert_eq!(code, 0, "{v:#}");
}

const RLS_BASE: &str = "
    CREATE SCHEMA auth;
    CREATE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog
        AS $$ SELECT nullif(current_setting('request.jwt.sub', true), '')::uuid $$;
    CREATE SCHEMA app;
    CREATE FUNCTION app.current_org() RETURNS uuid LANGUAGE sql STABLE SET search_path = pg_catalog
        AS $$ SELECT current_setting('keel.org_id')::uuid $$;
    CREATE TABLE items (id int PRIMARY KEY, org_id uuid, owner uuid, label text);
    ALTER TABLE items ENABLE ROW LEVEL SECURITY;
    ALTER TABLE items FORCE ROW LEVEL SECURITY;";

#[tokio::test(flavor = "multi_thread")]
async fn rls_initplan_reads_the_expression_tree_not_the_text() {
    let sql = format!(
        "{RLS_BASE}
         CREATE POLICY items_org ON items FOR SELECT USING (org_id = current_setting('keel.org_id')::uuid);
         CREATE POLICY items_owner ON items FOR UPDATE USING (true) WITH CHECK (owner = auth.uid());
         -- inside a sub-select, but one correlated with the row: still once per row
         CREATE POLICY items_exists ON items FOR DELETE
             USING (EXISTS (SELECT 1 FROM items i2 WHERE i2.id = items.id AND i2.owner = auth.uid()));
         -- silent: wrapped in uncorrelated sub-selects
         CREATE POLICY items_insert ON items FOR INSERT
             WITH CHECK (owner = (SELECT auth.uid()) AND org_id = (SELECT current_setting('keel.org_id')::uuid));
         -- silent: the function's name only appears in a string (text matching would flag it)
         CREATE TABLE labels (id int PRIMARY KEY, label text);
         ALTER TABLE labels ENABLE ROW LEVEL SECURITY;
         CREATE POLICY labels_text ON labels USING (label <> 'auth.uid() current_setting(x)');
         -- a custom wrapper: only with --per-row-function
         CREATE TABLE wrapped (id int PRIMARY KEY, org_id uuid);
         ALTER TABLE wrapped ENABLE ROW LEVEL SECURITY;
         CREATE POLICY wrapped_org ON wrapped USING (org_id = app.current_org());"
    );
    let Some(db) = fixture("audit::rls_initplan", &sql).await else { return };
    let (_, v) = audit(&db, &[]);
    assert_eq!(
        objects(&v, "rls_initplan"),
        set(&["public.items.items_exists", "public.items.items_org", "public.items.items_owner"]),
        "{v:#}"
    );
    let f = finding(&v, "rls_initplan", "public.items.items_owner");
    assert_eq!(f["level"], "warn");
    assert_eq!(f["metadata"]["per_row_in_with_check"], serde_json::json!(["auth.uid"]));
    assert_eq!(f["metadata"]["per_row_in_using"], serde_json::json!([]));
    assert_eq!(
        finding(&v, "rls_initplan", "public.items.items_org")["metadata"]["functions"],
        serde_json::json!(["current_setting"])
    );

    let (_, v) = audit(&db, &["--per-row-function", "app.current_org"]);
    assert_eq!(objects(&v, "rls_initplan"), set(&["public.wrapped.wrapped_org"]), "the list is replaced: {v:#}");

    exec(
        &db,
        "ALTER POLICY items_org ON items USING (org_id = (SELECT current_setting('keel.org_id')::uuid));
         ALTER POLICY items_owner ON items WITH CHECK (owner = (SELECT auth.uid()));
         ALTER POLICY items_exists ON items
             USING (EXISTS (SELECT 1 FROM items i2 WHERE i2.id = items.id AND i2.owner = (SELECT auth.uid())));
         ALTER POLICY wrapped_org ON wrapped USING (org_id = (SELECT app.current_org()));",
    )
    .await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "rls_initplan").is_empty(), "{v:#}");
    let (_, v) = audit(&db, &["--per-row-function", "app.current_org"]);
    assert!(objects(&v, "rls_initplan").is_empty(), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn multiple_permissive_policies_per_role_and_action() {
    let Some(db) = fixture(
        "audit::multiple_permissive_policies",
        "CREATE TABLE tags (id int PRIMARY KEY, deleted_at timestamptz);
         ALTER TABLE tags ENABLE ROW LEVEL SECURITY;
         -- the seed's case: two DELETE policies, the broader one decides
         CREATE POLICY delete_tags_admin ON tags FOR DELETE USING (false);
         CREATE POLICY tags_delete_privileged ON tags FOR DELETE USING (deleted_at IS NULL);
         CREATE POLICY tags_select ON tags FOR SELECT USING (deleted_at IS NULL);
         CREATE POLICY tags_select_narrow ON tags AS RESTRICTIVE FOR SELECT USING (id > 0);  -- restrictive: ANDed
         CREATE TABLE reports (id int PRIMARY KEY);
         ALTER TABLE reports ENABLE ROW LEVEL SECURITY;
         CREATE POLICY reports_monitor ON reports FOR SELECT TO pg_monitor USING (true);
         CREATE POLICY reports_public ON reports FOR ALL USING (id < 100);",
    )
    .await
    else {
        return;
    };
    let (_, v) = audit(&db, &[]);
    assert_eq!(
        objects(&v, "multiple_permissive_policies"),
        set(&["public.reports/pg_monitor/SELECT", "public.tags/PUBLIC/DELETE"]),
        "{v:#}"
    );
    let f = finding(&v, "multiple_permissive_policies", "public.tags/PUBLIC/DELETE");
    assert_eq!(f["metadata"]["policies"], serde_json::json!(["delete_tags_admin", "tags_delete_privileged"]));

    exec(
        &db,
        "DROP POLICY delete_tags_admin ON tags;
         DROP POLICY reports_monitor ON reports;",
    )
    .await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "multiple_permissive_policies").is_empty(), "{v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn rls_disabled_tenant_table_off_is_error_unforced_is_warn() {
    let Some(db) = fixture(
        "audit::rls_disabled_tenant_table",
        "CREATE TABLE bills (id int PRIMARY KEY, org_id uuid NOT NULL);
         CREATE TABLE charges (id int PRIMARY KEY, org_id uuid NOT NULL);
         ALTER TABLE charges ENABLE ROW LEVEL SECURITY;
         CREATE POLICY charges_org ON charges USING (org_id = (SELECT current_setting('keel.org_id')::uuid));
         CREATE TABLE customers (id int PRIMARY KEY, tenant uuid);  -- tenant column under another name
         CREATE TABLE settings (id int PRIMARY KEY);",
    )
    .await
    else {
        return;
    };
    let (_, v) = audit(&db, &[]);
    assert_eq!(objects(&v, "rls_disabled_tenant_table"), set(&["public.bills", "public.charges"]), "{v:#}");
    assert_eq!(finding(&v, "rls_disabled_tenant_table", "public.bills")["level"], "error");
    assert_eq!(finding(&v, "rls_disabled_tenant_table", "public.charges")["level"], "warn");
    let (_, v) = audit(&db, &["--tenant-column", "tenant"]);
    assert_eq!(objects(&v, "rls_disabled_tenant_table"), set(&["public.customers"]), "{v:#}");

    // The fix the finding proposes, verbatim.
    let fix =
        finding(&audit(&db, &[]).1, "rls_disabled_tenant_table", "public.bills")["fix"].as_str().unwrap().to_owned();
    exec(&db, &fix).await;
    exec(&db, "ALTER TABLE charges FORCE ROW LEVEL SECURITY").await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "rls_disabled_tenant_table").is_empty(), "{v:#}");
    assert!(objects(&v, "rls_initplan").is_empty(), "the proposed policy passes rls_initplan too: {v:#}");
}

#[tokio::test(flavor = "multi_thread")]
async fn no_primary_key_skips_partitions_of_keyed_parents() {
    let Some(db) = fixture(
        "audit::no_primary_key",
        "CREATE TABLE events (at timestamptz NOT NULL, body text);
         CREATE TABLE keyed (id int PRIMARY KEY);
         CREATE TABLE parted (id int, at date, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
         CREATE TABLE parted_2026 PARTITION OF parted FOR VALUES FROM ('2026-01-01') TO ('2027-01-01');",
    )
    .await
    else {
        return;
    };
    let (_, v) = audit(&db, &[]);
    assert_eq!(objects(&v, "no_primary_key"), set(&["public.events"]), "{v:#}");
    assert_eq!(finding(&v, "no_primary_key", "public.events")["level"], "info");
    exec(&db, "ALTER TABLE events ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY").await;
    let (_, v) = audit(&db, &[]);
    assert!(objects(&v, "no_primary_key").is_empty(), "{v:#}");
}

const FUNCTIONS: &str = "
    CREATE FUNCTION is_admin() RETURNS boolean LANGUAGE sql SECURITY DEFINER AS $$ SELECT true $$;
    CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NEW; END $$;
    CREATE FUNCTION pinned(a int) RETURNS int LANGUAGE sql SET search_path = pg_catalog, pg_temp AS $$ SELECT a $$;";

#[tokio::test(flavor = "multi_thread")]
async fn function_search_path_mutable_and_fail_on_levels() {
    let Some(db) = fixture("audit::function_search_path_mutable", FUNCTIONS).await else { return };
    let (code, v) = audit(&db, &["--fail-on", "warn"]);
    assert_eq!(code, 1);
    assert_eq!(objects(&v, "function_search_path_mutable"), set(&["public.is_admin()", "public.touch()"]), "{v:#}");
    assert_eq!(finding(&v, "function_search_path_mutable", "public.is_admin()")["level"], "warn");
    assert_eq!(finding(&v, "function_search_path_mutable", "public.touch()")["level"], "info");

    exec(&db, "ALTER FUNCTION is_admin() SET search_path = pg_catalog, pg_temp").await;
    let (code, v) = audit(&db, &["--fail-on", "warn"]);
    assert_eq!(code, 0, "only an info finding is left: {v:#}");
    assert_eq!(v["failed"], false);
    let (code, _) = audit(&db, &["--fail-on", "info"]);
    assert_eq!(code, 1);
    exec(&db, "ALTER FUNCTION touch() SET search_path = pg_catalog, pg_temp").await;
    let (code, v) = audit(&db, &["--fail-on", "info"]);
    assert_eq!(code, 0, "{v:#}");
    assert!(objects(&v, "function_search_path_mutable").is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn suppressions_apply_until_they_expire_and_bad_files_are_usage_errors() {
    let Some(db) = fixture("audit::suppressions", FUNCTIONS).await else { return };
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    let write = |expires: &str| {
        std::fs::write(
            &file,
            format!(
                "[[suppress]]\nlint = \"function_search_path_mutable\"\nobject = \"public.is_admin()\"\n\
                 reason = \"reviewed: returns a constant\"\nexpires = {expires}\n\
                 [[suppress]]\nlint = \"no_primary_key\"\nobject = \"public.nothing_here\"\nreason = \"stale\"\n"
            ),
        )
        .unwrap();
    };
    let path = file.to_str().unwrap();
    write("2999-01-01");
    let (code, v) = audit(&db, &["--fail-on", "warn", "--suppress", path]);
    assert_eq!(code, 0, "{v:#}");
    assert_eq!(v["suppressed"][0]["object"], "public.is_admin()");
    assert_eq!(v["suppressed"][0]["reason"], "reviewed: returns a constant");
    assert_eq!(v["unused_suppressions"][0]["object"], "public.nothing_here");
    assert!(objects(&v, "function_search_path_mutable").contains("public.touch()"));

    write("2001-01-01");
    let (code, v) = audit(&db, &["--fail-on", "warn", "--suppress", path]);
    assert_eq!(code, 1, "an expired suppression stops suppressing: {v:#}");
    assert!(objects(&v, "function_search_path_mutable").contains("public.is_admin()"));
    assert_eq!(v["expired_suppressions"][0]["object"], "public.is_admin()");
    assert_eq!(v["suppressed"].as_array().unwrap().len(), 0);

    std::fs::write(&file, "[[suppress]]\nlint = \"function_search_path_mutable\"\nobject = \"x\"\n").unwrap();
    let (code, out, err) = super::ops(&["db", "audit", "--suppress", path], &[("DATABASE_URL", db.url.as_str())]);
    assert_eq!(code, 2, "{out}{err}");
    assert!(err.contains("reason") && err.contains("s.toml"), "{err}");
    let (code, _, err) =
        super::ops(&["db", "audit", "--suppress", "/nonexistent/s.toml"], &[("DATABASE_URL", db.url.as_str())]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/s.toml"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn human_output_names_level_object_why_and_fix_without_colour_when_piped() {
    let Some(db) = fixture("audit::human", "CREATE TABLE events (at timestamptz);").await else { return };
    let (code, out, err) = super::ops(&["db", "audit", "--fail-on", "info"], &[("DATABASE_URL", db.url.as_str())]);
    assert_eq!(code, 1, "{err}");
    for needle in ["INFO", "no_primary_key", "public.events", "why:", "fix:", "FAIL (--fail-on info)"] {
        assert!(out.contains(needle), "{needle}: {out}");
    }
    assert!(!out.contains('\u{1b}') && !err.contains('\u{1b}'), "no escape codes when piped: {out:?} {err:?}");
}

#[test]
fn sqlite_is_refused_with_a_clear_line() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}/keel.db", dir.path().display());
    let (code, _, err) = super::ops(&["db", "audit"], &[("DATABASE_URL", url.as_str())]);
    assert_eq!(code, 3, "{err}");
    assert!(err.contains("needs PostgreSQL") && err.lines().count() == 1, "{err}");
}

/// Keel's own schema passes its own audit (with the suppressions Keel ships and documents).
#[tokio::test(flavor = "multi_thread")]
async fn keel_database_passes_its_own_audit() {
    let Some(db) = TestDb::postgres("audit::keel_database", crate::SCHEMAS).await else { return };
    let (code, out, err) =
        super::ops(&["db", "audit", "--fail-on", "warn", "--json"], &[("DATABASE_URL", db.url.as_str())]);
    let v: Value = serde_json::from_str(&out).unwrap_or_else(|_| panic!("{out}{err}"));
    let blocking: Vec<String> = v["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["level"] != "info")
        .map(|f| format!("{} {} {}: {}", f["level"], f["lint"], f["object"], f["detail"]))
        .collect();
    assert_eq!(code, 0, "Keel's own tables trip the audit:\n{}", blocking.join("\n"));
    assert!(v["expired_suppressions"].as_array().unwrap().is_empty(), "a shipped suppression expired: {v:#}");
}

#[test]
fn unreachable_database_is_one_line_and_exit_3_for_audit_and_backup() {
    let env = [("DATABASE_URL", "postgres://u:pw-hidden@127.0.0.1:1/x")];
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("b");
    for args in [vec!["db", "audit"], vec!["backup", "export", "--out", out.to_str().unwrap()]] {
        let (code, _, err) = super::ops(&args, &env);
        assert_eq!(code, 3, "{args:?}: {err}");
        assert!(err.contains("cannot reach the database") && err.lines().count() == 1, "{err}");
        assert!(!err.contains("pw-hidden"));
    }
    assert!(!out.exists());
}
