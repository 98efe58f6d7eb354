//! The database check: one probe query under a budget the server enforces too.

use crate::check::{Check, CheckError, CheckFuture, Criticality};
use futures::FutureExt;
#[cfg(feature = "sqlite")]
use sqlx::SqlitePool;
#[cfg(feature = "postgres")]
use sqlx::{Connection, PgPool};
use std::time::Duration;
#[cfg(feature = "postgres")]
use tokio::time::Instant;

/// The default probe: proves a connection can be had and the server answers a query.
pub const DEFAULT_PROBE: &str = "SELECT 1";

/// The pool a check probes; one variant per backend feature.
#[derive(Clone)]
enum Pool {
    #[cfg(feature = "postgres")]
    Postgres(PgPool),
    #[cfg(feature = "sqlite")]
    Sqlite(SqlitePool),
}

/// Error code Postgres uses when `statement_timeout` (or a cancel request) stops a query.
const PG_QUERY_CANCELED: &str = "57014";

/// The most a server-side timeout is set below the client's, so the server's own cancellation
/// (and its answer) arrives before the client gives up on the connection.
const MAX_SLACK: Duration = Duration::from_millis(200);

/// Checks the database by running one probe query.
///
/// Every step is bounded by the check's budget: getting a pool connection (a saturated pool, or
/// a server that is down or accepts connections but never answers, reads as `timeout`, never a
/// wait longer than the budget), and on Postgres the query itself,
/// which runs in a transaction under `SET LOCAL statement_timeout` a little below the remaining
/// budget. The server therefore cancels a hung probe (lock wait, overloaded server) on its own
/// and nothing is left running after the endpoint has answered; if the server does not answer
/// at all, the runner drops the check and the pool discards the connection. On SQLite the
/// probe is a plain query (there is no server to cancel; reads do not wait on writers in WAL).
pub struct DatabaseCheck {
    pool: Pool,
    name: String,
    probe: &'static str,
    criticality: Criticality,
    timeout: Option<Duration>,
}

impl DatabaseCheck {
    fn of(pool: Pool) -> Self {
        Self {
            pool,
            name: "database".to_owned(),
            probe: DEFAULT_PROBE,
            criticality: Criticality::Required,
            timeout: None,
        }
    }

    /// A required check named `database` running `SELECT 1` on a PostgreSQL pool.
    #[cfg(feature = "postgres")]
    pub fn postgres(pool: PgPool) -> Self {
        Self::of(Pool::Postgres(pool))
    }

    /// A required check named `database` running `SELECT 1` on a SQLite pool.
    #[cfg(feature = "sqlite")]
    pub fn sqlite(pool: SqlitePool) -> Self {
        Self::of(Pool::Sqlite(pool))
    }

    /// The key under `services` (default `database`), e.g. `replica` for a second check.
    pub fn with_name(mut self, name: impl Into<String>) -> Self {
        self.name = name.into();
        self
    }

    /// Another probe, e.g. a query on a real table so that lost grants or a dropped schema show
    /// up, not only a dead server. A `&'static str` on purpose: probes are code, not input.
    pub fn with_probe(mut self, sql: &'static str) -> Self {
        self.probe = sql;
        self
    }

    /// This check's own cap (the overall deadline still applies).
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = Some(timeout);
        self
    }

    /// Failure is reported but does not degrade the service (e.g. a replica).
    pub fn informational(mut self) -> Self {
        self.criticality = Criticality::Informational;
        self
    }
}

impl Check for DatabaseCheck {
    fn name(&self) -> &str {
        &self.name
    }
    fn criticality(&self) -> Criticality {
        self.criticality
    }
    fn timeout(&self) -> Option<Duration> {
        self.timeout
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        match &self.pool {
            #[cfg(feature = "postgres")]
            Pool::Postgres(pool) => probe_postgres(pool, self.probe, budget).boxed(),
            #[cfg(feature = "sqlite")]
            Pool::Sqlite(pool) => probe_sqlite(pool, self.probe, budget).boxed(),
        }
    }
}

/// The `statement_timeout` (and the bound on getting a connection) for a probe with `remaining` left: a tenth of it (at most
/// [`MAX_SLACK`]) below, in whole milliseconds. `None` when under a millisecond is left,
/// because `statement_timeout = 0` would mean no timeout at all.
pub(crate) fn server_timeout(remaining: Duration) -> Option<Duration> {
    let slack = (remaining / 10).min(MAX_SLACK);
    let ms = remaining.saturating_sub(slack).as_millis();
    (ms >= 1).then(|| Duration::from_millis(u64::try_from(ms).unwrap_or(u64::MAX)))
}

#[cfg(feature = "postgres")]
async fn probe_postgres(pool: &PgPool, probe: &'static str, budget: Duration) -> Result<(), CheckError> {
    let started = Instant::now();
    let mut conn = acquire(pool, budget).await?;
    let Some(server) = server_timeout(budget.saturating_sub(started.elapsed())) else {
        return Err(CheckError::timeout("the budget was spent getting a connection")
            .with_detail("no database connection in time"));
    };
    let mut tx = conn.begin().await.map_err(classify)?;
    sqlx::query("SELECT set_config('statement_timeout', $1, true)")
        .bind(format!("{}ms", server.as_millis()))
        .execute(&mut *tx)
        .await
        .map_err(classify)?;
    sqlx::query(probe).execute(&mut *tx).await.map_err(classify)?;
    // Read-only probe: rolling back is the cheapest way to end the transaction.
    tx.rollback().await.map_err(classify)
}

#[cfg(feature = "sqlite")]
async fn probe_sqlite(pool: &SqlitePool, probe: &'static str, budget: Duration) -> Result<(), CheckError> {
    let mut conn = acquire(pool, budget).await?;
    sqlx::query(probe).execute(&mut *conn).await.map(drop).map_err(classify)
}

/// Gets a pool connection, giving up a little before the budget ends so the verdict names the
/// step that hung rather than racing the runner's own cut-off.
async fn acquire<DB: sqlx::Database>(
    pool: &sqlx::Pool<DB>,
    budget: Duration,
) -> Result<sqlx::pool::PoolConnection<DB>, CheckError> {
    let bound = server_timeout(budget).unwrap_or(budget);
    match tokio::time::timeout(bound, pool.acquire()).await {
        Ok(conn) => conn.map_err(classify),
        // Either the pool is saturated or opening a connection hangs or keeps being refused
        // (sqlx retries refused connections until its deadline, taking them for a server
        // starting up).
        Err(_) => Err(CheckError::timeout(format!("no pool connection within {} ms", bound.as_millis()))
            .with_detail("no database connection in time")),
    }
}

/// Maps a driver error to a verdict; the driver's text goes to the internal cause only.
pub(crate) fn classify(e: sqlx::Error) -> CheckError {
    match &e {
        sqlx::Error::Database(db) if db.code().as_deref() == Some(PG_QUERY_CANCELED) => {
            CheckError::timeout(format!("the server cancelled the probe at statement_timeout: {db}"))
                .with_detail("database query timed out")
        }
        sqlx::Error::PoolTimedOut => CheckError::timeout(&e).with_detail("no database connection in time"),
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed => {
            CheckError::error(&e).with_detail("database unreachable")
        }
        sqlx::Error::Database(_) => CheckError::error(&e).with_detail("database rejected the probe"),
        _ => CheckError::error(&e).with_detail("database check failed"),
    }
}
