-- Redesign prototype (issue #19), today's shape: keel_jobs as in keel-queue's migrations, 50,000 pending jobs.
DROP TABLE IF EXISTS keel_jobs, keel_ready, keel_claims CASCADE;
CREATE TABLE keel_jobs (
    id uuid PRIMARY KEY, kind text NOT NULL, queue text NOT NULL, org_id uuid, payload jsonb NOT NULL,
    priority smallint NOT NULL DEFAULT 0, state text NOT NULL, run_at timestamptz NOT NULL,
    attempt integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL, dedupe_key text,
    lease_seq bigint NOT NULL DEFAULT 0, lease_expires_at timestamptz, locked_by text, last_error text,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, started_at timestamptz, finished_at timestamptz,
    sealed boolean NOT NULL DEFAULT false, trace_context text);
CREATE INDEX keel_jobs_ready_idx ON keel_jobs (queue, priority, run_at, id) WHERE state IN ('pending', 'retrying');
CREATE UNIQUE INDEX keel_jobs_dedupe_idx ON keel_jobs (kind, dedupe_key, COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid)) WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing', 'retrying');
CREATE INDEX keel_jobs_lease_idx ON keel_jobs (lease_expires_at) WHERE state = 'processing';
CREATE INDEX keel_jobs_finished_idx ON keel_jobs (state, finished_at) WHERE finished_at IS NOT NULL;
INSERT INTO keel_jobs (id, kind, queue, payload, state, run_at, max_attempts, created_at, updated_at)
SELECT gen_random_uuid(), 'bench.noop', 'default', jsonb_build_object('i', g), 'pending', now(), 25, now(), now() FROM generate_series(1,50000) g;
