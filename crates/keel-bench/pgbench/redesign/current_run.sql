-- Redesign prototype: today's claim (sync-off) and durable finish, 128 jobs, one client's loop.
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
UPDATE keel_jobs SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
WHERE state = 'processing' AND locked_by = 'w' || :worker;
