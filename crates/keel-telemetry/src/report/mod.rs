//! The production telemetry report (`keel-ops telemetry export`): slow routes, slow SQL,
//! connections and the verdict, as one struct rendered to Markdown or JSON.
//!
//! Every section either has its data or says why not: a failing query fails the whole report
//! ([`ReportError`] names the section), while a missing pg_stat_statements or a SQLite database
//! is an explained section, not a failure. Nothing here resets any statistics.

mod connections;
mod markdown;
mod routes;
mod statements;
mod verdict;

pub use connections::{connection_snapshot, ConnectionSnapshot, ConnectionsSection};
pub use routes::{RouteRow, RoutesSection, TOP_ROUTES};
pub use statements::{StatementRow, StatementsSection, HOW_TO_ENABLE, TOP_STATEMENTS};
pub use verdict::{
    monthly_ceiling, Breach, CostInputs, CostOutcome, CostVerdict, LoadTarget, LoadVerdict, Slo, SloOutcome,
    SloVerdict, MIN_P99_SAMPLES, NO_ANCHOR, STOP_CONDITION,
};

use crate::percentile::{pg_route_percentiles, route_percentiles, PercentileEngine};
use crate::TelemetryError;
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use keel_storage::Db;
use serde::Serialize;
use sqlx::{self, Connection};
use std::time::Duration;

/// What a report covers and judges against.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportOptions {
    /// The window: the last `days` days before `now` (1 to 366).
    pub days: u32,
    /// The latency objectives routes are judged against.
    pub slo: Slo,
    /// The business owner's written load target, if any.
    pub load_target: Option<LoadTarget>,
    /// Spending inputs of the cost gate.
    pub cost: CostInputs,
    /// Per-statement limit on Postgres, so a report never hangs on a stuck server.
    pub statement_timeout: Duration,
}

impl Default for ReportOptions {
    fn default() -> Self {
        Self {
            days: 7,
            slo: Slo::default(),
            load_target: None,
            cost: CostInputs::default(),
            statement_timeout: Duration::from_secs(60),
        }
    }
}

/// Why no report was built. A report is whole or absent, never partial.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// `days` outside 1 to 366.
    #[error("--days must be from 1 to 366, got {0}")]
    Days(u32),
    /// A section's query failed.
    #[error("the telemetry report could not be built: the {section} section failed ({source}). No report was written; fix the cause and run it again")]
    Section {
        /// The section (`route percentiles`, `pg_stat_statements`, …).
        section: &'static str,
        /// The database error.
        #[source]
        source: TelemetryError,
    },
}

/// The time range a report covers: `[from, to)`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Window {
    /// Start, inclusive.
    pub from: DateTime<Utc>,
    /// End, exclusive (the report's `now`).
    pub to: DateTime<Utc>,
    /// The window's length in days.
    pub days: u32,
}

/// The report's three judgements.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Verdict {
    /// Routes against the latency objectives.
    pub slo: SloVerdict,
    /// The business-load target, restated (or its absence noted).
    pub load_target: LoadVerdict,
    /// Spend against the monthly ceiling.
    pub cost: CostVerdict,
}

/// The production telemetry report: render it with [`TelemetryReport::to_markdown`] or serialize it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TelemetryReport {
    /// When the report was built.
    pub generated_at: DateTime<Utc>,
    /// The time range covered.
    pub window: Window,
    /// "postgres" or "sqlite".
    pub backend: &'static str,
    /// The database's own version string.
    pub server_version: String,
    /// The judgements.
    pub verdict: Verdict,
    /// Slowest routes by p95 and p99.
    pub routes: RoutesSection,
    /// Top SQL statements (PostgreSQL with pg_stat_statements).
    pub statements: StatementsSection,
    /// Connection headroom (PostgreSQL).
    pub connections: ConnectionsSection,
}

/// A step of [`build_report`], for a progress indicator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReportStep {
    /// Computing route percentiles.
    Routes,
    /// Reading pg_stat_statements.
    Statements,
    /// Taking the connection snapshot.
    Connections,
    /// Judging.
    Verdict,
}

impl ReportStep {
    /// A short human label for the step.
    pub fn label(self) -> &'static str {
        match self {
            Self::Routes => "route percentiles",
            Self::Statements => "pg_stat_statements",
            Self::Connections => "connection snapshot",
            Self::Verdict => "verdict",
        }
    }
}

fn section(section: &'static str) -> impl FnOnce(TelemetryError) -> ReportError {
    move |source| ReportError::Section { section, source }
}

fn pg(section_name: &'static str) -> impl FnOnce(sqlx::Error) -> ReportError {
    move |e| ReportError::Section {
        section: section_name,
        source: TelemetryError::Database { operation: "report transaction", source: e },
    }
}

/// Builds the report for the `opts.days` days before `now`, calling `progress` before each
/// step. On Postgres everything is read in one read-only transaction on one connection.
pub async fn build_report(
    db: &Db,
    opts: &ReportOptions,
    now: DateTime<Utc>,
    progress: &mut dyn FnMut(ReportStep),
) -> Result<TelemetryReport, ReportError> {
    if !(1..=366).contains(&opts.days) {
        return Err(ReportError::Days(opts.days));
    }
    let from = now - ChronoDuration::days(i64::from(opts.days));
    let server_version = db
        .server_version()
        .await
        .map_err(|e| ReportError::Section { section: "database connection", source: storage_err(e) })?;
    let (all, statements, connections, computed_in) = match db {
        Db::Postgres(pool) => {
            let mut conn = pool.acquire().await.map_err(pg("connection"))?;
            let mut tx = conn.begin().await.map_err(pg("connection"))?;
            sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
                .execute(&mut *tx)
                .await
                .map_err(pg("connection"))?;
            let ms = opts.statement_timeout.as_millis().clamp(1, i32::MAX as u128);
            sqlx::query(&format!("SET LOCAL statement_timeout = {ms}"))
                .execute(&mut *tx)
                .await
                .map_err(pg("connection"))?;
            progress(ReportStep::Routes);
            let all = pg_route_percentiles(&mut tx, from, now).await.map_err(section("route percentiles"))?;
            progress(ReportStep::Statements);
            let statements = statements::statements_section(&mut tx).await.map_err(section("pg_stat_statements"))?;
            progress(ReportStep::Connections);
            let snap = connection_snapshot(&mut tx).await.map_err(section("connection snapshot"))?;
            tx.rollback().await.map_err(pg("connection"))?;
            (all, statements, ConnectionsSection::Snapshot(snap), "database")
        }
        Db::Sqlite(_) => {
            progress(ReportStep::Routes);
            let all =
                route_percentiles(db, from, now, PercentileEngine::Rust).await.map_err(section("route percentiles"))?;
            progress(ReportStep::Statements);
            let statements = StatementsSection::PostgresOnly {
                note: "pg_stat_statements is PostgreSQL-only; this database is SQLite, so there are no statement statistics.".into(),
            };
            progress(ReportStep::Connections);
            let connections = ConnectionsSection::PostgresOnly {
                note: "The connection snapshot (pg_stat_activity) is PostgreSQL-only; this database is an embedded SQLite file.".into(),
            };
            (all, statements, connections, "rust")
        }
    };
    progress(ReportStep::Verdict);
    let verdict = Verdict {
        slo: verdict::judge_slo(opts.slo, &all, opts.days),
        load_target: verdict::judge_load(opts.load_target.as_ref(), now.date_naive()),
        cost: verdict::judge_cost(&opts.cost),
    };
    Ok(TelemetryReport {
        generated_at: now,
        window: Window { from, to: now, days: opts.days },
        backend: db.backend().as_str(),
        server_version,
        verdict,
        routes: routes::routes_section(&all, computed_in),
        statements,
        connections,
    })
}

fn storage_err(e: keel_storage::StorageError) -> TelemetryError {
    match e {
        keel_storage::StorageError::Query(source) => TelemetryError::Database { operation: "server version", source },
        other => TelemetryError::Unexpected { operation: "server version", detail: other.to_string() },
    }
}

impl TelemetryReport {
    /// Pretty-printed JSON (`--format json`).
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
    }

    /// The Markdown document (`--format md`).
    pub fn to_markdown(&self) -> String {
        markdown::render(self)
    }
}
