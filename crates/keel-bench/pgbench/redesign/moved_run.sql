-- Redesign prototype (session 14): today's claim; the finish deletes the job and appends it to
-- keel_jobs_done (moved_schema.sql) in the same durable statement.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
WITH next AS (
  SELECT id FROM keel_jobs
  WHERE queue = 'default' AND state IN ('pending', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT 128
  FOR UPDATE SKIP LOCKED)
UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = j.lease_seq + 1,
    lease_expires_at = now() + interval '30 seconds', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
WHERE j.id = ANY(ARRAY(SELECT id FROM next));
COMMIT;
WITH d AS (DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker RETURNING *)
INSERT INTO keel_jobs_done (id, kind, queue, org_id, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at, sealed, trace_context)
SELECT id, kind, queue, org_id, payload, priority, 'completed', run_at, attempt, max_attempts, dedupe_key, lease_seq, NULL, locked_by, last_error, created_at, now(), started_at, now(), sealed, trace_context FROM d;
