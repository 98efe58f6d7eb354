-- Redesign prototype: the ready table with per-job HOT claim and finish updates of the history row.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
WITH d AS (DELETE FROM keel_ready r WHERE r.ctid = ANY(ARRAY(SELECT ctid FROM keel_ready WHERE queue = 'default' AND run_at <= now() ORDER BY priority, run_at, id LIMIT 128 FOR UPDATE SKIP LOCKED)) RETURNING id),
c AS (INSERT INTO keel_claims (token, worker, expires_at, claimed_at, ids) SELECT nextval('keel_claim_seq'), 'w' || :worker, now() + interval '30 s', now(), array_agg(id) FROM d RETURNING token, ids, expires_at, worker),
u AS (UPDATE keel_jobs j SET state = 'processing', attempt = j.attempt + 1, lease_seq = c.token, lease_expires_at = c.expires_at, locked_by = c.worker, started_at = now(), updated_at = now() FROM c WHERE j.id = ANY(c.ids) RETURNING j.*, c.token)
SELECT max(token) AS token, count(payload::text) AS n FROM u \gset
COMMIT;
BEGIN;
UPDATE keel_jobs j SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
WHERE j.id = ANY(ARRAY(SELECT unnest(ids) FROM keel_claims WHERE token = :token)) AND j.lease_seq = :token AND state = 'processing';
DELETE FROM keel_claims WHERE token = :token;
COMMIT;
