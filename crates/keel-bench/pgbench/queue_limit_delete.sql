-- queue_limit.sql's claim, with a finish that deletes the job and keeps no history, as
-- graphile-worker's does: what Keel's table could do if it dropped its history, so that a run
-- can state how far each worker runs below the database's limit for its way of finishing.
\set worker :client_id
WITH next AS (
  SELECT id FROM keel_jobs
  WHERE queue = 'default' AND state IN ('pending', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT 128
  FOR UPDATE SKIP LOCKED)
UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = j.lease_seq + 1,
    lease_expires_at = now() + interval '30 seconds', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
FROM next WHERE j.id = next.id;
DELETE FROM keel_jobs WHERE state = 'processing' AND locked_by = 'w' || :worker;
