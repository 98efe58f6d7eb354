//! SQL for `route_performance_events`: batch inserts, retention pruning.

use crate::{RouteSample, TelemetryError};
use chrono::{DateTime, Duration as ChronoDuration, Utc};
use keel_storage::Db;
use sqlx::{self, QueryBuilder, Sqlite};

/// SQLite allows 32,766 bound parameters per statement; 8 per row keeps well under.
const SQLITE_ROWS_PER_STATEMENT: usize = 1_000;
/// Rows deleted per statement while pruning, so no single statement holds locks for long.
const PRUNE_BATCH: i64 = 10_000;

/// Inserts every sample atomically (one statement on Postgres, one transaction on SQLite) and
/// returns the number of rows written.
pub async fn insert_samples(db: &Db, samples: &[RouteSample]) -> Result<u64, TelemetryError> {
    if samples.is_empty() {
        return Ok(0);
    }
    let err = TelemetryError::db("insert of route samples");
    match db {
        Db::Postgres(pool) => {
            let n = samples.len();
            let (mut routes, mut kinds, mut methods, mut statuses) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            let (mut durations, mut rates, mut weights, mut times) =
                (Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n), Vec::with_capacity(n));
            for s in samples {
                routes.push(s.route().as_str());
                kinds.push(s.kind().as_str());
                methods.push(s.method());
                statuses.push(s.status().map(|v| v as i16));
                durations.push(s.duration_us());
                rates.push(s.sample_rate().as_f64());
                weights.push(s.sample_rate().weight());
                times.push(s.occurred_at());
            }
            let res = sqlx::query(
                "INSERT INTO route_performance_events \
                 (route, kind, method, status, duration_us, sample_rate, weight, occurred_at) \
                 SELECT * FROM UNNEST($1::text[], $2::text[], $3::text[], $4::int2[], $5::int8[], \
                 $6::float8[], $7::int8[], $8::timestamptz[])",
            )
            .bind(routes)
            .bind(kinds)
            .bind(methods)
            .bind(statuses)
            .bind(durations)
            .bind(rates)
            .bind(weights)
            .bind(times)
            .execute(pool)
            .await
            .map_err(err)?;
            Ok(res.rows_affected())
        }
        Db::Sqlite(pool) => {
            let mut tx = pool.begin().await.map_err(TelemetryError::db("insert of route samples"))?;
            let mut written = 0;
            for chunk in samples.chunks(SQLITE_ROWS_PER_STATEMENT) {
                let mut qb: QueryBuilder<Sqlite> = QueryBuilder::new(
                    "INSERT INTO route_performance_events \
                     (route, kind, method, status, duration_us, sample_rate, weight, occurred_at) ",
                );
                qb.push_values(chunk, |mut b, s| {
                    b.push_bind(s.route().as_str())
                        .push_bind(s.kind().as_str())
                        .push_bind(s.method())
                        .push_bind(s.status().map(i64::from))
                        .push_bind(s.duration_us())
                        .push_bind(s.sample_rate().as_f64())
                        .push_bind(s.sample_rate().weight())
                        .push_bind(s.occurred_at().timestamp_millis());
                });
                written += qb
                    .build()
                    .execute(&mut *tx)
                    .await
                    .map_err(TelemetryError::db("insert of route samples"))?
                    .rows_affected();
            }
            tx.commit().await.map_err(err)?;
            Ok(written)
        }
    }
}

/// Deletes events that occurred more than `retention_days` before `now`, in batches; returns
/// how many were deleted. Safe to run concurrently with writers and with itself.
pub async fn prune_events(db: &Db, retention_days: u64, now: DateTime<Utc>) -> Result<u64, TelemetryError> {
    let days = i64::try_from(retention_days).unwrap_or(i64::MAX).min(36_500);
    let cutoff = now - ChronoDuration::days(days);
    let mut total = 0;
    loop {
        let deleted = match db {
            Db::Postgres(p) => sqlx::query(
                "DELETE FROM route_performance_events WHERE id IN \
                 (SELECT id FROM route_performance_events WHERE occurred_at < $1 LIMIT $2)",
            )
            .bind(cutoff)
            .bind(PRUNE_BATCH)
            .execute(p)
            .await
            .map_err(TelemetryError::db("pruning of route samples"))?
            .rows_affected(),
            Db::Sqlite(p) => sqlx::query(
                "DELETE FROM route_performance_events WHERE id IN \
                 (SELECT id FROM route_performance_events WHERE occurred_at < ?1 LIMIT ?2)",
            )
            .bind(cutoff.timestamp_millis())
            .bind(PRUNE_BATCH)
            .execute(p)
            .await
            .map_err(TelemetryError::db("pruning of route samples"))?
            .rows_affected(),
        };
        total += deleted;
        if deleted < PRUNE_BATCH as u64 {
            crate::route_cap::prune_route_days(db, crate::route_cap::day_number(cutoff)).await?;
            return Ok(total);
        }
    }
}
