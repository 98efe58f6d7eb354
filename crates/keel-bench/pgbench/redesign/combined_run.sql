-- Redesign prototype (session 13): today's shape, one statement per transaction that completes
-- this client's previous batch (durably) and claims the next 128; see run.sh combined.
\set worker :client_id
WITH fin AS (
  UPDATE keel_jobs SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
  WHERE state = 'processing' AND locked_by = 'w' || :worker RETURNING 1),
next AS (
  SELECT id FROM keel_jobs
  WHERE queue = 'default' AND state IN ('pending', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT 128
  FOR UPDATE SKIP LOCKED)
UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = j.lease_seq + 1,
    lease_expires_at = now() + interval '30 seconds', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
WHERE j.id = ANY(ARRAY(SELECT id FROM next));
