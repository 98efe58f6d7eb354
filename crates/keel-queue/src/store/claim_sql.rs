//! The claim statements of both stores, which walk the claim index one priority band at a time.
//!
//! The claim index is `(queue, priority, run_at, id)`, holding every pending job, those due
//! later too. A single index scan in claim order (`ORDER BY priority, run_at, id` with
//! `run_at <= now` as a filter) reads a band's due jobs first and then steps over every one of
//! its jobs scheduled for later before it reaches the next band or gives up: neither database
//! has a skip scan here (PostgreSQL 15 none at all, SQLite only from `ANALYZE` statistics).
//! With 300,000 jobs scheduled for tomorrow, every idle claim read 2,145 index pages and took
//! 9 ms of PostgreSQL's CPU (issue #19's review), and on SQLite held the single writer's lock
//! as long, so the cost grew with the schedule rather than with the work.
//!
//! So a claim walks the bands: a recursive query yields where each band's scan starts (the
//! claim's cursor, or the first entry of the queue's first band; after it, the first entry of
//! the next band, one index descent each), and for each band one index range scan bounded by
//! `run_at <= now` on both sides takes its due jobs. The outer `LIMIT` stops the walk as soon as
//! enough jobs are claimed, so the band after is probed only when a band runs short. A claim
//! costs an index descent per band it looks at, whatever the number of jobs scheduled later.
//!
//! Neither statement sorts: the bands come out of the recursion in priority order and each
//! band's scan in `(run_at, id)` order, so the first rows are the claim order's first rows,
//! as a sort of every due job (all of a backlog, on a burn-down) would give at a far greater
//! cost. `tests` below check the order across bands and that the index is walked this way.
//!
//! Starting a band's scan at its first entry rather than at the band's start also skips, on
//! PostgreSQL, the index entries of jobs claimed since the last vacuum, which every claim would
//! otherwise step over a second time after the descent that found the band.

/// The columns each band's scan starts from: `(priority, run_at, id)`, and `incl`, whether the
/// start itself may be claimed (a cursor's job may not: it was claimed already).
const BAND: &str = "bands(priority, run_at, id, incl)";

/// PostgreSQL's claim. Parameters: `$1` queue, `$2` now, `$3` limit, `$4` lease expiry, `$5`
/// the cron task whose pause stops it, `$6` the worker; with `after`, the cursor as `$7`
/// priority, `$8` run_at and `$9` id. `returning` is the job columns (`j.` prefixed).
pub(super) fn pg(after: bool, returning: &str) -> String {
    let first = if after {
        "SELECT $7::int2, $8::timestamptz, $9::uuid, false"
    } else {
        "SELECT priority, run_at, id, true FROM keel_jobs \
         WHERE queue = $1 AND state IN ('pending', 'retrying') \
         ORDER BY priority, run_at, id LIMIT 1"
    };
    // Claims commit asynchronously; see `claim_impl` in `pg.rs` for why that is safe and how
    // the fencing token stays unique.
    format!(
        "WITH RECURSIVE {BAND} AS ( \
           ({first}) \
           UNION ALL \
           SELECT f.* FROM bands b, LATERAL ( \
             SELECT priority, run_at, id, true FROM keel_jobs \
             WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority > b.priority \
             ORDER BY priority, run_at, id LIMIT 1) f \
         ), next AS ( \
           SELECT n.id FROM bands b CROSS JOIN LATERAL ( \
             SELECT id FROM keel_jobs \
             WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority = b.priority \
               AND (run_at, id) >= (b.run_at, b.id) AND run_at <= $2 \
               AND (b.incl OR (run_at, id) <> (b.run_at, b.id)) \
             ORDER BY run_at, id \
             LIMIT $3 \
             FOR UPDATE SKIP LOCKED) n \
           WHERE NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = $1) \
             AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN ($5, 'all')) \
             AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off' \
           LIMIT $3) \
         UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, \
             lease_seq = GREATEST(j.lease_seq + 1, (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8)), \
             lease_expires_at = $4, locked_by = $6, started_at = $2, updated_at = $2 \
         WHERE j.id = ANY(ARRAY(SELECT id FROM next)) \
         RETURNING {returning}"
    )
}

/// SQLite's claim. Parameters: `?1` lease expiry, `?2` the worker, `?3` now, `?4` queue, `?5`
/// the cron task whose pause stops it, `?6` limit; with `after`, the cursor as `?7` priority,
/// `?8` run_at and `?9` id. `returning` is the job columns.
pub(super) fn sqlite(after: bool, returning: &str) -> String {
    let first = if after {
        "SELECT ?7, ?8, ?9, 0"
    } else {
        "SELECT priority, run_at, id, 1 FROM keel_jobs WHERE rowid = ( \
           SELECT rowid FROM keel_jobs WHERE queue = +?4 AND state IN ('pending', 'retrying') \
           ORDER BY priority, run_at, id LIMIT 1)"
    };
    // By rowid, which every entry of the claim index carries: by `id`, each claimed row cost
    // one more seek in the primary key's index on SQLite's single writer (+3–8% on a
    // burn-down, issue #19). One statement, so no rowid can change in between.
    // `+?4` and `+?3`: once `ANALYZE` (or `PRAGMA optimize`) has left STAT4 samples, a bare
    // parameter compared with an indexed column makes SQLite re-plan the statement every time
    // it is bound, in case the value changes the best plan. The claim's plan is the claim index
    // whatever the values; re-planning it cost 8% of the single writer's CPU (issue #19).
    // SQLite does not estimate from a unary plus; the plan stays the same.
    // `CROSS JOIN` makes the bands the outer loop (SQLite never reorders it), which the order
    // of the claimed rows relies on. SQLite computes every band's start before the join (one
    // index descent per band of the queue, on every claim), where PostgreSQL stops at the
    // band that fills the claim.
    // One statement outside any transaction: SQLite runs a lone statement as its own
    // transaction, taking the write lock as it starts (as `BEGIN IMMEDIATE` would) and undoing
    // it whole if it fails midway, without the `BEGIN` and `COMMIT` hops to the connection's
    // thread. Plain `UPDATE`: outside a transaction a failed `OR FAIL` statement would commit
    // the rows it had already changed. Nor is there a statement journal to skip: SQLite keeps
    // none for a lone statement.
    format!(
        "UPDATE keel_jobs SET state = 'processing', attempt = attempt + 1, lease_seq = lease_seq + 1, \
             lease_expires_at = ?1, locked_by = ?2, started_at = ?3, updated_at = ?3 \
         WHERE rowid IN ( \
           WITH RECURSIVE {BAND} AS ( \
             {first} \
             UNION ALL \
             SELECT f.priority, f.run_at, f.id, 1 FROM bands b, keel_jobs f WHERE f.rowid = ( \
               SELECT rowid FROM keel_jobs \
               WHERE queue = +?4 AND state IN ('pending', 'retrying') AND priority > b.priority \
               ORDER BY priority, run_at, id LIMIT 1) \
           ) \
           SELECT j.rowid FROM bands b CROSS JOIN keel_jobs j \
           WHERE j.queue = +?4 AND j.state IN ('pending', 'retrying') AND j.priority = b.priority \
             AND (j.run_at, j.id) >= (b.run_at, b.id) AND j.run_at <= +?3 \
             AND (b.incl OR (j.run_at, j.id) <> (b.run_at, b.id)) \
             AND NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = ?4) \
             AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN (?5, 'all')) \
           LIMIT ?6) \
         RETURNING {returning}"
    )
}
