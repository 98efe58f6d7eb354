//! [`SqliteStore`]: the embedded job store. Every write is one `BEGIN IMMEDIATE` transaction
//! or one lone statement (which takes the write lock as it starts), so SQLite's single writer
//! serialises claims (no two claimers can take one job) and a writer never deadlocks
//! upgrading a read lock. Wakeups are in-process only: a separate
//! worker process on the same file learns of new jobs by polling.

use super::{Claim, Finish, Finished, JobFilter, JobStore, Outcome, PauseReason, Rescued, StoreFuture, StoreOptions};
use crate::clock::{ms_to_time, plus};
use crate::{Clock, Enqueued, Job, JobId, Lease, NewJob, QueueError, QueueSnapshot, SystemClock, Wakeup};
use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use keel_storage::Backend;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, QueryBuilder, Row, Sqlite, SqliteConnection, SqlitePool};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The rows still held under the leases bound as `?1`, a JSON array of `[id, token]` pairs, for
/// every lease write: one parameter however many leases, where a statement per lease cost a hop
/// to the connection's thread each on SQLite's single writer (issue #19).
macro_rules! held_under_leases {
    () => {
        "WHERE id IN (SELECT value ->> 0 FROM json_each(?1)) \
           AND (id, lease_seq) IN (SELECT value ->> 0, value ->> 1 FROM json_each(?1)) \
           AND state = 'processing'"
    };
}

/// Rows per multi-row INSERT: 12 bound values each keeps a statement far below SQLite's
/// 32,766-variable limit.
const BULK_CHUNK: usize = 500;

pub(crate) const JOB_COLS: &str =
    "id, kind, queue, org_id, payload, sealed, priority, state, run_at, attempt, max_attempts, \
     dedupe_key, lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at, trace_context";

pub(crate) const BEGIN: &str = "BEGIN IMMEDIATE";

/// The queue on SQLite. Prefer [`crate::open`] (which picks the store for a `Db`) unless you
/// need `enqueue_in`, which enqueues inside your own transaction.
#[derive(Debug, Clone)]
pub struct SqliteStore {
    pub(crate) pool: SqlitePool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Wakeup,
    pub(crate) opts: StoreOptions,
    /// The worker's writes (claim, heartbeat, finish, release, rescue) take turns here, on a
    /// connection kept between them.
    pub(crate) writer: super::sqlite_writer::Writer,
}

pub(crate) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

impl SqliteStore {
    /// A store over `pool`, on the system clock with default options.
    pub fn new(pool: SqlitePool) -> Self {
        let options = pool.connect_options();
        let file = options.get_filename();
        let wake = crate::wake::for_sqlite_file(file);
        let writer = super::sqlite_writer::Writer::new(super::sqlite_turn::for_file(file));
        Self { pool, clock: Arc::new(SystemClock), wake, opts: StoreOptions::default(), writer }
    }

    /// Takes "now" from `clock` (a [`crate::ManualClock`] in tests).
    pub fn with_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// Sets the enqueue limits.
    pub fn with_options(mut self, opts: StoreOptions) -> Self {
        self.opts = opts;
        self
    }

    /// The pool, to begin a transaction for `enqueue_in`.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// Enqueues inside the caller's transaction (pass `&mut *tx`; begin it with
    /// `pool.begin_with("BEGIN IMMEDIATE")`). The job exists only if the caller commits. The
    /// in-process wakeup fires now: a woken worker's claim waits for the caller's write lock,
    /// then sees the job if (and only if) it was committed.
    pub async fn enqueue_in(&self, conn: &mut SqliteConnection, job: NewJob) -> Result<Enqueued, QueueError> {
        let job = job.sealed_and_checked(self.opts.keyring.as_deref(), self.opts.max_payload_bytes)?;
        let now = self.clock.now();
        let out = self.insert_one(conn, &job, now).await?;
        self.wake.wake();
        Ok(out)
    }

    async fn insert_one(
        &self,
        conn: &mut SqliteConnection,
        job: &NewJob,
        now: DateTime<Utc>,
    ) -> Result<Enqueued, QueueError> {
        let inserted: Option<String> = sqlx::query_scalar(
            "INSERT INTO keel_jobs (id, kind, queue, org_id, payload, sealed, priority, state, run_at, max_attempts, \
                                    dedupe_key, created_at, updated_at, trace_context) \
             VALUES (?, ?, ?, ?, ?, ?, ?, 'pending', ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(job.id.to_string())
        .bind(&job.kind)
        .bind(&job.queue)
        .bind(job.org.map(|o| o.to_string()))
        .bind(&job.payload)
        .bind(job.sealed)
        .bind(job.priority)
        .bind(ms(job.run_at.unwrap_or(now)))
        .bind(job.max_attempts as i64)
        .bind(&job.dedupe_key)
        .bind(ms(now))
        .bind(ms(now))
        .bind(&job.trace_context)
        .fetch_optional(&mut *conn)
        .await?;
        if inserted.is_some() {
            return Ok(Enqueued::Created(job.id));
        }
        match &job.dedupe_key {
            // Under the write lock the holder cannot finish between insert and lookup.
            Some(key) => match self.active_with_key(conn, &job.kind, key, job.org).await? {
                Some(id) => Ok(Enqueued::Duplicate(id)),
                None => {
                    Err(QueueError::Database(format!("dedupe key {key:?} conflicted but no active holder was found")))
                }
            },
            None => Err(QueueError::Database(format!("job id {} already exists", job.id))),
        }
    }

    async fn active_with_key(
        &self,
        conn: &mut SqliteConnection,
        kind: &str,
        key: &str,
        org: Option<OrgId>,
    ) -> Result<Option<JobId>, QueueError> {
        let id: Option<String> = sqlx::query_scalar(
            "SELECT id FROM keel_jobs WHERE kind = ? AND dedupe_key = ? AND COALESCE(org_id, '') = COALESCE(?, '') \
             AND state IN ('pending', 'processing', 'retrying')",
        )
        .bind(kind)
        .bind(key)
        .bind(org.map(|o| o.to_string()))
        .fetch_optional(&mut *conn)
        .await?;
        id.map(|s| parse_id(&s)).transpose()
    }

    /// Bulk enqueue inside the caller's transaction: one multi-row INSERT per 500 jobs.
    pub async fn enqueue_many_in(
        &self,
        conn: &mut SqliteConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let jobs = NewJob::all_sealed_and_checked(jobs, self.opts.keyring.as_deref(), self.opts.max_payload_bytes)?;
        let now = self.clock.now();
        let mut results = Vec::with_capacity(jobs.len());
        for chunk in jobs.chunks(BULK_CHUNK) {
            let mut q: QueryBuilder<Sqlite> = QueryBuilder::new(
                "INSERT INTO keel_jobs (id, kind, queue, org_id, payload, sealed, priority, state, run_at, \
                 max_attempts, dedupe_key, created_at, updated_at, trace_context) ",
            );
            q.push_values(chunk, |mut b, j| {
                b.push_bind(j.id.to_string())
                    .push_bind(j.kind.clone())
                    .push_bind(j.queue.clone())
                    .push_bind(j.org.map(|o| o.to_string()))
                    .push_bind(j.payload.clone())
                    .push_bind(j.sealed)
                    .push_bind(j.priority)
                    .push("'pending'")
                    .push_bind(ms(j.run_at.unwrap_or(now)))
                    .push_bind(j.max_attempts as i64)
                    .push_bind(j.dedupe_key.clone())
                    .push_bind(ms(now))
                    .push_bind(ms(now))
                    .push_bind(j.trace_context.clone());
            });
            q.push(" ON CONFLICT DO NOTHING RETURNING id");
            let rows: Vec<String> = q.build_query_scalar().fetch_all(&mut *conn).await?;
            let inserted: std::collections::HashSet<String> = rows.into_iter().collect();
            for j in chunk {
                if inserted.contains(&j.id.to_string()) {
                    results.push(Enqueued::Created(j.id));
                } else {
                    let Some(key) = j.dedupe_key.as_deref() else {
                        return Err(QueueError::Database(format!("job id {} already exists", j.id)));
                    };
                    match self.active_with_key(conn, &j.kind, key, j.org).await? {
                        Some(id) => results.push(Enqueued::Duplicate(id)),
                        None => {
                            return Err(QueueError::Database(format!(
                                "job {} was not inserted and holds no dedupe key",
                                j.id
                            )))
                        }
                    }
                }
            }
        }
        self.wake.wake();
        Ok(results)
    }

    async fn claim_impl(&self, c: Claim) -> Result<Vec<Job>, QueueError> {
        let now = self.clock.now();
        let mut write = self.writer.lend(&self.pool, true).await?;
        // From a cursor, the rest of its band first; then, if that came back short, the bands
        // above it (see `claim_sql`). Both in one write turn.
        let mut rows = Vec::new();
        let mut from = Some(i16::MIN);
        if let Some(a) = c.after {
            let sql = super::claim_sql::sqlite_cursor_band(JOB_COLS);
            let query = claim_query(&sql, &c, now, c.limit).bind(a.priority).bind(ms(a.run_at)).bind(a.id.to_string());
            rows = match query.fetch_all(write.conn()).await {
                Ok(rows) => rows,
                Err(e) => {
                    write.failed().await;
                    return Err(e.into());
                }
            };
            from = a.priority.checked_add(1);
        }
        let claimed = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        if let Some(from) = from.filter(|_| claimed < c.limit) {
            let sql = super::claim_sql::sqlite_bands(JOB_COLS);
            match claim_query(&sql, &c, now, c.limit - claimed).bind(from).fetch_all(write.conn()).await {
                Ok(more) => rows.extend(more),
                Err(e) => {
                    write.failed().await;
                    if rows.is_empty() {
                        return Err(e.into());
                    }
                    // The cursor's band is claimed and committed: hand it out rather than
                    // leave it to its leases.
                    tracing::warn!(event = "claim_incomplete", queue = %c.queue, claimed = rows.len(),
                        error = %keel_ids::mask_email(&e.to_string()), "claimed the rest of a band, but not the bands above it");
                    return Ok(claimed_in_order(&rows));
                }
            }
        }
        write.done().await;
        Ok(claimed_in_order(&rows))
    }

    async fn heartbeat_impl(&self, leases: Vec<Lease>, lease: Duration) -> Result<Vec<JobId>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let mut write = self.writer.lend(&self.pool, false).await?;
        // One lone statement for every lease the worker holds (see `complete_unsealed`): one
        // statement per lease held SQLite's single writer for a hop per job held.
        let kept: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE keel_jobs SET lease_expires_at = ?2, updated_at = ?3 ",
            held_under_leases!(),
            " RETURNING id"
        ))
        .bind(leases_json(leases.iter()))
        .bind(ms(plus(now, lease)))
        .bind(ms(now))
        .fetch_all(write.conn())
        .await?;
        write.done().await;
        let kept: std::collections::HashSet<String> = kept.into_iter().collect();
        Ok(leases.iter().filter(|l| !kept.contains(&l.job.to_string())).map(|l| l.job).collect())
    }

    async fn finish_impl(&self, batch: Vec<Finish>) -> Result<Vec<Finished>, QueueError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = ms(self.clock.now());
        let mut write = self.writer.lend(&self.pool, false).await?;
        let finished = self.finish_on(write.conn(), &batch, now).await;
        write.settle(finished).await
    }

    async fn finish_on(
        &self,
        conn: &mut SqliteConnection,
        batch: &[Finish],
        now: i64,
    ) -> Result<Vec<Finished>, QueueError> {
        if batch.iter().all(|f| f.outcome == Outcome::Completed) {
            match complete_unsealed(conn, batch, now).await {
                Ok(out) => return Ok(out),
                // A sealed job is among them and nothing changed: the general path erases it.
                Err(sqlx::Error::Database(d)) if d.is_check_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut tx = conn.begin_with(BEGIN).await?;
        let mut states: HashMap<String, String> = HashMap::new();
        // Completions, the bulk of every batch, in one statement: the leases go in as one JSON
        // array of [id, token] pairs. A statement per job cost a hop to sqlx's SQLite thread
        // each, which kept a burn-down at a third of PostgreSQL's rate (issue #19).
        let done: Vec<&Lease> = batch.iter().filter(|f| f.outcome == Outcome::Completed).map(|f| &f.lease).collect();
        if !done.is_empty() {
            // A sealed job's payload comes back so its sealed values are erased now. `OR FAIL`
            // inside a transaction: SQLite keeps no statement journal (a copy of every page the
            // statement touches, so that it alone could be undone); an error here rolls back
            // the whole transaction anyway.
            let rows: Vec<(String, Option<String>)> = sqlx::query_as(concat!(
                "UPDATE OR FAIL keel_jobs SET state = 'completed', finished_at = ?2, updated_at = ?2, \
                     lease_expires_at = NULL ",
                held_under_leases!(),
                " RETURNING id, CASE WHEN sealed THEN payload END"
            ))
            .bind(leases_json(done.into_iter()))
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for (id, payload) in rows {
                if let Some(payload) = payload {
                    sqlx::query("UPDATE keel_jobs SET payload = ? WHERE id = ?")
                        .bind(crate::redact_payload(&payload))
                        .bind(&id)
                        .execute(&mut *tx)
                        .await?;
                }
                states.insert(id, "completed".to_owned());
            }
        }
        for f in batch.iter().filter(|f| f.outcome != Outcome::Completed) {
            let (mode, error, at) = super::pg::fail_parts(&f.outcome, ms_to_time(now));
            let state: Option<String> = sqlx::query_scalar(
                "UPDATE keel_jobs SET \
                   state = CASE WHEN ?1 = 'dead' THEN 'dead_letter' WHEN ?1 = 'failed' THEN 'failed' \
                                WHEN attempt >= max_attempts THEN 'dead_letter' ELSE 'retrying' END, \
                   run_at = CASE WHEN ?1 = 'retry' AND attempt < max_attempts THEN ?2 ELSE run_at END, \
                   finished_at = CASE WHEN ?1 = 'retry' AND attempt < max_attempts THEN NULL ELSE ?3 END, \
                   last_error = ?4, lease_expires_at = NULL, updated_at = ?3 \
                 WHERE id = ?5 AND lease_seq = ?6 AND state = 'processing' RETURNING state",
            )
            .bind(mode)
            .bind(ms(at))
            .bind(now)
            .bind(error)
            .bind(f.lease.job.to_string())
            .bind(f.lease.token)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(state) = state {
                states.insert(f.lease.job.to_string(), state);
            }
        }
        let mut out = Vec::with_capacity(batch.len());
        for f in batch {
            out.push(match states.get(&f.lease.job.to_string()) {
                Some(s) => Finished::Accepted(s.parse()?),
                None => Finished::Stale,
            });
        }
        tx.commit().await?;
        Ok(out)
    }

    async fn release_impl(&self, leases: Vec<Lease>) -> Result<u64, QueueError> {
        if leases.is_empty() {
            return Ok(0);
        }
        let now = ms(self.clock.now());
        let mut write = self.writer.lend(&self.pool, false).await?;
        // One lone statement, as the heartbeat.
        let released: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE keel_jobs SET state = CASE WHEN attempt <= 1 THEN 'pending' ELSE 'retrying' END, \
                 attempt = MAX(attempt - 1, 0), lease_expires_at = NULL, updated_at = ?2 ",
            held_under_leases!(),
            " RETURNING id"
        ))
        .bind(leases_json(leases.iter()))
        .bind(now)
        .fetch_all(write.conn())
        .await?;
        write.done().await;
        self.wake.wake();
        Ok(released.len() as u64)
    }

    async fn rescue_impl(&self, limit: u32) -> Result<Vec<Rescued>, QueueError> {
        let now = ms(self.clock.now());
        let out = self.writer.transaction(&self.pool, async |tx| self.rescue_in(tx, now, limit).await).await?;
        if !out.is_empty() {
            self.wake.wake();
        }
        Ok(out)
    }

    async fn rescue_in(&self, tx: &mut SqliteConnection, now: i64, limit: u32) -> Result<Vec<Rescued>, QueueError> {
        let stuck: Vec<(String, String, String, i64, Option<String>)> = sqlx::query_as(
            "SELECT id, kind, queue, attempt, locked_by FROM keel_jobs \
             WHERE state = 'processing' AND lease_expires_at < ? ORDER BY lease_expires_at LIMIT ?",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut out = Vec::with_capacity(stuck.len());
        for (id, kind, queue, attempt, worker) in stuck {
            let attempt = super::job_cols::count("attempt", attempt)?;
            let state: String = sqlx::query_scalar(
                "UPDATE keel_jobs SET \
                   state = CASE WHEN attempt >= max_attempts THEN 'dead_letter' ELSE 'retrying' END, \
                   run_at = CASE WHEN attempt >= max_attempts THEN run_at ELSE ?1 END, \
                   finished_at = CASE WHEN attempt >= max_attempts THEN ?1 END, \
                   last_error = ?2, lease_expires_at = NULL, updated_at = ?1 \
                 WHERE id = ?3 RETURNING state",
            )
            .bind(now)
            .bind(super::stuck_message(worker.as_deref(), attempt))
            .bind(&id)
            .fetch_one(&mut *tx)
            .await?;
            out.push(Rescued { id: parse_id(&id)?, kind, queue, attempt, state: state.parse()?, worker });
        }
        Ok(out)
    }
}

/// Completes a batch of completions in one statement outside any transaction: SQLite's own
/// transaction for a lone statement needs no `BEGIN IMMEDIATE` and `COMMIT`, two hops to the
/// connection's thread on the single writer (a burn-down +4–10%, issue #19). Plain `UPDATE`,
/// not `OR FAIL`: outside a transaction a failed `OR FAIL` statement commits the rows it had
/// already changed, where an aborted statement is undone whole.
///
/// A sealed job's values must be erased in the transaction that completes it, which takes the
/// general path. So this statement must change nothing when the batch holds one: a sealed row
/// keeps its lease while becoming `completed`, which the table's check (a lease exactly while
/// processing) refuses, and the whole statement is undone. The caller then runs the general
/// path on a check violation.
async fn complete_unsealed(
    conn: &mut SqliteConnection,
    batch: &[Finish],
    now: i64,
) -> Result<Vec<Finished>, sqlx::Error> {
    // Each completed id comes back: a count alone could not tell a lease refused now from one
    // this same lease already completed (a second finish must be stale, as on PostgreSQL).
    let done: Vec<String> = sqlx::query_scalar(concat!(
        "UPDATE keel_jobs SET state = 'completed', finished_at = ?2, updated_at = ?2, \
             lease_expires_at = CASE WHEN sealed THEN lease_expires_at END ",
        held_under_leases!(),
        " RETURNING id"
    ))
    .bind(leases_json(batch.iter().map(|f| &f.lease)))
    .bind(now)
    .fetch_all(conn)
    .await?;
    let done =
        done.iter().map(|id| parse_id(id).map(|j| j.as_uuid())).collect::<Result<std::collections::HashSet<Uuid>, _>>();
    let done = done.map_err(|e| sqlx::Error::Decode(e.to_string().into()))?;
    Ok(batch
        .iter()
        .map(|f| match done.contains(&f.lease.job.as_uuid()) {
            true => Finished::Accepted(crate::JobState::Completed),
            false => Finished::Stale,
        })
        .collect())
}

/// The leases as bound to [`held_under_leases`]: `[[id, token], …]`. Written directly: a
/// hyphenated UUID and an integer need no escaping, and building a `serde_json::Value` first
/// cost allocations per lease on the single writer's path.
fn leases_json<'a>(leases: impl Iterator<Item = &'a Lease>) -> String {
    use std::fmt::Write;
    let mut out = String::from("[");
    for (i, l) in leases.enumerate() {
        let sep = if i == 0 { "" } else { "," };
        // Writing to a String cannot fail.
        let _ = write!(out, "{sep}[\"{}\",{}]", l.job, l.token);
    }
    out.push(']');
    out
}

/// A job id as the store writes it: lower-case and hyphenated. Another spelling of a UUID (upper
/// case, braces, no hyphens; a restore or another writer) would be read, yet never match by
/// id in a statement, which compares the text: its heartbeats and finishes would all miss.
pub(crate) fn parse_id(s: &str) -> Result<JobId, QueueError> {
    let canonical = s.len() == 36 && !s.bytes().any(|b| b.is_ascii_uppercase());
    match Uuid::parse_str(s) {
        Ok(u) if canonical => Ok(JobId::from_uuid(u)),
        _ => Err(QueueError::Corrupt(format!("job id {s:?} is not a lower-case hyphenated UUID"))),
    }
}

/// A time column (`col`, milliseconds since the epoch) as stored; a value out of chrono's range
/// (a restore, another writer) is refused, never read as 1970.
pub(crate) fn time_col(col: &str, ms: i64) -> Result<DateTime<Utc>, QueueError> {
    DateTime::from_timestamp_millis(ms)
        .ok_or_else(|| QueueError::Corrupt(format!("{col} is {ms}, not a time in milliseconds since 1970")))
}

fn opt_time(col: &str, v: Option<i64>) -> Result<Option<DateTime<Utc>>, QueueError> {
    v.map(|ms| time_col(col, ms)).transpose()
}

/// A job from a row selected as [`JOB_COLS`], by position (see `job_cols`). A value it does not
/// know (a state, an id that is not a UUID, a negative attempt count) is an error, never a
/// default.
pub(crate) fn job_from_row(row: &SqliteRow) -> Result<Job, QueueError> {
    use super::job_cols as col;
    let org: Option<&str> = row.try_get(col::ORG_ID)?;
    Ok(Job {
        id: parse_id(row.try_get::<&str, _>(col::ID)?)?,
        kind: row.try_get(col::KIND)?,
        queue: row.try_get(col::QUEUE)?,
        org: org.map(|o| OrgId::parse(o).map_err(|e| QueueError::Corrupt(e.to_string()))).transpose()?,
        payload: row.try_get(col::PAYLOAD)?,
        sealed: row.try_get(col::SEALED)?,
        priority: row.try_get(col::PRIORITY)?,
        state: row.try_get::<&str, _>(col::STATE)?.parse()?,
        run_at: time_col("run_at", row.try_get(col::RUN_AT)?)?,
        attempt: col::count("attempt", row.try_get::<i64, _>(col::ATTEMPT)?)?,
        max_attempts: col::count("max_attempts", row.try_get::<i64, _>(col::MAX_ATTEMPTS)?)?,
        dedupe_key: row.try_get(col::DEDUPE_KEY)?,
        lease_seq: row.try_get(col::LEASE_SEQ)?,
        lease_expires_at: opt_time("lease_expires_at", row.try_get(col::LEASE_EXPIRES_AT)?)?,
        locked_by: row.try_get(col::LOCKED_BY)?,
        last_error: row.try_get(col::LAST_ERROR)?,
        created_at: time_col("created_at", row.try_get(col::CREATED_AT)?)?,
        updated_at: time_col("updated_at", row.try_get(col::UPDATED_AT)?)?,
        started_at: opt_time("started_at", row.try_get(col::STARTED_AT)?)?,
        finished_at: opt_time("finished_at", row.try_get(col::FINISHED_AT)?)?,
        trace_context: row.try_get(col::TRACE_CONTEXT)?,
    })
}

impl JobStore for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
    fn wakeup(&self) -> &Wakeup {
        &self.wake
    }
    fn start_wakeups(&self, _cancel: CancellationToken) -> StoreFuture<'_, ()> {
        Box::pin(async { Ok(()) })
    }
    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, Enqueued> {
        Box::pin(async move {
            let job = job.sealed_and_checked(self.opts.keyring.as_deref(), self.opts.max_payload_bytes)?;
            let now = self.clock.now();
            // The file's write turn, as the worker's own writes take it: an enqueue that met a
            // claim or a finish holding SQLite's lock slept in the busy handler (1 ms, then 2,
            // 5 …), the tail of an in-process enqueue's latency. A transaction of the caller's
            // (`enqueue_in`) cannot take it.
            let mut write = self.writer.lend(&self.pool, false).await?;
            let inserted = async {
                let mut tx = write.conn().begin_with(BEGIN).await?;
                let out = self.insert_one(&mut tx, &job, now).await?;
                tx.commit().await?;
                Ok::<_, QueueError>(out)
            }
            .await;
            if inserted.is_ok() {
                // Woken first: a claim loop woken now takes the turn as `done` hands it on.
                self.wake.wake();
            }
            write.settle(inserted).await
        })
    }
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>> {
        Box::pin(async move {
            let out = self.writer.transaction(&self.pool, async |tx| self.enqueue_many_in(tx, jobs).await).await?;
            self.wake.wake();
            Ok(out)
        })
    }
    fn claim(&self, claim: Claim) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(self.claim_impl(claim))
    }
    fn heartbeat(&self, leases: Vec<Lease>, lease: Duration) -> StoreFuture<'_, Vec<JobId>> {
        Box::pin(self.heartbeat_impl(leases, lease))
    }
    fn finish(&self, batch: Vec<Finish>) -> StoreFuture<'_, Vec<Finished>> {
        Box::pin(self.finish_impl(batch))
    }
    fn release(&self, leases: Vec<Lease>) -> StoreFuture<'_, u64> {
        Box::pin(self.release_impl(leases))
    }
    fn rescue_expired(&self, limit: u32) -> StoreFuture<'_, Vec<Rescued>> {
        Box::pin(self.rescue_impl(limit))
    }
    fn get(&self, id: JobId) -> StoreFuture<'_, Option<Job>> {
        Box::pin(self.get_impl(id))
    }
    fn list(&self, filter: JobFilter) -> StoreFuture<'_, Vec<Job>> {
        Box::pin(self.list_impl(filter))
    }
    fn cancel(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(self.cancel_impl(id))
    }
    fn retry(&self, id: JobId) -> StoreFuture<'_, Job> {
        Box::pin(self.retry_impl(id))
    }
    fn requeue_dead(&self, kind: Option<String>) -> StoreFuture<'_, super::RequeueReport> {
        Box::pin(self.requeue_dead_impl(kind))
    }
    fn pause_queue(&self, queue: String, by: Option<String>) -> StoreFuture<'_, ()> {
        Box::pin(self.pause_queue_impl(queue, by))
    }
    fn resume_queue(&self, queue: String) -> StoreFuture<'_, bool> {
        Box::pin(self.resume_queue_impl(queue))
    }
    fn paused_queues(&self) -> StoreFuture<'_, Vec<String>> {
        Box::pin(async move {
            Ok(sqlx::query_scalar("SELECT queue FROM keel_queue_pauses ORDER BY queue").fetch_all(&self.pool).await?)
        })
    }
    fn pause_reason(&self, queue: String, task: String) -> StoreFuture<'_, Option<PauseReason>> {
        Box::pin(self.pause_reason_impl(queue, task))
    }
    fn snapshot(&self) -> StoreFuture<'_, QueueSnapshot> {
        Box::pin(self.snapshot_impl(None))
    }
    fn snapshot_within(&self, limit: Duration) -> StoreFuture<'_, QueueSnapshot> {
        Box::pin(self.snapshot_impl(Some(limit)))
    }
    fn prune(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        Box::pin(self.prune_impl(older_than))
    }
    fn keyring(&self) -> Option<&crate::Keyring> {
        self.opts.keyring.as_deref()
    }
    fn claims_stopped(&self) {
        self.writer.give_back();
    }
}

/// The jobs of claimed rows, in claim order; a row the mapper refuses costs only itself.
fn claimed_in_order(rows: &[SqliteRow]) -> Vec<Job> {
    let id_of = |r: &SqliteRow| r.try_get::<String, _>(super::job_cols::ID).unwrap_or_else(|e| e.to_string());
    let mut jobs = super::job_cols::claimed_jobs(rows, job_from_row, id_of);
    jobs.sort_by_key(|j| (j.priority, j.run_at, j.id));
    jobs
}

/// A claim statement with the parameters its statements share (`?1` to `?6`, see
/// `claim_sql`), asking for `limit` jobs.
fn claim_query<'q>(
    sql: &'q str,
    c: &'q Claim,
    now: DateTime<Utc>,
    limit: u32,
) -> sqlx::query::Query<'q, Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    sqlx::query(sql)
        .bind(ms(plus(now, c.lease)))
        .bind(&c.worker)
        .bind(ms(now))
        .bind(&c.queue)
        .bind(&c.task)
        .bind(i64::from(limit))
}

#[cfg(test)]
mod tests {
    use super::leases_json;
    use crate::{JobId, Lease};

    /// The hand-written JSON is the array of `[id, token]` pairs `serde_json` reads back.
    #[test]
    fn leases_json_is_the_pairs_as_json() {
        let a = Lease { job: JobId::from_uuid(uuid::Uuid::from_u128(1)), token: -7 };
        let b = Lease { job: JobId::from_uuid(uuid::Uuid::from_u128(u128::MAX)), token: i64::MAX };
        let json: serde_json::Value = serde_json::from_str(&leases_json([a, b].iter())).expect("valid JSON");
        assert_eq!(
            json,
            serde_json::json!([[a.job.to_string(), -7], ["ffffffff-ffff-ffff-ffff-ffffffffffff", i64::MAX]])
        );
        assert_eq!(leases_json([].iter()), "[]");
    }
}
