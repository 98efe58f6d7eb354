//! p95/p99 of the slowest routes over time, for the console's chart: the window's top routes by
//! p95 (the report's ranking), then each day's percentiles of those routes, computed with
//! keel-telemetry's one definition (weighted nearest rank). A day's p99 is `null` below the
//! report's minimum sample count, as in the report.

use crate::extract::param;
use crate::ApiError;
use chrono::{DateTime, Duration, DurationRound, Utc};
use keel_storage::Db;
use keel_telemetry::percentile::{route_percentiles, PercentileEngine};
use keel_telemetry::report::MIN_P99_SAMPLES;
use serde_json::{json, Value};

/// Routes charted: enough to see the slow ones, few enough to read.
const CHARTED_ROUTES: usize = 5;
/// Days charted at most: one query per day, so the window stays a short loop.
const MAX_DAYS: u32 = 31;

/// `{"days", "routes": [{"kind", "route", "points": [{"day", "samples", "p95_us", "p99_us"}]}]}`
/// over the last `days` whole days up to now (1 to 31, default 7).
pub(crate) async fn route_trend(db: &Db, pairs: &[(String, String)], now: DateTime<Utc>) -> Result<Value, ApiError> {
    let days = match param(pairs, "days") {
        None | Some("") => 7,
        Some(v) => v
            .parse::<u32>()
            .ok()
            .filter(|d| (1..=MAX_DAYS).contains(d))
            .ok_or_else(|| ApiError::bad_param("days", format!("must be from 1 to {MAX_DAYS}")))?,
    };
    let day = Duration::days(1);
    let today = now.duration_trunc(day).unwrap_or(now);
    let from = today - day * (days as i32 - 1);
    let err = |e: keel_telemetry::TelemetryError| ApiError::unavailable(format!("route percentiles failed: {e}"), 5);
    let mut whole = route_percentiles(db, from, now, PercentileEngine::Auto).await.map_err(err)?;
    whole.sort_by(|a, b| b.p95_us.cmp(&a.p95_us).then_with(|| (a.kind, &a.route).cmp(&(b.kind, &b.route))));
    whole.truncate(CHARTED_ROUTES);
    let mut series: Vec<(keel_telemetry::SampleKind, String, Vec<Value>)> =
        whole.into_iter().map(|r| (r.kind, r.route, Vec::new())).collect();
    let mut start = from;
    while start <= now {
        let end = (start + day).min(now + Duration::milliseconds(1));
        let per_day = route_percentiles(db, start, end, PercentileEngine::Auto).await.map_err(err)?;
        for (kind, route, points) in &mut series {
            let found = per_day.iter().find(|r| r.kind == *kind && r.route == *route);
            points.push(json!({
                "day": start.date_naive(),
                "samples": found.map_or(0, |r| r.samples),
                "p95_us": found.map(|r| r.p95_us),
                "p99_us": found.filter(|r| r.samples >= MIN_P99_SAMPLES).map(|r| r.p99_us),
            }));
        }
        start += day;
    }
    let routes: Vec<Value> = series
        .into_iter()
        .map(|(kind, route, points)| json!({"kind": kind, "route": route, "points": points}))
        .collect();
    Ok(json!({"days": days, "routes": routes}))
}
