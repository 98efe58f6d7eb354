-- Job queue: jobs, queue pauses, and the scheduled-task tables (schedule slots, execution log,
-- pauses). Times are written by the application's clock (millisecond precision) so both
-- backends and the tests share one notion of "now".

CREATE TABLE keel_jobs (
    id                uuid PRIMARY KEY,
    kind              text NOT NULL CHECK (length(kind) BETWEEN 1 AND 64),
    queue             text NOT NULL CHECK (length(queue) BETWEEN 1 AND 64),
    -- Optional tenant. No foreign key: the queue is usable by services whose orgs live elsewhere.
    org_id            uuid,
    payload           jsonb NOT NULL,
    -- Lower runs first.
    priority          smallint NOT NULL DEFAULT 0,
    state             text NOT NULL CHECK (state IN
                        ('pending', 'processing', 'retrying', 'completed', 'failed', 'dead_letter', 'cancelled')),
    run_at            timestamptz NOT NULL,
    -- Attempts started so far (incremented by each claim, given back by a graceful release).
    attempt           integer NOT NULL DEFAULT 0 CHECK (attempt >= 0),
    max_attempts      integer NOT NULL CHECK (max_attempts BETWEEN 1 AND 1000),
    dedupe_key        text CHECK (length(dedupe_key) BETWEEN 1 AND 255),
    -- Fencing token: bumped by every claim and never reused, so a finish carrying an older
    -- value is from a lease that was rescued or released and is rejected.
    lease_seq         bigint NOT NULL DEFAULT 0,
    lease_expires_at  timestamptz,
    locked_by         text,
    last_error        text,
    created_at        timestamptz NOT NULL,
    updated_at        timestamptz NOT NULL,
    started_at        timestamptz,
    finished_at       timestamptz,
    CHECK ((state = 'processing') = (lease_expires_at IS NOT NULL))
);

-- The claim path: only runnable rows are in it, so history never slows a claim down.
CREATE INDEX keel_jobs_ready_idx ON keel_jobs (queue, priority, run_at, id)
    WHERE state IN ('pending', 'retrying');

-- Dedupe: a key is reserved only while a job holding it is active. The index, not a
-- check-then-insert, makes it race-free. Scoped by kind and tenant.
CREATE UNIQUE INDEX keel_jobs_dedupe_idx
    ON keel_jobs (kind, dedupe_key, COALESCE(org_id, '00000000-0000-0000-0000-000000000000'::uuid))
    WHERE dedupe_key IS NOT NULL AND state IN ('pending', 'processing', 'retrying');

-- Rescue of expired leases.
CREATE INDEX keel_jobs_lease_idx ON keel_jobs (lease_expires_at) WHERE state = 'processing';

-- Retention pruning and listings of finished work.
CREATE INDEX keel_jobs_finished_idx ON keel_jobs (state, finished_at) WHERE finished_at IS NOT NULL;

-- Every claim and finish rewrites a row: vacuum this table early so dead tuples never pile up.
ALTER TABLE keel_jobs SET (
    autovacuum_vacuum_scale_factor = 0.02,
    autovacuum_vacuum_insert_scale_factor = 0.05,
    autovacuum_analyze_scale_factor = 0.05
);

CREATE TABLE keel_queue_pauses (
    queue      text PRIMARY KEY,
    paused_at  timestamptz NOT NULL,
    paused_by  text
);

-- Scheduled tasks: the next due time of each task, advanced by compare-and-set so one slot
-- is taken by exactly one worker.
CREATE TABLE keel_cron_schedule (
    task         text PRIMARY KEY,
    next_run_at  timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);

-- The execution log: one row per run, including runs that found nothing to do, failed,
-- were skipped because of a pause, or were found stuck after their worker died.
CREATE TABLE keel_cron_runs (
    id                uuid PRIMARY KEY,
    task              text NOT NULL,
    state             text NOT NULL CHECK (state IN ('running', 'finished')),
    outcome           text CHECK (outcome IN ('ok', 'empty', 'failed', 'skipped_paused', 'stuck')),
    worker            text NOT NULL,
    started_at        timestamptz NOT NULL,
    heartbeat_at      timestamptz NOT NULL,
    lease_expires_at  timestamptz NOT NULL,
    finished_at       timestamptz,
    items             bigint NOT NULL DEFAULT 0,
    skipped_ticks     bigint NOT NULL DEFAULT 0,
    error             text,
    CHECK ((state = 'finished') = (outcome IS NOT NULL))
);
-- At most one active run per task across every worker.
CREATE UNIQUE INDEX keel_cron_runs_one_active_idx ON keel_cron_runs (task) WHERE state = 'running';
CREATE INDEX keel_cron_runs_task_started_idx ON keel_cron_runs (task, started_at);
CREATE INDEX keel_cron_runs_started_idx ON keel_cron_runs (started_at);

-- `keel-ops cron pause TASK|all`; the task name `all` pauses every task.
CREATE TABLE keel_cron_pauses (
    task       text PRIMARY KEY,
    paused_at  timestamptz NOT NULL,
    paused_by  text
);
