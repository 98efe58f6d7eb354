//! Worker settings from the environment: which queues, how many jobs at once, lease and
//! polling timing. Sizing variables keep the seeds' names and conservative defaults.

use crate::names::{check_name, env_name};
use crate::QueueError;
use keel_config::{Problems, Reader, Source};
use std::time::Duration;

/// One claim loop: a queue, the task name its switches and pauses answer to, and its size.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QueueSettings {
    /// The queue served.
    pub queue: String,
    /// `background_job` for the default queue, `webhook_delivery` for `webhooks`, else the
    /// queue's own name.
    pub task: String,
    /// Handlers running at once.
    pub concurrency: u32,
    /// Most jobs claimed per round trip. A loop claims again when its local queue of claimed,
    /// not yet started jobs is down to half of this, and never more than the room left in
    /// hand (`concurrency + 2 × batch_size + 1,024` jobs claimed and not yet durably finished).
    pub batch_size: u32,
}

/// The claim batch when `<TASK>_CRON_BATCH_SIZE` is unset: it follows the concurrency, so a
/// user who raises only the concurrency gets most of the throughput, and never drops under
/// the seeds' default (`floor`: 5, or 10 for webhooks) at low concurrency.
pub fn batch_for_concurrency(concurrency: u32, floor: u32) -> u32 {
    concurrency.max(floor)
}

/// The shortest lease a worker accepts: its heartbeats run every third of it, and a lease
/// shorter than a few database round trips would be lost between two of them.
pub const MIN_LEASE: Duration = Duration::from_millis(300);

impl QueueSettings {
    /// A loop for `queue`, answering to `task`; concurrency and batch size are at least 1.
    pub fn new(queue: &str, task: &str, concurrency: u32, batch_size: u32) -> Self {
        Self {
            queue: queue.to_owned(),
            task: task.to_owned(),
            concurrency: concurrency.max(1),
            batch_size: batch_size.max(1),
        }
    }
}

/// How a [`crate::Worker`] runs: its queues, timing and limits. `Default` serves `default` and
/// `webhooks`; [`WorkerSettings::from_source`] reads the environment.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkerSettings {
    /// Shown as `locked_by` on claimed jobs and `worker` on cron runs.
    pub worker_id: String,
    /// One claim loop per entry.
    pub queues: Vec<QueueSettings>,
    /// How long a claim holds a job without a heartbeat; heartbeats run every third of it.
    /// Also how long a crashed worker's jobs wait before rescue.
    pub lease: Duration,
    /// Fallback polling when no wakeup arrives. `None`: 1 s on Postgres (LISTEN/NOTIFY does
    /// the fast path), 200 ms on SQLite (a separate worker process has no other signal).
    pub poll_interval: Option<Duration>,
    /// How often this worker looks for expired leases.
    pub rescue_interval: Duration,
    /// On shutdown, how long in-flight jobs may run before their leases are released.
    pub shutdown_grace: Duration,
    /// Completed and cancelled jobs older than this are pruned by the `job_retention` task.
    pub retention: Duration,
    /// Execution-log rows older than this are pruned too.
    pub run_log_retention: Duration,
    /// A stored payload above this is dead-lettered instead of run.
    pub max_payload_bytes: usize,
    /// How often scheduled tasks are checked.
    pub cron_tick: Duration,
}

impl Default for WorkerSettings {
    fn default() -> Self {
        Self {
            worker_id: default_worker_id(),
            queues: vec![
                QueueSettings::new(crate::DEFAULT_QUEUE, "background_job", 1, 5),
                QueueSettings::new("webhooks", "webhook_delivery", 1, 10),
            ],
            lease: Duration::from_secs(30),
            poll_interval: None,
            rescue_interval: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(30),
            retention: Duration::from_secs(7 * 86_400),
            run_log_retention: Duration::from_secs(30 * 86_400),
            max_payload_bytes: crate::DEFAULT_MAX_PAYLOAD_BYTES,
            cron_tick: Duration::from_secs(1),
        }
    }
}

/// `host-pid-xxxx`: unique per process, readable in `queue show`.
pub fn default_worker_id() -> String {
    let host = std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "worker".into());
    format!("{host}-{}-{:04x}", std::process::id(), rand::random::<u16>())
}

impl WorkerSettings {
    /// Refuses what a worker cannot run with. The fields are public, so settings built as a
    /// struct literal skip [`QueueSettings::new`]'s floors: a batch of 0 would make no claim
    /// (and underflow), a concurrency of 0 would run nothing it claimed, and a lease of 0
    /// would heartbeat in a busy loop.
    pub fn check(&self) -> Result<(), QueueError> {
        for q in &self.queues {
            if q.concurrency == 0 {
                return Err(QueueError::invalid(
                    "concurrency",
                    format!("queue {:?} has concurrency 0; set at least 1 (<TASK>_CRON_CONCURRENCY)", q.queue),
                ));
            }
            if q.batch_size == 0 {
                return Err(QueueError::invalid(
                    "batch size",
                    format!("queue {:?} has batch size 0; set at least 1 (<TASK>_CRON_BATCH_SIZE)", q.queue),
                ));
            }
        }
        if self.lease < MIN_LEASE {
            return Err(QueueError::invalid(
                "lease",
                format!("{:?} is shorter than {MIN_LEASE:?}; heartbeats run every third of it", self.lease),
            ));
        }
        Ok(())
    }

    /// Reads `KEEL_WORKER_QUEUES` (default `default,webhooks`), per-queue sizing
    /// (`BACKGROUND_JOB_CRON_CONCURRENCY`=1, `BACKGROUND_JOB_CRON_BATCH_SIZE`: unset, the
    /// concurrency but at least 5 (see [`batch_for_concurrency`]), set, the cap;
    /// `WEBHOOK_DELIVERY_CRON_CONCURRENCY`=1, `WEBHOOK_DELIVERY_CRON_BATCH_SIZE` likewise with
    /// at least 10; `<TASK>_CRON_BATCH_SIZE` / `<TASK>_CRON_CONCURRENCY` for other queues), and
    /// `KEEL_WORKER_ID`, `KEEL_JOB_LEASE` (30s), `KEEL_WORKER_POLL_INTERVAL`,
    /// `KEEL_JOB_RESCUE_INTERVAL` (5s), `KEEL_WORKER_SHUTDOWN_GRACE` (30s),
    /// `KEEL_JOB_RETENTION` (7d), `KEEL_CRON_RUN_RETENTION` (30d),
    /// `KEEL_JOB_MAX_PAYLOAD_BYTES` (262144). Every problem is reported at once.
    pub fn from_source(source: &dyn Source) -> Result<Self, Problems> {
        let d = Self::default();
        let mut r = Reader::new(source);
        let names = r.string("KEEL_WORKER_QUEUES", "default,webhooks");
        let mut queues = Vec::new();
        for q in names.split(',').map(str::trim).filter(|q| !q.is_empty()) {
            if let Err(e) = check_name("queue name", q) {
                r.problem("KEEL_WORKER_QUEUES", e.to_string());
                continue;
            }
            let task = match q {
                crate::DEFAULT_QUEUE => "background_job".to_owned(),
                "webhooks" => "webhook_delivery".to_owned(),
                other => other.to_owned(),
            };
            let floor = if task == "webhook_delivery" { 10 } else { 5 };
            let prefix = env_name(&task);
            let conc = r.int_in(&format!("{prefix}_CRON_CONCURRENCY"), 1, 1, 1_024) as u32;
            // Unset: follows the concurrency. Set: the cap, whatever the concurrency.
            let batch_var = format!("{prefix}_CRON_BATCH_SIZE");
            let batch = match r.raw(&batch_var) {
                Some(_) => r.int_in(&batch_var, u64::from(floor), 1, 10_000) as u32,
                None => batch_for_concurrency(conc, floor),
            };
            queues.push(QueueSettings::new(q, &task, conc, batch));
        }
        if queues.is_empty() {
            r.problem("KEEL_WORKER_QUEUES", "names no queue; list at least one, like default,webhooks");
        }
        let lease = r.duration("KEEL_JOB_LEASE", d.lease);
        if lease < Duration::from_secs(1) {
            r.problem("KEEL_JOB_LEASE", "must be at least 1s: heartbeats run every third of it");
        }
        let s = Self {
            worker_id: r.string("KEEL_WORKER_ID", &d.worker_id),
            queues,
            lease,
            poll_interval: r
                .raw("KEEL_WORKER_POLL_INTERVAL")
                .map(|_| r.duration("KEEL_WORKER_POLL_INTERVAL", Duration::from_secs(1))),
            rescue_interval: r.duration("KEEL_JOB_RESCUE_INTERVAL", d.rescue_interval),
            shutdown_grace: r.duration("KEEL_WORKER_SHUTDOWN_GRACE", d.shutdown_grace),
            retention: r.duration("KEEL_JOB_RETENTION", d.retention),
            run_log_retention: r.duration("KEEL_CRON_RUN_RETENTION", d.run_log_retention),
            max_payload_bytes: r.int_in("KEEL_JOB_MAX_PAYLOAD_BYTES", d.max_payload_bytes as u64, 1024, 64 << 20)
                as usize,
            cron_tick: d.cron_tick,
        };
        r.finish()?;
        Ok(s)
    }

    pub(crate) fn poll_for(&self, backend: keel_storage::Backend) -> Duration {
        self.poll_interval.unwrap_or(match backend {
            keel_storage::Backend::Postgres => Duration::from_secs(1),
            keel_storage::Backend::Sqlite => Duration::from_millis(200),
        })
    }

    pub(crate) fn heartbeat_every(&self) -> Duration {
        (self.lease / 3).max(Duration::from_millis(100))
    }
}
