-- The least PostgreSQL work a queued job needs, for `pgbench -f` against a keel_jobs table
-- (same columns, indexes and settings as keel-queue's migrations) prefilled with pending jobs:
-- one batched claim (SKIP LOCKED, a fenced lease) and one batched, durable finish that moves
-- the jobs to keel_jobs_completed as keel-queue's completion does (since session 20), each its
-- own transaction, :batch jobs per batch (`pgbench -D batch=N`; the race passes Keel's tuned
-- batch, so both claim as many at a time). Each client stands for one worker's claim loop and
-- completer; its claims carry its client id so the finish touches only its own jobs.
-- The race's `limit-delete` keeps everything up to the finish and deletes the jobs instead
-- (`limit_script` in queue_race.rs), so the finish stays the last statement.
\set worker :client_id
WITH next AS (
  SELECT id FROM keel_jobs
  WHERE queue = 'default' AND state IN ('pending', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT :batch
  FOR UPDATE SKIP LOCKED)
UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = j.lease_seq + 1,
    lease_expires_at = now() + interval '30 seconds', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
FROM next WHERE j.id = next.id;
WITH d AS (DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker RETURNING *)
INSERT INTO keel_jobs_completed (id, kind, queue, org_id, payload, priority, state, run_at, attempt, max_attempts,
    dedupe_key, lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at,
    sealed, trace_context)
SELECT id, kind, queue, org_id, payload, priority, 'completed', run_at, attempt, max_attempts, dedupe_key, lease_seq,
    NULL, locked_by, last_error, created_at, now(), started_at, now(), sealed, trace_context FROM d;
