-- Redesign prototype: a HOT claim (the row stays in the ready index, skipped by its state) that
-- records one keel_claims row per batch, then today's durable non-HOT finish, dropping the claim.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
WITH next AS (SELECT id FROM keel_jobs WHERE queue = 'default' AND finished_at IS NULL AND state IN ('pending', 'retrying') AND run_at <= now()
              ORDER BY priority, run_at, id LIMIT 128 FOR UPDATE SKIP LOCKED),
c AS (INSERT INTO keel_claims (token, worker, expires_at, ids)
      SELECT nextval('keel_claim_seq'), 'w' || :worker, now() + interval '30 s', ARRAY(SELECT id FROM next) RETURNING token, ids, expires_at, worker),
u AS (UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = c.token, lease_expires_at = c.expires_at,
        locked_by = c.worker, started_at = now(), updated_at = now() FROM c WHERE j.id = ANY(c.ids) RETURNING j.*, c.token)
SELECT max(token) AS token, count(payload::text) AS n FROM u \gset
COMMIT;
BEGIN;
UPDATE keel_jobs j SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
WHERE j.id = ANY(ARRAY(SELECT unnest(ids) FROM keel_claims WHERE token = :token)) AND j.lease_seq = :token AND state = 'processing';
DELETE FROM keel_claims WHERE token = :token;
COMMIT;
