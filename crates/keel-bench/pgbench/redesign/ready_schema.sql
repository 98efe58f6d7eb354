-- Redesign prototype: history table with HOT-friendly indexes (primary key only, fillfactor :ff), a slim ready table, one lease row per claimed batch.
DROP TABLE IF EXISTS keel_jobs, keel_ready, keel_claims CASCADE; DROP SEQUENCE IF EXISTS keel_claim_seq;
CREATE TABLE keel_jobs (
    id uuid PRIMARY KEY, kind text NOT NULL, queue text NOT NULL, org_id uuid, payload jsonb NOT NULL,
    priority smallint NOT NULL DEFAULT 0, state text NOT NULL, run_at timestamptz NOT NULL,
    attempt integer NOT NULL DEFAULT 0, max_attempts integer NOT NULL, dedupe_key text,
    lease_seq bigint NOT NULL DEFAULT 0, lease_expires_at timestamptz, locked_by text, last_error text,
    created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL, started_at timestamptz, finished_at timestamptz,
    sealed boolean NOT NULL DEFAULT false, trace_context text) WITH (fillfactor = :ff);
CREATE TABLE keel_ready (id uuid NOT NULL, queue text NOT NULL, priority smallint NOT NULL, run_at timestamptz NOT NULL);
CREATE INDEX keel_ready_idx ON keel_ready (queue, priority, run_at, id);
CREATE TABLE keel_claims (token bigint PRIMARY KEY, worker text NOT NULL, expires_at timestamptz NOT NULL, claimed_at timestamptz NOT NULL, ids uuid[] NOT NULL);
INSERT INTO keel_jobs (id, kind, queue, payload, state, run_at, max_attempts, created_at, updated_at)
SELECT gen_random_uuid(), 'bench.noop', 'default', jsonb_build_object('i', g), 'pending', now(), 25, now(), now() FROM generate_series(1,50000) g;
INSERT INTO keel_ready SELECT id, queue, priority, run_at FROM keel_jobs;
CREATE SEQUENCE keel_claim_seq;
