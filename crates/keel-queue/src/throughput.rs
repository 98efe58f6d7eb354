//! Finished jobs per minute over a recent window, for the operator console's throughput chart:
//! `completed` and `failed` (permanent failures and dead letters; a retried attempt is not a
//! finish) per minute, read from the jobs' `finished_at` through `keel_jobs_finished_idx` and
//! `keel_jobs_completed_finished_idx`.
//! Pruned jobs are no longer counted, so the window should stay well inside the retention.

use crate::QueueError;
use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use keel_storage::Db;
use serde::Serialize;
use std::collections::BTreeMap;

/// Jobs that finished within one minute.
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MinuteCounts {
    /// The minute's start.
    pub minute: DateTime<Utc>,
    /// Jobs that completed.
    pub completed: u64,
    /// Jobs that failed for good or were dead-lettered.
    pub failed: u64,
}

/// One [`MinuteCounts`] per minute from the minute of `since` to the minute of `now`, oldest
/// first, minutes without finishes included as zeros (a chart needs the gaps).
pub async fn throughput(db: &Db, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<Vec<MinuteCounts>, QueueError> {
    let rows: Vec<(i64, String, i64)> = match db {
        Db::Postgres(p) => {
            sqlx::query_as(
                "SELECT (extract(epoch FROM date_trunc('minute', finished_at)) * 1000)::bigint, state, count(*)
                 FROM (SELECT state, finished_at FROM keel_jobs WHERE state IN ('completed', 'failed', 'dead_letter') \
                       UNION ALL SELECT state, finished_at FROM keel_jobs_completed) j WHERE finished_at >= $1
                 GROUP BY 1, 2",
            )
            .bind(since)
            .fetch_all(p)
            .await?
        }
        Db::Sqlite(p) => {
            sqlx::query_as(
                "SELECT (finished_at / 60000) * 60000, state, count(*)
                 FROM (SELECT state, finished_at FROM keel_jobs WHERE state IN ('completed', 'failed', 'dead_letter') \
                       UNION ALL SELECT state, finished_at FROM keel_jobs_completed) j WHERE finished_at >= ?
                 GROUP BY 1, 2",
            )
            .bind(since.timestamp_millis())
            .fetch_all(p)
            .await?
        }
    };
    let minute = TimeDelta::minutes(1);
    let floor = |t: DateTime<Utc>| t.duration_trunc(minute).unwrap_or(t);
    let mut series: BTreeMap<i64, MinuteCounts> = BTreeMap::new();
    let mut t = floor(since);
    while t <= now {
        series.insert(t.timestamp_millis(), MinuteCounts { minute: t, completed: 0, failed: 0 });
        t += minute;
    }
    for (ms, state, n) in rows {
        let n = u64::try_from(n).unwrap_or(0);
        if let Some(slot) = series.get_mut(&ms) {
            if state == "completed" {
                slot.completed += n;
            } else {
                slot.failed += n;
            }
        }
    }
    Ok(series.into_values().collect())
}
