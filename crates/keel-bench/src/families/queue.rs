//! Bench family `queue`: keel-queue on PostgreSQL and SQLite.
//!
//! - Enqueue rate: one job per transaction (sequential, so bounded by commit fsyncs), and bulk
//!   (`enqueue_many`, 1,000 jobs per call as the peers were measured).
//! - Burn-down: 100,000 pre-inserted no-op jobs drained by one worker at concurrency 1, 8 and
//!   32 (claim batch 128). Time runs from starting the worker until it has stopped with every
//!   finish flushed, and the database count of completed jobs is checked afterwards.
//!   Finishes are batched (one transaction per flush): a crash can re-run the jobs whose
//!   handler returned but whose finish was not yet flushed (at most one flush, a few ms of
//!   work); their stale finishes are rejected by the fencing token, never applied twice.
//!   The two backends take turns at each concurrency, and SQLite's row is compared with
//!   PostgreSQL's figure of the same run (issue #19 asks SQLite for at least that).
//! - Idle latency: an idle worker (concurrency 1, the default batch of 5) woken by NOTIFY
//!   (Postgres) or in-process (SQLite); time from just before `enqueue` to the handler's
//!   first instruction, 200 samples 5 ms apart.
//!
//! - Idle latency beside a schedule (`scheduled`): the same, with 300,000 jobs of the same queue
//!   and priority scheduled for tomorrow, compared with the row above measured just before.
//!   A claim that stepped over every job scheduled later paid for each of them on every
//!   wakeup; the claim index is now walked band by band (`claim_sql.rs` in keel-queue).
//!
//! - Start-to-done burn-down against graphile-worker 0.18 and pg-boss 12 (`race`, in
//!   `queue_race.rs`): 50,000 prefilled jobs, a fresh database per run, systems alternated.
//!
//! `KEEL_BENCH_QUEUE_CASES=enqueue,burn,latency,scheduled,race` runs a subset (all by default); the table
//! then holds only those rows. `KEEL_BENCH_QUEUE_BACKENDS=postgres|sqlite` likewise.
//!
//! Postgres: a fresh database from `TEST_DATABASE_URL`, dropped afterwards, pool of 10.
//! SQLite: a temporary file (WAL, synchronous=NORMAL), pool of 4. Medians of 3 iterations
//! for rates; percentiles over all samples for latency.

use crate::report::{median, percentile_ms, Row};
use crate::scratch::{ScratchPg, ScratchSqlite};
use keel_queue::{KindOptions, NewJob, QueueSettings, Registry, Store, Worker, WorkerSettings};
use keel_storage::Db;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{mpsc, Notify};
// keel-bench has no tokio-util of its own; keel-queue re-exports the token its worker takes.
use keel_queue::CancellationToken;

const ITERATIONS: usize = 3;
const SINGLE_JOBS: usize = 1_000;
const BULK_JOBS: usize = 100_000;
const BULK_PER_CALL: usize = 1_000;
const BURN_JOBS: u64 = 100_000;
const BURN_BATCH: u32 = 128;
const CONCURRENCY: [u32; 3] = [1, 8, 32];
const LATENCY_SAMPLES: usize = 200;
/// Jobs scheduled for tomorrow beside the idle worker of the `scheduled` case: a day's worth
/// of reminders and follow-ups for a mid-sized product.
const SCHEDULED_LATER: u64 = 300_000;
/// The peer drains fewer jobs: at its few hundred jobs/s, 100,000 would take minutes per
/// run. The rates are per second either way; the case name says which size each side ran.
const APALIS_BURN_JOBS: u64 = 5_000;

struct Bench {
    name: &'static str,
    db: Db,
    store: Arc<dyn Store>,
}

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    rt.block_on(async {
        let mut rows = Vec::new();
        let pg = PgBench::create().await?;
        let lite = sqlite_bench().await?;
        let peer = apalis_peer::Peer::connect(&pg).await?;
        let result = async {
            if wanted("race") {
                rows.extend(super::queue_race::run().await?);
            }
            let (on_pg, on_lite) = (backend_wanted("postgres"), backend_wanted("sqlite"));
            if wanted("enqueue") {
                if on_pg {
                    rows.extend(measure_enqueue(&pg.bench, Some((&pg, &peer))).await?);
                }
                if on_lite {
                    rows.extend(measure_enqueue(&lite.0, None).await?);
                }
            }
            if wanted("burn") {
                let pg = on_pg.then_some((&pg, &peer));
                rows.extend(measure_burn(pg, on_lite.then_some(&lite.0)).await?);
            }
            if wanted("latency") {
                if on_pg {
                    rows.extend(measure_latency(&pg.bench, Some((&pg, &peer))).await?);
                }
                if on_lite {
                    rows.extend(measure_latency(&lite.0, None).await?);
                }
            }
            if wanted("scheduled") {
                if on_pg {
                    rows.extend(measure_scheduled(&pg.bench).await?);
                }
                if on_lite {
                    rows.extend(measure_scheduled(&lite.0).await?);
                }
            }
            Ok::<_, String>(())
        }
        .await;
        pg.drop_db().await;
        result.map(|_| rows)
    })
}

/// Adds the peer's figure to a row when there is a peer.
fn versus(row: Row, peer: Option<f64>, label: &str) -> Row {
    match peer {
        Some(v) => row.vs(label, v),
        None => row,
    }
}

/// `KEEL_BENCH_QUEUE_BACKENDS=sqlite` measures one backend only (for profiling it; the
/// comparisons need both).
fn backend_wanted(backend: &str) -> bool {
    match std::env::var("KEEL_BENCH_QUEUE_BACKENDS") {
        Ok(v) if !v.trim().is_empty() => v.split(',').any(|b| b.trim() == backend),
        _ => true,
    }
}

fn wanted(case: &str) -> bool {
    match std::env::var("KEEL_BENCH_QUEUE_CASES") {
        Ok(v) if !v.trim().is_empty() => v.split(',').any(|c| c.trim() == case),
        _ => true,
    }
}

async fn measure_enqueue(b: &Bench, peer: Option<(&PgBench, &apalis_peer::Peer)>) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let n = b.name;
    let name = apalis_peer::NAME;
    eprintln!("queue/{n}: enqueue");
    let single = median(collect(ITERATIONS, || enqueue_single(b)).await?);
    let p = match peer {
        Some((pg, a)) => Some(median(collect(ITERATIONS, || a.enqueue_single(pg)).await?)),
        None => None,
    };
    rows.push(
        versus(Row::new(format!("{n}/enqueue_one_per_txn"), "jobs_per_s", single, "higher"), p, name)
            .target(if n == "postgres" { "peers 530–1,050 (fsync-bound)" } else { "-" }),
    );
    let bulk = median(collect(ITERATIONS, || enqueue_bulk(b)).await?);
    let p = match peer {
        Some((pg, a)) => Some(median(collect(ITERATIONS, || a.enqueue_bulk(pg)).await?)),
        None => None,
    };
    rows.push(
        versus(Row::new(format!("{n}/enqueue_bulk_1000_per_call"), "jobs_per_s", bulk, "higher"), p, name)
            .target(if n == "postgres" { "≥ 50,000" } else { "-" }),
    );
    Ok(rows)
}

/// Label of the SQLite rows' comparison: Keel's own PostgreSQL figure of the same run.
const ON_POSTGRES: &str = "keel on PostgreSQL, same run";

/// Burn-downs on both backends, taking turns within each concurrency (the order alternating
/// each iteration), so that a slow stretch of this shared machine falls on both alike: issue
/// #19 asks SQLite for at least PostgreSQL's figure, and a block of one backend's runs after
/// the other's compared two different minutes. apalis runs after each PostgreSQL burn-down.
async fn measure_burn(pg: Option<(&PgBench, &apalis_peer::Peer)>, lite: Option<&Bench>) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let name = apalis_peer::NAME;
    for c in CONCURRENCY {
        eprintln!("queue: burn-down at concurrency {c}");
        let (mut on_pg, mut on_apalis, mut on_lite) = (Vec::new(), Vec::new(), Vec::new());
        for i in 0..ITERATIONS {
            let lite_first = i % 2 == 1;
            if let (true, Some(b)) = (lite_first, lite) {
                on_lite.push(burn_down(b, c).await?);
            }
            if let Some((pg, apalis)) = pg {
                on_pg.push(burn_down(&pg.bench, c).await?);
                on_apalis.push(apalis.burn_down(pg, c, APALIS_BURN_JOBS).await?);
            }
            if let (false, Some(b)) = (lite_first, lite) {
                on_lite.push(burn_down(b, c).await?);
            }
        }
        if !on_pg.is_empty() && !on_lite.is_empty() {
            let each: Vec<String> = on_lite.iter().zip(&on_pg).map(|(l, p)| format!("{:.2}", l / p)).collect();
            eprintln!("queue: c{c} sqlite / postgres per iteration: {}", each.join(" "));
        }
        let pg_rate = (!on_pg.is_empty()).then(|| median(on_pg));
        if let Some(rate) = pg_rate {
            let label = format!("{name} ({}k jobs)", APALIS_BURN_JOBS / 1000);
            let row = Row::new(format!("postgres/burn_down_100k_c{c}"), "jobs_per_s", rate, "higher");
            rows.push(row.vs(&label, median(on_apalis)).target("≥ 5,000"));
        }
        if !on_lite.is_empty() {
            let row = Row::new(format!("sqlite/burn_down_100k_c{c}"), "jobs_per_s", median(on_lite), "higher");
            rows.push(versus(row, pg_rate, ON_POSTGRES).target("≥ 2,000; ≥ keel on PostgreSQL (#19)"));
        }
    }
    Ok(rows)
}

async fn measure_latency(b: &Bench, peer: Option<(&PgBench, &apalis_peer::Peer)>) -> Result<Vec<Row>, String> {
    let mut rows = Vec::new();
    let n = b.name;
    let name = apalis_peer::NAME;
    eprintln!("queue/{n}: idle latency");
    let (mut lat, mut calls) = idle_latency(b, 0).await?;
    let mut peer_lat = match peer {
        Some((pg, a)) => Some(a.idle_latency(pg).await?),
        None => None,
    };
    for (pct, metric, target) in [(50.0, "ms_p50", "≤ 2"), (99.0, "ms_p99", "≤ 10")] {
        let p = peer_lat.as_mut().map(|v| percentile_ms(v, pct));
        rows.push(
            versus(
                Row::new(format!("{n}/idle_enqueue_to_start"), metric, percentile_ms(&mut lat, pct), "lower"),
                p,
                name,
            )
            .target(if n == "postgres" { target } else { "-" }),
        );
    }
    rows.push(
        Row::new(format!("{n}/idle_enqueue_call_alone"), "ms_p50", percentile_ms(&mut calls, 50.0), "lower")
            .target("part of the row above: the enqueue's round trip and commit"),
    );
    Ok(rows)
}

/// Idle enqueue-to-start with [`SCHEDULED_LATER`] jobs scheduled for tomorrow, against the
/// same without them, measured just before.
async fn measure_scheduled(b: &Bench) -> Result<Vec<Row>, String> {
    let n = b.name;
    eprintln!("queue/{n}: idle latency, then beside {SCHEDULED_LATER} jobs scheduled for tomorrow");
    let (mut alone, _) = idle_latency(b, 0).await?;
    let (mut beside, _) = idle_latency(b, SCHEDULED_LATER).await?;
    let mut rows = Vec::new();
    for (pct, metric) in [(50.0, "ms_p50"), (99.0, "ms_p99")] {
        rows.push(
            Row::new(
                format!("{n}/idle_enqueue_to_start_300k_scheduled"),
                metric,
                percentile_ms(&mut beside, pct),
                "lower",
            )
            .vs("no jobs scheduled", percentile_ms(&mut alone, pct))
            .target("about 1: jobs scheduled for later cost a claim nothing"),
        );
    }
    Ok(rows)
}

async fn collect<F, Fut>(n: usize, mut f: F) -> Result<Vec<f64>, String>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<f64, String>>,
{
    let mut v = Vec::with_capacity(n);
    for _ in 0..n {
        v.push(f().await?);
    }
    eprintln!("  {v:.0?}");
    Ok(v)
}

fn job(i: u64) -> Result<NewJob, String> {
    NewJob::new("bench.noop", &serde_json::json!({ "i": i })).map_err(|e| e.to_string())
}

/// Empties the jobs table so every iteration starts from the same state.
async fn reset(b: &Bench) -> Result<(), String> {
    match &b.db {
        Db::Postgres(p) => {
            sqlx::query("TRUNCATE keel_jobs, keel_jobs_completed").execute(p).await.map_err(|e| e.to_string())?;
        }
        Db::Sqlite(p) => {
            sqlx::query("DELETE FROM keel_jobs").execute(p).await.map_err(|e| e.to_string())?;
            sqlx::query("DELETE FROM keel_jobs_completed").execute(p).await.map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

/// Fresh planner statistics after a bulk load, as autovacuum would provide in production.
async fn analyze(b: &Bench) -> Result<(), String> {
    match &b.db {
        Db::Postgres(p) => sqlx::query("VACUUM ANALYZE keel_jobs").execute(p).await.map(drop),
        Db::Sqlite(p) => sqlx::query("ANALYZE keel_jobs").execute(p).await.map(drop),
    }
    .map_err(|e| e.to_string())
}

async fn enqueue_single(b: &Bench) -> Result<f64, String> {
    reset(b).await?;
    let jobs: Vec<NewJob> = (0..SINGLE_JOBS as u64).map(job).collect::<Result<_, _>>()?;
    let t = Instant::now();
    for j in jobs {
        b.store.enqueue(j).await.map_err(|e| e.to_string())?;
    }
    Ok(SINGLE_JOBS as f64 / t.elapsed().as_secs_f64())
}

async fn enqueue_bulk(b: &Bench) -> Result<f64, String> {
    reset(b).await?;
    let mut chunks = Vec::new();
    for c in 0..BULK_JOBS / BULK_PER_CALL {
        let base = (c * BULK_PER_CALL) as u64;
        chunks.push((base..base + BULK_PER_CALL as u64).map(job).collect::<Result<Vec<_>, _>>()?);
    }
    let t = Instant::now();
    for chunk in chunks {
        b.store.enqueue_many(chunk).await.map_err(|e| e.to_string())?;
    }
    Ok(BULK_JOBS as f64 / t.elapsed().as_secs_f64())
}

async fn load(b: &Bench, n: u64) -> Result<(), String> {
    reset(b).await?;
    let mut i = 0;
    while i < n {
        let end = (i + 5_000).min(n);
        b.store.enqueue_many((i..end).map(job).collect::<Result<_, _>>()?).await.map_err(|e| e.to_string())?;
        i = end;
    }
    analyze(b).await
}

fn settings(concurrency: u32, batch: u32) -> WorkerSettings {
    WorkerSettings {
        worker_id: "bench".into(),
        queues: vec![QueueSettings::new("default", "background_job", concurrency, batch)],
        shutdown_grace: Duration::from_secs(60),
        ..WorkerSettings::default()
    }
}

async fn burn_down(b: &Bench, concurrency: u32) -> Result<f64, String> {
    load(b, BURN_JOBS).await?;
    let count = Arc::new(AtomicU64::new(0));
    let done = Arc::new(Notify::new());
    let mut reg = Registry::new();
    let (c, d) = (count.clone(), done.clone());
    reg.register_json("bench.noop", KindOptions::default(), move |_, _| {
        let (c, d) = (c.clone(), d.clone());
        async move {
            if c.fetch_add(1, Ordering::Relaxed) + 1 == BURN_JOBS {
                d.notify_one();
            }
            Ok(())
        }
    })
    .map_err(|e| e.to_string())?;
    let worker = Arc::new(Worker::new(b.store.clone(), reg, settings(concurrency, BURN_BATCH)));
    let cancel = CancellationToken::new();
    let all_ran = done.notified();
    tokio::pin!(all_ran);
    all_ran.as_mut().enable();
    let t = Instant::now();
    let run = tokio::spawn({
        let (w, c) = (worker.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    let ran = tokio::time::timeout(Duration::from_secs(600), all_ran).await;
    cancel.cancel();
    run.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let elapsed = t.elapsed();
    if ran.is_err() {
        return Err(format!("{}: only {} of {BURN_JOBS} jobs ran in 600 s", b.name, count.load(Ordering::SeqCst)));
    }
    let snap = b.store.snapshot().await.map_err(|e| e.to_string())?;
    if snap.counts.completed != BURN_JOBS {
        return Err(format!("{}: burn-down left {:?}", b.name, snap.counts));
    }
    Ok(BURN_JOBS as f64 / elapsed.as_secs_f64())
}

/// Enqueue-to-start samples, and the enqueue calls' own durations (round trip and commit),
/// which are part of the first; with `scheduled` jobs of the same queue and priority
/// scheduled for tomorrow beside them.
async fn idle_latency(b: &Bench, scheduled: u64) -> Result<(Vec<Duration>, Vec<Duration>), String> {
    reset(b).await?;
    if scheduled > 0 {
        let tomorrow = chrono::Utc::now() + chrono::TimeDelta::days(1);
        let mut i = 0;
        while i < scheduled {
            let end = (i + 5_000).min(scheduled);
            let jobs = (i..end)
                .map(|i| Ok(job(i)?.run_at(tomorrow + chrono::TimeDelta::milliseconds(i as i64))))
                .collect::<Result<_, String>>()?;
            b.store.enqueue_many(jobs).await.map_err(|e| e.to_string())?;
            i = end;
        }
        analyze(b).await?;
    }
    let (tx, mut rx) = mpsc::unbounded_channel::<Instant>();
    let mut reg = Registry::new();
    reg.register_json("bench.noop", KindOptions::default(), move |_, _| {
        let _ = tx.send(Instant::now());
        async { Ok(()) }
    })
    .map_err(|e| e.to_string())?;
    let worker = Arc::new(Worker::new(b.store.clone(), reg, settings(1, 5)));
    let cancel = CancellationToken::new();
    let run = tokio::spawn({
        let (w, c) = (worker.clone(), cancel.clone());
        async move { w.run(c).await }
    });
    let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
    let mut calls = Vec::with_capacity(LATENCY_SAMPLES);
    // Warm-up: the first job also waits for the worker to start listening.
    b.store.enqueue(job(0)?).await.map_err(|e| e.to_string())?;
    rx.recv().await.ok_or("worker stopped")?;
    for i in 1..=LATENCY_SAMPLES as u64 {
        // Let the worker finish the previous job and go idle again.
        tokio::time::sleep(Duration::from_millis(5)).await;
        let t0 = Instant::now();
        b.store.enqueue(job(i)?).await.map_err(|e| e.to_string())?;
        calls.push(t0.elapsed());
        let started = rx.recv().await.ok_or("worker stopped")?;
        samples.push(started.saturating_duration_since(t0));
    }
    cancel.cancel();
    run.await.map_err(|e| e.to_string())?.map_err(|e| e.to_string())?;
    let pending = b.store.snapshot().await.map_err(|e| e.to_string())?.counts.pending;
    if pending != scheduled {
        return Err(format!("latency run left {pending} jobs pending, not the {scheduled} scheduled for tomorrow"));
    }
    Ok((samples, calls))
}

struct PgBench {
    scratch: ScratchPg,
    bench: Bench,
}

impl PgBench {
    async fn create() -> Result<PgBench, String> {
        let scratch = ScratchPg::create("queue", &[&keel_queue::SCHEMA]).await?;
        let db = scratch.db.clone();
        let store = keel_queue::open(db.clone());
        Ok(PgBench { scratch, bench: Bench { name: "postgres", db, store } })
    }

    async fn drop_db(self) {
        self.scratch.drop_db().await;
    }
}

/// The SQLite bench and the scratch file behind it (removed on drop).
struct SqliteBench(Bench, #[allow(dead_code)] ScratchSqlite);

async fn sqlite_bench() -> Result<SqliteBench, String> {
    let scratch = ScratchSqlite::create("queue", &[&keel_queue::SCHEMA]).await?;
    let db = scratch.db.clone();
    let store = keel_queue::open(db.clone());
    Ok(SqliteBench(Bench { name: "sqlite", db, store }, scratch))
}

/// The peer: apalis-postgres 1.0 (with apalis-core 1.0's worker) in the same database, same
/// machine, same run. Concurrency `c` is one apalis worker with `parallelize(tokio::spawn)`
/// fetching batches of `c` (apalis has no other concurrency bound), woken by its
/// LISTEN/NOTIFY pubsub. Its own sqlx 0.9 pool (10 connections, like keel's). Separate
/// workers per unit of concurrency (32 on one 10-connection pool) were tried first: that run
/// did not record all 20,000 jobs done within 120 s.
mod apalis_peer {
    use super::{PgBench, BULK_JOBS, BULK_PER_CALL, BURN_BATCH, LATENCY_SAMPLES, SINGLE_JOBS};
    use apalis_core::backend::TaskSink;
    use apalis_core::error::BoxDynError;
    use apalis_core::worker::builder::WorkerBuilder;
    use apalis_core::worker::ext::parallelize::ParallelizeExt;
    use apalis_postgres::{Config, PgPool, PostgresStorage};
    use keel_queue::CancellationToken;
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::sync::Mutex;
    use std::time::{Duration, Instant};
    use tokio::sync::{mpsc, Notify};

    pub(super) const NAME: &str = "apalis-postgres 1.0";

    static RAN: AtomicU64 = AtomicU64::new(0);
    static TARGET: AtomicU64 = AtomicU64::new(u64::MAX);
    static ALL_RAN: Notify = Notify::const_new();
    static STARTS: Mutex<Option<mpsc::UnboundedSender<Instant>>> = Mutex::new(None);
    /// apalis registers workers by name and will not run two of one name; each run gets its own.
    static RUN: AtomicU64 = AtomicU64::new(0);

    fn worker_name() -> String {
        format!("bench-{}-{}", std::process::id(), RUN.fetch_add(1, Ordering::Relaxed))
    }

    async fn noop(_: u64) -> Result<(), BoxDynError> {
        if let Some(tx) = STARTS.lock().unwrap_or_else(|p| p.into_inner()).as_ref() {
            let _ = tx.send(Instant::now());
        }
        if RAN.fetch_add(1, Ordering::Relaxed) + 1 == TARGET.load(Ordering::Relaxed) {
            ALL_RAN.notify_one();
        }
        Ok(())
    }

    pub(super) struct Peer {
        pool: PgPool,
    }

    fn config(batch: usize) -> Config {
        Config::default().queue("bench").batch_size(batch)
    }

    impl Peer {
        pub(super) async fn connect(pg: &PgBench) -> Result<Peer, String> {
            let url = pg.scratch.url();
            let pool = PgPool::connect(&url).await.map_err(|e| format!("apalis connect: {e}"))?;
            PostgresStorage::<()>::setup(&pool).await.map_err(|e| format!("apalis setup: {e}"))?;
            Ok(Peer { pool })
        }

        fn storage(&self) -> PostgresStorage<u64> {
            PostgresStorage::new(&self.pool).with_config(config(BURN_BATCH as usize))
        }

        async fn reset(&self, pg: &PgBench) -> Result<(), String> {
            let p = pg.bench.db.pg().ok_or("postgres")?;
            sqlx::query("TRUNCATE apalis.jobs CASCADE").execute(p).await.map_err(|e| e.to_string())?;
            Ok(())
        }

        async fn done(&self, pg: &PgBench) -> Result<i64, String> {
            let p = pg.bench.db.pg().ok_or("postgres")?;
            sqlx::query_scalar("SELECT count(*) FROM apalis.jobs WHERE status = 'Done'")
                .fetch_one(p)
                .await
                .map_err(|e| e.to_string())
        }

        pub(super) async fn enqueue_single(&self, pg: &PgBench) -> Result<f64, String> {
            self.reset(pg).await?;
            let mut s = self.storage();
            let t = Instant::now();
            for i in 0..SINGLE_JOBS as u64 {
                s.push(i).await.map_err(|e| e.to_string())?;
            }
            Ok(SINGLE_JOBS as f64 / t.elapsed().as_secs_f64())
        }

        pub(super) async fn enqueue_bulk(&self, pg: &PgBench) -> Result<f64, String> {
            self.reset(pg).await?;
            let mut s = self.storage();
            let chunks: Vec<Vec<u64>> = (0..(BULK_JOBS / BULK_PER_CALL) as u64)
                .map(|c| (c * BULK_PER_CALL as u64..(c + 1) * BULK_PER_CALL as u64).collect())
                .collect();
            let t = Instant::now();
            for chunk in chunks {
                s.push_bulk(chunk).await.map_err(|e| e.to_string())?;
            }
            Ok(BULK_JOBS as f64 / t.elapsed().as_secs_f64())
        }

        /// `n` pre-inserted jobs drained at concurrency `c`; the clock stops when the database
        /// shows all `n` done.
        pub(super) async fn burn_down(&self, pg: &PgBench, c: u32, n: u64) -> Result<f64, String> {
            self.reset(pg).await?;
            let mut s = self.storage();
            let mut i = 0;
            while i < n {
                let end = (i + 1_000).min(n);
                s.push_bulk((i..end).collect()).await.map_err(|e| e.to_string())?;
                i = end;
            }
            let p = pg.bench.db.pg().ok_or("postgres")?;
            sqlx::query("VACUUM ANALYZE apalis.jobs").execute(p).await.map_err(|e| e.to_string())?;
            RAN.store(0, Ordering::SeqCst);
            TARGET.store(n, Ordering::SeqCst);
            let all_ran = ALL_RAN.notified();
            tokio::pin!(all_ran);
            all_ran.as_mut().enable();
            let cancel = CancellationToken::new();
            let t = Instant::now();
            let stop = cancel.clone();
            let worker = WorkerBuilder::new(worker_name())
                .backend(PostgresStorage::new(&self.pool).with_config(config(c as usize)).with_pubsub())
                .parallelize(tokio::spawn)
                .build(noop);
            let handle = tokio::spawn(worker.run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            }));
            let deadline = Instant::now() + Duration::from_secs(600);
            if tokio::time::timeout_at(deadline.into(), all_ran).await.is_err() {
                cancel.cancel();
                return Err(format!("apalis ran {} of {n} jobs in 600 s", RAN.load(Ordering::SeqCst)));
            }
            // Handlers ran; now wait for the acknowledgements to land.
            while self.done(pg).await? < n as i64 {
                if Instant::now() > deadline {
                    let p = pg.bench.db.pg().ok_or("postgres")?;
                    let by: Vec<(String, i64)> =
                        sqlx::query_as("SELECT status, count(*) FROM apalis.jobs GROUP BY status ORDER BY 1")
                            .fetch_all(p)
                            .await
                            .map_err(|e| e.to_string())?;
                    cancel.cancel();
                    return Err(format!("apalis did not record every job as done within 600 s: {by:?}"));
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
            let elapsed = t.elapsed();
            cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
            TARGET.store(u64::MAX, Ordering::SeqCst);
            Ok(n as f64 / elapsed.as_secs_f64())
        }

        pub(super) async fn idle_latency(&self, pg: &PgBench) -> Result<Vec<Duration>, String> {
            self.reset(pg).await?;
            let (tx, mut rx) = mpsc::unbounded_channel();
            *STARTS.lock().unwrap_or_else(|p| p.into_inner()) = Some(tx);
            let cancel = CancellationToken::new();
            let stop = cancel.clone();
            let worker = WorkerBuilder::new(worker_name()).backend(self.storage().with_pubsub()).build(noop);
            let handle = tokio::spawn(worker.run_until(async move {
                stop.cancelled().await;
                Ok::<(), std::io::Error>(())
            }));
            let mut s = self.storage();
            s.push(0).await.map_err(|e| e.to_string())?;
            rx.recv().await.ok_or("apalis worker stopped")?;
            let mut samples = Vec::with_capacity(LATENCY_SAMPLES);
            for i in 1..=LATENCY_SAMPLES as u64 {
                tokio::time::sleep(Duration::from_millis(5)).await;
                let t0 = Instant::now();
                s.push(i).await.map_err(|e| e.to_string())?;
                // A missed wakeup shows up as a long sample, bounded so the run ends.
                match tokio::time::timeout(Duration::from_secs(30), rx.recv()).await {
                    Ok(Some(started)) => samples.push(started.saturating_duration_since(t0)),
                    _ => return Err("apalis did not start a job within 30 s".into()),
                }
            }
            *STARTS.lock().unwrap_or_else(|p| p.into_inner()) = None;
            cancel.cancel();
            let _ = tokio::time::timeout(Duration::from_secs(30), handle).await;
            Ok(samples)
        }
    }
}
