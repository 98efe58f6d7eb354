-- Redesign prototype: a non-HOT claim (leaves the ready index) with one keel_claims row per batch,
-- then a durable HOT finish that counts the claim's open jobs down and drops it at zero.
\set worker :client_id
BEGIN;
SET LOCAL synchronous_commit = off;
WITH tok AS (SELECT nextval('keel_claim_seq') AS t),
u AS (UPDATE keel_jobs j SET state = 'processing', ready_at = NULL, attempt = j.attempt + 1, lease_seq = (SELECT t FROM tok),
        lease_expires_at = now() + interval '30 s', locked_by = 'w' || :worker, started_at = now(), updated_at = now()
      WHERE j.id = ANY(ARRAY(SELECT id FROM keel_jobs WHERE queue = 'default' AND ready_at IS NOT NULL AND ready_at <= now()
                             ORDER BY priority, ready_at, id LIMIT 128 FOR UPDATE SKIP LOCKED))
      RETURNING j.*),
c AS (INSERT INTO keel_claims (token, worker, expires_at, open) SELECT (SELECT t FROM tok), 'w' || :worker, now() + interval '30 s', count(*) FROM u)
SELECT (SELECT t FROM tok) AS token, count(payload::text) AS n FROM u \gset
COMMIT;
BEGIN;
WITH d AS (UPDATE keel_jobs SET state = 'completed', finished_at = now(), updated_at = now(), lease_expires_at = NULL
           WHERE lease_seq = :token AND state = 'processing' RETURNING lease_seq)
UPDATE keel_claims c SET open = c.open - x.n FROM (SELECT lease_seq, count(*) AS n FROM d GROUP BY 1) x WHERE c.token = x.lease_seq;
DELETE FROM keel_claims WHERE token = :token AND open <= 0;
COMMIT;
