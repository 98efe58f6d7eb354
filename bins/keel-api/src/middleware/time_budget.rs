//! The per-request time budget of the database-backed surfaces (`/api/admin/*`, `/api/auth/*`):
//! past `KEEL_REQUEST_TIMEOUT` the client gets 503 with `Retry-After` and a message to retry,
//! never a hung request.
//!
//! The pool's acquire timeout only bounds the wait for a connection; a statement already running
//! on one (a lock wait, a stalled server) has no bound of its own, so the budget sits around the
//! whole handler, session lookup included. Running out drops the inner future, which abandons
//! its work: a `Transaction` dropped before commit is rolled back (sqlx queues the ROLLBACK), so
//! every write is all or nothing. A write whose COMMIT was already sent may still land; clients
//! retry writes with the same `Idempotency-Key`. On PostgreSQL the abandoned statement itself
//! would run on in the server, holding its pooled connection, so `run` opens keel-api's pool
//! with `statement_timeout` = this budget + `STATEMENT_MARGIN` and the server cancels it.

use crate::{ApiError, AppState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

/// `Retry-After` on a request that ran out of time: long enough for a lock holder or a stalled
/// server to move on, short enough that a person retrying is not left waiting.
pub(crate) const RETRY_AFTER_S: u64 = 5;

pub(crate) async fn time_budget(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let budget = state.config.request_timeout;
    match tokio::time::timeout(budget, next.run(req)).await {
        Ok(res) => res,
        Err(_) => {
            tracing::warn!(budget_ms = budget.as_millis() as u64, "request ran out of time; its work was abandoned");
            ApiError::unavailable(
                "the server is taking too long to answer right now; please try again in a moment",
                RETRY_AFTER_S,
            )
            .into_response()
        }
    }
}
