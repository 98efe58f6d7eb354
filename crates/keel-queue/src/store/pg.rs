//! [`PgStore`]: the Postgres job store. Claims with `FOR UPDATE SKIP LOCKED`, finishes in
//! batches through `UNNEST`, wakes idle workers with `NOTIFY keel_jobs`.

use super::{Claim, Finish, Finished, JobFilter, JobStore, Outcome, PauseReason, Rescued, StoreFuture, StoreOptions};
use crate::{Clock, Enqueued, Job, JobId, JobState, Lease, NewJob, QueueError, QueueSnapshot, SystemClock, Wakeup};
use chrono::{DateTime, Utc};
use keel_ids::OrgId;
use keel_storage::Backend;
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, PgPool, Row};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

/// The NOTIFY channel; the payload is the queue name.
pub(crate) const CHANNEL: &str = "keel_jobs";

// Generic plans. Cached as prepared statements, PostgreSQL switches a statement to a generic
// plan (one for any parameters) after five runs, and for batches the generic plan can be the
// wrong shape:
// - the claim joined its LIMITed CTE back to the table with a hash join over a full scan
//   (it guesses a LIMIT $n at a tenth of the table); it now updates `id = ANY(ARRAY(…))`,
//   which every plan serves from the primary key, so it stays a cached statement;
// - the lease writes (heartbeat, finish, release) re-read the UNNEST for every row matched,
//   quadratic in the batch (about 48 ms for 256 finishes against 1.8 ms with a hash join).
//   They run as unnamed statements (`persistent(false)`), planned for the real arrays each
//   time: about 0.5 ms of planning per flush of up to 1,000 finishes.

/// The rows of `keel_jobs j` still held under the leases `$1` (job ids) and `$2` (their
/// tokens), for every lease write. One text, so their plan is judged and changed in one place:
/// the join stays linear only while PostgreSQL can estimate the `processing` rows (see the
/// note on generic plans above and the architecture invariant on the lease index).
macro_rules! held_under_leases {
    () => {
        concat!("FROM ", lease_pairs!(), " WHERE ", lease_match!())
    };
}

/// The leases `$1` (job ids) and `$2` (their tokens) as rows `t(id, seq)`.
macro_rules! lease_pairs {
    () => {
        "UNNEST($1::uuid[], $2::int8[]) AS t(id, seq)"
    };
}

/// A row `j` of `keel_jobs` still held under its lease in `t`.
macro_rules! lease_match {
    () => {
        "j.id = ANY($1::uuid[]) AND j.id = t.id AND j.lease_seq = t.seq AND j.state = 'processing'"
    };
}

/// The two data-modifying CTEs of a completion, for a statement's `WITH`: `d` deletes the
/// jobs held under the leases from `keel_jobs`, `done` appends them to `keel_jobs_completed`
/// as completed at `$3` (issue #19: a job's history costs one append, not a second rewrite of
/// the hot table's row, its index entries and a dead version). `$lease` is the lease expiry
/// written: `NULL`, or an expression the table's check refuses for sealed jobs (see
/// `complete_unsealed`). `done` returns the columns `$returning` lists.
macro_rules! move_completed {
    ($lease:literal, $returning:literal) => {
        concat!(
            "d AS (DELETE FROM keel_jobs j USING ",
            lease_pairs!(),
            " WHERE ",
            lease_match!(),
            " RETURNING j.*), \
             done AS (INSERT INTO keel_jobs_completed (id, kind, queue, org_id, payload, priority, state, run_at, \
               attempt, max_attempts, dedupe_key, lease_seq, lease_expires_at, locked_by, last_error, created_at, \
               updated_at, started_at, finished_at, sealed, trace_context) \
             SELECT id, kind, queue, org_id, payload, priority, 'completed', run_at, attempt, max_attempts, \
               dedupe_key, lease_seq, ",
            $lease,
            ", locked_by, last_error, created_at, $3, started_at, $3, sealed, trace_context FROM d \
             RETURNING ",
            $returning,
            ")"
        )
    };
}

/// Rows per bulk INSERT statement (each column is one array parameter, so the only limit is
/// statement size; 5,000 keeps a statement well under a few MB).
const BULK_CHUNK: usize = 5_000;

/// Dedupe lookups retried when the active holder of a key finishes between our insert and
/// our lookup; more than a handful would mean a pathological churn of one key.
pub(crate) const DEDUPE_TRIES: usize = 8;

pub(crate) const JOB_COLS: &str =
    "j.id, j.kind, j.queue, j.org_id, j.payload::text AS payload, j.sealed, j.priority, j.state, \
     j.run_at, j.attempt, j.max_attempts, j.dedupe_key, j.lease_seq, j.lease_expires_at, j.locked_by, j.last_error, \
     j.created_at, j.updated_at, j.started_at, j.finished_at, j.trace_context";

pub(crate) const NIL_ORG: &str = "'00000000-0000-0000-0000-000000000000'::uuid";

/// The queue on PostgreSQL. Prefer [`crate::open`] (which picks the store for a `Db`) unless you
/// need `enqueue_in`, which enqueues inside your own transaction.
#[derive(Debug, Clone)]
pub struct PgStore {
    pub(crate) pool: PgPool,
    pub(crate) clock: Arc<dyn Clock>,
    pub(crate) wake: Wakeup,
    pub(crate) opts: StoreOptions,
    /// Heartbeats, finishes and releases of this store run one at a time (see [`LeaseWrites`]).
    pub(crate) lease_writes: LeaseWrites,
    /// The claim loop's connection, kept between claims.
    pub(crate) claim_conn: super::pg_claim_conn::ClaimConn,
}

/// Serialises this store's multi-row lease writes. A heartbeat covers every job the worker
/// holds while the completer finishes some of them; two such transactions locking rows in
/// different orders could deadlock. Taking turns in the process rules that out without a
/// separate `SELECT … FOR UPDATE` pass (a round trip and a lock record per row) in front of
/// every finish. Other processes hold other leases, so they never wait on these rows, except
/// a stale worker racing the one that rescued its job: a deadlock there is retried like any
/// transient error (40P01) and the stale side's finish is refused by the fencing token.
#[derive(Debug, Clone, Default)]
pub(crate) struct LeaseWrites(Arc<tokio::sync::Mutex<()>>);

impl PgStore {
    /// A store over `pool`, on the system clock with default options.
    pub fn new(pool: PgPool) -> Self {
        Self {
            pool,
            clock: Arc::new(SystemClock),
            wake: Wakeup::new(),
            opts: StoreOptions::default(),
            lease_writes: LeaseWrites::default(),
            claim_conn: Default::default(),
        }
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
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    /// Enqueues inside the caller's transaction (pass `&mut *tx`): the job exists only if
    /// the caller commits, and the wakeup NOTIFY is delivered only then.
    pub async fn enqueue_in(&self, conn: &mut PgConnection, job: NewJob) -> Result<Enqueued, QueueError> {
        let job = job.sealed_and_checked(self.opts.keyring.as_deref(), self.opts.max_payload_bytes)?;
        if !job.resent {
            return self.insert_one(conn, &job).await;
        }
        // Enqueued before (a retry after an error that left it unknown whether the insert
        // committed): that job may have run and completed since, and moved to
        // `keel_jobs_completed`, where the insert's conflict check cannot see its id. Checked
        // after the insert, in a transaction (a savepoint inside the caller's), so that the
        // check's snapshot sees a completion the insert did not conflict with.
        let mut tx = sqlx::Connection::begin(&mut *conn).await?;
        let out = self.insert_one(&mut tx, &job).await?;
        if let Enqueued::Created(id) = out {
            if !self.completed_among(&mut tx, &[id]).await?.is_empty() {
                tx.rollback().await?;
                return Err(already_completed(id));
            }
        }
        tx.commit().await?;
        Ok(out)
    }

    /// The ids among `ids` that are in `keel_jobs_completed` (through its BRIN indexes, bounded
    /// below by the ids' time: about a millisecond per lookup, so only resent jobs pay it).
    async fn completed_among(&self, conn: &mut PgConnection, ids: &[JobId]) -> Result<Vec<Uuid>, QueueError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let since = ids.iter().map(|id| super::pg_ops::finished_since_id(*id)).min().unwrap_or_default();
        let uuids: Vec<Uuid> = ids.iter().map(|id| id.as_uuid()).collect();
        let found: Vec<Uuid> =
            sqlx::query_scalar("SELECT id FROM keel_jobs_completed WHERE id = ANY($1::uuid[]) AND finished_at >= $2")
                .bind(&uuids)
                .bind(since)
                .fetch_all(&mut *conn)
                .await?;
        Ok(found)
    }

    async fn insert_one(&self, conn: &mut PgConnection, job: &NewJob) -> Result<Enqueued, QueueError> {
        let now = self.clock.now();
        let run_at = job.run_at.unwrap_or(now);
        let sql = format!(
            "WITH ins AS ( \
               INSERT INTO keel_jobs (id, kind, queue, org_id, payload, sealed, priority, state, run_at, max_attempts, \
                                      dedupe_key, created_at, updated_at, trace_context) \
               VALUES ($1, $2, $3, $4, $5::jsonb, $11, $6, 'pending', $7, $8, $9, $10, $10, $12) \
               ON CONFLICT DO NOTHING \
               RETURNING id, queue, run_at) \
             SELECT ins.id FROM ins \
             LEFT JOIN LATERAL (SELECT pg_notify('{CHANNEL}', ins.queue) WHERE ins.run_at <= $10) AS n ON true"
        );
        for _ in 0..DEDUPE_TRIES {
            let inserted: Option<Uuid> = sqlx::query_scalar(&sql)
                .bind(job.id.as_uuid())
                .bind(&job.kind)
                .bind(&job.queue)
                .bind(job.org.map(|o| o.as_uuid()))
                .bind(&job.payload)
                .bind(job.priority)
                .bind(run_at)
                .bind(job.max_attempts as i32)
                .bind(&job.dedupe_key)
                .bind(now)
                .bind(job.sealed)
                .bind(&job.trace_context)
                .fetch_optional(&mut *conn)
                .await?;
            if let Some(id) = inserted {
                return Ok(Enqueued::Created(JobId::from_uuid(id)));
            }
            let Some(key) = &job.dedupe_key else {
                return Err(QueueError::Database(format!("job id {} already exists", job.id)));
            };
            if let Some(existing) = self.active_with_key(conn, &job.kind, key, job.org).await? {
                return Ok(Enqueued::Duplicate(existing));
            }
            // The holder finished between our insert and our lookup: the key is free again.
        }
        Err(QueueError::Database(format!(
            "dedupe key {:?} of kind {:?} kept changing hands; try again",
            job.dedupe_key, job.kind
        )))
    }

    async fn active_with_key(
        &self,
        conn: &mut PgConnection,
        kind: &str,
        key: &str,
        org: Option<OrgId>,
    ) -> Result<Option<JobId>, QueueError> {
        let sql = format!(
            "SELECT id FROM keel_jobs WHERE kind = $1 AND dedupe_key = $2 \
             AND COALESCE(org_id, {NIL_ORG}) = COALESCE($3, {NIL_ORG}) \
             AND state IN ('pending', 'processing', 'retrying')"
        );
        let id: Option<Uuid> = sqlx::query_scalar(&sql)
            .bind(kind)
            .bind(key)
            .bind(org.map(|o| o.as_uuid()))
            .fetch_optional(&mut *conn)
            .await?;
        Ok(id.map(JobId::from_uuid))
    }

    /// Bulk enqueue inside the caller's transaction: one INSERT per 5,000 jobs.
    pub async fn enqueue_many_in(
        &self,
        conn: &mut PgConnection,
        jobs: Vec<NewJob>,
    ) -> Result<Vec<Enqueued>, QueueError> {
        let jobs = NewJob::all_sealed_and_checked(jobs, self.opts.keyring.as_deref(), self.opts.max_payload_bytes)?;
        let now = self.clock.now();
        let mut results: Vec<Option<Enqueued>> = vec![None; jobs.len()];
        let mut wake_queues = BTreeSet::new();
        let mut todo: Vec<usize> = (0..jobs.len()).collect();
        for _ in 0..DEDUPE_TRIES {
            if todo.is_empty() {
                break;
            }
            let mut duplicates = Vec::new();
            for chunk in todo.chunks(BULK_CHUNK) {
                let inserted = self.insert_chunk(conn, &jobs, chunk, now).await?;
                for &i in chunk {
                    let j = &jobs[i];
                    if inserted.contains(&j.id.as_uuid()) {
                        results[i] = Some(Enqueued::Created(j.id));
                        if j.run_at.is_none_or(|t| t <= now) {
                            wake_queues.insert(j.queue.clone());
                        }
                    } else if j.dedupe_key.is_some() {
                        duplicates.push(i);
                    } else {
                        return Err(QueueError::Database(format!("job id {} already exists", j.id)));
                    }
                }
            }
            let found = self.lookup_active_keys(conn, &jobs, &duplicates).await?;
            todo.clear();
            for i in duplicates {
                match found.get(&i) {
                    Some(id) => results[i] = Some(Enqueued::Duplicate(*id)),
                    None => todo.push(i),
                }
            }
        }
        if !todo.is_empty() {
            return Err(QueueError::Database(
                "dedupe keys kept changing hands during a bulk enqueue; try again".into(),
            ));
        }
        // Jobs enqueued before may have completed since (see `enqueue_in`): in the caller's
        // transaction, an error here leaves nothing of the bulk enqueue once it rolls back.
        let resent: Vec<JobId> = jobs
            .iter()
            .zip(&results)
            .filter(|(j, r)| j.resent && matches!(r, Some(Enqueued::Created(_))))
            .map(|(j, _)| j.id)
            .collect();
        if let Some(id) = self.completed_among(conn, &resent).await?.first() {
            return Err(already_completed(JobId::from_uuid(*id)));
        }
        if !wake_queues.is_empty() {
            let queues: Vec<String> = wake_queues.into_iter().collect();
            sqlx::query(&format!("SELECT pg_notify('{CHANNEL}', q) FROM unnest($1::text[]) AS q"))
                .bind(&queues)
                .execute(&mut *conn)
                .await?;
        }
        results
            .into_iter()
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| QueueError::Database("bulk enqueue lost track of a job; nothing was committed".into()))
    }

    async fn insert_chunk(
        &self,
        conn: &mut PgConnection,
        jobs: &[NewJob],
        chunk: &[usize],
        now: DateTime<Utc>,
    ) -> Result<std::collections::HashSet<Uuid>, QueueError> {
        let n = chunk.len();
        let (mut ids, mut kinds, mut queues, mut orgs, mut payloads) = (
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
            Vec::with_capacity(n),
        );
        let (mut prios, mut run_ats, mut maxes, mut keys) =
            (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
        let mut sealed = Vec::with_capacity(n);
        let mut traces = Vec::with_capacity(n);
        for &i in chunk {
            let j = &jobs[i];
            ids.push(j.id.as_uuid());
            kinds.push(j.kind.as_str());
            queues.push(j.queue.as_str());
            orgs.push(j.org.map(|o| o.as_uuid()));
            payloads.push(j.payload.as_str());
            prios.push(j.priority);
            run_ats.push(j.run_at.unwrap_or(now));
            maxes.push(j.max_attempts as i32);
            keys.push(j.dedupe_key.as_deref());
            sealed.push(j.sealed);
            traces.push(j.trace_context.as_deref());
        }
        let rows: Vec<Uuid> = sqlx::query_scalar(
            "INSERT INTO keel_jobs (id, kind, queue, org_id, payload, sealed, priority, state, run_at, max_attempts, \
                                    dedupe_key, created_at, updated_at, trace_context) \
             SELECT t.id, t.kind, t.queue, t.org_id, t.payload::jsonb, t.sealed, t.priority, 'pending', t.run_at, \
                    t.max_attempts, t.dedupe_key, $10, $10, t.trace_context \
             FROM UNNEST($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::int2[], $7::timestamptz[], \
                         $8::int4[], $9::text[], $11::bool[], $12::text[]) \
                  AS t(id, kind, queue, org_id, payload, priority, run_at, max_attempts, dedupe_key, sealed, \
                       trace_context) \
             ON CONFLICT DO NOTHING \
             RETURNING id",
        )
        .bind(&ids)
        .bind(&kinds)
        .bind(&queues)
        .bind(&orgs)
        .bind(&payloads)
        .bind(&prios)
        .bind(&run_ats)
        .bind(&maxes)
        .bind(&keys)
        .bind(now)
        .bind(&sealed)
        .bind(&traces)
        .fetch_all(&mut *conn)
        .await?;
        Ok(rows.into_iter().collect())
    }

    async fn lookup_active_keys(
        &self,
        conn: &mut PgConnection,
        jobs: &[NewJob],
        which: &[usize],
    ) -> Result<HashMap<usize, JobId>, QueueError> {
        if which.is_empty() {
            return Ok(HashMap::new());
        }
        let ords: Vec<i32> = which.iter().map(|&i| i as i32).collect();
        let kinds: Vec<&str> = which.iter().map(|&i| jobs[i].kind.as_str()).collect();
        let keys: Vec<&str> = which.iter().map(|&i| jobs[i].dedupe_key.as_deref().unwrap_or_default()).collect();
        let orgs: Vec<Option<Uuid>> = which.iter().map(|&i| jobs[i].org.map(|o| o.as_uuid())).collect();
        let sql = format!(
            "SELECT t.ord, j.id FROM UNNEST($1::int4[], $2::text[], $3::text[], $4::uuid[]) AS t(ord, kind, key, org) \
             JOIN keel_jobs j ON j.kind = t.kind AND j.dedupe_key = t.key \
              AND COALESCE(j.org_id, {NIL_ORG}) = COALESCE(t.org, {NIL_ORG}) \
              AND j.state IN ('pending', 'processing', 'retrying')"
        );
        let rows: Vec<(i32, Uuid)> =
            sqlx::query_as(&sql).bind(&ords).bind(&kinds).bind(&keys).bind(&orgs).fetch_all(&mut *conn).await?;
        Ok(rows.into_iter().map(|(o, id)| (o as usize, JobId::from_uuid(id))).collect())
    }

    /// Claims commit asynchronously (`synchronous_commit` off for the claim's own transaction
    /// only): waiting for the WAL flush cost about 5 ms per claim on the benchmark machine,
    /// which capped a loop claiming 8 jobs at a time near 1,000 jobs/s. A claim need not be
    /// durable: if PostgreSQL itself crashes before flushing it, the job is simply pending
    /// again and runs again, as after any crash. Every later durable commit (each finish
    /// batch) flushes the claims before it, so a job whose finish was recorded was durably
    /// claimed. The fencing token must still never repeat, even for a claim lost that way:
    /// it is bumped to at least the server's clock in microseconds, so a claim made after
    /// the restart cannot hand out the token of one lost in the crash, and a retried finish
    /// from before the crash is refused. The clock is read once per claim (a subquery of its
    /// own, evaluated before the update): per row, its `numeric` arithmetic cost about 0.4 µs
    /// of the server's CPU for every job claimed.
    async fn claim_impl(&self, c: Claim) -> Result<Vec<Job>, QueueError> {
        let now = self.clock.now();
        let expires = crate::clock::plus(now, c.lease);
        let mut lent = self.claim_conn.lend(&self.pool, now).await?;
        let Some(conn) = lent.conn() else {
            return Err(QueueError::Database("the claim connection was lost; try again".into()));
        };
        // From a cursor, the rest of its band first; then, if that came back short, the bands
        // above it (see `claim_sql`). Each statement is cached with its own plan.
        let mut rows = Vec::new();
        let mut from = Some(i16::MIN);
        if let Some(a) = c.after {
            let sql = super::claim_sql::pg_cursor_band(JOB_COLS);
            let query =
                claim_query(&sql, &c, now, expires, c.limit).bind(a.priority).bind(a.run_at).bind(a.id.as_uuid());
            rows = match query.fetch_all(&mut *conn).await {
                Ok(rows) => rows,
                Err(e) => {
                    lent.discard();
                    return Err(e.into());
                }
            };
            from = a.priority.checked_add(1);
        }
        let claimed = u32::try_from(rows.len()).unwrap_or(u32::MAX);
        if let Some(from) = from.filter(|_| claimed < c.limit) {
            let sql = super::claim_sql::pg_bands(JOB_COLS);
            match claim_query(&sql, &c, now, expires, c.limit - claimed).bind(from).fetch_all(&mut *conn).await {
                Ok(more) => rows.extend(more),
                Err(e) => {
                    lent.discard();
                    if rows.is_empty() {
                        return Err(e.into());
                    }
                    // The cursor's band is claimed and committed: hand it out rather than
                    // leave it to its leases.
                    tracing::warn!(event = "claim_incomplete", queue = %c.queue, claimed = rows.len(),
                        error = %keel_ids::mask_email(&e.to_string()), "claimed the rest of a band, but not the bands above it");
                }
            }
        }
        drop(lent);
        // A result whose column types drifted from the migrations' fails whole; a row with a
        // value the mapper refuses costs only itself.
        if let Some(first) = rows.first() {
            check_job_cols(first)?;
        }
        let id_of =
            |r: &PgRow| r.try_get::<Uuid, _>(super::job_cols::ID).map_or_else(|e| e.to_string(), |u| u.to_string());
        let mut jobs = super::job_cols::claimed_jobs(&rows, decode_job, id_of);
        jobs.sort_by_key(|j| (j.priority, j.run_at, j.id));
        Ok(jobs)
    }

    async fn heartbeat_impl(&self, leases: Vec<Lease>, lease: Duration) -> Result<Vec<JobId>, QueueError> {
        if leases.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let (ids, seqs) = split_leases(&leases);
        let _turn = self.lease_writes.0.lock().await;
        // One statement, so no transaction around it (as the lone completion).
        let kept: Vec<Uuid> = sqlx::query_scalar(concat!(
            "UPDATE keel_jobs j SET lease_expires_at = $3, updated_at = $4 ",
            held_under_leases!(),
            " RETURNING j.id"
        ))
        .persistent(false)
        .bind(&ids)
        .bind(&seqs)
        .bind(crate::clock::plus(now, lease))
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        Ok(lost(&leases, &kept))
    }

    async fn finish_impl(&self, batch: Vec<Finish>) -> Result<Vec<Finished>, QueueError> {
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let _turn = self.lease_writes.0.lock().await;
        if batch.iter().all(|f| f.outcome == Outcome::Completed) {
            match self.complete_unsealed(&batch, now).await {
                Ok(out) => return Ok(out),
                // A sealed job is among them and nothing changed: the general path erases it.
                Err(sqlx::Error::Database(d)) if d.is_check_violation() => {}
                Err(e) => return Err(e.into()),
            }
        }
        let mut tx = self.pool.begin().await?;
        let mut states: HashMap<Uuid, JobState> = HashMap::new();
        let done: Vec<&Finish> = batch.iter().filter(|f| f.outcome == Outcome::Completed).collect();
        if !done.is_empty() {
            let ids: Vec<Uuid> = done.iter().map(|f| f.lease.job.as_uuid()).collect();
            let seqs: Vec<i64> = done.iter().map(|f| f.lease.token).collect();
            // A sealed job's payload comes back so its sealed values can be erased below.
            let rows: Vec<(Uuid, Option<String>)> = sqlx::query_as(concat!(
                "WITH ",
                move_completed!("NULL", "id, sealed, payload"),
                " SELECT id, CASE WHEN sealed THEN payload::text END FROM done"
            ))
            .persistent(false)
            .bind(&ids)
            .bind(&seqs)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            let erase: Vec<(Uuid, String)> =
                rows.iter().filter_map(|(id, p)| p.as_deref().map(|p| (*id, crate::redact_payload(p)))).collect();
            if !erase.is_empty() {
                let (ids, payloads): (Vec<Uuid>, Vec<String>) = erase.into_iter().unzip();
                sqlx::query(
                    "UPDATE keel_jobs_completed j SET payload = t.payload::jsonb \
                     FROM UNNEST($1::uuid[], $2::text[]) AS t(id, payload) WHERE j.id = ANY($1::uuid[]) AND j.id = t.id",
                )
                .persistent(false)
                .bind(&ids)
                .bind(&payloads)
                .execute(&mut *tx)
                .await?;
            }
            states.extend(rows.into_iter().map(|(id, _)| (id, JobState::Completed)));
        }
        let failed: Vec<&Finish> = batch.iter().filter(|f| f.outcome != Outcome::Completed).collect();
        if !failed.is_empty() {
            let mut ids = Vec::new();
            let mut seqs = Vec::new();
            let mut modes = Vec::new();
            let mut errors = Vec::new();
            let mut retry_ats = Vec::new();
            for f in &failed {
                ids.push(f.lease.job.as_uuid());
                seqs.push(f.lease.token);
                let (mode, error, at) = fail_parts(&f.outcome, now);
                modes.push(mode);
                errors.push(error);
                retry_ats.push(at);
            }
            let rows: Vec<(Uuid, String)> = sqlx::query_as(
                "UPDATE keel_jobs j SET \
                   state = CASE WHEN t.mode = 'dead' THEN 'dead_letter' WHEN t.mode = 'failed' THEN 'failed' \
                                WHEN j.attempt >= j.max_attempts THEN 'dead_letter' ELSE 'retrying' END, \
                   run_at = CASE WHEN t.mode = 'retry' AND j.attempt < j.max_attempts THEN t.retry_at ELSE j.run_at END, \
                   finished_at = CASE WHEN t.mode = 'retry' AND j.attempt < j.max_attempts THEN NULL ELSE $6 END, \
                   last_error = t.error, lease_expires_at = NULL, updated_at = $6 \
                 FROM UNNEST($1::uuid[], $2::int8[], $3::text[], $4::text[], $5::timestamptz[]) \
                      AS t(id, seq, mode, error, retry_at) \
                 WHERE j.id = ANY($1::uuid[]) AND j.id = t.id AND j.lease_seq = t.seq AND j.state = 'processing' \
                 RETURNING j.id, j.state",
            )
            .persistent(false)
            .bind(&ids)
            .bind(&seqs)
            .bind(&modes)
            .bind(&errors)
            .bind(&retry_ats)
            .bind(now)
            .fetch_all(&mut *tx)
            .await?;
            for (id, st) in rows {
                states.insert(id, st.parse()?);
            }
        }
        tx.commit().await?;
        Ok(batch
            .iter()
            .map(|f| states.get(&f.lease.job.as_uuid()).map_or(Finished::Stale, |s| Finished::Accepted(*s)))
            .collect())
    }

    /// Completes a batch of completions in one statement outside any transaction, so without
    /// the `BEGIN` and `COMMIT` round trips (issue #19); it commits durably like the general
    /// path. A sealed job's values must be erased in the transaction that completes it, which
    /// takes the general path, so this statement must change nothing when the batch holds
    /// one: a sealed row keeps its lease while becoming `completed`, which the check of
    /// `keel_jobs_completed` (no lease) refuses, and the statement is undone whole. The caller
    /// then runs the general path on a check violation.
    async fn complete_unsealed(&self, batch: &[Finish], now: DateTime<Utc>) -> Result<Vec<Finished>, sqlx::Error> {
        let (ids, seqs): (Vec<Uuid>, Vec<i64>) = batch.iter().map(|f| (f.lease.job.as_uuid(), f.lease.token)).unzip();
        // Only the refused (stale) ids come back, almost always none: returning every completed
        // id cost a row message from the server and a decoded row in the completer per job.
        let stale: Vec<Uuid> = sqlx::query_scalar(concat!(
            "WITH ",
            move_completed!("CASE WHEN sealed THEN lease_expires_at END", "id"),
            " SELECT a.id FROM UNNEST($1::uuid[]) AS a(id) WHERE NOT EXISTS (SELECT 1 FROM done WHERE done.id = a.id)"
        ))
        .persistent(false)
        .bind(&ids)
        .bind(&seqs)
        .bind(now)
        .fetch_all(&self.pool)
        .await?;
        let stale: std::collections::HashSet<Uuid> = stale.into_iter().collect();
        Ok(batch
            .iter()
            .map(|f| match stale.contains(&f.lease.job.as_uuid()) {
                true => Finished::Stale,
                false => Finished::Accepted(JobState::Completed),
            })
            .collect())
    }

    async fn release_impl(&self, leases: Vec<Lease>) -> Result<u64, QueueError> {
        if leases.is_empty() {
            return Ok(0);
        }
        let now = self.clock.now();
        let (ids, seqs) = split_leases(&leases);
        let _turn = self.lease_writes.0.lock().await;
        let mut tx = self.pool.begin().await?;
        let queues: Vec<String> = sqlx::query_scalar(concat!(
            "UPDATE keel_jobs j SET state = CASE WHEN j.attempt <= 1 THEN 'pending' ELSE 'retrying' END, \
                 attempt = GREATEST(j.attempt - 1, 0), lease_expires_at = NULL, updated_at = $3 ",
            held_under_leases!(),
            " RETURNING j.queue"
        ))
        .persistent(false)
        .bind(&ids)
        .bind(&seqs)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        notify_queues(&mut tx, &queues).await?;
        tx.commit().await?;
        Ok(queues.len() as u64)
    }

    async fn rescue_impl(&self, limit: u32) -> Result<Vec<Rescued>, QueueError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        let stuck: Vec<(Uuid, String, String, i32, Option<String>)> = sqlx::query_as(
            "SELECT id, kind, queue, attempt, locked_by FROM keel_jobs \
             WHERE state = 'processing' AND lease_expires_at < $1 \
             ORDER BY lease_expires_at LIMIT $2 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if stuck.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<Uuid> = stuck.iter().map(|s| s.0).collect();
        let attempts = stuck.iter().map(|s| super::job_cols::count("attempt", s.3)).collect::<Result<Vec<_>, _>>()?;
        let msgs: Vec<String> =
            stuck.iter().zip(&attempts).map(|(s, &attempt)| super::stuck_message(s.4.as_deref(), attempt)).collect();
        let rows: Vec<(Uuid, String)> = sqlx::query_as(
            "UPDATE keel_jobs j SET \
               state = CASE WHEN j.attempt >= j.max_attempts THEN 'dead_letter' ELSE 'retrying' END, \
               run_at = CASE WHEN j.attempt >= j.max_attempts THEN j.run_at ELSE $3 END, \
               finished_at = CASE WHEN j.attempt >= j.max_attempts THEN $3 END, \
               last_error = t.msg, lease_expires_at = NULL, updated_at = $3 \
             FROM UNNEST($1::uuid[], $2::text[]) AS t(id, msg) WHERE j.id = ANY($1::uuid[]) AND j.id = t.id \
             RETURNING j.id, j.state",
        )
        .bind(&ids)
        .bind(&msgs)
        .bind(now)
        .fetch_all(&mut *tx)
        .await?;
        let states: HashMap<Uuid, String> = rows.into_iter().collect();
        let mut out = Vec::with_capacity(stuck.len());
        for ((id, kind, queue, _, worker), attempt) in stuck.into_iter().zip(attempts) {
            // Each row was locked above, so the update changed every one of them.
            let state: JobState = states
                .get(&id)
                .ok_or_else(|| QueueError::Database(format!("rescued job {id} was locked but not updated")))?
                .parse()?;
            out.push(Rescued { id: JobId::from_uuid(id), kind, queue, attempt, state, worker });
        }
        let retry_queues: Vec<String> =
            out.iter().filter(|r| r.state == JobState::Retrying).map(|r| r.queue.clone()).collect();
        notify_queues(&mut tx, &retry_queues).await?;
        tx.commit().await?;
        Ok(out)
    }
}

/// NOTIFY once per distinct queue, delivered when the transaction commits.
pub(crate) async fn notify_queues(conn: &mut PgConnection, queues: &[String]) -> Result<(), QueueError> {
    if queues.is_empty() {
        return Ok(());
    }
    let distinct: Vec<&str> = queues.iter().map(String::as_str).collect::<BTreeSet<_>>().into_iter().collect();
    sqlx::query(&format!("SELECT pg_notify('{CHANNEL}', q) FROM unnest($1::text[]) AS q"))
        .bind(&distinct)
        .execute(conn)
        .await?;
    Ok(())
}

/// A claim statement with the parameters its statements share (`$1` to `$6`, see
/// `claim_sql`), asking for `limit` jobs.
fn claim_query<'q>(
    sql: &'q str,
    c: &'q Claim,
    now: DateTime<Utc>,
    expires: DateTime<Utc>,
    limit: u32,
) -> sqlx::query::Query<'q, sqlx::Postgres, sqlx::postgres::PgArguments> {
    sqlx::query(sql).bind(&c.queue).bind(now).bind(i64::from(limit)).bind(expires).bind(&c.task).bind(&c.worker)
}

/// A resent job whose earlier enqueue committed, ran and completed: the same job again.
fn already_completed(id: impl std::fmt::Display) -> QueueError {
    QueueError::Database(format!(
        "job id {id} already exists: it was enqueued before and has completed (a clone of a NewJob is the same job; \
         build a new one to run it again)"
    ))
}

/// (mode, error, retry time) for the failure UNNEST; `now` stands in where no time applies.
pub(crate) fn fail_parts(o: &Outcome, now: DateTime<Utc>) -> (&'static str, String, DateTime<Utc>) {
    match o {
        Outcome::Retry { error, at } => ("retry", storable(error), *at),
        Outcome::Failed { error } => ("failed", storable(error), now),
        Outcome::DeadLetter { error } => ("dead", storable(error), now),
        Outcome::Completed => ("completed", String::new(), now),
    }
}

/// An error text PostgreSQL can store: a `text` value cannot hold a NUL character, and one
/// refused value fails the whole statement, so every finish flushed with it (the completer
/// writes up to a thousand at once) would be lost with it. An error text comes from handlers
/// (a provider's response body, a panic message), so a NUL is shown as U+FFFD instead.
fn storable(error: &str) -> String {
    if error.contains('\0') {
        error.replace('\0', "\u{FFFD}")
    } else {
        error.to_owned()
    }
}

fn split_leases(leases: &[Lease]) -> (Vec<Uuid>, Vec<i64>) {
    leases.iter().map(|l| (l.job.as_uuid(), l.token)).unzip()
}

/// The leases whose job is not among `kept`.
pub(crate) fn lost(leases: &[Lease], kept: &[Uuid]) -> Vec<JobId> {
    let kept: std::collections::HashSet<&Uuid> = kept.iter().collect();
    leases.iter().filter(|l| !kept.contains(&l.job.as_uuid())).map(|l| l.job).collect()
}

/// A job from a row selected as [`JOB_COLS`]. A value it does not know (a state, a negative
/// attempt count) is an error, never a default.
pub(crate) fn job_from_row(row: &PgRow) -> Result<Job, QueueError> {
    check_job_cols(row)?;
    decode_job(row)
}

/// Jobs from rows selected as [`JOB_COLS`]: the column types are checked once, on the first
/// row (every row of one result shares them), then each row is decoded without checking them
/// again. Checking per column per row was a third of the mapping's cost in a claim of
/// hundreds of rows (issue #19).
pub(crate) fn jobs_from_rows(rows: &[PgRow]) -> Result<Vec<Job>, QueueError> {
    if let Some(first) = rows.first() {
        check_job_cols(first)?;
    }
    rows.iter().map(decode_job).collect()
}

/// The result's columns have the types [`decode_job`] reads: what `try_get` checks on every
/// call, done once per result.
fn check_job_cols(row: &PgRow) -> Result<(), QueueError> {
    use super::job_cols as col;
    use sqlx::{Column, Postgres, Type, TypeInfo};
    type Check = fn(&sqlx::postgres::PgTypeInfo) -> bool;
    fn uuid(t: &sqlx::postgres::PgTypeInfo) -> bool {
        <Uuid as Type<Postgres>>::compatible(t)
    }
    fn text(t: &sqlx::postgres::PgTypeInfo) -> bool {
        <String as Type<Postgres>>::compatible(t)
    }
    fn time(t: &sqlx::postgres::PgTypeInfo) -> bool {
        <DateTime<Utc> as Type<Postgres>>::compatible(t)
    }
    let expected: [(usize, Check); 21] = [
        (col::ID, uuid),
        (col::KIND, text),
        (col::QUEUE, text),
        (col::ORG_ID, uuid),
        (col::PAYLOAD, text),
        (col::SEALED, <bool as Type<Postgres>>::compatible),
        (col::PRIORITY, <i16 as Type<Postgres>>::compatible),
        (col::STATE, text),
        (col::RUN_AT, time),
        (col::ATTEMPT, <i32 as Type<Postgres>>::compatible),
        (col::MAX_ATTEMPTS, <i32 as Type<Postgres>>::compatible),
        (col::DEDUPE_KEY, text),
        (col::LEASE_SEQ, <i64 as Type<Postgres>>::compatible),
        (col::LEASE_EXPIRES_AT, time),
        (col::LOCKED_BY, text),
        (col::LAST_ERROR, text),
        (col::CREATED_AT, time),
        (col::UPDATED_AT, time),
        (col::STARTED_AT, time),
        (col::FINISHED_AT, time),
        (col::TRACE_CONTEXT, text),
    ];
    let columns = row.columns();
    if columns.len() != expected.len() {
        return Err(QueueError::Corrupt(format!(
            "a job row has {} columns; expected {}",
            columns.len(),
            expected.len()
        )));
    }
    for (i, compatible) in expected {
        let c = &columns[i];
        if !compatible(c.type_info()) {
            return Err(QueueError::Corrupt(format!(
                "column {} of keel_jobs is {}, not the type keel-queue reads; run keel-queue's migrations",
                c.name(),
                c.type_info().name()
            )));
        }
    }
    Ok(())
}

/// Decodes a row whose column types [`check_job_cols`] has checked.
fn decode_job(row: &PgRow) -> Result<Job, QueueError> {
    use super::job_cols as col;
    Ok(Job {
        id: JobId::from_uuid(row.try_get_unchecked(col::ID)?),
        kind: row.try_get_unchecked(col::KIND)?,
        queue: row.try_get_unchecked(col::QUEUE)?,
        org: row.try_get_unchecked::<Option<Uuid>, _>(col::ORG_ID)?.map(OrgId::from_uuid),
        payload: row.try_get_unchecked(col::PAYLOAD)?,
        sealed: row.try_get_unchecked(col::SEALED)?,
        priority: row.try_get_unchecked(col::PRIORITY)?,
        state: row.try_get_unchecked::<&str, _>(col::STATE)?.parse()?,
        run_at: row.try_get_unchecked(col::RUN_AT)?,
        attempt: col::count("attempt", row.try_get_unchecked::<i32, _>(col::ATTEMPT)?)?,
        max_attempts: col::count("max_attempts", row.try_get_unchecked::<i32, _>(col::MAX_ATTEMPTS)?)?,
        dedupe_key: row.try_get_unchecked(col::DEDUPE_KEY)?,
        lease_seq: row.try_get_unchecked(col::LEASE_SEQ)?,
        lease_expires_at: row.try_get_unchecked(col::LEASE_EXPIRES_AT)?,
        locked_by: row.try_get_unchecked(col::LOCKED_BY)?,
        last_error: row.try_get_unchecked(col::LAST_ERROR)?,
        created_at: row.try_get_unchecked(col::CREATED_AT)?,
        updated_at: row.try_get_unchecked(col::UPDATED_AT)?,
        started_at: row.try_get_unchecked(col::STARTED_AT)?,
        finished_at: row.try_get_unchecked(col::FINISHED_AT)?,
        trace_context: row.try_get_unchecked(col::TRACE_CONTEXT)?,
    })
}

impl JobStore for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
    }
    fn now(&self) -> DateTime<Utc> {
        self.clock.now()
    }
    fn wakeup(&self) -> &Wakeup {
        &self.wake
    }
    fn start_wakeups(&self, cancel: CancellationToken) -> StoreFuture<'_, ()> {
        Box::pin(super::pg_listen::start(self.pool.clone(), self.wake.clone(), cancel))
    }
    fn check_worker_pool(&self) -> Result<(), QueueError> {
        super::pg_listen::check_pool(self.pool.options().get_max_connections())
    }
    fn enqueue(&self, job: NewJob) -> StoreFuture<'_, Enqueued> {
        Box::pin(async move {
            let mut conn = self.pool.acquire().await?;
            self.enqueue_in(&mut conn, job).await
        })
    }
    fn enqueue_many(&self, jobs: Vec<NewJob>) -> StoreFuture<'_, Vec<Enqueued>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let out = self.enqueue_many_in(&mut tx, jobs).await?;
            tx.commit().await?;
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
        self.claim_conn.give_back();
    }
}
