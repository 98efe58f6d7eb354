//! Route percentiles with ONE definition, implemented in SQL (Postgres) and in Rust (SQLite).
//!
//! **Definition (weighted nearest rank on cumulative weight).** Sort a route's samples by
//! duration; give each the weight `round(10^6 / sample_rate)`; the p-th percentile is the
//! smallest duration whose cumulative weight `W` satisfies `100 * W >= p * total`. With equal
//! weights this is the plain nearest-rank percentile (the `ceil(p/100 * n)`-th smallest value).
//! Durations and weights are integers, so both implementations compare exact integers and
//! return the same microsecond for the same rows; the value is always a real sample, never an
//! interpolation.

use crate::{SampleKind, TelemetryError};
use chrono::{DateTime, Utc};
use futures::TryStreamExt;
use keel_storage::Db;
use serde::Serialize;
use sqlx::{self, PgConnection, Row};

/// Percentiles of one (kind, route) over a window.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RoutePercentiles {
    /// Where the samples came from.
    pub kind: SampleKind,
    /// The route template.
    pub route: String,
    /// Stored events (what the estimate is built from).
    pub samples: u64,
    /// Sum of weights in millionths of an event: the estimated number of requests × 10^6.
    pub weight_micros: u128,
    /// Median duration, in microseconds.
    pub p50_us: i64,
    /// 95th percentile, in microseconds.
    pub p95_us: i64,
    /// 99th percentile, in microseconds.
    pub p99_us: i64,
}

impl RoutePercentiles {
    /// The estimated number of requests the samples stand for.
    pub fn estimated_requests(&self) -> f64 {
        self.weight_micros as f64 / 1_000_000.0
    }
}

/// Where the percentiles are computed. `Auto` is the database on Postgres and Rust on SQLite
/// (whose integer arithmetic silently turns to floating point on overflow).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PercentileEngine {
    /// The database on Postgres, Rust on SQLite.
    Auto,
    /// Window functions in PostgreSQL; an error on SQLite.
    Database,
    /// Rows streamed in duration order and reduced in Rust; works on both backends.
    Rust,
}

/// The weighted nearest-rank percentile of `(duration, weight)` pairs sorted by duration, or
/// `None` when there are none. `pct` is in whole percent (50, 95, 99).
pub fn weighted_nearest_rank(sorted: &[(i64, i64)], pct: u32) -> Option<i64> {
    let total: i128 = sorted.iter().map(|(_, w)| i128::from(*w)).sum();
    let target = total * i128::from(pct);
    let mut cum: i128 = 0;
    for (value, w) in sorted {
        cum += i128::from(*w);
        if cum * 100 >= target {
            return Some(*value);
        }
    }
    sorted.last().map(|(v, _)| *v)
}

/// The same definition as [`weighted_nearest_rank`], in SQL: for each row the running weight
/// (`ROWS` frame, so ties are taken one row at a time; the smallest qualifying duration is the
/// same either way) and the route's total; `sum(bigint)` is `numeric`, so nothing overflows.
const PG_PERCENTILES: &str = "\
WITH c AS (
    SELECT kind, route, duration_us,
           sum(weight) OVER (PARTITION BY kind, route ORDER BY duration_us
                             ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS cum,
           sum(weight) OVER (PARTITION BY kind, route) AS total
    FROM route_performance_events
    WHERE occurred_at >= $1 AND occurred_at < $2
)
SELECT kind, route, count(*) AS samples, max(total)::text AS total,
       min(duration_us) FILTER (WHERE cum * 100 >= total * 50) AS p50,
       min(duration_us) FILTER (WHERE cum * 100 >= total * 95) AS p95,
       min(duration_us) FILTER (WHERE cum * 100 >= total * 99) AS p99
FROM c
GROUP BY kind, route";

/// Percentiles of every (kind, route) with events in `[from, to)`, sorted by kind then route.
pub async fn route_percentiles(
    db: &Db,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    engine: PercentileEngine,
) -> Result<Vec<RoutePercentiles>, TelemetryError> {
    let op = "route percentile query";
    let mut out = match (db, engine) {
        (Db::Postgres(pool), PercentileEngine::Auto | PercentileEngine::Database) => {
            let mut conn = pool.acquire().await.map_err(TelemetryError::db(op))?;
            return pg_route_percentiles(&mut conn, from, to).await;
        }
        (Db::Sqlite(_), PercentileEngine::Database) => {
            return Err(TelemetryError::PostgresOnly { what: "computing percentiles in the database" })
        }
        (Db::Postgres(pool), PercentileEngine::Rust) => {
            let q = "SELECT kind, route, duration_us, weight FROM route_performance_events \
                     WHERE occurred_at >= $1 AND occurred_at < $2 ORDER BY kind, route, duration_us";
            let mut rows = sqlx::query_as::<_, (String, String, i64, i64)>(q).bind(from).bind(to).fetch(pool);
            let mut acc = Accumulator::default();
            while let Some(row) = rows.try_next().await.map_err(TelemetryError::db(op))? {
                acc.push(row)?;
            }
            acc.finish()?
        }
        (Db::Sqlite(pool), PercentileEngine::Auto | PercentileEngine::Rust) => {
            let q = "SELECT kind, route, duration_us, weight FROM route_performance_events \
                     WHERE occurred_at >= ?1 AND occurred_at < ?2 ORDER BY kind, route, duration_us";
            let mut rows = sqlx::query_as::<_, (String, String, i64, i64)>(q)
                .bind(from.timestamp_millis())
                .bind(to.timestamp_millis())
                .fetch(pool);
            let mut acc = Accumulator::default();
            while let Some(row) = rows.try_next().await.map_err(TelemetryError::db(op))? {
                acc.push(row)?;
            }
            acc.finish()?
        }
    };
    out.sort_by(|a, b| (a.kind, &a.route).cmp(&(b.kind, &b.route)));
    Ok(out)
}

/// The database engine on one connection (the report runs it inside its transaction).
pub(crate) async fn pg_route_percentiles(
    conn: &mut PgConnection,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Result<Vec<RoutePercentiles>, TelemetryError> {
    let op = "route percentile query";
    let rows = sqlx::query(PG_PERCENTILES).bind(from).bind(to).fetch_all(conn).await.map_err(TelemetryError::db(op))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
        let get = |e: sqlx::Error| TelemetryError::Database { operation: op, source: e };
        let kind: String = r.try_get("kind").map_err(get)?;
        let total: String = r.try_get("total").map_err(get)?;
        let samples: i64 = r.try_get("samples").map_err(get)?;
        out.push(RoutePercentiles {
            kind: parse_kind(&kind)?,
            route: r.try_get("route").map_err(get)?,
            samples: samples as u64,
            weight_micros: total
                .parse()
                .map_err(|_| TelemetryError::Unexpected { operation: op, detail: format!("total {total:?}") })?,
            p50_us: r.try_get("p50").map_err(get)?,
            p95_us: r.try_get("p95").map_err(get)?,
            p99_us: r.try_get("p99").map_err(get)?,
        });
    }
    out.sort_by(|a, b| (a.kind, &a.route).cmp(&(b.kind, &b.route)));
    Ok(out)
}

fn parse_kind(s: &str) -> Result<SampleKind, TelemetryError> {
    SampleKind::from_db(s).ok_or_else(|| TelemetryError::Unexpected {
        operation: "route percentile query",
        detail: format!("kind {s:?}"),
    })
}

/// Groups rows arriving in (kind, route) order and reduces each group.
#[derive(Default)]
struct Accumulator {
    current: Option<(String, String)>,
    values: Vec<(i64, i64)>,
    out: Vec<RoutePercentiles>,
}

impl Accumulator {
    fn push(&mut self, (kind, route, d, w): (String, String, i64, i64)) -> Result<(), TelemetryError> {
        let same = self.current.as_ref().is_some_and(|(k, r)| *k == kind && *r == route);
        if !same {
            self.flush()?;
            self.current = Some((kind, route));
        }
        self.values.push((d, w));
        Ok(())
    }

    fn flush(&mut self) -> Result<(), TelemetryError> {
        let Some((kind, route)) = self.current.take() else { return Ok(()) };
        let mut v = std::mem::take(&mut self.values);
        v.sort_unstable();
        let p = |pct| weighted_nearest_rank(&v, pct).unwrap_or(0);
        self.out.push(RoutePercentiles {
            kind: parse_kind(&kind)?,
            route,
            samples: v.len() as u64,
            weight_micros: v.iter().map(|(_, w)| *w as u128).sum(),
            p50_us: p(50),
            p95_us: p(95),
            p99_us: p(99),
        });
        Ok(())
    }

    fn finish(mut self) -> Result<Vec<RoutePercentiles>, TelemetryError> {
        self.flush()?;
        Ok(self.out)
    }
}

#[cfg(test)]
mod tests {
    use super::weighted_nearest_rank;

    #[test]
    fn equal_weights_give_plain_nearest_rank() {
        let v: Vec<(i64, i64)> = (1..=10).map(|x| (x * 10, 7)).collect();
        assert_eq!(weighted_nearest_rank(&v, 50), Some(50));
        assert_eq!(weighted_nearest_rank(&v, 95), Some(100));
        assert_eq!(weighted_nearest_rank(&v, 10), Some(10));
        assert_eq!(weighted_nearest_rank(&v, 11), Some(20));
        assert_eq!(weighted_nearest_rank(&[], 50), None);
    }

    #[test]
    fn heavy_samples_pull_the_percentile() {
        // One slow sample at weight 20 (5 % sampling) outweighs nine fast ones at weight 1.
        let v = [(1, 1), (2, 1), (3, 1), (4, 1), (5, 1), (6, 1), (7, 1), (8, 1), (9, 1), (1000, 20)];
        assert_eq!(weighted_nearest_rank(&v, 50), Some(1000));
        assert_eq!(weighted_nearest_rank(&v, 30), Some(9));
    }
}
