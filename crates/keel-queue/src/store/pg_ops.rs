//! The operator's verbs on Postgres: show, list, cancel, retry, requeue, pause, snapshot, prune.

use super::pg::{job_from_row, jobs_from_rows, notify_queues, JOB_COLS, NIL_ORG};
use super::{JobFilter, PauseReason, PgStore, RequeueReport, ALL_JOBS};
use crate::{Job, JobId, JobState, QueueError, QueueSnapshot};
use sqlx::{Postgres, QueryBuilder};
use std::time::Duration;
use uuid::Uuid;

/// Rows deleted per statement when pruning, so no single statement holds locks for long.
const PRUNE_BATCH: i64 = 5_000;

fn is_unique_violation(e: &sqlx::Error) -> bool {
    matches!(e, sqlx::Error::Database(d) if d.code().as_deref() == Some("23505"))
}

impl PgStore {
    /// A job from either table. In `keel_jobs_completed` a job finished no earlier than it was
    /// created, so a UUIDv7 id bounds its `finished_at` from below ([`finished_since`]): the BRIN
    /// index on `finished_at` then reads only the history written since, where the one on `id`
    /// alone reads every block range that a long-delayed job widened.
    pub(crate) async fn get_impl(&self, id: JobId) -> Result<Option<Job>, QueueError> {
        let row = sqlx::query(&format!(
            "SELECT {JOB_COLS} FROM keel_jobs j WHERE j.id = $1 \
             UNION ALL SELECT {JOB_COLS} FROM keel_jobs_completed j WHERE j.id = $1 AND j.finished_at >= $2"
        ))
        .bind(id.as_uuid())
        .bind(finished_since(v7_ms(id.as_uuid())))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(job_from_row).transpose()
    }

    /// Newest first across both job tables: `keel_jobs` through its primary key, and
    /// `keel_jobs_completed` (BRIN indexes only, no order to read back) in widening windows of
    /// ids below the cursor (see [`completed_windows`]), merged by id.
    pub(crate) async fn list_impl(&self, f: JobFilter) -> Result<Vec<Job>, QueueError> {
        let limit = f.limit();
        let mut q = filtered("keel_jobs", &f);
        if let Some(b) = f.before {
            q.push(" AND j.id < ").push_bind(b.as_uuid());
        }
        q.push(" ORDER BY j.id DESC LIMIT ").push_bind(limit);
        let mut jobs = jobs_from_rows(&q.build().fetch_all(&self.pool).await?)?;
        if matches!(f.state, None | Some(JobState::Completed)) {
            let mut found = Vec::new();
            let now_ms = u64::try_from(self.clock.now().timestamp_millis()).unwrap_or(0);
            for (lo, hi) in completed_windows(f.before.map(|b| b.as_uuid()), now_ms) {
                let mut q = filtered("keel_jobs_completed", &f);
                q.push(" AND j.id >= ").push_bind(lo);
                q.push(" AND j.finished_at >= ").push_bind(finished_since((lo.as_u128() >> 80) as u64));
                if let Some(hi) = hi {
                    q.push(" AND j.id < ").push_bind(hi);
                }
                q.push(" ORDER BY j.id DESC LIMIT ").push_bind(limit - found.len() as i64);
                found.extend(jobs_from_rows(&q.build().fetch_all(&self.pool).await?)?);
                if found.len() as i64 >= limit {
                    break;
                }
            }
            jobs.extend(found);
            jobs.sort_unstable_by_key(|j| std::cmp::Reverse(j.id));
            jobs.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        }
        Ok(jobs)
    }

    async fn require(&self, id: JobId) -> Result<Job, QueueError> {
        self.get_impl(id).await?.ok_or(QueueError::NotFound(id))
    }

    pub(crate) async fn cancel_impl(&self, id: JobId) -> Result<Job, QueueError> {
        let now = self.clock.now();
        let row = sqlx::query(&format!(
            "UPDATE keel_jobs j SET state = 'cancelled', finished_at = $2, updated_at = $2 \
             WHERE j.id = $1 AND j.state IN ('pending', 'retrying') RETURNING {JOB_COLS}"
        ))
        .bind(id.as_uuid())
        .bind(now)
        .fetch_optional(&self.pool)
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
            "UPDATE keel_jobs j SET \
               state = CASE WHEN j.state IN ('failed', 'dead_letter', 'cancelled') THEN 'pending' ELSE j.state END, \
               attempt = CASE WHEN j.state IN ('failed', 'dead_letter', 'cancelled') THEN 0 ELSE j.attempt END, \
               run_at = $2, finished_at = NULL, updated_at = $2 \
             WHERE j.id = $1 AND j.state IN ('pending', 'retrying', 'failed', 'dead_letter', 'cancelled') \
             RETURNING {JOB_COLS}"
        );
        for _ in 0..super::pg::DEDUPE_TRIES {
            let mut tx = self.pool.begin().await?;
            let res = sqlx::query(&sql).bind(id.as_uuid()).bind(self.clock.now()).fetch_optional(&mut *tx).await;
            match res {
                Ok(Some(row)) => {
                    let job = job_from_row(&row)?;
                    notify_queues(&mut tx, std::slice::from_ref(&job.queue)).await?;
                    tx.commit().await?;
                    return Ok(job);
                }
                Ok(None) => {
                    drop(tx);
                    let job = self.require(id).await?;
                    return Err(super::retry_refused(id, job.state));
                }
                Err(e) if is_unique_violation(&e) => {
                    drop(tx);
                    if let Some(conflict) = self.dedupe_conflict(id).await? {
                        return Err(conflict);
                    }
                    // The job holding the key finished between our update and our lookup: the
                    // key is free again.
                }
                Err(e) => return Err(e.into()),
            }
        }
        Err(QueueError::Database(format!("job {id}: the job holding its dedupe key kept changing; try again")))
    }

    /// The error for "reviving `id` would clash with an active job holding its dedupe key";
    /// `None` when no active job holds it any more.
    async fn dedupe_conflict(&self, id: JobId) -> Result<Option<QueueError>, QueueError> {
        let job = self.require(id).await?;
        let key = job.dedupe_key.clone().unwrap_or_default();
        let existing: Option<Uuid> = sqlx::query_scalar(&format!(
            "SELECT id FROM keel_jobs WHERE kind = $1 AND dedupe_key = $2 \
             AND COALESCE(org_id, {NIL_ORG}) = COALESCE($3, {NIL_ORG}) AND state IN ('pending', 'processing', 'retrying')"
        ))
        .bind(&job.kind)
        .bind(&key)
        .bind(job.org.map(|o| o.as_uuid()))
        .fetch_optional(&self.pool)
        .await?;
        Ok(existing.map(|e| QueueError::DedupeConflict { kind: job.kind, key, existing: JobId::from_uuid(e) }))
    }

    pub(crate) async fn requeue_dead_impl(&self, kind: Option<String>) -> Result<RequeueReport, QueueError> {
        let now = self.clock.now();
        let mut report = RequeueReport::default();
        let mut tx = self.pool.begin().await?;
        // Jobs without a dedupe key cannot clash: one statement.
        let queues: Vec<String> = sqlx::query_scalar(
            "UPDATE keel_jobs SET state = 'pending', attempt = 0, run_at = $1, finished_at = NULL, updated_at = $1 \
             WHERE state = 'dead_letter' AND dedupe_key IS NULL AND ($2::text IS NULL OR kind = $2) RETURNING queue",
        )
        .bind(now)
        .bind(&kind)
        .fetch_all(&mut *tx)
        .await?;
        report.requeued += queues.len() as u64;
        notify_queues(&mut tx, &queues).await?;
        tx.commit().await?;
        // Keyed jobs one by one: each may clash with an active job (or with an earlier one of
        // this same pass), and a clash leaves that job dead instead of failing the lot.
        let keyed: Vec<Uuid> = sqlx::query_scalar(
            "SELECT id FROM keel_jobs WHERE state = 'dead_letter' AND dedupe_key IS NOT NULL \
             AND ($1::text IS NULL OR kind = $1) ORDER BY id",
        )
        .bind(&kind)
        .fetch_all(&self.pool)
        .await?;
        for id in keyed {
            let res = sqlx::query(&format!(
                "WITH up AS (UPDATE keel_jobs SET state = 'pending', attempt = 0, run_at = $2, finished_at = NULL, \
                   updated_at = $2 WHERE id = $1 AND state = 'dead_letter' RETURNING queue) \
                 SELECT pg_notify('{}', queue) FROM up",
                super::pg::CHANNEL
            ))
            .bind(id)
            .bind(now)
            .fetch_optional(&self.pool)
            .await;
            match res {
                Ok(Some(_)) => report.requeued += 1,
                Ok(None) => {}
                Err(e) if is_unique_violation(&e) => report.skipped_duplicates.push(JobId::from_uuid(id)),
                Err(e) => return Err(e.into()),
            }
        }
        Ok(report)
    }

    pub(crate) async fn pause_queue_impl(&self, queue: String, by: Option<String>) -> Result<(), QueueError> {
        crate::names::check_name("queue name", &queue)?;
        sqlx::query(
            "INSERT INTO keel_queue_pauses (queue, paused_at, paused_by) VALUES ($1, $2, $3) ON CONFLICT (queue) DO NOTHING",
        )
        .bind(&queue)
        .bind(self.clock.now())
        .bind(by)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(crate) async fn resume_queue_impl(&self, queue: String) -> Result<bool, QueueError> {
        let mut tx = self.pool.begin().await?;
        let gone = sqlx::query("DELETE FROM keel_queue_pauses WHERE queue = $1").bind(&queue).execute(&mut *tx).await?;
        notify_queues(&mut tx, std::slice::from_ref(&queue)).await?;
        tx.commit().await?;
        Ok(gone.rows_affected() > 0)
    }

    pub(crate) async fn pause_reason_impl(
        &self,
        queue: String,
        task: String,
    ) -> Result<Option<PauseReason>, QueueError> {
        let (q, t): (Option<String>, Option<String>) = sqlx::query_as(
            "SELECT (SELECT queue FROM keel_queue_pauses WHERE queue = $1), \
                    (SELECT task FROM keel_cron_pauses WHERE task IN ($2, 'all') ORDER BY task = 'all' LIMIT 1)",
        )
        .bind(&queue)
        .bind(&task)
        .fetch_one(&self.pool)
        .await?;
        Ok(q.map(PauseReason::Queue).or(t.map(PauseReason::Task)))
    }

    /// `limit` bounds each statement with `SET LOCAL statement_timeout` (this transaction only,
    /// overriding any pool-wide setting); the server cancels what runs longer.
    pub(crate) async fn snapshot_impl(&self, limit: Option<Duration>) -> Result<QueueSnapshot, QueueError> {
        let now = self.clock.now();
        // One snapshot of the data, so the counts add up with each other.
        let mut tx = self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?;
        if let Some(l) = limit {
            // SET takes no bind parameters; the value is an integer we format. 0 would mean
            // "no limit", so at least 1 ms.
            let ms = l.as_millis().clamp(1, i32::MAX as u128);
            sqlx::query(&format!("SET LOCAL statement_timeout = {ms}")).execute(&mut *tx).await?;
        }
        let read = Self::snapshot_reads(&mut tx, now).await;
        let (rows, oldest, expired, paused) = read.map_err(|e| crate::error::timed_out(e, "queue snapshot", limit))?;
        tx.commit().await?;
        let rows = rows
            .into_iter()
            .map(|(k, s, n)| Ok((k, s.parse::<JobState>()?, u64::try_from(n).unwrap_or(0))))
            .collect::<Result<Vec<_>, QueueError>>()?;
        Ok(QueueSnapshot::build(now, rows, oldest, u64::try_from(expired).unwrap_or(0), paused))
    }

    #[allow(clippy::type_complexity)]
    async fn snapshot_reads(
        tx: &mut sqlx::PgConnection,
        now: chrono::DateTime<chrono::Utc>,
    ) -> Result<(Vec<(String, String, i64)>, Option<chrono::DateTime<chrono::Utc>>, i64, Vec<String>), sqlx::Error>
    {
        let tx = &mut *tx;
        let rows: Vec<(String, String, i64)> =
            sqlx::query_as(&format!("SELECT kind, state, count(*) FROM {ALL_JOBS} j GROUP BY kind, state"))
                .fetch_all(&mut *tx)
                .await?;
        let oldest: Option<chrono::DateTime<chrono::Utc>> = sqlx::query_scalar(
            "SELECT min(run_at) FROM keel_jobs WHERE state IN ('pending', 'retrying') AND run_at <= $1",
        )
        .bind(now)
        .fetch_one(&mut *tx)
        .await?;
        let expired: i64 =
            sqlx::query_scalar("SELECT count(*) FROM keel_jobs WHERE state = 'processing' AND lease_expires_at < $1")
                .bind(now)
                .fetch_one(&mut *tx)
                .await?;
        let paused: Vec<String> =
            sqlx::query_scalar("SELECT queue FROM keel_queue_pauses ORDER BY queue").fetch_all(&mut *tx).await?;
        Ok((rows, oldest, expired, paused))
    }

    pub(crate) async fn prune_impl(&self, older_than: Duration) -> Result<u64, QueueError> {
        let cutoff = crate::clock::minus(self.clock.now(), older_than);
        let mut total = 0u64;
        // The completed table first, then what `keel_jobs` holds (cancelled jobs, and completed
        // ones restored from a SQLite backup); batches keep each statement's locks short. The
        // completed table has no B-tree on `id` (see its migration), so its rows are deleted by
        // their `ctid`, a TID scan, where `id IN (…)` would scan the whole table per batch.
        for sql in [
            "DELETE FROM keel_jobs_completed WHERE ctid = ANY(ARRAY( \
               SELECT ctid FROM keel_jobs_completed WHERE finished_at < $1 LIMIT $2))",
            "DELETE FROM keel_jobs WHERE id IN ( \
               SELECT id FROM keel_jobs WHERE state IN ('completed', 'cancelled') AND finished_at < $1 LIMIT $2)",
        ] {
            loop {
                let n = sqlx::query(sql).bind(cutoff).bind(PRUNE_BATCH).execute(&self.pool).await?.rows_affected();
                total += n;
                if n < PRUNE_BATCH as u64 {
                    break;
                }
            }
        }
        Ok(total)
    }
}

/// `SELECT` of a job table's rows matching the filter's state, kind, queue and tenant.
fn filtered<'a>(table: &str, f: &JobFilter) -> QueryBuilder<'a, Postgres> {
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!("SELECT {JOB_COLS} FROM {table} j WHERE true"));
    if let Some(s) = f.state {
        q.push(" AND j.state = ").push_bind(s.as_str());
    }
    if let Some(k) = &f.kind {
        q.push(" AND j.kind = ").push_bind(k.clone());
    }
    if let Some(qn) = &f.queue {
        q.push(" AND j.queue = ").push_bind(qn.clone());
    }
    if let Some(o) = f.org {
        q.push(" AND j.org_id = ").push_bind(o.as_uuid());
    }
    q
}

/// How far a worker's clock (which writes `finished_at`) may lag the clock of the process that
/// made a job's id, for [`finished_since`].
const CLOCK_SKEW_MS: i64 = 3_600_000;

/// The earliest `finished_at` a completed job whose id holds the time `id_ms` (a UUIDv7's first
/// 48 bits) can carry: that time less [`CLOCK_SKEW_MS`]. Lets the BRIN index on `finished_at`,
/// which follows the table's append order, narrow a search by id that the BRIN index on `id`
/// cannot when scheduled or retried jobs, created long before they finished, widen its block
/// ranges.
fn finished_since(id_ms: u64) -> chrono::DateTime<chrono::Utc> {
    let ms = i64::try_from(id_ms).unwrap_or(i64::MAX).saturating_sub(CLOCK_SKEW_MS).max(0);
    chrono::DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// The earliest `finished_at` a completed job with this id can have ([`finished_since`]).
pub(crate) fn finished_since_id(id: JobId) -> chrono::DateTime<chrono::Utc> {
    finished_since(v7_ms(id.as_uuid()))
}

/// The time in a UUIDv7 id, in milliseconds; 0 (no bound) for an id of another layout.
fn v7_ms(id: Uuid) -> u64 {
    match id.get_version_num() {
        7 => (id.as_u128() >> 80) as u64,
        _ => 0,
    }
}

/// First window of the completed listing, in milliseconds of job-id time: a minute, so that a
/// queue finishing a million jobs an hour sorts about 17,000 rows for its first page (a
/// window of an hour held 36,000 rows at 36,000 an hour and took 25 ms; measured on a history
/// of a million jobs, docs/benchmarks.md).
const FIRST_WINDOW_MS: u64 = 60_000;
/// Each next window is this many times as long. At a steady rate the window that fills a page
/// holds at most about four pages of rows; an empty window costs a scan of the small BRIN
/// index alone, and fourteen windows reach back to 1970.
const WINDOW_GROWTH: u64 = 4;

/// The id ranges `[lo, hi)` the completed listing reads, newest first: the first minute of ids
/// below `before` (without one, every id from a minute before `now_ms` on), then windows four
/// times as long each, the last one reaching the nil id. Job ids are UUIDv7, whose first 48 bits are
/// their creation time in milliseconds; each window's query also bounds `finished_at` from
/// below ([`finished_since`]), so the BRIN index on `finished_at` reads only the history
/// written since the window's start. A completed row whose id is not a UUIDv7 (written by
/// other means than keel-queue) is read by `get`, but a listing finds it only if it finished
/// no earlier than its id's leading bits say. A listing stops at the first window that fills
/// its page.
fn completed_windows(before: Option<Uuid>, now_ms: u64) -> impl Iterator<Item = (Uuid, Option<Uuid>)> {
    let top_ms = match before {
        Some(b) => (b.as_u128() >> 80) as u64,
        None => now_ms,
    };
    let mut hi: Option<Uuid> = before;
    let mut from_ms = top_ms;
    let mut span = FIRST_WINDOW_MS;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        let lo_ms = from_ms.saturating_sub(span);
        done = lo_ms == 0;
        let lo = Uuid::from_u128(u128::from(lo_ms) << 80);
        let window = (lo, hi);
        hi = Some(lo);
        from_ms = lo_ms;
        span = span.saturating_mul(WINDOW_GROWTH);
        Some(window)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_v7_id_bounds_finished_at_from_below_less_the_skew() {
        let id = Uuid::now_v7();
        let ms = v7_ms(id);
        let now = chrono::Utc::now().timestamp_millis() as u64;
        assert!(now.abs_diff(ms) < 60_000, "{ms} against {now}");
        assert_eq!(finished_since(ms).timestamp_millis(), ms as i64 - CLOCK_SKEW_MS);
        assert_eq!(v7_ms(Uuid::new_v4()), 0, "another layout bounds nothing");
        assert_eq!(finished_since(0).timestamp_millis(), 0);
        assert_eq!(finished_since(u64::MAX).timestamp_millis(), 0, "out of range: no bound rather than a wrong one");
    }

    #[test]
    fn completed_windows_are_contiguous_and_reach_the_nil_id() {
        let before = Uuid::from_u128((1_767_323_045_690u128 << 80) | 42);
        let w: Vec<_> = completed_windows(Some(before), 0).collect();
        assert_eq!(w[0], (Uuid::from_u128((1_767_323_045_690u128 - 60_000) << 80), Some(before)));
        for pair in w.windows(2) {
            assert_eq!(pair[1].1, Some(pair[0].0), "each window ends where the previous began");
        }
        assert_eq!(w.last().unwrap().0, Uuid::nil(), "the last window reaches every older id");
        assert!(w.len() <= 15, "{}", w.len());
        let open: Vec<_> = completed_windows(None, 300_000).collect();
        let at = |ms: u128| Uuid::from_u128(ms << 80);
        assert_eq!(open, vec![(at(240_000), None), (at(0), Some(at(240_000)))]);
    }
}
