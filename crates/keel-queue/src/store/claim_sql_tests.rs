//! The claim statements walk the claim index band by band: jobs scheduled for later cost a
//! claim nothing, on either database (see `claim_sql`).

use super::claim_sql;
use keel_storage::Db;
use keel_testkit::TestDb;
use serde_json::Value;

/// Jobs scheduled for later in the first band: enough index pages that a claim stepping over
/// them reads hundreds.
const LATER: i64 = 30_000;

/// Index and table pages a claim that walks the bands reads here (about 40 on PostgreSQL 15);
/// a claim stepping over the jobs scheduled later reads well over 100.
const WALKED_PAGES: i64 = 100;

/// The bare single scan in claim order, to show the data makes it expensive.
const SINGLE_SCAN: &str = "SELECT id FROM keel_jobs \
     WHERE queue = $1 AND state IN ('pending', 'retrying') AND run_at <= $2 \
     ORDER BY priority, run_at, id LIMIT $3";

async fn pg_fixture() -> Option<(TestDb, sqlx::PgPool)> {
    let t = TestDb::postgres("keel_queue::store::claim_sql_tests", &[&crate::SCHEMA]).await?;
    let Db::Postgres(pool) = t.db.clone() else { unreachable!("a PostgreSQL test database") };
    // Band 0: jobs due tomorrow, and one due now (the cursor's); band 1: three due now.
    sqlx::query(
        "INSERT INTO keel_jobs (id, kind, queue, payload, priority, state, run_at, max_attempts, created_at, updated_at) \
         SELECT gen_random_uuid(), 'k.x', 'default', '{}', p, 'pending', t, 5, now(), now() \
         FROM (SELECT 0, now() + interval '1 day' + g * interval '1 ms' FROM generate_series(1, $1) g \
               UNION ALL SELECT 0, now() - interval '1 minute' \
               UNION ALL SELECT 1, now() - interval '1 second' FROM generate_series(1, 3)) AS s(p, t)",
    )
    .bind(LATER)
    .execute(&pool)
    .await
    .unwrap();
    sqlx::query("VACUUM ANALYZE keel_jobs").execute(&pool).await.unwrap();
    Some((t, pool))
}

/// What a statement is given besides the claim's first parameters.
enum Then {
    /// Nothing: the bare single scan takes `$1` to `$3` only.
    Nothing,
    /// The lowest priority of a band walk.
    From(i16),
    /// A cursor: its priority and its job's id.
    Cursor(i16, uuid::Uuid),
}

/// Pages read (hit or read) by `sql` run under `EXPLAIN (ANALYZE, BUFFERS)` with the claim's
/// parameters, inside a transaction rolled back; and the rows it returned.
async fn pages_read(pool: &sqlx::PgPool, sql: &str, then: Then) -> (i64, i64) {
    let mut tx = pool.begin().await.unwrap();
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT JSON) {sql}");
    let now = chrono::Utc::now();
    let mut q = sqlx::query_scalar::<_, Value>(&explain).bind("default").bind(now).bind(8_i64);
    if !matches!(then, Then::Nothing) {
        q = q.bind(now + chrono::TimeDelta::seconds(30)).bind("background_job").bind("test-worker");
    }
    match then {
        Then::Nothing => {}
        Then::From(priority) => q = q.bind(priority),
        Then::Cursor(priority, id) => {
            let run_at: chrono::DateTime<chrono::Utc> =
                sqlx::query_scalar("SELECT run_at FROM keel_jobs WHERE id = $1")
                    .bind(id)
                    .fetch_one(&mut *tx)
                    .await
                    .unwrap();
            q = q.bind(priority).bind(run_at).bind(id);
        }
    }
    let plan = q.fetch_one(&mut *tx).await.unwrap();
    tx.rollback().await.unwrap();
    let top = &plan[0]["Plan"];
    let pages = top["Shared Hit Blocks"].as_i64().unwrap() + top["Shared Read Blocks"].as_i64().unwrap();
    (pages, top["Actual Rows"].as_i64().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_claims_read_a_few_pages_whatever_is_scheduled_later() {
    let Some((_t, pool)) = pg_fixture().await else { return };
    let (single, rows) = pages_read(&pool, SINGLE_SCAN, Then::Nothing).await;
    assert_eq!(rows, 4, "the single scan finds the four due jobs");
    assert!(single > 3 * WALKED_PAGES, "the single scan steps over the jobs due tomorrow: {single} pages");

    let (pages, rows) = pages_read(&pool, &claim_sql::pg_bands("j.id"), Then::From(i16::MIN)).await;
    assert_eq!(rows, 4, "the claim from the start takes the four due jobs");
    assert!(pages < WALKED_PAGES, "the claim from the start read {pages} pages");

    let (id, priority): (uuid::Uuid, i16) =
        sqlx::query_as("SELECT id, priority FROM keel_jobs WHERE run_at < now() AND priority = 0")
            .fetch_one(&pool)
            .await
            .unwrap();
    let (pages, rows) = pages_read(&pool, &claim_sql::pg_cursor_band("j.id"), Then::Cursor(priority, id)).await;
    assert_eq!(rows, 0, "nothing due after the cursor in its band");
    assert!(pages < WALKED_PAGES, "the rest of the cursor's band read {pages} pages");
    let (pages, rows) = pages_read(&pool, &claim_sql::pg_bands("j.id"), Then::From(priority + 1)).await;
    assert_eq!(rows, 3, "above the cursor's band, the three due jobs of the next");
    assert!(pages < WALKED_PAGES, "the bands above the cursor's read {pages} pages");
}

/// SQLite's plans: each band's scan is an index range bounded by the band, the cursor or its
/// first entry, and `run_at`; the bands are the outer loop of the join, and a co-routine, so
/// a claim walks only as many as it needs.
#[tokio::test]
async fn sqlite_claims_scan_each_band_as_a_bounded_range() {
    let t = TestDb::sqlite(&[&crate::SCHEMA]).await;
    let Db::Sqlite(pool) = t.db.clone() else { unreachable!("a SQLite test database") };
    for cursor in [false, true] {
        let sql = if cursor { claim_sql::sqlite_cursor_band("id") } else { claim_sql::sqlite_bands("id") };
        let sql = format!("EXPLAIN QUERY PLAN {sql}");
        let mut q = sqlx::query_as::<_, (i64, i64, i64, String)>(&sql)
            .bind(0_i64)
            .bind("w")
            .bind(0_i64)
            .bind("default")
            .bind("background_job")
            .bind(8_i64)
            .bind(0_i64);
        if cursor {
            q = q.bind(0_i64).bind("");
        }
        let plan: Vec<String> = q.fetch_all(&pool).await.unwrap().into_iter().map(|r| r.3).collect();
        let text = plan.join("\n");
        // SQLite prints both bounds of a range as `>` and `<`.
        let scan = if cursor { "SEARCH keel_jobs " } else { "SEARCH j " };
        let bounded = |l: &&String| {
            l.starts_with(&format!("{scan}USING INDEX keel_jobs_ready_idx (queue=? AND priority=? AND "))
                && l.contains(">")
                && l.ends_with(" AND run_at<?)")
        };
        assert!(plan.iter().any(|l| bounded(&l)), "the band's scan is bounded on both sides:\n{text}");
        assert!(!text.contains("TEMP B-TREE"), "nothing is sorted:\n{text}");
        if !cursor {
            assert!(text.contains("CO-ROUTINE bands"), "the bands are walked only as far as the claim needs:\n{text}");
            let outer = plan.iter().position(|l| l == "SCAN b").expect("the bands are scanned");
            let inner = plan.iter().position(|l| l.starts_with("SEARCH j ")).unwrap();
            assert!(outer < inner, "the bands are the outer loop:\n{text}");
        }
    }
}
