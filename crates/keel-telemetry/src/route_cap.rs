//! The daily bound on distinct browser routes (`ROUTE_TELEMETRY_MAX_ROUTES`).
//!
//! Browser timings arrive unauthenticated, so anyone can invent routes. Unbounded, invented
//! routes would crowd the report (and the scale decision read from it) and grow the table's
//! distinct routes without end. Each UTC day admits at most `max_routes` distinct browser routes
//! (recorded in `keel_telemetry_route_days`, so every process shares the count); a sample of
//! a route beyond them is stored under [`OTHER_ROUTE`], one row of the report. Server-side
//! samples come from the router's own templates and are never capped.
//!
//! A route already admitted costs one read; admitting a new one is a conditional insert under
//! the day's lock (PostgreSQL's advisory lock; SQLite's single writer), so processes racing on
//! the last free places never admit more than the bound.

use crate::{RouteSample, RouteTemplate, SampleKind, TelemetryError};
use keel_storage::Db;
use std::collections::BTreeSet;

/// Default `ROUTE_TELEMETRY_MAX_ROUTES`: well above the distinct pages of a real front end, far
/// below what would make a day's report unreadable or its percentile query slow.
pub const DEFAULT_MAX_ROUTES: u32 = 500;

/// The route under which samples of routes beyond the day's bound are stored.
pub const OTHER_ROUTE: &str = "other";

const MS_PER_DAY: i64 = 86_400_000;

fn day_of(s: &RouteSample) -> i32 {
    i32::try_from(s.occurred_at().timestamp_millis().div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX)
}

/// Rewrites to [`OTHER_ROUTE`] every browser sample whose route is not among the first
/// `max_routes` admitted on its UTC day, admitting new routes while there is room. Returns how
/// many samples were rewritten.
pub async fn cap_browser_routes(
    db: &Db,
    samples: &mut [RouteSample],
    max_routes: u32,
) -> Result<usize, TelemetryError> {
    // In order of first appearance, so the routes seen first are the ones admitted.
    let mut seen: BTreeSet<(i32, &str)> = BTreeSet::new();
    let mut wanted: Vec<(i32, String)> = Vec::new();
    for s in samples.iter().filter(|s| s.kind() != SampleKind::Server && s.route().as_str() != OTHER_ROUTE) {
        if seen.insert((day_of(s), s.route().as_str())) {
            wanted.push((day_of(s), s.route().as_str().to_owned()));
        }
    }
    let mut refused: BTreeSet<(i32, String)> = BTreeSet::new();
    for (day, route) in wanted {
        if !admit(db, day, &route, max_routes).await? {
            refused.insert((day, route));
        }
    }
    if refused.is_empty() {
        return Ok(0);
    }
    let mut rewritten = 0;
    for s in samples.iter_mut() {
        if s.kind() != SampleKind::Server && refused.contains(&(day_of(s), s.route().as_str().to_owned())) {
            s.set_route(RouteTemplate::other());
            rewritten += 1;
        }
    }
    Ok(rewritten)
}

/// True when `route` is (now) among `day`'s admitted routes.
async fn admit(db: &Db, day: i32, route: &str, max_routes: u32) -> Result<bool, TelemetryError> {
    let err = TelemetryError::db("route admission");
    let max = i64::from(max_routes);
    match db {
        Db::Postgres(p) => {
            let known = "SELECT EXISTS (SELECT 1 FROM keel_telemetry_route_days WHERE day = $1 AND route = $2)";
            // Most samples are of routes already admitted: no lock, one read.
            if sqlx::query_scalar::<_, bool>(known).bind(day).bind(route).fetch_one(p).await.map_err(err)? {
                return Ok(true);
            }
            // Admitting takes the day's lock, so processes racing on the last free places
            // cannot each count the same free place.
            let err = TelemetryError::db("route admission");
            let mut tx = p.begin().await.map_err(err)?;
            let lock = "SELECT pg_advisory_xact_lock(hashtext('keel_telemetry_route_days'), $1)";
            sqlx::query(lock).bind(day).execute(&mut *tx).await.map_err(TelemetryError::db("route admission"))?;
            sqlx::query(
                "INSERT INTO keel_telemetry_route_days (day, route) \
                 SELECT $1, $2 WHERE (SELECT count(*) FROM keel_telemetry_route_days WHERE day = $1) < $3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(day)
            .bind(route)
            .bind(max)
            .execute(&mut *tx)
            .await
            .map_err(TelemetryError::db("route admission"))?;
            let admitted = sqlx::query_scalar::<_, bool>(known)
                .bind(day)
                .bind(route)
                .fetch_one(&mut *tx)
                .await
                .map_err(TelemetryError::db("route admission"))?;
            tx.commit().await.map_err(TelemetryError::db("route admission"))?;
            Ok(admitted)
        }
        Db::Sqlite(p) => {
            // One statement each: SQLite runs a single writer at a time, so the count and the
            // insert cannot interleave with another process's.
            sqlx::query(
                "INSERT INTO keel_telemetry_route_days (day, route) \
                 SELECT ?1, ?2 WHERE (SELECT count(*) FROM keel_telemetry_route_days WHERE day = ?1) < ?3 \
                 ON CONFLICT DO NOTHING",
            )
            .bind(day)
            .bind(route)
            .bind(max)
            .execute(p)
            .await
            .map_err(TelemetryError::db("route admission"))?;
            sqlx::query_scalar::<_, bool>(
                "SELECT EXISTS (SELECT 1 FROM keel_telemetry_route_days WHERE day = ?1 AND route = ?2)",
            )
            .bind(day)
            .bind(route)
            .fetch_one(p)
            .await
            .map_err(err)
        }
    }
}

/// Forgets the admitted routes of days before `cutoff_day` (days since 1970-01-01 UTC).
pub(crate) async fn prune_route_days(db: &Db, cutoff_day: i32) -> Result<u64, TelemetryError> {
    let err = TelemetryError::db("pruning of route days");
    let deleted = match db {
        Db::Postgres(p) => sqlx::query("DELETE FROM keel_telemetry_route_days WHERE day < $1")
            .bind(cutoff_day)
            .execute(p)
            .await
            .map_err(err)?
            .rows_affected(),
        Db::Sqlite(p) => sqlx::query("DELETE FROM keel_telemetry_route_days WHERE day < ?1")
            .bind(cutoff_day)
            .execute(p)
            .await
            .map_err(err)?
            .rows_affected(),
    };
    Ok(deleted)
}

/// The day number [`prune_route_days`] takes for a cutoff time.
pub(crate) fn day_number(at: chrono::DateTime<chrono::Utc>) -> i32 {
    i32::try_from(at.timestamp_millis().div_euclid(MS_PER_DAY)).unwrap_or(i32::MAX)
}
