//! Bench family `telemetry`: route-timing ingest into PostgreSQL through the bounded buffer, the
//! latency of a trivial route while ingest runs, and the telemetry report over 1,000,000 events.
//!
//! Ingest (real keel-api on a scratch database, the `telemetry_ingest` limit lifted so the
//! pipeline is measured, not the limiter; [`HTTP_CLIENTS`] keep-alive clients POST valid
//! 100-event batches encoded before the clock starts; every answer must be 202):
//! - `postgres/ingest_http_to_db`: [`HTTP_EVENTS`] events, each client holding back while the
//!   buffer could not take one more batch from every client ([`Pace::Backpressure`]). A real
//!   client cannot see the buffer; the in-process generator can, and so measures the most the
//!   pipeline stores with nothing dropped. The clock runs from the first request until the
//!   server has stopped and its writer has flushed (the shutdown flush stands in for the
//!   writer's 1 s tick, which would add an idle tail). Then the table must hold every event,
//!   the recorder must show no drop and no failed insert; a run with drops would be reported
//!   under a case name that says so.
//! - `postgres/ingest_http_unpaced_stored`: the same clients blind to the buffer, as fast as
//!   they go. They offer far more than the writer stores, every answer is still 202, and the
//!   buffer drops the excess (counted). Value: events stored per second; peer: events
//!   answered per second; the ratio is the share stored.
//! - `postgres/ingest_buffer_to_db`: the library path alone, `route_pipeline` with the default
//!   `WriterConfig`, [`PRODUCERS`] tasks calling `record_all` with pre-built batches under the
//!   same back-pressure (a 1 ms sleep, not a spinning `yield_now`, which would steal the CPU
//!   the writer and Postgres need on two cores). Clock until the writer, cancelled after the
//!   last batch, returns with every sample written: the writer's ceiling.
//!
//! Trivial-route latency: `GET /api/health/live` from one sequential client on its own thread
//! and current-thread runtime (one request, then a ~1 ms sleep), on one server, through these
//! phases in turn: idle ([`PROBE_IDLE_SAMPLES`]), then during 5 s of load at [`TARGET_RATE`]:
//! the HTTP load sent to a sink that discards it (`sink_load`: the load generator's and the
//! transport's CPU only), to a sink that runs the handler's `parse_ingest` + `record_all`
//! into the server's recorder (`parse_sink_load`: keel's work without axum and the
//! middleware), to keel-api itself (`during_ingest`, the case), pushed straight into
//! `state.recorder` (`buffer_ingest`: the writer and Postgres only); and last HTTP ingest as
//! fast as it is stored (`max_ingest`). Three rounds; each row is the median of the rounds'
//! percentiles, against the idle phase. Be careful reading them: on two shared cores the load
//! generator, the server, Postgres and the probe all compete for the same CPU, and other jobs
//! on this machine land on any phase (the spread of the idle rounds, printed, is the noise).
//!
//! Report export: 1,000,000 events over 50 routes × 2 browser kinds and three sample rates,
//! heavy-tailed durations, spread over the last 7 days, inserted in SQL and `VACUUM ANALYZE`d.
//! Before any timing, the SQL and Rust percentile engines must agree on every route and the
//! report's tables must match them. Then `build_report` (default 7-day window), the SQL
//! percentile query alone and the Rust engine over streamed rows are timed in turn, three
//! times each. pg_stat_statements may be absent; the report then explains that section.
//! `sqlite/report_export_1m_events` is the same on a SQLite file, where the report computes
//! percentiles in Rust; no peer.
//!
//! Medians of [`ITERATIONS`] runs. The machine is shared and noisy: compare ratios within a run.

use crate::report::{median, percentile_ms, Row};
use crate::scratch::{ScratchPg, ScratchSqlite};
use crate::server::{self, BenchServer};
use chrono::{DateTime, Duration as ChronoDuration, SecondsFormat, Utc};
use keel_storage::Db;
use keel_telemetry::{
    build_report, route_percentiles, route_pipeline, PercentileEngine, RecorderStats, ReportOptions, RoutePercentiles,
    RouteRecorder, RouteSample, RouteTemplate, SampleKind, SampleRate, WriterConfig,
};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use tokio_util::sync::CancellationToken;

mod ingest;
mod latency;
mod report;

use ingest::*;
use latency::*;
use report::*;

const ITERATIONS: usize = 3;
/// Events per request / per `record_all`: the most one ingest request may carry.
const BATCH: usize = keel_telemetry::MAX_EVENTS;
const HTTP_EVENTS: usize = 600_000;
const HTTP_CLIENTS: usize = 6;
/// Distinct request bodies, reused round-robin (the server parses each one afresh).
const BODIES: usize = 64;
const BUFFER_EVENTS: usize = 600_000;
const PRODUCERS: usize = 4;
/// Buffer room a back-pressured generator leaves for the timing layer's own samples.
const RESERVE: usize = 2_000;
/// The ingest target, the offered rate of the latency rounds' paced loads.
const TARGET_RATE: f64 = 20_000.0;
/// Events per paced load phase of a latency round: 5 s at the target rate.
const PACED_EVENTS: usize = 100_000;
/// Events of the latency rounds' flat-out phase: enough for ~2 s past what the buffer absorbs.
const MAX_PHASE_EVENTS: usize = 400_000;
const PROBE_IDLE_SAMPLES: usize = 2_000;
const PROBE_GAP: Duration = Duration::from_millis(1);
const REPORT_EVENTS: i64 = 1_000_000;
const REPORT_ROUTES: i64 = 50;
/// Longest any one phase may take before the bench gives up with an error.
const PHASE_LIMIT: Duration = Duration::from_secs(120);
const INGEST_PATH: &str = "/api/telemetry/route-timing";
const PROBE_PATH: &str = "/api/health/live";
/// Lifts the ingest limiter far above the offered load: this family measures the pipeline.
const NO_INGEST_LIMIT: &str = "1000000/1s,burst=1000000";
/// Route templates the ingest clients send, in the router styles the validator accepts.
const INGEST_ROUTES: [&str; 8] = [
    "/app/orders/[id]",
    "/app/orders",
    "/app/clients/:id",
    "/app/clients/{id}/jobs",
    "/app/estimates/[id]/edit",
    "/app/docs/[...slug]",
    "/app/settings/billing",
    "/app/dashboard",
];

pub(crate) fn run() -> Result<Vec<Row>, String> {
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().map_err(|e| e.to_string())?;
    note("start");
    rt.block_on(async {
        let pg = ScratchPg::create("telemetry", keel_api::SCHEMAS).await?;
        let result = measure_postgres(&pg).await;
        pg.drop_db().await;
        let mut rows = result?;
        rows.extend(measure_sqlite().await?);
        Ok(rows)
    })
}

/// A progress line on stderr, with the seconds since the family started.
fn note(what: &str) {
    static START: OnceLock<Instant> = OnceLock::new();
    let start = START.get_or_init(Instant::now);
    eprintln!("[{:6.1} s] telemetry/{what}", start.elapsed().as_secs_f64());
}

async fn measure_postgres(pg: &ScratchPg) -> Result<Vec<Row>, String> {
    let mut rows = ingest_http_case(pg).await?;
    rows.push(ingest_buffer_case(pg).await?);
    rows.extend(latency_case(pg).await?);
    rows.extend(report_case_pg(pg).await?);
    Ok(rows)
}

async fn truncate(db: &Db) -> Result<(), String> {
    match db {
        Db::Postgres(p) => sqlx::query("TRUNCATE route_performance_events").execute(p).await.map(drop),
        Db::Sqlite(p) => sqlx::query("DELETE FROM route_performance_events").execute(p).await.map(drop),
    }
    .map_err(|e| format!("emptying route_performance_events: {e}"))
}

/// Browser events stored (the server's own `server` samples of each request are left out).
async fn browser_events(db: &Db) -> Result<u64, String> {
    let q = "SELECT count(*) FROM route_performance_events WHERE kind <> 'server'";
    let n: i64 = match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await,
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await,
    }
    .map_err(|e| format!("counting events: {e}"))?;
    Ok(n as u64)
}

// ---------------------------------------------------------------------------------------------
// Ingest

/// How a load generator offers its events.
#[derive(Clone, Copy, Debug)]
enum Pace {
    /// As fast as it can, blind to the buffer, like real clients (which only ever see 202).
    Blind,
    /// As fast as the buffer takes them without dropping: before each batch the generator
    /// waits while the buffer could not take one batch from every generator plus [`RESERVE`]
    /// (the timing layer's own samples), so concurrent batches never overfill it. Only an
    /// in-process generator can do this; it measures the most the pipeline sustains.
    Backpressure,
    /// A fixed offered rate in events/s: batch `i` is sent at `t0 + i × 100 / rate`.
    Rate(f64),
}

impl Pace {
    /// Waits until batch `i` may go, given `generators` concurrent generators on `rec`.
    async fn wait(self, i: usize, t0: Instant, rec: &RouteRecorder, generators: usize) {
        match self {
            Pace::Blind => {}
            Pace::Backpressure => {
                let limit = WriterConfig::default().capacity.saturating_sub(generators * BATCH + RESERVE);
                // A 1 ms sleep, not a spinning `yield_now`: on two cores a spin would steal the
                // CPU the writer and Postgres need to drain the buffer.
                while rec.stats().buffered as usize > limit {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            Pace::Rate(rate) => {
                let at = t0 + Duration::from_secs_f64(i as f64 * BATCH as f64 / rate);
                tokio::time::sleep_until(at.into()).await;
            }
        }
    }
}

/// One ingest request body of [`BATCH`] valid events occurring just before `now`.
fn ingest_body(seed: usize, now: DateTime<Utc>) -> String {
    let events: Vec<serde_json::Value> = (0..BATCH)
        .map(|i| {
            let k = seed * BATCH + i;
            let at = now - ChronoDuration::milliseconds((k % 60_000) as i64);
            serde_json::json!({
                "route": INGEST_ROUTES[k % INGEST_ROUTES.len()],
                "kind": if k % 4 == 0 { "api" } else { "navigation" },
                "duration_ms": 3.0 + (k * 7_919 % 2_000) as f64 * 0.137,
                "status": 200,
                "occurred_at": at.to_rfc3339_opts(SecondsFormat::Millis, true),
                "sample_rate": 1,
            })
        })
        .collect();
    serde_json::json!({ "events": events }).to_string()
}

async fn start_server(pg: &ScratchPg) -> Result<BenchServer, String> {
    let url = pg.url();
    server::start(
        pg.db.clone(),
        &[
            ("DATABASE_URL", url.as_str()),
            ("KEEL_RATE_LIMIT_TELEMETRY_INGEST", NO_INGEST_LIMIT),
            // The bodies claim rate 1; ingest accepts only published rates.
            ("ROUTE_TELEMETRY_SAMPLE_RATE", "1"),
        ],
    )
    .await
}

/// Stops the server (which flushes its writer), bounded so a stuck drain fails the bench.
async fn stop_server(server: BenchServer) -> Result<(), String> {
    tokio::time::timeout(PHASE_LIMIT, server.stop()).await.map_err(|_| "server did not stop in time".to_string())?
}
