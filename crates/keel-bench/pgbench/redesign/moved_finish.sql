-- Redesign prototype (session 14), the finish only: run.sh puts it after current_run.sql's claim.
-- It deletes the job and appends it to keel_jobs_done (moved_schema.sql) in one durable statement.
WITH d AS (DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker RETURNING *)
INSERT INTO keel_jobs_done (id, kind, queue, org_id, payload, priority, state, run_at, attempt, max_attempts, dedupe_key, lease_seq, lease_expires_at, locked_by, last_error, created_at, updated_at, started_at, finished_at, sealed, trace_context)
SELECT id, kind, queue, org_id, payload, priority, 'completed', run_at, attempt, max_attempts, dedupe_key, lease_seq, NULL, locked_by, last_error, created_at, now(), started_at, now(), sealed, trace_context FROM d;
