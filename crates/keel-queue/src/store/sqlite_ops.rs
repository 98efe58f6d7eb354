//! The operator's verbs on SQLite: show, list, cancel, retry, requeue, pause, snapshot, prune.

use super::sqlite::{job_from_row, ms, parse_id, JOB_COLS};
use super::sqlite_writer::Statement;
use super::{JobFilter, PauseReason, RequeueReport, SqliteStore, ALL_JOBS};
use crate::clock::ms_to_time;
use crate::{Job, JobId, JobState, QueueError, QueueSnapshot};
use sqlx::{QueryBuilder, Sqlite, SqliteConnection};
use std::time::Duration;

/// Rows deleted per retention batch: each batch is one write turn, and the worker's claims
/// and finishes go between them.
pub(crate) const PRUNE_BATCH: i64 = 5_000;

/// Virtual-machine steps between two deadline checks of a bounded snapshot: often enough that
/// an interrupt lands within microseconds of the deadline, rarely enough to cost nothing.
pub(crate) const PROGRESS_OPS: i32 = 1_000;

/// A progress handler that interrupts statements on one connection once `deadline` passes.
/// The handler lives on the connection, which goes back to the pool: if the snapshot future is
/// dropped before [`Deadline::disarm`] runs, the shared flag turns the leftover handler into a
/// no-op, so no later statement on that connection is ever interrupted by it.
struct Deadline {
    armed: std::sync::Arc<std::sync::atomic::AtomicBool>,
}

impl Deadline {
    async fn arm(conn: &mut sqlx::SqliteConnection, limit: Duration) -> Result<Deadline, sqlx::Error> {
        use std::sync::atomic::{AtomicBool, Ordering};
        let armed = std::sync::Arc::new(AtomicBool::new(true));
        let flag = armed.clone();
        let deadline = std::time::Instant::now() + limit;
        // Returning false interrupts the running statement.
        conn.lock_handle().await?.set_progress_handler(PROGRESS_OPS, move || {
            !flag.load(Ordering::Relaxed) || std::time::Instant::now() < deadline
        });
        Ok(Deadline { armed })
    }

    async fn disarm(self, conn: &mut sqlx::SqliteConnection) {
        if let Ok(mut h) = conn.lock_handle().await {
            h.remove_progress_handler();
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.armed.store(false, std::sync::atomic::Ordering::Relaxed);
    }
}

fn is_unique_violation(e: &sqlx::Error) -> bool {
    // SQLITE_CONSTRAINT_UNIQUE (2067) and SQLITE_CONSTRAINT_PRIMARYKEY (1555).
    matches!(e, sqlx::Error::Database(d) if matches!(d.code().as_deref(), Some("2067") | Some("1555")))
}

/// Why a retry failed: another active job holds its dedupe key, or anything else.
enum RetryError {
    DedupeHeld,
    Other(QueueError),
}

impl From<sqlx::Error> for RetryError {
    fn from(e: sqlx::Error) -> Self {
        if is_unique_violation(&e) {
            RetryError::DedupeHeld
        } else {
            RetryError::Other(e.into())
        }
    }
}

impl SqliteStore {
    /// Runs one statement of a verb or a retention batch in the write turn; the rows it changed.
    pub(crate) async fn write_one(&self, statement: Statement<'_>) -> Result<u64, QueueError> {
        Ok(self.writer.lone(&self.pool, statement).await?.rows_affected())
    }

    pub(crate) async fn get_impl(&self, id: JobId) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!("SELECT {JOB_COLS} FROM {ALL_JOBS} j WHERE id = ?"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    pub(crate) async fn list_impl(&self, f: JobFilter) -> Result<Vec<Job>, QueueError> {
        let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(format!("SELECT {JOB_COLS} FROM {ALL_JOBS} j WHERE 1"));
        if let Some(s) = f.state {
            q.push(" AND state = ").push_bind(s.as_str());
        }
        if let Some(k) = &f.kind {
            q.push(" AND kind = ").push_bind(k.clone());
        }
        if let Some(qn) = &f.queue {
            q.push(" AND queue = ").push_bind(qn.clone());
        }
        if let Some(o) = f.org {
            q.push(" AND org_id = ").push_bind(o.to_string());
        }
        if let Some(b) = f.before {
            q.push(" AND id < ").push_bind(b.to_string());
        }
        q.push(" ORDER BY id DESC LIMIT ").push_bind(f.limit());
        let rows = q.build().fetch_all(&self.pool).await?;
        rows.iter().map(job_from_row).collect()
    }

    async fn require(&self, id: JobId) -> Result<Job, QueueError> {
        self.get_impl(id).await?.ok_or(QueueError::NotFound(id))
    }

    // The verbs' writes take the file's write turn, as the worker's do (issue #19): an operator
    // pausing or cancelling during a backlog, from the API beside a worker, would otherwise
    // wait in SQLite's busy handler against claims and finishes that write back to back.
    // Another process (keel-ops) still meets SQLite's busy timeout.
    pub(crate) async fn cancel_impl(&self, id: JobId) -> Result<Job, QueueError> {
        let now = ms(self.clock.now());
        let sql = format!(
            "UPDATE keel_jobs SET state = 'cancelled', finished_at = ?1, updated_at = ?1 \
             WHERE id = ?2 AND state IN ('pending', 'retrying') RETURNING {JOB_COLS}"
        );
        let row = self
            .writer
            .transaction(&self.pool, async |tx| {
                sqlx::query(&sql).bind(now).bind(id.to_string()).fetch_optional(tx).await
            })
            .await?;
        match row {
            Some(r) => job_from_row(&r),
            None => {
                let job = self.require(id).await?;
                Err(QueueError::WrongState { id, state: job.state, action: "cancel", allowed: "pending or retrying" })
            }
        }
    }

    pub(crate) async fn retry_impl(&self, id: JobId) -> Result<Job, QueueError> {
        let sql = format!(
            "UPDATE keel_jobs SET \
               state = CASE WHEN state IN ('failed', 'dead_letter', 'cancelled') THEN 'pending' ELSE state END, \
               attempt = CASE WHEN state IN ('failed', 'dead_letter', 'cancelled') THEN 0 ELSE attempt END, \
               run_at = ?1, finished_at = NULL, updated_at = ?1 \
             WHERE id = ?2 AND state IN ('pending', 'retrying', 'failed', 'dead_letter', 'cancelled') \
             RETURNING {JOB_COLS}"
        );
        for _ in 0..super::pg::DEDUPE_TRIES {
            let now = ms(self.clock.now());
            // The row is mapped inside the transaction: a retry whose row cannot be read back
            // is not committed.
            let res = self
                .writer
                .transaction(&self.pool, async |tx| {
                    let row = sqlx::query(&sql).bind(now).bind(id.to_string()).fetch_optional(tx).await?;
                    row.as_ref().map(job_from_row).transpose().map_err(RetryError::Other)
                })
                .await;
            match res {
                Ok(Some(job)) => {
                    self.wake.wake();
                    return Ok(job);
                }
                Ok(None) => {
                    let job = self.require(id).await?;
                    return Err(super::retry_refused(id, job.state));
                }
                Err(RetryError::DedupeHeld) => {
                    if let Some(conflict) = self.dedupe_conflict(id).await? {
                        return Err(conflict);
                    }
                    // The job holding the key finished between our update and our lookup: the
                    // key is free again.
                }
                Err(RetryError::Other(e)) => return Err(e),
            }
        }
        Err(QueueError::Database(format!("job {id}: the job holding its dedupe key kept changing; try again")))
    }

    /// The error for "reviving `id` would clash with an active job holding its dedupe key";
    /// `None` when no active job holds it any more.
    async fn dedupe_conflict(&self, id: JobId) -> Result<Option<QueueError>, QueueError> {
        let job = self.require(id).await?;
        let key = job.dedupe_key.clone().unwrap_or_default();
        let existing: Option<String> = sqlx::query_scalar(
            "SELECT id FROM keel_jobs WHERE kind = ? AND dedupe_key = ? AND COALESCE(org_id, '') = COALESCE(?, '') \
             AND state IN ('pending', 'processing', 'retrying')",
        )
        .bind(&job.kind)
        .bind(&key)
        .bind(job.org.map(|o| o.to_string()))
        .fetch_optional(&self.pool)
        .await?;
        let existing = existing.map(|s| parse_id(&s)).transpose()?;
        Ok(existing.map(|existing| QueueError::DedupeConflict { kind: job.kind, key, existing }))
    }

    pub(crate) async fn requeue_dead_impl(&self, kind: Option<String>) -> Result<RequeueReport, QueueError> {
        let now = ms(self.clock.now());
        let report = self.writer.transaction(&self.pool, async |tx| self.requeue_dead_in(tx, now, kind).await).await?;
        self.wake.wake();
        Ok(report)
    }

    async fn requeue_dead_in(
        &self,
        tx: &mut SqliteConnection,
        now: i64,
        kind: Option<String>,
    ) -> Result<RequeueReport, QueueError> {
        let mut report = RequeueReport::default();
        report.requeued += sqlx::query(
            "UPDATE keel_jobs SET state = 'pending', attempt = 0, run_at = ?1, finished_at = NULL, updated_at = ?1 \
             WHERE state = 'dead_letter' AND dedupe_key IS NULL AND (?2 IS NULL OR kind = ?2)",
        )
        .bind(now)
        .bind(&kind)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        let keyed: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM keel_jobs WHERE state = 'dead_letter' AND dedupe_key IS NOT NULL \
             AND (?1 IS NULL OR kind = ?1) ORDER BY id",
        )
        .bind(&kind)
        .fetch_all(&mut *tx)
        .await?;
        for id in keyed {
            let res = sqlx::query(
                "UPDATE keel_jobs SET state = 'pending', attempt = 0, run_at = ?1, finished_at = NULL, updated_at = ?1 \
                 WHERE id = ?2 AND state = 'dead_letter'",
            )
            .bind(now)
            .bind(&id)
            .execute(&mut *tx)
            .await;
            match res {
                Ok(r) => report.requeued += r.rows_affected(),
                Err(e) if is_unique_violation(&e) => report.skipped_duplicates.push(parse_id(&id)?),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    pub(crate) async fn pause_queue_impl(&self, queue: String, by: Option<String>) -> Result<(), QueueError> {
        crate::names::check_name("queue name", &queue)?;
        let sql = "INSERT INTO keel_queue_pauses (queue, paused_at, paused_by) VALUES (?, ?, ?) ON CONFLICT (queue) DO NOTHING";
        self.write_one(sqlx::query(sql).bind(&queue).bind(ms(self.clock.now())).bind(by)).await?;
        Ok(())
    }

    pub(crate) async fn resume_queue_impl(&self, queue: String) -> Result<bool, QueueError> {
        let n = self.write_one(sqlx::query("DELETE FROM keel_queue_pauses WHERE queue = ?").bind(&queue)).await?;
        self.wake.wake();
        Ok(n > 0)
    }

    pub(crate) async fn pause_reason_impl(
        &self,
        queue: String,
        task: String,
    ) -> Result<Option<PauseReason>, QueueError> {
        let (q, t): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT (SELECT queue FROM keel_queue_pauses WHERE queue = ?1), \
                    (SELECT task FROM keel_cron_pauses WHERE task IN (?2, 'all') ORDER BY task = 'all' LIMIT 1)",
        )
        .bind(&queue)
        .bind(&task)
        .fetch_one(&self.pool)
        .await?;
        Ok(q.map(PauseReason::Queue).or(t.map(PauseReason::Task)))
    }

    /// `limit` bounds the whole snapshot: SQLite has no statement timeout, so a progress
    /// handler (called every [`PROGRESS_OPS`] virtual-machine steps) interrupts the running
    /// statement once the deadline has passed (`SQLITE_INTERRUPT`).
    pub(crate) async fn snapshot_impl(&self, limit: Option<Duration>) -> Result<QueueSnapshot, QueueError> {
        let now = self.clock.now();
        let mut conn = self.pool.acquire().await?;
        let guard = match limit {
            Some(l) => Some(Deadline::arm(&mut conn, l).await?),
            None => None,
        };
        let read = Self::snapshot_reads(&mut conn, now).await;
        if let Some(g) = guard {
            g.disarm(&mut conn).await;
        }
        let (rows, oldest, expired, paused) = read.map_err(|e| crate::error::timed_out(e, "queue snapshot", limit))?;
        let rows = rows
            .into_iter()
            .map(|(k, s, n)| Ok((k, s.parse::<JobState>()?, u64::try_from(n).unwrap_or(0))))
            .collect::<Result<Vec<_>, QueueError>>()?;
        Ok(QueueSnapshot::build(now, rows, oldest.map(ms_to_time), u64::try_from(expired).unwrap_or(0), paused))
    }

    #[allow(clippy::type_complexity)]
    async fn snapshot_reads(
        conn: &mut sqlx::SqliteConnection,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<(String, String, i64)>, Option<i64>, i64, Vec<String>), sqlx::Error> {
        // A read transaction: all four reads see one state of the file.
        let mut tx = sqlx::Connection::begin(conn).await?;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as(&format!("SELECT kind, state, count(*) FROM {ALL_JOBS} j GROUP BY kind, state"))
                .fetch_all(&mut *tx)
                .await?;
        let oldest: Option<i64> = sqlx::query_scalar(
            "SELECT min(run_at) FROM keel_jobs WHERE state IN ('pending', 'retrying') AND run_at <= ?",
        )
        .bind(ms(now))
        .fetch_one(&mut *tx)
        .await?;
        let expired: i64 =
            sqlx::query_scalar("SELECT count(*) FROM keel_jobs WHERE state = 'processing' AND lease_expires_at < ?")
                .bind(ms(now))
                .fetch_one(&mut *tx)
                .await?;
        let paused: Vec<String> =
            sqlx::query_scalar("SELECT queue FROM keel_queue_pauses ORDER BY queue").fetch_all(&mut *tx).await?;
        tx.commit().await?;
        Ok((rows, oldest, expired, paused))
    }

    pub(crate) async fn prune_impl(&self, older_than: Duration) -> Result<u64, QueueError> {
        let cutoff = ms(crate::clock::minus(self.clock.now(), older_than));
        let mut total = 0u64;
        // `keel_jobs` holds SQLite's own completed jobs; `keel_jobs_completed` those restored
        // from a PostgreSQL backup.
        for sql in [
            "DELETE FROM keel_jobs WHERE id IN ( \
               SELECT id FROM keel_jobs WHERE state IN ('completed', 'cancelled') AND finished_at < ? LIMIT ?)",
            "DELETE FROM keel_jobs_completed WHERE id IN ( \
               SELECT id FROM keel_jobs_completed WHERE finished_at < ? LIMIT ?)",
        ] {
            loop {
                // The worker's retention task: each batch takes the write turn (see
                // `SqliteStore::begin_impl`), so claims and finishes go between batches.
                let n = self.write_one(sqlx::query(sql).bind(cutoff).bind(PRUNE_BATCH)).await?;
                total += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(total)
    }
}
