//! Runs checks and sections concurrently, each on its own task under its own carved timeout.

use crate::check::{Check, CheckError, CheckOutcome, CheckStatus};
use crate::section::{Section, SectionOutput};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinHandle;
use tokio::time::Instant;

/// A check's budget: its own cap if it has one, never more than the overall deadline.
pub(crate) fn budget(own: Option<Duration>, deadline: Duration) -> Duration {
    own.map_or(deadline, |t| t.min(deadline))
}

/// Aborts the task when dropped, so cancelling a run cancels every check it started.
struct AbortOnDrop<T>(JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Runs `work` on its own task for at most `budget`. A task of its own means a check that
/// blocks its thread cannot stall the others or the answer (on a multi-threaded runtime), and a
/// panic becomes an error instead of taking the run down. On timeout the task is aborted,
/// which drops the check's future at its next await.
async fn bounded<T, Fut>(budget: Duration, work: Fut) -> (Result<T, CheckError>, Duration)
where
    T: Send + 'static,
    Fut: Future<Output = Result<T, CheckError>> + Send + 'static,
{
    let started = Instant::now();
    let mut task = AbortOnDrop(tokio::spawn(work));
    let result = match tokio::time::timeout(budget, &mut task.0).await {
        Ok(Ok(result)) => result,
        Ok(Err(join)) if join.is_panic() => Err(CheckError::error("the check panicked")),
        Ok(Err(join)) => Err(CheckError::error(format!("the check's task stopped: {join}"))),
        Err(_) => Err(CheckError::timeout(format!("no answer within {} ms; cancelled", budget.as_millis()))),
    };
    (result, started.elapsed())
}

pub(crate) async fn run_check(check: Arc<dyn Check>, deadline: Duration) -> CheckOutcome {
    let budget = budget(check.timeout(), deadline);
    let name = check.name().to_owned();
    let criticality = check.criticality();
    // Each check is a probe with its own budget (a database round trip, a queue snapshot): its
    // own span, so a slow health answer shows which check took the time.
    let span = tracing::info_span!("health.check", health.check = %name, otel.status_code = tracing::field::Empty);
    let probe = bounded(budget, async move { check.check(budget).await });
    let (result, elapsed) = tracing::Instrument::instrument(probe, span.clone()).await;
    if result.is_err() {
        span.record("otel.status_code", "error");
    }
    let (status, detail, cause) = match result {
        Ok(()) => (CheckStatus::Ok, None, None),
        Err(e) => (e.status(), e.detail(), Some(e.cause().to_owned())),
    };
    CheckOutcome { name, criticality, status, detail, cause, elapsed }
}

pub(crate) async fn run_checks(checks: &[Arc<dyn Check>], deadline: Duration) -> Vec<CheckOutcome> {
    futures::future::join_all(checks.iter().map(|c| run_check(Arc::clone(c), deadline))).await
}

pub(crate) async fn run_section(section: Arc<dyn Section>, deadline: Duration) -> SectionOutput {
    let budget = budget(section.timeout(), deadline);
    let name = section.name().to_owned();
    let (result, elapsed) = bounded(budget, async move { section.collect(budget).await }).await;
    SectionOutput::from_result(name, result, elapsed)
}

pub(crate) async fn run_sections(sections: &[Arc<dyn Section>], deadline: Duration) -> Vec<SectionOutput> {
    futures::future::join_all(sections.iter().map(|s| run_section(Arc::clone(s), deadline))).await
}
