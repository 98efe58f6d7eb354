-- Redesign prototype: one keel_jobs table whose claim is a HOT update. No index of keel_jobs
-- covers a column the claim changes: the ready index keeps every unfinished job (`finished_at IS
-- NULL`, so claimed ones stay in it and the claim skips them by their state), the dedupe index
-- is keyed the same way, retention walks `finished_at` alone, and leases expire per claimed
-- batch in keel_claims (the rescue index cannot live on keel_jobs).
DROP TABLE IF EXISTS keel_jobs, keel_ready, keel_claims CASCADE; DROP SEQUENCE IF EXISTS keel_claim_seq;
CREATE TABLE keel_jobs (
    id uuid PRIMARY KEY, kind text NOT NULL, queue text NOT NULL, org_id uuid, payload jsonb NOT NULL,
    priority smallint NOT NULL DEFAULT 0, state text NOT NULL, run_at timestamptz NOT NULL,
    attempt integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL, dedupe_key text,
    lease_seq bigint NOT NULL DEFAULT 0, lease_expires_at timestamptz, locked_by text, last_error text,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, started_at timestamptz, finished_at timestamptz,
    sealed boolean NOT NULL DEFAULT false, trace_context text) WITH (fillfactor = :ff);
CREATE INDEX keel_jobs_ready_idx ON keel_jobs (queue, priority, run_at, id) WHERE finished_at IS NULL;
CREATE UNIQUE INDEX keel_jobs_dedupe_idx ON keel_jobs (kind, dedupe_key, COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid)) WHERE dedupe_key IS NOT NULL AND finished_at IS NULL;
CREATE INDEX keel_jobs_finished_idx ON keel_jobs (finished_at) WHERE finished_at IS NOT NULL;
CREATE TABLE keel_claims (token bigint PRIMARY KEY, worker text NOT NULL, expires_at timestamptz NOT NULL, ids uuid[] NOT NULL);
CREATE INDEX keel_claims_expiry_idx ON keel_claims (expires_at);
INSERT INTO keel_jobs (id, kind, queue, payload, state, run_at, max_attempts, created_at, updated_at)
SELECT gen_random_uuid(), 'bench.noop', 'default', jsonb_build_object('i', g), 'pending', now(), 25, now(), now() FROM generate_series(1,50000) g;
CREATE SEQUENCE keel_claim_seq;
