//! The telemetry report over 1,000,000 events: `build_report` against the SQL and Rust
//! percentile engines on Postgres, and the report on SQLite.

use super::*;

/// Inserts `n` events over [`REPORT_ROUTES`] routes, both browser kinds and three sample rates,
/// with heavy-tailed durations, all in the 7 days before `now`. `u` is a deterministic
/// pseudo-random fraction of the row number, so both backends get the same durations.
pub(super) async fn load_report_events(db: &Db, n: i64, now: DateTime<Utc>) -> Result<(), String> {
    truncate(db).await?;
    let err = |e: sqlx::Error| format!("loading report events: {e}");
    match db {
        Db::Postgres(p) => {
            let q = "\
                INSERT INTO route_performance_events \
                    (route, kind, method, status, duration_us, sample_rate, weight, occurred_at) \
                SELECT '/app/area-' || (i % $3) || '/[id]', \
                       CASE WHEN (i / $3) % 3 = 0 THEN 'api' ELSE 'navigation' END, \
                       NULL, 200, \
                       floor(((i % $3) + 1)::float8 * 2000.0 * (1 + 20 * u * u * u * u * u * u))::bigint, \
                       CASE WHEN (i / 150) % 10 = 0 THEN 1.0 WHEN (i / 150) % 10 < 4 THEN 0.2 ELSE 0.05 END, \
                       CASE WHEN (i / 150) % 10 = 0 THEN 1000000 WHEN (i / 150) % 10 < 4 THEN 5000000 ELSE 20000000 END, \
                       $1::timestamptz - ((i % 600000) + 30) * interval '1 second' \
                FROM (SELECT i, ((i * 2654435761) % 4294967291)::float8 / 4294967291.0 AS u \
                      FROM generate_series(0::bigint, $2 - 1) AS i) g";
            sqlx::query(q).bind(now).bind(n).bind(REPORT_ROUTES).execute(p).await.map_err(err)?;
            sqlx::query("VACUUM ANALYZE route_performance_events").execute(p).await.map_err(err)?;
        }
        Db::Sqlite(p) => {
            let q = "\
                WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < ?2 - 1), \
                g(i, u) AS (SELECT i, CAST((i * 2654435761) % 4294967291 AS REAL) / 4294967291.0 FROM s) \
                INSERT INTO route_performance_events \
                    (route, kind, method, status, duration_us, sample_rate, weight, occurred_at) \
                SELECT '/app/area-' || (i % ?3) || '/[id]', \
                       CASE WHEN (i / ?3) % 3 = 0 THEN 'api' ELSE 'navigation' END, \
                       NULL, 200, \
                       CAST(((i % ?3) + 1) * 2000.0 * (1 + 20 * u * u * u * u * u * u) AS INTEGER), \
                       CASE WHEN (i / 150) % 10 = 0 THEN 1.0 WHEN (i / 150) % 10 < 4 THEN 0.2 ELSE 0.05 END, \
                       CASE WHEN (i / 150) % 10 = 0 THEN 1000000 WHEN (i / 150) % 10 < 4 THEN 5000000 ELSE 20000000 END, \
                       ?1 - ((i % 600000) + 30) * 1000 \
                FROM g";
            sqlx::query(q).bind(now.timestamp_millis()).bind(n).bind(REPORT_ROUTES).execute(p).await.map_err(err)?;
            sqlx::query("ANALYZE route_performance_events").execute(p).await.map_err(err)?;
        }
    }
    let stored = browser_events(db).await?;
    if stored != n as u64 {
        return Err(format!("loaded {stored} of {n} report events"));
    }
    Ok(())
}

pub(super) async fn time_report(db: &Db, now: DateTime<Utc>) -> Result<(f64, keel_telemetry::TelemetryReport), String> {
    let t = Instant::now();
    let report =
        build_report(db, &ReportOptions::default(), now, &mut |_| {}).await.map_err(|e| format!("report: {e}"))?;
    Ok((t.elapsed().as_secs_f64(), report))
}

pub(super) async fn time_engine(
    db: &Db,
    from: DateTime<Utc>,
    now: DateTime<Utc>,
    engine: PercentileEngine,
) -> Result<(f64, Vec<RoutePercentiles>), String> {
    let t = Instant::now();
    let all = route_percentiles(db, from, now, engine).await.map_err(|e| format!("{engine:?} percentiles: {e}"))?;
    Ok((t.elapsed().as_secs_f64(), all))
}

/// The report's route tables must carry exactly the percentiles of `all` (one row per kind and
/// route) and cover every stored event.
pub(super) fn check_report(
    report: &keel_telemetry::TelemetryReport,
    all: &[RoutePercentiles],
    n: i64,
) -> Result<(), String> {
    let r = &report.routes;
    let expected_routes = (REPORT_ROUTES * 2) as usize;
    if r.total_samples != n as u64 || r.routes_seen != expected_routes || all.len() != expected_routes {
        return Err(format!(
            "report covers {} samples over {} routes (Rust: {} routes); expected {n} over {expected_routes}",
            r.total_samples,
            r.routes_seen,
            all.len()
        ));
    }
    for row in r.top_by_p95.iter().chain(&r.top_by_p99) {
        let theirs = all
            .iter()
            .find(|p| p.kind == row.kind && p.route == row.route)
            .ok_or_else(|| format!("report route {} {} is not in the Rust result", row.kind.as_str(), row.route))?;
        if (row.samples, row.p50_us, row.p95_us) != (theirs.samples, theirs.p50_us, theirs.p95_us)
            || row.p99_us.is_some_and(|p| p != theirs.p99_us)
        {
            return Err(format!(
                "report and Rust disagree on {} {}: {row:?} vs {theirs:?}",
                row.kind.as_str(),
                row.route
            ));
        }
    }
    Ok(())
}

/// Times the report and each of `engines` in turn, [`ITERATIONS`] rounds, so load from other
/// work on this machine lands on all of them; returns the medians (report first). Before any
/// timing, one untimed run of each must agree: the engines on every route's percentiles, the
/// report's tables with the Rust engine's.
pub(super) async fn time_report_case(
    db: &Db,
    n: i64,
    now: DateTime<Utc>,
    engines: &[PercentileEngine],
) -> Result<(f64, Vec<f64>), String> {
    let from = now - ChronoDuration::days(i64::from(ReportOptions::default().days));
    let (_, report) = time_report(db, now).await?;
    let (_, reference) = time_engine(db, from, now, PercentileEngine::Rust).await?;
    check_report(&report, &reference, n)?;
    for &engine in engines {
        let (_, all) = time_engine(db, from, now, engine).await?;
        if all != reference {
            let first = all.iter().zip(&reference).find(|(a, b)| a != b);
            return Err(format!(
                "{engine:?} and Rust percentiles differ ({} vs {} routes; first difference {first:?})",
                all.len(),
                reference.len()
            ));
        }
    }
    let mut reports = Vec::with_capacity(ITERATIONS);
    let mut each: Vec<Vec<f64>> = engines.iter().map(|_| Vec::with_capacity(ITERATIONS)).collect();
    for _ in 0..ITERATIONS {
        reports.push(time_report(db, now).await?.0);
        for (&engine, times) in engines.iter().zip(&mut each) {
            times.push(time_engine(db, from, now, engine).await?.0);
        }
    }
    eprintln!("  report {reports:.3?} s");
    for (engine, times) in engines.iter().zip(&each) {
        eprintln!("  {engine:?} percentiles {times:.3?} s");
    }
    Ok((median(reports), each.into_iter().map(median).collect()))
}

pub(super) async fn report_case_pg(pg: &ScratchPg) -> Result<Vec<Row>, String> {
    note(&format!("postgres: report export over {REPORT_EVENTS} events"));
    let now = Utc::now();
    let t = Instant::now();
    load_report_events(&pg.db, REPORT_EVENTS, now).await?;
    eprintln!("  loaded in {:.1} s", t.elapsed().as_secs_f64());
    let engines = [PercentileEngine::Database, PercentileEngine::Rust];
    let (report, engine_times) = time_report_case(&pg.db, REPORT_EVENTS, now, &engines).await?;
    let (sql, rust) = (engine_times[0], engine_times[1]);
    let peer = "same percentiles computed in Rust over streamed rows";
    Ok(vec![
        Row::new("postgres/report_export_1m_events", "s_total", report, "lower").vs(peer, rust).target("< 5 s"),
        Row::new("postgres/route_percentiles_sql_1m_events", "s_total", sql, "lower")
            .vs(peer, rust)
            .target("no target (the report's percentile query alone)"),
    ])
}

pub(super) async fn measure_sqlite() -> Result<Vec<Row>, String> {
    note(&format!("sqlite: report export over {REPORT_EVENTS} events"));
    let lite = ScratchSqlite::create("telemetry", keel_api::SCHEMAS).await?;
    let now = Utc::now();
    let t = Instant::now();
    load_report_events(&lite.db, REPORT_EVENTS, now).await?;
    eprintln!("  loaded in {:.1} s", t.elapsed().as_secs_f64());
    // On SQLite the report itself computes in Rust, so there is no separate peer to time.
    let (report, _) = time_report_case(&lite.db, REPORT_EVENTS, now, &[]).await?;
    lite.db.close().await;
    Ok(vec![Row::new("sqlite/report_export_1m_events", "s_total", report, "lower")
        .target("no target (reported; percentiles computed in Rust)")])
}
