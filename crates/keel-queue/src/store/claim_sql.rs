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
//! So a claim reads each band as an index range bounded by `run_at <= now`:
//! - [`pg_bands`] / [`sqlite_bands`], from a lowest priority: a recursive query yields where
//!   each band's scan starts (the first entry of the first band at or above that priority;
//!   after it, the first entry of the next band, one index descent each), and each band's scan
//!   takes its due jobs. The outer `LIMIT` stops the walk at the band that fills the claim. A
//!   claim from the start runs this alone.
//! - [`pg_cursor_band`] / [`sqlite_cursor_band`]: a claim loop resuming after its cursor (the
//!   burn-down's hot path) first reads the rest of the cursor's band, one plain range scan as
//!   cheap as the single scan it replaces, and only if that comes back short runs the band walk
//!   from the next priority up for the rest. A band walk for every claim cost 2–6% of a
//!   burn-down's rate (claims of 8 at concurrency 8 lost the most), its plan's extra nodes
//!   being set up and run for every claim.
//!
//! A claim costs an index descent per band it looks at, whatever the number of jobs scheduled
//! later. Neither band walk sorts: the bands come out of the recursion in priority order and
//! each band's scan in `(run_at, id)` order, so the first rows are the claim order's first
//! rows, as a sort of every due job (all of a backlog, on a burn-down) would give at a far
//! greater cost. `claim_sql_tests` check that the index is walked this way; the conformance
//! suite checks the order across bands.
//!
//! Starting a band's scan at its first entry rather than at the band's start also skips, on
//! PostgreSQL, the index entries of jobs claimed since the last vacuum, which every claim would
//! otherwise step over a second time after the descent that found the band.

/// PostgreSQL's claim from the first band at or above `$7`. Parameters: `$1` queue, `$2` now,
/// `$3` limit, `$4` lease expiry, `$5` the cron task whose pause stops it, `$6` the worker, `$7`
/// the lowest priority to look at. `returning` is the job columns (`j.` prefixed).
pub(super) fn pg_bands(returning: &str) -> String {
    pg_update(
        "WITH RECURSIVE bands(priority, run_at, id) AS ( \
           (SELECT priority, run_at, id FROM keel_jobs \
            WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority >= $7 \
            ORDER BY priority, run_at, id LIMIT 1) \
           UNION ALL \
           SELECT f.* FROM bands b, LATERAL ( \
             SELECT priority, run_at, id FROM keel_jobs \
             WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority > b.priority \
             ORDER BY priority, run_at, id LIMIT 1) f \
         ), next AS ( \
           SELECT n.id FROM bands b CROSS JOIN LATERAL ( \
             SELECT id FROM keel_jobs \
             WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority = b.priority \
               AND (run_at, id) >= (b.run_at, b.id) AND run_at <= $2 \
             ORDER BY run_at, id \
             LIMIT $3 \
             FOR UPDATE SKIP LOCKED) n \
           WHERE NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = $1) \
             AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN ($5, 'all')) \
             AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off' \
           LIMIT $3)",
        returning,
    )
}

/// PostgreSQL's claim of the rest of the cursor's band: parameters `$1` to `$6` as
/// [`pg_bands`], then the cursor as `$7` priority, `$8` run_at and `$9` id.
pub(super) fn pg_cursor_band(returning: &str) -> String {
    pg_update(
        "WITH next AS ( \
           SELECT id FROM keel_jobs \
           WHERE queue = $1 AND state IN ('pending', 'retrying') AND priority = $7 \
             AND (run_at, id) > ($8, $9) AND run_at <= $2 \
             AND NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = $1) \
             AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN ($5, 'all')) \
             AND (SELECT set_config('synchronous_commit', 'off', true)) = 'off' \
           ORDER BY run_at, id \
           LIMIT $3 \
           FOR UPDATE SKIP LOCKED)",
        returning,
    )
}

/// The update that claims the jobs `with` selects as `next`. Claims commit asynchronously;
/// see `claim_impl` in `pg.rs` for why that is safe and how the fencing token stays unique.
fn pg_update(with: &str, returning: &str) -> String {
    format!(
        "{with} \
         UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, \
             lease_seq = GREATEST(j.lease_seq + 1, (SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8)), \
             lease_expires_at = $4, locked_by = $6, started_at = $2, updated_at = $2 \
         WHERE j.id = ANY(ARRAY(SELECT id FROM next)) \
         RETURNING {returning}"
    )
}

/// SQLite's claim from the first band at or above `?7`. Parameters: `?1` lease expiry, `?2`
/// the worker, `?3` now, `?4` queue, `?5` the cron task whose pause stops it, `?6` limit, `?7`
/// the lowest priority to look at. `returning` is the job columns.
///
/// `CROSS JOIN` makes the bands the outer loop (SQLite never reorders it), which the order of
/// the claimed rows relies on. `NOT MATERIALIZED` keeps the bands a co-routine, run only as far
/// as the join pulls, so the walk stops at the band that fills the claim as on PostgreSQL:
/// SQLite 3.46 otherwise computes every band's start first, one index descent per band of the
/// queue on every claim (3.40 made it a co-routine unasked).
pub(super) fn sqlite_bands(returning: &str) -> String {
    sqlite_update(
        "WITH RECURSIVE bands(priority, run_at, id) AS NOT MATERIALIZED ( \
           SELECT priority, run_at, id FROM keel_jobs WHERE rowid = ( \
             SELECT rowid FROM keel_jobs \
             WHERE queue = +?4 AND state IN ('pending', 'retrying') AND priority >= +?7 \
             ORDER BY priority, run_at, id LIMIT 1) \
           UNION ALL \
           SELECT f.priority, f.run_at, f.id FROM bands b, keel_jobs f WHERE f.rowid = ( \
             SELECT rowid FROM keel_jobs \
             WHERE queue = +?4 AND state IN ('pending', 'retrying') AND priority > b.priority \
             ORDER BY priority, run_at, id LIMIT 1) \
         ) \
         SELECT j.rowid FROM bands b CROSS JOIN keel_jobs j \
         WHERE j.queue = +?4 AND j.state IN ('pending', 'retrying') AND j.priority = b.priority \
           AND (j.run_at, j.id) >= (b.run_at, b.id) AND j.run_at <= +?3 \
           AND NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = ?4) \
           AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN (?5, 'all')) \
         LIMIT ?6",
        returning,
    )
}

/// SQLite's claim of the rest of the cursor's band: parameters `?1` to `?6` as
/// [`sqlite_bands`], then the cursor as `?7` priority, `?8` run_at and `?9` id.
pub(super) fn sqlite_cursor_band(returning: &str) -> String {
    sqlite_update(
        "SELECT rowid FROM keel_jobs \
         WHERE queue = +?4 AND state IN ('pending', 'retrying') AND priority = +?7 \
           AND (run_at, id) > (+?8, ?9) AND run_at <= +?3 \
           AND NOT EXISTS (SELECT 1 FROM keel_queue_pauses WHERE queue = ?4) \
           AND NOT EXISTS (SELECT 1 FROM keel_cron_pauses WHERE task IN (?5, 'all')) \
         ORDER BY run_at, id LIMIT ?6",
        returning,
    )
}

/// The update that claims the rows `select` picks.
///
/// By rowid, which every entry of the claim index carries: by `id`, each claimed row cost one
/// more seek in the primary key's index on SQLite's single writer (+3–8% on a burn-down, issue
/// #19). One statement, so no rowid can change in between.
/// `+?4`, `+?3` and the like: once `ANALYZE` (or `PRAGMA optimize`) has left STAT4 samples, a
/// bare parameter compared with an indexed column makes SQLite re-plan the statement every
/// time it is bound, in case the value changes the best plan. The claim's plan is the claim
/// index whatever the values; re-planning it cost 8% of the single writer's CPU (issue #19).
/// SQLite does not estimate from a unary plus; the plan stays the same.
/// One statement outside any transaction: SQLite runs a lone statement as its own transaction,
/// taking the write lock as it starts (as `BEGIN IMMEDIATE` would) and undoing it whole if it
/// fails midway, without the `BEGIN` and `COMMIT` hops to the connection's thread. Plain
/// `UPDATE`: outside a transaction a failed `OR FAIL` statement would commit the rows it had
/// already changed. Nor is there a statement journal to skip: SQLite keeps none for a lone
/// statement.
fn sqlite_update(select: &str, returning: &str) -> String {
    format!(
        "UPDATE keel_jobs SET state = 'processing', attempt = attempt + 1, lease_seq = lease_seq + 1, \
             lease_expires_at = ?1, locked_by = ?2, started_at = ?3, updated_at = ?3 \
         WHERE rowid IN ({select}) \
         RETURNING {returning}"
    )
}
