//! The SQL of the shared limiter: one GCRA step per statement, and the pruner.
//!
//! Parameters of the deciding statements: policy, key, now (Unix ns; NULL means the database
//! clock), `T` (emission interval, ns), `tau` (`T * (burst - 1)`, ns), and on Postgres the lock
//! budget (`'50ms'`). A new key is inserted admitted with `tat = now + T`; an existing one is
//! admitted iff `tat <= now + tau`, and then `tat = max(tat, now) + T`, else left as it was:
//! `gcra::step` exactly. `now` travels as `EXCLUDED.decided_ns` into the conflict branch, and
//! the row's `decided_ns`/`allowed` carry the answer back through RETURNING, so a rejection
//! needs no second query to learn its retry-after.

/// `set_config('lock_timeout', $6, true)` applies to this statement's own transaction
/// (autocommit), and is evaluated before the insert can wait on the row lock.
#[cfg(feature = "postgres")]
pub(super) const PG_DECIDE: &str = r#"
INSERT INTO keel_rate_limits AS r (policy, key, tat_ns, decided_ns, allowed)
SELECT $1, $2, n.ns + $4, n.ns, true
FROM (SELECT COALESCE($3::bigint, (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint) AS ns,
             set_config('lock_timeout', $6, true) AS lock_budget) AS n
WHERE n.lock_budget IS NOT NULL
ON CONFLICT (policy, key) DO UPDATE SET
    tat_ns = CASE WHEN r.tat_ns <= EXCLUDED.decided_ns + $5
                  THEN GREATEST(r.tat_ns, EXCLUDED.decided_ns) + $4
                  ELSE r.tat_ns END,
    decided_ns = EXCLUDED.decided_ns,
    allowed = r.tat_ns <= EXCLUDED.decided_ns + $5
RETURNING tat_ns, decided_ns, allowed
"#;

/// SQLite evaluates every SET expression against the old row, as Postgres does. The database
/// clock is `unixepoch('subsec')` (millisecond resolution; SQLite is single-host anyway). The
/// `WHERE true` resolves the parser ambiguity between `SELECT ... ON CONFLICT` and a join.
#[cfg(feature = "sqlite")]
pub(super) const SQLITE_DECIDE: &str = r#"
INSERT INTO keel_rate_limits (policy, key, tat_ns, decided_ns, allowed)
SELECT ?1, ?2, n.ns + ?4, n.ns, 1
FROM (SELECT COALESCE(?3, CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000) AS ns) AS n
WHERE true
ON CONFLICT (policy, key) DO UPDATE SET
    tat_ns = CASE WHEN tat_ns <= excluded.decided_ns + ?5
                  THEN max(tat_ns, excluded.decided_ns) + ?4
                  ELSE tat_ns END,
    decided_ns = excluded.decided_ns,
    allowed = (tat_ns <= excluded.decided_ns + ?5)
RETURNING tat_ns, decided_ns, allowed
"#;

/// One batch of idle rows. SKIP LOCKED: a row a decision holds is simply left for next time,
/// so pruning never makes a decision wait; FOR UPDATE re-checks `tat_ns` on the latest version,
/// so a row admitted a moment ago is not deleted.
#[cfg(feature = "postgres")]
pub(super) const PG_PRUNE: &str = r#"
DELETE FROM keel_rate_limits WHERE (policy, key) IN (
    SELECT policy, key FROM keel_rate_limits
    WHERE policy = $1
      AND tat_ns <= COALESCE($2::bigint, (extract(epoch FROM clock_timestamp()) * 1000000000)::bigint)
    LIMIT $3
    FOR UPDATE SKIP LOCKED)
"#;

#[cfg(feature = "sqlite")]
pub(super) const SQLITE_PRUNE: &str = r#"
DELETE FROM keel_rate_limits WHERE policy = ?1 AND key IN (
    SELECT key FROM keel_rate_limits
    WHERE policy = ?1
      AND tat_ns <= COALESCE(?2, CAST(unixepoch('subsec') * 1000 AS INTEGER) * 1000000)
    LIMIT ?3)
"#;

/// Forgets one key's state: its bucket is full again (an operator's unlock, or a success that
/// clears a failure count). Parameters: policy, key.
pub(super) const PG_CLEAR: &str = "DELETE FROM keel_rate_limits WHERE policy = $1 AND key = $2";

pub(super) const SQLITE_CLEAR: &str = "DELETE FROM keel_rate_limits WHERE policy = ?1 AND key = ?2";
