//! Refused writes show in health: while the database refuses writes for lack of space (or a
//! failing disk), `SELECT 1` still answers, so the plain probe alone would report `ok` while
//! every write fails. A refused write marks its response ([`WriteRefused`]); the
//! [`note_refused_writes`] middleware records it, and the database check ([`WriteAwareCheck`])
//! reports `error` for [`REFUSED_WRITE_WINDOW`] after the last one.
//!
//! A window rather than a probe write: on SQLite a small probe row fits in a page the table
//! already has, so it can succeed while every real write fails, and a probe big enough to
//! allocate would itself fill what little space is left.

use crate::AppState;
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use keel_health::{Check, CheckError, CheckFuture, Criticality, DatabaseCheck};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::time::Instant;

/// How long after the last refused write readiness stays `degraded`. Longer than the usual
/// readiness period (Kubernetes' default is 10 s) so a probe sees it; short enough that once
/// space returns (writes succeed at once) the instance is back in rotation within seconds.
/// While the disk stays full, the next refused write starts the window again.
pub const REFUSED_WRITE_WINDOW: Duration = Duration::from_secs(15);

/// Marks a response whose write the database refused (see `ApiError`'s storage mapping).
#[derive(Debug, Clone, Copy)]
pub(crate) struct WriteRefused;

/// When the database last refused a write, shared by the middleware and the health check.
#[derive(Debug, Default)]
pub struct WriteHealth {
    last_refused: Mutex<Option<Instant>>,
}

impl WriteHealth {
    /// Records a refused write now.
    pub fn note_refused(&self) {
        *self.last_refused.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
    }

    /// True while the last refused write is less than [`REFUSED_WRITE_WINDOW`] old.
    pub fn refused_recently(&self) -> bool {
        self.last_refused
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .is_some_and(|at| at.elapsed() < REFUSED_WRITE_WINDOW)
    }
}

/// Records every response marked [`WriteRefused`] in the state's [`WriteHealth`].
pub(crate) async fn note_refused_writes(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    if res.extensions().get::<WriteRefused>().is_some() {
        state.write_health.note_refused();
    }
    res
}

/// The `database` check: the plain probe, and `error` while writes are being refused.
pub(crate) struct WriteAwareCheck {
    probe: DatabaseCheck,
    writes: Arc<WriteHealth>,
}

impl WriteAwareCheck {
    pub(crate) fn new(probe: DatabaseCheck, writes: Arc<WriteHealth>) -> Self {
        Self { probe, writes }
    }
}

impl Check for WriteAwareCheck {
    fn name(&self) -> &str {
        self.probe.name()
    }
    fn criticality(&self) -> Criticality {
        self.probe.criticality()
    }
    fn timeout(&self) -> Option<Duration> {
        self.probe.timeout()
    }
    fn check(&self, budget: Duration) -> CheckFuture<'_> {
        if self.writes.refused_recently() {
            return Box::pin(async {
                Err(CheckError::error("the database refused a write in the last seconds (disk full or failing)")
                    .with_detail("database is refusing writes (disk full?)"))
            });
        }
        self.probe.check(budget)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_refused_write_degrades_for_the_window_then_clears() {
        let w = WriteHealth::default();
        assert!(!w.refused_recently());
        w.note_refused();
        assert!(w.refused_recently());
        tokio::time::advance(REFUSED_WRITE_WINDOW - Duration::from_millis(1)).await;
        assert!(w.refused_recently());
        w.note_refused();
        tokio::time::advance(REFUSED_WRITE_WINDOW - Duration::from_millis(1)).await;
        assert!(w.refused_recently(), "a new refusal starts the window again");
        tokio::time::advance(Duration::from_millis(1)).await;
        assert!(!w.refused_recently());
    }
}
