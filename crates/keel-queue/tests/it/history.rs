//! Conformance: where completed jobs are kept. PostgreSQL's completion moves a job to
//! `keel_jobs_completed`; SQLite's keeps it in `keel_jobs` (issue #19). A backup restored
//! across the backends brings rows of either table, so every reader reads both, and the
//! retention prunes both.

use crate::support::{claim_all, exec, fixture};
use keel_queue::{Clock, Finish, JobFilter, JobId, JobState, NewJob, Outcome};
use keel_storage::Db;
use keel_testkit::{backend_tests, TestDb};
use serde_json::json;
use std::time::Duration;

backend_tests!(
    the_job_tables_have_the_same_columns_in_the_same_order,
    completions_land_in_the_backends_table,
    completed_jobs_read_alike_from_either_table,
    upgrading_moves_the_completed_jobs_already_kept_on_postgres,
);

/// `(name, declared type)` of each column of `table`, in order.
async fn columns(db: &Db, table: &str) -> Vec<(String, String)> {
    match db {
        Db::Sqlite(p) => sqlx::query_as("SELECT name, type FROM pragma_table_info(?) ORDER BY cid")
            .bind(table)
            .fetch_all(p)
            .await
            .unwrap(),
        Db::Postgres(p) => sqlx::query_as(
            "SELECT attname::text, format_type(atttypid, atttypmod) FROM pg_attribute \
             WHERE attrelid = $1::regclass AND attnum > 0 AND NOT attisdropped ORDER BY attnum",
        )
        .bind(table)
        .fetch_all(p)
        .await
        .unwrap(),
    }
}

async fn the_job_tables_have_the_same_columns_in_the_same_order(t: TestDb) {
    // Readers take `SELECT *` of both tables in one `UNION ALL`, and the PostgreSQL completion
    // copies rows across: a column added to one table and not the other breaks both.
    let jobs = columns(&t.db, "keel_jobs").await;
    assert!(jobs.len() >= 21, "{jobs:?}");
    assert_eq!(columns(&t.db, "keel_jobs_completed").await, jobs);
}

/// How many completed jobs each table holds: `(keel_jobs, keel_jobs_completed)`.
async fn completed_where(db: &Db) -> (i64, i64) {
    let q = "SELECT (SELECT count(*) FROM keel_jobs WHERE state = 'completed'), \
                    (SELECT count(*) FROM keel_jobs_completed)";
    match db {
        Db::Sqlite(p) => sqlx::query_as(q).fetch_one(p).await.unwrap(),
        Db::Postgres(p) => sqlx::query_as(q).fetch_one(p).await.unwrap(),
    }
}

async fn completions_land_in_the_backends_table(t: TestDb) {
    let f = fixture(t);
    for i in 0..3 {
        f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    let jobs = claim_all(&f.store, "default", 3).await;
    let fin = |i: usize, outcome| Finish { lease: jobs[i].lease().unwrap(), outcome };
    // A completion alone takes the one-statement path; one beside a failure, the general path.
    f.store.finish(vec![fin(0, Outcome::Completed)]).await.unwrap();
    f.store.finish(vec![fin(1, Outcome::Completed), fin(2, Outcome::Failed { error: "x".into() })]).await.unwrap();
    let expected = match &f.t.db {
        Db::Postgres(_) => (0, 2),
        Db::Sqlite(_) => (2, 0),
    };
    assert_eq!(completed_where(&f.t.db).await, expected);
    assert_eq!(f.store.get(jobs[2].id).await.unwrap().unwrap().state, JobState::Failed, "a failure stays in keel_jobs");
    // A finish under a lease already completed is stale, whichever table the job is in now.
    let again = f.store.finish(vec![fin(0, Outcome::Completed)]).await.unwrap();
    assert_eq!(again.len(), 1);
    assert!(matches!(again[0], keel_queue::Finished::Stale), "{again:?}");
}

/// Moves completed job `id` to the table the other backend keeps it in, as a restore of the
/// other backend's backup would have written it.
async fn as_if_restored_from_the_other_backend(db: &Db, id: JobId) {
    let (from, to) = match db {
        Db::Postgres(_) => ("keel_jobs_completed", "keel_jobs"),
        Db::Sqlite(_) => ("keel_jobs", "keel_jobs_completed"),
    };
    let copy = format!("INSERT INTO {to} SELECT * FROM {from} WHERE id = $1");
    let delete = format!("DELETE FROM {from} WHERE id = $1");
    match db {
        Db::Sqlite(p) => {
            for sql in [copy, delete] {
                let n = sqlx::query(&sql.replace("$1", "?")).bind(id.to_string()).execute(p).await.unwrap();
                assert_eq!(n.rows_affected(), 1, "{sql}");
            }
        }
        Db::Postgres(p) => {
            for sql in [copy, delete] {
                let n = sqlx::query(&sql).bind(id.as_uuid()).execute(p).await.unwrap();
                assert_eq!(n.rows_affected(), 1, "{sql}");
            }
        }
    }
}

async fn completed_jobs_read_alike_from_either_table(t: TestDb) {
    let f = fixture(t);
    for i in 0..4 {
        f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    let jobs = claim_all(&f.store, "default", 4).await;
    let fin = |i: usize| Finish { lease: jobs[i].lease().unwrap(), outcome: Outcome::Completed };
    f.store.finish(vec![fin(0), fin(1), fin(2)]).await.unwrap();
    as_if_restored_from_the_other_backend(&f.t.db, jobs[1].id).await;
    let (here, there) = completed_where(&f.t.db).await;
    assert_eq!((here.min(there), here + there), (1, 3), "the completed jobs are split over both tables");

    for job in &jobs[..3] {
        let got = f.store.get(job.id).await.unwrap().unwrap();
        assert_eq!((got.state, &got.payload), (JobState::Completed, &job.payload));
        assert!(got.finished_at.is_some() && got.lease_expires_at.is_none(), "{got:?}");
    }
    let listed = f.store.list(JobFilter { state: Some(JobState::Completed), ..Default::default() }).await.unwrap();
    let ids: Vec<JobId> = listed.iter().map(|j| j.id).collect();
    assert_eq!(ids, vec![jobs[2].id, jobs[1].id, jobs[0].id], "both tables, newest first");
    let all = f.store.list(JobFilter::default()).await.unwrap();
    assert_eq!(all.len(), 4, "the processing job and the three completed ones");
    let page = f.store.list(JobFilter { before: Some(jobs[2].id), limit: Some(1), ..Default::default() }).await;
    assert_eq!(page.unwrap().iter().map(|j| j.id).collect::<Vec<_>>(), vec![jobs[1].id], "paging spans both");

    let s = f.store.snapshot().await.unwrap();
    assert_eq!((s.counts.completed, s.counts.processing, s.by_kind["k.x"].completed), (3, 1, 3));
    let now = f.clock.now();
    let minutes = keel_queue::throughput(&f.t.db, now - chrono::Duration::minutes(2), now).await.unwrap();
    assert_eq!(minutes.iter().map(|m| m.completed).sum::<u64>(), 3, "{minutes:?}");

    f.clock.advance(Duration::from_secs(8 * 86_400));
    assert_eq!(f.store.prune(Duration::from_secs(7 * 86_400)).await.unwrap(), 3, "pruned from both tables");
    assert_eq!(completed_where(&f.t.db).await, (0, 0));
    assert!(f.store.get(jobs[1].id).await.unwrap().is_none());
    assert_eq!(f.store.get(jobs[3].id).await.unwrap().unwrap().state, JobState::Processing);
}

async fn upgrading_moves_the_completed_jobs_already_kept_on_postgres(t: TestDb) {
    // A database at version 3 that completed jobs in place: the completed rows put back in
    // `keel_jobs`, and migration 4 undone, then run again by `migrate`.
    let f = fixture(t);
    for i in 0..3 {
        f.store.enqueue(NewJob::new("k.x", &json!({ "i": i })).unwrap()).await.unwrap();
    }
    let jobs = claim_all(&f.store, "default", 3).await;
    let fin = |i: usize| Finish { lease: jobs[i].lease().unwrap(), outcome: Outcome::Completed };
    f.store.finish(vec![fin(0), fin(1)]).await.unwrap();
    if matches!(f.t.db, Db::Postgres(_)) {
        exec(&f.t.db, "INSERT INTO keel_jobs SELECT * FROM keel_jobs_completed").await;
    }
    exec(&f.t.db, "DROP TABLE keel_jobs_completed").await;
    exec(&f.t.db, "DELETE FROM keel_queue_migrations WHERE version = 4").await;
    assert_eq!(keel_queue::migrate(&f.t.db).await.unwrap().current, 4);

    let expected = match &f.t.db {
        Db::Postgres(_) => (0, 2),
        Db::Sqlite(_) => (2, 0),
    };
    assert_eq!(completed_where(&f.t.db).await, expected, "PostgreSQL's upgrade moves them; SQLite keeps them");
    for job in &jobs[..2] {
        assert_eq!(f.store.get(job.id).await.unwrap().unwrap().state, JobState::Completed);
    }
    assert_eq!(f.store.get(jobs[2].id).await.unwrap().unwrap().state, JobState::Processing);
    f.store.finish(vec![fin(2)]).await.unwrap();
    assert_eq!(f.store.snapshot().await.unwrap().counts.completed, 3);
}
