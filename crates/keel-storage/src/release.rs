//! The check every connection passes on its way back to the pool: one whose transaction state
//! is not known to be clean is closed, never handed to the next caller.
//!
//! sqlx counts transactions itself and trusts its count. When a statement fails inside a
//! transaction and the database ends the transaction on its own (SQLite does on SQLITE_FULL and
//! some I/O errors), sqlx's queued ROLLBACK then fails ("no transaction is active"), the count
//! stays at one, and every later `begin_with` on that connection fails with "attempted to call
//! begin_with at non-zero transaction depth": before this check, a full disk wedged SQLite
//! writes until a restart. The opposite mismatch (the database inside a transaction sqlx does
//! not know of, or a PostgreSQL transaction aborted by an error) would hold locks, refuse every
//! statement, or lend uncommitted work to the next caller. Any of these can follow an error
//! mid-transaction, a request future dropped by a time budget, or a panic, so the check does
//! not guess which happened: it asks.
//!
//! Closing is cheap (the pool opens a fresh connection on demand); reusing a connection in an
//! unknown state is what wedges or corrupts. The checks answer `false` (a graceful close) rather
//! than an error even when the connection fails them: sqlx's hard close after a hook error can
//! hang on a TLS connection and hold the pool slot.

use sqlx::postgres::PgConnection;
use sqlx::sqlite::SqliteConnection;
use sqlx::{raw_sql, Connection, Executor, Row};

/// The SQLite check: `Ok(true)` keeps the connection, `Ok(false)` closes it.
///
/// sqlx's SQLite worker runs commands in order, so `BEGIN` runs after any ROLLBACK that a
/// dropped `Transaction` queued. `BEGIN` fails exactly when the database is still inside a
/// transaction; after it, sqlx's own count must be back at zero.
pub(crate) async fn sqlite_clean(conn: &mut SqliteConnection) -> Result<bool, sqlx::Error> {
    if let Err(e) = conn.execute(raw_sql("BEGIN")).await {
        return Ok(close("sqlite", "the connection is still inside a transaction", &e));
    }
    // A deferred BEGIN takes no lock until the first read, so this pair costs two calls to the
    // connection's worker thread and no I/O.
    if let Err(e) = conn.execute(raw_sql("ROLLBACK")).await {
        return Ok(close("sqlite", "the check's own rollback failed", &e));
    }
    if conn.is_in_transaction() {
        tracing::warn!(
            backend = "sqlite",
            "closing a pooled connection: sqlx's transaction count disagrees with the database (a rollback failed)"
        );
        return Ok(false);
    }
    Ok(true)
}

/// The PostgreSQL check: `Ok(true)` keeps the connection, `Ok(false)` closes it.
///
/// sqlx sends what a dropped `Transaction` queued (its ROLLBACK) before this query and fails it
/// if that ROLLBACK failed. The query itself runs in the simple protocol, as one implicit
/// transaction when the session is idle, where PostgreSQL gives `now()` (the transaction's
/// start) exactly the statement's start time; inside an open transaction `now()` is the older
/// time of its `BEGIN`. In an aborted transaction the query fails. One round trip per release.
pub(crate) async fn postgres_clean(conn: &mut PgConnection) -> Result<bool, sqlx::Error> {
    let row = match conn.fetch_one(raw_sql("SELECT now() <> statement_timestamp()")).await {
        Ok(row) => row,
        Err(e) => return Ok(close("postgres", "the connection failed its release check", &e)),
    };
    let server_in_transaction: bool = row.try_get(0).unwrap_or(true);
    if server_in_transaction || conn.is_in_transaction() {
        tracing::warn!(
            backend = "postgres",
            server_in_transaction,
            "closing a pooled connection left inside a transaction"
        );
        return Ok(false);
    }
    Ok(true)
}

fn close(backend: &'static str, why: &'static str, e: &sqlx::Error) -> bool {
    tracing::warn!(backend, error = %e, "closing a pooled connection: {why}");
    false
}
