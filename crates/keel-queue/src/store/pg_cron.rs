//! Scheduled-task runs on Postgres. `cron_begin` is one transaction: the schedule row's lock
//! serialises workers on the same task, and the partial unique index on running rows is the
//! backstop that makes a second active run impossible.

use super::cron_types::{
    run_tally, CronBegin, CronBegun, CronOutcome, CronPause, CronRun, CronRunState, CronStart, RunFilter,
};
use super::{CronStore, PgStore, StoreFuture};
use crate::clock::plus;
use crate::QueueError;
use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use std::time::Duration;
use uuid::Uuid;

/// Tries of a scheduled task's begin whose refusing run finished before it could be named.
/// Each retry means another worker's run ended in between, so a few always suffice.
const BEGIN_TRIES: usize = 3;

const RUN_COLS: &str = "id, task, state, outcome, worker, started_at, heartbeat_at, lease_expires_at, finished_at, \
     items, skipped_ticks, error";

fn run_from_row(r: &PgRow) -> Result<CronRun, QueueError> {
    let state: String = r.try_get("state")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    Ok(CronRun {
        id: r.try_get("id")?,
        task: r.try_get("task")?,
        state: CronRunState::from_column(&state)?,
        outcome: outcome.map(|o| o.parse()).transpose()?,
        worker: r.try_get("worker")?,
        started_at: r.try_get("started_at")?,
        heartbeat_at: r.try_get("heartbeat_at")?,
        lease_expires_at: r.try_get("lease_expires_at")?,
        finished_at: r.try_get("finished_at")?,
        items: run_tally("items", r.try_get("items")?)?,
        skipped_ticks: run_tally("skipped_ticks", r.try_get("skipped_ticks")?)?,
        error: r.try_get("error")?,
    })
}

pub(crate) fn stuck_run_error(run_worker: &str, lease_expires_at: DateTime<Utc>) -> String {
    format!("stuck: worker {run_worker} stopped heartbeating; its lease expired at {}", lease_expires_at.to_rfc3339())
}

impl PgStore {
    async fn recover_stale(&self, conn: &mut PgConnection, task: Option<&str>) -> Result<Vec<CronRun>, QueueError> {
        let now = self.clock.now();
        let stale: Vec<(Uuid, String, DateTime<Utc>)> = sqlx::query_as(
            "SELECT id, worker, lease_expires_at FROM keel_cron_runs \
             WHERE state = 'running' AND lease_expires_at < $1 AND ($2::text IS NULL OR task = $2) FOR UPDATE",
        )
        .bind(now)
        .bind(task)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for (id, worker, exp) in stale {
            let row = sqlx::query(&format!(
                "UPDATE keel_cron_runs SET state = 'finished', outcome = 'stuck', finished_at = $2, error = $3 \
                 WHERE id = $1 RETURNING {RUN_COLS}"
            ))
            .bind(id)
            .bind(now)
            .bind(stuck_run_error(&worker, exp))
            .fetch_one(&mut *conn)
            .await?;
            out.push(run_from_row(&row)?);
        }
        Ok(out)
    }

    async fn begin_impl(&self, b: CronBegin) -> Result<CronBegun, QueueError> {
        crate::names::check_name("task name", &b.task)?;
        for _ in 0..BEGIN_TRIES {
            if let Some(begun) = self.begin_once(&b).await? {
                return Ok(begun);
            }
            // The active run that refused ours finished before we could name it: the task is
            // free again, and the slot was given back.
        }
        Err(QueueError::Database(format!("task {:?}: its active run kept changing hands; try again", b.task)))
    }

    /// One try at [`Self::begin_impl`]; `None` when the run that refused ours was gone by the
    /// time it was looked up (read committed: each statement sees the latest commits).
    async fn begin_once(&self, b: &CronBegin) -> Result<Option<CronBegun>, QueueError> {
        let now = self.clock.now();
        let mut tx = self.pool.begin().await?;
        sqlx::query(
            "INSERT INTO keel_cron_schedule (task, next_run_at, updated_at) VALUES ($1, $2, $3) ON CONFLICT (task) DO NOTHING",
        )
        .bind(&b.task)
        .bind(b.first_due)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        // Take the slot; the row lock holds other workers here until we commit.
        let took: Option<String> = sqlx::query_scalar(
            "UPDATE keel_cron_schedule SET next_run_at = $2, updated_at = $3 \
             WHERE task = $1 AND next_run_at <= $3 RETURNING task",
        )
        .bind(&b.task)
        .bind(b.next_due)
        .bind(now)
        .fetch_optional(&mut *tx)
        .await?;
        if took.is_none() {
            let next_run_at: DateTime<Utc> =
                sqlx::query_scalar("SELECT next_run_at FROM keel_cron_schedule WHERE task = $1")
                    .bind(&b.task)
                    .fetch_one(&mut *tx)
                    .await?;
            tx.commit().await?;
            return Ok(Some(CronBegun { start: CronStart::NotDue { next_run_at }, stuck: Vec::new() }));
        }
        let stuck = self.recover_stale(&mut tx, Some(&b.task)).await?;
        let paused: Option<String> = sqlx::query_scalar(
            "SELECT task FROM keel_cron_pauses WHERE task IN ($1, 'all') ORDER BY task = 'all' LIMIT 1",
        )
        .bind(&b.task)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(by) = paused {
            sqlx::query(
                "INSERT INTO keel_cron_runs (id, task, state, outcome, worker, started_at, heartbeat_at, lease_expires_at, \
                     finished_at, error) \
                 VALUES ($1, $2, 'finished', 'skipped_paused', $3, $4, $4, $4, $4, $5)",
            )
            .bind(Uuid::now_v7())
            .bind(&b.task)
            .bind(&b.worker)
            .bind(now)
            .bind(format!("paused by `cron pause {by}`"))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(Some(CronBegun { start: CronStart::Paused { by }, stuck }));
        }
        let row = sqlx::query(&format!(
            "INSERT INTO keel_cron_runs (id, task, state, worker, started_at, heartbeat_at, lease_expires_at, skipped_ticks) \
             VALUES ($1, $2, 'running', $3, $4, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING {RUN_COLS}"
        ))
        .bind(Uuid::now_v7())
        .bind(&b.task)
        .bind(&b.worker)
        .bind(now)
        .bind(plus(now, b.lease))
        .bind(i64::try_from(b.skipped_ticks).unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(r) => {
                let run = run_from_row(&r)?;
                tx.commit().await?;
                Ok(Some(CronBegun { start: CronStart::Started(run), stuck }))
            }
            None => {
                // Another run is active: give the slot back so it is not silently lost.
                let holder: Option<(Uuid, String)> =
                    sqlx::query_as("SELECT id, worker FROM keel_cron_runs WHERE task = $1 AND state = 'running'")
                        .bind(&b.task)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                Ok(holder.map(|(run, worker)| CronBegun {
                    start: CronStart::AlreadyRunning { run, worker },
                    stuck: Vec::new(),
                }))
            }
        }
    }

    async fn heartbeat_run(&self, run: CronRun, lease: Duration) -> Result<Option<CronRun>, QueueError> {
        let now = self.clock.now();
        // Heartbeats are strictly increasing so the compare-and-set value always changes.
        let hb = if now > run.heartbeat_at { now } else { run.heartbeat_at + chrono::Duration::milliseconds(1) };
        let row = sqlx::query(&format!(
            "UPDATE keel_cron_runs SET heartbeat_at = $3, lease_expires_at = $4 \
             WHERE id = $1 AND state = 'running' AND heartbeat_at = $2 RETURNING {RUN_COLS}"
        ))
        .bind(run.id)
        .bind(run.heartbeat_at)
        .bind(hb)
        .bind(plus(hb, lease))
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(run_from_row).transpose()
    }

    async fn finish_run(
        &self,
        run: CronRun,
        outcome: CronOutcome,
        items: u64,
        error: Option<String>,
    ) -> Result<bool, QueueError> {
        let n = sqlx::query(
            "UPDATE keel_cron_runs SET state = 'finished', outcome = $3, items = $4, error = $5, finished_at = $6 \
             WHERE id = $1 AND state = 'running' AND heartbeat_at = $2",
        )
        .bind(run.id)
        .bind(run.heartbeat_at)
        .bind(outcome.as_str())
        .bind(i64::try_from(items).unwrap_or(i64::MAX))
        .bind(error)
        .bind(self.clock.now())
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(n == 1)
    }
}

impl CronStore for PgStore {
    fn cron_begin(&self, begin: CronBegin) -> StoreFuture<'_, CronBegun> {
        Box::pin(self.begin_impl(begin))
    }
    fn cron_heartbeat(&self, run: CronRun, lease: Duration) -> StoreFuture<'_, Option<CronRun>> {
        Box::pin(self.heartbeat_run(run, lease))
    }
    fn cron_finish(
        &self,
        run: CronRun,
        outcome: CronOutcome,
        items: u64,
        error: Option<String>,
    ) -> StoreFuture<'_, bool> {
        Box::pin(self.finish_run(run, outcome, items, error))
    }
    fn cron_recover_stale(&self) -> StoreFuture<'_, Vec<CronRun>> {
        Box::pin(async move {
            let mut tx = self.pool.begin().await?;
            let out = self.recover_stale(&mut tx, None).await?;
            tx.commit().await?;
            Ok(out)
        })
    }
    fn cron_runs(&self, f: RunFilter) -> StoreFuture<'_, Vec<CronRun>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM keel_cron_runs WHERE ($1::text IS NULL OR task = $1) \
                 ORDER BY started_at DESC, id DESC LIMIT $2"
            ))
            .bind(&f.task)
            .bind(f.limit())
            .fetch_all(&self.pool)
            .await?;
            rows.iter().map(run_from_row).collect()
        })
    }
    fn cron_pause(&self, task: String, by: Option<String>) -> StoreFuture<'_, ()> {
        Box::pin(async move {
            crate::names::check_name("task name", &task)?;
            sqlx::query(
                "INSERT INTO keel_cron_pauses (task, paused_at, paused_by) VALUES ($1, $2, $3) ON CONFLICT (task) DO NOTHING",
            )
            .bind(&task)
            .bind(self.clock.now())
            .bind(by)
            .execute(&self.pool)
            .await?;
            Ok(())
        })
    }
    fn cron_resume(&self, task: String) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let n = sqlx::query("DELETE FROM keel_cron_pauses WHERE task = $1 OR $1 = 'all'")
                .bind(&task)
                .execute(&self.pool)
                .await?
                .rows_affected();
            // Claim loops paused by this wait for their next poll otherwise.
            sqlx::query(&format!("SELECT pg_notify('{}', 'cron_resume')", super::pg::CHANNEL))
                .execute(&self.pool)
                .await?;
            Ok(n > 0)
        })
    }
    fn cron_pauses(&self) -> StoreFuture<'_, Vec<CronPause>> {
        Box::pin(async move {
            let rows: Vec<(String, DateTime<Utc>, Option<String>)> =
                sqlx::query_as("SELECT task, paused_at, paused_by FROM keel_cron_pauses ORDER BY task")
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows.into_iter().map(|(task, paused_at, paused_by)| CronPause { task, paused_at, paused_by }).collect())
        })
    }
    fn cron_prune(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let cutoff = crate::clock::minus(self.clock.now(), older_than);
            Ok(sqlx::query("DELETE FROM keel_cron_runs WHERE state = 'finished' AND started_at < $1")
                .bind(cutoff)
                .execute(&self.pool)
                .await?
                .rows_affected())
        })
    }
}
