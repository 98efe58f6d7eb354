//! [`JobMetrics`]: the worker's per-job families, fed by keel-queue's [`JobObserver`] hook
//! (keel-queue itself knows no metrics crate): `keel_job_duration_seconds{queue,kind,outcome}`,
//! `keel_jobs_finished_total{queue,kind,outcome}` and `keel_job_start_lag_seconds{queue}`.

use keel_queue::{JobFinished, JobObserver, JobStarted};
use keel_telemetry::metrics::{CounterFamily, FamilyDesc, HistogramFamily, MetricsError};
use keel_telemetry::MetricsRegistry;
use std::sync::Arc;

/// Job run time boundaries, in seconds: 5 ms (a local write) to an hour (a large campaign
/// batch, the longest timeout a kind is given).
pub const JOB_DURATION_BUCKETS: [f64; 16] =
    [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// Start lag boundaries, in seconds: from "picked up at once" (a wakeup, 10 ms) through the
/// poll interval (1–5 s) to a backlog of an hour.
pub const JOB_START_LAG_BUCKETS: [f64; 14] =
    [0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0];

/// Most `(queue, kind, outcome)` label sets kept per family. Kinds are read from the database
/// (a job of an unknown kind is dead-lettered under its own name), so past this many new kinds
/// are counted as `kind="_other"`; queues come from configuration.
pub const MAX_JOB_SERIES: usize = 1_000;

/// The worker's job families; hand it to [`keel_queue::Worker::with_observer`].
#[derive(Debug, Clone)]
pub struct JobMetrics {
    duration: HistogramFamily,
    finished: CounterFamily,
    lag: HistogramFamily,
}

impl JobMetrics {
    /// Registers the three families in `registry`.
    pub fn register(registry: &MetricsRegistry) -> Result<Arc<JobMetrics>, MetricsError> {
        let labels = ["queue", "kind", "outcome"];
        let duration = registry.histogram(
            FamilyDesc::histogram(
                "keel_job_duration_seconds",
                "Job run time, from the handler's start to its return, by queue, kind and recorded outcome.",
                &labels,
            )?,
            &JOB_DURATION_BUCKETS,
            MAX_JOB_SERIES,
            "kind",
        )?;
        let finished = registry.counter(
            FamilyDesc::counter(
                "keel_jobs_finished_total",
                "Job runs whose outcome was recorded (completed, retried, failed, dead_lettered), by queue and kind.",
                &labels,
            )?,
            MAX_JOB_SERIES,
            "kind",
        )?;
        let lag = registry.histogram(
            FamilyDesc::histogram(
                "keel_job_start_lag_seconds",
                "Time from a job's run_at (when it became due) to its start, by queue.",
                &["queue"],
            )?,
            &JOB_START_LAG_BUCKETS,
            MAX_JOB_SERIES,
            "queue",
        )?;
        Ok(Arc::new(JobMetrics { duration, finished, lag }))
    }
}

impl JobObserver for JobMetrics {
    fn started(&self, job: &JobStarted<'_>) {
        // The label count is fixed above; observe cannot fail.
        let _ = self.lag.observe(&[job.queue], job.lag.as_secs_f64());
    }

    fn finished(&self, job: &JobFinished<'_>) {
        let labels = [job.queue, job.kind, job.outcome.as_str()];
        let _ = self.duration.observe(&labels, job.duration.as_secs_f64());
        let _ = self.finished.inc(&labels);
    }
}
