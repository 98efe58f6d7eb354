//! `keel-ops queue …` and `keel-ops cron …`: the operator's view of the job queue and the
//! scheduled work. Names and JSON fields are a contract: runbooks depend on them. Sealed job
//! arguments show as `[sealed]` (the CLI holds no key to open them and never prints
//! ciphertext), and email addresses are masked everywhere.

use crate::exit;
use crate::output::{print_json, OpsError};
use crate::table;
use clap::Subcommand;
use keel_config::{Settings, Source};
use keel_queue::ops_json;
use keel_queue::store::RunFilter;
use keel_queue::{JobFilter, JobId, JobState, KeySettings, NewJob, QueueError, Store, StoreOptions};
use keel_storage::{connect, ConnectMode};
use std::sync::Arc;

#[derive(Debug, Subcommand)]
pub enum QueueCommand {
    /// Counts per state and the age of the oldest waiting job.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Jobs in one state (newest first).
    List {
        #[arg(long)]
        state: String,
        #[arg(long)]
        kind: Option<String>,
        #[arg(long, default_value_t = 100)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// One job, whole.
    Show {
        id: String,
    },
    /// Enqueue a job (or N copies) by hand, e.g. a `demo.sleep` drill.
    Enqueue {
        #[arg(long)]
        kind: String,
        #[arg(long)]
        payload: String,
        #[arg(long, default_value_t = 1)]
        count: u32,
        #[arg(long)]
        dedupe_key: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Run a failed, dead-lettered or cancelled job again (or a waiting one now).
    Retry {
        id: String,
    },
    /// Cancel a pending or retrying job.
    Cancel {
        id: String,
    },
    /// Requeue every dead-lettered job (of one kind).
    RequeueDead {
        #[arg(long)]
        kind: Option<String>,
    },
    /// Pause a queue for every worker (stored in the database).
    Pause {
        name: String,
    },
    Resume {
        name: String,
    },
    /// Delete completed and cancelled jobs older than a duration, like 7d.
    Prune {
        #[arg(long)]
        older_than: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum CronCommand {
    /// The execution log: every run with its outcome (ok, empty, failed, skipped_paused, stuck).
    Runs {
        #[arg(long)]
        task: Option<String>,
        #[arg(long, default_value_t = 50)]
        limit: u32,
        #[arg(long)]
        json: bool,
    },
    /// Pause a task, or `all`, for every worker from its next tick.
    Pause {
        task: String,
    },
    Resume {
        task: String,
    },
}

fn qerr(e: QueueError) -> OpsError {
    let text = keel_ids::mask_email(&e.to_string());
    if e.is_unavailable() {
        return OpsError::unavailable(text);
    }
    match e {
        QueueError::Invalid { .. }
        | QueueError::PayloadTooLarge { .. }
        | QueueError::Payload { .. }
        | QueueError::Seal(_) => OpsError::usage(text),
        _ => OpsError::failed(text),
    }
}

async fn store(s: &Settings) -> Result<Arc<dyn Store>, OpsError> {
    Ok(keel_queue::open(connect(&s.database, ConnectMode::Eager).await?))
}

/// A store that seals, for enqueueing sensitive kinds by hand: the configured key, or in
/// development the key file the API and worker share (created if missing).
async fn sealing_store(s: &Settings, source: &dyn Source) -> Result<Arc<dyn Store>, OpsError> {
    let keys = KeySettings::from_source(source, s.is_production()).map_err(|p| OpsError::usage(p.to_string()))?;
    let ring = keys
        .resolve(std::path::Path::new(keel_queue::seal::DEV_KEY_FILE))
        .map_err(|e| OpsError::usage(e.to_string()))?;
    let db = connect(&s.database, ConnectMode::Eager).await?;
    Ok(keel_queue::open_with(db, Arc::new(keel_queue::SystemClock), StoreOptions::default().keyring(Arc::new(ring))))
}

fn job_id(raw: &str) -> Result<JobId, OpsError> {
    raw.parse().map_err(|_| OpsError::usage("ID must be a job id (a UUID)"))
}

fn json_of<T: serde::Serialize>(v: &T) -> serde_json::Value {
    serde_json::to_value(v).unwrap_or_default()
}

pub(crate) async fn queue(s: &Settings, source: &dyn Source, cmd: QueueCommand) -> Result<u8, OpsError> {
    let sensitive = match &cmd {
        QueueCommand::Enqueue { kind, .. } => keel_worker::builtin_options(kind).is_some_and(|o| o.sensitive.is_some()),
        _ => false,
    };
    let st = if sensitive { sealing_store(s, source).await? } else { store(s).await? };
    match cmd {
        QueueCommand::Stats { json } => {
            let snap = st.snapshot().await.map_err(qerr)?;
            if json {
                // The document /api/ops/queue/stats serves too (keel_queue::ops_json).
                print_json(&ops_json::stats(&snap));
            } else {
                let mut t = table::new(&["state", "jobs"], &[1]);
                for state in JobState::ALL {
                    t.add_row([state.as_str().to_owned(), snap.counts.get(state).to_string()]);
                }
                t.add_row(["oldest_pending_age".to_owned(), format!("{:.1}s", snap.oldest_pending_age_s)]);
                table::print(&t);
                if !snap.paused_queues.is_empty() {
                    println!("paused queues: {}", snap.paused_queues.join(", "));
                }
            }
        }
        QueueCommand::List { state, kind, limit, json } => {
            let state: JobState = state.parse().map_err(|_| {
                OpsError::usage(
                    "--state must be pending, processing, retrying, completed, failed, dead_letter or cancelled",
                )
            })?;
            let jobs = st
                .list(JobFilter { state: Some(state), kind, limit: Some(limit), ..Default::default() })
                .await
                .map_err(qerr)?;
            if json {
                print_json(&ops_json::jobs(&jobs));
            } else {
                let mut t = table::new(&["id", "kind", "state", "attempt", "last error"], &[3]);
                for j in &jobs {
                    let err = j.last_error.as_deref().map(keel_ids::mask_email).unwrap_or_default();
                    let attempt = format!("{}/{}", j.attempt, j.max_attempts);
                    t.add_row([j.id.to_string(), j.kind.clone(), j.state.as_str().to_owned(), attempt, err]);
                }
                table::print(&t);
                if jobs.is_empty() {
                    println!("no {} jobs", state.as_str());
                }
            }
        }
        QueueCommand::Show { id } => {
            let job =
                st.get(job_id(&id)?).await.map_err(qerr)?.ok_or_else(|| OpsError::failed(format!("no job {id}")))?;
            print_json(&ops_json::job(&job));
        }
        QueueCommand::Enqueue { kind, payload, count, dedupe_key, json } => {
            let value: serde_json::Value =
                serde_json::from_str(&payload).map_err(|e| OpsError::usage(format!("--payload is not JSON: {e}")))?;
            if !(1..=100_000).contains(&count) {
                return Err(OpsError::usage("--count must be from 1 to 100000"));
            }
            let mut jobs = Vec::with_capacity(count as usize);
            for _ in 0..count {
                let mut j = NewJob::new(&kind, &value).map_err(qerr)?;
                if let Some(o) = keel_worker::builtin_options(&kind) {
                    j = j.with_defaults(&o);
                }
                if let Some(k) = &dedupe_key {
                    j = j.dedupe_key(k);
                }
                jobs.push(j);
            }
            let mut ids = Vec::new();
            for chunk in jobs.chunks(1000) {
                let done = st.enqueue_many(chunk.to_vec()).await.map_err(qerr)?;
                ids.extend(done.into_iter().map(|e| (e.id(), e.is_duplicate())));
            }
            if json {
                let list: Vec<_> =
                    ids.iter().map(|(id, dup)| serde_json::json!({"id": id.to_string(), "duplicate": dup})).collect();
                print_json(&serde_json::json!({"enqueued": list}));
            } else {
                for (id, dup) in ids {
                    println!("{id}{}", if dup { " (duplicate: existing job)" } else { "" });
                }
            }
        }
        QueueCommand::Retry { id } => {
            let j = st.retry(job_id(&id)?).await.map_err(qerr)?;
            println!("job {} is {} (attempt {}/{})", j.id, j.state.as_str(), j.attempt, j.max_attempts);
        }
        QueueCommand::Cancel { id } => {
            let j = st.cancel(job_id(&id)?).await.map_err(qerr)?;
            println!("job {} is {}", j.id, j.state.as_str());
        }
        QueueCommand::RequeueDead { kind } => {
            let r = st.requeue_dead(kind).await.map_err(qerr)?;
            println!("requeued {} dead-lettered job(s)", r.requeued);
            if !r.skipped_duplicates.is_empty() {
                println!("left {} dead: another job with the same dedupe key is active", r.skipped_duplicates.len());
            }
        }
        QueueCommand::Pause { name } => {
            st.pause_queue(name.clone(), Some("keel-ops".into())).await.map_err(qerr)?;
            println!("queue {name} paused; workers stop claiming from it on their next tick");
        }
        QueueCommand::Resume { name } => {
            let was = st.resume_queue(name.clone()).await.map_err(qerr)?;
            println!("queue {name} {}", if was { "resumed" } else { "was not paused" });
        }
        QueueCommand::Prune { older_than } => {
            let d = keel_config::parse_duration(&older_than)
                .ok_or_else(|| OpsError::usage("--older-than must be a duration like 7d, 12h or 30m"))?;
            let n = st.prune(d).await.map_err(qerr)?;
            println!("pruned {n} finished job(s) older than {older_than}");
        }
    }
    Ok(exit::OK)
}

pub(crate) async fn cron(s: &Settings, cmd: CronCommand) -> Result<u8, OpsError> {
    let st = store(s).await?;
    match cmd {
        CronCommand::Runs { task, limit, json } => {
            let runs = st.cron_runs(RunFilter { task, limit: Some(limit) }).await.map_err(qerr)?;
            if json {
                print_json(&ops_json::cron_runs(&runs));
            } else {
                let mut t = table::new(&["task", "started", "outcome", "items", "skipped", "error"], &[3, 4]);
                let empty = runs.is_empty();
                for r in runs {
                    let outcome = r
                        .outcome
                        .map(|o| json_of(&o).as_str().unwrap_or("").to_owned())
                        .unwrap_or_else(|| "running".into());
                    t.add_row([
                        r.task,
                        r.started_at.format("%Y-%m-%d %H:%M:%S%.3f").to_string(),
                        outcome,
                        r.items.to_string(),
                        r.skipped_ticks.to_string(),
                        r.error.as_deref().map(keel_ids::mask_email).unwrap_or_default(),
                    ]);
                }
                table::print(&t);
                if empty {
                    println!("no cron runs recorded");
                }
            }
        }
        CronCommand::Pause { task } => {
            st.cron_pause(task.clone(), Some("keel-ops".into())).await.map_err(qerr)?;
            println!("{task} paused; every worker skips it from its next tick");
        }
        CronCommand::Resume { task } => {
            let was = st.cron_resume(task.clone()).await.map_err(qerr)?;
            println!("{task} {}", if was { "resumed" } else { "was not paused" });
        }
    }
    Ok(exit::OK)
}
