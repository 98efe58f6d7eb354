//! Step 4, the queue's other half: the `note.process` job and the worker that runs it in this
//! process.

use crate::cache::NotesCache;
use crate::notes::Notes;
use keel_queue::{JobArgs, JobContext, JobError, QueueError, QueueSettings, Registry, Worker, WorkerSettings};
use serde::{Deserialize, Serialize};

/// The job enqueued with every note; its handler marks the note processed.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ProcessNote {
    /// The note's id in `host_notes`.
    pub note_id: i64,
}

impl JobArgs for ProcessNote {
    const KIND: &'static str = "note.process";
}

/// Handlers running at once. Each is one short UPDATE; two let a slow one not hold up the next
/// without crowding SQLite's single writer.
pub const WORKER_CONCURRENCY: u32 = 2;
/// Jobs claimed per round trip.
const CLAIM_BATCH: u32 = 10;

/// The worker for this service's jobs: the default queue only (keel-queue's default settings
/// also serve a `webhooks` queue, which this service does not use).
pub fn worker(notes: Notes, cache: NotesCache) -> Result<Worker, QueueError> {
    let queue = notes.queue();
    let mut registry = Registry::new();
    registry.register(move |job: ProcessNote, _ctx: JobContext| {
        let (notes, cache) = (notes.clone(), cache.clone());
        async move {
            // A database error converts into a retryable JobError: the job runs again later.
            if !notes.mark_processed(job.note_id).await? {
                // The job is committed with its note, so this means the note was deleted.
                return Err(JobError::permanent(format!("note {} does not exist", job.note_id)));
            }
            cache.invalidate().await;
            Ok(())
        }
    })?;
    let settings = WorkerSettings {
        queues: vec![QueueSettings::new(keel_queue::DEFAULT_QUEUE, "background_job", WORKER_CONCURRENCY, CLAIM_BATCH)],
        ..WorkerSettings::default()
    };
    Ok(Worker::new(queue, registry, settings))
}
