-- Reference, not a design (session 14): today's claim, and a finish that deletes the job and keeps
-- no history, as graphile-worker does: what dropping history would buy at the database.
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
DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker;
