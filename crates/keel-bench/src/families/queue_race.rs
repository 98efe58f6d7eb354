//! The queue family's side-by-side burn-down, timed as users see it: 50,000 no-op jobs
//! prefilled in a fresh database, `VACUUM ANALYZE` and `CHECKPOINT`, then one worker started;
//! the clock runs from the worker's start until a count in the database shows every job done.
//! Keel, graphile-worker 0.18 and pg-boss 12 take turns (the order rotates each round), so a
//! slow moment on this shared machine falls on every system alike; medians of the rounds.

use super::queue_node::{self, NodeEnv, NodePeer, GRAPHILE, PGBOSS};
use crate::report::{median, Row};
use crate::scratch::ScratchPg;
use keel_queue::{CancellationToken, KindOptions, QueueSettings, Registry, Worker, WorkerSettings};
use sqlx::Connection;
use std::sync::Arc;
use std::time::{Duration, Instant};

const JOBS: u64 = 50_000;
const ROUNDS: usize = 3;
const CONCURRENCY: [u32; 2] = [8, 32];
/// How often the database is asked how many jobs are left: often enough that the rounding
/// is under 1% of a run of several seconds, rarely enough that counting costs little.
const POLL: Duration = Duration::from_millis(20);
/// A run that has not drained by then is reported as an error, not a figure.
const DEADLINE: Duration = Duration::from_secs(300);

#[derive(Clone, Copy)]
enum System {
    Keel,
    Node(NodePeer),
}

impl System {
    fn label(self) -> &'static str {
        match self {
            System::Keel => "keel",
            System::Node(p) => p.name,
        }
    }
}

/// The claim batch Keel runs with here. `None`: the worker's own default (sized by concurrency).
fn keel_batch(_concurrency: u32) -> Option<u32> {
    Some(128)
}

pub(crate) async fn run() -> Result<Vec<Row>, String> {
    let node = NodeEnv::ensure().await?;
    let systems = [System::Keel, System::Node(GRAPHILE), System::Node(PGBOSS)];
    let mut rows = Vec::new();
    for c in CONCURRENCY {
        let mut rates: Vec<Vec<f64>> = vec![Vec::new(); systems.len()];
        for round in 0..ROUNDS {
            for k in 0..systems.len() {
                let i = (k + round) % systems.len();
                eprintln!("queue/race: c{c} round {round}: {}", systems[i].label());
                rates[i].push(one(&node, systems[i], c).await?);
                eprintln!("  {:.0} jobs/s", rates[i].last().copied().unwrap_or_default());
            }
        }
        let keel = median(rates[0].clone());
        for (i, s) in systems.iter().enumerate().skip(1) {
            rows.push(
                Row::new(format!("postgres/burn_start_to_done_50k_c{c}"), "jobs_per_s", keel, "higher")
                    .vs(s.label(), median(rates[i].clone()))
                    .target(if i == 1 { "≥ 1.5 × graphile-worker" } else { "-" }),
            );
        }
    }
    Ok(rows)
}

/// One timed run in a database of its own.
async fn one(node: &NodeEnv, system: System, concurrency: u32) -> Result<f64, String> {
    let schemas: &[&keel_storage::Schema] = match system {
        System::Keel => &[&keel_queue::SCHEMA],
        System::Node(_) => &[],
    };
    let scratch = ScratchPg::create("queue_race", schemas).await?;
    let url = scratch.url();
    let result = async {
        let mut conn = sqlx::PgConnection::connect(&url).await.map_err(|e| e.to_string())?;
        let remaining = match system {
            System::Keel => {
                fill_keel(&scratch).await?;
                "SELECT count(*) FROM keel_jobs WHERE state <> 'completed'"
            }
            System::Node(p) => {
                node.setup(p, &url).await?;
                node.fill(p, &url, JOBS).await?;
                p.remaining_sql
            }
        };
        let left: i64 = sqlx::query_scalar(remaining).fetch_one(&mut conn).await.map_err(|e| e.to_string())?;
        if left != JOBS as i64 {
            return Err(format!("{}: prefilled {left} jobs, expected {JOBS}", system.label()));
        }
        for q in ["VACUUM ANALYZE", "CHECKPOINT"] {
            sqlx::query(q).execute(&mut conn).await.map_err(|e| e.to_string())?;
        }
        match system {
            System::Keel => {
                let store = keel_queue::open(scratch.db.clone());
                let mut reg = Registry::new();
                reg.register_json("bench.noop", KindOptions::default(), |_, _| async { Ok(()) })
                    .map_err(|e| e.to_string())?;
                let worker = Arc::new(Worker::new(store, reg, settings(concurrency)));
                let cancel = CancellationToken::new();
                let t = Instant::now();
                let run = tokio::spawn({
                    let (w, c) = (worker.clone(), cancel.clone());
                    async move { w.run(c).await }
                });
                let drained = drain(&mut conn, remaining, t).await;
                cancel.cancel();
                run.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
                drained
            }
            System::Node(p) => {
                let child = node.start(p, &url, concurrency).await?;
                let t = Instant::now();
                let drained = drain(&mut conn, remaining, t).await;
                queue_node::stop(child).await;
                drained
            }
        }
    }
    .await;
    scratch.drop_db().await;
    result.map(|elapsed| JOBS as f64 / elapsed.as_secs_f64())
}

/// Polls `remaining` until it says zero; the time since `t` when it first does.
async fn drain(conn: &mut sqlx::PgConnection, remaining: &str, t: Instant) -> Result<Duration, String> {
    loop {
        let left: i64 = sqlx::query_scalar(remaining).fetch_one(&mut *conn).await.map_err(|e| e.to_string())?;
        if left == 0 {
            return Ok(t.elapsed());
        }
        if t.elapsed() > DEADLINE {
            return Err(format!("{left} jobs still not done after {DEADLINE:?}"));
        }
        tokio::time::sleep(POLL).await;
    }
}

async fn fill_keel(scratch: &ScratchPg) -> Result<(), String> {
    let store = keel_queue::open(scratch.db.clone());
    let mut i = 0;
    while i < JOBS {
        let end = (i + 1_000).min(JOBS);
        let jobs = (i..end)
            .map(|n| keel_queue::NewJob::new("bench.noop", &serde_json::json!({ "i": n })))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| e.to_string())?;
        store.enqueue_many(jobs).await.map_err(|e| e.to_string())?;
        i = end;
    }
    Ok(())
}

fn settings(concurrency: u32) -> WorkerSettings {
    let batch = keel_batch(concurrency).unwrap_or(concurrency);
    WorkerSettings {
        worker_id: "bench".into(),
        queues: vec![QueueSettings::new("default", "background_job", concurrency, batch)],
        shutdown_grace: Duration::from_secs(60),
        ..WorkerSettings::default()
    }
}
