-- Redesign prototype: claim = delete ready rows by ctid + one lease row per batch; finish = HOT update of the history row.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
WITH d AS (DELETE FROM keel_ready r WHERE r.ctid = ANY(ARRAY(SELECT ctid FROM keel_ready WHERE queue = 'default' AND run_at <= now() ORDER BY priority, run_at, id LIMIT 128 FOR UPDATE SKIP LOCKED)) RETURNING id),
c AS (INSERT INTO keel_claims (token, worker, expires_at, claimed_at, ids) SELECT nextval('keel_claim_seq'), 'w' || :worker, now() + interval '30 s', now(), array_agg(id) FROM d RETURNING token, ids)
SELECT c.token, count(j.payload::text) AS n FROM c, keel_jobs j WHERE j.id = ANY(c.ids) GROUP BY c.token \gset
COMMIT;
BEGIN;
SELECT 1 FROM keel_claims WHERE token = :token FOR SHARE;
UPDATE keel_jobs j SET state = 'completed', attempt = j.attempt + 1, lease_seq = c.token, finished_at = now(), updated_at = now(), started_at = c.claimed_at, locked_by = c.worker
FROM (SELECT token, claimed_at, worker, unnest(ids) AS id FROM keel_claims WHERE token = :token) c WHERE j.id = c.id AND j.lease_seq < c.token;
DELETE FROM keel_claims WHERE token = :token;
COMMIT;
