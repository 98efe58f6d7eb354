//! Scheduled-task runs on SQLite: the same protocol as Postgres, serialised by
//! `BEGIN IMMEDIATE` and backed by the same partial unique index on running rows. The
//! worker's writes here take the file's write turn ([`super::sqlite_turn`]) like its claims.

use super::cron_types::{
    run_tally, CronBegin, CronBegun, CronOutcome, CronPause, CronRun, CronRunState, CronStart, RunFilter,
};
use super::pg_cron::stuck_run_error;
use super::sqlite::{ms, time_col, BEGIN};
use super::{CronStore, SqliteStore, StoreFuture};
use crate::clock::{ms_to_time, plus};
use crate::QueueError;
use sqlx::sqlite::SqliteRow;
use sqlx::{Connection, Row, SqliteConnection};
use std::time::Duration;
use uuid::Uuid;

const RUN_COLS: &str = "id, task, state, outcome, worker, started_at, heartbeat_at, lease_expires_at, finished_at, \
     items, skipped_ticks, error";

fn run_from_row(r: &SqliteRow) -> Result<CronRun, QueueError> {
    let state: String = r.try_get("state")?;
    let outcome: Option<String> = r.try_get("outcome")?;
    let id: String = r.try_get("id")?;
    Ok(CronRun {
        id: Uuid::parse_str(&id).map_err(|_| QueueError::Corrupt(format!("cron run id {id:?} is not a UUID")))?,
        task: r.try_get("task")?,
        state: CronRunState::from_column(&state)?,
        outcome: outcome.map(|o| o.parse()).transpose()?,
        worker: r.try_get("worker")?,
        started_at: time_col("started_at", r.try_get("started_at")?)?,
        heartbeat_at: time_col("heartbeat_at", r.try_get("heartbeat_at")?)?,
        lease_expires_at: time_col("lease_expires_at", r.try_get("lease_expires_at")?)?,
        finished_at: r.try_get::<Option<i64>, _>("finished_at")?.map(|ms| time_col("finished_at", ms)).transpose()?,
        items: run_tally("items", r.try_get("items")?)?,
        skipped_ticks: run_tally("skipped_ticks", r.try_get("skipped_ticks")?)?,
        error: r.try_get("error")?,
    })
}

impl SqliteStore {
    async fn recover_stale(&self, conn: &mut SqliteConnection, task: Option<&str>) -> Result<Vec<CronRun>, QueueError> {
        let now = ms(self.clock.now());
        let stale: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT id, worker, lease_expires_at FROM keel_cron_runs \
             WHERE state = 'running' AND lease_expires_at < ?1 AND (?2 IS NULL OR task = ?2)",
        )
        .bind(now)
        .bind(task)
        .fetch_all(&mut *conn)
        .await?;
        let mut out = Vec::new();
        for (id, worker, exp) in stale {
            let row = sqlx::query(&format!(
                "UPDATE keel_cron_runs SET state = 'finished', outcome = 'stuck', finished_at = ?2, error = ?3 \
                 WHERE id = ?1 RETURNING {RUN_COLS}"
            ))
            .bind(&id)
            .bind(now)
            .bind(stuck_run_error(&worker, ms_to_time(exp)))
            .fetch_one(&mut *conn)
            .await?;
            out.push(run_from_row(&row)?);
        }
        Ok(out)
    }

    /// The worker's writes to the scheduled-task tables take the file's write turn, as its
    /// claims and finishes do: on the pool, each one that met a claim holding SQLite's lock
    /// slept in SQLite's busy handler (1, 2, 5 ms and more) and, holding the lock itself,
    /// sent the worker's next claim there too (issue #19).
    async fn begin_impl(&self, b: CronBegin) -> Result<CronBegun, QueueError> {
        crate::names::check_name("task name", &b.task)?;
        let mut write = self.writer.lend(&self.pool, false).await?;
        let begun = self.begin_in(write.conn(), b).await;
        write.settle(begun).await
    }

    async fn begin_in(&self, conn: &mut SqliteConnection, b: CronBegin) -> Result<CronBegun, QueueError> {
        let now = ms(self.clock.now());
        let mut tx = conn.begin_with(BEGIN).await?;
        sqlx::query(
            "INSERT INTO keel_cron_schedule (task, next_run_at, updated_at) VALUES (?, ?, ?) ON CONFLICT (task) DO NOTHING",
        )
        .bind(&b.task)
        .bind(ms(b.first_due))
        .bind(now)
        .execute(&mut *tx)
        .await?;
        let took = sqlx::query(
            "UPDATE keel_cron_schedule SET next_run_at = ?2, updated_at = ?3 WHERE task = ?1 AND next_run_at <= ?3",
        )
        .bind(&b.task)
        .bind(ms(b.next_due))
        .bind(now)
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if took == 0 {
            let next: i64 = sqlx::query_scalar("SELECT next_run_at FROM keel_cron_schedule WHERE task = ?")
                .bind(&b.task)
                .fetch_one(&mut *tx)
                .await?;
            tx.commit().await?;
            return Ok(CronBegun { start: CronStart::NotDue { next_run_at: ms_to_time(next) }, stuck: Vec::new() });
        }
        let stuck = self.recover_stale(&mut tx, Some(&b.task)).await?;
        let paused: Option<String> = sqlx::query_scalar(
            "SELECT task FROM keel_cron_pauses WHERE task IN (?, 'all') ORDER BY task = 'all' LIMIT 1",
        )
        .bind(&b.task)
        .fetch_optional(&mut *tx)
        .await?;
        if let Some(by) = paused {
            sqlx::query(
                "INSERT INTO keel_cron_runs (id, task, state, outcome, worker, started_at, heartbeat_at, lease_expires_at, \
                     finished_at, error) \
                 VALUES (?1, ?2, 'finished', 'skipped_paused', ?3, ?4, ?4, ?4, ?4, ?5)",
            )
            .bind(Uuid::now_v7().to_string())
            .bind(&b.task)
            .bind(&b.worker)
            .bind(now)
            .bind(format!("paused by `cron pause {by}`"))
            .execute(&mut *tx)
            .await?;
            tx.commit().await?;
            return Ok(CronBegun { start: CronStart::Paused { by }, stuck });
        }
        let row = sqlx::query(&format!(
            "INSERT INTO keel_cron_runs (id, task, state, worker, started_at, heartbeat_at, lease_expires_at, skipped_ticks) \
             VALUES (?1, ?2, 'running', ?3, ?4, ?4, ?5, ?6) ON CONFLICT DO NOTHING RETURNING {RUN_COLS}"
        ))
        .bind(Uuid::now_v7().to_string())
        .bind(&b.task)
        .bind(&b.worker)
        .bind(now)
        .bind(ms(plus(ms_to_time(now), b.lease)))
        .bind(i64::try_from(b.skipped_ticks).unwrap_or(i64::MAX))
        .fetch_optional(&mut *tx)
        .await?;
        match row {
            Some(r) => {
                let run = run_from_row(&r)?;
                tx.commit().await?;
                Ok(CronBegun { start: CronStart::Started(run), stuck })
            }
            None => {
                // Another run is active: give the slot back so it is not silently lost. The
                // write holds SQLite's lock, so the run that refused the insert is still there.
                let holder: Option<(String, String)> =
                    sqlx::query_as("SELECT id, worker FROM keel_cron_runs WHERE task = ? AND state = 'running'")
                        .bind(&b.task)
                        .fetch_optional(&mut *tx)
                        .await?;
                tx.rollback().await?;
                let Some((run, worker)) = holder else {
                    return Err(QueueError::Database(format!(
                        "task {:?}: a run refused the new one but is not running; try again",
                        b.task
                    )));
                };
                let run = Uuid::parse_str(&run)
                    .map_err(|_| QueueError::Corrupt(format!("cron run id {run:?} is not a UUID")))?;
                Ok(CronBegun { start: CronStart::AlreadyRunning { run, worker }, stuck: Vec::new() })
            }
        }
    }

    async fn heartbeat_run(&self, run: CronRun, lease: Duration) -> Result<Option<CronRun>, QueueError> {
        let now = self.clock.now();
        let hb = if now > run.heartbeat_at { now } else { run.heartbeat_at + chrono::Duration::milliseconds(1) };
        let sql = format!(
            "UPDATE keel_cron_runs SET heartbeat_at = ?3, lease_expires_at = ?4 \
             WHERE id = ?1 AND state = 'running' AND heartbeat_at = ?2 RETURNING {RUN_COLS}"
        );
        self.writer
            .transaction(&self.pool, async |tx| {
                let row = sqlx::query(&sql)
                    .bind(run.id.to_string())
                    .bind(ms(run.heartbeat_at))
                    .bind(ms(hb))
                    .bind(ms(plus(hb, lease)))
                    .fetch_optional(tx)
                    .await?;
                row.as_ref().map(run_from_row).transpose()
            })
            .await
    }

    async fn finish_run(
        &self,
        run: CronRun,
        outcome: CronOutcome,
        items: u64,
        error: Option<String>,
    ) -> Result<bool, QueueError> {
        let now = ms(self.clock.now());
        let done = self
            .writer
            .transaction(&self.pool, async |tx| {
                sqlx::query(
                    "UPDATE keel_cron_runs SET state = 'finished', outcome = ?3, items = ?4, error = ?5, finished_at = ?6 \
                     WHERE id = ?1 AND state = 'running' AND heartbeat_at = ?2",
                )
                .bind(run.id.to_string())
                .bind(ms(run.heartbeat_at))
                .bind(outcome.as_str())
                .bind(i64::try_from(items).unwrap_or(i64::MAX))
                .bind(error)
                .bind(now)
                .execute(tx)
                .await
            })
            .await?;
        Ok(done.rows_affected() == 1)
    }
}

impl CronStore for SqliteStore {
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
        Box::pin(
            async move { self.writer.transaction(&self.pool, async |tx| self.recover_stale(tx, None).await).await },
        )
    }
    fn cron_runs(&self, f: RunFilter) -> StoreFuture<'_, Vec<CronRun>> {
        Box::pin(async move {
            let rows = sqlx::query(&format!(
                "SELECT {RUN_COLS} FROM keel_cron_runs WHERE (?1 IS NULL OR task = ?1) \
                 ORDER BY started_at DESC, id DESC LIMIT ?2"
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
            // The operators' verbs take the write turn, as the queue's do (`SqliteStore::cancel_impl`).
            let sql = "INSERT INTO keel_cron_pauses (task, paused_at, paused_by) VALUES (?, ?, ?) ON CONFLICT (task) DO NOTHING";
            self.write_one(sqlx::query(sql).bind(&task).bind(ms(self.clock.now())).bind(by)).await?;
            Ok(())
        })
    }
    fn cron_resume(&self, task: String) -> StoreFuture<'_, bool> {
        Box::pin(async move {
            let n = self
                .write_one(sqlx::query("DELETE FROM keel_cron_pauses WHERE task = ?1 OR ?1 = 'all'").bind(&task))
                .await?;
            self.wake.wake();
            Ok(n > 0)
        })
    }
    fn cron_pauses(&self) -> StoreFuture<'_, Vec<CronPause>> {
        Box::pin(async move {
            let rows: Vec<(String, i64, Option<String>)> =
                sqlx::query_as("SELECT task, paused_at, paused_by FROM keel_cron_pauses ORDER BY task")
                    .fetch_all(&self.pool)
                    .await?;
            Ok(rows
                .into_iter()
                .map(|(task, at, paused_by)| CronPause { task, paused_at: ms_to_time(at), paused_by })
                .collect())
        })
    }
    fn cron_prune(&self, older_than: Duration) -> StoreFuture<'_, u64> {
        Box::pin(async move {
            let cutoff = ms(crate::clock::minus(self.clock.now(), older_than));
            // The worker's retention task: in batches on the write turn, as `prune`'s, so the
            // worker's claims go between them.
            let sql = "DELETE FROM keel_cron_runs WHERE id IN ( \
                         SELECT id FROM keel_cron_runs WHERE state = 'finished' AND started_at < ? LIMIT ?)";
            let mut total = 0;
            loop {
                let n = self.write_one(sqlx::query(sql).bind(cutoff).bind(super::sqlite_ops::PRUNE_BATCH)).await?;
                total += n;
                if n < super::sqlite_ops::PRUNE_BATCH as u64 {
                    return Ok(total);
                }
            }
        })
    }
}
