//! The connection snapshot: client backends by state, lock waits, and headroom against
//! `max_connections` minus the reserved slots.

use crate::TelemetryError;
use serde::Serialize;
use sqlx::{self, PgConnection};

/// Client connections of a PostgreSQL server at one instant, and the headroom left.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConnectionSnapshot {
    /// Client backends (`backend_type = 'client backend'`), including the report's own.
    pub total: i64,
    /// Running a statement now.
    pub active: i64,
    /// Connected, not in a transaction (pooled connections at rest).
    pub idle: i64,
    /// `idle in transaction` and `idle in transaction (aborted)`.
    pub idle_in_transaction: i64,
    /// Waiting on a heavyweight lock (`wait_event_type = 'Lock'`); other wait types
    /// (`ClientRead`, `IO`, `LWLock`) are normal work or idleness, not lock waits.
    pub waiting_on_locks: i64,
    /// Sessions whose state this role may not see (NULL without `pg_read_all_stats`).
    pub state_hidden: i64,
    /// The server's `max_connections`.
    pub max_connections: i64,
    /// The server's `superuser_reserved_connections`.
    pub superuser_reserved_connections: i64,
    /// `reserved_connections` (PostgreSQL 16+); `None` before.
    pub reserved_connections: Option<i64>,
    /// Slots ordinary roles can use: max_connections minus both reservations.
    pub usable: i64,
    /// `usable - total`; negative when superusers are using reserved slots.
    pub headroom: i64,
    /// `headroom / usable` in percent, one decimal.
    pub headroom_pct: f64,
    /// Set when the reporting role cannot see other roles' state (no `pg_read_all_stats`),
    /// with the grant that fixes it.
    pub warning: Option<String>,
}

/// The report's connection section: a snapshot, or why there is none.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ConnectionsSection {
    /// The snapshot, taken on PostgreSQL.
    Snapshot(ConnectionSnapshot),
    /// SQLite has no server connections to count.
    PostgresOnly {
        /// The explanation shown in the report.
        note: String,
    },
}

/// One statement, so every count comes from the same `pg_stat_activity` snapshot; inside a
/// transaction, PostgreSQL keeps that snapshot until the transaction ends, so a caller can
/// compare with its own count in the same transaction.
const SNAPSHOT_SQL: &str = "\
SELECT count(*),
       count(*) FILTER (WHERE state = 'active'),
       count(*) FILTER (WHERE state = 'idle'),
       count(*) FILTER (WHERE state IN ('idle in transaction', 'idle in transaction (aborted)')),
       count(*) FILTER (WHERE wait_event_type = 'Lock'),
       count(*) FILTER (WHERE state IS NULL),
       current_setting('max_connections')::int8,
       current_setting('superuser_reserved_connections')::int8,
       current_setting('reserved_connections', true)::int8,
       (SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'USAGE')
          FROM pg_roles WHERE rolname = current_user)
FROM pg_stat_activity
WHERE backend_type = 'client backend'";

type SnapshotRow = (i64, i64, i64, i64, i64, i64, i64, i64, Option<i64>, bool);

/// Takes the snapshot on `conn` (run it inside the caller's transaction to compare counts).
pub async fn connection_snapshot(conn: &mut PgConnection) -> Result<ConnectionSnapshot, TelemetryError> {
    let (total, active, idle, idle_in_transaction, waiting_on_locks, state_hidden, max, su_reserved, reserved, full): SnapshotRow =
        sqlx::query_as(SNAPSHOT_SQL)
            .fetch_one(conn)
            .await
            .map_err(TelemetryError::db("connection snapshot"))?;
    let usable = max - su_reserved - reserved.unwrap_or(0);
    let headroom = usable - total;
    let headroom_pct = if usable > 0 { (headroom as f64 * 1000.0 / usable as f64).round() / 10.0 } else { 0.0 };
    let warning = (!full).then(|| {
        format!(
            "The reporting role lacks pg_read_all_stats: {state_hidden} session(s) of other roles show no state, so the counts by state are incomplete. GRANT pg_read_all_stats TO <role>;"
        )
    });
    Ok(ConnectionSnapshot {
        total,
        active,
        idle,
        idle_in_transaction,
        waiting_on_locks,
        state_hidden,
        max_connections: max,
        superuser_reserved_connections: su_reserved,
        reserved_connections: reserved,
        usable,
        headroom,
        headroom_pct,
        warning,
    })
}
