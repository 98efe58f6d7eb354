//! Integration tests of keel-telemetry's public API, on SQLite and (with TEST_DATABASE_URL)
//! PostgreSQL.

/// The components every test database of this binary has installed.
const SCHEMAS: &[&keel_storage::Schema] = &[&keel_telemetry::SCHEMA];

mod buffer;
mod connections;
mod ingest;
mod layer;
mod metrics;
mod percentiles;
mod prune;
mod report;
mod route_cap;
mod statements;

use chrono::{DateTime, Duration as ChronoDuration, TimeZone, Utc};
use keel_storage::Db;
use keel_telemetry::{RouteSample, RouteTemplate, SampleKind, SampleRate};
use std::time::Duration;

/// A fixed "now" so windows and ages are deterministic.
pub fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 5, 20, 12, 0, 0).single().expect("valid time")
}

pub fn sample(route: &str, kind: SampleKind, duration_us: u64, rate: f64, at: DateTime<Utc>) -> RouteSample {
    RouteSample::new(
        RouteTemplate::parse(route).expect("template"),
        kind,
        None,
        Some(200),
        Duration::from_micros(duration_us),
        SampleRate::new(rate).expect("rate"),
        at,
    )
}

pub fn minutes_ago(m: i64) -> DateTime<Utc> {
    now() - ChronoDuration::minutes(m)
}

pub async fn count_rows(db: &Db) -> i64 {
    let q = "SELECT count(*) FROM route_performance_events";
    match db {
        Db::Postgres(p) => sqlx::query_scalar(q).fetch_one(p).await.expect("count"),
        Db::Sqlite(p) => sqlx::query_scalar(q).fetch_one(p).await.expect("count"),
    }
}

/// A deterministic pseudo-random sequence (xorshift), so data sets are varied but repeatable.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n
    }
}
