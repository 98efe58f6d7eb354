-- Redesign prototype (session 14): today's claim without its row locks, claims taking turns under
-- an advisory lock instead; the update re-checks the state, so a claim never takes a taken job.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
SELECT pg_advisory_xact_lock(4242);
WITH next AS (
  SELECT id FROM keel_jobs
  WHERE queue = 'default' AND state IN ('pending', 'retrying') AND run_at <= now()
  ORDER BY priority, run_at, id
  LIMIT 128)
UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = j.lease_seq + 1,
    lease_expires_at = now() + interval '30 seconds', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
WHERE j.id = ANY(ARRAY(SELECT id FROM next)) AND j.state IN ('pending', 'retrying');
COMMIT;
UPDATE keel_jobs SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
WHERE state = 'processing' AND locked_by = 'w' || :worker;
