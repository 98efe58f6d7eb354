//! pg_stat_statements on a real server: real statements with the extension, an explanation
//! without it, a warning for a role without pg_read_all_stats, and never a reset.

use crate::now;
use keel_telemetry::report::{StatementsSection, HOW_TO_ENABLE};
use keel_telemetry::{build_report, ReportOptions};
use keel_testkit::TestDb;
use sqlx::{self, Connection, PgConnection};

async fn pg(name: &str) -> Option<TestDb> {
    TestDb::postgres(&format!("keel_telemetry::statements::{name}"), crate::SCHEMAS).await
}

async fn preloaded(t: &TestDb) -> bool {
    let p = t.db.pg().unwrap();
    let s: String = sqlx::query_scalar("SHOW shared_preload_libraries").fetch_one(p).await.unwrap();
    s.contains("pg_stat_statements")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_statements_appear_and_statistics_are_never_reset() {
    let Some(t) = pg("real").await else { return };
    if !preloaded(&t).await {
        // CI preloads the extension (.ci/run); a developer server without it gets the
        // explanation instead, which the next test checks.
        panic!(
            "pg_stat_statements is not in shared_preload_libraries on the TEST_DATABASE_URL server; .ci/run enables it"
        );
    }
    let p = t.db.pg().unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(p).await.unwrap();
    sqlx::query("CREATE TABLE keel_pgss_probe (id int8 PRIMARY KEY, v text)").execute(p).await.unwrap();
    // Statements heavy enough to rank in the top 20 of this database, above its migrations.
    for i in 0..50i64 {
        sqlx::query(
            "INSERT INTO keel_pgss_probe (id, v) SELECT g, $2 FROM generate_series($1::int8, $1::int8 + 999) g",
        )
        .bind(i * 1000)
        .bind("x")
        .execute(p)
        .await
        .unwrap();
    }
    for _ in 0..5 {
        sqlx::query("SELECT count(*) FROM keel_pgss_probe a JOIN keel_pgss_probe b ON a.id = b.id WHERE a.v = $1")
            .bind("x")
            .fetch_one(p)
            .await
            .unwrap();
    }
    let reset_before: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT stats_reset FROM pg_stat_statements_info").fetch_one(p).await.unwrap();

    let r = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap();
    let StatementsSection::Available { statements, warning, time_columns, extension_version, .. } = &r.statements
    else {
        panic!("expected statements, got {:?}", r.statements)
    };
    assert_eq!(time_columns, "total_exec_time, mean_exec_time");
    assert!(!extension_version.is_empty());
    assert_eq!(*warning, None, "the test role is a superuser");
    assert!(statements.len() <= 20);
    let insert = statements
        .iter()
        .find(|s| s.query.starts_with("INSERT INTO keel_pgss_probe"))
        .unwrap_or_else(|| panic!("probe insert missing: {statements:#?}"));
    assert_eq!((insert.calls, insert.rows), (50, 50_000));
    assert!(insert.query.contains("$1") && insert.total_ms > 0.0 && insert.mean_ms > 0.0);
    let select = statements
        .iter()
        .find(|s| s.query.starts_with("SELECT count(*) FROM keel_pgss_probe"))
        .unwrap_or_else(|| panic!("probe select missing: {statements:#?}"));
    assert_eq!(select.calls, 5);
    let md = r.to_markdown();
    assert!(
        md.contains(
            "`INSERT INTO keel_pgss_probe (id, v) SELECT g, $2 FROM generate_series($1::int8, $1::int8 + $3) g`"
        ),
        "{md}"
    );

    // A second report sees the counts still growing: nothing was reset.
    let r2 = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap();
    let StatementsSection::Available { statements, .. } = &r2.statements else { panic!() };
    let insert2 = statements.iter().find(|s| s.query.starts_with("INSERT INTO keel_pgss_probe")).unwrap();
    assert_eq!(insert2.calls, 50);
    let reset_after: Option<chrono::DateTime<chrono::Utc>> =
        sqlx::query_scalar("SELECT stats_reset FROM pg_stat_statements_info").fetch_one(p).await.unwrap();
    assert_eq!(reset_before, reset_after, "pg_stat_statements was never reset");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_extension_gets_the_explanation() {
    let Some(t) = pg("missing").await else { return };
    let r = build_report(&t.db, &ReportOptions::default(), now(), &mut |_| {}).await.unwrap();
    let StatementsSection::Unavailable { reason, how_to_enable } = &r.statements else {
        panic!("expected an explanation, got {:?}", r.statements)
    };
    if preloaded(&t).await {
        assert!(reason.contains("not created in this database"), "{reason}");
    } else {
        assert!(reason.contains("not loaded"), "{reason}");
    }
    assert_eq!(how_to_enable, HOW_TO_ENABLE);
    let md = r.to_markdown();
    assert!(md.contains("**Not available:**") && md.contains("shared_preload_libraries"), "{md}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_role_without_pg_read_all_stats_is_warned() {
    let Some(t) = pg("role").await else { return };
    let p = t.db.pg().unwrap();
    sqlx::query("CREATE EXTENSION IF NOT EXISTS pg_stat_statements").execute(p).await.unwrap();
    let role = format!("keel_report_{}", uuid::Uuid::new_v4().simple());
    sqlx::query(&format!("CREATE ROLE {role} LOGIN")).execute(p).await.unwrap();
    sqlx::query(&format!("GRANT SELECT ON route_performance_events TO {role}")).execute(p).await.unwrap();
    // The role reads its own database only; other roles' statements are hidden from it.
    let url = t.url.replacen("postgres://postgres@", &format!("postgres://{role}@"), 1);
    assert_ne!(url, t.url, "TEST_DATABASE_URL has the form postgres://postgres@host/db");
    let db = keel_storage::Db::Postgres(sqlx::PgPool::connect(&url).await.unwrap());
    let r = build_report(&db, &ReportOptions::default(), now(), &mut |_| {}).await;
    db.close().await;
    let mut admin = PgConnection::connect(&t.url).await.unwrap();
    sqlx::query(&format!("REVOKE ALL ON route_performance_events FROM {role}")).execute(&mut admin).await.unwrap();
    sqlx::query(&format!("DROP ROLE {role}")).execute(&mut admin).await.unwrap();
    let r = r.unwrap();
    let StatementsSection::Available { warning, .. } = &r.statements else { panic!("{:?}", r.statements) };
    assert!(warning.as_deref().is_some_and(|w| w.contains("pg_read_all_stats")), "{warning:?}");
    let keel_telemetry::report::ConnectionsSection::Snapshot(c) = &r.connections else { panic!() };
    assert!(c.warning.as_deref().is_some_and(|w| w.contains("pg_read_all_stats")));
    assert!(r.to_markdown().contains("> **Warning:** The reporting role lacks pg_read_all_stats"));
}
