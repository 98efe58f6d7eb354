//! Opening a pool from a [`DatabaseTarget`], with the settings each backend needs.

use crate::release::{postgres_clean, sqlite_clean};
use crate::{Db, Schema, StorageError};
use keel_config::{DatabaseTarget, PoolSettings};
use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode, SqlitePoolOptions, SqliteSynchronous};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

/// Postgres pool size per process unless `KEEL_DB_MAX_CONNECTIONS` says otherwise. Several api
/// and worker processes share one server, whose default `max_connections` is 100; 10 each
/// leaves room for operators and a handful of nodes.
pub const PG_MAX_CONNECTIONS: u32 = 10;

/// SQLite pool size unless `KEEL_DB_MAX_CONNECTIONS` says otherwise: readers run in parallel
/// under WAL, writers take turns (one writer at a time is SQLite's rule), so a few connections
/// are enough.
pub const SQLITE_MAX_CONNECTIONS: u32 = 4;

/// The most connections a SQLite pool opens whatever `KEEL_DB_MAX_CONNECTIONS` says: with one
/// writer at a time, more connections only add writers queued on the file lock (each holding
/// a page cache), not throughput.
pub const SQLITE_MAX_CONNECTIONS_CAP: u32 = 16;

/// How long a writer waits for SQLite's lock before giving up with SQLITE_BUSY.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Rows a SQLite connection's thread may hand over before the caller has read them. sqlx's
/// default of 50 stopped the thread (and so the database's single writer) mid-statement on
/// every larger result, a thread switch each time it refilled: a worker's claim returns up to
/// its batch (128 in a tuned worker) and a finish up to 1,000 rows (issue #19). 1,024 covers
/// both; the cost is memory for that many rows while a slow reader catches up.
pub const SQLITE_ROW_BUFFER: usize = 1024;

/// Bound on getting a connection from the pool unless `KEEL_DB_ACQUIRE_TIMEOUT` says
/// otherwise, so a saturated pool yields an error instead of a hung request.
pub const ACQUIRE_TIMEOUT: Duration = keel_config::DEFAULT_ACQUIRE_TIMEOUT;

/// A pooled PostgreSQL connection idle at least this long is pinged before it is lent; one
/// used more recently is lent as it is. sqlx pings on every acquire by default: a round trip
/// in front of every enqueue and request, about 50 µs of an idle worker's 1.25 ms
/// enqueue-to-start on the benchmark machine (issue #19). A connection that answered a moment
/// ago is very likely alive (HikariCP skips its check within 500 ms for the same reason); one
/// that dropped in that moment fails its next statement, which the caller sees as any
/// transient database error, and the release check then closes it.
pub const PING_AFTER_IDLE: Duration = Duration::from_secs(1);

/// How long an idle Postgres connection is kept before it is closed.
const PG_IDLE_TIMEOUT: Duration = Duration::from_secs(300);

/// When a pool opens its first connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ConnectMode {
    /// Open a connection now and fail if the database cannot be reached.
    Eager,
    /// Return a pool at once; connections are opened on first use. For booting degraded
    /// (`KEEL_AUTO_MIGRATE=false` with the database down) and recovering without a restart.
    Lazy,
}

/// How a pool is sized, and the limits the database server enforces on each of its
/// connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionLimits {
    /// `statement_timeout` for every statement on the pool's connections (PostgreSQL only: an
    /// embedded SQLite has no server that could keep working after the caller gave up). A
    /// caller with its own time budget (keel-api's per-request budget) sets it a little above
    /// that budget, so a statement whose request was already answered 503 does not go on
    /// waiting on a lock and holding a pooled connection. Migrations never run under it (see
    /// [`open_limited`]).
    pub statement_timeout: Option<Duration>,
    /// Pool size and acquire timeout (`KEEL_DB_*`); the default leaves each backend its own.
    pub pool: PoolSettings,
}

/// Keel's PostgreSQL pool options for `pool`: its size and acquire timeout, and the release
/// check that closes any connection returned inside a transaction (see the `release` module).
pub fn postgres_pool_options(pool: &PoolSettings) -> PgPoolOptions {
    let max = pool.max_or(PG_MAX_CONNECTIONS);
    PgPoolOptions::new()
        .max_connections(max)
        .min_connections(pool.min_connections.min(max))
        .acquire_timeout(pool.acquire_timeout)
        .idle_timeout(Some(PG_IDLE_TIMEOUT))
        .test_before_acquire(false)
        .before_acquire(|conn, meta| Box::pin(ping_if_idle(conn, meta)))
        .after_release(|conn, _meta| Box::pin(postgres_clean(conn)))
}

/// Keel's SQLite pool options for `pool`: its size (at most [`SQLITE_MAX_CONNECTIONS_CAP`]),
/// acquire timeout, and the same release check as [`postgres_pool_options`].
pub fn sqlite_pool_options(pool: &PoolSettings) -> SqlitePoolOptions {
    let max = pool.max_or(SQLITE_MAX_CONNECTIONS).min(SQLITE_MAX_CONNECTIONS_CAP);
    SqlitePoolOptions::new()
        .max_connections(max)
        .min_connections(pool.min_connections.min(max))
        .acquire_timeout(pool.acquire_timeout)
        // An embedded connection has no network to lose: sqlx's ping would only be one more
        // hop to the connection's thread on every acquire.
        .test_before_acquire(false)
        .after_release(|conn, _meta| Box::pin(sqlite_clean(conn)))
}

/// Keel's per-connection SQLite settings for the database file at `path`.
pub fn sqlite_connect_options(path: &Path) -> SqliteConnectOptions {
    SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        // NORMAL under WAL survives a process crash; only an OS crash or power loss can
        // drop the last commits. FULL would double the fsyncs of every job completion.
        .synchronous(SqliteSynchronous::Normal)
        .busy_timeout(SQLITE_BUSY_TIMEOUT)
        .foreign_keys(true)
        .row_buffer_size(SQLITE_ROW_BUFFER)
}

/// The check before a pooled PostgreSQL connection is lent (see [`PING_AFTER_IDLE`]): `false`
/// (closed gracefully, as the release check does) when a long-idle connection fails its ping.
async fn ping_if_idle(
    conn: &mut sqlx::PgConnection,
    meta: sqlx::pool::PoolConnectionMetadata,
) -> Result<bool, sqlx::Error> {
    if meta.idle_for < PING_AFTER_IDLE {
        return Ok(true);
    }
    Ok(sqlx::Connection::ping(conn).await.is_ok())
}

/// Opens a pool for `target` with no session limits.
pub async fn connect(target: &DatabaseTarget, mode: ConnectMode) -> Result<Db, StorageError> {
    connect_limited(target, mode, SessionLimits::default()).await
}

/// [`connect`] with [`SessionLimits`] on every connection.
pub async fn connect_limited(
    target: &DatabaseTarget,
    mode: ConnectMode,
    limits: SessionLimits,
) -> Result<Db, StorageError> {
    match target {
        DatabaseTarget::Postgres { url } => {
            let mut opts = PgConnectOptions::from_str(url.expose())
                .map_err(|e| StorageError::InvalidUrl(redact_sqlx(&e.to_string(), url.expose())))?
                .application_name("keel");
            if let Some(t) = limits.statement_timeout {
                // Sent in the startup packet, so it holds from the connection's first statement.
                opts = opts.options([("statement_timeout", format!("{}ms", t.as_millis().max(1)))]);
            }
            let pool = postgres_pool_options(&limits.pool);
            let pool = match mode {
                ConnectMode::Lazy => pool.connect_lazy_with(opts),
                ConnectMode::Eager => pool.connect_with(opts).await.map_err(|e| StorageError::Unreachable {
                    target: target.to_string(),
                    cause: redact_sqlx(&e.to_string(), url.expose()),
                })?,
            };
            Ok(Db::Postgres(pool))
        }
        DatabaseTarget::Sqlite { path } => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .map_err(|e| StorageError::DataDir { path: path.display().to_string(), cause: e.to_string() })?;
            }
            let pool = sqlite_pool_options(&limits.pool)
                .connect_with(sqlite_connect_options(path))
                .await
                .map_err(|e| StorageError::DataDir { path: path.display().to_string(), cause: e.to_string() })?;
            Ok(Db::Sqlite(pool))
        }
    }
}

/// sqlx error texts can quote the connection string; make sure the password never leaves.
fn redact_sqlx(msg: &str, url: &str) -> String {
    let mut out =
        msg.replace(url, &keel_config::DatabaseTarget::Postgres { url: keel_config::Secret::new(url) }.to_string());
    if let Some(pw) = password_of(url) {
        if !pw.is_empty() {
            out = out.replace(pw, "***");
        }
    }
    out
}

fn password_of(url: &str) -> Option<&str> {
    let rest = url.split_once("://")?.1;
    let auth = rest.split(['/', '?']).next()?;
    let creds = auth.rsplit_once('@')?.0;
    Some(creds.split_once(':')?.1)
}

/// Startup as the binaries do it: with `auto_migrate`, connect now and install or upgrade each
/// of `schemas` in order (any failure is fatal and named); without it, return a lazy pool so the process
/// boots even while the database is down and reports itself degraded until it answers.
pub async fn open(target: &DatabaseTarget, auto_migrate: bool, schemas: &[&Schema]) -> Result<Db, StorageError> {
    open_limited(target, auto_migrate, schemas, SessionLimits::default()).await
}

/// [`open`], serving with [`SessionLimits`]. Migrations run first on a pool without them (an
/// index build on a large table may rightly take minutes), which is closed before the limited
/// pool is returned.
pub async fn open_limited(
    target: &DatabaseTarget,
    auto_migrate: bool,
    schemas: &[&Schema],
    limits: SessionLimits,
) -> Result<Db, StorageError> {
    if !auto_migrate {
        return connect_limited(target, ConnectMode::Lazy, limits).await;
    }
    let unlimited = SessionLimits { statement_timeout: None, ..limits };
    let db = connect_limited(target, ConnectMode::Eager, unlimited).await?;
    crate::migrate_all(&db, schemas).await?;
    if limits.statement_timeout.is_none() || !matches!(target, DatabaseTarget::Postgres { .. }) {
        return Ok(db);
    }
    db.close().await;
    connect_limited(target, ConnectMode::Eager, limits).await
}
